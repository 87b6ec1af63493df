/*
 * vgc_errors.h - CUresult names and descriptions (table generated from cuda.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_ERRORS_H
#define VGC_ERRORS_H

#include <stddef.h>

struct vgc_error_entry {
    int value;
    const char *name;
    const char *text;
};

/* Sorted by value. */
extern const struct vgc_error_entry vgc_errors[];
extern const size_t vgc_errors_count;

#endif /* VGC_ERRORS_H */
