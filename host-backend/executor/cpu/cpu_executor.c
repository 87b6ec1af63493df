/*
 * cpu_executor.c - creation and the ops table of the cpu reference executor.
 *
 * See cpu_internal.h for the rules and README.md for what this executor
 * owns.  Only modern ABIs are filled: the legacy 32-bit entry points
 * (PFN_..._v2000 with CUdeviceptr_v1 / unsigned int sizes) stay NULL and
 * so answer CUDA_ERROR_NOT_SUPPORTED.  Per-thread default stream variants
 * (_ptds/_ptsz) share the plain functions: every operation runs at
 * submission, so which default stream is meant makes no difference.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

struct cpu_state cpu_state;

static struct vgc_executor cpu_executor;

static const struct vgc_exec_ops cpu_ops = {
    /* initialisation, driver, devices */
    .cuInit = cpu_init,
    .cuDriverGetVersion = cpu_driver_get_version,
    .cuDeviceGet = cpu_dev_get,
    .cuDeviceGetCount = cpu_dev_get_count,
    .cuDeviceGetName = cpu_dev_get_name,
    .cuDeviceGetUuid = cpu_dev_get_uuid,
    .cuDeviceGetUuid_v2 = cpu_dev_get_uuid,
    .cuDeviceTotalMem_v2 = cpu_dev_total_mem,
    .cuDeviceGetAttribute = cpu_dev_get_attribute,
    .cuDeviceGetProperties = cpu_dev_get_properties,
    .cuDeviceComputeCapability = cpu_dev_compute_capability,
    .cuDeviceGetPCIBusId = cpu_dev_get_pci_bus_id,
    .cuDeviceGetByPCIBusId = cpu_dev_get_by_pci_bus_id,
    .cuDeviceCanAccessPeer = cpu_dev_can_access_peer,
    .cuDeviceGetP2PAttribute = cpu_dev_get_p2p_attribute,
    .cuDeviceGetTexture1DLinearMaxWidth = cpu_dev_get_texture_1d_linear_max_width,

    /* primary contexts */
    .cuDevicePrimaryCtxRetain = cpu_ctx_primary_retain,
    .cuDevicePrimaryCtxRelease = cpu_ctx_primary_release,
    .cuDevicePrimaryCtxRelease_v2 = cpu_ctx_primary_release,
    .cuDevicePrimaryCtxReset = cpu_ctx_primary_reset,
    .cuDevicePrimaryCtxReset_v2 = cpu_ctx_primary_reset,
    .cuDevicePrimaryCtxGetState = cpu_ctx_primary_get_state,
    .cuDevicePrimaryCtxSetFlags = cpu_ctx_primary_set_flags,
    .cuDevicePrimaryCtxSetFlags_v2 = cpu_ctx_primary_set_flags,

    /* contexts */
    .cuCtxCreate_v2 = cpu_ctx_create,
    .cuCtxCreate_v3 = cpu_ctx_create_v3,
    .cuCtxCreate_v4 = cpu_ctx_create_v4,
    .cuCtxDestroy_v2 = cpu_ctx_destroy,
    .cuCtxSetCurrent = cpu_ctx_set_current,
    .cuCtxGetCurrent = cpu_ctx_get_current,
    .cuCtxPushCurrent_v2 = cpu_ctx_push_current,
    .cuCtxPopCurrent_v2 = cpu_ctx_pop_current,
    .cuCtxGetDevice = cpu_ctx_get_device,
    .cuCtxGetDevice_v2 = cpu_ctx_get_device_v2,
    .cuCtxSynchronize = cpu_ctx_synchronize,
    .cuCtxSynchronize_v2 = cpu_ctx_synchronize_v2,
    .cuCtxGetFlags = cpu_ctx_get_flags,
    .cuCtxSetFlags = cpu_ctx_set_flags,
    .cuCtxGetApiVersion = cpu_ctx_get_api_version,
    .cuCtxGetId = cpu_ctx_get_id,
    .cuCtxGetLimit = cpu_ctx_get_limit,
    .cuCtxSetLimit = cpu_ctx_set_limit,
    .cuCtxGetCacheConfig = cpu_ctx_get_cache_config,
    .cuCtxSetCacheConfig = cpu_ctx_set_cache_config,
    .cuCtxGetSharedMemConfig = cpu_ctx_get_shared_mem_config,
    .cuCtxSetSharedMemConfig = cpu_ctx_set_shared_mem_config,
    .cuCtxGetStreamPriorityRange = cpu_ctx_get_stream_priority_range,
    .cuCtxResetPersistingL2Cache = cpu_ctx_reset_persisting_l2_cache,
    .cuCtxRecordEvent = cpu_ctx_record_event,
    .cuCtxWaitEvent = cpu_ctx_wait_event,

    /* memory */
    .cuMemAlloc_v2 = cpu_mem_alloc,
    .cuMemAllocManaged = cpu_mem_alloc_managed,
    .cuMemAllocPitch_v2 = cpu_mem_alloc_pitch,
    .cuMemFree_v2 = cpu_mem_free,
    .cuMemGetInfo_v2 = cpu_mem_get_info,
    .cuMemGetAddressRange_v2 = cpu_mem_get_address_range,
    .cuPointerGetAttribute = cpu_pointer_get_attribute,
    .cuPointerGetAttributes = cpu_pointer_get_attributes,
    .cuPointerSetAttribute = cpu_pointer_set_attribute,

    /* virtual memory management (cpu_vmm.c) */
    .cuMemGetAllocationGranularity = cpu_vmm_granularity,
    .cuMemAddressReserve = cpu_vmm_address_reserve,
    .cuMemAddressFree = cpu_vmm_address_free,
    .cuMemCreate = cpu_vmm_create,
    .cuMemRelease = cpu_vmm_release,
    .cuMemMap = cpu_vmm_map,
    .cuMemUnmap = cpu_vmm_unmap,
    .cuMemSetAccess = cpu_vmm_set_access,
    .cuMemGetAccess = cpu_vmm_get_access,
    .cuMemGetAllocationPropertiesFromHandle = cpu_vmm_get_properties,
    .cuMemRetainAllocationHandle = cpu_vmm_retain,

    .cuMemcpy = cpu_memcpy,
    .cuMemcpy_ptds = cpu_memcpy,
    .cuMemcpyAsync = cpu_memcpy_async,
    .cuMemcpyAsync_ptsz = cpu_memcpy_async,
    .cuMemcpyHtoD_v2 = cpu_memcpy_htod,
    .cuMemcpyHtoD_v2_ptds = cpu_memcpy_htod,
    .cuMemcpyDtoH_v2 = cpu_memcpy_dtoh,
    .cuMemcpyDtoH_v2_ptds = cpu_memcpy_dtoh,
    .cuMemcpyDtoD_v2 = cpu_memcpy_dtod,
    .cuMemcpyDtoD_v2_ptds = cpu_memcpy_dtod,
    .cuMemcpyHtoDAsync_v2 = cpu_memcpy_htod_async,
    .cuMemcpyHtoDAsync_v2_ptsz = cpu_memcpy_htod_async,
    .cuMemcpyDtoHAsync_v2 = cpu_memcpy_dtoh_async,
    .cuMemcpyDtoHAsync_v2_ptsz = cpu_memcpy_dtoh_async,
    .cuMemcpyDtoDAsync_v2 = cpu_memcpy_dtod_async,
    .cuMemcpyDtoDAsync_v2_ptsz = cpu_memcpy_dtod_async,
    .cuMemcpyPeer = cpu_memcpy_peer,
    .cuMemcpyPeer_ptds = cpu_memcpy_peer,
    .cuMemcpyPeerAsync = cpu_memcpy_peer_async,
    .cuMemcpyPeerAsync_ptsz = cpu_memcpy_peer_async,
    .cuMemcpy2D_v2 = cpu_memcpy_2d,
    .cuMemcpy2D_v2_ptds = cpu_memcpy_2d,
    .cuMemcpy2DUnaligned_v2 = cpu_memcpy_2d,
    .cuMemcpy2DUnaligned_v2_ptds = cpu_memcpy_2d,
    .cuMemcpy2DAsync_v2 = cpu_memcpy_2d_async,
    .cuMemcpy2DAsync_v2_ptsz = cpu_memcpy_2d_async,
    .cuMemcpy3D_v2 = cpu_memcpy_3d,
    .cuMemcpy3D_v2_ptds = cpu_memcpy_3d,
    .cuMemcpy3DAsync_v2 = cpu_memcpy_3d_async,
    .cuMemcpy3DAsync_v2_ptsz = cpu_memcpy_3d_async,

    /* arrays, texture and surface objects */
    .cuArrayCreate_v2 = cpu_array_create,
    .cuArray3DCreate_v2 = cpu_array_3d_create,
    .cuArrayDestroy = cpu_array_destroy,
    .cuArrayGetDescriptor_v2 = cpu_array_get_descriptor,
    .cuArray3DGetDescriptor_v2 = cpu_array_3d_get_descriptor,
    .cuMipmappedArrayCreate = cpu_mipmap_create,
    .cuMipmappedArrayGetLevel = cpu_mipmap_get_level,
    .cuMipmappedArrayDestroy = cpu_mipmap_destroy,
    .cuTexObjectCreate = cpu_tex_object_create,
    .cuTexObjectDestroy = cpu_tex_object_destroy,
    .cuTexObjectGetResourceDesc = cpu_tex_object_get_resource_desc,
    .cuTexObjectGetTextureDesc = cpu_tex_object_get_texture_desc,
    .cuSurfObjectCreate = cpu_surf_object_create,
    .cuSurfObjectDestroy = cpu_surf_object_destroy,
    .cuSurfObjectGetResourceDesc = cpu_surf_object_get_resource_desc,

    .cuMemsetD8_v2 = cpu_memset_d8,
    .cuMemsetD8_v2_ptds = cpu_memset_d8,
    .cuMemsetD16_v2 = cpu_memset_d16,
    .cuMemsetD16_v2_ptds = cpu_memset_d16,
    .cuMemsetD32_v2 = cpu_memset_d32,
    .cuMemsetD32_v2_ptds = cpu_memset_d32,
    .cuMemsetD8Async = cpu_memset_d8_async,
    .cuMemsetD8Async_ptsz = cpu_memset_d8_async,
    .cuMemsetD16Async = cpu_memset_d16_async,
    .cuMemsetD16Async_ptsz = cpu_memset_d16_async,
    .cuMemsetD32Async = cpu_memset_d32_async,
    .cuMemsetD32Async_ptsz = cpu_memset_d32_async,
    .cuMemsetD2D8_v2 = cpu_memset_d2d8,
    .cuMemsetD2D8_v2_ptds = cpu_memset_d2d8,
    .cuMemsetD2D16_v2 = cpu_memset_d2d16,
    .cuMemsetD2D16_v2_ptds = cpu_memset_d2d16,
    .cuMemsetD2D32_v2 = cpu_memset_d2d32,
    .cuMemsetD2D32_v2_ptds = cpu_memset_d2d32,
    .cuMemsetD2D8Async = cpu_memset_d2d8_async,
    .cuMemsetD2D8Async_ptsz = cpu_memset_d2d8_async,
    .cuMemsetD2D16Async = cpu_memset_d2d16_async,
    .cuMemsetD2D16Async_ptsz = cpu_memset_d2d16_async,
    .cuMemsetD2D32Async = cpu_memset_d2d32_async,
    .cuMemsetD2D32Async_ptsz = cpu_memset_d2d32_async,

    /* streams */
    .cuStreamCreate = cpu_stream_create,
    .cuStreamCreateWithPriority = cpu_stream_create_with_priority,
    .cuStreamDestroy_v2 = cpu_stream_destroy,
    .cuStreamSynchronize = cpu_stream_synchronize,
    .cuStreamSynchronize_ptsz = cpu_stream_synchronize,
    .cuStreamQuery = cpu_stream_query,
    .cuStreamQuery_ptsz = cpu_stream_query,
    .cuStreamWaitEvent = cpu_stream_wait_event,
    .cuStreamWaitEvent_ptsz = cpu_stream_wait_event,
    .cuStreamGetFlags = cpu_stream_get_flags,
    .cuStreamGetFlags_ptsz = cpu_stream_get_flags,
    .cuStreamGetPriority = cpu_stream_get_priority,
    .cuStreamGetPriority_ptsz = cpu_stream_get_priority,
    .cuStreamGetCtx = cpu_stream_get_ctx,
    .cuStreamGetCtx_ptsz = cpu_stream_get_ctx,
    .cuStreamGetCtx_v2 = cpu_stream_get_ctx_v2,
    .cuStreamGetCtx_v2_ptsz = cpu_stream_get_ctx_v2,
    .cuStreamGetId = cpu_stream_get_id,
    .cuStreamGetId_ptsz = cpu_stream_get_id,
    .cuStreamGetDevice = cpu_stream_get_device,
    .cuStreamGetDevice_ptsz = cpu_stream_get_device,

    /* events */
    .cuEventCreate = cpu_event_create,
    .cuEventDestroy_v2 = cpu_event_destroy,
    .cuEventRecord = cpu_event_record,
    .cuEventRecord_ptsz = cpu_event_record,
    .cuEventRecordWithFlags = cpu_event_record_with_flags,
    .cuEventRecordWithFlags_ptsz = cpu_event_record_with_flags,
    .cuEventQuery = cpu_event_query,
    .cuEventSynchronize = cpu_event_synchronize,
    .cuEventElapsedTime = cpu_event_elapsed_time,
    .cuEventElapsedTime_v2 = cpu_event_elapsed_time,

    /* modules and libraries */
    .cuModuleLoadData = cpu_mod_load_data,
    .cuLinkCreate_v2 = cpu_link_create,
    .cuLinkAddData_v2 = cpu_link_add_data,
    .cuLinkComplete = cpu_link_complete,
    .cuLinkDestroy = cpu_link_destroy,
    .cuModuleLoadDataEx = cpu_mod_load_data_ex,
    .cuModuleLoadFatBinary = cpu_mod_load_data,
    .cuModuleUnload = cpu_mod_unload,
    .cuModuleGetFunction = cpu_mod_get_function,
    .cuModuleGetFunctionCount = cpu_mod_get_function_count,
    .cuModuleEnumerateFunctions = cpu_mod_enumerate_functions,
    .cuModuleGetGlobal_v2 = cpu_mod_get_global,
    .cuModuleGetLoadingMode = cpu_mod_get_loading_mode,
    .cuLibraryLoadData = cpu_lib_load_data,
    .cuLibraryUnload = cpu_lib_unload,
    .cuLibraryGetKernel = cpu_lib_get_kernel,
    .cuLibraryGetKernelCount = cpu_lib_get_kernel_count,
    .cuLibraryEnumerateKernels = cpu_lib_enumerate_kernels,
    .cuLibraryGetModule = cpu_lib_get_module,
    .cuLibraryGetGlobal = cpu_lib_get_global,
    .cuKernelGetFunction = cpu_kernel_get_function,
    .cuKernelGetLibrary = cpu_kernel_get_library,
    .cuKernelGetName = cpu_kernel_get_name,
    .cuKernelGetAttribute = cpu_kernel_get_attribute,
    .cuKernelSetAttribute = cpu_kernel_set_attribute,
    .cuKernelSetCacheConfig = cpu_kernel_set_cache_config,
    .cuKernelGetParamInfo = cpu_kernel_get_param_info,
    .cuFuncGetName = cpu_func_get_name,
    .cuFuncGetAttribute = cpu_func_get_attribute,
    .cuOccupancyMaxActiveBlocksPerMultiprocessor =
        cpu_occupancy_max_active_blocks,
    .cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags =
        cpu_occupancy_max_active_blocks_with_flags,
    .cuOccupancyAvailableDynamicSMemPerBlock =
        cpu_occupancy_available_dyn_smem,
    .cuFuncSetAttribute = cpu_func_set_attribute,
    .cuFuncSetCacheConfig = cpu_func_set_cache_config,
    .cuFuncGetParamInfo = cpu_func_get_param_info,
    .cuFuncGetModule = cpu_func_get_module,
    .cuFuncIsLoaded = cpu_func_is_loaded,
    .cuFuncLoad = cpu_func_load,

    /* launches */
    .cuLaunchKernel = cpu_launch_kernel,
    .cuLaunchKernel_ptsz = cpu_launch_kernel,
    .cuLaunchKernelEx = cpu_launch_kernel_ex,
    .cuLaunchKernelEx_ptsz = cpu_launch_kernel_ex,
};

