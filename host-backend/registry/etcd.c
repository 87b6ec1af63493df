/*
 * etcd.c - etcd v3 through its JSON gateway: leases, put, prefix range.
 *
 * The gateway is part of every etcd since 3.3 (Debian's etcd-server
 * included) and speaks HTTP/1.1 with JSON bodies, so libcurl and
 * json-glib, both Debian packages, are all it takes: no gRPC stack.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <glib.h>
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"

struct vgc_etcd {
    char *endpoint[VGC_ETCD_MAX_ENDPOINTS];  /* "http://host:port", no path */
    int nendpoints;
    int current;                /* the one that answered last */
    char *prefix;               /* "/vgc" */
    CURL *curl;
};

/* The reply being read: capped at VGC_ETCD_MAX_REPLY. */
struct etcd_reply {
    GString *body;
    bool too_long;
};

static bool etcd_fail(char **err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(err, fmt, ap) < 0) {
        *err = NULL;
    }
    va_end(ap);
    return false;
}

/* libcurl is initialised once per process, before any thread may use it. */
static void etcd_curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
}

static void etcd_curl_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, etcd_curl_init_once);
}

/*
 * One URL of the list: http://HOST:PORT[/PATH].  Only http: the gateway
 * has no authentication of its own here, like the data path between
 * hosts (docs/registry.md says to keep it on a trusted network).
 */
static bool etcd_parse_url(struct vgc_etcd *e, const char *url, char **err)
{
    const char *host = url + strlen("http://");
    const char *slash;
    char *path;

    if (strncmp(url, "http://", 7) || !*host || *host == '/') {
        return etcd_fail(err, "'%s' is not an http://HOST:PORT URL of etcd", url);
    }
    if (strpbrk(url, " \t\"\\?#")) {
        return etcd_fail(err, "'%s': a URL of etcd has no spaces, quotes, query or fragment",
                         url);
    }
    slash = strchr(host, '/');
    path = g_strdup(slash && slash[1] ? slash : "/vgc");
    /* "/pool/" and "/pool" are one prefix. */
    while (strlen(path) > 1 && path[strlen(path) - 1] == '/') {
        path[strlen(path) - 1] = '\0';
    }
    if (e->prefix && strcmp(e->prefix, path)) {
        g_free(path);
        return etcd_fail(err, "the URLs of etcd name different prefixes ('%s', '%s'): one "
                         "pool is one prefix", e->prefix, slash ? slash : "/vgc");
    }
    if (!strcmp(path, "/")) {
        g_free(path);
        return etcd_fail(err, "'%s': the prefix cannot be '/' alone", url);
    }
    g_free(e->prefix);
    e->prefix = path;
    e->endpoint[e->nendpoints++] = slash ? g_strndup(url, (gsize)(slash - url)) : g_strdup(url);
    return true;
}

struct vgc_etcd *vgc_etcd_new(const char *urls, char **err)
{
    struct vgc_etcd *e = g_new0(struct vgc_etcd, 1);
    char **list = g_strsplit(urls, ",", -1);
    bool ok = list[0] != NULL;

    if (!ok) {
        etcd_fail(err, "no URL of etcd given");
    }
    for (int i = 0; ok && list[i]; i++) {
        if (e->nendpoints == VGC_ETCD_MAX_ENDPOINTS) {
            ok = etcd_fail(err, "at most %d URLs of etcd", VGC_ETCD_MAX_ENDPOINTS);
        } else {
            ok = etcd_parse_url(e, list[i], err);
        }
    }
    g_strfreev(list);
    if (ok) {
        etcd_curl_init();
        e->curl = curl_easy_init();
        if (!e->curl) {
            ok = etcd_fail(err, "libcurl cannot start");
        }
    }
    if (!ok) {
        vgc_etcd_free(e);
        return NULL;
    }
    return e;
}

void vgc_etcd_free(struct vgc_etcd *e)
{
    if (!e) {
        return;
    }
    if (e->curl) {
        curl_easy_cleanup(e->curl);
    }
    for (int i = 0; i < e->nendpoints; i++) {
        g_free(e->endpoint[i]);
    }
    g_free(e->prefix);
    g_free(e);
}

const char *vgc_etcd_prefix(const struct vgc_etcd *e)
{
    return e->prefix;
}

const char *vgc_etcd_endpoint(const struct vgc_etcd *e)
{
    return e->endpoint[e->current];
}

