/*
 * record.c - a GPU host's record in the registry, and which host is best.
 *
 * A record is a JSON object, so that an operator reading etcd
 * (`etcdctl get --prefix /vgc/`) sees what each host says:
 *
 *   {"version":1,"address":"tcp:gpu1:7070","executor":"cuda","devices":2,
 *    "memory":150754820096,"used":[0,1073741824],"clients":3}
 *
 * Records are written by other hosts, so reading one checks everything: a
 * record that does not read is left out of placement (and said once in the
 * log by registry.c), never trusted in part.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <json-glib/json-glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

#define RECORD_VERSION 1

static bool record_fail(char **err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(err, fmt, ap) < 0) {
        *err = NULL;
    }
    va_end(ap);
    return false;
}

char *vgc_registry_record_encode(const struct vgc_registry_host *h)
{
    JsonBuilder *b = json_builder_new();
    JsonNode *root;
    char *text;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "version");
    json_builder_add_int_value(b, RECORD_VERSION);
    json_builder_set_member_name(b, "address");
    json_builder_add_string_value(b, h->address);
    json_builder_set_member_name(b, "executor");
    json_builder_add_string_value(b, h->executor);
    json_builder_set_member_name(b, "devices");
    json_builder_add_int_value(b, h->ndevices);
    json_builder_set_member_name(b, "memory");
    json_builder_add_int_value(b, (gint64)(h->memory > INT64_MAX ? INT64_MAX : h->memory));
    json_builder_set_member_name(b, "used");
    json_builder_begin_array(b);
    for (int i = 0; i < h->ndevices && i < VGC_REGISTRY_MAX_DEVICES; i++) {
        json_builder_add_int_value(b, (gint64)(h->used[i] > INT64_MAX ? INT64_MAX : h->used[i]));
    }
    json_builder_end_array(b);
    json_builder_set_member_name(b, "clients");
    json_builder_add_int_value(b, h->clients);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    text = json_to_string(root, FALSE);
    json_node_unref(root);
    g_object_unref(b);
    return text;
}

/* Member @name of @o as an integer in [@min, @max]. */
static bool record_int(JsonObject *o, const char *name, int64_t min, int64_t max,
                       int64_t *out, char **err)
{
    JsonNode *n = json_object_get_member(o, name);

    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64) {
        return record_fail(err, "'%s' is missing or not an integer", name);
    }
    *out = json_node_get_int(n);
    if (*out < min || *out > max) {
        return record_fail(err, "'%s' is %" G_GINT64_FORMAT ", outside %" G_GINT64_FORMAT
                           "..%" G_GINT64_FORMAT, name, (gint64)*out, (gint64)min, (gint64)max);
    }
    return true;
}

/* Member @name of @o as a string that fits @cap with its NUL. */
static bool record_string(JsonObject *o, const char *name, char *out, size_t cap, char **err)
{
    JsonNode *n = json_object_get_member(o, name);
    const char *s;

    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
        return record_fail(err, "'%s' is missing or not a string", name);
    }
    s = json_node_get_string(n);
    if (strlen(s) >= cap) {
        return record_fail(err, "'%s' is longer than %zu bytes", name, cap - 1);
    }
    memcpy(out, s, strlen(s) + 1);
    return true;
}

bool vgc_registry_record_decode(const char *json, size_t len, const char *address,
                                struct vgc_registry_host *h, char **err)
{
    JsonParser *p = json_parser_new();
    JsonObject *o = NULL;
    JsonArray *used;
    JsonNode *n;
    GError *gerr = NULL;
    int64_t v;
    bool ok = false;

