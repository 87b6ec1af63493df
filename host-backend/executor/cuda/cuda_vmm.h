/*
 * cuda_vmm.h - the client's virtual memory management calls on the cuda
 * executor (cuda_vmm.c), for cuda_executor.c only.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_CUDA_VMM_H
#define VGC_CUDA_VMM_H

#include <stdbool.h>
#include <stdint.h>

#include "executor.h"

/*
 * Put the checked VMM calls into @ops, on @driver's functions (which must
 * stay valid until cuda_vmm_destroy), charging cuMemCreate to @pool (NULL:
 * none).  [@avoid, @avoid + @avoid_size) is the cuda window's range, which
 * no reservation of the client's may take (0, 0: none).  Calls that the
 * driver lacks stay NULL (CUDA_ERROR_NOT_SUPPORTED).
 */
void cuda_vmm_install(const struct vgc_exec_ops *driver, struct vgc_pool *pool,
                      uint64_t avoid, uint64_t avoid_size, struct vgc_exec_ops *ops);

/* Whether @p lies in one of the client's reservations (so cuMemFree
 * must refuse it). */
bool cuda_vmm_reserved(CUdeviceptr p);

/*
 * Whether the client holds memory of cuMemCreate's (released or not,
 * while mapped).  Swapping (cuda_window.c) does not move it: it stays on
 * the GPU, and charged there, as swap_size counts the window alone.
 */
bool cuda_vmm_holds_memory(void);

/* Unmap, release and free everything the client left; the pool gets its
 * charge back. */
void cuda_vmm_destroy(void);

#endif /* VGC_CUDA_VMM_H */
