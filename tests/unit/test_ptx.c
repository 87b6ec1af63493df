/*
 * test_ptx.c - the cpu executor's PTX interpreter, in process: malformed
 * PTX never crashes the decoder or the interpreter (a mutation loop),
 * unknown instructions are named, wild addresses end the launch with a
 * sticky CUDA_ERROR_ILLEGAL_ADDRESS, and a kernel that spins forever is
 * stopped by the instruction budget or by vgc_cpu_cancel_all().
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <math.h>
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
#include "ptx_texture.h"

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

/* Device functions: early divergent ret, recursion, register arguments,
 * a guarded call, and vprintf. */
static const char tp_calls[] =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".extern .func (.param .b32 func_retval0) vprintf\n"
    "(\n  .param .b64 vprintf_param_0,\n  .param .b64 vprintf_param_1\n)\n;\n"
    ".global .align 1 .b8 $str[20] = {116, 61, 37, 100, 32, 118, 61, 37, "
    "108, 108, 100, 32, 102, 61, 37, 46, 50, 102, 10, 0};\n"
    ".func (.param .b32 rsum_ret) rsum (.param .b32 rsum_n);\n"
    ".func (.param .b32 twice_ret) twice (.param .b32 twice_a)\n{\n"
    "  .reg .b32 %r<3>;\n  .reg .pred %p<2>;\n"
    "  ld.param.b32 %r1, [twice_a];\n  setp.lt.s32 %p1, %r1, 10;\n"
    "  @%p1 bra $SMALL;\n  add.s32 %r2, %r1, %r1;\n"
    "  st.param.b32 [twice_ret], %r2;\n  ret;\n"
    "$SMALL:\n  mul.lo.s32 %r2, %r1, 3;\n"
    "  st.param.b32 [twice_ret], %r2;\n  ret;\n}\n"
    ".func (.param .b32 rsum_ret) rsum (.param .b32 rsum_n)\n{\n"
    "  .reg .b32 %r<4>;\n  .reg .pred %p<2>;\n"
    "  ld.param.b32 %r1, [rsum_n];\n  setp.le.s32 %p1, %r1, 0;\n"
    "  @%p1 bra $ZERO;\n  sub.s32 %r2, %r1, 1;\n"
    "  { // callseq\n  .param .b32 a0;\n  st.param.b32 [a0+0], %r2;\n"
    "  .param .b32 r0;\n  call.uni (r0), rsum, (a0);\n"
    "  ld.param.b32 %r3, [r0+0];\n  }\n"
    "  add.s32 %r3, %r3, %r1;\n  st.param.b32 [rsum_ret], %r3;\n  ret;\n"
    "$ZERO:\n  mov.u32 %r3, 0;\n  st.param.b32 [rsum_ret], %r3;\n  ret;\n}\n"
    ".visible .entry calls(.param .u64 calls_param_0,"
    " .param .u32 calls_param_1)\n{\n"
    "  .reg .b32 %r<8>;\n  .reg .b64 %rd<5>;\n  .reg .pred %p<3>;\n"
    "  ld.param.u64 %rd1, [calls_param_0];\n"
    "  ld.param.u32 %r1, [calls_param_1];\n  mov.u32 %r2, %tid.x;\n"
    "  setp.ge.s32 %p1, %r2, %r1;\n  @%p1 bra $END;\n"
    "  {\n  .param .b32 a0;\n  st.param.b32 [a0], %r2;\n"
    "  .param .b32 r0;\n  call.uni (r0), twice, (a0);\n"
    "  ld.param.b32 %r3, [r0];\n  }\n"
    "  and.b32 %r4, %r2, 7;\n"
    "  {\n  .param .b32 a1;\n  st.param.b32 [a1], %r4;\n"
    "  .param .b32 r1;\n  call (r1), rsum, (a1);\n"
    "  ld.param.b32 %r5, [r1];\n  }\n"
    "  and.b32 %r6, %r2, 1;\n  setp.eq.s32 %p2, %r6, 0;\n"
    "  mov.u32 %r7, 0;\n  @%p2 call (%r7), twice, (%r5);\n"
    "  cvta.to.global.u64 %rd2, %rd1;\n  mul.wide.s32 %rd3, %r2, 12;\n"
    "  add.s64 %rd4, %rd2, %rd3;\n  st.global.u32 [%rd4], %r3;\n"
    "  st.global.u32 [%rd4+4], %r5;\n  st.global.u32 [%rd4+8], %r7;\n"
    "$END:\n  ret;\n}\n"
    ".visible .entry deep(.param .u64 deep_param_0,"
    " .param .u32 deep_param_1)\n{\n"
    "  .reg .b32 %r<3>;\n  mov.u32 %r1, 100;\n"
    "  call.uni (%r2), rsum, (%r1);\n  ret;\n}\n"
    ".visible .entry pf(.param .u64 pf_param_0, .param .u32 pf_param_1)\n{\n"
    "  .local .align 8 .b8 depot[24];\n"
    "  .reg .b32 %r<3>;\n  .reg .b64 %rd<8>;\n  .reg .f64 %fd<2>;\n"
    "  mov.u32 %r1, %tid.x;\n  mov.u64 %rd1, depot;\n"
    "  cvta.local.u64 %rd2, %rd1;\n  st.local.u32 [%rd1], %r1;\n"
    "  cvt.s64.s32 %rd3, %r1;\n  mul.lo.s64 %rd3, %rd3, 1099511627776;\n"
    "  st.local.u64 [%rd1+8], %rd3;\n  cvt.rn.f64.s32 %fd1, %r1;\n"
    "  st.local.f64 [%rd1+16], %fd1;\n  cvta.global.u64 %rd4, $str;\n"
    "  {\n  .param .b64 p0;\n  st.param.b64 [p0+0], %rd4;\n"
    "  .param .b64 p1;\n  st.param.b64 [p1+0], %rd2;\n"
    "  .param .b32 rv;\n  call.uni (rv), vprintf, (p0, p1);\n"
    "  ld.param.b32 %r2, [rv+0];\n  }\n"
    "  ld.param.u64 %rd5, [pf_param_0];\n  cvta.to.global.u64 %rd6, %rd5;\n"
    "  mul.wide.u32 %rd7, %r1, 4;\n  add.s64 %rd6, %rd6, %rd7;\n"
    "  st.global.u32 [%rd6], %r2;\n  ret;\n}\n";

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
static void test_mutations(const char *src, const char *kernel, int iters)
{
    static const char *const junk[] = {
        "{", "}", ";", "[", "]", "%r1", "%rd9999", "@%p1 ", "$L__BB0_2",
        "bra $nowhere;", ".reg .b32 %r<99999999>;", "ld.global.v4.u32 ",
        "0f7FC00000", "-", ",", ".shared .b8 x[4294967296];", "|", "!",
        "shfl.sync.idx.b32 %r1|%p1, %r2, 31, 31, -1;", "\"", "/*", "<", ">",
        "call.uni (r0), rsum, (a0);", "call twice;", "(", ")", ".param .b32 q;",
        "call (%r7), twice, (%r5, %r5, 7);", "ret;",
    };
    size_t len = strlen(src);
    char *buf = malloc(len + 256);
    uint32_t x = 2463534242u;
    int i, parsed = 0, ran = 0;
    CUdeviceptr d;
    int n = 64;
    void *params[] = { &d, &n };

    OPS->cuMemAlloc_v2(&d, 256);
    setenv("VGC_CPU_MAX_INSNS", "20000", 1);
    for (i = 0; i < iters; i++) {
        size_t l = len, k, at;
        int muts = 1 + (int)(x % 4);
        struct ptx_module *m = NULL;
        char err[128];
        CUmodule mod;

        memcpy(buf, src, len + 1);
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
            CUresult rc = tp_launch(mod, kernel, 2, 64, params);

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
    check(true, "%d mutated modules (%s): %d decoded, %d launches ran",
          iters, kernel, parsed, ran);
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

/*
 * Long mangled names (numba-cuda's run to ~290 characters): the kernel,
 * its parameters and a .common .global past 256 characters decode and
 * run; a name past CPU_NAME_MAX is refused, not overrun.
 */
static CUresult tp_long_names(size_t len, uint32_t *out)
{
    char *k = malloc(len + 1), *g = malloc(len + 8), *src = malloc(8 * len + 1024);
    CUmodule mod;
    CUdeviceptr d;
    CUresult rc = CUDA_ERROR_OUT_OF_MEMORY;
    void *params[] = { &d };

    if (k && g && src) {
        memset(k, 'k', len);
        memcpy(k, "_Z", 2);
        k[len] = 0;
        snprintf(g, len + 8, "%sEnv", k);
        g[2] = 'G';
        snprintf(src, 8 * len + 1024,
                 ".version 8.0\n.target sm_80\n.address_size 64\n"
                 ".common .global .align 4 .u32 %s;\n"
                 ".visible .entry %s(\n  .param .u64 %s_param_0\n)\n{\n"
                 "  .reg .b32 %%r<3>;\n  .reg .b64 %%rd<4>;\n"
                 "  ld.param.u64 %%rd1, [%s_param_0];\n"
                 "  cvta.to.global.u64 %%rd2, %%rd1;\n"
                 "  mov.u64 %%rd3, %s;\n  ld.global.u32 %%r1, [%%rd3];\n"
                 "  add.s32 %%r2, %%r1, 42;\n  st.global.u32 [%%rd2], %%r2;\n"
                 "  ret;\n}\n", g, k, k, k, g);
        rc = OPS->cuModuleLoadData(&mod, src);
        if (rc == CUDA_SUCCESS) {
            OPS->cuMemAlloc_v2(&d, 4);
            rc = tp_launch(mod, k, 1, 1, params);
            OPS->cuMemcpyDtoH_v2(out, d, 4);
            OPS->cuMemFree_v2(d);
            OPS->cuModuleUnload(mod);
        }
    }
    free(k);
    free(g);
    free(src);
    return rc;
}

static void test_long_names(void)
{
    uint32_t v = 0;
    CUresult rc = tp_long_names(300, &v);

    check(rc == CUDA_SUCCESS && v == 42, "300-character kernel, parameter "
          "and .common .global names: rc %d, result %u", rc, v);
    rc = tp_long_names(CPU_NAME_MAX + 100, &v);
    check(rc != CUDA_SUCCESS, "a name past CPU_NAME_MAX is refused (rc %d)",
          rc);
}

static void test_calls(void)
{
    enum { N = 40 };
    uint32_t host[N * 3], pr[4];
    CUdeviceptr d, dp;
    CUmodule mod;
    int n = N, i, bad = 0;
    void *params[] = { &d, &n };
    void *pparams[] = { &dp, &n };
    char out[256];
    size_t len;
    CUresult rc;

    rc = OPS->cuModuleLoadData(&mod, tp_calls);
    check(rc == CUDA_SUCCESS, "load a module with device functions (%d)", rc);
    if (rc != CUDA_SUCCESS) {
        return;
    }
    OPS->cuMemAlloc_v2(&d, sizeof(host));
    OPS->cuMemsetD8_v2(d, 0xee, sizeof(host));
    rc = tp_launch(mod, "calls", 1, 64, params);
    check(rc == CUDA_SUCCESS, "calls runs (%d: %s)", rc,
          cpu_launch_last_error());
    OPS->cuMemcpyDtoH_v2(host, d, sizeof(host));
    for (i = 0; i < N; i++) {
        uint32_t k = (uint32_t)i & 7, sum = k * (k + 1) / 2;
        uint32_t tw = i < 10 ? 3u * (uint32_t)i : 2u * (uint32_t)i;

        bad += host[i * 3] != tw;
        bad += host[i * 3 + 1] != sum;
        bad += host[i * 3 + 2] != (i & 1 ? 0 : sum < 10 ? 3 * sum : 2 * sum);
    }
    check(bad == 0, "call/ret: divergent ret, recursion, register and "
          "guarded calls (%d wrong)", bad);
    rc = tp_launch(mod, "deep", 1, 1, params);
    check(rc == CUDA_ERROR_NOT_SUPPORTED &&
          strstr(cpu_launch_last_error(), "rsum") != NULL,
          "recursion past the bound: NOT_SUPPORTED naming the call (%d: %s)",
          rc, cpu_launch_last_error());
    /* vprintf: the text is kept for the context until drained. */
    vgc_cpu_printf_drain(NULL, out, sizeof(out));
    OPS->cuMemAlloc_v2(&dp, sizeof(pr));
    n = 3;
    rc = tp_launch(mod, "pf", 1, 3, pparams);
    check(rc == CUDA_SUCCESS, "vprintf kernel runs (%d: %s)", rc,
          cpu_launch_last_error());
    OPS->cuMemcpyDtoH_v2(pr, dp, 3 * sizeof(uint32_t));
    check(pr[0] == 3 && pr[1] == 3 && pr[2] == 3,
          "vprintf returns the number of arguments");
    len = vgc_cpu_printf_drain(NULL, out, sizeof(out) - 1);
    out[len] = 0;
    check(strcmp(out, "t=0 v=0 f=0.00\nt=1 v=1099511627776 f=1.00\n"
                      "t=2 v=2199023255552 f=2.00\n") == 0,
          "printf output, in lane order, drained: '%s'", out);
    check(vgc_cpu_printf_drain(NULL, out, sizeof(out)) == 0,
          "drained once");
    /* A small cap: drain in pieces. */
    rc = tp_launch(mod, "pf", 1, 3, pparams);
    len = vgc_cpu_printf_drain(NULL, out, 10);
    len += vgc_cpu_printf_drain(NULL, out + len, sizeof(out) - 1 - len);
    out[len] = 0;
    check(rc == CUDA_SUCCESS && len == 69 && strncmp(out, "t=0 v=0 f=0.00\nt=1", 18) == 0,
          "printf output drained in pieces (%zu bytes)", len);
    OPS->cuMemFree_v2(dp);
    OPS->cuMemFree_v2(d);
    OPS->cuModuleUnload(mod);
}

/* ptx_printf_format against a fake device memory. */
struct tp_mem {
    uint64_t base;
    uint8_t b[256];
};

static bool tp_mem_read(void *opaque, uint64_t addr, void *dst, size_t n)
{
    struct tp_mem *m = opaque;

    if (addr < m->base || addr - m->base > sizeof(m->b) ||
        n > sizeof(m->b) - (addr - m->base)) {
        return false;
    }
    memcpy(dst, m->b + (addr - m->base), n);
    return true;
}

static const char *tp_fmt(struct tp_mem *m, const char *fmt, const void *args,
                          size_t alen, int *nargs)
{
    static char out[512];
    size_t len = 0;

    memset(m->b, 0, sizeof(m->b));
    strcpy((char *)m->b, fmt);
    if (alen) {
        memcpy(m->b + 128, args, alen);
    }
    strcpy((char *)m->b + 200, "hello");
    *nargs = ptx_printf_format(tp_mem_read, m, m->base, m->base + 128, out,
                               sizeof(out) - 1, &len);
    out[len] = 0;
    return out;
}

static void test_printf_format(void)
{
    struct tp_mem m = { .base = 0x10000 };
    const char *r;
    int k;
    {
        struct {
            int32_t d, u;
            int64_t ll;
            double f;
            uint64_t s;
            int32_t c, x;
            uint64_t lu, p;
            double e, g;
        } e = { -42, (int32_t)4000000000u, -1234567890123LL, 3.14159,
                0x10000 + 200, 'Z', 0xbeef, 18446744073709551615ULL,
                0xdead0, 12345.678, 0.5 };

        r = tp_fmt(&m, "%i %u %lld %.3f %s %c %X %llu %p %e %g %%", &e,
                   sizeof(e), &k);
        check(strcmp(r, "-42 4000000000 -1234567890123 3.142 hello Z BEEF "
                     "18446744073709551615 0xdead0 1.234568e+04 0.5 %") == 0
              && k == 11, "printf conversions: '%s' (%d args)", r, k);
    }
    {
        struct {
            int32_t w, v, l, z, o;
            int32_t pad;
            uint64_t s;
            double f;
        } c = { 6, 17, 3, 8, 8, 0, 0x10000 + 200, 2.25 };

        r = tp_fmt(&m, "[%*d] [%-5d] [%05d] [%o] [%.2s] [%10.1f] [%ld]", &c,
                   sizeof(c), &k);
        check(strncmp(r, "[    17] [3    ] [00008] [10] [he] [       2.2]",
                      46) == 0, "printf width, flags, precision: '%s'", r);
    }
    r = tp_fmt(&m, "no args %% done\n", NULL, 0, &k);
    check(strcmp(r, "no args % done\n") == 0 && k == 0,
          "printf without arguments");
    {
        uint64_t bad = 0xbad000;

        r = tp_fmt(&m, "[%s] [%s]", (uint64_t[]){ 0, bad }, 16, &k);
        check(strcmp(r, "[(null)] []") == 0,
              "printf %%s of NULL and of unmapped memory: '%s'", r);
    }
    /* argument buffer running off mapped memory */
    {
        char out[128];
        size_t len = 0;

        memset(m.b, 0, sizeof(m.b));
        strcpy((char *)m.b, "%d %d");
        k = ptx_printf_format(tp_mem_read, &m, m.base, m.base + 252, out,
                              sizeof(out), &len);
        check(k == -1 && len > 0, "printf with an unreadable argument "
              "buffer: -1 and a note");
        k = ptx_printf_format(tp_mem_read, &m, 0x42, m.base, out,
                              sizeof(out), &len);
        check(k == -1, "printf with an unreadable format: -1");
        /* output bounded by cap */
        strcpy((char *)m.b, "%100d");
        memset(m.b + 128, 0, 8);
        k = ptx_printf_format(tp_mem_read, &m, m.base, m.base + 128, out, 16,
                              &len);
        check(k == 1 && len == 16, "printf output bounded by its cap");
    }
}

/* ---- textures and surfaces ------------------------------------------------ */

/* tex.2d at (tid * 0.25, 0.5) and a surface read-modify-write, as nvcc
 * writes them; the object comes as a u32 parameter so that the mutation
 * loop's (pointer, int) parameters fit. */
static const char tp_tex[] =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry texk(.param .u64 texk_param_0, .param .u32 texk_param_1)\n{\n"
    "  .reg .b32 %r<4>;\n  .reg .f32 %f<8>;\n  .reg .b64 %rd<6>;\n"
    "  ld.param.u64 %rd1, [texk_param_0];\n  ld.param.u32 %r1, [texk_param_1];\n"
    "  cvt.u64.u32 %rd2, %r1;\n  mov.u32 %r2, %tid.x;\n"
    "  cvt.rn.f32.s32 %f1, %r2;\n  mul.f32 %f2, %f1, 0f3E800000;\n"
    "  tex.2d.v4.f32.f32 {%f3, %f4, %f5, %f6}, [%rd2, {%f2, 0f3F000000}];\n"
    "  cvta.to.global.u64 %rd3, %rd1;\n  mul.wide.u32 %rd4, %r2, 4;\n"
    "  add.s64 %rd5, %rd3, %rd4;\n  st.global.f32 [%rd5], %f3;\n  ret;\n}\n"
    ".visible .entry surfk(.param .u64 surfk_param_0, .param .u32 surfk_param_1)\n{\n"
    "  .reg .b32 %r<8>;\n  .reg .b64 %rd<3>;\n"
    "  ld.param.u32 %r1, [surfk_param_1];\n  cvt.u64.u32 %rd2, %r1;\n"
    "  mov.u32 %r2, %tid.x;\n  shl.b32 %r3, %r2, 2;\n  mov.u32 %r4, 0;\n"
    "  suld.b.2d.b32.clamp {%r5}, [%rd2, {%r3, %r4}];\n"
    "  add.s32 %r5, %r5, 1;\n"
    "  sust.b.2d.b32.zero [%rd2, {%r3, %r4}], {%r5};\n  ret;\n}\n"
    ".visible .entry surftrap(.param .u64 surftrap_param_0, .param .u32 surftrap_param_1)\n{\n"
    "  .reg .b32 %r<4>;\n  .reg .b64 %rd<3>;\n"
    "  ld.param.u32 %r1, [surftrap_param_1];\n  cvt.u64.u32 %rd2, %r1;\n"
    "  mov.u32 %r2, 4096;\n  mov.u32 %r3, 0;\n"
    "  sust.b.2d.b32.trap [%rd2, {%r2, %r3}], {%r3};\n  ret;\n}\n";

static float tp_f(uint32_t b)
{
    float f;

    memcpy(&f, &b, 4);
    return f;
}

static uint32_t tp_b(float f)
{
    uint32_t b;

    memcpy(&b, &f, 4);
    return b;
}

/* A fetch at level of detail 0 from a view whose only level is the one
 * its base fields describe (as cpu_tex_view fills them). */
static void tp_sample(const struct cpu_tex_view *v, unsigned mod, const uint32_t c[4],
                      uint32_t out[4])
{
    static struct cpu_tex_view one;

    one = *v;
    one.nlevels = 1;
    one.lv[0] = (struct cpu_tex_level){ .data = v->data, .w = v->w, .h = v->h, .d = v->d,
                                        .pitch = v->pitch, .slice = v->slice };
    ptx_tex_sample(&one, mod, c, 0.0f, out);
}

/* One fetch of a 1D view at x; the first channel as a float. */
static float tp_fetch1(const struct cpu_tex_view *v, float x)
{
    uint32_t c[4] = { tp_b(x), 0, 0, 0 }, out[4];

    tp_sample(v, 1, c, out);
    return tp_f(out[0]);
}

static void test_tex_filter(void)
{
    float t1[4] = { 5, 10, 20, 30 };
    CUDA_TEXTURE_DESC td;
    struct cpu_tex_view v = {
        .data = (uint8_t *)t1, .fmt = CU_AD_FORMAT_FLOAT, .nch = 1, .elem = 4, .dims = 1,
        .w = 4, .h = 1, .d = 1, .pitch = 16, .slice = 16, .tex = &td,
    };
    uint32_t c[4] = { 0, 0, 0, 0 }, out[4];
    float f;

    memset(&td, 0, sizeof(td));
    td.addressMode[0] = CU_TR_ADDRESS_MODE_CLAMP;
    td.filterMode = CU_TR_FILTER_MODE_POINT;
    check(tp_fetch1(&v, 2.99f) == 20 && tp_fetch1(&v, -7) == 5 && tp_fetch1(&v, 9) == 30,
          "point, clamp: floor(x), clamped to the edges");
    td.filterMode = CU_TR_FILTER_MODE_LINEAR;
    check(tp_fetch1(&v, 1.0f) == 7.5f, "linear halfway between texels 0 and 1: 7.5");
    f = tp_fetch1(&v, 1.3f);
    check(f == 5 + 5 * (205.0f / 256.0f), "linear weight in 9-bit fixed point: "
          "alpha 0.8 -> 205/256 (got %.9g)", f);
    check(tp_fetch1(&v, 0.25f) == 5, "linear, clamp: below the first centre reads texel 0");
    td.addressMode[0] = CU_TR_ADDRESS_MODE_BORDER;
    td.borderColor[0] = 100;
    f = tp_fetch1(&v, 0.25f);
    check(f == 0.25f * 100 + 0.75f * 5, "linear, border: the border colour blends in (got %g)", f);
    td.filterMode = CU_TR_FILTER_MODE_POINT;
    check(tp_fetch1(&v, 4.0f) == 100 && tp_fetch1(&v, -0.01f) == 100,
          "point, border: outside reads the border colour");
    td.flags = CU_TRSF_NORMALIZED_COORDINATES;
    td.addressMode[0] = CU_TR_ADDRESS_MODE_WRAP;
    check(tp_fetch1(&v, 1.3f) == 10 && tp_fetch1(&v, -0.3f) == 20,
          "point, wrap, normalized: frac(x) * 4");
    td.addressMode[0] = CU_TR_ADDRESS_MODE_MIRROR;
    check(tp_fetch1(&v, 1.1f) == 30 && tp_fetch1(&v, -0.1f) == 5 && tp_fetch1(&v, 2.3f) == 10,
          "point, mirror, normalized: odd periods reflected");
    td.filterMode = CU_TR_FILTER_MODE_LINEAR;
    td.addressMode[0] = CU_TR_ADDRESS_MODE_WRAP;
    f = tp_fetch1(&v, 0.0f);
    check(f == 0.5f * 30 + 0.5f * 5, "linear, wrap: texel -1 is texel 3 (got %g)", f);
    td.addressMode[0] = CU_TR_ADDRESS_MODE_CLAMP;
    td.flags = 0;

    /* integer coordinates: tex1Dfetch */
    c[0] = 2;
    tp_sample(&v, 1 | PTX_TEX_INT_COORDS, c, out);
    check(tp_f(out[0]) == 20, "integer coordinates index elements, unfiltered");
    c[0] = (uint32_t)-3;
    tp_sample(&v, 1 | PTX_TEX_INT_COORDS, c, out);
    check(tp_f(out[0]) == 5, "integer coordinates clamp");

    /* formats */
    uint8_t u8[4] = { 200, 0, 255, 1 };
    struct cpu_tex_view b = v;
    b.data = u8;
    b.fmt = CU_AD_FORMAT_UNSIGNED_INT8;
    b.nch = 2;
    b.elem = 2;
    b.w = 2;
    b.pitch = b.slice = 4;
    td.filterMode = CU_TR_FILTER_MODE_POINT;
    c[0] = tp_b(0.5f);
    tp_sample(&b, 1, c, out);
    check(tp_f(out[0]) == 200 / 255.0f && tp_f(out[1]) == 0 && out[2] == 0 &&
          tp_f(out[3]) == 1.0f, "uchar2 as normalized float; missing z 0, w 1");
    td.flags = CU_TRSF_READ_AS_INTEGER;
    tp_sample(&b, 1, c, out);
    check(out[0] == 200 && out[3] == 1, "uchar2 read as integers");
    td.flags = CU_TRSF_SRGB;
    u8[0] = 10;
    u8[1] = 188;
    tp_sample(&b, 1, c, out);
    check(tp_f(out[0]) == (10 / 255.0f) / 12.92f &&
          fabsf(tp_f(out[1]) - 0.5029f) < 1e-4f && tp_f(out[3]) == 1.0f,
          "sRGB: colour channels converted to linear (%g %g)", tp_f(out[0]), tp_f(out[1]));
    u8[1] = 0;
    td.flags = CU_TRSF_READ_AS_INTEGER;
    b.fmt = CU_AD_FORMAT_SIGNED_INT8;
    u8[0] = 0x80;
    td.flags = 0;
    tp_sample(&b, 1, c, out);
    check(tp_f(out[0]) == -1.0f, "signed char -128 reads as -1.0");
    td.flags = CU_TRSF_READ_AS_INTEGER;
    tp_sample(&b, 1, c, out);
    check((int32_t)out[0] == -128, "and as the integer -128, sign-extended");
    uint16_t hf[2] = { 0x3c00, 0xc000 };
    b.data = (uint8_t *)hf;
    b.fmt = CU_AD_FORMAT_HALF;
    b.nch = 1;
    td.flags = 0;
    tp_sample(&b, 1, c, out);
    f = tp_f(out[0]);
    c[0] = tp_b(1.5f);
    tp_sample(&b, 1, c, out);
    check(f == 1.0f && tp_f(out[0]) == -2.0f, "half texels read as floats");

    /* 2D bilinear */
    float t2[2][2] = { { 0, 10 }, { 20, 30 } };
    struct cpu_tex_view q = v;
    q.data = (uint8_t *)t2;
    q.w = 2;
    q.h = 2;
    q.pitch = 8;
    q.slice = 16;
    q.dims = 2;
    td.filterMode = CU_TR_FILTER_MODE_LINEAR;
    td.addressMode[1] = CU_TR_ADDRESS_MODE_CLAMP;
    c[0] = tp_b(1.0f);
    c[1] = tp_b(1.0f);
    tp_sample(&q, 2, c, out);
    check(tp_f(out[0]) == 15, "bilinear at the middle of four texels: their mean");
    c[0] = tp_b(1.5f);
    c[1] = tp_b(0.5f);
    tp_sample(&q, 2, c, out);
    check(tp_f(out[0]) == 10, "bilinear at a texel centre: the texel");

    /* two layers of 2x2: filtering stays inside the layer asked for */
    float tl[2][2][2] = { { { 0, 10 }, { 20, 30 } }, { { 100, 110 }, { 120, 130 } } };
    q.data = (uint8_t *)tl;
    q.d = 2;
    c[0] = tp_b(1.0f);
    c[1] = tp_b(1.0f);
    c[2] = 1;
    tp_sample(&q, 2 | PTX_TEX_LAYERED, c, out);
    check(tp_f(out[0]) == 115, "layered: bilinear within layer 1 (got %g)", tp_f(out[0]));
    c[2] = 7;
    td.filterMode = CU_TR_FILTER_MODE_POINT;
    tp_sample(&q, 2 | PTX_TEX_LAYERED, c, out);
    check(tp_f(out[0]) == 130, "layered: a layer past the last clamps (got %g)", tp_f(out[0]));

    /* cubemaps: six 2x2 faces holding 100 * face + 10 * row + column */
    {
        float cube[6][2][2];
        struct cpu_tex_view cv = q;
        static const float dirs[][3] = {
            { 1, -0.5f, 0.5f }, { -1, -0.5f, 0.5f }, { 0.5f, 1, 0.5f },
            { 0.5f, -1, 0.5f }, { -0.5f, 0.5f, 1 }, { 0.5f, 0.5f, -1 },
        };
        /* (s, t) per face from the guide's table: +x (-z, -y), -x (z, -y),
         * +y (x, z), -y (x, -z), +z (x, -y), -z (-x, -y) */
        static const float want[6] = { 10, 111, 211, 301, 400, 500 };
        bool ok = true;

        for (int f = 0; f < 6; f++) {
            for (int r = 0; r < 2; r++) {
                for (int col = 0; col < 2; col++) {
                    cube[f][r][col] = (float)(100 * f + 10 * r + col);
                }
            }
        }
        cv.data = (uint8_t *)cube;
        cv.d = 6;
        td.filterMode = CU_TR_FILTER_MODE_POINT;
        td.flags = 0;       /* cube coordinates are normalized anyway */
        for (int f = 0; f < 6; f++) {
            uint32_t cc[4] = { tp_b(dirs[f][0]), tp_b(dirs[f][1]), tp_b(dirs[f][2]), 0 };

            tp_sample(&cv, PTX_TEX_CUBE, cc, out);
            ok &= tp_f(out[0]) == want[f];
            if (tp_f(out[0]) != want[f]) {
                printf("# face %d: got %g want %g\n", f, tp_f(out[0]), want[f]);
            }
        }
        check(ok, "texCubemap: the major axis picks the face, the table orients it");
    }

    /* gather: the footprint counter-clockwise from the lower left */
    c[0] = tp_b(1.2f);
    c[1] = tp_b(0.9f);
    c[2] = 0;
    q.d = 1;
    tp_sample(&q, 2 | PTX_TEX_GATHER, c, out);
    check(tp_f(out[0]) == 20 && tp_f(out[1]) == 30 && tp_f(out[2]) == 10 && tp_f(out[3]) == 0,
          "tld4: (i, j+1), (i+1, j+1), (i+1, j), (i, j): %g %g %g %g",
          tp_f(out[0]), tp_f(out[1]), tp_f(out[2]), tp_f(out[3]));
    c[0] = tp_b(0.1f);
    tp_sample(&q, 2 | PTX_TEX_GATHER, c, out);
    check(tp_f(out[0]) == 20 && tp_f(out[1]) == 20 && tp_f(out[2]) == 0 && tp_f(out[3]) == 0,
          "tld4 at the left edge: clamped texels");
}

static void test_surf_locate(void)
{
    uint32_t px[2][2][4] = { { { 0 } } };
    struct cpu_tex_view v = {
        .data = (uint8_t *)px, .fmt = CU_AD_FORMAT_UNSIGNED_INT32, .nch = 1, .elem = 4,
        .dims = 2, .w = 4, .h = 2, .d = 1, .pitch = 16, .slice = 32,
    };
    uint8_t *p = NULL;

    check(ptx_surf_locate(&v, 2 | PTX_SURF_TRAP << 2, (int32_t[3]){ 12, 1, 0 }, 4, &p) == 0 &&
          p == (uint8_t *)&px[0][1][3], "surface: byte x 12, row 1 is element (3, 1)");
    check(ptx_surf_locate(&v, 2 | PTX_SURF_TRAP << 2, (int32_t[3]){ 13, 1, 0 }, 4, NULL) == -1,
          "trap: an access past the row end");
    check(ptx_surf_locate(&v, 2 | PTX_SURF_TRAP << 2, (int32_t[3]){ 0, 2, 0 }, 4, NULL) == -1 &&
          ptx_surf_locate(&v, 2 | PTX_SURF_TRAP << 2, (int32_t[3]){ -4, 0, 0 }, 4, NULL) == -1,
          "trap: past the last row, before the first byte");
    check(ptx_surf_locate(&v, 2 | PTX_SURF_ZERO << 2, (int32_t[3]){ 16, 0, 0 }, 4, NULL) == 1,
          "zero: dropped");
    check(ptx_surf_locate(&v, 2 | PTX_SURF_CLAMP << 2, (int32_t[3]){ 99, -5, 0 }, 4, &p) == 0 &&
          p == (uint8_t *)&px[0][0][3], "clamp: to the nearest element");
    v.d = 2;
    check(ptx_surf_locate(&v, 2 | PTX_SURF_TRAP << 2 | PTX_TEX_LAYERED, (int32_t[3]){ 4, 1, 1 },
                          4, &p) == 0 && p == (uint8_t *)&px[1][1][1],
          "layered: layer 1 is the second slice");
    check(ptx_surf_locate(&v, 2 | PTX_SURF_TRAP << 2 | PTX_TEX_LAYERED, (int32_t[3]){ 4, 1, 2 },
                          4, NULL) == -1, "layered: a layer past the last traps");
    v.d = 1;
    check(ptx_surf_locate(&v, 2 | PTX_SURF_CLAMP << 2, (int32_t[3]){ 0, 0, 0 }, 32, NULL) == -1,
          "an access wider than a row traps whatever the mode");
}

static void test_tex_kernels(CUdevice dev, CUcontext good)
{
    CUDA_ARRAY_DESCRIPTOR ad = { .Width = 4, .Height = 1, .Format = CU_AD_FORMAT_FLOAT,
                                 .NumChannels = 1 };
    CUDA_ARRAY3D_DESCRIPTOR a3 = { .Width = 4, .Height = 1, .Format = CU_AD_FORMAT_UNSIGNED_INT32,
                                   .NumChannels = 1, .Flags = CUDA_ARRAY3D_SURFACE_LDST };
    CUDA_RESOURCE_DESC rd;
    CUDA_TEXTURE_DESC td;
    CUDA_MEMCPY2D cp;
    float texels[4] = { 1, 2, 4, 8 }, got[8];
    uint32_t sv[4] = { 10, 20, 30, 40 };
    CUarray arr, sarr;
    CUtexObject tex;
    CUsurfObject surf;
    CUmodule mod;
    CUcontext ctx;
    CUdeviceptr d;
    unsigned h32;
    void *params[] = { &d, &h32 };
    CUresult rc;

    check(OPS->cuModuleLoadData(&mod, tp_tex) == CUDA_SUCCESS, "load the texture kernels");
    check(OPS->cuArrayCreate_v2(&arr, &ad) == CUDA_SUCCESS, "cuArrayCreate 4x1 float");
    memset(&cp, 0, sizeof(cp));
    cp.srcMemoryType = CU_MEMORYTYPE_HOST;
    cp.srcHost = texels;
    cp.srcPitch = sizeof(texels);
    cp.dstMemoryType = CU_MEMORYTYPE_ARRAY;
    cp.dstArray = arr;
    cp.WidthInBytes = sizeof(texels);
    cp.Height = 1;
    check(OPS->cuMemcpy2D_v2(&cp) == CUDA_SUCCESS, "fill it");
    cp.dstXInBytes = 4;
    check(OPS->cuMemcpy2D_v2(&cp) == CUDA_ERROR_INVALID_VALUE, "a row past its end: refused");
    memset(&rd, 0, sizeof(rd));
    rd.resType = CU_RESOURCE_TYPE_ARRAY;
    rd.res.array.hArray = arr;
    memset(&td, 0, sizeof(td));
    td.filterMode = CU_TR_FILTER_MODE_LINEAR;
    td.addressMode[0] = td.addressMode[1] = CU_TR_ADDRESS_MODE_CLAMP;
    check(OPS->cuTexObjectCreate(&tex, &rd, &td, NULL) == CUDA_SUCCESS, "linear texture");
    check(OPS->cuSurfObjectCreate(&surf, &rd) == CUDA_ERROR_INVALID_VALUE,
          "no surface on an array without SURFACE_LDST");
    OPS->cuMemAlloc_v2(&d, sizeof(got));
    h32 = (unsigned)tex;
    rc = tp_launch(mod, "texk", 1, 8, params);
    check(rc == CUDA_SUCCESS, "texk runs (%d: %s)", rc, cpu_launch_last_error());
    OPS->cuMemcpyDtoH_v2(got, d, sizeof(got));
    /* x = 0, .25, ..., 1.75: clamped at texel 0 up to x = 0.5, then blends */
    check(got[0] == 1 && got[2] == 1 && got[3] == 1.25f && got[4] == 1.5f && got[6] == 2 &&
          got[7] == 2.5f, "tex.2d linear through a kernel: %g %g %g %g %g %g %g %g",
          got[0], got[1], got[2], got[3], got[4], got[5], got[6], got[7]);
    check(OPS->cuArrayDestroy(arr) == CUDA_SUCCESS, "destroy the array under the texture");
    rc = tp_launch(mod, "texk", 1, 8, params);
    check(rc == CUDA_SUCCESS, "the texture keeps it alive meanwhile (%d)", rc);
    check(OPS->cuTexObjectDestroy(tex) == CUDA_SUCCESS, "destroy the texture: the array goes");
    check(OPS->cuTexObjectDestroy(tex) == CUDA_ERROR_INVALID_VALUE, "twice: refused");

    check(OPS->cuArray3DCreate_v2(&sarr, &a3) == CUDA_SUCCESS, "surface array");
    rd.res.array.hArray = sarr;
    check(OPS->cuSurfObjectCreate(&surf, &rd) == CUDA_SUCCESS, "surface object");
    cp.dstArray = sarr;
    cp.dstXInBytes = 0;
    cp.srcHost = sv;
    OPS->cuMemcpy2D_v2(&cp);
    h32 = (unsigned)surf;
    rc = tp_launch(mod, "surfk", 1, 6, params);
    check(rc == CUDA_SUCCESS, "surfk runs (%d: %s)", rc, cpu_launch_last_error());
    memset(&cp, 0, sizeof(cp));
    cp.srcMemoryType = CU_MEMORYTYPE_ARRAY;
    cp.srcArray = sarr;
    cp.dstMemoryType = CU_MEMORYTYPE_HOST;
    cp.dstHost = sv;
    cp.dstPitch = sizeof(sv);
    cp.WidthInBytes = sizeof(sv);
    cp.Height = 1;
    OPS->cuMemcpy2D_v2(&cp);
    /* lanes 4 and 5 load element 3 (clamp) and store nowhere (zero) */
    check(sv[0] == 11 && sv[1] == 21 && sv[2] == 31 && sv[3] == 41,
          "suld clamp, sust zero: %u %u %u %u", sv[0], sv[1], sv[2], sv[3]);

    OPS->cuCtxCreate_v4(&ctx, NULL, 0, dev);
    check(OPS->cuModuleLoadData(&mod, tp_tex) == CUDA_SUCCESS, "another context");
    OPS->cuMemAlloc_v2(&d, sizeof(got));
    rc = tp_launch(mod, "surfk", 1, 1, params);
    check(rc == CUDA_ERROR_ILLEGAL_ADDRESS, "another context's surface: "
          "CUDA_ERROR_ILLEGAL_ADDRESS (got %d)", rc);
    OPS->cuCtxDestroy_v2(ctx);
    OPS->cuCtxCreate_v4(&ctx, NULL, 0, dev);
    OPS->cuModuleLoadData(&mod, tp_tex);
    h32 = 0x12345;
    rc = tp_launch(mod, "texk", 1, 1, params);
    check(rc == CUDA_ERROR_ILLEGAL_ADDRESS, "a made-up texture: CUDA_ERROR_ILLEGAL_ADDRESS "
          "(got %d)", rc);
    OPS->cuCtxDestroy_v2(ctx);
    OPS->cuCtxSetCurrent(good);
    OPS->cuModuleLoadData(&mod, tp_tex);
    h32 = (unsigned)surf;
    rc = tp_launch(mod, "surftrap", 1, 1, params);
    check(rc == CUDA_ERROR_ILLEGAL_ADDRESS, "sust.trap past the end: "
          "CUDA_ERROR_ILLEGAL_ADDRESS (got %d)", rc);
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
    test_calls();
    test_printf_format();
    test_link();
    test_long_names();
    test_mutations(tp_good, "add1", 3000);
    test_mutations(tp_calls, "calls", 2000);
    test_tex_filter();
    test_surf_locate();
    OPS->cuCtxCreate_v4(&ctx, NULL, 0, dev);
    test_tex_kernels(dev, ctx);
    OPS->cuCtxCreate_v4(&ctx, NULL, 0, dev);
    test_mutations(tp_tex, "texk", 2000);
    ex->destroy();
    printf("%d checks, %d failed\n", tp_checks, tp_fails);
    return tp_fails ? 1 : 0;
}
