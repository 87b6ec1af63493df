/*
 * listen.c - unix and TCP listening sockets, and their tenants' options.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "listen.h"

static int listen_fail(char **err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(err, fmt, ap) < 0) {
        *err = NULL;
    }
    va_end(ap);
    return -1;
}

/* Listeners are told apart in tenant identities by a serial, never reused
 * in one daemon (listeners may come and go while it runs). */
static uint32_t listen_serial;

bool vgcd_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    if (!isdigit((unsigned char)*s)) {
        return false;                   /* strtoull would take "-1" */
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s) {
        return false;
    }
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    }
    if (*end == 'i' || *end == 'B') {
        end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
    }
    if (*end || v == 0 || v > (UINT64_MAX >> shift)) {
        return false;
    }
    *out = (uint64_t)v << shift;
    return true;
}

/* HH:MM or HH:MM:SS at *@s into seconds after midnight; *@s moves past it. */
static bool listen_time_of_day(const char **s, uint32_t *out)
{
    unsigned part[3] = { 0, 0, 0 };
    int n = 0;
    const char *p = *s;

    for (;;) {
        if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1])) {
            return false;
        }
        part[n++] = (unsigned)(p[0] - '0') * 10 + (unsigned)(p[1] - '0');
        p += 2;
        if (*p != ':' || n == 3) {
            break;
        }
        p++;
    }
    if (n < 2 || part[0] > 23 || part[1] > 59 || part[2] > 59) {
        return false;
    }
    *out = part[0] * 3600 + part[1] * 60 + part[2];
    *s = p;
    return true;
}

bool vgcd_parse_window(const char *s, uint32_t *from, uint32_t *to)
{
    uint32_t a, b;

    if (!listen_time_of_day(&s, &a) || *s++ != '-' || !listen_time_of_day(&s, &b) || *s ||
        a == b) {
        return false;
    }
    *from = a;
    *to = b;
    return true;
}

/*
 * A duration: whole seconds, or with s, m or h; 1 s to VGC_POOL_IDLE_MAX.
 * Into *@sec; false for anything else (0, a sign, a fraction, junk).
 */
static bool listen_duration(const char *val, uint32_t *sec)
{
    unsigned long unit = 1;
    char *end;
    unsigned long n;

    if (!isdigit((unsigned char)*val)) {
        return false;
    }
    errno = 0;
    n = strtoul(val, &end, 10);
    if (*end == 's' || *end == 'm' || *end == 'h') {
        unit = *end == 'h' ? 3600 : *end == 'm' ? 60 : 1;
        end++;
    }
    if (errno || *end || n == 0 || n > VGC_POOL_IDLE_MAX / unit) {
        return false;
    }
    *sec = (uint32_t)(n * unit);
    return true;
}

/* One KEY=VALUE of a listener's options into @p. */
/* @val is a decimal number in [@lo, @hi], digits only (no sign, no
 * spaces), into *@n. */
static bool listen_number(const char *val, long lo, long hi, long *n)
{
    char *end;

    if (!isdigit((unsigned char)*val)) {
        return false;
    }
    errno = 0;
    *n = strtol(val, &end, 10);
    return !errno && !*end && *n >= lo && *n <= hi;
}

