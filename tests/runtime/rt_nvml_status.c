/*
 * rt_nvml_status.c - what NVML says about a device's users and how busy it
 * is, checked against processes this program starts:
 *   - a process holding device memory appears, with its pid and the bytes
 *     it allocated (within the allocation granularity), in this process's
 *     nvmlDeviceGetComputeRunningProcesses (v1, v2, v3 layouts), with NVML's
 *     *infoCount rules, and disappears once it has exited;
 *   - a process of another tenant (the same daemon reached over TCP, while
 *     this one uses a unix socket) is never listed here, and lists only its
 *     own tenant's processes; utilization is the same for both;
 *   - nvmlDeviceGetUtilizationRates: gpu > 0 while a kernel spins on the
 *     device, back to 0 within a few seconds after it ends; memory > 0
 *     while copies and memsets run, back to 0 after.
 *
 * Usage: rt_nvml_status OTHER_SERVER    the checks (VGC_SERVER: a unix
 *                                       socket; OTHER_SERVER: tcp:HOST:PORT
 *                                       of the same vgcd)
 * and, for the processes it starts (with /proc/self/exe):
 *        rt_nvml_status hold DEV BYTES...   allocate, say "holding PID
 *                                           TOTAL", wait for stdin to close
 *        rt_nvml_status spin SECONDS        one kernel that spins that long
 *        rt_nvml_status copy SECONDS        memsets and copies for that long
 *        rt_nvml_status list DEV            print "pids ..." and "util G M"
 *
 * Every check goes through dlopen()ed libcuda.so.1 and libnvidia-ml.so.1, as
 * rt_nvml does, so the same program runs against NVIDIA's own libraries.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <cuda.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

#include "rt_check.h"
#include "vgc_nvml.h"

/* RT_OK evaluates its condition twice; these conditions read pipes. */
#define CHECK(cond, what) do { \
        bool check_ok_ = (cond); \
        RT_OK(check_ok_, what); \
    } while (0)

/* A real GPU's allocation granularity; the cpu executor's is 256 bytes. */
#define STATUS_GRANULARITY (2u << 20)

static struct {
    void *cu, *ml;
    CUresult (*cuInit)(unsigned);
    CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
    CUresult (*cuCtxSetCurrent)(CUcontext);
    CUresult (*cuCtxSynchronize)(void);
    CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
    CUresult (*cuMemsetD32)(CUdeviceptr, unsigned, size_t);
    CUresult (*cuMemcpyDtoD)(CUdeviceptr, CUdeviceptr, size_t);
    CUresult (*cuModuleLoadData)(CUmodule *, const void *);
    CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
    CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                               unsigned, unsigned, CUstream, void **, void **);
    nvmlReturn_t (*nvmlInit)(void);
    nvmlReturn_t (*nvmlShutdown)(void);
    nvmlReturn_t (*nvmlDeviceGetHandleByIndex)(unsigned, nvmlDevice_t *);
    nvmlReturn_t (*nvmlDeviceGetUtilizationRates)(nvmlDevice_t, nvmlUtilization_t *);
    nvmlReturn_t (*procs_v1)(nvmlDevice_t, unsigned *, nvmlProcessInfo_v1_t *);
    nvmlReturn_t (*procs_v2)(nvmlDevice_t, unsigned *, nvmlProcessInfo_t *);
    nvmlReturn_t (*procs_v3)(nvmlDevice_t, unsigned *, nvmlProcessInfo_t *);
    nvmlReturn_t (*gprocs_v3)(nvmlDevice_t, unsigned *, nvmlProcessInfo_t *);
} st;

