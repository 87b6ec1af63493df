/*
 * cuda_window.c - cuMemAlloc's memory at addresses of our choosing.
 *
 * `vgcd --executor remote:A+B` aggregates several vgcds into one driver
 * and routes calls by device address without translating them (kernels
 * keep addresses in their parameters and in memory), so each upstream must
 * hand out its allocations in a window of its own.  NVIDIA's cuMemAlloc
 * chooses addresses itself; its virtual memory management API lets the
 * caller choose.  With `--address-base BASE`, cuMemAlloc becomes:
 *
 *  - once, the whole window [BASE, BASE + ndevices * CUDA_WINDOW_PER_DEVICE)
 *    is reserved with cuMemAddressReserve.  That happens at the first
 *    allocation, not when the executor is created: a worker creates its
 *    executor before its client's cuInit (the driver is not initialised
 *    yet, and initialising it for a client that never allocates costs a
 *    GPU context's worth of time), and a context is current by then.  The
 *    base is only a hint to the driver: a reservation anywhere else is
 *    given back and every allocation fails, with the reason in vgcd's log
 *    (vgcd's start-up probe makes one allocation so that this stops vgcd
 *    itself rather than each client);
 *  - the size is rounded up to the device's allocation granularity and
 *    placed at the first free range of the device's part of the window
 *    that fits (a table of live ranges per device, sorted by address;
 *    nothing still mapped is ever handed out again);
 *  - cuMemCreate makes the memory, cuMemMap puts it there, cuMemSetAccess
 *    lets the device read and write it, and cuMemRelease drops our handle
 *    at once: the mapping holds its own reference, so cuMemUnmap alone
 *    frees the memory when the program frees the allocation;
 *  - the pool is charged the rounded size: that is what the GPU spends.
 *
 * Every allocation costs at least the granularity (2 MiB on current GPUs),
 * where the driver's cuMemAlloc packs small ones together: a program that
 * makes many small allocations spends much more device memory this way.
 *
 * What the driver says about cuMemAlloc memory, this file says about
 * window memory from its table: the range is the size asked for (as the
 * driver reports a cuMemAlloc allocation; the rounding is not the
 * program's business), the context is the one current at the allocation
 * (memory mapped through this API belongs to no context, and the driver's
 * own answer need not be it), the device and the memory type.  A
 * destroyed context's window allocations are freed, as the driver frees a
 * context's cuMemAlloc memory.  Not yet: a primary context reset
 * (cuDevicePrimaryCtxReset) leaves them mapped until freed or until the
 * worker ends.
 *
 * Swapping (vgcd --swap) is what the reservation makes possible: an
 * allocation's memory can be unmapped while its addresses stay reserved
 * and in the table (no new allocation lands there), and new memory mapped
 * at them later.  Out, its bytes are in host memory of its own (lazily
 * backed anonymous mappings, got for all allocations before anything
 * moves); no lookup finds it until it is back.  The copies run in the
 * context the allocation was made in (the device's primary context if
 * that one is gone).  Only the window moves: the rest of a process's
 * device memory stays where the driver put it (cuda_window.h).
 *
 * The window holds what cuMemAlloc hands out and nothing else: managed
 * memory, module globals, pitched allocations stay where the driver puts
 * them.  So the executor calls its window partial (va_partial), and
 * clients ask about addresses outside it instead of taking them for host
 * memory.
 *
 * Written against the CUDA documentation and tested on a fake driver
 * (tests/unit/test_cuda_window.c); tests/gpu/run.sh group `aggregate` is
 * what runs it on a GPU.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cuda_window.h"
#include "pool.h"

/* One live allocation. */
struct cuda_window_range {
    CUdeviceptr base;
    size_t size;                /* as the program asked */
    size_t mapped;              /* rounded up to the granularity: mapped and charged */
    CUcontext ctx;              /* current when it was made */
    /* Swapping: its bytes in host memory (size of them), or NULL; out:
     * unmapped, not charged, its addresses still taken, its bytes in
     * host.  Between the swap functions a range has a copy only when out. */
    void *host;
    bool out;
    bool moved;                 /* changed sides in the swap under way */
};

