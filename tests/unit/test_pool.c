/*
 * test_pool.c - the pool's NVML figures, with a clock the test sets:
 * utilization of one and of several workers (capped, not summed past 100),
 * intervals still open, the sample period sliding past old work, a worker
 * that dies busy; and process lists by tenant.
 *
 * One process plays every worker by binding the pool to one slot after
 * another, as each forked worker would.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "pool.h"
#include "unit_check.h"

#define B VGC_POOL_BUCKET_NS
#define MS 1000000ull

static struct vgc_tenant tenant(uint32_t kind, uint32_t id)
{
    struct vgc_tenant t;

    memset(&t, 0, sizeof(t));
    t.kind = kind;
    memcpy(t.id, &id, sizeof(id));
    return t;
}

static unsigned util(struct vgc_pool *p, int dev, uint64_t now)
{
    return vgc_pool_utilization(p, dev, VGC_POOL_COMPUTE, now);
}

static void test_utilization(void)
{
    struct vgc_tenant t = tenant(VGC_TENANT_UID, 1000);
    struct vgc_pool *p = vgc_pool_create(2, 1 << 30, 4);
    int a = vgc_pool_slot_claim(p, &t), b = vgc_pool_slot_claim(p, &t);
    uint64_t t0 = 1000 * B;         /* a bucket boundary, long after boot */
    unsigned u;

    CHECK(a == 0 && b == 1, "slots %d %d", a, b);
    CHECK(util(p, 0, t0) == 0, "idle device");

    /* Half of the last second busy: 50%. */
    vgc_pool_bind(p, a);
    vgc_pool_busy_begin(p, 0, VGC_POOL_COMPUTE, t0 - 500 * MS);
    u = util(p, 0, t0);
    CHECK(u == 50, "an open interval counts up to now: %u", u);
    vgc_pool_busy_end(p, 0, VGC_POOL_COMPUTE, t0);
    u = util(p, 0, t0);
    CHECK(u == 50, "closed, the same: %u", u);
    CHECK(util(p, 1, t0) == 0, "the other device stays idle");
    CHECK(vgc_pool_utilization(p, 0, VGC_POOL_COPY, t0) == 0, "the copy engine stays idle");
    u = util(p, 0, t0 + 750 * MS);
    CHECK(u == 29, "750 ms later, 300 ms of the sampled 1.05 s were busy: %u", u);
    CHECK(util(p, 0, t0 + 1200 * MS) == 0, "out of the sample after a second: %u",
          util(p, 0, t0 + 1200 * MS));

    /* Two workers busy at the same time: the device is busy, not 200%. */
    t0 += 10 * B;
    vgc_pool_busy_begin(p, 0, VGC_POOL_COMPUTE, t0 - 1000 * MS);
    vgc_pool_bind(p, b);
    vgc_pool_busy_begin(p, 0, VGC_POOL_COMPUTE, t0 - 1000 * MS);
    u = util(p, 0, t0);
    CHECK(u == 100, "two busy workers: %u", u);
    vgc_pool_busy_end(p, 0, VGC_POOL_COMPUTE, t0);
    vgc_pool_bind(p, a);
    vgc_pool_busy_end(p, 0, VGC_POOL_COMPUTE, t0);
    CHECK(util(p, 0, t0) == 100, "both closed: %u", util(p, 0, t0));

    /* Back-to-back short intervals add up within a bucket. */
    t0 += 20 * B;
    for (int i = 0; i < 100; i++) {
        uint64_t s = t0 - 1000 * MS + (uint64_t)i * 10 * MS;
        vgc_pool_busy_begin(p, 0, VGC_POOL_COMPUTE, s);
        vgc_pool_busy_end(p, 0, VGC_POOL_COMPUTE, s + 2500000);     /* 2.5 ms */
    }
    u = util(p, 0, t0);
    CHECK(u == 25, "100 kernels of 2.5 ms in a second: %u", u);

    /* A kernel of minutes: 100% while it runs, the ring wraps cleanly. */
    t0 += 20 * B;
    vgc_pool_busy_begin(p, 0, VGC_POOL_COMPUTE, t0);
    CHECK(util(p, 0, t0 + 120000 * MS) == 100, "two minutes into a kernel");
    vgc_pool_busy_end(p, 0, VGC_POOL_COMPUTE, t0 + 120000 * MS);
    CHECK(util(p, 0, t0 + 120000 * MS) == 100, "just after it");
    CHECK(util(p, 0, t0 + 121200 * MS) == 0, "a second after it");

    /* A worker that dies inside a kernel: busy until it was cleared. */
    t0 += 1300 * B;
    vgc_pool_bind(p, b);
    vgc_pool_busy_begin(p, 1, VGC_POOL_COPY, vgc_pool_clock() - 400 * MS);
    vgc_pool_slot_clear(p, b);
    u = vgc_pool_utilization(p, 1, VGC_POOL_COPY, vgc_pool_clock());
    CHECK(u >= 35 && u <= 45, "a cleared slot's last interval still counts: %u", u);
    u = vgc_pool_utilization(p, 1, VGC_POOL_COPY, vgc_pool_clock() + 1500 * MS);
    CHECK(u == 0, "and not forever: %u", u);

    /* Out of range: nothing, no crash. */
    CHECK(util(p, 2, t0) == 0 && util(p, -1, t0) == 0, "bad devices");
    vgc_pool_busy_begin(p, 5, VGC_POOL_COMPUTE, t0);
    vgc_pool_busy_end(p, 5, VGC_POOL_COMPUTE, t0);
    vgc_pool_destroy(p);
}

