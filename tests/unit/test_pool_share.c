/*
 * test_pool_share.c - compute shares (vgc_pool_share_wait) on a synthetic
 * clock: tenants that keep a device busy with kernels, one after another,
 * as their workers would, each asking the pool before every launch and
 * waiting what it says.  The schedule is simulated, so the figures are
 * exact and the same on every run, whatever the machine's load.
 *
 * Checked: busy time splits by weight (300:100 near 3:1, 100:100 near
 * 1:1, 300:100:100 near 3:1:1); a lone tenant, a tenant on another
 * device, a tenant behind which nobody has work, processes of one tenant,
 * and tenants none of which has a share are never held back; a waiter
 * that stopped asking, or whose slot was cleared, holds nobody back; every
 * wait is within the pool's bounds; status counts the waits.
 *
 * One process plays every worker by binding the pool to one slot after
 * another.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "pool.h"
#include "pool_tenant.h"
#include "unit_check.h"

#define MS      1000000ull
#define SEC     (1000 * MS)
#define T0      (1000 * SEC)        /* the synthetic clock starts here */

/* One simulated worker: a client that always has its next kernel ready. */
struct sim_worker {
    int slot;
    int dev;
    uint64_t kernel;        /* each kernel runs this long */
    bool running;
    uint64_t next;          /* when its kernel ends, or when it asks again */
    uint64_t busy;          /* time it ran kernels */
    unsigned kernels;
    unsigned waits;         /* answers that were not 0 */
    uint64_t held;          /* those answers added up */
    uint64_t min_wait, max_wait;
};

static struct vgc_tenant share_tenant(uint32_t uid, uint32_t listener, uint32_t share)
{
    struct vgc_tenant t = pool_tenant(uid, listener, 0, "");

    t.share = share;
    return t;
}

static void sim_start(struct sim_worker *w, int slot, int dev, uint64_t kernel)
{
    memset(w, 0, sizeof(*w));
    w->slot = slot;
    w->dev = dev;
    w->kernel = kernel;
    w->next = T0;
    w->min_wait = UINT64_MAX;
}

/* Worker @w's next event, at w->next: its kernel ends, or it asks. */
static void sim_step(struct vgc_pool *p, struct sim_worker *w)
{
    uint64_t now = w->next, wait;

    vgc_pool_bind(p, w->slot);
    if (w->running) {
        vgc_pool_busy_end(p, w->dev, VGC_POOL_COMPUTE, now);
        w->running = false;
        w->busy += w->kernel;
        w->kernels++;
        return;                 /* asks at once: w->next stays */
    }
    wait = vgc_pool_share_wait(p, w->dev, now);
    if (wait == 0) {
        vgc_pool_busy_begin(p, w->dev, VGC_POOL_COMPUTE, now);
        w->running = true;
        w->next = now + w->kernel;
        return;
    }
    w->waits++;
    w->held += wait;
    w->min_wait = wait < w->min_wait ? wait : w->min_wait;
    w->max_wait = wait > w->max_wait ? wait : w->max_wait;
    w->next = now + wait;
}

/* Run @n workers until @until, always the one whose event is earliest. */
static void sim_run(struct vgc_pool *p, struct sim_worker *w, int n, uint64_t until)
{
    for (;;) {
        int first = 0;

        for (int i = 1; i < n; i++) {
            if (w[i].next < w[first].next) {
                first = i;
            }
        }
        if (w[first].next >= until) {
            return;
        }
        sim_step(p, &w[first]);
    }
}

/* Every wait within the pool's bounds. */
static bool sim_bounded(const struct sim_worker *w)
{
    return w->waits == 0 || (w->min_wait >= VGC_POOL_SHARE_STEP_MIN_NS &&
                             w->max_wait <= VGC_POOL_SHARE_STEP_NS);
}

static double sim_fraction(const struct sim_worker *w, int n, int i)
{
    uint64_t total = 0;

    for (int k = 0; k < n; k++) {
        total += w[k].busy;
    }
    return total ? (double)w[i].busy / (double)total : 0;
}

