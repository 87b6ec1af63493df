/*
 * pool_client.c - a driver-API client that tests/run.py's pool section
 * steers line by line, so that several of them, of several tenants, can
 * hold contexts and memory at the same time while the others look.
 *
 * Commands on stdin, one answer line each on stdout:
 *   count              cuDeviceGetCount              -> "count N"
 *   totalmem V         cuDeviceTotalMem (no context) -> "totalmem BYTES"
 *   uuid V             cuDeviceGetUuid               -> "uuid HEX"
 *   ctx V              cuCtxCreate on V, made current -> "ok"
 *   info               cuMemGetInfo                  -> "info FREE TOTAL"
 *   device             cuCtxGetDevice                -> "device N"
 *   peer A B           cuDeviceCanAccessPeer         -> "peer 0|1"
 *   alloc BYTES        cuMemAlloc, kept              -> "ok" or "err CODE"
 *   ptrdev             device ordinal of the last allocation -> "ptrdev N"
 *   addr               device address of the last allocation -> "addr N"
 *   pattern SEED       fill the last allocation with words made from SEED
 *                      (cuMemcpyHtoD)                -> "ok"
 *   verify SEED ADD    read it back (cuMemcpyDtoH): how many words differ
 *                      from that pattern plus ADD    -> "verify WRONG"
 *   addone             the add_one kernel over the last allocation's words,
 *                      then cuCtxSynchronize         -> "ok"
 *   freeall            cuMemFree of every allocation -> "ok"
 *   destroy            cuCtxDestroy of the context   -> "ok"
 *   nvml V             NVML's memory info of V       -> "nvml TOTAL FREE USED"
 *   spin N             a kernel counting to N, then cuCtxSynchronize -> "ok"
 *                      (a call that is still running when the test wants)
 *   loop MS N          kernels counting to N, launched back to back (a
 *                      synchronize after every four), for MS milliseconds
 *                      -> "loop KERNELS" (what a busy inference service does)
 *   quit
 * A failing call answers "err CODE" (a CUresult; NVML's for nvml).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../integration/add_one_ptx.h"

#define MAX_ALLOCS 256

/* One thread counting to its parameter: as long a kernel as asked for. */
static const char spin_ptx[] =
    ".version 7.0\n"
    ".target sm_50\n"
    ".address_size 64\n"
    ".visible .entry spin(.param .u64 spin_n)\n"
    "{\n"
    "    .reg .pred %p<2>;\n"
    "    .reg .b64 %rd<3>;\n"
    "    ld.param.u64 %rd1, [spin_n];\n"
    "    mov.u64 %rd2, 0;\n"
    "LOOP:\n"
    "    add.u64 %rd2, %rd2, 1;\n"
    "    setp.lt.u64 %p1, %rd2, %rd1;\n"
    "    @%p1 bra LOOP;\n"
    "    ret;\n"
    "}\n";

static CUresult client_spin(unsigned long long n)
{
    CUmodule mod;
    CUfunction fn;
    void *params[] = { &n };
    CUresult r = cuModuleLoadData(&mod, spin_ptx);

    if (r == CUDA_SUCCESS) {
        r = cuModuleGetFunction(&fn, mod, "spin");
    }
    if (r == CUDA_SUCCESS) {
        r = cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL);
    }
    if (r == CUDA_SUCCESS) {
        r = cuCtxSynchronize();
    }
    return r;
}

static double client_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Kernels of @n steps for @ms milliseconds; *@count: how many ran. */
static CUresult client_loop(long long ms, unsigned long long n, long long *count)
{
    CUmodule mod;
    CUfunction fn;
    void *params[] = { &n };
    double end = client_now() + ms / 1e3;
    CUresult r = cuModuleLoadData(&mod, spin_ptx);

    *count = 0;
    if (r == CUDA_SUCCESS) {
        r = cuModuleGetFunction(&fn, mod, "spin");
    }
    while (r == CUDA_SUCCESS && client_now() < end) {
        for (int i = 0; i < 4 && r == CUDA_SUCCESS; i++) {
            r = cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL);
        }
        if (r == CUDA_SUCCESS) {
            r = cuCtxSynchronize();
        }
        if (r == CUDA_SUCCESS) {
            *count += 4;
        }
    }
    if (r == CUDA_SUCCESS) {
        r = cuModuleUnload(mod);
    }
    return r;
}

