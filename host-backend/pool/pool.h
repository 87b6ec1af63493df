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
 * Policy belongs here and nowhere else (docs/pool.md).  A tenant is
 * everybody who came through one listener with one identity; the options
 * of that listener (vgcd --listen ADDR,memory=SIZE,gpus=N,name=NAME) are
 * its policy:
 *  - memory: a hard limit on what the tenant holds on each of its GPUs,
 *    summed over all its slots.  Reservation adds first and checks after,
 *    so the limit (and a device's capacity) is never exceeded, even by
 *    racing workers; the price is that two racers near the limit may both
 *    be refused where one of them would have fit.
 *  - gpus: the tenant sees N virtual GPUs.  Virtual GPU v is bound to a
 *    physical device while any slot of the tenant has a context on it
 *    (vgc_pool_acquire, vgc_pool_set_contexts) and unbound when the last
 *    such slot lets go or is cleared.  Placement: the device with the
 *    fewest tenants bound, then the most free memory, never one the
 *    tenant already holds.  Without gpus every device is the tenant's,
 *    virtual v being physical v.
 *  - priority: when a reservation fails only because the device is full,
 *    the pool takes memory back from tenants of lower priority (never
 *    equal or higher): it marks victim slots, lowest priority first, then
 *    the most memory, just enough of them; whoever owns their processes
 *    ends them (vgc_pool_preempt_take), and the reservation waits a
 *    bounded time for the memory and is tried once more.
 *  - window: the tenant holds GPUs only inside a daily window of local
 *    time; outside it, new contexts are refused (vgc_pool_in_window) and
 *    its slots that hold a context or memory are marked for preemption
 *    (vgc_pool_preempt_windows, by the daemon's timer).
 *  - share: a weight for compute time.  While tenants contend for a
 *    device and one of them has a share, a slot whose tenant has used
 *    more of the device's recent compute time, for its weight, than
 *    another contending tenant is told to hold back its next kernel
 *    (vgc_pool_share_wait); nobody is held back behind a tenant that has
 *    no work on the device, so a lone tenant gets all of it.
 *  - idle: with --swap, a slot of the tenant that has made no call for
 *    that many seconds is the first victim when a device is full, even of
 *    a tenant of lower or equal priority - but only to be swapped out,
 *    never ended: one that could not be (no room left, an executor that
 *    cannot) is chosen by priority as before (vgc_pool_choose_victims).
 *    Its worker brings it back when its client calls again.
 *  - swap: with vgcd --swap SIZE, a marked slot's process may be swapped
 *    out instead of ended: its device memory moves to host RAM (at most
 *    SIZE for the whole pool, vgc_pool_swap_ask) and its process waits
 *    until its memory fits on the device again without taking it from
 *    anyone of equal or higher priority, and its window is open
 *    (vgc_pool_swap_may_return).  Swapped bytes are on no device: they do
 *    not count in a device's use, but do in the tenant's limit, so its
 *    own processes cannot take the room it needs to come back.
 * The pool ends no process itself: it marks slots, and wakes the process
 * named by vgc_pool_set_preempter (vgcd) with SIGUSR1.
 * The tenant table, the bindings and the slots' context masks change
 * under one process-shared robust mutex; what the table says about
 * bindings and holders is recomputed from the slots after each change, so
 * a worker that dies anywhere, even holding the lock, leaves nothing bound
 * or counted once its slot is cleared.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_POOL_H
#define VGC_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VGC_POOL_MAX_DEVICES 64
/* How long a reservation waits for the memory of the slots it preempted. */
#define VGC_POOL_PREEMPT_WAIT_MS 2000

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
    uint32_t listener;          /* the listener it came through, also part of
                                   the identity: one uid on two listeners
                                   is two tenants */
    /* The listener's policy, copied into the tenant table when the
     * tenant's first slot is claimed (same identity, same listener, same
     * policy). */
    uint64_t memory;            /* bytes per GPU, 0: up to the device's capacity */
    uint32_t gpus;              /* virtual GPUs bound on demand, 0: every device */
    char name[32];              /* display name, "" for none */
    uint32_t priority;          /* 0..VGC_POOL_PRIORITY_MAX, higher wins; vgcd's
                                   listeners default to VGC_POOL_PRIORITY_DEFAULT */
    bool window;                /* holds GPUs only from window_from to window_to */
    uint32_t window_from;       /* seconds after local midnight, < 86400; */
    uint32_t window_to;         /* from > to: the window wraps midnight */
    uint32_t share;             /* compute weight 1..VGC_POOL_SHARE_MAX, 0: not
                                   given (weighs VGC_POOL_SHARE_DEFAULT, and
                                   asks for no enforcement: vgc_pool_share_wait) */
    uint32_t idle;              /* seconds without a call after which its
                                   processes are swapped out first when a
                                   device is full (needs --swap), 0: never */
};

#define VGC_POOL_PRIORITY_DEFAULT 50
#define VGC_POOL_PRIORITY_MAX     100
#define VGC_POOL_SHARE_DEFAULT    100
#define VGC_POOL_SHARE_MAX        1000
/* idle= at most a week: longer is as good as never, and the nanoseconds
 * it makes fit in 64 bits with room to spare. */
#define VGC_POOL_IDLE_MAX         (7u * 24 * 3600)

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
 * Oversubscription: let @bytes of host RAM per device back device memory
 * once a device's capacity is allocated (vgcd --oversubscribe), so that
 * jobs that do not all fit still run together.  Reservations then succeed
 * up to capacity + @bytes per device; what the tenants see stays the
 * device's capacity (cuMemGetInfo's free is 0 past it), as on a GPU whose
 * driver pages memory to the host.  Called before the first fork.
 */
