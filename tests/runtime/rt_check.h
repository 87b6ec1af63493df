/*
 * rt_check.h - TAP-style checks for the runtime-level tests (CUDA runtime,
 * cuBLAS, cuDNN programs run through the shim).
 *
 * Every check prints one line, "ok - what" or "not ok - what: detail";
 * RT_DONE() prints the plan and returns the exit status (0: all passed).
 * A watchdog (RT_TIMEOUT seconds, default 120) turns a hang into a failure.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_RT_CHECK_H
#define VGC_RT_CHECK_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rt_checks, rt_failures;

static void rt_alarm(int sig)
{
    static const char msg[] = "Bail out! watchdog: the test hung\n";
    (void)sig;
    if (write(2, msg, sizeof(msg) - 1) < 0) {
        /* nothing more to do */
    }
    _exit(3);
}

static void rt_start(void)
{
    const char *t = getenv("RT_TIMEOUT");
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, rt_alarm);
    alarm(t ? (unsigned)atoi(t) : 120);
}

static int rt_check(int ok, const char *what, const char *file, int line, long long got,
                    long long want)
{
    rt_checks++;
    if (ok) {
        printf("ok - %s\n", what);
    } else {
        rt_failures++;
        printf("not ok - %s: got %lld want %lld (%s:%d)\n", what, got, want, file, line);
    }
    return ok;
}

static int rt_eq(long long got, long long want, const char *what, const char *file, int line)
{
    return rt_check(got == want, what, file, line, got, want);
}

/* A value equal to the expected one (each argument evaluated once). */
#define RT_EQ(got, want, what) \
    rt_eq((long long)(got), (long long)(want), (what), __FILE__, __LINE__)
/* A condition. */
#define RT_OK(cond, what) rt_check(!!(cond), (what), __FILE__, __LINE__, !!(cond), 1)

static int rt_done(void)
{
    printf("1..%d\n# %d checks, %d failed\n", rt_checks, rt_checks, rt_failures);
    return rt_failures ? 1 : 0;
}

#endif /* VGC_RT_CHECK_H */
