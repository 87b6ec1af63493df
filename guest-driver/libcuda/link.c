/*
 * link.c - cuLink*: the guest's side of linking (numba-cuda's path).
 *
 * The driver hands back the linked image as a pointer that stays valid
 * until cuLinkDestroy.  The host's pointer means nothing here, so the image
 * comes back in the reply and the shim keeps a copy per link state.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "vgc_wire.h"
#include "vgc_guest_impl.h"
#include "context.h"

struct link_image {
    CUlinkState state;
    void *image;
    struct link_image *next;
};

static pthread_mutex_t link_lock = PTHREAD_MUTEX_INITIALIZER;
static struct link_image *link_images;

/* Forget (and free) the image kept for @state. */
static void link_forget(CUlinkState state)
{
    struct link_image **p, *dead = NULL;

    pthread_mutex_lock(&link_lock);
    for (p = &link_images; *p; p = &(*p)->next) {
        if ((*p)->state == state) {
            dead = *p;
            *p = dead->next;
            break;
        }
    }
    pthread_mutex_unlock(&link_lock);
    if (dead) {
        free(dead->image);
        free(dead);
    }
}

CUresult vgc_impl_cuLinkComplete(CUlinkState state, void **cubinOut, size_t *sizeOut)
{
    struct link_image *li;
    void *buf, *image;
    CUresult res;

    if (!cubinOut || !sizeOut) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    buf = malloc(VGC_MAX_CHUNK);
    li = malloc(sizeof(*li));
    if (!buf || !li) {
        free(buf);
        free(li);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    res = vgc_call_cuLinkComplete(state, sizeOut, buf, VGC_MAX_CHUNK);
    if (res != CUDA_SUCCESS) {
        free(buf);
        free(li);
        return res;
    }
    image = realloc(buf, *sizeOut ? *sizeOut : 1);
    li->state = state;
    li->image = image ? image : buf;
    link_forget(state);         /* a second complete replaces the first image */
    pthread_mutex_lock(&link_lock);
    li->next = link_images;
    link_images = li;
    pthread_mutex_unlock(&link_lock);
    *cubinOut = li->image;
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuLinkDestroy(CUlinkState state)
{
    CUresult res = vgc_call_cuLinkDestroy(state);

    if (res == CUDA_SUCCESS) {
        link_forget(state);
    }
    return res;
}

CUresult vgc_impl_cuLinkAddFile_v2(CUlinkState state, CUjitInputType type, const char *path,
                                   unsigned int numOptions, CUjit_option *options,
                                   void **optionValues)
{
    FILE *f;
    char *buf = NULL;
    long len;
    CUresult res;

    (void)options;
    (void)optionValues;
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!path) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    f = fopen(path, "rb");
    if (!f) {
        return CUDA_ERROR_FILE_NOT_FOUND;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && len < (long)VGC_MAX_CHUNK &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len + 1)) &&
        fread(buf, 1, (size_t)len, f) == (size_t)len) {
        buf[len] = '\0';        /* PTX files carry no NUL of their own */
        res = vgc_call_cuLinkAddData_v2(state, type, buf, (size_t)len + 1, path, numOptions);
    } else {
        res = buf ? CUDA_ERROR_FILE_NOT_FOUND : CUDA_ERROR_INVALID_VALUE;
    }
    free(buf);
    fclose(f);
    return res;
}