void vgc_pool_set_oversubscription(struct vgc_pool *pool, uint64_t bytes);
/* Bytes of @dev's allocations past its capacity (backed by host RAM). */
uint64_t vgc_pool_spilled(const struct vgc_pool *pool, int dev);

/*
 * Swapping: let up to @bytes of host RAM, for the whole pool, hold the
 * device memory of preempted processes instead of ending them (vgcd
 * --swap).  0, the default: preemption ends processes.  Called before
 * the first fork.
 */
void vgc_pool_set_swap(struct vgc_pool *pool, uint64_t bytes);
/* The room given to vgc_pool_set_swap. */
uint64_t vgc_pool_swap_room(const struct vgc_pool *pool);
/* Bytes swapped out of @dev to host RAM, all processes together; @dev -1:
 * of every device (what the room holds now). */
uint64_t vgc_pool_swapped(const struct vgc_pool *pool, int dev);

/*
 * In the daemon (or a VM's worker, for its guest sessions): find a free
 * slot for a new worker serving @tenant (copied; NULL: nobody's).  Slots
 * with the same identity share one entry of the tenant table, and its
 * limits.  Returns the slot, or -1 when all are taken (errno EAGAIN) or
 * @tenant asks for more GPUs than the pool has (EINVAL).
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

/*
 * Reserve @bytes on physical device @dev for the bound slot; false when
 * the device or the tenant's limit would be exceeded.  Never exceeds
 * either, with any number of racing workers (see the top of this file).
 * When only the device is full and tenants of lower priority hold memory
 * on it, marks victims (vgc_pool_choose_victims), waits up to
 * VGC_POOL_PREEMPT_WAIT_MS for their memory and tries once more.
 */
bool vgc_pool_reserve(struct vgc_pool *pool, int dev, uint64_t bytes);
void vgc_pool_release(struct vgc_pool *pool, int dev, uint64_t bytes);

/* Bytes in use on @dev by all workers. */
uint64_t vgc_pool_used(const struct vgc_pool *pool, int dev);
/* Bytes the bound slot's tenant holds on @dev, summed over its slots. */
uint64_t vgc_pool_tenant_used(const struct vgc_pool *pool, int dev);
/*
 * @dev's capacity as the bound slot's tenant sees it: the device's, or the
 * tenant's limit when lower (cuDeviceTotalMem, cuMemGetInfo's total).
 */
