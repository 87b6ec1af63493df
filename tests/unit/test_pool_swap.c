/*
 * test_pool_swap.c - the pool's side of swapping instead of ending
 * (vgcd --swap): who is asked to swap (swapping on, an executor that can,
 * memory that fits what is left of the room), the race of a worker that
 * begins against an owner that gives up, the room and the devices while
 * a process is out (the device free, the room used, the tenant's limit
 * still counting it), when it may come back (room, lower priorities only,
 * its window), its way back in (preempting a lower priority, with this
 * process playing the daemon), that a slot cleared while out frees
 * its room, and idle= (idle processes swapped out first, never ended).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool.h"
#include "pool_tenant.h"
#include "unit_check.h"

#define MB (1ull << 20)
#define HMS(h, m, s) ((uint32_t)((h) * 3600 + (m) * 60 + (s)))
#define NOON HMS(12, 0, 0)

static struct vgc_tenant tenant(uint32_t uid, uint64_t memory, uint32_t priority,
                                const char *name)
{
    struct vgc_tenant t = pool_tenant(uid, uid, memory, name);

    t.priority = priority;
    return t;
}

/* The worker's half of a swap-out, as socket_worker.c does it. */
static bool swap_out(struct vgc_pool *p, int slot)
{
    vgc_pool_bind(p, slot);
    if (!vgc_pool_swap_begin(p)) {
        return false;
    }
    if (!vgc_pool_swap_hold(p)) {
        return false;
    }
    vgc_pool_swap_moved(p);
    return true;
}

/* Who is asked, and the race between beginning and giving up. */
static void test_ask(void)
{
    struct vgc_tenant low = tenant(1, 0, 10, "low"), big = tenant(2, 0, 10, "big");
    struct vgc_pool *p = vgc_pool_create(1, 1024 * MB, 8);
    int sl = vgc_pool_slot_claim(p, &low), sb = vgc_pool_slot_claim(p, &big);

    vgc_pool_bind(p, sl);
    CHECK(vgc_pool_reserve(p, 0, 200 * MB), "low holds 200M");
    vgc_pool_set_swappable(p, true);
    vgc_pool_bind(p, sb);
    CHECK(vgc_pool_reserve(p, 0, 300 * MB), "big holds 300M");
    CHECK(!vgc_pool_swap_ask(p, sl) && vgc_pool_swap_state(p, sl) == VGC_SWAP_NONE,
          "without --swap nobody is asked: preemption ends, as before");
    vgc_pool_set_swap(p, 256 * MB);
    CHECK(vgc_pool_swap_room(p) == 256 * MB, "the room is 256M");
    CHECK(!vgc_pool_swap_ask(p, sb), "big's executor cannot swap (it never said it could)");
    vgc_pool_set_swappable(p, true);
    CHECK(!vgc_pool_swap_ask(p, sb), "big's 300M do not fit a 256M room: it is ended");
    CHECK(!vgc_pool_swap_wanted(p) && !vgc_pool_swap_begin(p),
          "a worker nobody asked has nothing to begin");
    CHECK(vgc_pool_swap_ask(p, sl) && vgc_pool_swap_state(p, sl) == VGC_SWAP_ASKED,
          "low's 200M fit: it is asked to swap out");
    CHECK(!vgc_pool_swap_ask(p, sl), "asked once");
    CHECK(vgc_pool_swapped(p, -1) == 0, "asking takes no room: moving does");
    /* The owner gives up before the worker begins: the worker never does. */
    CHECK(vgc_pool_swap_give_up(p, sl) && vgc_pool_swap_state(p, sl) == VGC_SWAP_GIVEN_UP,
          "not begun within the grace: given up, the owner ends it");
    vgc_pool_bind(p, sl);
    CHECK(!vgc_pool_swap_wanted(p) && !vgc_pool_swap_begin(p),
          "a worker given up on does not begin (it is being ended)");
    vgc_pool_slot_clear(p, sl);
    /* The worker begins first: the owner leaves it to finish. */
    sl = vgc_pool_slot_claim(p, &low);
    vgc_pool_bind(p, sl);
    CHECK(vgc_pool_swap_state(p, sl) == VGC_SWAP_NONE && vgc_pool_reserve(p, 0, 100 * MB),
          "a new process in the slot: not asked, holds 100M");
    vgc_pool_set_swappable(p, true);
    CHECK(vgc_pool_swap_ask(p, sl) && vgc_pool_swap_wanted(p) && vgc_pool_swap_begin(p) &&
          vgc_pool_swap_state(p, sl) == VGC_SWAP_MOVING, "asked, and its worker begins");
    CHECK(!vgc_pool_swap_give_up(p, sl) && vgc_pool_swap_state(p, sl) == VGC_SWAP_MOVING,
          "the grace is over, but it began: not given up");
    vgc_pool_destroy(p);
}