/* Two tenants of @share_a and @share_b keep device 0 busy with kernels of
 * @kernel_a and @kernel_b for 20 s: A's fraction of the busy time. */
static double weighed_pair(uint32_t share_a, uint32_t share_b, uint64_t kernel_a,
                           uint64_t kernel_b, struct sim_worker *w)
{
    struct vgc_pool *p = vgc_pool_create(1, 1ull << 30, 4);
    struct vgc_tenant a = share_tenant(1, 1, share_a), b = share_tenant(2, 2, share_b);

    sim_start(&w[0], vgc_pool_slot_claim(p, &a), 0, kernel_a);
    sim_start(&w[1], vgc_pool_slot_claim(p, &b), 0, kernel_b);
    sim_run(p, w, 2, T0 + 20 * SEC);
    vgc_pool_destroy(p);
    return sim_fraction(w, 2, 0);
}

static void test_weights(void)
{
    struct sim_worker w[3];
    double f;

    f = weighed_pair(300, 100, 5 * MS, 5 * MS, w);
    CHECK(f >= 0.70 && f <= 0.80, "share 300 against 100: %.3f of the busy time "
          "(%u and %u kernels)", f, w[0].kernels, w[1].kernels);
    CHECK(w[1].waits > 0 && w[0].waits > 0,
          "both were held back at times (%u, %u waits)", w[0].waits, w[1].waits);
    CHECK(sim_bounded(&w[0]) && sim_bounded(&w[1]), "every wait within %llu..%llu ns: "
          "%llu..%llu and %llu..%llu", VGC_POOL_SHARE_STEP_MIN_NS, VGC_POOL_SHARE_STEP_NS,
          (unsigned long long)w[0].min_wait, (unsigned long long)w[0].max_wait,
          (unsigned long long)w[1].min_wait, (unsigned long long)w[1].max_wait);
    printf("# 300:100, 5 ms kernels: %.3f; kernels %u and %u\n", f, w[0].kernels,
           w[1].kernels);

    /* The weights, not the kernels, decide: the light tenant's kernels are
     * four times longer. */
    f = weighed_pair(300, 100, 2 * MS, 8 * MS, w);
    CHECK(f >= 0.70 && f <= 0.80, "share 300 with 2 ms kernels against 100 with 8 ms "
          "kernels: %.3f", f);

    f = weighed_pair(100, 100, 5 * MS, 5 * MS, w);
    CHECK(f >= 0.45 && f <= 0.55, "equal shares: %.3f", f);

    /* Share given on one side only: the other weighs the default, 100. */
    f = weighed_pair(300, 0, 5 * MS, 5 * MS, w);
    CHECK(f >= 0.70 && f <= 0.80, "share 300 against a tenant without share=: %.3f", f);

    /* Kernels longer than a step (a running kernel is never cut): the
     * split holds over the many kernels of 20 s. */
    f = weighed_pair(300, 100, 80 * MS, 80 * MS, w);
    CHECK(f >= 0.68 && f <= 0.82, "80 ms kernels: %.3f", f);
    CHECK(sim_bounded(&w[0]) && sim_bounded(&w[1]), "and every wait still bounded (%llu)",
          (unsigned long long)(w[0].max_wait > w[1].max_wait ? w[0].max_wait : w[1].max_wait));

    /* Three tenants: 300:100:100. */
    {
        struct vgc_pool *p = vgc_pool_create(1, 1ull << 30, 4);
        struct vgc_tenant t[3] = { share_tenant(1, 1, 300), share_tenant(2, 2, 100),
                                   share_tenant(3, 3, 100) };
        double f0, f1, f2;

        for (int i = 0; i < 3; i++) {
            sim_start(&w[i], vgc_pool_slot_claim(p, &t[i]), 0, 5 * MS);
        }
        sim_run(p, w, 3, T0 + 20 * SEC);
        f0 = sim_fraction(w, 3, 0);
        f1 = sim_fraction(w, 3, 1);
        f2 = sim_fraction(w, 3, 2);
        CHECK(f0 >= 0.55 && f0 <= 0.65 && f1 >= 0.15 && f1 <= 0.25 && f2 >= 0.15 &&
              f2 <= 0.25, "300:100:100: %.3f %.3f %.3f", f0, f1, f2);
        vgc_pool_destroy(p);
    }
}

