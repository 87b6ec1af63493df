/*
 * test_streams_events.c - stream ordering, cross-stream dependencies, events.
 *
 * Proves that:
 *   - streams can be created non-blocking, blocking and with a priority, and
 *     cuStreamGetFlags / cuStreamGetPriority report what they were created
 *     with (priorities outside the range are clamped);
 *   - cuStreamWaitEvent orders work across streams: a copy on stream B that
 *     waits for an event recorded on stream A after a memset sees the memset,
 *     even when A has a long queue in front of it;
 *   - the legacy default stream (0) is ordered against blocking streams in
 *     both directions;
 *   - events: record / query / synchronize, elapsed time >= 0 between two
 *     timed events, CUDA_ERROR_INVALID_HANDLE for CU_EVENT_DISABLE_TIMING
 *     events and for never-recorded events;
 *   - cuStreamQuery answers CUDA_SUCCESS once the stream is synchronized;
 *   - destroying a stream with queued work still completes that work.
 */
#include "check.h"

#include <math.h>

#define N (8 * MiB)

static CUdeviceptr buf, buf2, scratch1, scratch2;
static unsigned char *host;

/* Copy `d` back and check every byte equals v. */
static void expect_all(CUdeviceptr d, unsigned char v, const char *what)
{
    memset(host, (unsigned char)~v, N);
    if (!QUIET_CU(cuMemcpyDtoH(host, d, N)))
        return;
    size_t bad = 0, first = N;
    for (size_t i = 0; i < N; i++)
        if (host[i] != v) {
            if (first == N)
                first = i;
            bad++;
        }
    char detail[160];
    snprintf(detail, sizeof detail, "got 0x%02x want 0x%02x at byte %zu (%zu bytes differ)",
             first < N ? host[first] : 0, v, first, bad);
    itest_report(bad == 0, __FILE__, __LINE__, detail, "%s: all %zu bytes are 0x%02x", what,
                 (size_t)N, v);
}

/* Queue some slow-ish work on a stream so later work really has to wait. */
static CUresult queue_delay(CUstream s)
{
    CUresult r = CUDA_SUCCESS;
    for (int i = 0; i < 4 && r == CUDA_SUCCESS; i++)
        r = cuMemcpyDtoDAsync(i & 1 ? scratch1 : scratch2, i & 1 ? scratch2 : scratch1, N, s);
    return r;
}

static void reset_buffers(void)
{
    QUIET_CU(cuMemsetD8(buf, 0, N));
    QUIET_CU(cuMemsetD8(buf2, 0, N));
    /* Synchronous memsets of device memory may return before completion;
     * non-blocking streams are not ordered after them, so drain here. */
    QUIET_CU(cuCtxSynchronize());
}

static void creation_tests(void)
{
    int least = 0, greatest = 0;
    CHECK_CU(cuCtxGetStreamPriorityRange(&least, &greatest));
    CHECK(greatest <= least, "priority range [greatest %d, least %d]", greatest, least);

    CUstream nb = NULL, bl = NULL, pr = NULL, clamp = NULL;
    unsigned int f = 0xffffffffu;
    if (CHECK_CU(cuStreamCreate(&nb, CU_STREAM_NON_BLOCKING))) {
        CHECK_CU(cuStreamGetFlags(nb, &f));
        CHECK((f & CU_STREAM_NON_BLOCKING) != 0, "cuStreamGetFlags(non-blocking) = 0x%x", f);
        CHECK_CU(cuStreamDestroy(nb));
    }
    f = 0xffffffffu;
    if (CHECK_CU(cuStreamCreate(&bl, CU_STREAM_DEFAULT))) {
        CHECK_CU(cuStreamGetFlags(bl, &f));
        CHECK((f & CU_STREAM_NON_BLOCKING) == 0, "cuStreamGetFlags(blocking) = 0x%x", f);
        CHECK_CU(cuStreamDestroy(bl));
    }
    int p = 12345;
    f = 0xffffffffu;
    if (CHECK_CU(cuStreamCreateWithPriority(&pr, CU_STREAM_NON_BLOCKING, greatest))) {
        CHECK_CU(cuStreamGetPriority(pr, &p));
        CHECK_EQ(p, greatest, "cuStreamGetPriority returns the creation priority");
        CHECK_CU(cuStreamGetFlags(pr, &f));
        CHECK((f & CU_STREAM_NON_BLOCKING) != 0, "cuStreamGetFlags(priority stream) = 0x%x", f);
        CHECK_CU(cuStreamDestroy(pr));
    }
    p = 12345;
    if (CHECK_CU(cuStreamCreateWithPriority(&clamp, CU_STREAM_DEFAULT, greatest - 100))) {
        CHECK_CU(cuStreamGetPriority(clamp, &p));
        CHECK_EQ(p, greatest, "priority below the range is clamped to the greatest priority");
        CHECK_CU(cuStreamDestroy(clamp));
    }
}