/* One device's part of the window. */
struct cuda_window_part {
    struct cuda_window_range *r;    /* sorted by base; never overlapping */
    size_t n, cap;
    size_t granularity;             /* 0 until the driver was asked */
    CUcontext primary;              /* retained for a swap's copies, or NULL */
};

static struct {
    const struct vgc_exec_ops *drv;
    struct vgc_pool *pool;
    uint64_t base;
    int ndevices;
    struct cuda_window_part *part;  /* ndevices of them; NULL: no window */
    bool reserved;
    CUresult refusal;               /* the reservation failed: what every allocation says */
} win;

static uint64_t cuda_window_size(void)
{
    return (uint64_t)win.ndevices * CUDA_WINDOW_PER_DEVICE;
}

bool vgc_cuda_window_check(const struct vgc_executor_config *cfg, char **err)
{
    int n = cfg->ndevices;

    if (n < 1 || !cfg->va_base || cfg->va_base % CUDA_WINDOW_ALIGN ||
        cfg->va_base > CUDA_WINDOW_LIMIT ||
        (uint64_t)n > (CUDA_WINDOW_LIMIT - cfg->va_base) / CUDA_WINDOW_PER_DEVICE) {
        if (asprintf(err, "cuda executor: address base %#llx: the window of %d device(s) "
                     "of %#llx bytes each must start on a %llu MiB boundary and end by %#llx",
                     (unsigned long long)cfg->va_base, n, CUDA_WINDOW_PER_DEVICE,
                     CUDA_WINDOW_ALIGN >> 20, CUDA_WINDOW_LIMIT) < 0) {
            *err = NULL;
        }
        return false;
    }
    return true;
}

bool cuda_window_init(const struct vgc_exec_ops *driver, struct vgc_pool *pool,
                      uint64_t base, int ndevices, char **err)
{
    struct vgc_executor_config cfg = { .ndevices = ndevices, .va_base = base };

    if (!vgc_cuda_window_check(&cfg, err)) {
        return false;
    }
    if (!driver->cuMemAddressReserve || !driver->cuMemAddressFree || !driver->cuMemCreate ||
        !driver->cuMemRelease || !driver->cuMemMap || !driver->cuMemUnmap ||
        !driver->cuMemSetAccess || !driver->cuMemGetAllocationGranularity ||
        !driver->cuCtxGetCurrent || !driver->cuCtxGetDevice) {
        if (asprintf(err, "cuda executor: --address-base needs the driver's virtual memory "
                     "management API (cuMemAddressReserve, cuMemCreate, cuMemMap...; "
                     "CUDA 10.2 or later), which this driver lacks") < 0) {
            *err = NULL;
        }
        return false;
    }
    win.part = calloc((size_t)ndevices, sizeof(*win.part));
    if (!win.part) {
        *err = strdup("cuda executor: out of memory");
        return false;
    }
    win.drv = driver;
    win.pool = pool;
    win.base = base;
    win.ndevices = ndevices;
    win.reserved = false;
    win.refusal = CUDA_SUCCESS;
    return true;
}

bool cuda_window_on(void)
{
    return win.part != NULL;
}

bool cuda_window_holds(CUdeviceptr p)
{
    /* Before the reservation the range is not ours: whatever the driver
     * placed there is the driver's to describe. */
    return win.reserved && p - win.base < cuda_window_size();
}

static int cuda_window_device_of(CUdeviceptr p)
{
    return (int)((p - win.base) / CUDA_WINDOW_PER_DEVICE);
}

/* Index of the last range of @pt that starts at or below @p; -1: none. */
static ptrdiff_t cuda_window_below(const struct cuda_window_part *pt, CUdeviceptr p)
{
    size_t lo = 0, hi = pt->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (pt->r[mid].base <= p) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return (ptrdiff_t)lo - 1;
}

/* The allocation that @p (in the window) lies in, as the program sees it:
 * [base, base + size); NULL when none. */
static struct cuda_window_range *cuda_window_find(CUdeviceptr p)
{
    struct cuda_window_part *pt = &win.part[cuda_window_device_of(p)];
    ptrdiff_t i = cuda_window_below(pt, p);

