/*
 * nvml.c - libnvidia-ml.so.1 for virtio-gpu-compute guests.
 *
 * NVML answers from the same source as CUDA: it loads the shim
 * (libcuda.so.1) and asks it, so names, UUIDs and PCI ids are those the
 * CUDA driver API reports (CUDA_VISIBLE_DEVICES=GPU-<uuid> relies on it),
 * and memory is what the backend accounts for the virtual device.
 * Utilization and the processes on a device come from the host too,
 * through the shim's private export table (vgc_private.h), so this library
 * needs no symbol NVIDIA's libcuda.so.1 does not export.  What the backend
 * does not know (temperature, power, clocks) is NOT_SUPPORTED, as NVML
 * answers for a GPU without that sensor.
 *
 * Covers what PyTorch, pynvml and vgc-smi call; see docs/compatibility.md.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vgc_nvml.h"
#include "vgc_private.h"

#define NVML_EXPORT __attribute__((visibility("default")))
#define NVML_MAX_DEVICES 64

struct vgc_nvml_device {
    int index;
    CUdevice dev;
    char name[96];
    char uuid[48];              /* GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx */
    nvmlPciInfo_t pci;
    int cc_major, cc_minor;
    unsigned long long total;
};

static struct {
    pthread_mutex_t lock;
    int refs;                   /* nvmlInit calls not yet shut down */
    void *lib;
    int count;
    int driver_version;
    struct vgc_nvml_device dev[NVML_MAX_DEVICES];
    CUresult (*cuInit)(unsigned);
    CUresult (*cuDriverGetVersion)(int *);
    CUresult (*cuDeviceGetCount)(int *);
    CUresult (*cuDeviceGet)(CUdevice *, int);
    CUresult (*cuDeviceGetName)(char *, int, CUdevice);
    CUresult (*cuDeviceGetUuid)(CUuuid *, CUdevice);
    CUresult (*cuDeviceGetAttribute)(int *, CUdevice_attribute, CUdevice);
    CUresult (*cuDeviceTotalMem)(size_t *, CUdevice);
    CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
    CUresult (*cuDevicePrimaryCtxRelease)(CUdevice);
    CUresult (*cuCtxPushCurrent)(CUcontext);
    CUresult (*cuCtxPopCurrent)(CUcontext *);
    CUresult (*cuMemGetInfo)(size_t *, size_t *);
    CUresult (*cuGetExportTable)(const void **, const CUuuid *);
    /* From the shim's private table; NULL with a shim that has none. */
    CUresult (*device_status)(CUdevice, struct vgc_device_status *, struct vgc_process *,
                              unsigned int);
    CUresult (*device_memory)(CUdevice, uint64_t *, uint64_t *);
} nv = { .lock = PTHREAD_MUTEX_INITIALIZER };

static bool nvml_sym(void **out, const char *name)
{
    *out = dlsym(nv.lib, name);
    return *out != NULL;
}

/* The shim's private table, when this libcuda.so.1 is one that has it. */
static void nvml_private(void)
{
    static const CUuuid id = { VGC_PRIVATE_TABLE_UUID };
    const struct vgc_private_table *t = NULL;

    nv.device_status = NULL;
    nv.device_memory = NULL;
    if (nv.cuGetExportTable((const void **)&t, &id) != CUDA_SUCCESS || !t) {
        return;
    }
    if (t->size >= offsetof(struct vgc_private_table, device_status) +
                   sizeof(t->device_status)) {
        nv.device_status = t->device_status;
    }
    if (t->size >= offsetof(struct vgc_private_table, device_memory) +
                   sizeof(t->device_memory)) {
        nv.device_memory = t->device_memory;
    }
}