uint64_t vgc_pool_capacity(const struct vgc_pool *pool, int dev);
/* The bound slot's tenant's limit per GPU (memory=), 0 for none. */
uint64_t vgc_pool_limit(const struct vgc_pool *pool);
/*
 * What the bound slot's tenant may still allocate on @dev: the lesser of
 * its limit less its use and the device's capacity less everybody's use
 * (cuMemGetInfo's free).
 */
uint64_t vgc_pool_free(const struct vgc_pool *pool, int dev);

/* ---- virtual GPUs of the bound slot's tenant ------------------------------ */

/*
 * The tenant's device table: how many virtual GPUs it has (returned), and
 * in @phys[v] (for v < @max) the physical device that answers for v now:
 * the one v is bound to, or while unbound a representative that no other
 * virtual GPU of the tenant maps to (the pool is homogeneous), so the
 * table is one-to-one and can be read backwards.  Unbound slot: every
 * device, identity.
 */
int vgc_pool_device_map(struct vgc_pool *pool, int *phys, int max);
/*
 * A context is about to be made on virtual GPU @vdev: bind it if it is
 * not bound (placement above) and count the bound slot as holding it
 * until vgc_pool_set_contexts says otherwise.  *@placed (may be NULL) says
 * whether this call chose a device (a gpus= tenant's new binding).
 * Returns the physical device, or -1 for a @vdev the tenant does not have.
 */
int vgc_pool_acquire(struct vgc_pool *pool, int vdev, bool *placed);

/* ---- what NVML reports (all for the bound slot; no-ops when unbound) ---- */

/* The client's pid, as its handshake gave it (the guest's own numbering). */
void vgc_pool_set_pid(struct vgc_pool *pool, uint32_t pid);
/*
 * The virtual GPUs the client has a context on: bit v for virtual GPU v.
 * Those it no longer has are let go (unbound when no slot of the tenant
 * holds them), those it has newly are bound as by vgc_pool_acquire.
 * Returns the virtual GPUs of a gpus= tenant that this call unbound.
 */
uint64_t vgc_pool_set_contexts(struct vgc_pool *pool, uint64_t devices);

/* ---- priorities, windows and preemption ------------------------------------ */

/* Seconds since local midnight now (localtime), the clock of windows. */
uint32_t vgc_pool_time_of_day(void);
/* Whether @t may hold GPUs at @sec seconds after midnight: no window, or
 * inside [from, to), wrapping midnight when from > to. */
bool vgc_pool_window_open(const struct vgc_tenant *t, uint32_t sec);
/* Whether the bound slot's tenant may make a context at @sec (true when
 * unbound).  When not, its window into @from / @to (may be NULL). */
bool vgc_pool_in_window(const struct vgc_pool *pool, uint32_t sec, uint32_t *from,
                        uint32_t *to);

/* A slot that holds memory on the device being reserved on. */
struct vgc_pool_holder {
    int slot;
    uint32_t priority;          /* its tenant's */
    uint64_t used;              /* bytes it holds on that device */
    /* Idle past its tenant's idle= and swappable (its executor can, it is
     * between calls): a victim whatever its priority, if it fits the room. */
    bool idle;
    uint64_t idle_ns;           /* for how long */
    uint64_t total;             /* bytes it holds on all devices: what it swaps */
};

/*
 * Victim choice, the pure part of preemption: sorts @h (@n entries) so
 * that the slots to preempt, if any, come first, and returns how many of
 * them free at least @need bytes together, taking as few as that order
 * allows.  First the idle ones whose memory (total) fits, one after the
 * other, in @room (the swap room left): the longest idle first, then the
 * most memory; an idle one that does not fit is not idle here.  Then those
 * of priority below @priority, lowest priority first, then the most
 * memory; the lowest slot breaks ties.  0 when even all of them would not
 * free @need (nobody is preempted for nothing) or @need is 0.  Entries
 * left idle after the call are the ones to swap out for being idle.
 */
int vgc_pool_choose_victims(struct vgc_pool_holder *h, int n, uint32_t priority,
                            uint64_t need, uint64_t room);