/* The room, the device and the tenant's limit while a process is out. */
static void test_room(void)
{
    struct vgc_tenant a = tenant(1, 0, 10, "a"), b = tenant(2, 0, 10, "b");
    struct vgc_tenant capped = tenant(3, 256 * MB, 10, "capped");
    struct vgc_pool *p = vgc_pool_create(2, 512 * MB, 8);
    struct vgc_pool_tenant_info info[8];
    int sa = vgc_pool_slot_claim(p, &a), sb = vgc_pool_slot_claim(p, &b);
    int sc = vgc_pool_slot_claim(p, &capped), sc2 = vgc_pool_slot_claim(p, &capped);
    int n, nout = -1;

    vgc_pool_set_swap(p, 320 * MB);
    vgc_pool_bind(p, sa);
    vgc_pool_set_swappable(p, true);
    CHECK(vgc_pool_reserve(p, 0, 150 * MB) && vgc_pool_reserve(p, 1, 50 * MB),
          "a holds 150M on device 0 and 50M on device 1");
    vgc_pool_bind(p, sb);
    vgc_pool_set_swappable(p, true);
    CHECK(vgc_pool_reserve(p, 0, 200 * MB), "b holds 200M on device 0");
    CHECK(vgc_pool_swap_ask(p, sa) && vgc_pool_swap_ask(p, sb),
          "both asked: each fits the empty 320M room alone");
    CHECK(swap_out(p, sa), "a moves out");
    CHECK(vgc_pool_swap_state(p, sa) == VGC_SWAP_OUT && vgc_pool_used(p, 0) == 200 * MB &&
          vgc_pool_used(p, 1) == 0 && vgc_pool_swapped(p, 0) == 150 * MB &&
          vgc_pool_swapped(p, 1) == 50 * MB && vgc_pool_swapped(p, -1) == 200 * MB &&
          vgc_pool_slot_swapped(p, sa) == 200 * MB && vgc_pool_slot_used(p, sa) == 0,
          "a is out: its 200M are on no device and in the room");
    vgc_pool_bind(p, sb);
    CHECK(vgc_pool_swap_begin(p) && !vgc_pool_swap_hold(p) && vgc_pool_swapped(p, -1) ==
          200 * MB && vgc_pool_used(p, 0) == 200 * MB,
          "b's 200M no longer fit what is left (120M): refused, nothing counted");
    n = vgc_pool_tenants(p, info, 8);
    CHECK(n == 3 && info[0].swapped == 200 * MB && info[0].swapped_out == 1 &&
          info[1].swapped == 0 && info[1].swapped_out == 0,
          "the tenant table says a has 200M out in one process (%d)", n);
    CHECK(vgc_pool_identity_swapped(p, &a, &nout) == 200 * MB && nout == 1,
          "and so does the identity sum (a VM's line)");
    vgc_pool_slot_clear(p, sa);
    CHECK(vgc_pool_swapped(p, -1) == 0 && vgc_pool_used(p, 1) == 0,
          "a killed while out: its room is free, nothing came back to a device");
    vgc_pool_slot_clear(p, sb);
    /* The tenant's limit counts what its processes have out. */
    vgc_pool_bind(p, sc);
    vgc_pool_set_swappable(p, true);
    CHECK(vgc_pool_reserve(p, 0, 200 * MB), "capped (memory=256M) holds 200M");
    CHECK(vgc_pool_swap_ask(p, sc) && swap_out(p, sc), "and is swapped out");
    vgc_pool_bind(p, sc2);
    CHECK(vgc_pool_free(p, 0) == 56 * MB && !vgc_pool_reserve(p, 0, 100 * MB) &&
          vgc_pool_reserve(p, 0, 56 * MB),
          "its other process sees 56M free and gets no more: the room to come back is kept");
    CHECK(vgc_pool_tenant_used(p, 0) == 56 * MB && vgc_pool_used(p, 0) == 56 * MB,
          "on the device: only the 56M (what NVML and status show)");
    vgc_pool_destroy(p);
}

