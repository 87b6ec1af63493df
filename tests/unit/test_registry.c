/*
 * test_registry.c - the registry's records, addresses, URLs and order of
 * preference (host-backend/registry), without etcd: tests/run.py section
 * registry runs the same against a real one.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "registry.h"
#include "unit_check.h"

static struct vgc_registry_host host(const char *address, int ndevices, uint64_t memory,
                                     uint64_t used, unsigned clients)
{
    struct vgc_registry_host h = { .ndevices = ndevices, .memory = memory,
                                   .clients = clients };

    snprintf(h.address, sizeof(h.address), "%s", address);
    snprintf(h.executor, sizeof(h.executor), "cuda");
    for (int i = 0; i < ndevices; i++) {
        h.used[i] = used;
    }
    return h;
}

/* Whether @json, found under @address's key, is refused, and says why. */
static bool refused(const char *json, const char *address)
{
    struct vgc_registry_host h;
    char *err = NULL;
    bool ok = vgc_registry_record_decode(json, strlen(json), address, &h, &err);
    bool said = err && *err;

    free(err);
    return !ok && said && h.ndevices == 0;
}

static void test_round_trip(void)
{
    struct vgc_registry_host h = host("tcp:gpu1.example:7070", 3, 141ULL << 30, 0, 7), back;
    char *text, *err = NULL;

    h.used[1] = 5ULL << 30;
    h.used[2] = 1;
    text = vgc_registry_record_encode(&h);
    CHECK(vgc_registry_record_decode(text, strlen(text), h.address, &back, &err),
          "%s: %s", text, err);
    CHECK(!memcmp(&h, &back, sizeof(h)), "decoded differs from encoded: %s", text);
    /* Not NUL-terminated: the length is what counts. */
    CHECK(vgc_registry_record_decode(text, strlen(text), h.address, &back, &err), "%s", err);
    g_free(text);
}

static void test_refusals(void)
{
    const char *a = "tcp:gpu1:7070";

    CHECK(refused("", a), "empty");
    CHECK(refused("not json", a), "text");
    CHECK(refused("[1,2]", a), "an array");
    CHECK(refused("{\"version\":1}", a), "members missing");
    CHECK(refused("{\"version\":2,\"address\":\"tcp:gpu1:7070\",\"executor\":\"cuda\","
                  "\"devices\":1,\"memory\":0,\"used\":[0],\"clients\":0}", a),
          "a version we do not read");
    CHECK(refused("{\"version\":1,\"address\":\"tcp:gpu2:7070\",\"executor\":\"cuda\","
                  "\"devices\":1,\"memory\":0,\"used\":[0],\"clients\":0}", a),
          "a record that names another host than its key");
    CHECK(refused("{\"version\":1,\"address\":\"tcp:gpu1:7070\",\"executor\":\"cuda\","
                  "\"devices\":0,\"memory\":0,\"used\":[],\"clients\":0}", a),
          "no devices");
    CHECK(refused("{\"version\":1,\"address\":\"tcp:gpu1:7070\",\"executor\":\"cuda\","
                  "\"devices\":65,\"memory\":0,\"used\":[0],\"clients\":0}", a),
          "more devices than a record holds");
    CHECK(refused("{\"version\":1,\"address\":\"tcp:gpu1:7070\",\"executor\":\"cuda\","
                  "\"devices\":2,\"memory\":0,\"used\":[0],\"clients\":0}", a),
          "one figure short");
    CHECK(refused("{\"version\":1,\"address\":\"tcp:gpu1:7070\",\"executor\":\"cuda\","
                  "\"devices\":1,\"memory\":0,\"used\":[-1],\"clients\":0}", a),
          "negative bytes");
    CHECK(refused("{\"version\":1,\"address\":\"tcp:gpu1:7070\",\"executor\":\"cuda\","
                  "\"devices\":1,\"memory\":0,\"used\":[1.5],\"clients\":0}", a),
          "a fraction of a byte");
    CHECK(refused("{\"version\":1,\"address\":\"tcp:gpu1:7070\",\"executor\":\"cuda\","
                  "\"devices\":\"1\",\"memory\":0,\"used\":[0],\"clients\":0}", a),
          "a number as a string");
    CHECK(refused("{\"version\":1,\"address\":\"tcp:gpu1:7070\",\"executor\":\"cuda\","
                  "\"devices\":1,\"memory\":-5,\"used\":[0],\"clients\":0}", a),
          "negative memory");
    CHECK(refused("{\"version\":1,\"address\":\"tcp:gpu1:7070\",\"executor\":\"cuda\","
                  "\"devices\":1,\"memory\":0,\"used\":[0],\"clients\":4294967296}", a),
          "more clients than a vgcd has");
    CHECK(refused("{\"version\":1,\"address\":\"tcp:gpu1:7070\","
                  "\"executor\":\"a-name-longer-than-sixteen\","
                  "\"devices\":1,\"memory\":0,\"used\":[0],\"clients\":0}", a),
          "an executor name too long");
    CHECK(refused("{\"version\":1,\"address\":\"tcp:gpu1:7070|tcp:evil:1\",\"executor\":"
                  "\"cuda\",\"devices\":1,\"memory\":0,\"used\":[0],\"clients\":0}",
                  "tcp:gpu1:7070|tcp:evil:1"),
          "an address that would add a host to a placement");
    CHECK(refused("{\"version\":1,\"address\":\"unix:/run/x\",\"executor\":\"cuda\","
                  "\"devices\":1,\"memory\":0,\"used\":[0],\"clients\":0}", "unix:/run/x"),
          "an address other hosts cannot dial");
}

