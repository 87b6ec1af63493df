/*
 * pool.c - device memory accounting shared by all workers of one daemon.
 *
 * One MAP_SHARED|MAP_ANONYMOUS mapping, made before any fork, holds a row of
 * counters per worker slot.  A worker only ever adds to its own row, with
 * atomics, so no lock is needed; readers sum the rows.  Reservation checks
 * the sum first, then adds: two workers racing may overshoot by at most one
 * allocation each, which a later reservation sees and refuses.  That is the
 * same guarantee a real GPU gives under concurrent cuMemAlloc.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "pool.h"

struct vgc_pool {
    int ndevices;
    int nslots;
    int bound_slot;                 /* in a worker: its row; -1 in the daemon */
    uint64_t capacity;
    size_t map_size;
    _Atomic int *slot_taken;        /* [nslots] */
    _Atomic uint64_t *used;         /* [nslots][ndevices] */
};

struct vgc_pool *vgc_pool_create(int ndevices, uint64_t capacity, int nslots)
{
    struct vgc_pool *pool;
    size_t taken_size, used_size;
    void *map;

    if (ndevices < 1 || ndevices > VGC_POOL_MAX_DEVICES || nslots < 1) {
        errno = EINVAL;
        return NULL;
    }
    taken_size = sizeof(_Atomic int) * (size_t)nslots;
    taken_size = (taken_size + 63) & ~(size_t)63;
    used_size = sizeof(_Atomic uint64_t) * (size_t)nslots * (size_t)ndevices;
    map = mmap(NULL, taken_size + used_size, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        return NULL;
    }
    pool = calloc(1, sizeof(*pool));
    if (!pool) {
        munmap(map, taken_size + used_size);
        return NULL;
    }
    pool->ndevices = ndevices;
    pool->nslots = nslots;
    pool->bound_slot = -1;
    pool->capacity = capacity;
    pool->map_size = taken_size + used_size;
    pool->slot_taken = map;
    pool->used = (_Atomic uint64_t *)((char *)map + taken_size);
    return pool;
}

void vgc_pool_destroy(struct vgc_pool *pool)
{
    if (pool) {
        munmap((void *)pool->slot_taken, pool->map_size);
        free(pool);
    }
}

int vgc_pool_slot_claim(struct vgc_pool *pool)
{
    for (int i = 0; i < pool->nslots; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&pool->slot_taken[i], &expected, 1)) {
            return i;
        }
    }
    return -1;
}

void vgc_pool_slot_clear(struct vgc_pool *pool, int slot)
{
    if (slot < 0 || slot >= pool->nslots) {
        return;
    }
    for (int d = 0; d < pool->ndevices; d++) {
        atomic_store(&pool->used[(size_t)slot * pool->ndevices + d], 0);
    }
    atomic_store(&pool->slot_taken[slot], 0);
}

void vgc_pool_bind(struct vgc_pool *pool, int slot)
{
    pool->bound_slot = slot;
}

static _Atomic uint64_t *pool_row(struct vgc_pool *pool, int dev)
{
    return &pool->used[(size_t)pool->bound_slot * pool->ndevices + dev];
}

uint64_t vgc_pool_used(const struct vgc_pool *pool, int dev)
{
    uint64_t sum = 0;

    if (dev < 0 || dev >= pool->ndevices) {
        return 0;
    }
    for (int s = 0; s < pool->nslots; s++) {
        sum += atomic_load(&pool->used[(size_t)s * pool->ndevices + dev]);
    }
    return sum;
}

uint64_t vgc_pool_capacity(const struct vgc_pool *pool, int dev)
{
    return dev >= 0 && dev < pool->ndevices ? pool->capacity : 0;
}

bool vgc_pool_reserve(struct vgc_pool *pool, int dev, uint64_t bytes)
{
    uint64_t used;

    if (dev < 0 || dev >= pool->ndevices || pool->bound_slot < 0) {
        return false;
    }
    used = vgc_pool_used(pool, dev);
    if (bytes > pool->capacity || used > pool->capacity - bytes) {
        return false;
    }
    atomic_fetch_add(pool_row(pool, dev), bytes);
    return true;
}

void vgc_pool_release(struct vgc_pool *pool, int dev, uint64_t bytes)
{
    _Atomic uint64_t *row;
    uint64_t cur;

    if (dev < 0 || dev >= pool->ndevices || pool->bound_slot < 0) {
        return;
    }
    row = pool_row(pool, dev);
    cur = atomic_load(row);
    /* Never wrap: an executor bug must not make the device look empty. */
    while (!atomic_compare_exchange_weak(row, &cur, cur >= bytes ? cur - bytes : 0)) {
    }
}