static CUcontext ctx;
static CUdeviceptr allocs[MAX_ALLOCS];
static size_t sizes[MAX_ALLOCS];
static int nallocs;

/* Word @i of the pattern of @seed: every word differs from its neighbours. */
static unsigned client_word(unsigned long long seed, size_t i)
{
    return (unsigned)(i * 2654435761u) ^ (unsigned)(seed * 40503u);
}

/* Fill the last allocation (@verify false) or count its words that are not
 * the pattern plus @add (@verify true) into *@wrong. */
static CUresult client_pattern(unsigned long long seed, bool verify, unsigned add,
                               size_t *wrong)
{
    size_t n = nallocs ? sizes[nallocs - 1] / 4 : 0;
    unsigned *buf;
    CUresult r;

    if (!n || !(buf = malloc(n * 4))) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!verify) {
        for (size_t i = 0; i < n; i++) {
            buf[i] = client_word(seed, i);
        }
        r = cuMemcpyHtoD(allocs[nallocs - 1], buf, n * 4);
    } else {
        r = cuMemcpyDtoH(buf, allocs[nallocs - 1], n * 4);
        *wrong = 0;
        for (size_t i = 0; r == CUDA_SUCCESS && i < n; i++) {
            *wrong += buf[i] != client_word(seed, i) + add;
        }
    }
    free(buf);
    return r;
}

/* add_one over the last allocation's words. */
static CUresult client_add_one(void)
{
    static CUmodule mod;
    static CUfunction fn;
    CUdeviceptr p = nallocs ? allocs[nallocs - 1] : 0;
    unsigned n = nallocs ? (unsigned)(sizes[nallocs - 1] / 4) : 0;
    void *params[] = { &p, &n };
    CUresult r = CUDA_SUCCESS;

    if (!n) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!mod) {
        r = cuModuleLoadData(&mod, add_one_ptx);
        if (r == CUDA_SUCCESS) {
            r = cuModuleGetFunction(&fn, mod, "add_one");
        }
    }
    if (r == CUDA_SUCCESS) {
        r = cuLaunchKernel(fn, (n + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, params, NULL);
    }
    if (r == CUDA_SUCCESS) {
        r = cuCtxSynchronize();
    }
    return r;
}

/* NVML through the shim's libnvidia-ml.so.1, found like a program would. */
struct nvml_memory {
    unsigned long long total, free, used;
};

static int client_nvml(int v, struct nvml_memory *m)
{
    static void *lib;
    int (*init)(void);
    int (*by_index)(unsigned, void **);
    int (*memory)(void *, struct nvml_memory *);
    void *dev;
    int r;

    if (!lib && !(lib = dlopen("libnvidia-ml.so.1", RTLD_NOW))) {
        return 999;
    }
    init = (int (*)(void))dlsym(lib, "nvmlInit_v2");
    by_index = (int (*)(unsigned, void **))dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
    memory = (int (*)(void *, struct nvml_memory *))dlsym(lib, "nvmlDeviceGetMemoryInfo");
    if (!init || !by_index || !memory) {
        return 998;
    }
    if ((r = init()) != 0 || (r = by_index((unsigned)v, &dev)) != 0) {
        return r;
    }
    return memory(dev, m);
}

