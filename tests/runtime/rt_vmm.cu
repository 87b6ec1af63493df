/*
 * rt_vmm.cu - the virtual memory management API the way PyTorch's
 * expandable segments reach it: a runtime program that links no libcuda,
 * takes cuMemCreate and the rest from cudaGetDriverEntryPoint, reserves
 * a large range, maps pieces into it one at a time as it grows, and uses
 * the result as ordinary device memory (cudaMemcpy, cudaMemset, a kernel
 * launched with <<<>>> over all the pieces).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rt_check.h"

typedef CUresult (*pfn_granularity)(size_t *, const CUmemAllocationProp *,
                                    CUmemAllocationGranularity_flags);
typedef CUresult (*pfn_reserve)(CUdeviceptr *, size_t, size_t, CUdeviceptr, unsigned long long);
typedef CUresult (*pfn_addr_free)(CUdeviceptr, size_t);
typedef CUresult (*pfn_create)(CUmemGenericAllocationHandle *, size_t,
                               const CUmemAllocationProp *, unsigned long long);
typedef CUresult (*pfn_release)(CUmemGenericAllocationHandle);
typedef CUresult (*pfn_map)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle,
                            unsigned long long);
typedef CUresult (*pfn_unmap)(CUdeviceptr, size_t);
typedef CUresult (*pfn_set_access)(CUdeviceptr, size_t, const CUmemAccessDesc *, size_t);

__global__ void scale(int n, float a, float *v)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
        v[i] = a * v[i] + 1.0f;
    }
}

static void *entry(const char *name)
{
    void *fn = NULL;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;

    RT_EQ(cudaGetDriverEntryPointByVersion(name, &fn, 12000, cudaEnableDefault, &q),
          cudaSuccess, name);
    RT_OK(fn && q == cudaDriverEntryPointSuccess, name);
    return fn;
}

int main(void)
{
    enum { PIECES = 4 };
    CUmemGenericAllocationHandle h[PIECES];
    CUmemAllocationProp prop;
    CUmemAccessDesc rw;
    CUdeviceptr base = 0;
    size_t gran = 0, n;
    float *host;
    int dev = 0;

    rt_start();
    RT_EQ(cudaSetDevice(0), cudaSuccess, "cudaSetDevice");
    RT_EQ(cudaFree(0), cudaSuccess, "cudaFree(0) makes the context");
    pfn_granularity granularity = (pfn_granularity)entry("cuMemGetAllocationGranularity");
    pfn_reserve reserve = (pfn_reserve)entry("cuMemAddressReserve");
    pfn_addr_free addr_free = (pfn_addr_free)entry("cuMemAddressFree");
    pfn_create create = (pfn_create)entry("cuMemCreate");
    pfn_release release = (pfn_release)entry("cuMemRelease");
    pfn_map map = (pfn_map)entry("cuMemMap");
    pfn_unmap unmap = (pfn_unmap)entry("cuMemUnmap");
    pfn_set_access set_access = (pfn_set_access)entry("cuMemSetAccess");
    if (!granularity || !reserve || !addr_free || !create || !release || !map || !unmap ||
        !set_access) {
        return rt_done();
    }

    memset(&prop, 0, sizeof(prop));
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = dev;
    memset(&rw, 0, sizeof(rw));
    rw.location = prop.location;
    rw.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    CUresult r = granularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED);
    int vmm = -1;

    if (r == CUDA_ERROR_NOT_SUPPORTED) {
        /* An aggregating vgcd does not offer the API, and says so. */
        typedef CUresult (*pfn_attr)(int *, CUdevice_attribute, CUdevice);
        pfn_attr attr = (pfn_attr)entry("cuDeviceGetAttribute");

        RT_EQ(attr ? attr(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, dev)
                   : CUDA_ERROR_NOT_FOUND,
              CUDA_SUCCESS, "CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED");
        RT_EQ(vmm, 0, "the device does not claim the VMM API it lacks");
        printf("# SKIP the VMM API: CUDA_ERROR_NOT_SUPPORTED here\n");
        return rt_done();
    }
    RT_EQ(r, CUDA_SUCCESS, "cuMemGetAllocationGranularity");
    if (!gran) {
        return rt_done();
    }
    /* Much more than is ever mapped, as PyTorch reserves for a segment. */
    RT_EQ(reserve(&base, 32 * gran, 0, 0, 0), CUDA_SUCCESS, "cuMemAddressReserve");
    for (int i = 0; i < PIECES; i++) {
        RT_EQ(create(&h[i], gran, &prop, 0), CUDA_SUCCESS, "cuMemCreate a piece");
        RT_EQ(map(base + i * gran, gran, 0, h[i], 0), CUDA_SUCCESS, "cuMemMap the piece");
        RT_EQ(set_access(base + i * gran, gran, &rw, 1), CUDA_SUCCESS, "cuMemSetAccess");
    }

    n = PIECES * gran / sizeof(float);
    host = (float *)malloc(PIECES * gran);
    for (size_t i = 0; i < n; i++) {
        host[i] = (float)(i % 997);
    }
    float *v = (float *)(uintptr_t)base;
    RT_EQ(cudaMemcpy(v, host, PIECES * gran, cudaMemcpyHostToDevice), cudaSuccess,
          "cudaMemcpy into the pieces");
    scale<<<64, 256>>>((int)n, 2.0f, v);
    RT_EQ(cudaGetLastError(), cudaSuccess, "launch over the pieces");
    RT_EQ(cudaMemset(v + n - 4, 0, 4 * sizeof(float)), cudaSuccess, "cudaMemset its tail");
    RT_EQ(cudaMemcpy(host, v, PIECES * gran, cudaMemcpyDeviceToHost), cudaSuccess,
          "cudaMemcpy out of the pieces");
    int bad = 0;
    for (size_t i = 0; i < n - 4; i++) {
        bad += host[i] != 2.0f * (float)(i % 997) + 1.0f;
    }
    for (size_t i = n - 4; i < n; i++) {
        bad += host[i] != 0.0f;
    }
    RT_EQ(bad, 0, "every element scaled, the tail cleared");
    cudaPointerAttributes attr;
    memset(&attr, 0, sizeof(attr));
    RT_EQ(cudaPointerGetAttributes(&attr, (void *)(uintptr_t)(base + gran + 64)), cudaSuccess,
          "cudaPointerGetAttributes");
    RT_EQ(attr.type, cudaMemoryTypeDevice, "a mapped piece is device memory");

    for (int i = 0; i < PIECES; i++) {
        RT_EQ(release(h[i]), CUDA_SUCCESS, "cuMemRelease");
    }
    RT_EQ(unmap(base, PIECES * gran), CUDA_SUCCESS, "cuMemUnmap every piece at once");
    RT_EQ(addr_free(base, 32 * gran), CUDA_SUCCESS, "cuMemAddressFree");
    free(host);
    return rt_done();
}