static nvmlReturn_t nvml_load(void)
{
    bool ok = true;

    nv.lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!nv.lib) {
        return NVML_ERROR_LIBRARY_NOT_FOUND;
    }
    ok &= nvml_sym((void **)&nv.cuInit, "cuInit");
    ok &= nvml_sym((void **)&nv.cuDriverGetVersion, "cuDriverGetVersion");
    ok &= nvml_sym((void **)&nv.cuDeviceGetCount, "cuDeviceGetCount");
    ok &= nvml_sym((void **)&nv.cuDeviceGet, "cuDeviceGet");
    ok &= nvml_sym((void **)&nv.cuDeviceGetName, "cuDeviceGetName");
    ok &= nvml_sym((void **)&nv.cuDeviceGetUuid, "cuDeviceGetUuid");
    ok &= nvml_sym((void **)&nv.cuDeviceGetAttribute, "cuDeviceGetAttribute");
    ok &= nvml_sym((void **)&nv.cuDeviceTotalMem, "cuDeviceTotalMem_v2");
    ok &= nvml_sym((void **)&nv.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    ok &= nvml_sym((void **)&nv.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    ok &= nvml_sym((void **)&nv.cuCtxPushCurrent, "cuCtxPushCurrent_v2");
    ok &= nvml_sym((void **)&nv.cuCtxPopCurrent, "cuCtxPopCurrent_v2");
    ok &= nvml_sym((void **)&nv.cuMemGetInfo, "cuMemGetInfo_v2");
    ok &= nvml_sym((void **)&nv.cuGetExportTable, "cuGetExportTable");
    if (!ok) {
        dlclose(nv.lib);
        nv.lib = NULL;
        return NVML_ERROR_LIBRARY_NOT_FOUND;
    }
    nvml_private();
    return NVML_SUCCESS;
}

/* Learn every device once, at the first nvmlInit. */
static nvmlReturn_t nvml_discover(void)
{
    if (nv.cuInit(0) != CUDA_SUCCESS || nv.cuDeviceGetCount(&nv.count) != CUDA_SUCCESS) {
        return NVML_ERROR_DRIVER_NOT_LOADED;
    }
    if (nv.count > NVML_MAX_DEVICES) {
        nv.count = NVML_MAX_DEVICES;
    }
    nv.cuDriverGetVersion(&nv.driver_version);
    for (int i = 0; i < nv.count; i++) {
        struct vgc_nvml_device *d = &nv.dev[i];
        CUuuid u;
        int domain = 0, bus = 0, device = 0;
        size_t total = 0;
        const unsigned char *b = (const unsigned char *)u.bytes;

        memset(d, 0, sizeof(*d));
        d->index = i;
        if (nv.cuDeviceGet(&d->dev, i) != CUDA_SUCCESS ||
            nv.cuDeviceGetName(d->name, sizeof(d->name), d->dev) != CUDA_SUCCESS ||
            nv.cuDeviceGetUuid(&u, d->dev) != CUDA_SUCCESS) {
            return NVML_ERROR_UNKNOWN;
        }
        snprintf(d->uuid, sizeof(d->uuid),
                 "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                 b[12], b[13], b[14], b[15]);
        nv.cuDeviceGetAttribute(&domain, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, d->dev);
        nv.cuDeviceGetAttribute(&bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, d->dev);
        nv.cuDeviceGetAttribute(&device, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, d->dev);
        nv.cuDeviceGetAttribute(&d->cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                                d->dev);
        nv.cuDeviceGetAttribute(&d->cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                                d->dev);
        nv.cuDeviceTotalMem(&total, d->dev);
        d->total = total;
        d->pci.domain = (unsigned)domain;
        d->pci.bus = (unsigned)bus;
        d->pci.device = (unsigned)device;
        /* (device id << 16) | vendor id: the backend does not tell the
         * model's device id, so only NVIDIA's vendor id is set. */
        d->pci.pciDeviceId = 0x10deu;
        d->pci.pciSubSystemId = 0;
        snprintf(d->pci.busId, sizeof(d->pci.busId), "%08x:%02x:%02x.0",
                 d->pci.domain, d->pci.bus, d->pci.device);
        snprintf(d->pci.busIdLegacy, sizeof(d->pci.busIdLegacy), "%04x:%02x:%02x.0",
                 d->pci.domain & 0xffff, d->pci.bus, d->pci.device);
    }
    return NVML_SUCCESS;
}

NVML_EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    nvmlReturn_t r = NVML_SUCCESS;

    (void)flags;
    pthread_mutex_lock(&nv.lock);
    if (!nv.lib) {
        r = nvml_load();
        if (r == NVML_SUCCESS) {
            r = nvml_discover();
        }
        if (r != NVML_SUCCESS && nv.lib) {
            dlclose(nv.lib);
            nv.lib = NULL;
        }
    }
    if (r == NVML_SUCCESS) {
        nv.refs++;
    }
    pthread_mutex_unlock(&nv.lock);
    return r;
}

NVML_EXPORT nvmlReturn_t nvmlInit_v2(void)
{
    return nvmlInitWithFlags(0);
}

NVML_EXPORT nvmlReturn_t nvmlInit(void)
{
    return nvmlInitWithFlags(0);
}

NVML_EXPORT nvmlReturn_t nvmlShutdown(void)
{
    nvmlReturn_t r = NVML_SUCCESS;

    pthread_mutex_lock(&nv.lock);
    if (nv.refs == 0) {
        r = NVML_ERROR_UNINITIALIZED;
    } else {
        /* libcuda stays loaded: the process may be using CUDA itself. */
        nv.refs--;
    }
    pthread_mutex_unlock(&nv.lock);
    return r;
}

NVML_EXPORT const char *nvmlErrorString(nvmlReturn_t r)
{
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_MEMORY: return "Insufficient Memory";
    case NVML_ERROR_NO_DATA: return "No data";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    default: return "Unknown Error";
    }
}

