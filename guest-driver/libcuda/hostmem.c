/*
 * hostmem.c - pinned host allocations and registrations.
 *
 * A sorted array of non-overlapping ranges under a mutex: lookups are a
 * binary search, and programs pin few, large buffers.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vgc_guest_impl.h"
#include "context.h"
#include "hostmem.h"
#include "mirror.h"

struct hostmem_range {
    uintptr_t base;
    size_t size;
    unsigned flags;
    bool allocated;         /* by cuMemHostAlloc (we unmap it), not registered */
    bool mapped;            /* DEVICEMAP: a mirror (mirror.c) owns the memory */
};

static pthread_mutex_t hm_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hostmem_range *hm;
static size_t hm_count, hm_cap;

/* Index of the first range whose end is above @p. */
static size_t hostmem_index(uintptr_t p)
{
    size_t lo = 0, hi = hm_count;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (hm[mid].base + hm[mid].size <= p) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static CUresult hostmem_insert(uintptr_t base, size_t size, unsigned flags, bool allocated,
                               bool mapped)
{
    size_t i;

    pthread_mutex_lock(&hm_lock);
    i = hostmem_index(base);
    if (i < hm_count && hm[i].base < base + size) {
        pthread_mutex_unlock(&hm_lock);
        return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    }
    if (hm_count == hm_cap) {
        size_t cap = hm_cap ? hm_cap * 2 : 64;
        struct hostmem_range *n = realloc(hm, cap * sizeof(*n));
        if (!n) {
            pthread_mutex_unlock(&hm_lock);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        hm = n;
        hm_cap = cap;
    }
    memmove(&hm[i + 1], &hm[i], (hm_count - i) * sizeof(*hm));
    hm[i] = (struct hostmem_range){ base, size, flags, allocated, mapped };
    hm_count++;
    pthread_mutex_unlock(&hm_lock);
    return CUDA_SUCCESS;
}

/* Remove the range starting exactly at @base; false when there is none. */
static bool hostmem_remove(uintptr_t base, bool allocated, struct hostmem_range *out)
{
    size_t i;

    pthread_mutex_lock(&hm_lock);
    i = hostmem_index(base);
    if (i >= hm_count || hm[i].base != base || hm[i].allocated != allocated) {
        pthread_mutex_unlock(&hm_lock);
        return false;
    }
    *out = hm[i];
    memmove(&hm[i], &hm[i + 1], (hm_count - i - 1) * sizeof(*hm));
    hm_count--;
    pthread_mutex_unlock(&hm_lock);
    return true;
}

bool vgc_hostmem_lookup(const void *p, const void **base, size_t *size, unsigned *flags)
{
    uintptr_t a = (uintptr_t)p;
    bool found = false;
    size_t i;

    pthread_mutex_lock(&hm_lock);
    i = hostmem_index(a);
    if (i < hm_count && hm[i].base <= a) {
        found = true;
        if (base) {
            *base = (const void *)hm[i].base;
        }
        if (size) {
            *size = hm[i].size;
        }
        if (flags) {
            *flags = hm[i].flags;
        }
    }
    pthread_mutex_unlock(&hm_lock);
    return found;
}

/* Pinned memory belongs to a context in the real driver: demand one. */
static CUresult hostmem_need_context(void)
{
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    return vgc_ctx_current_handle() ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

/*
 * Pinned memory is ordinary memory here: every copy goes through the
 * transport anyway.  DEVICEMAP memory is also reached by kernels, so it is
 * a mirror: mapped at the address of a device allocation that backs it.
 */
CUresult vgc_impl_cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
    const unsigned known = CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP |
                           CU_MEMHOSTALLOC_WRITECOMBINED;
    CUresult res = hostmem_need_context();
    bool mapped = Flags & CU_MEMHOSTALLOC_DEVICEMAP;
    void *p;

    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (!pp || bytesize == 0 || (Flags & ~known)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (mapped) {
        CUdeviceptr d;

        res = vgc_mirror_alloc(VGC_MIRROR_HOSTALLOC, bytesize, &d);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        p = (void *)(uintptr_t)d;
    } else {
        p = mmap(NULL, bytesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    res = hostmem_insert((uintptr_t)p, bytesize, Flags, true, mapped);
    if (res != CUDA_SUCCESS) {
        if (mapped) {
            vgc_mirror_free((uintptr_t)p, VGC_MIRROR_HOSTALLOC);
        } else {
            munmap(p, bytesize);
        }
        return res;
    }
    *pp = p;
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuMemAllocHost_v2(void **pp, size_t bytesize)
{
    return vgc_impl_cuMemHostAlloc(pp, bytesize, 0);
}

CUresult vgc_impl_cuMemFreeHost(void *p)
{
    struct hostmem_range r;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!p || !hostmem_remove((uintptr_t)p, true, &r)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (r.mapped) {
        return vgc_mirror_free(r.base, VGC_MIRROR_HOSTALLOC);
    }
    munmap((void *)r.base, r.size);
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuMemHostGetFlags(unsigned int *pFlags, void *p)
{
    unsigned flags;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!pFlags || !vgc_hostmem_lookup(p, NULL, NULL, &flags)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pFlags = flags;
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
    const unsigned known = CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP |
                           CU_MEMHOSTREGISTER_IOMEMORY | CU_MEMHOSTREGISTER_READ_ONLY;
    CUresult res = hostmem_need_context();
    bool mapped;

    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (!p || bytesize == 0 || (Flags & ~known)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (Flags & CU_MEMHOSTREGISTER_IOMEMORY) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    mapped = Flags & CU_MEMHOSTREGISTER_DEVICEMAP;
    res = hostmem_insert((uintptr_t)p, bytesize, Flags, false, mapped);
    if (res == CUDA_SUCCESS && mapped) {
        res = vgc_mirror_register(p, bytesize);
        if (res != CUDA_SUCCESS) {
            struct hostmem_range r;
            hostmem_remove((uintptr_t)p, false, &r);
        }
    }
    return res;
}

CUresult vgc_impl_cuMemHostUnregister(void *p)
{
    struct hostmem_range r;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!p || !hostmem_remove((uintptr_t)p, false, &r)) {
        return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
    }
    return r.mapped ? vgc_mirror_free(r.base, VGC_MIRROR_REGISTERED) : CUDA_SUCCESS;
}

/* The device address of mapped pinned memory: its mirror's device copy. */
CUresult vgc_impl_cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags)
{
    enum vgc_mirror_kind kind;
    uintptr_t host;
    CUdeviceptr dev;
    size_t size;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!pdptr || !p || Flags != 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!vgc_mirror_find((uintptr_t)p, &kind, &host, &dev, &size) ||
        kind == VGC_MIRROR_MANAGED) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pdptr = dev + ((uintptr_t)p - host);
    return CUDA_SUCCESS;
}