static int find(const struct vgc_pool_process *procs, unsigned n, uint32_t pid)
{
    for (unsigned i = 0; i < n; i++) {
        if (procs[i].pid == pid) {
            return (int)i;
        }
    }
    return -1;
}

static void test_processes(void)
{
    struct vgc_tenant uid1000 = tenant(VGC_TENANT_UID, 1000), uid2000 = tenant(VGC_TENANT_UID, 2000);
    struct vgc_tenant addr = tenant(VGC_TENANT_ADDR, 1000);    /* same bytes, other kind */
    struct vgc_pool *p = vgc_pool_create(2, 1 << 30, 8);
    int a = vgc_pool_slot_claim(p, &uid1000), b = vgc_pool_slot_claim(p, &uid1000);
    int c = vgc_pool_slot_claim(p, &uid2000), d = vgc_pool_slot_claim(p, &addr);
    int e = vgc_pool_slot_claim(p, &uid1000), none = vgc_pool_slot_claim(p, NULL);
    struct vgc_pool_process procs[8];
    unsigned n;

    /* a: memory on device 0; b: a context on device 1; c, d: memory on 0,
     * other tenants; e: same tenant, no handshake yet. */
    vgc_pool_bind(p, a);
    vgc_pool_set_pid(p, 101);
    CHECK(vgc_pool_reserve(p, 0, 5000), "reserve");
    vgc_pool_bind(p, b);
    vgc_pool_set_pid(p, 102);
    vgc_pool_set_contexts(p, 1u << 1);
    vgc_pool_bind(p, c);
    vgc_pool_set_pid(p, 103);
    vgc_pool_reserve(p, 0, 7000);
    vgc_pool_bind(p, d);
    vgc_pool_set_pid(p, 104);
    vgc_pool_reserve(p, 0, 9000);
    vgc_pool_bind(p, e);
    vgc_pool_reserve(p, 0, 11000);
    vgc_pool_bind(p, none);
    vgc_pool_set_pid(p, 105);
    vgc_pool_reserve(p, 0, 13000);

    vgc_pool_bind(p, b);
    n = vgc_pool_processes(p, 0, procs, 8);
    CHECK(n == 1 && procs[0].pid == 101 && procs[0].used == 5000,
          "device 0 for uid 1000: a alone (n %u)", n);
    n = vgc_pool_processes(p, 1, procs, 8);
    CHECK(n == 1 && procs[0].pid == 102 && procs[0].used == 0,
          "device 1: b, by its context (n %u)", n);
    vgc_pool_bind(p, c);
    n = vgc_pool_processes(p, 0, procs, 8);
    CHECK(n == 1 && procs[0].pid == 103, "uid 2000 sees itself only (n %u)", n);
    vgc_pool_bind(p, d);
    n = vgc_pool_processes(p, 0, procs, 8);
    CHECK(n == 1 && procs[0].pid == 104, "an address tenant is not a uid one (n %u)", n);
    vgc_pool_bind(p, none);
    CHECK(vgc_pool_processes(p, 0, procs, 8) == 0, "no tenant, no list");
    CHECK(vgc_pool_used(p, 0) == 5000 + 7000 + 9000 + 11000 + 13000,
          "memory used is everybody's");

    /* Room for fewer than there are: the count says how many. */
    vgc_pool_bind(p, a);
    vgc_pool_set_contexts(p, 1u << 0 | 1u << 1);
    vgc_pool_bind(p, b);
    n = vgc_pool_processes(p, 1, procs, 1);
    CHECK(n == 2 && find(procs, 1, 101) + find(procs, 1, 102) == -1,
          "two on device 1, one listed (n %u)", n);
    CHECK(vgc_pool_processes(p, 1, NULL, 0) == 2, "counting only");

    /* A slot that ends disappears; its next owner starts afresh. */
    vgc_pool_slot_clear(p, a);
    n = vgc_pool_processes(p, 0, procs, 8);
    CHECK(n == 0, "a ended: nothing on device 0 (n %u)", n);
    a = vgc_pool_slot_claim(p, &uid2000);
    vgc_pool_bind(p, a);
    CHECK(vgc_pool_processes(p, 0, procs, 8) == 1 && procs[0].pid == 103,
          "its slot, reused by uid 2000, lists uid 2000's");
    CHECK(vgc_pool_processes(p, 9, procs, 8) == 0, "a bad device lists nothing");
    vgc_pool_destroy(p);
}

