/*
 * vgcctl.c - control vgcd, and plug its device into libvirt domains.
 *
 *   vgcctl [--control PATH] status | listen ADDR | close ADDR
 *   vgcctl [--control PATH] [--connect URI] attach DOMAIN [--socket PATH]
 *          [--options OPTS] [--id ID]
 *   vgcctl [--control PATH] [--connect URI] detach DOMAIN [--timeout S]
 *   vgcctl [--control PATH] hook DOMAIN OPERATION SUBOPERATION [EXTRA]
 *
 * status, listen and close are vgcd's control protocol (docs/operations.md)
 * from the command line.  attach and detach hot-plug the device into a
 * running domain through libvirt's QEMU monitor passthrough, because
 * libvirt 9.0 cannot describe the device (docs/libvirt.md).  hook is what
 * libvirt-hooks/qemu runs: it must never call back into libvirt, which
 * waits for it.
 *
 * libvirt is used through its API rather than by running virsh: errors
 * come back as libvirt's own messages, replies need no scraping of virsh's
 * output, and one connection serves a whole attach and its rollback.
 *
 * Exit status: 0 done; 1 vgcd, libvirt or QEMU refused (the message says
 * which); 2 bad usage; 3 vgcd is not reachable on its control socket.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "registry.h"

#ifdef VGCCTL_LIBVIRT
#include <json-glib/json-glib.h>
#include <libvirt/libvirt.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>
#endif

#define VGCCTL_DEFAULT_CONTROL  "/run/vgcd/control"
#define VGCCTL_SOCKET_DIR       "/run/vgc"
#define VGCCTL_DEFAULT_ID       "vgc-hotplug"
#define VGCCTL_NS_URI           "http://virtio-gpu-compute.org/schemas/libvirt/1.0"
#define VGCCTL_NS_PREFIX        "vgc"
#define VGCCTL_ELEMENT          "gpu-compute"

enum {
    VGCCTL_OK = 0,
    VGCCTL_FAILED = 1,
    VGCCTL_USAGE = 2,
    VGCCTL_NO_VGCD = 3,
};

static const char *vgcctl_control = VGCCTL_DEFAULT_CONTROL;
static const char *vgcctl_uri;

static void vgcctl_usage(FILE *f)
{
    fprintf(f,
        "Usage: vgcctl [--control PATH] COMMAND [ARGS]\n"
        "\n"
        "  status                   vgcd's devices, listeners and workers\n"
        "  listen ADDR              open a listener (unix:PATH, tcp:HOST:PORT,\n"
        "                           vhost-user:PATH[,OPTIONS]), as vgcd --listen\n"
        "  close ADDR               close a listener (its address or socket path);\n"
        "                           a vhost-user listener's VM worker ends with it\n"
        "  attach DOMAIN [--socket PATH] [--options OPTS] [--id ID]\n"
        "                           hot-plug the device into a running libvirt\n"
        "                           domain (socket default %s/DOMAIN.sock)\n"
        "  detach DOMAIN [--timeout SECONDS]\n"
        "                           unplug what attach plugged (waits 30 s)\n"
        "  hosts URL[,URL...]       the GPU hosts of the pool whose registry (etcd)\n"
        "                           is at URL, as vgcd --registry: one line each\n"
        "  hook DOMAIN OP SUBOP [EXTRA]\n"
        "                           libvirt's qemu hook (libvirt-hooks/qemu);\n"
        "                           reads the domain XML on stdin\n"
        "\n"
        "  -c, --control PATH       vgcd's control socket (default %s,\n"
        "                           or $VGCD_CONTROL)\n"
        "      --connect URI        libvirt URI for attach/detach (libvirt's\n"
        "                           default, e.g. qemu:///system)\n"
        "  -h, --help               this text\n"
        "\n"
        "Exit status: 0 done, 1 refused or failed, 2 bad usage, 3 vgcd not reachable.\n",
        VGCCTL_SOCKET_DIR, VGCCTL_DEFAULT_CONTROL);
}

static void G_GNUC_PRINTF(1, 2) vgcctl_err(const char *fmt, ...)
{
    va_list ap;

    fputs("vgcctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- vgcd's control socket ------------------------------------------------ */

/*
 * Send @cmd to vgcd and read its reply: data lines into @data (may be
 * NULL), the message of an "error:" line into *err (g_free() it).
 * Returns VGCCTL_OK, VGCCTL_FAILED (vgcd said error, or the reply broke)
 * or VGCCTL_NO_VGCD.
 */
