/*
 * test_multidevice.c - a program that uses every device at once, as a
 * multi-GPU job does: distinct identities, a context and a kernel on each,
 * a library loaded once and launched on all, copies between every pair of
 * devices (peer, unified, 2D, asynchronous, larger than any bounce buffer),
 * and a stream of one device waiting on an event of another.
 *
 * Run against one vgcd's devices and against a remote executor that
 * aggregates several vgcds (tests/run.py section aggregate), where pairs of
 * devices sit behind different upstreams.  Needs two devices; with one it
 * says so and skips.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "check.h"
#include "add_one_ptx.h"

#define MAX_DEV 16
#define WORDS   4096u                   /* per device buffer, in u32 */
#define BIG     ((10u << 20) + 4)       /* bytes: past an 8 MiB bounce buffer */
#define W2D     4000u                   /* a 2D region of W2D x H2D bytes, */
#define H2D     2400u                   /* also past that buffer */

static int ndev;
static CUdevice dev[MAX_DEV];
static CUcontext ctx[MAX_DEV];
static CUmodule mod[MAX_DEV];
static CUfunction fn[MAX_DEV];
static CUstream stream[MAX_DEV];
static CUdeviceptr buf[MAX_DEV];
static unsigned host[WORDS], back[WORDS];

static void use(int d)
{
    QUIET_CU(cuCtxSetCurrent(ctx[d]));
}

static void fill(int d, unsigned base)
{
    for (unsigned i = 0; i < WORDS; i++) {
        host[i] = base + i;
    }
    use(d);
    QUIET_CU(cuMemcpyHtoD(buf[d], host, sizeof(host)));
}

/* buf[d] holds base + i (+ add) everywhere. */
static void expect(int d, unsigned base, unsigned add, const char *what, int i, int j)
{
    unsigned bad = 0;

    use(d);
    memset(back, 0, sizeof(back));
    QUIET_CU(cuMemcpyDtoH(back, buf[d], sizeof(back)));
    for (unsigned k = 0; k < WORDS; k++) {
        bad += back[k] != base + k + add;
    }
    CHECK(bad == 0, "%s %d -> %d: all %u words arrived (%u wrong)", what, i, j, WORDS, bad);
}

static void launch(CUfunction f, int d, CUstream s)
{
    unsigned n = WORDS;
    void *args[] = { &buf[d], &n };

    QUIET_CU(cuLaunchKernel(f, (WORDS + 127) / 128, 1, 1, 128, 1, 1, 0, s, args, NULL));
}

static void identities(void)
{
    char name[128], bus[MAX_DEV][32];
    CUuuid uuid[MAX_DEV];

    for (int d = 0; d < ndev; d++) {
        CUdevice back_dev = -1;

        CHECK_CU(cuDeviceGetName(name, sizeof(name), dev[d]));
        CHECK_CU(cuDeviceGetUuid(&uuid[d], dev[d]));
        CHECK_CU(cuDeviceGetPCIBusId(bus[d], sizeof(bus[d]), dev[d]));
        CHECK_CU(cuDeviceGetByPCIBusId(&back_dev, bus[d]));
        CHECK_EQ(back_dev, dev[d], "device %d is found again by its bus id %s", d, bus[d]);
        for (int e = 0; e < d; e++) {
            CHECK(memcmp(&uuid[d], &uuid[e], sizeof(uuid[d])) != 0,
                  "devices %d and %d have different UUIDs", e, d);
            CHECK(strcmp(bus[d], bus[e]) != 0, "devices %d and %d have different bus ids "
                  "(%s, %s)", e, d, bus[e], bus[d]);
        }
    }
}

static void per_device(void)
{
    for (int d = 0; d < ndev; d++) {
        CUcontext owner = NULL;
        int ordinal = -1;

        REQUIRE_CU(cuDevicePrimaryCtxRetain(&ctx[d], dev[d]));
        use(d);
        REQUIRE_CU(cuModuleLoadData(&mod[d], add_one_ptx));
        REQUIRE_CU(cuModuleGetFunction(&fn[d], mod[d], "add_one"));
        REQUIRE_CU(cuStreamCreate(&stream[d], CU_STREAM_NON_BLOCKING));
        REQUIRE_CU(cuMemAlloc(&buf[d], sizeof(host)));
        CHECK_CU(cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, buf[d]));
        CHECK_EQ(ordinal, d, "memory allocated on device %d says it is there", d);
        CHECK_CU(cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, buf[d]));
        CHECK(owner == ctx[d], "memory of device %d belongs to its context", d);
    }
    for (int d = 0; d < ndev; d++) {
        fill(d, 1000u * (unsigned)d);
        launch(fn[d], d, NULL);
        QUIET_CU(cuCtxSynchronize());
    }
    for (int d = 0; d < ndev; d++) {
        expect(d, 1000u * (unsigned)d, 1, "a kernel on its own device", d, d);
    }
}

