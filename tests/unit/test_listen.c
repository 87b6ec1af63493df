/*
 * test_listen.c - a listener's options as vgcd reads them: priority=,
 * share=, window= and idle= (and their defaults), and the values that must stop vgcd at
 * startup with a message naming the option, leaving no socket behind.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listen.h"
#include "unit_check.h"

#define HMS(h, m, s) ((uint32_t)((h) * 3600 + (m) * 60 + (s)))

static void test_parse_window(void)
{
    static const char *bad[] = {
        "", "08:00", "08:00-", "-20:00", "8:00-20:00", "08:00-20:0", "24:00-01:00",
        "08:60-09:00", "08:00:60-09:00", "08:00-08:00", "08:00:00-08:00", "08-20",
        "08:00-20:00x", "08:00 -20:00", "08:00:00:00-09:00", "+8:00-09:00",
    };
    uint32_t from = 7, to = 7;

    CHECK(vgcd_parse_window("08:00-20:00", &from, &to) && from == HMS(8, 0, 0) &&
          to == HMS(20, 0, 0), "08:00-20:00 (%u %u)", from, to);
    CHECK(vgcd_parse_window("22:30:15-06:00", &from, &to) && from == HMS(22, 30, 15) &&
          to == HMS(6, 0, 0), "22:30:15-06:00 wraps (%u %u)", from, to);
    CHECK(vgcd_parse_window("00:00:00-23:59:59", &from, &to) && from == 0 &&
          to == HMS(23, 59, 59), "the whole day but a second");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        from = to = 7;
        CHECK(!vgcd_parse_window(bad[i], &from, &to) && from == 7 && to == 7,
              "'%s' is refused", bad[i]);
    }
}

static void test_options(void)
{
    static const struct { const char *opts, *want; } bad[] = {
        { ",priority=101", "priority=101: want a number, 0..100" },
        { ",priority=-1", "priority=-1: want a number" },
        { ",priority=", "priority=: want a number" },
        { ",priority=high", "priority=high: want a number" },
        { ",priority=5x", "priority=5x: want a number" },
        { ",window=8-20", "window=8-20: want HH:MM[:SS]-HH:MM[:SS]" },
        { ",window=08:00-08:00", "window=08:00-08:00: want" },
        { ",window=", "window=: want" },
        { ",share=0", "share=0: want a weight, 1..1000" },
        { ",share=1001", "share=1001: want a weight, 1..1000" },
        { ",share=abc", "share=abc: want a weight" },
        { ",share=", "share=: want a weight" },
        { ",share=-5", "share=-5: want a weight" },
        { ",share=3x", "share=3x: want a weight" },
        { ",idle=0", "idle=0: want a duration" },
        { ",idle=0s", "idle=0s: want a duration" },
        { ",idle=abc", "idle=abc: want a duration" },
        { ",idle=-5", "idle=-5: want a duration" },
        { ",idle=", "idle=: want a duration" },
        { ",idle=10x", "idle=10x: want a duration" },
        { ",idle=1.5m", "idle=1.5m: want a duration" },
        { ",idle=10mm", "idle=10mm: want a duration" },
        { ",idle=169h", "idle=169h: want a duration, 1s..168h" },
        { ",idle=99999999999999999999", "want a duration" },
        { ",prio=1", "unknown option 'prio'" },
    };
    char dir[] = "/tmp/vgc-listen-XXXXXX", addr[256], path[200];
    struct vgcd_listener l;
    char *err = NULL;

    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    snprintf(path, sizeof(path), "%s/s", dir);
    snprintf(addr, sizeof(addr), "unix:%s", path);
    CHECK(vgcd_listener_open(&l, addr, &err) == 0 &&
          l.policy.priority == VGC_POOL_PRIORITY_DEFAULT && !l.policy.window &&
          l.policy.share == 0 && l.policy.idle == 0,
          "no options: priority %d, no window, no share", VGC_POOL_PRIORITY_DEFAULT);
    vgcd_listener_close(&l);
    snprintf(addr, sizeof(addr), "unix:%s,name=train,priority=10,window=20:00-06:00:05", path);
    CHECK(vgcd_listener_open(&l, addr, &err) == 0 && l.policy.priority == 10 &&
          l.policy.window && l.policy.window_from == HMS(20, 0, 0) &&
          l.policy.window_to == HMS(6, 0, 5) && !strcmp(l.policy.name, "train"),
          "priority=10,window=20:00-06:00:05");
    vgcd_listener_close(&l);
    snprintf(addr, sizeof(addr), "unix:%s,priority=0", path);
    CHECK(vgcd_listener_open(&l, addr, &err) == 0 && l.policy.priority == 0, "priority=0");
    vgcd_listener_close(&l);
    snprintf(addr, sizeof(addr), "unix:%s,priority=100", path);
    CHECK(vgcd_listener_open(&l, addr, &err) == 0 && l.policy.priority == 100, "priority=100");
    vgcd_listener_close(&l);
    snprintf(addr, sizeof(addr), "unix:%s,share=1,name=batch", path);
    CHECK(vgcd_listener_open(&l, addr, &err) == 0 && l.policy.share == 1 &&
          !strcmp(l.policy.name, "batch"), "share=1");
    vgcd_listener_close(&l);
    snprintf(addr, sizeof(addr), "unix:%s,share=1000", path);
    CHECK(vgcd_listener_open(&l, addr, &err) == 0 && l.policy.share == 1000, "share=1000");
    vgcd_listener_close(&l);
    {
        static const struct { const char *opt; uint32_t sec; } good[] = {
            { "idle=2", 2 }, { "idle=30s", 30 }, { "idle=10m", 600 }, { "idle=2h", 7200 },
            { "idle=168h", 168 * 3600 },
        };

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
            snprintf(addr, sizeof(addr), "unix:%s,priority=90,%s", path, good[i].opt);
            CHECK(vgcd_listener_open(&l, addr, &err) == 0 && l.policy.idle == good[i].sec &&
                  l.policy.priority == 90, "%s is %u s", good[i].opt, good[i].sec);
            vgcd_listener_close(&l);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(addr, sizeof(addr), "unix:%s%s", path, bad[i].opts);
        err = NULL;
        CHECK(vgcd_listener_open(&l, addr, &err) < 0 && err && strstr(err, bad[i].want) &&
              access(path, F_OK) != 0, "%s: '%s'", bad[i].opts, err ? err : "(accepted)");
        free(err);
    }
    rmdir(dir);
}

int main(void)
{
    test_parse_window();
    test_options();
    return unit_done();
}
