/*
 * test_pool_preempt.c - priorities, windows and preemption in the pool:
 * which slots are chosen (lowest priority first, then the most memory,
 * never equal or higher, nobody for nothing), windows that wrap midnight,
 * and the whole exchange of a reservation that preempts: a forked worker
 * of high priority reserves on a full device, this process plays the
 * daemon (takes the mark, "ends" the victim by clearing its slot) and the
 * reservation then succeeds; without the daemon it gives up in bounded
 * time.
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

static struct vgc_tenant tenant(uint32_t uid, uint32_t listener, uint64_t memory,
                                uint32_t priority, const char *name)
{
    struct vgc_tenant t = pool_tenant(uid, listener, memory, name);

    t.priority = priority;
    return t;
}

static void test_victims(void)
{
    struct vgc_pool_holder h[6];
    int n;

    /* slot: priority, MiB */
    const struct { int slot; uint32_t prio; uint64_t mb; } in[6] = {
        { 0, 30, 100 }, { 1, 10, 50 }, { 2, 10, 80 }, { 3, 50, 500 }, { 4, 90, 900 },
        { 5, 20, 10 },
    };
    for (int i = 0; i < 6; i++) {
        h[i] = (struct vgc_pool_holder){ .slot = in[i].slot, .priority = in[i].prio,
                                         .used = in[i].mb * MB };
    }
    n = vgc_pool_choose_victims(h, 6, 50, 60 * MB, 0);
    CHECK(n == 1 && h[0].slot == 2, "60M: the lowest priority, its biggest holder (%d, slot %d)",
          n, h[0].slot);
    n = vgc_pool_choose_victims(h, 6, 50, 130 * MB, 0);
    CHECK(n == 2 && h[0].slot == 2 && h[1].slot == 1,
          "130M: both of priority 10 before anyone of 20 or 30 (%d: %d %d)", n, h[0].slot,
          h[1].slot);
    n = vgc_pool_choose_victims(h, 6, 50, 135 * MB, 0);
    CHECK(n == 3 && h[2].slot == 5, "135M: then priority 20 (%d, %d)", n, h[2].slot);
    n = vgc_pool_choose_victims(h, 6, 50, 240 * MB, 0);
    CHECK(n == 4 && h[3].slot == 0, "240M: all four below 50 (%d)", n);
    n = vgc_pool_choose_victims(h, 6, 50, 241 * MB, 0);
    CHECK(n == 0, "241M: the 500M of priority 50 is never taken by 50; nobody for nothing (%d)",
          n);
    n = vgc_pool_choose_victims(h, 6, 10, 1 * MB, 0);
    CHECK(n == 0, "priority 10 preempts nobody: none lower (%d)", n);
    n = vgc_pool_choose_victims(h, 6, 100, 740 * MB, 0);
    CHECK(n == 5 && h[4].slot == 3, "priority 100: 740M, everybody up to 50 (%d)", n);
    n = vgc_pool_choose_victims(h, 6, 100, 741 * MB, 0);
    CHECK(n == 6 && h[5].slot == 4, "and 90's last (%d)", n);
    n = vgc_pool_choose_victims(h, 6, 100, 0, 0);
    CHECK(n == 0, "nothing needed, nobody chosen (%d)", n);
}

static void test_windows(void)
{
    struct vgc_tenant day = tenant(1, 1, 0, 50, "day"), night = day, always = day;

    day.window = true;
    day.window_from = HMS(8, 0, 0);
    day.window_to = HMS(20, 0, 0);
    night.window = true;
    night.window_from = HMS(22, 0, 0);
    night.window_to = HMS(6, 0, 30);
#define OPEN(t, h, m, s) vgc_pool_window_open(&(t), HMS(h, m, s))
    CHECK(!OPEN(day, 7, 59, 59) && OPEN(day, 8, 0, 0) && OPEN(day, 19, 59, 59) &&
          !OPEN(day, 20, 0, 0) && !OPEN(day, 0, 0, 0),
          "08:00-20:00: from inclusive, to exclusive");
    CHECK(OPEN(night, 22, 0, 0) && OPEN(night, 23, 59, 59) && OPEN(night, 0, 0, 0) &&
          OPEN(night, 6, 0, 29) && !OPEN(night, 6, 0, 30) && !OPEN(night, 12, 0, 0) &&
          !OPEN(night, 21, 59, 59), "22:00-06:00:30 wraps midnight");
    CHECK(OPEN(always, 3, 0, 0) && OPEN(always, 15, 0, 0), "no window: always");
#undef OPEN
    CHECK(vgc_pool_time_of_day() < 86400, "the time of day is one");
}

