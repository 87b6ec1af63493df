/*
 * test_graph.c - CUDA graphs and stream capture.
 *
 * Proves that:
 *   - a graph built by hand (memset -> kernel -> kernel -> copy to the host
 *     -> host function) instantiates and launches, again and again, with
 *     the right results each time, and its shape reads back (nodes, roots,
 *     dependencies, types, parameters);
 *   - stream capture turns copies, memsets and launches into nodes instead
 *     of running them, while cuStreamIsCapturing / cuStreamGetCaptureInfo
 *     say so; the captured graph runs on every launch with the host data
 *     of that moment (a copy node reads its host buffer when it runs);
 *   - a capture forks to a second stream through an event and joins back,
 *     and the work on both streams is in the graph in the right order;
 *   - synchronising with a stream being captured is refused and the
 *     capture ends invalidated, without a graph; nothing of it ran;
 *   - an instantiated graph outlives its graph; kernel parameters of an
 *     instantiated graph can be changed; cuGraphExecUpdate takes the
 *     parameters of a graph of the same shape and refuses another shape;
 *     a disabled node does not run; a child graph runs inside its parent;
 *   - a cycle does not instantiate; bad handles (destroyed ones, nodes of
 *     another graph) and arguments are refused.
 */
#include <stdlib.h>
#include <string.h>

#include "add_one_ptx.h"
#include "check.h"

#define N 1000u

static CUfunction add_one;
static int host_calls;

static void count_call(void *arg)
{
    (*(int *)arg)++;
}

static CUDA_KERNEL_NODE_PARAMS add_one_node(CUdeviceptr *p, unsigned *n, void **params)
{
    CUDA_KERNEL_NODE_PARAMS k;

    memset(&k, 0, sizeof(k));
    params[0] = p;
    params[1] = n;
    k.func = add_one;
    k.gridDimX = (*n + 127) / 128;
    k.gridDimY = k.gridDimZ = 1;
    k.blockDimX = 128;
    k.blockDimY = k.blockDimZ = 1;
    k.kernelParams = params;
    return k;
}

static unsigned count_not(const unsigned *p, unsigned n, unsigned want)
{
    unsigned bad = 0;

    for (unsigned i = 0; i < n; i++) {
        bad += p[i] != want;
    }
    return bad;
}

