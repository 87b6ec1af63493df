/*
 * mempool.c - memory pools for stream-ordered allocation, kept in the shim.
 *
 * cuMemAllocAsync and cuMemAllocFromPoolAsync allocate at once and
 * cuMemFreeAsync frees once the stream has drained (stream.c), so a pool
 * never holds memory nobody uses: it is an account.  What programs ask of
 * pools -- the device's default and current pool, the release threshold and
 * reuse policies, how much is in use and its high-water mark, trimming --
 * is answered from that account, which is exact: reserved memory equals
 * used memory.
 *
 * Pools are objects of this process; a CUmemoryPool the program passes in
 * is looked up among them before it is used, never dereferenced blindly.
 * Allocations from pools are remembered (sorted by address) so that a free
 * finds its pool.  Locking: one mutex over all of it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vgc_guest_impl.h"
#include "context.h"
#include "mempool.h"

#define POOL_MAX_DEVICES 64

struct CUmemPoolHandle_st {
    int dev;
    bool is_default;
    uint64_t release_threshold;
    int reuse[3];               /* the three CU_MEMPOOL_ATTR_REUSE_* flags */
    uint64_t used, used_high;
    struct CUmemPoolHandle_st *next;    /* all pools of this process */
};

struct pool_alloc {
    CUdeviceptr ptr;
    size_t size;
    CUmemoryPool pool;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct CUmemPoolHandle_st *pools;
static struct CUmemPoolHandle_st *default_pool[POOL_MAX_DEVICES];
static CUmemoryPool current_pool[POOL_MAX_DEVICES];
static struct pool_alloc *allocs;
static size_t nallocs, allocs_cap;

static bool pool_device_valid(CUdevice dev)
{
    return dev < POOL_MAX_DEVICES && vgc_device_valid(dev);
}

/* A new pool on @dev, linked in; NULL when out of memory.  Locked. */
static CUmemoryPool pool_new(int dev, bool is_default)
{
    CUmemoryPool p = calloc(1, sizeof(*p));

    if (p) {
        p->dev = dev;
        p->is_default = is_default;
        p->reuse[0] = p->reuse[1] = p->reuse[2] = 1;   /* the driver's defaults */
        p->next = pools;
        pools = p;
    }
    return p;
}

/* @p if it is one of ours.  Locked. */
static CUmemoryPool pool_lookup(CUmemoryPool p)
{
    for (CUmemoryPool q = pools; q; q = q->next) {
        if (q == p) {
            return q;
        }
    }
    return NULL;
}

/* @dev's default pool, made on first use.  Locked; @dev valid. */
static CUmemoryPool pool_default(CUdevice dev)
{
    if (!default_pool[dev]) {
        default_pool[dev] = pool_new(dev, true);
    }
    return default_pool[dev];
}

/* Index of the first allocation at or above @ptr.  Locked. */
static size_t pool_alloc_index(CUdeviceptr ptr)
{
    size_t lo = 0, hi = nallocs;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (allocs[mid].ptr < ptr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static bool pool_alloc_insert(CUdeviceptr ptr, size_t size, CUmemoryPool pool)
{
    size_t i = pool_alloc_index(ptr);

    if (nallocs == allocs_cap) {
        size_t cap = allocs_cap ? 2 * allocs_cap : 64;
        struct pool_alloc *n = realloc(allocs, cap * sizeof(*n));
        if (!n) {
            return false;
        }
        allocs = n;
        allocs_cap = cap;
    }
    memmove(&allocs[i + 1], &allocs[i], (nallocs - i) * sizeof(*allocs));
    allocs[i] = (struct pool_alloc){ ptr, size, pool };
    nallocs++;
    pool->used += size;
    if (pool->used > pool->used_high) {
        pool->used_high = pool->used;
    }
    return true;
}

void vgc_mempool_forget(CUdeviceptr ptr)
{
    size_t i;

    pthread_mutex_lock(&pool_lock);
    i = pool_alloc_index(ptr);
    if (i < nallocs && allocs[i].ptr == ptr) {
        allocs[i].pool->used -= allocs[i].size;
        memmove(&allocs[i], &allocs[i + 1], (nallocs - i - 1) * sizeof(*allocs));
        nallocs--;
    }
    pthread_mutex_unlock(&pool_lock);
}

CUresult vgc_mempool_alloc(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool)
{
    CUresult res;

    if (!dptr || bytesize == 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!pool) {
        CUdevice dev;
        res = vgc_call_cuCtxGetDevice(&dev);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        res = vgc_impl_cuDeviceGetMemPool(&pool, dev);
        if (res != CUDA_SUCCESS) {
            return res;
        }
    }
    pthread_mutex_lock(&pool_lock);
    if (!pool_lookup(pool)) {
        pthread_mutex_unlock(&pool_lock);
        return CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_unlock(&pool_lock);
    res = vgc_call_cuMemAlloc_v2(dptr, bytesize);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    pthread_mutex_lock(&pool_lock);
    /* The pool may have been destroyed meanwhile: then the memory is simply
     * unaccounted, as the driver would free it with the pool anyway. */
    if (pool_lookup(pool) && !pool_alloc_insert(*dptr, bytesize, pool)) {
        pthread_mutex_unlock(&pool_lock);
        vgc_call_cuMemFree_v2(*dptr);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_unlock(&pool_lock);
    return CUDA_SUCCESS;
}

/* ---- driver entry points ------------------------------------------------------ */

CUresult vgc_impl_cuDeviceGetDefaultMemPool(CUmemoryPool *pool_out, CUdevice dev)
{
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!pool_out) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!pool_device_valid(dev)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    pthread_mutex_lock(&pool_lock);
    *pool_out = pool_default(dev);
    pthread_mutex_unlock(&pool_lock);
    return *pool_out ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult vgc_impl_cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev)
{
    CUresult res = vgc_impl_cuDeviceGetDefaultMemPool(pool, dev);

    if (res == CUDA_SUCCESS) {
        pthread_mutex_lock(&pool_lock);
        if (current_pool[dev]) {
            *pool = current_pool[dev];
        }
        pthread_mutex_unlock(&pool_lock);
    }
    return res;
}

CUresult vgc_impl_cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
    CUresult res = CUDA_SUCCESS;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!pool_device_valid(dev)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    pthread_mutex_lock(&pool_lock);
    if (!pool_lookup(pool) || pool->dev != dev) {
        res = CUDA_ERROR_INVALID_VALUE;
    } else {
        current_pool[dev] = pool;
    }
    pthread_mutex_unlock(&pool_lock);
    return res;
}

CUresult vgc_impl_cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *props)
{
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!pool || !props || props->allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
        props->handleTypes != CU_MEM_HANDLE_TYPE_NONE ||
        props->location.type != CU_MEM_LOCATION_TYPE_DEVICE) {
        return props && props->handleTypes != CU_MEM_HANDLE_TYPE_NONE ?
               CUDA_ERROR_NOT_SUPPORTED : CUDA_ERROR_INVALID_VALUE;
    }
    if (!pool_device_valid(props->location.id)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    pthread_mutex_lock(&pool_lock);
    *pool = pool_new(props->location.id, false);
    pthread_mutex_unlock(&pool_lock);
    return *pool ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

/* A destroyed pool's allocations stay valid until freed (as the driver
 * defers the pool's end); they are no longer accounted anywhere. */
CUresult vgc_impl_cuMemPoolDestroy(CUmemoryPool pool)
{
    CUmemoryPool *pp;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    pthread_mutex_lock(&pool_lock);
    for (pp = &pools; *pp && *pp != pool; pp = &(*pp)->next) {
    }
    if (!*pp || pool->is_default) {
        pthread_mutex_unlock(&pool_lock);
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pp = pool->next;
    if (current_pool[pool->dev] == pool) {
        current_pool[pool->dev] = NULL;
    }
    for (size_t i = 0; i < nallocs;) {
        if (allocs[i].pool == pool) {
            memmove(&allocs[i], &allocs[i + 1], (nallocs - i - 1) * sizeof(*allocs));
            nallocs--;
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&pool_lock);
    free(pool);
    return CUDA_SUCCESS;
}

/* Read (@set false) or write one attribute of @pool.  Locked. */
static CUresult pool_attribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value,
                               bool set)
{
    switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: {
        int *flag = &pool->reuse[attr - CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES];
        if (set) {
            *flag = *(int *)value != 0;
        } else {
            *(int *)value = *flag;
        }
        return CUDA_SUCCESS;
    }
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
        if (set) {
            pool->release_threshold = *(cuuint64_t *)value;
        } else {
            *(cuuint64_t *)value = pool->release_threshold;
        }
        return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT:     /* nothing is kept back */
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT:
        if (set) {
            return CUDA_ERROR_INVALID_VALUE;        /* read-only */
        }
        *(cuuint64_t *)value = pool->used;
        return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
        if (!set) {
            *(cuuint64_t *)value = pool->used_high;
            return CUDA_SUCCESS;
        }
        /* Only a reset to zero is allowed: back to the current level. */
        if (*(cuuint64_t *)value != 0) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        pool->used_high = pool->used;
        return CUDA_SUCCESS;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

static CUresult pool_attribute_locked(CUmemoryPool pool, CUmemPool_attribute attr, void *value,
                                      bool set)
{
    CUresult res;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!value) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&pool_lock);
    res = pool_lookup(pool) ? pool_attribute(pool, attr, value, set) : CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_unlock(&pool_lock);
    return res;
}

CUresult vgc_impl_cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    return pool_attribute_locked(pool, attr, value, true);
}

CUresult vgc_impl_cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    return pool_attribute_locked(pool, attr, value, false);
}

/* Nothing is held beyond what is in use, so there is nothing to trim. */
CUresult vgc_impl_cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep)
{
    CUmemoryPool found;

    (void)minBytesToKeep;
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    pthread_mutex_lock(&pool_lock);
    found = pool_lookup(pool);
    pthread_mutex_unlock(&pool_lock);
    return found ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
