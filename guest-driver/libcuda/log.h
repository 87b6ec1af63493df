/*
 * log.h - the shim's diagnostics, on stderr, enabled by VGC_LOG=1.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_LOG_H
#define VGC_LOG_H

#include "vgc_cuda.h"

/* Printed only with VGC_LOG set (non-empty, not "0"). */
void vgc_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Printed always: the user must act (no server, version mismatch). */
void vgc_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An export the shim does not implement: logs its name once. */
CUresult vgc_unsupported(const char *symbol);

#endif /* VGC_LOG_H */
