/*
 * cpu_device.c - cuInit and device queries of the cpu reference executor.
 *
 * The devices model an sm_80-class GPU (A100-like numbers) so that
 * libraries choosing code paths by attributes take ordinary ones.  Where
 * the executor cannot do what an attribute advertises (managed memory,
 * host mapping, memory pools, cooperative launch) it says 0.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cpu_internal.h"
#include "../../pool/pool.h"

#define CPU_DEVICE_NAME "vgc CPU reference device"
#define CPU_PCI_BUS_BASE 0x10

CUresult cpu_dev_check(CUdevice dev)
{
    if (!cpu_state.initialized) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (dev < 0 || dev >= cpu_state.ndevices) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    return CUDA_SUCCESS;
}

uint64_t cpu_dev_capacity(int dev)
{
    if (cpu_state.pool) {
        return vgc_pool_capacity(cpu_state.pool, dev);
    }
    return cpu_state.device_memory;
}

uint64_t cpu_dev_free(int dev)
{
    if (cpu_state.pool) {
        return vgc_pool_free(cpu_state.pool, dev);  /* the tenant's limit too */
    }
    return cpu_state.device_memory - cpu_state.local_used[dev];
}

/*
 * Deterministic and distinct per device, so that CUDA_VISIBLE_DEVICES=GPU-
 * <uuid> and NVML agree across runs: "vgccpu", then the RFC 4122 version
 * (4) and variant bits, zeros, and in the last four bytes where the
 * device's address window starts (in units of windows), which also keeps
 * apart the devices of vgcds with different --address-base.
 */
void cpu_dev_uuid(int dev, CUuuid *uuid)
{
    uint32_t window = (uint32_t)((cpu_state.va_base + (uint64_t)dev * CPU_VA_PER_DEVICE) /
                                 CPU_VA_PER_DEVICE);

    memset(uuid, 0, sizeof(*uuid));
    memcpy(uuid->bytes, "vgccpu", 6);
    uuid->bytes[6] = 0x40;
    uuid->bytes[8] = (char)0x80;
    for (int i = 0; i < 4; i++) {
        uuid->bytes[12 + i] = (char)(window >> (24 - 8 * i));
    }
}

CUresult cpu_init(unsigned int flags)
{
    if (flags != 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!cpu_state.created) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    cpu_state.initialized = true;
    return CUDA_SUCCESS;
}

CUresult cpu_driver_get_version(int *version)
{
    if (!version) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *version = CPU_DRIVER_VERSION;
    return CUDA_SUCCESS;
}

CUresult cpu_dev_get(CUdevice *dev, int ordinal)
{
    CPU_CHECK_INIT();
    if (!dev) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (ordinal < 0 || ordinal >= cpu_state.ndevices) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    *dev = ordinal;
    return CUDA_SUCCESS;
}

CUresult cpu_dev_get_count(int *count)
{
    CPU_CHECK_INIT();
    if (!count) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *count = cpu_state.ndevices;
    return CUDA_SUCCESS;
}

CUresult cpu_dev_get_name(char *name, int len, CUdevice dev)
{
    CUresult rc = cpu_dev_check(dev);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!name || len <= 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* Truncated like the driver's: always NUL-terminated. */
    snprintf(name, (size_t)len, "%s", CPU_DEVICE_NAME);
    return CUDA_SUCCESS;
}

CUresult cpu_dev_get_uuid(CUuuid *uuid, CUdevice dev)
{
    CUresult rc = cpu_dev_check(dev);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!uuid) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    cpu_dev_uuid(dev, uuid);
    return CUDA_SUCCESS;
}

CUresult cpu_dev_total_mem(size_t *bytes, CUdevice dev)
{
    CUresult rc = cpu_dev_check(dev);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!bytes) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *bytes = (size_t)cpu_dev_capacity(dev);
    return CUDA_SUCCESS;
}

/*
 * Attribute values that do not depend on the device.  Indexed by
 * CUdevice_attribute; every value in [1, CU_DEVICE_ATTRIBUTE_MAX) is set
 * (the static assert below catches a header that grew new ones).
 */
