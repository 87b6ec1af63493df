/*
 * test_hashes.c - the shim's own MD2/HMAC-MD2 (integrity check) and SHA-256
 * (image cache) against nettle's, over many lengths.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <nettle/hmac.h>
#include <nettle/md2.h>
#include <nettle/nettle-meta.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>

#include "md2.h"
#include "sha256.h"

int main(void)
{
    static uint8_t buf[1000];
    uint8_t a[32], b[32];
    int bad = 0;

    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)(i * 131 + 7);
    }
    for (size_t len = 0; len <= sizeof(buf); len += (len < 200 ? 1 : 37)) {
        struct vgc_md2 m;
        struct md2_ctx nm;
        struct sha256_ctx ns;
        struct { struct md2_ctx outer, inner, state; } hm;
        const uint8_t key[16] = { 0x14, 0x6a, 0xdd, 0xae, 0x53, 0xa9, 0xa7, 0x52,
                                  0xaa, 0x08, 0x41, 0x36, 0x0b, 0xf5, 0x5a, 0x9f };

        vgc_md2_init(&m);
        vgc_md2_update(&m, buf, len / 2);
        vgc_md2_update(&m, buf + len / 2, len - len / 2);
        vgc_md2_final(&m, a);
        md2_init(&nm);
        md2_update(&nm, len, buf);
        md2_digest(&nm, 16, b);
        if (memcmp(a, b, 16)) {
            printf("not ok - md2 of %zu bytes\n", len);
            bad = 1;
        }
        vgc_hmac_md2(key, sizeof(key), buf, len, a);
        hmac_set_key(&hm.outer, &hm.inner, &hm.state, &nettle_md2, sizeof(key), key);
        hmac_update(&hm.state, &nettle_md2, len, buf);
        hmac_digest(&hm.outer, &hm.inner, &hm.state, &nettle_md2, 16, b);
        if (memcmp(a, b, 16)) {
            printf("not ok - hmac-md2 of %zu bytes\n", len);
            bad = 1;
        }
        vgc_sha256(buf, len, a);
        sha256_init(&ns);
        sha256_update(&ns, len, buf);
        sha256_digest(&ns, 32, b);
        if (memcmp(a, b, 32)) {
            printf("not ok - sha256 of %zu bytes\n", len);
            bad = 1;
        }
    }
    printf("%s - md2, hmac-md2 and sha256 agree with nettle\n", bad ? "not ok" : "ok");
    return bad;
}