/* One library, loaded once, runs on every device (cudart's way since 12). */
static void library(void)
{
    CUlibrary lib = NULL;
    CUkernel k = NULL, again = NULL;

    if (!CHECK_CU(cuLibraryLoadData(&lib, add_one_ptx, NULL, NULL, 0, NULL, NULL, 0))) {
        return;
    }
    CHECK_CU(cuLibraryGetKernel(&k, lib, "add_one"));
    CHECK_CU(cuLibraryGetKernel(&again, lib, "add_one"));
    CHECK(k == again, "the same name gives the same kernel");
    for (int d = 0; d < ndev; d++) {
        CUfunction f = NULL;

        fill(d, 7u);
        CHECK_CU(cuKernelGetFunction(&f, k));
        launch(f, d, stream[d]);
        launch((CUfunction)k, d, stream[d]);
        QUIET_CU(cuStreamSynchronize(stream[d]));
        expect(d, 7u, 2, "the library's kernel, twice, on device", d, d);
    }
    CHECK_CU(cuLibraryUnload(lib));
}

static void pairs(void)
{
    for (int i = 0; i < ndev; i++) {
        for (int j = 0; j < ndev; j++) {
            int can = -1;

            if (i == j) {
                continue;
            }
            CHECK_CU(cuDeviceCanAccessPeer(&can, dev[i], dev[j]));
            CHECK(can == 0 || can == 1, "peer access %d -> %d is a yes or a no", i, j);

            fill(i, 100u);
            fill(j, 0u);
            CHECK_CU(cuMemcpyPeer(buf[j], ctx[j], buf[i], ctx[i], sizeof(host)));
            expect(j, 100u, 0, "cuMemcpyPeer", i, j);

            fill(i, 200u);
            use(i);
            CHECK_CU(cuMemcpy(buf[j], buf[i], sizeof(host)));
            expect(j, 200u, 0, "unified cuMemcpy", i, j);

            if (ndev > 2) {
                /* With a third device's context current, as a program that
                 * moves data between two others. */
                int k = 0;

                while (k == i || k == j) {
                    k++;
                }
                fill(i, 250u);
                use(k);
                CHECK_CU(cuMemcpyPeer(buf[j], ctx[j], buf[i], ctx[i], sizeof(host)));
                expect(j, 250u, 0, "cuMemcpyPeer under a third device's context", i, j);
            }

            fill(i, 300u);
            use(j);
            CHECK_CU(cuMemcpyDtoD(buf[j], buf[i], sizeof(host)));
            expect(j, 300u, 0, "cuMemcpyDtoD", i, j);

            fill(i, 400u);
            CHECK_CU(cuMemcpyPeerAsync(buf[j], ctx[j], buf[i], ctx[i], sizeof(host), stream[j]));
            QUIET_CU(cuStreamSynchronize(stream[j]));
            expect(j, 400u, 0, "cuMemcpyPeerAsync", i, j);

            fill(i, 500u);
            use(j);
            CHECK_CU(cuMemcpyAsync(buf[j], buf[i], sizeof(host), stream[j]));
            QUIET_CU(cuStreamSynchronize(stream[j]));
            expect(j, 500u, 0, "unified cuMemcpyAsync", i, j);
        }
    }
}

/* A kernel on device 0, then device last waits for its event and copies. */
static void event_order(void)
{
    int last = ndev - 1;
    CUevent done = NULL;

    fill(0, 600u);
    use(0);
    REQUIRE_CU(cuEventCreate(&done, CU_EVENT_DISABLE_TIMING));
    for (int r = 0; r < 8; r++) {
        launch(fn[0], 0, stream[0]);
    }
    CHECK_CU(cuEventRecord(done, stream[0]));
    use(last);
    CHECK_CU(cuStreamWaitEvent(stream[last], done, 0));
    CHECK_CU(cuMemcpyPeerAsync(buf[last], ctx[last], buf[0], ctx[0], sizeof(host),
                               stream[last]));
    QUIET_CU(cuStreamSynchronize(stream[last]));
    expect(last, 600u, 8, "a copy after another device's event", 0, last);
    use(0);
    CHECK_CU(cuEventDestroy(done));
}

