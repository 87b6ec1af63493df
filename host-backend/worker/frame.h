/*
 * frame.h - one frame in, at most one reply out; transport-independent.
 *
 * The socket loop and the vhost-user worker both feed frames here, and so
 * does the fuzzer: everything a client can send reaches this function.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGCD_FRAME_H
#define VGCD_FRAME_H

#include "vgc_wire.h"
#include "session.h"

enum vgcd_frame_result {
    VGCD_FRAME_REPLY,       /* send the reply in the writer */
    VGCD_FRAME_NO_REPLY,    /* async call or goodbye: nothing to send */
    VGCD_FRAME_CLOSE,       /* orderly end (goodbye) or refused handshake:
                               send the reply if any, then close */
    VGCD_FRAME_VIOLATION,   /* close now; s->violation says why */
};

/*
 * Check the header @h (already read, payload of h->length bytes at
 * @payload) and run the request.  @reply must have room for
 * VGC_MAX_PAYLOAD bytes.
 */
enum vgcd_frame_result vgcd_frame_process(struct vgcd_session *s,
                                          const struct vgc_hdr *h,
                                          const void *payload,
                                          struct vgc_wr *reply);

/*
 * Check a header before its payload is read: magic, length bound, flags.
 * Returns NULL when it may be read, else the reason to close.
 */
const char *vgcd_frame_check_header(const struct vgc_hdr *h);

#endif /* VGCD_FRAME_H */
