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
 *    memory it reports are the pool's where they are smaller.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"
#include "pool.h"

static struct vgc_executor cuda_exec = { .name = "cuda" };
static struct vgc_exec_ops real;        /* the driver's own functions */
static struct vgc_pool *cuda_pool;
static void *cuda_lib;

/*
 * Open the driver at @path (NULL: the host's, "libcuda.so.1", unless
 * VGC_HOST_LIBCUDA names another).  @shim says what is wanted: NVIDIA's
 * driver (false), or this project's shim (true: the remote executor).
 * With LD_LIBRARY_PATH pointing at the shim, dlopen("libcuda.so.1") finds
 * the shim, which would send a GPU host's calls back into vgcd.
 */
static void *cuda_open(const char *path, bool shim, char **err)
{
    const char *name = path ? path : getenv("VGC_HOST_LIBCUDA");
    void *h = dlopen(name ? name : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    const char *why = NULL;

    if (!h) {
        if (asprintf(err, "cannot open %s: %s", shim ? "the libcuda shim" :
                     "the host CUDA driver", dlerror()) < 0) {
            *err = NULL;
        }
        return NULL;
    }
    if (!shim && dlsym(h, "vgc_shim_version")) {
        why = "libcuda.so.1 found first is the virtio-gpu-compute shim, not NVIDIA's "
              "driver (set VGC_HOST_LIBCUDA)";
    } else if (shim && !dlsym(h, "vgc_shim_version")) {
        why = "the library given as the libcuda shim is not the virtio-gpu-compute shim";
    }
    if (why) {
        *err = strdup(why);
        dlclose(h);
        return NULL;
    }
    return h;
}

static CUresult cuda_check_device_memory(CUdeviceptr p)
{
    unsigned int type = 0;

    if (!real.cuPointerGetAttribute ||
        real.cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p) != CUDA_SUCCESS ||
        type != CU_MEMORYTYPE_DEVICE) {
        return CUDA_ERROR_INVALID_VALUE;
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
    if (cuda_pool && !vgc_pool_reserve(cuda_pool, dev, size)) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    res = real.cuMemAlloc_v2(dptr, size);
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
    if (real.cuMemGetAddressRange_v2(&base, &size, p) != CUDA_SUCCESS || base != p) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = real.cuMemFree_v2(p);
    if (res == CUDA_SUCCESS && cuda_pool) {
        vgc_pool_release(cuda_pool, dev, size);
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
    if (cuda_lib) {
        dlclose(cuda_lib);
        cuda_lib = NULL;
    }
}

struct vgc_executor *vgc_cuda_executor_create(const struct vgc_executor_config *cfg,
                                              char **err)
{
    return vgc_cuda_executor_open(cfg, NULL, false, err);
}

struct vgc_executor *vgc_cuda_executor_open(const struct vgc_executor_config *cfg,
                                            const char *path, bool shim, char **err)
{
    void (**slot)(void) = (void (**)(void))&real;

    cuda_lib = cuda_open(path, shim, err);
    if (!cuda_lib) {
        return NULL;
    }
    for (int i = 0; i < VGC_EXEC_OPS_COUNT; i++) {
        slot[i] = (void (*)(void))dlsym(cuda_lib, vgc_exec_ops_names[i]);
    }
    if (!real.cuInit || !real.cuMemAlloc_v2 || !real.cuMemFree_v2 ||
        !real.cuMemGetAddressRange_v2 || !real.cuMemGetInfo_v2 ||
        !real.cuMemcpy || !real.cuMemcpyAsync) {
        if (asprintf(err, "the host CUDA driver lacks basic entry points") < 0) {
            *err = NULL;
        }
        cuda_destroy();
        return NULL;
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
    cuda_exec.module_load = cuda_module_load;
    cuda_exec.library_load = cuda_library_load;
    cuda_exec.destroy = cuda_destroy;
    return &cuda_exec;
}
