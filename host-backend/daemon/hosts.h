/*
 * hosts.h - vgcd and the registry of the pool's hosts (hosts.c): its
 * options, this host's record, and where a new client is sent.
 *
 * Built with -DVGCD_NO_REGISTRY (tests/gpu/build-minimal.sh, on a machine
 * without libcurl and json-glib) vgcd refuses the registry's options and
 * the rest of it is absent.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGCD_HOSTS_H
#define VGCD_HOSTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "registry.h"

struct vgcd;

/* The executor that places each client on a host of the registry. */
#define VGCD_REGISTRY_EXECUTOR  "remote:registry"

/* Room for the executor name a placed client's worker gets: "remote:"
 * and the addresses of the hosts to try, best first. */
#define VGCD_PLACEMENT_MAX      1024

struct vgcd_hosts_options {
    const char *urls;           /* --registry */
    const char *advertise;      /* --advertise, as given (options included) */
    char address[VGC_REGISTRY_ADDRESS_MAX];     /* --advertise's address */
    int ttl;                    /* --advertise's ttl=, seconds */
};

/*
 * Check the registry options against the command line before anything
 * starts: --advertise needs --registry, an address other hosts can dial
 * that is one of the tcp --listen ports, and a ttl in range; the placing
 * executor needs --registry and cannot aggregate.  Fills @o's address and
 * ttl.  Says why not on stderr and returns false.
 */
bool vgcd_hosts_check(struct vgcd_hosts_options *o, const char *executor,
                      const char *const *listen, int nlisten);

/*
 * For --executor remote:registry: how many devices each client sees,
 * *@ndevices (--devices when given, else the fewest a host of the
 * registry has now).  Says why not on stderr and returns false when etcd
 * cannot be read, or no host is there, and --devices was not given.
 */
bool vgcd_hosts_probe(const struct vgcd_hosts_options *o, int *ndevices);

/*
 * Start the registry's thread when the options ask for it (d->registry
 * stays NULL otherwise): this host's record when advertising (@memory:
 * each device's bytes, 0 when unknown), the hosts' records when placing.
 * Says why not on stderr and returns false.
 */
bool vgcd_hosts_start(struct vgcd *d, const struct vgcd_hosts_options *o, uint64_t memory);

/* This host's figures may have changed (a client came or went, a tick). */
void vgcd_hosts_update(struct vgcd *d);

/* Stop the registry's thread: this host's record goes at once. */
void vgcd_hosts_stop(struct vgcd *d);

/* The registry's lines of `vgcctl status`, appended to @out. */
void vgcd_hosts_describe(struct vgcd *d, GString *out);

/*
 * The executor name for a new client's worker: @d's own, or with the
 * placing executor, "remote:" and the hosts to try, into @buf (@cap
 * bytes).  The host tried first into @first (@first_cap bytes; "" for
 * none, or without the placing executor).  Logs where @peer is sent.
 */
const char *vgcd_hosts_place(struct vgcd *d, const char *peer, char *buf, size_t cap,
                             char *first, size_t first_cap);

#endif /* VGCD_HOSTS_H */