static int vgcctl_request(const char *cmd, GString *data, char **err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct timeval tv = { .tv_sec = 30 };
    g_autoptr(GString) in = g_string_new(NULL);
    g_autofree char *line = g_strdup_printf("%s\n", cmd);
    char buf[4096];
    size_t off = 0;
    int fd;

    if (strlen(vgcctl_control) >= sizeof(sa.sun_path)) {
        *err = g_strdup_printf("control socket path %s is too long", vgcctl_control);
        return VGCCTL_USAGE;
    }
    strcpy(sa.sun_path, vgcctl_control);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        *err = g_strdup_printf("vgcd is not running or not reachable: %s: %s "
                               "(start it with vgcd --control %s)", vgcctl_control,
                               strerror(errno), vgcctl_control);
        if (fd >= 0) {
            close(fd);
        }
        return VGCCTL_NO_VGCD;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (send(fd, line, strlen(line), MSG_NOSIGNAL) != (ssize_t)strlen(line)) {
        /* vgcd may have refused us and said why: read that first. */
        int e = errno;
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        if (n > 7 && !strncmp(buf, "error: ", 7)) {
            buf[n] = '\0';
            *err = g_strndup(buf + 7, strcspn(buf + 7, "\n"));
        } else {
            *err = g_strdup_printf("cannot send to vgcd: %s", strerror(e));
        }
        close(fd);
        return VGCCTL_FAILED;
    }
    for (;;) {
        char *nl;
        ssize_t n;

        while ((nl = memchr(in->str + off, '\n', in->len - off))) {
            g_autofree char *l = g_strndup(in->str + off, (gsize)(nl - in->str - off));
            off = (size_t)(nl - in->str) + 1;
            if (!strcmp(l, "ok")) {
                close(fd);
                return VGCCTL_OK;
            }
            if (g_str_has_prefix(l, "error: ")) {
                *err = g_strdup(l + 7);
                close(fd);
                return VGCCTL_FAILED;
            }
            if (data) {
                g_string_append_printf(data, "%s\n", l);
            }
        }
        n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            *err = g_strdup_printf("vgcd's reply ended early%s%s", n < 0 ? ": " : "",
                                   n < 0 ? strerror(errno) : "");
            close(fd);
            return VGCCTL_FAILED;
        }
        g_string_append_len(in, buf, n);
    }
}

/* status, listen, close: the reply's data lines to stdout. */
static int vgcctl_simple(const char *verb, const char *arg)
{
    g_autoptr(GString) data = g_string_new(NULL);
    g_autofree char *cmd = arg ? g_strdup_printf("%s %s", verb, arg) : g_strdup(verb);
    g_autofree char *err = NULL;
    int rc = vgcctl_request(cmd, data, &err);

    fputs(data->str, stdout);
    if (rc != VGCCTL_OK) {
        vgcctl_err("%s: %s", verb, err);
    }
    return rc;
}

/* An address the control protocol can carry: no spaces, no control bytes. */
static bool vgcctl_addr_ok(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s <= ' ' || *s == 0x7f) {
            return false;
        }
    }
    return true;
}

/* The listener address of a VM's socket: vhost-user:@path[,@options]. */
static char *vgcctl_vhost_addr(const char *path, const char *options)
{
    return options && *options ? g_strdup_printf("vhost-user:%s,%s", path, options)
                               : g_strdup_printf("vhost-user:%s", path);
}

/*
 * vgcd listens on vhost-user:@path[,@options]; *created says whether it
 * was new (false: it was listening already).  The socket's directory is
 * created (0755) when missing.
 */
static int vgcctl_listen_vhost(const char *path, const char *options, bool *created,
                               char **err)
{
    g_autofree char *addr = vgcctl_vhost_addr(path, options);
    g_autofree char *cmd = NULL;
    g_autofree char *dir = g_path_get_dirname(path);
    g_autoptr(GString) data = g_string_new(NULL);
    int rc;

    if (!vgcctl_addr_ok(addr) || path[0] != '/') {
        *err = g_strdup_printf("'%s': the socket must be an absolute path, and neither "
                               "it nor the options may contain spaces", addr);
        return VGCCTL_USAGE;
    }
    if (g_mkdir_with_parents(dir, 0755) < 0) {
        *err = g_strdup_printf("cannot create %s: %s", dir, strerror(errno));
        return VGCCTL_FAILED;
    }
    cmd = g_strdup_printf("listen %s", addr);
    rc = vgcctl_request(cmd, data, err);
    *created = rc == VGCCTL_OK && g_str_has_suffix(data->str, " new\n");
    return rc;
}

/* Close the listener vgcctl_listen_vhost(@path, @options) opened. */
static int vgcctl_close(const char *path, const char *options, char **err)
{
    g_autofree char *addr = vgcctl_vhost_addr(path, options);
    g_autofree char *cmd = g_strdup_printf("close %s", addr);

    return vgcctl_request(cmd, NULL, err);
}

/* ---- the domain XML's metadata element ------------------------------------ */

/*
 * <vgc:gpu-compute xmlns:vgc="VGCCTL_NS_URI" socket="PATH" options="OPTS"
 *                  hotplug="ID"/> in the domain's <metadata>; found with
 * glib's GMarkup, resolving namespace prefixes itself (GMarkup does not).
 */
struct vgcctl_meta {
    bool found;
    char *socket;               /* g_free()d by vgcctl_meta_clear */
    char *options;
    char *hotplug;              /* set by vgcctl attach: the device's id */
};

struct vgcctl_ns {
    int depth;
    char *prefix;               /* "" for a default namespace */
    char *uri;
};

struct vgcctl_parse {
    struct vgcctl_meta *meta;
    GArray *ns;                 /* struct vgcctl_ns, innermost last */
    int depth;
    int metadata_depth;         /* depth of <domain><metadata>, 0 outside */
};

static const char *vgcctl_ns_lookup(struct vgcctl_parse *p, const char *prefix)
{
    for (guint i = p->ns->len; i > 0; i--) {
        struct vgcctl_ns *n = &g_array_index(p->ns, struct vgcctl_ns, i - 1);
        if (!strcmp(n->prefix, prefix)) {
            return n->uri;
        }
    }
    return NULL;
}

