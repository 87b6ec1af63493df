/*
 * ptx_exec.c - the cpu executor's PTX interpreter: runs decoded kernels
 * (ptx_internal.h) over a grid.
 *
 * Model: a warp of 32 threads runs in lockstep with an active mask.
 * Every lane has its own PC; the warp always runs the lanes at the
 * smallest PC ("min-PC" scheduling), which gives divergence and
 * reconvergence for the structured code compilers emit.  The warps of a
 * block take turns: each runs until it reaches bar.sync or exits, and
 * when all have, the barrier is released.  Blocks are independent, so
 * they run in parallel on worker threads, one block per thread at a time.
 *
 * Guest code is untrusted: every address is checked (global addresses
 * must fall in a live allocation of the launching context, the other
 * spaces are bounded by their sizes), loops are bounded by an instruction
 * budget, and a cancellation flag (vgc_cpu_cancel_all) is polled at
 * branches so a spinning kernel can be stopped from another thread or a
 * signal handler.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpu_internal.h"
#include "ptx_internal.h"
#include "ptx_texture.h"

#define PX_MAX_WORKERS      64
#define PX_MAX_WORKER_MEM   (256u << 20)
#define PX_CHECK_EVERY      (1u << 16)

enum { PX_RUN_DONE, PX_RUN_BARRIER, PX_RUN_ERROR };

static atomic_bool px_cancel;

void vgc_cpu_cancel_all(void)
{
    atomic_store(&px_cancel, true);
}

void vgc_cpu_cancel_clear(void)
{
    atomic_store(&px_cancel, false);
}

struct px_launch {
    struct ptx_launch_args *a;
    const struct ptx_func *fn;
    uint64_t nblocks;
    uint32_t nthreads;          /* per block */
    uint32_t nwarps;
    uint32_t shared_size;
    uint64_t *cinit;            /* value of each constant slot */
    atomic_uint_fast64_t next_block;
    atomic_int err;
    atomic_uint_fast64_t insns;
    atomic_uint_fast64_t tinsns;
    pthread_mutex_t lock;
};

struct px_warp {
    uint64_t *r;                /* nslots x 32, slot-major */
    uint32_t lpc[32];           /* PCs of lanes not in @mask */
    uint32_t pc;
    uint32_t mask;              /* lanes at @pc */
    uint32_t wait_min;          /* smallest PC of the other live lanes */
    uint32_t live;              /* lanes not exited */
    uint32_t nact;
    bool done;
};

struct px_worker {
    struct px_launch *L;
    uint32_t ctaid[3];
    uint8_t *shared;
    uint8_t *local;
    uint64_t *regs;
    struct px_warp warps[32];
    uint64_t c_base, c_len;     /* last allocation hit */
    uint8_t *c_host;
    uint64_t insns, tinsns, flushed_insns, flushed_tinsns, next_check;
};

