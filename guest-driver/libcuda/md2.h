/*
 * md2.h - MD2 (RFC 1319) and HMAC-MD2 (RFC 2104), for the runtime's
 * integrity check export table.
 *
 * Written here rather than taken from a crypto library because the shim is
 * loaded into arbitrary programs and may depend on libc and pthreads only.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_MD2_H
#define VGC_MD2_H

#include <stddef.h>
#include <stdint.h>

#define VGC_MD2_BLOCK 16
#define VGC_MD2_DIGEST 16

struct vgc_md2 {
    uint8_t state[48];
    uint8_t checksum[16];
    uint8_t block[16];
    size_t used;                /* bytes waiting in block */
};

void vgc_md2_init(struct vgc_md2 *m);
void vgc_md2_update(struct vgc_md2 *m, const void *data, size_t len);
void vgc_md2_final(struct vgc_md2 *m, uint8_t digest[VGC_MD2_DIGEST]);

/* HMAC over MD2 with a key of at most one block (16 bytes). */
void vgc_hmac_md2(const uint8_t *key, size_t key_len, const void *msg, size_t len,
                  uint8_t digest[VGC_MD2_DIGEST]);

#endif /* VGC_MD2_H */
