/*
 * cuda_window.h - the cuda executor's device address window
 * (cuda_window.c), for cuda_executor.c only.
 *
 * With `vgcd --executor cuda --address-base BASE`, what cuMemAlloc hands
 * out lies at addresses this executor chooses: device d's allocations in
 * [BASE + d * CUDA_WINDOW_PER_DEVICE, +CUDA_WINDOW_PER_DEVICE).  Every
 * function here is called from the worker's one thread, with the driver
 * initialised; none of them prints except where the window cannot be had
 * (one line in vgcd's log: the client only sees a CUresult).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_CUDA_WINDOW_H
#define VGC_CUDA_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "executor.h"

/*
 * 1 TiB of addresses per device: seven times the memory of the largest GPU
 * this project runs on (an H200 has 141 GB), so that fragmentation never
 * makes a part of the window run out before the GPU does, while a window
 * for 8 GPUs (8 TiB) still fits between a process's low mappings and its
 * shared libraries.  Addresses cost nothing until they are mapped.
 */
#define CUDA_WINDOW_PER_DEVICE  0x10000000000ULL

/*
 * BASE must be a multiple of this: the allocation granularity of every
 * NVIDIA GPU so far (the driver's own figure is checked when the window is
 * reserved).  Allocations are placed at multiples of the granularity from
 * BASE, so BASE itself must be one.
 */
#define CUDA_WINDOW_ALIGN       (2ULL << 20)

/*
 * No window reaches past the top of a 47-bit user address space: what a
 * process gets from Linux on x86-64 without asking for more, and so what
 * a client's shim can keep free for the window.
 */
#define CUDA_WINDOW_LIMIT       0x800000000000ULL

/*
 * Set up the window of @ndevices devices from @base on @driver's functions
 * (which must stay valid until cuda_window_destroy); allocations are
 * charged to @pool (NULL: none).  Calls nothing in the driver yet.  The
 * window must be off (cuda_window_destroy).
 * Returns false with *err a malloc()ed reason.
 */
bool cuda_window_init(const struct vgc_exec_ops *driver, struct vgc_pool *pool,
                      uint64_t base, int ndevices, char **err);

/* Give back every allocation and the reservation; the window is off. */
void cuda_window_destroy(void);

/* Whether a window is set up; whether @p lies in it (once it is reserved),
 * allocated or not. */
bool cuda_window_on(void);
bool cuda_window_holds(CUdeviceptr p);

/*
 * cuMemAlloc and cuMemFree in the window: @size bytes for the current
 * context's device, the pool charged the size rounded up to the
 * granularity; a free takes only the base of a live allocation
 * (anything else: CUDA_ERROR_INVALID_VALUE).
 */
CUresult cuda_window_alloc(CUdeviceptr *dptr, size_t size);
CUresult cuda_window_free(CUdeviceptr p);

/*
 * What the driver says of cuMemAlloc memory, for @p in the window:
 * cuMemGetAddressRange (base and the size asked for; CUDA_ERROR_NOT_FOUND
 * outside every allocation), cuPointerGetAttribute (the allocation's own
 * context, device, type and range; the driver for the rest;
 * CUDA_ERROR_INVALID_VALUE outside every allocation), and whether @p is
 * inside an allocation at all.
 */
CUresult cuda_window_address_range(CUdeviceptr *base, size_t *size, CUdeviceptr p);
CUresult cuda_window_pointer_attribute(void *data, CUpointer_attribute attribute,
                                       CUdeviceptr p);
bool cuda_window_allocated(CUdeviceptr p);

/* Context @ctx was destroyed: free what was allocated in it, as the
 * driver frees a destroyed context's cuMemAlloc memory. */
void cuda_window_context_gone(CUcontext ctx);

/*
 * Swapping (struct vgc_executor's swap_out and swap_in; docs/pool.md):
 * only the window's allocations move, the rest of the process's device
 * memory stays where the driver put it.  None of these touches the pool.
 *
 * cuda_window_can_swap: whether the driver has what swapping needs (the
 * copies, pushing contexts).  cuda_window_resident: the bytes of device
 * @dev's allocations that are on the device, rounded as mapped: what
 * cuda_window_swap_out would free there, and what the pool was charged
 * for them.
 *
 * cuda_window_swap_out: copy each allocation's bytes to host memory and
 * unmap it (which frees its device memory), keeping its addresses: the
 * reservation stays, and its entry in the table keeps new allocations
 * off them.  Until it is back no lookup finds it (address range, pointer
 * attributes, free: as if not allocated).  Host memory is got for all
 * of them first, then all are copied, then all unmapped: a failure of
 * any step leaves everything on the device (a range unmapped already is
 * mapped and copied back; one that cannot be stays out, logged, and the
 * worker ends the process).
 *
 * cuda_window_swap_in: new memory at each swapped-out allocation's
 * address, its bytes copied back, the host copy freed once all are back.
 * On failure what came back is unmapped again: everything is still out
 * and it can be tried again.
 *
 * A swapped-out allocation freed (its context destroyed, the window
 * destroyed) only frees its host copy.
 */
bool cuda_window_can_swap(void);
uint64_t cuda_window_resident(int dev);
CUresult cuda_window_swap_out(void);
CUresult cuda_window_swap_in(void);

#endif /* VGC_CUDA_WINDOW_H */
