/*
 * status.h - what NVML asks of a device (VGC_OP_DEVICE_STATUS): how busy it
 * was over the last second and which processes of the asking client's
 * tenant hold it; and the bookkeeping in the worker that feeds the pool
 * those figures come from (host-backend/pool/pool.h).
 *
 * Busy time is measured here, around the calls the worker hands the
 * executor, so every executor gets it without code of its own:
 *  - compute: kernel launches (cuLaunch*, cuGraphLaunch), and the time the
 *    worker waits in a synchronize call (the cpu executor runs a kernel
 *    inside its launch and never waits; the cuda executor returns from a
 *    launch at once, and the GPU's busy time shows as the wait for it);
 *  - copy: copies and memsets (cuMemcpy*, cuMemset*), as the time spent in
 *    them, which stands for "memory being read or written".
 * The device is that of the context the call runs in; calls without one
 * are not counted.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGCD_STATUS_H
#define VGCD_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "session.h"

/*
 * Around the dispatch of call @opcode (already entered: s->ctx is current):
 * before a kernel launch, wait while the tenant is over its compute share
 * (vgc_pool_share_wait); count its device busy while it runs; and after a
 * call that creates, retains, releases or destroys a context, tell the
 * pool on which devices this client now has one.  No-ops without a pool.
 * Socket workers and a VM's guest sessions both come here, through
 * vgcd_frame_process.
 */
void vgcd_status_call_begin(struct vgcd_session *s, unsigned opcode);
void vgcd_status_call_end(struct vgcd_session *s, unsigned opcode);

/* Whether call @opcode makes a context (cuCtxCreate*,
 * cuDevicePrimaryCtxRetain): what binds a virtual GPU (devmap.c). */
bool vgcd_status_makes_context(unsigned opcode);

/* The client's handshake gave @pid: the pid NVML shows for it. */
void vgcd_status_hello(struct vgcd_session *s, uint32_t pid);

/* cuCtxCreate made context @ctx (an executor object) on @dev. */
void vgcd_status_ctx_created(struct vgcd_session *s, void *ctx, int dev);

/*
 * Answer a VGC_OP_DEVICE_STATUS request (@len bytes at @payload) into @w.
 * Returns 0, or -1 for a malformed request (s->violation says why).
 */
int vgcd_status_frame(struct vgcd_session *s, const void *payload, size_t len,
                      struct vgc_wr *w);

#endif /* VGCD_STATUS_H */
