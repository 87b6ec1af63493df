/*
 * listen.c - unix and TCP listening sockets.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
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

int vgcd_listener_open(struct vgcd_listener *l, const char *addr, char **err)
{
    memset(l, 0, sizeof(*l));
    l->fd = -1;
    snprintf(l->name, sizeof(l->name), "%s", addr);
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

int vgcd_listener_accept(struct vgcd_listener *l, char *peer, size_t peer_size,
                         struct vgc_tenant *tenant)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);

    memset(tenant, 0, sizeof(*tenant));
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
