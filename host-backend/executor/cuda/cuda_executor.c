/*
 * cuda_executor.c - run driver calls on this host's GPUs.
 *
 * The host's own libcuda.so.1 is opened with dlopen() and every symbol of
 * struct vgc_exec_ops is looked up by name, so this file builds and loads on
 * a machine without a GPU or a driver and says so when asked to run.
 *
 * The guest is untrusted and the real driver trusts its caller, so a few
 * calls are wrapped before they reach it:
 *  - unified copies (cuMemcpy, cuMemcpyAsync) would happily read or write
 *    the worker's own memory given a host address: both ends must be device
 *    memory (the shim turns host-involved copies into HtoD/DtoH);
 *  - allocations are accounted in the pool, so one daemon's clients share a
 *    device memory budget and a tenant's limit holds; the totals and free
 *    memory it reports are the pool's where they are smaller;
 *  - with --oversubscribe, cuMemAlloc makes managed memory that prefers the
 *    GPU ("paged" below): the driver keeps it on the GPU while it fits and
 *    pages the least used part to host RAM when the GPU is full, so jobs
 *    that do not all fit still run together.  The client still sees device
 *    memory (its pointer attributes say so); the executor remembers which
 *    allocations it paged;
 *  - the virtual memory management calls (cuMemCreate, cuMemMap, ...)
 *    take only the client's own handles and reservations, and cuMemCreate
 *    is charged to the pool (cuda_vmm.c);
 *  - with --address-base, cuMemAlloc places its memory in a window of
 *    addresses of our choosing (cuda_window.c), so that a remote executor
 *    can aggregate this vgcd with others; cuMemFree, the address range and
 *    the pointer attributes of that memory are answered from the window's
 *    table.  Paged allocations are managed memory, placed by the driver,
 *    so the two do not go together;
 *  - with a window, a preempted process can be swapped out (vgcd --swap):
 *    the window's allocations are copied to host memory and unmapped at
 *    their reserved addresses, and mapped there again when it comes back
 *    (cuda_window.h).  Only they move: managed memory and module globals,
 *    which the driver places itself, stay on the GPU, and what the pool
 *    charged for them stays charged there (swap_size tells the worker
 *    what moves).  Without a window nothing can come back at its
 *    address: swap_out and swap_in stay NULL and the process is ended.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_array.h"
#include "cuda_vmm.h"
#include "cuda_window.h"
#include "executor.h"
#include "pool.h"

static struct vgc_executor cuda_exec = { .name = "cuda" };
static struct vgc_exec_ops real;        /* the driver's own functions */
static struct vgc_pool *cuda_pool;
static bool cuda_oversubscribed;        /* cfg->oversubscribe: cuMemAlloc pages */

/* The bases of paged allocations: open addressing, 0 free, 1 deleted. */
static CUdeviceptr *paged;
static size_t paged_cap, paged_used;
static void *cuda_lib;

/*
 * Open the host's driver: "libcuda.so.1", unless VGC_HOST_LIBCUDA names
 * another.  With LD_LIBRARY_PATH pointing at the shim, dlopen("libcuda.so.1")
 * finds the shim, which would send a GPU host's calls back into vgcd.
 */
static void *cuda_open(char **err)
{
    const char *name = getenv("VGC_HOST_LIBCUDA");
    void *h = dlopen(name ? name : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);

    if (!h) {
        if (asprintf(err, "cannot open the host CUDA driver: %s", dlerror()) < 0) {
            *err = NULL;
        }
        return NULL;
    }
    if (dlsym(h, "vgc_shim_version")) {
        *err = strdup("libcuda.so.1 found first is the virtio-gpu-compute shim, not "
                      "NVIDIA's driver (set VGC_HOST_LIBCUDA)");
        dlclose(h);
        return NULL;
    }
    return h;
}

static size_t paged_slot(CUdeviceptr base)
{
    size_t i = (size_t)((base >> 12) * 0x9E3779B97F4A7C15ull) & (paged_cap - 1);
    size_t tomb = SIZE_MAX;

    while (paged[i] && paged[i] != base) {
        if (paged[i] == 1 && tomb == SIZE_MAX) {
            tomb = i;
        }
        i = (i + 1) & (paged_cap - 1);
    }
    return paged[i] == base || tomb == SIZE_MAX ? i : tomb;
}

