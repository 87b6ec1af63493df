/*
 * test_frame.c - requests through the worker's frame processor, in process,
 * on the cpu executor: handshake, handle tables, deferred async errors and
 * protocol violations, without a socket in the way.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgc_opcodes.h"
#include "executor.h"
#include "frame.h"
#include "pool.h"
#include "unit_check.h"
#include "session.h"

static uint8_t reply_buf[VGC_MAX_PAYLOAD];
static struct vgc_rd reply;

/* Send one frame; returns the frame result, the reply readable in `reply`. */
static enum vgcd_frame_result send_frame(struct vgcd_session *s, unsigned opcode,
                                         uint32_t flags, uint64_t ctx,
                                         const struct vgc_wr *payload, uint16_t version)
{
    struct vgc_hdr h = {
        .magic = VGC_MAGIC, .version = version, .opcode = (uint16_t)opcode,
        .flags = flags, .length = payload ? (uint32_t)payload->len : 0,
        .request_id = 1, .ctx = ctx,
    };
    struct vgc_wr w;
    enum vgcd_frame_result fr;

    vgc_wr_init(&w, reply_buf, sizeof(reply_buf));
    fr = vgcd_frame_process(s, &h, payload ? payload->buf : NULL, &w);
    vgc_rd_init(&reply, reply_buf, w.len);
    return fr;
}

static CUresult call(struct vgcd_session *s, unsigned opcode, uint64_t ctx,
                     const struct vgc_wr *payload)
{
    enum vgcd_frame_result fr = send_frame(s, opcode, 0, ctx, payload, VGC_PROTOCOL_VERSION);

    if (fr != VGCD_FRAME_REPLY) {
        return (CUresult)-1;
    }
    return (CUresult)vgc_rd_i32(&reply);
}

static uint8_t pbuf[1 << 20];

static struct vgc_wr *payload(void)
{
    static struct vgc_wr w;
    vgc_wr_init(&w, pbuf, sizeof(pbuf));
    return &w;
}

/* A session after its hello; @pool (may be NULL) set before it, as workers do. */
static struct vgcd_session *new_session_in(struct vgc_executor *exec, struct vgc_pool *pool)
{
    struct vgcd_session *s = vgcd_session_new(exec, "test");
    struct vgc_wr *w = payload();

    s->pool = pool;

    vgc_wr_u32(w, VGC_PROTOCOL_VERSION);
    vgc_wr_u32(w, 1);
    vgc_wr_u64(w, VGC_SPEC_HASH);
    vgc_wr_str(w, "test_frame");
    CHECK(send_frame(s, VGC_OP_HELLO, 0, 0, w, VGC_PROTOCOL_VERSION) == VGCD_FRAME_REPLY,
          "hello refused");
    CHECK(vgc_rd_i32(&reply) == CUDA_SUCCESS, "hello result");
    return s;
}

static struct vgcd_session *new_session(struct vgc_executor *exec)
{
    return new_session_in(exec, NULL);
}

static void test_handshake(struct vgc_executor *exec)
{
    struct vgcd_session *s = vgcd_session_new(exec, "test");
    struct vgc_wr *w = payload();
    char msg[256], name[32];

    /* a call before the hello ends the session */
    vgc_wr_u32(w, 0);
    CHECK(send_frame(s, VGC_OP_cuInit, 0, 0, w, 1) == VGCD_FRAME_VIOLATION, "call before hello");
    vgcd_session_free(s);

    /* another protocol version is refused with a message, then closed */
    s = vgcd_session_new(exec, "test");
    w = payload();
    vgc_wr_u32(w, 7);
    vgc_wr_u32(w, 1);
    vgc_wr_u64(w, VGC_SPEC_HASH);
    vgc_wr_str(w, "old client");
    CHECK(send_frame(s, VGC_OP_HELLO, 0, 0, w, 7) == VGCD_FRAME_CLOSE, "mismatch not closed");
    CHECK(vgc_rd_i32(&reply) == CUDA_ERROR_NOT_SUPPORTED, "mismatch result");
    CHECK(vgc_rd_u32(&reply) == VGC_PROTOCOL_VERSION, "server version");
    vgc_rd_u64(&reply);
    vgc_rd_str(&reply, name, sizeof(name));
    CHECK(!strcmp(name, "cpu"), "executor name %s", name);
    vgc_rd_u64(&reply);
    vgc_rd_u64(&reply);
    vgc_rd_i32(&reply);
    vgc_rd_str(&reply, msg, sizeof(msg));
    CHECK(strstr(msg, "protocol version mismatch") != NULL, "message: %s", msg);
    vgcd_session_free(s);
}

