/*
 * fuzz_frame.c - libFuzzer target for everything a client can send a worker.
 *
 * The input is a script of frames, so that fuzzing time goes on the
 * decoders rather than on guessing the magic:
 *
 *   byte 0        mode: bit 0 set = raw, the rest of the input is fed as
 *                 one frame header + payload exactly as given (framing bugs)
 *   then frames:  u16 opcode index (mod the call count; 0xffff = raw opcode
 *                 given in the next u16), u8 flags, u16 payload length,
 *                 u8 context choice, payload bytes
 *
 * Each input runs in a fresh session on one cpu executor, after a valid
 * handshake, cuInit and a primary context, so calls reach the executor with
 * live handles to misuse.  The executor's memory budget is small so that
 * allocation paths hit their limits.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vgc_opcodes.h"
#include "executor.h"
#include "frame.h"
#include "session.h"

static struct vgc_executor *exec;
static uint8_t *reply_buf;

static enum vgcd_frame_result fuzz_send(struct vgcd_session *s, unsigned opcode,
                                        uint32_t flags, uint64_t ctx,
                                        const void *payload, size_t len)
{
    struct vgc_hdr h = {
        .magic = VGC_MAGIC, .version = VGC_PROTOCOL_VERSION,
        .opcode = (uint16_t)opcode, .flags = flags, .length = (uint32_t)len,
        .request_id = 1, .ctx = ctx,
    };
    struct vgc_wr w;

    vgc_wr_init(&w, reply_buf, VGC_MAX_PAYLOAD);
    return vgcd_frame_process(s, &h, payload, &w);
}

static uint64_t fuzz_setup_session(struct vgcd_session *s)
{
    uint8_t p[64];
    struct vgc_wr w;
    struct vgc_rd r;
    uint64_t ctx = 0;

    vgc_wr_init(&w, p, sizeof(p));
    vgc_wr_u32(&w, VGC_PROTOCOL_VERSION);
    vgc_wr_u32(&w, 1);
    vgc_wr_u64(&w, VGC_SPEC_HASH);
    vgc_wr_str(&w, "fuzz");
    fuzz_send(s, VGC_OP_HELLO, 0, 0, p, w.len);

    vgc_wr_init(&w, p, sizeof(p));
    vgc_wr_u32(&w, 0);
    fuzz_send(s, VGC_OP_cuInit, 0, 0, p, w.len);
    fuzz_send(s, VGC_OP_cuDevicePrimaryCtxRetain, 0, 0, p, w.len);   /* dev 0 */
    vgc_rd_init(&r, reply_buf, 12);
    if (vgc_rd_i32(&r) == CUDA_SUCCESS) {
        ctx = vgc_rd_u64(&r);
    }
    return ctx;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct vgc_executor_config cfg = { .ndevices = 2, .device_memory = 32 << 20 };
    char *err = NULL;

    (void)argc;
    (void)argv;
    exec = vgc_executor_create("cpu", &cfg, &err);
    reply_buf = malloc(VGC_MAX_PAYLOAD);
    if (!exec || !reply_buf) {
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vgcd_session *s = vgcd_session_new(exec, "fuzz");
    uint64_t ctx = fuzz_setup_session(s);
    size_t pos = 1;

    if (size == 0) {
        goto out;
    }
    if (data[0] & 1) {
        /* raw: the bytes are the frame, header included */
        struct vgc_hdr h;
        if (size - 1 >= sizeof(h)) {
            struct vgc_wr w;
            memcpy(&h, data + 1, sizeof(h));
            if (h.length > size - 1 - sizeof(h)) {
                h.length = (uint32_t)(size - 1 - sizeof(h));
            }
            vgc_wr_init(&w, reply_buf, VGC_MAX_PAYLOAD);
            vgcd_frame_process(s, &h, data + 1 + sizeof(h), &w);
        }
        goto out;
    }
    while (pos + 6 <= size) {
        unsigned idx = data[pos] | (unsigned)data[pos + 1] << 8;
        uint32_t flags = data[pos + 2] & 3;
        size_t len = data[pos + 3] | (size_t)data[pos + 4] << 8;
        uint8_t ctx_choice = data[pos + 5];
        unsigned opcode;
        uint64_t frame_ctx = ctx_choice < 200 ? ctx : (ctx_choice < 230 ? 0 : ctx + ctx_choice);

        pos += 6;
        if (idx == 0xffff && pos + 2 <= size) {
            opcode = data[pos] | (unsigned)data[pos + 1] << 8;
            pos += 2;
        } else {
            opcode = VGC_OP_FIRST_CALL + idx % (VGC_OP_END - VGC_OP_FIRST_CALL);
            /* the async flag must match the call, or the frame is refused
             * before any decoding: usually send what the call expects */
            if (!(flags & 2)) {
                flags = vgc_opcode_is_async(opcode) ? VGC_F_NO_REPLY : 0;
            }
        }
        if (len > size - pos) {
            len = size - pos;
        }
        if (fuzz_send(s, opcode, flags, frame_ctx, data + pos, len) == VGCD_FRAME_VIOLATION) {
            break;
        }
        pos += len;
    }
out:
    vgcd_session_free(s);
    return 0;
}