static bool paged_add(CUdeviceptr base)
{
    size_t i;

    if ((paged_used + 1) * 2 > paged_cap) {
        CUdeviceptr *old = paged;
        size_t old_cap = paged_cap;

        paged_cap = paged_cap ? paged_cap * 2 : 256;
        paged = calloc(paged_cap, sizeof(*paged));
        if (!paged) {
            paged = old;
            paged_cap = old_cap;
            return false;
        }
        paged_used = 0;
        for (size_t j = 0; j < old_cap; j++) {
            if (old[j] > 1) {
                paged[paged_slot(old[j])] = old[j];
                paged_used++;
            }
        }
        free(old);
    }
    i = paged_slot(base);
    paged_used += paged[i] == 0;
    paged[i] = base;
    return true;
}

/* Is @p inside a paged allocation?  Forgets the allocation when @forget. */
static bool paged_has(CUdeviceptr p, bool forget)
{
    CUdeviceptr base = 0;
    size_t size = 0, i;

    if (!paged_cap || real.cuMemGetAddressRange_v2(&base, &size, p) != CUDA_SUCCESS ||
        base <= 1) {
        return false;
    }
    i = paged_slot(base);
    if (paged[i] != base) {
        return false;
    }
    if (forget) {
        paged[i] = 1;
    }
    return true;
}

/* Device memory of this client: on the GPU, or managed (the shim's managed
 * memory, paged allocations), which kernels and copies reach the same way. */
static CUresult cuda_check_device_memory(CUdeviceptr p)
{
    unsigned int type = 0, managed = 0;

    /* The window's table knows its own memory: no need to ask the driver,
     * whose view of memory mapped through the VMM API this must not
     * depend on. */
    if (cuda_window_holds(p)) {
        return cuda_window_allocated(p) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    }
    if (!real.cuPointerGetAttribute) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* Plain device memory first: the common case costs one query. */
    if (real.cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p) == CUDA_SUCCESS &&
        type == CU_MEMORYTYPE_DEVICE) {
        return CUDA_SUCCESS;
    }
    if (real.cuPointerGetAttribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, p) ==
        CUDA_SUCCESS && managed) {
        return CUDA_SUCCESS;
    }
    return CUDA_ERROR_INVALID_VALUE;
}

/* A paged allocation's attributes are those of device memory; a window
 * allocation's are those of the cuMemAlloc memory it stands for. */
static CUresult cuda_pointer_get_attribute(void *data, CUpointer_attribute attribute,
                                           CUdeviceptr p)
{
    CUresult res;

    if (cuda_window_holds(p)) {
        return cuda_window_pointer_attribute(data, attribute, p);
    }
    res = real.cuPointerGetAttribute(data, attribute, p);

    if (res == CUDA_SUCCESS && paged_cap && data &&
        (attribute == CU_POINTER_ATTRIBUTE_IS_MANAGED ||
         attribute == CU_POINTER_ATTRIBUTE_MEMORY_TYPE) && paged_has(p, false)) {
        *(unsigned int *)data = attribute == CU_POINTER_ATTRIBUTE_IS_MANAGED ? 0 :
                                CU_MEMORYTYPE_DEVICE;
    }
    return res;
}

