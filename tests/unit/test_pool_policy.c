/*
 * test_pool_policy.c - the pool's policy: memory limits summed over a
 * tenant's slots and per GPU, refusals past them that leave other tenants
 * alone, what total and free memory say; placement of virtual GPUs (fewest
 * tenants, then most free memory, never two of one tenant together), the
 * device table, unbinding when the last context ends or a slot is
 * cleared; and forked workers racing reservations against one limit.
 *
 * One process plays every worker by binding the pool to one slot after
 * another, as each forked worker would, except in the race.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool.h"
#include "pool_tenant.h"
#include "unit_check.h"

#define MB (1ull << 20)

/* uid @uid through listener @listener, with that listener's policy. */
static struct vgc_tenant tenant(uint32_t uid, uint32_t listener, uint64_t memory,
                                uint32_t gpus, const char *name)
{
    struct vgc_tenant t = pool_tenant(uid, listener, memory, name);

    t.gpus = gpus;
    return t;
}

static void test_limits(void)
{
    struct vgc_tenant lim = tenant(1000, 1, 100 * MB, 0, "limited");
    struct vgc_tenant free_ = tenant(1000, 2, 0, 0, "");     /* same uid, other listener */
    struct vgc_tenant big = tenant(2000, 3, 4096 * MB, 0, "big");
    struct vgc_pool *p = vgc_pool_create(2, 1024 * MB, 8);
    int a1 = vgc_pool_slot_claim(p, &lim), a2 = vgc_pool_slot_claim(p, &lim);
    int b = vgc_pool_slot_claim(p, &free_), c = vgc_pool_slot_claim(p, &big);
    struct vgc_pool_tenant_info info[8];
    struct vgc_pool_process procs[8];
    int n;

    CHECK(a1 >= 0 && a2 >= 0 && b >= 0 && c >= 0, "slots %d %d %d %d", a1, a2, b, c);
    n = vgc_pool_tenants(p, info, 8);
    CHECK(n == 3, "one uid on two listeners is two tenants (%d tenants)", n);
    CHECK(n >= 1 && info[0].slots == 2 && !strcmp(info[0].tenant.name, "limited") &&
          info[0].tenant.memory == 100 * MB, "the limited tenant: two slots, its policy");
    vgc_pool_bind(p, a1);
    vgc_pool_set_pid(p, 11);
    vgc_pool_set_contexts(p, 1);
    vgc_pool_bind(p, b);
    vgc_pool_set_pid(p, 12);
    vgc_pool_set_contexts(p, 1);
    n = (int)vgc_pool_processes(p, 0, procs, 8);
    CHECK(n == 1 && procs[0].pid == 12,
          "NVML's process list: the uid's processes of this listener only (%d)", n);
    vgc_pool_set_contexts(p, 0);
    vgc_pool_bind(p, a1);
    vgc_pool_set_contexts(p, 0);

    vgc_pool_bind(p, a1);
    CHECK(vgc_pool_capacity(p, 0) == 100 * MB, "total is the limit: %llu",
          (unsigned long long)vgc_pool_capacity(p, 0));
    CHECK(vgc_pool_reserve(p, 0, 60 * MB), "60M of 100M");
    vgc_pool_bind(p, a2);
    CHECK(vgc_pool_free(p, 0) == 40 * MB, "the second slot sees 40M free: %llu",
          (unsigned long long)vgc_pool_free(p, 0));
    CHECK(!vgc_pool_reserve(p, 0, 50 * MB), "50M more is past the sum of both slots");
    CHECK(vgc_pool_reserve(p, 0, 40 * MB), "40M more fits exactly");
    CHECK(!vgc_pool_reserve(p, 0, 1), "not one byte more");
    CHECK(vgc_pool_free(p, 0) == 0, "nothing free");
    CHECK(vgc_pool_tenant_used(p, 0) == 100 * MB, "the tenant holds 100M");
    CHECK(vgc_pool_reserve(p, 1, 100 * MB), "the limit is per GPU: 100M on device 1");
    CHECK(!vgc_pool_reserve(p, 0, 200 * MB), "more than the limit at once");

    vgc_pool_bind(p, b);
    CHECK(vgc_pool_capacity(p, 0) == 1024 * MB, "no limit: the device's capacity");
    CHECK(vgc_pool_free(p, 0) == 924 * MB, "free: the device's less everybody's: %llu",
          (unsigned long long)vgc_pool_free(p, 0));
    CHECK(vgc_pool_reserve(p, 0, 500 * MB), "the other tenant is unaffected");
    CHECK(vgc_pool_tenant_used(p, 0) == 500 * MB, "and counts only its own");
    vgc_pool_bind(p, c);
    CHECK(vgc_pool_capacity(p, 0) == 1024 * MB, "a limit above the device: the device");
    CHECK(vgc_pool_free(p, 0) == 424 * MB, "free: what the device has left");
    CHECK(!vgc_pool_reserve(p, 0, 425 * MB), "the device's capacity still holds");

    /* Giving back, and a slot that ends, make room for the tenant again. */
    vgc_pool_bind(p, a2);
    vgc_pool_release(p, 0, 40 * MB);
    CHECK(vgc_pool_free(p, 0) == 40 * MB, "released 40M: 40M free");
    vgc_pool_slot_clear(p, a1);
    CHECK(vgc_pool_tenant_used(p, 0) == 0 && vgc_pool_free(p, 0) == 100 * MB,
          "the first slot cleared: its 60M are the tenant's again");
    CHECK(vgc_pool_used(p, 0) == 500 * MB, "the device holds the other tenant's 500M only");
    vgc_pool_slot_clear(p, a2);
    n = vgc_pool_tenants(p, info, 8);
    CHECK(n == 2, "a tenant without slots leaves the table (%d)", n);
    CHECK(vgc_pool_slot_claim(p, &(struct vgc_tenant){ .gpus = 3 }) < 0,
          "more GPUs than the pool has are refused");
    vgc_pool_destroy(p);
}