/* Slot @slot runs a kernel on @dev from @from to @to. */
static void kernel(struct vgc_pool *p, int slot, int dev, uint64_t from, uint64_t to)
{
    vgc_pool_bind(p, slot);
    vgc_pool_busy_begin(p, dev, VGC_POOL_COMPUTE, from);
    vgc_pool_busy_end(p, dev, VGC_POOL_COMPUTE, to);
}

/* What the pool tells slot @slot about a launch on @dev at @now. */
static uint64_t ask(struct vgc_pool *p, int slot, int dev, uint64_t now)
{
    vgc_pool_bind(p, slot);
    return vgc_pool_share_wait(p, dev, now);
}

static void begin(struct vgc_pool *p, int slot, int dev, uint64_t now)
{
    vgc_pool_bind(p, slot);
    vgc_pool_busy_begin(p, dev, VGC_POOL_COMPUTE, now);
}

static void end(struct vgc_pool *p, int slot, int dev, uint64_t now)
{
    vgc_pool_bind(p, slot);
    vgc_pool_busy_end(p, dev, VGC_POOL_COMPUTE, now);
}

/* The status of the tenant whose share is @share. */
static bool status_of(struct vgc_pool *p, uint32_t share, struct vgc_pool_tenant_info *out)
{
    struct vgc_pool_tenant_info info[8];
    int n = vgc_pool_tenants(p, info, 8);

    for (int i = 0; i < n && i < 8; i++) {
        if (info[i].tenant.share == share) {
            *out = info[i];
            return true;
        }
    }
    return false;
}

/* Status counts what the pool said and the busy time it saw. */
static void test_status(void)
{
    struct vgc_pool *p = vgc_pool_create(1, 1ull << 30, 4);
    struct vgc_tenant a = share_tenant(1, 1, 300), b = share_tenant(2, 2, 100);
    struct vgc_pool_tenant_info ia, ib;
    struct sim_worker w[2];

    sim_start(&w[0], vgc_pool_slot_claim(p, &a), 0, 5 * MS);
    sim_start(&w[1], vgc_pool_slot_claim(p, &b), 0, 5 * MS);
    sim_run(p, w, 2, T0 + 5 * SEC);
    CHECK(status_of(p, 300, &ia) && status_of(p, 100, &ib), "both tenants in the table");
    CHECK(ia.busy_ns == w[0].busy && ib.busy_ns == w[1].busy,
          "busy time: %llu and %llu ns, as run", (unsigned long long)ia.busy_ns,
          (unsigned long long)ib.busy_ns);
    CHECK(ia.waits == w[0].waits && ib.waits == w[1].waits && ia.held_ns == w[0].held &&
          ib.held_ns == w[1].held && ib.waits > 0,
          "waits: %llu and %llu, as told (%u, %u)", (unsigned long long)ia.waits,
          (unsigned long long)ib.waits, w[0].waits, w[1].waits);
    vgc_pool_destroy(p);
}

