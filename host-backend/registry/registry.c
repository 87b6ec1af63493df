/*
 * registry.c - the registry's thread: this host's record kept alive, and
 * the other hosts' records read for placement (registry.h says who does
 * what).
 *
 * The thread wakes every VGC_REGISTRY_TICK_MS.  Announcing: without a
 * lease it grants one and writes the record under it; with one, it renews
 * it every third of its TTL, so that two renewals can fail before the
 * record goes, and rewrites the record when the main thread changed the
 * figures.  A renewal that finds the lease gone (etcd was away longer
 * than the TTL) starts over with a new lease.  Placing: it reads every
 * record each VGC_REGISTRY_REFRESH_MS and replaces its list of hosts; when
 * etcd cannot be read it keeps the last list, whose hosts may well still
 * serve (the remote executor tries the next one when one does not answer).
 *
 * Log lines say when etcd stops and starts answering, and when a record
 * does not read; never once per tick.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etcd.h"
#include "registry.h"

#define VGC_REGISTRY_TICK_MS    250

/* How soon to ask etcd again after it did not answer. */
#define VGC_REGISTRY_RETRY_MS   1000

/* A client sent to a host counts on top of its record for this long, the
 * time its record takes to show it (the host rewrites it within its 1 s
 * timer's tick, and we read it within a refresh). */
#define VGC_REGISTRY_PENDING_MS 3000

/* The sendings remembered per host, to count those of the last
 * VGC_REGISTRY_PENDING_MS: more in that time count as this many. */
#define VGC_REGISTRY_RECENT     32

/* What we sent one host, by address: kept while its record comes and goes. */
struct registry_sent {
    char address[VGC_REGISTRY_ADDRESS_MAX];
    unsigned total;             /* clients sent there since we started */
    uint64_t recent[VGC_REGISTRY_RECENT];   /* when, ms; a ring */
    unsigned next;
};

struct vgc_registry {
    struct vgc_etcd *etcd;      /* the thread's only */
    char *urls;
    char *key;                  /* our record's key; NULL: no record */
    int ttl;
    bool place;
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t lock;       /* guards what follows */
    pthread_cond_t wake;
    bool stopping;
    bool kicked;                /* the figures changed: do not wait out the tick */
    struct vgc_registry_host self;
    bool self_changed;
    int64_t lease;              /* 0: none */
    bool announce_down;         /* the last try to announce failed */
    char announce_error[256];
    struct vgc_registry_host *hosts;    /* the last list read */
    int nhosts;
    struct registry_sent *sent; /* VGC_REGISTRY_MAX_HOSTS of them */
    int nsent;
    int ignored;                /* records that did not read */
    uint64_t read_at;           /* when it was read, ms (0: never) */
    bool read_down;             /* the last read failed */
    char read_error[256];
};

static uint64_t registry_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- reading the records --------------------------------------------- */

struct registry_read {
    const char *hosts_prefix;
    struct vgc_registry_host *hosts;
    int n;
    int ignored;
    GString *complaints;        /* records that did not read, for the log */
};

static void registry_read_one(const char *key, const char *value, size_t len, void *arg)
{
    struct registry_read *rd = arg;
    const char *address = key + strlen(rd->hosts_prefix);
    char *why = NULL;

    if (rd->n == VGC_REGISTRY_MAX_HOSTS) {
        rd->ignored++;
        return;
    }
    if (!vgc_registry_record_decode(value, len, address, &rd->hosts[rd->n], &why)) {
        rd->ignored++;
        g_string_append_printf(rd->complaints, "%s: %s\n", key, why ? why : "unreadable");
        free(why);
        return;
    }
    rd->n++;
}

/*
 * Every record under @e's prefix into a new array *@hosts (g_free it);
 * returns how many, or -1 with *err set.
 */
static int registry_read(struct vgc_etcd *e, struct vgc_registry_host **hosts, int *ignored,
                         GString *complaints, char **err)
{
    char *prefix = g_strconcat(vgc_etcd_prefix(e), "/hosts/", NULL);
    struct registry_read rd = {
        .hosts_prefix = prefix,
        .hosts = g_new0(struct vgc_registry_host, VGC_REGISTRY_MAX_HOSTS),
        .complaints = complaints,
    };
    bool ok = vgc_etcd_range_prefix(e, prefix, registry_read_one, &rd, err);

    g_free(prefix);
    if (!ok) {
        g_free(rd.hosts);
        return -1;
    }
    *hosts = rd.hosts;
    *ignored = rd.ignored;
    return rd.n;
}

/* One log line per record left out (@lines: "KEY: why\n" each). */
static void registry_log_left_out(const char *lines)
{
    for (const char *l = lines, *nl; *l; l = nl + 1) {
        nl = strchr(l, '\n');
        if (!nl) {
            break;
        }
        fprintf(stderr, "vgcd: registry: record left out: %.*s\n", (int)(nl - l), l);
    }
}