/* The binding of virtual GPU @v of the tenant named @name, -1 unbound. */
static int binding(struct vgc_pool *p, const char *name, int v)
{
    struct vgc_pool_tenant_info info[16];
    int n = vgc_pool_tenants(p, info, 16);

    for (int i = 0; i < n && i < 16; i++) {
        if (!strcmp(info[i].tenant.name, name)) {
            return info[i].bound[v];
        }
    }
    return -2;
}

static void test_placement(void)
{
    struct vgc_tenant x = tenant(1, 1, 0, 1, "x"), y = tenant(1, 2, 0, 1, "y");
    struct vgc_tenant z = tenant(1, 3, 0, 1, "z"), w = tenant(1, 4, 0, 1, "w");
    struct vgc_tenant u = tenant(1, 5, 0, 1, "u");
    struct vgc_pool *p = vgc_pool_create(3, 1000, 16);
    int sx = vgc_pool_slot_claim(p, &x), sx2 = vgc_pool_slot_claim(p, &x);
    int sy = vgc_pool_slot_claim(p, &y), sz = vgc_pool_slot_claim(p, &z);
    int sw = vgc_pool_slot_claim(p, &w), su = vgc_pool_slot_claim(p, &u);
    int map[4], dx, dy, dz, dw, du;
    bool placed;

    vgc_pool_bind(p, sx);
    CHECK(vgc_pool_device_map(p, map, 4) == 1, "gpus=1: one virtual GPU");
    CHECK(binding(p, "x", 0) == -1, "nothing bound before a context");
    CHECK(vgc_pool_acquire(p, 1, NULL) == -1, "a virtual GPU it does not have");
    dx = vgc_pool_acquire(p, 0, &placed);
    CHECK(dx == 0 && placed, "all alike: the first device (%d), placed now", dx);
    CHECK(vgc_pool_device_map(p, map, 4) == 1 && map[0] == dx, "the table says so");
    CHECK(vgc_pool_reserve(p, dx, 300), "x holds 300");
    vgc_pool_bind(p, sx2);
    CHECK(vgc_pool_acquire(p, 0, &placed) == dx && !placed,
          "x's second process: the same device, already placed");

    vgc_pool_bind(p, sy);
    dy = vgc_pool_acquire(p, 0, NULL);
    CHECK(dy == 1, "y: a device without tenants (%d)", dy);
    CHECK(vgc_pool_reserve(p, dy, 100), "y holds 100");
    vgc_pool_bind(p, sz);
    dz = vgc_pool_acquire(p, 0, NULL);
    CHECK(dz == 2, "z: the last device without tenants (%d)", dz);
    CHECK(vgc_pool_reserve(p, dz, 500), "z holds 500");
    vgc_pool_bind(p, sw);
    dw = vgc_pool_acquire(p, 0, NULL);
    CHECK(dw == dy, "w: one tenant everywhere, most free memory is y's device (%d)", dw);

    /* x lets go in one process; the other still holds it. */
    vgc_pool_bind(p, sx);
    vgc_pool_release(p, dx, 300);
    CHECK(vgc_pool_set_contexts(p, 0) == 0, "x's first process lets go: nothing unbound");
    CHECK(binding(p, "x", 0) == dx, "still bound while x's other process has a context");
    vgc_pool_slot_clear(p, sx2);
    CHECK(binding(p, "x", 0) == -1, "unbound once the last holder's slot is cleared");
    vgc_pool_bind(p, su);
    du = vgc_pool_acquire(p, 0, NULL);
    CHECK(du == dx, "u lands on the device x left (%d)", du);

    /* The last context ending unbinds as well. */
    vgc_pool_bind(p, sz);
    CHECK(vgc_pool_set_contexts(p, 0) == 1, "z's last context ended: it says it unbound 0");
    CHECK(binding(p, "z", 0) == -1, "and the table agrees");
    vgc_pool_destroy(p);
}

