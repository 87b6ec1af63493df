/*
 * cuda_vmm.c - the client's virtual memory management calls (cuMemCreate,
 * cuMemAddressReserve, cuMemMap, ...) on the real driver.
 *
 * The driver trusts its caller: an allocation handle is its own pointer-
 * like value, and cuMemUnmap or cuMemSetAccess work on any address it
 * mapped, the cuda window's (cuda_window.c) included.  So every call is
 * checked against what this client made, kept here (one client per
 * process):
 *  - handles: only values cuMemCreate gave this client, not yet released
 *    (cuMemRetainAllocationHandle adds a reference, as in the driver);
 *  - addresses: cuMemMap, cuMemUnmap, cuMemSetAccess, cuMemGetAccess and
 *    cuMemRetainAllocationHandle take only ranges inside the client's own
 *    reservations, cuMemAddressFree only a whole one without mappings,
 *    cuMemUnmap only whole mappings of the client's;
 *  - memory: cuMemCreate is charged to the pool by its size, and the charge
 *    goes back when the driver frees the memory: once released and
 *    unmapped everywhere.
 * At the end (cuda_vmm_destroy) everything left is unmapped, released and
 * freed.  The driver checks the rest (sizes, alignment, overlaps).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "cuda_vmm.h"
#include "pool.h"

struct vmm_phys {
    CUmemGenericAllocationHandle handle;
    int dev;
    size_t size;
    unsigned refs;
    unsigned maps;
};

struct vmm_range {
    CUdeviceptr base;
    size_t size;
    size_t phys;                /* mappings: index in vmm.phys */
};

static struct {
    struct vgc_exec_ops drv;
    struct vgc_pool *pool;
    uint64_t avoid, avoid_size;
    struct vmm_phys *phys;      /* unordered */
    size_t nphys, cap_phys;
    struct vmm_range *res;      /* reservations, unordered */
    size_t nres, cap_res;
    struct vmm_range *maps;     /* mappings, unordered */
    size_t nmaps, cap_maps;
} vmm;

static bool vmm_grow(void **v, size_t *cap, size_t n, size_t elem)
{
    void *p;
    size_t c;

    if (n < *cap) {
        return true;
    }
    c = *cap ? *cap * 2 : 16;
    p = realloc(*v, c * elem);
    if (!p) {
        return false;
    }
    *v = p;
    *cap = c;
    return true;
}

static struct vmm_phys *vmm_phys(CUmemGenericAllocationHandle h)
{
    for (size_t i = 0; i < vmm.nphys; i++) {
        if (vmm.phys[i].refs && vmm.phys[i].handle == h) {
            return &vmm.phys[i];
        }
    }
    return NULL;
}

/* The client's reservation holding [p, p + len), or NULL. */
static struct vmm_range *vmm_res(CUdeviceptr p, size_t len)
{
    for (size_t i = 0; i < vmm.nres; i++) {
        struct vmm_range *r = &vmm.res[i];

        if (p - r->base < r->size && len <= r->size - (p - r->base)) {
            return r;
        }
    }
    return NULL;
}

static struct vmm_range *vmm_map_at(CUdeviceptr p)
{
    for (size_t i = 0; i < vmm.nmaps; i++) {
        if (p - vmm.maps[i].base < vmm.maps[i].size) {
            return &vmm.maps[i];
        }
    }
    return NULL;
}

bool cuda_vmm_holds_memory(void)
{
    return vmm.nphys > 0;
}

bool cuda_vmm_reserved(CUdeviceptr p)
{
    return vmm_res(p, 1) != NULL;
}

/* Once released and unmapped, the driver freed @ph's memory: the pool
 * gets it back, and the last slot moves into @ph's (its mappings follow). */
static void vmm_phys_maybe_gone(struct vmm_phys *ph)
{
    size_t i = (size_t)(ph - vmm.phys), last = vmm.nphys - 1;

    if (ph->refs || ph->maps) {
        return;
    }
    if (vmm.pool) {
        vgc_pool_release(vmm.pool, ph->dev, ph->size);
    }
    *ph = vmm.phys[last];
    vmm.nphys--;
    for (size_t j = 0; j < vmm.nmaps; j++) {
        if (vmm.maps[j].phys == last) {
            vmm.maps[j].phys = i;
        }
    }
}

/* ---- handles --------------------------------------------------------- */

