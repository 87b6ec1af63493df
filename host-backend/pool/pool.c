/*
 * pool.c - device memory accounting shared by all workers of one daemon.
 *
 * One MAP_SHARED|MAP_ANONYMOUS mapping, made before any fork, holds a row of
 * counters per worker slot.  A worker only ever adds to its own row, with
 * atomics, so no lock is needed; readers sum the rows.  Reservation adds
 * first and then sums (the device's rows, the tenant's rows), taking its
 * bytes back when a sum is over: with sequentially consistent atomics, of
 * two racers at least one sees the other's bytes, so the limits are never
 * exceeded; at worst both are refused where one would have fit.
 *
 * The tenant table (policy and bindings of virtual GPUs) and each slot's
 * tenant and context mask change only under a process-shared robust mutex:
 * claims and clears by the daemon or a VM's worker, context changes by
 * workers, all rare.  What can be derived from the slots (a tenant's slot
 * count, the holders of each virtual GPU, which bindings are still needed,
 * each slot's context mask in physical devices for NVML) is recomputed
 * from them after every change (pool_settle), and for every tenant
 * when a worker died holding the lock: only single stores of a slot's mask
 * or a binding happen under it, and any state between them settles right.
 * Readers on the allocation path read the tenant's limit without the lock:
 * it is written before the first slot names the tenant, and the entry is
 * reused only after no slot names it.
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
 * Compute shares add, per tenant and device, its decayed compute busy
 * time (one word, updated with compare-and-swap by whichever of its
 * workers closes an interval), and per slot and device the moment it was
 * last told to hold back (its worker's, cleared with the slot).  The
 * decision (vgc_pool_share_wait) reads them without the lock: a racing
 * writer can make one answer stale by an interval, and a waiter asks
 * again within a bounded step, so nothing is held back for good by it.
 *
 * Swapping (vgcd --swap) adds, per slot and device, the bytes its process
 * has moved to host RAM (written by that worker only, like its use), and
 * per slot a state word (enum vgc_pool_swap_state) that the slot's owner
 * and its worker move on with compare-and-swap: ASKED by the owner, then
 * either MOVING by the worker or GIVEN_UP by the owner, whichever comes
 * first, so a worker that began is never ended for being late and one
 * that is being ended never begins.  The room is checked like a device's
 * capacity: add, sum over all slots, take back when over.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
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

/*
 * A tenant's decayed compute use of a device, in one u64 so that a reader
 * never pairs a value with another write's time: above, the tick (2^20 ns,
 * about 1 ms) it was decayed to, modulo 2^32 ticks (52 days); below, the
 * value in units of 2^8 ns, at most 2^40 ns (18 minutes: a decayed sum
 * stays near the half-life's 0.8 s at full use; one longer kernel is cut
 * there, and is gone after a few seconds anyway).
 */
#define SHARE_TICK_SHIFT    20
#define SHARE_UNIT_SHIFT    8
#define SHARE_VALUE_MAX     UINT32_MAX
#define SHARE_HALF_LIFE_TICKS ((double)(VGC_POOL_SHARE_HALF_LIFE_NS >> SHARE_TICK_SHIFT))
/* A word whose tick is up to this far ahead of the reader's was written by
 * a worker whose clock read a moment later: not decayed, not ancient. */
#define SHARE_AHEAD_TICKS   1024u

/* A slot's client, as NVML shows it. */
struct pool_slot {
    _Atomic uint32_t seq;           /* odd while the identity is rewritten */
    _Atomic uint32_t tenant_kind;   /* enum vgc_tenant_kind */
    _Atomic uint64_t tenant_id[2];  /* struct vgc_tenant.id, as two words */
    _Atomic uint32_t pid;           /* from the client's handshake; 0 before */
    _Atomic int32_t owner;          /* the host process bound to it; 0 before */
    _Atomic uint64_t contexts;      /* bit d: a context on physical device d (derived) */
    _Atomic int32_t tenant;         /* entry of the tenant table, -1: none (locked) */
    _Atomic uint64_t vctx;          /* bit v: a context on virtual GPU v (locked) */
    /* Preemption: a reason, with PREEMPT_TAKEN once its process's owner
     * took it; PREEMPT_MARKING while the marker writes dev and by.  Reset
     * when the slot is claimed or cleared. */
    _Atomic uint32_t preempt;
    _Atomic int32_t preempt_dev;    /* memory: the device */
    _Atomic int32_t preempt_by;     /* memory: the needing tenant's entry */
    _Atomic uint32_t swap;          /* enum vgc_pool_swap_state */
    _Atomic uint32_t can_swap;      /* its executor can swap (its worker says) */
    /* A reservation of its worker waiting for the memory of the slots it
     * preempted: so much on that device, until then (vgc_pool_clock).
     * Swapped-out slots leave that room to it (vgc_pool_swap_may_return). */
    _Atomic int32_t wait_dev;
    _Atomic uint64_t wait_bytes;
    _Atomic uint64_t wait_until;
    /* When its last call ended (vgc_pool_clock), 0 while it is in one:
     * written by its worker around each call (vgc_pool_touch). */
    _Atomic uint64_t last_call;
    /* Its owner holds a call for it while it is away (a VM's session). */
    _Atomic uint32_t called;
};

#define PREEMPT_REASON      0xffu
#define PREEMPT_MARKING     0x100u
#define PREEMPT_TAKEN       0x200u

/* An entry of the tenant table; all of it under the lock. */
struct pool_tenant {
    int32_t slots;                  /* slots naming it (derived); 0: entry free */
    struct vgc_tenant who;          /* identity and policy */
    _Atomic uint64_t memory;        /* who.memory, read without the lock */
    int8_t bound[VGC_POOL_MAX_DEVICES];     /* virtual -> physical, -1 */
    uint32_t holders[VGC_POOL_MAX_DEVICES]; /* slots with a context on v (derived) */
    /* Compute shares: written by the tenant's workers without the lock,
     * zeroed when the entry is made. */
    _Atomic uint64_t share_used[VGC_POOL_MAX_DEVICES];  /* tick << 32 | decayed use */
    _Atomic uint64_t busy_ns;       /* compute busy, all devices, for status */
    _Atomic uint64_t waits;         /* times told to hold back */
    _Atomic uint64_t held_ns;       /* and for how long, added up */
};

struct pool_shared {
    pthread_mutex_t lock;           /* process-shared, robust */
    _Atomic int32_t preempter;      /* woken with SIGUSR1 when slots are marked */
    _Atomic int32_t share_tenants;  /* tenants with a share= (derived, locked) */
};

/* One slot's busy time on one device. */
struct pool_activity {
    _Atomic uint64_t since[VGC_POOL_ENGINES];               /* open interval, 0: idle */
    _Atomic uint64_t ring[VGC_POOL_ENGINES][POOL_RING];     /* tag << BITS | busy ns */
    _Atomic uint64_t want;          /* last told to hold back a kernel, 0: not */
};

/* A tenant's figures in one vgc_pool_share_wait (process-local scratch). */
struct pool_share_sum {
    uint64_t call;                  /* the call that filled it */
    double used;                    /* decayed busy ns, open intervals added */
    bool active;                    /* a slot is busy or waiting on the device */
};

struct vgc_pool {
    int ndevices;
    int nslots;
    int bound_slot;                 /* in a worker: its row; -1 in the daemon */
    uint64_t capacity;
    uint64_t admit;                 /* capacity + oversubscription: what fits */
    uint64_t swap_room;             /* host RAM for swapped-out memory, 0: none */
    size_t map_size;
    struct pool_shared *shared;
    struct pool_tenant *tenants;    /* [nslots]: a tenant has at least one slot */
    _Atomic int *slot_taken;        /* [nslots] */
    _Atomic uint64_t *used;         /* [nslots][ndevices] */
    _Atomic uint64_t *swapped;      /* [nslots][ndevices]: in host RAM */
    struct pool_slot *slots;        /* [nslots] */
    struct pool_activity *activity; /* [nslots][ndevices] */
    /* Not shared: each process's own scratch for vgc_pool_share_wait. */
    struct pool_share_sum *share_sums;      /* [nslots]: by tenant entry */
    int *share_seen;                /* [nslots]: entries filled this call */
    uint64_t share_call;
};