/* Managed memory that prefers @dev: the driver keeps it there while it fits. */
static CUresult cuda_alloc_paged(CUdeviceptr *dptr, size_t size, int dev)
{
    CUmemLocation here = { .type = CU_MEM_LOCATION_TYPE_DEVICE, .id = dev };
    CUresult res;

    if (!real.cuMemAllocManaged || !real.cuMemAdvise_v2) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    res = real.cuMemAllocManaged(dptr, size, CU_MEM_ATTACH_GLOBAL);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    /* Advice is a hint: memory the driver places elsewhere still works. */
    real.cuMemAdvise_v2(*dptr, size, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, here);
    real.cuMemAdvise_v2(*dptr, size, CU_MEM_ADVISE_SET_ACCESSED_BY, here);
    if (!paged_add(*dptr)) {
        real.cuMemFree_v2(*dptr);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return CUDA_SUCCESS;
}

static CUresult cuda_memcpy(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    if (cuda_check_device_memory(dst) || cuda_check_device_memory(src)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return real.cuMemcpy(dst, src, n);
}

static CUresult cuda_memcpy_async(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s)
{
    if (cuda_check_device_memory(dst) || cuda_check_device_memory(src)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return real.cuMemcpyAsync(dst, src, n, s);
}

static int cuda_current_device(void)
{
    CUdevice dev = 0;

    if (real.cuCtxGetDevice && real.cuCtxGetDevice(&dev) == CUDA_SUCCESS) {
        return dev;
    }
    return 0;
}

static CUresult cuda_mem_alloc(CUdeviceptr *dptr, size_t size)
{
    int dev = cuda_current_device();
    CUresult res;

    if (size == 0 || !dptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* The window charges the pool itself: the rounded size. */
    if (cuda_window_on()) {
        return cuda_window_alloc(dptr, size);
    }
    if (cuda_pool && !vgc_pool_reserve(cuda_pool, dev, size)) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    res = cuda_oversubscribed ? cuda_alloc_paged(dptr, size, dev) :
          real.cuMemAlloc_v2(dptr, size);
    if (res != CUDA_SUCCESS && cuda_pool) {
        vgc_pool_release(cuda_pool, dev, size);
    }
    return res;
}

/* Managed memory counts against the device like any other; the guest
 * shim maps it at the same address in its own process (mirror.c). */
static CUresult cuda_mem_alloc_managed(CUdeviceptr *dptr, size_t size, unsigned int flags)
{
    int dev = cuda_current_device();
    CUresult res;

    if (size == 0 || !dptr || !real.cuMemAllocManaged) {
        return !real.cuMemAllocManaged ? CUDA_ERROR_NOT_SUPPORTED : CUDA_ERROR_INVALID_VALUE;
    }
    if (cuda_pool && !vgc_pool_reserve(cuda_pool, dev, size)) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    res = real.cuMemAllocManaged(dptr, size, flags);
    if (res != CUDA_SUCCESS && cuda_pool) {
        vgc_pool_release(cuda_pool, dev, size);
    }
    return res;
}

static CUresult cuda_mem_free(CUdeviceptr p)
{
    CUdeviceptr base = 0;
    size_t size = 0;
    int dev = cuda_current_device();
    CUresult res;

    /* cudaFree(NULL) is how programs (cuBLAS among them) make the runtime
     * create its context: the driver frees nothing and says yes. */
    if (p == 0) {
        return real.cuMemFree_v2(0);
    }
    if (cuda_window_holds(p)) {
        return cuda_window_free(p);
    }
    if (cuda_vmm_reserved(p)) {
        return CUDA_ERROR_INVALID_VALUE;    /* mapped memory: cuMemUnmap's */
    }
    if (real.cuMemGetAddressRange_v2(&base, &size, p) != CUDA_SUCCESS || base != p) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    paged_has(p, true);         /* before the range is gone */
    res = real.cuMemFree_v2(p);
    if (res == CUDA_SUCCESS && cuda_pool) {
        vgc_pool_release(cuda_pool, dev, size);
    }
    return res;
}

/* Only installed with a window: everything else is the driver's. */
static CUresult cuda_mem_get_address_range(CUdeviceptr *base, size_t *size, CUdeviceptr p)
{
    if (cuda_window_holds(p)) {
        return cuda_window_address_range(base, size, p);
    }
    return real.cuMemGetAddressRange_v2(base, size, p);
}

/* Only installed with a window: a destroyed context's window memory goes
 * with it, as its cuMemAlloc memory would. */
static CUresult cuda_ctx_destroy(CUcontext ctx)
{
    CUresult res = real.cuCtxDestroy_v2(ctx);

    if (res == CUDA_SUCCESS) {
        cuda_window_context_gone(ctx);
    }
    return res;
}

static CUresult cuda_mem_get_info(size_t *free_bytes, size_t *total)
{
    CUresult res = real.cuMemGetInfo_v2(free_bytes, total);
    int dev = cuda_current_device();

    /* The pool's view (--device-memory, the tenant's memory=) where it is
     * smaller than the GPU's. */
    if (res == CUDA_SUCCESS && cuda_pool) {
        uint64_t cap = vgc_pool_capacity(cuda_pool, dev);
        uint64_t avail = vgc_pool_free(cuda_pool, dev);

        if (cap < *total) {
            *total = (size_t)cap;
        }
        if (avail < *free_bytes) {
            *free_bytes = (size_t)avail;
        }
    }
    return res;
}

static CUresult cuda_device_total_mem(size_t *bytes, CUdevice dev)
{
    CUresult res = real.cuDeviceTotalMem_v2(bytes, dev);

    if (res == CUDA_SUCCESS && cuda_pool) {
        uint64_t cap = vgc_pool_capacity(cuda_pool, dev);
        if (cap < *bytes) {
            *bytes = (size_t)cap;
        }
    }
    return res;
}

/* PTX must end in a NUL the guest may not have sent: images are loaded
 * from a copy that has one. */
static char *cuda_image_copy(const void *image, size_t size)
{
    char *copy = malloc(size + 1);

    if (copy) {
        memcpy(copy, image, size);
        copy[size] = '\0';
    }
    return copy;
}

static CUresult cuda_module_load(CUmodule *mod, const void *image, size_t size)
{
    char *copy = cuda_image_copy(image, size);
    CUresult res;

    if (!copy) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    res = real.cuModuleLoadData ? real.cuModuleLoadData(mod, copy) : CUDA_ERROR_NOT_SUPPORTED;
    free(copy);
    return res;
}

static CUresult cuda_library_load(CUlibrary *lib, const void *image, size_t size)
{
    char *copy = cuda_image_copy(image, size);
    CUresult res;

    if (!copy) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    res = real.cuLibraryLoadData ?
          real.cuLibraryLoadData(lib, copy, NULL, NULL, 0, NULL, NULL, 0) :
          CUDA_ERROR_NOT_SUPPORTED;
    free(copy);
    return res;
}

static void cuda_destroy(void)
{
    cuda_vmm_destroy();
    cuda_window_destroy();
    cuda_array_reset();
    if (cuda_lib) {
        dlclose(cuda_lib);
        cuda_lib = NULL;
    }
}

/*
 * --address-base: cuMemAlloc's memory in [va_base, va_base + va_size).
 * The window holds only that; the driver places the rest of the device
 * memory (managed memory, module globals), hence va_partial.
 */
static bool cuda_window_setup(const struct vgc_executor_config *cfg, char **err)
{
    int ndevices = cfg->ndevices;

    if (cuda_oversubscribed) {
        *err = strdup("cuda executor: --address-base and --oversubscribe do not go together: "
                      "oversubscribed allocations are managed memory, which the driver "
                      "places itself, outside the window");
        return false;
    }
    /* 0 is every device: count them.  vgcd's probe is created so, before
     * anyone knows how many there are; workers are told. */
    if (ndevices == 0 && (real.cuInit(0) != CUDA_SUCCESS || !real.cuDeviceGetCount ||
                          real.cuDeviceGetCount(&ndevices) != CUDA_SUCCESS)) {
        ndevices = 0;
    }
    if (!cuda_window_init(&real, cfg->pool, cfg->va_base, ndevices, err)) {
        return false;
    }
    cuda_exec.va_base = cfg->va_base;
    cuda_exec.va_size = (uint64_t)ndevices * CUDA_WINDOW_PER_DEVICE;
    cuda_exec.va_partial = true;
    cuda_exec.ops.cuMemGetAddressRange_v2 = cuda_mem_get_address_range;
    if (real.cuCtxDestroy_v2) {
        cuda_exec.ops.cuCtxDestroy_v2 = cuda_ctx_destroy;
    }
    /* Window memory can leave the GPU and come back at its address; the
     * rest (managed memory, module globals, what the driver places) stays,
     * and the pool keeps it charged there (swap_size). */
    if (cuda_window_can_swap()) {
        cuda_exec.swap_out = cuda_window_swap_out;
        cuda_exec.swap_in = cuda_window_swap_in;
        cuda_exec.swap_size = cuda_window_resident;
    }
    return true;
}

/* The executor on @driver's functions: the wrapped ones in front. */
static bool cuda_executor_init(const struct vgc_executor_config *cfg,
                               const struct vgc_exec_ops *driver, char **err)
{
    /* A window of an earlier instance (tests make several) goes first,
     * on the driver it was made with. */
    cuda_window_destroy();
    real = *driver;
    if (!real.cuInit || !real.cuMemAlloc_v2 || !real.cuMemFree_v2 ||
        !real.cuMemGetAddressRange_v2 || !real.cuMemGetInfo_v2 ||
        !real.cuMemcpy || !real.cuMemcpyAsync) {
        if (asprintf(err, "the CUDA driver lacks basic entry points") < 0) {
            *err = NULL;
        }
        return false;
    }
    cuda_pool = cfg->pool;
    cuda_exec.ops = real;
    cuda_exec.ops.cuMemAlloc_v2 = cuda_mem_alloc;
    cuda_exec.ops.cuMemAllocManaged = cuda_mem_alloc_managed;
    cuda_exec.ops.cuMemFree_v2 = cuda_mem_free;
    cuda_exec.ops.cuMemGetInfo_v2 = cuda_mem_get_info;
    if (real.cuDeviceTotalMem_v2) {
        cuda_exec.ops.cuDeviceTotalMem_v2 = cuda_device_total_mem;
    }
    cuda_exec.ops.cuMemcpy = cuda_memcpy;
    cuda_exec.ops.cuMemcpyAsync = cuda_memcpy_async;
    cuda_exec.ops.cuPointerGetAttribute = real.cuPointerGetAttribute ?
                                          cuda_pointer_get_attribute : NULL;
    cuda_array_setup(&cuda_exec.ops, &real, cuda_pool, cuda_current_device);
    cuda_exec.module_load = cuda_module_load;
    cuda_exec.library_load = cuda_library_load;
    cuda_exec.destroy = cuda_destroy;
    cuda_exec.va_base = cuda_exec.va_size = 0;
    cuda_exec.va_partial = false;
    /* Only window memory can come back at its address (cuda_window_setup):
     * without a window a preempted process is ended. */
    cuda_exec.swap_out = cuda_exec.swap_in = NULL;
    cuda_exec.swap_size = NULL;
    if (cfg->va_base && !cuda_window_setup(cfg, err)) {
        return false;
    }
    /* The client's own reservations keep out of the window. */
    cuda_vmm_install(&real, cfg->pool, cuda_exec.va_base, cuda_exec.va_size, &cuda_exec.ops);
    return true;
}

struct vgc_executor *vgc_cuda_executor_create(const struct vgc_executor_config *cfg,
                                              char **err)
{
    void (**slot)(void);
    struct vgc_exec_ops driver;

    cuda_lib = cuda_open(err);
    if (!cuda_lib) {
        return NULL;
    }
    slot = (void (**)(void))&driver;
    for (int i = 0; i < VGC_EXEC_OPS_COUNT; i++) {
        slot[i] = (void (*)(void))dlsym(cuda_lib, vgc_exec_ops_names[i]);
    }
    cuda_oversubscribed = cfg->oversubscribe > 0;
    if (!cuda_executor_init(cfg, &driver, err)) {
        cuda_destroy();
        return NULL;
    }
    return &cuda_exec;
}

struct vgc_executor *vgc_cuda_executor_over(const struct vgc_executor_config *cfg,
                                            const struct vgc_exec_ops *driver, char **err)
{
    /* Through the shim (remote), paging is the remote vgcd's business. */
    cuda_oversubscribed = false;
    return cuda_executor_init(cfg, driver, err) ? &cuda_exec : NULL;
}
