/*
 * rt_nvml.c - the NVML shim agrees with the CUDA shim: device count, names,
 * UUIDs, PCI bus ids; memory used follows an allocation; the calls PyTorch
 * requires resolve.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda.h>
#include <dlfcn.h>

#include "rt_check.h"
#include "vgc_nvml.h"

nvmlReturn_t nvmlInit(void);
nvmlReturn_t nvmlInitWithFlags(unsigned int flags);
nvmlReturn_t nvmlShutdown(void);
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *bus_id, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length);
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length);
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci);
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                                     nvmlProcessInfo_t *infos);
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version);

#define SYM(lib, name) dlsym(lib, name)

int main(void)
{
    void *cu = dlopen("libcuda.so.1", RTLD_NOW), *ml = dlopen("libnvidia-ml.so.1", RTLD_NOW);
    CUresult (*cu_init)(unsigned);
    CUresult (*cu_count)(int *);
    CUresult (*cu_name)(char *, int, CUdevice);
    CUresult (*cu_uuid)(CUuuid *, CUdevice);
    CUresult (*cu_busid)(char *, int, CUdevice);
    CUresult (*cu_retain)(CUcontext *, CUdevice);
    CUresult (*cu_set)(CUcontext);
    CUresult (*cu_alloc)(CUdeviceptr *, size_t);
    CUresult (*cu_free)(CUdeviceptr);
    const char *required[] = {
        "nvmlInit", "nvmlInit_v2", "nvmlInitWithFlags", "nvmlDeviceGetCount_v2",
        "nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetUUID", "nvmlDeviceGetHandleByPciBusId_v2",
        "nvmlDeviceGetNvLinkRemoteDeviceType", "nvmlDeviceGetNvLinkRemotePciInfo_v2",
        "nvmlDeviceGetComputeRunningProcesses", "nvmlSystemGetCudaDriverVersion_v2",
    };
    unsigned count = 0;
    int cuda_count = 0, version = 0;

    rt_start();
    if (!cu || !ml) {
        printf("Bail out! dlopen: %s\n", dlerror());
        return 2;
    }
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        RT_OK(SYM(ml, required[i]) != NULL, required[i]);
    }
    *(void **)&cu_init = SYM(cu, "cuInit");
    *(void **)&cu_count = SYM(cu, "cuDeviceGetCount");
    *(void **)&cu_name = SYM(cu, "cuDeviceGetName");
    *(void **)&cu_uuid = SYM(cu, "cuDeviceGetUuid");
    *(void **)&cu_busid = SYM(cu, "cuDeviceGetPCIBusId");
    *(void **)&cu_retain = SYM(cu, "cuDevicePrimaryCtxRetain");
    *(void **)&cu_set = SYM(cu, "cuCtxSetCurrent");
    *(void **)&cu_alloc = SYM(cu, "cuMemAlloc_v2");
    *(void **)&cu_free = SYM(cu, "cuMemFree_v2");

    RT_EQ(nvmlInit(), NVML_SUCCESS, "nvmlInit (v1 symbol, as PyTorch calls it)");
    RT_EQ(nvmlInitWithFlags(0), NVML_SUCCESS, "nvmlInitWithFlags(0) (as pynvml calls it)");
    RT_EQ(cu_init(0), CUDA_SUCCESS, "cuInit");
    RT_EQ(cu_count(&cuda_count), CUDA_SUCCESS, "cuDeviceGetCount");
    RT_EQ(nvmlDeviceGetCount_v2(&count), NVML_SUCCESS, "nvmlDeviceGetCount_v2");
    RT_EQ(count, cuda_count, "NVML and CUDA count the same devices");
    RT_EQ(nvmlSystemGetCudaDriverVersion_v2(&version), NVML_SUCCESS,
          "nvmlSystemGetCudaDriverVersion_v2");
    RT_OK(version >= 13000, "CUDA driver version >= 13000");
    for (unsigned i = 0; i < count; i++) {
        nvmlDevice_t d, again;
        char name[96], cname[96], uuid[96], cuuid[96], busid[32];
        const unsigned char *b;
        CUuuid u;
        nvmlPciInfo_t pci;
        unsigned procs = 0;

        RT_EQ(nvmlDeviceGetHandleByIndex_v2(i, &d), NVML_SUCCESS, "nvmlDeviceGetHandleByIndex_v2");
        RT_EQ(nvmlDeviceGetName(d, name, sizeof(name)), NVML_SUCCESS, "nvmlDeviceGetName");
        cu_name(cname, sizeof(cname), (CUdevice)i);
        RT_OK(!strcmp(name, cname), "name agrees with cuDeviceGetName");
        RT_EQ(nvmlDeviceGetUUID(d, uuid, sizeof(uuid)), NVML_SUCCESS, "nvmlDeviceGetUUID");
        cu_uuid(&u, (CUdevice)i);
        b = (const unsigned char *)u.bytes;
        snprintf(cuuid, sizeof(cuuid),
                 "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                 b[12], b[13], b[14], b[15]);
        RT_OK(!strcmp(uuid, cuuid), "UUID agrees with cuDeviceGetUuid");
        RT_EQ(nvmlDeviceGetHandleByUUID(uuid, &again), NVML_SUCCESS, "nvmlDeviceGetHandleByUUID");
        RT_OK(again == d, "by UUID finds the same device");
        RT_EQ(nvmlDeviceGetPciInfo_v3(d, &pci), NVML_SUCCESS, "nvmlDeviceGetPciInfo_v3");
        cu_busid(busid, sizeof(busid), (CUdevice)i);
        RT_OK(!strcasecmp(pci.busIdLegacy, busid) || strstr(pci.busId, busid + 4) != NULL,
              "PCI bus id agrees with cuDeviceGetPCIBusId");
        RT_EQ(nvmlDeviceGetHandleByPciBusId_v2(busid, &again), NVML_SUCCESS,
              "nvmlDeviceGetHandleByPciBusId_v2(CUDA's bus id)");
        RT_OK(again == d, "by bus id finds the same device");
        RT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(d, &procs, NULL), NVML_SUCCESS,
              "nvmlDeviceGetComputeRunningProcesses_v3");
    }
    if (count) {
        nvmlDevice_t d;
        nvmlMemory_t before, after;
        CUcontext ctx;
        CUdeviceptr p = 0;

        nvmlDeviceGetHandleByIndex_v2(0, &d);
        RT_EQ(cu_retain(&ctx, 0), CUDA_SUCCESS, "cuDevicePrimaryCtxRetain");
        RT_EQ(cu_set(ctx), CUDA_SUCCESS, "cuCtxSetCurrent");
        RT_EQ(nvmlDeviceGetMemoryInfo(d, &before), NVML_SUCCESS, "nvmlDeviceGetMemoryInfo");
        RT_OK(before.total > 0 && before.used + before.free == before.total, "used + free = total");
        RT_EQ(cu_alloc(&p, 64 << 20), CUDA_SUCCESS, "cuMemAlloc 64 MiB");
        RT_EQ(nvmlDeviceGetMemoryInfo(d, &after), NVML_SUCCESS, "nvmlDeviceGetMemoryInfo again");
        RT_OK(after.used >= before.used + (64 << 20), "used memory follows the allocation");
        RT_EQ(cu_free(p), CUDA_SUCCESS, "cuMemFree");
    }
    RT_EQ(nvmlShutdown(), NVML_SUCCESS, "nvmlShutdown");
    RT_EQ(nvmlShutdown(), NVML_SUCCESS, "nvmlShutdown (second init)");
    RT_EQ(nvmlShutdown(), NVML_ERROR_UNINITIALIZED, "a third nvmlShutdown is UNINITIALIZED");
    return rt_done();
}
