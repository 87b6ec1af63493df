/*
 * rt_api.cu - the CUDA runtime API through the shim, no kernels: devices,
 * memory, copies in every direction, memsets, streams, events, pinned
 * memory, pointer attributes and error codes.
 *
 * Built twice by meson: with the static cudart (nvcc's default) and with
 * -cudart shared.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda_runtime.h>
#include <stdint.h>
#include <vector>

#include "rt_check.h"

#define CK(call, what) RT_EQ((call), cudaSuccess, what)

static void fill(std::vector<unsigned char> &v, unsigned seed)
{
    for (size_t i = 0; i < v.size(); i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (unsigned char)(seed >> 16);
    }
}

static void test_devices(void)
{
    int n = -1, dev = -1;
    cudaDeviceProp prop;

    CK(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
    RT_OK(n >= 1, "at least one device");
    CK(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties(0)");
    RT_OK(prop.name[0] != '\0', "device has a name");
    RT_OK(prop.totalGlobalMem > 0, "device has memory");
    RT_OK(prop.major >= 1, "compute capability major >= 1");
    RT_OK(prop.multiProcessorCount >= 1, "at least one multiprocessor");
    RT_OK(prop.warpSize == 32, "warp size 32");
    RT_EQ(cudaGetDeviceProperties(&prop, n), cudaErrorInvalidDevice,
          "cudaGetDeviceProperties(count) is cudaErrorInvalidDevice");
    CK(cudaSetDevice(0), "cudaSetDevice(0)");
    CK(cudaGetDevice(&dev), "cudaGetDevice");
    RT_EQ(dev, 0, "current device is 0");
    RT_EQ(cudaSetDevice(n + 7), cudaErrorInvalidDevice,
          "cudaSetDevice(bad) is cudaErrorInvalidDevice");
    cudaGetLastError();
    int v = 0;
    CK(cudaDeviceGetAttribute(&v, cudaDevAttrMaxThreadsPerBlock, 0), "cudaDeviceGetAttribute");
    RT_OK(v >= 64, "max threads per block");
    int drv = 0, rtv = 0;
    CK(cudaDriverGetVersion(&drv), "cudaDriverGetVersion");
    CK(cudaRuntimeGetVersion(&rtv), "cudaRuntimeGetVersion");
    RT_OK(drv >= rtv, "driver version >= runtime version");
}

static void test_memory(void)
{
    size_t free0 = 0, total = 0, free1 = 0;
    void *p = NULL;

    /* Free memory is shared with other tenants whose allocations may come
     * and go meanwhile: measure until one round sees ours alone. */
    bool dropped = false;
    for (int round = 0; round < 10 && !dropped; round++) {
        if (cudaMemGetInfo(&free0, &total) != cudaSuccess || cudaMalloc(&p, 64 << 20) != cudaSuccess ||
            cudaMemGetInfo(&free1, &total) != cudaSuccess) {
            break;
        }
        dropped = free1 + (64 << 20) <= free0;
        if (round < 9 && !dropped) {
            cudaFree(p);
        }
    }
    RT_OK(total > 0 && free0 <= total, "free <= total");
    RT_OK(p != NULL, "cudaMalloc 64 MiB gave a pointer");
    RT_OK(dropped, "free memory went down by 64 MiB");
    CK(cudaFree(p), "cudaFree");
    CK(cudaFree(NULL), "cudaFree(NULL)");
    void *q = NULL;
    RT_EQ(cudaMalloc(&q, (size_t)1 << 50), cudaErrorMemoryAllocation,
          "cudaMalloc(1 PiB) is cudaErrorMemoryAllocation");
    RT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation, "cudaGetLastError reports it");
    RT_EQ(cudaGetLastError(), cudaSuccess, "and then clears it");
    int local;
    RT_EQ(cudaFree(&local), cudaErrorInvalidValue, "cudaFree(host pointer) is cudaErrorInvalidValue");
    cudaGetLastError();
    void *pitched = NULL;
    size_t pitch = 0;
    CK(cudaMallocPitch(&pitched, &pitch, 1000, 10), "cudaMallocPitch");
    RT_OK(pitch >= 1000, "pitch >= width");
    CK(cudaFree(pitched), "cudaFree(pitched)");
}