static int listen_option(struct vgc_tenant *p, const char *opt, char **err)
{
    const char *eq = strchr(opt, '=');
    size_t klen = eq ? (size_t)(eq - opt) : strlen(opt);
    const char *val = eq ? eq + 1 : "";

    if (klen == 6 && !strncmp(opt, "memory", 6)) {
        if (!vgcd_parse_size(val, &p->memory)) {
            return listen_fail(err, "memory=%s: not a size (e.g. 64M, 4G)", val);
        }
        return 0;
    }
    if (klen == 4 && !strncmp(opt, "gpus", 4)) {
        long n;

        if (!listen_number(val, 1, VGC_POOL_MAX_DEVICES, &n)) {
            return listen_fail(err, "gpus=%s: want a number of GPUs, 1..%d", val,
                               VGC_POOL_MAX_DEVICES);
        }
        p->gpus = (uint32_t)n;
        return 0;
    }
    if (klen == 4 && !strncmp(opt, "name", 4)) {
        size_t n = strlen(val);

        if (n == 0 || n >= sizeof(p->name)) {
            return listen_fail(err, "name=%s: want 1..%zu characters", val, sizeof(p->name) - 1);
        }
        for (size_t i = 0; i < n; i++) {
            if (!isgraph((unsigned char)val[i])) {
                return listen_fail(err, "name=%s: only printable characters, no spaces", val);
            }
        }
        memcpy(p->name, val, n + 1);
        return 0;
    }
    if (klen == 8 && !strncmp(opt, "priority", 8)) {
        long n;

        if (!listen_number(val, 0, VGC_POOL_PRIORITY_MAX, &n)) {
            return listen_fail(err, "priority=%s: want a number, 0..%d (higher wins)", val,
                               VGC_POOL_PRIORITY_MAX);
        }
        p->priority = (uint32_t)n;
        return 0;
    }
    if (klen == 5 && !strncmp(opt, "share", 5)) {
        long n;

        if (!listen_number(val, 1, VGC_POOL_SHARE_MAX, &n)) {
            return listen_fail(err, "share=%s: want a weight, 1..%d (default %d)", val,
                               VGC_POOL_SHARE_MAX, VGC_POOL_SHARE_DEFAULT);
        }
        p->share = (uint32_t)n;
        return 0;
    }
    if (klen == 4 && !strncmp(opt, "idle", 4)) {
        if (!listen_duration(val, &p->idle)) {
            return listen_fail(err, "idle=%s: want a duration, 1s..%uh (e.g. 90, 30s, 10m, "
                               "2h)", val, VGC_POOL_IDLE_MAX / 3600);
        }
        return 0;
    }
    if (klen == 6 && !strncmp(opt, "window", 6)) {
        if (!vgcd_parse_window(val, &p->window_from, &p->window_to)) {
            return listen_fail(err, "window=%s: want HH:MM[:SS]-HH:MM[:SS], local time, "
                               "two different times (e.g. 20:00-06:00)", val);
        }
        p->window = true;
        return 0;
    }
    return listen_fail(err, "unknown option '%.*s' (memory=SIZE, gpus=N, name=NAME, "
                       "priority=N, share=N, window=HH:MM-HH:MM or idle=DURATION)",
                       (int)klen, opt);
}

/* The options after @addr's first comma into @p; @addr is cut there. */
static int listen_options(struct vgc_tenant *p, char *addr, char **err)
{
    char *opts = strchr(addr, ',');
    char *save = NULL;

    memset(p, 0, sizeof(*p));
    p->priority = VGC_POOL_PRIORITY_DEFAULT;
    if (!opts) {
        return 0;
    }
    *opts++ = '\0';
    for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
        if (listen_option(p, o, err) < 0) {
            return -1;
        }
    }
    return 0;
}