static void px_fail(struct px_worker *wk, CUresult rc, const char *fmt, ...)
{
    struct px_launch *L = wk->L;
    int expected = CUDA_SUCCESS;
    va_list ap;

    pthread_mutex_lock(&L->lock);
    if (atomic_compare_exchange_strong(&L->err, &expected, (int)rc)) {
        va_start(ap, fmt);
        vsnprintf(L->a->msg, sizeof(L->a->msg), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&L->lock);
}

/* ---- memory ----------------------------------------------------------- */

static uint8_t *px_global_slow(struct px_worker *wk, uint64_t addr,
                               unsigned size)
{
    struct cpu_alloc *a = cpu_mem_find((CUdeviceptr)addr);
    uint64_t off;

    /* Its context's memory, a library's globals, or mapped memory
     * (cuMemMap) its device was given access to. */
    if (!a || !(a->ctx == wk->L->a->ctx || (a->mod && !a->mod->ctx) ||
                (a->vmm_map && wk->L->a->ctx &&
                 cpu_vmm_access(a, ((const struct CUctx_st *)wk->L->a->ctx)->dev)))) {
        return NULL;
    }
    off = addr - a->base;
    if (size > a->size - off) {
        return NULL;
    }
    wk->c_base = a->base;
    wk->c_len = a->size;
    wk->c_host = a->host;
    return a->host + off;
}

static inline uint8_t *px_global(struct px_worker *wk, uint64_t addr,
                                 unsigned size)
{
    uint64_t off = addr - wk->c_base;

    if (off < wk->c_len && wk->c_len - off >= size) {
        return wk->c_host + off;
    }
    return px_global_slow(wk, addr, size);
}

static inline uint8_t *px_shared(struct px_worker *wk, uint64_t addr,
                                 unsigned size)
{
    uint32_t off = (uint32_t)addr;

    if (off > wk->L->shared_size || size > wk->L->shared_size - off) {
        return NULL;
    }
    return wk->shared + off;
}

static inline uint8_t *px_local(struct px_worker *wk, uint32_t tid,
                                uint64_t addr, unsigned size)
{
    uint32_t off = (uint32_t)addr, ls = wk->L->fn->local_size;

    if (off > ls || size > ls - off) {
        return NULL;
    }
    return wk->local + (size_t)tid * ls + off;
}

static inline uint8_t *px_param(struct px_worker *wk, uint64_t addr,
                                unsigned size)
{
    size_t ps = wk->L->a->param_size;

    if (addr > ps || size > ps - addr) {
        return NULL;
    }
    return (uint8_t *)wk->L->a->params + addr;
}

enum { PX_SP_GLOBAL, PX_SP_SHARED, PX_SP_LOCAL, PX_SP_PARAM, PX_SP_GENERIC };

static inline uint8_t *px_resolve(struct px_worker *wk, int space,
                                  uint32_t tid, uint64_t addr, unsigned size)
{
    switch (space) {
    case PX_SP_GLOBAL:
        return px_global(wk, addr, size);
    case PX_SP_SHARED:
        return px_shared(wk, addr, size);
    case PX_SP_LOCAL:
        return px_local(wk, tid, addr, size);
    case PX_SP_PARAM:
        return px_param(wk, addr, size);
    default:
        if (addr - PTX_SHARED_WIN < PTX_WIN_SIZE) {
            return px_shared(wk, addr - PTX_SHARED_WIN, size);
        }
        if (addr - PTX_LOCAL_WIN < PTX_WIN_SIZE) {
            return px_local(wk, tid, addr - PTX_LOCAL_WIN, size);
        }
        return px_global(wk, addr, size);
    }
}

static const char *const px_space_names[] = {
    "global", "shared", "local", "param", "generic",
};

/* ---- scalar helpers --------------------------------------------------- */

static inline float px_f(uint64_t x)
{
    uint32_t u = (uint32_t)x;
    float f;

    memcpy(&f, &u, 4);
    return f;
}

static inline uint64_t px_fb(float f)
{
    uint32_t u;

    memcpy(&u, &f, 4);
    return u;
}

static inline double px_d(uint64_t x)
{
    double d;

    memcpy(&d, &x, 8);
    return d;
}

static inline uint64_t px_db(double d)
{
    uint64_t u;

    memcpy(&u, &d, 8);
    return u;
}

static inline uint64_t px_load(const uint8_t *p, unsigned size, bool sgn)
{
    switch (size) {
    case 1: {
        uint8_t v = *p;

        return sgn ? (uint64_t)(int64_t)(int8_t)v : v;
    }
    case 2: {
        uint16_t v;

        memcpy(&v, p, 2);
        return sgn ? (uint64_t)(int64_t)(int16_t)v : v;
    }
    case 4: {
        uint32_t v;

        memcpy(&v, p, 4);
        return sgn ? (uint64_t)(int64_t)(int32_t)v : v;
    }
    default: {
        uint64_t v;

        memcpy(&v, p, 8);
        return v;
    }
    }
}

static inline void px_store(uint8_t *p, unsigned size, uint64_t v)
{
    switch (size) {
    case 1:
        *p = (uint8_t)v;
        break;
    case 2: {
        uint16_t x = (uint16_t)v;

        memcpy(p, &x, 2);
        break;
    }
    case 4: {
        uint32_t x = (uint32_t)v;

        memcpy(p, &x, 4);
        break;
    }
    default:
        memcpy(p, &v, 8);
    }
}

static bool px_cmp_f(double a, double b, int cmp)
{
    bool nan = isnan(a) || isnan(b);

    switch (cmp) {
    case PTX_CMP_EQ: return !nan && a == b;
    case PTX_CMP_NE: return !nan && a != b;
    case PTX_CMP_LT: return !nan && a < b;
    case PTX_CMP_LE: return !nan && a <= b;
    case PTX_CMP_GT: return !nan && a > b;
    case PTX_CMP_GE: return !nan && a >= b;
    case PTX_CMP_EQU: return nan || a == b;
    case PTX_CMP_NEU: return nan || a != b;
    case PTX_CMP_LTU: return nan || a < b;
    case PTX_CMP_LEU: return nan || a <= b;
    case PTX_CMP_GTU: return nan || a > b;
    case PTX_CMP_GEU: return nan || a >= b;
    case PTX_CMP_NUM: return !nan;
    default: return nan;
    }
}

#define PX_CMP_INT(name, T)                                     \
    static inline bool name(T a, T b, int cmp)                  \
    {                                                           \
        switch (cmp) {                                          \
        case PTX_CMP_EQ: return a == b;                         \
        case PTX_CMP_NE: return a != b;                         \
        case PTX_CMP_LT: return a < b;                          \
        case PTX_CMP_LE: return a <= b;                         \
        case PTX_CMP_GT: return a > b;                          \
        case PTX_CMP_GE: return a >= b;                         \
        default: return false;                                  \
        }                                                       \
    }

PX_CMP_INT(px_cmp_s32, int32_t)
PX_CMP_INT(px_cmp_u32, uint32_t)
PX_CMP_INT(px_cmp_s64, int64_t)
PX_CMP_INT(px_cmp_u64, uint64_t)

static uint64_t px_bfe(uint64_t a, unsigned pos, unsigned len, unsigned w,
                       bool sgn)
{
    uint64_t r = 0;
    bool sbit = false;
    unsigned i;

    pos &= 0xff;
    len &= 0xff;
    if (sgn && len) {
        unsigned sb = pos + len - 1 > w - 1 ? w - 1 : pos + len - 1;

        sbit = (a >> sb) & 1;
    }
    for (i = 0; i < w; i++) {
        bool bit = (i < len && pos + i <= w - 1) ? (a >> (pos + i)) & 1 : sbit;

        r |= (uint64_t)bit << i;
    }
    return r;
}

static uint64_t px_bfi(uint64_t f, uint64_t b, unsigned pos, unsigned len,
                       unsigned w)
{
    uint64_t mask;
    unsigned n;

    pos &= 0xff;
    len &= 0xff;
    if (pos >= w || len == 0) {
        return b;
    }
    n = len > w - pos ? w - pos : len;
    mask = (n == 64 ? ~0ULL : ((1ULL << n) - 1)) << pos;
    return (b & ~mask) | ((f << pos) & mask);
}

static uint64_t px_brev(uint64_t v, unsigned w)
{
    uint64_t r = 0;
    unsigned i;

    for (i = 0; i < w; i++) {
        r |= ((v >> i) & 1) << (w - 1 - i);
    }
    return r;
}

static double px_round(double v, int rnd)
{
    switch (rnd) {
    case 5: return nearbyint(v);    /* rni */
    case 6: return trunc(v);        /* rzi */
    case 7: return floor(v);        /* rmi */
    case 8: return ceil(v);         /* rpi */
    default: return v;
    }
}

static bool px_is_float(int t)
{
    return t == PTX_T_F32 || t == PTX_T_F64;
}

static bool px_is_signed(int t)
{
    return t == PTX_T_S8 || t == PTX_T_S16 || t == PTX_T_S32 ||
           t == PTX_T_S64;
}

static unsigned px_bits(int t)
{
    switch (t) {
    case PTX_T_U8: case PTX_T_S8: return 8;
    case PTX_T_U16: case PTX_T_S16: return 16;
    case PTX_T_U32: case PTX_T_S32: case PTX_T_F32: return 32;
    default: return 64;
    }
}

static uint64_t px_cvt(uint64_t x, uint32_t aux, int rnd)
{
    int to = aux & 0xff, from = (aux >> 8) & 0xff;
    bool sat = (aux >> 16) & 1;
    unsigned tb = px_bits(to), fb = px_bits(from);

    if (px_is_float(from)) {
        double v = from == PTX_T_F32 ? px_f(x) : px_d(x);

        if (px_is_float(to)) {
            v = px_round(v, rnd);
            if (sat) {
                v = isnan(v) ? 0.0 : v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v;
            }
            return to == PTX_T_F32 ? px_fb((float)v) : px_db(v);
        }
        v = px_round(v, rnd ? rnd : 6);
        if (isnan(v)) {
            return 0;
        }
        if (px_is_signed(to)) {
            double lo = -ldexp(1.0, (int)tb - 1), hi = ldexp(1.0, (int)tb - 1);
            int64_t r;

            if (v <= lo) {
                r = tb == 64 ? INT64_MIN : (int64_t)lo;
            } else if (v >= hi) {
                r = tb == 64 ? INT64_MAX : (int64_t)hi - 1;
            } else {
                r = (int64_t)v;
            }
            return tb == 64 ? (uint64_t)r : (uint64_t)r & ((1ULL << tb) - 1);
        } else {
            double hi = ldexp(1.0, (int)tb);

            if (v <= 0.0) {
                return 0;
            }
            if (v >= hi) {
                return tb == 64 ? UINT64_MAX : (1ULL << tb) - 1;
            }
            return (uint64_t)v;
        }
    }
    /* integer source, extended to 64 bits */
    if (fb < 64) {
        x &= (1ULL << fb) - 1;
        if (px_is_signed(from) && (x >> (fb - 1)) & 1) {
            x |= ~0ULL << fb;
        }
    }
    if (px_is_float(to)) {
        if (to == PTX_T_F32) {
            return px_fb(px_is_signed(from) ? (float)(int64_t)x : (float)x);
        }
        return px_db(px_is_signed(from) ? (double)(int64_t)x : (double)x);
    }
    if (sat && tb < 64) {
        if (px_is_signed(to)) {
            int64_t lo = -(1LL << (tb - 1)), hi = (1LL << (tb - 1)) - 1;
            int64_t v = (int64_t)x;

            if (!px_is_signed(from) && x > (uint64_t)hi) {
                v = hi;
            }
            x = (uint64_t)(v < lo ? lo : v > hi ? hi : v);
        } else {
            uint64_t hi = (1ULL << tb) - 1;

            if (px_is_signed(from) && (int64_t)x < 0) {
                x = 0;
            } else if (x > hi) {
                x = hi;
            }
        }
    }
    if (tb < 64) {
        uint64_t v = x & ((1ULL << tb) - 1);

        if (px_is_signed(to) && (v >> (tb - 1)) & 1 && tb < 32) {
            v |= ~0ULL << tb;
        }
        return tb <= 32 ? (uint32_t)v : v;
    }
    return x;
}

/* ---- atomics ---------------------------------------------------------- */

static uint64_t px_atom_new(int kind, int ty, uint64_t old, uint64_t b)
{
    bool w64 = px_bits(ty) == 64;
    uint64_t mask = w64 ? ~0ULL : 0xffffffffULL;

    switch (kind) {
    case PTX_ATOM_ADD:
        if (ty == PTX_T_F32) {
            return px_fb(px_f(old) + px_f(b));
        }
        if (ty == PTX_T_F64) {
            return px_db(px_d(old) + px_d(b));
        }
        return (old + b) & mask;
    case PTX_ATOM_MIN:
    case PTX_ATOM_MAX: {
        bool lt;

        if (ty == PTX_T_F32) {
            float x = px_f(old), y = px_f(b);
            float r = kind == PTX_ATOM_MIN ? fminf(x, y) : fmaxf(x, y);

            return px_fb(r);
        }
        if (ty == PTX_T_S32) {
            lt = (int32_t)b < (int32_t)old;
        } else if (ty == PTX_T_S64) {
            lt = (int64_t)b < (int64_t)old;
        } else {
            lt = (b & mask) < old;
        }
        return (kind == PTX_ATOM_MIN) == lt ? b & mask : old;
    }
    case PTX_ATOM_INC:
        return old >= (b & mask) ? 0 : old + 1;
    case PTX_ATOM_DEC:
        return (old == 0 || old > (b & mask)) ? b & mask : old - 1;
    case PTX_ATOM_EXCH:
        return b & mask;
    case PTX_ATOM_AND:
        return old & b & mask;
    case PTX_ATOM_OR:
        return (old | b) & mask;
    default:
        return (old ^ b) & mask;
    }
}

static uint64_t px_atomic(uint8_t *p, int kind, int ty, uint64_t b,
                          uint64_t c)
{
    if (px_bits(ty) == 64) {
        uint64_t *q = (uint64_t *)(void *)p;
        uint64_t old = __atomic_load_n(q, __ATOMIC_RELAXED);

        if (kind == PTX_ATOM_CAS) {
            __atomic_compare_exchange_n(q, &b, c, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED);
            return b;
        }
        while (!__atomic_compare_exchange_n(q, &old,
                                            px_atom_new(kind, ty, old, b),
                                            true, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED)) {
        }
        return old;
    } else {
        uint32_t *q = (uint32_t *)(void *)p;
        uint32_t old = __atomic_load_n(q, __ATOMIC_RELAXED);
        uint32_t exp = (uint32_t)b;

        if (kind == PTX_ATOM_CAS) {
            __atomic_compare_exchange_n(q, &exp, (uint32_t)c, false,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED);
            return exp;
        }
        while (!__atomic_compare_exchange_n(
                   q, &old, (uint32_t)px_atom_new(kind, ty, old, b), true,
                   __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        }
        return old;
    }
}

/* ---- warps ------------------------------------------------------------ */

/* Pick the lanes at the smallest PC; false when no lane is left. */
static bool px_resched(struct px_warp *W)
{
    uint32_t best = UINT32_MAX, second = UINT32_MAX, mask = 0;
    uint32_t live = W->live;

    while (live) {
        int l = __builtin_ctz(live);
        uint32_t v = W->lpc[l];

        live &= live - 1;
        if (v < best) {
            second = best;
            best = v;
            mask = 1u << l;
        } else if (v == best) {
            mask |= 1u << l;
        } else if (v < second) {
            second = v;
        }
    }
    W->pc = best;
    W->mask = mask;
    W->wait_min = second;
    W->nact = (uint32_t)__builtin_popcount(mask);
    return mask != 0;
}

/* Lanes waiting at @pc join the running ones. */
static void px_merge(struct px_warp *W)
{
    uint32_t i;

    for (i = 0; i < 32; i++) {
        if (W->mask & (1u << i)) {
            W->lpc[i] = W->pc;
        }
    }
    px_resched(W);
}

static bool px_check(struct px_worker *wk)
{
    struct px_launch *L = wk->L;
    uint64_t total;

    total = atomic_fetch_add(&L->insns, wk->insns - wk->flushed_insns) +
            (wk->insns - wk->flushed_insns);
    atomic_fetch_add(&L->tinsns, wk->tinsns - wk->flushed_tinsns);
    wk->flushed_insns = wk->insns;
    wk->flushed_tinsns = wk->tinsns;
    wk->next_check = wk->insns + PX_CHECK_EVERY;
    if (atomic_load(&L->err) != CUDA_SUCCESS) {
        return false;
    }
    if (atomic_load(&px_cancel)) {
        px_fail(wk, CUDA_ERROR_LAUNCH_TIMEOUT, "kernel %s cancelled",
                L->fn->name);
        return false;
    }
    if (L->a->max_insns && total > L->a->max_insns) {
        px_fail(wk, CUDA_ERROR_LAUNCH_TIMEOUT,
                "kernel %s exceeded its budget of %llu warp instructions",
                L->fn->name, (unsigned long long)L->a->max_insns);
        return false;
    }
    return true;
}

#define R(s) (r + (size_t)(s) * 32)

#define LANES(...) do {                                            \
        if (m == 0xffffffffu) {                                     \
            for (int l = 0; l < 32; l++) {                          \
                __VA_ARGS__                                         \
            }                                                       \
        } else {                                                    \
            uint32_t _mm = m;                                       \
            while (_mm) {                                           \
                int l = __builtin_ctz(_mm);                         \
                _mm &= _mm - 1;                                     \
                __VA_ARGS__                                         \
            }                                                       \
        }                                                           \
    } while (0)

#define OP1(expr) do {                                              \
        uint64_t *rd = R(in->d);                                    \
        const uint64_t *ra = R(in->a);                              \
        LANES(uint64_t a = ra[l]; rd[l] = (expr););                 \
    } while (0)
