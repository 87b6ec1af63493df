/*
 * rt_graph.cu - CUDA graphs as runtime programs use them, through the
 * shim: a training-step-like sequence captured once and replayed (the way
 * PyTorch's torch.cuda.graph and inference servers use graphs), a capture
 * that forks onto a second stream and joins back, a graph built with the
 * runtime's node API, cudaGraphExecUpdate, and a captured cuBLAS-free
 * "MLP layer" made of plain kernels checked against the host.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "rt_check.h"

#define N 4096

__global__ void axpb(float *y, const float *x, float a, float b, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] = a * x[i] + b;
    }
}

__global__ void relu(float *y, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && y[i] < 0.0f) {
        y[i] = 0.0f;
    }
}

__global__ void add(float *y, const float *x, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] += x[i];
    }
}

static int host_ticks;

static void tick(void *u)
{
    (void)u;
    host_ticks++;
}

static int bad_floats(const float *got, const float *want, int n)
{
    int bad = 0;

    for (int i = 0; i < n; i++) {
        bad += fabsf(got[i] - want[i]) > 1e-5f * (1.0f + fabsf(want[i]));
    }
    return bad;
}

int main(void)
{
    static float in[N], out[N], want[N];
    cudaStream_t s, s2;
    cudaGraph_t g;
    cudaGraphExec_t ex;
    cudaEvent_t fork, join;
    cudaStreamCaptureStatus st;
    unsigned long long id = 0;
    float *x, *y, *z;
    size_t nodes = 0;
    const int blocks = (N + 255) / 256;

    rt_start();
    RT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess, "stream");
    RT_EQ(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking), cudaSuccess, "second stream");
    RT_EQ(cudaMalloc(&x, N * sizeof(float)), cudaSuccess, "cudaMalloc x");
    RT_EQ(cudaMalloc(&y, N * sizeof(float)), cudaSuccess, "cudaMalloc y");
    RT_EQ(cudaMalloc(&z, N * sizeof(float)), cudaSuccess, "cudaMalloc z");

    /* One "layer": x <- in; y = relu(2x - 1); y += x; out <- y; a host tick. */
    RT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess,
          "cudaStreamBeginCapture");
    RT_EQ(cudaStreamIsCapturing(s, &st), cudaSuccess, "cudaStreamIsCapturing");
    RT_EQ(st, cudaStreamCaptureStatusActive, "the stream is capturing");
    RT_EQ(cudaMemcpyAsync(x, in, sizeof(in), cudaMemcpyHostToDevice, s), cudaSuccess,
          "captured copy in");
    axpb<<<blocks, 256, 0, s>>>(y, x, 2.0f, -1.0f, N);
    relu<<<blocks, 256, 0, s>>>(y, N);
    add<<<blocks, 256, 0, s>>>(y, x, N);
    RT_EQ(cudaGetLastError(), cudaSuccess, "captured launches");
    RT_EQ(cudaStreamGetCaptureInfo(s, &st, &id), cudaSuccess, "cudaStreamGetCaptureInfo");
    RT_OK(st == cudaStreamCaptureStatusActive && id != 0, "capture info: active, with an id");
    RT_EQ(cudaMemcpyAsync(out, y, sizeof(out), cudaMemcpyDeviceToHost, s), cudaSuccess,
          "captured copy out");
    RT_EQ(cudaLaunchHostFunc(s, tick, NULL), cudaSuccess, "captured host function");
    RT_EQ(cudaStreamEndCapture(s, &g), cudaSuccess, "cudaStreamEndCapture");
    RT_EQ(cudaGraphGetNodes(g, NULL, &nodes), cudaSuccess, "cudaGraphGetNodes");
    RT_EQ(nodes, 6, "six nodes: two copies, three kernels, one host function");
    RT_EQ(host_ticks, 0, "nothing ran during the capture");
    RT_EQ(cudaGraphInstantiate(&ex, g, 0), cudaSuccess, "cudaGraphInstantiate");

    int bad = 0;
    for (int step = 0; step < 10; step++) {
        for (int i = 0; i < N; i++) {
            in[i] = (float)((i * 7 + step * 13) % 100) / 25.0f - 2.0f;
            float v = 2.0f * in[i] - 1.0f;
            want[i] = (v < 0.0f ? 0.0f : v) + in[i];
        }
        memset(out, 0, sizeof(out));
        if (cudaGraphLaunch(ex, s) != cudaSuccess || cudaStreamSynchronize(s) != cudaSuccess) {
            bad += N;
            continue;
        }
        bad += bad_floats(out, want, N);
    }
    RT_EQ(bad, 0, "ten replays, each with that step's input");
    RT_EQ(host_ticks, 10, "the host function ran once per replay");

    /* Update the exec from a capture with other constants: same shape. */
    cudaGraph_t g2;
    cudaGraphExecUpdateResultInfo info;
    RT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess, "second capture");
    RT_EQ(cudaMemcpyAsync(x, in, sizeof(in), cudaMemcpyHostToDevice, s), cudaSuccess, "copy in");
    axpb<<<blocks, 256, 0, s>>>(y, x, -1.0f, 0.5f, N);
    relu<<<blocks, 256, 0, s>>>(y, N);
    add<<<blocks, 256, 0, s>>>(y, x, N);
    RT_EQ(cudaMemcpyAsync(out, y, sizeof(out), cudaMemcpyDeviceToHost, s), cudaSuccess, "out");
    RT_EQ(cudaLaunchHostFunc(s, tick, NULL), cudaSuccess, "host function");
    RT_EQ(cudaStreamEndCapture(s, &g2), cudaSuccess, "end of the second capture");
    RT_EQ(cudaGraphExecUpdate(ex, g2, &info), cudaSuccess, "cudaGraphExecUpdate");
    RT_EQ(info.result, cudaGraphExecUpdateSuccess, "update result");
    RT_EQ(cudaGraphLaunch(ex, s), cudaSuccess, "launch after the update");
    RT_EQ(cudaStreamSynchronize(s), cudaSuccess, "synchronize");
    for (int i = 0; i < N; i++) {
        float v = -in[i] + 0.5f;
        want[i] = (v < 0.0f ? 0.0f : v) + in[i];
    }
    RT_EQ(bad_floats(out, want, N), 0, "the updated exec computes with the new constants");
    RT_EQ(cudaGraphExecDestroy(ex), cudaSuccess, "cudaGraphExecDestroy");
    RT_EQ(cudaGraphDestroy(g), cudaSuccess, "cudaGraphDestroy");
    RT_EQ(cudaGraphDestroy(g2), cudaSuccess, "cudaGraphDestroy (second)");

    /* Fork onto s2 and join back: z = 3x on s2 while y = x + 1 on s. */
    RT_EQ(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming), cudaSuccess, "fork event");
    RT_EQ(cudaEventCreateWithFlags(&join, cudaEventDisableTiming), cudaSuccess, "join event");
    RT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess, "fork capture");
    RT_EQ(cudaMemcpyAsync(x, in, sizeof(in), cudaMemcpyHostToDevice, s), cudaSuccess, "copy in");
    RT_EQ(cudaEventRecord(fork, s), cudaSuccess, "record the fork");
    RT_EQ(cudaStreamWaitEvent(s2, fork, 0), cudaSuccess, "s2 waits for it");
    axpb<<<blocks, 256, 0, s2>>>(z, x, 3.0f, 0.0f, N);
    axpb<<<blocks, 256, 0, s>>>(y, x, 1.0f, 1.0f, N);
    RT_EQ(cudaEventRecord(join, s2), cudaSuccess, "record the join");
    RT_EQ(cudaStreamWaitEvent(s, join, 0), cudaSuccess, "s waits for s2");
    add<<<blocks, 256, 0, s>>>(y, z, N);
    RT_EQ(cudaMemcpyAsync(out, y, sizeof(out), cudaMemcpyDeviceToHost, s), cudaSuccess, "out");
    RT_EQ(cudaStreamEndCapture(s, &g), cudaSuccess, "end of the forked capture");
    RT_EQ(cudaGraphInstantiate(&ex, g, 0), cudaSuccess, "instantiate it");
    RT_EQ(cudaGraphLaunch(ex, s), cudaSuccess, "launch it");
    RT_EQ(cudaStreamSynchronize(s), cudaSuccess, "synchronize");
    for (int i = 0; i < N; i++) {
        want[i] = in[i] + 1.0f + 3.0f * in[i];
    }
    RT_EQ(bad_floats(out, want, N), 0, "both branches ran before the join: y = x + 1 + 3x");
    RT_EQ(cudaGraphExecDestroy(ex), cudaSuccess, "destroy the exec");
    RT_EQ(cudaGraphDestroy(g), cudaSuccess, "destroy the graph");

    /* The runtime's node API: memset -> kernel, by hand. */
    cudaGraphNode_t set, k;
    cudaMemsetParams mp;
    cudaKernelNodeParams kp;
    float a = 4.0f, b = 0.25f;
    int n = N;
    void *args[] = { &y, &x, &a, &b, &n };
    memset(&mp, 0, sizeof(mp));
    mp.dst = x;
    mp.value = 0;
    mp.elementSize = 4;
    mp.width = N;
    mp.height = 1;
    memset(&kp, 0, sizeof(kp));
    kp.func = (void *)axpb;
    kp.gridDim = dim3(blocks);
    kp.blockDim = dim3(256);
    kp.kernelParams = args;
    RT_EQ(cudaGraphCreate(&g, 0), cudaSuccess, "cudaGraphCreate");
    RT_EQ(cudaGraphAddMemsetNode(&set, g, NULL, 0, &mp), cudaSuccess, "cudaGraphAddMemsetNode");
    RT_EQ(cudaGraphAddKernelNode(&k, g, &set, 1, &kp), cudaSuccess, "cudaGraphAddKernelNode");
    RT_EQ(cudaGraphInstantiate(&ex, g, 0), cudaSuccess, "instantiate the hand-built graph");
    RT_EQ(cudaGraphLaunch(ex, s), cudaSuccess, "launch it");
    RT_EQ(cudaMemcpyAsync(out, y, sizeof(out), cudaMemcpyDeviceToHost, s), cudaSuccess, "out");
    RT_EQ(cudaStreamSynchronize(s), cudaSuccess, "synchronize");
    for (int i = 0; i < N; i++) {
        want[i] = 0.25f;
    }
    RT_EQ(bad_floats(out, want, N), 0, "y = 4 * 0 + 0.25 everywhere");
    RT_EQ(cudaGraphExecDestroy(ex), cudaSuccess, "destroy the exec");
    RT_EQ(cudaGraphDestroy(g), cudaSuccess, "destroy the graph");

    /* Synchronising with a capturing stream is refused; the capture ends invalid. */
    RT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), cudaSuccess, "a bad capture");
    RT_EQ(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported,
          "cudaStreamSynchronize during the capture is refused");
    g = NULL;
    RT_EQ(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated,
          "the capture ended invalidated");
    RT_OK(g == NULL, "and gave no graph");
    cudaGetLastError();

    cudaFree(x);
    cudaFree(y);
    cudaFree(z);
    cudaEventDestroy(fork);
    cudaEventDestroy(join);
    cudaStreamDestroy(s);
    cudaStreamDestroy(s2);
    return rt_done();
}
