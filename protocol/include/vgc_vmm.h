/*
 * vgc_vmm.h - limits of the virtual memory management calls, shared by
 * the worker (host-backend/worker/vmm.c) and the executors.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_VMM_H
#define VGC_VMM_H

/* Access descriptors one cuMemSetAccess may carry. */
#define VGC_VMM_MAX_ACCESS      64

#endif /* VGC_VMM_H */
