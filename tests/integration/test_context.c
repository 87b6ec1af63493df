/*
 * test_context.c - context lifetime and the per-thread context stack.
 *
 * Proves that:
 *   - retaining the primary context twice yields the same handle, and its
 *     state reports it active;
 *   - cuCtxSetCurrent / cuCtxGetCurrent bind a context to the calling thread;
 *   - cuCtxCreate (CUDA 13 signature, NULL params) creates a new, distinct
 *     context and makes it current, pushing it on top of the previous one;
 *   - push / pop follow stack order and popping an empty stack fails;
 *   - cuCtxGetDevice, cuCtxSynchronize, cuCtxGetApiVersion work;
 *   - with no current context, context-scoped calls (cuMemAlloc,
 *     cuCtxSynchronize, cuCtxGetDevice) return CUDA_ERROR_INVALID_CONTEXT;
 *   - the current context is per thread: a new pthread starts without one,
 *     can bind its own, and destroying a context current to the calling
 *     thread pops it, without disturbing other threads.
 */
#include "check.h"

static CUdevice g_dev;
static CUcontext g_primary;

static void *thread_main(void *arg)
{
    (void)arg;
    itest_ctx("thread");
    CUcontext cur = (CUcontext)0x1;
    CHECK_CU(cuCtxGetCurrent(&cur));
    CHECK(cur == NULL, "a new thread starts with no current context (got %p)", (void *)cur);

    CUdeviceptr d = 0;
    EXPECT_CU(cuMemAlloc(&d, 256), CUDA_ERROR_INVALID_CONTEXT);

    CHECK_CU(cuCtxSetCurrent(g_primary));
    cur = NULL;
    CHECK_CU(cuCtxGetCurrent(&cur));
    CHECK(cur == g_primary, "thread can bind the primary context");
    if (CHECK_CU(cuMemAlloc(&d, 256)))
        CHECK_CU(cuMemFree(d));

    /* A private context created on this thread, destroyed while current. */
    CUcontext mine = NULL;
    if (CHECK_CU(cuCtxCreate(&mine, NULL, 0, g_dev))) {
        cur = NULL;
        CHECK_CU(cuCtxGetCurrent(&cur));
        CHECK(cur == mine, "cuCtxCreate on a thread makes the new context current");
        if (CHECK_CU(cuMemAlloc(&d, 4096)))
            CHECK_CU(cuMemFree(d));
        CHECK_CU(cuCtxDestroy(mine));
        /* "If ctx is current to the calling thread then ctx will also be
         *  popped from the current thread's context stack" */
        cur = NULL;
        CHECK_CU(cuCtxGetCurrent(&cur));
        CHECK(cur == g_primary, "destroying the current context pops it (primary is current again)");
    }

    CHECK_CU(cuCtxSetCurrent(NULL));
    cur = (CUcontext)0x1;
    CHECK_CU(cuCtxGetCurrent(&cur));
    CHECK(cur == NULL, "cuCtxSetCurrent(NULL) on the thread unbinds");
    itest_ctx("%s", "");
    return NULL;
}