static void vgcctl_start(GMarkupParseContext *ctx, const char *name, const char **attr,
                         const char **val, gpointer user, GError **error)
{
    struct vgcctl_parse *p = user;
    const char *colon = strchr(name, ':');
    g_autofree char *prefix = colon ? g_strndup(name, (gsize)(colon - name)) : g_strdup("");
    const char *local = colon ? colon + 1 : name;
    const char *uri;

    (void)ctx;
    (void)error;
    p->depth++;
    for (int i = 0; attr[i]; i++) {
        if (!strcmp(attr[i], "xmlns") || g_str_has_prefix(attr[i], "xmlns:")) {
            struct vgcctl_ns n = {
                .depth = p->depth,
                .prefix = g_strdup(attr[i][5] ? attr[i] + 6 : ""),
                .uri = g_strdup(val[i]),
            };
            g_array_append_val(p->ns, n);
        }
    }
    if (p->depth == 2 && !strcmp(name, "metadata")) {
        p->metadata_depth = 2;
        return;
    }
    if (!p->metadata_depth || p->depth != 3 || strcmp(local, VGCCTL_ELEMENT)) {
        return;
    }
    uri = vgcctl_ns_lookup(p, prefix);
    if (!uri || strcmp(uri, VGCCTL_NS_URI) || p->meta->found) {
        return;
    }
    p->meta->found = true;
    for (int i = 0; attr[i]; i++) {
        char **slot = !strcmp(attr[i], "socket") ? &p->meta->socket :
                      !strcmp(attr[i], "options") ? &p->meta->options :
                      !strcmp(attr[i], "hotplug") ? &p->meta->hotplug : NULL;
        if (slot) {
            g_free(*slot);
            *slot = g_strdup(val[i]);
        }
    }
}

static void vgcctl_end(GMarkupParseContext *ctx, const char *name, gpointer user,
                       GError **error)
{
    struct vgcctl_parse *p = user;

    (void)ctx;
    (void)name;
    (void)error;
    while (p->ns->len) {
        struct vgcctl_ns *n = &g_array_index(p->ns, struct vgcctl_ns, p->ns->len - 1);
        if (n->depth != p->depth) {
            break;
        }
        g_free(n->prefix);
        g_free(n->uri);
        g_array_set_size(p->ns, p->ns->len - 1);
    }
    if (p->depth == p->metadata_depth) {
        p->metadata_depth = 0;
    }
    p->depth--;
}

static void vgcctl_meta_clear(struct vgcctl_meta *m)
{
    g_free(m->socket);
    g_free(m->options);
    g_free(m->hotplug);
    memset(m, 0, sizeof(*m));
}

/* Find our element in the domain XML @xml.  Returns false (with *err) when
 * the XML does not parse. */
static bool vgcctl_meta_parse(const char *xml, struct vgcctl_meta *meta, char **err)
{
    static const GMarkupParser parser = { .start_element = vgcctl_start,
                                          .end_element = vgcctl_end };
    struct vgcctl_parse p = { .meta = meta, .ns = g_array_new(FALSE, TRUE,
                                                               sizeof(struct vgcctl_ns)) };
    GMarkupParseContext *ctx = g_markup_parse_context_new(&parser, 0, &p, NULL);
    GError *gerr = NULL;
    bool ok;

    memset(meta, 0, sizeof(*meta));
    ok = g_markup_parse_context_parse(ctx, xml, -1, &gerr) &&
         g_markup_parse_context_end_parse(ctx, &gerr);
    if (!ok) {
        *err = g_strdup_printf("cannot parse the domain XML: %s", gerr->message);
        g_error_free(gerr);
        vgcctl_meta_clear(meta);
    }
    for (guint i = 0; i < p.ns->len; i++) {
        g_free(g_array_index(p.ns, struct vgcctl_ns, i).prefix);
        g_free(g_array_index(p.ns, struct vgcctl_ns, i).uri);
    }
    g_array_free(p.ns, TRUE);
    g_markup_parse_context_free(ctx);
    return ok;
}

static char *vgcctl_default_socket(const char *domain)
{
    return g_strdup_printf("%s/%s.sock", VGCCTL_SOCKET_DIR, domain);
}

/* ---- the libvirt hook ------------------------------------------------------ */

/*
 * libvirt runs /etc/libvirt/hooks/qemu DOMAIN OP SUBOP EXTRA with the
 * domain XML on stdin and waits for it, holding the domain: nothing here
 * may call libvirt.  Domains without our element cost one read of stdin.
 */