/*
 * In the worker, at the start and the end of each call (one relaxed store
 * each): @in_call says which; a slot counts as idle only between calls,
 * for the time since its last call ended (or since it was bound).
 */
void vgc_pool_touch(struct vgc_pool *pool, bool in_call);
/* Nanoseconds slot @slot has been without a call at @now, 0 while in one
 * or when it is not taken (status). */
uint64_t vgc_pool_slot_idle(const struct vgc_pool *pool, int slot, uint64_t now);

/*
 * The process woken with SIGUSR1 when slots are marked for preemption
 * (vgcd itself); 0, the default: nobody, marks wait to be polled.
 */
void vgc_pool_set_preempter(struct vgc_pool *pool, pid_t pid);

enum vgc_pool_preempt_reason {
    VGC_PREEMPT_NONE = 0,
    VGC_PREEMPT_MEMORY,         /* a tenant of higher priority needs the memory */
    VGC_PREEMPT_WINDOW,         /* its tenant's window closed */
    VGC_PREEMPT_IDLE,           /* idle past its idle=, and the memory is needed:
                                   swapped out, never ended (vgc_pool_preempt_spare) */
};

/* What vgc_pool_preempt_take tells whoever ends the slot's process. */
struct vgc_pool_preemption {
    int reason;                 /* enum vgc_pool_preempt_reason */
    int dev;                    /* memory, idle: the device; window: -1 (every device) */
    char tenant[32];            /* the victim's tenant name, "" for none */
    uint32_t priority;          /* and its priority */
    char by[32];                /* memory, idle: the tenant that needed it */
    uint32_t by_priority;
    uint32_t window_from, window_to;    /* window: the victim's window */
    uint32_t idle;                      /* idle: the victim's idle= */
    uint64_t used;              /* bytes the slot holds, all devices together */
};

/*
 * In the daemon, every second: mark each slot of a tenant outside its
 * window at @sec that holds a context or memory.  Returns how many slots
 * it marked now (not those marked before).
 */
int vgc_pool_preempt_windows(struct vgc_pool *pool, uint32_t sec);
/*
 * In whoever ends slot @slot's process (the daemon for its socket
 * workers, a VM's worker for its guest sessions): whether the slot is
 * marked and nobody took it yet; if so it is taken now (once: a later
 * call says false until the slot is cleared and marked again) and *@out
 * says why, for the log.  The caller then ends the process and, once it
 * is reaped, clears the slot as for any other end.
 */
bool vgc_pool_preempt_take(struct vgc_pool *pool, int slot, struct vgc_pool_preemption *out);
/*
 * In the owner, for an idle mark (VGC_PREEMPT_IDLE) whose slot could not be
 * asked to swap out after all (vgc_pool_swap_ask said false: the room was
 * taken meanwhile): forget the mark, and leave the process running.  An
 * idle process is never ended for being idle.
 */
void vgc_pool_preempt_spare(struct vgc_pool *pool, int slot);
/* How many slots are marked and not yet taken (the daemon wakes VM
 * workers while there are). */
int vgc_pool_preempt_waiting(const struct vgc_pool *pool);
/* One line (no newline) saying why and how much: for the log. */
void vgc_pool_preemption_describe(const struct vgc_pool_preemption *p, char *buf, size_t size);
/* The same for a preemption carried out by swapping the process out. */
void vgc_pool_swap_describe(const struct vgc_pool_preemption *p, char *buf, size_t size);

/* What the owner of a slot it took (vgc_pool_preempt_take) does next. */
enum vgc_pool_verdict {
    VGC_POOL_SWAP_OUT,          /* asked to swap out: send SIGUSR2, end it if it
                                   has not begun by VGC_POOL_SWAP_GRACE_MS */
    VGC_POOL_LEAVE,             /* an idle mark whose room went to another:
                                   spared, left running */
    VGC_POOL_END,               /* end it (SIGKILL) */
};
/*
 * Decide for @slot, taken with @p: swap it out when it can be asked to
 * (vgc_pool_swap_ask), else spare an idle one (vgc_pool_preempt_spare),
 * else end it.  @why receives the line to log, whatever the verdict.
 * One decision for both owners: vgcd for its socket workers, a VM's worker
 * for its guest sessions.
 */