static void test_two_gpus(void)
{
    struct vgc_tenant two = tenant(7, 1, 0, 2, "two"), one = tenant(8, 2, 0, 1, "one");
    struct vgc_tenant all = tenant(9, 3, 0, 0, "all");
    struct vgc_pool *p = vgc_pool_create(3, 1000, 8);
    int s2 = vgc_pool_slot_claim(p, &two), s1 = vgc_pool_slot_claim(p, &one);
    int sa = vgc_pool_slot_claim(p, &all);
    int map[4], d0, d1, n;
    bool placed;

    vgc_pool_bind(p, s1);
    CHECK(vgc_pool_acquire(p, 0, NULL) == 0, "one takes device 0");
    vgc_pool_bind(p, s2);
    d1 = vgc_pool_acquire(p, 1, NULL);
    CHECK(d1 == 1, "two's virtual GPU 1: device 1 (%d)", d1);
    n = vgc_pool_device_map(p, map, 4);
    CHECK(n == 2 && map[1] == 1 && map[0] != 1,
          "an unbound virtual GPU answers from another device (%d -> %d)", 0, map[0]);
    CHECK(vgc_pool_reserve(p, 2, 900), "device 2 is nearly full");
    d0 = vgc_pool_acquire(p, 0, NULL);
    CHECK(d0 == 2, "never with its own other GPU, even for more free memory (%d)", d0);
    vgc_pool_set_contexts(p, 1u << 0);
    CHECK(binding(p, "two", 1) == -1 && binding(p, "two", 0) == 2,
          "let go of virtual GPU 1 only");

    /* Without gpus=: every device, the same numbers. */
    vgc_pool_bind(p, sa);
    n = vgc_pool_device_map(p, map, 4);
    CHECK(n == 3 && map[0] == 0 && map[1] == 1 && map[2] == 2, "identity for every device");
    CHECK(vgc_pool_acquire(p, 2, &placed) == 2 && !placed,
          "a context on device 2 is on device 2, nothing placed");
    vgc_pool_destroy(p);
}

/*
 * Workers in processes of their own, all of one tenant, racing to
 * reserve and release.  Adding first and checking after, they never hold
 * more than the limit; and since a refusal means the sum was over with
 * the others' pending bytes, they stop short of it by less than one chunk
 * each.
 */