static int vgcctl_hook(int argc, char **argv)
{
    const char *domain, *op, *sub;
    g_autoptr(GString) xml = g_string_new(NULL);
    g_autofree char *err = NULL;
    g_autofree char *socket = NULL;
    struct vgcctl_meta meta;
    bool created;
    char buf[65536];
    size_t n;
    int rc;

    if (argc < 3) {
        vgcctl_err("hook: want DOMAIN OPERATION SUBOPERATION [EXTRA]");
        return VGCCTL_USAGE;
    }
    domain = argv[0];
    op = argv[1];
    sub = argv[2];
    /* Read all of stdin either way: libvirt writes the whole XML. */
    while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
        if (xml->len < (64u << 20)) {
            g_string_append_len(xml, buf, (gssize)n);
        }
    }
    if (!((!strcmp(op, "prepare") && !strcmp(sub, "begin")) ||
          (!strcmp(op, "reconnect") && !strcmp(sub, "begin")) ||
          (!strcmp(op, "release") && !strcmp(sub, "end")))) {
        return VGCCTL_OK;
    }
    if (!strstr(xml->str, VGCCTL_NS_URI)) {
        return VGCCTL_OK;
    }
    if (!vgcctl_meta_parse(xml->str, &meta, &err)) {
        vgcctl_err("domain %s: %s", domain, err);
        return op[0] == 'p' ? VGCCTL_FAILED : VGCCTL_OK;
    }
    if (!meta.found) {
        return VGCCTL_OK;
    }
    socket = meta.socket && *meta.socket ? g_strdup(meta.socket) : vgcctl_default_socket(domain);
    if (op[1] == 'e' && op[2] == 'l') {                 /* release end */
        rc = vgcctl_close(socket, meta.options, &err);
        if (rc != VGCCTL_OK && !(err && g_str_has_prefix(err, "no listener"))) {
            /* The domain is gone either way; say why its socket may stay. */
            vgcctl_err("domain %s: cannot close vhost-user:%s in vgcd: %s", domain, socket,
                       err);
        }
        vgcctl_meta_clear(&meta);
        return VGCCTL_OK;
    }
    rc = vgcctl_listen_vhost(socket, meta.options, &created, &err);
    vgcctl_meta_clear(&meta);
    if (rc == VGCCTL_OK) {
        return VGCCTL_OK;
    }
    if (op[0] == 'r') {
        /* reconnect: a failing hook makes libvirt kill the running domain;
         * its device reconnects by itself once vgcd listens again. */
        vgcctl_err("domain %s: vgcd does not serve %s: %s (the domain keeps running; "
                   "run vgcctl listen vhost-user:%s)", domain, socket, err, socket);
        return VGCCTL_OK;
    }
    vgcctl_err("domain %s: cannot have vgcd listen on %s for its gpu-compute device: %s",
               domain, socket, err);
    return rc;
}

/* ---- attach and detach ----------------------------------------------------- */

#ifdef VGCCTL_LIBVIRT

static void vgcctl_virt_quiet(void *opaque, virErrorPtr e)
{
    (void)opaque;
    (void)e;
}

static char *vgcctl_virt_error(void)
{
    virErrorPtr e = virGetLastError();

    return g_strdup(e && e->message ? e->message : "unknown libvirt error");
}

/* @s as a JSON string, quotes included. */
static char *vgcctl_json_str(const char *s)
{
    GString *j = g_string_new("\"");

    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            g_string_append_c(j, '\\');
            g_string_append_c(j, *s);
        } else if ((unsigned char)*s < 0x20) {
            g_string_append_printf(j, "\\u%04x", (unsigned char)*s);
        } else {
            g_string_append_c(j, *s);
        }
    }
    g_string_append_c(j, '"');
    return g_string_free(j, FALSE);
}

/*
 * Run the QMP command @cmd (JSON) in @dom through libvirt.  Returns its
 * "return" member (json_node_unref() it), or NULL with *err set.
 */
static JsonNode *vgcctl_qmp(virDomainPtr dom, const char *cmd, char **err)
{
    g_autofree char *reply = NULL;
    g_autoptr(GError) gerr = NULL;
    JsonNode *root, *ret = NULL;
    JsonObject *o;

    if (virDomainQemuMonitorCommand(dom, cmd, &reply, 0) < 0) {
        *err = vgcctl_virt_error();
        return NULL;
    }
    root = json_from_string(reply, &gerr);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        *err = g_strdup_printf("unreadable QMP reply: %s", reply);
    } else if (json_object_has_member((o = json_node_get_object(root)), "error")) {
        JsonObject *e = json_object_get_object_member(o, "error");
        const char *desc = e ? json_object_get_string_member_with_default(e, "desc", NULL) : NULL;
        *err = g_strdup(desc ? desc : reply);
    } else if (!json_object_has_member(o, "return")) {
        *err = g_strdup_printf("unexpected QMP reply: %s", reply);
    } else {
        ret = json_node_copy(json_object_get_member(o, "return"));
    }
    if (root) {
        json_node_unref(root);
    }
    return ret;
}

static bool vgcctl_qmp_ok(virDomainPtr dom, const char *cmd, char **err)
{
    JsonNode *r = vgcctl_qmp(dom, cmd, err);

    if (r) {
        json_node_unref(r);
    }
    return r != NULL;
}

/* Is there a device (qom-list /machine/peripheral) with id @id?
 * Returns 1 or 0, or -1 with *err. */
static int vgcctl_has_device(virDomainPtr dom, const char *id, char **err)
{
    JsonNode *r = vgcctl_qmp(dom, "{\"execute\": \"qom-list\", \"arguments\": "
                             "{\"path\": \"/machine/peripheral\"}}", err);
    JsonArray *a;
    int found = 0;

    if (!r) {
        return -1;
    }
    a = JSON_NODE_HOLDS_ARRAY(r) ? json_node_get_array(r) : NULL;
    for (guint i = 0; a && i < json_array_get_length(a); i++) {
        JsonObject *o = json_array_get_object_element(a, i);
        const char *name = o ? json_object_get_string_member_with_default(o, "name", "") : "";
        found |= !strcmp(name, id);
    }
    json_node_unref(r);
    return found;
}

/*
 * Is chardev @id there (1), connected when @connected is not NULL, or not
 * there (0)?  -1 with *err when QEMU was not asked.  A socket chardev
 * that is not connected names itself "disconnected:...".
 */