    /* An allocation swapped out is nobody's to touch until it is back. */
    if (i < 0 || p - pt->r[i].base >= pt->r[i].size || pt->r[i].out) {
        return NULL;
    }
    return &pt->r[i];
}

bool cuda_window_allocated(CUdeviceptr p)
{
    return cuda_window_holds(p) && cuda_window_find(p);
}

static void cuda_window_remove(struct cuda_window_part *pt, size_t i)
{
    memmove(&pt->r[i], &pt->r[i + 1], (pt->n - i - 1) * sizeof(pt->r[0]));
    pt->n--;
}

/*
 * Reserve the whole window, once.  The driver takes the base as a hint
 * and may place the reservation elsewhere (something of its own, or of
 * this process, is there already): then the window is refused for good.
 */
static CUresult cuda_window_reserve(void)
{
    CUdeviceptr got = 0;
    CUresult res;

    if (win.reserved || win.refusal != CUDA_SUCCESS) {
        return win.refusal;
    }
    res = win.drv->cuMemAddressReserve(&got, cuda_window_size(), 0, win.base, 0);
    if (res == CUDA_SUCCESS && got != win.base) {
        win.drv->cuMemAddressFree(got, cuda_window_size());
        fprintf(stderr, "vgcd: cuda executor: the driver reserved the address window at "
                "%#llx, not at --address-base %#llx (something is mapped there already); "
                "no allocation can be made: choose another --address-base\n",
                (unsigned long long)got, (unsigned long long)win.base);
        res = CUDA_ERROR_OUT_OF_MEMORY;
    } else if (res != CUDA_SUCCESS) {
        fprintf(stderr, "vgcd: cuda executor: cannot reserve the address window %#llx+%#llx "
                "(--address-base): CUresult %d; no allocation can be made\n",
                (unsigned long long)win.base, (unsigned long long)cuda_window_size(), res);
    }
    if (res != CUDA_SUCCESS) {
        win.refusal = res;
        return res;
    }
    win.reserved = true;
    return CUDA_SUCCESS;
}

static CUmemAllocationProp cuda_window_prop(int dev)
{
    return (CUmemAllocationProp){
        .type = CU_MEM_ALLOCATION_TYPE_PINNED,
        .location = { .type = CU_MEM_LOCATION_TYPE_DEVICE, .id = dev },
    };
}

