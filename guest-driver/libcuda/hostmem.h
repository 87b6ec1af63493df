/*
 * hostmem.h - page-locked ("pinned") host memory, as the shim tracks it.
 *
 * Over a socket the host cannot reach guest pages, so pinned memory is
 * ordinary memory the shim remembers: cuMemHostGetFlags and
 * cuPointerGetAttribute answer from here, and copies treat it as host memory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_HOSTMEM_H
#define VGC_HOSTMEM_H

#include <stdbool.h>
#include <stddef.h>

/* If @p lies in pinned memory: true, with its range and flags. */
bool vgc_hostmem_lookup(const void *p, const void **base, size_t *size, unsigned *flags);

#endif /* VGC_HOSTMEM_H */
