/*
 * log.c - diagnostics and the "not supported" path of unimplemented exports.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int log_enabled(void)
{
    static int enabled = -1;

    if (enabled < 0) {
        const char *v = getenv("VGC_LOG");
        enabled = v && *v && strcmp(v, "0") != 0;
    }
    return enabled;
}

static void log_v(const char *fmt, va_list ap)
{
    char line[512];

    vsnprintf(line, sizeof(line), fmt, ap);
    fprintf(stderr, "vgc: %s\n", line);
}

void vgc_log(const char *fmt, ...)
{
    va_list ap;

    if (!log_enabled()) {
        return;
    }
    va_start(ap, fmt);
    log_v(fmt, ap);
    va_end(ap);
}

void vgc_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_v(fmt, ap);
    va_end(ap);
}

CUresult vgc_unsupported(const char *symbol)
{
    /* Symbols are string literals of the generated stubs: one pointer each,
     * fewer than 1024 of them, so an open-addressed set of pointers will do. */
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static const char *seen[1024];
    size_t i;

    if (!log_enabled()) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    pthread_mutex_lock(&lock);
    i = ((uintptr_t)symbol >> 3) % 1024;
    for (size_t n = 0; n < 1024; n++, i = (i + 1) % 1024) {
        if (seen[i] == symbol) {
            break;
        }
        if (!seen[i]) {
            seen[i] = symbol;
            vgc_log("%s is not supported yet: returning CUDA_ERROR_NOT_SUPPORTED", symbol);
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return CUDA_ERROR_NOT_SUPPORTED;
}