enum vgc_pool_verdict vgc_pool_preempt_verdict(struct vgc_pool *pool, int slot,
                                               const struct vgc_pool_preemption *p,
                                               char *why, size_t size);

/* ---- swapping instead of ending (vgcd --swap) ----------------------------- */

/*
 * A slot's way through a swap.  Its owner (who takes its marks) asks; its
 * worker moves the memory at its next safe point (between calls), waits,
 * and brings it back; its owner ends a process that did not begin in time.
 */
enum vgc_pool_swap_state {
    VGC_SWAP_NONE = 0,          /* its memory is on its devices */
    VGC_SWAP_ASKED,             /* asked to swap out, not begun yet */
    VGC_SWAP_MOVING,            /* its worker is moving the memory out */
    VGC_SWAP_OUT,               /* in host RAM; the process waits to return */
    VGC_SWAP_GIVEN_UP,          /* did not begin in time: its owner ends it */
};

/*
 * In the owner, for a mark it took (vgc_pool_preempt_take): whether slot
 * @slot's process is to be swapped out rather than ended - swapping is
 * on (vgc_pool_set_swap), its executor can (vgc_pool_set_swappable) and
 * what it holds fits in what is left of the room now.  If so the slot is
 * VGC_SWAP_ASKED, and the owner wakes its worker (SIGUSR2); if not, the
 * owner ends the process as before.  The room is not taken here: the
 * worker takes it when it moves (vgc_pool_swap_hold).
 */
bool vgc_pool_swap_ask(struct vgc_pool *pool, int slot);
/*
 * In the owner, when the grace after vgc_pool_swap_ask is over: true when
 * the worker has not begun (the slot is now VGC_SWAP_GIVEN_UP, and the
 * owner ends the process); false when it began or is done, in which case
 * it is left to finish, or when it was asked for being idle: a call came
 * in meanwhile, so it is idle no more, and is left running, unmarked.
 */
bool vgc_pool_swap_give_up(struct vgc_pool *pool, int slot);
/*
 * In the owner of a VM's guest session, which holds the session's calls
 * while it is away: a call for slot @slot came and is held.  A session
 * swapped out for being idle comes back only then: its own socket sees
 * nothing until it is back (vgc_pool_swap_call_waiting).
 */
void vgc_pool_swap_called(struct vgc_pool *pool, int slot);
/* Slot @slot's state (enum vgc_pool_swap_state). */
int vgc_pool_swap_state(const struct vgc_pool *pool, int slot);
/* Bytes slot @slot has swapped out, all devices together. */
uint64_t vgc_pool_slot_swapped(const struct vgc_pool *pool, int slot);
/* Bytes swapped out by every slot whose client is @who (a VM's sessions),
 * and into *@nout (may be NULL) how many of those slots are out. */
uint64_t vgc_pool_identity_swapped(const struct vgc_pool *pool, const struct vgc_tenant *who,
                                   int *nout);

/* In the worker, all for the bound slot: */
/* Whether its executor can swap (struct vgc_executor's swap_out); set once
 * the executor is made.  A slot that cannot is ended when preempted. */
void vgc_pool_set_swappable(struct vgc_pool *pool, bool can);
/* The bound slot (vgc_pool_bind), -1 for none. */
int vgc_pool_bound_slot(const struct vgc_pool *pool);
/* Bytes it has swapped out from @dev; -1: from every device. */
uint64_t vgc_pool_swapped_mine(const struct vgc_pool *pool, int dev);
/* Why it was preempted (enum vgc_pool_preempt_reason), for its logs; an
 * idle one (VGC_PREEMPT_IDLE) returns only once its client calls again. */
int vgc_pool_swap_reason(const struct vgc_pool *pool);
/* The device whose memory it was preempted for; -1 for a window (every
 * device) or none. */
int vgc_pool_swap_device(const struct vgc_pool *pool);
/* Whether its owner holds a call for it (vgc_pool_swap_called) since it
 * last came back. */
