/*
 * graph.h - CUDA graphs and stream capture, kept in the guest (graph.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_GRAPH_H
#define VGC_GRAPH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "vgc_cuda.h"

/* Captures in progress in this process: while 0, no stream call asks. */
extern atomic_int vgc_captures;

static inline bool vgc_capture_on(void)
{
    return atomic_load_explicit(&vgc_captures, memory_order_relaxed) != 0;
}

/*
 * For the generated stubs of calls cuda.api marks `capture`: true when the
 * call goes to its vgc_capture_SYMBOL, because @stream is being captured
 * or @event (NULL for calls without one) was recorded in a capture.
 */
bool vgc_capture_diverts(CUstream stream, CUevent event);

/* True when @stream is being captured (its work goes into a graph). */
static inline bool vgc_capture_stream(CUstream stream)
{
    return vgc_capture_diverts(stream, NULL);
}

/*
 * A kernel launch on a stream being captured (module.c): @params is the
 * packed parameter buffer of @size bytes, copied into the graph's node.
 */
CUresult vgc_capture_launch(CUfunction f, const unsigned grid[3], const unsigned block[3],
                            unsigned shmem, CUstream stream, const void *params, size_t size);

/* ---- what graph.c asks of module.c ---- */

/*
 * Pack the parameters of a launch of @f given as @kernelParams or @extra
 * (exactly one non-NULL, as cuLaunchKernel takes them) into a malloc()ed
 * buffer *@buf of *@size bytes.
 */
CUresult vgc_launch_pack(CUfunction f, void **kernelParams, void **extra,
                         void **buf, size_t *size);

/*
 * Point (*@argv)[i] (malloc()ed) at parameter i of @f inside @buf, a
 * buffer packed for @f: kernelParams as cuGraphKernelNodeGetParams hands
 * them out.  *@argv is NULL for a kernel without parameters.
 */
CUresult vgc_launch_argv(CUfunction f, void *buf, void ***argv);

#endif /* VGC_GRAPH_H */
