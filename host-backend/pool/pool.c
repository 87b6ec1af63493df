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
 * The same mapping holds what NVML reports, with the same rule (one writer
 * per field, readers that tolerate a racing writer):
 *  - a slot's identity (tenant) is written by whoever claims and clears the
 *    slot, under a sequence count, so a reader never takes a half-written
 *    identity for a whole one; its pid and context mask by its worker;
 *  - busy time, per slot, device and engine: the start of the interval in
 *    progress (readers count it up to "now", so a kernel that runs for
 *    minutes shows while it runs), and a ring of 100 ms buckets of busy
 *    nanoseconds, each tagged with its bucket number so a stale one is
 *    never read as current.  One u64 per bucket: tag and count change in
 *    one store.  Rings outlive their worker (a process that just ended
 *    still counts for the second after), and are not per tenant: a
 *    device's utilization is everybody's.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"

/* Buckets kept per engine: more than a sample spans, so the writer reuses
 * a bucket only once it has left every reader's sample. */
#define POOL_RING           12
#define POOL_BUSY_BITS      28      /* a bucket's busy ns: <= 10^8 < 2^28 */
#define POOL_BUSY_MASK      ((UINT64_C(1) << POOL_BUSY_BITS) - 1)
#define POOL_TAG_MASK       (UINT64_MAX >> POOL_BUSY_BITS)

_Static_assert(VGC_POOL_BUCKET_NS <= POOL_BUSY_MASK, "a bucket's count fits its bits");
_Static_assert(POOL_RING > VGC_POOL_SAMPLE_BUCKETS, "the ring covers a sample");
_Static_assert(VGC_POOL_MAX_DEVICES <= 64, "context masks are 64 bits");

/* A slot's client, as NVML shows it. */
struct pool_slot {
    _Atomic uint32_t seq;           /* odd while the identity is rewritten */
    _Atomic uint32_t tenant_kind;   /* enum vgc_tenant_kind */
    _Atomic uint64_t tenant_id[2];  /* struct vgc_tenant.id, as two words */
    _Atomic uint32_t pid;           /* from the client's handshake; 0 before */
    _Atomic int32_t owner;          /* the host process bound to it; 0 before */
    _Atomic uint64_t contexts;      /* bit d: a context on device d */
};

/* One slot's busy time on one device. */
struct pool_activity {
    _Atomic uint64_t since[VGC_POOL_ENGINES];               /* open interval, 0: idle */
    _Atomic uint64_t ring[VGC_POOL_ENGINES][POOL_RING];     /* tag << BITS | busy ns */
};

struct vgc_pool {
    int ndevices;
    int nslots;
    int bound_slot;                 /* in a worker: its row; -1 in the daemon */
    uint64_t capacity;
    size_t map_size;
    _Atomic int *slot_taken;        /* [nslots] */
    _Atomic uint64_t *used;         /* [nslots][ndevices] */
    struct pool_slot *slots;        /* [nslots] */
    struct pool_activity *activity; /* [nslots][ndevices] */
};

