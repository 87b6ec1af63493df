/*
 * frame.c - handshake, framing checks and dispatch of one request.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "vgc_opcodes.h"
#include "frame.h"
#include "image_cache.h"
#include "status.h"
#include "worker.h"

const char *vgcd_frame_check_header(const struct vgc_hdr *h)
{
    if (h->magic != VGC_MAGIC) {
        return "bad magic";
    }
    if (h->length > VGC_MAX_PAYLOAD) {
        return "payload length over the limit";
    }
    if (h->flags & ~(uint32_t)VGC_F_KNOWN) {
        return "unknown flags";
    }
    if (h->flags & VGC_F_REPLY) {
        return "a client sent a reply frame";
    }
    return NULL;
}

static enum vgcd_frame_result frame_hello(struct vgcd_session *s,
                                          const struct vgc_hdr *h,
                                          const void *payload,
                                          struct vgc_wr *w)
{
    struct vgc_rd r;
    uint32_t version, pid, client_features;
    uint64_t hash, va_base = s->exec->va_base, va_size = s->exec->va_size;
    uint32_t features = VGC_FEATURE_DEVICE_STATUS | VGC_FEATURE_DEVICE_MEMORY |
                        (vgcd_swap_on_request_possible() ? VGC_FEATURE_SWAP : 0);
    char name[256];
    char msg[256] = "";
    CUresult res = CUDA_SUCCESS;
    int driver_version = 0;

    vgc_rd_init(&r, payload, h->length);
    version = vgc_rd_u32(&r);
    pid = vgc_rd_u32(&r);
    hash = vgc_rd_u64(&r);
    vgc_rd_str(&r, name, sizeof(name));
    /* Appended later: a client without it says nothing more. */
    client_features = !r.bad && r.pos < r.len ? vgc_rd_u32(&r) : 0;
    if (r.bad) {
        vgcd_violation(s, "malformed hello");
        return VGCD_FRAME_VIOLATION;
    }
    /* A client that would take a partial window for the whole of device
     * memory gets none: it asks about every address instead. */
    if (s->exec->va_partial) {
        if (client_features & VGC_FEATURE_PARTIAL_WINDOW) {
            features |= VGC_FEATURE_PARTIAL_WINDOW;
        } else {
            va_base = va_size = 0;
        }
    }
    if (version != VGC_PROTOCOL_VERSION || h->version != VGC_PROTOCOL_VERSION) {
        snprintf(msg, sizeof(msg),
                 "protocol version mismatch: client speaks %u, vgcd speaks %u",
                 version, VGC_PROTOCOL_VERSION);
        res = CUDA_ERROR_NOT_SUPPORTED;
    } else if (hash != VGC_SPEC_HASH) {
        snprintf(msg, sizeof(msg),
                 "API spec mismatch: client built from spec %016llx, vgcd from %016llx",
                 (unsigned long long)hash, (unsigned long long)VGC_SPEC_HASH);
        res = CUDA_ERROR_NOT_SUPPORTED;
    } else if (s->exec->refusal) {
        snprintf(msg, sizeof(msg), "vgcd cannot serve: %s", s->exec->refusal);
        res = CUDA_ERROR_NO_DEVICE;
    }
    if (res != CUDA_SUCCESS) {
        fprintf(stderr, "vgcd: %s (pid %u, %s): %s\n", s->peer, pid, name, msg);
    }
    if (s->exec->ops.cuDriverGetVersion) {
        s->exec->ops.cuDriverGetVersion(&driver_version);
    }
    vgc_wr_i32(w, res);
    vgc_wr_u32(w, VGC_PROTOCOL_VERSION);
    vgc_wr_u64(w, VGC_SPEC_HASH);
    vgc_wr_str(w, s->exec->name);
    vgc_wr_u64(w, va_base);
    vgc_wr_u64(w, va_size);
    vgc_wr_i32(w, driver_version);
    vgc_wr_str(w, msg);
    vgc_wr_u32(w, features);
    if (res != CUDA_SUCCESS) {
        return VGCD_FRAME_CLOSE;
    }
    s->hello_done = true;
    vgcd_status_hello(s, pid);
    return VGCD_FRAME_REPLY;
}

/* Hand over what the device printed, 64 KiB at a time. */
static enum vgcd_frame_result frame_output(struct vgcd_session *s, bool async,
                                          struct vgc_wr *w)
{
    size_t n = 0;
    void *text;

    if (async) {
        vgcd_violation(s, "an output request sent without waiting");
        return VGCD_FRAME_VIOLATION;
    }
    vgc_wr_i32(w, CUDA_SUCCESS);
    vgc_wr_u64(w, 0);                   /* the blob's length, set below */
    text = vgc_wr_reserve(w, 64 << 10);
    if (text && s->exec->output_drain) {
        n = s->exec->output_drain(text, 64 << 10);
    }
    memcpy(w->buf + 4, &(uint64_t){ n }, 8);
    w->len = 12 + n;
    s->output_pending = s->exec->output_pending && s->exec->output_pending();
    return VGCD_FRAME_REPLY;
}

