/*
 * control.c - vgcd's control socket: a line-based text protocol on a unix
 * socket, for vgcctl and the libvirt hook (docs/operations.md).
 *
 *   listen ADDR    open a listener, ADDR as for --listen
 *   close ADDR     close one (by its address, its address without options,
 *                  or its socket path)
 *   status         devices, listeners, workers
 *   help           the commands
 *
 * Every reply is zero or more data lines, then "ok" or "error: MESSAGE".
 * Only root and vgcd's own uid may connect.  Connections are non-blocking
 * and served from the daemon's poll loop; a malformed command gets an
 * error, an oversized one an error once its end (newline) came, and
 * neither changes anything in the daemon.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "hosts.h"
#include "vgcd.h"

/* Reply bytes queued for one client before its commands are no longer read. */
#define CONTROL_OUT_MAX (1 << 20)

struct control_client {
    int fd;                     /* -1: free */
    int closing;                /* flush what is queued, then close */
    int skipping;               /* in an oversized line: drop up to its end */
    size_t len;                 /* bytes in @line */
    char line[VGCD_CONTROL_LINE_MAX + 1];
    GString *out;               /* reply bytes not yet written */
};

struct vgcd_control {
    int fd;
    char path[108];
    struct control_client clients[VGCD_CONTROL_MAX_CLIENTS];
};

static int control_fail(char **err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(err, fmt, ap) < 0) {
        *err = NULL;
    }
    va_end(ap);
    return -1;
}

/* Is a daemon answering on @sa?  Then its socket file must stay. */
static int control_in_use(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int used;

    if (fd < 0) {
        return 0;
    }
    used = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
    close(fd);
    return used;
}

static int control_bind(struct vgcd_control *c, const char *path, char **err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char dir[sizeof(sa.sun_path)];
    struct stat st;
    mode_t old;
    int e;

    if (!path[0] || strlen(path) >= sizeof(sa.sun_path)) {
        return control_fail(err, "control socket path empty or longer than %zu bytes",
                            sizeof(sa.sun_path) - 1);
    }
    strcpy(sa.sun_path, path);
    strcpy(dir, path);
    if (stat(dirname(dir), &st) < 0 && errno == ENOENT && mkdir(dir, 0755) < 0) {
        return control_fail(err, "cannot create %s: %s", dir, strerror(errno));
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            return control_fail(err, "%s exists and is not a socket", path);
        }
        if (control_in_use(&sa)) {
            return control_fail(err, "%s: another vgcd is serving it", path);
        }
        unlink(path);
    }
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        return control_fail(err, "socket: %s", strerror(errno));
    }
    /* Created 0600 rather than chmod()ed later: no moment in which
     * anybody else could connect. */
    old = umask(0177);
    e = bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? errno : 0;
    umask(old);
    if (e || listen(c->fd, 16) < 0) {
        e = e ? e : errno;
        close(c->fd);
        c->fd = -1;
        return control_fail(err, "%s: %s", path, strerror(e));
    }
    snprintf(c->path, sizeof(c->path), "%s", path);
    return 0;
}

struct vgcd_control *vgcd_control_open(const char *path, char **err)
{
    struct vgcd_control *c = calloc(1, sizeof(*c));

    if (!c) {
        control_fail(err, "out of memory");
        return NULL;
    }
    for (int i = 0; i < VGCD_CONTROL_MAX_CLIENTS; i++) {
        c->clients[i].fd = -1;
    }
    if (control_bind(c, path, err) < 0) {
        free(c);
        return NULL;
    }
    return c;
}

static void control_drop(struct control_client *cl)
{
    if (cl->fd >= 0) {
        close(cl->fd);
    }
    if (cl->out) {
        g_string_free(cl->out, TRUE);
    }
    cl->fd = -1;
    cl->out = NULL;
    cl->len = 0;
    cl->closing = 0;
    cl->skipping = 0;
}