static size_t etcd_write(char *data, size_t size, size_t n, void *arg)
{
    struct etcd_reply *r = arg;

    if (r->body->len + n > VGC_ETCD_MAX_REPLY) {
        r->too_long = true;
        return 0;               /* libcurl ends the transfer */
    }
    g_string_append_len(r->body, data, (gssize)n);
    return size * n;
}

/*
 * POST @body to @path of one endpoint.  Returns the HTTP status, or -1
 * with *err set when the endpoint could not be asked (then the next one
 * is tried).
 */
static long etcd_post_one(struct vgc_etcd *e, int ep, const char *path, const char *body,
                          struct etcd_reply *reply, char **err)
{
    char *url = g_strconcat(e->endpoint[ep], path, NULL);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    CURLcode rc;
    long status = -1;

    g_string_truncate(reply->body, 0);
    reply->too_long = false;
    curl_easy_reset(e->curl);
    curl_easy_setopt(e->curl, CURLOPT_URL, url);
    curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, etcd_write);
    curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, reply);
    curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, (long)VGC_ETCD_TIMEOUT_MS);
    curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);    /* a thread of vgcd */
    curl_easy_setopt(e->curl, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(e->curl, CURLOPT_PROXY, "");       /* etcd is never behind one */
    rc = curl_easy_perform(e->curl);
    if (reply->too_long) {
        etcd_fail(err, "%s: a reply longer than %u bytes", url, VGC_ETCD_MAX_REPLY);
    } else if (rc != CURLE_OK) {
        etcd_fail(err, "%s: %s", url, curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(headers);
    g_free(url);
    return status;
}

/*
 * POST @body (JSON) to @path, trying each endpoint once from the current
 * one.  Returns the reply's root object (free with json_node_unref), or
 * NULL with *err set: no endpoint answered, or etcd answered an error
 * (its message).
 */
static JsonNode *etcd_post(struct vgc_etcd *e, const char *path, const char *body, char **err)
{
    struct etcd_reply reply = { .body = g_string_new(NULL) };
    JsonNode *root = NULL;
    char *why = NULL;

    for (int i = 0; i < e->nendpoints; i++) {
        int ep = (e->current + i) % e->nendpoints;
        long status;

        free(why);
        why = NULL;
        status = etcd_post_one(e, ep, path, body, &reply, &why);
        if (status < 0) {
            continue;
        }
        e->current = ep;
        root = json_from_string(reply.body->str, NULL);
        if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
            etcd_fail(err, "%s%s: HTTP %ld, not a JSON object: is this etcd?", e->endpoint[ep],
                      path, status);
        } else if (status != 200 || json_object_has_member(json_node_get_object(root), "error")) {
            JsonObject *o = json_node_get_object(root);
            const char *msg = json_object_get_string_member_with_default(o, "message",
                              json_object_get_string_member_with_default(o, "error", ""));
            etcd_fail(err, "%s%s: HTTP %ld: %s", e->endpoint[ep], path, status,
                      *msg ? msg : "error");
        } else {
            g_string_free(reply.body, TRUE);
            return root;
        }
        if (root) {
            json_node_unref(root);
        }
        g_string_free(reply.body, TRUE);
        return NULL;
    }
    *err = why;
    g_string_free(reply.body, TRUE);
    return NULL;
}

/* A member holding a decimal number, as a string (int64) or a number. */
static bool etcd_int_member(JsonObject *o, const char *name, int64_t *out)
{
    JsonNode *n = o ? json_object_get_member(o, name) : NULL;
    const char *s;
    char *end;

    if (!n || !JSON_NODE_HOLDS_VALUE(n)) {
        return false;
    }
    if (json_node_get_value_type(n) == G_TYPE_INT64) {
        *out = json_node_get_int(n);
        return true;
    }
    if (json_node_get_value_type(n) != G_TYPE_STRING) {
        return false;
    }
    s = json_node_get_string(n);
    *out = g_ascii_strtoll(s, &end, 10);
    return *s && !*end;
}

bool vgc_etcd_lease_grant(struct vgc_etcd *e, int ttl, int64_t *id, char **err)
{
    char body[64];
    JsonNode *root;
    bool ok;

    snprintf(body, sizeof(body), "{\"TTL\":%d}", ttl);
    root = etcd_post(e, "/v3/lease/grant", body, err);
    if (!root) {
        return false;
    }
    ok = etcd_int_member(json_node_get_object(root), "ID", id) && *id != 0;
    json_node_unref(root);
    return ok || etcd_fail(err, "%s: a lease grant without a lease", vgc_etcd_endpoint(e));
}

int vgc_etcd_lease_keepalive(struct vgc_etcd *e, int64_t id, char **err)
{
    char body[64];
    JsonNode *root, *result;
    int64_t ttl = 0;

    snprintf(body, sizeof(body), "{\"ID\":\"%" PRId64 "\"}", id);
    root = etcd_post(e, "/v3/lease/keepalive", body, err);
    if (!root) {
        return -1;
    }
    /* A stream of one message: {"result":{...,"TTL":"10"}}; a lease that
     * is gone comes back without TTL. */
    result = json_object_get_member(json_node_get_object(root), "result");
    if (!result || !JSON_NODE_HOLDS_OBJECT(result) ||
        !etcd_int_member(json_node_get_object(result), "TTL", &ttl) || ttl < 0) {
        ttl = 0;
    }
    json_node_unref(root);
    return ttl > 1000000 ? 1000000 : (int)ttl;
}

bool vgc_etcd_lease_revoke(struct vgc_etcd *e, int64_t id, char **err)
{
    char body[64];
    JsonNode *root;

    snprintf(body, sizeof(body), "{\"ID\":\"%" PRId64 "\"}", id);
    root = etcd_post(e, "/v3/lease/revoke", body, err);
    if (root) {
        json_node_unref(root);
    }
    return root != NULL;
}

bool vgc_etcd_put(struct vgc_etcd *e, const char *key, const char *value, int64_t lease,
                  char **err)
{
    char *k = g_base64_encode((const guchar *)key, strlen(key));
    char *v = g_base64_encode((const guchar *)value, strlen(value));
    char *body = g_strdup_printf("{\"key\":\"%s\",\"value\":\"%s\",\"lease\":\"%" PRId64 "\"}",
                                 k, v, lease);
    JsonNode *root = etcd_post(e, "/v3/kv/put", body, err);

    g_free(k);
    g_free(v);
    g_free(body);
    if (root) {
        json_node_unref(root);
    }
    return root != NULL;
}

/* The first key after every key that starts with @prefix (etcd's
 * range_end for a prefix): its last byte below 0xff, plus one. */
static char *etcd_prefix_end(const char *prefix, size_t *len)
{
    char *end = g_strdup(prefix);
    size_t n = strlen(end);

    while (n > 0 && (unsigned char)end[n - 1] == 0xff) {
        n--;
    }
    if (n == 0) {
        *len = 1;
        end[0] = '\0';          /* "\0": every key (never for our prefixes) */
        return end;
    }
    end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
    *len = n;
    return end;
}

bool vgc_etcd_range_prefix(struct vgc_etcd *e, const char *prefix, vgc_etcd_kv_fn fn,
                           void *arg, char **err)
{
    size_t end_len;
    char *end = etcd_prefix_end(prefix, &end_len);
    char *k = g_base64_encode((const guchar *)prefix, strlen(prefix));
    char *r = g_base64_encode((const guchar *)end, end_len);
    char *body = g_strdup_printf("{\"key\":\"%s\",\"range_end\":\"%s\"}", k, r);
    JsonNode *root = etcd_post(e, "/v3/kv/range", body, err);
    JsonArray *kvs = NULL;

    g_free(end);
    g_free(k);
    g_free(r);
    g_free(body);
    if (!root) {
        return false;
    }
    if (json_object_has_member(json_node_get_object(root), "kvs")) {
        JsonNode *n = json_object_get_member(json_node_get_object(root), "kvs");
        kvs = n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
    }
    for (guint i = 0; kvs && i < json_array_get_length(kvs); i++) {
        JsonNode *n = json_array_get_element(kvs, i);
        JsonObject *kv = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
        const char *kb = kv ? json_object_get_string_member_with_default(kv, "key", NULL) : NULL;
        const char *vb = kv ? json_object_get_string_member_with_default(kv, "value", "") : NULL;
        gsize klen = 0, vlen = 0;
        guchar *key, *value;
        char *keystr;

        if (!kb) {
            continue;           /* not a key-value: not ours to read */
        }
        key = g_base64_decode(kb, &klen);
        value = g_base64_decode(vb, &vlen);
        keystr = g_strndup((const char *)key, klen);    /* stops at a NUL in the key */
        fn(keystr, (const char *)value, vlen, arg);
        g_free(keystr);
        g_free(key);
        g_free(value);
    }
    json_node_unref(root);
    return true;
}
