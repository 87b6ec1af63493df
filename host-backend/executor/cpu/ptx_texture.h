/*
 * ptx_texture.h - texel fetching and filtering, surface addressing for the
 * PTX interpreter's tex, suld and sust (ptx_texture.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_PTX_TEXTURE_H
#define VGC_PTX_TEXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu_internal.h"

/*
 * Fetch from texture @v at coordinates @c (float bits, or signed integers
 * with PTX_TEX_INT_COORDS; a layer index in c[2] with PTX_TEX_LAYERED; for
 * a cube, a direction in c[0..2] and a cubemap layer in c[3]) at
 * level of detail @lod for a tex instruction whose mod is @mod; @out gets
 * the four 32-bit result words (floats or integers as the texture reads).
 */
void ptx_tex_sample(const struct cpu_tex_view *v, unsigned mod, const uint32_t c[4],
                    float lod, uint32_t out[4]);

/* The level of detail of gradients @dx, @dy (tex.grad) on texture @v. */
float ptx_tex_grad_lod(const struct cpu_tex_view *v, unsigned dims, const float dx[3],
                       const float dy[3]);

/*
 * Where an access of @size bytes at byte column @c[0], row @c[1], slice or
 * layer @c[2] of surface @v falls for a su* instruction whose mod is @mod
 * (geometry, boundary mode).  Returns 0 with *@p set, 1 when the access is
 * dropped (a load reads zeros), -1 when it traps.
 */
int ptx_surf_locate(const struct cpu_tex_view *v, unsigned mod, const int32_t c[3],
                    unsigned size, uint8_t **p);

#endif /* VGC_PTX_TEXTURE_H */
