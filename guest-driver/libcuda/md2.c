/*
 * md2.c - MD2 (RFC 1319) and HMAC-MD2 (RFC 2104).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "md2.h"

/* RFC 1319, section 3.2: a permutation of 0..255 built from the digits of pi. */
static const uint8_t md2_pi[256] = {
    41, 46, 67, 201, 162, 216, 124, 1, 61, 54, 84, 161, 236, 240, 6, 19,
    98, 167, 5, 243, 192, 199, 115, 140, 152, 147, 43, 217, 188, 76, 130, 202,
    30, 155, 87, 60, 253, 212, 224, 22, 103, 66, 111, 24, 138, 23, 229, 18,
    190, 78, 196, 214, 218, 158, 222, 73, 160, 251, 245, 142, 187, 47, 238, 122,
    169, 104, 121, 145, 21, 178, 7, 63, 148, 194, 16, 137, 11, 34, 95, 33,
    128, 127, 93, 154, 90, 144, 50, 39, 53, 62, 204, 231, 191, 247, 151, 3,
    255, 25, 48, 179, 72, 165, 181, 209, 215, 94, 146, 42, 172, 86, 170, 198,
    79, 184, 56, 210, 150, 164, 125, 182, 118, 252, 107, 226, 156, 116, 4, 241,
    69, 157, 112, 89, 100, 113, 135, 32, 134, 91, 207, 101, 230, 45, 168, 2,
    27, 96, 37, 173, 174, 176, 185, 246, 28, 70, 97, 105, 52, 64, 126, 15,
    85, 71, 163, 35, 221, 81, 175, 58, 195, 92, 249, 206, 186, 197, 234, 38,
    44, 83, 13, 110, 133, 40, 132, 9, 211, 223, 205, 244, 65, 129, 77, 82,
    106, 220, 55, 200, 108, 193, 171, 250, 36, 225, 123, 8, 12, 189, 177, 74,
    120, 136, 149, 139, 227, 99, 232, 109, 233, 203, 213, 254, 59, 0, 29, 57,
    242, 239, 183, 14, 102, 88, 208, 228, 166, 119, 114, 248, 235, 117, 75, 10,
    49, 68, 80, 180, 143, 237, 31, 26, 219, 153, 141, 51, 159, 17, 131, 20,
};

static void md2_block(struct vgc_md2 *m, const uint8_t *b)
{
    uint8_t t;

    /* 3.2: the checksum runs over every block, message and padding alike. */
    t = m->checksum[15];
    for (int j = 0; j < 16; j++) {
        m->checksum[j] ^= md2_pi[b[j] ^ t];
        t = m->checksum[j];
    }
    /* 3.4: 18 rounds over the 48-byte state. */
    for (int j = 0; j < 16; j++) {
        m->state[16 + j] = b[j];
        m->state[32 + j] = m->state[16 + j] ^ m->state[j];
    }
    t = 0;
    for (int j = 0; j < 18; j++) {
        for (int k = 0; k < 48; k++) {
            t = m->state[k] ^= md2_pi[t];
        }
        t = (uint8_t)(t + j);
    }
}

void vgc_md2_init(struct vgc_md2 *m)
{
    memset(m, 0, sizeof(*m));
}

void vgc_md2_update(struct vgc_md2 *m, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len) {
        size_t n = 16 - m->used;
        if (n > len) {
            n = len;
        }
        memcpy(m->block + m->used, p, n);
        m->used += n;
        p += n;
        len -= n;
        if (m->used == 16) {
            md2_block(m, m->block);
            m->used = 0;
        }
    }
}

void vgc_md2_final(struct vgc_md2 *m, uint8_t digest[VGC_MD2_DIGEST])
{
    uint8_t pad = (uint8_t)(16 - m->used);
    uint8_t check[16];

    /* 3.1: i bytes of value i, always at least one. */
    memset(m->block + m->used, pad, pad);
    md2_block(m, m->block);
    memcpy(check, m->checksum, 16);
    md2_block(m, check);
    memcpy(digest, m->state, VGC_MD2_DIGEST);
}

void vgc_hmac_md2(const uint8_t *key, size_t key_len, const void *msg, size_t len,
                  uint8_t digest[VGC_MD2_DIGEST])
{
    uint8_t k[VGC_MD2_BLOCK] = { 0 }, pad[VGC_MD2_BLOCK], inner[VGC_MD2_DIGEST];
    struct vgc_md2 m;

    if (key_len > sizeof(k)) {
        /* RFC 2104: a longer key is hashed first. */
        vgc_md2_init(&m);
        vgc_md2_update(&m, key, key_len);
        vgc_md2_final(&m, k);
    } else {
        memcpy(k, key, key_len);
    }
    for (int i = 0; i < VGC_MD2_BLOCK; i++) {
        pad[i] = k[i] ^ 0x36;
    }
    vgc_md2_init(&m);
    vgc_md2_update(&m, pad, sizeof(pad));
    vgc_md2_update(&m, msg, len);
    vgc_md2_final(&m, inner);
    for (int i = 0; i < VGC_MD2_BLOCK; i++) {
        pad[i] = k[i] ^ 0x5c;
    }
    vgc_md2_init(&m);
    vgc_md2_update(&m, pad, sizeof(pad));
    vgc_md2_update(&m, inner, sizeof(inner));
    vgc_md2_final(&m, digest);
}