static CUresult vmm_create(CUmemGenericAllocationHandle *handle, size_t size,
                           const CUmemAllocationProp *prop, unsigned long long flags)
{
    int dev;
    CUresult res;

    if (!handle || !prop || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    dev = prop->location.id;
    if (!vmm_grow((void **)&vmm.phys, &vmm.cap_phys, vmm.nphys, sizeof(*vmm.phys))) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (vmm.pool && !vgc_pool_reserve(vmm.pool, dev, size)) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    res = vmm.drv.cuMemCreate(handle, size, prop, flags);
    if (res != CUDA_SUCCESS) {
        if (vmm.pool) {
            vgc_pool_release(vmm.pool, dev, size);
        }
        return res;
    }
    vmm.phys[vmm.nphys++] = (struct vmm_phys){ .handle = *handle, .dev = dev,
                                               .size = size, .refs = 1 };
    return CUDA_SUCCESS;
}

static CUresult vmm_release(CUmemGenericAllocationHandle handle)
{
    struct vmm_phys *ph = vmm_phys(handle);
    CUresult res;

    if (!ph) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = vmm.drv.cuMemRelease(handle);
    if (res == CUDA_SUCCESS) {
        ph->refs--;
        vmm_phys_maybe_gone(ph);
    }
    return res;
}

static CUresult vmm_get_properties(CUmemAllocationProp *prop, CUmemGenericAllocationHandle handle)
{
    return vmm_phys(handle) ? vmm.drv.cuMemGetAllocationPropertiesFromHandle(prop, handle)
                            : CUDA_ERROR_INVALID_VALUE;
}

static CUresult vmm_retain(CUmemGenericAllocationHandle *handle, void *addr)
{
    struct vmm_range *m = vmm_map_at((CUdeviceptr)(uintptr_t)addr);
    CUmemGenericAllocationHandle h;
    CUresult res;

    if (!handle || !m) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = vmm.drv.cuMemRetainAllocationHandle(&h, addr);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    /* The driver's documentation: the handle that was mapped there. */
    vmm.phys[m->phys].handle = h;
    vmm.phys[m->phys].refs++;
    *handle = h;
    return CUDA_SUCCESS;
}

/* ---- reservations ------------------------------------------------------ */

static CUresult vmm_reserve(CUdeviceptr *ptr, size_t size, size_t alignment, CUdeviceptr addr,
                            unsigned long long flags)
{
    CUresult res;

    if (!ptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!vmm_grow((void **)&vmm.res, &vmm.cap_res, vmm.nres, sizeof(*vmm.res))) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    /* A hint inside the window would take addresses it has not reserved yet. */
    if (vmm.avoid_size && addr - vmm.avoid < vmm.avoid_size) {
        addr = 0;
    }
    res = vmm.drv.cuMemAddressReserve(ptr, size, alignment, addr, flags);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (vmm.avoid_size && *ptr < vmm.avoid + vmm.avoid_size && vmm.avoid < *ptr + size) {
        vmm.drv.cuMemAddressFree(*ptr, size);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    vmm.res[vmm.nres++] = (struct vmm_range){ .base = *ptr, .size = size };
    return CUDA_SUCCESS;
}

/* Our rule where the driver's documentation says nothing (cpu_vmm.c too):
 * a reservation that still holds mappings is not freed. */
static CUresult vmm_address_free(CUdeviceptr ptr, size_t size)
{
    struct vmm_range *r = vmm_res(ptr, size);
    CUresult res;

    if (!r || r->base != ptr || r->size != size) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    for (size_t i = 0; i < vmm.nmaps; i++) {
        if (vmm.maps[i].base - ptr < size) {
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    res = vmm.drv.cuMemAddressFree(ptr, size);
    if (res == CUDA_SUCCESS) {
        *r = vmm.res[--vmm.nres];
    }
    return res;
}

/* ---- mappings ------------------------------------------------------------ */

static CUresult vmm_map(CUdeviceptr ptr, size_t size, size_t offset,
                        CUmemGenericAllocationHandle handle, unsigned long long flags)
{
    struct vmm_phys *ph = vmm_phys(handle);
    CUresult res;

    if (!ph || !size || !vmm_res(ptr, size)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!vmm_grow((void **)&vmm.maps, &vmm.cap_maps, vmm.nmaps, sizeof(*vmm.maps))) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    res = vmm.drv.cuMemMap(ptr, size, offset, handle, flags);
    if (res == CUDA_SUCCESS) {
        vmm.maps[vmm.nmaps++] = (struct vmm_range){ .base = ptr, .size = size,
                                                    .phys = (size_t)(ph - vmm.phys) };
        ph->maps++;
    }
    return res;
}

/*
 * Whole mappings of the client's only: count what [ptr, ptr + size) holds
 * and check it adds up to the range (mappings never overlap).
 */
static bool vmm_whole(CUdeviceptr ptr, size_t size)
{
    size_t covered = 0;

    for (size_t i = 0; i < vmm.nmaps; i++) {
        const struct vmm_range *m = &vmm.maps[i];

        if (m->base - ptr < size) {
            if (m->size > size - (m->base - ptr)) {
                return false;
            }
            covered += m->size;
        } else if (ptr - m->base < m->size) {
            return false;       /* starts inside a mapping */
        }
    }
    return size && covered == size;
}

static CUresult vmm_unmap(CUdeviceptr ptr, size_t size)
{
    CUresult res;
    size_t i = 0;

    if (!vmm_res(ptr, size) || !vmm_whole(ptr, size)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = vmm.drv.cuMemUnmap(ptr, size);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    while (i < vmm.nmaps) {
        struct vmm_range *m = &vmm.maps[i];

        if (m->base - ptr < size) {
            size_t pi = m->phys;

            vmm.phys[pi].maps--;
            *m = vmm.maps[--vmm.nmaps];
            vmm_phys_maybe_gone(&vmm.phys[pi]);
        } else {
            i++;
        }
    }
    return CUDA_SUCCESS;
}

static CUresult vmm_set_access(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                               size_t count)
{
    if (!vmm_res(ptr, size)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return vmm.drv.cuMemSetAccess(ptr, size, desc, count);
}

static CUresult vmm_get_access(unsigned long long *flags, const CUmemLocation *location,
                               CUdeviceptr ptr)
{
    if (!vmm_res(ptr, 1)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return vmm.drv.cuMemGetAccess(flags, location, ptr);
}

/* ---- set up and the end ---------------------------------------------------- */

/* Where the API is not offered (a driver without it, the aggregate), the
 * device does not claim it: NCCL and others ask before they use it. */
static CUresult vmm_unsupported_attribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    CUresult res = vmm.drv.cuDeviceGetAttribute(pi, attrib, dev);

    if (res == CUDA_SUCCESS && pi &&
        attrib == CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED) {
        *pi = 0;
    }
    return res;
}

void cuda_vmm_install(const struct vgc_exec_ops *driver, struct vgc_pool *pool,
                      uint64_t avoid, uint64_t avoid_size, struct vgc_exec_ops *ops)
{
    const struct vgc_exec_ops *d = driver;

    cuda_vmm_destroy();
    vmm.drv = *driver;
    vmm.pool = pool;
    vmm.avoid = avoid;
    vmm.avoid_size = avoid_size;
    ops->cuMemGetAllocationGranularity = d->cuMemGetAllocationGranularity;
    if (!d->cuMemAddressReserve || !d->cuMemAddressFree || !d->cuMemCreate ||
        !d->cuMemRelease || !d->cuMemMap || !d->cuMemUnmap || !d->cuMemSetAccess) {
        /* Without the core of the API, none of it. */
        ops->cuMemAddressReserve = NULL;
        ops->cuMemAddressFree = NULL;
        ops->cuMemCreate = NULL;
        ops->cuMemRelease = NULL;
        ops->cuMemMap = NULL;
        ops->cuMemUnmap = NULL;
        ops->cuMemSetAccess = NULL;
        ops->cuMemGetAccess = NULL;
        ops->cuMemGetAllocationPropertiesFromHandle = NULL;
        ops->cuMemRetainAllocationHandle = NULL;
        ops->cuMemGetAllocationGranularity = NULL;
        if (d->cuDeviceGetAttribute && ops->cuDeviceGetAttribute == d->cuDeviceGetAttribute) {
            ops->cuDeviceGetAttribute = vmm_unsupported_attribute;
        }
        return;
    }
    ops->cuMemAddressReserve = vmm_reserve;
    ops->cuMemAddressFree = vmm_address_free;
    ops->cuMemCreate = vmm_create;
    ops->cuMemRelease = vmm_release;
    ops->cuMemMap = vmm_map;
    ops->cuMemUnmap = vmm_unmap;
    ops->cuMemSetAccess = vmm_set_access;
    ops->cuMemGetAccess = d->cuMemGetAccess ? vmm_get_access : NULL;
    ops->cuMemGetAllocationPropertiesFromHandle =
        d->cuMemGetAllocationPropertiesFromHandle ? vmm_get_properties : NULL;
    ops->cuMemRetainAllocationHandle = d->cuMemRetainAllocationHandle ? vmm_retain : NULL;
}

void cuda_vmm_destroy(void)
{
    /* Device work is over (the worker synchronized, or the process ends). */
    for (size_t i = 0; i < vmm.nmaps; i++) {
        vmm.drv.cuMemUnmap(vmm.maps[i].base, vmm.maps[i].size);
    }
    for (size_t i = 0; i < vmm.nphys; i++) {
        for (unsigned r = 0; r < vmm.phys[i].refs; r++) {
            vmm.drv.cuMemRelease(vmm.phys[i].handle);
        }
        if (vmm.pool) {
            vgc_pool_release(vmm.pool, vmm.phys[i].dev, vmm.phys[i].size);
        }
    }
    for (size_t i = 0; i < vmm.nres; i++) {
        vmm.drv.cuMemAddressFree(vmm.res[i].base, vmm.res[i].size);
    }
    free(vmm.phys);
    free(vmm.res);
    free(vmm.maps);
    memset(&vmm, 0, sizeof(vmm));
}
