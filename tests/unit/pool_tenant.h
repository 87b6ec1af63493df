/*
 * pool_tenant.h - the pool's unit tests' tenant: uid @uid through listener
 * @listener, whose policy is a memory limit and a name (priority 0, every
 * device); tests set other policy fields on the copy.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_POOL_TENANT_H
#define VGC_POOL_TENANT_H

#include <stdio.h>
#include <string.h>

#include "pool.h"

static inline struct vgc_tenant pool_tenant(uint32_t uid, uint32_t listener, uint64_t memory,
                                            const char *name)
{
    struct vgc_tenant t;

    memset(&t, 0, sizeof(t));
    t.kind = VGC_TENANT_UID;
    memcpy(t.id, &uid, sizeof(uid));
    t.listener = listener;
    t.memory = memory;
    snprintf(t.name, sizeof(t.name), "%s", name);
    return t;
}

#endif /* VGC_POOL_TENANT_H */