static void test_copies(void)
{
    const size_t n = (20 << 20) + 123;      /* over one 16 MiB request */
    std::vector<unsigned char> a(n), b(n), c(n);
    unsigned char *d1 = NULL, *d2 = NULL;

    fill(a, 1);
    CK(cudaMalloc(&d1, n), "cudaMalloc d1");
    CK(cudaMalloc(&d2, n), "cudaMalloc d2");
    CK(cudaMemcpy(d1, a.data(), n, cudaMemcpyHostToDevice), "cudaMemcpy HtoD 20 MiB");
    CK(cudaMemcpy(d2, d1, n, cudaMemcpyDeviceToDevice), "cudaMemcpy DtoD");
    CK(cudaMemcpy(b.data(), d2, n, cudaMemcpyDeviceToHost), "cudaMemcpy DtoH");
    RT_OK(a == b, "HtoD, DtoD, DtoH round trip is bit-exact");
    CK(cudaMemcpy(c.data(), b.data(), n, cudaMemcpyHostToHost), "cudaMemcpy HtoH");
    RT_OK(a == c, "HtoH copy");
    fill(a, 2);
    CK(cudaMemcpy(d1 + 5, a.data(), 4096, cudaMemcpyDefault), "cudaMemcpy Default host->device");
    CK(cudaMemcpy(d2, d1 + 5, 4096, cudaMemcpyDefault), "cudaMemcpy Default device->device");
    CK(cudaMemcpy(b.data(), d2, 4096, cudaMemcpyDefault), "cudaMemcpy Default device->host");
    RT_OK(!memcmp(a.data(), b.data(), 4096), "cudaMemcpyDefault round trip at an odd offset");

    /* Memsets: the whole, then a slice. */
    CK(cudaMemset(d1, 0xab, n), "cudaMemset");
    CK(cudaMemcpy(b.data(), d1, n, cudaMemcpyDeviceToHost), "read back memset");
    bool all = true;
    for (size_t i = 0; i < n; i++) {
        all &= b[i] == 0xab;
    }
    RT_OK(all, "cudaMemset wrote every byte");
    CK(cudaMemset(d1 + 100, 0x11, 50), "cudaMemset slice");
    CK(cudaMemcpy(b.data(), d1, 256, cudaMemcpyDeviceToHost), "read back slice");
    RT_OK(b[99] == 0xab && b[100] == 0x11 && b[149] == 0x11 && b[150] == 0xab,
          "cudaMemset slice bounds");

    /* 2D copies. */
    std::vector<unsigned char> h2(64 * 16);
    fill(h2, 3);
    void *dp = NULL;
    size_t pitch = 0;
    CK(cudaMallocPitch(&dp, &pitch, 64, 16), "cudaMallocPitch for 2D");
    CK(cudaMemcpy2D(dp, pitch, h2.data(), 64, 64, 16, cudaMemcpyHostToDevice), "cudaMemcpy2D HtoD");
    std::vector<unsigned char> r2(64 * 16);
    CK(cudaMemcpy2D(r2.data(), 64, dp, pitch, 64, 16, cudaMemcpyDeviceToHost), "cudaMemcpy2D DtoH");
    RT_OK(h2 == r2, "cudaMemcpy2D round trip");
    cudaFree(dp);

    RT_EQ(cudaMemcpy(d1, a.data(), (size_t)1 << 40, cudaMemcpyHostToDevice), cudaErrorInvalidValue,
          "cudaMemcpy past the allocation is cudaErrorInvalidValue");
    cudaGetLastError();
    CK(cudaFree(d1), "cudaFree d1");
    CK(cudaFree(d2), "cudaFree d2");
}