/* A hello from a client that knows the features in @client_features;
 * the reply's window and features. */
static void hello_window(struct vgc_executor *exec, bool send_features,
                         uint32_t client_features, uint64_t *base, uint64_t *size,
                         uint32_t *features)
{
    struct vgcd_session *s = vgcd_session_new(exec, "test");
    struct vgc_wr *w = payload();
    char text[256];

    vgc_wr_u32(w, VGC_PROTOCOL_VERSION);
    vgc_wr_u32(w, 1);
    vgc_wr_u64(w, VGC_SPEC_HASH);
    vgc_wr_str(w, "window");
    if (send_features) {
        vgc_wr_u32(w, client_features);
    }
    CHECK(send_frame(s, VGC_OP_HELLO, 0, 0, w, VGC_PROTOCOL_VERSION) == VGCD_FRAME_REPLY,
          "hello refused");
    CHECK(vgc_rd_i32(&reply) == CUDA_SUCCESS, "hello result");
    vgc_rd_u32(&reply);
    vgc_rd_u64(&reply);
    vgc_rd_str(&reply, text, sizeof(text));
    *base = vgc_rd_u64(&reply);
    *size = vgc_rd_u64(&reply);
    vgc_rd_i32(&reply);
    vgc_rd_str(&reply, text, sizeof(text));
    *features = vgc_rd_u32(&reply);
    CHECK(!reply.bad, "reply complete");
    vgcd_session_free(s);
}

/*
 * The window in the handshake: the cpu executor's holds all its device
 * memory and goes to every client as it is.  A partial one (a cuda
 * executor's with --address-base) goes, with VGC_FEATURE_PARTIAL_WINDOW,
 * only to clients that say they know that bit; older ones get none, and
 * ask about every address instead of taking driver-placed memory for
 * theirs.
 */
static void test_partial_window(struct vgc_executor *exec)
{
    struct vgc_executor partial = *exec;
    uint64_t base, size;
    uint32_t features;

    hello_window(exec, false, 0, &base, &size, &features);
    CHECK(base == exec->va_base && size == exec->va_size && size &&
          !(features & VGC_FEATURE_PARTIAL_WINDOW), "whole window, to an older client");
    hello_window(exec, true, VGC_FEATURE_PARTIAL_WINDOW, &base, &size, &features);
    CHECK(base == exec->va_base && size == exec->va_size &&
          !(features & VGC_FEATURE_PARTIAL_WINDOW), "whole window, not called partial");

    partial.va_partial = true;
    hello_window(&partial, true, VGC_FEATURE_PARTIAL_WINDOW, &base, &size, &features);
    CHECK(base == exec->va_base && size == exec->va_size &&
          (features & VGC_FEATURE_PARTIAL_WINDOW) && (features & VGC_FEATURE_DEVICE_STATUS),
          "partial window, said so, to a client that knows (features %#x)", features);
    hello_window(&partial, false, 0, &base, &size, &features);
    CHECK(base == 0 && size == 0 && !(features & VGC_FEATURE_PARTIAL_WINDOW),
          "no window to a client from before the features word");
    hello_window(&partial, true, VGC_FEATURE_DEVICE_STATUS, &base, &size, &features);
    CHECK(base == 0 && size == 0 && !(features & VGC_FEATURE_PARTIAL_WINDOW),
          "nor to one that does not know the bit");
}