int main(void)
{
    itest_watchdog();
    itest_init_driver();
    REQUIRE_CU(cuDeviceGet(&g_dev, 0));

    /* ---- primary context ------------------------------------------------ */
    CUcontext cur = (CUcontext)0x1;
    CHECK_CU(cuCtxGetCurrent(&cur));
    CHECK(cur == NULL, "no context is current right after cuInit");

    CUcontext p1 = NULL, p2 = NULL;
    REQUIRE_CU(cuDevicePrimaryCtxRetain(&p1, g_dev));
    REQUIRE_CU(cuDevicePrimaryCtxRetain(&p2, g_dev));
    CHECK(p1 != NULL, "primary context handle is non-NULL");
    CHECK(p1 == p2, "retaining the primary context twice returns the same handle (%p vs %p)",
          (void *)p1, (void *)p2);
    g_primary = p1;

    unsigned int pflags = 0xffffffffu;
    int active = -1;
    CHECK_CU(cuDevicePrimaryCtxGetState(g_dev, &pflags, &active));
    CHECK_EQ(active, 1, "primary context is active after retain");

    REQUIRE_CU(cuCtxSetCurrent(g_primary));
    cur = NULL;
    CHECK_CU(cuCtxGetCurrent(&cur));
    CHECK(cur == g_primary, "cuCtxSetCurrent/cuCtxGetCurrent round trip");

    CUdevice d = -1;
    CHECK_CU(cuCtxGetDevice(&d));
    CHECK_EQ(d, g_dev, "cuCtxGetDevice in the primary context");
    CHECK_CU(cuCtxSynchronize());

    unsigned int api = 0;
    CHECK_CU(cuCtxGetApiVersion(g_primary, &api));
    CHECK(api > 0, "cuCtxGetApiVersion(primary) = %u > 0", api);

    CUdeviceptr dp = 0;
    if (CHECK_CU(cuMemAlloc(&dp, 1024)))
        CHECK_CU(cuMemFree(dp));

    /* ---- created context: pushed on top of the primary ------------------ */
    CUcontext created = NULL;
    REQUIRE_CU(cuCtxCreate(&created, NULL, 0, g_dev));
    CHECK(created != NULL && created != g_primary,
          "cuCtxCreate returns a new context distinct from the primary");
    cur = NULL;
    CHECK_CU(cuCtxGetCurrent(&cur));
    CHECK(cur == created, "cuCtxCreate makes the new context current");
    d = -1;
    CHECK_CU(cuCtxGetDevice(&d));
    CHECK_EQ(d, g_dev, "cuCtxGetDevice in the created context");
    CHECK_CU(cuCtxSynchronize());
    api = 0;
    CHECK_CU(cuCtxGetApiVersion(created, &api));
    CHECK(api > 0, "cuCtxGetApiVersion(created) = %u > 0", api);
    api = 0;
    CHECK_CU(cuCtxGetApiVersion(NULL, &api));
    CHECK(api > 0, "cuCtxGetApiVersion(NULL) uses the current context (= %u)", api);

    /* Memory in the created context is usable. */
    CUdeviceptr dc = 0;
    if (CHECK_CU(cuMemAlloc(&dc, 4096))) {
        unsigned char in[4096], out[4096];
        itest_fill(in, sizeof in, 7);
        memset(out, 0, sizeof out);
        CHECK_CU(cuMemcpyHtoD(dc, in, sizeof in));
        CHECK_CU(cuMemcpyDtoH(out, dc, sizeof out));
        CHECK_BYTES(out, in, sizeof in, "copy round trip in the created context");
        CHECK_CU(cuMemFree(dc));
    }

    /* ---- stack order ----------------------------------------------------- */
    CUcontext popped = NULL;
    CHECK_CU(cuCtxPopCurrent(&popped));
    CHECK(popped == created, "first pop returns the created context");
    cur = NULL;
    CHECK_CU(cuCtxGetCurrent(&cur));
    CHECK(cur == g_primary, "after popping the created context the primary is current again");

    CHECK_CU(cuCtxPushCurrent(created));
    cur = NULL;
    CHECK_CU(cuCtxGetCurrent(&cur));
    CHECK(cur == created, "push makes the created context current");
    CHECK_CU(cuCtxPushCurrent(g_primary));
    cur = NULL;
    CHECK_CU(cuCtxGetCurrent(&cur));
    CHECK(cur == g_primary, "second push makes the primary current");

    popped = NULL;
    CHECK_CU(cuCtxPopCurrent(&popped));
    CHECK(popped == g_primary, "pop #1 returns the primary (last pushed)");
    popped = NULL;
    CHECK_CU(cuCtxPopCurrent(&popped));
    CHECK(popped == created, "pop #2 returns the created context");
    popped = NULL;
    CHECK_CU(cuCtxPopCurrent(&popped));
    CHECK(popped == g_primary, "pop #3 returns the primary (bound by cuCtxSetCurrent)");

    /* ---- nothing current --------------------------------------------------- */
    cur = (CUcontext)0x1;
    CHECK_CU(cuCtxGetCurrent(&cur));
    CHECK(cur == NULL, "stack empty after popping everything");
    popped = (CUcontext)0x1;
    EXPECT_CU(cuCtxPopCurrent(&popped), CUDA_ERROR_INVALID_CONTEXT);
    dp = 0;
    EXPECT_CU(cuMemAlloc(&dp, 256), CUDA_ERROR_INVALID_CONTEXT);
    EXPECT_CU(cuCtxSynchronize(), CUDA_ERROR_INVALID_CONTEXT);
    EXPECT_CU(cuCtxGetDevice(&d), CUDA_ERROR_INVALID_CONTEXT);

    /* Destroy the created context while it is not current anywhere. */
    CHECK_CU(cuCtxDestroy(created));

    /* SetCurrent(NULL) after SetCurrent(primary) unbinds again. */
    CHECK_CU(cuCtxSetCurrent(g_primary));
    if (CHECK_CU(cuMemAlloc(&dp, 256)))
        CHECK_CU(cuMemFree(dp));
    CHECK_CU(cuCtxSetCurrent(NULL));
    cur = (CUcontext)0x1;
    CHECK_CU(cuCtxGetCurrent(&cur));
    CHECK(cur == NULL, "cuCtxSetCurrent(NULL) unbinds the context");
    EXPECT_CU(cuMemAlloc(&dp, 256), CUDA_ERROR_INVALID_CONTEXT);

    /* ---- per-thread current context -------------------------------------- */
    CHECK_CU(cuCtxSetCurrent(g_primary));
    pthread_t th;
    if (pthread_create(&th, NULL, thread_main, NULL) != 0)
        itest_bail("pthread_create failed");
    pthread_join(th, NULL);
    cur = NULL;
    CHECK_CU(cuCtxGetCurrent(&cur));
    CHECK(cur == g_primary, "main thread's current context unaffected by the other thread");
    if (CHECK_CU(cuMemAlloc(&dp, 256)))
        CHECK_CU(cuMemFree(dp));

    /* ---- release both primary references --------------------------------- */
    CHECK_CU(cuCtxSetCurrent(NULL));
    CHECK_CU(cuDevicePrimaryCtxRelease(g_dev));
    CHECK_CU(cuDevicePrimaryCtxRelease(g_dev));

    return itest_done();
}