/* Swap this session out or in, as its client asks (VGC_FEATURE_SWAP). */
static enum vgcd_frame_result frame_swap(struct vgcd_session *s, bool async,
                                        const void *payload, uint32_t len,
                                        struct vgc_wr *w)
{
    struct vgc_rd r;
    uint32_t dir;

    vgc_rd_init(&r, payload, len);
    dir = vgc_rd_u32(&r);
    if (async || !vgc_rd_done(&r) || (dir != VGC_SWAP_REQ_OUT && dir != VGC_SWAP_REQ_IN)) {
        vgcd_violation(s, "a malformed swap request");
        return VGCD_FRAME_VIOLATION;
    }
    vgc_wr_i32(w, vgcd_swap_on_request(s, dir == VGC_SWAP_REQ_OUT));
    return VGCD_FRAME_REPLY;
}

enum vgcd_frame_result vgcd_frame_process(struct vgcd_session *s,
                                          const struct vgc_hdr *h,
                                          const void *payload,
                                          struct vgc_wr *w)
{
    const char *bad = vgcd_frame_check_header(h);
    bool async = h->flags & VGC_F_NO_REPLY;
    struct vgc_rd r;
    CUresult res;
    int rc;

    if (bad) {
        vgcd_violation(s, bad);
        return VGCD_FRAME_VIOLATION;
    }
    if (!s->hello_done) {
        if (h->opcode != VGC_OP_HELLO || async) {
            vgcd_violation(s, "first frame is not a hello");
            return VGCD_FRAME_VIOLATION;
        }
        return frame_hello(s, h, payload, w);
    }
    if (h->version != VGC_PROTOCOL_VERSION) {
        vgcd_violation(s, "protocol version changed within a session");
        return VGCD_FRAME_VIOLATION;
    }
    if (h->opcode == VGC_OP_GOODBYE) {
        return VGCD_FRAME_CLOSE;
    }
    if (h->opcode == VGC_OP_IMAGE_QUERY || h->opcode == VGC_OP_IMAGE_PUT) {
        if (async) {
            vgcd_violation(s, "an image request sent without waiting");
            return VGCD_FRAME_VIOLATION;
        }
        if (vgcd_image_frame(s, h->opcode, payload, h->length, w) < 0) {
            return VGCD_FRAME_VIOLATION;
        }
        return VGCD_FRAME_REPLY;
    }
    if (h->opcode == VGC_OP_OUTPUT) {
        return frame_output(s, async, w);
    }
    if (h->opcode == VGC_OP_DEVICE_STATUS) {
        if (async) {
            vgcd_violation(s, "a device status request sent without waiting");
            return VGCD_FRAME_VIOLATION;
        }
        if (vgcd_status_frame(s, payload, h->length, w) < 0) {
            return VGCD_FRAME_VIOLATION;
        }
        return VGCD_FRAME_REPLY;
    }
    if (h->opcode == VGC_OP_SWAP) {
        return frame_swap(s, async, payload, h->length, w);
    }
    if (h->opcode < VGC_OP_FIRST_CALL || !vgc_opcode_name(h->opcode)) {
        vgcd_violation(s, "unknown opcode");
        return VGCD_FRAME_VIOLATION;
    }
    if (async != (bool)vgc_opcode_is_async(h->opcode)) {
        vgcd_violation(s, async ? "a synchronous call sent without waiting"
                                : "an asynchronous call sent waiting");
        return VGCD_FRAME_VIOLATION;
    }

    /* Its memory is in host RAM until its client asks it back. */
    res = s->swapped_on_request ? CUDA_ERROR_ILLEGAL_STATE : vgcd_session_enter(s, h->ctx);
    if (res != CUDA_SUCCESS) {
        /* The thread's current context is gone: the call fails as a whole. */
        if (async) {
            vgcd_defer(s, res);
            return VGCD_FRAME_NO_REPLY;
        }
        vgc_wr_i32(w, res);
        return VGCD_FRAME_REPLY;
    }
    vgc_rd_init(&r, payload, h->length);
    vgcd_devmap_call_begin(s, h->opcode);
    vgcd_status_call_begin(s, h->opcode);
    rc = vgcd_dispatch(s, h->opcode, &r, w);
    vgcd_status_call_end(s, h->opcode);
    if (rc < 0) {
        return VGCD_FRAME_VIOLATION;
    }
    /* Kernels may have printed: say so in this reply, if it has one. */
    s->output_pending = !async && s->exec->output_pending && s->exec->output_pending();
    return async ? VGCD_FRAME_NO_REPLY : VGCD_FRAME_REPLY;
}
