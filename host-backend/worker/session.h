/*
 * session.h - one client's state inside a worker process.
 *
 * A session is what one guest process (one socket connection, one open
 * /dev/vgcN file) owns: its handle table, the context its calls run in, the
 * error an asynchronous call left behind.  The generated dispatcher
 * (vgc_host_dispatch.c) decodes requests and calls into the executor through
 * the helpers below; hand-written vgcd_<symbol> handlers use them too.
 *
 * Handles: the guest never sees an executor pointer.  It sees 64-bit ids
 * that are never reused within a session: (kind << 56) | serial.  An id
 * names a table entry; an entry may have a parent (the context that owns a
 * stream, the module that owns a function), and dropping an entry drops its
 * descendants, so a destroyed context cannot leave dangling stream ids.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGCD_SESSION_H
#define VGCD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "vgc_cuda.h"
#include "executor.h"

#include "vgc_wire.h"

#define VGC_HMASK(kind) (1u << (kind))

struct vgcd_handle {
    uint64_t id;
    enum vgc_handle_kind kind;
    void *obj;              /* the executor's object */
    uint64_t parent;        /* id of the owner, 0 for none */
};

struct vgcd_session {
    struct vgc_executor *exec;
    GHashTable *by_id;      /* id -> struct vgcd_handle */
    GHashTable *by_obj;     /* (kind, obj) -> struct vgcd_handle */
    uint64_t next_serial;
    uint64_t ctx_id;        /* context of the call being dispatched */
    CUcontext ctx;          /* its executor object, current in the executor */
    CUresult deferred;      /* first failure of an async call, not yet reported */
    const char *violation;  /* why the session must end; NULL while healthy */
    bool hello_done;        /* the handshake succeeded */
    bool output_pending;    /* the reply being sent should say VGC_F_OUTPUT */
    void *args;             /* per-call argument arena, zeroed for each call */
    size_t args_cap;
    const char *peer;       /* for log lines: "unix:pid 1234", "tcp:1.2.3.4:5" */
    /* The client's side, for a process swapped out for being idle, which
     * comes back at its client's next call (swap.c): its socket, -1 for
     * none, and whether a call is read already but not yet served. */
    int client_fd;
    bool call_buffered;
    /* Swapped out because its client asked (VGC_OP_SWAP): calls fail with
     * CUDA_ERROR_ILLEGAL_STATE until it asks to come back. */
    bool swapped_on_request;

    /* What NVML reports (status.c); the worker sets pool, NULL for none. */
    struct vgc_pool *pool;  /* bound to this worker's slot */
    uint64_t dev_ctx_id;    /* the context whose device is dev_of_ctx */
    int dev_of_ctx;
    int busy_dev;           /* the call in progress keeps busy_engine of */
    int busy_engine;        /*   busy_dev busy; -1: none */
    GHashTable *created;    /* contexts of cuCtxCreate: obj -> device + 1 */

    /* The tenant's virtual GPUs (devmap.c). */
    bool devmap_acquire;    /* the call in progress makes a context */
    int devmap_n;           /* virtual GPUs; -1: devmap not read this call */
    int devmap[64];         /* virtual -> physical, as the pool said */
};

/* Create/destroy a session over @exec.  Returns NULL on allocation failure. */
struct vgcd_session *vgcd_session_new(struct vgc_executor *exec, const char *peer);
void vgcd_session_free(struct vgcd_session *s);

/*
 * Make @ctx_id (a context handle from a frame header, 0 for none) the
 * current context of the executor for the next call.
 * Returns: CUDA_SUCCESS, or CUDA_ERROR_INVALID_CONTEXT for an unknown id.
 */
CUresult vgcd_session_enter(struct vgcd_session *s, uint64_t ctx_id);

/*
 * Decode and run one request; write the reply payload to @w (nothing for an
 * async call).  Returns 0, or -1 for a protocol violation (s->violation says
 * why; the caller ends the session).  Generated.
 */
