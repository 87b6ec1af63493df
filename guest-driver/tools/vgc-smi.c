/*
 * vgc-smi - an nvidia-smi-like summary of the virtual GPUs, from NVML
 * (libnvidia-ml.so.1, the virtio-gpu-compute one or NVIDIA's).
 *
 *   vgc-smi            the table: devices, their utilization and memory,
 *                      then the processes using them (those of this
 *                      guest; the host shows a guest no other tenant's)
 *   vgc-smi -L         one line per GPU: index, name, UUID
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
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
#define SMI_WIDE "+-----------------------------------------------------------------------------------------+"

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

/*
 * The compute processes on @d: a malloc()ed array (the caller frees it)
 * and their number in *n; NULL with *n = 0 when there are none or NVML
 * cannot say.  The list may grow between asking its size and fetching it.
 */
static nvmlProcessInfo_t *smi_processes(nvmlDevice_t d, unsigned *n)
{
    nvmlProcessInfo_t *infos = NULL;
    unsigned room = 0;
    nvmlReturn_t r;

    for (int tries = 0; tries < 4; tries++) {
        unsigned got = room;

        r = nvmlDeviceGetComputeRunningProcesses_v3(d, &got, infos);
        if (r == NVML_SUCCESS) {
            *n = got;
            return infos;
        }
        free(infos);
        infos = NULL;
        if (r != NVML_ERROR_INSUFFICIENT_SIZE) {
            break;
        }
        room = got + 8;
        infos = calloc(room, sizeof(*infos));
        if (!infos) {
            break;
        }
    }
    free(infos);
    *n = 0;
    return NULL;
}

/* Its name, as this system's /proc knows the pid; "-" when it does not. */
static void smi_process_name(unsigned pid, char *name, size_t size)
{
    char path[64];
    FILE *f;

    snprintf(name, size, "-");
    snprintf(path, sizeof(path), "/proc/%u/comm", pid);
    f = fopen(path, "r");
    if (f) {
        if (fgets(name, (int)size, f)) {
            name[strcspn(name, "\n")] = '\0';
        }
        fclose(f);
    }
}

static void smi_processes_table(unsigned count)
{
    unsigned shown = 0;

    printf("\n" SMI_WIDE "\n");
    printf("| %-87s |\n", "Processes:");
    printf("| %-87s |\n", " GPU   GI   CI              PID   Type   Process name                        GPU Memory");
    printf("| %-87s |\n", "       ID   ID                                                               Usage");
    printf("|=========================================================================================|\n");
    for (unsigned i = 0; i < count; i++) {
        nvmlDevice_t d;
        nvmlProcessInfo_t *p;
        unsigned n = 0;

        if (nvmlDeviceGetHandleByIndex_v2(i, &d) != NVML_SUCCESS) {
            continue;
        }
        p = smi_processes(d, &n);
        for (unsigned k = 0; k < n; k++) {
            char name[64], line[128];

            smi_process_name(p[k].pid, name, sizeof(name));
            /* Columns under the header's: GPU, GI, CI, PID, Type, name, memory. */
            snprintf(line, sizeof(line), "%4u   N/A  N/A%16u      C   %-34.34s %8lluMiB",
                     i, p[k].pid, name, p[k].usedGpuMemory >> 20);
            printf("| %-87s |\n", line);
            shown++;
        }
        free(p);
    }
    if (!shown) {
        printf("| %-87s |\n", " No running processes found");
    }
    printf(SMI_WIDE "\n");
}

static void smi_table(unsigned count)
{
    char driver[64] = "N/A", date[64];
    int cuda = 0;
    time_t now = time(NULL);

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
        char gpu_util[8] = "N/A", mem_util[8] = "N/A";

        memset(&pci, 0, sizeof(pci));
        if (nvmlDeviceGetHandleByIndex_v2(i, &d) != NVML_SUCCESS) {
            continue;
        }
        nvmlDeviceGetName(d, name, sizeof(name));
        nvmlDeviceGetPciInfo_v3(d, &pci);
        nvmlDeviceGetMemoryInfo(d, &mem);
        if (nvmlDeviceGetUtilizationRates(d, &util) == NVML_SUCCESS) {
            snprintf(gpu_util, sizeof(gpu_util), "%u%%", util.gpu);
            snprintf(mem_util, sizeof(mem_util), "%u%%", util.memory);
        }
        printf("| %3u  %-34.34s | %-22s | %8s  %9s |\n", i, name, pci.busId, gpu_util,
               mem_util);
        printf("| %-39s | %7lluMiB / %6lluMiB | %-20s |\n", "", mem.used >> 20, mem.total >> 20,
               "");
        printf(SMI_RULE "\n");
    }
    smi_processes_table(count);
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