bool vgc_pool_swap_call_waiting(const struct vgc_pool *pool);
/* Whether it is asked to swap out and has not begun: a cheap test,
 * made between calls. */
bool vgc_pool_swap_wanted(const struct vgc_pool *pool);
/* Begin: VGC_SWAP_ASKED becomes VGC_SWAP_MOVING.  False when it was not
 * asked, or its owner gave up on it (the process is being ended). */
bool vgc_pool_swap_begin(struct vgc_pool *pool);
/*
 * Count what the slot holds on each device in the swap room, before the
 * executor moves it: false, with nothing counted, when it does not fit
 * any more (the room is the pool's; others took it, or this process
 * grew since it was asked).  Until vgc_pool_swap_moved the bytes count
 * twice, on the device and in the room: never too little.
 */
bool vgc_pool_swap_hold(struct vgc_pool *pool);
/*
 * The same for an executor that moves only part of what the slot holds
 * (struct vgc_executor's swap_size: the cuda executor's window memory):
 * @bytes[d] of device d, at most what the slot holds there; NULL: all of
 * it.  The rest stays charged on its device while the slot is out, and
 * is no memory preemption's to take (it would free nothing).
 */
bool vgc_pool_swap_hold_part(struct vgc_pool *pool, const uint64_t *bytes);
/* The executor could not move the memory: give the room back. */
void vgc_pool_swap_unhold(struct vgc_pool *pool);
/* The executor moved it: the devices no longer hold it; VGC_SWAP_OUT. */
void vgc_pool_swap_moved(struct vgc_pool *pool);
/*
 * Whether the swapped-out slot may come back at @sec (seconds after
 * midnight): its tenant's window is open, and on each device its bytes
 * fit beside what is there and what reservations of equal or higher
 * priority are waiting for there (the one it was swapped out for, until
 * that one has its memory), or would once the processes of lower priority
 * there were preempted (never equal or higher ones).  The worker asks in
 * bounded steps (VGC_POOL_SWAP_POLL_MS).
 */
bool vgc_pool_swap_may_return(struct vgc_pool *pool, uint32_t sec);
/* Between two questions of a waiting worker. */
#define VGC_POOL_SWAP_POLL_MS 100
/*
 * How long an owner waits, after vgc_pool_swap_ask, for the worker to
 * begin (reach a safe point between calls, its device work done) before
 * it gives up and ends the process as without swapping.  A worker between
 * calls begins within microseconds; only one inside a long call (a
 * kernel) takes longer.  Half the wait of the reservation that preempts
 * (VGC_POOL_PREEMPT_WAIT_MS), so that the kill, the reap, or the copy of a
 * worker that did begin in time still fit in the other half.
 */
#define VGC_POOL_SWAP_GRACE_MS 1000
/*
 * Reserve its swapped bytes on their devices again, as an allocation
 * would (preempting lower priorities, waiting at most
 * VGC_POOL_PREEMPT_WAIT_MS for each device): false, with nothing
 * reserved, when some device has no room after all.
 */
bool vgc_pool_swap_reserve(struct vgc_pool *pool);
/*
 * Swapping asked for by the slot's own client (VGC_OP_SWAP: a remote
 * executor swapping the process it serves): VGC_SWAP_NONE becomes
 * VGC_SWAP_MOVING without a mark, and the worker goes on as for a
 * preemption (vgc_pool_swap_hold ... vgc_pool_swap_moved, and back with
 * vgc_pool_swap_may_return ... vgc_pool_swap_returned).  False when the
 * pool is swapping the slot itself, or there is no room at all.
 */
bool vgc_pool_swap_volunteer(struct vgc_pool *pool);
/* Its client's swap did not happen after all: VGC_SWAP_MOVING goes back
 * to VGC_SWAP_NONE (after vgc_pool_swap_unhold, when it held room). */
void vgc_pool_swap_withdraw(struct vgc_pool *pool);
/* The executor could not bring the memory back: undo the reservation. */
void vgc_pool_swap_unreserve(struct vgc_pool *pool);
/* It did: the room is free again, the slot VGC_SWAP_NONE and unmarked
 * (a later preemption marks it anew). */