/* A W2D x H2D copy; each side is host memory when its host pointer is set. */
static CUresult copy2d(const void *src_host, CUdeviceptr src, size_t src_pitch,
                       void *dst_host, CUdeviceptr dst, size_t dst_pitch)
{
    CUDA_MEMCPY2D c;

    memset(&c, 0, sizeof(c));
    c.srcMemoryType = src_host ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
    c.srcHost = src_host;
    c.srcDevice = src;
    c.srcPitch = src_pitch;
    c.dstMemoryType = dst_host ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
    c.dstHost = dst_host;
    c.dstDevice = dst;
    c.dstPitch = dst_pitch;
    c.WidthInBytes = W2D;
    c.Height = H2D;
    return cuMemcpy2D(&c);
}

static void big_and_2d(void)
{
    int last = ndev - 1;
    unsigned char *in = malloc(BIG), *out = malloc(BIG);
    CUdeviceptr a = 0, b = 0, pa = 0, pb = 0;
    size_t pitch_a = 0, pitch_b = 0;
    size_t bad = 0;

    if (!in || !out) {
        itest_bail("out of host memory");
    }
    for (size_t i = 0; i < BIG; i++) {
        in[i] = (unsigned char)(i * 7 + i / 4099);
    }
    use(0);
    REQUIRE_CU(cuMemAlloc(&a, BIG));
    REQUIRE_CU(cuMemAllocPitch(&pa, &pitch_a, W2D, H2D, 4));
    QUIET_CU(cuMemcpyHtoD(a, in, BIG));
    use(last);
    REQUIRE_CU(cuMemAlloc(&b, BIG));
    REQUIRE_CU(cuMemAllocPitch(&pb, &pitch_b, W2D, H2D, 4));
    CHECK_CU(cuMemcpyPeer(b, ctx[last], a, ctx[0], BIG));
    QUIET_CU(cuMemcpyDtoH(out, b, BIG));
    for (size_t i = 0; i < BIG; i++) {
        bad += in[i] != out[i];
    }
    CHECK(bad == 0, "%u bytes from device 0 to %d arrive whole (%zu wrong)", BIG, last, bad);

    /* 2D: a W2D x H2D region of a pitched buffer to another device's. */
    use(0);
    QUIET_CU(copy2d(in, 0, W2D, NULL, pa, pitch_a));
    CHECK_CU(copy2d(NULL, pa, pitch_a, NULL, pb, pitch_b));
    use(last);
    memset(out, 0, W2D * H2D);
    QUIET_CU(copy2d(NULL, pb, pitch_b, out, 0, W2D));
    CHECK_BYTES(out, in, W2D * H2D, "a 2D copy of %u x %u bytes from device 0 to %d", W2D,
                H2D, last);

    use(0);
    QUIET_CU(cuMemFree(a));
    QUIET_CU(cuMemFree(pa));
    use(last);
    QUIET_CU(cuMemFree(b));
    QUIET_CU(cuMemFree(pb));
    free(in);
    free(out);
}

int main(void)
{
    REQUIRE_CU(cuInit(0));
    REQUIRE_CU(cuDeviceGetCount(&ndev));
    if (ndev < 2) {
        itest_skip("every multi-device check", "this server has one device");
        return itest_done();
    }
    ndev = ndev > MAX_DEV ? MAX_DEV : ndev;
    for (int d = 0; d < ndev; d++) {
        REQUIRE_CU(cuDeviceGet(&dev[d], d));
    }
    identities();
    per_device();
    library();
    pairs();
    event_order();
    big_and_2d();
    for (int d = 0; d < ndev; d++) {
        use(d);
        QUIET_CU(cuMemFree(buf[d]));
        QUIET_CU(cuStreamDestroy(stream[d]));
        QUIET_CU(cuModuleUnload(mod[d]));
        QUIET_CU(cuCtxSetCurrent(NULL));
        QUIET_CU(cuDevicePrimaryCtxRelease(dev[d]));
    }
    return itest_done();
}
