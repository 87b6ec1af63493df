/*
 * session.c - handle tables, argument arena and deferred errors of a session.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgc_wire.h"
#include "vgc_host_args.h"
#include "session.h"

#define VGCD_MAX_HANDLES (1u << 20)     /* per session; beyond: OUT_OF_MEMORY */

static guint session_obj_hash(gconstpointer p)
{
    const struct vgcd_handle *h = p;
    return g_direct_hash(h->obj) ^ (guint)h->kind;
}

static gboolean session_obj_equal(gconstpointer a, gconstpointer b)
{
    const struct vgcd_handle *x = a, *y = b;
    return x->kind == y->kind && x->obj == y->obj;
}

struct vgcd_session *vgcd_session_new(struct vgc_executor *exec, const char *peer)
{
    struct vgcd_session *s = calloc(1, sizeof(*s));

    if (!s) {
        return NULL;
    }
    s->exec = exec;
    s->peer = peer;
    s->client_fd = -1;
    s->next_serial = 1;
    s->by_id = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
    s->by_obj = g_hash_table_new(session_obj_hash, session_obj_equal);
    s->created = g_hash_table_new(g_direct_hash, g_direct_equal);
    s->busy_dev = -1;
    s->devmap_n = -1;
    /* Allocated once: a call never fails for want of argument space. */
    s->args_cap = VGCD_ARGS_MAX;
    s->args = malloc(s->args_cap);
    if (!s->args) {
        vgcd_session_free(s);
        return NULL;
    }
    return s;
}

void vgcd_session_free(struct vgcd_session *s)
{
    if (!s) {
        return;
    }
    g_hash_table_destroy(s->created);
    g_hash_table_destroy(s->by_obj);
    g_hash_table_destroy(s->by_id);
    free(s->args);
    free(s);
}

void *vgcd_args(struct vgcd_session *s, size_t size)
{
    g_assert(size <= s->args_cap);      /* VGCD_ARGS_MAX covers every call */
    memset(s->args, 0, size);
    return s->args;
}

int vgcd_violation(struct vgcd_session *s, const char *why)
{
    if (!s->violation) {
        s->violation = why;
    }
    return -1;
}

static struct vgcd_handle *session_find(struct vgcd_session *s, uint64_t id)
{
    return g_hash_table_lookup(s->by_id, &id);
}

CUresult vgcd_handle_get(struct vgcd_session *s, uint64_t id, unsigned kinds,
                         void **obj)
{
    struct vgcd_handle *h;

    if (id == 0) {
        *obj = NULL;
        return CUDA_SUCCESS;
    }
    if ((kinds & VGC_HMASK(VGC_HANDLE_STREAM)) &&
        (id == (uintptr_t)VGC_STREAM_LEGACY || id == (uintptr_t)VGC_STREAM_PER_THREAD)) {
        *obj = (void *)(uintptr_t)id;
        return CUDA_SUCCESS;
    }
    h = session_find(s, id);
    if (!h || !(kinds & VGC_HMASK(h->kind))) {
        *obj = NULL;
        return kinds == VGC_HMASK(VGC_HANDLE_CTX) ? CUDA_ERROR_INVALID_CONTEXT
                                                  : CUDA_ERROR_INVALID_HANDLE;
    }
    *obj = h->obj;
    return CUDA_SUCCESS;
}

CUresult vgcd_handle_put(struct vgcd_session *s, enum vgc_handle_kind kind,
                         void *obj, uint64_t parent, uint64_t *id)
{
    struct vgcd_handle key = { .kind = kind, .obj = obj };
    struct vgcd_handle *h = g_hash_table_lookup(s->by_obj, &key);

    if (h) {
        *id = h->id;
        return CUDA_SUCCESS;
    }
    if (g_hash_table_size(s->by_id) >= VGCD_MAX_HANDLES) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    h = g_new0(struct vgcd_handle, 1);
    h->kind = kind;
    h->obj = obj;
    h->parent = parent && session_find(s, parent) ? parent : 0;
    /* Ids never repeat, and never collide with the stream specials 0..2. */
    h->id = ((uint64_t)kind << VGC_HANDLE_KIND_SHIFT) | s->next_serial++;
    g_hash_table_insert(s->by_id, &h->id, h);
    g_hash_table_add(s->by_obj, h);
    *id = h->id;
    return CUDA_SUCCESS;
}

CUresult vgcd_handle_find(struct vgcd_session *s, enum vgc_handle_kind kind,
                          void *obj, uint64_t *id)
{
    struct vgcd_handle key = { .kind = kind, .obj = obj };
    struct vgcd_handle *h = g_hash_table_lookup(s->by_obj, &key);

    if (!h) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    *id = h->id;
    return CUDA_SUCCESS;
}

static void session_collect_children(struct vgcd_session *s, uint64_t id, GArray *out)
{
    GHashTableIter it;
    gpointer value;

    g_hash_table_iter_init(&it, s->by_id);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        struct vgcd_handle *h = value;
        if (h->parent == id) {
            g_array_append_val(out, h->id);
        }
    }
}

static void session_forget(struct vgcd_session *s, uint64_t id)
{
    struct vgcd_handle *h = session_find(s, id);

    if (!h) {
        return;
    }
    if (id == s->ctx_id) {
        s->ctx_id = 0;
        s->ctx = NULL;
    }
    g_hash_table_remove(s->by_obj, h);
    g_hash_table_remove(s->by_id, &id);     /* frees h */
}

void vgcd_handle_drop_children(struct vgcd_session *s, uint64_t id)
{
    /* Breadth-first over the ownership tree; the table is small enough that
     * a scan per level beats keeping child lists up to date on every call. */
    GArray *queue = g_array_new(FALSE, FALSE, sizeof(uint64_t));

    session_collect_children(s, id, queue);
    for (guint i = 0; i < queue->len; i++) {
        session_collect_children(s, g_array_index(queue, uint64_t, i), queue);
    }
    for (guint i = 0; i < queue->len; i++) {
        session_forget(s, g_array_index(queue, uint64_t, i));
    }
    g_array_free(queue, TRUE);
}

void vgcd_handle_drop(struct vgcd_session *s, uint64_t id)
{
    vgcd_handle_drop_children(s, id);
    session_forget(s, id);
}

CUresult vgcd_session_enter(struct vgcd_session *s, uint64_t ctx_id)
{
    void *ctx = NULL;
    CUresult res;

    res = vgcd_handle_get(s, ctx_id, VGC_HMASK(VGC_HANDLE_CTX), &ctx);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    /* Set it every time: calls such as cuCtxCreate move the executor's
     * current context behind our back, and setting it is cheap. */
    if (s->exec->ops.cuCtxSetCurrent) {
        res = s->exec->ops.cuCtxSetCurrent(ctx);
        /* Clearing may fail before cuInit; the call itself will say so. */
        if (res != CUDA_SUCCESS && ctx) {
            return res;
        }
    }
    s->ctx_id = ctx_id;
    s->ctx = ctx;
    return CUDA_SUCCESS;
}

void vgcd_defer(struct vgcd_session *s, CUresult res)
{
    if (res != CUDA_SUCCESS && s->deferred == CUDA_SUCCESS) {
        s->deferred = res;
    }
}

CUresult vgcd_syncpoint(struct vgcd_session *s, CUresult res)
{
    /* The deferred failure is reported once, by the first synchronising
     * call: as its own result, or superseded by the call's own error (a
     * sticky context error, say, which the executor repeats itself). */
    if (res == CUDA_SUCCESS) {
        res = s->deferred;
    }
    s->deferred = CUDA_SUCCESS;
    return res;
}