/* The roles that only use the device do without NVML (@nvml false). */
static void status_load(bool nvml)
{
    st.cu = dlopen("libcuda.so.1", RTLD_NOW);
    st.ml = nvml ? dlopen("libnvidia-ml.so.1", RTLD_NOW) : NULL;
    if (!st.cu || (nvml && !st.ml)) {
        printf("Bail out! dlopen: %s\n", dlerror());
        exit(2);
    }
#define CU(field, name) *(void **)&st.field = dlsym(st.cu, name)
#define ML(field, name) *(void **)&st.field = st.ml ? dlsym(st.ml, name) : NULL
    CU(cuInit, "cuInit");
    CU(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    CU(cuCtxSetCurrent, "cuCtxSetCurrent");
    CU(cuCtxSynchronize, "cuCtxSynchronize");
    CU(cuMemAlloc, "cuMemAlloc_v2");
    CU(cuMemsetD32, "cuMemsetD32_v2");
    CU(cuMemcpyDtoD, "cuMemcpyDtoD_v2");
    CU(cuModuleLoadData, "cuModuleLoadData");
    CU(cuModuleGetFunction, "cuModuleGetFunction");
    CU(cuLaunchKernel, "cuLaunchKernel");
    ML(nvmlInit, "nvmlInit_v2");
    ML(nvmlShutdown, "nvmlShutdown");
    ML(nvmlDeviceGetHandleByIndex, "nvmlDeviceGetHandleByIndex_v2");
    ML(nvmlDeviceGetUtilizationRates, "nvmlDeviceGetUtilizationRates");
    ML(procs_v1, "nvmlDeviceGetComputeRunningProcesses");
    ML(procs_v2, "nvmlDeviceGetComputeRunningProcesses_v2");
    ML(procs_v3, "nvmlDeviceGetComputeRunningProcesses_v3");
    ML(gprocs_v3, "nvmlDeviceGetGraphicsRunningProcesses_v3");
#undef CU
#undef ML
    if (!st.cuInit || !st.cuLaunchKernel ||
        (nvml && (!st.nvmlInit || !st.procs_v1 || !st.procs_v3 || !st.gprocs_v3 ||
                  !st.nvmlDeviceGetUtilizationRates))) {
        printf("Bail out! a symbol is missing\n");
        exit(2);
    }
}

static double status_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* In a role: a context on @dev, or exit. */
static void status_context(int dev)
{
    CUcontext ctx;

    if (st.cuInit(0) != CUDA_SUCCESS || st.cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS ||
        st.cuCtxSetCurrent(ctx) != CUDA_SUCCESS) {
        printf("Bail out! no context on device %d\n", dev);
        exit(2);
    }
}

/* ---- the roles of the processes the checks start --------------------------- */

static int role_hold(int argc, char **argv)
{
    unsigned long long total = 0;
    char buf[64];

    status_context(atoi(argv[2]));
    for (int i = 3; i < argc; i++) {
        CUdeviceptr p;
        size_t n = strtoull(argv[i], NULL, 0);

        if (st.cuMemAlloc(&p, n) != CUDA_SUCCESS) {
            printf("Bail out! cuMemAlloc(%zu)\n", n);
            return 2;
        }
        total += n;
    }
    printf("holding %d %llu\n", (int)getpid(), total);
    fflush(stdout);
    while (read(0, buf, sizeof(buf)) > 0) {
    }
    return 0;                   /* the memory goes with the process */
}

/*
 * extern "C" __global__ void spin(unsigned long long ns): reads
 * %globaltimer until @ns have passed, so it takes as long on a GPU as in
 * an interpreter.
 */
static const char spin_ptx[] =
    ".version 9.0\n"
    ".target sm_75\n"
    ".address_size 64\n"
    "\n"
    ".visible .entry spin(\n"
    "    .param .u64 spin_param_0\n"
    ")\n"
    "{\n"
    "    .reg .pred %p<2>;\n"
    "    .reg .b64 %rd<5>;\n"
    "\n"
    "    ld.param.u64 %rd1, [spin_param_0];\n"
    "    mov.u64 %rd2, %globaltimer;\n"
    "$L__spin:\n"
    "    mov.u64 %rd3, %globaltimer;\n"
    "    sub.s64 %rd4, %rd3, %rd2;\n"
    "    setp.lt.u64 %p1, %rd4, %rd1;\n"
    "    @%p1 bra $L__spin;\n"
    "    ret;\n"
    "}\n";

static int role_spin(char **argv)
{
    unsigned long long ns = (unsigned long long)(atof(argv[2]) * 1e9);
    void *params[] = { &ns };
    CUmodule mod;
    CUfunction fn;
    CUresult res;

    status_context(0);
    if (st.cuModuleLoadData(&mod, spin_ptx) != CUDA_SUCCESS ||
        st.cuModuleGetFunction(&fn, mod, "spin") != CUDA_SUCCESS) {
        printf("Bail out! cannot load the spin kernel\n");
        return 2;
    }
    printf("spinning %d\n", (int)getpid());
    fflush(stdout);
    res = st.cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL);
    if (res == CUDA_SUCCESS) {
        res = st.cuCtxSynchronize();
    }
    printf("spun %d\n", (int)res);
    return res == CUDA_SUCCESS ? 0 : 1;
}

