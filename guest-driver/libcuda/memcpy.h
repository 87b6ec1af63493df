/*
 * memcpy.h - the copy the shim itself uses to fill guest memory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_MEMCPY_H
#define VGC_MEMCPY_H

#include <stddef.h>

#include "vgc_cuda.h"

/* Device to host into @dst as given, in chunks: no managed-memory
 * redirection (cuMemcpyDtoH's), for mirror.c's pulls. */
CUresult vgc_memcpy_dtoh(void *dst, CUdeviceptr src, size_t n);

#endif /* VGC_MEMCPY_H */
