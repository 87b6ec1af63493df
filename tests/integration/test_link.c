/*
 * test_link.c - numba-cuda's way to a kernel: cuLinkCreate, cuLinkAddData
 * with PTX, cuLinkComplete, then cuModuleLoadData of the linked image,
 * which must stay valid until cuLinkDestroy.  The kernel doubles 1000
 * integers; on an executor that cannot run kernels the launch may say so.
 */
#include "check.h"

static const char twice_ptx[] =
    ".version 8.0\n.target sm_75\n.address_size 64\n"
    ".visible .entry twice(.param .u64 p, .param .u32 n)\n{\n"
    "  .reg .pred %q; .reg .b32 %r<6>; .reg .b64 %rd<4>;\n"
    "  ld.param.u64 %rd1, [p]; ld.param.u32 %r3, [n]; cvta.to.global.u64 %rd2, %rd1;\n"
    "  mov.u32 %r1, %ctaid.x; mov.u32 %r4, %ntid.x; mov.u32 %r5, %tid.x;\n"
    "  mad.lo.s32 %r1, %r1, %r4, %r5; setp.ge.u32 %q, %r1, %r3; @%q bra DONE;\n"
    "  mul.wide.u32 %rd3, %r1, 4; add.s64 %rd2, %rd2, %rd3; ld.global.u32 %r2, [%rd2];\n"
    "  shl.b32 %r2, %r2, 1; st.global.u32 [%rd2], %r2;\nDONE:\n  ret;\n}\n";

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    CUlinkState ls;
    CUmodule mod;
    CUfunction fn;
    CUdeviceptr d;
    void *image = NULL;
    size_t size = 0;
    unsigned v[1000], back[1000], n = 1000;

    itest_watchdog();
    itest_setup(&dev, &ctx);
    REQUIRE_CU(cuLinkCreate(0, NULL, NULL, &ls));
    CHECK_CU(cuLinkAddData(ls, CU_JIT_INPUT_PTX, (void *)twice_ptx, sizeof(twice_ptx),
                           "twice.ptx", 0, NULL, NULL));
    REQUIRE_CU(cuLinkComplete(ls, &image, &size));
    CHECK(image != NULL && size > 0, "cuLinkComplete returned an image (%zu bytes)", size);
    REQUIRE_CU(cuModuleLoadData(&mod, image));
    REQUIRE_CU(cuModuleGetFunction(&fn, mod, "twice"));
    CHECK_CU(cuLinkDestroy(ls));

    for (unsigned i = 0; i < n; i++) {
        v[i] = i * 3 + 1;
    }
    REQUIRE_CU(cuMemAlloc(&d, sizeof(v)));
    CHECK_CU(cuMemcpyHtoD(d, v, sizeof(v)));
    {
        void *args[] = { &d, &n };
        CUresult r = cuLaunchKernel(fn, (n + 127) / 128, 1, 1, 128, 1, 1, 0, NULL, args, NULL);
        if (r == CUDA_SUCCESS) {
            r = cuCtxSynchronize();
        }
        if (r == CUDA_ERROR_NOT_SUPPORTED) {
            itest_skip("the linked kernel's results", "this executor cannot run kernels");
        } else if (CHECK_CU(r) && CHECK_CU(cuMemcpyDtoH(back, d, sizeof(back)))) {
            unsigned bad = 0;
            for (unsigned i = 0; i < n; i++) {
                bad += back[i] != 2 * v[i];
            }
            CHECK(bad == 0, "the linked kernel doubled every element (%u wrong)", bad);
        }
    }
    CHECK_CU(cuMemFree(d));
    CHECK_CU(cuModuleUnload(mod));
    EXPECT_CU(cuLinkDestroy(ls), CUDA_ERROR_INVALID_HANDLE);
    itest_teardown(dev);
    return itest_done();
}
