/*
 * cpu_launch.c - kernel launches on the cpu reference executor.
 *
 * Launches are validated as the driver validates them (function, grid and
 * block dimensions, shared memory, stream, parameters) and then run,
 * synchronously, by the PTX interpreter (ptx_parse.c decodes a module's
 * PTX once, on its first launch; ptx_exec.c runs the grid).  A fault
 * (illegal address, trap, budget or cancellation) is sticky for the
 * launching context.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "ptx_internal.h"

#define CPU_MAX_BLOCK_X 1024u
#define CPU_MAX_BLOCK_Y 1024u
#define CPU_MAX_BLOCK_Z 64u
#define CPU_MAX_GRID_X  2147483647u
#define CPU_MAX_GRID_YZ 65535u

struct cpu_launch {
    struct CUfunc_st *f;
    unsigned int grid[3];
    unsigned int block[3];
    unsigned int shmem;
    struct CUctx_st *ctx;
    struct CUstream_st *stream;
    void **params;
    void **extra;
};

/*
 * Names already reported, so each kernel name is logged once per process
 * however many modules carry it; bounded so a client cannot grow it.
 */
#define CPU_LAUNCH_WARN_MAX 1024
#define CPU_LAUNCH_DEFAULT_MAX_INSNS (1ULL << 40)

static char *cpu_launch_warned[CPU_LAUNCH_WARN_MAX];
static size_t cpu_launch_nwarned;
static char cpu_launch_msg[256];
static uint64_t cpu_launch_insns;

static void cpu_launch_warn_once(const char *name, const char *why)
{
    size_t i;

    for (i = 0; i < cpu_launch_nwarned; i++) {
        if (strcmp(cpu_launch_warned[i], name) == 0) {
            return;
        }
    }
    if (cpu_launch_nwarned < CPU_LAUNCH_WARN_MAX) {
        cpu_launch_warned[cpu_launch_nwarned] = strdup(name);
        if (cpu_launch_warned[cpu_launch_nwarned]) {
            cpu_launch_nwarned++;
        }
    }
    fprintf(stderr, "vgcd[cpu]: cannot run kernel %s: %s\n", name, why);
}

void cpu_launch_reset(void)
{
    while (cpu_launch_nwarned) {
        free(cpu_launch_warned[--cpu_launch_nwarned]);
    }
}

const char *cpu_launch_last_error(void)
{
    return cpu_launch_msg;
}

uint64_t cpu_launch_last_insns(void)
{
    return cpu_launch_insns;
}

static uint64_t cpu_launch_max_insns(void)
{
    const char *e = getenv("VGC_CPU_MAX_INSNS");
    char *end;
    unsigned long long v;

    if (!e || !*e) {
        return CPU_LAUNCH_DEFAULT_MAX_INSNS;
    }
    v = strtoull(e, &end, 0);
    return *end ? CPU_LAUNCH_DEFAULT_MAX_INSNS : v;
}

/*
 * The parameter buffer, packed at each parameter's offset: from the
 * kernelParams array, or from extra's CU_LAUNCH_PARAM_BUFFER_POINTER
 * (what the worker always sends).
 */
static CUresult cpu_launch_params(const struct cpu_launch *l,
                                  const struct ptx_func *fn, uint8_t *buf,
                                  size_t cap, size_t *used)
{
    const struct cpu_kernel_desc *d = l->f->desc;
    size_t i;

    *used = fn->param_size;
    if (l->params) {
        if (d->nparams < 0) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        for (i = 0; i < (size_t)d->nparams; i++) {
            const struct cpu_param *p = &d->params[i];

            if (p->offset > cap || p->size > cap - p->offset ||
                !l->params[i]) {
                return CUDA_ERROR_INVALID_VALUE;
            }
            memcpy(buf + p->offset, l->params[i], p->size);
        }
        return CUDA_SUCCESS;
    }
    if (l->extra) {
        const void *ptr = NULL;
        size_t size = 0;
        bool have_size = false;

        for (i = 0; i < 64 && l->extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
            if (l->extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) {
                ptr = l->extra[i + 1];
            } else if (l->extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE) {
                if (!l->extra[i + 1]) {
                    return CUDA_ERROR_INVALID_VALUE;
                }
                size = *(const size_t *)l->extra[i + 1];
                have_size = true;
            } else {
                return CUDA_ERROR_INVALID_VALUE;
            }
        }
        if (!ptr || !have_size || size > cap) {
            return size > cap ? CUDA_ERROR_INVALID_VALUE :
                   fn->param_size ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
        }
        memcpy(buf, ptr, size);
    }
    return CUDA_SUCCESS;
}

