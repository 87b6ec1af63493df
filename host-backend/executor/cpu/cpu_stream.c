/*
 * cpu_stream.c - streams and events of the cpu reference executor.
 *
 * Execution model: every operation runs synchronously, in submission
 * order, when it is submitted (the worker serialises all calls).  So a
 * stream is only a name with flags and a priority; per-stream order and
 * the legacy default stream's implicit synchronisation hold trivially, a
 * stream or event is always complete, and waits return at once.  Events
 * take a CLOCK_MONOTONIC stamp when recorded, which is when the work
 * before them finished.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdlib.h>
#include <time.h>

#include "cpu_internal.h"

#define CPU_EVENT_FLAGS_VALID (CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | \
                               CU_EVENT_INTERPROCESS)

uint64_t cpu_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool cpu_stream_is_default(CUstream h)
{
    return h == NULL || h == VGC_STREAM_LEGACY || h == VGC_STREAM_PER_THREAD;
}

void cpu_stream_init_default(struct CUctx_st *ctx)
{
    struct CUstream_st *defaults[2] = {
        &ctx->legacy_stream, &ctx->per_thread_stream
    };
    int i;

    for (i = 0; i < 2; i++) {
        defaults[i]->magic = CPU_MAGIC_STREAM;
        defaults[i]->ctx = ctx;
        defaults[i]->flags = 0;
        defaults[i]->priority = CPU_STREAM_PRIO_LEAST;
        defaults[i]->id = cpu_next_id();
        defaults[i]->is_default = true;
    }
}

/*
 * A stream for queries, which need no current context unless @h names a
 * default stream.
 */
CUresult cpu_stream_lookup(CUstream h, struct CUstream_st **out)
{
    struct CUctx_st *ctx;

    if (cpu_stream_is_default(h)) {
        CUresult rc = cpu_ctx_get_current_checked(&ctx);

        if (rc != CUDA_SUCCESS) {
            return rc;
        }
        *out = h == VGC_STREAM_PER_THREAD ? &ctx->per_thread_stream
                                          : &ctx->legacy_stream;
        return CUDA_SUCCESS;
    }
    CPU_CHECK_INIT();
    if (h->magic != CPU_MAGIC_STREAM || !cpu_ctx_live(h->ctx)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    *out = h;
    return CUDA_SUCCESS;
}

/*
 * The stream work is submitted to: there must be a current context and
 * an explicit stream must belong to it.
 */
CUresult cpu_stream_resolve(CUstream h, struct CUctx_st **ctx,
                            struct CUstream_st **stream)
{
    struct CUstream_st *s;
    CUresult rc = cpu_ctx_get_current_checked(ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    rc = cpu_stream_lookup(h, &s);
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (s->ctx != *ctx) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (stream) {
        *stream = s;
    }
    return CUDA_SUCCESS;
}

static void cpu_stream_free(struct CUstream_st *s)
{
    struct CUctx_st *ctx = s->ctx;

    if (s->prev) {
        s->prev->next = s->next;
    } else {
        ctx->streams = s->next;
    }
    if (s->next) {
        s->next->prev = s->prev;
    }
    s->magic = 0;
    free(s);
}

static void cpu_event_free(struct CUevent_st *e)
{
    struct CUctx_st *ctx = e->ctx;

    if (e->prev) {
        e->prev->next = e->next;
    } else {
        ctx->events = e->next;
    }
    if (e->next) {
        e->next->prev = e->prev;
    }
    e->magic = 0;
    free(e);
}

void cpu_stream_free_ctx(struct CUctx_st *ctx)
{
    while (ctx->streams) {
        cpu_stream_free(ctx->streams);
    }
    while (ctx->events) {
        cpu_event_free(ctx->events);
    }
}

/* ---- streams --------------------------------------------------------- */

CUresult cpu_stream_create_with_priority(CUstream *ph, unsigned int flags,
                                         int priority)
{
    struct CUctx_st *ctx;
    struct CUstream_st *s;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!ph || (flags & ~(unsigned int)CU_STREAM_NON_BLOCKING)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    /* Out-of-range priorities are clamped, as the driver does. */
    if (priority > CPU_STREAM_PRIO_LEAST) {
        priority = CPU_STREAM_PRIO_LEAST;
    } else if (priority < CPU_STREAM_PRIO_GREATEST) {
        priority = CPU_STREAM_PRIO_GREATEST;
    }
    s->magic = CPU_MAGIC_STREAM;
    s->ctx = ctx;
    s->flags = flags;
    s->priority = priority;
    s->id = cpu_next_id();
    s->next = ctx->streams;
    if (ctx->streams) {
        ctx->streams->prev = s;
    }
    ctx->streams = s;
    *ph = s;
    return CUDA_SUCCESS;
}

CUresult cpu_stream_create(CUstream *ph, unsigned int flags)
{
    return cpu_stream_create_with_priority(ph, flags, CPU_STREAM_PRIO_LEAST);
}

CUresult cpu_stream_destroy(CUstream h)
{
    struct CUstream_st *s;
    CUresult rc;

    if (cpu_stream_is_default(h)) {
        CPU_CHECK_INIT();
        return CUDA_ERROR_INVALID_HANDLE;
    }
    rc = cpu_stream_lookup(h, &s);
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    cpu_stream_free(s);
    return CUDA_SUCCESS;
}

/* Nothing is ever pending: see the execution model above. */
CUresult cpu_stream_synchronize(CUstream h)
{
    struct CUstream_st *s;

    return cpu_stream_lookup(h, &s);
}

CUresult cpu_stream_query(CUstream h)
{
    struct CUstream_st *s;

    return cpu_stream_lookup(h, &s);
}

CUresult cpu_stream_wait_event(CUstream h, CUevent ev, unsigned int flags)
{
    struct CUstream_st *s;
    CUresult rc = cpu_stream_lookup(h, &s);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!ev || ev->magic != CPU_MAGIC_EVENT) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (flags & ~(unsigned int)CU_EVENT_WAIT_EXTERNAL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* Events from other contexts may be waited on; all are complete. */
    return CUDA_SUCCESS;
}

CUresult cpu_stream_get_flags(CUstream h, unsigned int *flags)
{
    struct CUstream_st *s;
    CUresult rc = cpu_stream_lookup(h, &s);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!flags) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *flags = s->flags;
    return CUDA_SUCCESS;
}

CUresult cpu_stream_get_priority(CUstream h, int *priority)
{
    struct CUstream_st *s;
    CUresult rc = cpu_stream_lookup(h, &s);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!priority) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *priority = s->priority;
    return CUDA_SUCCESS;
}