static int vgcctl_chardev(virDomainPtr dom, const char *id, bool *connected, char **err)
{
    JsonNode *r = vgcctl_qmp(dom, "{\"execute\": \"query-chardev\"}", err);
    JsonArray *a;
    int found = 0;

    if (!r) {
        return -1;
    }
    a = JSON_NODE_HOLDS_ARRAY(r) ? json_node_get_array(r) : NULL;
    for (guint i = 0; a && i < json_array_get_length(a); i++) {
        JsonObject *o = json_array_get_object_element(a, i);
        const char *label = o ? json_object_get_string_member_with_default(o, "label", "") : "";
        if (!strcmp(label, id)) {
            const char *fn = json_object_get_string_member_with_default(o, "filename", "");
            found = 1;
            if (connected) {
                *connected = !g_str_has_prefix(fn, "disconnected");
            }
        }
    }
    json_node_unref(r);
    return found;
}

/* Depth-first through query-pci's buses: the first root port in @ports
 * with nothing behind it. */
static const char *vgcctl_free_port_in(JsonArray *devices, GHashTable *ports)
{
    for (guint i = 0; devices && i < json_array_get_length(devices); i++) {
        JsonObject *d = json_array_get_object_element(devices, i);
        JsonObject *br;
        JsonArray *below = NULL;
        const char *id, *found;

        if (!d || !json_object_has_member(d, "pci_bridge")) {
            continue;
        }
        br = json_object_get_object_member(d, "pci_bridge");
        if (br && json_object_has_member(br, "devices")) {
            below = json_object_get_array_member(br, "devices");
        }
        id = json_object_get_string_member_with_default(d, "qdev_id", "");
        if (*id && g_hash_table_contains(ports, id) &&
            (!below || json_array_get_length(below) == 0)) {
            return id;
        }
        if ((found = vgcctl_free_port_in(below, ports))) {
            return found;
        }
    }
    return NULL;
}

/* The id of a hot-pluggable PCIe root port with no device in it, or NULL
 * (*err says why). */
static char *vgcctl_free_port(virDomainPtr dom, const char *domain, char **err)
{
    g_autoptr(GHashTable) ports = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    JsonNode *list, *pci;
    JsonArray *a;
    char *port = NULL;

    list = vgcctl_qmp(dom, "{\"execute\": \"qom-list\", \"arguments\": "
                      "{\"path\": \"/machine/peripheral\"}}", err);
    if (!list) {
        return NULL;
    }
    a = JSON_NODE_HOLDS_ARRAY(list) ? json_node_get_array(list) : NULL;
    for (guint i = 0; a && i < json_array_get_length(a); i++) {
        JsonObject *o = json_array_get_object_element(a, i);
        const char *type = o ? json_object_get_string_member_with_default(o, "type", "") : "";
        if (!strcmp(type, "child<pcie-root-port>") || !strcmp(type, "child<ioh3420>")) {
            g_hash_table_add(ports, g_strdup(json_object_get_string_member(o, "name")));
        }
    }
    json_node_unref(list);
    pci = vgcctl_qmp(dom, "{\"execute\": \"query-pci\"}", err);
    if (!pci) {
        return NULL;
    }
    a = JSON_NODE_HOLDS_ARRAY(pci) ? json_node_get_array(pci) : NULL;
    for (guint i = 0; a && !port && i < json_array_get_length(a); i++) {
        JsonObject *bus = json_array_get_object_element(a, i);
        const char *id;
        if (bus && json_object_has_member(bus, "devices") &&
            (id = vgcctl_free_port_in(json_object_get_array_member(bus, "devices"), ports))) {
            port = g_strdup(id);
        }
    }
    json_node_unref(pci);
    if (!port) {
        *err = g_strdup_printf("domain %s has no free pcie-root-port to plug the device "
                               "into (add <controller type='pci' model='pcie-root-port'/> "
                               "to its XML: libvirt-hooks/domain-example.xml)", domain);
    }
    return port;
}

/* A running domain @name, or NULL (*err). */
static virDomainPtr vgcctl_domain(virConnectPtr conn, const char *name, char **err)
{
    virDomainPtr dom = virDomainLookupByName(conn, name);

    if (!dom) {
        *err = vgcctl_virt_error();
        return NULL;
    }
    if (virDomainIsActive(dom) != 1) {
        *err = g_strdup_printf("domain %s is not running", name);
        virDomainFree(dom);
        return NULL;
    }
    return dom;
}

/* Our element in the live XML: true and @meta filled, false when there is
 * none; -1 (with *err) when libvirt failed. */
static int vgcctl_live_meta(virDomainPtr dom, struct vgcctl_meta *meta, char **err)
{
    g_autofree char *xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
                                                VGCCTL_NS_URI, VIR_DOMAIN_AFFECT_LIVE);
    g_autofree char *wrapped = NULL;
    virErrorPtr e;

    memset(meta, 0, sizeof(*meta));
    if (!xml) {
        e = virGetLastError();
        if (e && e->code == VIR_ERR_NO_DOMAIN_METADATA) {
            return 0;
        }
        *err = vgcctl_virt_error();
        return -1;
    }
    /* libvirt hands back the element alone and without its prefix: give
     * it the place and the namespace the parser looks for. */
    wrapped = g_strdup_printf("<domain><metadata xmlns=\"" VGCCTL_NS_URI "\">%s"
                              "</metadata></domain>", xml);
    if (!vgcctl_meta_parse(wrapped, meta, err)) {
        return -1;
    }
    return meta->found;
}