/* ---- device printf ------------------------------------------------ */

#define CPU_PRINTF_MIN_CAP  4096

void cpu_printf_free_ctx(struct CUctx_st *ctx)
{
    free(ctx->printf_buf);
    ctx->printf_buf = NULL;
    ctx->printf_len = 0;
    ctx->printf_dropped = 0;
}

static size_t cpu_printf_cap(const struct CUctx_st *ctx)
{
    size_t cap = ctx->limits[CU_LIMIT_PRINTF_FIFO_SIZE];

    return cap < CPU_PRINTF_MIN_CAP ? CPU_PRINTF_MIN_CAP : cap;
}

/* A launch's printf output: to stderr now, to the context's buffer. */
static void cpu_printf_collect(struct CUctx_st *ctx, const char *name,
                               const char *out, size_t len, size_t dropped)
{
    size_t cap = cpu_printf_cap(ctx), i = 0, keep;

    while (i < len) {
        const char *nl = memchr(out + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (out + i)) + 1 : len - i;

        fprintf(stderr, "[kernel %s] %.*s%s", name, (int)n, out + i,
                nl ? "" : "\n");
        i += n;
    }
    if (dropped) {
        fprintf(stderr, "[kernel %s] (%zu bytes of printf output dropped: "
                "over the printf FIFO size)\n", name, dropped);
    }
    if (ctx->printf_len > cap) {
        cap = ctx->printf_len;  /* the limit was lowered meanwhile */
    }
    keep = len < cap - ctx->printf_len ? len : cap - ctx->printf_len;
    if (keep && !ctx->printf_buf) {
        ctx->printf_buf = malloc(cap);
        if (!ctx->printf_buf) {
            keep = 0;
        }
    }
    if (keep) {
        memcpy(ctx->printf_buf + ctx->printf_len, out, keep);
        ctx->printf_len += keep;
    }
    ctx->printf_dropped += dropped + (len - keep);
}

static size_t cpu_printf_drain_one(struct CUctx_st *ctx, char *buf,
                                   size_t cap)
{
    size_t n = ctx->printf_len < cap ? ctx->printf_len : cap;

    if (n) {
        memcpy(buf, ctx->printf_buf, n);
        memmove(ctx->printf_buf, ctx->printf_buf + n, ctx->printf_len - n);
        ctx->printf_len -= n;
    }
    if (ctx->printf_len == 0 && ctx->printf_dropped) {
        char note[96];
        int k = snprintf(note, sizeof(note), "[vgc: %zu bytes of device "
                         "printf output dropped]\n", ctx->printf_dropped);

        if (k > 0 && (size_t)k <= cap - n) {
            memcpy(buf + n, note, (size_t)k);
            n += (size_t)k;
            ctx->printf_dropped = 0;
        }
    }
    if (ctx->printf_len == 0) {
        free(ctx->printf_buf);
        ctx->printf_buf = NULL;
    }
    return n;
}