static void client_answer(CUresult r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void client_answer(CUresult r, const char *fmt, ...)
{
    if (r != CUDA_SUCCESS) {
        printf("err %d\n", (int)r);
    } else {
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
    }
    fflush(stdout);
}

int main(void)
{
    char line[256], cmd[32];
    long long arg, arg2;
    CUresult r = cuInit(0);

    if (r != CUDA_SUCCESS) {
        printf("err %d\n", (int)r);
        return 2;
    }
    while (fgets(line, sizeof(line), stdin)) {
        int n = sscanf(line, "%31s %lld %lld", cmd, &arg, &arg2);

        if (n < 1) {
            continue;
        }
        if (!strcmp(cmd, "quit")) {
            break;
        } else if (!strcmp(cmd, "count")) {
            int c = 0;
            r = cuDeviceGetCount(&c);
            client_answer(r, "count %d\n", c);
        } else if (!strcmp(cmd, "totalmem") && n == 2) {
            size_t b = 0;
            r = cuDeviceTotalMem(&b, (CUdevice)arg);
            client_answer(r, "totalmem %zu\n", b);
        } else if (!strcmp(cmd, "uuid") && n == 2) {
            CUuuid u;
            char hex[33];
            r = cuDeviceGetUuid(&u, (CUdevice)arg);
            for (int i = 0; i < 16; i++) {
                snprintf(hex + 2 * i, 3, "%02x", (unsigned char)u.bytes[i]);
            }
            client_answer(r, "uuid %s\n", hex);
        } else if (!strcmp(cmd, "ctx") && n == 2) {
            CUdevice dev;
            r = cuDeviceGet(&dev, (int)arg);
            if (r == CUDA_SUCCESS) {
                r = cuCtxCreate(&ctx, NULL, 0, dev);
            }
            client_answer(r, "ok\n");
        } else if (!strcmp(cmd, "info")) {
            size_t f = 0, t = 0;
            r = cuMemGetInfo(&f, &t);
            client_answer(r, "info %zu %zu\n", f, t);
        } else if (!strcmp(cmd, "device")) {
            CUdevice d = -1;
            r = cuCtxGetDevice(&d);
            client_answer(r, "device %d\n", (int)d);
        } else if (!strcmp(cmd, "peer") && n == 3) {
            int can = -1;
            r = cuDeviceCanAccessPeer(&can, (CUdevice)arg, (CUdevice)arg2);
            client_answer(r, "peer %d\n", can);
        } else if (!strcmp(cmd, "alloc") && n == 2) {
            CUdeviceptr p = 0;
            r = nallocs < MAX_ALLOCS ? cuMemAlloc(&p, (size_t)arg) : CUDA_ERROR_TOO_MANY_PEERS;
            if (r == CUDA_SUCCESS) {
                sizes[nallocs] = (size_t)arg;
                allocs[nallocs++] = p;
            }
            client_answer(r, "ok\n");
        } else if (!strcmp(cmd, "ptrdev")) {
            int d = -1;
            r = nallocs ? cuPointerGetAttribute(&d, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                                                allocs[nallocs - 1])
                        : CUDA_ERROR_INVALID_VALUE;
            client_answer(r, "ptrdev %d\n", d);
        } else if (!strcmp(cmd, "addr")) {
            r = nallocs ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
            client_answer(r, "addr %llu\n", nallocs ? (unsigned long long)allocs[nallocs - 1] : 0);
        } else if (!strcmp(cmd, "pattern") && n == 2) {
            r = client_pattern((unsigned long long)arg, false, 0, NULL);
            client_answer(r, "ok\n");
        } else if (!strcmp(cmd, "verify") && n == 3) {
            size_t wrong = 0;
            r = client_pattern((unsigned long long)arg, true, (unsigned)arg2, &wrong);
            client_answer(r, "verify %zu\n", wrong);
        } else if (!strcmp(cmd, "addone")) {
            r = client_add_one();
            client_answer(r, "ok\n");
        } else if (!strcmp(cmd, "freeall")) {
            r = CUDA_SUCCESS;
            while (nallocs && r == CUDA_SUCCESS) {
                r = cuMemFree(allocs[--nallocs]);
            }
            client_answer(r, "ok\n");
        } else if (!strcmp(cmd, "destroy")) {
            r = cuCtxDestroy(ctx);
            ctx = NULL;
            nallocs = 0;
            client_answer(r, "ok\n");
        } else if (!strcmp(cmd, "spin") && n == 2) {
            r = client_spin((unsigned long long)arg);
            client_answer(r, "ok\n");
        } else if (!strcmp(cmd, "loop") && n == 3) {
            long long count = 0;
            r = client_loop(arg, (unsigned long long)arg2, &count);
            client_answer(r, "loop %lld\n", count);
        } else if (!strcmp(cmd, "nvml") && n == 2) {
            struct nvml_memory m = { 0, 0, 0 };
            int e = client_nvml((int)arg, &m);
            if (e) {
                printf("err %d\n", e);
                fflush(stdout);
            } else {
                client_answer(CUDA_SUCCESS, "nvml %llu %llu %llu\n", m.total, m.free, m.used);
            }
        } else {
            printf("err unknown command\n");
            fflush(stdout);
        }
    }
    return 0;
}