static void control_free(struct vgcd_control *c, int unlink_socket)
{
    if (!c) {
        return;
    }
    for (int i = 0; i < VGCD_CONTROL_MAX_CLIENTS; i++) {
        control_drop(&c->clients[i]);
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    if (unlink_socket && c->path[0]) {
        unlink(c->path);
    }
    free(c);
}

void vgcd_control_forget(struct vgcd_control *c)
{
    control_free(c, 0);
}

void vgcd_control_close(struct vgcd_control *c)
{
    control_free(c, 1);
}

int vgcd_control_pollfds(struct vgcd_control *c, struct pollfd *pfd)
{
    int n = 0;

    pfd[n++] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
    for (int i = 0; i < VGCD_CONTROL_MAX_CLIENTS; i++) {
        struct control_client *cl = &c->clients[i];
        short ev = 0;

        if (cl->fd < 0) {
            continue;
        }
        /* A client that sends commands but reads no replies is not read
         * from until it has caught up: vgcd's memory stays bounded. */
        ev |= cl->closing || cl->out->len > CONTROL_OUT_MAX ? 0 : POLLIN;
        ev |= cl->out->len ? POLLOUT : 0;
        /* fd -1 would be skipped by poll(); index i maps back below. */
        pfd[n++] = (struct pollfd){ .fd = cl->fd, .events = ev };
    }
    return n;
}

/* ---- commands ------------------------------------------------------------ */

static void control_printf(struct control_client *cl, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

static void control_printf(struct control_client *cl, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_string_append_vprintf(cl->out, fmt, ap);
    va_end(ap);
}

static const char *control_listener_kind(const struct vgcd_listener *l)
{
    return l->is_vhost_user ? "vhost-user" : l->is_unix ? "unix" : "tcp";
}

/* @name without its options: "vhost-user:/run/vgc/a.sock,memory=4G" names
 * the same socket as "vhost-user:/run/vgc/a.sock". */
static size_t control_base_len(const char *name)
{
    return strcspn(name, ",");
}

static int control_same_base(const char *a, const char *b)
{
    size_t la = control_base_len(a), lb = control_base_len(b);

    return la == lb && !memcmp(a, b, la);
}

/* The listener @addr names: its whole address, its address without
 * options, or (unix kinds) its socket path.  -1 when none. */
static int control_find_listener(struct vgcd *d, const char *addr)
{
    for (int i = 0; i < d->nlisteners; i++) {
        const struct vgcd_listener *l = &d->listeners[i];
        if (!strcmp(l->name, addr) ||
            (!strchr(addr, ',') && control_same_base(l->name, addr)) ||
            (l->is_unix && l->path[0] && !strcmp(l->path, addr))) {
            return i;
        }
    }
    return -1;
}

static int control_worker_count(struct vgcd *d, const char *listener)
{
    int n = 0;

    for (int i = 0; i < d->max_workers; i++) {
        n += d->workers[i].pid > 0 && !strcmp(d->workers[i].listener, listener);
    }
    return n;
}

static void control_listen(struct control_client *cl, struct vgcd *d, const char *addr)
{
    char *err = NULL;

    for (int i = 0; i < d->nlisteners; i++) {
        const char *name = d->listeners[i].name;
        if (!strcmp(name, addr)) {
            /* The hook asks again when libvirtd restarts: not an error. */
            control_printf(cl, "listener %s existing\nok\n", name);
            return;
        }
        if (control_same_base(name, addr)) {
            control_printf(cl, "error: %.*s is open already, as %s (close it first)\n",
                           (int)control_base_len(addr), addr, name);
            return;
        }
    }
    if (d->nlisteners == VGCD_MAX_LISTEN) {
        control_printf(cl, "error: %d listeners open already\n", VGCD_MAX_LISTEN);
        return;
    }
    if (vgcd_add_listener(d, addr, &err) < 0) {
        control_printf(cl, "error: %s: %s\n", addr, err ? err : "cannot listen");
        free(err);
        return;
    }
    control_printf(cl, "listener %s new\nok\n", addr);
}

static void control_close(struct control_client *cl, struct vgcd *d, const char *addr)
{
    int i = control_find_listener(d, addr);
    char name[sizeof(d->listeners[0].name)];
    int n;

    if (i < 0) {
        control_printf(cl, "error: no listener %s\n", addr);
        return;
    }
    snprintf(name, sizeof(name), "%s", d->listeners[i].name);
    n = vgcd_remove_listener(d, i);
    control_printf(cl, "closed %s workers %d\nok\n", name, n);
}

static void control_tenant(const struct vgc_tenant *t, char *buf, size_t size)
{
    uint64_t serial;
    uint32_t uid;

    switch (t->kind) {
    case VGC_TENANT_UID:
        memcpy(&uid, t->id, sizeof(uid));
        snprintf(buf, size, "uid:%" PRIu32, uid);
        break;
    case VGC_TENANT_VM:
        memcpy(&serial, t->id, sizeof(serial));
        snprintf(buf, size, "vm:%" PRIu64, serial);
        break;
    case VGC_TENANT_ADDR: {
        static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };
        char ip[INET6_ADDRSTRLEN] = "?";
        if (!memcmp(t->id, v4mapped, sizeof(v4mapped))) {
            inet_ntop(AF_INET, t->id + 12, ip, sizeof(ip));
        } else {
            inet_ntop(AF_INET6, t->id, ip, sizeof(ip));
        }
        snprintf(buf, size, "addr:%s", ip);
        break;
    }
    default:
        snprintf(buf, size, "none");
    }
}

/* HH:MM:SS of @sec seconds after midnight. */
static void control_clock(uint32_t sec, char *buf, size_t size)
{
    snprintf(buf, size, "%02u:%02u:%02u", sec / 3600, sec / 60 % 60, sec % 60);
}

/*
 * One line per tenant with processes now: who, its policy (the options of
 * the listener it came through), for gpus= tenants where each virtual GPU
 * is bound (v:d, or v:- while unbound), and its compute: busy time, and
 * how often and how long its share held its kernels back; and what its
 * processes have swapped out to host RAM now (--swap).
 */
static void control_tenants(struct control_client *cl, struct vgcd *d)
{
    static struct vgc_pool_tenant_info info[256];
    int n = vgc_pool_tenants(d->pool, info, 256);

    for (int i = 0; i < n && i < 256; i++) {
        const struct vgc_pool_tenant_info *t = &info[i];
        char who[64], window[96] = "-", bound[VGC_POOL_MAX_DEVICES * 6 + 4] = "all";
        char share[16] = "-";
        size_t len = 0;

        control_tenant(&t->tenant, who, sizeof(who));
        if (t->tenant.window) {
            char from[40], to[40];

            control_clock(t->tenant.window_from, from, sizeof(from));
            control_clock(t->tenant.window_to, to, sizeof(to));
            snprintf(window, sizeof(window), "%s-%s", from, to);
        }
        for (int v = 0; t->tenant.gpus && v < t->gpus && v < VGC_POOL_MAX_DEVICES; v++) {
            len += (size_t)snprintf(bound + len, sizeof(bound) - len,
                                    t->bound[v] < 0 ? "%s%d:-" : "%s%d:%d",
                                    v ? "," : "", v, t->bound[v]);
        }
        if (t->tenant.share) {
            snprintf(share, sizeof(share), "%" PRIu32, t->tenant.share);
        }
        control_printf(cl, "tenant %s name %s priority %" PRIu32 " limit %" PRIu64
                       " gpus %u window %s processes %d bound %s share %s busy-ms %" PRIu64
                       " waits %" PRIu64 " held-ms %" PRIu64 " swapped %" PRIu64
                       " swapped-out %d\n", who,
                       t->tenant.name[0] ? t->tenant.name : "-", t->tenant.priority,
                       t->tenant.memory, t->tenant.gpus, window, t->slots, bound, share,
                       t->busy_ns / 1000000, t->waits, t->held_ns / 1000000, t->swapped,
                       t->swapped_out);
    }
}

static const char *control_swap_state(int state)
{
    switch (state) {
    case VGC_SWAP_ASKED:
        return "asked";
    case VGC_SWAP_MOVING:
        return "moving";
    case VGC_SWAP_OUT:
        return "out";
    case VGC_SWAP_GIVEN_UP:
        return "ending";
    default:
        return "none";
    }
}

static void control_status(struct control_client *cl, struct vgcd *d)
{
    uint64_t now = vgc_pool_clock();

    for (int dev = 0; dev < vgc_pool_devices(d->pool); dev++) {
        control_printf(cl, "device %d used %" PRIu64 " capacity %" PRIu64
                       " spilled %" PRIu64 " util-compute %u util-copy %u swapped %" PRIu64
                       "\n", dev, vgc_pool_used(d->pool, dev), vgc_pool_capacity(d->pool, dev),
                       vgc_pool_spilled(d->pool, dev),
                       vgc_pool_utilization(d->pool, dev, VGC_POOL_COMPUTE, now),
                       vgc_pool_utilization(d->pool, dev, VGC_POOL_COPY, now),
                       vgc_pool_swapped(d->pool, dev));
    }
    if (vgc_pool_swap_room(d->pool)) {
        control_printf(cl, "swap room %" PRIu64 " used %" PRIu64 "\n",
                       vgc_pool_swap_room(d->pool), vgc_pool_swapped(d->pool, -1));
    }
    for (int i = 0; i < d->nlisteners; i++) {
        const struct vgcd_listener *l = &d->listeners[i];
        control_printf(cl, "listener %s kind %s workers %d\n", l->name,
                       control_listener_kind(l), control_worker_count(d, l->name));
    }
    if (d->registry) {
        GString *text = g_string_new(NULL);

        vgcd_hosts_describe(d, text);
        control_printf(cl, "%s", text->str);
        g_string_free(text, TRUE);
    }
    control_tenants(cl, d);
    for (int i = 0; i < d->max_workers; i++) {
        const struct vgcd_worker_slot *w = &d->workers[i];
        char tenant[64], swap[40], idle[24];
        uint64_t mem, swapped;
        int nout;

        if (w->pid <= 0) {
            continue;
        }
        control_tenant(&w->tenant, tenant, sizeof(tenant));
        /* A VM's worker holds nothing itself: its guest sessions do, each
         * in a slot of the VM's tenant. */
        if (w->is_vm) {
            mem = vgc_pool_identity_used(d->pool, &w->tenant);
            swapped = vgc_pool_identity_swapped(d->pool, &w->tenant, &nout);
            snprintf(swap, sizeof(swap), "- sessions-out %d", nout);
            snprintf(idle, sizeof(idle), "-");
        } else {
            mem = vgc_pool_slot_used(d->pool, w->pool_slot);
            swapped = vgc_pool_slot_swapped(d->pool, w->pool_slot);
            snprintf(swap, sizeof(swap), "%s",
                     control_swap_state(vgc_pool_swap_state(d->pool, w->pool_slot)));
            /* Whole seconds since its last call ended, 0 while in one:
             * what idle= is compared with. */
            snprintf(idle, sizeof(idle), "%" PRIu64,
                     vgc_pool_slot_idle(d->pool, w->pool_slot, vgc_pool_clock()) / 1000000000u);
        }
        control_printf(cl, "worker %d kind %s tenant %s memory %" PRIu64 " swap %s swapped %"
                       PRIu64 " idle-s %s listener %s peer %s\n", (int)w->pid,
                       w->is_vm ? "vm" : "client", tenant, mem, swap, swapped, idle,
                       w->listener[0] ? w->listener : "-", w->peer);
        if (w->host[0]) {
            control_printf(cl, "worker %d sent-to %s\n", (int)w->pid, w->host);
        }
    }
    control_printf(cl, "ok\n");
}

static void control_help(struct control_client *cl)
{
    control_printf(cl,
        "command status\n"
        "command listen ADDR\n"
        "command close ADDR\n"
        "command help\n"
        "ok\n");
}

/* Run one command line (newline removed). */
static void control_command(struct control_client *cl, struct vgcd *d, char *line)
{
    size_t len = strlen(line);
    char *arg;

    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t')) {
        line[--len] = '\0';
    }
    while (*line == ' ' || *line == '\t') {
        line++;
    }
    if (!*line) {
        control_printf(cl, "error: empty command\n");
        return;
    }
    for (const char *p = line; *p; p++) {
        if ((unsigned char)*p < 0x20 && *p != '\t') {
            control_printf(cl, "error: control character 0x%02x in the command\n",
                           (unsigned char)*p);
            return;
        }
        if (*p == 0x7f) {
            control_printf(cl, "error: control character 0x7f in the command\n");
            return;
        }
    }
    arg = line + strcspn(line, " \t");
    if (*arg) {
        *arg++ = '\0';
        arg += strspn(arg, " \t");
    }
    if (!strcmp(line, "status") || !strcmp(line, "help")) {
        if (*arg) {
            control_printf(cl, "error: %s takes no argument\n", line);
        } else if (line[0] == 's') {
            control_status(cl, d);
        } else {
            control_help(cl);
        }
        return;
    }
    if (strcmp(line, "listen") && strcmp(line, "close")) {
        control_printf(cl, "error: unknown command '%.64s' (status, listen ADDR, close ADDR, "
                       "help)\n", line);
        return;
    }
    if (!*arg) {
        control_printf(cl, "error: %s needs an address\n", line);
        return;
    }
    if (arg[strcspn(arg, " \t")]) {
        control_printf(cl, "error: an address has no spaces\n");
        return;
    }
    if (strlen(arg) >= sizeof(d->listeners[0].name)) {
        control_printf(cl, "error: address longer than %zu bytes\n",
                       sizeof(d->listeners[0].name) - 1);
        return;
    }
    if (line[0] == 'l') {
        control_listen(cl, d, arg);
    } else {
        control_close(cl, d, arg);
    }
}