static void test_streams_events(void)
{
    const size_t n = 1 << 20;
    cudaStream_t s1, s2;
    cudaEvent_t e0, e1, nt;
    unsigned char *h = NULL, *hb = NULL, *d = NULL, *d2 = NULL;
    std::vector<unsigned char> ref(n), pageable(n);
    float ms = -1;

    CK(cudaStreamCreate(&s1), "cudaStreamCreate");
    CK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    unsigned flags = 0;
    CK(cudaStreamGetFlags(s2, &flags), "cudaStreamGetFlags");
    RT_EQ(flags, cudaStreamNonBlocking, "stream flags");
    CK(cudaEventCreate(&e0), "cudaEventCreate");
    CK(cudaEventCreate(&e1), "cudaEventCreate 2");
    CK(cudaEventCreateWithFlags(&nt, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    CK(cudaMallocHost(&h, n), "cudaMallocHost");
    CK(cudaHostAlloc(&hb, n, cudaHostAllocDefault), "cudaHostAlloc");
    CK(cudaMalloc(&d, n), "cudaMalloc");
    CK(cudaMalloc(&d2, n), "cudaMalloc 2");
    fill(ref, 4);
    memcpy(h, ref.data(), n);

    CK(cudaEventRecord(e0, s1), "cudaEventRecord");
    CK(cudaMemcpyAsync(d, h, n, cudaMemcpyHostToDevice, s1), "cudaMemcpyAsync HtoD");
    CK(cudaMemsetAsync(d2, 0x5a, n, s1), "cudaMemsetAsync");
    CK(cudaMemcpyAsync(d2, d, n / 2, cudaMemcpyDeviceToDevice, s1), "cudaMemcpyAsync DtoD");
    CK(cudaMemcpyAsync(hb, d2, n, cudaMemcpyDeviceToHost, s1), "cudaMemcpyAsync DtoH");
    CK(cudaMemcpyAsync(pageable.data(), hb, n, cudaMemcpyHostToHost, s1), "cudaMemcpyAsync HtoH");
    CK(cudaEventRecord(e1, s1), "cudaEventRecord 2");
    CK(cudaEventRecord(nt, s1), "cudaEventRecord (no timing)");
    CK(cudaStreamWaitEvent(s2, e1, 0), "cudaStreamWaitEvent");
    CK(cudaEventSynchronize(e1), "cudaEventSynchronize");
    CK(cudaEventQuery(e1), "cudaEventQuery after synchronize");
    CK(cudaStreamQuery(s1), "cudaStreamQuery after synchronize");
    CK(cudaStreamSynchronize(s1), "cudaStreamSynchronize");
    bool ok = !memcmp(hb, ref.data(), n / 2);
    for (size_t i = n / 2; i < n; i++) {
        ok &= hb[i] == 0x5a;
    }
    RT_OK(ok, "async HtoD, memset, DtoD, DtoH in stream order");
    RT_OK(!memcmp(pageable.data(), hb, n), "async HtoH");
    CK(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime");
    RT_OK(ms >= 0.0f && ms < 60000.0f, "elapsed time is sane");
    RT_EQ(cudaEventElapsedTime(&ms, e0, nt), cudaErrorInvalidResourceHandle,
          "elapsed time with a no-timing event is cudaErrorInvalidResourceHandle");
    cudaGetLastError();

    /* Pageable async copies are synchronous for the host, still correct. */
    fill(ref, 5);
    CK(cudaMemcpyAsync(d, ref.data(), n, cudaMemcpyHostToDevice, s2), "pageable cudaMemcpyAsync HtoD");
    CK(cudaMemcpyAsync(pageable.data(), d, n, cudaMemcpyDeviceToHost, s2), "pageable cudaMemcpyAsync DtoH");
    CK(cudaStreamSynchronize(s2), "cudaStreamSynchronize s2");
    RT_OK(pageable == ref, "pageable async round trip");

    /* The legacy and per-thread default streams. */
    CK(cudaMemcpyAsync(d, h, n, cudaMemcpyHostToDevice, 0), "cudaMemcpyAsync on stream 0");
    CK(cudaMemcpyAsync(hb, d, n, cudaMemcpyDeviceToHost, cudaStreamPerThread),
       "cudaMemcpyAsync on cudaStreamPerThread");
    CK(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    RT_OK(!memcmp(hb, h, n), "default-stream round trip");

    CK(cudaEventDestroy(e0), "cudaEventDestroy");
    CK(cudaEventDestroy(e1), "cudaEventDestroy 2");
    CK(cudaEventDestroy(nt), "cudaEventDestroy 3");
    CK(cudaStreamDestroy(s1), "cudaStreamDestroy");
    CK(cudaStreamDestroy(s2), "cudaStreamDestroy 2");
    CK(cudaFreeHost(h), "cudaFreeHost");
    CK(cudaFreeHost(hb), "cudaFreeHost 2");
    CK(cudaFree(d), "cudaFree");
    CK(cudaFree(d2), "cudaFree 2");
}

static void test_pinned_attributes(void)
{
    const size_t n = 1 << 16;
    void *mapped = NULL, *d = NULL;
    cudaPointerAttributes at;
    std::vector<unsigned char> page(n + 4096);
    unsigned char *reg = (unsigned char *)(((uintptr_t)page.data() + 4095) & ~(uintptr_t)4095);

    CK(cudaHostAlloc(&mapped, n, cudaHostAllocMapped | cudaHostAllocPortable),
       "cudaHostAlloc mapped");
    unsigned flags = 0;
    CK(cudaHostGetFlags(&flags, mapped), "cudaHostGetFlags");
    RT_OK(flags & cudaHostAllocMapped, "host flags say mapped");
    CK(cudaHostRegister(reg, n, cudaHostRegisterDefault), "cudaHostRegister");
    CK(cudaMalloc(&d, n), "cudaMalloc");

    CK(cudaPointerGetAttributes(&at, d), "cudaPointerGetAttributes(device)");
    RT_EQ(at.type, cudaMemoryTypeDevice, "device pointer is cudaMemoryTypeDevice");
    RT_EQ(at.device, 0, "on device 0");
    RT_OK(at.devicePointer == d, "its device pointer is itself");
    CK(cudaPointerGetAttributes(&at, mapped), "cudaPointerGetAttributes(pinned)");
    RT_EQ(at.type, cudaMemoryTypeHost, "pinned memory is cudaMemoryTypeHost");
    RT_OK(at.hostPointer == mapped, "its host pointer is itself");
    CK(cudaPointerGetAttributes(&at, reg), "cudaPointerGetAttributes(registered)");
    RT_EQ(at.type, cudaMemoryTypeHost, "registered memory is cudaMemoryTypeHost");
    int local = 0;
    CK(cudaPointerGetAttributes(&at, &local), "cudaPointerGetAttributes(pageable)");
    RT_EQ(at.type, cudaMemoryTypeUnregistered, "pageable memory is cudaMemoryTypeUnregistered");

    memset(reg, 0x77, n);
    CK(cudaMemcpy(d, reg, n, cudaMemcpyHostToDevice), "HtoD from registered memory");
    CK(cudaMemcpy(mapped, d, n, cudaMemcpyDeviceToHost), "DtoH to mapped memory");
    RT_OK(!memcmp(mapped, reg, n), "registered -> device -> mapped");

    CK(cudaHostUnregister(reg), "cudaHostUnregister");
    RT_EQ(cudaHostUnregister(reg), cudaErrorHostMemoryNotRegistered,
          "second cudaHostUnregister is cudaErrorHostMemoryNotRegistered");
    cudaGetLastError();
    CK(cudaFreeHost(mapped), "cudaFreeHost");
    CK(cudaFree(d), "cudaFree");
}

static void test_reset(void)
{
    void *p = NULL;

    CK(cudaDeviceReset(), "cudaDeviceReset");
    CK(cudaMalloc(&p, 4096), "cudaMalloc after cudaDeviceReset");
    CK(cudaMemset(p, 1, 4096), "cudaMemset after cudaDeviceReset");
    CK(cudaFree(p), "cudaFree after cudaDeviceReset");
    CK(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

int main(void)
{
    rt_start();
    test_devices();
    test_memory();
    test_copies();
    test_streams_events();
    test_pinned_attributes();
    test_reset();
    return rt_done();
}