#define OP2(expr) do {                                              \
        uint64_t *rd = R(in->d);                                    \
        const uint64_t *ra = R(in->a), *rb = R(in->b);              \
        LANES(uint64_t a = ra[l]; uint64_t b = rb[l];               \
              rd[l] = (expr););                                     \
    } while (0)
#define OP3(expr) do {                                              \
        uint64_t *rd = R(in->d);                                    \
        const uint64_t *ra = R(in->a), *rb = R(in->b), *rc = R(in->c); \
        LANES(uint64_t a = ra[l]; uint64_t b = rb[l];               \
              uint64_t c = rc[l]; rd[l] = (expr););                 \
    } while (0)

#define U32(x) ((uint32_t)(x))
#define S32(x) ((int32_t)(uint32_t)(x))
#define S64(x) ((int64_t)(x))
#define F(x) px_f(x)
#define D(x) px_d(x)

static int px_ldst(struct px_worker *wk, struct px_warp *W, uint32_t wi,
                   const struct ptx_insn *in, uint32_t m, int space, bool st)
{
    uint64_t *r = W->r;
    unsigned sz = PTX_MEM_SIZE(in->mod), nv = PTX_MEM_VEC(in->mod);
    bool sgn = in->mod & PTX_MEM_SIGNED;
    const uint16_t vs[4] = { in->d, in->b, in->c, in->e };
    const uint64_t *ra = R(in->a);

    LANES(
        uint64_t addr = ra[l] + (uint64_t)in->imm;
        uint8_t *p = px_resolve(wk, space, wi * 32 + (uint32_t)l, addr,
                                sz * nv);
        unsigned v;

        if (!p || (st && space == PX_SP_PARAM)) {
            px_fail(wk, CUDA_ERROR_ILLEGAL_ADDRESS,
                    "kernel %s: %s %s of %u bytes at 0x%llx (line %u) is "
                    "outside every allocation", wk->L->fn->name,
                    st ? "store" : "load", px_space_names[space], sz * nv,
                    (unsigned long long)addr, in->line);
            return PX_RUN_ERROR;
        }
        for (v = 0; v < nv; v++) {
            if (st) {
                px_store(p + v * sz, sz, R(vs[v])[l]);
            } else if (vs[v] != PTX_SLOT_SINK) {
                R(vs[v])[l] = px_load(p + v * sz, sz, sgn);
            }
        }
    );
    return PX_RUN_DONE;
}

static int px_atom(struct px_worker *wk, struct px_warp *W, uint32_t wi,
                   const struct ptx_insn *in, uint32_t m, int space)
{
    uint64_t *r = W->r;
    unsigned sz = px_bits((int)in->aux) / 8;
    uint64_t *rd = R(in->d);
    const uint64_t *ra = R(in->a), *rb = R(in->b), *rc = R(in->c);

    LANES(
        uint64_t addr = ra[l] + (uint64_t)in->imm;
        uint8_t *p = px_resolve(wk, space, wi * 32 + (uint32_t)l, addr, sz);

        if (!p) {
            px_fail(wk, CUDA_ERROR_ILLEGAL_ADDRESS,
                    "kernel %s: atomic on %s address 0x%llx (line %u) is "
                    "outside every allocation", wk->L->fn->name,
                    px_space_names[space], (unsigned long long)addr,
                    in->line);
            return PX_RUN_ERROR;
        }
        if ((uintptr_t)p % sz) {
            px_fail(wk, CUDA_ERROR_MISALIGNED_ADDRESS,
                    "kernel %s: misaligned atomic at 0x%llx (line %u)",
                    wk->L->fn->name, (unsigned long long)addr, in->line);
            return PX_RUN_ERROR;
        }
        rd[l] = px_atomic(p, in->mod, (int)in->aux, rb[l], rc[l]);
    );
    return PX_RUN_DONE;
}

/* ---- textures and surfaces ---------------------------------------------- */

/* The object a lane names, looked up again only when the value changes. */
static bool px_object(struct px_worker *wk, const struct ptx_insn *in, uint64_t value,
                      bool surface, struct cpu_tex_view *v, uint64_t *cur, bool *have)
{
    if (*have && *cur == value) {
        return true;
    }
    if (!cpu_tex_view(value, surface, wk->L->a->ctx, v)) {
        px_fail(wk, CUDA_ERROR_ILLEGAL_ADDRESS,
                "kernel %s: %s object 0x%llx (line %u) is not one of this context's",
                wk->L->fn->name, surface ? "surface" : "texture",
                (unsigned long long)value, in->line);
        return false;
    }
    *cur = value;
    *have = true;
    return true;
}

