/*
 * remote.h - what the remote executor's two files share: connecting one
 * instance of the libcuda shim to one vgcd, and the aggregate of several.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_REMOTE_H
#define VGC_REMOTE_H

#include <stdbool.h>

#include "executor.h"
#include "vgc_private.h"

/*
 * Point the shim loaded at @lib at the vgcd at @address and connect:
 * fills @ops with the shim's functions and *@priv with its private table.
 * Returns false with *err a malloc()ed reason.
 */
bool remote_connect(void *lib, struct vgc_exec_ops *ops,
                    const struct vgc_private_table **priv, const char *address, char **err);

/* Whether the window of the server behind @priv (@va_size bytes) is
 * partial: device memory may lie outside it (vgc_private.h). */
bool remote_window_partial(const struct vgc_private_table *priv, uint64_t va_size);

/* Whether the server behind @priv swaps the session on request
 * (VGC_FEATURE_SWAP; a shim too old to say cannot ask). */
bool remote_swap_supported(const struct vgc_private_table *priv);

/*
 * Swap the sessions behind @priv[0..n) out (@out) or in, all or none: a
 * failure puts back those that had moved.  The CUresult of the first that
 * failed.
 */
CUresult remote_swap_all(const struct vgc_private_table *const *priv, int n, bool out);

/*
 * The devices of the vgcds at @addresses ("ADDR+ADDR[+...]") as one
 * executor, each upstream through its own instance of the shim at @shim
 * (aggregate.c).
 */
struct vgc_executor *vgc_aggregate_executor_create(const struct vgc_executor_config *cfg,
                                                   const char *addresses, const char *shim,
                                                   char **err);

#endif /* VGC_REMOTE_H */
