/*
 * vmm.c - the virtual memory management calls whose arguments carry
 * device ordinals or need checking before any executor sees them.
 *
 * cuMemCreate's properties, cuMemGetAccess's location and cuMemSetAccess's
 * descriptors name devices by the tenant's virtual ordinals (devmap.c):
 * each is checked and mapped here, the same way for every executor, and
 * the executor gets its own ordinals and fields it may pass to a real
 * driver as they are.  Addresses and allocation handles are checked by
 * the executor (cpu/cpu_vmm.c, cuda/cuda_vmm.c): only it knows what this
 * process reserved and created.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "vgc_host_args.h"
#include "session.h"
#include "vgc_vmm.h"

/*
 * Check @in and write what the executor may see to @out: pinned device
 * memory on a device of the tenant's, exportable to nothing.  A POSIX file
 * descriptor may be requested (NCCL's ncclMemAlloc and PyTorch's expandable
 * segments always do) but is not passed on: the memory is made without it,
 * and exporting it (cuMemExportToShareableHandle) is not supported, as a
 * descriptor of this host means nothing in the guest.  Win32 and fabric
 * handles, which a program asks for only when the device says it has them
 * (the shim says it has none), are refused.  The compression hint is
 * dropped (apps read the properties back to learn whether they got it),
 * and the guest's pointer for Windows metadata, meaningless here, must be
 * NULL as the driver requires off Windows.
 */
static CUresult vmm_prop_in(struct vgcd_session *s, const CUmemAllocationProp *in,
                            CUmemAllocationProp *out)
{
    CUdevice dev;
    CUresult res;

    if (in->type != CU_MEM_ALLOCATION_TYPE_PINNED) {
        return in->type == CU_MEM_ALLOCATION_TYPE_INVALID ||
               in->type > CU_MEM_ALLOCATION_TYPE_PINNED ?
               CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_SUPPORTED;
    }
    if (in->location.type != CU_MEM_LOCATION_TYPE_DEVICE) {
        /* Host (NUMA) locations exist, but not on this project's devices. */
        return in->location.type >= CU_MEM_LOCATION_TYPE_HOST &&
               in->location.type <= CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT ?
               CUDA_ERROR_NOT_SUPPORTED : CUDA_ERROR_INVALID_VALUE;
    }
    if (in->requestedHandleTypes & ~(unsigned)CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) {
        return in->requestedHandleTypes & ~(unsigned)(CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR |
                                                      CU_MEM_HANDLE_TYPE_WIN32 |
                                                      CU_MEM_HANDLE_TYPE_WIN32_KMT |
                                                      CU_MEM_HANDLE_TYPE_FABRIC) ?
               CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_SUPPORTED;
    }
    if (in->win32HandleMetaData) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (in->allocFlags.gpuDirectRDMACapable > 1) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (in->allocFlags.usage) {
        /* Tile pools (sparse arrays) and decompression: not here. */
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    dev = in->location.id;
    res = vgcd_devmap_in(s, &dev);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    memset(out, 0, sizeof(*out));
    out->type = CU_MEM_ALLOCATION_TYPE_PINNED;
    out->requestedHandleTypes = CU_MEM_HANDLE_TYPE_NONE;
    out->location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    out->location.id = dev;
    out->allocFlags.gpuDirectRDMACapable = in->allocFlags.gpuDirectRDMACapable;
    return CUDA_SUCCESS;
}

/* A device location of the tenant's, mapped to the executor's ordinal. */
static CUresult vmm_location_in(struct vgcd_session *s, const CUmemLocation *in,
                                CUmemLocation *out)
{
    CUdevice dev = in->id;
    CUresult res;

    if (in->type != CU_MEM_LOCATION_TYPE_DEVICE) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = vgcd_devmap_in(s, &dev);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    out->type = CU_MEM_LOCATION_TYPE_DEVICE;
    out->id = dev;
    return CUDA_SUCCESS;
}

CUresult vgcd_cuMemGetAllocationGranularity(struct vgcd_session *s,
                                            struct vgcd_args_cuMemGetAllocationGranularity *a)
{
    CUmemAllocationProp prop;
    CUresult res;

    if (!s->exec->ops.cuMemGetAllocationGranularity) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (a->option != CU_MEM_ALLOC_GRANULARITY_MINIMUM &&
        a->option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = vmm_prop_in(s, a->prop, &prop);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    return s->exec->ops.cuMemGetAllocationGranularity(a->granularity, &prop, a->option);
}

CUresult vgcd_cuMemCreate(struct vgcd_session *s, struct vgcd_args_cuMemCreate *a)
{
    CUmemAllocationProp prop;
    CUresult res;

    if (!s->exec->ops.cuMemCreate) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (a->flags || a->size == 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = vmm_prop_in(s, a->prop, &prop);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    return s->exec->ops.cuMemCreate(a->handle, a->size, &prop, 0);
}

CUresult vgcd_cuMemGetAllocationPropertiesFromHandle(
    struct vgcd_session *s, struct vgcd_args_cuMemGetAllocationPropertiesFromHandle *a)
{
    CUdevice dev;
    CUresult res;

    if (!s->exec->ops.cuMemGetAllocationPropertiesFromHandle) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    res = s->exec->ops.cuMemGetAllocationPropertiesFromHandle(a->prop, a->handle);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    /* The guest sees its own ordinal, and no host pointer. */
    a->prop->win32HandleMetaData = NULL;
    if (a->prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE) {
        dev = a->prop->location.id;
        res = vgcd_devmap_out(s, &dev);
        a->prop->location.id = dev;
    }
    return res;
}

CUresult vgcd_cuMemGetAccess(struct vgcd_session *s, struct vgcd_args_cuMemGetAccess *a)
{
    CUmemLocation loc;
    CUresult res;

    if (!s->exec->ops.cuMemGetAccess) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    res = vmm_location_in(s, a->location, &loc);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    return s->exec->ops.cuMemGetAccess(a->flags, &loc, a->ptr);
}

/*
 * The descriptors arrive unaligned in the request: they are copied, each
 * checked, into an array of their own.  More of them than VGC_VMM_MAX_ACCESS
 * cannot name distinct devices, and bound what one call costs.
 */
CUresult vgcd_cuMemSetAccess(struct vgcd_session *s, struct vgcd_args_cuMemSetAccess *a)
{
    CUmemAccessDesc desc[VGC_VMM_MAX_ACCESS];
    CUresult res;

    if (!s->exec->ops.cuMemSetAccess) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (a->count == 0 || a->count > VGC_VMM_MAX_ACCESS) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    for (size_t i = 0; i < a->count; i++) {
        CUmemAccessDesc d;

        memcpy(&d, (const uint8_t *)a->desc + i * sizeof(d), sizeof(d));
        if (d.flags != CU_MEM_ACCESS_FLAGS_PROT_NONE && d.flags != CU_MEM_ACCESS_FLAGS_PROT_READ &&
            d.flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        res = vmm_location_in(s, &d.location, &desc[i].location);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        desc[i].flags = d.flags;
    }
    return s->exec->ops.cuMemSetAccess(a->ptr, a->size, desc, a->count);
}