static int role_copy(char **argv)
{
    double until = status_now() + atof(argv[2]);
    size_t n = 32u << 20;
    CUdeviceptr a, b;

    status_context(0);
    if (st.cuMemAlloc(&a, n) != CUDA_SUCCESS || st.cuMemAlloc(&b, n) != CUDA_SUCCESS) {
        printf("Bail out! cuMemAlloc\n");
        return 2;
    }
    printf("copying %d\n", (int)getpid());
    fflush(stdout);
    while (status_now() < until) {
        if (st.cuMemsetD32(a, 0x12345678, n / 4) != CUDA_SUCCESS ||
            st.cuMemcpyDtoD(b, a, n) != CUDA_SUCCESS) {
            printf("copy failed\n");
            return 1;
        }
    }
    printf("copied\n");
    return 0;
}

static int role_list(char **argv)
{
    nvmlProcessInfo_t infos[64];
    unsigned n = 64;
    nvmlUtilization_t u = { 0, 0 };
    nvmlDevice_t d;

    if (st.nvmlInit() != NVML_SUCCESS ||
        st.nvmlDeviceGetHandleByIndex((unsigned)atoi(argv[2]), &d) != NVML_SUCCESS ||
        st.procs_v3(d, &n, infos) != NVML_SUCCESS ||
        st.nvmlDeviceGetUtilizationRates(d, &u) != NVML_SUCCESS) {
        printf("Bail out! NVML failed\n");
        return 2;
    }
    printf("pids");
    for (unsigned i = 0; i < n; i++) {
        printf(" %u", infos[i].pid);
    }
    printf("\nutil %u %u\n", u.gpu, u.memory);
    return 0;
}

/* ---- starting and stopping them ------------------------------------------- */

struct child {
    pid_t pid;
    int in;                     /* its stdin: closing it ends a holder */
    FILE *out;                  /* its stdout */
};

/* Start this program as @role...; on @server when not NULL. */
static void child_start(struct child *c, const char *server, const char *const *args)
{
    int in[2], out[2];
    char *argv[16];
    int n = 0;

    argv[n++] = "rt_nvml_status";
    while (*args && n < 15) {
        argv[n++] = (char *)*args++;
    }
    argv[n] = NULL;
    /* Close-on-exec: a holder sees its stdin end only when no other child
     * keeps a copy of the pipe. */
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
        printf("Bail out! pipe\n");
        exit(2);
    }
    fflush(stdout);
    c->pid = fork();
    if (c->pid == 0) {
        if (server) {
            setenv("VGC_SERVER", server, 1);
        }
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    c->in = in[1];
    c->out = fdopen(out[0], "r");
}

/* The child's next line that starts with @word; "" at its end. */
static const char *child_line(struct child *c, const char *word, char *buf, size_t size)
{
    while (fgets(buf, (int)size, c->out)) {
        if (!strncmp(buf, word, strlen(word))) {
            return buf;
        }
    }
    buf[0] = '\0';
    return buf;
}

