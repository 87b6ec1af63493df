/*
 * etcd.h - the few etcd v3 requests the registry needs, through etcd's
 * JSON gateway (HTTP POST to /v3/...), for registry.c only.
 *
 * etcd keeps the membership of the pool's GPU hosts (architecture brief:
 * reuse an existing distributed system for membership and leases): each
 * host's record is a key held by a lease that the host keeps alive, so a
 * host that dies drops out when its lease runs out, with nothing of ours
 * deciding it.  Keys and values are bytes; the gateway carries them in
 * base64, and its 64-bit numbers as decimal strings.
 *
 * Every call blocks for at most VGC_ETCD_TIMEOUT_MS per endpoint, trying
 * the endpoints in turn from the last one that answered.  None is
 * thread-safe on one handle: registry.c uses one handle from one thread.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_ETCD_H
#define VGC_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long one request may take on one endpoint, connecting included. */
#define VGC_ETCD_TIMEOUT_MS     2000

/* At most this many endpoints (an etcd cluster has 3 or 5 members). */
#define VGC_ETCD_MAX_ENDPOINTS  8

/* The largest reply read: records are small; this is a guard against a
 * server (or a wrong URL) that sends without end. */
#define VGC_ETCD_MAX_REPLY      (4u << 20)

struct vgc_etcd;

/*
 * A handle for the endpoints in @urls: comma-separated http://HOST:PORT
 * URLs of one etcd cluster, each optionally followed by the same path,
 * which is the prefix of every key this pool uses (default "/vgc"; two
 * pools can share one etcd under different prefixes).  Connects to
 * nothing yet.  Returns NULL with *err a malloc()ed reason.
 */
struct vgc_etcd *vgc_etcd_new(const char *urls, char **err);
void vgc_etcd_free(struct vgc_etcd *e);

/* The key prefix, without a trailing '/'; the endpoint that answered last. */
const char *vgc_etcd_prefix(const struct vgc_etcd *e);
const char *vgc_etcd_endpoint(const struct vgc_etcd *e);

/* A lease of @ttl seconds into *@id. */
bool vgc_etcd_lease_grant(struct vgc_etcd *e, int ttl, int64_t *id, char **err);

/*
 * Renew lease @id.  Returns the seconds it has left, 0 when it no longer
 * exists (it ran out, or was revoked: grant another), -1 with *err set
 * when etcd could not be asked.
 */
int vgc_etcd_lease_keepalive(struct vgc_etcd *e, int64_t id, char **err);

/* Revoke lease @id: its keys go at once. */
bool vgc_etcd_lease_revoke(struct vgc_etcd *e, int64_t id, char **err);

/* Set @key to @value, held by @lease (0: none). */
bool vgc_etcd_put(struct vgc_etcd *e, const char *key, const char *value, int64_t lease,
                  char **err);

/*
 * Every key that starts with @prefix: @fn(key, value, value_len, @arg)
 * for each, in key order.  The value is not NUL-terminated.
 */
typedef void (*vgc_etcd_kv_fn)(const char *key, const char *value, size_t len, void *arg);
bool vgc_etcd_range_prefix(struct vgc_etcd *e, const char *prefix, vgc_etcd_kv_fn fn,
                           void *arg, char **err);

#endif /* VGC_ETCD_H */