int vgc_registry_list(const char *urls, struct vgc_registry_host **hosts, GString *left_out,
                      char **err)
{
    struct vgc_etcd *e = vgc_etcd_new(urls, err);
    int n, ignored;

    if (!e) {
        return -1;
    }
    n = registry_read(e, hosts, &ignored, left_out, err);
    vgc_etcd_free(e);
    return n;
}

bool vgc_registry_probe(const char *urls, int *nhosts, int *min_devices, char **err)
{
    struct vgc_registry_host *hosts;
    GString *left_out = g_string_new(NULL);
    int n = vgc_registry_list(urls, &hosts, left_out, err);

    registry_log_left_out(left_out->str);
    g_string_free(left_out, TRUE);
    if (n < 0) {
        return false;
    }
    *nhosts = n;
    *min_devices = 0;
    for (int i = 0; i < n; i++) {
        if (!*min_devices || hosts[i].ndevices < *min_devices) {
            *min_devices = hosts[i].ndevices;
        }
    }
    g_free(hosts);
    return true;
}

static void registry_refresh(struct vgc_registry *r, GString *last_complaints)
{
    struct vgc_registry_host *hosts = NULL, *old;
    GString *complaints = g_string_new(NULL);
    char *err = NULL;
    int ignored = 0;
    int n = registry_read(r->etcd, &hosts, &ignored, complaints, &err);
    uint64_t now = registry_now_ms();

    pthread_mutex_lock(&r->lock);
    if (n < 0) {
        if (!r->read_down) {
            fprintf(stderr, "vgcd: registry: cannot read the hosts (%s); placing by the "
                    "last list read\n", err ? err : "?");
        }
        r->read_down = true;
        snprintf(r->read_error, sizeof(r->read_error), "%s", err ? err : "?");
        pthread_mutex_unlock(&r->lock);
        free(err);
        g_string_free(complaints, TRUE);
        return;
    }
    if (r->read_down) {
        fprintf(stderr, "vgcd: registry: reading the hosts again from %s\n",
                vgc_etcd_endpoint(r->etcd));
    }
    r->read_down = false;
    old = r->hosts;
    r->hosts = hosts;
    r->nhosts = n;
    r->ignored = ignored;
    r->read_at = now;
    pthread_mutex_unlock(&r->lock);
    g_free(old);
    if (strcmp(complaints->str, last_complaints->str)) {
        registry_log_left_out(complaints->str);
    }
    g_string_assign(last_complaints, complaints->str);
    g_string_free(complaints, TRUE);
}

/* What we sent to @address; NULL when nothing yet and @add is false, or
 * when the table is full. */
static struct registry_sent *registry_sent_to(struct vgc_registry *r, const char *address,
                                              bool add)
{
    for (int i = 0; i < r->nsent; i++) {
        if (!strcmp(r->sent[i].address, address)) {
            return &r->sent[i];
        }
    }
    if (!add || r->nsent == VGC_REGISTRY_MAX_HOSTS) {
        return NULL;
    }
    snprintf(r->sent[r->nsent].address, sizeof(r->sent[0].address), "%s", address);
    return &r->sent[r->nsent++];
}

/* Clients sent to @address that its record may not show yet. */
static unsigned registry_pending(struct vgc_registry *r, const char *address, uint64_t now)
{
    const struct registry_sent *s = registry_sent_to(r, address, false);
    unsigned n = 0;

    for (int i = 0; s && i < VGC_REGISTRY_RECENT; i++) {
        n += s->recent[i] && now - s->recent[i] < VGC_REGISTRY_PENDING_MS;
    }
    return n;
}

int vgc_registry_choose(struct vgc_registry *r, int need, char *out, size_t cap)
{
    int order[VGC_REGISTRY_MAX_HOSTS];
    unsigned pending[VGC_REGISTRY_MAX_HOSTS];
    uint64_t now = registry_now_ms();
    struct registry_sent *s;
    int m, written = 0;
    size_t len = 0;

    out[0] = '\0';
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->nhosts; i++) {
        pending[i] = registry_pending(r, r->hosts[i].address, now);
    }
    m = vgc_registry_rank(r->hosts, pending, r->nhosts, need, order);
    for (int i = 0; i < m; i++) {
        const char *addr = r->hosts[order[i]].address;
        size_t n = strlen(addr) + (written ? 1 : 0);

        if (len + n + 1 > cap) {
            break;
        }
        snprintf(out + len, cap - len, "%s%s", written ? "|" : "", addr);
        len += n;
        written++;
    }
    if (written && (s = registry_sent_to(r, r->hosts[order[0]].address, true))) {
        s->total++;
        s->recent[s->next] = now;
        s->next = (s->next + 1) % VGC_REGISTRY_RECENT;
    }
    pthread_mutex_unlock(&r->lock);
    return written;
}