static void test_calls(struct vgc_executor *exec)
{
    struct vgcd_session *s = new_session(exec);
    struct vgc_wr *w;
    uint64_t ctx, ctx2, stream, dptr;
    char data[1000], back[1000];
    CUresult r;

    w = payload();
    vgc_wr_u32(w, 0);
    CHECK(call(s, VGC_OP_cuInit, 0, w) == CUDA_SUCCESS, "cuInit");

    w = payload();
    vgc_wr_u32(w, 0);                               /* dev */
    CHECK(call(s, VGC_OP_cuDevicePrimaryCtxRetain, 0, w) == CUDA_SUCCESS, "retain");
    ctx = vgc_rd_u64(&reply);
    CHECK(VGC_HANDLE_KIND(ctx) == VGC_HANDLE_CTX, "ctx handle %#llx", (unsigned long long)ctx);
    CHECK(call(s, VGC_OP_cuDevicePrimaryCtxRetain, 0, w) == CUDA_SUCCESS, "retain again");
    CHECK(vgc_rd_u64(&reply) == ctx, "the primary context is one handle");

    /* memory round trip through the frames */
    w = payload();
    vgc_wr_u64(w, sizeof(data));
    CHECK(call(s, VGC_OP_cuMemAlloc_v2, ctx, w) == CUDA_SUCCESS, "alloc");
    dptr = vgc_rd_u64(&reply);
    CHECK(vgc_rd_done(&reply), "alloc reply fully used");
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (char)(i * 7 + 3);
    }
    w = payload();
    vgc_wr_u64(w, dptr);
    vgc_wr_blob(w, data, sizeof(data));
    vgc_wr_u64(w, sizeof(data));
    CHECK(call(s, VGC_OP_cuMemcpyHtoD_v2, ctx, w) == CUDA_SUCCESS, "HtoD");
    w = payload();
    vgc_wr_u64(w, sizeof(back));                    /* dstHost length */
    vgc_wr_u64(w, dptr);
    vgc_wr_u64(w, sizeof(back));
    CHECK(call(s, VGC_OP_cuMemcpyDtoH_v2, ctx, w) == CUDA_SUCCESS, "DtoH");
    {
        uint64_t n;
        const void *p = vgc_rd_blob(&reply, &n, sizeof(back));
        CHECK(p && n == sizeof(back) && !memcmp(p, data, sizeof(data)), "bytes came back");
    }

    /* a forged handle is an error, not a crash */
    w = payload();
    vgc_wr_u64(w, ((uint64_t)VGC_HANDLE_STREAM << 56) | 999);
    CHECK(call(s, VGC_OP_cuStreamSynchronize, ctx, w) == CUDA_ERROR_INVALID_HANDLE, "forged");
    w = payload();
    vgc_wr_u64(w, ctx);                             /* right id, wrong kind */
    CHECK(call(s, VGC_OP_cuStreamSynchronize, ctx, w) == CUDA_ERROR_INVALID_HANDLE, "kind");

    /* an async failure is reported by the next synchronising call */
    w = payload();
    vgc_wr_u64(w, 0x10);                            /* no such device address */
    vgc_wr_u8(w, 1);
    vgc_wr_u64(w, 64);
    vgc_wr_u64(w, 0);
    CHECK(send_frame(s, VGC_OP_cuMemsetD8Async, VGC_F_NO_REPLY, ctx, w, 1) ==
          VGCD_FRAME_NO_REPLY, "async has no reply");
    w = payload();
    vgc_wr_u64(w, 0);
    r = call(s, VGC_OP_cuStreamSynchronize, ctx, w);
    CHECK(r == CUDA_ERROR_INVALID_VALUE, "deferred error surfaced: %d", r);
    CHECK(call(s, VGC_OP_cuStreamSynchronize, ctx, w) == CUDA_SUCCESS, "and only once");

    /* destroying a context forgets what it owned */
    w = payload();
    vgc_wr_u32(w, 0);                               /* flags */
    vgc_wr_u32(w, 0);                               /* dev */
    CHECK(call(s, VGC_OP_cuCtxCreate_v2, ctx, w) == CUDA_SUCCESS, "ctx create");
    ctx2 = vgc_rd_u64(&reply);
    w = payload();
    vgc_wr_u32(w, 0);
    CHECK(call(s, VGC_OP_cuStreamCreate, ctx2, w) == CUDA_SUCCESS, "stream create");
    stream = vgc_rd_u64(&reply);
    w = payload();
    vgc_wr_u64(w, stream);
    CHECK(call(s, VGC_OP_cuStreamSynchronize, ctx2, w) == CUDA_SUCCESS, "stream works");
    w = payload();
    vgc_wr_u64(w, ctx2);
    CHECK(call(s, VGC_OP_cuCtxDestroy_v2, ctx2, w) == CUDA_SUCCESS, "ctx destroy");
    w = payload();
    vgc_wr_u64(w, stream);
    CHECK(call(s, VGC_OP_cuStreamSynchronize, ctx, w) == CUDA_ERROR_INVALID_HANDLE,
          "stream of a destroyed context is gone");
    CHECK(call(s, VGC_OP_cuStreamSynchronize, ctx2, w) == CUDA_ERROR_INVALID_CONTEXT,
          "the destroyed context is gone");

    /* malformed payloads end the session */
    w = payload();
    vgc_wr_u8(w, 1);
    CHECK(send_frame(s, VGC_OP_cuMemAlloc_v2, 0, ctx, w, 1) == VGCD_FRAME_VIOLATION, "short");
    CHECK(s->violation && strstr(s->violation, "malformed"), "reason: %s", s->violation);
    vgcd_session_free(s);

    s = new_session(exec);
    CHECK(send_frame(s, 9999, 0, 0, NULL, 1) == VGCD_FRAME_VIOLATION, "unknown opcode");
    vgcd_session_free(s);
}