static void test_addresses(void)
{
    static const char *good[] = { "tcp:gpu1:7070", "tcp:10.0.0.5:1", "tcp:[::1]:65535" };
    static const char *bad[] = { "gpu1:7070", "tcp:gpu1", "tcp::7070", "tcp:gpu1:0",
                                 "tcp:gpu1:65536", "tcp:gpu1:70x", "tcp:gpu1:7070,ttl=3",
                                 "tcp:a+b:1", "tcp:a|b:1", "tcp:a b:1", "unix:/x" };

    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        char *err = NULL;
        CHECK(vgc_registry_address_ok(good[i], &err), "%s: %s", good[i], err);
        free(err);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        char *err = NULL;
        CHECK(!vgc_registry_address_ok(bad[i], &err) && err, "%s accepted", bad[i]);
        free(err);
    }
}

static void test_urls(void)
{
    static const char *bad[] = { "", "etcd:2379", "https://etcd:2379", "http://",
                                 "http:///vgc", "http://a:1/p,http://b:1/q", "http://a:1//",
                                 "http://a:1/p?x", "http://a:1,http://b:1,http://c:1,"
                                 "http://d:1,http://e:1,http://f:1,http://g:1,http://h:1,"
                                 "http://i:1" };
    struct vgc_etcd *e;
    char *err = NULL;

    e = vgc_etcd_new("http://127.0.0.1:2379", &err);
    CHECK(e && !strcmp(vgc_etcd_prefix(e), "/vgc"), "default prefix: %s", err);
    vgc_etcd_free(e);
    e = vgc_etcd_new("http://a:2379/pool-a/,http://b:2379/pool-a", &err);
    CHECK(e && !strcmp(vgc_etcd_prefix(e), "/pool-a") &&
          !strcmp(vgc_etcd_endpoint(e), "http://a:2379"), "a prefix of its own: %s", err);
    vgc_etcd_free(e);
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        err = NULL;
        e = vgc_etcd_new(bad[i], &err);
        CHECK(!e && err, "'%s' accepted", bad[i]);
        vgc_etcd_free(e);
        free(err);
    }
}

static void test_rank(void)
{
    struct vgc_registry_host h[5];
    unsigned pending[5] = { 0 };
    int order[5], n;

    h[0] = host("tcp:a:1", 2, 16ULL << 30, 0, 4);      /* 2 clients per device */
    h[1] = host("tcp:b:1", 8, 16ULL << 30, 0, 8);      /* 1 per device */
    h[2] = host("tcp:c:1", 1, 16ULL << 30, 0, 0);      /* idle, but one device */
    h[3] = host("tcp:d:1", 8, 16ULL << 30, 8ULL << 30, 8);     /* as b, less free */
    h[4] = host("tcp:e:1", 8, 16ULL << 30, 0, 8);      /* as b */

    n = vgc_registry_rank(h, pending, 5, 2, order);
    CHECK(n == 4, "hosts with 2 devices: %d", n);
    CHECK(order[0] == 1 && order[1] == 4 && order[2] == 3 && order[3] == 0,
          "b, e (equal, by address), d (less free), a (busier): %d %d %d %d",
          order[0], order[1], order[2], order[3]);

    n = vgc_registry_rank(h, pending, 5, 1, order);
    CHECK(n == 5 && order[0] == 2, "one device: the idle host first (%d)", order[0]);

    /* Clients sent to b that its record does not show yet count. */
    pending[1] = 9;
    pending[4] = 8;
    n = vgc_registry_rank(h, pending, 5, 2, order);
    CHECK(n == 4 && order[0] == 3 && order[1] == 0 && order[2] == 4 && order[3] == 1,
          "d (1 per device), a and e (2 per device, equal free: by address), "
          "b (17 per 8): %d %d %d %d",
          order[0], order[1], order[2], order[3]);

    n = vgc_registry_rank(h, NULL, 5, 9, order);
    CHECK(n == 0, "nobody has 9 devices: %d", n);
    n = vgc_registry_rank(h, NULL, 0, 1, order);
    CHECK(n == 0, "no hosts: %d", n);
}

int main(void)
{
    test_round_trip();
    test_refusals();
    test_addresses();
    test_urls();
    test_rank();
    return unit_done();
}