/* memset(7) -> add_one -> add_one -> D2H -> host function. */
static void hand_built_tests(CUstream s)
{
    CUgraph g;
    CUgraphExec ex;
    CUgraphNode set, k1, k2, copy, host, nodes[8], deps[4];
    CUgraphNodeType type;
    CUdeviceptr d;
    unsigned n = N, *h = calloc(N, sizeof(unsigned));
    void *params[2];
    size_t count;
    CUDA_KERNEL_NODE_PARAMS kp = add_one_node(&d, &n, params), kback;
    CUDA_MEMSET_NODE_PARAMS mp;
    CUDA_MEMCPY3D cp;
    CUDA_HOST_NODE_PARAMS hp = { count_call, &host_calls };

    itest_ctx("hand-built graph");
    REQUIRE_CU(cuMemAlloc(&d, N * sizeof(unsigned)));
    CHECK_CU(cuGraphCreate(&g, 0));
    memset(&mp, 0, sizeof(mp));
    mp.dst = d;
    mp.value = 7;
    mp.elementSize = 4;
    mp.width = N;
    mp.height = 1;
    CHECK_CU(cuGraphAddMemsetNode(&set, g, NULL, 0, &mp, NULL));
    CHECK_CU(cuGraphAddKernelNode(&k1, g, &set, 1, &kp));
    CHECK_CU(cuGraphAddKernelNode(&k2, g, &k1, 1, &kp));
    memset(&cp, 0, sizeof(cp));
    cp.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    cp.srcDevice = d;
    cp.dstMemoryType = CU_MEMORYTYPE_HOST;
    cp.dstHost = h;
    cp.WidthInBytes = N * sizeof(unsigned);
    cp.Height = cp.Depth = 1;
    CHECK_CU(cuGraphAddMemcpyNode(&copy, g, &k2, 1, &cp, NULL));
    CHECK_CU(cuGraphAddHostNode(&host, g, &copy, 1, &hp));

    count = 0;
    CHECK_CU(cuGraphGetNodes(g, NULL, &count));
    CHECK_EQ(count, 5, "five nodes");
    count = 8;
    CHECK_CU(cuGraphGetNodes(g, nodes, &count));
    CHECK(count == 5 && nodes[0] == set && nodes[4] == host && nodes[5] == NULL,
          "nodes listed in order, the rest of the array NULL");
    count = 4;
    CHECK_CU(cuGraphGetRootNodes(g, deps, &count));
    CHECK(count == 1 && deps[0] == set, "the memset is the only root");
    count = 4;
    CHECK_CU(cuGraphNodeGetDependencies(copy, deps, NULL, &count));
    CHECK(count == 1 && deps[0] == k2, "the copy depends on the second kernel");
    CHECK_CU(cuGraphNodeGetType(k1, &type));
    CHECK_EQ(type, CU_GRAPH_NODE_TYPE_KERNEL, "kernel node type");
    CHECK_CU(cuGraphNodeGetType(copy, &type));
    CHECK_EQ(type, CU_GRAPH_NODE_TYPE_MEMCPY, "memcpy node type");
    CHECK_CU(cuGraphKernelNodeGetParams(k1, &kback));
    CHECK(kback.func == add_one && kback.gridDimX == kp.gridDimX && kback.kernelParams &&
          *(CUdeviceptr *)kback.kernelParams[0] == d && *(unsigned *)kback.kernelParams[1] == N,
          "kernel node parameters read back, by value");

    CHECK_CU(cuGraphInstantiate(&ex, g, 0));
    for (int round = 0; round < 3; round++) {
        memset(h, 0, N * sizeof(unsigned));
        CHECK_CU(cuGraphLaunch(ex, s));
        CHECK_CU(cuStreamSynchronize(s));
        CHECK_EQ(count_not(h, N, 9), 0, "launch %d: every word is 7 + 1 + 1", round);
    }
    CHECK_EQ(host_calls, 3, "the host node ran once per launch");

    /* The exec is independent of its graph from now on. */
    CHECK_CU(cuGraphDestroy(g));
    n = N / 2;
    memset(h, 0, N * sizeof(unsigned));
    EXPECT_CU(cuGraphExecKernelNodeSetParams(ex, k1, &kp), CUDA_SUCCESS);
    CHECK_CU(cuGraphLaunch(ex, s));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK(count_not(h, N / 2, 9) == 0 && count_not(h + N / 2, N / 2, 8) == 0,
          "after changing the first kernel's n to N/2: 9 in the first half, 8 after");
    CHECK_CU(cuGraphNodeSetEnabled(ex, k2, 0));
    CHECK_CU(cuGraphLaunch(ex, s));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK(count_not(h, N / 2, 8) == 0 && count_not(h + N / 2, N / 2, 7) == 0,
          "with the second kernel disabled, one addition less");
    CHECK_CU(cuGraphExecDestroy(ex));
    EXPECT_CU(cuGraphLaunch(ex, s), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemFree(d));
    free(h);
}