void vgc_pool_swap_returned(struct vgc_pool *pool);

/* ---- compute shares ---------------------------------------------------------- */

/*
 * A tenant's use of a device is its compute busy time there (kernels and
 * the waits for them: vgc_pool_busy_begin/end with VGC_POOL_COMPUTE),
 * summed over its slots and decayed with this half-life, so that only the
 * last second or so counts; an interval still open counts up to now.
 */
#define VGC_POOL_SHARE_HALF_LIFE_NS (1ull << 29)        /* about 0.54 s */
/* The longest wait vgc_pool_share_wait asks for at once: the caller asks
 * again after it, so a change (the other tenant ended) is seen soon. */
#define VGC_POOL_SHARE_STEP_NS      50000000ull
/* The shortest, so that a waiting worker does not spin. */
#define VGC_POOL_SHARE_STEP_MIN_NS  100000ull
/* A slot told to wait counts as wanting the device this long after it
 * last asked; one that stopped asking (stopped, killed) soon does not. */
#define VGC_POOL_SHARE_STALE_NS     (2 * VGC_POOL_SHARE_STEP_NS)

/*
 * Before the bound slot issues device work on physical device @dev
 * (a kernel launch), at @now (vgc_pool_clock): how many nanoseconds it
 * should hold back first, 0 to go now.  The caller sleeps that long and
 * asks again, until 0.
 *
 * Tenants contend on @dev while they have work there: a compute call in
 * progress (a kernel, a synchronize) or a call held back by this function
 * (asked within VGC_POOL_SHARE_STALE_NS).  The answer is not 0 only when
 *  - the caller's tenant or a contending one has a share (tenants none of
 *    which has share= are left to the driver, as before shares existed), and
 *  - some other contending tenant has used less of @dev for its weight
 *    (use / weight, use decayed as above) than the caller's tenant;
 * the wait is then about the time that tenant needs, at full use of the
 * device, to catch up, within VGC_POOL_SHARE_STEP_MIN_NS..STEP_NS.  So a
 * lone tenant, or one behind which nobody waits, is never held back, and
 * the one with the least use for its weight always goes.  Processes of
 * one tenant never hold each other back.  A kernel that runs is never
 * interrupted: shares hold over intervals longer than the kernels.
 * While the answer is not 0 the bound slot counts as waiting for @dev.
 * 0 when unbound.
 */
uint64_t vgc_pool_share_wait(struct vgc_pool *pool, int dev, uint64_t now);

/* ---- the tenant table, for status and tests -------------------------------- */

struct vgc_pool_tenant_info {
    struct vgc_tenant tenant;           /* identity and policy */
    int slots;                          /* slots (processes) it has now */
    int gpus;                           /* virtual GPUs */
    int8_t bound[VGC_POOL_MAX_DEVICES]; /* [v]: physical device, -1 unbound */
    uint32_t holders[VGC_POOL_MAX_DEVICES]; /* [v]: its slots with a context on v */
    /* Since the tenant's first process came (the entry lives as long as it
     * has processes), all devices together: */
    uint64_t busy_ns;                   /* compute busy time (closed intervals) */
    uint64_t waits;                     /* times vgc_pool_share_wait said wait */
    uint64_t held_ns;                   /* the waits it said, added up */
    uint64_t swapped;                   /* bytes its processes have swapped out now */
    int swapped_out;                    /* its processes swapped out now */
};

/*
 * Up to @max tenants that have slots now into @out, in table order.
 * Returns how many there are.
 */
int vgc_pool_tenants(struct vgc_pool *pool, struct vgc_pool_tenant_info *out, int max);


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
/* Device memory held by every slot whose client is @who (its identity,
 * whatever listener), on all devices together: a VM's, whose guest
 * sessions each have a slot. */
uint64_t vgc_pool_identity_used(const struct vgc_pool *pool, const struct vgc_tenant *who);

#endif /* VGC_POOL_H */
