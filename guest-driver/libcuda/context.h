/*
 * context.h - each thread's stack of current contexts, kept in the shim.
 *
 * The current context is per thread and changes often (cudart sets it on
 * nearly every call), so it never crosses the wire on its own: every request
 * header carries the calling thread's current context handle instead.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_CONTEXT_H
#define VGC_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>

/* The calling thread's current context handle, 0 for none. */
uint64_t vgc_ctx_current_handle(void);

/* cuInit succeeded in this process. */
bool vgc_initialized(void);

/* @dev names a device of the host (asks it: the count may change). */
bool vgc_device_valid(int dev);

#endif /* VGC_CONTEXT_H */
