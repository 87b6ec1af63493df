/*
 * pool.h - the daemon's accounting of device memory across workers.
 *
 * The pool lives in a shared anonymous mapping created by the daemon before
 * it forks workers: each worker owns one slot and adds to its own counters;
 * the totals are sums over slots, so a worker that dies is forgotten by
 * clearing its slot (vgc_pool_slot_clear) and leaks nothing.
 *
 * Besides memory, a slot says what NVML reports about the worker's client:
 * whose it is (its tenant), the pid its handshake gave, the devices it has
 * a context on, and when its devices were busy (utilization).  Figures of a
 * device (memory used, utilization) are shared by all, as on a real shared
 * GPU; the process list shows a worker only to workers of its own tenant.
 *
 * Policy (quotas, priorities, which GPU) belongs here and nowhere else.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_POOL_H
#define VGC_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define VGC_POOL_MAX_DEVICES 64

struct vgc_pool;

/*
 * Who a worker serves.  Clients of one tenant see each other's processes;
 * nobody sees another tenant's.  Identities are compared whole, never
 * hashed, so two tenants can never be taken for one.
 */
enum vgc_tenant_kind {
    VGC_TENANT_NONE = 0,        /* unknown: sees nobody's processes */
    VGC_TENANT_UID,             /* unix-socket clients: the peer's uid (id[0..3]) */
    VGC_TENANT_ADDR,            /* TCP clients: the peer's IP address (16 bytes,
                                   IPv4 as IPv4-mapped IPv6) */
    VGC_TENANT_VM,              /* a VM's guest sessions: the daemon's serial
                                   of its vhost-user connection (id[0..7]) */
};

struct vgc_tenant {
    uint32_t kind;              /* enum vgc_tenant_kind */
    uint8_t id[16];             /* unused bytes zero */
};

/* What keeps a device busy, as NVML's two utilization figures count it. */
enum vgc_pool_engine {
    VGC_POOL_COMPUTE,           /* kernels: nvmlUtilization_t.gpu */
    VGC_POOL_COPY,              /* copies and memsets: .memory */
    VGC_POOL_ENGINES
};

/* Utilization is the busy share of the last second, in 100 ms buckets. */
#define VGC_POOL_BUCKET_NS      100000000ull
#define VGC_POOL_SAMPLE_BUCKETS 10

/* One client in a device's process list. */
struct vgc_pool_process {
    uint32_t pid;               /* as the client's handshake said */
    uint64_t used;              /* device memory it holds, in bytes */
};

/*
 * Create a pool for @ndevices devices of @capacity bytes each and room for
 * @nslots workers.  Returns NULL on failure (errno set).
 */
struct vgc_pool *vgc_pool_create(int ndevices, uint64_t capacity, int nslots);
void vgc_pool_destroy(struct vgc_pool *pool);

/*
 * In the daemon (or a VM's worker, for its guest sessions): find a free
 * slot for a new worker serving @tenant (copied).  Returns the slot, or -1
 * when all are taken.
 */
int vgc_pool_slot_claim(struct vgc_pool *pool, const struct vgc_tenant *tenant);
/* After a worker ended, in whoever claimed its slot: forget all it held. */
void vgc_pool_slot_clear(struct vgc_pool *pool, int slot);
/* In the worker, once after fork: all later calls account to @slot. */
void vgc_pool_bind(struct vgc_pool *pool, int slot);
/* The slot process @pid bound itself to (vgc_pool_bind), or -1: how the
 * daemon finds the slot of a process it did not fork itself. */
int vgc_pool_slot_of(const struct vgc_pool *pool, pid_t pid);
/* Number of devices the pool accounts for. */
int vgc_pool_devices(const struct vgc_pool *pool);

/* Reserve @bytes on @dev for the bound slot; false when it would not fit. */
bool vgc_pool_reserve(struct vgc_pool *pool, int dev, uint64_t bytes);
void vgc_pool_release(struct vgc_pool *pool, int dev, uint64_t bytes);

/* Bytes in use on @dev by all workers, and the device's capacity. */
uint64_t vgc_pool_used(const struct vgc_pool *pool, int dev);
uint64_t vgc_pool_capacity(const struct vgc_pool *pool, int dev);

/* ---- what NVML reports (all for the bound slot; no-ops when unbound) ---- */

/* The client's pid, as its handshake gave it (the guest's own numbering). */
void vgc_pool_set_pid(struct vgc_pool *pool, uint32_t pid);
/* The devices the client has a context on: bit d for device d. */
void vgc_pool_set_contexts(struct vgc_pool *pool, uint64_t devices);

/* CLOCK_MONOTONIC in nanoseconds: the clock every @now below is read from. */
uint64_t vgc_pool_clock(void);

/*
 * @engine of @dev starts or stops being busy for the bound slot at @now.
 * Intervals do not nest: a begin while busy keeps the earlier start, an
 * end while idle does nothing.
 */
void vgc_pool_busy_begin(struct vgc_pool *pool, int dev, enum vgc_pool_engine engine,
                         uint64_t now);
void vgc_pool_busy_end(struct vgc_pool *pool, int dev, enum vgc_pool_engine engine,
                       uint64_t now);

/*
 * Percent (0..100) of the sample period before @now (the last
 * VGC_POOL_SAMPLE_BUCKETS whole buckets and the current part of one)
 * during which @engine of @dev was busy for any worker, an interval still
 * open counting up to @now.  Busy times of workers add up, capped at the
 * bucket: a GPU without MPS time-slices the contexts of processes.
 */
unsigned vgc_pool_utilization(const struct vgc_pool *pool, int dev,
                              enum vgc_pool_engine engine, uint64_t now);

/*
 * The clients of the bound slot's tenant that have a context or memory
 * on @dev, in slot order: up to @max of them into @out (NULL when @max is
 * 0).  Returns how many there are, which may exceed @max; 0 when unbound.
 */
unsigned vgc_pool_processes(const struct vgc_pool *pool, int dev,
                            struct vgc_pool_process *out, unsigned max);

/* ---- what the daemon's control socket reports (vgcctl status) ---------- */

/* Device memory held by slot @slot, on all devices together. */
uint64_t vgc_pool_slot_used(const struct vgc_pool *pool, int slot);
/* Device memory held by every slot of @tenant, on all devices together:
 * a VM's, whose guest sessions each have a slot. */
uint64_t vgc_pool_tenant_used(const struct vgc_pool *pool, const struct vgc_tenant *tenant);

#endif /* VGC_POOL_H */
