/*
 * test_ptx.c - the cpu executor's PTX interpreter, in process: malformed
 * PTX never crashes the decoder or the interpreter (a mutation loop),
 * unknown instructions are named, wild addresses end the launch with a
 * sticky CUDA_ERROR_ILLEGAL_ADDRESS, and a kernel that spins forever is
 * stopped by the instruction budget or by vgc_cpu_cancel_all().
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor.h"
#include "cpu_internal.h"
#include "ptx_internal.h"

static struct vgc_executor *ex;
static int tp_fails, tp_checks;

#define OPS (&ex->ops)

static void check(bool ok, const char *fmt, ...)
{
    va_list ap;

    tp_checks++;
    tp_fails += !ok;
    printf("%s - ", ok ? "ok" : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static const char tp_good[] =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry add1(\n"
    "  .param .u64 add1_param_0,\n  .param .u32 add1_param_1\n)\n{\n"
    "  .reg .pred %p<2>;\n  .reg .b32 %r<6>;\n  .reg .b64 %rd<5>;\n"
    "  ld.param.u64 %rd1, [add1_param_0];\n"
    "  ld.param.u32 %r2, [add1_param_1];\n"
    "  mov.u32 %r3, %ctaid.x;\n  mov.u32 %r4, %ntid.x;\n"
    "  mov.u32 %r5, %tid.x;\n  mad.lo.s32 %r1, %r3, %r4, %r5;\n"
    "  setp.ge.s32 %p1, %r1, %r2;\n  @%p1 bra $L__BB0_2;\n"
    "  cvta.to.global.u64 %rd2, %rd1;\n  mul.wide.s32 %rd3, %r1, 4;\n"
    "  add.s64 %rd4, %rd2, %rd3;\n  ld.global.u32 %r5, [%rd4];\n"
    "  add.s32 %r5, %r5, 1;\n  st.global.u32 [%rd4], %r5;\n"
    "$L__BB0_2:\n  ret;\n}\n"
    ".visible .entry spin()\n{\n$L0:\n  bra.uni $L0;\n}\n"
    ".visible .entry odd(.param .u64 odd_param_0)\n{\n"
    "  .reg .b64 %rd<3>;\n  ld.param.u64 %rd1, [odd_param_0];\n"
    "  frobnicate.sync.b32 %rd2, %rd1;\n  ret;\n}\n"
    ".visible .entry wild(.param .u64 wild_param_0)\n{\n"
    "  .reg .b32 %r<2>;\n  .reg .b64 %rd<3>;\n"
    "  ld.param.u64 %rd1, [wild_param_0];\n"
    "  add.s64 %rd2, %rd1, 4096;\n  mov.u32 %r1, 7;\n"
    "  st.global.u32 [%rd2], %r1;\n  ret;\n}\n"
    ".visible .entry shwild()\n{\n"
    "  .reg .b32 %r<3>;\n  .shared .align 4 .b8 buf[64];\n"
    "  mov.u32 %r1, buf;\n  mov.u32 %r2, 5;\n"
    "  st.shared.u32 [%r1+64], %r2;\n  ret;\n}\n";

static CUresult tp_launch(CUmodule mod, const char *name, unsigned blocks,
                          unsigned threads, void **params)
{
    CUfunction f;
    CUresult rc = OPS->cuModuleGetFunction(&f, mod, name);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    return OPS->cuLaunchKernel(f, blocks, 1, 1, threads, 1, 1, 0, NULL,
                               params, NULL);
}

static void test_basic(CUmodule mod)
{
    enum { N = 1000 };
    uint32_t host[N];
    CUdeviceptr d;
    int n = N - 3, i, bad = 0;
    void *params[] = { &d, &n };

    for (i = 0; i < N; i++) {
        host[i] = (uint32_t)i;
    }
    check(OPS->cuMemAlloc_v2(&d, sizeof(host)) == CUDA_SUCCESS, "alloc");
    OPS->cuMemcpyHtoD_v2(d, host, sizeof(host));
    check(tp_launch(mod, "add1", 8, 128, params) == CUDA_SUCCESS,
          "add1 runs");
    OPS->cuMemcpyDtoH_v2(host, d, sizeof(host));
    for (i = 0; i < N; i++) {
        bad += host[i] != (uint32_t)i + (i < n);
    }
    check(bad == 0, "add1 result, bounds guard respected");
    OPS->cuMemFree_v2(d);
}

static void test_unknown(CUmodule mod)
{
    CUdeviceptr d = 0;
    void *params[] = { &d };
    CUresult rc = tp_launch(mod, "odd", 1, 32, params);

    check(rc == CUDA_ERROR_NOT_SUPPORTED, "unknown instruction: "
          "CUDA_ERROR_NOT_SUPPORTED (got %d)", rc);
    check(strstr(cpu_launch_last_error(), "frobnicate.sync.b32") != NULL,
          "the message names the opcode: %s", cpu_launch_last_error());
    check(tp_launch(mod, "add1", 1, 1, (void *[]){ &d, &(int){ 0 } }) ==
          CUDA_SUCCESS, "not sticky: the context still runs kernels");
}

static void *tp_canceller(void *arg)
{
    (void)arg;
    usleep(200 * 1000);
    vgc_cpu_cancel_all();
    return NULL;
}

static void test_budget(CUdevice dev)
{
    CUcontext ctx;
    CUmodule mod;
    pthread_t t;
    CUresult rc;

    OPS->cuCtxCreate_v4(&ctx, NULL, 0, dev);
    OPS->cuModuleLoadData(&mod, tp_good);
    setenv("VGC_CPU_MAX_INSNS", "200000", 1);
    rc = tp_launch(mod, "spin", 4, 64, NULL);
    unsetenv("VGC_CPU_MAX_INSNS");
    check(rc == CUDA_ERROR_LAUNCH_TIMEOUT, "an endless loop hits the "
          "budget: CUDA_ERROR_LAUNCH_TIMEOUT (got %d)", rc);
    check(OPS->cuCtxDestroy_v2(ctx) == CUDA_SUCCESS, "destroy that context");

    OPS->cuCtxCreate_v4(&ctx, NULL, 0, dev);
    OPS->cuModuleLoadData(&mod, tp_good);
    pthread_create(&t, NULL, tp_canceller, NULL);
    rc = tp_launch(mod, "spin", 64, 256, NULL);
    pthread_join(t, NULL);
    vgc_cpu_cancel_clear();
    check(rc == CUDA_ERROR_LAUNCH_TIMEOUT, "vgc_cpu_cancel_all stops a "
          "spinning launch (got %d)", rc);
    check(OPS->cuCtxDestroy_v2(ctx) == CUDA_SUCCESS, "destroy that context");
}

static void test_illegal(CUdevice dev, CUcontext good)
{
    CUcontext ctx;
    CUmodule mod;
    CUdeviceptr d, d2;
    void *params[] = { &d };
    CUresult rc;

    OPS->cuCtxCreate_v4(&ctx, NULL, 0, dev);
    OPS->cuModuleLoadData(&mod, tp_good);
    OPS->cuMemAlloc_v2(&d, 64);
    rc = tp_launch(mod, "wild", 1, 1, params);
    check(rc == CUDA_ERROR_ILLEGAL_ADDRESS, "store past an allocation: "
          "CUDA_ERROR_ILLEGAL_ADDRESS (got %d)", rc);
    check(strstr(cpu_launch_last_error(), "outside") != NULL,
          "message: %s", cpu_launch_last_error());
    rc = OPS->cuMemAlloc_v2(&d2, 64);
    check(rc == CUDA_ERROR_ILLEGAL_ADDRESS, "sticky in that context "
          "(got %d)", rc);
    check(OPS->cuCtxDestroy_v2(ctx) == CUDA_SUCCESS, "destroy it");
    OPS->cuCtxSetCurrent(good);
    rc = OPS->cuMemAlloc_v2(&d2, 64);
    check(rc == CUDA_SUCCESS, "other contexts unaffected (got %d)", rc);
    OPS->cuMemFree_v2(d2);

    OPS->cuCtxCreate_v4(&ctx, NULL, 0, dev);
    OPS->cuModuleLoadData(&mod, tp_good);
    rc = tp_launch(mod, "shwild", 1, 32, NULL);
    check(rc == CUDA_ERROR_ILLEGAL_ADDRESS, "shared store past the block's "
          "shared memory: CUDA_ERROR_ILLEGAL_ADDRESS (got %d)", rc);
    OPS->cuCtxDestroy_v2(ctx);
    OPS->cuCtxSetCurrent(good);
}

/* Mutated PTX: the decoder and interpreter must survive all of it. */
static void test_mutations(void)
{
    static const char *const junk[] = {
        "{", "}", ";", "[", "]", "%r1", "%rd9999", "@%p1 ", "$L__BB0_2",
        "bra $nowhere;", ".reg .b32 %r<99999999>;", "ld.global.v4.u32 ",
        "0f7FC00000", "-", ",", ".shared .b8 x[4294967296];", "|", "!",
        "shfl.sync.idx.b32 %r1|%p1, %r2, 31, 31, -1;", "\"", "/*", "<", ">",
    };
    size_t len = strlen(tp_good);
    char *buf = malloc(len + 256);
    uint32_t x = 2463534242u;
    int i, parsed = 0, ran = 0;
    CUdeviceptr d;
    int n = 64;
    void *params[] = { &d, &n };

    OPS->cuMemAlloc_v2(&d, 256);
    setenv("VGC_CPU_MAX_INSNS", "20000", 1);
    for (i = 0; i < 3000; i++) {
        size_t l = len, k, at;
        int muts = 1 + (int)(x % 4);
        struct ptx_module *m = NULL;
        char err[128];
        CUmodule mod;

        memcpy(buf, tp_good, len + 1);
        for (k = 0; k < (size_t)muts; k++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if (l == 0) {
                break;
            }
            at = x % l;
            switch ((x >> 8) % 4) {
            case 0:             /* flip a byte */
                buf[at] = (char)(buf[at] ^ (1 << ((x >> 16) % 7)));
                break;
            case 1:             /* delete a run */
                memmove(buf + at, buf + at + 1, l - at);
                l--;
                break;
            case 2: {           /* insert junk */
                const char *j = junk[(x >> 12) %
                                     (sizeof(junk) / sizeof(junk[0]))];
                size_t jl = strlen(j);

                if (l + jl < len + 200) {
                    memmove(buf + at + jl, buf + at, l - at + 1);
                    memcpy(buf + at, j, jl);
                    l += jl;
                }
                break;
            }
            default:            /* truncate */
                l = at;
                buf[l] = 0;
                break;
            }
        }
        buf[l] = 0;
        if (ptx_module_parse(buf, l, &m, err, sizeof(err)) == CUDA_SUCCESS) {
            parsed++;
            ptx_module_free(m);
        }
        /* Through the executor, launching what loads. */
        if (OPS->cuModuleLoadData(&mod, buf) == CUDA_SUCCESS) {
            CUresult rc = tp_launch(mod, "add1", 2, 64, params);

            ran += rc == CUDA_SUCCESS;
            OPS->cuModuleUnload(mod);
            if (rc == CUDA_ERROR_ILLEGAL_ADDRESS ||
                rc == CUDA_ERROR_LAUNCH_TIMEOUT ||
                rc == CUDA_ERROR_LAUNCH_FAILED ||
                rc == CUDA_ERROR_MISALIGNED_ADDRESS) {
                /* Sticky: start over in a fresh context. */
                CUcontext c;
                CUdevice dev = 0;

                OPS->cuCtxGetCurrent(&c);
                OPS->cuCtxDestroy_v2(c);
                OPS->cuCtxCreate_v4(&c, NULL, 0, dev);
                OPS->cuMemAlloc_v2(&d, 256);
            }
        }
    }
    unsetenv("VGC_CPU_MAX_INSNS");
    check(true, "3000 mutated modules: %d decoded, %d launches ran", parsed,
          ran);
    free(buf);
}