/* Device @dev's allocation granularity, asked once. */
static CUresult cuda_window_granularity(int dev, size_t *granularity)
{
    struct cuda_window_part *pt = &win.part[dev];
    CUmemAllocationProp prop = cuda_window_prop(dev);
    size_t g = 0;
    CUresult res;

    if (!pt->granularity) {
        res = win.drv->cuMemGetAllocationGranularity(&g, &prop,
                                                      CU_MEM_ALLOC_GRANULARITY_MINIMUM);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        /* Allocations sit at multiples of it from the part's start. */
        if (!g || (g & (g - 1)) || (win.base + (uint64_t)dev * CUDA_WINDOW_PER_DEVICE) % g) {
            fprintf(stderr, "vgcd: cuda executor: device %d allocates in units of %zu bytes, "
                    "which --address-base %#llx is not a multiple of\n", dev, g,
                    (unsigned long long)win.base);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        pt->granularity = g;
    }
    *granularity = pt->granularity;
    return CUDA_SUCCESS;
}

/*
 * The first free range of @need bytes in @dev's part: its address in *@at
 * and where it goes in the table in *@index.  The gaps between live
 * ranges are free; a range stays live until it is unmapped.
 */
static bool cuda_window_find_free(int dev, size_t need, CUdeviceptr *at, size_t *index)
{
    const struct cuda_window_part *pt = &win.part[dev];
    CUdeviceptr cursor = win.base + (uint64_t)dev * CUDA_WINDOW_PER_DEVICE;
    CUdeviceptr end = cursor + CUDA_WINDOW_PER_DEVICE;
    size_t i;

    for (i = 0; i < pt->n; i++) {
        if (pt->r[i].base - cursor >= need) {
            break;
        }
        cursor = pt->r[i].base + pt->r[i].mapped;
    }
    if (i == pt->n && end - cursor < need) {
        return false;
    }
    *at = cursor;
    *index = i;
    return true;
}

/* Room for one more range, before the driver is asked for anything that
 * would have to be undone if there were none. */
static bool cuda_window_room(struct cuda_window_part *pt)
{
    struct cuda_window_range *r;
    size_t cap;

    if (pt->n < pt->cap) {
        return true;
    }
    cap = pt->cap ? pt->cap * 2 : 16;
    r = realloc(pt->r, cap * sizeof(*r));
    if (!r) {
        return false;
    }
    pt->r = r;
    pt->cap = cap;
    return true;
}

/*
 * Back [@at, +@mapped) of device @dev's part with new memory the device
 * may read and write: cuMemCreate, cuMemMap, cuMemSetAccess, and
 * cuMemRelease of our handle at once (the mapping holds its own
 * reference, so that cuMemUnmap alone frees the memory).  On failure
 * nothing is left behind.
 */
static CUresult cuda_window_map(int dev, CUdeviceptr at, size_t mapped)
{
    CUmemAccessDesc access = {
        .location = { .type = CU_MEM_LOCATION_TYPE_DEVICE, .id = dev },
        .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE,
    };
    CUmemAllocationProp prop = cuda_window_prop(dev);
    CUmemGenericAllocationHandle handle = 0;
    CUresult res;

    res = win.drv->cuMemCreate(&handle, mapped, &prop, 0);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    res = win.drv->cuMemMap(at, mapped, 0, handle, 0);
    if (res != CUDA_SUCCESS) {
        goto err_handle;
    }
    res = win.drv->cuMemSetAccess(at, mapped, &access, 1);
    if (res != CUDA_SUCCESS) {
        goto err_map;
    }
    /* From here the mapping alone keeps the memory: cuMemUnmap frees it. */
    res = win.drv->cuMemRelease(handle);
    if (res != CUDA_SUCCESS) {
        goto err_map;           /* our reference is still held: once more below */
    }
    return CUDA_SUCCESS;

err_map:
    win.drv->cuMemUnmap(at, mapped);
err_handle:
    win.drv->cuMemRelease(handle);
    return res;
}

CUresult cuda_window_alloc(CUdeviceptr *dptr, size_t size)
{
    struct cuda_window_part *pt;
    CUcontext ctx = NULL;
    CUdevice dev = 0;
    CUdeviceptr at;
    size_t g, mapped, i;
    CUresult res;

    if (!dptr || size == 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = win.drv->cuCtxGetCurrent(&ctx);
    if (res != CUDA_SUCCESS || !ctx) {
        return res != CUDA_SUCCESS ? res : CUDA_ERROR_INVALID_CONTEXT;
    }
    res = win.drv->cuCtxGetDevice(&dev);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    /* A device past --devices has no part of the window; the pool would
     * refuse it too. */
    if (dev < 0 || dev >= win.ndevices) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    res = cuda_window_reserve();
    if (res == CUDA_SUCCESS) {
        res = cuda_window_granularity(dev, &g);
    }
    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (size > CUDA_WINDOW_PER_DEVICE) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    mapped = (size + g - 1) & ~(g - 1);
    pt = &win.part[dev];
    if (!cuda_window_find_free(dev, mapped, &at, &i) || !cuda_window_room(pt)) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (win.pool && !vgc_pool_reserve(win.pool, dev, mapped)) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    res = cuda_window_map(dev, at, mapped);
    if (res != CUDA_SUCCESS) {
        if (win.pool) {
            vgc_pool_release(win.pool, dev, mapped);
        }
        return res;
    }
    memmove(&pt->r[i + 1], &pt->r[i], (pt->n - i) * sizeof(pt->r[0]));
    pt->r[i] = (struct cuda_window_range){
        .base = at, .size = size, .mapped = mapped, .ctx = ctx,
    };
    pt->n++;
    *dptr = at;
    return CUDA_SUCCESS;
}

/* Host memory for a copy of @size bytes: lazily backed, so that what is
 * got first (before anything moves) costs nothing until it is written. */
static void *cuda_window_host_get(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

static void cuda_window_host_put(struct cuda_window_range *r)
{
    if (r->host) {
        munmap(r->host, r->size);
        r->host = NULL;
    }
}

/* Unmap the @i-th range of device @dev's part, and forget it; one that
 * stays mapped stays in the table, so that its addresses are not reused.
 * One swapped out has only its host copy to free, and nothing charged. */
static CUresult cuda_window_unmap(int dev, size_t i)
{
    struct cuda_window_part *pt = &win.part[dev];
    CUresult res;

    if (pt->r[i].out) {
        cuda_window_host_put(&pt->r[i]);
        cuda_window_remove(pt, i);
        return CUDA_SUCCESS;
    }
    res = win.drv->cuMemUnmap(pt->r[i].base, pt->r[i].mapped);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (win.pool) {
        vgc_pool_release(win.pool, dev, pt->r[i].mapped);
    }
    cuda_window_host_put(&pt->r[i]);
    cuda_window_remove(pt, i);
    return CUDA_SUCCESS;
}

CUresult cuda_window_free(CUdeviceptr p)
{
    int dev = cuda_window_device_of(p);
    struct cuda_window_range *r = cuda_window_find(p);

    if (!r || r->base != p) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return cuda_window_unmap(dev, (size_t)(r - win.part[dev].r));
}

CUresult cuda_window_address_range(CUdeviceptr *base, size_t *size, CUdeviceptr p)
{
    const struct cuda_window_range *r = cuda_window_find(p);

    if (!r) {
        return CUDA_ERROR_NOT_FOUND;
    }
    if (base) {
        *base = r->base;
    }
    if (size) {
        *size = r->size;
    }
    return CUDA_SUCCESS;
}

CUresult cuda_window_pointer_attribute(void *data, CUpointer_attribute attribute,
                                       CUdeviceptr p)
{
    const struct cuda_window_range *r = cuda_window_find(p);

    if (!data || !r) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    switch (attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
        *(CUcontext *)data = r->ctx;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        *(unsigned int *)data = CU_MEMORYTYPE_DEVICE;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        *(CUdeviceptr *)data = p;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
        *(unsigned int *)data = 0;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
        *(int *)data = cuda_window_device_of(p);
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
        *(CUdeviceptr *)data = r->base;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        *(size_t *)data = r->size;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MAPPED:
        *(unsigned int *)data = 1;
        return CUDA_SUCCESS;
    default:
        /* The rest (access flags, handle types, the mapping's own base
         * and size...) the driver knows as well as we do. */
        return win.drv->cuPointerGetAttribute ?
               win.drv->cuPointerGetAttribute(data, attribute, p) : CUDA_ERROR_NOT_SUPPORTED;
    }
}

void cuda_window_context_gone(CUcontext ctx)
{
    for (int dev = 0; win.part && dev < win.ndevices; dev++) {
        struct cuda_window_part *pt = &win.part[dev];

        for (size_t i = pt->n; i-- > 0;) {
            if (pt->r[i].ctx == ctx) {
                cuda_window_unmap(dev, i);
            }
        }
    }
}

/* ---- swapping (vgcd --swap; docs/pool.md "Swapping instead of ending") -------- */

bool cuda_window_can_swap(void)
{
    const struct vgc_exec_ops *d = win.drv;

    return win.part && d->cuMemcpyDtoH_v2 && d->cuMemcpyHtoD_v2 && d->cuCtxPushCurrent_v2 &&
           d->cuCtxPopCurrent_v2 && d->cuCtxSynchronize;
}

uint64_t cuda_window_resident(int dev)
{
    uint64_t sum = 0;

    if (!win.part || dev < 0 || dev >= win.ndevices) {
        return 0;
    }
    for (size_t i = 0; i < win.part[dev].n; i++) {
        sum += win.part[dev].r[i].out ? 0 : win.part[dev].r[i].mapped;
    }
    return sum;
}

/*
 * Make a context of device @dev current for copying @r: the one it was
 * made in (the worker keeps it: a destroyed context's allocations are
 * freed with it), or with @primary the device's primary context, retained
 * until the swap is over.  That is for a primary context released to zero
 * since (its handle stays, the context does not; the window does not
 * follow primary contexts): retaining one that is not active creates it,
 * which costs device memory, so it is only the fallback.
 */
static CUresult cuda_window_enter(int dev, const struct cuda_window_range *r, bool primary)
{
    struct cuda_window_part *pt = &win.part[dev];
    CUresult res;

    if (!primary) {
        return win.drv->cuCtxPushCurrent_v2(r->ctx);
    }
    if (!pt->primary) {
        if (!win.drv->cuDevicePrimaryCtxRetain || !win.drv->cuDevicePrimaryCtxRelease_v2) {
            return CUDA_ERROR_INVALID_CONTEXT;
        }
        res = win.drv->cuDevicePrimaryCtxRetain(&pt->primary, dev);
        if (res != CUDA_SUCCESS) {
            pt->primary = NULL;
            return res;
        }
    }
    return win.drv->cuCtxPushCurrent_v2(pt->primary);
}

static void cuda_window_leave(void)
{
    CUcontext popped = NULL;

    win.drv->cuCtxPopCurrent_v2(&popped);
}

/* The primary contexts retained for the copies of a swap: released. */
static void cuda_window_primaries_drop(void)
{
    for (int dev = 0; dev < win.ndevices; dev++) {
        if (win.part[dev].primary) {
            win.drv->cuDevicePrimaryCtxRelease_v2(dev);
            win.part[dev].primary = NULL;
        }
    }
}

static bool cuda_window_context_error(CUresult res)
{
    return res == CUDA_ERROR_INVALID_CONTEXT || res == CUDA_ERROR_CONTEXT_IS_DESTROYED;
}

/*
 * Copy @r's bytes between the device and its host copy: out (@to_host)
 * once the context's device work is done, in followed by a wait for the
 * copy, so that no kernel of the next call (on a stream that does not
 * wait for the default one) reads the memory before the bytes are there.
 */
static CUresult cuda_window_copy(int dev, const struct cuda_window_range *r, bool to_host)
{
    CUresult res = CUDA_SUCCESS;

    for (int primary = 0; primary < 2; primary++) {
        res = cuda_window_enter(dev, r, primary);
        if (res == CUDA_SUCCESS) {
            if (to_host) {
                res = win.drv->cuCtxSynchronize();
                if (res == CUDA_SUCCESS) {
                    res = win.drv->cuMemcpyDtoH_v2(r->host, r->base, r->size);
                }
            } else {
                res = win.drv->cuMemcpyHtoD_v2(r->base, r->host, r->size);
                if (res == CUDA_SUCCESS) {
                    res = win.drv->cuCtxSynchronize();
                }
            }
            cuda_window_leave();
        }
        if (!cuda_window_context_error(res)) {
            break;
        }
    }
    return res;
}

/* Unmap @r for good or ill in an unwind: if the driver will not, its
 * memory stays mapped (and its bytes in it) until the worker ends. */
static bool cuda_window_unmap_quiet(const struct cuda_window_range *r, const char *why)
{
    CUresult res = win.drv->cuMemUnmap(r->base, r->mapped);

    if (res != CUDA_SUCCESS) {
        fprintf(stderr, "vgcd: cuda executor: cannot unmap %#llx+%#zx %s (CUresult %d); "
                "it stays mapped\n", (unsigned long long)r->base, r->mapped, why, res);
        return false;
    }
    return true;
}

/* Back @r (out) at its address: new memory mapped there and its bytes
 * copied in; its host copy is kept.  On failure it is still out. */
static CUresult cuda_window_back(int dev, struct cuda_window_range *r)
{
    CUresult res = cuda_window_map(dev, r->base, r->mapped);

    if (res != CUDA_SUCCESS) {
        return res;
    }
    res = cuda_window_copy(dev, r, false);
    if (res != CUDA_SUCCESS && !cuda_window_unmap_quiet(r, "after a failed copy back")) {
        r->out = false;         /* mapped after all; its bytes are only in the copy */
    }
    return res;
}

/* Host copies of ranges that are not out: of a swap that did not happen. */
static void cuda_window_drop_copies(void)
{
    for (int dev = 0; dev < win.ndevices; dev++) {
        for (size_t i = 0; i < win.part[dev].n; i++) {
            struct cuda_window_range *r = &win.part[dev].r[i];

            r->moved = false;
            if (!r->out) {
                cuda_window_host_put(r);
            }
        }
    }
    cuda_window_primaries_drop();
}

/*
 * The ranges this swap-out unmapped already, mapped again with their
 * bytes: it failed, and nothing is to have moved.  One that cannot be
 * (short of device memory now) stays out, and says so: the worker ends a
 * process whose swap-out failed.
 */
static void cuda_window_undo_out(void)
{
    for (int dev = 0; dev < win.ndevices; dev++) {
        for (size_t i = 0; i < win.part[dev].n; i++) {
            struct cuda_window_range *r = &win.part[dev].r[i];
            CUresult res;

            if (!r->moved) {
                continue;
            }
            res = cuda_window_back(dev, r);
            if (res == CUDA_SUCCESS) {
                r->out = false;
            } else if (r->out) {
                fprintf(stderr, "vgcd: cuda executor: cannot map %#llx+%#zx again after a "
                        "failed swap-out (CUresult %d); it stays in host memory\n",
                        (unsigned long long)r->base, r->mapped, res);
            }
        }
    }
}

CUresult cuda_window_swap_out(void)
{
    struct cuda_window_range *r;
    CUresult res = CUDA_SUCCESS;
    int dev;
    size_t i;

    /* All the host memory first: short of it, nothing has moved. */
    for (dev = 0; dev < win.ndevices; dev++) {
        for (i = 0; i < win.part[dev].n; i++) {
            r = &win.part[dev].r[i];
            if (!r->out && !(r->host = cuda_window_host_get(r->size))) {
                res = CUDA_ERROR_OUT_OF_MEMORY;
                goto drop;
            }
        }
    }
    /* Every copy next, the device memory untouched: a failure moves
     * nothing either. */
    for (dev = 0; dev < win.ndevices; dev++) {
        for (i = 0; i < win.part[dev].n; i++) {
            r = &win.part[dev].r[i];
            if (!r->out && (res = cuda_window_copy(dev, r, true)) != CUDA_SUCCESS) {
                goto drop;
            }
        }
    }
    /* Then the device memory goes; the reservation keeps the addresses,
     * and the table the ranges, so no allocation is placed there. */
    for (dev = 0; dev < win.ndevices; dev++) {
        for (i = 0; i < win.part[dev].n; i++) {
            r = &win.part[dev].r[i];
            if (r->out) {
                continue;
            }
            res = win.drv->cuMemUnmap(r->base, r->mapped);
            if (res != CUDA_SUCCESS) {
                cuda_window_undo_out();
                goto drop;
            }
            r->out = r->moved = true;
        }
    }
    cuda_window_drop_copies();
    return CUDA_SUCCESS;

drop:
    cuda_window_drop_copies();
    return res;
}

CUresult cuda_window_swap_in(void)
{
    CUresult res = CUDA_SUCCESS;

    for (int dev = 0; dev < win.ndevices && res == CUDA_SUCCESS; dev++) {
        for (size_t i = 0; i < win.part[dev].n && res == CUDA_SUCCESS; i++) {
            struct cuda_window_range *r = &win.part[dev].r[i];

            if (r->out && (res = cuda_window_back(dev, r)) == CUDA_SUCCESS) {
                r->out = false;
                r->moved = true;
            }
        }
    }
    if (res != CUDA_SUCCESS) {
        /* Nothing half back: what came back goes out again (its host
         * copy is still there). */
        for (int dev = 0; dev < win.ndevices; dev++) {
            for (size_t i = 0; i < win.part[dev].n; i++) {
                struct cuda_window_range *r = &win.part[dev].r[i];

                if (r->moved && cuda_window_unmap_quiet(r, "after a failed swap-in")) {
                    r->out = true;
                }
            }
        }
    }
    cuda_window_drop_copies();
    return res;
}

void cuda_window_destroy(void)
{
    for (int dev = 0; win.part && dev < win.ndevices; dev++) {
        struct cuda_window_part *pt = &win.part[dev];

        while (pt->n && cuda_window_unmap(dev, pt->n - 1) == CUDA_SUCCESS) {
        }
        free(pt->r);
    }
    if (win.reserved) {
        win.drv->cuMemAddressFree(win.base, cuda_window_size());
    }
    free(win.part);
    memset(&win, 0, sizeof(win));
}