static bool vgcctl_set_meta(virDomainPtr dom, const char *socket, const char *options,
                            const char *id, char **err)
{
    g_autofree char *s = g_markup_printf_escaped("%s", socket);
    g_autofree char *o = g_markup_printf_escaped("%s", options ? options : "");
    g_autofree char *i = g_markup_printf_escaped("%s", id);
    g_autofree char *xml = g_strdup_printf("<" VGCCTL_ELEMENT " socket=\"%s\"%s%s%s "
                                           "hotplug=\"%s\"/>", s, *o ? " options=\"" : "",
                                           o, *o ? "\"" : "", i);

    if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, xml, VGCCTL_NS_PREFIX,
                             VGCCTL_NS_URI, VIR_DOMAIN_AFFECT_LIVE) < 0) {
        *err = vgcctl_virt_error();
        return false;
    }
    return true;
}

static void vgcctl_clear_meta(virDomainPtr dom)
{
    if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, NULL, NULL, VGCCTL_NS_URI,
                             VIR_DOMAIN_AFFECT_LIVE) < 0) {
        g_autofree char *err = vgcctl_virt_error();
        vgcctl_err("warning: cannot remove the gpu-compute metadata: %s", err);
    }
}

static void vgcctl_chardev_remove(virDomainPtr dom, const char *chr)
{
    g_autofree char *j = vgcctl_json_str(chr);
    g_autofree char *cmd = g_strdup_printf("{\"execute\": \"chardev-remove\", "
                                           "\"arguments\": {\"id\": %s}}", j);
    g_autofree char *err = NULL;

    if (!vgcctl_qmp_ok(dom, cmd, &err)) {
        vgcctl_err("warning: chardev-remove %s: %s", chr, err);
    }
}

static virConnectPtr vgcctl_connect(char **err)
{
    virConnectPtr conn;

    virSetErrorFunc(NULL, vgcctl_virt_quiet);
    conn = virConnectOpen(vgcctl_uri);
    if (!conn) {
        *err = vgcctl_virt_error();
    }
    return conn;
}

/*
 * Hot-plug: vgcd listens, QEMU gets a chardev to that socket, the live
 * XML gets our metadata (so that the release hook closes the listener
 * when the domain ends), then the device goes onto a free root port.
 * Each step that fails undoes the ones before it.
 */
static int vgcctl_attach(const char *domain, const char *socket_arg, const char *options,
                         const char *id)
{
    g_autofree char *socket = socket_arg ? g_strdup(socket_arg) : vgcctl_default_socket(domain);
    g_autofree char *chr = g_strdup_printf("%s-chr", id);
    g_autofree char *err = NULL, *port = NULL, *cmd = NULL;
    g_autofree char *jchr = vgcctl_json_str(chr), *jsock = vgcctl_json_str(socket);
    g_autofree char *jid = vgcctl_json_str(id), *jport = NULL;
    virConnectPtr conn;
    virDomainPtr dom = NULL;
    struct vgcctl_meta meta;
    bool created = false, up = false;
    int rc = VGCCTL_FAILED, r;

    if (!(conn = vgcctl_connect(&err))) {
        goto fail;
    }
    if (!(dom = vgcctl_domain(conn, domain, &err))) {
        goto fail;
    }
    r = vgcctl_live_meta(dom, &meta, &err);
    if (r < 0) {
        goto fail;
    }
    if (r > 0) {
        err = g_strdup_printf("domain %s has a gpu-compute device already (%s %s; "
                              "see vgcctl status)", domain,
                              meta.hotplug ? "hot-plugged as" : "in its XML, socket",
                              meta.hotplug ? meta.hotplug : meta.socket ? meta.socket : "?");
        vgcctl_meta_clear(&meta);
        goto fail;
    }
    if ((r = vgcctl_has_device(dom, id, &err)) != 0) {
        if (r > 0) {
            err = g_strdup_printf("domain %s has a device named %s already", domain, id);
        }
        goto fail;
    }
    if ((r = vgcctl_chardev(dom, chr, NULL, &err)) != 0) {
        if (r > 0) {
            err = g_strdup_printf("domain %s has a chardev named %s already", domain, chr);
        }
        goto fail;
    }
    if (!(port = vgcctl_free_port(dom, domain, &err))) {
        goto fail;
    }
    jport = vgcctl_json_str(port);

    rc = vgcctl_listen_vhost(socket, options, &created, &err);
    if (rc != VGCCTL_OK) {
        g_autofree char *e = g_steal_pointer(&err);
        err = g_strdup_printf("vgcd cannot listen on %s: %s", socket, e);
        goto fail;
    }
    rc = VGCCTL_FAILED;
    cmd = g_strdup_printf("{\"execute\": \"chardev-add\", \"arguments\": {\"id\": %s, "
                          "\"backend\": {\"type\": \"socket\", \"data\": {\"server\": false, "
                          "\"reconnect\": 1, \"addr\": {\"type\": \"unix\", \"data\": "
                          "{\"path\": %s}}}}}}", jchr, jsock);
    if (!vgcctl_qmp_ok(dom, cmd, &err)) {
        goto err_listener;
    }
    /* device_add waits, holding QEMU, until the chardev is connected:
     * make sure it is, rather than hang a domain on a socket nobody
     * serves. */
    for (int i = 0; i < 50 && !up; i++) {
        if ((r = vgcctl_chardev(dom, chr, &up, &err)) < 0) {
            goto err_chardev;
        }
        if (!up) {
            g_usleep(100 * 1000);
        }
    }
    if (!up) {
        err = g_strdup_printf("QEMU cannot connect to %s (is vgcd serving it?)", socket);
        goto err_chardev;
    }
    if (!vgcctl_set_meta(dom, socket, options, id, &err)) {
        goto err_chardev;
    }
    g_free(cmd);
    cmd = g_strdup_printf("{\"execute\": \"device_add\", \"arguments\": {\"driver\": "
                          "\"vhost-user-gpu-compute-pci\", \"id\": %s, \"bus\": %s, "
                          "\"chardev\": %s}}", jid, jport, jchr);
    if (!vgcctl_qmp_ok(dom, cmd, &err)) {
        goto err_meta;
    }
    printf("attached %s to domain %s on %s, vgcd listening on %s\n", id, domain, port, socket);
    virDomainFree(dom);
    virConnectClose(conn);
    return VGCCTL_OK;

err_meta:
    vgcctl_clear_meta(dom);
err_chardev:
    vgcctl_chardev_remove(dom, chr);
err_listener:
    if (created) {
        g_autofree char *e = NULL;
        if (vgcctl_close(socket, options, &e) != VGCCTL_OK) {
            vgcctl_err("warning: cannot close %s in vgcd again: %s", socket, e);
        }
    }
fail:
    vgcctl_err("attach %s: %s", domain, err ? err : "failed");
    if (dom) {
        virDomainFree(dom);
    }
    if (conn) {
        virConnectClose(conn);
    }
    return rc;
}