static int px_tex(struct px_worker *wk, struct px_warp *W, const struct ptx_insn *in,
                  uint32_t m)
{
    uint64_t *r = W->r;
    const uint64_t *ra = R(in->a);
    const uint16_t ds[4] = { in->d, in->b, in->c, in->e };
    struct cpu_tex_view v;
    uint64_t cur = 0;
    bool have = false;

    LANES(
        uint32_t c[4], out[4];

        if (!px_object(wk, in, ra[l], false, &v, &cur, &have)) {
            return PX_RUN_ERROR;
        }
        for (int i = 0; i < 4; i++) {
            c[i] = (uint32_t)R(PTX_TEX_COORD(in, i))[l];
        }
        ptx_tex_sample(&v, in->mod, c,
                       in->mod & PTX_TEX_LOD ? px_f(R(PTX_TEX_COORD(in, 3))[l]) : 0.0f, out);
        for (int i = 0; i < 4; i++) {
            if (ds[i] != PTX_SLOT_SINK) {
                R(ds[i])[l] = out[i];
            }
        }
    );
    return PX_RUN_DONE;
}

/* The level of detail of tex.grad's gradients, into d. */
static int px_texgrad(struct px_worker *wk, struct px_warp *W, const struct ptx_insn *in,
                      uint32_t m)
{
    uint64_t *r = W->r;
    const uint64_t *ra = R(in->a);
    uint64_t *rd = R(in->d);
    const uint16_t gx[3] = { in->b, in->c, in->e };
    struct cpu_tex_view v;
    uint64_t cur = 0;
    bool have = false;

    LANES(
        float dx[3], dy[3];

        if (!px_object(wk, in, ra[l], false, &v, &cur, &have)) {
            return PX_RUN_ERROR;
        }
        for (int i = 0; i < 3; i++) {
            dx[i] = px_f(R(gx[i])[l]);
            dy[i] = px_f(R(PTX_TEX_COORD(in, i))[l]);
        }
        rd[l] = px_fb(ptx_tex_grad_lod(&v, in->mod & 3, dx, dy));
    );
    return PX_RUN_DONE;
}

static int px_surf(struct px_worker *wk, struct px_warp *W, const struct ptx_insn *in,
                   uint32_t m, bool st)
{
    uint64_t *r = W->r;
    const uint64_t *ra = R(in->a);
    const uint16_t vs[4] = { in->d, in->b, in->c, in->e };
    unsigned esz = in->aux & 0xff, nv = in->aux >> 8;
    struct cpu_tex_view v;
    uint64_t cur = 0;
    bool have = false;

    LANES(
        int32_t c[3];
        uint8_t *p = NULL;
        int where;

        if (!px_object(wk, in, ra[l], true, &v, &cur, &have)) {
            return PX_RUN_ERROR;
        }
        for (int i = 0; i < 3; i++) {
            c[i] = (int32_t)R(PTX_TEX_COORD(in, i))[l];
        }
        where = ptx_surf_locate(&v, in->mod, c, esz * nv, &p);
        if (where < 0) {
            px_fail(wk, CUDA_ERROR_ILLEGAL_ADDRESS,
                    "kernel %s: surface %s at (%d, %d, %d) (line %u) is out of range",
                    wk->L->fn->name, st ? "store" : "load", c[0], c[1], c[2], in->line);
            return PX_RUN_ERROR;
        }
        for (unsigned i = 0; i < nv; i++) {
            if (st) {
                if (where == 0) {
                    px_store(p + i * esz, esz, R(vs[i])[l]);
                }
            } else if (vs[i] != PTX_SLOT_SINK) {
                R(vs[i])[l] = where == 0 ? px_load(p + i * esz, esz, false) : 0;
            }
        }
    );
    return PX_RUN_DONE;
}

/* ---- printf ----------------------------------------------------------- */

#define PX_PRINTF_LINE      8192    /* bytes of one printf call's output */

struct px_printf_rd {
    struct px_worker *wk;
    uint32_t tid;
};

static bool px_printf_read(void *opaque, uint64_t addr, void *dst, size_t n)
{
    struct px_printf_rd *c = opaque;
    uint8_t *p = px_resolve(c->wk, PX_SP_GENERIC, c->tid, addr, (unsigned)n);

    if (!p) {
        return false;
    }
    memcpy(dst, p, n);
    return true;
}

/* Append one call's output to the launch's buffer, up to its cap. */
static void px_printf_emit(struct px_worker *wk, const char *s, size_t n)
{
    struct ptx_launch_args *a = wk->L->a;
    size_t keep;

    pthread_mutex_lock(&wk->L->lock);
    keep = a->printf_len >= a->printf_cap ? 0 :
           n < a->printf_cap - a->printf_len ? n :
           a->printf_cap - a->printf_len;
    if (keep) {
        if (!a->printf_out) {
            a->printf_out = malloc(a->printf_cap);
        }
        if (a->printf_out) {
            memcpy(a->printf_out + a->printf_len, s, keep);
            a->printf_len += keep;
        } else {
            keep = 0;
        }
    }
    a->printf_dropped += n - keep;
    pthread_mutex_unlock(&wk->L->lock);
}

static int px_printf(struct px_worker *wk, struct px_warp *W, uint32_t wi,
                     const struct ptx_insn *in, uint32_t m)
{
    uint64_t *r = W->r;
    uint64_t *rd = R(in->d);
    const uint64_t *ra = R(in->a), *rb = R(in->b);
    char *buf = malloc(PX_PRINTF_LINE);

    if (!buf) {
        px_fail(wk, CUDA_ERROR_OUT_OF_MEMORY, "out of memory");
        return PX_RUN_ERROR;
    }
    LANES(
        struct px_printf_rd c = { wk, wi * 32 + (uint32_t)l };
        size_t n = 0;
        int k = ptx_printf_format(px_printf_read, &c, ra[l], rb[l], buf,
                                  PX_PRINTF_LINE, &n);

        rd[l] = (uint32_t)k;
        px_printf_emit(wk, buf, n);
    );
    free(buf);
    return PX_RUN_DONE;
}

static uint64_t px_sreg(struct px_worker *wk, uint32_t wi, int l, int id)
{
    const struct px_launch *L = wk->L;
    const unsigned int *bd = L->a->block, *gd = L->a->grid;
    uint32_t lin = wi * 32 + (uint32_t)l;
    struct timespec ts;

    switch (id) {
    case PTX_SR_TID_X: return lin % bd[0];
    case PTX_SR_TID_Y: return (lin / bd[0]) % bd[1];
    case PTX_SR_TID_Z: return lin / (bd[0] * bd[1]);
    case PTX_SR_NTID_X: return bd[0];
    case PTX_SR_NTID_Y: return bd[1];
    case PTX_SR_NTID_Z: return bd[2];
    case PTX_SR_CTAID_X: return wk->ctaid[0];
    case PTX_SR_CTAID_Y: return wk->ctaid[1];
    case PTX_SR_CTAID_Z: return wk->ctaid[2];
    case PTX_SR_NCTAID_X: return gd[0];
    case PTX_SR_NCTAID_Y: return gd[1];
    case PTX_SR_NCTAID_Z: return gd[2];
    case PTX_SR_LANEID: return (uint32_t)l;
    case PTX_SR_WARPID: return wi;
    case PTX_SR_NWARPID: return L->nwarps;
    case PTX_SR_NSMID: return 1;
    case PTX_SR_LANEMASK_EQ: return 1u << l;
    case PTX_SR_LANEMASK_LT: return (1u << l) - 1;
    case PTX_SR_LANEMASK_LE: return (uint32_t)((2ULL << l) - 1);
    case PTX_SR_LANEMASK_GT: return (uint32_t)~((2ULL << l) - 1);
    case PTX_SR_LANEMASK_GE: return (uint32_t)~((1u << l) - 1);
    case PTX_SR_CLOCK:
    case PTX_SR_CLOCK64:
    case PTX_SR_GLOBALTIMER:
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    case PTX_SR_DYN_SMEM: return L->a->dyn_shared;
    case PTX_SR_TOTAL_SMEM: return L->shared_size;
    default: return 0;
    }
}

