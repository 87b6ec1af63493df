/*
 * ptx_parse.c - decode PTX text into the interpreter's compact form
 * (ptx_internal.h), once per module, when a launch first needs it.
 * Tokens, literals and declarations come from ptx_lex.c, the scanner
 * the load-time scan (cpu_ptx.c) reads the same text with.
 *
 * The text is untrusted.  Every token is bounded by the buffer, every
 * emitted slot index, branch target and size is checked here, and what
 * is not understood inside a function body becomes PTX_OP_UNSUPPORTED
 * (which names the instruction if it is ever executed) rather than an
 * error, so that a module with one exotic instruction on a cold path
 * still runs.  Structural damage (unbalanced braces, undefined labels or
 * registers, too many slots) fails the parse with a message.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptx_internal.h"
#include "ptx_lex.h"

#define PP_MAX_OPNDS    8
#define PP_MAX_PARTS    12
/* Mangled names run long: numba-cuda's reach 290 characters for a kernel
 * with four array arguments, its parameters' add "_param_N" (as
 * CPU_NAME_MAX in cpu_internal.h). */
#define PP_NAME_MAX     4096
#define PP_KEY_MAX      (PP_NAME_MAX + 24)  /* name + "@@<scope>" */
#define PP_MAX_CALL_ARGS 64
#define PP_MAX_INLINE   32      /* nesting of inlined calls */
#define PP_MAX_RECURSE  12      /* activations of one function inlined */

enum pp_sym_kind {
    PP_SYM_REG, PP_SYM_LABEL, PP_SYM_SHARED, PP_SYM_LOCAL, PP_SYM_PARAM,
    PP_SYM_GLOBAL, PP_SYM_CONST,
};

struct pp_sym {
    char *name;                 /* NULL: empty bucket */
    enum pp_sym_kind kind;
    uint64_t val;
};

struct pp_table {
    struct pp_sym *v;
    size_t cap, n;
};

struct pp_fixup {
    uint32_t insn;
    char *label;
};

/* A .func with a body: where its header starts in the text. */
struct pp_fdef {
    char *name;
    const char *text;           /* just after ".func" */
    uint32_t line;
};

struct pp {
    struct ptx_lex lx;
    char *err;
    size_t errlen;
    bool failed;
    bool oom;
    struct ptx_module *m;
    struct pp_table mod_syms;
    uint32_t mod_shared;        /* static shared bytes at module scope */
    /* the function being decoded */
    struct ptx_func *f;
    struct pp_table syms;
    size_t cap_code, cap_consts;
    struct pp_fixup *fix;
    size_t nfix, cap_fix;
    uint32_t cur_line;
    /* device functions, inlined at their call sites */
    struct pp_fdef *fdefs;
    size_t nfdefs;
    uint32_t scope;             /* 0: the entry; else an inlined body */
    uint32_t scope_seq;
    uint32_t nlabel_seq;
    const struct pp_fdef *inl[PP_MAX_INLINE];
    int ninl;
    uint64_t shared_off, local_off;
};

static void pp_fail(struct pp *s, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (s->failed) {
        return;
    }
    s->failed = true;
    n = snprintf(s->err, s->errlen, "line %u: ", s->lx.line);
    if (n >= 0 && (size_t)n < s->errlen) {
        va_start(ap, fmt);
        vsnprintf(s->err + n, s->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
}

static void pp_oom(struct pp *s)
{
    s->oom = true;
    pp_fail(s, "out of memory");
}

/*
 * @arr (holding @n of *@cap elements of @elem bytes) with room for one
 * more: doubled when full (to @first the first time).  NULL, the decode
 * failed, when memory ran out; @arr is then unchanged.
 */
static void *pp_grow(struct pp *s, void *arr, size_t *cap, size_t n, size_t elem, size_t first)
{
    size_t ncap;
    void *na;

    if (n < *cap) {
        return arr;
    }
    ncap = *cap ? *cap * 2 : first;
    na = realloc(arr, ncap * elem);
    if (!na) {
        pp_oom(s);
        return NULL;
    }
    *cap = ncap;
    return na;
}

/* ---- symbol tables ---------------------------------------------------- */

static uint64_t pp_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    size_t i;

    for (i = 0; i < len; i++) {
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    }
    return h;
}

static struct pp_sym *pp_lookup_in(struct pp_table *t, const char *s,
                                   size_t len)
{
    size_t i;

    if (!t->cap) {
        return NULL;
    }
    for (i = pp_hash(s, len) & (t->cap - 1); t->v[i].name;
         i = (i + 1) & (t->cap - 1)) {
        if (strlen(t->v[i].name) == len && memcmp(t->v[i].name, s, len) == 0) {
            return &t->v[i];
        }
    }
    return NULL;
}

/*
 * Names inside a function body live in its scope: the entry's names as
 * they are, an inlined device function's as "name@@<scope>", so that the
 * callee's registers and labels never meet the caller's.
 */
static size_t pp_key(const struct pp *s, char *buf, const char *name,
                     size_t len)
{
    int n;

    if (len > PP_NAME_MAX) {
        return 0;
    }
    n = s->scope ? snprintf(buf, PP_KEY_MAX, "%.*s@@%u", (int)len, name,
                            s->scope) :
                   snprintf(buf, PP_KEY_MAX, "%.*s", (int)len, name);
    return n > 0 && n < PP_KEY_MAX ? (size_t)n : 0;
}

static struct pp_sym *pp_lookup(struct pp *s, const char *name, size_t len)
{
    char key[PP_KEY_MAX];
    size_t kl = pp_key(s, key, name, len);
    struct pp_sym *y = kl ? pp_lookup_in(&s->syms, key, kl) : NULL;

    return y ? y : pp_lookup_in(&s->mod_syms, name, len);
}

/* Insert or overwrite (later declarations shadow earlier ones). */
static struct pp_sym *pp_define(struct pp *s, struct pp_table *t,
                                const char *name, size_t len,
                                enum pp_sym_kind kind, uint64_t val)
{
    struct pp_sym *y;
    size_t i;

    if (len == 0 || len >= PP_KEY_MAX) {
        pp_fail(s, "bad name");
        return NULL;
    }
    if ((t->n + 1) * 2 > t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        struct pp_sym *nv = calloc(ncap, sizeof(*nv));

        if (!nv) {
            pp_oom(s);
            return NULL;
        }
        for (i = 0; i < t->cap; i++) {
            if (t->v[i].name) {
                size_t j = pp_hash(t->v[i].name, strlen(t->v[i].name)) &
                           (ncap - 1);

                while (nv[j].name) {
                    j = (j + 1) & (ncap - 1);
                }
                nv[j] = t->v[i];
            }
        }
        free(t->v);
        t->v = nv;
        t->cap = ncap;
    }
    y = pp_lookup_in(t, name, len);
    if (!y) {
        for (i = pp_hash(name, len) & (t->cap - 1); t->v[i].name;
             i = (i + 1) & (t->cap - 1)) {
        }
        y = &t->v[i];
        y->name = strndup(name, len);
        if (!y->name) {
            pp_oom(s);
            return NULL;
        }
        t->n++;
    }
    y->kind = kind;
    y->val = val;
    return y;
}

/* Define @name in the current function scope. */
static struct pp_sym *pp_define_local(struct pp *s, const char *name,
                                      size_t len, enum pp_sym_kind kind,
                                      uint64_t val)
{
    char key[PP_KEY_MAX];
    size_t kl = pp_key(s, key, name, len);

    if (!kl) {
        pp_fail(s, "bad name");
        return NULL;
    }
    return pp_define(s, &s->syms, key, kl, kind, val);
}

static void pp_table_free(struct pp_table *t)
{
    size_t i;

    for (i = 0; i < t->cap; i++) {
        free(t->v[i].name);
    }
    free(t->v);
    memset(t, 0, sizeof(*t));
}

/* ---- skipping --------------------------------------------------------- */

static void pp_skip_block(struct pp *s)
{
    if (!ptx_lex_skip_block(&s->lx)) {
        pp_fail(s, "unbalanced braces");
    }
}

static void pp_skip_statement(struct pp *s)
{
    if (!ptx_lex_skip_statement(&s->lx)) {
        pp_fail(s, "unbalanced braces");
    }
}

/* ---- types and modifiers ---------------------------------------------- */

static int pp_type(const char *w)
{
    static const struct {
        const char *n;
        int t;
    } tab[] = {
        { "u8", PTX_T_U8 }, { "s8", PTX_T_S8 }, { "b8", PTX_T_U8 },
        { "u16", PTX_T_U16 }, { "s16", PTX_T_S16 }, { "b16", PTX_T_U16 },
        { "u32", PTX_T_U32 }, { "s32", PTX_T_S32 }, { "b32", PTX_T_U32 },
        { "u64", PTX_T_U64 }, { "s64", PTX_T_S64 }, { "b64", PTX_T_U64 },
        { "f16", PTX_T_F16 }, { "f32", PTX_T_F32 }, { "f64", PTX_T_F64 },
        { "pred", PTX_T_PRED },
    };
    size_t i;

    for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        if (strcmp(w, tab[i].n) == 0) {
            return tab[i].t;
        }
    }
    return PTX_T_NONE;
}

static unsigned pp_type_size(int t)
{
    switch (t) {
    case PTX_T_U8: case PTX_T_S8: case PTX_T_PRED:
        return 1;
    case PTX_T_U16: case PTX_T_S16: case PTX_T_F16:
        return 2;
    case PTX_T_U32: case PTX_T_S32: case PTX_T_F32:
        return 4;
    case PTX_T_U64: case PTX_T_S64: case PTX_T_F64:
        return 8;
    }
    return 0;
}

static bool pp_type_signed(int t)
{
    return t == PTX_T_S8 || t == PTX_T_S16 || t == PTX_T_S32 ||
           t == PTX_T_S64;
}

static bool pp_type_float(int t)
{
    return t == PTX_T_F16 || t == PTX_T_F32 || t == PTX_T_F64;
}

/* A mnemonic split at its dots. */
struct pp_mn {
    char buf[128];
    const char *part[PP_MAX_PARTS];
    int nparts;
    int types[4];
    int ntypes;
};

static bool pp_mn_split(struct pp_mn *mn, const struct ptx_tok *t)
{
    char *p;

    if (t->len >= sizeof(mn->buf)) {
        return false;
    }
    memcpy(mn->buf, t->s, t->len);
    mn->buf[t->len] = 0;
    mn->nparts = 0;
    mn->ntypes = 0;
    for (p = mn->buf; p;) {
        char *dot = strchr(p, '.');
        int ty;

        if (dot) {
            *dot = 0;
        }
        if (mn->nparts == PP_MAX_PARTS) {
            return false;
        }
        mn->part[mn->nparts++] = p;
        ty = mn->nparts > 1 ? pp_type(p) : PTX_T_NONE;
        if (ty != PTX_T_NONE && mn->ntypes < 4) {
            mn->types[mn->ntypes++] = ty;
        }
        p = dot ? dot + 1 : NULL;
    }
    return mn->part[0][0] != 0;
}

