/*
 * manual_array.h - array handles inside structs (manual_array.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGCD_MANUAL_ARRAY_H
#define VGCD_MANUAL_ARRAY_H

#include "vgc_cuda.h"

struct vgcd_session;

/*
 * Replace the guest's array handle in *@h by the executor's array.
 * Returns CUDA_ERROR_INVALID_HANDLE for an unknown, freed or foreign one,
 * CUDA_ERROR_INVALID_VALUE for NULL.
 */
CUresult vgcd_array_in(struct vgcd_session *s, CUarray *h);

#endif /* VGCD_MANUAL_ARRAY_H */