static size_t pool_align(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

struct vgc_pool *vgc_pool_create(int ndevices, uint64_t capacity, int nslots)
{
    struct vgc_pool *pool;
    size_t shared_size, tenants_size, taken_size, used_size, slots_size, act_size, size;
    pthread_mutexattr_t attr;
    char *map;

    if (ndevices < 1 || ndevices > VGC_POOL_MAX_DEVICES || nslots < 1 ||
        nslots > 65536) {
        errno = EINVAL;
        return NULL;
    }
    shared_size = pool_align(sizeof(struct pool_shared));
    tenants_size = pool_align(sizeof(struct pool_tenant) * (size_t)nslots);
    taken_size = pool_align(sizeof(_Atomic int) * (size_t)nslots);
    used_size = pool_align(sizeof(_Atomic uint64_t) * (size_t)nslots * (size_t)ndevices);
    slots_size = pool_align(sizeof(struct pool_slot) * (size_t)nslots);
    act_size = sizeof(struct pool_activity) * (size_t)nslots * (size_t)ndevices;
    size = shared_size + tenants_size + taken_size + 2 * used_size + slots_size + act_size;
    /* Pages nobody touches (slots never used) cost nothing. */
    map = mmap(NULL, size, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED) {
        return NULL;
    }
    pool = calloc(1, sizeof(*pool));
    if (pool) {
        pool->share_sums = calloc((size_t)nslots, sizeof(*pool->share_sums));
        pool->share_seen = calloc((size_t)nslots, sizeof(*pool->share_seen));
    }
    if (!pool || !pool->share_sums || !pool->share_seen) {
        if (pool) {
            free(pool->share_sums);
            free(pool->share_seen);
            free(pool);
        }
        munmap(map, size);
        errno = ENOMEM;
        return NULL;
    }
    pool->ndevices = ndevices;
    pool->nslots = nslots;
    pool->bound_slot = -1;
    pool->capacity = capacity;
    pool->admit = capacity;
    pool->map_size = size;
    pool->shared = (struct pool_shared *)map;
    pool->tenants = (struct pool_tenant *)(map + shared_size);
    map += shared_size + tenants_size;
    pool->slot_taken = (_Atomic int *)map;
    pool->used = (_Atomic uint64_t *)(map + taken_size);
    pool->swapped = (_Atomic uint64_t *)(map + taken_size + used_size);
    pool->slots = (struct pool_slot *)(map + taken_size + 2 * used_size);
    pool->activity = (struct pool_activity *)(map + taken_size + 2 * used_size + slots_size);
    for (int i = 0; i < nslots; i++) {
        atomic_store(&pool->slots[i].tenant, -1);
        memset(pool->tenants[i].bound, -1, sizeof(pool->tenants[i].bound));
    }
    /* Robust: a worker killed while holding it hands it on (EOWNERDEAD). */
    if (pthread_mutexattr_init(&attr) != 0 ||
        pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) != 0 ||
        pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) != 0 ||
        pthread_mutex_init(&pool->shared->lock, &attr) != 0) {
        munmap(pool->shared, size);
        free(pool->share_sums);
        free(pool->share_seen);
        free(pool);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutexattr_destroy(&attr);
    return pool;
}

void vgc_pool_destroy(struct vgc_pool *pool)
{
    if (pool) {
        munmap((void *)pool->shared, pool->map_size);
        free(pool->share_sums);
        free(pool->share_seen);
        free(pool);
    }
}

/* ---- the tenant table ------------------------------------------------------ */

static void pool_settle(struct vgc_pool *pool, int only);

static void pool_lock(struct vgc_pool *pool)
{
    if (pthread_mutex_lock(&pool->shared->lock) == EOWNERDEAD) {
        /* A worker died in the middle of a change: whatever it left is
         * made whole again from the slots. */
        pthread_mutex_consistent(&pool->shared->lock);
        pool_settle(pool, -1);
        /* Or in the middle of a mark (pool_mark): never finished, never
         * made; its reservation will not wait for it either. */
        for (int s = 0; s < pool->nslots; s++) {
            uint32_t marking = PREEMPT_MARKING;
            atomic_compare_exchange_strong(&pool->slots[s].preempt, &marking, 0);
        }
    }
}

static void pool_unlock(struct vgc_pool *pool)
{
    pthread_mutex_unlock(&pool->shared->lock);
}

static int pool_tenant_gpus(const struct vgc_pool *pool, const struct pool_tenant *t)
{
    return t->who.gpus ? (int)t->who.gpus : pool->ndevices;
}

/*
 * Recompute what tenant entries derive from the slots - how many slots
 * each has, which of its virtual GPUs have holders (the others are
 * unbound), each slot's contexts in physical devices - for entry @only,
 * or for all of them when @only is -1, in one pass over the slots; and,
 * over all entries, how many tenants have a share.  Locked.
 */
static void pool_settle(struct vgc_pool *pool, int only)
{
    int shares = 0;

    for (int t = 0; t < pool->nslots; t++) {
        if (only < 0 || t == only) {
            pool->tenants[t].slots = 0;
            memset(pool->tenants[t].holders, 0, sizeof(pool->tenants[t].holders));
        }
    }
    for (int s = 0; s < pool->nslots; s++) {
        int t = atomic_load(&pool->slots[s].tenant);
        uint64_t vctx = atomic_load(&pool->slots[s].vctx);

        if (t < 0 || t >= pool->nslots || (only >= 0 && t != only)) {
            continue;
        }
        pool->tenants[t].slots++;
        for (int v = 0; v < pool_tenant_gpus(pool, &pool->tenants[t]); v++) {
            pool->tenants[t].holders[v] += vctx >> v & 1;
        }
    }
    for (int t = 0; t < pool->nslots; t++) {
        struct pool_tenant *te = &pool->tenants[t];
        int gpus = pool_tenant_gpus(pool, te);

        shares += te->slots && te->who.share;
        if (only >= 0 && t != only) {
            continue;
        }
        for (int v = 0; v < VGC_POOL_MAX_DEVICES; v++) {
            if (v >= gpus || !te->holders[v]) {
                te->bound[v] = -1;
            }
        }
        if (!te->slots) {
            memset(&te->who, 0, sizeof(te->who));
            atomic_store(&te->memory, 0);
        }
    }
    atomic_store(&pool->shared->share_tenants, shares);
    for (int s = 0; s < pool->nslots; s++) {
        int t = atomic_load(&pool->slots[s].tenant);
        uint64_t vctx = atomic_load(&pool->slots[s].vctx), phys = 0;

        if (t < 0 || t >= pool->nslots || (only >= 0 && t != only)) {
            continue;
        }
        for (int v = 0; v < pool_tenant_gpus(pool, &pool->tenants[t]); v++) {
            if ((vctx >> v & 1) && pool->tenants[t].bound[v] >= 0) {
                phys |= UINT64_C(1) << pool->tenants[t].bound[v];
            }
        }
        atomic_store(&pool->slots[s].contexts, phys);
    }
}

static bool pool_tenant_same(const struct vgc_tenant *a, const struct vgc_tenant *b)
{
    /* Nobody's clients are never taken for one another. */
    return a->kind != VGC_TENANT_NONE && a->kind == b->kind && a->listener == b->listener &&
           !memcmp(a->id, b->id, sizeof(a->id));
}

/* The entry for @who, made when it has none.  Locked; there is always a
 * free entry, as a free slot is being claimed. */
static int pool_tenant_find(struct vgc_pool *pool, const struct vgc_tenant *who)
{
    int free_entry = -1;

    for (int t = 0; t < pool->nslots; t++) {
        struct pool_tenant *te = &pool->tenants[t];

        if (te->slots && pool_tenant_same(&te->who, who)) {
            return t;
        }
        if (!te->slots && free_entry < 0) {
            free_entry = t;
        }
    }
    if (free_entry >= 0) {
        struct pool_tenant *te = &pool->tenants[free_entry];

        te->who = *who;
        te->who.name[sizeof(te->who.name) - 1] = '\0';
        atomic_store(&te->memory, who->memory);
        memset(te->bound, -1, sizeof(te->bound));
        /* Nobody writes these while no slot names the entry. */
        for (int d = 0; d < VGC_POOL_MAX_DEVICES; d++) {
            atomic_store(&te->share_used[d], 0);
        }
        atomic_store(&te->busy_ns, 0);
        atomic_store(&te->waits, 0);
        atomic_store(&te->held_ns, 0);
    }
    return free_entry;
}

/*
 * Into @active[t] (room for every tenant entry): whether tenant entry t
 * has a process with a context that is not swapped out.  One whose
 * processes with contexts are all out (idle ones given way, preempted ones
 * waiting) uses no GPU now: its bindings stay, for it comes back to the
 * same devices, but do not count when a new binding is placed.
 */
static void pool_active_tenants(const struct vgc_pool *pool, bool *active)
{
    for (int s = 0; s < pool->nslots; s++) {
        const struct pool_slot *sl = &pool->slots[s];
        int t = atomic_load(&sl->tenant);

        if (atomic_load(&pool->slot_taken[s]) && t >= 0 && t < pool->nslots &&
            atomic_load(&sl->vctx) && atomic_load(&sl->swap) != VGC_SWAP_OUT) {
            active[t] = true;
        }
    }
}

/*
 * A physical device for a new binding of tenant @t: not one it holds
 * already; of the others, the one with the fewest active tenants bound
 * (pool_active_tenants), then the most free memory, then the lowest
 * number.  Locked.
 */