/* ---- this host's record ---------------------------------------------- */

static void registry_announce_failed(struct vgc_registry *r, const char *what, char *err)
{
    pthread_mutex_lock(&r->lock);
    if (!r->announce_down) {
        fprintf(stderr, "vgcd: registry: cannot %s (%s); trying again\n", what,
                err ? err : "?");
    }
    r->announce_down = true;
    snprintf(r->announce_error, sizeof(r->announce_error), "%s", err ? err : "?");
    pthread_mutex_unlock(&r->lock);
    free(err);
}

/* Write the record under r->lease; returns whether it was written. */
static bool registry_put_self(struct vgc_registry *r, int64_t lease)
{
    char *err = NULL, *text;
    bool ok;

    pthread_mutex_lock(&r->lock);
    text = vgc_registry_record_encode(&r->self);
    r->self_changed = false;
    pthread_mutex_unlock(&r->lock);
    ok = vgc_etcd_put(r->etcd, r->key, text, lease, &err);
    g_free(text);
    if (!ok) {
        pthread_mutex_lock(&r->lock);
        r->self_changed = true;     /* again next tick */
        pthread_mutex_unlock(&r->lock);
        registry_announce_failed(r, "write this host's record", err);
    }
    return ok;
}

/*
 * One tick of announcing: a lease and the record when there is none, a
 * renewal when one is due, the record again when the figures changed.
 */
static void registry_announce(struct vgc_registry *r, uint64_t now, uint64_t *renew_at)
{
    int64_t lease;
    bool changed;
    char *err = NULL;

    pthread_mutex_lock(&r->lock);
    lease = r->lease;
    changed = r->self_changed;
    pthread_mutex_unlock(&r->lock);

    if (!lease) {
        if (now < *renew_at) {
            return;             /* etcd was away a moment ago */
        }
        if (!vgc_etcd_lease_grant(r->etcd, r->ttl, &lease, &err)) {
            registry_announce_failed(r, "get a lease", err);
            *renew_at = now + VGC_REGISTRY_RETRY_MS;
            return;
        }
        if (!registry_put_self(r, lease)) {
            /* A lease without its record is of no use: let it run out. */
            *renew_at = now + VGC_REGISTRY_RETRY_MS;
            return;
        }
        pthread_mutex_lock(&r->lock);
        r->lease = lease;
        fprintf(stderr, "vgcd: registry: %s %s at %s (lease %" PRIx64 ", %d s)\n",
                r->announce_down ? "announced again" : "announced", r->key,
                vgc_etcd_endpoint(r->etcd), (uint64_t)lease, r->ttl);
        r->announce_down = false;
        pthread_mutex_unlock(&r->lock);
        *renew_at = now + (uint64_t)r->ttl * 1000 / 3;
        return;
    }
    if (now >= *renew_at) {
        int left = vgc_etcd_lease_keepalive(r->etcd, lease, &err);

        if (left < 0) {
            registry_announce_failed(r, "renew the lease", err);
            *renew_at = now + VGC_REGISTRY_RETRY_MS;
            return;
        }
        if (left == 0) {
            /* etcd forgot us (away longer than the TTL): start over. */
            pthread_mutex_lock(&r->lock);
            fprintf(stderr, "vgcd: registry: lease %" PRIx64 " ran out; announcing again\n",
                    (uint64_t)lease);
            r->lease = 0;
            r->announce_down = true;
            pthread_mutex_unlock(&r->lock);
            return;
        }
        *renew_at = now + (uint64_t)r->ttl * 1000 / 3;
        pthread_mutex_lock(&r->lock);
        if (r->announce_down) {
            fprintf(stderr, "vgcd: registry: etcd answers again at %s\n",
                    vgc_etcd_endpoint(r->etcd));
        }
        r->announce_down = false;
        pthread_mutex_unlock(&r->lock);
    }
    if (changed && !r->announce_down) {
        registry_put_self(r, lease);
    }
}

static void *registry_thread(void *arg)
{
    struct vgc_registry *r = arg;
    GString *complaints = g_string_new(NULL);
    uint64_t renew_at = 0, read_at = 0;

    for (;;) {
        uint64_t now = registry_now_ms();
        struct timespec until;

        if (r->key) {
            registry_announce(r, now, &renew_at);
        }
        if (r->place && now >= read_at) {
            registry_refresh(r, complaints);
            read_at = now + VGC_REGISTRY_REFRESH_MS;
        }
        pthread_mutex_lock(&r->lock);
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += VGC_REGISTRY_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!r->stopping && !r->kicked &&
               pthread_cond_timedwait(&r->wake, &r->lock, &until) != ETIMEDOUT) {
        }
        r->kicked = false;
        if (r->stopping) {
            pthread_mutex_unlock(&r->lock);
            break;
        }
        pthread_mutex_unlock(&r->lock);
    }
    g_string_free(complaints, TRUE);
    return NULL;
}