    memset(h, 0, sizeof(*h));
    if (len > INT32_MAX || !json_parser_load_from_data(p, json, (gssize)len, &gerr)) {
        record_fail(err, "not JSON: %s", gerr ? gerr->message : "too long");
        g_clear_error(&gerr);
        goto out;
    }
    n = json_parser_get_root(p);
    if (!n || !JSON_NODE_HOLDS_OBJECT(n)) {
        record_fail(err, "not a JSON object");
        goto out;
    }
    o = json_node_get_object(n);
    if (!record_int(o, "version", RECORD_VERSION, RECORD_VERSION, &v, err) ||
        !record_string(o, "address", h->address, sizeof(h->address), err) ||
        !record_string(o, "executor", h->executor, sizeof(h->executor), err) ||
        !record_int(o, "devices", 1, VGC_REGISTRY_MAX_DEVICES, &v, err)) {
        goto out;
    }
    h->ndevices = (int)v;
    if (strcmp(h->address, address)) {
        record_fail(err, "it names '%s', not the address of its key", h->address);
        goto out;
    }
    if (!record_int(o, "memory", 0, INT64_MAX, &v, err)) {
        goto out;
    }
    h->memory = (uint64_t)v;
    if (!record_int(o, "clients", 0, UINT32_MAX, &v, err)) {
        goto out;
    }
    h->clients = (unsigned)v;
    n = json_object_get_member(o, "used");
    if (!n || !JSON_NODE_HOLDS_ARRAY(n) ||
        json_array_get_length(used = json_node_get_array(n)) != (guint)h->ndevices) {
        record_fail(err, "'used' is not an array of one figure per device");
        goto out;
    }
    for (int i = 0; i < h->ndevices; i++) {
        JsonNode *e = json_array_get_element(used, (guint)i);

        if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_INT64 ||
            json_node_get_int(e) < 0) {
            record_fail(err, "'used' holds something other than a byte count");
            goto out;
        }
        h->used[i] = (uint64_t)json_node_get_int(e);
    }
    ok = vgc_registry_address_ok(h->address, err);
out:
    g_object_unref(p);
    if (!ok) {
        memset(h, 0, sizeof(*h));
    }
    return ok;
}

bool vgc_registry_address_ok(const char *addr, char **err)
{
    const char *colon;
    char *end;
    long port;

    if (strncmp(addr, "tcp:", 4)) {
        return record_fail(err, "'%s' is not tcp:HOST:PORT (other hosts dial it)", addr);
    }
    if (strlen(addr) >= VGC_REGISTRY_ADDRESS_MAX) {
        return record_fail(err, "'%.32s...' is longer than %d bytes", addr,
                           VGC_REGISTRY_ADDRESS_MAX - 1);
    }
    if (strpbrk(addr, "|+, \t\n\"\\")) {
        return record_fail(err, "'%s' holds a character an address cannot have", addr);
    }
    colon = strrchr(addr + 4, ':');
    if (!colon || colon == addr + 4) {
        return record_fail(err, "'%s' is not tcp:HOST:PORT", addr);
    }
    port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 1 || port > 65535) {
        return record_fail(err, "'%s': the port is not 1..65535", addr);
    }
    return true;
}

/* Free bytes on the first @need devices of @h; 0 when it does not say. */
static uint64_t record_free(const struct vgc_registry_host *h, int need)
{
    uint64_t free_bytes = 0;

    for (int i = 0; h->memory && i < need; i++) {
        free_bytes += h->used[i] < h->memory ? h->memory - h->used[i] : 0;
    }
    return free_bytes;
}

struct rank_ctx {
    const struct vgc_registry_host *hosts;
    const unsigned *pending;
    int need;
};

/* -1 when host @a is better than @b: fewer clients per device (compared
 * as cross products, exact), more memory free, then the address. */
static int record_compare(const void *pa, const void *pb, void *arg)
{
    const struct rank_ctx *c = arg;
    int a = *(const int *)pa, b = *(const int *)pb;
    const struct vgc_registry_host *ha = &c->hosts[a], *hb = &c->hosts[b];
    uint64_t la = ((uint64_t)ha->clients + (c->pending ? c->pending[a] : 0)) *
                  (uint64_t)hb->ndevices;
    uint64_t lb = ((uint64_t)hb->clients + (c->pending ? c->pending[b] : 0)) *
                  (uint64_t)ha->ndevices;
    uint64_t fa, fb;

    if (la != lb) {
        return la < lb ? -1 : 1;
    }
    fa = record_free(ha, c->need);
    fb = record_free(hb, c->need);
    if (fa != fb) {
        return fa > fb ? -1 : 1;
    }
    return strcmp(ha->address, hb->address);
}

int vgc_registry_rank(const struct vgc_registry_host *hosts, const unsigned *pending, int n,
                      int need, int *order)
{
    struct rank_ctx c = { hosts, pending, need };
    int m = 0;

    for (int i = 0; i < n; i++) {
        if (hosts[i].ndevices >= need) {
            order[m++] = i;
        }
    }
    qsort_r(order, (size_t)m, sizeof(*order), record_compare, &c);
    return m;
}