/*
 * A forked worker of slot @slot tries to come back: exits 0 when it got
 * its devices again, 1 when not.
 */
static pid_t return_in_child(struct vgc_pool *p, int slot)
{
    pid_t pid = fork();

    if (pid == 0) {
        vgc_pool_bind(p, slot);
        if (!vgc_pool_swap_reserve(p)) {
            _exit(1);
        }
        vgc_pool_swap_returned(p);
        _exit(0);
    }
    return pid;
}

static int child_status(pid_t pid)
{
    int st;

    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

/* When it may come back, and its way back. */
static void test_return(void)
{
    struct vgc_tenant low = tenant(1, 0, 10, "low"), high = tenant(2, 0, 90, "high");
    struct vgc_tenant peer = tenant(3, 0, 10, "peer"), lowest = tenant(4, 0, 5, "lowest");
    struct vgc_pool *p = vgc_pool_create(1, 256 * MB, 8);
    struct vgc_pool_preemption pe;
    int sl = vgc_pool_slot_claim(p, &low), sh = vgc_pool_slot_claim(p, &high);
    int sp = vgc_pool_slot_claim(p, &peer), sw = vgc_pool_slot_claim(p, &lowest);
    bool taken = false;
    uint64_t t0;
    pid_t pid;
    int rc;

    vgc_pool_set_swap(p, 1024 * MB);
    vgc_pool_bind(p, sl);
    vgc_pool_set_swappable(p, true);
    CHECK(vgc_pool_reserve(p, 0, 200 * MB), "low holds 200M of 256M");
    CHECK(!vgc_pool_swap_may_return(p, NOON), "a process that is not out has nothing to return");
    CHECK(vgc_pool_swap_ask(p, sl) && swap_out(p, sl), "low is swapped out");
    vgc_pool_bind(p, sh);
    CHECK(vgc_pool_reserve(p, 0, 128 * MB), "high takes 128M");
    vgc_pool_bind(p, sl);
    CHECK(!vgc_pool_swap_may_return(p, NOON),
          "low may not return: 200M beside high's 128M would take from a higher priority");
    vgc_pool_bind(p, sh);
    vgc_pool_release(p, 0, 128 * MB);
    vgc_pool_bind(p, sp);
    CHECK(vgc_pool_reserve(p, 0, 100 * MB), "peer (priority 10 too) takes 100M");
    vgc_pool_bind(p, sl);
    CHECK(!vgc_pool_swap_may_return(p, NOON), "nor beside an equal priority's 100M");
    vgc_pool_bind(p, sp);
    vgc_pool_release(p, 0, 100 * MB);
    vgc_pool_bind(p, sw);
    CHECK(vgc_pool_reserve(p, 0, 100 * MB), "lowest (priority 5) takes 100M");
    vgc_pool_bind(p, sl);
    CHECK(vgc_pool_swap_may_return(p, NOON),
          "beside a lower priority's 100M it may: that one would be preempted");
    /* The way back preempts lowest: this process plays the daemon. */
    pid = return_in_child(p, sl);
    t0 = vgc_pool_clock();
    while (!taken && vgc_pool_clock() - t0 < 5000000000ull) {
        taken = vgc_pool_preempt_take(p, sw, &pe);
        if (!taken) {
            usleep(1000);
        }
    }
    CHECK(taken && pe.reason == VGC_PREEMPT_MEMORY && !strcmp(pe.by, "low") &&
          pe.used == 100 * MB, "low's return marks lowest for its memory");
    vgc_pool_slot_clear(p, sw);
    rc = child_status(pid);
    CHECK(rc == 0, "and low is back once lowest is gone (exit %d)", rc);
    CHECK(vgc_pool_swap_state(p, sl) == VGC_SWAP_NONE && vgc_pool_used(p, 0) == 200 * MB &&
          vgc_pool_swapped(p, -1) == 0 && vgc_pool_slot_used(p, sl) == 200 * MB,
          "back: 200M on the device again, the room empty");
    /* Unmarked: it can be preempted again. */
    CHECK(vgc_pool_swap_ask(p, sl), "and can be asked to swap out again");
    vgc_pool_destroy(p);
}

/* A reservation of high priority that waits for the memory of the slots
 * it preempted: a victim swapped out meanwhile must not take the room back
 * before it has it. */
static void test_return_waits_for_preemptor(void)
{
    struct vgc_tenant low = tenant(1, 0, 10, "low"), mid = tenant(2, 0, 20, "mid");
    struct vgc_tenant high = tenant(3, 0, 90, "high");
    struct vgc_pool *p = vgc_pool_create(1, 256 * MB, 4);
    struct vgc_pool_preemption pe;
    int sl = vgc_pool_slot_claim(p, &low), sm = vgc_pool_slot_claim(p, &mid);
    int sh = vgc_pool_slot_claim(p, &high);
    bool taken = false, early;
    uint64_t t0;
    pid_t pid;
    int rc;

    vgc_pool_set_swap(p, 1024 * MB);
    vgc_pool_bind(p, sl);
    vgc_pool_set_swappable(p, true);
    CHECK(vgc_pool_reserve(p, 0, 100 * MB), "low holds 100M");
    vgc_pool_bind(p, sm);
    CHECK(vgc_pool_reserve(p, 0, 100 * MB), "mid holds 100M");
    /* high wants 200M: both must go, but only low will (mid's owner is
     * not acting), so high waits its whole bound. */
    pid = fork();
    if (pid == 0) {
        vgc_pool_bind(p, sh);
        _exit(vgc_pool_reserve(p, 0, 200 * MB) ? 0 : 1);
    }
    t0 = vgc_pool_clock();
    while (!taken && vgc_pool_clock() - t0 < 5000000000ull) {
        taken = vgc_pool_preempt_take(p, sl, &pe);
        if (!taken) {
            usleep(1000);
        }
    }
    CHECK(taken && vgc_pool_swap_ask(p, sl) && swap_out(p, sl), "low is swapped out for high");
    early = vgc_pool_swap_may_return(p, NOON);
    CHECK(!early, "the device has room for low's 100M beside mid's, but high is waiting for "
          "200M there: low stays out");
    rc = child_status(pid);
    CHECK(rc == 1, "mid never went: high's reservation gave up after its bound (exit %d)", rc);
    vgc_pool_bind(p, sl);
    CHECK(vgc_pool_swap_may_return(p, NOON), "high no longer waits: low may come back");
    (void)vgc_pool_preempt_take(p, sm, &pe);
    vgc_pool_destroy(p);
}

/* A way back that finds no room gives up with nothing reserved. */
static void test_return_refused(void)
{
    struct vgc_tenant low = tenant(1, 0, 10, "low"), high = tenant(2, 0, 90, "high");
    struct vgc_pool *p = vgc_pool_create(2, 256 * MB, 4);
    int sl = vgc_pool_slot_claim(p, &low), sh = vgc_pool_slot_claim(p, &high);

    vgc_pool_set_swap(p, 1024 * MB);
    vgc_pool_bind(p, sl);
    vgc_pool_set_swappable(p, true);
    CHECK(vgc_pool_reserve(p, 0, 100 * MB) && vgc_pool_reserve(p, 1, 200 * MB),
          "low holds 100M on device 0, 200M on device 1");
    CHECK(vgc_pool_swap_ask(p, sl) && swap_out(p, sl), "and is swapped out");
    vgc_pool_bind(p, sh);
    CHECK(vgc_pool_reserve(p, 1, 100 * MB), "high takes 100M of device 1");
    vgc_pool_bind(p, sl);
    CHECK(!vgc_pool_swap_reserve(p) && vgc_pool_used(p, 0) == 0 &&
          vgc_pool_used(p, 1) == 100 * MB && vgc_pool_swapped(p, -1) == 300 * MB,
          "device 1 has no room for low: nothing reserved, device 0 not either");
    vgc_pool_bind(p, sh);
    vgc_pool_release(p, 1, 100 * MB);
    vgc_pool_bind(p, sl);
    CHECK(vgc_pool_swap_reserve(p) && vgc_pool_used(p, 0) == 100 * MB &&
          vgc_pool_used(p, 1) == 200 * MB, "once there is: both devices reserved");
    vgc_pool_swap_unreserve(p);
    CHECK(vgc_pool_used(p, 0) == 0 && vgc_pool_used(p, 1) == 0 &&
          vgc_pool_swap_state(p, sl) == VGC_SWAP_OUT,
          "the executor could not bring it back: unreserved, still out");
    vgc_pool_destroy(p);
}

/* Windows: swapped out at the close, back only when open, not re-marked. */
static void test_windows(void)
{
    struct vgc_tenant night = tenant(1, 0, 50, "night");
    struct vgc_pool *p = vgc_pool_create(1, 256 * MB, 4);
    struct vgc_pool_preemption pe;
    int sn;
    char line[256];

    night.window = true;
    night.window_from = HMS(20, 0, 0);
    night.window_to = HMS(6, 0, 0);
    sn = vgc_pool_slot_claim(p, &night);
    vgc_pool_set_swap(p, 256 * MB);
    vgc_pool_bind(p, sn);
    vgc_pool_set_swappable(p, true);
    vgc_pool_acquire(p, 0, NULL);
    CHECK(vgc_pool_reserve(p, 0, 64 * MB), "night holds a context and 64M at night");
    CHECK(vgc_pool_preempt_windows(p, HMS(6, 0, 0)) == 1 && vgc_pool_preempt_take(p, sn, &pe),
          "at 06:00 it is marked and the mark taken");
    vgc_pool_swap_describe(&pe, line, sizeof(line));
    CHECK(strstr(line, "swapping out tenant night (priority 50): its window 20:00:00-06:00:00 "
                 "closed; moves 64.0 MiB on every device to host RAM") != NULL,
          "described: %s", line);
    CHECK(vgc_pool_swap_ask(p, sn) && swap_out(p, sn), "and swapped out");
    CHECK(vgc_pool_preempt_windows(p, HMS(7, 0, 0)) == 0 && vgc_pool_preempt_waiting(p) == 0,
          "out, it is not marked again at the next ticks (it holds its context to come "
          "back to)");
    CHECK(!vgc_pool_swap_may_return(p, HMS(12, 0, 0)), "the device is empty, but at noon "
          "its window is closed: it stays out");
    CHECK(vgc_pool_swap_may_return(p, HMS(20, 0, 0)), "at 20:00 it may return");
    CHECK(vgc_pool_swap_reserve(p), "and does");
    vgc_pool_swap_returned(p);
    CHECK(vgc_pool_used(p, 0) == 64 * MB && vgc_pool_preempt_windows(p, HMS(21, 0, 0)) == 0,
          "back with its 64M, inside its window: not marked");
    CHECK(vgc_pool_preempt_windows(p, HMS(6, 0, 1)) == 1,
          "the next morning it is marked anew");
    vgc_pool_destroy(p);
}

/* Victim choice with idle slots, the pure part: idle ones first, whatever
 * their priority, as long as their memory fits the room left. */
static void test_idle_choice(void)
{
    /* slot: priority, MiB, idle seconds (0: not idle) */
    static const struct { int slot; uint32_t prio; uint64_t mb; uint64_t idle_s; } in[5] = {
        { 0, 90, 100, 5 }, { 1, 70, 150, 9 }, { 2, 10, 50, 0 }, { 3, 95, 300, 9 },
        { 4, 20, 80, 0 },
    };
    struct vgc_pool_holder h[5];
    int n;

#define IDLE_HOLDERS() \
    for (int i = 0; i < 5; i++) { \
        h[i] = (struct vgc_pool_holder){ .slot = in[i].slot, .priority = in[i].prio, \
                                         .used = in[i].mb * MB, .idle = in[i].idle_s != 0, \
                                         .idle_ns = in[i].idle_s * 1000000000ull, \
                                         .total = in[i].mb * MB }; \
    }
    IDLE_HOLDERS();
    n = vgc_pool_choose_victims(h, 5, 50, 200 * MB, 1024 * MB);
    CHECK(n == 1 && h[0].slot == 3 && h[0].idle,
          "200M for priority 50: the longest idle, then the biggest - priority 95 - goes first "
          "(%d, slot %d)", n, h[0].slot);
    IDLE_HOLDERS();
    n = vgc_pool_choose_victims(h, 5, 50, 450 * MB, 400 * MB);
    CHECK(n == 3 && h[0].slot == 3 && h[0].idle && h[1].slot == 0 && h[1].idle &&
          h[2].slot == 2 && !h[2].idle && h[4].slot == 1 && !h[4].idle,
          "a 400M room: 300M and 100M idle fit, 150M idle does not and counts by its "
          "priority 70 (not below 50); the lowest priority makes up the rest (%d: %d %d %d)",
          n, h[0].slot, h[1].slot, h[2].slot);
    IDLE_HOLDERS();
    n = vgc_pool_choose_victims(h, 5, 50, 130 * MB, 0);
    CHECK(n == 2 && h[0].slot == 2 && h[1].slot == 4 && !h[0].idle && !h[1].idle,
          "no room (no --swap): idleness counts for nothing, priorities decide (%d)", n);
    IDLE_HOLDERS();
    n = vgc_pool_choose_victims(h, 5, 50, 131 * MB, 0);
    CHECK(n == 0, "and a priority 50 cannot take 131M from them (%d)", n);
    IDLE_HOLDERS();
    n = vgc_pool_choose_victims(h, 5, 100, 550 * MB, 1024 * MB);
    CHECK(n == 3 && h[0].idle && h[1].idle && h[2].idle,
          "idle ones are taken before lower priorities, even for the highest priority (%d)", n);
#undef IDLE_HOLDERS
}

/* A reservation that waits in a child for @bytes on device 0 as @slot. */
static pid_t reserve_in_child(struct vgc_pool *p, int slot, uint64_t bytes)
{
    pid_t pid = fork();

    if (pid == 0) {
        vgc_pool_bind(p, slot);
        _exit(vgc_pool_reserve(p, 0, bytes) ? 0 : 1);
    }
    return pid;
}

/* Takes @slot's mark within 5 s, as the daemon would. */
static bool take_mark(struct vgc_pool *p, int slot, struct vgc_pool_preemption *pe)
{
    uint64_t t0 = vgc_pool_clock();

    while (vgc_pool_clock() - t0 < 5000000000ull) {
        if (vgc_pool_preempt_take(p, slot, pe)) {
            return true;
        }
        usleep(1000);
    }
    return false;
}

/* idle=: a higher priority's idle process is swapped out for a lower one;
 * one in a call is not idle; an idle one whose swap-out is overtaken by a
 * call is spared, never ended. */
static void test_idle(void)
{
    struct vgc_tenant a = tenant(1, 0, 90, "nb"), b = tenant(2, 0, 50, "batch");
    struct vgc_pool *p = vgc_pool_create(1, 512 * MB, 8);
    struct vgc_pool_preemption pe;
    int s1, s2, sb;
    char why[256];
    pid_t pid;
    int rc;

    a.idle = 1;
    s1 = vgc_pool_slot_claim(p, &a);
    s2 = vgc_pool_slot_claim(p, &a);
    sb = vgc_pool_slot_claim(p, &b);
    vgc_pool_set_swap(p, 512 * MB);
    vgc_pool_bind(p, s1);
    vgc_pool_set_swappable(p, true);
    CHECK(vgc_pool_reserve(p, 0, 200 * MB), "nb's first process holds 200M");
    vgc_pool_touch(p, false);
    vgc_pool_bind(p, s2);
    vgc_pool_set_swappable(p, true);
    CHECK(vgc_pool_reserve(p, 0, 200 * MB), "nb's second process holds 200M");
    vgc_pool_touch(p, true);
    vgc_pool_bind(p, sb);
    CHECK(!vgc_pool_reserve(p, 0, 200 * MB) && vgc_pool_preempt_waiting(p) == 0,
          "batch (priority 50) cannot have 200M: nb (90) is not idle yet, nobody marked");
    usleep(1100 * 1000);
    CHECK(vgc_pool_slot_idle(p, s1, vgc_pool_clock()) >= 1000000000ull &&
          vgc_pool_slot_idle(p, s2, vgc_pool_clock()) == 0,
          "a second later the first is idle, the second (in a call) is not");
    pid = reserve_in_child(p, sb, 200 * MB);
    CHECK(take_mark(p, s1, &pe) && pe.reason == VGC_PREEMPT_IDLE && !strcmp(pe.by, "batch") &&
          pe.idle == 1 && pe.used == 200 * MB, "batch's 200M mark the idle one");
    vgc_pool_swap_describe(&pe, why, sizeof(why));
    CHECK(strstr(why, "swapping out tenant nb (priority 90): no call for 1s (idle=)") != NULL,
          "logged as: %s", why);
    CHECK(vgc_pool_swap_ask(p, s1) && swap_out(p, s1), "and it is swapped out");
    rc = child_status(pid);
    CHECK(rc == 0 && !vgc_pool_preempt_take(p, s2, &pe),
          "batch has its 200M (exit %d); the process in a call was not marked", rc);
    vgc_pool_bind(p, s1);
    CHECK(vgc_pool_swap_reason(p) == VGC_PREEMPT_IDLE && !vgc_pool_swap_call_waiting(p),
          "it knows it is out for being idle; no call is held for it");
    vgc_pool_swap_called(p, s1);
    CHECK(vgc_pool_swap_call_waiting(p), "a VM's worker holding its call says so");
    vgc_pool_bind(p, sb);
    vgc_pool_release(p, 0, 200 * MB);
    vgc_pool_bind(p, s1);
    CHECK(vgc_pool_swap_may_return(p, NOON) && vgc_pool_swap_reserve(p),
          "batch freed: it fits, and comes back");
    vgc_pool_swap_returned(p);
    CHECK(vgc_pool_used(p, 0) == 400 * MB && vgc_pool_swapped(p, -1) == 0 &&
          !vgc_pool_swap_call_waiting(p), "400M on the device again, the room empty");

    /* Asked, but a call came in before it began: spared, not ended. */
    pid = reserve_in_child(p, sb, 200 * MB);
    CHECK(take_mark(p, s1, &pe) && pe.reason == VGC_PREEMPT_IDLE && vgc_pool_swap_ask(p, s1),
          "still idle: marked and asked again");
    CHECK(!vgc_pool_swap_give_up(p, s1) && vgc_pool_swap_state(p, s1) == VGC_SWAP_NONE &&
          !vgc_pool_preempt_take(p, s1, &pe),
          "not begun within the grace: spared (not given up), unmarked");
    vgc_pool_bind(p, s2);
    vgc_pool_release(p, 0, 200 * MB);
    rc = child_status(pid);
    CHECK(rc == 0, "batch gets its memory from elsewhere (exit %d)", rc);

    /* One that cannot be swapped is no idle victim: priority decides. */
    vgc_pool_bind(p, s1);
    vgc_pool_set_swappable(p, false);
    vgc_pool_bind(p, sb);
    CHECK(!vgc_pool_reserve(p, 0, 200 * MB) && vgc_pool_preempt_waiting(p) == 0,
          "its executor cannot swap: batch may not take nb's memory");
    vgc_pool_destroy(p);
}

/* A gpus=1 tenant bound to a device at slot @slot's first context. */
static int place(struct vgc_pool *p, int slot)
{
    vgc_pool_bind(p, slot);
    return vgc_pool_acquire(p, 0, NULL);
}

/*
 * A tenant whose processes are all swapped out keeps its binding (it
 * comes back to the same GPU) but uses no GPU now: new tenants are placed
 * as if it were not there.
 */
static void test_placement_skips_swapped(void)
{
    struct vgc_tenant a = tenant(1, 0, 10, "a"), c = tenant(2, 0, 50, "c"),
                      e = tenant(3, 0, 50, "e"), f = tenant(4, 0, 50, "f"),
                      b = tenant(5, 0, 50, "b");
    struct vgc_pool *p = vgc_pool_create(2, 1024 * MB, 8);
    int sa, sc, se, sf, sb;

    a.gpus = c.gpus = e.gpus = f.gpus = b.gpus = 1;
    vgc_pool_set_swap(p, 512 * MB);
    sa = vgc_pool_slot_claim(p, &a);
    sc = vgc_pool_slot_claim(p, &c);
    se = vgc_pool_slot_claim(p, &e);
    CHECK(place(p, sa) == 0 && vgc_pool_reserve(p, 0, 300 * MB), "a on device 0 with 300M");
    vgc_pool_set_swappable(p, true);
    CHECK(place(p, sc) == 1 && vgc_pool_reserve(p, 1, 400 * MB), "c on device 1 with 400M");
    CHECK(place(p, se) == 0 && vgc_pool_reserve(p, 0, 50 * MB),
          "e on device 0 (one tenant each; more free there) with 50M");
    sf = vgc_pool_slot_claim(p, &f);
    CHECK(place(p, sf) == 1, "with a and e active on device 0, f goes to device 1");
    vgc_pool_slot_clear(p, sf);
    CHECK(vgc_pool_swap_ask(p, sa) && swap_out(p, sa) &&
          vgc_pool_swap_state(p, sa) == VGC_SWAP_OUT, "a is swapped out");
    sb = vgc_pool_slot_claim(p, &b);
    CHECK(place(p, sb) == 0,
          "a swapped out does not count: one active tenant each, and more free on device 0");
    vgc_pool_bind(p, sa);
    CHECK(vgc_pool_acquire(p, 0, NULL) == 0, "a keeps its binding to device 0");
    vgc_pool_destroy(p);
}

/*
 * An executor that moves only part of what a process holds (the cuda
 * executor: its window, not its managed memory): exactly that part is in
 * the room, the rest stays charged on the device, and a later preemption
 * does not choose the process that is out (it would free nothing).
 */
static void test_partial(void)
{
    struct vgc_tenant low = tenant(1, 0, 10, "low"), high = tenant(2, 0, 90, "high");
    struct vgc_pool *p = vgc_pool_create(1, 256 * MB, 8);
    int sl = vgc_pool_slot_claim(p, &low), sh = vgc_pool_slot_claim(p, &high);
    uint64_t window = 150 * MB, too_much = 1024 * MB, t0;

    vgc_pool_set_swap(p, 512 * MB);
    vgc_pool_bind(p, sl);
    vgc_pool_set_swappable(p, true);
    CHECK(vgc_pool_reserve(p, 0, 200 * MB), "low holds 200M, 150M of it swappable");
    CHECK(vgc_pool_swap_ask(p, sl) && vgc_pool_swap_begin(p) &&
          vgc_pool_swap_hold_part(p, &window), "asked; it holds its 150M in the room");
    vgc_pool_swap_moved(p);
    CHECK(vgc_pool_swap_state(p, sl) == VGC_SWAP_OUT && vgc_pool_used(p, 0) == 50 * MB &&
          vgc_pool_swapped(p, -1) == 150 * MB && vgc_pool_slot_used(p, sl) == 50 * MB,
          "out: 150M in the room, 50M still charged on the device (%llu)",
          (unsigned long long)vgc_pool_used(p, 0));
    vgc_pool_bind(p, sh);
    t0 = vgc_pool_clock();
    CHECK(!vgc_pool_reserve(p, 0, 250 * MB) && vgc_pool_clock() - t0 < 500000000ull &&
          vgc_pool_swap_state(p, sl) == VGC_SWAP_OUT,
          "high's 250M need low's last 50M: refused at once, low is not chosen again");
    CHECK(vgc_pool_reserve(p, 0, 200 * MB), "what the device has is high's");
    vgc_pool_release(p, 0, 200 * MB);
    vgc_pool_bind(p, sl);
    CHECK(vgc_pool_swap_may_return(p, NOON) && vgc_pool_swap_reserve(p) &&
          vgc_pool_used(p, 0) == 200 * MB, "low comes back: its 150M on the device again");
    vgc_pool_swap_returned(p);
    CHECK(vgc_pool_swap_ask(p, sl) && vgc_pool_swap_begin(p) &&
          vgc_pool_swap_hold_part(p, &too_much) && vgc_pool_swapped(p, -1) == 200 * MB,
          "a part larger than what it holds counts what it holds");
    vgc_pool_swap_unhold(p);
    vgc_pool_slot_clear(p, sl);
    vgc_pool_slot_clear(p, sh);
    vgc_pool_destroy(p);
}

int main(void)
{
    test_ask();
    test_room();
    test_return();
    test_return_waits_for_preemptor();
    test_return_refused();
    test_windows();
    test_idle_choice();
    test_idle();
    test_placement_skips_swapped();
    test_partial();
    return unit_done();
}