static bool nvml_ready(void)
{
    bool ok;

    pthread_mutex_lock(&nv.lock);
    ok = nv.refs > 0;
    pthread_mutex_unlock(&nv.lock);
    return ok;
}

#define NVML_CHECK_INIT() do { \
        if (!nvml_ready()) { \
            return NVML_ERROR_UNINITIALIZED; \
        } \
    } while (0)

static nvmlReturn_t nvml_string(char *out, unsigned int len, const char *s)
{
    if (!out) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    if (strlen(s) + 1 > len) {
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    memcpy(out, s, strlen(s) + 1);
    return NVML_SUCCESS;
}

/* ---- system ---------------------------------------------------------------- */

NVML_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    char buf[32];

    NVML_CHECK_INIT();
    snprintf(buf, sizeof(buf), "%d.%d.vgc", nv.driver_version / 1000,
             nv.driver_version % 1000 / 10);
    return nvml_string(version, length, buf);
}

NVML_EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    char buf[32];

    NVML_CHECK_INIT();
    snprintf(buf, sizeof(buf), "%d.%d.vgc", nv.driver_version / 1000,
             nv.driver_version % 1000 / 10);
    return nvml_string(version, length, buf);
}

NVML_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version)
{
    NVML_CHECK_INIT();
    if (!version) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    *version = nv.driver_version;
    return NVML_SUCCESS;
}

NVML_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version)
{
    return nvmlSystemGetCudaDriverVersion(version);
}

/* ---- devices ---------------------------------------------------------------- */