/*
 * Unplug what attach plugged: device_del, then wait for the guest to let
 * go (a PCIe hot-unplug takes the guest ~5 s); only then the chardev, the
 * metadata and vgcd's listener.  If the guest does not let go in time,
 * nothing else is touched: the device keeps working, detach can be run
 * again.
 */
static int vgcctl_detach(const char *domain, int timeout_s)
{
    g_autofree char *err = NULL, *chr = NULL, *cmd = NULL, *jid = NULL;
    virConnectPtr conn;
    virDomainPtr dom = NULL;
    struct vgcctl_meta meta = { 0 };
    int rc = VGCCTL_FAILED, r;

    if (!(conn = vgcctl_connect(&err))) {
        goto fail;
    }
    if (!(dom = vgcctl_domain(conn, domain, &err))) {
        goto fail;
    }
    r = vgcctl_live_meta(dom, &meta, &err);
    if (r <= 0) {
        if (r == 0) {
            err = g_strdup_printf("domain %s has no gpu-compute device that vgcctl attach "
                                  "plugged", domain);
        }
        goto fail;
    }
    if (!meta.hotplug || !*meta.hotplug) {
        err = g_strdup_printf("domain %s's gpu-compute device is in its XML, not "
                              "hot-plugged: vgcctl detach cannot remove it", domain);
        goto fail;
    }
    chr = g_strdup_printf("%s-chr", meta.hotplug);
    jid = vgcctl_json_str(meta.hotplug);
    r = vgcctl_has_device(dom, meta.hotplug, &err);
    if (r < 0) {
        goto fail;
    }
    if (r > 0) {
        time_t end = time(NULL) + timeout_s;

        cmd = g_strdup_printf("{\"execute\": \"device_del\", \"arguments\": {\"id\": %s}}",
                              jid);
        /* A repeated device_del while one is pending says so; ignore it. */
        if (!vgcctl_qmp_ok(dom, cmd, &err)) {
            if (!strstr(err, "in progress")) {
                goto fail;
            }
            g_clear_pointer(&err, g_free);
        }
        while ((r = vgcctl_has_device(dom, meta.hotplug, &err)) > 0 && time(NULL) < end) {
            g_usleep(200 * 1000);
        }
        if (r < 0) {
            goto fail;
        }
        if (r > 0) {
            err = g_strdup_printf("the guest did not release %s within %d s; it is still "
                                  "plugged (run vgcctl detach %s again later)",
                                  meta.hotplug, timeout_s, domain);
            goto fail;
        }
    }
    if (vgcctl_chardev(dom, chr, NULL, &err) > 0) {
        vgcctl_chardev_remove(dom, chr);
    }
    g_clear_pointer(&err, g_free);
    vgcctl_clear_meta(dom);
    if (meta.socket && vgcctl_close(meta.socket, meta.options, &err) != VGCCTL_OK) {
        if (!g_str_has_prefix(err, "no listener")) {
            g_autofree char *e = g_steal_pointer(&err);
            err = g_strdup_printf("unplugged, but vgcd did not close %s: %s", meta.socket, e);
            goto fail;
        }
    }
    printf("detached %s from domain %s\n", meta.hotplug, domain);
    rc = VGCCTL_OK;
    goto out;

fail:
    vgcctl_err("detach %s: %s", domain, err ? err : "failed");
out:
    vgcctl_meta_clear(&meta);
    if (dom) {
        virDomainFree(dom);
    }
    if (conn) {
        virConnectClose(conn);
    }
    return rc;
}

#else /* !VGCCTL_LIBVIRT */

