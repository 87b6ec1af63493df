/*
 * cpu_link.c - cuLinkCreate / cuLinkAddData / cuLinkComplete /
 * cuLinkDestroy for PTX inputs (what numba-cuda uses).
 *
 * The cpu executor runs PTX, so "linking" keeps the PTX: inputs are
 * concatenated (later .version/.target lines are skipped by the decoder)
 * and cuLinkComplete hands back that NUL-terminated text, which
 * cuModuleLoadData accepts as a PTX image.  Cubin, fatbin and library
 * inputs are refused with CUDA_ERROR_NOT_SUPPORTED, except a fatbin whose
 * PTX is taken.  The output stays valid until cuLinkDestroy.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

#define CPU_MAGIC_LINK 0x4b4e494cu

struct cpu_link {
    uint32_t magic;
    char *text;
    size_t len;
    struct cpu_link *prev, *next;   /* every live link state, for teardown */
};

/* Link states belong to no context: the executor frees what a client left. */
static struct cpu_link *cpu_links;

CUresult cpu_link_create(unsigned int nopts, CUjit_option *opts, void **vals,
                         CUlinkState *out)
{
    struct cpu_link *l;

    (void)nopts;
    (void)opts;
    (void)vals;
    CPU_CHECK_INIT();
    if (!out) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    l = calloc(1, sizeof(*l));
    if (!l) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    l->magic = CPU_MAGIC_LINK;
    l->next = cpu_links;
    if (cpu_links) {
        cpu_links->prev = l;
    }
    cpu_links = l;
    *out = (CUlinkState)l;
    return CUDA_SUCCESS;
}

CUresult cpu_link_add_data(CUlinkState state, CUjitInputType type,
                           void *data, size_t size, const char *name,
                           unsigned int nopts, CUjit_option *opts,
                           void **vals)
{
    struct cpu_link *l = (struct cpu_link *)state;
    struct cpu_image img = { 0 };
    const char *text = data;
    size_t n;
    char *nt;

    (void)name;
    (void)nopts;
    (void)opts;
    (void)vals;
    if (!l || l->magic != CPU_MAGIC_LINK) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (!data || size == 0 || size > CPU_IMAGE_MAX) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (type == CU_JIT_INPUT_FATBINARY) {
        CUresult rc = cpu_image_parse(&img, data, size);

        if (rc != CUDA_SUCCESS) {
            return rc;
        }
        if (!img.ptx) {
            cpu_image_free(&img);
            return CUDA_ERROR_NOT_SUPPORTED;
        }
        text = img.ptx;
        size = img.ptx_len;
    } else if (type != CU_JIT_INPUT_PTX) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    n = strnlen(text, size);
    if (l->len + n + 2 > CPU_IMAGE_MAX) {
        cpu_image_free(&img);
        return CUDA_ERROR_INVALID_VALUE;
    }
    nt = realloc(l->text, l->len + n + 2);
    if (!nt) {
        cpu_image_free(&img);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    memcpy(nt + l->len, text, n);
    l->len += n;
    nt[l->len++] = '\n';
    nt[l->len] = 0;
    l->text = nt;
    cpu_image_free(&img);
    return CUDA_SUCCESS;
}

CUresult cpu_link_complete(CUlinkState state, void **out, size_t *size)
{
    struct cpu_link *l = (struct cpu_link *)state;

    if (!l || l->magic != CPU_MAGIC_LINK) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (!out || !size) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!l->text) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *out = l->text;
    *size = l->len + 1;         /* the NUL counts, as for a PTX image */
    return CUDA_SUCCESS;
}

CUresult cpu_link_destroy(CUlinkState state)
{
    struct cpu_link *l = (struct cpu_link *)state;

    if (!l || l->magic != CPU_MAGIC_LINK) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    l->magic = 0;
    if (l->prev) {
        l->prev->next = l->next;
    } else {
        cpu_links = l->next;
    }
    if (l->next) {
        l->next->prev = l->prev;
    }
    free(l->text);
    free(l);
    return CUDA_SUCCESS;
}

void cpu_link_destroy_all(void)
{
    while (cpu_links) {
        cpu_link_destroy((CUlinkState)cpu_links);
    }
}