static void cross_stream_tests(CUstream A, CUstream B)
{
    CUevent eA = NULL;
    if (!CHECK_CU(cuEventCreate(&eA, CU_EVENT_DISABLE_TIMING)))
        return;
    reset_buffers();

    CUresult r = queue_delay(A);
    if (r == CUDA_SUCCESS)
        r = cuMemsetD8Async(buf, 1, N, A);
    if (r == CUDA_SUCCESS)
        r = cuEventRecord(eA, A);
    if (r == CUDA_SUCCESS)
        r = cuStreamWaitEvent(B, eA, 0);
    if (r == CUDA_SUCCESS)
        r = cuMemcpyDtoDAsync(buf2, buf, N, B);
    if (r == CUDA_SUCCESS)
        r = cuStreamSynchronize(B);
    if (itest_check_cu(r, "memset on A, record eA, B waits eA, copy on B, sync B", __FILE__,
                       __LINE__))
        expect_all(buf2, 1, "copy on B after cuStreamWaitEvent(B, eA)");

    CHECK_CU(cuStreamSynchronize(A));
    CHECK_CU(cuStreamQuery(A));
    CHECK_CU(cuStreamQuery(B));
    CHECK_CU(cuEventQuery(eA));
    CHECK_CU(cuEventDestroy(eA));
}

static void legacy_stream_tests(CUstream blocking)
{
    /* blocking stream first, then the legacy stream */
    reset_buffers();
    CUresult r = queue_delay(blocking);
    if (r == CUDA_SUCCESS)
        r = cuMemsetD8Async(buf, 7, N, blocking);
    if (r == CUDA_SUCCESS)
        r = cuMemcpyDtoDAsync(buf2, buf, N, 0);
    if (r == CUDA_SUCCESS)
        r = cuStreamSynchronize(0);
    if (itest_check_cu(r, "memset on blocking stream, copy on stream 0, sync 0", __FILE__,
                       __LINE__))
        expect_all(buf2, 7, "stream 0 waits for earlier work on a blocking stream");

    /* legacy stream first, then the blocking stream */
    reset_buffers();
    r = queue_delay(0);
    if (r == CUDA_SUCCESS)
        r = cuMemsetD8Async(buf, 9, N, 0);
    if (r == CUDA_SUCCESS)
        r = cuMemcpyDtoDAsync(buf2, buf, N, blocking);
    if (r == CUDA_SUCCESS)
        r = cuStreamSynchronize(blocking);
    if (itest_check_cu(r, "memset on stream 0, copy on blocking stream, sync it", __FILE__,
                       __LINE__))
        expect_all(buf2, 9, "a blocking stream waits for earlier work on stream 0");

    /* synchronous copy after async work on a blocking stream */
    reset_buffers();
    r = queue_delay(blocking);
    if (r == CUDA_SUCCESS)
        r = cuMemsetD8Async(buf, 0x42, N, blocking);
    if (itest_check_cu(r, "queue memset 0x42 on a blocking stream", __FILE__, __LINE__))
        expect_all(buf, 0x42, "synchronous cuMemcpyDtoH sees earlier blocking-stream work");
    CHECK_CU(cuStreamSynchronize(blocking));
}