static int px_run_warp(struct px_worker *wk, struct px_warp *W, uint32_t wi)
{
    const struct ptx_func *fn = wk->L->fn;
    const struct ptx_insn *code = fn->code;
    uint64_t *r = W->r;

    for (;;) {
        const struct ptx_insn *in = &code[W->pc];
        uint32_t m = W->mask;

        if (in->guard) {
            const uint64_t *g = R(in->guard);
            uint32_t gm = 0, want = in->gneg ? 0 : 1;

            LANES(gm |= (uint32_t)((g[l] != 0) == want) << l;);
            m = gm;
        }
        wk->insns++;
        wk->tinsns += W->nact;

        switch ((enum ptx_op)in->op) {
        case PTX_OP_NOP:
            break;
        case PTX_OP_UNSUPPORTED:
            if (!m) {
                break;
            }
            px_fail(wk, CUDA_ERROR_NOT_SUPPORTED,
                    "kernel %s: PTX instruction '%s' (line %u) is not "
                    "supported by the cpu executor", fn->name,
                    (uint64_t)in->imm < fn->nunsupported ?
                    fn->unsupported[in->imm] : "?", in->line);
            return PX_RUN_ERROR;
        case PTX_OP_TRAP:
            if (!m) {
                break;
            }
            px_fail(wk, CUDA_ERROR_LAUNCH_FAILED, "kernel %s: trap (line %u)",
                    fn->name, in->line);
            return PX_RUN_ERROR;
        case PTX_OP_EXIT:
            W->live &= ~m;
            W->mask &= ~m;
            W->nact = (uint32_t)__builtin_popcount(W->mask);
            if (!W->mask) {
                if (!px_resched(W)) {
                    W->done = true;
                    return PX_RUN_DONE;
                }
                continue;
            }
            break;
        case PTX_OP_BRA: {
            uint32_t tgt = (uint32_t)in->imm, i;

            if (wk->insns >= wk->next_check && !px_check(wk)) {
                return PX_RUN_ERROR;
            }
            if (m == W->mask) {
                if (tgt < W->wait_min) {
                    W->pc = tgt;
                    continue;
                }
                for (i = 0; i < 32; i++) {
                    if (m & (1u << i)) {
                        W->lpc[i] = tgt;
                    }
                }
            } else if (m) {
                for (i = 0; i < 32; i++) {
                    if (W->mask & (1u << i)) {
                        W->lpc[i] = (m & (1u << i)) ? tgt : W->pc + 1;
                    }
                }
            } else {
                break;
            }
            px_resched(W);
            continue;
        }
        case PTX_OP_BAR:
            W->pc++;
            if (W->pc == W->wait_min) {
                px_merge(W);
            }
            return PX_RUN_BARRIER;
        case PTX_OP_SREG: {
            uint64_t *rd = R(in->d);

            LANES(rd[l] = px_sreg(wk, wi, l, (int)in->imm););
            break;
        }
        case PTX_OP_MOV: OP1(a); break;
        case PTX_OP_ADD_32: OP2(U32(a + b)); break;
        case PTX_OP_ADD_64: OP2(a + b); break;
        case PTX_OP_ADD_16: OP2((uint16_t)(a + b)); break;
        case PTX_OP_SUB_32: OP2(U32(a - b)); break;
        case PTX_OP_SUB_64: OP2(a - b); break;
        case PTX_OP_SUB_16: OP2((uint16_t)(a - b)); break;
        case PTX_OP_MUL_LO_32: OP2(U32(U32(a) * U32(b))); break;
        case PTX_OP_MUL_LO_64: OP2(a * b); break;
        case PTX_OP_MUL_LO_16: OP2((uint16_t)(U32(a) * U32(b))); break;
        case PTX_OP_MUL_HI_S32:
            OP2(U32((uint64_t)((int64_t)S32(a) * S32(b)) >> 32)); break;
        case PTX_OP_MUL_HI_U32:
            OP2(U32(((uint64_t)U32(a) * U32(b)) >> 32)); break;
        case PTX_OP_MUL_HI_S64:
            OP2((uint64_t)(((__int128)S64(a) * S64(b)) >> 64)); break;
        case PTX_OP_MUL_HI_U64:
            OP2((uint64_t)(((unsigned __int128)a * b) >> 64)); break;
        case PTX_OP_MUL_WIDE_S32:
            OP2((uint64_t)((int64_t)S32(a) * S32(b))); break;
        case PTX_OP_MUL_WIDE_U32: OP2((uint64_t)U32(a) * U32(b)); break;
        case PTX_OP_MUL_WIDE_S16:
            OP2(U32((int32_t)(int16_t)a * (int16_t)b)); break;
        case PTX_OP_MUL_WIDE_U16:
            OP2(U32((uint32_t)(uint16_t)a * (uint16_t)b)); break;
        case PTX_OP_MAD_LO_32: OP3(U32(U32(a) * U32(b) + U32(c))); break;
        case PTX_OP_MAD_LO_64: OP3(a * b + c); break;
        case PTX_OP_MAD_HI_S32:
            OP3(U32(((uint64_t)((int64_t)S32(a) * S32(b)) >> 32) + c));
            break;
        case PTX_OP_MAD_HI_U32:
            OP3(U32((((uint64_t)U32(a) * U32(b)) >> 32) + c)); break;
        case PTX_OP_MAD_WIDE_S32:
            OP3((uint64_t)((int64_t)S32(a) * S32(b)) + c); break;
        case PTX_OP_MAD_WIDE_U32: OP3((uint64_t)U32(a) * U32(b) + c); break;
        case PTX_OP_DIV_S32:
            OP2(U32(S32(b) == 0 ? -1 : (S32(a) == INT32_MIN && S32(b) == -1) ?
                    INT32_MIN : S32(a) / S32(b)));
            break;
        case PTX_OP_DIV_U32:
            OP2(U32(b) == 0 ? 0xffffffffu : U32(a) / U32(b)); break;
        case PTX_OP_DIV_S64:
            OP2((uint64_t)(b == 0 ? -1 : (S64(a) == INT64_MIN && S64(b) == -1) ?
                           INT64_MIN : S64(a) / S64(b)));
            break;
        case PTX_OP_DIV_U64: OP2(b == 0 ? UINT64_MAX : a / b); break;
        case PTX_OP_REM_S32:
            OP2(U32(S32(b) == 0 ? S32(a) : S32(b) == -1 ? 0 :
                    S32(a) % S32(b)));
            break;
        case PTX_OP_REM_U32: OP2(U32(b) == 0 ? U32(a) : U32(a) % U32(b)); break;
        case PTX_OP_REM_S64:
            OP2((uint64_t)(b == 0 ? S64(a) : S64(b) == -1 ? 0 :
                           S64(a) % S64(b)));
            break;
        case PTX_OP_REM_U64: OP2(b == 0 ? a : a % b); break;
        case PTX_OP_MIN_S32: OP2(U32(S32(a) < S32(b) ? a : b)); break;
        case PTX_OP_MIN_U32: OP2(U32(a) < U32(b) ? U32(a) : U32(b)); break;
        case PTX_OP_MIN_S64: OP2(S64(a) < S64(b) ? a : b); break;
        case PTX_OP_MIN_U64: OP2(a < b ? a : b); break;
        case PTX_OP_MAX_S32: OP2(U32(S32(a) > S32(b) ? a : b)); break;
        case PTX_OP_MAX_U32: OP2(U32(a) > U32(b) ? U32(a) : U32(b)); break;
        case PTX_OP_MAX_S64: OP2(S64(a) > S64(b) ? a : b); break;
        case PTX_OP_MAX_U64: OP2(a > b ? a : b); break;
        case PTX_OP_ABS_S32:
            OP1(U32(S32(a) < 0 ? 0u - U32(a) : U32(a))); break;
        case PTX_OP_ABS_S64: OP1(S64(a) < 0 ? 0 - a : a); break;
        case PTX_OP_NEG_S32: OP1(U32(0u - U32(a))); break;
        case PTX_OP_NEG_S64: OP1(0 - a); break;
        case PTX_OP_AND_32: OP2(U32(a & b)); break;
        case PTX_OP_AND_64: OP2(a & b); break;
        case PTX_OP_OR_32: OP2(U32(a | b)); break;
        case PTX_OP_OR_64: OP2(a | b); break;
        case PTX_OP_XOR_32: OP2(U32(a ^ b)); break;
        case PTX_OP_XOR_64: OP2(a ^ b); break;
        case PTX_OP_NOT_32: OP1(U32(~a)); break;
        case PTX_OP_NOT_64: OP1(~a); break;
        case PTX_OP_NOT_PRED: OP1(a == 0); break;
        case PTX_OP_CNOT_32: OP1(U32(a) == 0); break;
        case PTX_OP_SHL_32:
            OP2(U32(b) >= 32 ? 0 : U32(U32(a) << U32(b))); break;
        case PTX_OP_SHL_64: OP2(U32(b) >= 64 ? 0 : a << U32(b)); break;
        case PTX_OP_SHL_16:
            OP2(U32(b) >= 16 ? 0 : (uint16_t)(a << U32(b))); break;
        case PTX_OP_SHR_U32: OP2(U32(b) >= 32 ? 0 : U32(a) >> U32(b)); break;
        case PTX_OP_SHR_S32:
            OP2(U32(S32(a) >> (U32(b) >= 32 ? 31 : U32(b)))); break;
        case PTX_OP_SHR_U64: OP2(U32(b) >= 64 ? 0 : a >> U32(b)); break;
        case PTX_OP_SHR_S64:
            OP2((uint64_t)(S64(a) >> (U32(b) >= 64 ? 63 : U32(b)))); break;
        case PTX_OP_SHR_U16:
            OP2(U32(b) >= 16 ? 0 : (uint16_t)a >> U32(b)); break;
        case PTX_OP_SHR_S16:
            OP2((uint16_t)((int16_t)a >> (U32(b) >= 16 ? 15 : U32(b))));
            break;
        case PTX_OP_SHF_L:
            OP3(U32((((uint64_t)U32(b) << 32 | U32(a)) <<
                     (in->mod ? (U32(c) > 32 ? 32 : U32(c)) : (U32(c) & 31)))
                    >> 32));
            break;
        case PTX_OP_SHF_R:
            OP3(U32(((uint64_t)U32(b) << 32 | U32(a)) >>
                    (in->mod ? (U32(c) > 32 ? 32 : U32(c)) : (U32(c) & 31))));
            break;
        case PTX_OP_PRMT: {
            uint64_t *rd = R(in->d);
            const uint64_t *ra = R(in->a), *rb = R(in->b), *rc = R(in->c);

            LANES(
                uint64_t t = (uint64_t)U32(rb[l]) << 32 | U32(ra[l]);
                uint32_t sel = U32(rc[l]), res = 0;
                for (int i = 0; i < 4; i++) {
                    uint32_t sv = (sel >> (4 * i)) & 0xf;
                    uint32_t byte = (uint32_t)(t >> (8 * (sv & 7))) & 0xff;

                    if (sv & 8) {
                        byte = (byte & 0x80) ? 0xff : 0;
                    }
                    res |= byte << (8 * i);
                }
                rd[l] = res;
            );
            break;
        }
        case PTX_OP_LOP3: {
            uint64_t *rd = R(in->d);
            const uint64_t *ra = R(in->a), *rb = R(in->b), *rc = R(in->c);
            uint8_t lut = in->mod;

            LANES(
                uint32_t a = U32(ra[l]), b = U32(rb[l]), c = U32(rc[l]);
                uint32_t res = 0;
                for (int i = 0; i < 8; i++) {
                    if (lut & (1u << i)) {
                        res |= ((i & 4) ? a : ~a) & ((i & 2) ? b : ~b) &
                               ((i & 1) ? c : ~c);
                    }
                }
                rd[l] = res;
            );
            break;
        }
        case PTX_OP_POPC_32: OP1((uint32_t)__builtin_popcount(U32(a))); break;
        case PTX_OP_POPC_64: OP1((uint32_t)__builtin_popcountll(a)); break;
        case PTX_OP_CLZ_32:
            OP1(U32(a) ? (uint32_t)__builtin_clz(U32(a)) : 32u); break;
        case PTX_OP_CLZ_64:
            OP1(a ? (uint32_t)__builtin_clzll(a) : 64u); break;
        case PTX_OP_BREV_32: OP1(px_brev(U32(a), 32)); break;
        case PTX_OP_BREV_64: OP1(px_brev(a, 64)); break;
        case PTX_OP_BFE_U32: OP3(U32(px_bfe(U32(a), U32(b), U32(c), 32, 0)));
            break;
        case PTX_OP_BFE_S32: OP3(U32(px_bfe(U32(a), U32(b), U32(c), 32, 1)));
            break;
        case PTX_OP_BFE_U64: OP3(px_bfe(a, U32(b), U32(c), 64, 0)); break;
        case PTX_OP_BFE_S64: OP3(px_bfe(a, U32(b), U32(c), 64, 1)); break;
        case PTX_OP_BFI_32:
        case PTX_OP_BFI_64: {
            uint64_t *rd = R(in->d);
            const uint64_t *ra = R(in->a), *rb = R(in->b), *rc = R(in->c);
            const uint64_t *re = R(in->e);
            unsigned w = in->op == PTX_OP_BFI_32 ? 32 : 64;

            LANES(
                uint64_t v = px_bfi(ra[l], w == 32 ? U32(rb[l]) : rb[l],
                                    U32(rc[l]), U32(re[l]), w);
                rd[l] = w == 32 ? U32(v) : v;
            );
            break;
        }
        case PTX_OP_BFIND_U32:
            OP1(U32(a) ? 31u - (uint32_t)__builtin_clz(U32(a)) : 0xffffffffu);
            break;
        case PTX_OP_BFIND_S32: {
            uint64_t *rd = R(in->d);
            const uint64_t *ra = R(in->a);

            LANES(
                uint32_t v = U32(ra[l]);
                if (S32(v) < 0) {
                    v = ~v;
                }
                rd[l] = v ? 31u - (uint32_t)__builtin_clz(v) : 0xffffffffu;
            );
            break;
        }
        case PTX_OP_ADD_F32: OP2(px_fb(F(a) + F(b))); break;
        case PTX_OP_SUB_F32: OP2(px_fb(F(a) - F(b))); break;
        case PTX_OP_MUL_F32: OP2(px_fb(F(a) * F(b))); break;
        case PTX_OP_FMA_F32:
            /* The product of two floats is exact in a double. */
            OP3(px_fb((float)((double)F(a) * F(b) + F(c)))); break;
        case PTX_OP_DIV_F32: OP2(px_fb(F(a) / F(b))); break;
        case PTX_OP_MIN_F32: OP2(px_fb(fminf(F(a), F(b)))); break;
        case PTX_OP_MAX_F32: OP2(px_fb(fmaxf(F(a), F(b)))); break;
        case PTX_OP_ABS_F32: OP1(U32(a) & 0x7fffffffu); break;
        case PTX_OP_NEG_F32: OP1(U32(a) ^ 0x80000000u); break;
        case PTX_OP_SQRT_F32: OP1(px_fb(sqrtf(F(a)))); break;
        case PTX_OP_RSQRT_F32: OP1(px_fb(1.0f / sqrtf(F(a)))); break;
        case PTX_OP_RCP_F32: OP1(px_fb(1.0f / F(a))); break;
        case PTX_OP_SIN_F32: OP1(px_fb(sinf(F(a)))); break;
        case PTX_OP_COS_F32: OP1(px_fb(cosf(F(a)))); break;
        case PTX_OP_EX2_F32: OP1(px_fb(exp2f(F(a)))); break;
        case PTX_OP_LG2_F32: OP1(px_fb(log2f(F(a)))); break;
        case PTX_OP_SAT_F32:
            OP1(px_fb(isnan(F(a)) ? 0.0f : fminf(fmaxf(F(a), 0.0f), 1.0f)));
            break;
        case PTX_OP_ADD_F64: OP2(px_db(D(a) + D(b))); break;
        case PTX_OP_SUB_F64: OP2(px_db(D(a) - D(b))); break;
        case PTX_OP_MUL_F64: OP2(px_db(D(a) * D(b))); break;
        case PTX_OP_FMA_F64: OP3(px_db(fma(D(a), D(b), D(c)))); break;
        case PTX_OP_DIV_F64: OP2(px_db(D(a) / D(b))); break;
        case PTX_OP_MIN_F64: OP2(px_db(fmin(D(a), D(b)))); break;
        case PTX_OP_MAX_F64: OP2(px_db(fmax(D(a), D(b)))); break;
        case PTX_OP_ABS_F64: OP1(a & 0x7fffffffffffffffULL); break;
        case PTX_OP_NEG_F64: OP1(a ^ 0x8000000000000000ULL); break;
        case PTX_OP_SQRT_F64: OP1(px_db(sqrt(D(a)))); break;
        case PTX_OP_RSQRT_F64: OP1(px_db(1.0 / sqrt(D(a)))); break;
        case PTX_OP_RCP_F64: OP1(px_db(1.0 / D(a))); break;
        case PTX_OP_COPYSIGN_F32: OP2(px_fb(copysignf(F(b), F(a)))); break;
        case PTX_OP_COPYSIGN_F64: OP2(px_db(copysign(D(b), D(a)))); break;
        case PTX_OP_TESTP_F32:
        case PTX_OP_TESTP_F64: {
            uint64_t *rd = R(in->d);
            const uint64_t *ra = R(in->a);
            bool f32 = in->op == PTX_OP_TESTP_F32;

            LANES(
                double v = f32 ? F(ra[l]) : D(ra[l]);
                int c = f32 ? fpclassify(F(ra[l])) : fpclassify(v);
                bool t;
                switch (in->mod) {
                case 0: t = isfinite(v); break;
                case 1: t = isinf(v); break;
                case 2: t = !isnan(v); break;
                case 3: t = isnan(v); break;
                case 4: t = c == FP_NORMAL; break;
                default: t = c == FP_SUBNORMAL; break;
                }
                rd[l] = t;
            );
            break;
        }
        case PTX_OP_SETP_S32: case PTX_OP_SETP_U32: case PTX_OP_SETP_S64:
        case PTX_OP_SETP_U64: case PTX_OP_SETP_F32: case PTX_OP_SETP_F64:
        case PTX_OP_SETP_S16: case PTX_OP_SETP_U16: {
            uint64_t *rd = R(in->d), *re = R(in->e);
            const uint64_t *ra = R(in->a), *rb = R(in->b), *rc = R(in->c);
            int cmp = in->mod;

            LANES(
                uint64_t a = ra[l], b = rb[l];
                bool t;
                switch (in->op) {
                case PTX_OP_SETP_S32: t = px_cmp_s32(S32(a), S32(b), cmp); break;
                case PTX_OP_SETP_U32: t = px_cmp_u32(U32(a), U32(b), cmp); break;
                case PTX_OP_SETP_S64: t = px_cmp_s64(S64(a), S64(b), cmp); break;
                case PTX_OP_SETP_U64: t = px_cmp_u64(a, b, cmp); break;
                case PTX_OP_SETP_F32: t = px_cmp_f(F(a), F(b), cmp); break;
                case PTX_OP_SETP_F64: t = px_cmp_f(D(a), D(b), cmp); break;
                case PTX_OP_SETP_S16:
                    t = px_cmp_s32((int16_t)a, (int16_t)b, cmp); break;
                default:
                    t = px_cmp_u32((uint16_t)a, (uint16_t)b, cmp); break;
                }
                bool q = !t;
                switch (in->aux) {
                case 1: t = t && rc[l]; q = q && rc[l]; break;
                case 2: t = t || rc[l]; q = q || rc[l]; break;
                case 3: t = t != (rc[l] != 0); q = q != (rc[l] != 0); break;
                }
                rd[l] = t;
                re[l] = q;
            );
            break;
        }
        case PTX_OP_SELP: OP3(c ? a : b); break;
        case PTX_OP_SLCT_S32: OP3(S32(c) >= 0 ? a : b); break;
        case PTX_OP_SLCT_F32: OP3(F(c) >= 0.0f ? a : b); break;
        case PTX_OP_CVT: {
            uint64_t *rd = R(in->d);
            const uint64_t *ra = R(in->a);

            LANES(rd[l] = px_cvt(ra[l], in->aux, in->mod););
            break;
        }
        case PTX_OP_CVT_S64_S32: OP1((uint64_t)(int64_t)S32(a)); break;
        case PTX_OP_CVT_U64_U32: OP1(U32(a)); break;
        case PTX_OP_CVT_U32_U64: OP1(U32(a)); break;
        case PTX_OP_CVTA_TO_SHARED: OP1(U32(a - PTX_SHARED_WIN)); break;
        case PTX_OP_CVTA_SHARED: OP1(U32(a) + PTX_SHARED_WIN); break;
        case PTX_OP_CVTA_TO_LOCAL: OP1(U32(a - PTX_LOCAL_WIN)); break;
        case PTX_OP_CVTA_LOCAL: OP1(U32(a) + PTX_LOCAL_WIN); break;
        case PTX_OP_ISSPACEP: {
            uint64_t *rd = R(in->d);
            const uint64_t *ra = R(in->a);

            LANES(
                uint64_t a = ra[l];
                bool sh = a - PTX_SHARED_WIN < PTX_WIN_SIZE;
                bool lo = a - PTX_LOCAL_WIN < PTX_WIN_SIZE;
                rd[l] = in->mod == 1 ? sh : in->mod == 2 ? lo : !sh && !lo;
            );
            break;
        }
        case PTX_OP_PACK: {
            uint64_t *rd = R(in->d);
            const uint16_t src[4] = { in->a, in->b, in->c, in->e };
            unsigned esz = in->mod & 0xf, n = in->mod >> 4;

            LANES(
                uint64_t v = 0;
                for (unsigned i = 0; i < n; i++) {
                    uint64_t e = R(src[i])[l];
                    if (esz < 8) {
                        e &= (1ULL << (8 * esz)) - 1;
                    }
                    v |= e << (8 * esz * i);
                }
                rd[l] = v;
            );
            break;
        }
        case PTX_OP_UNPACK: {
            const uint64_t *ra = R(in->a);
            const uint16_t dst[4] = { in->d, in->b, in->c, in->e };
            unsigned esz = in->mod & 0xf, n = in->mod >> 4;

            LANES(
                uint64_t v = ra[l];
                for (unsigned i = 0; i < n; i++) {
                    uint64_t e = esz < 8 ?
                        (v >> (8 * esz * i)) & ((1ULL << (8 * esz)) - 1) : v;
                    if (dst[i] != PTX_SLOT_SINK) {
                        R(dst[i])[l] = e;
                    }
                }
            );
            break;
        }
        case PTX_OP_LD_GLOBAL:
            if (px_ldst(wk, W, wi, in, m, PX_SP_GLOBAL, false)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_LD_SHARED:
            if (in->mod == 2) {
                /* ld.shared.{b,u,s,f}32: the hot case, inline. */
                uint64_t *rd = R(in->d);
                const uint64_t *ra = R(in->a);
                uint32_t ss = wk->L->shared_size;
                bool bad = false;

                LANES(
                    uint32_t off = U32(ra[l] + (uint64_t)in->imm);
                    if (off <= ss && ss - off >= 4) {
                        uint32_t v;
                        memcpy(&v, wk->shared + off, 4);
                        rd[l] = v;
                    } else {
                        bad = true;
                    }
                );
                if (!bad) {
                    break;
                }
            }
            if (px_ldst(wk, W, wi, in, m, PX_SP_SHARED, false)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_LD_LOCAL:
            if (px_ldst(wk, W, wi, in, m, PX_SP_LOCAL, false)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_LD_PARAM:
            if (px_ldst(wk, W, wi, in, m, PX_SP_PARAM, false)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_LD_GENERIC:
            if (px_ldst(wk, W, wi, in, m, PX_SP_GENERIC, false)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_ST_GLOBAL:
            if (px_ldst(wk, W, wi, in, m, PX_SP_GLOBAL, true)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_ST_SHARED:
            if (px_ldst(wk, W, wi, in, m, PX_SP_SHARED, true)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_ST_LOCAL:
            if (px_ldst(wk, W, wi, in, m, PX_SP_LOCAL, true)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_ST_PARAM:
            if (px_ldst(wk, W, wi, in, m, PX_SP_PARAM, true)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_ST_GENERIC:
            if (px_ldst(wk, W, wi, in, m, PX_SP_GENERIC, true)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_TEX:
            if (px_tex(wk, W, in, m)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_TEXGRAD:
            if (px_texgrad(wk, W, in, m)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_SULD:
        case PTX_OP_SUST:
            if (px_surf(wk, W, in, m, in->op == PTX_OP_SUST)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_ATOM_GLOBAL:
            if (px_atom(wk, W, wi, in, m, PX_SP_GLOBAL)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_ATOM_SHARED:
            if (px_atom(wk, W, wi, in, m, PX_SP_SHARED)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_ATOM_GENERIC:
            if (px_atom(wk, W, wi, in, m, PX_SP_GENERIC)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_SHFL: {
            uint64_t *rd = R(in->d), *rp = R(in->e);
            const uint64_t *ra = R(in->a), *rb = R(in->b), *rc = R(in->c);
            uint32_t val[32], ok = 0;

            LANES(
                uint32_t bv = U32(rb[l]) & 31, cv = U32(rc[l]);
                uint32_t seg = (cv >> 8) & 31, clamp = cv & 31;
                int maxl = (int)((l & seg) | (clamp & ~seg));
                int minl = (int)(l & seg);
                int j;
                bool p;
                switch (in->mod) {
                case 0: j = l - (int)bv; p = j >= maxl; break;
                case 1: j = l + (int)bv; p = j <= maxl; break;
                case 2: j = l ^ (int)bv; p = j <= maxl; break;
                default: j = minl | (int)(bv & ~seg); p = j <= maxl; break;
                }
                if (!p || j < 0 || j > 31) {
                    j = l;
                }
                val[l] = U32(ra[j]);
                ok |= (uint32_t)p << l;
            );
            LANES(rd[l] = val[l]; rp[l] = (ok >> l) & 1;);
            break;
        }
        case PTX_OP_VOTE: {
            uint64_t *rd = R(in->d);
            const uint64_t *ra = R(in->a);
            uint32_t ballot = 0;
            uint64_t res;

            LANES(ballot |= (uint32_t)(ra[l] != 0) << l;);
            switch (in->mod) {
            case 0: res = ballot == m; break;
            case 1: res = ballot != 0; break;
            case 2: res = ballot == 0 || ballot == m; break;
            default: res = ballot; break;
            }
            LANES(rd[l] = res;);
            break;
        }
        case PTX_OP_PRINTF:
            if (m && px_printf(wk, W, wi, in, m)) {
                return PX_RUN_ERROR;
            }
            break;
        case PTX_OP_ACTIVEMASK: {
            uint64_t *rd = R(in->d);
            uint32_t am = W->mask;

            LANES(rd[l] = am;);
            break;
        }
        default:
            px_fail(wk, CUDA_ERROR_NOT_SUPPORTED, "kernel %s: bad opcode %u",
                    fn->name, in->op);
            return PX_RUN_ERROR;
        }
        W->pc++;
        if (W->pc >= W->wait_min) {
            px_merge(W);
        }
    }
}

/* ---- blocks and workers ----------------------------------------------- */

static int px_run_block(struct px_worker *wk, uint64_t bid)
{
    struct px_launch *L = wk->L;
    const struct ptx_func *fn = L->fn;
    const unsigned int *gd = L->a->grid;
    uint32_t w, i;
    bool all_done;

    wk->ctaid[0] = (uint32_t)(bid % gd[0]);
    wk->ctaid[1] = (uint32_t)((bid / gd[0]) % gd[1]);
    wk->ctaid[2] = (uint32_t)(bid / ((uint64_t)gd[0] * gd[1]));
    if (L->shared_size) {
        memset(wk->shared, 0, L->shared_size);
    }
    for (w = 0; w < L->nwarps; w++) {
        struct px_warp *W = &wk->warps[w];
        uint32_t n = L->nthreads - w * 32;
        uint64_t *r = W->r;

        W->live = n >= 32 ? 0xffffffffu : (1u << n) - 1;
        W->mask = W->live;
        W->pc = 0;
        W->wait_min = UINT32_MAX;
        W->nact = (uint32_t)__builtin_popcount(W->live);
        W->done = false;
        for (i = 0; i < 32; i++) {
            R(PTX_SLOT_TRUE)[i] = 1;
        }
        for (i = 0; i < fn->nconsts; i++) {
            uint64_t *s = R(fn->consts[i].slot), v = L->cinit[i];

            for (int l = 0; l < 32; l++) {
                s[l] = v;
            }
        }
    }
    do {
        all_done = true;
        for (w = 0; w < L->nwarps; w++) {
            struct px_warp *W = &wk->warps[w];

            if (W->done) {
                continue;
            }
            if (px_run_warp(wk, W, w) == PX_RUN_ERROR) {
                return PX_RUN_ERROR;
            }
            if (!W->done) {
                all_done = false;
            }
        }
        if (!px_check(wk)) {
            return PX_RUN_ERROR;
        }
    } while (!all_done);
    return PX_RUN_DONE;
}

static void *px_worker_main(void *opaque)
{
    struct px_worker *wk = opaque;
    struct px_launch *L = wk->L;
    size_t slots = (size_t)L->fn->nslots * 32;
    uint32_t w;

    wk->regs = calloc(slots * L->nwarps, sizeof(uint64_t));
    wk->shared = calloc(L->shared_size ? L->shared_size : 1, 1);
    wk->local = calloc((size_t)L->nthreads * L->fn->local_size + 1, 1);
    if (!wk->regs || !wk->shared || !wk->local) {
        px_fail(wk, CUDA_ERROR_OUT_OF_MEMORY, "out of memory");
        goto out;
    }
    for (w = 0; w < L->nwarps; w++) {
        wk->warps[w].r = wk->regs + w * slots;
    }
    wk->next_check = PX_CHECK_EVERY;
    for (;;) {
        uint64_t bid;

        if (atomic_load(&L->err) != CUDA_SUCCESS) {
            break;
        }
        bid = atomic_fetch_add(&L->next_block, 1);
        if (bid >= L->nblocks) {
            break;
        }
        if (px_run_block(wk, bid) != PX_RUN_DONE) {
            break;
        }
    }
    px_check(wk);
out:
    free(wk->regs);
    free(wk->shared);
    free(wk->local);
    return NULL;
}

static unsigned px_default_threads(void)
{
    const char *e = getenv("VGC_CPU_THREADS");
    long n;

    if (e && *e) {
        n = strtol(e, NULL, 10);
    } else {
        n = sysconf(_SC_NPROCESSORS_ONLN);
    }
    return n < 1 ? 1 : n > PX_MAX_WORKERS ? PX_MAX_WORKERS : (unsigned)n;
}

CUresult ptx_execute(struct ptx_launch_args *a)
{
    struct px_launch L;
    struct px_worker *wks;
    pthread_t tids[PX_MAX_WORKERS];
    bool started[PX_MAX_WORKERS] = { false };
    unsigned nw, i;
    uint64_t shared;
    size_t per_worker;
    CUresult rc;

    a->msg[0] = 0;
    a->thread_insns = 0;
    a->printf_out = NULL;
    a->printf_len = 0;
    a->printf_dropped = 0;
    memset(&L, 0, sizeof(L));
    L.a = a;
    L.fn = a->fn;
    L.nblocks = (uint64_t)a->grid[0] * a->grid[1] * a->grid[2];
    L.nthreads = a->block[0] * a->block[1] * a->block[2];
    L.nwarps = (L.nthreads + 31) / 32;
    if (L.nthreads == 0 || L.nthreads > 1024 || L.nblocks == 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    shared = ((uint64_t)a->fn->shared_static + 15) / 16 * 16 + a->dyn_shared;
    if (shared > CPU_SHARED_PER_BLOCK_OPTIN) {
        snprintf(a->msg, sizeof(a->msg), "kernel %s needs %llu bytes of "
                 "shared memory", a->fn->name, (unsigned long long)shared);
        return CUDA_ERROR_INVALID_VALUE;
    }
    L.shared_size = (uint32_t)shared;
    per_worker = (size_t)a->fn->nslots * 32 * 8 * L.nwarps +
                 (size_t)L.nthreads * a->fn->local_size;
    if (per_worker > PX_MAX_WORKER_MEM) {
        snprintf(a->msg, sizeof(a->msg), "kernel %s needs too many registers "
                 "or too much local memory", a->fn->name);
        return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
    }
    L.cinit = calloc(a->fn->nconsts + 1, sizeof(uint64_t));
    if (!L.cinit) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (i = 0; i < a->fn->nconsts; i++) {
        const struct ptx_const *c = &a->fn->consts[i];

        L.cinit[i] = c->global < 0 ? c->value :
                     a->global_addr[c->global] + c->value;
    }
    atomic_init(&L.next_block, 0);
    atomic_init(&L.err, CUDA_SUCCESS);
    atomic_init(&L.insns, 0);
    atomic_init(&L.tinsns, 0);
    pthread_mutex_init(&L.lock, NULL);
    nw = a->nthreads ? a->nthreads : px_default_threads();
    if (nw > PX_MAX_WORKERS) {
        nw = PX_MAX_WORKERS;
    }
    if (nw > L.nblocks) {
        nw = (unsigned)L.nblocks;
    }
    wks = calloc(nw, sizeof(*wks));
    if (!wks) {
        free(L.cinit);
        pthread_mutex_destroy(&L.lock);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (i = 0; i < nw; i++) {
        wks[i].L = &L;
    }
    for (i = 1; i < nw; i++) {
        started[i] = pthread_create(&tids[i], NULL, px_worker_main,
                                    &wks[i]) == 0;
    }
    px_worker_main(&wks[0]);
    for (i = 1; i < nw; i++) {
        if (started[i]) {
            pthread_join(tids[i], NULL);
        }
    }
    rc = (CUresult)atomic_load(&L.err);
    a->thread_insns = atomic_load(&L.tinsns);
    free(wks);
    free(L.cinit);
    pthread_mutex_destroy(&L.lock);
    return rc;
}