/* One DEVICE_STATUS frame of @len bytes (dev, max, flags, then zeros). */
static enum vgcd_frame_result status_frame(struct vgcd_session *s, uint32_t flags_hdr,
                                           uint32_t dev, uint32_t max, uint32_t flags,
                                           size_t len)
{
    struct vgc_wr *w = payload();

    vgc_wr_u32(w, dev);
    vgc_wr_u32(w, max);
    vgc_wr_u32(w, flags);
    while (w->len < len) {
        vgc_wr_u8(w, 0);
    }
    w->len = len;
    return send_frame(s, VGC_OP_DEVICE_STATUS, flags_hdr, 0, w, VGC_PROTOCOL_VERSION);
}

static CUresult status_result(struct vgcd_session *s, uint32_t dev, uint32_t max, uint32_t flags)
{
    if (status_frame(s, 0, dev, max, flags, 12) != VGCD_FRAME_REPLY) {
        return (CUresult)-1;
    }
    return (CUresult)vgc_rd_i32(&reply);
}

/* DEVICE_STATUS: checks of every field; the session's own process listed. */
static void test_status(struct vgc_executor *exec, struct vgc_pool *pool)
{
    struct vgcd_session *s = new_session_in(exec, pool);
    struct vgc_wr *w;
    uint64_t ctx;
    uint32_t gpu, mem, nprocs, n, pid;
    uint64_t used, before;

    w = payload();
    vgc_wr_u32(w, 0);
    CHECK(call(s, VGC_OP_cuInit, 0, w) == CUDA_SUCCESS, "cuInit");
    CHECK(status_result(s, 1, 0, 0) == CUDA_ERROR_INVALID_DEVICE, "one device only");
    CHECK(status_result(s, 0, VGC_DEVICE_STATUS_MAX_PROCS + 1, 0) == CUDA_ERROR_INVALID_VALUE,
          "too many processes asked for");
    CHECK(status_result(s, 0, 0, 2) == CUDA_ERROR_INVALID_VALUE, "unknown flags");
    CHECK(vgc_rd_done(&reply), "an error reply is the result alone");

    /* with a context and memory, this session is on the list */
    w = payload();
    vgc_wr_u32(w, 0);
    CHECK(call(s, VGC_OP_cuDevicePrimaryCtxRetain, 0, w) == CUDA_SUCCESS, "retain");
    ctx = vgc_rd_u64(&reply);
    /* this process's executor served the sessions before: count from here */
    before = vgc_pool_used(pool, 0);
    w = payload();
    vgc_wr_u64(w, 1000);
    CHECK(call(s, VGC_OP_cuMemAlloc_v2, ctx, w) == CUDA_SUCCESS, "alloc");
    CHECK(status_result(s, 0, 4, 0) == CUDA_SUCCESS, "status");
    gpu = vgc_rd_u32(&reply);
    mem = vgc_rd_u32(&reply);
    nprocs = vgc_rd_u32(&reply);
    n = vgc_rd_u32(&reply);
    pid = vgc_rd_u32(&reply);
    used = vgc_rd_u64(&reply);
    CHECK(vgc_rd_done(&reply), "the reply is as long as it says");
    CHECK(gpu <= 100 && mem <= 100, "percentages: %u %u", gpu, mem);
    CHECK(nprocs == 1 && n == 1 && pid == 1 && used == before + 1024,
          "listed: %u of %u, pid %u, %llu bytes", n, nprocs, pid, (unsigned long long)used);
    CHECK(status_result(s, 0, 0, 0) == CUDA_SUCCESS, "counting only");
    vgc_rd_u64(&reply);
    CHECK(vgc_rd_u32(&reply) == 1 && vgc_rd_u32(&reply) == 0 && vgc_rd_done(&reply),
          "one process, none listed");
    /* with the memory flag: the device's memory follows, this session's
     * allocation taken from what is free */
    CHECK(status_result(s, 0, 0, VGC_DEVICE_STATUS_MEMORY) == CUDA_SUCCESS, "memory");
    vgc_rd_u64(&reply);
    vgc_rd_u64(&reply);
    {
        uint64_t total = vgc_rd_u64(&reply), free_bytes = vgc_rd_u64(&reply);
        CHECK(vgc_rd_done(&reply) && total == vgc_pool_capacity(pool, 0) &&
              free_bytes == total - vgc_pool_used(pool, 0),
              "memory: total %llu, free %llu", (unsigned long long)total,
              (unsigned long long)free_bytes);
    }

    /* malformed: the session ends */
    CHECK(status_frame(s, 0, 0, 0, 0, 8) == VGCD_FRAME_VIOLATION, "short");
    CHECK(s->violation && strstr(s->violation, "malformed device status"), "reason: %s",
          s->violation);
    vgcd_session_free(s);
    s = new_session_in(exec, pool);
    CHECK(status_frame(s, 0, 0, 0, 0, 13) == VGCD_FRAME_VIOLATION, "long");
    vgcd_session_free(s);
    s = new_session_in(exec, pool);
    CHECK(status_frame(s, VGC_F_NO_REPLY, 0, 0, 0, 12) == VGCD_FRAME_VIOLATION, "async");
    vgcd_session_free(s);

    /* without a pool nothing is accounted: NOT_SUPPORTED */
    s = new_session(exec);
    CHECK(status_result(s, 0, 0, 0) == CUDA_ERROR_NOT_SUPPORTED, "no pool");
    vgcd_session_free(s);
}

int main(void)
{
    /* A pool, as in a worker of the daemon: one slot of a unix-socket tenant. */
    struct vgc_tenant me = { .kind = VGC_TENANT_UID };
    struct vgc_pool *pool = vgc_pool_create(1, 64 << 20, 2);
    struct vgc_executor_config cfg = { .ndevices = 1, .device_memory = 64 << 20, .pool = pool };
    char *err = NULL;
    struct vgc_executor *exec;

    if (!pool) {
        printf("not ok - pool\n");
        return 1;
    }
    vgc_pool_bind(pool, vgc_pool_slot_claim(pool, &me));
    exec = vgc_executor_create("cpu", &cfg, &err);
    if (!exec) {
        printf("not ok - cpu executor: %s\n", err);
        return 1;
    }
    test_handshake(exec);
    test_partial_window(exec);
    test_calls(exec);
    test_status(exec, pool);
    return unit_done();
}