/* Alone on a device, or on another device than the contenders. */
static void test_alone(void)
{
    struct vgc_pool *p = vgc_pool_create(2, 1ull << 30, 8);
    struct vgc_tenant a = share_tenant(1, 1, 100), b = share_tenant(2, 2, 1000);
    struct vgc_tenant c = share_tenant(3, 3, 1);
    struct sim_worker w[3];

    /* A lone tenant has device 0 to itself for 5 s (its last kernel, due
     * to end at 5 s, is not counted). */
    sim_start(&w[0], vgc_pool_slot_claim(p, &a), 0, 5 * MS);
    sim_run(p, w, 1, T0 + 5 * SEC);
    CHECK(w[0].waits == 0 && w[0].busy == 5 * SEC - 5 * MS,
          "a lone tenant is never held back: %u waits, busy %.3f s of 5", w[0].waits,
          (double)w[0].busy / SEC);

    /* B (1000) and C (1) contend on device 1 while A goes on on device 0. */
    sim_start(&w[1], vgc_pool_slot_claim(p, &b), 1, 5 * MS);
    sim_start(&w[2], vgc_pool_slot_claim(p, &c), 1, 5 * MS);
    w[0].busy = 0;
    w[0].next = w[1].next = w[2].next = T0 + 5 * SEC;
    sim_run(p, w, 3, T0 + 10 * SEC);
    /* (A's kernel that ended at 5 s counts now, the one ending at 10 s not.) */
    CHECK(w[0].waits == 0 && w[0].busy == 5 * SEC,
          "a tenant on another device than the contenders is unaffected: %u waits, "
          "busy %.3f s of 5", w[0].waits, (double)w[0].busy / SEC);
    CHECK(w[2].waits > 0 && sim_fraction(w + 1, 2, 1) < 0.01 && sim_bounded(&w[2]),
          "on device 1, share 1 against 1000: %.4f of the busy time, waits of at most %llu ns",
          sim_fraction(w + 1, 2, 1), (unsigned long long)w[2].max_wait);
    vgc_pool_destroy(p);
}

/* Two tenants without share= contend on device 0 of @p from @now for 2 s;
 * one of them used it for 500 ms before: neither is held back. */
static void no_shares(struct vgc_pool *p, uint64_t now, const char *where)
{
    struct vgc_tenant x = share_tenant(4, 4, 0), y = share_tenant(5, 5, 0);
    struct sim_worker w[2];

    sim_start(&w[0], vgc_pool_slot_claim(p, &x), 0, 5 * MS);
    sim_start(&w[1], vgc_pool_slot_claim(p, &y), 0, 5 * MS);
    kernel(p, w[0].slot, 0, now, now + 500 * MS);
    w[0].next = w[1].next = now + SEC;
    sim_run(p, w, 2, now + 3 * SEC);
    CHECK(w[0].waits == 0 && w[1].waits == 0 && w[0].busy == 2 * SEC - 5 * MS &&
          w[1].busy == 2 * SEC - 5 * MS,
          "no share= on either of two contenders, %s: neither is held back (%u, %u waits)",
          where, w[0].waits, w[1].waits);
}

/* Nobody is held back behind a tenant that has no work on the device. */
static void test_work_conserving(void)
{
    struct vgc_pool *p = vgc_pool_create(1, 1ull << 30, 4);
    struct vgc_tenant b = share_tenant(2, 2, 1000), c = share_tenant(3, 3, 1);
    int sb = vgc_pool_slot_claim(p, &b), sc = vgc_pool_slot_claim(p, &c);
    uint64_t now = T0;

    /* C (share 1) used the device 100 ms, B (share 1000) nothing yet. */
    kernel(p, sc, 0, now, now + 100 * MS);
    now += 100 * MS;
    CHECK(ask(p, sc, 0, now) == 0, "C, far over its share, goes while B has no work");
    begin(p, sc, 0, now);
    CHECK(ask(p, sb, 0, now + MS) == 0, "B, under its share, goes beside C's kernel: "
          "a kernel that runs is never cut, nor waited for");
    begin(p, sb, 0, now + MS);
    end(p, sc, 0, now + 2 * MS);
    CHECK(ask(p, sc, 0, now + 2 * MS) != 0, "C is held back while B's kernel runs");
    end(p, sb, 0, now + 3 * MS);
    /* B's client has nothing more to do: C is alone again. */
    CHECK(ask(p, sc, 0, now + 3 * MS) == 0,
          "once B's kernel ended and B asks for nothing, C goes at once");

    /* Tenants none of which has a share are left alone, here where other
     * tenants (B, C) have one ... */
    no_shares(p, now + SEC, "beside tenants with shares");
    vgc_pool_destroy(p);
    /* ... and where nobody has (the pool does not even look). */
    p = vgc_pool_create(1, 1ull << 30, 4);
    no_shares(p, T0, "in a pool without shares");
    vgc_pool_destroy(p);
}

