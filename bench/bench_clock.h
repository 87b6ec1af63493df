/*
 * bench_clock.h - what every benchmark here times with: the monotonic clock
 * in nanoseconds, and the order of u64 samples for qsort (medians).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_BENCH_CLOCK_H
#define VGC_BENCH_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

#endif /* VGC_BENCH_CLOCK_H */
