/*
 * pool.h - the daemon's accounting of device memory across workers.
 *
 * The pool lives in a shared anonymous mapping created by the daemon before
 * it forks workers: each worker owns one slot and adds to its own counters;
 * the totals are sums over slots, so a worker that dies is forgotten by
 * clearing its slot (vgc_pool_slot_clear) and leaks nothing.
 *
 * Policy (quotas, priorities, which GPU) belongs here and nowhere else.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_POOL_H
#define VGC_POOL_H

#include <stdbool.h>
#include <stdint.h>

#define VGC_POOL_MAX_DEVICES 64

struct vgc_pool;

/*
 * Create a pool for @ndevices devices of @capacity bytes each and room for
 * @nslots workers.  Returns NULL on failure (errno set).
 */
struct vgc_pool *vgc_pool_create(int ndevices, uint64_t capacity, int nslots);
void vgc_pool_destroy(struct vgc_pool *pool);

/* In the daemon: find a free slot for a new worker; -1 when all are taken. */
int vgc_pool_slot_claim(struct vgc_pool *pool);
/* In the daemon, after a worker ended: forget all it held. */
void vgc_pool_slot_clear(struct vgc_pool *pool, int slot);
/* In the worker, once after fork: all later calls account to @slot. */
void vgc_pool_bind(struct vgc_pool *pool, int slot);

/* Reserve @bytes on @dev for the bound slot; false when it would not fit. */
bool vgc_pool_reserve(struct vgc_pool *pool, int dev, uint64_t bytes);
void vgc_pool_release(struct vgc_pool *pool, int dev, uint64_t bytes);

/* Bytes in use on @dev by all workers, and the device's capacity. */
uint64_t vgc_pool_used(const struct vgc_pool *pool, int dev);
uint64_t vgc_pool_capacity(const struct vgc_pool *pool, int dev);

#endif /* VGC_POOL_H */
