/*
 * cuda_array.h - CUDA arrays on the real driver, counted in the pool
 * (cuda_array.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_CUDA_ARRAY_H
#define VGC_CUDA_ARRAY_H

#include "vgc_cuda.h"
#include "vgc_exec_ops.h"

struct vgc_pool;

/*
 * Put the wrapped array calls into @ops (which holds the driver's own,
 * @real) when there is a pool to charge; @dev_of says which device the
 * current context is on.
 */
void cuda_array_setup(struct vgc_exec_ops *ops, const struct vgc_exec_ops *real,
                      struct vgc_pool *pool, int (*dev_of)(void));
/* Forget every array (executor teardown); nothing is released. */
void cuda_array_reset(void);

#endif /* VGC_CUDA_ARRAY_H */