static const int cpu_dev_attrs[CU_DEVICE_ATTRIBUTE_MAX] = {
    [CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK] = CPU_MAX_THREADS_PER_BLOCK,
    [CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X] = 1024,
    [CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y] = 1024,
    [CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z] = 64,
    [CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X] = 2147483647,
    [CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y] = 65535,
    [CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z] = 65535,
    [CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK] = CPU_SHARED_PER_BLOCK,
    [CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY] = 65536,
    [CU_DEVICE_ATTRIBUTE_WARP_SIZE] = 32,
    [CU_DEVICE_ATTRIBUTE_MAX_PITCH] = 2147483647,
    [CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK] = 65536,
    [CU_DEVICE_ATTRIBUTE_CLOCK_RATE] = 1410000,                 /* kHz */
    [CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT] = 512,
    [CU_DEVICE_ATTRIBUTE_GPU_OVERLAP] = 1,
    [CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT] = 108,
    [CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT] = 0,
    [CU_DEVICE_ATTRIBUTE_INTEGRATED] = 0,
    [CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY] = 0,
    [CU_DEVICE_ATTRIBUTE_COMPUTE_MODE] = CU_COMPUTEMODE_DEFAULT,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_WIDTH] = 131072,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_WIDTH] = 131072,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_HEIGHT] = 65536,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_WIDTH] = 16384,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_HEIGHT] = 16384,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_DEPTH] = 16384,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LAYERED_WIDTH] = 32768,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LAYERED_HEIGHT] = 32768,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LAYERED_LAYERS] = 2048,
    [CU_DEVICE_ATTRIBUTE_SURFACE_ALIGNMENT] = 512,
    [CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS] = 1,
    [CU_DEVICE_ATTRIBUTE_ECC_ENABLED] = 0,
    /* PCI_BUS_ID and MULTI_GPU_BOARD_GROUP_ID: per device, see below */
    [CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID] = 0,
    [CU_DEVICE_ATTRIBUTE_TCC_DRIVER] = 0,
    [CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE] = 1215000,          /* kHz */
    [CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH] = 5120,
    [CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE] = 40 * 1024 * 1024,
    [CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR] = 2048,
    [CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT] = 2,
    [CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING] = 1,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LAYERED_WIDTH] = 32768,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LAYERED_LAYERS] = 2048,
    [CU_DEVICE_ATTRIBUTE_CAN_TEX2D_GATHER] = 1,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_GATHER_WIDTH] = 32768,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_GATHER_HEIGHT] = 32768,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_WIDTH_ALTERNATE] = 8192,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_HEIGHT_ALTERNATE] = 8192,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_DEPTH_ALTERNATE] = 32768,
    [CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID] = 0,
    [CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT] = 32,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURECUBEMAP_WIDTH] = 32768,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURECUBEMAP_LAYERED_WIDTH] = 32768,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURECUBEMAP_LAYERED_LAYERS] = 2046,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE1D_WIDTH] = 32768,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_WIDTH] = 131072,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_HEIGHT] = 65536,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE3D_WIDTH] = 16384,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE3D_HEIGHT] = 16384,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE3D_DEPTH] = 16384,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE1D_LAYERED_WIDTH] = 32768,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE1D_LAYERED_LAYERS] = 2048,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_LAYERED_WIDTH] = 32768,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_LAYERED_HEIGHT] = 32768,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_LAYERED_LAYERS] = 2048,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACECUBEMAP_WIDTH] = 32768,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACECUBEMAP_LAYERED_WIDTH] = 32768,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACECUBEMAP_LAYERED_LAYERS] = 2046,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LINEAR_WIDTH] = 268435456,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LINEAR_WIDTH] = 131072,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LINEAR_HEIGHT] = 65000,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LINEAR_PITCH] = 2097120,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_MIPMAPPED_WIDTH] = 32768,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_MIPMAPPED_HEIGHT] = 32768,
    [CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR] = CPU_CC_MAJOR,
    [CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR] = CPU_CC_MINOR,
    [CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_MIPMAPPED_WIDTH] = 32768,
    [CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED] = 1,
    [CU_DEVICE_ATTRIBUTE_GLOBAL_L1_CACHE_SUPPORTED] = 1,
    [CU_DEVICE_ATTRIBUTE_LOCAL_L1_CACHE_SUPPORTED] = 1,
    [CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR] = 164 * 1024,
    [CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR] = 65536,
    [CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY] = 0,
    [CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD] = 0,
    [CU_DEVICE_ATTRIBUTE_HOST_NATIVE_ATOMIC_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_SINGLE_TO_DOUBLE_PRECISION_PERF_RATIO] = 2,
    [CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS] = 0,
    [CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS] = 0,
    [CU_DEVICE_ATTRIBUTE_COMPUTE_PREEMPTION_SUPPORTED] = 1,
    [CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM] = 0,
    [CU_DEVICE_ATTRIBUTE_CAN_USE_STREAM_MEM_OPS_V1] = 0,
    [CU_DEVICE_ATTRIBUTE_CAN_USE_64_BIT_STREAM_MEM_OPS_V1] = 0,
    [CU_DEVICE_ATTRIBUTE_CAN_USE_STREAM_WAIT_VALUE_NOR_V1] = 0,
    /* No cooperative launch entry points here, so do not advertise them. */
    [CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH] = 0,
    [CU_DEVICE_ATTRIBUTE_COOPERATIVE_MULTI_DEVICE_LAUNCH] = 0,
    [CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN] =
        CPU_SHARED_PER_BLOCK_OPTIN,
    [CU_DEVICE_ATTRIBUTE_CAN_FLUSH_REMOTE_WRITES] = 0,
    [CU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES] = 0,
    [CU_DEVICE_ATTRIBUTE_DIRECT_MANAGED_MEM_ACCESS_FROM_HOST] = 0,
    [CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED] = 1,     /* cpu_vmm.c */
    [CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_WIN32_HANDLE_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_WIN32_KMT_HANDLE_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR] = 32,
    [CU_DEVICE_ATTRIBUTE_GENERIC_COMPRESSION_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE] = 0,
    [CU_DEVICE_ATTRIBUTE_MAX_ACCESS_POLICY_WINDOW_SIZE] = 0,
    [CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WITH_CUDA_VMM_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK] = 1024,
    [CU_DEVICE_ATTRIBUTE_SPARSE_CUDA_ARRAY_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_TIMELINE_SEMAPHORE_INTEROP_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_FLUSH_WRITES_OPTIONS] = 0,
    [CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WRITES_ORDERING] = 0,
    [CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES] = 0,
    [CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH] = 0,
    [CU_DEVICE_ATTRIBUTE_DEFERRED_MAPPING_CUDA_ARRAY_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_CAN_USE_64_BIT_STREAM_MEM_OPS] = 0,
    [CU_DEVICE_ATTRIBUTE_CAN_USE_STREAM_WAIT_VALUE_NOR] = 0,
    [CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_IPC_EVENT_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_MEM_SYNC_DOMAIN_COUNT] = 1,
    [CU_DEVICE_ATTRIBUTE_TENSOR_MAP_ACCESS_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_FABRIC_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_UNIFIED_FUNCTION_POINTERS] = 0,
    [CU_DEVICE_ATTRIBUTE_NUMA_CONFIG] = CU_DEVICE_NUMA_CONFIG_NONE,
    [CU_DEVICE_ATTRIBUTE_NUMA_ID] = -1,
    [CU_DEVICE_ATTRIBUTE_MULTICAST_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_MPS_ENABLED] = 0,
    [CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID] = -1,
    [CU_DEVICE_ATTRIBUTE_D3D12_CIG_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_MEM_DECOMPRESS_ALGORITHM_MASK] = 0,
    [CU_DEVICE_ATTRIBUTE_MEM_DECOMPRESS_MAXIMUM_LENGTH] = 0,
    [CU_DEVICE_ATTRIBUTE_VULKAN_CIG_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_GPU_PCI_DEVICE_ID] = 0,
    [CU_DEVICE_ATTRIBUTE_GPU_PCI_SUBSYSTEM_ID] = 0,
    [CU_DEVICE_ATTRIBUTE_HOST_NUMA_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_HOST_NUMA_MEMORY_POOLS_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_HOST_NUMA_MULTINODE_IPC_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_HOST_MEMORY_POOLS_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_HOST_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_HOST_ALLOC_DMA_BUF_SUPPORTED] = 0,
    [CU_DEVICE_ATTRIBUTE_ONLY_PARTIAL_HOST_NATIVE_ATOMIC_SUPPORTED] = 0,
};