static int child_end(struct child *c)
{
    char buf[256];
    int status = 0;

    close(c->in);
    /* Read what it still says: it must not die of a closed pipe. */
    while (fgets(buf, sizeof(buf), c->out)) {
    }
    fclose(c->out);
    waitpid(c->pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- the checks ----------------------------------------------------------------- */

/* The processes of device @d (v3 layout) into @infos[max]; their number, or -1. */
static int procs_now(nvmlDevice_t d, nvmlProcessInfo_t *infos, unsigned max)
{
    unsigned n = max;

    return st.procs_v3(d, &n, infos) == NVML_SUCCESS ? (int)n : -1;
}

static bool procs_has(nvmlDevice_t d, unsigned pid)
{
    nvmlProcessInfo_t infos[64];
    int n = procs_now(d, infos, 64);

    for (int i = 0; i < n; i++) {
        if (infos[i].pid == pid) {
            return true;
        }
    }
    return false;
}

static void check_holder(nvmlDevice_t d0, nvmlDevice_t d1, unsigned pid,
                         unsigned long long total)
{
    nvmlProcessInfo_t infos[4];
    nvmlProcessInfo_v1_t v1[4];
    unsigned n = 0;

    RT_EQ(st.procs_v3(d0, &n, NULL), NVML_ERROR_INSUFFICIENT_SIZE,
          "v3, *infoCount 0: NVML_ERROR_INSUFFICIENT_SIZE while a process holds the device");
    RT_EQ(n, 1, "... and *infoCount says the room needed: one process");
    n = 4;
    RT_EQ(st.procs_v3(d0, &n, NULL), NVML_ERROR_INVALID_ARGUMENT,
          "v3: infos NULL with *infoCount 4 is NVML_ERROR_INVALID_ARGUMENT");
    n = 4;
    memset(infos, 0, sizeof(infos));
    RT_EQ(st.procs_v3(d0, &n, infos), NVML_SUCCESS, "v3 with room for 4");
    RT_EQ(n, 1, "v3 lists one process");
    RT_EQ(infos[0].pid, pid, "v3: the holder's pid");
    CHECK(infos[0].usedGpuMemory >= total &&
          infos[0].usedGpuMemory <= total + 3ull * STATUS_GRANULARITY,
          "v3: its used memory is what it allocated, within the granularity");
    RT_EQ(infos[0].gpuInstanceId, 0xFFFFFFFFu, "v3: gpuInstanceId is all ones (no MIG)");
    RT_EQ(infos[0].computeInstanceId, 0xFFFFFFFFu, "v3: computeInstanceId is all ones");
    if (st.procs_v2) {
        n = 4;
        memset(infos, 0, sizeof(infos));
        RT_EQ(st.procs_v2(d0, &n, infos), NVML_SUCCESS, "v2 with room for 4");
        CHECK(n == 1 && infos[0].pid == pid && infos[0].usedGpuMemory >= total &&
              infos[0].gpuInstanceId == 0xFFFFFFFFu, "v2: the same process, v2 layout");
    }
    n = 4;
    memset(v1, 0, sizeof(v1));
    RT_EQ(st.procs_v1(d0, &n, v1), NVML_SUCCESS, "v1 with room for 4");
    CHECK(n == 1 && v1[0].pid == pid && v1[0].usedGpuMemory >= total &&
          v1[0].usedGpuMemory <= total + 3ull * STATUS_GRANULARITY,
          "v1: the same pid and memory, v1 layout");
    n = 0;
    RT_EQ(st.procs_v3(d1, &n, NULL), NVML_SUCCESS, "device 1: nothing there (v3, room 0)");
    RT_EQ(n, 0, "device 1 lists no process");
    n = 4;
    RT_EQ(st.gprocs_v3(d0, &n, infos), NVML_SUCCESS, "graphics processes: NVML_SUCCESS");
    RT_EQ(n, 0, "graphics processes: none (no graphics work)");
}

/* Poll @what until it holds, for at most @seconds; how long it took, or -1. */
static double poll_until(bool (*what)(void *), void *arg, double seconds)
{
    double start = status_now();

    while (status_now() - start < seconds) {
        if (what(arg)) {
            return status_now() - start;
        }
        usleep(50 * 1000);
    }
    return what(arg) ? status_now() - start : -1;
}

struct gone_arg {
    nvmlDevice_t d;
    unsigned pid;
};

static bool is_gone(void *p)
{
    struct gone_arg *g = p;
    return !procs_has(g->d, g->pid);
}

struct util_arg {
    nvmlDevice_t d;
    bool memory;                /* the memory figure, not gpu */
    bool busy;                  /* wait for > 0, not for 0 */
    unsigned last;              /* the figure last read */
};

static bool util_is(void *p)
{
    struct util_arg *a = p;
    nvmlUtilization_t u = { 101, 101 };
    unsigned v;

    if (st.nvmlDeviceGetUtilizationRates(a->d, &u) != NVML_SUCCESS) {
        return false;
    }
    v = a->memory ? u.memory : u.gpu;
    a->last = v;
    return a->busy ? v > 0 && v <= 100 : v == 0;
}

static void check_processes(nvmlDevice_t d0, nvmlDevice_t d1, const char *other)
{
    static const char *const hold_args[] = { "hold", "0", "50335745", "4097", "100000", NULL };
    static const char *const list_args[] = { "list", "0", NULL };
    struct child holder, stranger, lister;
    struct gone_arg gone;
    char line[256], tail[260];
    unsigned pid = 0, spid = 0;
    unsigned long long total = 0, stotal = 0;
    unsigned n = 0;
    double took;

    RT_EQ(st.procs_v3(d0, &n, NULL), NVML_SUCCESS, "no process holds device 0 at first");
    RT_EQ(n, 0, "... and *infoCount is 0");

    child_start(&holder, NULL, hold_args);
    CHECK(sscanf(child_line(&holder, "holding", line, sizeof(line)), "holding %u %llu",
                 &pid, &total) == 2 && total == 50335745ull + 4097 + 100000,
          "a holder of ~48 MiB in 3 allocations started (same tenant: unix socket)");
    check_holder(d0, d1, pid, total);

    /* Another tenant: the same daemon over TCP. */
    child_start(&stranger, other, hold_args);
    CHECK(sscanf(child_line(&stranger, "holding", line, sizeof(line)), "holding %u %llu",
                 &spid, &stotal) == 2, "a holder of another tenant (TCP) started");
    n = 4;
    {
        nvmlProcessInfo_t infos[4];
        CHECK(st.procs_v3(d0, &n, infos) == NVML_SUCCESS && n == 1 && infos[0].pid == pid,
              "the other tenant's process is not listed here");
    }
    child_start(&lister, other, list_args);
    child_line(&lister, "pids", line, sizeof(line));
    snprintf(tail, sizeof(tail), "%s ", line);
    tail[strcspn(tail, "\n")] = ' ';
    {
        char want[32], hide[32];
        snprintf(want, sizeof(want), " %u ", spid);
        snprintf(hide, sizeof(hide), " %u ", pid);
        CHECK(strstr(tail, want) && !strstr(tail, hide),
              "the other tenant lists its own process and not ours");
        if (!strstr(tail, want) || strstr(tail, hide)) {
            printf("# it listed: %s", line);
        }
    }
    RT_EQ(child_end(&lister), 0, "the other tenant's NVML query succeeded");
    RT_EQ(child_end(&stranger), 0, "the other tenant's holder exits");

    RT_EQ(child_end(&holder), 0, "the holder exits");
    gone = (struct gone_arg){ d0, pid };
    took = poll_until(is_gone, &gone, 5.0);
    CHECK(took >= 0, "the holder disappears from the list once it has exited");
    printf("# gone after %.2f s\n", took);
}

static void check_utilization(nvmlDevice_t d0, const char *other)
{
    static const char *const spin_args[] = { "spin", "4", NULL };
    static const char *const copy_args[] = { "copy", "3", NULL };
    static const char *const list_args[] = { "list", "0", NULL };
    struct util_arg gpu_idle = { d0, false, false, 0 }, gpu_busy = { d0, false, true, 0 };
    struct util_arg mem_idle = { d0, true, false, 0 }, mem_busy = { d0, true, true, 0 };
    struct child spinner, copier, lister;
    char line[256];
    unsigned g = 0, m = 0, spid = 0, first;
    double took;

    CHECK(poll_until(util_is, &gpu_idle, 5.0) >= 0, "gpu utilization is 0 while idle");
    child_start(&spinner, NULL, spin_args);
    CHECK(sscanf(child_line(&spinner, "spinning", line, sizeof(line)), "spinning %u",
                 &spid) == 1, "a process spinning in a kernel for 4 s started");
    took = poll_until(util_is, &gpu_busy, 2.5);
    CHECK(took >= 0, "gpu utilization > 0 while the kernel runs");
    first = gpu_busy.last;
    usleep(1200 * 1000);        /* a whole sample period into the kernel */
    util_is(&gpu_busy);
    printf("# gpu utilization %u%% after %.2f s, %u%% 1.2 s later\n", first, took,
           gpu_busy.last);
    CHECK(gpu_busy.last >= 90, "a second into the kernel, gpu utilization is >= 90%");
    CHECK(procs_has(d0, spid), "the spinning process is listed while it runs");
    child_start(&lister, other, list_args);
    CHECK(sscanf(child_line(&lister, "util", line, sizeof(line)), "util %u %u", &g, &m) == 2 &&
          g > 0, "another tenant sees the device busy too (utilization is device-wide)");
    child_end(&lister);
    CHECK(!strncmp(child_line(&spinner, "spun", line, sizeof(line)), "spun 0", 6),
          "the kernel ran to its end");
    RT_EQ(child_end(&spinner), 0, "the spinning process exits");
    took = poll_until(util_is, &gpu_idle, 5.0);
    CHECK(took >= 0, "gpu utilization back to 0 within 5 s of the kernel's end");
    printf("# idle again after %.2f s\n", took);

    CHECK(poll_until(util_is, &mem_idle, 5.0) >= 0, "memory utilization is 0 while idle");
    child_start(&copier, NULL, copy_args);
    CHECK(!strncmp(child_line(&copier, "copying", line, sizeof(line)), "copying", 7),
          "a process copying for 3 s started");
    CHECK(poll_until(util_is, &mem_busy, 2.5) >= 0, "memory utilization > 0 while it copies");
    RT_EQ(child_end(&copier), 0, "the copying process exits");
    took = poll_until(util_is, &mem_idle, 5.0);
    CHECK(took >= 0, "memory utilization back to 0 within 5 s");
}

int main(int argc, char **argv)
{
    nvmlDevice_t d0, d1;
    bool device_only = argc >= 2 && (!strcmp(argv[1], "hold") || !strcmp(argv[1], "spin") ||
                                     !strcmp(argv[1], "copy"));

    status_load(!device_only);
    if (argc >= 3 && !strcmp(argv[1], "hold")) {
        return role_hold(argc, argv);
    }
    if (argc == 3 && !strcmp(argv[1], "spin")) {
        return role_spin(argv);
    }
    if (argc == 3 && !strcmp(argv[1], "copy")) {
        return role_copy(argv);
    }
    if (argc == 3 && !strcmp(argv[1], "list")) {
        return role_list(argv);
    }
    if (argc != 2) {
        fprintf(stderr, "usage: rt_nvml_status OTHER_SERVER\n");
        return 2;
    }
    rt_start();
    RT_EQ(st.nvmlInit(), NVML_SUCCESS, "nvmlInit_v2");
    if (st.nvmlDeviceGetHandleByIndex(0, &d0) != NVML_SUCCESS ||
        st.nvmlDeviceGetHandleByIndex(1, &d1) != NVML_SUCCESS) {
        printf("Bail out! the checks want two devices\n");
        return 2;
    }
    check_processes(d0, d1, argv[1]);
    check_utilization(d0, argv[1]);
    RT_EQ(st.nvmlShutdown(), NVML_SUCCESS, "nvmlShutdown");
    return rt_done();
}