/* H2D from a host buffer -> add_one x2 -> D2H, captured on one stream. */
static void capture_tests(CUstream s)
{
    CUgraph g;
    CUgraphExec ex;
    CUstreamCaptureStatus st;
    cuuint64_t id = 0;
    CUgraph cg = NULL;
    const CUgraphNode *deps = NULL;
    size_t ndeps = 0, count = 0;
    CUdeviceptr d;
    unsigned n = N, *in, *out;
    void *params[] = { &d, &n };

    itest_ctx("stream capture");
    REQUIRE_CU(cuMemAlloc(&d, N * sizeof(unsigned)));
    REQUIRE_CU(cuMemAllocHost((void **)&in, N * sizeof(unsigned)));
    REQUIRE_CU(cuMemAllocHost((void **)&out, N * sizeof(unsigned)));
    CHECK_CU(cuMemsetD32(d, 5, N));
    for (unsigned i = 0; i < N; i++) {
        in[i] = 100;
        out[i] = 0;
    }
    CHECK_CU(cuStreamIsCapturing(s, &st));
    CHECK_EQ(st, CU_STREAM_CAPTURE_STATUS_NONE, "not capturing before");
    CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK_CU(cuStreamIsCapturing(s, &st));
    CHECK_EQ(st, CU_STREAM_CAPTURE_STATUS_ACTIVE, "capturing after cuStreamBeginCapture");
    EXPECT_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_ERROR_ILLEGAL_STATE);
    CHECK_CU(cuMemcpyHtoDAsync(d, in, N * sizeof(unsigned), s));
    CHECK_CU(cuLaunchKernel(add_one, (N + 127) / 128, 1, 1, 128, 1, 1, 0, s, params, NULL));
    CHECK_CU(cuStreamGetCaptureInfo(s, &st, &id, &cg, &deps, NULL, &ndeps));
    CHECK(st == CU_STREAM_CAPTURE_STATUS_ACTIVE && id != 0 && cg != NULL && ndeps == 1 &&
          deps && deps[0], "capture info: active, an id, the graph, one dependency");
    CHECK_CU(cuLaunchKernel(add_one, (N + 127) / 128, 1, 1, 128, 1, 1, 0, s, params, NULL));
    CHECK_CU(cuMemcpyDtoHAsync(out, d, N * sizeof(unsigned), s));
    CHECK_CU(cuStreamEndCapture(s, &g));
    CHECK(g == cg, "cuStreamEndCapture gives the graph the capture built");
    CHECK_CU(cuStreamIsCapturing(s, &st));
    CHECK_EQ(st, CU_STREAM_CAPTURE_STATUS_NONE, "not capturing after");

    /* Nothing ran while capturing. */
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_EQ(count_not(out, N, 0), 0, "the captured copy to the host did not run");
    CHECK_CU(cuMemcpyDtoH(out, d, N * sizeof(unsigned)));
    CHECK_EQ(count_not(out, N, 5), 0, "the captured copy and kernels did not run");
    CHECK_CU(cuGraphGetNodes(g, NULL, &count));
    CHECK_EQ(count, 4, "four nodes captured");

    CHECK_CU(cuGraphInstantiate(&ex, g, 0));
    for (unsigned round = 0; round < 3; round++) {
        for (unsigned i = 0; i < N; i++) {
            in[i] = 1000 * round;
        }
        CHECK_CU(cuGraphLaunch(ex, s));
        CHECK_CU(cuStreamSynchronize(s));
        CHECK_EQ(count_not(out, N, 1000 * round + 2), 0,
                 "launch %u: the copy read the host buffer as it was then, +2", round);
    }
    CHECK_CU(cuGraphExecDestroy(ex));
    CHECK_CU(cuGraphDestroy(g));
    CHECK_CU(cuMemFree(d));
    CHECK_CU(cuMemFreeHost(in));
    CHECK_CU(cuMemFreeHost(out));
}

/* s1: memset(1) -> fork: s2 adds one on the first half, s1 on the whole,
 * join -> copy out.  Order matters: the memset must come first. */
