/*
 * registry.h - the pool's hosts, kept in etcd: who serves GPUs, and which
 * of them a client without a GPU is sent to (docs/registry.md).
 *
 * A GPU host's vgcd (`--registry URLS --advertise tcp:HOST:PORT`) keeps a
 * record of itself under PREFIX/hosts/ADDRESS, held by a lease of TTL
 * seconds that it renews: its devices, their memory and use, its clients.
 * It revokes the lease when it stops; if it dies, etcd drops the record
 * when the lease runs out.  A vgcd on a host without a GPU
 * (`--executor remote:registry --registry URLS`) reads the records every
 * second and sends each new client (a socket client, or a VM with all its
 * guest sessions) to the least loaded host that has the devices it needs,
 * with the others as fallbacks in order.
 *
 * Both run in one thread of vgcd's daemon process (registry.c), so that a
 * slow or absent etcd never holds up accepting clients or the pool; the
 * main thread hands it the host's figures and asks it for a placement,
 * both under its lock.  Workers, forked from the main thread, never touch
 * it: what a worker needs (its upstream addresses) is a string it is
 * given before the fork.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_REGISTRY_H
#define VGC_REGISTRY_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VGC_REGISTRY_MAX_DEVICES    64
#define VGC_REGISTRY_ADDRESS_MAX    128
#define VGC_REGISTRY_MAX_HOSTS      256     /* records read; the rest are ignored */

/* The lease's default time to live: a dead host stops getting clients
 * within this many seconds. */
#define VGC_REGISTRY_TTL_DEFAULT    10
#define VGC_REGISTRY_TTL_MIN        2
#define VGC_REGISTRY_TTL_MAX        3600

/* How often a placing vgcd reads the records. */
#define VGC_REGISTRY_REFRESH_MS     1000

/* What one GPU host says of itself: its record. */
struct vgc_registry_host {
    char address[VGC_REGISTRY_ADDRESS_MAX];     /* tcp:HOST:PORT, as clients dial it */
    char executor[16];          /* "cuda", "cpu", ... */
    int ndevices;               /* 1..VGC_REGISTRY_MAX_DEVICES */
    uint64_t memory;            /* each device's bytes (the smallest's); 0: not said */
    uint64_t used[VGC_REGISTRY_MAX_DEVICES];    /* bytes its clients hold, per device */
    unsigned clients;           /* worker processes: socket clients and VMs */
};

/* ---- record.c: the record's JSON, and the order of preference -------- */

/* @h as the JSON text of its record; g_free() it. */
char *vgc_registry_record_encode(const struct vgc_registry_host *h);

/*
 * Read the record @json (@len bytes, not NUL-terminated) found under the
 * key of @address into *@h.  The record comes from another host: it must
 * be a JSON object with every member of the right type and range, and
 * name @address itself.  Returns false with *err a malloc()ed reason.
 */
bool vgc_registry_record_decode(const char *json, size_t len, const char *address,
                                struct vgc_registry_host *h, char **err);

/*
 * The hosts of @hosts[0..n) that have at least @need devices, best first,
 * into @order (indices; room for @n); returns how many.  Best: fewest
 * clients per device, counting @pending[i] clients sent to host i since
 * its record was read; then the most memory free on its first @need
 * devices; then the address, so that equal hosts are taken in one order.
 */
int vgc_registry_rank(const struct vgc_registry_host *hosts, const unsigned *pending, int n,
                      int need, int *order);

/*
 * Whether @addr can be advertised: tcp:HOST:PORT with a port 1..65535,
 * no '|', '+' or ',' (the separators of executor names and options).
 * Returns false with *err a malloc()ed reason.
 */
bool vgc_registry_address_ok(const char *addr, char **err);

/* ---- registry.c: the thread ------------------------------------------ */

struct vgc_registry_config {
    const char *urls;           /* --registry: http://HOST:PORT[/PREFIX],... */
    const char *advertise;      /* --advertise ADDRESS; NULL: no record of ours */
    int ttl;                    /* the lease's seconds (advertise) */
    bool place;                 /* --executor remote:registry: read the records */
};

struct vgc_registry;

/*
 * Read the records once, now, in the calling thread, into a new array
 * *@hosts (g_free it) in address order; returns how many, or -1 with *err
 * a malloc()ed reason when etcd cannot be read.  Records that do not read
 * are left out, and said in @left_out, a line "KEY: why\n" each.
 */
int vgc_registry_list(const char *urls, struct vgc_registry_host **hosts, GString *left_out,
                      char **err);

/*
 * Read the records once, now, in the calling thread: how many hosts there
 * are into *@nhosts and the fewest devices one of them has into
 * *@min_devices (0 when none).  Returns false with *err a malloc()ed
 * reason when etcd cannot be read.
 */
bool vgc_registry_probe(const char *urls, int *nhosts, int *min_devices, char **err);

/*
 * Start the registry's thread for @cfg (copied).  @self: this host's
 * figures, when it advertises.  Returns NULL with *err a malloc()ed
 * reason for a configuration that cannot work (bad URL); an etcd that
 * does not answer is not one: the thread keeps trying, and says so in
 * vgcd's log.
 */
struct vgc_registry *vgc_registry_start(const struct vgc_registry_config *cfg,
                                        const struct vgc_registry_host *self, char **err);

/* Stop the thread; this host's record goes at once (its lease revoked). */
void vgc_registry_stop(struct vgc_registry *r);

/* This host's figures changed: the record is rewritten soon. */
void vgc_registry_set_self(struct vgc_registry *r, const struct vgc_registry_host *self);

/*
 * Where to send a new client that needs @need devices: the addresses of
 * the hosts that have them, best first, joined by '|', into @out (the
 * remote executor tries them in turn); the first is counted as sent
 * there.  Returns how many addresses were written (0: no host known).
 */
int vgc_registry_choose(struct vgc_registry *r, int need, char *out, size_t cap);

/* The registry's state for `vgcctl status`: lines appended to @out. */
void vgc_registry_describe(struct vgc_registry *r, GString *out);

#endif /* VGC_REGISTRY_H */