/* Review the table above when NVIDIA adds attributes. */
_Static_assert(CU_DEVICE_ATTRIBUTE_MAX == 148,
               "new CUdevice_attribute values: extend cpu_dev_attrs");

CUresult cpu_dev_get_attribute(int *pi, CUdevice_attribute attrib,
                               CUdevice dev)
{
    CUresult rc = cpu_dev_check(dev);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!pi || (int)attrib <= 0 || (int)attrib >= CU_DEVICE_ATTRIBUTE_MAX) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    switch (attrib) {
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID:
        *pi = CPU_PCI_BUS_BASE + dev;
        break;
    case CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD_GROUP_ID:
        *pi = dev;
        break;
    default:
        *pi = cpu_dev_attrs[attrib];
        break;
    }
    return CUDA_SUCCESS;
}

CUresult cpu_dev_get_properties(CUdevprop *prop, CUdevice dev)
{
    CUresult rc = cpu_dev_check(dev);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!prop) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    memset(prop, 0, sizeof(*prop));
#define A(name) cpu_dev_attrs[CU_DEVICE_ATTRIBUTE_##name]
    prop->maxThreadsPerBlock = A(MAX_THREADS_PER_BLOCK);
    prop->maxThreadsDim[0] = A(MAX_BLOCK_DIM_X);
    prop->maxThreadsDim[1] = A(MAX_BLOCK_DIM_Y);
    prop->maxThreadsDim[2] = A(MAX_BLOCK_DIM_Z);
    prop->maxGridSize[0] = A(MAX_GRID_DIM_X);
    prop->maxGridSize[1] = A(MAX_GRID_DIM_Y);
    prop->maxGridSize[2] = A(MAX_GRID_DIM_Z);
    prop->sharedMemPerBlock = A(MAX_SHARED_MEMORY_PER_BLOCK);
    prop->totalConstantMemory = A(TOTAL_CONSTANT_MEMORY);
    prop->SIMDWidth = A(WARP_SIZE);
    prop->memPitch = A(MAX_PITCH);
    prop->regsPerBlock = A(MAX_REGISTERS_PER_BLOCK);
    prop->clockRate = A(CLOCK_RATE);
    prop->textureAlign = A(TEXTURE_ALIGNMENT);