static size_t pool_align(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

struct vgc_pool *vgc_pool_create(int ndevices, uint64_t capacity, int nslots)
{
    struct vgc_pool *pool;
    size_t taken_size, used_size, slots_size, act_size;
    char *map;

    if (ndevices < 1 || ndevices > VGC_POOL_MAX_DEVICES || nslots < 1 ||
        nslots > 65536) {
        errno = EINVAL;
        return NULL;
    }
    taken_size = pool_align(sizeof(_Atomic int) * (size_t)nslots);
    used_size = pool_align(sizeof(_Atomic uint64_t) * (size_t)nslots * (size_t)ndevices);
    slots_size = pool_align(sizeof(struct pool_slot) * (size_t)nslots);
    act_size = sizeof(struct pool_activity) * (size_t)nslots * (size_t)ndevices;
    /* Pages nobody touches (slots never used) cost nothing. */
    map = mmap(NULL, taken_size + used_size + slots_size + act_size,
               PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED) {
        return NULL;
    }
    pool = calloc(1, sizeof(*pool));
    if (!pool) {
        munmap(map, taken_size + used_size + slots_size + act_size);
        return NULL;
    }
    pool->ndevices = ndevices;
    pool->nslots = nslots;
    pool->bound_slot = -1;
    pool->capacity = capacity;
    pool->map_size = taken_size + used_size + slots_size + act_size;
    pool->slot_taken = (_Atomic int *)map;
    pool->used = (_Atomic uint64_t *)(map + taken_size);
    pool->slots = (struct pool_slot *)(map + taken_size + used_size);
    pool->activity = (struct pool_activity *)(map + taken_size + used_size + slots_size);
    return pool;
}

void vgc_pool_destroy(struct vgc_pool *pool)
{
    if (pool) {
        munmap((void *)pool->slot_taken, pool->map_size);
        free(pool);
    }
}

static struct pool_activity *pool_activity(const struct vgc_pool *pool, int slot, int dev)
{
    return &pool->activity[(size_t)slot * pool->ndevices + dev];
}

/* Rewrite a slot's identity; only its claimer does, while no worker runs. */
static void pool_slot_identify(struct pool_slot *sl, const struct vgc_tenant *t)
{
    uint64_t id[2] = { 0, 0 };

    if (t) {
        memcpy(id, t->id, sizeof(id));
    }
    atomic_fetch_add(&sl->seq, 1);
    atomic_store(&sl->tenant_kind, t ? t->kind : VGC_TENANT_NONE);
    atomic_store(&sl->tenant_id[0], id[0]);
    atomic_store(&sl->tenant_id[1], id[1]);
    atomic_store(&sl->pid, 0);
    atomic_store(&sl->owner, 0);
    atomic_store(&sl->contexts, 0);
    atomic_fetch_add(&sl->seq, 1);
}

int vgc_pool_slot_claim(struct vgc_pool *pool, const struct vgc_tenant *tenant)
{
    for (int i = 0; i < pool->nslots; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&pool->slot_taken[i], &expected, 1)) {
            pool_slot_identify(&pool->slots[i], tenant);
            return i;
        }
    }
    return -1;
}

static void pool_busy_close(struct pool_activity *a, int engine, uint64_t now);

void vgc_pool_slot_clear(struct vgc_pool *pool, int slot)
{
    uint64_t now = vgc_pool_clock();

    if (slot < 0 || slot >= pool->nslots) {
        return;
    }
    pool_slot_identify(&pool->slots[slot], NULL);
    for (int d = 0; d < pool->ndevices; d++) {
        atomic_store(&pool->used[(size_t)slot * pool->ndevices + d], 0);
        /* A worker that died inside a kernel kept the device busy until
         * now; its buckets stay, so the last second still shows it. */
        for (int e = 0; e < VGC_POOL_ENGINES; e++) {
            pool_busy_close(pool_activity(pool, slot, d), e, now);
        }
    }
    atomic_store(&pool->slot_taken[slot], 0);
}

void vgc_pool_bind(struct vgc_pool *pool, int slot)
{
    pool->bound_slot = slot;
    if (slot >= 0 && slot < pool->nslots) {
        atomic_store(&pool->slots[slot].owner, (int32_t)getpid());
    }
}

int vgc_pool_slot_of(const struct vgc_pool *pool, pid_t pid)
{
    for (int i = 0; i < pool->nslots; i++) {
        if (atomic_load(&pool->slot_taken[i]) && atomic_load(&pool->slots[i].owner) == pid) {
            return i;
        }
    }
    return -1;
}

