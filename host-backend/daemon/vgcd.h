/*
 * vgcd.h - the daemon's state, shared by its main loop (vgcd.c) and its
 * control socket (control.c).  Nothing outside host-backend/daemon/
 * includes this.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGCD_H
#define VGCD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "executor.h"
#include "listen.h"
#include "pool.h"

/* Listeners at once: one per VM, so room for a host full of them. */
#define VGCD_MAX_LISTEN 256

struct vgcd_control;
struct vgc_registry;

struct vgcd_worker_slot {
    pid_t pid;                  /* 0: free */
    int pool_slot;
    int is_vm;                  /* a VM's worker (vhost-user listener): its
                                   guest sessions are its children */
    int preempted;              /* we ended it for the pool (docs/pool.md) */
    uint64_t swap_deadline;     /* asked to swap out: ended if it has not begun
                                   by then (vgc_pool_clock); 0: not asked */
    struct vgc_tenant tenant;
    char peer[128];
    char listener[160];         /* name of the listener it came from */
    char host[128];             /* the registry's host it was sent to first
                                   (--executor remote:registry), else "" */
};

struct vgcd {
    struct vgcd_listener listeners[VGCD_MAX_LISTEN];
    int nlisteners;
    const char *executor;
    struct vgc_executor_config cfg;
    struct vgc_pool *pool;
    struct vgcd_worker_slot *workers;
    int max_workers;
    int sigfd;
    int timerfd;                /* every second: windows, and marks left over */
    uint64_t vm_serial;         /* names each VM's tenant: one per connection */
    struct vgcd_control *control;   /* NULL without --control */
    struct vgc_registry *registry;  /* NULL without --registry (hosts.c) */
    bool places;                /* --executor remote:registry: each client is
                                   sent to a host of the registry */
    uint64_t announced_memory;  /* each device's bytes, as advertised */
};

/*
 * Open a listener at @addr (the syntax of --listen, passed whole to
 * vgcd_listener_open) and add it to the poll loop.  Returns 0, or -1 with
 * *err a malloc()ed message.
 */
int vgcd_add_listener(struct vgcd *d, const char *addr, char **err);

/*
 * Close listener @i: its socket file is removed, and the workers it
 * accepted on a vhost-user listener (a VM's) are sent SIGTERM, which ends
 * that VM's guest sessions too.  Clients of unix and TCP listeners keep
 * their sessions.  Returns how many workers were told to stop.
 */
int vgcd_remove_listener(struct vgcd *d, int i);

#endif /* VGCD_H */
