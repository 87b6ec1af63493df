/*
 * devmap.c - the tenant's virtual GPUs, where device ordinals cross from
 * the guest to the executor and back.
 *
 * The guest only ever sees virtual ordinals 0..N-1 (N: the listener's
 * gpus=, or every device); the executor only ever sees physical ones.
 * The pool owns the table between them (vgc_pool_device_map): a bound
 * virtual GPU maps to its device, an unbound one to a representative the
 * pool picks so that the table stays one-to-one.  Every crossing goes
 * through here:
 *  - CUdevice arguments and results of every remoted call: the generated
 *    dispatcher calls vgcd_devmap_in / vgcd_devmap_out for each parameter
 *    of type CUdevice (protocol/gen/emit_host.py);
 *  - the hand-written ones: cuDeviceGet's ordinal, cuDeviceGetCount, the
 *    device ordinal of cuPointerGetAttribute (manual.c), the device of an
 *    NVML status request (status.c).
 * Calls that make a context (cuCtxCreate*, cuDevicePrimaryCtxRetain) bind
 * their device first (vgc_pool_acquire); status.c tells the pool after
 * every context call which virtual GPUs the client still has a context
 * on, which unbinds the rest.  Outside its tenant's time window a call
 * that makes a context is refused with CUDA_ERROR_DEVICE_UNAVAILABLE.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>

#include "pool.h"
#include "session.h"
#include "status.h"

void vgcd_devmap_call_begin(struct vgcd_session *s, unsigned opcode)
{
    /* The table is read at most once a call, and only by calls that
     * name a device. */
    s->devmap_n = -1;
    s->devmap_acquire = vgcd_status_makes_context(opcode);
}

/* The table, read once per call. */
static void devmap_load(struct vgcd_session *s)
{
    if (s->devmap_n >= 0) {
        return;
    }
    if (!s->pool) {
        /* No pool, no policy: the executor's devices as they are. */
        for (int v = 0; v < VGC_POOL_MAX_DEVICES; v++) {
            s->devmap[v] = v;
        }
        s->devmap_n = VGC_POOL_MAX_DEVICES;
        return;
    }
    s->devmap_n = vgc_pool_device_map(s->pool, s->devmap, VGC_POOL_MAX_DEVICES);
    if (s->devmap_n > VGC_POOL_MAX_DEVICES) {
        s->devmap_n = VGC_POOL_MAX_DEVICES;
    }
}

int vgcd_devmap_count(struct vgcd_session *s)
{
    devmap_load(s);
    return s->devmap_n;
}

CUresult vgcd_devmap_in(struct vgcd_session *s, CUdevice *dev)
{
    int v = *dev, p;

    devmap_load(s);
    if (v < 0 || v >= s->devmap_n) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    if (s->devmap_acquire && s->pool) {
        bool placed = false;
        uint32_t from, to;

        /* Outside its window the tenant holds no GPU (the daemon preempts
         * what it holds when the window closes); a context would bind one. */
        if (!vgc_pool_in_window(s->pool, vgc_pool_time_of_day(), &from, &to)) {
            fprintf(stderr, "vgcd: %s: no context on virtual GPU %d: outside the tenant's "
                    "window %02u:%02u:%02u-%02u:%02u:%02u\n", s->peer, v, from / 3600,
                    from / 60 % 60, from % 60, to / 3600, to / 60 % 60, to % 60);
            return CUDA_ERROR_DEVICE_UNAVAILABLE;
        }
        p = vgc_pool_acquire(s->pool, v, &placed);
        s->devmap_n = -1;               /* the table changed */
        if (p < 0) {
            return CUDA_ERROR_INVALID_DEVICE;
        }
        if (placed) {
            fprintf(stderr, "vgcd: %s: virtual GPU %d bound to device %d\n", s->peer, v, p);
        }
        *dev = p;
        return CUDA_SUCCESS;
    }
    *dev = s->devmap[v];
    return CUDA_SUCCESS;
}

CUresult vgcd_devmap_out(struct vgcd_session *s, CUdevice *dev)
{
    devmap_load(s);
    for (int v = 0; v < s->devmap_n; v++) {
        if (s->devmap[v] == *dev) {
            *dev = v;
            return CUDA_SUCCESS;
        }
    }
    /* A device that is none of the tenant's (cuDeviceGetByPCIBusId with
     * another device's bus id): as if it did not exist. */
    *dev = -1;
    return CUDA_ERROR_INVALID_DEVICE;
}

void vgcd_devmap_contexts(struct vgcd_session *s, uint64_t physical)
{
    uint64_t unbound = vgc_pool_set_contexts(s->pool, vgcd_devmap_mask_out(s, physical));

    for (int v = 0; v < 64; v++) {
        if (unbound >> v & 1) {
            fprintf(stderr, "vgcd: %s: virtual GPU %d unbound\n", s->peer, v);
        }
    }
    s->devmap_n = -1;
}

uint64_t vgcd_devmap_mask_out(struct vgcd_session *s, uint64_t physical)
{
    uint64_t mask = 0;

    devmap_load(s);
    for (int v = 0; v < s->devmap_n; v++) {
        if (s->devmap[v] >= 0 && s->devmap[v] < 64 && (physical >> s->devmap[v] & 1)) {
            mask |= UINT64_C(1) << v;
        }
    }
    return mask;
}