static int pool_place(struct vgc_pool *pool, int t)
{
    int tenants[VGC_POOL_MAX_DEVICES] = { 0 };
    bool mine[VGC_POOL_MAX_DEVICES] = { false };
    bool *active = calloc((size_t)pool->nslots, sizeof(*active));
    int best = -1;
    uint64_t best_free = 0;

    if (active) {
        pool_active_tenants(pool, active);
    }
    for (int u = 0; u < pool->nslots; u++) {
        struct pool_tenant *te = &pool->tenants[u];
        bool on[VGC_POOL_MAX_DEVICES] = { false };

        if (!te->slots) {
            continue;
        }
        for (int v = 0; v < VGC_POOL_MAX_DEVICES; v++) {
            if (te->bound[v] >= 0 && te->bound[v] < pool->ndevices) {
                on[te->bound[v]] = true;
            }
        }
        for (int d = 0; d < pool->ndevices; d++) {
            /* Without the memory to say, every binding counts. */
            tenants[d] += on[d] && (!active || active[u]);
            if (u == t) {
                mine[d] = on[d];
            }
        }
    }
    free(active);
    for (int d = 0; d < pool->ndevices; d++) {
        uint64_t used = vgc_pool_used(pool, d);
        uint64_t avail = used < pool->capacity ? pool->capacity - used : 0;

        if (mine[d]) {
            continue;
        }
        if (best < 0 || tenants[d] < tenants[best] ||
            (tenants[d] == tenants[best] && avail > best_free)) {
            best = d;
            best_free = avail;
        }
    }
    return best;
}

/* Bind virtual GPU @v of tenant @t if it is not bound; *@placed: whether
 * a device was chosen for it.  Locked. */
static int pool_bind_vdev(struct vgc_pool *pool, int t, int v, bool *placed)
{
    struct pool_tenant *te = &pool->tenants[t];

    if (te->bound[v] < 0) {
        /* Without gpus= the tenant has every device as it is. */
        te->bound[v] = (int8_t)(te->who.gpus ? pool_place(pool, t) : v);
        *placed = te->who.gpus != 0;
    }
    return te->bound[v];
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
    struct vgc_tenant nobody;

    if (tenant && tenant->gpus > (uint32_t)pool->ndevices) {
        errno = EINVAL;
        return -1;
    }
    if (!tenant) {
        memset(&nobody, 0, sizeof(nobody));
        tenant = &nobody;
    }
    for (int i = 0; i < pool->nslots; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&pool->slot_taken[i], &expected, 1)) {
            int t;

            pool_slot_identify(&pool->slots[i], tenant);
            pool_lock(pool);
            t = pool_tenant_find(pool, tenant);
            atomic_store(&pool->slots[i].preempt, 0);
            atomic_store(&pool->slots[i].swap, VGC_SWAP_NONE);
            atomic_store(&pool->slots[i].can_swap, 0);
            atomic_store(&pool->slots[i].called, 0);
            atomic_store(&pool->slots[i].wait_until, 0);
            atomic_store(&pool->slots[i].vctx, 0);
            /* Idle from its start: a process that never calls is as idle
             * as one that stopped. */
            atomic_store(&pool->slots[i].last_call, vgc_pool_clock());
            atomic_store(&pool->slots[i].tenant, t);
            pool_settle(pool, t);
            pool_unlock(pool);
            return i;
        }
    }
    errno = EAGAIN;
    return -1;
}

static void pool_busy_close(struct pool_activity *a, int engine, uint64_t now);
static void pool_share_add(struct vgc_pool *pool, int t, int dev, uint64_t from, uint64_t to);