static int vgcctl_no_libvirt(void)
{
    vgcctl_err("this vgcctl was built without libvirt (libvirt-dev, libjson-glib-dev)");
    return VGCCTL_FAILED;
}

static int vgcctl_attach(const char *domain, const char *socket, const char *options,
                         const char *id)
{
    (void)domain;
    (void)socket;
    (void)options;
    (void)id;
    return vgcctl_no_libvirt();
}

static int vgcctl_detach(const char *domain, int timeout_s)
{
    (void)domain;
    (void)timeout_s;
    return vgcctl_no_libvirt();
}

#endif /* VGCCTL_LIBVIRT */

/* attach/detach options after DOMAIN. */
static int vgcctl_plug(bool attach, int argc, char **argv)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "options", required_argument, NULL, 'o' },
        { "id", required_argument, NULL, 'i' },
        { "timeout", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    const char *socket = NULL, *options = NULL, *id = VGCCTL_DEFAULT_ID;
    int timeout = 30, opt;
    bool id_given = false;

    optind = 0;                 /* 0: glibc starts afresh, permuting this time */
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            socket = optarg;
            break;
        case 'o':
            options = optarg;
            break;
        case 'i':
            id = optarg;
            id_given = true;
            break;
        case 't':
            timeout = atoi(optarg);
            if (timeout < 1) {
                vgcctl_err("--timeout wants seconds, at least 1");
                return VGCCTL_USAGE;
            }
            break;
        default:
            return VGCCTL_USAGE;
        }
    }
    if (optind != argc - 1) {
        vgcctl_err("%s: want one DOMAIN", attach ? "attach" : "detach");
        return VGCCTL_USAGE;
    }
    if (!attach && (socket || options || id_given)) {
        vgcctl_err("detach takes only --timeout (the rest is in the domain's metadata)");
        return VGCCTL_USAGE;
    }
    if (attach && (!*id || !vgcctl_addr_ok(id) || strchr(id, '"'))) {
        vgcctl_err("attach: --id '%s' is not a usable device id", id);
        return VGCCTL_USAGE;
    }
    return attach ? vgcctl_attach(argv[optind], socket, options, id)
                  : vgcctl_detach(argv[optind], timeout);
}

/*
 * The registry's hosts, read from etcd (not through vgcd): one line per
 * host in the form of vgcd's status lines, then "left-out KEY: why" for
 * records that do not read.
 */
static int vgcctl_hosts(const char *urls)
{
    struct vgc_registry_host *hosts;
    GString *left_out = g_string_new(NULL);
    char *err = NULL;
    int n = vgc_registry_list(urls, &hosts, left_out, &err);

    if (n < 0) {
        vgcctl_err("hosts: %s", err ? err : "cannot read the registry");
        free(err);
        g_string_free(left_out, TRUE);
        return VGCCTL_FAILED;
    }
    for (int i = 0; i < n; i++) {
        const struct vgc_registry_host *h = &hosts[i];
        uint64_t used = 0;

        for (int d = 0; d < h->ndevices; d++) {
            used += h->used[d];
        }
        printf("host %s executor %s devices %d memory %" PRIu64 " used %" PRIu64
               " clients %u\n", h->address, h->executor, h->ndevices, h->memory, used,
               h->clients);
    }
    if (left_out->len) {
        gchar **each = g_strsplit(left_out->str, "\n", -1);

        for (int i = 0; each[i] && *each[i]; i++) {
            printf("left-out %s\n", each[i]);
        }
        g_strfreev(each);
    }
    g_free(hosts);
    g_string_free(left_out, TRUE);
    return VGCCTL_OK;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "control", required_argument, NULL, 'c' },
        { "connect", required_argument, NULL, 'u' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *cmd;
    int opt;

    if (getenv("VGCD_CONTROL") && *getenv("VGCD_CONTROL")) {
        vgcctl_control = getenv("VGCD_CONTROL");
    }
    /* "+": options after the command belong to it. */
    while ((opt = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            vgcctl_control = optarg;
            break;
        case 'u':
            vgcctl_uri = optarg;
            break;
        case 'h':
            vgcctl_usage(stdout);
            return VGCCTL_OK;
        default:
            vgcctl_usage(stderr);
            return VGCCTL_USAGE;
        }
    }
    if (optind >= argc) {
        vgcctl_usage(stderr);
        return VGCCTL_USAGE;
    }
    cmd = argv[optind];
    argc -= optind;
    argv += optind;
    if (!strcmp(cmd, "status") && argc == 1) {
        return vgcctl_simple("status", NULL);
    }
    if ((!strcmp(cmd, "listen") || !strcmp(cmd, "close")) && argc == 2) {
        if (!vgcctl_addr_ok(argv[1])) {
            vgcctl_err("%s: an address has no spaces or control characters", cmd);
            return VGCCTL_USAGE;
        }
        return vgcctl_simple(cmd, argv[1]);
    }
    if (!strcmp(cmd, "attach") || !strcmp(cmd, "detach")) {
        return vgcctl_plug(cmd[0] == 'a', argc, argv);
    }
    if (!strcmp(cmd, "hosts") && argc == 2) {
        return vgcctl_hosts(argv[1]);
    }
    if (!strcmp(cmd, "hook")) {
        return vgcctl_hook(argc - 1, argv + 1);
    }
    vgcctl_err("unknown command or wrong arguments: %s (see vgcctl --help)", cmd);
    return VGCCTL_USAGE;
}