CUresult cpu_stream_get_ctx(CUstream h, CUcontext *pctx)
{
    struct CUstream_st *s;
    CUresult rc = cpu_stream_lookup(h, &s);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!pctx) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pctx = s->ctx;
    return CUDA_SUCCESS;
}

CUresult cpu_stream_get_ctx_v2(CUstream h, CUcontext *pctx, CUgreenCtx *pgreen)
{
    CUresult rc;

    if (!pgreen) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    rc = cpu_stream_get_ctx(h, pctx);
    if (rc == CUDA_SUCCESS) {
        *pgreen = NULL;
    }
    return rc;
}

CUresult cpu_stream_get_id(CUstream h, unsigned long long *id)
{
    struct CUstream_st *s;
    CUresult rc = cpu_stream_lookup(h, &s);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!id) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *id = s->id;
    return CUDA_SUCCESS;
}

CUresult cpu_stream_get_device(CUstream h, CUdevice *dev)
{
    struct CUstream_st *s;
    CUresult rc = cpu_stream_lookup(h, &s);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!dev) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *dev = s->ctx->dev;
    return CUDA_SUCCESS;
}

/* ---- events ---------------------------------------------------------- */

static CUresult cpu_event_check(CUevent ev)
{
    CPU_CHECK_INIT();
    if (!ev || ev->magic != CPU_MAGIC_EVENT || !cpu_ctx_live(ev->ctx)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    return CUDA_SUCCESS;
}

CUresult cpu_event_create(CUevent *ph, unsigned int flags)
{
    struct CUctx_st *ctx;
    struct CUevent_st *e;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!ph || (flags & ~(unsigned int)CPU_EVENT_FLAGS_VALID)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if ((flags & CU_EVENT_INTERPROCESS) && !(flags & CU_EVENT_DISABLE_TIMING)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    e = calloc(1, sizeof(*e));
    if (!e) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    e->magic = CPU_MAGIC_EVENT;
    e->ctx = ctx;
    e->flags = flags;
    e->next = ctx->events;
    if (ctx->events) {
        ctx->events->prev = e;
    }
    ctx->events = e;
    *ph = e;
    return CUDA_SUCCESS;
}

CUresult cpu_event_destroy(CUevent ev)
{
    CUresult rc = cpu_event_check(ev);

    if (rc == CUDA_SUCCESS) {
        cpu_event_free(ev);
    }
    return rc;
}

CUresult cpu_event_record_with_flags(CUevent ev, CUstream h,
                                     unsigned int flags)
{
    struct CUstream_st *s;
    CUresult rc = cpu_event_check(ev);

    if (rc == CUDA_SUCCESS) {
        rc = cpu_stream_lookup(h, &s);
    }
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (flags & ~(unsigned int)CU_EVENT_RECORD_EXTERNAL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* The event and the stream must share a context. */
    if (s->ctx != ev->ctx) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    ev->recorded = true;
    ev->stamp_ns = cpu_now_ns();
    return CUDA_SUCCESS;
}

CUresult cpu_event_record(CUevent ev, CUstream h)
{
    return cpu_event_record_with_flags(ev, h, 0);
}

/* Complete once recorded, and (as in the driver) when never recorded. */
CUresult cpu_event_query(CUevent ev)
{
    return cpu_event_check(ev);
}

CUresult cpu_event_synchronize(CUevent ev)
{
    return cpu_event_check(ev);
}

CUresult cpu_event_elapsed_time(float *ms, CUevent start, CUevent end)
{
    CUresult rc = cpu_event_check(start);

    if (rc == CUDA_SUCCESS) {
        rc = cpu_event_check(end);
    }
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!ms) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!start->recorded || !end->recorded ||
        (start->flags & CU_EVENT_DISABLE_TIMING) ||
        (end->flags & CU_EVENT_DISABLE_TIMING)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    *ms = (float)(((double)end->stamp_ns - (double)start->stamp_ns) / 1e6);
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_record_event(CUcontext ctx, CUevent ev)
{
    CUresult rc = cpu_event_check(ev);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!cpu_ctx_live(ctx)) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (ctx != ev->ctx) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    ev->recorded = true;
    ev->stamp_ns = cpu_now_ns();
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_wait_event(CUcontext ctx, CUevent ev)
{
    CUresult rc = cpu_event_check(ev);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    return cpu_ctx_live(ctx) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}