void vgc_pool_slot_clear(struct vgc_pool *pool, int slot)
{
    uint64_t now = vgc_pool_clock();
    int t;

    if (slot < 0 || slot >= pool->nslots) {
        return;
    }
    pool_slot_identify(&pool->slots[slot], NULL);
    pool_lock(pool);
    t = atomic_load(&pool->slots[slot].tenant);
    atomic_store(&pool->slots[slot].preempt, 0);
    atomic_store(&pool->slots[slot].swap, VGC_SWAP_NONE);
    atomic_store(&pool->slots[slot].can_swap, 0);
    atomic_store(&pool->slots[slot].called, 0);
    atomic_store(&pool->slots[slot].wait_until, 0);
    atomic_store(&pool->slots[slot].vctx, 0);
    atomic_store(&pool->slots[slot].tenant, -1);
    if (t >= 0 && t < pool->nslots) {
        /* A kernel it died in counts against its tenant's share, while
         * the entry is still the tenant's. */
        for (int d = 0; d < pool->ndevices; d++) {
            uint64_t since = atomic_load(&pool_activity(pool, slot, d)->since[VGC_POOL_COMPUTE]);

            if (since) {
                pool_share_add(pool, t, d, since, now);
            }
        }
        pool_settle(pool, t);    /* unbinds what only this slot held */
    }
    pool_unlock(pool);
    for (int d = 0; d < pool->ndevices; d++) {
        atomic_store(&pool->used[(size_t)slot * pool->ndevices + d], 0);
        /* A process killed while swapped out: its host RAM is free. */
        atomic_store(&pool->swapped[(size_t)slot * pool->ndevices + d], 0);
        atomic_store(&pool_activity(pool, slot, d)->want, 0);
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

/* The bound slot's tenant entry, or NULL. */
static const struct pool_tenant *pool_my_tenant(const struct vgc_pool *pool)
{
    int t;

    if (pool->bound_slot < 0 || pool->bound_slot >= pool->nslots) {
        return NULL;
    }
    t = atomic_load(&pool->slots[pool->bound_slot].tenant);
    return t >= 0 && t < pool->nslots ? &pool->tenants[t] : NULL;
}

/* What the bound slot's tenant has on @dev, all its slots together: on
 * the device, and with @swapped what it swapped out from there too. */
static uint64_t pool_tenant_sum(const struct vgc_pool *pool, int dev, bool swapped)
{
    int t = pool->bound_slot >= 0 && pool->bound_slot < pool->nslots ?
            atomic_load(&pool->slots[pool->bound_slot].tenant) : -1;
    uint64_t sum = 0;

    if (t < 0 || dev < 0 || dev >= pool->ndevices) {
        return 0;
    }
    for (int s = 0; s < pool->nslots; s++) {
        if (atomic_load(&pool->slots[s].tenant) == t) {
            size_t i = (size_t)s * pool->ndevices + dev;
            sum += atomic_load(&pool->used[i]) + (swapped ? atomic_load(&pool->swapped[i]) : 0);
        }
    }
    return sum;
}

uint64_t vgc_pool_tenant_used(const struct vgc_pool *pool, int dev)
{
    return pool_tenant_sum(pool, dev, false);
}

/*
 * What the bound slot's tenant holds against its limit on @dev: on the
 * device, and swapped out from it (its processes come back to that room).
 */
static uint64_t pool_tenant_held(const struct vgc_pool *pool, int dev)
{
    return pool_tenant_sum(pool, dev, true);
}

/* The bound slot's tenant's limit, 0 for none. */
static uint64_t pool_limit(const struct vgc_pool *pool)
{
    const struct pool_tenant *te = pool_my_tenant(pool);

    return te ? atomic_load(&te->memory) : 0;
}

uint64_t vgc_pool_limit(const struct vgc_pool *pool)
{
    return pool_limit(pool);
}

uint64_t vgc_pool_capacity(const struct vgc_pool *pool, int dev)
{
    uint64_t limit = pool_limit(pool);

    if (dev < 0 || dev >= pool->ndevices) {
        return 0;
    }
    return limit && limit < pool->capacity ? limit : pool->capacity;
}

uint64_t vgc_pool_free(const struct vgc_pool *pool, int dev)
{
    uint64_t limit = pool_limit(pool), used, avail;

    if (dev < 0 || dev >= pool->ndevices) {
        return 0;
    }
    used = vgc_pool_used(pool, dev);
    avail = used < pool->capacity ? pool->capacity - used : 0;
    if (limit) {
        uint64_t mine = pool_tenant_held(pool, dev);
        uint64_t left = mine < limit ? limit - mine : 0;
        avail = left < avail ? left : avail;
    }
    return avail;
}

void vgc_pool_set_oversubscription(struct vgc_pool *pool, uint64_t bytes)
{
    pool->admit = pool->capacity > UINT64_MAX - bytes ? UINT64_MAX : pool->capacity + bytes;
}

uint64_t vgc_pool_spilled(const struct vgc_pool *pool, int dev)
{
    uint64_t used;

    if (dev < 0 || dev >= pool->ndevices) {
        return 0;
    }
    used = vgc_pool_used(pool, dev);
    return used > pool->capacity ? used - pool->capacity : 0;
}

/* Add, then look: see the top of this file for why this never exceeds a
 * limit however many workers race.  Past the capacity, oversubscription
 * (vgc_pool_set_oversubscription) admits more. */
static bool pool_reserve_once(struct vgc_pool *pool, int dev, uint64_t bytes, uint64_t limit)
{
    atomic_fetch_add(pool_row(pool, dev), bytes);
    if (vgc_pool_used(pool, dev) > pool->admit ||
        (limit && pool_tenant_held(pool, dev) > limit)) {
        atomic_fetch_sub(pool_row(pool, dev), bytes);
        return false;
    }
    return true;
}

static bool pool_preempt_for(struct vgc_pool *pool, int dev, uint64_t bytes, uint64_t limit);

/* The bound slot's reservation waits for @bytes on @dev until @until;
 * @until 0: it no longer does. */
static void pool_wait_set(struct vgc_pool *pool, int dev, uint64_t bytes, uint64_t until)
{
    struct pool_slot *sl = &pool->slots[pool->bound_slot];

    atomic_store(&sl->wait_until, 0);
    atomic_store(&sl->wait_dev, dev);
    atomic_store(&sl->wait_bytes, bytes);
    atomic_store(&sl->wait_until, until);
}

/* Reserve once; if only lower priorities stand in the way, preempt them
 * and try once more. */
static bool pool_reserve_preempting(struct vgc_pool *pool, int dev, uint64_t bytes,
                                    uint64_t limit)
{
    bool ok;

    if (pool_reserve_once(pool, dev, bytes, limit)) {
        return true;
    }
    ok = pool_preempt_for(pool, dev, bytes, limit) &&
         pool_reserve_once(pool, dev, bytes, limit);
    /* Reserved or refused: nobody need leave room for it any more. */
    atomic_store(&pool->slots[pool->bound_slot].wait_until, 0);
    return ok;
}

bool vgc_pool_reserve(struct vgc_pool *pool, int dev, uint64_t bytes)
{
    uint64_t limit = pool_limit(pool);

    if (dev < 0 || dev >= pool->ndevices || pool->bound_slot < 0 ||
        bytes > pool->admit || (limit && bytes > limit)) {
        return false;
    }
    return pool_reserve_preempting(pool, dev, bytes, limit);
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

/* ---- virtual GPUs ----------------------------------------------------------- */

int vgc_pool_device_map(struct vgc_pool *pool, int *phys, int max)
{
    bool taken[VGC_POOL_MAX_DEVICES] = { false };
    struct pool_tenant *te;
    int t, gpus, next = 0;

    if (!pool_bound(pool) || (t = atomic_load(&pool->slots[pool->bound_slot].tenant)) < 0) {
        for (int v = 0; v < max && v < pool->ndevices; v++) {
            phys[v] = v;
        }
        return pool->ndevices;
    }
    te = &pool->tenants[t];
    pool_lock(pool);
    gpus = pool_tenant_gpus(pool, te);
    if (!te->who.gpus) {
        for (int v = 0; v < max && v < gpus; v++) {
            phys[v] = v;
        }
        pool_unlock(pool);
        return gpus;
    }
    for (int v = 0; v < gpus; v++) {
        if (te->bound[v] >= 0) {
            taken[te->bound[v]] = true;
        }
    }
    for (int v = 0; v < gpus; v++) {
        int p = te->bound[v];

        if (p < 0) {
            /* Unbound: a device none of the others answers for. */
            while (next < pool->ndevices && taken[next]) {
                next++;
            }
            p = next < pool->ndevices ? next++ : 0;
        }
        if (v < max) {
            phys[v] = p;
        }
    }
    pool_unlock(pool);
    return gpus;
}

/*
 * Make the bound slot's virtual context mask @vctx, binding what is new
 * and letting go what is not in it.  Returns the binding of @want or -1;
 * *@placed: whether @want was placed now; *@unbound: the gpus= tenant's
 * virtual GPUs no longer bound.
 */
static int pool_contexts(struct vgc_pool *pool, uint64_t vctx, int want, bool *placed,
                         uint64_t *unbound)
{
    struct pool_slot *sl;
    struct pool_tenant *te;
    uint64_t was = 0;
    int t, gpus, p = -1;

    *placed = false;
    *unbound = 0;
    if (!pool_bound(pool)) {
        return -1;
    }
    sl = &pool->slots[pool->bound_slot];
    pool_lock(pool);
    t = atomic_load(&sl->tenant);
    if (t < 0) {
        pool_unlock(pool);
        return -1;
    }
    te = &pool->tenants[t];
    gpus = pool_tenant_gpus(pool, te);
    if (gpus < 64) {
        vctx &= (UINT64_C(1) << gpus) - 1;
    }
    /* Bindings first, then the mask that needs them: a worker that dies
     * in between leaves a binding without holder, which settling undoes. */
    for (int v = 0; v < gpus; v++) {
        was |= (uint64_t)(te->bound[v] >= 0) << v;
        if (vctx >> v & 1) {
            bool now = false;
            int b = pool_bind_vdev(pool, t, v, &now);
            if (v == want) {
                p = b;
                *placed = now;
            }
        }
    }
    atomic_store(&sl->vctx, vctx);
    pool_settle(pool, t);
    for (int v = 0; v < gpus && te->who.gpus; v++) {
        if ((was >> v & 1) && te->bound[v] < 0) {
            *unbound |= UINT64_C(1) << v;
        }
    }
    pool_unlock(pool);
    return p;
}

int vgc_pool_acquire(struct vgc_pool *pool, int vdev, bool *placed)
{
    bool dummy;
    uint64_t unbound;

    if (!pool_bound(pool) || vdev < 0 || vdev >= VGC_POOL_MAX_DEVICES) {
        return -1;
    }
    return pool_contexts(pool, atomic_load(&pool->slots[pool->bound_slot].vctx) |
                               UINT64_C(1) << vdev, vdev, placed ? placed : &dummy, &unbound);
}

uint64_t vgc_pool_set_contexts(struct vgc_pool *pool, uint64_t devices)
{
    bool placed;
    uint64_t unbound;

    pool_contexts(pool, devices, -1, &placed, &unbound);
    return unbound;
}

/* ---- compute shares ---------------------------------------------------------- */

/* The use in @word, in ns, decayed to @now. */
static double pool_share_decayed(uint64_t word, uint64_t now)
{
    uint32_t age = (uint32_t)(now >> SHARE_TICK_SHIFT) - (uint32_t)(word >> 32);
    double used = (double)(word & SHARE_VALUE_MAX) * (1u << SHARE_UNIT_SHIFT);

    if (age > UINT32_MAX - SHARE_AHEAD_TICKS) {
        return used;
    }
    /* 64 half-lives: nothing is left of 18 minutes. */
    if (age >= 64 * SHARE_HALF_LIFE_TICKS) {
        return 0;
    }
    return used * exp2(-(double)age / SHARE_HALF_LIFE_TICKS);
}

/*
 * Tenant entry @t was busy computing on @dev from @from to @to: decay its
 * use to @to and add the interval.  Any of its workers may, at once: the
 * word changes by compare-and-swap.  The whole interval counts as of its
 * end, so a long kernel weighs until a few half-lives after it ended.
 */
static void pool_share_add(struct vgc_pool *pool, int t, int dev, uint64_t from, uint64_t to)
{
    struct pool_tenant *te = &pool->tenants[t];
    uint64_t add = to > from ? to - from : 0;
    uint64_t old = atomic_load(&te->share_used[dev]), word;

    do {
        double units = (pool_share_decayed(old, to) + (double)add) / (1u << SHARE_UNIT_SHIFT);
        uint64_t value = units >= SHARE_VALUE_MAX ? SHARE_VALUE_MAX : (uint64_t)(units + 0.5);

        word = (uint64_t)(uint32_t)(to >> SHARE_TICK_SHIFT) << 32 | value;
    } while (!atomic_compare_exchange_weak(&te->share_used[dev], &old, word));
    atomic_fetch_add(&te->busy_ns, add);
}

static uint32_t pool_share_weight(const struct pool_tenant *te)
{
    return te->who.share ? te->who.share : VGC_POOL_SHARE_DEFAULT;
}

/* Tenant entry @t's figures on @dev in this call, made on first use. */
static struct pool_share_sum *pool_share_sum(struct vgc_pool *pool, int t, int dev,
                                             uint64_t now, int *nseen)
{
    struct pool_share_sum *sum = &pool->share_sums[t];

    if (sum->call != pool->share_call) {
        sum->call = pool->share_call;
        sum->used = pool_share_decayed(atomic_load(&pool->tenants[t].share_used[dev]), now);
        sum->active = false;
        pool->share_seen[(*nseen)++] = t;
    }
    return sum;
}

uint64_t vgc_pool_share_wait(struct vgc_pool *pool, int dev, uint64_t now)
{
    struct pool_activity *mine;
    struct pool_share_sum *me_sum;
    double me_rate, low_rate = 0, wait;
    bool shares;
    int me, low = -1, nseen = 0;

    if (!pool_bound(pool) || dev < 0 || dev >= pool->ndevices) {
        return 0;
    }
    me = atomic_load(&pool->slots[pool->bound_slot].tenant);
    if (me < 0 || me >= pool->nslots) {
        return 0;
    }
    mine = pool_activity(pool, pool->bound_slot, dev);
    /* Nobody has share=: not a look at the slots on every launch. */
    if (!atomic_load(&pool->shared->share_tenants)) {
        atomic_store(&mine->want, 0);
        return 0;
    }
    pool->share_call++;
    me_sum = pool_share_sum(pool, me, dev, now, &nseen);
    /* Who has work on the device now, and how much each tenant used. */
    for (int s = 0; s < pool->nslots; s++) {
        struct pool_activity *a = pool_activity(pool, s, dev);
        uint64_t since = atomic_load(&a->since[VGC_POOL_COMPUTE]);
        uint64_t want = atomic_load(&a->want);
        bool waiting = want && (want >= now || now - want < VGC_POOL_SHARE_STALE_NS);
        struct pool_share_sum *sum;
        int t;

        if ((!since && !waiting) || !atomic_load(&pool->slot_taken[s])) {
            continue;
        }
        t = atomic_load(&pool->slots[s].tenant);
        if (t < 0 || t >= pool->nslots) {
            continue;
        }
        sum = pool_share_sum(pool, t, dev, now, &nseen);
        sum->active = true;
        if (since && since < now) {
            sum->used += (double)(now - since);
        }
    }
    /* The policy is written before the first slot names an entry. */
    shares = pool->tenants[me].who.share != 0;
    me_rate = me_sum->used / pool_share_weight(&pool->tenants[me]);
    for (int i = 0; i < nseen; i++) {
        int t = pool->share_seen[i];
        double rate;

        if (t == me || !pool->share_sums[t].active) {
            continue;
        }
        shares |= pool->tenants[t].who.share != 0;
        rate = pool->share_sums[t].used / pool_share_weight(&pool->tenants[t]);
        if (low < 0 || rate < low_rate) {
            low = t;
            low_rate = rate;
        }
    }
    if (!shares || low < 0 || me_rate <= low_rate) {
        atomic_store(&mine->want, 0);
        return 0;
    }
    /* How long @low, using the device alone, takes to catch up (decay
     * left out: the next ask sees it). */
    wait = (me_rate - low_rate) * pool_share_weight(&pool->tenants[low]);
    wait = wait < VGC_POOL_SHARE_STEP_MIN_NS ? VGC_POOL_SHARE_STEP_MIN_NS :
           wait > VGC_POOL_SHARE_STEP_NS ? VGC_POOL_SHARE_STEP_NS : wait;
    atomic_store(&mine->want, now ? now : 1);
    atomic_fetch_add(&pool->tenants[me].waits, 1);
    atomic_fetch_add(&pool->tenants[me].held_ns, (uint64_t)wait);
    return (uint64_t)wait;
}

int vgc_pool_tenants(struct vgc_pool *pool, struct vgc_pool_tenant_info *out, int max)
{
    int n = 0;

    pool_lock(pool);
    for (int t = 0; t < pool->nslots; t++) {
        struct pool_tenant *te = &pool->tenants[t];

        if (!te->slots) {
            continue;
        }
        if (n < max && out) {
            struct vgc_pool_tenant_info *i = &out[n];

            memset(i, 0, sizeof(*i));
            i->tenant = te->who;
            i->slots = te->slots;
            i->gpus = pool_tenant_gpus(pool, te);
            memcpy(i->bound, te->bound, sizeof(i->bound));
            memcpy(i->holders, te->holders, sizeof(i->holders));
            i->busy_ns = atomic_load(&te->busy_ns);
            i->waits = atomic_load(&te->waits);
            i->held_ns = atomic_load(&te->held_ns);
            for (int s = 0; s < pool->nslots; s++) {
                if (atomic_load(&pool->slots[s].tenant) == t) {
                    i->swapped += vgc_pool_slot_swapped(pool, s);
                    i->swapped_out += atomic_load(&pool->slots[s].swap) == VGC_SWAP_OUT;
                }
            }
        }
        n++;
    }
    pool_unlock(pool);
    return n;
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
    struct pool_activity *a;
    uint64_t since;
    int t;

    if (!pool_bound(pool) || !pool_activity_args(pool, dev, engine)) {
        return;
    }
    a = pool_activity(pool, pool->bound_slot, dev);
    since = atomic_load(&a->since[engine]);
    t = atomic_load(&pool->slots[pool->bound_slot].tenant);
    /* The share first: a reader in between counts the interval twice (as
     * open and as used), a moment's overcount rather than a gap. */
    if (engine == VGC_POOL_COMPUTE && since && t >= 0 && t < pool->nslots) {
        pool_share_add(pool, t, dev, since, now);
    }
    pool_busy_close(a, engine, now);
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
    int32_t mine;

    if (!pool_bound(pool) || dev < 0 || dev >= pool->ndevices ||
        !pool_slot_read(pool, pool->bound_slot, -1, &me, &pid, &on_dev, &used) ||
        me.kind == VGC_TENANT_NONE) {
        return 0;
    }
    mine = atomic_load(&pool->slots[pool->bound_slot].tenant);
    for (int s = 0; s < pool->nslots; s++) {
        struct vgc_tenant t;

        /* The same entry of the tenant table: one uid on another
         * listener is another tenant. */
        if (!atomic_load(&pool->slot_taken[s]) ||
            !pool_slot_read(pool, s, dev, &t, &pid, &on_dev, &used) ||
            atomic_load(&pool->slots[s].tenant) != mine ||
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

/* Slot @slot's @counters ([nslots][ndevices]) over all devices. */
static uint64_t pool_slot_sum(const struct vgc_pool *pool, const _Atomic uint64_t *counters,
                              int slot)
{
    uint64_t sum = 0;

    if (slot < 0 || slot >= pool->nslots) {
        return 0;
    }
    for (int d = 0; d < pool->ndevices; d++) {
        sum += atomic_load(&counters[(size_t)slot * pool->ndevices + d]);
    }
    return sum;
}

/* Whether slot @s is taken by a client whose identity is @who's. */
static bool pool_slot_is(const struct vgc_pool *pool, int s, const struct vgc_tenant *who)
{
    struct vgc_tenant t;
    uint32_t pid;
    uint64_t used;
    bool on_dev;

    return who->kind != VGC_TENANT_NONE && atomic_load(&pool->slot_taken[s]) &&
           pool_slot_read(pool, s, -1, &t, &pid, &on_dev, &used) &&
           t.kind == who->kind && !memcmp(t.id, who->id, sizeof(t.id));
}

uint64_t vgc_pool_slot_used(const struct vgc_pool *pool, int slot)
{
    return pool_slot_sum(pool, pool->used, slot);
}

uint64_t vgc_pool_identity_used(const struct vgc_pool *pool, const struct vgc_tenant *who)
{
    uint64_t sum = 0;

    for (int s = 0; s < pool->nslots; s++) {
        if (pool_slot_is(pool, s, who)) {
            sum += vgc_pool_slot_used(pool, s);
        }
    }
    return sum;
}

/* ---- priorities, windows and preemption ------------------------------------ */

uint32_t vgc_pool_time_of_day(void)
{
    time_t now = time(NULL);
    struct tm tm;

    if (!localtime_r(&now, &tm)) {
        return 0;
    }
    /* A leap second counts as the last one of its minute. */
    return (uint32_t)(tm.tm_hour * 3600 + tm.tm_min * 60 + (tm.tm_sec < 60 ? tm.tm_sec : 59));
}

bool vgc_pool_window_open(const struct vgc_tenant *t, uint32_t sec)
{
    if (!t->window || t->window_from == t->window_to) {
        return true;
    }
    if (t->window_from < t->window_to) {
        return sec >= t->window_from && sec < t->window_to;
    }
    return sec >= t->window_from || sec < t->window_to;     /* across midnight */
}

bool vgc_pool_in_window(const struct vgc_pool *pool, uint32_t sec, uint32_t *from,
                        uint32_t *to)
{
    /* The policy is written before the first slot names the entry. */
    const struct pool_tenant *te = pool_my_tenant(pool);

    if (!te || vgc_pool_window_open(&te->who, sec)) {
        return true;
    }
    if (from) {
        *from = te->who.window_from;
    }
    if (to) {
        *to = te->who.window_to;
    }
    return false;
}

static int pool_holder_order(const void *a, const void *b)
{
    const struct vgc_pool_holder *x = a, *y = b;

    if (x->idle != y->idle) {
        return x->idle ? -1 : 1;
    }
    if (x->idle && x->idle_ns != y->idle_ns) {
        return x->idle_ns > y->idle_ns ? -1 : 1;
    }
    if (!x->idle && x->priority != y->priority) {
        return x->priority < y->priority ? -1 : 1;
    }
    if (x->used != y->used) {
        return x->used > y->used ? -1 : 1;
    }
    return (x->slot > y->slot) - (x->slot < y->slot);
}

int vgc_pool_choose_victims(struct vgc_pool_holder *h, int n, uint32_t priority,
                            uint64_t need, uint64_t room)
{
    uint64_t freed = 0;

    if (need == 0 || n <= 0) {
        return 0;
    }
    qsort(h, (size_t)n, sizeof(*h), pool_holder_order);
    /* An idle slot is only ever swapped out: one whose memory no longer
     * fits beside the idle ones before it is an ordinary holder, and its
     * priority decides.  Then sort again, for it to take its place. */
    for (int i = 0; i < n && h[i].idle; i++) {
        if (h[i].total > room) {
            h[i].idle = false;
        } else {
            room -= h[i].total;
        }
    }
    qsort(h, (size_t)n, sizeof(*h), pool_holder_order);
    for (int i = 0; i < n && (h[i].idle || h[i].priority < priority); i++) {
        freed += h[i].used;
        if (freed >= need) {
            return i + 1;
        }
    }
    return 0;
}

void vgc_pool_set_preempter(struct vgc_pool *pool, pid_t pid)
{
    atomic_store(&pool->shared->preempter, (int32_t)pid);
}

/*
 * Mark slot @s for preemption for @reason unless it is marked already.
 * Locked, as are the resets of claims and clears, so a mark never lands
 * on a slot that changed hands meanwhile; a marker that dies between its
 * two stores leaves PREEMPT_MARKING, which pool_lock's recovery undoes.
 */
static bool pool_mark(struct vgc_pool *pool, int s, int reason, int dev, int by)
{
    struct pool_slot *sl = &pool->slots[s];
    uint32_t none = 0;

    if (!atomic_compare_exchange_strong(&sl->preempt, &none, PREEMPT_MARKING)) {
        return false;
    }
    atomic_store(&sl->preempt_dev, dev);
    atomic_store(&sl->preempt_by, by);
    atomic_store(&sl->preempt, (uint32_t)reason);
    return true;
}

static void pool_wake_preempter(struct vgc_pool *pool)
{
    pid_t pid = atomic_load(&pool->shared->preempter);

    if (pid > 0) {
        kill(pid, SIGUSR1);
    }
}

static void pool_sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

void vgc_pool_touch(struct vgc_pool *pool, bool in_call)
{
    if (!pool_bound(pool)) {
        return;
    }
    /* Relaxed: nothing else is ordered by it, and a victim choice that
     * reads it a moment late errs by that moment on an idle= counted in
     * seconds.  The clock is read from the vDSO, tens of nanoseconds, and
     * the store is to the worker's own slot: nothing beside a call that
     * is a round trip of microseconds.  0 says "in a call": such a slot
     * is not between calls, so it could not swap out in time. */
    atomic_store_explicit(&pool->slots[pool->bound_slot].last_call,
                          in_call ? 0 : vgc_pool_clock(), memory_order_relaxed);
}

uint64_t vgc_pool_slot_idle(const struct vgc_pool *pool, int slot, uint64_t now)
{
    uint64_t last;

    if (slot < 0 || slot >= pool->nslots || !atomic_load(&pool->slot_taken[slot])) {
        return 0;
    }
    last = atomic_load_explicit(&pool->slots[slot].last_call, memory_order_relaxed);
    return last && now > last ? now - last : 0;
}

/* Whether slot @s of tenant entry @t, idle for @idle_ns, may be swapped
 * out for being idle (locked, for the tenant entry). */
static bool pool_idle_enough(const struct vgc_pool *pool, int s, int t, uint64_t idle_ns)
{
    uint32_t limit = pool->tenants[t].who.idle;

    return limit && pool->swap_room && idle_ns >= (uint64_t)limit * 1000000000ull &&
           atomic_load(&pool->slots[s].can_swap) &&
           atomic_load(&pool->slots[s].swap) == VGC_SWAP_NONE;
}

/*
 * The bound slot's reservation of @bytes on @dev was refused.  If only
 * the device is in the way - its capacity, and the host RAM that may back
 * it (oversubscription) - and slots of lower-priority tenants hold enough
 * on @dev, mark them and wait (bounded) until the device has room.  With
 * oversubscription a full device spills first and preempts only once the
 * spill room is used up too.  Returns whether trying again is worth it.
 */
static bool pool_preempt_for(struct vgc_pool *pool, int dev, uint64_t bytes, uint64_t limit)
{
    const struct pool_tenant *me = pool_my_tenant(pool);
    struct vgc_pool_holder *h;
    uint64_t used, deadline, now, room = 0;
    int mine, n = 0, victims;

    if (!me) {
        return false;
    }
    /* The tenant's own limit is nobody else's fault. */
    if (limit && pool_tenant_held(pool, dev) + bytes > limit) {
        return false;
    }
    used = vgc_pool_used(pool, dev);
    if (used + bytes <= pool->admit) {
        return true;                    /* freed meanwhile */
    }
    h = malloc(sizeof(*h) * (size_t)pool->nslots);
    if (!h) {
        return false;
    }
    mine = atomic_load(&pool->slots[pool->bound_slot].tenant);
    if (pool->swap_room) {
        uint64_t out = vgc_pool_swapped(pool, -1);

        room = out < pool->swap_room ? pool->swap_room - out : 0;
    }
    now = vgc_pool_clock();
    pool_lock(pool);
    for (int s = 0; s < pool->nslots; s++) {
        struct pool_slot *sl = &pool->slots[s];
        int t = atomic_load(&sl->tenant);
        uint64_t u = atomic_load(&pool->used[(size_t)s * pool->ndevices + dev]);
        struct vgc_pool_holder *x = &h[n];

        /* One swapped out already holds only what its executor could not
         * move (vgc_pool_swap_hold_part); marked, it would free nothing. */
        if (s == pool->bound_slot || !atomic_load(&pool->slot_taken[s]) || t < 0 ||
            t >= pool->nslots || t == mine || u == 0 ||
            atomic_load(&sl->swap) == VGC_SWAP_OUT) {
            continue;
        }
        *x = (struct vgc_pool_holder){ .slot = s, .priority = pool->tenants[t].who.priority,
                                       .used = u };
        /* Idle: past its idle=, between calls, and able to swap out now
         * (its executor can, --swap is on, it is not on its way out). */
        x->idle_ns = vgc_pool_slot_idle(pool, s, now);
        x->idle = pool_idle_enough(pool, s, t, x->idle_ns);
        x->total = vgc_pool_slot_used(pool, s);
        n++;
    }
    /* Slots marked already (by a racing reservation) are chosen again
     * like the others: their memory is on its way back. */
    victims = vgc_pool_choose_victims(h, n, me->who.priority,
                                      used + bytes - pool->admit, room);
    for (int i = 0; i < victims; i++) {
        pool_mark(pool, h[i].slot, h[i].idle ? VGC_PREEMPT_IDLE : VGC_PREEMPT_MEMORY, dev,
                  mine);
    }
    pool_unlock(pool);
    free(h);
    if (!victims) {
        return false;
    }
    /* Say what it waits for: a victim swapped out must not take the room
     * back before this reservation has it. */
    deadline = vgc_pool_clock() + VGC_POOL_PREEMPT_WAIT_MS * 1000000ull;
    pool_wait_set(pool, dev, bytes, deadline);
    pool_wake_preempter(pool);
    /* Bounded: a victim that does not go in time costs this allocation,
     * never the caller's progress. */
    while (vgc_pool_used(pool, dev) + bytes > pool->admit && vgc_pool_clock() < deadline) {
        pool_sleep_ms(2);
    }
    return true;
}

int vgc_pool_preempt_windows(struct vgc_pool *pool, uint32_t sec)
{
    int marked = 0;

    pool_lock(pool);
    for (int s = 0; s < pool->nslots; s++) {
        int t = atomic_load(&pool->slots[s].tenant);
        bool holds;

        if (!atomic_load(&pool->slot_taken[s]) || t < 0 || t >= pool->nslots ||
            vgc_pool_window_open(&pool->tenants[t].who, sec)) {
            continue;
        }
        /* Swapping out, or out: it holds the context it comes back to,
         * and nothing on the device. */
        if (atomic_load(&pool->slots[s].swap) != VGC_SWAP_NONE) {
            continue;
        }
        /* A process without a context holds no GPU: it stays, and is
         * refused one (vgc_pool_in_window). */
        holds = atomic_load(&pool->slots[s].vctx) != 0;
        for (int d = 0; d < pool->ndevices && !holds; d++) {
            holds = atomic_load(&pool->used[(size_t)s * pool->ndevices + d]) != 0;
        }
        if (holds && pool_mark(pool, s, VGC_PREEMPT_WINDOW, -1, -1)) {
            marked++;
        }
    }
    pool_unlock(pool);
    return marked;
}

bool vgc_pool_preempt_take(struct vgc_pool *pool, int slot, struct vgc_pool_preemption *out)
{
    struct pool_slot *sl;
    uint32_t v;
    int t, by;

    if (slot < 0 || slot >= pool->nslots) {
        return false;
    }
    sl = &pool->slots[slot];
    v = atomic_load(&sl->preempt);
    do {
        if (!(v & PREEMPT_REASON) || (v & PREEMPT_TAKEN)) {
            return false;
        }
    } while (!atomic_compare_exchange_weak(&sl->preempt, &v, v | PREEMPT_TAKEN));
    memset(out, 0, sizeof(*out));
    out->reason = (int)(v & PREEMPT_REASON);
    out->dev = out->reason != VGC_PREEMPT_WINDOW ? atomic_load(&sl->preempt_dev) : -1;
    pool_lock(pool);
    t = atomic_load(&sl->tenant);
    by = atomic_load(&sl->preempt_by);
    if (t >= 0 && t < pool->nslots) {
        const struct vgc_tenant *who = &pool->tenants[t].who;

        memcpy(out->tenant, who->name, sizeof(out->tenant));
        out->priority = who->priority;
        out->window_from = who->window_from;
        out->window_to = who->window_to;
        out->idle = who->idle;
    }
    /* For the log only: the needing tenant may be gone by now. */
    if (out->reason != VGC_PREEMPT_WINDOW && by >= 0 && by < pool->nslots &&
        pool->tenants[by].slots) {
        memcpy(out->by, pool->tenants[by].who.name, sizeof(out->by));
        out->by_priority = pool->tenants[by].who.priority;
    }
    pool_unlock(pool);
    out->tenant[sizeof(out->tenant) - 1] = out->by[sizeof(out->by) - 1] = '\0';
    for (int d = 0; d < pool->ndevices; d++) {
        out->used += atomic_load(&pool->used[(size_t)slot * pool->ndevices + d]);
    }
    return true;
}

void vgc_pool_preempt_spare(struct vgc_pool *pool, int slot)
{
    if (slot < 0 || slot >= pool->nslots) {
        return;
    }
    /* Locked, as marks are made; a later reservation may mark it again. */
    pool_lock(pool);
    if ((atomic_load(&pool->slots[slot].preempt) & PREEMPT_REASON) == VGC_PREEMPT_IDLE &&
        atomic_load(&pool->slots[slot].swap) == VGC_SWAP_NONE) {
        atomic_store(&pool->slots[slot].preempt, 0);
    }
    pool_unlock(pool);
}

int vgc_pool_preempt_waiting(const struct vgc_pool *pool)
{
    int n = 0;

    for (int s = 0; s < pool->nslots; s++) {
        uint32_t v = atomic_load(&pool->slots[s].preempt);

        n += atomic_load(&pool->slot_taken[s]) && (v & PREEMPT_REASON) && !(v & PREEMPT_TAKEN);
    }
    return n;
}

static void pool_describe(const struct vgc_pool_preemption *p, bool swap, char *buf,
                          size_t size)
{
    const char *me = p->tenant[0] ? p->tenant : "(unnamed)";
    double mib = (double)p->used / (1 << 20);

    const char *verb = swap ? "swapping out" : "preempted";
    const char *what = swap ? "moves" : "frees";
    const char *where = swap ? " to host RAM" : "";

    if (p->reason == VGC_PREEMPT_MEMORY) {
        snprintf(buf, size, "%s tenant %s (priority %u): memory for tenant %s "
                 "(priority %u) on device %d; %s %.1f MiB%s", verb, me, p->priority,
                 p->by[0] ? p->by : "(unnamed)", p->by_priority, p->dev, what, mib, where);
    } else if (p->reason == VGC_PREEMPT_IDLE) {
        snprintf(buf, size, "%s tenant %s (priority %u): no call for %us (idle=), and "
                 "tenant %s (priority %u) needs memory on device %d; %s %.1f MiB%s", verb, me,
                 p->priority, p->idle, p->by[0] ? p->by : "(unnamed)", p->by_priority, p->dev,
                 what, mib, where);
    } else if (p->reason == VGC_PREEMPT_WINDOW) {
        snprintf(buf, size, "%s tenant %s (priority %u): its window "
                 "%02u:%02u:%02u-%02u:%02u:%02u closed; %s %.1f MiB on every device%s",
                 verb, me, p->priority, p->window_from / 3600, p->window_from / 60 % 60,
                 p->window_from % 60, p->window_to / 3600, p->window_to / 60 % 60,
                 p->window_to % 60, what, mib, where);
    } else {
        snprintf(buf, size, "not preempted");
    }
}

void vgc_pool_preemption_describe(const struct vgc_pool_preemption *p, char *buf, size_t size)
{
    pool_describe(p, false, buf, size);
}

void vgc_pool_swap_describe(const struct vgc_pool_preemption *p, char *buf, size_t size)
{
    pool_describe(p, true, buf, size);
}

enum vgc_pool_verdict vgc_pool_preempt_verdict(struct vgc_pool *pool, int slot,
                                               const struct vgc_pool_preemption *p,
                                               char *why, size_t size)
{
    size_t len;

    if (vgc_pool_swap_ask(pool, slot)) {
        vgc_pool_swap_describe(p, why, size);
        return VGC_POOL_SWAP_OUT;
    }
    /* Chosen for being idle, but the room went to another meanwhile:
     * idleness never ends a process. */
    if (p->reason == VGC_PREEMPT_IDLE) {
        vgc_pool_preempt_spare(pool, slot);
        snprintf(why, size, "idle, but its memory no longer fits in what is left of "
                 "--swap; left running");
        return VGC_POOL_LEAVE;
    }
    vgc_pool_preemption_describe(p, why, size);
    len = strlen(why);
    if (pool->swap_room && len < size) {
        snprintf(why + len, size - len, " (not swapped out: its executor cannot swap, or its "
                 "memory does not fit in what is left of --swap)");
    }
    return VGC_POOL_END;
}

/* ---- swapping instead of ending -------------------------------------------- */

void vgc_pool_set_swap(struct vgc_pool *pool, uint64_t bytes)
{
    pool->swap_room = bytes;
}

uint64_t vgc_pool_swap_room(const struct vgc_pool *pool)
{
    return pool->swap_room;
}

uint64_t vgc_pool_swapped(const struct vgc_pool *pool, int dev)
{
    uint64_t sum = 0;

    if (dev < -1 || dev >= pool->ndevices) {
        return 0;
    }
    for (int s = 0; s < pool->nslots; s++) {
        for (int d = 0; d < pool->ndevices; d++) {
            if (dev < 0 || d == dev) {
                sum += atomic_load(&pool->swapped[(size_t)s * pool->ndevices + d]);
            }
        }
    }
    return sum;
}

uint64_t vgc_pool_slot_swapped(const struct vgc_pool *pool, int slot)
{
    return pool_slot_sum(pool, pool->swapped, slot);
}

uint64_t vgc_pool_identity_swapped(const struct vgc_pool *pool, const struct vgc_tenant *who,
                                   int *nout)
{
    uint64_t sum = 0;
    int n = 0;

    for (int s = 0; s < pool->nslots; s++) {
        if (pool_slot_is(pool, s, who)) {
            sum += vgc_pool_slot_swapped(pool, s);
            n += atomic_load(&pool->slots[s].swap) == VGC_SWAP_OUT;
        }
    }
    if (nout) {
        *nout = n;
    }
    return sum;
}

int vgc_pool_swap_state(const struct vgc_pool *pool, int slot)
{
    if (slot < 0 || slot >= pool->nslots) {
        return VGC_SWAP_NONE;
    }
    return (int)atomic_load(&pool->slots[slot].swap);
}

bool vgc_pool_swap_ask(struct vgc_pool *pool, int slot)
{
    struct pool_slot *sl;
    uint32_t none = VGC_SWAP_NONE;
    uint64_t mine, all;

    if (slot < 0 || slot >= pool->nslots || !pool->swap_room) {
        return false;
    }
    sl = &pool->slots[slot];
    if (!atomic_load(&sl->can_swap) || !atomic_load(&pool->slot_taken[slot])) {
        return false;
    }
    /* A first look: the worker counts itself in the room when it moves,
     * and is ended then if others were quicker. */
    mine = vgc_pool_slot_used(pool, slot);
    all = vgc_pool_swapped(pool, -1);
    if (all > pool->swap_room || mine > pool->swap_room - all) {
        return false;
    }
    return atomic_compare_exchange_strong(&sl->swap, &none, VGC_SWAP_ASKED);
}

void vgc_pool_swap_called(struct vgc_pool *pool, int slot)
{
    if (slot >= 0 && slot < pool->nslots) {
        atomic_store(&pool->slots[slot].called, 1);
    }
}

bool vgc_pool_swap_call_waiting(const struct vgc_pool *pool)
{
    return pool_bound(pool) && atomic_load(&pool->slots[pool->bound_slot].called);
}

bool vgc_pool_swap_give_up(struct vgc_pool *pool, int slot)
{
    struct pool_slot *sl;
    uint32_t asked = VGC_SWAP_ASKED;
    bool spared = false;

    if (slot < 0 || slot >= pool->nslots) {
        return false;
    }
    sl = &pool->slots[slot];
    /* Asked for being idle, and not begun: a call came in first (it was
     * between calls when chosen), so it is not idle any more.  It is
     * never ended for idleness: unmarked, it goes on as if never asked;
     * its worker finds nothing to do at its next safe point. */
    pool_lock(pool);
    if ((atomic_load(&sl->preempt) & PREEMPT_REASON) == VGC_PREEMPT_IDLE &&
        atomic_compare_exchange_strong(&sl->swap, &asked, VGC_SWAP_NONE)) {
        atomic_store(&sl->preempt, 0);
        spared = true;
    }
    pool_unlock(pool);
    if (spared) {
        return false;
    }
    asked = VGC_SWAP_ASKED;
    return atomic_compare_exchange_strong(&sl->swap, &asked, VGC_SWAP_GIVEN_UP);
}

void vgc_pool_set_swappable(struct vgc_pool *pool, bool can)
{
    if (pool_bound(pool)) {
        atomic_store(&pool->slots[pool->bound_slot].can_swap, can ? 1 : 0);
    }
}

int vgc_pool_bound_slot(const struct vgc_pool *pool)
{
    return pool_bound(pool) ? pool->bound_slot : -1;
}

uint64_t vgc_pool_swapped_mine(const struct vgc_pool *pool, int dev)
{
    uint64_t sum = 0;

    if (!pool_bound(pool) || dev < -1 || dev >= pool->ndevices) {
        return 0;
    }
    for (int d = 0; d < pool->ndevices; d++) {
        if (dev < 0 || d == dev) {
            sum += atomic_load(&pool->swapped[(size_t)pool->bound_slot * pool->ndevices + d]);
        }
    }
    return sum;
}

int vgc_pool_swap_reason(const struct vgc_pool *pool)
{
    if (!pool_bound(pool)) {
        return VGC_PREEMPT_NONE;
    }
    return (int)(atomic_load(&pool->slots[pool->bound_slot].preempt) & PREEMPT_REASON);
}

int vgc_pool_swap_device(const struct vgc_pool *pool)
{
    const struct pool_slot *sl;
    uint32_t reason;

    if (!pool_bound(pool)) {
        return -1;
    }
    sl = &pool->slots[pool->bound_slot];
    reason = atomic_load(&sl->preempt) & PREEMPT_REASON;
    if (reason == VGC_PREEMPT_NONE || reason == VGC_PREEMPT_WINDOW) {
        return -1;
    }
    return atomic_load(&sl->preempt_dev);
}

bool vgc_pool_swap_wanted(const struct vgc_pool *pool)
{
    return pool_bound(pool) &&
           atomic_load(&pool->slots[pool->bound_slot].swap) == VGC_SWAP_ASKED;
}

bool vgc_pool_swap_begin(struct vgc_pool *pool)
{
    uint32_t asked = VGC_SWAP_ASKED;

    return pool_bound(pool) &&
           atomic_compare_exchange_strong(&pool->slots[pool->bound_slot].swap, &asked,
                                          VGC_SWAP_MOVING);
}

/* The bound slot's row of swapped bytes on @dev. */
static _Atomic uint64_t *pool_swap_row(struct vgc_pool *pool, int dev)
{
    return &pool->swapped[(size_t)pool->bound_slot * pool->ndevices + dev];
}

bool vgc_pool_swap_hold(struct vgc_pool *pool)
{
    return vgc_pool_swap_hold_part(pool, NULL);
}

bool vgc_pool_swap_hold_part(struct vgc_pool *pool, const uint64_t *bytes)
{
    if (!pool_bound(pool) || !pool->swap_room) {
        return false;
    }
    /* Add, then look, as a reservation does: racing workers never
     * overfill the room.  Never more than the device holds for the slot:
     * vgc_pool_swap_moved gives exactly this back to the device. */
    for (int d = 0; d < pool->ndevices; d++) {
        uint64_t held = atomic_load(pool_row(pool, d));

        atomic_fetch_add(pool_swap_row(pool, d), bytes && bytes[d] < held ? bytes[d] : held);
    }
    if (vgc_pool_swapped(pool, -1) > pool->swap_room) {
        vgc_pool_swap_unhold(pool);
        return false;
    }
    return true;
}

void vgc_pool_swap_unhold(struct vgc_pool *pool)
{
    if (!pool_bound(pool)) {
        return;
    }
    for (int d = 0; d < pool->ndevices; d++) {
        atomic_store(pool_swap_row(pool, d), 0);
    }
}

void vgc_pool_swap_moved(struct vgc_pool *pool)
{
    if (!pool_bound(pool)) {
        return;
    }
    /* Only this worker writes its rows, and it is between calls. */
    for (int d = 0; d < pool->ndevices; d++) {
        vgc_pool_release(pool, d, atomic_load(pool_swap_row(pool, d)));
    }
    atomic_store(&pool->slots[pool->bound_slot].swap, VGC_SWAP_OUT);
}

bool vgc_pool_swap_may_return(struct vgc_pool *pool, uint32_t sec)
{
    const struct pool_tenant *me = pool_my_tenant(pool);
    uint64_t now;
    int mine;

    if (!me || atomic_load(&pool->slots[pool->bound_slot].swap) != VGC_SWAP_OUT ||
        !vgc_pool_window_open(&me->who, sec)) {
        return false;
    }
    mine = atomic_load(&pool->slots[pool->bound_slot].tenant);
    now = vgc_pool_clock();
    for (int d = 0; d < pool->ndevices; d++) {
        uint64_t want = atomic_load(pool_swap_row(pool, d));
        uint64_t used = vgc_pool_used(pool, d), lower = 0;

        if (!want) {
            continue;
        }
        for (int s = 0; s < pool->nslots; s++) {
            struct pool_slot *sl = &pool->slots[s];
            int t = atomic_load(&sl->tenant);
            uint64_t until = atomic_load(&sl->wait_until);

            if (s == pool->bound_slot || !atomic_load(&pool->slot_taken[s]) || t < 0 ||
                t >= pool->nslots) {
                continue;
            }
            /* Room that a reservation of equal or higher priority is
             * waiting for (the one this slot was swapped out for, as
             * like as not) is taken already. */
            if (until > now && atomic_load(&sl->wait_dev) == d &&
                pool->tenants[t].who.priority >= me->who.priority) {
                used += atomic_load(&sl->wait_bytes);
            }
            /* What a reservation of this priority could take back. */
            if (t != mine && pool->tenants[t].who.priority < me->who.priority) {
                lower += atomic_load(&pool->used[(size_t)s * pool->ndevices + d]);
            }
        }
        if (used + want > pool->admit && used + want - pool->admit > lower) {
            return false;
        }
    }
    return true;
}

bool vgc_pool_swap_reserve(struct vgc_pool *pool)
{
    int d;

    if (!pool_bound(pool)) {
        return false;
    }
    for (d = 0; d < pool->ndevices; d++) {
        uint64_t want = atomic_load(pool_swap_row(pool, d));

        /* No limit: the tenant's limit counted these bytes all along. */
        if (want && !pool_reserve_preempting(pool, d, want, 0)) {
            break;
        }
    }
    if (d == pool->ndevices) {
        return true;
    }
    while (d-- > 0) {
        vgc_pool_release(pool, d, atomic_load(pool_swap_row(pool, d)));
    }
    return false;
}

bool vgc_pool_swap_volunteer(struct vgc_pool *pool)
{
    uint32_t none = VGC_SWAP_NONE;

    return pool_bound(pool) && pool->swap_room &&
           atomic_compare_exchange_strong(&pool->slots[pool->bound_slot].swap, &none,
                                          VGC_SWAP_MOVING);
}

void vgc_pool_swap_withdraw(struct vgc_pool *pool)
{
    uint32_t moving = VGC_SWAP_MOVING;

    if (pool_bound(pool)) {
        atomic_compare_exchange_strong(&pool->slots[pool->bound_slot].swap, &moving,
                                       VGC_SWAP_NONE);
    }
}

void vgc_pool_swap_unreserve(struct vgc_pool *pool)
{
    if (!pool_bound(pool)) {
        return;
    }
    for (int d = 0; d < pool->ndevices; d++) {
        vgc_pool_release(pool, d, atomic_load(pool_swap_row(pool, d)));
    }
}

void vgc_pool_swap_returned(struct vgc_pool *pool)
{
    struct pool_slot *sl;

    if (!pool_bound(pool)) {
        return;
    }
    sl = &pool->slots[pool->bound_slot];
    for (int d = 0; d < pool->ndevices; d++) {
        atomic_store(pool_swap_row(pool, d), 0);
    }
    /* Unmarked under the lock, as marks are made: a later preemption or
     * window marks it again. */
    pool_lock(pool);
    atomic_store(&sl->preempt, 0);
    atomic_store(&sl->called, 0);
    atomic_store(&sl->swap, VGC_SWAP_NONE);
    pool_unlock(pool);
}