NVML_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    NVML_CHECK_INIT();
    if (!count) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    *count = (unsigned)nv.count;
    return NVML_SUCCESS;
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *count)
{
    return nvmlDeviceGetCount_v2(count);
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    NVML_CHECK_INIT();
    if (!device || index >= (unsigned)nv.count) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    *device = &nv.dev[index];
    return NVML_SUCCESS;
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device)
{
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
    NVML_CHECK_INIT();
    if (!uuid || !device) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    for (int i = 0; i < nv.count; i++) {
        if (!strcasecmp(uuid, nv.dev[i].uuid)) {
            *device = &nv.dev[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

/* Accepts "DDDDDDDD:BB:dd.f", "DDDD:BB:dd.f" and "BB:dd.f". */
NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *bus_id, nvmlDevice_t *device)
{
    unsigned domain = 0, bus = 0, dev = 0, fn = 0;

    NVML_CHECK_INIT();
    if (!bus_id || !device) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    if (sscanf(bus_id, "%x:%x:%x.%x", &domain, &bus, &dev, &fn) != 4) {
        domain = 0;
        if (sscanf(bus_id, "%x:%x.%x", &bus, &dev, &fn) != 3) {
            return NVML_ERROR_INVALID_ARGUMENT;
        }
    }
    for (int i = 0; i < nv.count; i++) {
        const nvmlPciInfo_t *p = &nv.dev[i].pci;
        if (p->domain == domain && p->bus == bus && p->device == dev && fn == 0) {
            *device = &nv.dev[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char *bus_id, nvmlDevice_t *device)
{
    return nvmlDeviceGetHandleByPciBusId_v2(bus_id, device);
}

static struct vgc_nvml_device *nvml_dev(nvmlDevice_t d)
{
    if (!nvml_ready() || !d || d < &nv.dev[0] || d >= &nv.dev[nv.count]) {
        return NULL;
    }
    return d;
}

#define NVML_DEV(d, out) \
    struct vgc_nvml_device *out = nvml_dev(d); \
    if (!out) { \
        return nvml_ready() ? NVML_ERROR_INVALID_ARGUMENT : NVML_ERROR_UNINITIALIZED; \
    }

NVML_EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
    NVML_DEV(device, d);
    if (!index) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    *index = (unsigned)d->index;
    return NVML_SUCCESS;
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minor)
{
    return nvmlDeviceGetIndex(device, minor);
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
    NVML_DEV(device, d);
    return nvml_string(name, length, d->name);
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    NVML_DEV(device, d);
    return nvml_string(uuid, length, d->uuid);
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t device, char *serial,
                                             unsigned int length)
{
    NVML_DEV(device, d);
    return nvml_string(serial, length, d->uuid + 4);
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    NVML_DEV(device, d);
    if (!pci) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    *pci = d->pci;
    return NVML_SUCCESS;
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    return nvmlDeviceGetPciInfo_v3(device, pci);
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    return nvmlDeviceGetPciInfo_v3(device, pci);
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major,
                                                            int *minor)
{
    NVML_DEV(device, d);
    if (!major || !minor) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    *major = d->cc_major;
    *minor = d->cc_minor;
    return NVML_SUCCESS;
}

/*
 * Free memory as the backend accounts it for the virtual device (the
 * tenant's limit, when it has one): asked of the host without a context,
 * so that the question binds no GPU (docs/pool.md); from a host that
 * cannot say, the device's primary context answers cuMemGetInfo, retained
 * only for the question, so it is not kept alive for the program.
 */
static nvmlReturn_t nvml_memory(struct vgc_nvml_device *d, unsigned long long *total,
                                unsigned long long *free_bytes)
{
    CUcontext ctx = NULL, popped;
    size_t f = 0, t = 0;
    uint64_t t64, f64;
    CUresult res;

    if (nv.device_memory) {
        res = nv.device_memory(d->dev, &t64, &f64);
        if (res == CUDA_SUCCESS) {
            *total = t64;
            *free_bytes = f64;
            return NVML_SUCCESS;
        }
        if (res != CUDA_ERROR_NOT_SUPPORTED) {
            return NVML_ERROR_UNKNOWN;
        }
    }

    if (nv.cuDevicePrimaryCtxRetain(&ctx, d->dev) != CUDA_SUCCESS) {
        return NVML_ERROR_UNKNOWN;
    }
    res = nv.cuCtxPushCurrent(ctx);
    if (res == CUDA_SUCCESS) {
        res = nv.cuMemGetInfo(&f, &t);
        nv.cuCtxPopCurrent(&popped);
    }
    nv.cuDevicePrimaryCtxRelease(d->dev);
    if (res != CUDA_SUCCESS) {
        return NVML_ERROR_UNKNOWN;
    }
    *total = t;
    *free_bytes = f;
    return NVML_SUCCESS;
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    unsigned long long total, free_bytes;
    nvmlReturn_t r;

    NVML_DEV(device, d);
    if (!memory) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    r = nvml_memory(d, &total, &free_bytes);
    if (r == NVML_SUCCESS) {
        memory->total = total;
        memory->free = free_bytes;
        memory->used = total - free_bytes;
    }
    return r;
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    unsigned long long total, free_bytes;
    nvmlReturn_t r;

    NVML_DEV(device, d);
    if (!memory) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    /* nvmlMemory_v2: sizeof | 2 << 24 */
    if (memory->version != ((unsigned)sizeof(nvmlMemory_v2_t) | 2u << 24)) {
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    }
    r = nvml_memory(d, &total, &free_bytes);
    if (r == NVML_SUCCESS) {
        memory->total = total;
        memory->reserved = 0;
        memory->free = free_bytes;
        memory->used = total - free_bytes;
    }
    return r;
}

static nvmlReturn_t nvml_from_cuda(CUresult res)
{
    switch (res) {
    case CUDA_SUCCESS: return NVML_SUCCESS;
    case CUDA_ERROR_NOT_SUPPORTED: return NVML_ERROR_NOT_SUPPORTED;
    case CUDA_ERROR_DEVICE_UNAVAILABLE: return NVML_ERROR_GPU_IS_LOST;
    case CUDA_ERROR_OUT_OF_MEMORY: return NVML_ERROR_MEMORY;
    default: return NVML_ERROR_UNKNOWN;
    }
}

/*
 * Over the last second, as the host measures the virtual device (shared
 * by every tenant, as a real GPU's figures are): the share of time
 * kernels ran, and the share copies ran (NVIDIA's "memory being read or
 * written").
 */
NVML_EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device,
                                                       nvmlUtilization_t *util)
{
    struct vgc_device_status st;
    CUresult res;

    NVML_DEV(device, d);
    if (!util) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    if (!nv.device_status) {
        return NVML_ERROR_NOT_SUPPORTED;
    }
    res = nv.device_status(d->dev, &st, NULL, 0);
    if (res != CUDA_SUCCESS) {
        return nvml_from_cuda(res);
    }
    util->gpu = st.gpu_util;
    util->memory = st.memory_util;
    return NVML_SUCCESS;
}

/* Which nvmlProcessInfo layout the caller's array has. */
enum nvml_proc_layout {
    NVML_PROC_V1,               /* nvmlProcessInfo_v1_t */
    NVML_PROC_V2,               /* nvmlProcessInfo_t (v2 and v3 share it) */
};

static void nvml_proc_store(void *infos, enum nvml_proc_layout layout, unsigned i,
                            const struct vgc_process *p)
{
    if (layout == NVML_PROC_V1) {
        nvmlProcessInfo_v1_t *v1 = (nvmlProcessInfo_v1_t *)infos + i;
        v1->pid = p->pid;
        v1->usedGpuMemory = p->used_bytes;
    } else {
        nvmlProcessInfo_t *v2 = (nvmlProcessInfo_t *)infos + i;
        v2->pid = p->pid;
        v2->usedGpuMemory = p->used_bytes;
        /* No MIG: NVML says so with all ones. */
        v2->gpuInstanceId = 0xFFFFFFFFu;
        v2->computeInstanceId = 0xFFFFFFFFu;
    }
}

/*
 * The compute processes of this guest (this VM; for socket clients, this
 * uid or address) on the device, never another tenant's.  NVML's rules for
 * *count: in, the room in infos (infos may be NULL when it is 0); out, the
 * entries written, or with NVML_ERROR_INSUFFICIENT_SIZE the room needed.
 */
static nvmlReturn_t nvml_compute_processes(nvmlDevice_t device, unsigned int *count,
                                           void *infos, enum nvml_proc_layout layout)
{
    struct vgc_device_status st;
    struct vgc_process *procs = NULL;
    unsigned max;
    CUresult res;

    NVML_DEV(device, d);
    if (!count || (*count && !infos)) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    if (!nv.device_status) {
        *count = 0;             /* as in a container that sees no process */
        return NVML_SUCCESS;
    }
    max = *count < VGC_PRIVATE_MAX_PROCS ? *count : VGC_PRIVATE_MAX_PROCS;
    if (max && !(procs = calloc(max, sizeof(*procs)))) {
        return NVML_ERROR_MEMORY;
    }
    res = nv.device_status(d->dev, &st, procs, max);
    if (res == CUDA_SUCCESS && st.nprocs > *count) {
        *count = st.nprocs;
        free(procs);
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    if (res == CUDA_SUCCESS) {
        /* nprocs <= *count, and the host lists at most MAX: all came. */
        for (unsigned i = 0; i < st.nprocs; i++) {
            nvml_proc_store(infos, layout, i, &procs[i]);
        }
        *count = st.nprocs;
    }
    free(procs);
    return nvml_from_cuda(res);
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device,
                                                                 unsigned int *count,
                                                                 nvmlProcessInfo_t *infos)
{
    return nvml_compute_processes(device, count, infos, NVML_PROC_V2);
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device,
                                                                 unsigned int *count,
                                                                 nvmlProcessInfo_t *infos)
{
    return nvml_compute_processes(device, count, infos, NVML_PROC_V2);
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device,
                                                              unsigned int *count,
                                                              nvmlProcessInfo_v1_t *infos)
{
    return nvml_compute_processes(device, count, infos, NVML_PROC_V1);
}

/* Graphics: the device runs no graphics work, so the list is empty. */
static nvmlReturn_t nvml_graphics_processes(nvmlDevice_t device, unsigned int *count,
                                            const void *infos)
{
    NVML_DEV(device, d);
    (void)d;
    if (!count || (*count && !infos)) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    *count = 0;
    return NVML_SUCCESS;
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device,
                                                                  unsigned int *count,
                                                                  nvmlProcessInfo_t *infos)
{
    return nvml_graphics_processes(device, count, infos);
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t device,
                                                                  unsigned int *count,
                                                                  nvmlProcessInfo_t *infos)
{
    return nvml_graphics_processes(device, count, infos);
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t device,
                                                               unsigned int *count,
                                                               nvmlProcessInfo_v1_t *infos)
{
    return nvml_graphics_processes(device, count, infos);
}

/* ---- NVLink: virtual devices have none ----------------------------------------- */

NVML_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned int link,
                                                  nvmlEnableState_t *active)
{
    NVML_DEV(device, d);
    (void)d;
    (void)link;
    (void)active;
    return NVML_ERROR_NOT_SUPPORTED;
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkRemoteDeviceType(nvmlDevice_t device,
                                                             unsigned int link,
                                                             nvmlIntNvLinkDeviceType_t *type)
{
    NVML_DEV(device, d);
    (void)d;
    (void)link;
    if (type) {
        *type = NVML_NVLINK_DEVICE_TYPE_UNKNOWN;
    }
    return NVML_ERROR_NOT_SUPPORTED;
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t device,
                                                             unsigned int link,
                                                             nvmlPciInfo_t *pci)
{
    NVML_DEV(device, d);
    (void)d;
    (void)link;
    (void)pci;
    return NVML_ERROR_NOT_SUPPORTED;
}

/* ---- sensors the backend does not have ------------------------------------------ */

#define NVML_NO_SENSOR(fn, type) \
    NVML_EXPORT nvmlReturn_t fn(nvmlDevice_t device, type *out) \
    { \
        NVML_DEV(device, d); \
        (void)d; \
        (void)out; \
        return NVML_ERROR_NOT_SUPPORTED; \
    }

NVML_NO_SENSOR(nvmlDeviceGetPowerUsage, unsigned int)
NVML_NO_SENSOR(nvmlDeviceGetFanSpeed, unsigned int)
NVML_NO_SENSOR(nvmlDeviceGetPerformanceState, int)
NVML_NO_SENSOR(nvmlDeviceGetPersistenceMode, int)
NVML_NO_SENSOR(nvmlDeviceGetDisplayActive, int)
NVML_NO_SENSOR(nvmlDeviceGetEnforcedPowerLimit, unsigned int)

NVML_EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor,
                                                  unsigned int *temp)
{
    NVML_DEV(device, d);
    (void)d;
    (void)sensor;
    (void)temp;
    return NVML_ERROR_NOT_SUPPORTED;
}

NVML_EXPORT nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t device, int *mode)
{
    NVML_DEV(device, d);
    (void)d;
    if (!mode) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    *mode = 0;                  /* NVML_COMPUTEMODE_DEFAULT */
    return NVML_SUCCESS;
}