static bool pp_has(const struct pp_mn *mn, const char *w)
{
    int i;

    for (i = 1; i < mn->nparts; i++) {
        if (strcmp(mn->part[i], w) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- code emission ---------------------------------------------------- */

static struct ptx_insn *pp_emit(struct pp *s, int op)
{
    struct ptx_func *f = s->f;
    struct ptx_insn *in, *code;

    if (f->ncode >= PTX_MAX_CODE) {
        pp_fail(s, "function too long");
        return NULL;
    }
    code = pp_grow(s, f->code, &s->cap_code, f->ncode, sizeof(*f->code), 256);
    if (!code) {
        return NULL;
    }
    f->code = code;
    in = &f->code[f->ncode++];
    memset(in, 0, sizeof(*in));
    in->op = (uint16_t)op;
    in->d = in->a = in->b = in->c = in->e = PTX_SLOT_SINK;
    in->line = s->cur_line;
    return in;
}

static uint16_t pp_new_slot(struct pp *s)
{
    if (s->f->nslots >= PTX_MAX_SLOTS) {
        pp_fail(s, "too many registers");
        return PTX_SLOT_SINK;
    }
    return (uint16_t)s->f->nslots++;
}

static uint16_t pp_const_slot(struct pp *s, int32_t global, uint64_t value)
{
    char key[48];
    struct pp_sym *y;
    struct ptx_func *f = s->f;
    struct ptx_const *consts;
    uint16_t slot;

    snprintf(key, sizeof(key), "#%d:%llx", (int)global,
             (unsigned long long)value);
    y = pp_lookup_in(&s->syms, key, strlen(key));
    if (y) {
        return (uint16_t)y->val;
    }
    slot = pp_new_slot(s);
    if (s->failed) {
        return PTX_SLOT_SINK;
    }
    consts = pp_grow(s, f->consts, &s->cap_consts, f->nconsts, sizeof(*f->consts), 32);
    if (!consts) {
        return PTX_SLOT_SINK;
    }
    f->consts = consts;
    f->consts[f->nconsts].slot = slot;
    f->consts[f->nconsts].global = global;
    f->consts[f->nconsts].value = value;
    f->nconsts++;
    pp_define(s, &s->syms, key, strlen(key), PP_SYM_CONST, slot);
    return slot;
}

/* ---- operands --------------------------------------------------------- */

enum pp_opnd_kind {
    PP_O_NONE, PP_O_NAME, PP_O_NUM, PP_O_ADDR, PP_O_VEC,
    PP_O_TEXADDR,               /* [handle, {c0, c1, ...}]: name and vec */
};

struct pp_opnd {
    enum pp_opnd_kind kind;
    struct ptx_tok name;        /* NAME, or ADDR base (PTX_TOK_EOF: none) */
    struct ptx_tok num;         /* NUM */
    bool neg;                   /* -NUM, or !pred */
    int64_t off;                /* ADDR offset; NAME+off */
    struct ptx_tok pipe;        /* second destination after '|' */
    struct ptx_tok vec[4];
    int nvec;
};

static const struct {
    const char *name;
    int id;
} pp_sregs[] = {
    { "%tid.x", PTX_SR_TID_X }, { "%tid.y", PTX_SR_TID_Y },
    { "%tid.z", PTX_SR_TID_Z }, { "%ntid.x", PTX_SR_NTID_X },
    { "%ntid.y", PTX_SR_NTID_Y }, { "%ntid.z", PTX_SR_NTID_Z },
    { "%ctaid.x", PTX_SR_CTAID_X }, { "%ctaid.y", PTX_SR_CTAID_Y },
    { "%ctaid.z", PTX_SR_CTAID_Z }, { "%nctaid.x", PTX_SR_NCTAID_X },
    { "%nctaid.y", PTX_SR_NCTAID_Y }, { "%nctaid.z", PTX_SR_NCTAID_Z },
    { "%laneid", PTX_SR_LANEID }, { "%warpid", PTX_SR_WARPID },
    { "%nwarpid", PTX_SR_NWARPID }, { "%smid", PTX_SR_SMID },
    { "%nsmid", PTX_SR_NSMID }, { "%gridid", PTX_SR_GRIDID },
    { "%lanemask_eq", PTX_SR_LANEMASK_EQ },
    { "%lanemask_lt", PTX_SR_LANEMASK_LT },
    { "%lanemask_le", PTX_SR_LANEMASK_LE },
    { "%lanemask_gt", PTX_SR_LANEMASK_GT },
    { "%lanemask_ge", PTX_SR_LANEMASK_GE },
    { "%clock", PTX_SR_CLOCK }, { "%clock64", PTX_SR_CLOCK64 },
    { "%globaltimer", PTX_SR_GLOBALTIMER },
    { "%dynamic_smem_size", PTX_SR_DYN_SMEM },
    { "%total_smem_size", PTX_SR_TOTAL_SMEM },
    { "%tid", PTX_SR_TID_X }, { "%ntid", PTX_SR_NTID_X },
};

static int pp_sreg(const struct ptx_tok *t)
{
    size_t i;

    for (i = 0; i < sizeof(pp_sregs) / sizeof(pp_sregs[0]); i++) {
        if (ptx_tok_is(t, pp_sregs[i].name)) {
            return pp_sregs[i].id;
        }
    }
    if (t->len > 7 && memcmp(t->s, "%envreg", 7) == 0) {
        return PTX_SR_ZERO;
    }
    return -1;
}

/* Slot of a symbol's address in @space_generic (true: generic address). */
static uint16_t pp_sym_addr(struct pp *s, struct pp_sym *y, int64_t off,
                            bool generic)
{
    uint64_t base = y->val;

    switch (y->kind) {
    case PP_SYM_SHARED:
        if (base == UINT64_MAX) {
            /* Dynamic shared memory: based after the static part, which
             * is only known at the end of the function. */
            return pp_const_slot(s, -2, (uint64_t)off +
                                 (generic ? PTX_SHARED_WIN : 0));
        }
        return pp_const_slot(s, -1, base + (uint64_t)off +
                             (generic ? PTX_SHARED_WIN : 0));
    case PP_SYM_LOCAL:
        return pp_const_slot(s, -1, base + (uint64_t)off +
                             (generic ? PTX_LOCAL_WIN : 0));
    case PP_SYM_PARAM:
        return pp_const_slot(s, -1, base + (uint64_t)off);
    case PP_SYM_GLOBAL:
        return pp_const_slot(s, (int32_t)base, (uint64_t)off);
    default:
        pp_fail(s, "'%s' is not an address", y->name);
        return PTX_SLOT_SINK;
    }
}

/* A source operand as a slot; @ty is the operand's type. */
static uint16_t pp_src(struct pp *s, const struct pp_opnd *o, int ty)
{
    struct pp_sym *y;
    int sr;

    if (s->failed) {
        return PTX_SLOT_SINK;
    }
    if (o->kind == PP_O_NUM) {
        uint64_t v;

        if (pp_type_float(ty)) {
            if (!ptx_tok_float(&o->num, ty == PTX_T_F32 ? 4 : 8, o->neg, &v)) {
                pp_fail(s, "bad float literal");
                return PTX_SLOT_SINK;
            }
        } else {
            if (!ptx_tok_int(&o->num, &v)) {
                pp_fail(s, "bad integer literal");
                return PTX_SLOT_SINK;
            }
            v = o->neg ? (uint64_t)0 - v : v;
            if (pp_type_size(ty) == 4 || ty == PTX_T_PRED) {
                v = (uint32_t)v;
            }
        }
        return pp_const_slot(s, -1, v);
    }
    if (o->kind != PP_O_NAME) {
        pp_fail(s, "bad operand");
        return PTX_SLOT_SINK;
    }
    sr = pp_sreg(&o->name);
    if (sr >= 0) {
        uint16_t t = pp_new_slot(s);
        struct ptx_insn *in = pp_emit(s, PTX_OP_SREG);

        if (in) {
            in->d = t;
            in->imm = sr;
        }
        return t;
    }
    y = pp_lookup(s, o->name.s, o->name.len);
    if (!y) {
        pp_fail(s, "undefined name '%.*s'", (int)o->name.len, o->name.s);
        return PTX_SLOT_SINK;
    }
    if (y->kind == PP_SYM_REG) {
        if (o->neg) {
            /* "!%p": negate into a temporary. */
            uint16_t t = pp_new_slot(s);
            struct ptx_insn *in = pp_emit(s, PTX_OP_NOT_PRED);

            if (in) {
                in->d = t;
                in->a = (uint16_t)y->val;
            }
            return t;
        }
        return (uint16_t)y->val;
    }
    return pp_sym_addr(s, y, o->off, false);
}

static uint16_t pp_dst_tok(struct pp *s, const struct ptx_tok *t)
{
    struct pp_sym *y;

    if (s->failed) {
        return PTX_SLOT_SINK;
    }
    if (t->kind == PTX_TOK_WORD && ptx_tok_is(t, "_")) {
        return PTX_SLOT_SINK;
    }
    y = pp_lookup(s, t->s, t->len);
    if (!y || y->kind != PP_SYM_REG) {
        pp_fail(s, "destination '%.*s' is not a register", (int)t->len, t->s);
        return PTX_SLOT_SINK;
    }
    return (uint16_t)y->val;
}

static uint16_t pp_dst(struct pp *s, const struct pp_opnd *o)
{
    if (o->kind != PP_O_NAME) {
        pp_fail(s, "bad destination");
        return PTX_SLOT_SINK;
    }
    return pp_dst_tok(s, &o->name);
}

/* Address operand: base slot and offset. */
static void pp_addr(struct pp *s, const struct pp_opnd *o, bool generic,
                    uint16_t *base, int64_t *off)
{
    struct pp_sym *y;

    *base = PTX_SLOT_SINK;
    *off = 0;
    if (o->kind != PP_O_ADDR) {
        pp_fail(s, "expected an address");
        return;
    }
    if (o->name.kind == PTX_TOK_EOF) {
        *base = pp_const_slot(s, -1, 0);
        *off = o->off;
        return;
    }
    y = pp_lookup(s, o->name.s, o->name.len);
    if (!y) {
        pp_fail(s, "undefined name '%.*s'", (int)o->name.len, o->name.s);
        return;
    }
    if (y->kind == PP_SYM_REG) {
        *base = (uint16_t)y->val;
        *off = o->off;
        return;
    }
    *base = pp_sym_addr(s, y, 0, generic);
    *off = o->off;
}

static bool pp_parse_offset(struct pp *s, int64_t *off)
{
    struct ptx_tok t = ptx_lex_peek(&s->lx);
    bool neg = false;
    uint64_t v;

    if (!ptx_tok_punct(&t, '+') && !ptx_tok_punct(&t, '-')) {
        return true;
    }
    ptx_lex_next(&s->lx);
    neg = ptx_tok_punct(&t, '-');
    t = ptx_lex_next(&s->lx);
    if (ptx_tok_punct(&t, '-')) {
        neg = !neg;
        t = ptx_lex_next(&s->lx);
    }
    if (!ptx_tok_int(&t, &v)) {
        return false;
    }
    *off = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

static bool pp_parse_opnd(struct pp *s, struct pp_opnd *o)
{
    struct ptx_tok t = ptx_lex_next(&s->lx);

    memset(o, 0, sizeof(*o));
    if (ptx_tok_punct(&t, '[')) {
        o->kind = PP_O_ADDR;
        t = ptx_lex_next(&s->lx);
        if (t.kind == PTX_TOK_WORD) {
            o->name = t;
            if (!pp_parse_offset(s, &o->off)) {
                return false;
            }
            t = ptx_lex_peek(&s->lx);
            if (ptx_tok_punct(&t, ',')) {
                /* Texture and surface operands: a handle and coordinates,
                 * registers or immediates. */
                ptx_lex_next(&s->lx);
                t = ptx_lex_next(&s->lx);
                if (!ptx_tok_punct(&t, '{') || o->off) {
                    return false;
                }
                o->kind = PP_O_TEXADDR;
                for (;;) {
                    t = ptx_lex_next(&s->lx);
                    if ((t.kind != PTX_TOK_WORD && t.kind != PTX_TOK_NUM) || o->nvec == 4) {
                        return false;
                    }
                    o->vec[o->nvec++] = t;
                    t = ptx_lex_next(&s->lx);
                    if (ptx_tok_punct(&t, '}')) {
                        break;
                    }
                    if (!ptx_tok_punct(&t, ',')) {
                        return false;
                    }
                }
            }
        } else if (t.kind == PTX_TOK_NUM) {
            uint64_t v;

            if (!ptx_tok_int(&t, &v)) {
                return false;
            }
            o->off = (int64_t)v;
        } else {
            return false;
        }
        t = ptx_lex_next(&s->lx);
        return ptx_tok_punct(&t, ']');
    }
    if (ptx_tok_punct(&t, '{')) {
        o->kind = PP_O_VEC;
        for (;;) {
            t = ptx_lex_next(&s->lx);
            if (t.kind != PTX_TOK_WORD || o->nvec == 4) {
                return false;
            }
            o->vec[o->nvec++] = t;
            t = ptx_lex_next(&s->lx);
            if (ptx_tok_punct(&t, '}')) {
                return true;
            }
            if (!ptx_tok_punct(&t, ',')) {
                return false;
            }
        }
    }
    if (ptx_tok_punct(&t, '!')) {
        o->neg = true;
        t = ptx_lex_next(&s->lx);
    } else if (ptx_tok_punct(&t, '-')) {
        o->neg = true;
        t = ptx_lex_next(&s->lx);
        if (t.kind != PTX_TOK_NUM) {
            return false;
        }
    }
    if (t.kind == PTX_TOK_NUM) {
        o->kind = PP_O_NUM;
        o->num = t;
        return true;
    }
    if (t.kind != PTX_TOK_WORD) {
        return false;
    }
    o->kind = PP_O_NAME;
    o->name = t;
    t = ptx_lex_peek(&s->lx);
    if (ptx_tok_punct(&t, '|')) {
        ptx_lex_next(&s->lx);
        o->pipe = ptx_lex_next(&s->lx);
        return o->pipe.kind == PTX_TOK_WORD;
    }
    return pp_parse_offset(s, &o->off);
}

/* ---- instruction decoding --------------------------------------------- */

static int pp_cmp(const struct pp_mn *mn)
{
    static const struct {
        const char *n;
        int c;
        bool uns;               /* integer unsigned variants */
    } tab[] = {
        { "eq", PTX_CMP_EQ, 0 }, { "ne", PTX_CMP_NE, 0 },
        { "lt", PTX_CMP_LT, 0 }, { "le", PTX_CMP_LE, 0 },
        { "gt", PTX_CMP_GT, 0 }, { "ge", PTX_CMP_GE, 0 },
        { "lo", PTX_CMP_LT, 1 }, { "ls", PTX_CMP_LE, 1 },
        { "hi", PTX_CMP_GT, 1 }, { "hs", PTX_CMP_GE, 1 },
        { "equ", PTX_CMP_EQU, 0 }, { "neu", PTX_CMP_NEU, 0 },
        { "ltu", PTX_CMP_LTU, 0 }, { "leu", PTX_CMP_LEU, 0 },
        { "gtu", PTX_CMP_GTU, 0 }, { "geu", PTX_CMP_GEU, 0 },
        { "num", PTX_CMP_NUM, 0 }, { "nan", PTX_CMP_NAN, 0 },
    };
    size_t i;

    if (mn->nparts < 2) {
        return -1;
    }
    for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        if (strcmp(mn->part[1], tab[i].n) == 0) {
            return tab[i].c;
        }
    }
    return -1;
}

static int pp_rounding(const struct pp_mn *mn)
{
    static const char *const r[] = { "rn", "rz", "rm", "rp",
                                     "rni", "rzi", "rmi", "rpi" };
    int i;

    for (i = 0; i < 8; i++) {
        if (pp_has(mn, r[i])) {
            return i + 1;
        }
    }
    return 0;
}

static void pp_unsupported(struct pp *s, const struct pp_mn *mn,
                           const struct ptx_tok *t)
{
    struct ptx_func *f = s->f;
    struct ptx_insn *in;
    char **nu;
    char *name;

    (void)mn;
    nu = realloc(f->unsupported, (f->nunsupported + 1) * sizeof(*nu));
    name = strndup(t->s, t->len < 64 ? t->len : 64);
    if (!nu || !name) {
        free(name);
        if (nu) {
            f->unsupported = nu;
        }
        pp_oom(s);
        return;
    }
    f->unsupported = nu;
    f->unsupported[f->nunsupported] = name;
    in = pp_emit(s, PTX_OP_UNSUPPORTED);
    if (in) {
        in->imm = f->nunsupported;
    }
    f->nunsupported++;
}

/* Choose among ops by the instruction's type. */
struct pp_ops {
    int u32, s32, u64, s64, f32, f64, u16, s16, pred;
};

static int pp_pick(const struct pp_ops *o, int t)
{
    switch (t) {
    case PTX_T_U32: return o->u32;
    case PTX_T_S32: return o->s32;
    case PTX_T_U64: return o->u64;
    case PTX_T_S64: return o->s64;
    case PTX_T_F32: return o->f32;
    case PTX_T_F64: return o->f64;
    case PTX_T_U16: return o->u16;
    case PTX_T_S16: return o->s16;
    case PTX_T_PRED: return o->pred;
    }
    return -1;
}

#define OPS(u32, s32, u64, s64, f32, f64, u16, s16, pred) \
    (struct pp_ops){ u32, s32, u64, s64, f32, f64, u16, s16, pred }
#define N (-1)
#define P(x) PTX_OP_##x

static int pp_mem_mod(int ty, int vec)
{
    unsigned sz = pp_type_size(ty);
    int lg = sz == 8 ? 3 : sz == 4 ? 2 : sz == 2 ? 1 : 0;

    return lg | (pp_type_signed(ty) ? PTX_MEM_SIGNED : 0) |
           ((vec == 4 ? 2 : vec == 2 ? 1 : 0) << 3);
}

/* Remember that the BRA at @insn goes to the label @name of this scope. */
static bool pp_add_fixup(struct pp *s, uint32_t insn, const char *name,
                         size_t len)
{
    char key[PP_KEY_MAX];
    size_t kl = pp_key(s, key, name, len);
    struct pp_fixup *fix;

    if (!kl) {
        pp_fail(s, "bad label");
        return false;
    }
    fix = pp_grow(s, s->fix, &s->cap_fix, s->nfix, sizeof(*s->fix), 64);
    if (!fix) {
        return false;
    }
    s->fix = fix;
    s->fix[s->nfix].insn = insn;
    s->fix[s->nfix].label = strndup(key, kl);
    if (!s->fix[s->nfix].label) {
        pp_oom(s);
        return false;
    }
    s->nfix++;
    return true;
}

/* Returns false when the instruction should become PTX_OP_UNSUPPORTED. */
/*
 * Texture and surface instructions: the handle is in a, the coordinates'
 * slots are packed in imm (16 bits each, x y z), the four data slots are
 * d b c e.  @ncoord coordinates of type @cty are taken from @o's list
 * (nvcc writes four for 3D, the last one unused); a layered geometry's
 * list starts with the layer, an integer, which goes to z.
 */
static bool pp_tex_operands(struct pp *s, const struct pp_opnd *addr, unsigned ncoord,
                            bool layered, int cty, struct ptx_insn *t)
{
    struct pp_opnd h = { .kind = PP_O_NAME, .name = addr->name };
    uint64_t packed = 0;
    unsigned first = layered ? 1 : 0;

    if (addr->kind != PP_O_TEXADDR || (unsigned)addr->nvec < ncoord + first) {
        return false;
    }
    t->a = pp_src(s, &h, PTX_T_U64);
    for (unsigned i = 0; i < 3; i++) {
        uint16_t slot = PTX_SLOT_TRUE;      /* read as 1, never used */
        int k = -1, ty = cty;

        if (i < ncoord) {
            k = (int)(first + i);
        } else if (layered && i == 2) {
            k = 0;
            ty = PTX_T_S32;
        }
        if (k >= 0) {
            struct pp_opnd c = { .kind = addr->vec[k].kind == PTX_TOK_NUM ? PP_O_NUM : PP_O_NAME };

            if (c.kind == PP_O_NUM) {
                c.num = addr->vec[k];
            } else {
                c.name = addr->vec[k];
            }
            slot = pp_src(s, &c, ty);
        }
        packed |= (uint64_t)slot << (16 * i);
    }
    t->imm = (int64_t)packed;
    return true;
}

/* The data operand of a texture or surface instruction: up to 4 slots. */
static bool pp_tex_data(struct pp *s, const struct pp_opnd *o, unsigned n, bool dst, int ty,
                        struct ptx_insn *t)
{
    uint16_t sl[4] = { PTX_SLOT_SINK, PTX_SLOT_SINK, PTX_SLOT_SINK, PTX_SLOT_SINK };

    if (o->kind == PP_O_VEC) {
        if ((unsigned)o->nvec != n) {
            return false;
        }
        for (unsigned i = 0; i < n; i++) {
            struct pp_opnd e = { .kind = PP_O_NAME, .name = o->vec[i] };

            if (ptx_tok_is(&o->vec[i], "_")) {
                sl[i] = dst ? PTX_SLOT_SINK : pp_const_slot(s, -1, 0);
            } else {
                sl[i] = dst ? pp_dst_tok(s, &o->vec[i]) : pp_src(s, &e, ty);
            }
        }
    } else if (n == 1 && (o->kind == PP_O_NAME || (!dst && o->kind == PP_O_NUM))) {
        sl[0] = dst ? pp_dst(s, o) : pp_src(s, o, ty);
    } else {
        return false;
    }
    t->d = sl[0];
    t->b = sl[1];
    t->c = sl[2];
    t->e = sl[3];
    return true;
}

/* Geometry of a texture or surface mnemonic: 1, 2, 3, or 0 (cube and
 * anything else we do not model); *@layered for a1d and a2d. */
static unsigned pp_geometry(const struct pp_mn *mn, bool *layered)
{
    *layered = pp_has(mn, "a1d") || pp_has(mn, "a2d");
    return pp_has(mn, "1d") || pp_has(mn, "a1d") ? 1 :
           pp_has(mn, "2d") || pp_has(mn, "a2d") ? 2 : pp_has(mn, "3d") ? 3 : 0;
}

static bool pp_decode(struct pp *s, const struct pp_mn *mn,
                      struct pp_opnd *o, int n, uint16_t guard, bool gneg)
{
    const char *b = mn->part[0];
    int ty = mn->ntypes ? mn->types[0] : PTX_T_NONE;
    struct ptx_insn tmp = { 0 };
    struct ptx_insn *in;
    int op = -1;
    int i;

    tmp.d = tmp.a = tmp.b = tmp.c = tmp.e = PTX_SLOT_SINK;

#define NEED(k) do { if (n != (k)) return false; } while (0)
#define BIN(ops) do {                                               \
        op = pp_pick(&(ops), ty);                                   \
        NEED(3);                                                    \
        if (op < 0) return false;                                   \
        tmp.a = pp_src(s, &o[1], ty);                               \
        tmp.b = pp_src(s, &o[2], ty);                               \
        tmp.d = pp_dst(s, &o[0]);                                   \
    } while (0)
#define UN(ops) do {                                                \
        op = pp_pick(&(ops), ty);                                   \
        NEED(2);                                                    \
        if (op < 0) return false;                                   \
        tmp.a = pp_src(s, &o[1], ty);                               \
        tmp.d = pp_dst(s, &o[0]);                                   \
    } while (0)

    if (!strcmp(b, "add")) {
        BIN(OPS(P(ADD_32), P(ADD_32), P(ADD_64), P(ADD_64), P(ADD_F32),
                P(ADD_F64), P(ADD_16), P(ADD_16), N));
        if (op == P(ADD_F32) && pp_has(mn, "sat")) {
            return false;
        }
    } else if (!strcmp(b, "sub")) {
        BIN(OPS(P(SUB_32), P(SUB_32), P(SUB_64), P(SUB_64), P(SUB_F32),
                P(SUB_F64), P(SUB_16), P(SUB_16), N));
    } else if (!strcmp(b, "mul") || !strcmp(b, "mul24")) {
        if (pp_has(mn, "wide")) {
            BIN(OPS(P(MUL_WIDE_U32), P(MUL_WIDE_S32), N, N, N, N,
                    P(MUL_WIDE_U16), P(MUL_WIDE_S16), N));
        } else if (pp_has(mn, "hi")) {
            BIN(OPS(P(MUL_HI_U32), P(MUL_HI_S32), P(MUL_HI_U64),
                    P(MUL_HI_S64), N, N, N, N, N));
        } else {
            BIN(OPS(P(MUL_LO_32), P(MUL_LO_32), P(MUL_LO_64), P(MUL_LO_64),
                    P(MUL_F32), P(MUL_F64), P(MUL_LO_16), P(MUL_LO_16), N));
        }
    } else if (!strcmp(b, "mad") || !strcmp(b, "fma") || !strcmp(b, "mad24")) {
        struct pp_ops ops;

        if (pp_has(mn, "wide")) {
            ops = OPS(P(MAD_WIDE_U32), P(MAD_WIDE_S32), N, N, N, N, N, N, N);
        } else if (pp_has(mn, "hi")) {
            ops = OPS(P(MAD_HI_U32), P(MAD_HI_S32), N, N, N, N, N, N, N);
        } else {
            ops = OPS(P(MAD_LO_32), P(MAD_LO_32), P(MAD_LO_64), P(MAD_LO_64),
                      P(FMA_F32), P(FMA_F64), N, N, N);
        }
        op = pp_pick(&ops, ty);
        NEED(4);
        if (op < 0 || pp_has(mn, "sat") || pp_has(mn, "cc")) {
            return false;
        }
        tmp.a = pp_src(s, &o[1], ty);
        tmp.b = pp_src(s, &o[2], ty);
        tmp.c = pp_src(s, &o[3], (op == P(MAD_WIDE_U32) ||
                       op == P(MAD_WIDE_S32)) ? PTX_T_U64 : ty);
        tmp.d = pp_dst(s, &o[0]);
    } else if (!strcmp(b, "div")) {
        BIN(OPS(P(DIV_U32), P(DIV_S32), P(DIV_U64), P(DIV_S64), P(DIV_F32),
                P(DIV_F64), N, N, N));
    } else if (!strcmp(b, "rem")) {
        BIN(OPS(P(REM_U32), P(REM_S32), P(REM_U64), P(REM_S64), N, N, N, N,
                N));
    } else if (!strcmp(b, "min")) {
        BIN(OPS(P(MIN_U32), P(MIN_S32), P(MIN_U64), P(MIN_S64), P(MIN_F32),
                P(MIN_F64), N, N, N));
    } else if (!strcmp(b, "max")) {
        BIN(OPS(P(MAX_U32), P(MAX_S32), P(MAX_U64), P(MAX_S64), P(MAX_F32),
                P(MAX_F64), N, N, N));
    } else if (!strcmp(b, "and")) {
        BIN(OPS(P(AND_32), P(AND_32), P(AND_64), P(AND_64), N, N, P(AND_32),
                P(AND_32), P(AND_32)));
    } else if (!strcmp(b, "or")) {
        BIN(OPS(P(OR_32), P(OR_32), P(OR_64), P(OR_64), N, N, P(OR_32),
                P(OR_32), P(OR_32)));
    } else if (!strcmp(b, "xor")) {
        BIN(OPS(P(XOR_32), P(XOR_32), P(XOR_64), P(XOR_64), N, N, P(XOR_32),
                P(XOR_32), P(XOR_32)));
    } else if (!strcmp(b, "shl")) {
        op = pp_pick(&OPS(P(SHL_32), P(SHL_32), P(SHL_64), P(SHL_64), N, N,
                          P(SHL_16), P(SHL_16), N), ty);
        NEED(3);
        if (op < 0) {
            return false;
        }
        tmp.a = pp_src(s, &o[1], ty);
        tmp.b = pp_src(s, &o[2], PTX_T_U32);
        tmp.d = pp_dst(s, &o[0]);
    } else if (!strcmp(b, "shr")) {
        op = pp_pick(&OPS(P(SHR_U32), P(SHR_S32), P(SHR_U64), P(SHR_S64), N,
                          N, P(SHR_U16), P(SHR_S16), N), ty);
        NEED(3);
        if (op < 0) {
            return false;
        }
        tmp.a = pp_src(s, &o[1], ty);
        tmp.b = pp_src(s, &o[2], PTX_T_U32);
        tmp.d = pp_dst(s, &o[0]);
    } else if (!strcmp(b, "not")) {
        UN(OPS(P(NOT_32), P(NOT_32), P(NOT_64), P(NOT_64), N, N, P(NOT_32),
               P(NOT_32), P(NOT_PRED)));
    } else if (!strcmp(b, "cnot")) {
        UN(OPS(P(CNOT_32), P(CNOT_32), N, N, N, N, N, N, N));
    } else if (!strcmp(b, "neg")) {
        UN(OPS(N, P(NEG_S32), N, P(NEG_S64), P(NEG_F32), P(NEG_F64), N, N,
               N));
    } else if (!strcmp(b, "abs")) {
        UN(OPS(N, P(ABS_S32), N, P(ABS_S64), P(ABS_F32), P(ABS_F64), N, N,
               N));
    } else if (!strcmp(b, "popc")) {
        UN(OPS(P(POPC_32), N, P(POPC_64), N, N, N, N, N, N));
    } else if (!strcmp(b, "clz")) {
        UN(OPS(P(CLZ_32), N, P(CLZ_64), N, N, N, N, N, N));
    } else if (!strcmp(b, "brev")) {
        UN(OPS(P(BREV_32), N, P(BREV_64), N, N, N, N, N, N));
    } else if (!strcmp(b, "bfind")) {
        if (pp_has(mn, "shiftamt")) {
            return false;
        }
        UN(OPS(P(BFIND_U32), P(BFIND_S32), N, N, N, N, N, N, N));
    } else if (!strcmp(b, "sqrt")) {
        UN(OPS(N, N, N, N, P(SQRT_F32), P(SQRT_F64), N, N, N));
    } else if (!strcmp(b, "rsqrt")) {
        UN(OPS(N, N, N, N, P(RSQRT_F32), P(RSQRT_F64), N, N, N));
    } else if (!strcmp(b, "rcp")) {
        UN(OPS(N, N, N, N, P(RCP_F32), P(RCP_F64), N, N, N));
    } else if (!strcmp(b, "sin")) {
        UN(OPS(N, N, N, N, P(SIN_F32), N, N, N, N));
    } else if (!strcmp(b, "cos")) {
        UN(OPS(N, N, N, N, P(COS_F32), N, N, N, N));
    } else if (!strcmp(b, "ex2")) {
        UN(OPS(N, N, N, N, P(EX2_F32), N, N, N, N));
    } else if (!strcmp(b, "lg2")) {
        UN(OPS(N, N, N, N, P(LG2_F32), N, N, N, N));
    } else if (!strcmp(b, "copysign")) {
        BIN(OPS(N, N, N, N, P(COPYSIGN_F32), P(COPYSIGN_F64), N, N, N));
    } else if (!strcmp(b, "testp")) {
        static const char *const kinds[] = { "finite", "infinite", "number",
                                             "notanumber", "normal",
                                             "subnormal" };
        op = pp_pick(&OPS(N, N, N, N, P(TESTP_F32), P(TESTP_F64), N, N, N),
                     ty);
        NEED(2);
        if (op < 0) {
            return false;
        }
        tmp.mod = 0xff;
        for (i = 0; i < 6; i++) {
            if (pp_has(mn, kinds[i])) {
                tmp.mod = (uint8_t)i;
            }
        }
        if (tmp.mod == 0xff) {
            return false;
        }
        tmp.a = pp_src(s, &o[1], ty);
        tmp.d = pp_dst(s, &o[0]);
    } else if (!strcmp(b, "bfe")) {
        op = pp_pick(&OPS(P(BFE_U32), P(BFE_S32), P(BFE_U64), P(BFE_S64), N,
                          N, N, N, N), ty);
        NEED(4);
        if (op < 0) {
            return false;
        }
        tmp.a = pp_src(s, &o[1], ty);
        tmp.b = pp_src(s, &o[2], PTX_T_U32);
        tmp.c = pp_src(s, &o[3], PTX_T_U32);
        tmp.d = pp_dst(s, &o[0]);
    } else if (!strcmp(b, "bfi")) {
        op = pp_pick(&OPS(P(BFI_32), P(BFI_32), P(BFI_64), P(BFI_64), N, N,
                          N, N, N), ty);
        NEED(5);
        if (op < 0) {
            return false;
        }
        tmp.a = pp_src(s, &o[1], ty);
        tmp.b = pp_src(s, &o[2], ty);
        tmp.c = pp_src(s, &o[3], PTX_T_U32);
        tmp.e = pp_src(s, &o[4], PTX_T_U32);
        tmp.d = pp_dst(s, &o[0]);
    } else if (!strcmp(b, "shf")) {
        NEED(4);
        op = pp_has(mn, "l") ? P(SHF_L) : pp_has(mn, "r") ? P(SHF_R) : -1;
        if (op < 0) {
            return false;
        }
        tmp.mod = pp_has(mn, "clamp");
        tmp.a = pp_src(s, &o[1], PTX_T_U32);
        tmp.b = pp_src(s, &o[2], PTX_T_U32);
        tmp.c = pp_src(s, &o[3], PTX_T_U32);
        tmp.d = pp_dst(s, &o[0]);
    } else if (!strcmp(b, "prmt")) {
        NEED(4);
        if (mn->nparts != 2) {
            return false;       /* only the default mode */
        }
        op = P(PRMT);
        tmp.a = pp_src(s, &o[1], PTX_T_U32);
        tmp.b = pp_src(s, &o[2], PTX_T_U32);
        tmp.c = pp_src(s, &o[3], PTX_T_U32);
        tmp.d = pp_dst(s, &o[0]);
    } else if (!strcmp(b, "lop3")) {
        uint64_t lut;

        NEED(5);
        if (o[4].kind != PP_O_NUM || !ptx_tok_int(&o[4].num, &lut) ||
            lut > 255) {
            return false;
        }
        op = P(LOP3);
        tmp.mod = (uint8_t)lut;
        tmp.a = pp_src(s, &o[1], PTX_T_U32);
        tmp.b = pp_src(s, &o[2], PTX_T_U32);
        tmp.c = pp_src(s, &o[3], PTX_T_U32);
        tmp.d = pp_dst(s, &o[0]);
    } else if (!strcmp(b, "setp")) {
        int cmp = pp_cmp(mn);
        int boolop = pp_has(mn, "and") ? 1 : pp_has(mn, "or") ? 2 :
                     pp_has(mn, "xor") ? 3 : 0;

        op = pp_pick(&OPS(P(SETP_U32), P(SETP_S32), P(SETP_U64), P(SETP_S64),
                          P(SETP_F32), P(SETP_F64), P(SETP_U16), P(SETP_S16),
                          N), ty);
        if (op < 0 || cmp < 0 || n != (boolop ? 4 : 3)) {
            return false;
        }
        /* lo/ls/hi/hs on a signed type still compare unsigned. */
        if (!strcmp(mn->part[1], "lo") || !strcmp(mn->part[1], "ls") ||
            !strcmp(mn->part[1], "hi") || !strcmp(mn->part[1], "hs")) {
            op = op == P(SETP_S32) ? P(SETP_U32) : op == P(SETP_S64) ?
                 P(SETP_U64) : op == P(SETP_S16) ? P(SETP_U16) : op;
        }
        tmp.mod = (uint8_t)cmp;
        tmp.aux = (uint32_t)boolop;
        tmp.a = pp_src(s, &o[1], ty);
        tmp.b = pp_src(s, &o[2], ty);
        tmp.c = boolop ? pp_src(s, &o[3], PTX_T_PRED) : PTX_SLOT_TRUE;
        tmp.d = pp_dst(s, &o[0]);
        if (o[0].pipe.kind == PTX_TOK_WORD) {
            tmp.e = pp_dst_tok(s, &o[0].pipe);
        }
    } else if (!strcmp(b, "selp")) {
        NEED(4);
        op = P(SELP);
        tmp.a = pp_src(s, &o[1], ty);
        tmp.b = pp_src(s, &o[2], ty);
        tmp.c = pp_src(s, &o[3], PTX_T_PRED);
        tmp.d = pp_dst(s, &o[0]);
    } else if (!strcmp(b, "slct")) {
        NEED(4);
        if (mn->ntypes != 2) {
            return false;
        }
        op = mn->types[1] == PTX_T_F32 ? P(SLCT_F32) : P(SLCT_S32);
        tmp.a = pp_src(s, &o[1], ty);
        tmp.b = pp_src(s, &o[2], ty);
        tmp.c = pp_src(s, &o[3], mn->types[1]);
        tmp.d = pp_dst(s, &o[0]);
    } else if (!strcmp(b, "mov")) {
        NEED(2);
        if (o[0].kind == PP_O_VEC || o[1].kind == PP_O_VEC) {
            const struct pp_opnd *v = o[0].kind == PP_O_VEC ? &o[0] : &o[1];
            uint16_t sl[4] = { PTX_SLOT_SINK, PTX_SLOT_SINK, PTX_SLOT_SINK,
                               PTX_SLOT_SINK };
            unsigned esz;

            if (pp_type_size(ty) < 2 || v->nvec < 2 ||
                pp_type_size(ty) % (unsigned)v->nvec) {
                return false;
            }
            esz = pp_type_size(ty) / (unsigned)v->nvec;
            for (i = 0; i < v->nvec; i++) {
                struct pp_opnd e = { .kind = PP_O_NAME, .name = v->vec[i] };

                sl[i] = v == &o[0] ? pp_dst_tok(s, &v->vec[i]) :
                        pp_src(s, &e, PTX_T_U32);
            }
            op = v == &o[0] ? P(UNPACK) : P(PACK);
            tmp.mod = (uint8_t)(esz | (v->nvec << 4));
            if (op == P(UNPACK)) {
                tmp.a = pp_src(s, &o[1], ty);
                tmp.d = sl[0];
                tmp.b = sl[1];
                tmp.c = sl[2];
                tmp.e = sl[3];
            } else {
                tmp.d = pp_dst(s, &o[0]);
                tmp.a = sl[0];
                tmp.b = sl[1];
                tmp.c = sl[2];
                tmp.e = sl[3];
            }
        } else if (o[1].kind == PP_O_NAME && pp_sreg(&o[1].name) >= 0) {
            op = P(SREG);
            tmp.imm = pp_sreg(&o[1].name);
            tmp.d = pp_dst(s, &o[0]);
        } else {
            op = P(MOV);
            tmp.a = pp_src(s, &o[1], ty);
            tmp.d = pp_dst(s, &o[0]);
        }
    } else if (!strcmp(b, "cvt")) {
        int to, from;

        NEED(2);
        if (mn->ntypes != 2) {
            return false;
        }
        to = mn->types[0];
        from = mn->types[1];
        if (to == PTX_T_F16 || from == PTX_T_F16 || to == PTX_T_PRED ||
            from == PTX_T_PRED) {
            return false;
        }
        if (to == PTX_T_S64 && from == PTX_T_S32 && !pp_has(mn, "sat")) {
            op = P(CVT_S64_S32);
        } else if ((to == PTX_T_U64 || to == PTX_T_S64) && from == PTX_T_U32 &&
                   !pp_has(mn, "sat")) {
            op = P(CVT_U64_U32);
        } else if ((to == PTX_T_U32 || to == PTX_T_S32) &&
                   (from == PTX_T_U64 || from == PTX_T_S64) &&
                   !pp_has(mn, "sat")) {
            op = P(CVT_U32_U64);
        } else {
            op = P(CVT);
            tmp.mod = (uint8_t)pp_rounding(mn);
            tmp.aux = (uint32_t)(to | from << 8 |
                                 (pp_has(mn, "sat") ? 1u << 16 : 0) |
                                 (pp_has(mn, "ftz") ? 1u << 17 : 0));
        }
        tmp.a = pp_src(s, &o[1], from);
        tmp.d = pp_dst(s, &o[0]);
    } else if (!strcmp(b, "cvta")) {
        bool to_sp = pp_has(mn, "to");

        NEED(2);
        if (pp_has(mn, "shared")) {
            op = to_sp ? P(CVTA_TO_SHARED) : P(CVTA_SHARED);
        } else if (pp_has(mn, "local")) {
            op = to_sp ? P(CVTA_TO_LOCAL) : P(CVTA_LOCAL);
        } else if (pp_has(mn, "global") || pp_has(mn, "const")) {
            op = P(MOV);
        } else {
            return false;
        }
        tmp.a = pp_src(s, &o[1], PTX_T_U64);
        tmp.d = pp_dst(s, &o[0]);
    } else if (!strcmp(b, "ld") || !strcmp(b, "ldu") || !strcmp(b, "st")) {
        bool st = !strcmp(b, "st");
        int vec = pp_has(mn, "v4") ? 4 : pp_has(mn, "v2") ? 2 : 1;
        bool generic = false;
        const struct pp_opnd *val = st ? &o[1] : &o[0];
        uint16_t sl[4] = { PTX_SLOT_SINK, PTX_SLOT_SINK, PTX_SLOT_SINK,
                           PTX_SLOT_SINK };

        NEED(2);
        if (pp_type_size(ty) == 0 || ty == PTX_T_PRED || ty == PTX_T_F16) {
            return false;
        }
        if (pp_has(mn, "global") || pp_has(mn, "const")) {
            op = st ? P(ST_GLOBAL) : P(LD_GLOBAL);
        } else if (pp_has(mn, "shared")) {
            op = st ? P(ST_SHARED) : P(LD_SHARED);
        } else if (pp_has(mn, "local")) {
            op = st ? P(ST_LOCAL) : P(LD_LOCAL);
        } else if (pp_has(mn, "param")) {
            const struct pp_opnd *ad = st ? &o[0] : &o[1];
            struct pp_sym *y = ad->kind == PP_O_ADDR &&
                               ad->name.kind == PTX_TOK_WORD ?
                               pp_lookup(s, ad->name.s, ad->name.len) : NULL;

            /* Call-sequence and device-function parameters live in the
             * thread's local memory; only the entry's are kernel params. */
            if (s->scope || (y && y->kind == PP_SYM_LOCAL)) {
                op = st ? P(ST_LOCAL) : P(LD_LOCAL);
            } else {
                op = st ? P(ST_PARAM) : P(LD_PARAM);
            }
        } else {
            op = st ? P(ST_GENERIC) : P(LD_GENERIC);
            generic = true;
        }
        if (pp_has(mn, "shared::cluster")) {
            return false;
        }
        if (vec > 1) {
            if (val->kind != PP_O_VEC || val->nvec != vec) {
                return false;
            }
            for (i = 0; i < vec; i++) {
                struct pp_opnd e = { .kind = PP_O_NAME, .name = val->vec[i] };

                sl[i] = st ? (ptx_tok_is(&val->vec[i], "_") ? PTX_SLOT_SINK :
                              pp_src(s, &e, ty)) :
                        pp_dst_tok(s, &val->vec[i]);
            }
        } else {
            sl[0] = st ? pp_src(s, val, ty) : pp_dst(s, val);
        }
        pp_addr(s, st ? &o[0] : &o[1], generic, &tmp.a, &tmp.imm);
        tmp.mod = (uint8_t)pp_mem_mod(ty, vec);
        tmp.d = sl[0];
        tmp.b = sl[1];
        tmp.c = sl[2];
        tmp.e = sl[3];
    } else if (!strcmp(b, "atom") || !strcmp(b, "red")) {
        static const char *const kinds[] = { "add", "min", "max", "inc",
                                             "dec", "cas", "exch", "and",
                                             "or", "xor" };
        bool red = !strcmp(b, "red");
        int kind = -1, first = red ? 0 : 1;
        bool generic = false;

        for (i = 0; i < 10; i++) {
            if (pp_has(mn, kinds[i])) {
                kind = i;
            }
        }
        if (kind < 0 || pp_type_size(ty) < 4 || pp_has(mn, "v2") ||
            pp_has(mn, "v4") || (ty == PTX_T_F64 && kind != PTX_ATOM_ADD) ||
            (ty == PTX_T_F32 && kind != PTX_ATOM_ADD && kind != PTX_ATOM_EXCH &&
             kind != PTX_ATOM_MIN && kind != PTX_ATOM_MAX)) {
            return false;
        }
        if (n != first + (kind == PTX_ATOM_CAS ? 3 : 2)) {
            return false;
        }
        if (pp_has(mn, "global")) {
            op = P(ATOM_GLOBAL);
        } else if (pp_has(mn, "shared")) {
            op = P(ATOM_SHARED);
        } else {
            op = P(ATOM_GENERIC);
            generic = true;
        }
        pp_addr(s, &o[first], generic, &tmp.a, &tmp.imm);
        tmp.b = pp_src(s, &o[first + 1], ty);
        if (kind == PTX_ATOM_CAS) {
            tmp.c = pp_src(s, &o[first + 2], ty);
        }
        tmp.mod = (uint8_t)kind;
        tmp.aux = (uint32_t)ty;
        tmp.d = red ? PTX_SLOT_SINK : pp_dst(s, &o[0]);
    } else if (!strcmp(b, "bra") || !strcmp(b, "brx")) {
        if (!strcmp(b, "brx") || n != 1 || o[0].kind != PP_O_NAME) {
            return false;
        }
        op = P(BRA);
        /* the BRA emitted below */
        if (!pp_add_fixup(s, s->f->ncode, o[0].name.s, o[0].name.len)) {
            return true;
        }
    } else if (!strcmp(b, "ret") && s->scope) {
        /* Return from an inlined device function: to the end of its body. */
        op = P(BRA);
        if (!pp_add_fixup(s, s->f->ncode, "#ret", 4)) {
            return true;
        }
    } else if (!strcmp(b, "ret") || !strcmp(b, "exit")) {
        op = P(EXIT);
    } else if (!strcmp(b, "trap")) {
        op = P(TRAP);
    } else if (!strcmp(b, "bar") || !strcmp(b, "barrier")) {
        if (pp_has(mn, "warp")) {
            op = P(NOP);        /* the warp runs in lockstep */
        } else if (pp_has(mn, "red") || pp_has(mn, "arrive")) {
            return false;
        } else {
            op = P(BAR);
        }
    } else if (!strcmp(b, "membar") || !strcmp(b, "fence") ||
               !strcmp(b, "prefetch") || !strcmp(b, "prefetchu") ||
               !strcmp(b, "pmevent") || !strcmp(b, "nanosleep")) {
        op = P(NOP);
    } else if (!strcmp(b, "shfl")) {
        static const char *const modes[] = { "up", "down", "bfly", "idx" };

        if (!pp_has(mn, "sync") || n != 5) {
            return false;
        }
        op = P(SHFL);
        tmp.mod = 0xff;
        for (i = 0; i < 4; i++) {
            if (pp_has(mn, modes[i])) {
                tmp.mod = (uint8_t)i;
            }
        }
        if (tmp.mod == 0xff) {
            return false;
        }
        tmp.a = pp_src(s, &o[1], PTX_T_U32);
        tmp.b = pp_src(s, &o[2], PTX_T_U32);
        tmp.c = pp_src(s, &o[3], PTX_T_U32);
        tmp.d = pp_dst(s, &o[0]);
        if (o[0].pipe.kind == PTX_TOK_WORD) {
            tmp.e = pp_dst_tok(s, &o[0].pipe);
        }
    } else if (!strcmp(b, "vote")) {
        static const char *const modes[] = { "all", "any", "uni", "ballot" };

        op = P(VOTE);
        tmp.mod = 0xff;
        for (i = 0; i < 4; i++) {
            if (pp_has(mn, modes[i])) {
                tmp.mod = (uint8_t)i;
            }
        }
        if (tmp.mod == 0xff || n < 2 || n > 3) {
            return false;
        }
        tmp.a = pp_src(s, &o[1], PTX_T_PRED);
        tmp.d = pp_dst(s, &o[0]);
    } else if (!strcmp(b, "tex")) {
        /*
         * tex[.level|.grad].geom.v4.dtype.ctype d, [tex, {coords}]
         * [, lod | , {dPdx}, {dPdy}] (unified mode only).  The level of
         * detail goes to coordinate slot 3; tex.grad's is computed first
         * by a texgrad, which needs the texture's size.
         */
        bool layered, cube = pp_has(mn, "cube") || pp_has(mn, "acube");
        unsigned dims = pp_geometry(mn, &layered);
        int extra = pp_has(mn, "level") ? 1 : pp_has(mn, "grad") ? 2 : 0;
        uint16_t lod = PTX_SLOT_SINK;

        if (cube) {
            /* a direction x, y, z (after the cubemap's layer for acube),
             * read as 3D; the layer goes to slot 3, so no level then */
            layered = pp_has(mn, "acube");
            dims = 3;
            if ((layered && extra) || extra == 2) {
                return false;
            }
        }

        NEED(2 + extra);
        if (!dims || mn->ntypes != 2 || !pp_has(mn, "v4") || pp_has(mn, "base") ||
            (mn->types[0] != PTX_T_F32 && mn->types[0] != PTX_T_S32 &&
             mn->types[0] != PTX_T_U32) ||
            (mn->types[1] != PTX_T_F32 && mn->types[1] != PTX_T_S32) ||
            o[0].pipe.kind == PTX_TOK_WORD || (layered && dims == 3 && !cube)) {
            return false;
        }
        op = P(TEX);
        tmp.mod = (uint8_t)((cube ? PTX_TEX_CUBE : dims) |
                            (mn->types[1] == PTX_T_S32 ? PTX_TEX_INT_COORDS : 0) |
                            (layered ? PTX_TEX_LAYERED : 0) | (extra ? PTX_TEX_LOD : 0));
        tmp.aux = (uint32_t)mn->types[0];
        if ((cube && mn->types[1] != PTX_T_F32) ||
            !pp_tex_operands(s, &o[1], dims, layered && !cube, mn->types[1], &tmp) ||
            !pp_tex_data(s, &o[0], 4, true, mn->types[0], &tmp)) {
            return false;
        }
        if (cube && layered) {
            /* {layer, x, y, z}: the coordinates were taken from the start */
            struct pp_opnd lo = { .kind = o[1].vec[0].kind == PTX_TOK_NUM ? PP_O_NUM : PP_O_NAME };
            uint16_t sl[4];

            if (o[1].nvec < 4) {
                return false;
            }
            for (unsigned k = 0; k < 3; k++) {
                struct pp_opnd e = { .kind = o[1].vec[k + 1].kind == PTX_TOK_NUM ? PP_O_NUM :
                                             PP_O_NAME };

                e.name = e.num = o[1].vec[k + 1];
                sl[k] = pp_src(s, &e, PTX_T_F32);
            }
            lo.name = lo.num = o[1].vec[0];
            sl[3] = pp_src(s, &lo, PTX_T_S32);
            tmp.imm = (int64_t)((uint64_t)sl[0] | (uint64_t)sl[1] << 16 | (uint64_t)sl[2] << 32 |
                                (uint64_t)sl[3] << 48);
        }
        if (extra == 1) {
            if (o[2].kind != PP_O_NAME && o[2].kind != PP_O_NUM) {
                return false;
            }
            lod = pp_src(s, &o[2], PTX_T_F32);
        } else if (extra == 2) {
            struct ptx_insn *g;
            uint16_t gs[2][3];

            if (o[2].kind != PP_O_VEC || o[3].kind != PP_O_VEC ||
                (unsigned)o[2].nvec < dims || (unsigned)o[3].nvec < dims) {
                return false;
            }
            for (unsigned k = 0; k < 2; k++) {
                for (unsigned a = 0; a < 3; a++) {
                    struct pp_opnd e = { .kind = PP_O_NAME, .name = o[2 + k].vec[a] };

                    gs[k][a] = a < dims ? pp_src(s, &e, PTX_T_F32) : PTX_SLOT_TRUE;
                }
            }
            lod = pp_new_slot(s);
            g = s->failed ? NULL : pp_emit(s, P(TEXGRAD));
            if (g) {
                g->guard = guard;
                g->gneg = gneg;
                g->mod = (uint8_t)dims;
                g->d = lod;
                g->a = tmp.a;
                g->b = gs[0][0];
                g->c = gs[0][1];
                g->e = gs[0][2];
                g->imm = (int64_t)((uint64_t)gs[1][0] | (uint64_t)gs[1][1] << 16 |
                                   (uint64_t)gs[1][2] << 32);
            }
        }
        if (extra) {
            tmp.imm = (int64_t)(((uint64_t)tmp.imm & 0xffffffffffffull) | (uint64_t)lod << 48);
        }
    } else if (!strcmp(b, "tld4")) {
        /* tld4.comp.{2d,a2d}.v4.dtype.f32 d, [tex, {coords}]: gather */
        static const char *const comps[] = { "r", "g", "b", "a" };
        bool layered;
        unsigned dims = pp_geometry(mn, &layered);
        int comp = -1;

        for (i = 0; i < 4; i++) {
            if (pp_has(mn, comps[i])) {
                comp = i;
            }
        }
        NEED(2);
        if (dims != 2 || comp < 0 || mn->ntypes != 2 || !pp_has(mn, "v4") ||
            (mn->types[0] != PTX_T_F32 && mn->types[0] != PTX_T_S32 &&
             mn->types[0] != PTX_T_U32) || mn->types[1] != PTX_T_F32 ||
            o[0].pipe.kind == PTX_TOK_WORD) {
            return false;
        }
        op = P(TEX);
        tmp.mod = (uint8_t)(dims | comp << 2 | PTX_TEX_GATHER | (layered ? PTX_TEX_LAYERED : 0));
        tmp.aux = (uint32_t)mn->types[0];
        if (!pp_tex_operands(s, &o[1], dims, layered, mn->types[1], &tmp) ||
            !pp_tex_data(s, &o[0], 4, true, mn->types[0], &tmp)) {
            return false;
        }
    } else if (!strcmp(b, "suld") || !strcmp(b, "sust")) {
        /* su{ld,st}.b.geom{.v2,.v4}.bN.mode: byte-addressed x */
        bool st = b[2] == 's', layered;
        unsigned dims = pp_geometry(mn, &layered);
        unsigned vec = pp_has(mn, "v4") ? 4 : pp_has(mn, "v2") ? 2 : 1;
        int mode = pp_has(mn, "clamp") ? PTX_SURF_CLAMP : pp_has(mn, "zero") ? PTX_SURF_ZERO :
                   PTX_SURF_TRAP;
        unsigned esz = pp_type_size(ty);

        NEED(2);
        if (!dims || !pp_has(mn, "b") || mn->ntypes != 1 || !esz || ty == PTX_T_PRED ||
            ty == PTX_T_F16 || esz * vec > 16 || (layered && dims == 3)) {
            return false;
        }
        op = st ? P(SUST) : P(SULD);
        tmp.mod = (uint8_t)(dims | mode << 2 | (layered ? PTX_TEX_LAYERED : 0));
        tmp.aux = esz | vec << 8;
        if (!pp_tex_operands(s, &o[st ? 0 : 1], dims, layered, PTX_T_S32, &tmp) ||
            !pp_tex_data(s, &o[st ? 1 : 0], vec, !st, ty, &tmp)) {
            return false;
        }
    } else if (!strcmp(b, "activemask")) {
        NEED(1);
        op = P(ACTIVEMASK);
        tmp.d = pp_dst(s, &o[0]);
    } else if (!strcmp(b, "isspacep")) {
        NEED(2);
        op = P(ISSPACEP);
        tmp.mod = pp_has(mn, "shared") ? 1 : pp_has(mn, "local") ? 2 :
                  pp_has(mn, "global") ? 0 : 3;
        if (tmp.mod == 3) {
            return false;
        }
        tmp.a = pp_src(s, &o[1], PTX_T_U64);
        tmp.d = pp_dst(s, &o[0]);
    } else {
        return false;
    }
#undef NEED
#undef BIN
#undef UN
    if (s->failed || op < 0) {
        return s->failed;
    }
    in = pp_emit(s, op);
    if (!in) {
        return true;
    }
    tmp.op = (uint16_t)op;
    tmp.guard = guard;
    tmp.gneg = gneg;
    tmp.line = s->cur_line;
    *in = tmp;
    return true;
}

static void pp_call(struct pp *s, const struct ptx_tok *mt, uint16_t guard,
                    bool gneg);

/* One instruction; its mnemonic token has been read. */
static void pp_instruction(struct pp *s, struct ptx_tok mt, uint16_t guard,
                           bool gneg)
{
    struct pp_opnd o[PP_MAX_OPNDS];
    struct pp_mn mn;
    int n = 0;
    bool ok = true;
    const char *stmt = mt.s;

    if (mt.len >= 4 && memcmp(mt.s, "call", 4) == 0 &&
        (mt.len == 4 || mt.s[4] == '.')) {
        pp_call(s, &mt, guard, gneg);
        return;
    }
    for (;;) {
        struct ptx_tok t = ptx_lex_peek(&s->lx);

        if (ptx_tok_punct(&t, ';')) {
            ptx_lex_next(&s->lx);
            break;
        }
        if (t.kind == PTX_TOK_EOF || n == PP_MAX_OPNDS) {
            pp_fail(s, "bad instruction '%.*s'", (int)mt.len, mt.s);
            return;
        }
        if (!pp_parse_opnd(s, &o[n++])) {
            ok = false;
            pp_skip_statement(s);
            break;
        }
        t = ptx_lex_peek(&s->lx);
        if (ptx_tok_punct(&t, ',')) {
            ptx_lex_next(&s->lx);
        }
    }
    (void)stmt;
    if (!ok || !pp_mn_split(&mn, &mt) || !pp_decode(s, &mn, o, n, guard, gneg)) {
        if (!s->failed) {
            pp_unsupported(s, &mn, &mt);
        }
    }
}

/* ---- declarations ----------------------------------------------------- */

struct pp_decl {
    struct ptx_tok name;
    uint64_t size;
    uint64_t align;
    uint64_t count;             /* <N> of .reg declarations; 0 none */
    bool ok;
};

/*
 * A variable declaration after its state space (ptx_decl_parse): its
 * name, bytes and alignment.  Stops before ',' ')' or ';'.
 */
static struct pp_decl pp_declaration(struct pp *s)
{
    struct pp_decl r = { .ok = false };
    struct ptx_decl d;

    r.ok = ptx_decl_parse(&s->lx, &d) && d.named &&
           d.elems <= (1ULL << 32) && ptx_decl_layout(&d, &r.size, &r.align);
    r.name = d.name;
    r.count = d.count;
    if (d.unsized) {
        r.size = 0;
    }
    return r;
}

static bool pp_expect(struct pp *s, char c)
{
    struct ptx_tok t = ptx_lex_next(&s->lx);

    if (!ptx_tok_punct(&t, c)) {
        pp_fail(s, "expected '%c'", c);
        return false;
    }
    return true;
}

static uint64_t pp_align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static void pp_reg_decl(struct pp *s)
{
    struct ptx_decl d;
    bool ok = ptx_decl_parse(&s->lx, &d) && d.named;

    for (;;) {
        struct ptx_tok t;

        if (!ok || d.count > PTX_MAX_SLOTS || d.name.len > PP_NAME_MAX) {
            pp_fail(s, "bad .reg declaration");
            return;
        }
        if (d.count) {
            uint64_t i;
            char name[PP_NAME_MAX + 24];

            for (i = 0; i < d.count && !s->failed; i++) {
                int len = snprintf(name, sizeof(name), "%.*s%llu",
                                   (int)d.name.len, d.name.s,
                                   (unsigned long long)i);

                pp_define_local(s, name, (size_t)len, PP_SYM_REG,
                                pp_new_slot(s));
            }
        } else {
            pp_define_local(s, d.name.s, d.name.len, PP_SYM_REG,
                            pp_new_slot(s));
        }
        t = ptx_lex_next(&s->lx);
        if (ptx_tok_punct(&t, ';') || s->failed) {
            return;
        }
        /* ".reg .b32 %a, %b<2>;": the next names share the type. */
        ok = ptx_tok_punct(&t, ',') && ptx_decl_next_name(&s->lx, &d);
    }
}

/* .shared / .local inside a body, or .shared at module scope. */
static void pp_var_decl(struct pp *s, struct pp_table *t, bool shared,
                        uint64_t *offset, bool ext)
{
    struct pp_decl d = pp_declaration(s);

    if (!d.ok) {
        pp_fail(s, "bad variable declaration");
        return;
    }
    pp_expect(s, ';');
    if (ext) {
        /* Dynamic shared memory: its offset is fixed at launch (UINT64_MAX
         * marks it; the function records the real base). */
        if (t == &s->syms) {
            pp_define_local(s, d.name.s, d.name.len, PP_SYM_SHARED,
                            UINT64_MAX);
        } else {
            pp_define(s, t, d.name.s, d.name.len, PP_SYM_SHARED, UINT64_MAX);
        }
        return;
    }
    *offset = pp_align_up(*offset, d.align);
    if (d.size > (1ULL << 31) || *offset + d.size > (1ULL << 31)) {
        pp_fail(s, "variable too large");
        return;
    }
    if (t == &s->syms) {
        pp_define_local(s, d.name.s, d.name.len,
                        shared ? PP_SYM_SHARED : PP_SYM_LOCAL, *offset);
    } else {
        pp_define(s, t, d.name.s, d.name.len,
                  shared ? PP_SYM_SHARED : PP_SYM_LOCAL, *offset);
    }
    *offset += d.size;
}

/* ---- functions -------------------------------------------------------- */

static void pp_func_free(struct ptx_func *f)
{
    uint32_t i;

    free(f->name);
    free(f->code);
    free(f->consts);
    for (i = 0; i < f->nunsupported; i++) {
        free(f->unsupported[i]);
    }
    free(f->unsupported);
}

/* Fix up dynamic-shared constants once the static size is known. */
static void pp_fix_dyn_shared(struct ptx_func *f)
{
    uint32_t i;
    uint64_t base = pp_align_up(f->shared_static, 16);

    for (i = 0; i < f->nconsts; i++) {
        struct ptx_const *c = &f->consts[i];

        if (c->global == -2) {
            c->global = -1;
            c->value += base;
        }
    }
}

/* ---- function bodies and calls ----------------------------------------- */

/*
 * Statements up to the '}' that closes the body whose '{' was just read.
 * Device functions are inlined at their call sites (pp_call), so this
 * runs for the entry and, nested, for every inlined body.
 */
static void pp_body(struct pp *s)
{
    bool guard_pending = false, gneg = false;
    uint16_t guard = 0;
    size_t depth = 1;
    struct ptx_tok t;

    while (!s->failed) {
        t = ptx_lex_next(&s->lx);
        s->cur_line = t.line;
        if (t.kind == PTX_TOK_EOF) {
            pp_fail(s, "function %s not closed", s->f->name);
            return;
        }
        if (ptx_tok_punct(&t, '{')) {
            depth++;
            continue;
        }
        if (ptx_tok_punct(&t, '}')) {
            if (--depth == 0) {
                break;
            }
            continue;
        }
        if (ptx_tok_punct(&t, '@')) {
            struct ptx_tok p = ptx_lex_next(&s->lx);
            struct pp_sym *y;

            gneg = false;
            if (ptx_tok_punct(&p, '!')) {
                gneg = true;
                p = ptx_lex_next(&s->lx);
            }
            y = p.kind == PTX_TOK_WORD ? pp_lookup(s, p.s, p.len) : NULL;
            if (!y || y->kind != PP_SYM_REG) {
                pp_fail(s, "bad guard predicate");
                return;
            }
            guard = (uint16_t)y->val;
            guard_pending = true;
            continue;
        }
        if (t.kind != PTX_TOK_WORD) {
            pp_fail(s, "unexpected '%.*s'", (int)t.len, t.s);
            return;
        }
        if (t.s[0] == '.') {
            if (guard_pending) {
                pp_fail(s, "guard on a directive");
                return;
            }
            if (ptx_tok_is(&t, ".reg")) {
                pp_reg_decl(s);
            } else if (ptx_tok_is(&t, ".shared")) {
                pp_var_decl(s, &s->syms, true, &s->shared_off, false);
            } else if (ptx_tok_is(&t, ".local") || ptx_tok_is(&t, ".param")) {
                /* .param inside a body: a call sequence's argument or
                 * return value, kept in the thread's local memory. */
                pp_var_decl(s, &s->syms, false, &s->local_off, false);
            } else if (ptx_tok_is(&t, ".loc") || ptx_tok_is(&t, ".file")) {
                ptx_lex_skip_line(&s->lx);
            } else {
                /* .pragma, .callprototype ... */
                pp_skip_statement(s);
            }
            continue;
        }
        {
            struct ptx_tok nt = ptx_lex_peek(&s->lx);

            if (ptx_tok_punct(&nt, ':') && !guard_pending) {
                ptx_lex_next(&s->lx);
                pp_define_local(s, t.s, t.len, PP_SYM_LABEL, s->f->ncode);
                continue;
            }
        }
        pp_instruction(s, t, guard_pending ? guard : 0,
                       guard_pending && gneg);
        guard_pending = false;
        gneg = false;
    }
}

/* Where a call argument or return value lives, resolved in the caller. */
struct pp_carg {
    bool local;                 /* a .param of the caller: local memory */
    uint64_t off;               /* its local offset */
    uint16_t slot;              /* else: the register or constant */
    bool reg;                   /* slot is a register (may be written) */
};

static bool pp_carg_resolve(struct pp *s, const struct pp_opnd *o,
                            struct pp_carg *c)
{
    struct pp_sym *y;

    memset(c, 0, sizeof(*c));
    c->slot = PTX_SLOT_SINK;
    if (o->kind == PP_O_NUM) {
        c->slot = pp_src(s, o, PTX_T_U64);
        return !s->failed;
    }
    if (o->kind != PP_O_NAME || o->neg || o->pipe.kind == PTX_TOK_WORD) {
        return false;
    }
    y = pp_lookup(s, o->name.s, o->name.len);
    if (!y) {
        return false;
    }
    if (y->kind == PP_SYM_LOCAL) {
        c->local = true;
        c->off = y->val + (uint64_t)o->off;
        return true;
    }
    if (y->kind == PP_SYM_REG && o->off == 0) {
        c->slot = (uint16_t)y->val;
        c->reg = true;
        return true;
    }
    return false;
}

static void pp_emit_local(struct pp *s, bool st, uint64_t off, uint16_t val,
                          unsigned size)
{
    struct ptx_insn *in;
    uint16_t base = pp_const_slot(s, -1, off);

    in = pp_emit(s, st ? PTX_OP_ST_LOCAL : PTX_OP_LD_LOCAL);
    if (in) {
        in->a = base;
        in->d = val;
        in->mod = (uint8_t)pp_mem_mod(size == 8 ? PTX_T_U64 : size == 4 ?
                                      PTX_T_U32 : size == 2 ? PTX_T_U16 :
                                      PTX_T_U8, 1);
    }
}

/* The value of an argument, as a slot (loaded from local memory). */
static uint16_t pp_carg_value(struct pp *s, const struct pp_carg *c,
                              unsigned size)
{
    uint16_t t;

    if (!c->local) {
        return c->slot;
    }
    t = pp_new_slot(s);
    pp_emit_local(s, false, c->off, t, size);
    return t;
}

static const struct pp_fdef *pp_find_fdef(const struct pp *s,
                                          const struct ptx_tok *name)
{
    size_t i;

    for (i = 0; i < s->nfdefs; i++) {
        if (strlen(s->fdefs[i].name) == name->len &&
            memcmp(s->fdefs[i].name, name->s, name->len) == 0) {
            return &s->fdefs[i];
        }
    }
    return NULL;
}

static void pp_unsupported_str(struct pp *s, const char *what,
                               const struct ptx_tok *name)
{
    char buf[96];
    struct ptx_tok t;

    snprintf(buf, sizeof(buf), "%s %.*s", what,
             (int)(name->len < 64 ? name->len : 64), name->s);
    t.kind = PTX_TOK_WORD;
    t.s = buf;
    t.len = strlen(buf);
    pp_unsupported(s, NULL, &t);
}

/* Inline the body of @fd with arguments @args and results @rets. */
static void pp_inline(struct pp *s, const struct pp_fdef *fd,
                      const struct pp_carg *rets, int nret,
                      const struct pp_carg *args, int narg)
{
    struct ptx_lex save_lx = s->lx;
    uint32_t save_scope = s->scope;
    struct pp_carg rloc[PP_MAX_CALL_ARGS];
    unsigned rsize[PP_MAX_CALL_ARGS];
    int nr = 0, na = 0, i;
    struct ptx_tok t;

    s->lx.p = fd->text;
    s->lx.line = fd->line;
    s->lx.has_peek = false;
    s->scope = ++s->scope_seq;
    s->inl[s->ninl++] = fd;
    for (int pass = 0; pass < 2 && !s->failed; pass++) {
        /* pass 0: the optional return list; pass 1: the parameters */
        t = ptx_lex_peek(&s->lx);
        if (pass == 1) {
            ptx_lex_next(&s->lx);         /* the function's name */
            t = ptx_lex_peek(&s->lx);
        }
        if (!ptx_tok_punct(&t, '(')) {
            continue;
        }
        ptx_lex_next(&s->lx);
        t = ptx_lex_peek(&s->lx);
        if (ptx_tok_punct(&t, ')')) {
            ptx_lex_next(&s->lx);
            continue;
        }
        for (;;) {
            struct pp_decl d;
            const struct pp_carg *c;
            bool ret = pass == 0;
            int idx = ret ? nr : na;

            t = ptx_lex_next(&s->lx);
            if (!ptx_tok_is(&t, ".param") || idx >= PP_MAX_CALL_ARGS) {
                pp_fail(s, "bad parameter of %s", fd->name);
                break;
            }
            d = pp_declaration(s);
            if (!d.ok || d.size > 65536) {
                pp_fail(s, "bad parameter of %s", fd->name);
                break;
            }
            c = ret ? (idx < nret ? &rets[idx] : NULL) :
                      (idx < narg ? &args[idx] : NULL);
            if (c && c->local) {
                /* The caller's .param variable is the callee's. */
                pp_define_local(s, d.name.s, d.name.len, PP_SYM_LOCAL,
                                c->off);
                if (ret) {
                    rloc[idx].local = false;
                }
            } else {
                uint64_t off = pp_align_up(s->local_off, d.align);

                if (off + d.size > (1ULL << 31)) {
                    pp_fail(s, "too much local memory");
                    break;
                }
                s->local_off = off + d.size;
                pp_define_local(s, d.name.s, d.name.len, PP_SYM_LOCAL, off);
                if (ret) {
                    /* a register result: loaded after the body */
                    rloc[idx].local = c && c->reg;
                    rloc[idx].off = off;
                    rloc[idx].slot = c ? c->slot : PTX_SLOT_SINK;
                    rsize[idx] = (unsigned)d.size;
                } else if (c && (d.size == 1 || d.size == 2 || d.size == 4 ||
                                 d.size == 8)) {
                    pp_emit_local(s, true, off, c->slot, (unsigned)d.size);
                }
            }
            if (ret) {
                nr++;
            } else {
                na++;
            }
            t = ptx_lex_next(&s->lx);
            if (ptx_tok_punct(&t, ')')) {
                break;
            }
            if (!ptx_tok_punct(&t, ',')) {
                pp_fail(s, "bad parameter list of %s", fd->name);
                break;
            }
        }
    }
    /* Directives (.noreturn ...) up to the body. */
    while (!s->failed) {
        t = ptx_lex_next(&s->lx);
        if (ptx_tok_punct(&t, '{')) {
            break;
        }
        if (t.kind == PTX_TOK_EOF || ptx_tok_punct(&t, ';')) {
            pp_fail(s, "function %s has no body", fd->name);
        }
    }
    if (!s->failed) {
        pp_body(s);
    }
    if (!s->failed) {
        /* "ret" branches here. */
        pp_define_local(s, "#ret", 4, PP_SYM_LABEL, s->f->ncode);
    }
    s->ninl--;
    s->scope = save_scope;
    s->lx = save_lx;
    for (i = 0; i < nr && !s->failed; i++) {
        unsigned sz = rsize[i];

        if (rloc[i].local && (sz == 1 || sz == 2 || sz == 4 || sz == 8)) {
            pp_emit_local(s, false, rloc[i].off, rloc[i].slot, sz);
        }
    }
}

/* The vprintf system call: PRINTF with the format and argument buffer. */
static void pp_vprintf(struct pp *s, const struct pp_carg *rets, int nret,
                       const struct pp_carg *args, int narg)
{
    uint16_t fmt, ap, res;
    struct ptx_insn *in;

    fmt = narg > 0 ? pp_carg_value(s, &args[0], 8) : pp_const_slot(s, -1, 0);
    ap = narg > 1 ? pp_carg_value(s, &args[1], 8) : pp_const_slot(s, -1, 0);
    res = pp_new_slot(s);
    in = pp_emit(s, PTX_OP_PRINTF);
    if (in) {
        in->a = fmt;
        in->b = ap;
        in->d = res;
    }
    if (nret > 0) {
        if (rets[0].local) {
            pp_emit_local(s, true, rets[0].off, res, 4);
        } else if (rets[0].reg) {
            in = pp_emit(s, PTX_OP_MOV);
            if (in) {
                in->a = res;
                in->d = rets[0].slot;
            }
        }
    }
}

static bool pp_call_list(struct pp *s, struct pp_carg *v, int *n)
{
    struct ptx_tok t = ptx_lex_peek(&s->lx);

    *n = 0;
    ptx_lex_next(&s->lx);                 /* '(' */
    t = ptx_lex_peek(&s->lx);
    if (ptx_tok_punct(&t, ')')) {
        ptx_lex_next(&s->lx);
        return true;
    }
    for (;;) {
        struct pp_opnd o;

        if (*n == PP_MAX_CALL_ARGS || !pp_parse_opnd(s, &o) ||
            !pp_carg_resolve(s, &o, &v[*n])) {
            return false;
        }
        (*n)++;
        t = ptx_lex_next(&s->lx);
        if (ptx_tok_punct(&t, ')')) {
            return true;
        }
        if (!ptx_tok_punct(&t, ',')) {
            return false;
        }
    }
}

/*
 * call[.uni] [(ret),] func[, (args)][, prototype];  Direct calls to
 * device functions are inlined (with bounded recursion); vprintf becomes
 * PTX_OP_PRINTF; __assertfail traps; anything else (indirect calls,
 * malloc ...) is PTX_OP_UNSUPPORTED, failing only if it runs.
 */
static void pp_call(struct pp *s, const struct ptx_tok *mt, uint16_t guard,
                    bool gneg)
{
    struct pp_carg rets[PP_MAX_CALL_ARGS], args[PP_MAX_CALL_ARGS];
    int nret = 0, narg = 0, i, active = 0;
    struct ptx_tok t, callee;
    const struct pp_fdef *fd;
    char skip[32];
    int nskip;
    struct pp_sym *y;

    t = ptx_lex_peek(&s->lx);
    if (ptx_tok_punct(&t, '(')) {
        if (!pp_call_list(s, rets, &nret)) {
            goto bad;
        }
        t = ptx_lex_next(&s->lx);
        if (!ptx_tok_punct(&t, ',')) {
            goto bad;
        }
    }
    callee = ptx_lex_next(&s->lx);
    if (callee.kind != PTX_TOK_WORD) {
        goto bad;
    }
    t = ptx_lex_peek(&s->lx);
    if (ptx_tok_punct(&t, ',')) {
        ptx_lex_next(&s->lx);
        t = ptx_lex_peek(&s->lx);
        if (ptx_tok_punct(&t, '(')) {
            if (!pp_call_list(s, args, &narg)) {
                goto bad;
            }
            t = ptx_lex_peek(&s->lx);
            if (ptx_tok_punct(&t, ',')) {
                ptx_lex_next(&s->lx);
                ptx_lex_next(&s->lx);     /* call prototype or target list */
            }
        } else {
            ptx_lex_next(&s->lx);         /* call prototype */
        }
    }
    t = ptx_lex_next(&s->lx);
    if (!ptx_tok_punct(&t, ';')) {
        goto bad;
    }
    y = pp_lookup(s, callee.s, callee.len);
    if (y && y->kind == PP_SYM_REG) {
        pp_unsupported_str(s, "indirect call through", &callee);
        return;
    }
    /* A guarded call: branch around it where the guard is false. */
    nskip = snprintf(skip, sizeof(skip), "#call%u", ++s->nlabel_seq);
    if (guard) {
        struct ptx_insn *in;

        if (!pp_add_fixup(s, s->f->ncode, skip, (size_t)nskip)) {
            return;
        }
        in = pp_emit(s, PTX_OP_BRA);
        if (in) {
            in->guard = guard;
            in->gneg = !gneg;
        }
    }
    fd = pp_find_fdef(s, &callee);
    if (fd) {
        for (i = 0; i < s->ninl; i++) {
            active += s->inl[i] == fd;
        }
        if (s->ninl >= PP_MAX_INLINE || active >= PP_MAX_RECURSE ||
            s->f->nslots > PTX_MAX_SLOTS / 2 ||
            s->f->ncode > PTX_MAX_CODE / 2) {
            pp_unsupported_str(s, "call (nested or recursive too deeply)",
                               &callee);
        } else {
            pp_inline(s, fd, rets, nret, args, narg);
        }
    } else if (ptx_tok_is(&callee, "vprintf")) {
        pp_vprintf(s, rets, nret, args, narg);
    } else if (ptx_tok_is(&callee, "__assertfail") ||
               ptx_tok_is(&callee, "__assert_fail")) {
        pp_emit(s, PTX_OP_TRAP);
    } else {
        pp_unsupported_str(s, "call", &callee);
    }
    if (guard && !s->failed) {
        pp_define_local(s, skip, (size_t)nskip, PP_SYM_LABEL, s->f->ncode);
    }
    return;
bad:
    if (!s->failed) {
        pp_skip_statement(s);
        pp_unsupported(s, NULL, mt);
        if (!s->failed && s->f->ncode) {
            s->f->code[s->f->ncode - 1].guard = guard;
            s->f->code[s->f->ncode - 1].gneg = gneg;
        }
    }
}

static void pp_entry(struct pp *s)
{
    struct ptx_func *f, *nf;
    struct ptx_tok t;
    uint64_t param_off = 0, shared_off = s->mod_shared, local_off = 0;
    size_t i;

    nf = realloc(s->m->funcs, (s->m->nfuncs + 1) * sizeof(*nf));
    if (!nf) {
        pp_oom(s);
        return;
    }
    s->m->funcs = nf;
    f = &nf[s->m->nfuncs++];
    memset(f, 0, sizeof(*f));
    s->f = f;
    s->cap_code = s->cap_consts = 0;
    f->nslots = PTX_SLOT_FIRST;
    t = ptx_lex_next(&s->lx);
    if (t.kind != PTX_TOK_WORD || t.len > 4096) {
        pp_fail(s, "bad entry name");
        return;
    }
    f->name = strndup(t.s, t.len);
    if (!f->name) {
        pp_oom(s);
        return;
    }
    t = ptx_lex_peek(&s->lx);
    if (ptx_tok_punct(&t, '(')) {
        ptx_lex_next(&s->lx);
        t = ptx_lex_peek(&s->lx);
        if (ptx_tok_punct(&t, ')')) {
            ptx_lex_next(&s->lx);
        } else {
            for (;;) {
                struct pp_decl d;

                t = ptx_lex_next(&s->lx);
                if (!ptx_tok_is(&t, ".param")) {
                    pp_fail(s, "bad parameter");
                    return;
                }
                d = pp_declaration(s);
                if (!d.ok) {
                    pp_fail(s, "bad parameter");
                    return;
                }
                param_off = pp_align_up(param_off, d.align);
                if (param_off + d.size > 65536) {
                    pp_fail(s, "parameters too large");
                    return;
                }
                pp_define_local(s, d.name.s, d.name.len, PP_SYM_PARAM,
                          param_off);
                param_off += d.size;
                t = ptx_lex_next(&s->lx);
                if (ptx_tok_punct(&t, ')')) {
                    break;
                }
                if (!ptx_tok_punct(&t, ',')) {
                    pp_fail(s, "bad parameter list");
                    return;
                }
            }
        }
    }
    f->param_size = (uint32_t)param_off;
    /* Performance directives (.maxntid 256, 1, 1 ...) up to the body. */
    for (;;) {
        t = ptx_lex_next(&s->lx);
        if (ptx_tok_punct(&t, '{')) {
            break;
        }
        if (t.kind == PTX_TOK_EOF || ptx_tok_punct(&t, ';')) {
            /* A declaration without a body. */
            s->m->nfuncs--;
            pp_func_free(f);
            return;
        }
    }
    s->shared_off = shared_off;
    s->local_off = local_off;
    pp_body(s);
    shared_off = s->shared_off;
    local_off = s->local_off;
    if (s->failed) {
        return;
    }
    /* A final EXIT so that running off the end is well defined. */
    {
        struct ptx_insn *in = pp_emit(s, PTX_OP_EXIT);

        (void)in;
    }
    for (i = 0; i < s->nfix && !s->failed; i++) {
        struct pp_sym *y = pp_lookup_in(&s->syms, s->fix[i].label,
                                        strlen(s->fix[i].label));

        if (!y || y->kind != PP_SYM_LABEL || y->val >= f->ncode ||
            s->fix[i].insn >= f->ncode ||
            f->code[s->fix[i].insn].op != PTX_OP_BRA) {
            pp_fail(s, "undefined label '%s'", s->fix[i].label);
            break;
        }
        f->code[s->fix[i].insn].imm = (int64_t)y->val;
    }
    if (shared_off > 0xffffffffULL || local_off > 0xffffffffULL) {
        pp_fail(s, "too much shared or local memory");
    }
    f->shared_static = (uint32_t)shared_off;
    f->local_size = (uint32_t)pp_align_up(local_off, 8);
}

static void pp_end_func(struct pp *s)
{
    size_t i;

    if (s->f && !s->failed) {
        pp_fix_dyn_shared(s->f);
    }
    for (i = 0; i < s->nfix; i++) {
        free(s->fix[i].label);
    }
    s->nfix = 0;
    pp_table_free(&s->syms);
    s->f = NULL;
}

/* ---- module ----------------------------------------------------------- */

void ptx_module_free(struct ptx_module *m)
{
    size_t i;

    if (!m) {
        return;
    }
    for (i = 0; i < m->nfuncs; i++) {
        pp_func_free(&m->funcs[i]);
    }
    free(m->funcs);
    for (i = 0; i < m->nglobals; i++) {
        free(m->globals[i]);
    }
    free(m->globals);
    free(m);
}

const struct ptx_func *ptx_module_find(const struct ptx_module *m,
                                       const char *name)
{
    size_t i;

    for (i = 0; m && i < m->nfuncs; i++) {
        if (strcmp(m->funcs[i].name, name) == 0) {
            return &m->funcs[i];
        }
    }
    return NULL;
}

/* .global / .const at module scope: each name, by index, for addresses. */
static void pp_global_decl(struct pp *s)
{
    struct ptx_decl d;
    bool more = ptx_decl_parse(&s->lx, &d) && d.named;

    while (more && !s->failed) {
        struct ptx_tok t;
        size_t depth = 0;
        char **ng = realloc(s->m->globals,
                            (s->m->nglobals + 1) * sizeof(*ng));

        if (!ng) {
            pp_oom(s);
            return;
        }
        s->m->globals = ng;
        ng[s->m->nglobals] = strndup(d.name.s, d.name.len);
        if (!ng[s->m->nglobals]) {
            pp_oom(s);
            return;
        }
        pp_define(s, &s->mod_syms, d.name.s, d.name.len, PP_SYM_GLOBAL,
                  s->m->nglobals);
        s->m->nglobals++;
        /* The initialiser (cpu_ptx.c reads it), up to ',' or ';'. */
        for (;;) {
            t = ptx_lex_peek(&s->lx);
            if (t.kind == PTX_TOK_EOF ||
                (!depth && (ptx_tok_punct(&t, ',') ||
                            ptx_tok_punct(&t, ';')))) {
                break;
            }
            ptx_lex_next(&s->lx);
            depth += ptx_tok_punct(&t, '{');
            depth -= depth && ptx_tok_punct(&t, '}');
        }
        more = ptx_tok_punct(&t, ',');
        if (more) {
            ptx_lex_next(&s->lx);
            more = ptx_decl_next_name(&s->lx, &d);
        }
    }
    if (!ptx_tok_punct(&d.name, ';')) {
        pp_skip_statement(s);
    }
}

/*
 * First pass: where the bodies of the module's .func device functions
 * start, so that calls (inlined) can reach functions defined later.
 */
static void pp_scan_funcs(struct pp *s)
{
    while (!s->failed) {
        struct ptx_tok t = ptx_lex_next(&s->lx);

        if (t.kind == PTX_TOK_EOF) {
            break;
        }
        if (ptx_tok_is(&t, ".version") || ptx_tok_is(&t, ".target") ||
            ptx_tok_is(&t, ".address_size") || ptx_tok_is(&t, ".file") ||
            ptx_tok_is(&t, ".loc")) {
            ptx_lex_skip_line(&s->lx);
        } else if (ptx_tok_is(&t, ".func")) {
            const char *text = t.s + t.len;
            uint32_t line = t.line;
            struct ptx_tok name = { .kind = PTX_TOK_EOF };
            size_t paren = 0;

            for (;;) {
                t = ptx_lex_next(&s->lx);
                if (t.kind == PTX_TOK_EOF || ptx_tok_punct(&t, ';')) {
                    break;
                }
                if (ptx_tok_punct(&t, '(')) {
                    paren++;
                } else if (ptx_tok_punct(&t, ')') && paren) {
                    paren--;
                } else if (!paren && name.kind == PTX_TOK_EOF &&
                           t.kind == PTX_TOK_WORD && t.s[0] != '.') {
                    name = t;
                } else if (ptx_tok_punct(&t, '{')) {
                    struct pp_fdef *nf;

                    pp_skip_block(s);
                    if (name.kind != PTX_TOK_WORD || name.len > PP_NAME_MAX) {
                        break;
                    }
                    nf = realloc(s->fdefs, (s->nfdefs + 1) * sizeof(*nf));
                    if (!nf) {
                        pp_oom(s);
                        return;
                    }
                    s->fdefs = nf;
                    nf[s->nfdefs].name = strndup(name.s, name.len);
                    nf[s->nfdefs].text = text;
                    nf[s->nfdefs].line = line;
                    if (!nf[s->nfdefs].name) {
                        pp_oom(s);
                        return;
                    }
                    s->nfdefs++;
                    break;
                }
            }
        } else if (ptx_tok_punct(&t, ';')) {
            continue;
        } else if (t.kind == PTX_TOK_WORD && t.s[0] == '.' &&
                   !ptx_tok_is(&t, ".entry")) {
            /* .visible, .extern, .global ...: the statement goes on */
            continue;
        } else {
            pp_skip_statement(s);
        }
    }
}

CUresult ptx_module_parse(const char *text, size_t len,
                          struct ptx_module **out, char *err, size_t errlen)
{
    struct pp s = { 0 };
    bool ext = false;
    uint64_t mod_shared = 0;

    *out = NULL;
    ptx_lex_init(&s.lx, text, len);
    s.err = err;
    s.errlen = errlen;
    if (errlen) {
        err[0] = 0;
    }
    s.m = calloc(1, sizeof(*s.m));
    if (!s.m) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    pp_scan_funcs(&s);
    ptx_lex_init(&s.lx, text, len);
    while (!s.failed) {
        struct ptx_tok t = ptx_lex_next(&s.lx);

        if (t.kind == PTX_TOK_EOF) {
            break;
        }
        if (ptx_tok_is(&t, ".version") || ptx_tok_is(&t, ".target") ||
            ptx_tok_is(&t, ".address_size") || ptx_tok_is(&t, ".file") ||
            ptx_tok_is(&t, ".loc")) {
            ptx_lex_skip_line(&s.lx);
        } else if (ptx_tok_is(&t, ".visible") || ptx_tok_is(&t, ".weak") ||
                   ptx_tok_is(&t, ".common")) {
            continue;
        } else if (ptx_tok_is(&t, ".extern")) {
            ext = true;
            continue;
        } else if (ptx_tok_is(&t, ".entry")) {
            s.mod_shared = (uint32_t)mod_shared;
            pp_entry(&s);
            pp_end_func(&s);
        } else if (ptx_tok_is(&t, ".global") || ptx_tok_is(&t, ".const")) {
            pp_global_decl(&s);
        } else if (ptx_tok_is(&t, ".shared")) {
            pp_var_decl(&s, &s.mod_syms, true, &mod_shared, ext);
        } else {
            /* .func (device functions are not called yet), .section ... */
            pp_skip_statement(&s);
        }
        ext = false;
    }
    pp_table_free(&s.mod_syms);
    free(s.fix);
    for (size_t i = 0; i < s.nfdefs; i++) {
        free(s.fdefs[i].name);
    }
    free(s.fdefs);
    if (s.failed) {
        ptx_module_free(s.m);
        return s.oom ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_INVALID_PTX;
    }
    *out = s.m;
    return CUDA_SUCCESS;
}
