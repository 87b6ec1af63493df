/*
 * hosts.c - vgcd and the registry of the pool's hosts (docs/registry.md).
 *
 * A GPU host advertises itself (`--registry URLS --advertise
 * tcp:HOST:PORT`): the registry's thread keeps its record in etcd, and
 * this file hands it the figures, from the pool and the worker table.  A
 * host without GPUs places its clients (`--executor remote:registry
 * --registry URLS`): each new socket client, and each VM with all its
 * guest sessions, is sent to the best host the registry knows, with the
 * others as fallbacks, by giving its worker the executor name
 * "remote:ADDR1|ADDR2|...".  The choice is made here, in the daemon,
 * before the worker is forked: the daemon sees every placement, so that a
 * burst of clients is spread before the hosts' records show it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hosts.h"
#include "vgcd.h"

#ifndef VGCD_NO_REGISTRY

/* The port of a tcp:HOST:PORT address, options after a comma ignored;
 * 0 when @addr is not one. */
static long hosts_tcp_port(const char *addr)
{
    const char *comma, *colon;
    char port[8];
    size_t n;

    if (strncmp(addr, "tcp:", 4)) {
        return 0;
    }
    comma = strchr(addr, ',');
    n = comma ? (size_t)(comma - addr) : strlen(addr);
    colon = memrchr(addr, ':', n);
    if (!colon || colon < addr + 4 || (size_t)(addr + n - colon - 1) >= sizeof(port)) {
        return 0;
    }
    memcpy(port, colon + 1, (size_t)(addr + n - colon - 1));
    port[addr + n - colon - 1] = '\0';
    return strtol(port, NULL, 10);
}

/* --advertise ADDRESS[,ttl=SECONDS] into @o. */
static bool hosts_parse_advertise(struct vgcd_hosts_options *o)
{
    const char *comma = strchr(o->advertise, ',');
    size_t n = comma ? (size_t)(comma - o->advertise) : strlen(o->advertise);
    char *err = NULL;

    o->ttl = VGC_REGISTRY_TTL_DEFAULT;
    if (n >= sizeof(o->address)) {
        fprintf(stderr, "vgcd: --advertise: the address is longer than %zu bytes\n",
                sizeof(o->address) - 1);
        return false;
    }
    memcpy(o->address, o->advertise, n);
    o->address[n] = '\0';
    if (!vgc_registry_address_ok(o->address, &err)) {
        fprintf(stderr, "vgcd: --advertise: %s\n", err ? err : "bad address");
        free(err);
        return false;
    }
    while (comma) {
        const char *opt = comma + 1;
        char *end;
        long v;

        comma = strchr(opt, ',');
        if (strncmp(opt, "ttl=", 4)) {
            fprintf(stderr, "vgcd: --advertise: unknown option '%.*s' (ttl=SECONDS)\n",
                    comma ? (int)(comma - opt) : (int)strlen(opt), opt);
            return false;
        }
        v = strtol(opt + 4, &end, 10);
        if (end == opt + 4 || (comma ? end != comma : *end != '\0') ||
            v < VGC_REGISTRY_TTL_MIN || v > VGC_REGISTRY_TTL_MAX) {
            fprintf(stderr, "vgcd: --advertise: ttl= must be %d..%d seconds\n",
                    VGC_REGISTRY_TTL_MIN, VGC_REGISTRY_TTL_MAX);
            return false;
        }
        o->ttl = (int)v;
    }
    return true;
}

bool vgcd_hosts_check(struct vgcd_hosts_options *o, const char *executor,
                      const char *const *listen, int nlisten)
{
    bool places = executor && !strcmp(executor, VGCD_REGISTRY_EXECUTOR);
    long port;
    bool listened = false;

    if (executor && !places && strstr(executor, "registry")) {
        fprintf(stderr, "vgcd: --executor %s: the registry is not one of several "
                "upstreams; use --executor %s alone\n", executor, VGCD_REGISTRY_EXECUTOR);
        return false;
    }
    if ((places || o->advertise) && !o->urls) {
        fprintf(stderr, "vgcd: %s needs --registry http://HOST:PORT (etcd)\n",
                places ? "--executor " VGCD_REGISTRY_EXECUTOR : "--advertise");
        return false;
    }
    if (o->urls && !places && !o->advertise) {
        fprintf(stderr, "vgcd: --registry is used with --advertise (a GPU host) or "
                "--executor %s (a host that sends its clients to them)\n",
                VGCD_REGISTRY_EXECUTOR);
        return false;
    }
    if (!o->advertise) {
        return true;
    }
    if (places) {
        fprintf(stderr, "vgcd: --advertise with --executor %s: a host that sends its "
                "clients to others is not one of them\n", VGCD_REGISTRY_EXECUTOR);
        return false;
    }
    if (!hosts_parse_advertise(o)) {
        return false;
    }
    /* The port must be ours: HOST may be a name others know us by. */
    port = hosts_tcp_port(o->address);
    for (int i = 0; i < nlisten; i++) {
        listened |= hosts_tcp_port(listen[i]) == port;
    }
    if (!listened) {
        fprintf(stderr, "vgcd: --advertise %s: no --listen tcp:...:%ld here to be dialled "
                "at\n", o->address, port);
        return false;
    }
    return true;
}

