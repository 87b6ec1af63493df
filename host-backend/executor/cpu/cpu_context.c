/*
 * cpu_context.c - contexts of the cpu reference executor.
 *
 * Each device has one primary context object for the life of the process,
 * so cuDevicePrimaryCtxRetain always hands out the same CUcontext; it is
 * "active" while retained and its resources are freed when the last
 * reference goes or on reset.  Created contexts are freed on destroy.
 * The current context is a per-thread stack, as in the driver.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

struct cpu_ctx_stack {
    struct CUctx_st *v[CPU_CTX_STACK_MAX];
    int depth;
};

static _Thread_local struct cpu_ctx_stack cpu_ctx_tls;

#define CPU_CTX_FLAGS_VALID (CU_CTX_SCHED_MASK | CU_CTX_MAP_HOST | \
                             CU_CTX_LMEM_RESIZE_TO_MAX | CU_CTX_COREDUMP_ENABLE | \
                             CU_CTX_USER_COREDUMP_ENABLE | CU_CTX_SYNC_MEMOPS)

static bool cpu_ctx_flags_ok(unsigned int flags)
{
    unsigned int sched = flags & CU_CTX_SCHED_MASK;

    if (flags & ~(unsigned int)CPU_CTX_FLAGS_VALID) {
        return false;
    }
    return sched == CU_CTX_SCHED_AUTO || sched == CU_CTX_SCHED_SPIN ||
           sched == CU_CTX_SCHED_YIELD || sched == CU_CTX_SCHED_BLOCKING_SYNC;
}

/* Driver defaults for an sm_80 part. */
static void cpu_ctx_reset_state(struct CUctx_st *ctx)
{
    ctx->sticky = CUDA_SUCCESS;
    memset(ctx->limits, 0, sizeof(ctx->limits));
    ctx->limits[CU_LIMIT_STACK_SIZE] = 1024;
    ctx->limits[CU_LIMIT_PRINTF_FIFO_SIZE] = 1 << 20;
    ctx->limits[CU_LIMIT_MALLOC_HEAP_SIZE] = 8 << 20;
    ctx->limits[CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH] = 2;
    ctx->limits[CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT] = 2048;
    ctx->limits[CU_LIMIT_MAX_L2_FETCH_GRANULARITY] = 64;
    ctx->limits[CU_LIMIT_PERSISTING_L2_CACHE_SIZE] = 0;
    ctx->cache_config = CU_FUNC_CACHE_PREFER_NONE;
    ctx->shmem_config = CU_SHARED_MEM_CONFIG_FOUR_BYTE_BANK_SIZE;
}

static struct CUctx_st *cpu_ctx_new(int dev, unsigned int flags, bool primary)
{
    struct CUctx_st *ctx = calloc(1, sizeof(*ctx));

    if (!ctx) {
        return NULL;
    }
    ctx->magic = CPU_MAGIC_CTX;
    ctx->dev = dev;
    ctx->flags = flags;
    ctx->primary = primary;
    ctx->active = !primary;
    ctx->id = cpu_next_id();
    cpu_ctx_reset_state(ctx);
    cpu_stream_init_default(ctx);
    ctx->next = cpu_state.contexts;
    cpu_state.contexts = ctx;
    return ctx;
}

/* Free everything made in @ctx; the object itself stays. */
static void cpu_ctx_release_resources(struct CUctx_st *ctx)
{
    cpu_mod_free_ctx(ctx);
    cpu_stream_free_ctx(ctx);
    cpu_array_free_ctx(ctx);
    cpu_mem_free_ctx(ctx);
    cpu_printf_free_ctx(ctx);
    cpu_ctx_reset_state(ctx);
}

/* Drop every reference this thread's stack holds to @ctx. */
static void cpu_ctx_unstack(const struct CUctx_st *ctx)
{
    struct cpu_ctx_stack *s = &cpu_ctx_tls;
    int i, j = 0;

    for (i = 0; i < s->depth; i++) {
        if (s->v[i] != ctx) {
            s->v[j++] = s->v[i];
        }
    }
    s->depth = j;
}

static void cpu_ctx_unlink_free(struct CUctx_st *ctx)
{
    struct CUctx_st **pp;

    for (pp = &cpu_state.contexts; *pp; pp = &(*pp)->next) {
        if (*pp == ctx) {
            *pp = ctx->next;
            break;
        }
    }
    cpu_ctx_unstack(ctx);
    cpu_printf_free_ctx(ctx);
    ctx->magic = 0;
    free(ctx);
}

bool cpu_ctx_live(const struct CUctx_st *ctx)
{
    const struct CUctx_st *c;

    if (!ctx) {
        return false;
    }
    for (c = cpu_state.contexts; c; c = c->next) {
        if (c == ctx) {
            return c->active;
        }
    }
    return false;
}

