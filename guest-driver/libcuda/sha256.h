/*
 * sha256.h - SHA-256 (FIPS 180-4), naming module images by content.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_SHA256_H
#define VGC_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define VGC_SHA256_DIGEST 32

void vgc_sha256(const void *data, size_t len, uint8_t digest[VGC_SHA256_DIGEST]);

#endif /* VGC_SHA256_H */