int vgc_pool_devices(const struct vgc_pool *pool)
{
    return pool->ndevices;
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

/* ---- what NVML reports ----------------------------------------------------- */

static bool pool_bound(const struct vgc_pool *pool)
{
    return pool && pool->bound_slot >= 0 && pool->bound_slot < pool->nslots;
}

void vgc_pool_set_pid(struct vgc_pool *pool, uint32_t pid)
{
    if (pool_bound(pool)) {
        atomic_store(&pool->slots[pool->bound_slot].pid, pid);
    }
}

void vgc_pool_set_contexts(struct vgc_pool *pool, uint64_t devices)
{
    if (pool_bound(pool)) {
        atomic_store(&pool->slots[pool->bound_slot].contexts, devices);
    }
}

uint64_t vgc_pool_clock(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Add the busy interval [from, to) to the buckets it covers. */
static void pool_ring_add(struct pool_activity *a, int engine, uint64_t from, uint64_t to)
{
    uint64_t first, last;

    if (to <= from) {
        return;
    }
    first = from / VGC_POOL_BUCKET_NS;
    last = (to - 1) / VGC_POOL_BUCKET_NS;
    if (last - first >= POOL_RING) {
        first = last - POOL_RING + 1;   /* older buckets left every sample */
    }
    for (uint64_t b = first; b <= last; b++) {
        _Atomic uint64_t *cell = &a->ring[engine][b % POOL_RING];
        uint64_t lo = from > b * VGC_POOL_BUCKET_NS ? from : b * VGC_POOL_BUCKET_NS;
        uint64_t hi = to < (b + 1) * VGC_POOL_BUCKET_NS ? to : (b + 1) * VGC_POOL_BUCKET_NS;
        uint64_t v = atomic_load(cell);
        uint64_t busy = (v >> POOL_BUSY_BITS) == (b & POOL_TAG_MASK) ? v & POOL_BUSY_MASK : 0;

        busy += hi - lo;
        if (busy > VGC_POOL_BUCKET_NS) {
            busy = VGC_POOL_BUCKET_NS;
        }
        atomic_store(cell, (b & POOL_TAG_MASK) << POOL_BUSY_BITS | busy);
    }
}

/* End the open interval of @engine, if any, at @now. */
static void pool_busy_close(struct pool_activity *a, int engine, uint64_t now)
{
    uint64_t since = atomic_load(&a->since[engine]);

    if (since) {
        /* Buckets first: a reader in between counts the interval twice,
         * which the cap per bucket absorbs, rather than not at all. */
        pool_ring_add(a, engine, since, now);
        atomic_store(&a->since[engine], 0);
    }
}

static bool pool_activity_args(const struct vgc_pool *pool, int dev, enum vgc_pool_engine engine)
{
    return dev >= 0 && dev < pool->ndevices && (unsigned)engine < VGC_POOL_ENGINES;
}

void vgc_pool_busy_begin(struct vgc_pool *pool, int dev, enum vgc_pool_engine engine,
                         uint64_t now)
{
    struct pool_activity *a;

    if (!pool_bound(pool) || !pool_activity_args(pool, dev, engine)) {
        return;
    }
    a = pool_activity(pool, pool->bound_slot, dev);
    if (!atomic_load(&a->since[engine])) {
        atomic_store(&a->since[engine], now ? now : 1);     /* 0 means idle */
    }
}

void vgc_pool_busy_end(struct vgc_pool *pool, int dev, enum vgc_pool_engine engine,
                       uint64_t now)
{
    if (pool_bound(pool) && pool_activity_args(pool, dev, engine)) {
        pool_busy_close(pool_activity(pool, pool->bound_slot, dev), engine, now);
    }
}

/* Spread [from, to) over busy[], one entry per bucket from bucket @first. */
static void pool_spread(uint64_t *busy, unsigned nbusy, uint64_t first, uint64_t from,
                        uint64_t to)
{
    for (unsigned k = 0; k < nbusy && from < to; k++) {
        uint64_t end = (first + k + 1) * VGC_POOL_BUCKET_NS;

        if (from < end) {
            uint64_t hi = to < end ? to : end;
            busy[k] += hi - from;
            from = hi;
        }
    }
}

unsigned vgc_pool_utilization(const struct vgc_pool *pool, int dev,
                              enum vgc_pool_engine engine, uint64_t now)
{
    uint64_t busy[VGC_POOL_SAMPLE_BUCKETS + 1] = { 0 };
    uint64_t cur = now / VGC_POOL_BUCKET_NS;
    uint64_t first = cur >= VGC_POOL_SAMPLE_BUCKETS ? cur - VGC_POOL_SAMPLE_BUCKETS : 0;
    uint64_t start = first * VGC_POOL_BUCKET_NS, total = 0, pct;
    unsigned nbusy = (unsigned)(cur - first) + 1;

    if (!pool || !pool_activity_args(pool, dev, engine) || now <= start) {
        return 0;
    }
    /* Every slot, taken or not: one that just ended still counts. */
    for (int s = 0; s < pool->nslots; s++) {
        struct pool_activity *a = pool_activity(pool, s, dev);
        uint64_t since;

        for (unsigned k = 0; k < nbusy; k++) {
            uint64_t b = first + k;
            uint64_t v = atomic_load(&a->ring[engine][b % POOL_RING]);
            if ((v >> POOL_BUSY_BITS) == (b & POOL_TAG_MASK)) {
                busy[k] += v & POOL_BUSY_MASK;
            }
        }
        since = atomic_load(&a->since[engine]);
        if (since && since < now) {
            pool_spread(busy, nbusy, first, since > start ? since : start, now);
        }
    }
    for (unsigned k = 0; k < nbusy; k++) {
        uint64_t len = first + k == cur ? now - cur * VGC_POOL_BUCKET_NS : VGC_POOL_BUCKET_NS;
        total += busy[k] < len ? busy[k] : len;
    }
    pct = (total * 100 + (now - start) / 2) / (now - start);
    return pct > 100 ? 100 : (unsigned)pct;
}

/*
 * A stable copy of slot @s's identity and state; false while its claimer
 * rewrites it (the slot changes hands: it is nobody's for that moment).
 */
static bool pool_slot_read(const struct vgc_pool *pool, int s, int dev,
                           struct vgc_tenant *t, uint32_t *pid, bool *on_dev,
                           uint64_t *used)
{
    struct pool_slot *sl = &pool->slots[s];
    uint32_t seq = atomic_load(&sl->seq);
    uint64_t id[2];

    if (seq & 1) {
        return false;
    }
    t->kind = atomic_load(&sl->tenant_kind);
    id[0] = atomic_load(&sl->tenant_id[0]);
    id[1] = atomic_load(&sl->tenant_id[1]);
    memcpy(t->id, id, sizeof(id));
    *pid = atomic_load(&sl->pid);
    *on_dev = dev >= 0 && (atomic_load(&sl->contexts) >> dev & 1);
    *used = dev >= 0 ? atomic_load(&pool->used[(size_t)s * pool->ndevices + dev]) : 0;
    return atomic_load(&sl->seq) == seq;
}

unsigned vgc_pool_processes(const struct vgc_pool *pool, int dev,
                            struct vgc_pool_process *out, unsigned max)
{
    struct vgc_tenant me;
    uint32_t pid;
    uint64_t used;
    bool on_dev;
    unsigned n = 0;

    if (!pool_bound(pool) || dev < 0 || dev >= pool->ndevices ||
        !pool_slot_read(pool, pool->bound_slot, -1, &me, &pid, &on_dev, &used) ||
        me.kind == VGC_TENANT_NONE) {
        return 0;
    }
    for (int s = 0; s < pool->nslots; s++) {
        struct vgc_tenant t;

        if (!atomic_load(&pool->slot_taken[s]) ||
            !pool_slot_read(pool, s, dev, &t, &pid, &on_dev, &used) ||
            t.kind != me.kind || memcmp(t.id, me.id, sizeof(t.id)) ||
            pid == 0 || (!on_dev && used == 0)) {
            continue;
        }
        if (n < max && out) {
            out[n] = (struct vgc_pool_process){ .pid = pid, .used = used };
        }
        n++;
    }
    return n;
}

/* ---- what the daemon's control socket reports ---------------------------- */

uint64_t vgc_pool_slot_used(const struct vgc_pool *pool, int slot)
{
    uint64_t sum = 0;

    if (slot < 0 || slot >= pool->nslots) {
        return 0;
    }
    for (int d = 0; d < pool->ndevices; d++) {
        sum += atomic_load(&pool->used[(size_t)slot * pool->ndevices + d]);
    }
    return sum;
}

uint64_t vgc_pool_tenant_used(const struct vgc_pool *pool, const struct vgc_tenant *tenant)
{
    uint64_t sum = 0;

    if (tenant->kind == VGC_TENANT_NONE) {
        return 0;
    }
    for (int s = 0; s < pool->nslots; s++) {
        struct vgc_tenant t;
        uint32_t pid;
        uint64_t used;
        bool on_dev;

        if (atomic_load(&pool->slot_taken[s]) &&
            pool_slot_read(pool, s, -1, &t, &pid, &on_dev, &used) &&
            t.kind == tenant->kind && !memcmp(t.id, tenant->id, sizeof(t.id))) {
            sum += vgc_pool_slot_used(pool, s);
        }
    }
    return sum;
}
