/*
 * image_cache.h - module images cached by content hash, once per daemon.
 *
 * Workers are processes forked by one daemon; the cache they share is a
 * directory private to the daemon's user, one file per image, named by the
 * SHA-256 of its bytes and written only after the hash was checked.  A
 * cuBLAS start-up then sends its large fatbins once per daemon instead of
 * once per process.  The wire side is in vgc_wire.h (VGC_OP_IMAGE_*).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGCD_IMAGE_CACHE_H
#define VGCD_IMAGE_CACHE_H

#include <stddef.h>

#include "vgc_cuda.h"
#include "vgc_wire.h"
#include "session.h"

/*
 * Handle a VGC_OP_IMAGE_QUERY or VGC_OP_IMAGE_PUT request: write the reply
 * to @w.  Returns 0, or -1 for a malformed request (s->violation is set).
 */
int vgcd_image_frame(struct vgcd_session *s, unsigned opcode, const void *payload,
                     size_t len, struct vgc_wr *w);

/*
 * If @data (@len bytes) is an image reference, map the cached image it
 * names into *image / *size; vgcd_image_unmap() releases it.
 * Returns CUDA_SUCCESS (mapped), CUDA_ERROR_NOT_FOUND when @data is not a
 * reference (use it as the image), or CUDA_ERROR_INVALID_IMAGE when it is
 * a reference to nothing held.
 */
CUresult vgcd_image_resolve(const void *data, size_t len, const void **image, size_t *size);
void vgcd_image_unmap(const void *image, size_t size);

/* In the daemon, before forking workers: fix the cache's name for all. */
void vgcd_image_cache_init(void);
/* The cache directory (created on first use), for logs and cleanup. */
const char *vgcd_image_cache_dir(void);
/* Remove the cache directory and its files (the daemon, at exit), unless
 * VGCD_IMAGE_CACHE_DIR named it. */
void vgcd_image_cache_remove(void);

#endif /* VGCD_IMAGE_CACHE_H */