/* cuLink* with a PTX input, as numba-cuda does. */
static void test_link(void)
{
    CUlinkState ls;
    void *out = NULL;
    size_t size = 0;
    CUmodule mod;
    CUdeviceptr d;
    uint32_t v = 41;
    int n = 1;
    void *params[] = { &d, &n };

    check(OPS->cuLinkCreate_v2(0, NULL, NULL, &ls) == CUDA_SUCCESS,
          "cuLinkCreate");
    check(OPS->cuLinkAddData_v2(ls, CU_JIT_INPUT_PTX, (void *)tp_good,
                                sizeof(tp_good), "t.ptx", 0, NULL, NULL) ==
          CUDA_SUCCESS, "cuLinkAddData PTX");
    check(OPS->cuLinkAddData_v2(ls, CU_JIT_INPUT_CUBIN, (void *)tp_good,
                                sizeof(tp_good), "t.cubin", 0, NULL, NULL) ==
          CUDA_ERROR_NOT_SUPPORTED, "cuLinkAddData cubin refused");
    check(OPS->cuLinkComplete(ls, &out, &size) == CUDA_SUCCESS && out &&
          size > 1, "cuLinkComplete");
    check(OPS->cuModuleLoadData(&mod, out) == CUDA_SUCCESS,
          "load the link output");
    OPS->cuMemAlloc_v2(&d, 4);
    OPS->cuMemcpyHtoD_v2(d, &v, 4);
    check(tp_launch(mod, "add1", 1, 32, params) == CUDA_SUCCESS,
          "run a kernel of the linked module");
    OPS->cuMemcpyDtoH_v2(&v, d, 4);
    check(v == 42, "result %u", v);
    OPS->cuMemFree_v2(d);
    OPS->cuModuleUnload(mod);
    check(OPS->cuLinkDestroy(ls) == CUDA_SUCCESS, "cuLinkDestroy");
}

int main(void)
{
    struct vgc_executor_config cfg = {
        .ndevices = 1,
        .device_memory = 1ULL << 30,
    };
    char *err = NULL;
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;

    ex = vgc_cpu_executor_create(&cfg, &err);
    if (!ex) {
        printf("FAIL - create the cpu executor: %s\n", err ? err : "?");
        return 1;
    }
    OPS->cuInit(0);
    OPS->cuDeviceGet(&dev, 0);
    check(OPS->cuCtxCreate_v4(&ctx, NULL, 0, dev) == CUDA_SUCCESS, "context");
    check(OPS->cuModuleLoadData(&mod, tp_good) == CUDA_SUCCESS,
          "load a PTX module");
    test_basic(mod);
    test_unknown(mod);
    test_illegal(dev, ctx);
    test_budget(dev);
    OPS->cuCtxSetCurrent(ctx);
    test_link();
    test_mutations();
    ex->destroy();
    printf("%d checks, %d failed\n", tp_checks, tp_fails);
    return tp_fails ? 1 : 0;
}