bool vgcd_hosts_probe(const struct vgcd_hosts_options *o, int *ndevices)
{
    int nhosts = 0, fewest = 0;
    char *err = NULL;

    if (!vgc_registry_probe(o->urls, &nhosts, &fewest, &err)) {
        if (*ndevices) {
            fprintf(stderr, "vgcd: registry: cannot read it yet (%s); starting with %d "
                    "devices per client (--devices)\n", err ? err : "?", *ndevices);
            free(err);
            return true;
        }
        fprintf(stderr, "vgcd: --registry %s: %s (give --devices N to start without it)\n",
                o->urls, err ? err : "cannot be read");
        free(err);
        return false;
    }
    fprintf(stderr, "vgcd: registry: %d host%s with GPUs%s\n", nhosts, nhosts == 1 ? "" : "s",
            nhosts ? "" : " yet");
    if (*ndevices) {
        return true;
    }
    if (!nhosts) {
        fprintf(stderr, "vgcd: --registry %s: no host has announced itself (vgcd "
                "--advertise); give --devices N to start before them\n", o->urls);
        return false;
    }
    *ndevices = fewest;
    return true;
}

/* This host's figures: its devices' memory and use, its clients. */
static void hosts_self(const struct vgcd *d, struct vgc_registry_host *h)
{
    memset(h, 0, sizeof(*h));
    snprintf(h->executor, sizeof(h->executor), "%s", d->executor);
    h->ndevices = vgc_pool_devices(d->pool);
    if (h->ndevices > VGC_REGISTRY_MAX_DEVICES) {
        h->ndevices = VGC_REGISTRY_MAX_DEVICES;
    }
    h->memory = d->announced_memory;
    for (int i = 0; i < h->ndevices; i++) {
        h->used[i] = vgc_pool_used(d->pool, i);
    }
    for (int i = 0; i < d->max_workers; i++) {
        h->clients += d->workers[i].pid > 0;
    }
}

bool vgcd_hosts_start(struct vgcd *d, const struct vgcd_hosts_options *o, uint64_t memory)
{
    struct vgc_registry_config cfg = {
        .urls = o->urls,
        .advertise = o->advertise ? o->address : NULL,
        .ttl = o->ttl,
        .place = d->executor && !strcmp(d->executor, VGCD_REGISTRY_EXECUTOR),
    };
    struct vgc_registry_host self;
    char *err = NULL;

    if (!o->urls) {
        return true;
    }
    d->announced_memory = memory;
    d->places = cfg.place;
    hosts_self(d, &self);
    d->registry = vgc_registry_start(&cfg, &self, &err);
    if (!d->registry) {
        fprintf(stderr, "vgcd: --registry %s: %s\n", o->urls, err ? err : "cannot start");
        free(err);
        return false;
    }
    return true;
}

void vgcd_hosts_update(struct vgcd *d)
{
    struct vgc_registry_host self;

    if (!d->registry || d->places) {
        return;
    }
    hosts_self(d, &self);
    vgc_registry_set_self(d->registry, &self);
}

const char *vgcd_hosts_place(struct vgcd *d, const char *peer, char *buf, size_t cap,
                             char *first, size_t first_cap)
{
    static const char prefix[] = "remote:";
    const char *hosts = buf + strlen(prefix);
    int n;

    first[0] = '\0';
    if (!d->places) {
        return d->executor;
    }
    snprintf(buf, cap, "%s", prefix);
    n = vgc_registry_choose(d->registry, vgc_pool_devices(d->pool), buf + strlen(prefix),
                            cap - strlen(prefix));
    if (n) {
        snprintf(first, first_cap, "%.*s", (int)strcspn(hosts, "|"), hosts);
        fprintf(stderr, "vgcd: sending %s to %s%s\n", peer, first,
                n > 1 ? " (and the next hosts if it does not answer)" : "");
    } else {
        fprintf(stderr, "vgcd: no host of the registry has %d devices for %s\n",
                vgc_pool_devices(d->pool), peer);
    }
    return buf;
}

void vgcd_hosts_stop(struct vgcd *d)
{
    vgc_registry_stop(d->registry);
    d->registry = NULL;
}

void vgcd_hosts_describe(struct vgcd *d, GString *out)
{
    if (d->registry) {
        vgc_registry_describe(d->registry, out);
    }
}

#else /* VGCD_NO_REGISTRY */

bool vgcd_hosts_check(struct vgcd_hosts_options *o, const char *executor,
                      const char *const *listen, int nlisten)
{
    (void)listen;
    (void)nlisten;
    if (o->urls || o->advertise || (executor && strstr(executor, "registry"))) {
        fprintf(stderr, "vgcd: built without the registry of hosts (it needs libcurl and "
                "json-glib): no --registry, --advertise or --executor %s\n",
                VGCD_REGISTRY_EXECUTOR);
        return false;
    }
    return true;
}

bool vgcd_hosts_probe(const struct vgcd_hosts_options *o, int *ndevices)
{
    (void)o;
    (void)ndevices;
    return false;
}

bool vgcd_hosts_start(struct vgcd *d, const struct vgcd_hosts_options *o, uint64_t memory)
{
    (void)d;
    (void)o;
    (void)memory;
    return true;
}

void vgcd_hosts_update(struct vgcd *d)
{
    (void)d;
}

const char *vgcd_hosts_place(struct vgcd *d, const char *peer, char *buf, size_t cap,
                             char *first, size_t first_cap)
{
    (void)peer;
    (void)buf;
    (void)cap;
    (void)first_cap;
    first[0] = '\0';
    return d->executor;
}

void vgcd_hosts_stop(struct vgcd *d)
{
    (void)d;
}

void vgcd_hosts_describe(struct vgcd *d, GString *out)
{
    (void)d;
    (void)out;
}

#endif /* VGCD_NO_REGISTRY */