size_t vgc_cpu_printf_drain(CUcontext ctx, char *buf, size_t cap)
{
    struct CUctx_st *c, *order[64];
    size_t n = 0, k = 0;

    if (!buf || !cap) {
        return 0;
    }
    if (ctx) {
        return cpu_ctx_live(ctx) ? cpu_printf_drain_one(ctx, buf, cap) : 0;
    }
    /* cpu_state.contexts is newest first: drain the oldest first. */
    for (c = cpu_state.contexts; c && k < 64; c = c->next) {
        order[k++] = c;
    }
    while (k-- > 0 && n < cap) {
        n += cpu_printf_drain_one(order[k], buf + n, cap - n);
    }
    return n;
}

bool vgc_cpu_printf_pending(void)
{
    for (struct CUctx_st *c = cpu_state.contexts; c; c = c->next) {
        if (c->printf_len || c->printf_dropped) {
            return true;
        }
    }
    return false;
}

/* Decode @mod's PTX bodies once (mod->ptx, or why not in mod->ptx_rc). */
static void cpu_launch_decode(struct CUmod_st *mod)
{
    if (mod->image.ptx && !mod->ptx && mod->ptx_rc == CUDA_SUCCESS) {
        char err[200];

        mod->ptx_rc = ptx_module_parse(mod->image.ptx, mod->image.ptx_len,
                                       &mod->ptx, err, sizeof(err));
        if (mod->ptx_rc != CUDA_SUCCESS) {
            fprintf(stderr, "vgcd[cpu]: cannot decode PTX: %s\n", err);
            snprintf(cpu_launch_msg, sizeof(cpu_launch_msg), "bad PTX: %s",
                     err);
        }
    }
}

/* ---- occupancy ----------------------------------------------------- */

/* What one SM of the sm_80-class part holds. */
#define CPU_SM_THREADS      2048
#define CPU_SM_BLOCKS       32
#define CPU_SM_SHARED       (164 * 1024)
#define CPU_SM_REGS         65536
#define CPU_BLOCK_RESERVED  1024        /* shared memory the driver keeps */
#define CPU_FUNC_REGS       32          /* CU_FUNC_ATTRIBUTE_NUM_REGS */

static uint32_t cpu_func_static_shared(struct CUfunc_st *f)
{
    const struct ptx_func *pf;

    cpu_launch_decode(f->mod);
    pf = f->mod->ptx ? ptx_module_find(f->mod->ptx, f->desc->name) : NULL;
    return pf ? (pf->shared_static + 15) / 16 * 16 : 0;
}