/* ---- connections --------------------------------------------------------- */

static void control_accept(struct vgcd_control *c)
{
    struct control_client *cl = NULL;
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    static const char busy[] = "error: too many control connections\n";
    char msg[96];

    if (fd < 0) {
        return;
    }
    /* The socket is 0600 already; this holds even if its directory or
     * mode were changed under us. */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        int m = snprintf(msg, sizeof(msg), "error: permission denied (uid %d)\n",
                         clen == sizeof(cred) ? (int)cred.uid : -1);
        if (send(fd, msg, (size_t)m, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
            /* nothing to tell anybody: the peer goes either way */
        }
        fprintf(stderr, "vgcd: control: refused a connection of uid %d\n",
                clen == sizeof(cred) ? (int)cred.uid : -1);
        close(fd);
        return;
    }
    for (int i = 0; i < VGCD_CONTROL_MAX_CLIENTS; i++) {
        if (c->clients[i].fd < 0) {
            cl = &c->clients[i];
            break;
        }
    }
    if (!cl) {
        if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
            /* as above */
        }
        close(fd);
        return;
    }
    cl->fd = fd;
    cl->len = 0;
    cl->closing = 0;
    cl->skipping = 0;
    cl->out = g_string_new(NULL);
}

/* Run every whole line in @cl's buffer; at EOF the rest is one too. */
static void control_lines(struct control_client *cl, struct vgcd *d, int eof)
{
    char *nl;

    while (!cl->closing && (nl = memchr(cl->line, '\n', cl->len))) {
        size_t used = (size_t)(nl - cl->line) + 1;
        *nl = '\0';
        if (memchr(cl->line, '\0', used - 1)) {
            control_printf(cl, "error: NUL byte in the command\n");
        } else {
            control_command(cl, d, cl->line);
        }
        memmove(cl->line, cl->line + used, cl->len - used);
        cl->len -= used;
    }
    if (cl->closing) {
        return;
    }
    if (cl->len == VGCD_CONTROL_LINE_MAX) {
        /* Its reply comes now; its rest is dropped up to its newline. */
        control_printf(cl, "error: command longer than %d bytes\n", VGCD_CONTROL_LINE_MAX);
        cl->skipping = 1;
        cl->len = 0;
    }
    if (eof) {
        if (cl->len) {
            cl->line[cl->len] = '\0';
            if (memchr(cl->line, '\0', cl->len)) {
                control_printf(cl, "error: NUL byte in the command\n");
            } else {
                control_command(cl, d, cl->line);
            }
            cl->len = 0;
        }
        cl->closing = 1;
    }
}