#undef A
    return CUDA_SUCCESS;
}

CUresult cpu_dev_compute_capability(int *major, int *minor, CUdevice dev)
{
    CUresult rc = cpu_dev_check(dev);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!major || !minor) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *major = CPU_CC_MAJOR;
    *minor = CPU_CC_MINOR;
    return CUDA_SUCCESS;
}

CUresult cpu_dev_get_pci_bus_id(char *bus_id, int len, CUdevice dev)
{
    CUresult rc = cpu_dev_check(dev);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!bus_id || len <= 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* domain:bus:device.function, as cudaDeviceGetPCIBusId prints it */
    snprintf(bus_id, (size_t)len, "%04x:%02x:%02x.0", 0,
             CPU_PCI_BUS_BASE + dev, 0);
    return CUDA_SUCCESS;
}

/*
 * Accepts the forms the driver documents: "domain:bus:device.function",
 * "domain:bus:device" and "bus:device.function", all hexadecimal.
 */
CUresult cpu_dev_get_by_pci_bus_id(CUdevice *dev, const char *bus_id)
{
    unsigned int domain = 0, bus, device, function = 0;
    char tail;
    int i;

    CPU_CHECK_INIT();
    if (!dev || !bus_id) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (sscanf(bus_id, "%x:%x:%x.%x%c", &domain, &bus, &device, &function,
               &tail) == 4) {
        /* full form */
    } else if (domain = 0, function = 0,
               sscanf(bus_id, "%x:%x:%x%c", &domain, &bus, &device,
                      &tail) == 3) {
        /* no function */
    } else if (domain = 0, function = 0,
               sscanf(bus_id, "%x:%x.%x%c", &bus, &device, &function,
                      &tail) == 3) {
        /* no domain */
    } else {
        return CUDA_ERROR_INVALID_VALUE;
    }
    for (i = 0; i < cpu_state.ndevices; i++) {
        if (domain == 0 && bus == (unsigned int)(CPU_PCI_BUS_BASE + i) &&
            device == 0 && function == 0) {
            *dev = i;
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_INVALID_DEVICE;
}

CUresult cpu_dev_can_access_peer(int *can, CUdevice dev, CUdevice peer)
{
    CUresult rc = cpu_dev_check(dev);

    if (rc == CUDA_SUCCESS) {
        rc = cpu_dev_check(peer);
    }
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!can) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *can = 0;
    return CUDA_SUCCESS;
}

CUresult cpu_dev_get_p2p_attribute(int *value, CUdevice_P2PAttribute attrib,
                                   CUdevice src, CUdevice dst)
{
    CUresult rc = cpu_dev_check(src);

    if (rc == CUDA_SUCCESS) {
        rc = cpu_dev_check(dst);
    }
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!value || src == dst) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    switch (attrib) {
    case CU_DEVICE_P2P_ATTRIBUTE_PERFORMANCE_RANK:
    case CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED:
    case CU_DEVICE_P2P_ATTRIBUTE_NATIVE_ATOMIC_SUPPORTED:
    case CU_DEVICE_P2P_ATTRIBUTE_CUDA_ARRAY_ACCESS_SUPPORTED:
        *value = 0;
        return CUDA_SUCCESS;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

CUresult cpu_dev_get_texture_1d_linear_max_width(size_t *width,
                                                 CUarray_format format,
                                                 unsigned num_channels,
                                                 CUdevice dev)
{
    CUresult rc = cpu_dev_check(dev);

    (void)format;
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!width || (num_channels != 1 && num_channels != 2 &&
                   num_channels != 4)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *width = (size_t)
        cpu_dev_attrs[CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LINEAR_WIDTH];
    return CUDA_SUCCESS;
}
