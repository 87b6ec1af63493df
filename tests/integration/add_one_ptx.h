/*
 * add_one_ptx.h - one small module for the integration tests that launch a
 * kernel: add_one(p, n) adds 1 to p[0..n), plus two globals.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_ITEST_ADD_ONE_PTX_H
#define VGC_ITEST_ADD_ONE_PTX_H

/*
 * extern "C" __global__ void add_one(unsigned *p, unsigned n)
 *     { unsigned i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) p[i] += 1; }
 * plus two globals, generated with `nvcc -ptx -arch=sm_75` (CUDA 13.0) and
 * edited so that the globals are .visible with a plain .u32 initializer.
 */
static const char add_one_ptx[] =
    ".version 9.0\n"
    ".target sm_75\n"
    ".address_size 64\n"
    "\n"
    ".visible .global .align 4 .b8 g_table[256];\n"
    ".visible .global .align 4 .u32 g_init[4] = {11, 22, 33, 44};\n"
    "\n"
    ".visible .entry add_one(\n"
    "    .param .u64 add_one_param_0,\n"
    "    .param .u32 add_one_param_1\n"
    ")\n"
    "{\n"
    "    .reg .pred %p<2>;\n"
    "    .reg .b32 %r<8>;\n"
    "    .reg .b64 %rd<5>;\n"
    "\n"
    "    ld.param.u64 %rd1, [add_one_param_0];\n"
    "    ld.param.u32 %r2, [add_one_param_1];\n"
    "    mov.u32 %r3, %ctaid.x;\n"
    "    mov.u32 %r4, %ntid.x;\n"
    "    mov.u32 %r5, %tid.x;\n"
    "    mad.lo.s32 %r1, %r3, %r4, %r5;\n"
    "    setp.ge.u32 %p1, %r1, %r2;\n"
    "    @%p1 bra $L__BB0_2;\n"
    "\n"
    "    cvta.to.global.u64 %rd2, %rd1;\n"
    "    mul.wide.u32 %rd3, %r1, 4;\n"
    "    add.s64 %rd4, %rd2, %rd3;\n"
    "    ld.global.u32 %r6, [%rd4];\n"
    "    add.s32 %r7, %r6, 1;\n"
    "    st.global.u32 [%rd4], %r7;\n"
    "\n"
    "$L__BB0_2:\n"
    "    ret;\n"
    "}\n";

#endif /* VGC_ITEST_ADD_ONE_PTX_H */
