/*
 * executor.c - choose an executor by name.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"

struct vgc_executor *vgc_executor_create(const char *name,
                                         const struct vgc_executor_config *cfg,
                                         char **err)
{
    if (!strcmp(name, "cpu")) {
        return vgc_cpu_executor_create(cfg, err);
    }
    if (!strcmp(name, "cuda")) {
        return vgc_cuda_executor_create(cfg, err);
    }
    if (asprintf(err, "unknown executor '%s'", name) < 0) {
        *err = NULL;
    }
    return NULL;
}