static void test_race(void)
{
    enum { WORKERS = 6, ROUNDS = 20000 };
    const uint64_t limit = 10 * MB, chunk = 256 * 1024;
    struct vgc_tenant t = tenant(42, 1, limit, 0, "racers");
    struct vgc_pool *p = vgc_pool_create(1, 1024 * MB, WORKERS + 1);
    int slots[WORKERS], bad = 0;
    pid_t pids[WORKERS];
    uint64_t total;

    for (int i = 0; i < WORKERS; i++) {
        slots[i] = vgc_pool_slot_claim(p, &t);
    }
    for (int i = 0; i < WORKERS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            unsigned seed = (unsigned)i * 7919u + 1;
            int refused = 0;

            vgc_pool_bind(p, slots[i]);
            for (int r = 0; r < ROUNDS; r++) {
                uint64_t n = (rand_r(&seed) % chunk) + 1;
                if (vgc_pool_reserve(p, 0, n) && rand_r(&seed) % 2) {
                    vgc_pool_release(p, 0, n);
                }
            }
            /* Then fill up: keep what fits until refused a few times. */
            while (refused < 8) {
                if (!vgc_pool_reserve(p, 0, chunk)) {
                    refused++;
                }
            }
            _exit(0);
        }
    }
    for (int i = 0; i < WORKERS; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        bad += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    CHECK(bad == 0, "%d workers failed", bad);
    vgc_pool_bind(p, slots[0]);
    total = vgc_pool_tenant_used(p, 0);
    CHECK(total <= limit, "racers never hold more than the limit: %llu > %llu",
          (unsigned long long)total, (unsigned long long)limit);
    CHECK(total + WORKERS * chunk > limit, "and stop short by less than a chunk each: %llu",
          (unsigned long long)total);
    CHECK(vgc_pool_used(p, 0) == total, "the device counts the same");
    vgc_pool_destroy(p);
}

/*
 * Workers killed at random moments while they bind and let go, most of
 * the time holding the table's lock: the next locker takes the lock over
 * and settles the table, and clearing the dead worker's slot leaves
 * nothing bound.  A hang here is the lock lost with its holder (alarm).
 */
static void test_dying_holders(void)
{
    enum { ROUNDS = 60 };
    struct vgc_tenant t = tenant(5, 1, 0, 1, "dying");
    struct vgc_tenant other = tenant(6, 2, 0, 1, "other");
    struct vgc_pool *p = vgc_pool_create(2, 1000, 4);
    int so = vgc_pool_slot_claim(p, &other), leaked = 0, n;
    struct vgc_pool_tenant_info info[4];
    unsigned seed = 12345;

    alarm(60);
    vgc_pool_bind(p, so);
    for (int i = 0; i < ROUNDS; i++) {
        int slot = vgc_pool_slot_claim(p, &t);
        pid_t pid = fork();

        if (pid == 0) {
            vgc_pool_bind(p, slot);
            for (;;) {
                vgc_pool_acquire(p, 0, NULL);
                vgc_pool_set_contexts(p, 0);
            }
        }
        usleep(200 + rand_r(&seed) % 3000);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        /* Another worker goes on using the table, then the daemon clears. */
        vgc_pool_acquire(p, 0, NULL);
        vgc_pool_set_contexts(p, 0);
        vgc_pool_slot_clear(p, slot);
        leaked += binding(p, "dying", 0) != -2;     /* the tenant must be gone */
    }
    alarm(0);
    n = vgc_pool_tenants(p, info, 4);
    CHECK(leaked == 0 && n == 1 && info[0].bound[0] == -1,
          "workers killed in the act leave nothing bound (%d of %d rounds, %d tenants)",
          leaked, ROUNDS, n);
    vgc_pool_destroy(p);
}

int main(void)
{
    test_limits();
    test_placement();
    test_two_gpus();
    test_race();
    test_dying_holders();
    return unit_done();
}
