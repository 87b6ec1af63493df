/*
 * unit_check.h - the check of the C unit tests: one TAP line per check,
 * "ok - COND" or "not ok - FILE:LINE: COND: why", counted in unit_failures;
 * unit_done() ends the program's output and gives its exit status.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_UNIT_CHECK_H
#define VGC_UNIT_CHECK_H

#include <stdio.h>

static int unit_failures;

/* CHECK(cond, printf-style reason shown when it fails) */
#define CHECK(cond, ...) do { \
    if (!(cond)) { \
        printf("not ok - %s:%d: %s: ", __FILE__, __LINE__, #cond); \
        printf(__VA_ARGS__); \
        printf("\n"); \
        unit_failures++; \
    } else { \
        printf("ok - %s\n", #cond); \
    } \
} while (0)

static inline int unit_done(void)
{
    printf("%s\n", unit_failures ? "FAILED" : "all passed");
    return unit_failures ? 1 : 0;
}

#endif /* VGC_UNIT_CHECK_H */