/* --oversubscribe: admitted up to capacity + oversubscription, spilled is
 * what lies past the capacity, and a release gives it back. */
static void test_oversubscription(void)
{
    struct vgc_tenant t = tenant(VGC_TENANT_UID, 1000);
    struct vgc_pool *p = vgc_pool_create(1, 100, 4);
    int a = vgc_pool_slot_claim(p, &t);

    vgc_pool_bind(p, a);
    CHECK(vgc_pool_reserve(p, 0, 80) && !vgc_pool_reserve(p, 0, 60),
          "without oversubscription 140 of 100 is refused");
    vgc_pool_set_oversubscription(p, 50);
    CHECK(vgc_pool_reserve(p, 0, 60), "with 50 more, 140 of 150 fits");
    CHECK(vgc_pool_spilled(p, 0) == 40, "40 spilled, not %llu",
          (unsigned long long)vgc_pool_spilled(p, 0));
    CHECK(vgc_pool_capacity(p, 0) == 100 && vgc_pool_free(p, 0) == 0,
          "the device still looks 100 big and full: %llu, %llu free",
          (unsigned long long)vgc_pool_capacity(p, 0), (unsigned long long)vgc_pool_free(p, 0));
    CHECK(!vgc_pool_reserve(p, 0, 20), "160 of 150 is refused");
    CHECK(!vgc_pool_reserve(p, 0, 151), "a reservation larger than all of it is refused");
    vgc_pool_release(p, 0, 60);
    CHECK(vgc_pool_spilled(p, 0) == 0 && vgc_pool_free(p, 0) == 20,
          "after the release nothing spilled, 20 free");
    vgc_pool_destroy(p);
}

int main(void)
{
    test_utilization();
    test_processes();
    test_oversubscription();
    return unit_done();
}