static void control_read(struct control_client *cl, struct vgcd *d)
{
    ssize_t n = read(cl->fd, cl->line + cl->len, VGCD_CONTROL_LINE_MAX - cl->len);

    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            control_drop(cl);
        }
        return;
    }
    cl->len += (size_t)n;
    if (cl->skipping) {
        char *nl = memchr(cl->line, '\n', cl->len);
        if (!nl) {
            cl->len = 0;
        } else {
            cl->len -= (size_t)(nl + 1 - cl->line);
            memmove(cl->line, nl + 1, cl->len);
            cl->skipping = 0;
        }
    }
    control_lines(cl, d, n == 0);
}

static void control_write(struct control_client *cl)
{
    ssize_t n = send(cl->fd, cl->out->str, cl->out->len, MSG_NOSIGNAL | MSG_DONTWAIT);

    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            control_drop(cl);
        }
        return;
    }
    g_string_erase(cl->out, 0, n);
}

void vgcd_control_dispatch(struct vgcd_control *c, struct vgcd *d,
                           const struct pollfd *pfd, int n)
{
    int k = 1;

    /* Clients first, in the order vgcd_control_pollfds listed them. */
    for (int i = 0; i < VGCD_CONTROL_MAX_CLIENTS && k < n; i++) {
        struct control_client *cl = &c->clients[i];

        if (cl->fd < 0 || pfd[k].fd != cl->fd) {
            continue;
        }
        if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (cl->closing) {
                /* only POLLHUP/POLLERR can come here: the peer is gone */
                if (!(pfd[k].revents & POLLOUT)) {
                    control_drop(cl);
                    k++;
                    continue;
                }
            } else {
                control_read(cl, d);
            }
        }
        if (cl->fd >= 0 && cl->out->len) {
            control_write(cl);
        }
        if (cl->fd >= 0 && cl->closing && !cl->out->len) {
            control_drop(cl);
        }
        k++;
    }
    if (pfd[0].revents & POLLIN) {
        control_accept(c);
    }
}
