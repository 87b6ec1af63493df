/*
 * vgc_cuda.h - NVIDIA's driver API headers, as this project includes them.
 *
 * __CUDA_API_VERSION_INTERNAL exposes every ABI version's typedef
 * (PFN_cuMemAlloc_v2000 as well as _v3020) and stops cuda.h from renaming
 * cuMemAlloc to cuMemAlloc_v2 behind our back.  Files that define exported
 * driver symbols do so through asm labels (see the generated stubs), so the
 * prototypes cuda.h declares never clash with ours.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_CUDA_H
#define VGC_CUDA_H

#ifndef __CUDA_API_VERSION_INTERNAL
#define __CUDA_API_VERSION_INTERNAL 1
#endif
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cudaProfilerTypedefs.h>

/* Handles the per-thread and legacy default streams are passed as. */
#define VGC_STREAM_LEGACY       ((CUstream)0x1)
#define VGC_STREAM_PER_THREAD   ((CUstream)0x2)

#endif /* VGC_CUDA_H */