/* Processes of one tenant never hold each other back. */
static void test_one_tenant(void)
{
    struct vgc_pool *p = vgc_pool_create(1, 1ull << 30, 4);
    struct vgc_tenant a = share_tenant(1, 1, 100), b = share_tenant(2, 2, 100);
    int a1 = vgc_pool_slot_claim(p, &a), a2 = vgc_pool_slot_claim(p, &a);
    int sb = vgc_pool_slot_claim(p, &b);
    uint64_t now = T0;

    kernel(p, a1, 0, now, now + 200 * MS);          /* A used 200 ms, B 100 */
    kernel(p, sb, 0, now + 200 * MS, now + 300 * MS);
    now += 300 * MS;
    begin(p, a1, 0, now);
    CHECK(ask(p, a2, 0, now + MS) == 0,
          "A's second process goes beside the first's kernel, A over its share or not");
    end(p, a1, 0, now + 2 * MS);
    begin(p, sb, 0, now + 2 * MS);
    CHECK(ask(p, a2, 0, now + 3 * MS) != 0,
          "but not beside a kernel of B, which is under its share");
    end(p, sb, 0, now + 4 * MS);
    vgc_pool_destroy(p);
}

/* A waiter that stopped asking, or whose slot was cleared, holds nobody back. */
static void test_waiter_gone(void)
{
    struct vgc_pool *p = vgc_pool_create(1, 1ull << 30, 4);
    struct vgc_tenant a = share_tenant(1, 1, 100), b = share_tenant(2, 2, 100);
    int sa = vgc_pool_slot_claim(p, &a), sb = vgc_pool_slot_claim(p, &b);
    uint64_t t = T0, wait;

    /* B used 100 ms; A starts a kernel; B asks and is told to wait. */
    kernel(p, sb, 0, t, t + 100 * MS);
    CHECK(ask(p, sa, 0, t + 100 * MS) == 0, "A, under, goes");
    begin(p, sa, 0, t + 100 * MS);
    CHECK(ask(p, sb, 0, t + 101 * MS) != 0, "B, over, waits behind A's kernel");
    /* A's kernel ends with A at 99 ms of use, B at 100 ms decayed for 99 ms
     * (88 ms): A is over now, and B waits. */
    end(p, sa, 0, t + 199 * MS);
    wait = ask(p, sa, 0, t + 199 * MS);
    CHECK(wait != 0, "A, over now, waits for B, who asked %llu ms ago", 98ull);
    /* B's worker was stopped and never asks again: past the staleness
     * bound its mark holds nobody back. */
    CHECK(ask(p, sa, 0, t + 101 * MS + VGC_POOL_SHARE_STALE_NS - MS) != 0,
          "A is still held back just before B's mark is stale");
    CHECK(ask(p, sa, 0, t + 101 * MS + VGC_POOL_SHARE_STALE_NS + MS) == 0,
          "B's mark stale (%llu ms): A goes", VGC_POOL_SHARE_STALE_NS / MS);

    /* A waiter whose worker ended: its slot cleared, A goes at once. */
    t += SEC;
    begin(p, sa, 0, t);
    end(p, sa, 0, t + 300 * MS);
    CHECK(ask(p, sb, 0, t + 300 * MS) == 0, "B, under after A's long kernel, goes");
    begin(p, sb, 0, t + 300 * MS);
    CHECK(ask(p, sa, 0, t + 301 * MS) != 0, "A waits behind B's kernel");
    vgc_pool_slot_clear(p, sb);
    CHECK(ask(p, sa, 0, t + 302 * MS) == 0, "B's worker ended inside it (slot cleared): A goes");
    vgc_pool_destroy(p);
}

int main(void)
{
    test_weights();
    test_status();
    test_alone();
    test_work_conserving();
    test_one_tenant();
    test_waiter_gone();
    return unit_done();
}
