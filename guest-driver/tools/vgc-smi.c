/*
 * vgc-smi - an nvidia-smi-like summary of the virtual GPUs, from NVML
 * (libnvidia-ml.so.1, the virtio-gpu-compute one or NVIDIA's).
 *
 *   vgc-smi            the table
 *   vgc-smi -L         one line per GPU: index, name, UUID
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vgc_nvml.h"

nvmlReturn_t nvmlInit_v2(void);
nvmlReturn_t nvmlShutdown(void);
const char *nvmlErrorString(nvmlReturn_t r);
nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length);
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version);
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length);
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length);
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci);
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory);
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *util);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                                     nvmlProcessInfo_t *infos);

#define SMI_RULE "+-----------------------------------------+------------------------+----------------------+"
#define SMI_MAX_PROCS 64

static void smi_list(unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        nvmlDevice_t d;
        char name[96] = "", uuid[80] = "";

        if (nvmlDeviceGetHandleByIndex_v2(i, &d) == NVML_SUCCESS) {
            nvmlDeviceGetName(d, name, sizeof(name));
            nvmlDeviceGetUUID(d, uuid, sizeof(uuid));
        }
        printf("GPU %u: %s (UUID: %s)\n", i, name, uuid);
    }
}

static void smi_table(unsigned count)
{
    char driver[64] = "N/A", date[64];
    int cuda = 0;
    time_t now = time(NULL);
    unsigned procs_total = 0;

    nvmlSystemGetDriverVersion(driver, sizeof(driver));
    nvmlSystemGetCudaDriverVersion_v2(&cuda);
    strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", localtime(&now));
    printf("%s\n", date);
    printf("+-----------------------------------------------------------------------------------------+\n");
    {
        char line[128];
        snprintf(line, sizeof(line), "VGC-SMI (virtio-gpu-compute)   Driver Version: %s   "
                 "CUDA Version: %d.%d", driver, cuda / 1000, cuda % 1000 / 10);
        printf("| %-87.87s |\n", line);
    }
    printf(SMI_RULE "\n");
    printf("| %-39s | %-22s | %-20s |\n", "GPU  Name", "Bus-Id", "GPU-Util Memory-Util");
    printf("| %-39s | %22s | %-20s |\n", "", "Memory-Usage", "");
    printf("|=========================================+========================+======================|\n");
    for (unsigned i = 0; i < count; i++) {
        nvmlDevice_t d;
        char name[96] = "";
        nvmlPciInfo_t pci;
        nvmlMemory_t mem = { 0 };
        nvmlUtilization_t util = { 0 };
        unsigned n = SMI_MAX_PROCS;
        nvmlProcessInfo_t infos[SMI_MAX_PROCS];

        memset(&pci, 0, sizeof(pci));
        if (nvmlDeviceGetHandleByIndex_v2(i, &d) != NVML_SUCCESS) {
            continue;
        }
        nvmlDeviceGetName(d, name, sizeof(name));
        nvmlDeviceGetPciInfo_v3(d, &pci);
        nvmlDeviceGetMemoryInfo(d, &mem);
        nvmlDeviceGetUtilizationRates(d, &util);
        if (nvmlDeviceGetComputeRunningProcesses_v3(d, &n, infos) == NVML_SUCCESS) {
            procs_total += n;
        }
        printf("| %3u  %-34.34s | %-22s | %7u%%  %9u%% |\n", i, name, pci.busId, util.gpu,
               util.memory);
        printf("| %-39s | %7lluMiB / %6lluMiB | %-20s |\n", "", mem.used >> 20, mem.total >> 20,
               "");
        printf(SMI_RULE "\n");
    }
    printf("\n+-----------------------------------------------------------------------------------------+\n");
    printf("| Processes:                                                                              |\n");
    printf("|  GPU   PID   Process name                                                    GPU Memory |\n");
    printf("|=========================================================================================|\n");
    if (!procs_total) {
        printf("|  No running processes found                                                             |\n");
    }
    printf("+-----------------------------------------------------------------------------------------+\n");
}

int main(int argc, char **argv)
{
    unsigned count = 0;
    nvmlReturn_t r = nvmlInit_v2();

    if (r != NVML_SUCCESS) {
        fprintf(stderr, "vgc-smi: NVML could not start: %s\n", nvmlErrorString(r));
        return 9;
    }
    nvmlDeviceGetCount_v2(&count);
    if (argc > 1 && !strcmp(argv[1], "-L")) {
        smi_list(count);
    } else if (argc > 1) {
        fprintf(stderr, "usage: vgc-smi [-L]\n");
        nvmlShutdown();
        return 2;
    } else {
        smi_table(count);
    }
    nvmlShutdown();
    return 0;
}