static int listen_unix(struct vgcd_listener *l, const char *path, char **err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        return listen_fail(err, "socket path longer than %zu bytes", sizeof(sa.sun_path) - 1);
    }
    /* A socket file left by a daemon that died is replaced; anything else is not. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            return listen_fail(err, "%s exists and is not a socket", path);
        }
        unlink(path);
    }
    strcpy(sa.sun_path, path);
    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(l->fd, 64) < 0) {
        int e = errno;
        if (l->fd >= 0) {
            close(l->fd);
        }
        return listen_fail(err, "%s: %s", path, strerror(e));
    }
    l->is_unix = 1;
    snprintf(l->path, sizeof(l->path), "%s", path);
    return 0;
}

static int listen_tcp(struct vgcd_listener *l, const char *hostport, char **err)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
    struct addrinfo *res;
    char host[128];
    const char *colon = strrchr(hostport, ':');
    int one = 1, rc;

    if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof(host) || !colon[1]) {
        return listen_fail(err, "expected tcp:HOST:PORT");
    }
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc) {
        return listen_fail(err, "%s", gai_strerror(rc));
    }
    l->fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l->fd < 0 ||
        setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(l->fd, res->ai_addr, res->ai_addrlen) < 0 || listen(l->fd, 64) < 0) {
        int e = errno;
        if (l->fd >= 0) {
            close(l->fd);
        }
        freeaddrinfo(res);
        return listen_fail(err, "%s", strerror(e));
    }
    freeaddrinfo(res);
    return 0;
}

static int listen_open(struct vgcd_listener *l, const char *addr, char **err)
{
    if (!strncmp(addr, "unix:", 5)) {
        return listen_unix(l, addr + 5, err);
    }
    if (!strncmp(addr, "tcp:", 4)) {
        return listen_tcp(l, addr + 4, err);
    }
    if (!strncmp(addr, "vhost-user:", 11)) {
#ifdef VGCD_VHOST_USER
        l->is_vhost_user = 1;
        return listen_unix(l, addr + 11, err);
#else
        return listen_fail(err, "this vgcd was built without vhost-user "
                           "(meson -Dlibvhost_user, see hw/libvhost-user.sh)");
#endif
    }
    return listen_fail(err, "unknown address kind (want unix:PATH, tcp:HOST:PORT "
                       "or vhost-user:PATH)");
}

int vgcd_listener_open(struct vgcd_listener *l, const char *addr, char **err)
{
    char *where = strdup(addr);
    int rc;

    memset(l, 0, sizeof(*l));
    l->fd = -1;
    if (!where) {
        return listen_fail(err, "out of memory");
    }
    snprintf(l->name, sizeof(l->name), "%s", addr);
    /* Options first: a bad one must not leave a socket file behind. */
    rc = listen_options(&l->policy, where, err);
    if (rc == 0) {
        rc = listen_open(l, where, err);
    }
    free(where);
    if (rc == 0) {
        l->policy.listener = ++listen_serial;
    }
    return rc;
}

int vgcd_listener_check(const struct vgcd_listener *l, int ndevices, char **err)
{
    if (l->policy.gpus > (uint32_t)ndevices) {
        return listen_fail(err, "gpus=%u but there %s only %d device%s", l->policy.gpus,
                           ndevices == 1 ? "is" : "are", ndevices, ndevices == 1 ? "" : "s");
    }
    return 0;
}

int vgcd_listener_accept(struct vgcd_listener *l, char *peer, size_t peer_size,
                         struct vgc_tenant *tenant)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);

    *tenant = l->policy;        /* who it is is filled in below */
    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
            fprintf(stderr, "vgcd: accept on %s: %s\n", l->name, strerror(errno));
        }
        return -1;
    }
    if (l->is_unix) {
        struct ucred cred;
        socklen_t clen = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
            snprintf(peer, peer_size, "%s pid %d",
                     l->is_vhost_user ? "VM of QEMU" : "unix client", (int)cred.pid);
            tenant->kind = VGC_TENANT_UID;
            memcpy(tenant->id, &cred.uid, sizeof(cred.uid));
        } else {
            snprintf(peer, peer_size, "unix client");
        }
    } else {
        char ip[INET6_ADDRSTRLEN] = "?";
        int port = 0, one = 1;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
            port = ntohs(in->sin_port);
            /* As the IPv4-mapped IPv6 address, so a client is one tenant
             * whichever listener it reached. */
            tenant->kind = VGC_TENANT_ADDR;
            tenant->id[10] = tenant->id[11] = 0xff;
            memcpy(tenant->id + 12, &in->sin_addr, 4);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
            port = ntohs(in6->sin6_port);
            tenant->kind = VGC_TENANT_ADDR;
            memcpy(tenant->id, &in6->sin6_addr, 16);
        }
        /* Small synchronous calls must not wait for Nagle. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        snprintf(peer, peer_size, "tcp client %s:%d", ip, port);
    }
    return fd;
}

void vgcd_listener_close(struct vgcd_listener *l)
{
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
    if (l->is_unix && l->path[0]) {
        unlink(l->path);
    }
}
