/*
 * transport.h - how the shim reaches the host: requests and replies.
 *
 * One connection per guest process, shared by its threads under one lock
 * held from vgc_req_begin to vgc_req_end.  Generated encoders use it as:
 *
 *     vgc_req_begin(&rq, opcode)   lock; writer points at the payload
 *     ... vgc_wr_*(&rq.wr, ...) ...
 *     vgc_req_call(&rq)            send, wait; rq.rd reads the reply payload
 *       or vgc_req_post(&rq)       queue an async call, no reply
 *     vgc_req_end(&rq)             unlock
 *
 * Async calls are queued and sent in batches: before the next synchronous
 * call, or once enough bytes are waiting.  Their failures come back with the
 * next synchronising call, as with the real driver.
 *
 * Errors: CUDA_ERROR_NOT_INITIALIZED before cuInit connected;
 * CUDA_ERROR_DEVICE_UNAVAILABLE once the connection broke (logged once).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_TRANSPORT_H
#define VGC_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "vgc_cuda.h"
#include "vgc_wire.h"

struct vgc_req {
    struct vgc_wr wr;       /* the request payload being built */
    struct vgc_rd rd;       /* after vgc_req_call: the reply after its result */
    unsigned opcode;
    uint8_t *frame;         /* where this request's header goes */
};

CUresult vgc_req_begin(struct vgc_req *rq, unsigned opcode);
CUresult vgc_req_call(struct vgc_req *rq);
CUresult vgc_req_post(struct vgc_req *rq);
void vgc_req_end(struct vgc_req *rq);
/* The reply did not match its call: log, break the connection. */
CUresult vgc_req_bad_reply(struct vgc_req *rq);

/* What the handshake learned about the host. */
struct vgc_server_info {
    char executor[32];
    uint64_t va_base;       /* device addresses lie in [va_base, +va_size) */
    uint64_t va_size;
    int driver_version;
    uint32_t features;      /* VGC_FEATURE_*: protocol messages it answers,
                               whether the window is partial */
};

/*
 * Connect to the server named by VGC_SERVER (unix:PATH or tcp:HOST:PORT)
 * and shake hands.  Idempotent; safe from several threads.
 * Returns CUDA_SUCCESS, or CUDA_ERROR_NO_DEVICE with a logged reason.
 */
CUresult vgc_transport_connect(void);
const struct vgc_server_info *vgc_server_info(void);

/*
 * Bulk bytes (a copy's chunk, a part of an image) one request may carry on
 * this transport: VGC_MAX_CHUNK on a socket, less on a virtio device whose
 * chains have fewer descriptors than a full chunk of pages needs.
 */
size_t vgc_transport_max_chunk(void);

/* True when @p lies in the server's device address window. */
bool vgc_is_device_address(uint64_t p);

/* What the handshake @info says of an address. */
enum vgc_address_kind {
    VGC_ADDRESS_DEVICE,     /* in the device window */
    VGC_ADDRESS_HOST,       /* outside a window that holds all device memory */
    VGC_ADDRESS_ASK,        /* the server can say: no window, or a partial one */
};

static inline enum vgc_address_kind vgc_address_kind(const struct vgc_server_info *info,
                                                     uint64_t p)
{
    if (!info->va_size) {
        return VGC_ADDRESS_ASK;
    }
    if (p - info->va_base < info->va_size) {
        return VGC_ADDRESS_DEVICE;
    }
    return info->features & VGC_FEATURE_PARTIAL_WINDOW ? VGC_ADDRESS_ASK : VGC_ADDRESS_HOST;
}

/* The private export table's members for vgcd's remote executor
 * (vgc_private.h says what they do). */
CUresult vgc_transport_address_window(uint64_t *base, uint64_t *size);
bool vgc_transport_address_window_partial(void);
void vgc_transport_keep_output(void);
size_t vgc_transport_take_output(char *buf, size_t cap);

#endif /* VGC_TRANSPORT_H */