static void event_tests(CUstream A)
{
    CUevent e1 = NULL, e2 = NULL, n1 = NULL, n2 = NULL, never = NULL;
    REQUIRE_CU(cuEventCreate(&e1, CU_EVENT_DEFAULT));
    REQUIRE_CU(cuEventCreate(&e2, CU_EVENT_DEFAULT));
    REQUIRE_CU(cuEventCreate(&n1, CU_EVENT_DISABLE_TIMING));
    REQUIRE_CU(cuEventCreate(&n2, CU_EVENT_DISABLE_TIMING));
    REQUIRE_CU(cuEventCreate(&never, CU_EVENT_DEFAULT));

    CHECK_CU(cuEventRecord(e1, A));
    CHECK_CU(cuEventRecord(n1, A));
    CHECK_CU(queue_delay(A));
    CHECK_CU(cuEventRecord(e2, A));
    CHECK_CU(cuEventRecord(n2, A));
    CHECK_CU(cuEventSynchronize(e2));
    CHECK_CU(cuEventSynchronize(n2));
    CHECK_CU(cuEventQuery(e1));
    CHECK_CU(cuEventQuery(e2));
    CHECK_CU(cuEventQuery(n1));
    /* e1 precedes e2 on the same stream; once e2 completed so did e1. */
    CHECK_CU(cuEventSynchronize(e1));

    float ms = -1.0f;
    if (CHECK_CU(cuEventElapsedTime(&ms, e1, e2)))
        CHECK(ms >= 0.0f && isfinite(ms), "cuEventElapsedTime(e1, e2) = %f ms >= 0", (double)ms);

    EXPECT_CU(cuEventElapsedTime(&ms, n1, n2), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuEventElapsedTime(&ms, e1, n2), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuEventElapsedTime(&ms, n1, e2), CUDA_ERROR_INVALID_HANDLE);

    /* An event that was never recorded has no captured work: query succeeds,
     * but it has no timestamp. */
    CHECK_CU(cuEventQuery(never));
    EXPECT_CU(cuEventElapsedTime(&ms, never, e2), CUDA_ERROR_INVALID_HANDLE);

    /* Events on the legacy default stream. */
    CHECK_CU(cuEventRecord(e1, 0));
    CHECK_CU(cuMemsetD8Async(buf, 3, N, 0));
    CHECK_CU(cuEventRecord(e2, 0));
    CHECK_CU(cuEventSynchronize(e2));
    ms = -1.0f;
    if (CHECK_CU(cuEventElapsedTime(&ms, e1, e2)))
        CHECK(ms >= 0.0f && isfinite(ms), "cuEventElapsedTime on stream 0 = %f ms >= 0",
              (double)ms);
    expect_all(buf, 3, "memset on stream 0 complete after cuEventSynchronize");

    /* Re-recording an event moves it to the newest work. */
    CHECK_CU(cuEventRecord(e1, A));
    CHECK_CU(cuStreamSynchronize(A));
    CHECK_CU(cuEventQuery(e1));

    CHECK_CU(cuEventDestroy(e1));
    CHECK_CU(cuEventDestroy(e2));
    CHECK_CU(cuEventDestroy(n1));
    CHECK_CU(cuEventDestroy(n2));
    CHECK_CU(cuEventDestroy(never));
}

static void destroy_with_pending_work(void)
{
    CUstream t = NULL;
    reset_buffers();
    if (!CHECK_CU(cuStreamCreate(&t, CU_STREAM_NON_BLOCKING)))
        return;
    CUresult r = queue_delay(t);
    if (r == CUDA_SUCCESS)
        r = cuMemsetD8Async(buf, 5, N, t);
    if (r == CUDA_SUCCESS)
        r = cuStreamDestroy(t);
    if (r == CUDA_SUCCESS)
        r = cuCtxSynchronize();
    if (itest_check_cu(r, "queue work, cuStreamDestroy, cuCtxSynchronize", __FILE__, __LINE__))
        expect_all(buf, 5, "work queued before cuStreamDestroy still completes");
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    itest_setup(&dev, &ctx);

    host = itest_malloc(N);
    REQUIRE_CU(cuMemAlloc(&buf, N));
    REQUIRE_CU(cuMemAlloc(&buf2, N));
    REQUIRE_CU(cuMemAlloc(&scratch1, N));
    REQUIRE_CU(cuMemAlloc(&scratch2, N));
    REQUIRE_CU(cuMemsetD8(scratch1, 0xEE, N));

    creation_tests();

    CUstream A = NULL, B = NULL, P = NULL;
    int least = 0, greatest = 0;
    REQUIRE_CU(cuCtxGetStreamPriorityRange(&least, &greatest));
    REQUIRE_CU(cuStreamCreate(&A, CU_STREAM_NON_BLOCKING));
    REQUIRE_CU(cuStreamCreate(&B, CU_STREAM_DEFAULT));
    REQUIRE_CU(cuStreamCreateWithPriority(&P, CU_STREAM_NON_BLOCKING, greatest));

    cross_stream_tests(A, B);
    cross_stream_tests(P, A); /* priority stream as producer, non-blocking consumer */
    legacy_stream_tests(B);
    event_tests(A);
    destroy_with_pending_work();

    CHECK_CU(cuStreamDestroy(A));
    CHECK_CU(cuStreamDestroy(B));
    CHECK_CU(cuStreamDestroy(P));
    CHECK_CU(cuMemFree(buf));
    CHECK_CU(cuMemFree(buf2));
    CHECK_CU(cuMemFree(scratch1));
    CHECK_CU(cuMemFree(scratch2));
    free(host);
    itest_teardown(dev);
    return itest_done();
}
