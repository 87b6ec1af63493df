/*
 * aggregate.h - one driver made of several upstream vgcds: the routing
 * helpers the generated router (vgc_agg_router.c) is written with.
 *
 * Each upstream is one instance of the libcuda shim connected to one vgcd.
 * Its devices take the next range of ordinals; its device addresses lie in
 * its own window (the windows must not overlap, which the executor checks
 * when it starts).  Handles an upstream returns carry its index in bits
 * 48..55 (the shim's handles keep the kind in the top byte and a serial
 * number far below bit 48); libraries and kernels, which belong to no
 * context, exist on every upstream and are "fan-out" handles: AGG_FANOUT in
 * those bits and an index into the aggregate's own table below.
 *
 * A call is routed by collecting what its arguments say into a struct
 * agg_route, in parameter order: agg_by_*() record the upstream each
 * argument names, or the error when two of them disagree; agg_ops() then
 * picks the upstream (the current context's when no argument said) and
 * agg_local()/agg_export() translate handles in and out.
 *
 * The worker calls its executor from one thread, so none of this locks.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_AGGREGATE_H
#define VGC_AGGREGATE_H

#include <stdint.h>

#include "vgc_cuda.h"
#include "vgc_exec_ops.h"
#include "vgc_wire.h"

#define AGG_MAX_UPSTREAMS 8
#define AGG_SHIFT         48
#define AGG_FANOUT        0xffu             /* upstream bits of a fan-out handle */

struct agg_route {
    int up;                     /* the upstream chosen so far; -1: none */
    CUresult error;             /* two arguments disagreed, or one was bad */
};

static inline struct agg_route agg_route_begin(void)
{
    return (struct agg_route){ .up = -1, .error = CUDA_SUCCESS };
}

/* The argument is a handle of @kind (VGC_HANDLE_*), a stream (0, 1 and 2
 * being the current context's), a device ordinal (made the upstream's own),
 * or a device address. */
void agg_by_handle(struct agg_route *r, uint64_t h, int kind);
void agg_by_stream(struct agg_route *r, uint64_t h);
void agg_by_device(struct agg_route *r, CUdevice *dev);
void agg_by_pointer(struct agg_route *r, CUdeviceptr p);

/* The upstream's driver table, or NULL with r->error set. */
const struct vgc_exec_ops *agg_ops(struct agg_route *r);

/* A handle as the chosen upstream knows it, and one it returned as the
 * aggregate's clients know it. */
uint64_t agg_local(const struct agg_route *r, uint64_t h);
uint64_t agg_export(const struct agg_route *r, uint64_t h);

/* A device ordinal the chosen upstream returned, as the aggregate's. */
CUdevice agg_device_out(const struct agg_route *r, CUdevice dev);

#endif /* VGC_AGGREGATE_H */