static CUresult cpu_occ_check(struct CUfunc_st *f, int block)
{
    CPU_CHECK_INIT();
    if (!cpu_func_valid(f)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (block <= 0 || block > CPU_MAX_THREADS_PER_BLOCK) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

/* Resident blocks of @block threads with @dyn bytes of dynamic shared. */
static int cpu_occ_blocks(struct CUfunc_st *f, int block, size_t dyn)
{
    uint32_t warps = ((uint32_t)block + 31) / 32;
    uint64_t smem = (uint64_t)cpu_func_static_shared(f) + dyn;
    uint64_t n = CPU_SM_BLOCKS, by;

    if (dyn > (size_t)f->max_dynamic_shared ||
        smem > CPU_SHARED_PER_BLOCK_OPTIN) {
        return 0;
    }
    by = CPU_SM_THREADS / 32 / warps;
    n = by < n ? by : n;
    by = CPU_SM_REGS / ((uint64_t)CPU_FUNC_REGS * 32 * warps);
    n = by < n ? by : n;
    if (smem) {
        by = CPU_SM_SHARED / (smem + CPU_BLOCK_RESERVED);
        n = by < n ? by : n;
    }
    return (int)n;
}

CUresult cpu_occupancy_max_active_blocks_with_flags(int *nblocks,
                                                    CUfunction f, int block,
                                                    size_t dyn,
                                                    unsigned int flags)
{
    CUresult rc = cpu_occ_check(f, block);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!nblocks || (flags & ~(unsigned)CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *nblocks = cpu_occ_blocks(f, block, dyn);
    return CUDA_SUCCESS;
}

CUresult cpu_occupancy_max_active_blocks(int *nblocks, CUfunction f,
                                         int block, size_t dyn)
{
    return cpu_occupancy_max_active_blocks_with_flags(nblocks, f, block, dyn,
                                                      CU_OCCUPANCY_DEFAULT);
}

CUresult cpu_occupancy_available_dyn_smem(size_t *dyn, CUfunction f,
                                          int nblocks, int block)
{
    CUresult rc = cpu_occ_check(f, block);
    uint32_t warps = ((uint32_t)block + 31) / 32;
    uint64_t per, st, lim;

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (!dyn || nblocks <= 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *dyn = 0;
    if ((uint64_t)nblocks > CPU_SM_BLOCKS ||
        (uint64_t)nblocks * warps > CPU_SM_THREADS / 32 ||
        (uint64_t)nblocks * warps * 32 * CPU_FUNC_REGS > CPU_SM_REGS) {
        return CUDA_SUCCESS;
    }
    st = cpu_func_static_shared(f);
    per = CPU_SM_SHARED / (uint64_t)nblocks;
    if (per <= CPU_BLOCK_RESERVED + st) {
        return CUDA_SUCCESS;
    }
    per -= CPU_BLOCK_RESERVED + st;
    lim = CPU_SHARED_PER_BLOCK_OPTIN > st ? CPU_SHARED_PER_BLOCK_OPTIN - st : 0;
    *dyn = per < lim ? per : lim;
    return CUDA_SUCCESS;
}

static CUresult cpu_launch_run(struct cpu_launch *l)
{
    struct CUmod_st *mod = l->f->mod;
    const char *name = l->f->desc->name;
    struct ptx_launch_args *a;
    uint64_t *gaddr = NULL;
    uint8_t *pbuf = NULL;
    size_t i, used;
    CUresult rc;

    cpu_launch_msg[0] = 0;
    if (!mod->image.ptx) {
        cpu_launch_warn_once(name, "its module carries no PTX (a SASS-only "
                             "cubin); rebuild it with PTX included");
        snprintf(cpu_launch_msg, sizeof(cpu_launch_msg),
                 "kernel %s: module has no PTX", name);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    cpu_launch_decode(mod);
    if (mod->ptx_rc != CUDA_SUCCESS) {
        return mod->ptx_rc;
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    a->fn = ptx_module_find(mod->ptx, name);
    if (!a->fn) {
        free(a);
        snprintf(cpu_launch_msg, sizeof(cpu_launch_msg),
                 "kernel %s: no body in the PTX", name);
        return CUDA_ERROR_NOT_FOUND;
    }
    gaddr = calloc(mod->ptx->nglobals + 1, sizeof(*gaddr));
    pbuf = calloc(a->fn->param_size + 1, 1);
    if (!gaddr || !pbuf) {
        rc = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    rc = cpu_launch_params(l, a->fn, pbuf, a->fn->param_size, &used);
    if (rc != CUDA_SUCCESS) {
        goto out;
    }
    /* Module variables get their device memory on first use. */
    for (i = 0; i < mod->ptx->nglobals; i++) {
        CUdeviceptr p = 0;

        if (cpu_mod_get_global(&p, NULL, mod, mod->ptx->globals[i]) ==
            CUDA_SUCCESS) {
            gaddr[i] = p;
        }
    }
    memcpy(a->grid, l->grid, sizeof(a->grid));
    memcpy(a->block, l->block, sizeof(a->block));
    a->dyn_shared = l->shmem;
    a->params = pbuf;
    a->param_size = used;
    a->global_addr = gaddr;
    a->ctx = l->ctx;
    a->max_insns = cpu_launch_max_insns();
    a->printf_cap = cpu_printf_cap(l->ctx);
    rc = ptx_execute(a);
    cpu_launch_insns = a->thread_insns;
    if (a->printf_len || a->printf_dropped) {
        cpu_printf_collect(l->ctx, name, a->printf_out, a->printf_len,
                           a->printf_dropped);
    }
    free(a->printf_out);
    if (rc != CUDA_SUCCESS) {
        snprintf(cpu_launch_msg, sizeof(cpu_launch_msg), "%s", a->msg);
        fprintf(stderr, "vgcd[cpu]: %s\n", a->msg);
        switch (rc) {
        case CUDA_ERROR_ILLEGAL_ADDRESS:
        case CUDA_ERROR_MISALIGNED_ADDRESS:
        case CUDA_ERROR_LAUNCH_FAILED:
        case CUDA_ERROR_LAUNCH_TIMEOUT:
            /* As on a GPU, a faulting kernel poisons its context. */
            l->ctx->sticky = rc;
            break;
        default:
            break;
        }
    }
out:
    free(gaddr);
    free(pbuf);
    free(a);
    return rc;
}

static CUresult cpu_launch_check(struct cpu_launch *l, CUstream h)
{
    unsigned int threads;
    CUresult rc;

    CPU_CHECK_INIT();
    /* A CUkernel is accepted too: it is the same object (struct CUkern_st). */
    if (!cpu_func_valid(l->f)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    rc = cpu_stream_resolve(h, &l->ctx, &l->stream);
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    /* A context's module may only launch in its own context. */
    if (l->f->mod->ctx && l->f->mod->ctx != l->ctx) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (l->grid[0] == 0 || l->grid[1] == 0 || l->grid[2] == 0 ||
        l->block[0] == 0 || l->block[1] == 0 || l->block[2] == 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (l->grid[0] > CPU_MAX_GRID_X || l->grid[1] > CPU_MAX_GRID_YZ ||
        l->grid[2] > CPU_MAX_GRID_YZ || l->block[0] > CPU_MAX_BLOCK_X ||
        l->block[1] > CPU_MAX_BLOCK_Y || l->block[2] > CPU_MAX_BLOCK_Z) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    threads = l->block[0] * l->block[1];    /* <= 2^20: no overflow */
    if (threads > CPU_MAX_THREADS_PER_BLOCK ||
        threads * l->block[2] > CPU_MAX_THREADS_PER_BLOCK) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (l->shmem > (unsigned int)l->f->max_dynamic_shared) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* Parameters come either as an array or packed in "extra", not both. */
    if (l->params && l->extra) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!l->params && !l->extra && l->f->desc->nparams > 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

CUresult cpu_launch_kernel(CUfunction f, unsigned int gx, unsigned int gy,
                           unsigned int gz, unsigned int bx, unsigned int by,
                           unsigned int bz, unsigned int shmem, CUstream h,
                           void **params, void **extra)
{
    struct cpu_launch l = {
        .f = f,
        .grid = { gx, gy, gz },
        .block = { bx, by, bz },
        .shmem = shmem,
        .params = params,
        .extra = extra,
    };
    CUresult rc = cpu_launch_check(&l, h);

    return rc == CUDA_SUCCESS ? cpu_launch_run(&l) : rc;
}

CUresult cpu_launch_kernel_ex(const CUlaunchConfig *config, CUfunction f,
                              void **params, void **extra)
{
    struct cpu_launch l = { .f = f, .params = params, .extra = extra };
    CUresult rc;

    CPU_CHECK_INIT();
    if (!config || (config->numAttrs && !config->attrs)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    l.grid[0] = config->gridDimX;
    l.grid[1] = config->gridDimY;
    l.grid[2] = config->gridDimZ;
    l.block[0] = config->blockDimX;
    l.block[1] = config->blockDimY;
    l.block[2] = config->blockDimZ;
    l.shmem = config->sharedMemBytes;
    rc = cpu_launch_check(&l, config->hStream);
    return rc == CUDA_SUCCESS ? cpu_launch_run(&l) : rc;
}
