/*
 * mempool.h - stream-ordered allocations and the pools that account them.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_MEMPOOL_H
#define VGC_MEMPOOL_H

#include "vgc_cuda.h"

/* Allocate @bytesize from @pool (NULL: the current device's current pool). */
CUresult vgc_mempool_alloc(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool);

/* @ptr is being freed: take it off its pool's account, if it is on one. */
void vgc_mempool_forget(CUdeviceptr ptr);

#endif /* VGC_MEMPOOL_H */