static void fork_join_tests(CUstream s1, CUstream s2)
{
    CUgraph g;
    CUgraphExec ex;
    CUevent fork, join;
    CUstreamCaptureStatus st;
    CUdeviceptr d;
    unsigned n = N, half = N / 2, *h = calloc(N, sizeof(unsigned));
    void *all[] = { &d, &n }, *first[] = { &d, &half };
    size_t count = 0;

    itest_ctx("fork and join");
    REQUIRE_CU(cuMemAlloc(&d, N * sizeof(unsigned)));
    REQUIRE_CU(cuEventCreate(&fork, CU_EVENT_DISABLE_TIMING));
    REQUIRE_CU(cuEventCreate(&join, CU_EVENT_DISABLE_TIMING));
    CHECK_CU(cuStreamBeginCapture(s1, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
    CHECK_CU(cuMemsetD32Async(d, 1, N, s1));
    CHECK_CU(cuEventRecord(fork, s1));
    CHECK_CU(cuStreamWaitEvent(s2, fork, 0));
    CHECK_CU(cuStreamIsCapturing(s2, &st));
    CHECK_EQ(st, CU_STREAM_CAPTURE_STATUS_ACTIVE, "waiting for the event brought s2 in");
    CHECK_CU(cuLaunchKernel(add_one, (N + 127) / 128, 1, 1, 128, 1, 1, 0, s2, first, NULL));
    CHECK_CU(cuLaunchKernel(add_one, (N + 127) / 128, 1, 1, 128, 1, 1, 0, s1, all, NULL));
    CHECK_CU(cuEventRecord(join, s2));
    CHECK_CU(cuStreamWaitEvent(s1, join, 0));
    CHECK_CU(cuMemcpyDtoHAsync(h, d, N * sizeof(unsigned), s1));
    EXPECT_CU(cuStreamEndCapture(s2, &g), CUDA_ERROR_STREAM_CAPTURE_UNMATCHED);
    CHECK_CU(cuStreamEndCapture(s1, &g));
    CHECK_CU(cuStreamIsCapturing(s2, &st));
    CHECK_EQ(st, CU_STREAM_CAPTURE_STATUS_NONE, "s2 left the capture with s1");
    CHECK_CU(cuGraphGetNodes(g, NULL, &count));
    CHECK_EQ(count, 4, "memset, two kernels, copy");
    CHECK_CU(cuGraphInstantiate(&ex, g, 0));
    CHECK_CU(cuGraphLaunch(ex, s2));
    CHECK_CU(cuStreamSynchronize(s2));
    CHECK(count_not(h, N / 2, 3) == 0 && count_not(h + N / 2, N / 2, 2) == 0,
          "both branches ran after the memset and before the copy");
    CHECK_CU(cuGraphExecDestroy(ex));
    CHECK_CU(cuGraphDestroy(g));
    CHECK_CU(cuEventDestroy(fork));
    CHECK_CU(cuEventDestroy(join));
    CHECK_CU(cuMemFree(d));
    free(h);
}

static void invalidated_capture_tests(CUstream s)
{
    CUgraph g = (CUgraph)1;
    CUstreamCaptureStatus st;
    CUdeviceptr d;
    unsigned h = 0;

    itest_ctx("invalidated capture");
    REQUIRE_CU(cuMemAlloc(&d, 4));
    CHECK_CU(cuMemsetD32(d, 3, 1));
    CHECK_CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_RELAXED));
    CHECK_CU(cuMemsetD32Async(d, 4, 1, s));
    EXPECT_CU(cuStreamSynchronize(s), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    CHECK_CU(cuStreamIsCapturing(s, &st));
    CHECK_EQ(st, CU_STREAM_CAPTURE_STATUS_INVALIDATED, "the capture is invalidated");
    EXPECT_CU(cuMemsetD32Async(d, 5, 1, s), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    EXPECT_CU(cuStreamEndCapture(s, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    CHECK(g == NULL, "no graph from an invalidated capture");
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_CU(cuMemcpyDtoH(&h, d, 4));
    CHECK_EQ(h, 3, "nothing of the invalidated capture ran");
    EXPECT_CU(cuStreamBeginCapture(NULL, CU_STREAM_CAPTURE_MODE_GLOBAL),
              CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    EXPECT_CU(cuStreamEndCapture(s, &g), CUDA_ERROR_ILLEGAL_STATE);
    CHECK_CU(cuMemFree(d));
}

/* Update, child graphs, cycles, bad handles. */
static void structure_tests(CUstream s)
{
    CUgraph a, b, parent, c3;
    CUgraphExec ex;
    CUgraphNode ka, kb, kc, child, x, y;
    CUgraphExecUpdateResultInfo info;
    CUdeviceptr d;
    unsigned n = N, n2 = N / 4, *h = calloc(N, sizeof(unsigned));
    void *pa[2], *pb[2];
    CUDA_KERNEL_NODE_PARAMS kpa = add_one_node(&d, &n, pa), kpb = add_one_node(&d, &n2, pb);

    itest_ctx("graph structure");
    REQUIRE_CU(cuMemAlloc(&d, N * sizeof(unsigned)));
    CHECK_CU(cuMemsetD32(d, 0, N));
    CHECK_CU(cuGraphCreate(&a, 0));
    CHECK_CU(cuGraphAddKernelNode(&ka, a, NULL, 0, &kpa));
    CHECK_CU(cuGraphCreate(&b, 0));
    CHECK_CU(cuGraphAddKernelNode(&kb, b, NULL, 0, &kpb));
    CHECK_CU(cuGraphInstantiate(&ex, a, 0));
    CHECK_CU(cuGraphExecUpdate(ex, b, &info));
    CHECK_EQ(info.result, CU_GRAPH_EXEC_UPDATE_SUCCESS, "same shape: updated");
    CHECK_CU(cuGraphLaunch(ex, s));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_CU(cuMemcpyDtoH(h, d, N * sizeof(unsigned)));
    CHECK(count_not(h, N / 4, 1) == 0 && count_not(h + N / 4, N - N / 4, 0) == 0,
          "the exec ran with the update's n = N/4");
    CHECK_CU(cuGraphAddEmptyNode(&x, b, &kb, 1));
    EXPECT_CU(cuGraphExecUpdate(ex, b, &info), CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE);
    CHECK_EQ(info.result, CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED,
             "another shape is refused as a topology change");
    CHECK_CU(cuGraphExecDestroy(ex));

    /* parent: child(a) -> kernel(n = N/4), launched twice. */
    CHECK_CU(cuMemsetD32(d, 0, N));
    CHECK_CU(cuGraphCreate(&parent, 0));
    CHECK_CU(cuGraphAddChildGraphNode(&child, parent, NULL, 0, a));
    CHECK_CU(cuGraphAddKernelNode(&kc, parent, &child, 1, &kpb));
    CHECK_CU(cuGraphDestroy(a));            /* the child node holds its own copy */
    CHECK_CU(cuGraphInstantiate(&ex, parent, 0));
    CHECK_CU(cuGraphLaunch(ex, s));
    CHECK_CU(cuGraphLaunch(ex, s));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_CU(cuMemcpyDtoH(h, d, N * sizeof(unsigned)));
    CHECK(count_not(h, N / 4, 4) == 0 && count_not(h + N / 4, N - N / 4, 2) == 0,
          "child graph and parent kernel ran twice");
    CHECK_CU(cuGraphExecDestroy(ex));
    CHECK_CU(cuGraphDestroy(parent));

    /* x -> y -> x does not instantiate. */
    CHECK_CU(cuGraphCreate(&c3, 0));
    CHECK_CU(cuGraphAddEmptyNode(&x, c3, NULL, 0));
    CHECK_CU(cuGraphAddEmptyNode(&y, c3, &x, 1));
    CHECK_CU(cuGraphAddDependencies(c3, &y, &x, NULL, 1));
    EXPECT_CU(cuGraphInstantiate(&ex, c3, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuGraphAddDependencies(c3, &x, &y, NULL, 1), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuGraphDestroyNode(y));
    CHECK_CU(cuGraphInstantiate(&ex, c3, 0));
    CHECK_CU(cuGraphLaunch(ex, s));
    CHECK_CU(cuGraphExecDestroy(ex));
    EXPECT_CU(cuGraphAddEmptyNode(&y, c3, &kb, 1), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuGraphDestroy(c3));
    CHECK_CU(cuGraphDestroy(b));
    EXPECT_CU(cuGraphDestroy(b), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuGraphAddEmptyNode(&y, b, NULL, 0), CUDA_ERROR_INVALID_VALUE);

    EXPECT_CU(cuGraphLaunch(NULL, s), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuGraphInstantiate(&ex, NULL, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuGraphCreate(&a, 1), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemFree(d));
    free(h);
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUstream s1, s2;

    itest_setup(&dev, &ctx);
    REQUIRE_CU(cuModuleLoadData(&mod, add_one_ptx));
    REQUIRE_CU(cuModuleGetFunction(&add_one, mod, "add_one"));
    REQUIRE_CU(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
    REQUIRE_CU(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING));
    hand_built_tests(s1);
    capture_tests(s1);
    fork_join_tests(s1, s2);
    invalidated_capture_tests(s1);
    structure_tests(s1);
    CHECK_CU(cuStreamDestroy(s1));
    CHECK_CU(cuStreamDestroy(s2));
    cuModuleUnload(mod);
    itest_teardown(dev);
    return itest_done();
}