/* Windows in the table: marked when closed, only slots that hold something. */
static void test_window_marks(void)
{
    struct vgc_tenant night = tenant(1, 1, 0, 50, "night"), day = tenant(2, 2, 0, 50, "day");
    struct vgc_pool *p = vgc_pool_create(2, 1024 * MB, 8);
    struct vgc_pool_preemption pe;
    int holder, idle, other, n;
    uint32_t from = 0, to = 0;
    char line[256];

    night.window = true;
    night.window_from = HMS(22, 0, 0);
    night.window_to = HMS(6, 0, 0);
    holder = vgc_pool_slot_claim(p, &night);
    idle = vgc_pool_slot_claim(p, &night);
    other = vgc_pool_slot_claim(p, &day);
    vgc_pool_bind(p, holder);
    CHECK(vgc_pool_in_window(p, HMS(23, 0, 0), NULL, NULL), "night at 23:00 may make contexts");
    CHECK(!vgc_pool_in_window(p, HMS(12, 0, 0), &from, &to) && from == HMS(22, 0, 0) &&
          to == HMS(6, 0, 0), "not at noon, and says its window");
    vgc_pool_acquire(p, 1, NULL);
    CHECK(vgc_pool_reserve(p, 1, 64 * MB), "night holds 64M on device 1");
    vgc_pool_bind(p, other);
    vgc_pool_acquire(p, 0, NULL);
    CHECK(vgc_pool_reserve(p, 0, 64 * MB), "day holds 64M");
    n = vgc_pool_preempt_windows(p, HMS(23, 0, 0));
    CHECK(n == 0 && vgc_pool_preempt_waiting(p) == 0, "inside the window nobody (%d)", n);
    n = vgc_pool_preempt_windows(p, HMS(6, 0, 0));
    CHECK(n == 1 && vgc_pool_preempt_waiting(p) == 1,
          "at 06:00 the holder only: not its idle process, not the other tenant (%d)", n);
    CHECK(vgc_pool_preempt_windows(p, HMS(6, 0, 1)) == 0, "marked once");
    CHECK(!vgc_pool_preempt_take(p, idle, &pe) && !vgc_pool_preempt_take(p, other, &pe),
          "nothing to take for the others");
    CHECK(vgc_pool_preempt_take(p, holder, &pe) && pe.reason == VGC_PREEMPT_WINDOW &&
          pe.dev == -1 && pe.used == 64 * MB && !strcmp(pe.tenant, "night"),
          "the holder's mark: window, every device, 64M (reason %d, %llu)", pe.reason,
          (unsigned long long)pe.used);
    vgc_pool_preemption_describe(&pe, line, sizeof(line));
    CHECK(strstr(line, "window 22:00:00-06:00:00 closed") && strstr(line, "64.0 MiB"),
          "described: %s", line);
    CHECK(!vgc_pool_preempt_take(p, holder, &pe) && vgc_pool_preempt_waiting(p) == 0,
          "taken once");
    vgc_pool_slot_clear(p, holder);
    vgc_pool_bind(p, other);
    CHECK(vgc_pool_used(p, 1) == 0, "its slot cleared, device 1 is empty");
    vgc_pool_destroy(p);
}

/*
 * A forked worker of tenant @who reserves @bytes on device 0; returns its
 * pid.  It exits 0 when the reservation succeeded, 1 when refused.
 */
static pid_t reserve_in_child(struct vgc_pool *p, int slot, uint64_t bytes)
{
    pid_t pid = fork();

    if (pid == 0) {
        vgc_pool_bind(p, slot);
        _exit(vgc_pool_reserve(p, 0, bytes) ? 0 : 1);
    }
    return pid;
}