struct vgc_registry *vgc_registry_start(const struct vgc_registry_config *cfg,
                                        const struct vgc_registry_host *self, char **err)
{
    struct vgc_registry *r = g_new0(struct vgc_registry, 1);
    pthread_condattr_t ca;

    r->etcd = vgc_etcd_new(cfg->urls, err);
    if (!r->etcd) {
        g_free(r);
        return NULL;
    }
    r->urls = g_strdup(cfg->urls);
    r->ttl = cfg->ttl ? cfg->ttl : VGC_REGISTRY_TTL_DEFAULT;
    r->place = cfg->place;
    if (cfg->advertise) {
        r->key = g_strconcat(vgc_etcd_prefix(r->etcd), "/hosts/", cfg->advertise, NULL);
        r->self = *self;
        snprintf(r->self.address, sizeof(r->self.address), "%s", cfg->advertise);
    }
    r->sent = g_new0(struct registry_sent, VGC_REGISTRY_MAX_HOSTS);
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (r->place) {
        /* The first list before the first client, when etcd answers. */
        GString *complaints = g_string_new(NULL);

        registry_refresh(r, complaints);
        g_string_free(complaints, TRUE);
    }
    errno = pthread_create(&r->thread, NULL, registry_thread, r);
    if (errno) {
        if (asprintf(err, "cannot start the registry's thread: %s", strerror(errno)) < 0) {
            *err = NULL;
        }
        vgc_registry_stop(r);
        return NULL;
    }
    r->thread_started = true;
    return r;
}

void vgc_registry_stop(struct vgc_registry *r)
{
    char *err = NULL;

    if (!r) {
        return;
    }
    if (r->thread_started) {
        pthread_mutex_lock(&r->lock);
        r->stopping = true;
        pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->thread, NULL);
    }
    if (r->lease) {
        if (vgc_etcd_lease_revoke(r->etcd, r->lease, &err)) {
            fprintf(stderr, "vgcd: registry: withdrew %s\n", r->key);
        } else {
            fprintf(stderr, "vgcd: registry: cannot withdraw %s (%s); it goes when its lease "
                    "runs out\n", r->key, err ? err : "?");
            free(err);
        }
    }
    vgc_etcd_free(r->etcd);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    g_free(r->hosts);
    g_free(r->sent);
    g_free(r->key);
    g_free(r->urls);
    g_free(r);
}

void vgc_registry_set_self(struct vgc_registry *r, const struct vgc_registry_host *self)
{
    struct vgc_registry_host h = *self;

    pthread_mutex_lock(&r->lock);
    memcpy(h.address, r->self.address, sizeof(h.address));
    if (memcmp(&h, &r->self, sizeof(h))) {
        r->self = h;
        r->self_changed = true;
        r->kicked = true;
        pthread_cond_signal(&r->wake);
    }
    pthread_mutex_unlock(&r->lock);
}

void vgc_registry_describe(struct vgc_registry *r, GString *out)
{
    uint64_t now = registry_now_ms();

    pthread_mutex_lock(&r->lock);
    g_string_append_printf(out, "registry %s prefix %s\n", r->urls, vgc_etcd_prefix(r->etcd));
    if (r->key) {
        if (r->lease && !r->announce_down) {
            g_string_append_printf(out, "registry-announced %s lease %" PRIx64 " ttl %d s\n",
                                   r->self.address, (uint64_t)r->lease, r->ttl);
        } else {
            g_string_append_printf(out, "registry-not-announced %s: %s\n", r->self.address,
                                   r->announce_error[0] ? r->announce_error : "not yet");
        }
    }
    if (r->place) {
        if (r->read_down) {
            g_string_append_printf(out, "registry-unread %s\n", r->read_error);
        }
        g_string_append_printf(out, "registry-hosts %d read-s-ago %.1f%s\n", r->nhosts,
                               r->read_at ? (double)(now - r->read_at) / 1000 : -1.0,
                               r->ignored ? " left-out" : "");
        for (int i = 0; i < r->nhosts; i++) {
            const struct vgc_registry_host *h = &r->hosts[i];
            const struct registry_sent *s = registry_sent_to(r, h->address, false);
            uint64_t used = 0;

            for (int d = 0; d < h->ndevices; d++) {
                used += h->used[d];
            }
            g_string_append_printf(out, "registry-host %s executor %s devices %d memory %" PRIu64
                                   " MiB used %" PRIu64 " MiB clients %u sent %u\n",
                                   h->address, h->executor, h->ndevices, h->memory >> 20,
                                   used >> 20, h->clients, s ? s->total : 0);
        }
    }
    pthread_mutex_unlock(&r->lock);
}