CUresult cpu_ctx_primary_alloc(int dev)
{
    cpu_state.primary[dev] = cpu_ctx_new(dev, 0, true);
    return cpu_state.primary[dev] ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

void cpu_ctx_destroy_all(void)
{
    while (cpu_state.contexts) {
        struct CUctx_st *ctx = cpu_state.contexts;

        cpu_ctx_release_resources(ctx);
        cpu_ctx_unlink_free(ctx);
    }
    memset(cpu_state.primary, 0, sizeof(cpu_state.primary));
    cpu_ctx_tls.depth = 0;
}

/*
 * The current context for calls that need one: NOT_INITIALIZED before
 * cuInit, INVALID_CONTEXT when none is current or it was released.
 */
CUresult cpu_ctx_get_current_checked(struct CUctx_st **out)
{
    struct cpu_ctx_stack *s = &cpu_ctx_tls;
    struct CUctx_st *ctx;

    CPU_CHECK_INIT();
    ctx = s->depth ? s->v[s->depth - 1] : NULL;
    if (!ctx || !ctx->active) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (ctx->sticky != CUDA_SUCCESS) {
        return ctx->sticky;
    }
    *out = ctx;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_primary_retain(CUcontext *pctx, CUdevice dev)
{
    CUresult rc = cpu_dev_check(dev);
    struct CUctx_st *ctx;

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!pctx) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    ctx = cpu_state.primary[dev];
    if (ctx->refcount == UINT32_MAX) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    ctx->refcount++;
    ctx->active = true;
    *pctx = ctx;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_primary_release(CUdevice dev)
{
    CUresult rc = cpu_dev_check(dev);
    struct CUctx_st *ctx;

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    ctx = cpu_state.primary[dev];
    if (ctx->refcount == 0) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (--ctx->refcount == 0) {
        cpu_ctx_release_resources(ctx);
        ctx->active = false;
    }
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_primary_reset(CUdevice dev)
{
    CUresult rc = cpu_dev_check(dev);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    /* Frees all the primary context holds; references and flags stay. */
    cpu_ctx_release_resources(cpu_state.primary[dev]);
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_primary_get_state(CUdevice dev, unsigned int *flags,
                                   int *active)
{
    CUresult rc = cpu_dev_check(dev);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!flags || !active) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *flags = cpu_state.primary[dev]->flags;
    *active = cpu_state.primary[dev]->active;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_primary_set_flags(CUdevice dev, unsigned int flags)
{
    CUresult rc = cpu_dev_check(dev);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!cpu_ctx_flags_ok(flags)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    cpu_state.primary[dev]->flags = flags;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_push_current(CUcontext ctx)
{
    struct cpu_ctx_stack *s = &cpu_ctx_tls;

    CPU_CHECK_INIT();
    if (!cpu_ctx_live(ctx)) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (s->depth == CPU_CTX_STACK_MAX) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    s->v[s->depth++] = ctx;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_pop_current(CUcontext *pctx)
{
    struct cpu_ctx_stack *s = &cpu_ctx_tls;
    struct CUctx_st *ctx;

    CPU_CHECK_INIT();
    if (s->depth == 0) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    ctx = s->v[--s->depth];
    if (pctx) {
        *pctx = ctx;
    }
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_set_current(CUcontext ctx)
{
    struct cpu_ctx_stack *s = &cpu_ctx_tls;

    CPU_CHECK_INIT();
    if (!ctx) {
        /* Equivalent to a pop, or nothing on an empty stack. */
        if (s->depth) {
            s->depth--;
        }
        return CUDA_SUCCESS;
    }
    if (!cpu_ctx_live(ctx)) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (s->depth == 0) {
        s->depth = 1;
    }
    s->v[s->depth - 1] = ctx;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_get_current(CUcontext *pctx)
{
    struct cpu_ctx_stack *s = &cpu_ctx_tls;

    CPU_CHECK_INIT();
    if (!pctx) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pctx = s->depth ? s->v[s->depth - 1] : NULL;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_create(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    CUresult rc = cpu_dev_check(dev);
    struct CUctx_st *ctx;

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!pctx || !cpu_ctx_flags_ok(flags)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (cpu_ctx_tls.depth == CPU_CTX_STACK_MAX) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    ctx = cpu_ctx_new(dev, flags, false);
    if (!ctx) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    /* A new context is pushed, becoming current. */
    cpu_ctx_tls.v[cpu_ctx_tls.depth++] = ctx;
    *pctx = ctx;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_create_v3(CUcontext *pctx, CUexecAffinityParam *params,
                           int nparams, unsigned int flags, CUdevice dev)
{
    if (nparams < 0 || (nparams > 0 && !params)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (nparams > 0) {
        return CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY;
    }
    return cpu_ctx_create(pctx, flags, dev);
}

CUresult cpu_ctx_create_v4(CUcontext *pctx, CUctxCreateParams *params,
                           unsigned int flags, CUdevice dev)
{
    if (params && params->numExecAffinityParams > 0) {
        return CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY;
    }
    if (params && (params->numExecAffinityParams < 0 || params->cigParams)) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return cpu_ctx_create(pctx, flags, dev);
}

CUresult cpu_ctx_destroy(CUcontext ctx)
{
    CPU_CHECK_INIT();
    if (!cpu_ctx_live(ctx) || ctx->primary) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    cpu_ctx_release_resources(ctx);
    cpu_ctx_unlink_free(ctx);
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_get_device(CUdevice *dev)
{
    struct CUctx_st *ctx;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!dev) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *dev = ctx->dev;
    return CUDA_SUCCESS;
}

/* The v2 calls that take a context: NULL means the current one. */
static CUresult cpu_ctx_or_current(CUcontext ctx, struct CUctx_st **out)
{
    if (!ctx) {
        return cpu_ctx_get_current_checked(out);
    }
    CPU_CHECK_INIT();
    if (!cpu_ctx_live(ctx)) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    *out = ctx;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_get_device_v2(CUdevice *dev, CUcontext ctx)
{
    CUresult rc = cpu_ctx_or_current(ctx, &ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!dev) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *dev = ctx->dev;
    return CUDA_SUCCESS;
}

/* Work runs at submission, so there is never anything to wait for. */
CUresult cpu_ctx_synchronize(void)
{
    struct CUctx_st *ctx;

    return cpu_ctx_get_current_checked(&ctx);
}

CUresult cpu_ctx_synchronize_v2(CUcontext ctx)
{
    return cpu_ctx_or_current(ctx, &ctx);
}

CUresult cpu_ctx_get_flags(unsigned int *flags)
{
    struct CUctx_st *ctx;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!flags) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *flags = ctx->flags;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_set_flags(unsigned int flags)
{
    struct CUctx_st *ctx;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!cpu_ctx_flags_ok(flags)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    ctx->flags = flags;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_get_api_version(CUcontext ctx, unsigned int *version)
{
    CUresult rc = cpu_ctx_or_current(ctx, &ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!version) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* What the driver reports for contexts made by the _v2 API. */
    *version = 3020;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_get_id(CUcontext ctx, unsigned long long *id)
{
    CUresult rc = cpu_ctx_or_current(ctx, &ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!id) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *id = ctx->id;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_get_limit(size_t *value, CUlimit limit)
{
    struct CUctx_st *ctx;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!value) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if ((unsigned int)limit >= CPU_NLIMITS) {
        return CUDA_ERROR_UNSUPPORTED_LIMIT;
    }
    *value = ctx->limits[limit];
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_set_limit(CUlimit limit, size_t value)
{
    struct CUctx_st *ctx;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if ((unsigned int)limit >= CPU_NLIMITS) {
        return CUDA_ERROR_UNSUPPORTED_LIMIT;
    }
    switch (limit) {
    case CU_LIMIT_MAX_L2_FETCH_GRANULARITY:
        /* A hint the driver rounds to 0, 32, 64 or 128. */
        if (value > 128) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        break;
    case CU_LIMIT_PERSISTING_L2_CACHE_SIZE:
        /* MAX_PERSISTING_L2_CACHE_SIZE is 0 here. */
        value = 0;
        break;
    case CU_LIMIT_STACK_SIZE:
        /* Rounded to the driver's granularity. */
        if (value > ((size_t)1 << 24)) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        value = (value + 15) & ~(size_t)15;
        break;
    default:
        break;
    }
    ctx->limits[limit] = value;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_get_cache_config(CUfunc_cache *config)
{
    struct CUctx_st *ctx;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!config) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *config = ctx->cache_config;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_set_cache_config(CUfunc_cache config)
{
    struct CUctx_st *ctx;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if ((unsigned int)config > CU_FUNC_CACHE_PREFER_EQUAL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    ctx->cache_config = config;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_get_shared_mem_config(CUsharedconfig *config)
{
    struct CUctx_st *ctx;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!config) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *config = ctx->shmem_config;
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_set_shared_mem_config(CUsharedconfig config)
{
    struct CUctx_st *ctx;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if ((unsigned int)config > CU_SHARED_MEM_CONFIG_EIGHT_BYTE_BANK_SIZE) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* Bank size is fixed on sm_80: accepted and ignored, as there. */
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_get_stream_priority_range(int *least, int *greatest)
{
    struct CUctx_st *ctx;
    CUresult rc = cpu_ctx_get_current_checked(&ctx);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (least) {
        *least = CPU_STREAM_PRIO_LEAST;
    }
    if (greatest) {
        *greatest = CPU_STREAM_PRIO_GREATEST;
    }
    return CUDA_SUCCESS;
}

CUresult cpu_ctx_reset_persisting_l2_cache(void)
{
    struct CUctx_st *ctx;

    return cpu_ctx_get_current_checked(&ctx);
}