/* Device printf text of every context, oldest first. */
static size_t cpu_executor_output_drain(char *buf, size_t cap)
{
    return vgc_cpu_printf_drain(NULL, buf, cap);
}

static void cpu_executor_destroy(void)
{
    /* Libraries first: their globals are allocations outside any context. */
    cpu_lib_free_all();
    cpu_ctx_destroy_all();
    cpu_link_destroy_all();
    cpu_array_free_all();
    cpu_vmm_free_all();
    cpu_mem_free_all();
    cpu_launch_reset();
    memset(&cpu_state, 0, sizeof(cpu_state));
    memset(&cpu_executor, 0, sizeof(cpu_executor));
}

/* Store a malloc()ed message in *@err, if the caller wants one. */
static void __attribute__((format(printf, 2, 3)))
cpu_executor_error(char **err, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!err) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    *err = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (*err) {
        va_start(ap, fmt);
        vsnprintf(*err, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
}

bool vgc_cpu_window_check(const struct vgc_executor_config *cfg, char **err)
{
    int ndevices = cfg && cfg->ndevices ? cfg->ndevices : 1;
    uint64_t va_base = cfg && cfg->va_base ? cfg->va_base : CPU_VA_BASE;

    /* Inside the range the guest can reserve (cpu_internal.h says why),
     * on a 64 KiB boundary, as any mapping. */
    if (va_base < CPU_VA_BASE || va_base % (64 << 10) ||
        va_base + (uint64_t)ndevices * CPU_VA_PER_DEVICE > CPU_VA_LIMIT) {
        cpu_executor_error(err, "cpu executor: address base %#llx: the windows of %d "
                           "device(s) of %#llx bytes must lie in [%#llx, %#llx), from a "
                           "64 KiB boundary", (unsigned long long)va_base, ndevices,
                           CPU_VA_PER_DEVICE, CPU_VA_BASE, CPU_VA_LIMIT);
        return false;
    }
    return true;
}

struct vgc_executor *vgc_cpu_executor_create(const struct vgc_executor_config *cfg,
                                             char **err)
{
    int ndevices = cfg && cfg->ndevices ? cfg->ndevices : 1;
    uint64_t mem = cfg && cfg->device_memory ? cfg->device_memory
                                             : CPU_DEFAULT_DEVICE_MEM;
    uint64_t va_base = cfg && cfg->va_base ? cfg->va_base : CPU_VA_BASE;
    int dev;

    if (cpu_state.created) {
        cpu_executor_error(err, "cpu executor: already created in this "
                           "process");
        return NULL;
    }
    if (ndevices < 0 || ndevices > CPU_MAX_DEVICES) {
        cpu_executor_error(err, "cpu executor: %d devices requested, at "
                           "most %d supported", ndevices, CPU_MAX_DEVICES);
        return NULL;
    }
    if (mem > CPU_VA_PER_DEVICE) {
        cpu_executor_error(err, "cpu executor: %llu bytes per device "
                           "requested, at most %llu supported",
                           (unsigned long long)mem, CPU_VA_PER_DEVICE);
        return NULL;
    }
    if (!vgc_cpu_window_check(cfg, err)) {
        return NULL;
    }
    memset(&cpu_state, 0, sizeof(cpu_state));
    cpu_state.va_base = va_base;
    cpu_state.ndevices = ndevices;
    cpu_state.device_memory = mem;
    cpu_state.pool = cfg ? cfg->pool : NULL;
    for (dev = 0; dev < ndevices; dev++) {
        cpu_state.next_va[dev] = va_base + (uint64_t)dev * CPU_VA_PER_DEVICE;
        if (cpu_ctx_primary_alloc(dev) != CUDA_SUCCESS) {
            cpu_ctx_destroy_all();
            memset(&cpu_state, 0, sizeof(cpu_state));
            cpu_executor_error(err, "cpu executor: out of memory");
            return NULL;
        }
    }
    cpu_state.created = true;

    cpu_executor.name = "cpu";
    cpu_executor.ops = cpu_ops;
    cpu_executor.va_base = va_base;
    cpu_executor.va_size = (uint64_t)ndevices * CPU_VA_PER_DEVICE;
    cpu_executor.module_load = cpu_module_load;
    cpu_executor.library_load = cpu_library_load;
    cpu_executor.output_pending = vgc_cpu_printf_pending;
    cpu_executor.output_drain = cpu_executor_output_drain;
    cpu_executor.swap_out = cpu_mem_swap_out;
    cpu_executor.swap_in = cpu_mem_swap_in;
    cpu_executor.destroy = cpu_executor_destroy;
    return &cpu_executor;
}