int vgcd_dispatch(struct vgcd_session *s, unsigned opcode,
                  struct vgc_rd *r, struct vgc_wr *w);

/* Zeroed scratch of @size bytes for one call's arguments. */
void *vgcd_args(struct vgcd_session *s, size_t size);

/* Record a protocol violation; returns -1 for the dispatcher to return. */
int vgcd_violation(struct vgcd_session *s, const char *why);

/*
 * Look up handle @id for a parameter accepting @kinds (VGC_HMASK bits).
 * 0 is NULL; for streams 1 and 2 are the legacy and per-thread default
 * streams, passed through as the driver's own special values.
 * Returns: CUDA_SUCCESS with *obj set, or CUDA_ERROR_INVALID_CONTEXT (for a
 * context) / CUDA_ERROR_INVALID_HANDLE.
 */
CUresult vgcd_handle_get(struct vgcd_session *s, uint64_t id, unsigned kinds,
                         void **obj);

/*
 * Give executor object @obj of @kind an id, reusing the id it already has
 * (a primary context retained twice is one handle).  @parent owns it.
 * Returns: CUDA_SUCCESS with *id set, or CUDA_ERROR_OUT_OF_MEMORY.
 */
CUresult vgcd_handle_put(struct vgcd_session *s, enum vgc_handle_kind kind,
                         void *obj, uint64_t parent, uint64_t *id);

/*
 * The id executor object @obj of @kind already has, without making one:
 * for objects the session knows by value (texture and surface objects) and
 * for turning an executor's handle back into the guest's.
 * Returns: CUDA_SUCCESS with *id set, or CUDA_ERROR_INVALID_HANDLE.
 */
CUresult vgcd_handle_find(struct vgcd_session *s, enum vgc_handle_kind kind,
                          void *obj, uint64_t *id);

/* Forget @id and everything it owns (no executor call is made). */
void vgcd_handle_drop(struct vgcd_session *s, uint64_t id);
/* Forget everything @id owns but keep @id itself. */
void vgcd_handle_drop_children(struct vgcd_session *s, uint64_t id);

/* An async call finished with @res: keep the first failure for later. */
void vgcd_defer(struct vgcd_session *s, CUresult res);
/* A synchronising call finished with @res: report a deferred failure now. */
CUresult vgcd_syncpoint(struct vgcd_session *s, CUresult res);

/* ---- virtual GPUs: device ordinals across the executor boundary (devmap.c) ---- */

/* Before dispatching call @opcode: forget the table, note whether the
 * call makes a context (its device is then bound). */
void vgcd_devmap_call_begin(struct vgcd_session *s, unsigned opcode);
/* How many virtual GPUs the client has. */
int vgcd_devmap_count(struct vgcd_session *s);
/*
 * A device argument: virtual ordinal *@dev becomes the physical one, bound
 * first for a call that makes a context.
 * Returns: CUDA_SUCCESS, or CUDA_ERROR_INVALID_DEVICE for an ordinal the
 * client does not have.
 */
CUresult vgcd_devmap_in(struct vgcd_session *s, CUdevice *dev);
/*
 * A device result: physical *@dev becomes the client's ordinal.
 * Returns: CUDA_SUCCESS, or CUDA_ERROR_INVALID_DEVICE (*@dev -1) for a
 * device that is none of the client's.
 */
CUresult vgcd_devmap_out(struct vgcd_session *s, CUdevice *dev);
/* A mask of physical devices as the mask of the virtual GPUs they are. */
uint64_t vgcd_devmap_mask_out(struct vgcd_session *s, uint64_t physical);
/* The client has contexts on @physical devices (and no others): tell the
 * pool, which unbinds what the tenant no longer holds (logged). */
void vgcd_devmap_contexts(struct vgcd_session *s, uint64_t physical);

#endif /* VGCD_SESSION_H */