static int child_status(pid_t pid)
{
    int st;

    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

static void test_preempt_memory(void)
{
    struct vgc_tenant low = tenant(1, 1, 0, 10, "low"), low2 = tenant(2, 2, 0, 10, "low2");
    struct vgc_tenant high = tenant(3, 3, 0, 90, "high");
    struct vgc_tenant capped = tenant(4, 4, 100 * MB, 90, "capped");
    struct vgc_pool *p = vgc_pool_create(1, 256 * MB, 8);
    struct vgc_pool_preemption pe;
    int sl = vgc_pool_slot_claim(p, &low), sl2 = vgc_pool_slot_claim(p, &low2);
    int sh = vgc_pool_slot_claim(p, &high), sc = vgc_pool_slot_claim(p, &capped);
    uint64_t t0;
    bool taken = false;
    char line[256];
    pid_t pid;
    int rc;

    vgc_pool_bind(p, sl);
    CHECK(vgc_pool_reserve(p, 0, 200 * MB), "low holds 200M of 256M");
    /* Equal priority: refused at once, nobody marked. */
    vgc_pool_bind(p, sl2);
    CHECK(!vgc_pool_reserve(p, 0, 128 * MB) && vgc_pool_preempt_waiting(p) == 0,
          "low2 (same priority) is refused 128M and preempts nobody");
    /* Its own limit in the way too: nobody is preempted for that. */
    vgc_pool_bind(p, sc);
    CHECK(vgc_pool_reserve(p, 0, 50 * MB), "capped (priority 90, memory=100M) holds 50M");
    CHECK(!vgc_pool_reserve(p, 0, 60 * MB) && vgc_pool_preempt_waiting(p) == 0,
          "60M more: over its own limit (and the full device): preempts nobody");
    vgc_pool_slot_clear(p, sc);
    /* High priority: the child waits while this process, the daemon,
     * takes the mark and clears the victim's slot. */
    pid = reserve_in_child(p, sh, 128 * MB);
    t0 = vgc_pool_clock();
    while (!taken && vgc_pool_clock() - t0 < 5000000000ull) {
        taken = vgc_pool_preempt_take(p, sl, &pe);
        if (!taken) {
            usleep(1000);
        }
    }
    CHECK(taken && pe.reason == VGC_PREEMPT_MEMORY && pe.dev == 0 && pe.used == 200 * MB &&
          !strcmp(pe.tenant, "low") && pe.priority == 10 && !strcmp(pe.by, "high") &&
          pe.by_priority == 90, "low is marked for high's memory on device 0 (taken %d)", taken);
    CHECK(!vgc_pool_preempt_take(p, sl2, &pe), "low2 holds nothing on the device: not marked");
    vgc_pool_preemption_describe(&pe, line, sizeof(line));
    CHECK(strstr(line, "preempted tenant low (priority 10): memory for tenant high (priority 90) "
                 "on device 0; frees 200.0 MiB") != NULL, "described: %s", line);
    vgc_pool_slot_clear(p, sl);
    rc = child_status(pid);
    CHECK(rc == 0, "high's 128M succeeds once low's slot is cleared (exit %d)", rc);
    vgc_pool_bind(p, sh);
    CHECK(vgc_pool_tenant_used(p, 0) == 128 * MB && vgc_pool_used(p, 0) == 128 * MB,
          "high holds 128M, nobody else anything");
    /* Lower priority asking what high holds: refused, high untouched. */
    vgc_pool_bind(p, sl2);
    CHECK(!vgc_pool_reserve(p, 0, 200 * MB) && vgc_pool_preempt_waiting(p) == 0,
          "low2 asking 200M preempts nobody of higher priority");
    /* Nobody acts on the mark: the reservation gives up after the bound. */
    CHECK(vgc_pool_reserve(p, 0, 100 * MB), "low2 holds 100M");
    vgc_pool_bind(p, sh);
    t0 = vgc_pool_clock();
    CHECK(!vgc_pool_reserve(p, 0, 100 * MB), "high asking 100M more, nobody acting: refused");
    t0 = (vgc_pool_clock() - t0) / 1000000;
    CHECK(t0 >= VGC_POOL_PREEMPT_WAIT_MS - 50 && t0 < VGC_POOL_PREEMPT_WAIT_MS + 1000,
          "after waiting the bound (%llu ms)", (unsigned long long)t0);
    CHECK(vgc_pool_preempt_take(p, sl2, &pe) && pe.used == 100 * MB,
          "the mark stays for whoever acts later");
    vgc_pool_destroy(p);
}

/* With oversubscription a full device spills first, and preempts only
 * once the spill room is used up too. */
static void test_preempt_oversubscribed(void)
{
    struct vgc_tenant low = tenant(1, 1, 0, 10, "low"), high = tenant(3, 3, 0, 90, "high");
    struct vgc_pool *p = vgc_pool_create(1, 256 * MB, 4);
    struct vgc_pool_preemption pe;
    int sl = vgc_pool_slot_claim(p, &low), sh = vgc_pool_slot_claim(p, &high);
    bool taken = false;
    uint64_t t0;
    pid_t pid;
    int rc;

    vgc_pool_set_oversubscription(p, 64 * MB);
    vgc_pool_bind(p, sl);
    CHECK(vgc_pool_reserve(p, 0, 280 * MB), "low holds 280M of 256M + 64M");
    vgc_pool_bind(p, sh);
    CHECK(vgc_pool_reserve(p, 0, 40 * MB) && vgc_pool_preempt_waiting(p) == 0,
          "high's 40M spills: nobody preempted");
    pid = reserve_in_child(p, sh, 64 * MB);
    t0 = vgc_pool_clock();
    while (!taken && vgc_pool_clock() - t0 < 5000000000ull) {
        taken = vgc_pool_preempt_take(p, sl, &pe);
        if (!taken) {
            usleep(1000);
        }
    }
    CHECK(taken && pe.used == 280 * MB, "64M more does not fit the spill room: low is marked");
    vgc_pool_slot_clear(p, sl);
    rc = child_status(pid);
    CHECK(rc == 0, "and high gets it (exit %d)", rc);
    vgc_pool_destroy(p);
}

int main(void)
{
    test_victims();
    test_windows();
    test_window_marks();
    test_preempt_memory();
    test_preempt_oversubscribed();
    return unit_done();
}
