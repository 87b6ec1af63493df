/*
 * mirror.h - managed and mapped host memory: one range, two copies.
 *
 * The device's memory is on the host (or on another machine), so memory the
 * guest program reaches both through a pointer and from kernels -- from
 * cuMemAllocManaged, cuMemHostAlloc(DEVICEMAP), cuMemHostRegister(DEVICEMAP)
 * -- exists twice: a mirror in this process and a device allocation.  The
 * shim keeps them coherent at the points where CUDA lets each side see the
 * other's writes, as on a device without concurrent managed access
 * (CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS = 0):
 *
 *   before a devmem call   host writes since the last exchange are pushed
 *                          (write-protected pages fault once, which marks
 *                          them dirty), so the device sees them;
 *   after a devmem call    the mirror it wrote (every mirror, after a
 *                          launch) may be older than the device;
 *   after a hostsync call  (synchronize, synchronous copies) the changed
 *                          mirrors are pulled back before the caller runs on.
 *
 * The generated exports call vgc_mirror_before/after around every call
 * protocol/cuda.api marks devmem or hostsync; with no mirrors they cost one
 * relaxed load each.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_MIRROR_H
#define VGC_MIRROR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgc_cuda.h"

#define VGC_MIRROR_DEVMEM       1u
#define VGC_MIRROR_HOSTSYNC     2u
/* The address a devmem call writes, when it cannot say (a launch). */
#define VGC_MIRROR_ANY          UINTPTR_MAX

enum vgc_mirror_kind {
    VGC_MIRROR_MANAGED,         /* cuMemAllocManaged: host == device address */
    VGC_MIRROR_HOSTALLOC,       /* cuMemHostAlloc(DEVICEMAP): host == device */
    VGC_MIRROR_REGISTERED,      /* cuMemHostRegister(DEVICEMAP): the program's
                                 * own memory, a device copy elsewhere */
};

extern atomic_uint vgc_mirror_live;     /* how many mirrors exist */

void vgc_mirror_push(void);
void vgc_mirror_settle(CUresult res, unsigned flags, uintptr_t dst);

static inline void vgc_mirror_before(void)
{
    if (atomic_load_explicit(&vgc_mirror_live, memory_order_relaxed)) {
        vgc_mirror_push();
    }
}

/* @dst: the address the call writes, or VGC_MIRROR_ANY. */
static inline void vgc_mirror_after(CUresult res, unsigned flags, uintptr_t dst)
{
    if (atomic_load_explicit(&vgc_mirror_live, memory_order_relaxed)) {
        vgc_mirror_settle(res, flags, dst);
    }
}

/*
 * Allocate @size bytes of @kind on the current context's device and map
 * them into this process at the device address (MANAGED, HOSTALLOC).
 * Returns the address in *@p.
 */
CUresult vgc_mirror_alloc(enum vgc_mirror_kind kind, size_t size, CUdeviceptr *p);

/* Give the program's [@host, +@size) a device copy (REGISTERED). */
CUresult vgc_mirror_register(void *host, size_t size);

/*
 * Free the mirror whose host address is exactly @host, with its device
 * allocation.  CUDA_ERROR_INVALID_VALUE when there is none of @kind.
 */
CUresult vgc_mirror_free(uintptr_t host, enum vgc_mirror_kind kind);

/* The mirror containing host address @p: its kind, host and device bases
 * and size.  False when @p is in none. */
bool vgc_mirror_find(uintptr_t p, enum vgc_mirror_kind *kind, uintptr_t *host,
                     CUdeviceptr *dev, size_t *size);

/* Context @ctx and its memory are gone: drop its mirrors, device side unfreed. */
void vgc_mirror_context_gone(uint64_t ctx);

#endif /* VGC_MIRROR_H */
