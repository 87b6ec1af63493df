/*
 * cpu_ptx.c - what the cpu executor reads from PTX text at load time:
 * kernel entry points with their parameter layout, and module-scope
 * .global / .const variables with their sizes and (simple) initialisers.
 *
 * Only module scope is read; function bodies are skipped as balanced
 * braces.  The text is untrusted: every token is bounded by the buffer,
 * sizes are overflow-checked, and anything not understood is skipped to
 * the end of its statement rather than trusted.  Executing PTX is a later
 * stage's job (it will parse bodies itself).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

#define CPU_PTX_MAX_PARAMS 4096

enum cpu_ptx_tok_kind {
    CPU_TOK_EOF,
    CPU_TOK_WORD,       /* identifiers and .directives */
    CPU_TOK_NUM,
    CPU_TOK_STR,
    CPU_TOK_PUNCT,
};

struct cpu_ptx_tok {
    enum cpu_ptx_tok_kind kind;
    const char *s;
    size_t len;
};

struct cpu_ptx_lex {
    const char *p;
    const char *end;
    struct cpu_ptx_tok peeked;
    bool has_peek;
};

static bool cpu_ptx_word_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == '$' || c == '%' ||
           c == '.';
}

static bool cpu_ptx_word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$' || c == '%' ||
           c == '.';
}

static void cpu_ptx_skip_space(struct cpu_ptx_lex *lx)
{
    while (lx->p < lx->end) {
        char c = *lx->p;

        if (isspace((unsigned char)c)) {
            lx->p++;
        } else if (c == '/' && lx->end - lx->p >= 2 && lx->p[1] == '/') {
            while (lx->p < lx->end && *lx->p != '\n') {
                lx->p++;
            }
        } else if (c == '/' && lx->end - lx->p >= 2 && lx->p[1] == '*') {
            lx->p += 2;
            while (lx->end - lx->p >= 2 && !(lx->p[0] == '*' && lx->p[1] == '/')) {
                lx->p++;
            }
            lx->p = lx->end - lx->p >= 2 ? lx->p + 2 : lx->end;
        } else {
            break;
        }
    }
}

static struct cpu_ptx_tok cpu_ptx_lex_one(struct cpu_ptx_lex *lx)
{
    struct cpu_ptx_tok t = { CPU_TOK_EOF, lx->p, 0 };
    const char *q;

    cpu_ptx_skip_space(lx);
    q = lx->p;
    t.s = q;
    if (q >= lx->end) {
        return t;
    }
    if (cpu_ptx_word_start(*q)) {
        t.kind = CPU_TOK_WORD;
        while (q < lx->end && cpu_ptx_word_char(*q)) {
            q++;
        }
    } else if (isdigit((unsigned char)*q)) {
        bool hex = lx->end - q >= 2 && q[0] == '0' &&
                   (q[1] == 'x' || q[1] == 'X' || q[1] == 'f' ||
                    q[1] == 'F' || q[1] == 'd' || q[1] == 'D');

        t.kind = CPU_TOK_NUM;
        while (q < lx->end && (isalnum((unsigned char)*q) || *q == '.' ||
                               *q == '_')) {
            if (!hex && (*q == 'e' || *q == 'E') && lx->end - q >= 2 &&
                (q[1] == '+' || q[1] == '-')) {
                q++;
            }
            q++;
        }
    } else if (*q == '"') {
        t.kind = CPU_TOK_STR;
        q++;
        while (q < lx->end && *q != '"') {
            q += (*q == '\\' && lx->end - q >= 2) ? 2 : 1;
        }
        if (q < lx->end) {
            q++;
        }
    } else {
        t.kind = CPU_TOK_PUNCT;
        q++;
    }
    t.len = (size_t)(q - t.s);
    lx->p = q;
    return t;
}

static struct cpu_ptx_tok cpu_ptx_next(struct cpu_ptx_lex *lx)
{
    if (lx->has_peek) {
        lx->has_peek = false;
        return lx->peeked;
    }
    return cpu_ptx_lex_one(lx);
}

static struct cpu_ptx_tok cpu_ptx_peek(struct cpu_ptx_lex *lx)
{
    if (!lx->has_peek) {
        lx->peeked = cpu_ptx_lex_one(lx);
        lx->has_peek = true;
    }
    return lx->peeked;
}

static bool cpu_ptx_is(const struct cpu_ptx_tok *t, const char *s)
{
    size_t n = strlen(s);

    return t->kind != CPU_TOK_EOF && t->kind != CPU_TOK_STR &&
           t->len == n && memcmp(t->s, s, n) == 0;
}

static bool cpu_ptx_is_punct(const struct cpu_ptx_tok *t, char c)
{
    return t->kind == CPU_TOK_PUNCT && t->s[0] == c;
}

/* Skip a balanced {...} whose '{' was just consumed. */
static void cpu_ptx_skip_block(struct cpu_ptx_lex *lx)
{
    size_t depth = 1;

    while (depth) {
        struct cpu_ptx_tok t = cpu_ptx_next(lx);

        if (t.kind == CPU_TOK_EOF) {
            return;
        }
        if (cpu_ptx_is_punct(&t, '{')) {
            depth++;
        } else if (cpu_ptx_is_punct(&t, '}')) {
            depth--;
        }
    }
}

/* Skip to the end of a statement: a ';' or a balanced block. */
static void cpu_ptx_skip_statement(struct cpu_ptx_lex *lx)
{
    for (;;) {
        struct cpu_ptx_tok t = cpu_ptx_next(lx);

        if (t.kind == CPU_TOK_EOF || cpu_ptx_is_punct(&t, ';')) {
            return;
        }
        if (cpu_ptx_is_punct(&t, '{')) {
            cpu_ptx_skip_block(lx);
            return;
        }
    }
}

/* Parse an unsigned integer literal (decimal, 0x hex, 0b binary, octal). */
static bool cpu_ptx_uint(const struct cpu_ptx_tok *t, uint64_t *out)
{
    char buf[72];
    char *end;
    size_t len = t->len;
    int base = 10;
    const char *s = buf;

    if (t->kind != CPU_TOK_NUM || len == 0 || len >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, t->s, len);
    buf[len] = 0;
    if (buf[len - 1] == 'U' || buf[len - 1] == 'u') {
        buf[--len] = 0;
    }
    if (len > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) {
        base = 16;
        s += 2;
    } else if (len > 2 && buf[0] == '0' && (buf[1] == 'b' || buf[1] == 'B')) {
        base = 2;
        s += 2;
    } else if (len > 1 && buf[0] == '0') {
        base = 8;
    }
    if (!*s) {
        return false;
    }
    *out = strtoull(s, &end, base);
    return *end == 0;
}

/* Size in bytes of a PTX fundamental type directive; 0 if not one. */
static unsigned int cpu_ptx_type_size(const struct cpu_ptx_tok *t)
{
    static const struct {
        const char *name;
        unsigned int size;
    } types[] = {
        { ".b8", 1 }, { ".u8", 1 }, { ".s8", 1 }, { ".pred", 1 },
        { ".b16", 2 }, { ".u16", 2 }, { ".s16", 2 }, { ".f16", 2 },
        { ".bf16", 2 }, { ".e4m3x2", 2 }, { ".e5m2x2", 2 },
        { ".b32", 4 }, { ".u32", 4 }, { ".s32", 4 }, { ".f32", 4 },
        { ".f16x2", 4 }, { ".bf16x2", 4 }, { ".tf32", 4 },
        { ".b64", 8 }, { ".u64", 8 }, { ".s64", 8 }, { ".f64", 8 },
        { ".b128", 16 },
    };
    size_t i;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (cpu_ptx_is(t, types[i].name)) {
            return types[i].size;
        }
    }
    return 0;
}

static char *cpu_ptx_name(const struct cpu_ptx_tok *t)
{
    char *s;

    if (t->kind != CPU_TOK_WORD || t->len == 0 || t->len > CPU_NAME_MAX ||
        t->s[0] == '.') {
        return NULL;
    }
    s = malloc(t->len + 1);
    if (s) {
        memcpy(s, t->s, t->len);
        s[t->len] = 0;
    }
    return s;
}

/* ---- entries --------------------------------------------------------- */

/*
 * Parse "( .param ... , ... )" after an entry name; '(' already consumed.
 * Lays parameters out as the launch buffer does: each at the next
 * multiple of its alignment.
 */
static CUresult cpu_ptx_params(struct cpu_ptx_lex *lx, struct cpu_kernel_desc *k)
{
    struct cpu_param *params = NULL;
    size_t n = 0, cap = 0;
    uint64_t offset = 0;
    struct cpu_ptx_tok t = cpu_ptx_next(lx);

    if (cpu_ptx_is_punct(&t, ')')) {
        k->nparams = 0;
        return CUDA_SUCCESS;
    }
    for (;;) {
        uint64_t size = 0, align = 0, count = 1, explicit_align = 0;
        bool ptr = false;

        if (!cpu_ptx_is(&t, ".param")) {
            goto bad;
        }
        for (t = cpu_ptx_next(lx); t.kind == CPU_TOK_WORD && t.s[0] == '.';
             t = cpu_ptx_next(lx)) {
            unsigned int ts = cpu_ptx_type_size(&t);

            if (ts) {
                size = ts;
            } else if (cpu_ptx_is(&t, ".ptr")) {
                ptr = true;
            } else if (cpu_ptx_is(&t, ".align")) {
                uint64_t a;

                t = cpu_ptx_next(lx);
                if (!cpu_ptx_uint(&t, &a) || a == 0 || (a & (a - 1)) ||
                    a > 4096) {
                    goto bad;
                }
                /* After .ptr, .align is the pointee's, not the param's. */
                if (!ptr) {
                    explicit_align = a;
                }
            }
            /* .global, .const, .local, .shared after .ptr: ignored */
        }
        if (t.kind != CPU_TOK_WORD || size == 0) {
            goto bad;
        }
        t = cpu_ptx_next(lx);       /* past the name */
        if (cpu_ptx_is_punct(&t, '[')) {
            t = cpu_ptx_next(lx);
            if (!cpu_ptx_uint(&t, &count) || count == 0 || count > 65536) {
                goto bad;
            }
            t = cpu_ptx_next(lx);
            if (!cpu_ptx_is_punct(&t, ']')) {
                goto bad;
            }
            t = cpu_ptx_next(lx);
        }
        align = explicit_align ? explicit_align : size;
        size *= count;
        offset = (offset + align - 1) & ~(align - 1);
        if (offset + size > UINT32_MAX || n == CPU_PTX_MAX_PARAMS) {
            goto bad;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct cpu_param *np = realloc(params, ncap * sizeof(*np));

            if (!np) {
                free(params);
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            params = np;
            cap = ncap;
        }
        params[n].offset = (uint32_t)offset;
        params[n].size = (uint32_t)size;
        n++;
        offset += size;
        if (cpu_ptx_is_punct(&t, ')')) {
            break;
        }
        if (!cpu_ptx_is_punct(&t, ',')) {
            goto bad;
        }
        t = cpu_ptx_next(lx);
    }
    k->params = params;
    k->nparams = (int)n;
    return CUDA_SUCCESS;

bad:
    free(params);
    return CUDA_ERROR_INVALID_IMAGE;
}

static CUresult cpu_ptx_push_kernel(struct cpu_image *img,
                                    struct cpu_kernel_desc *k, size_t *cap)
{
    if (img->nkernels == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct cpu_kernel_desc *v = realloc(img->kernels, ncap * sizeof(*v));

        if (!v) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        img->kernels = v;
        *cap = ncap;
    }
    img->kernels[img->nkernels++] = *k;
    return CUDA_SUCCESS;
}

/* ".entry" consumed; @extern_decl: a declaration, not a definition. */
static CUresult cpu_ptx_entry(struct cpu_ptx_lex *lx, struct cpu_image *img,
                              bool extern_decl, size_t *cap)
{
    struct cpu_kernel_desc k = { .nparams = -1 };
    struct cpu_ptx_tok t = cpu_ptx_next(lx);
    CUresult rc;

    k.name = cpu_ptx_name(&t);
    if (!k.name) {
        return t.kind == CPU_TOK_WORD ? CUDA_ERROR_OUT_OF_MEMORY
                                      : CUDA_ERROR_INVALID_IMAGE;
    }
    t = cpu_ptx_peek(lx);
    if (cpu_ptx_is_punct(&t, '(')) {
        cpu_ptx_next(lx);
        rc = cpu_ptx_params(lx, &k);
        if (rc != CUDA_SUCCESS) {
            free(k.name);
            return rc;
        }
    } else {
        k.nparams = 0;
    }
    /* Performance directives (.maxntid ...) up to the body or ';'. */
    for (;;) {
        t = cpu_ptx_next(lx);
        if (t.kind == CPU_TOK_EOF || cpu_ptx_is_punct(&t, ';')) {
            extern_decl = true;
            break;
        }
        if (cpu_ptx_is_punct(&t, '{')) {
            cpu_ptx_skip_block(lx);
            break;
        }
    }
    if (extern_decl) {
        free(k.params);
        free(k.name);
        return CUDA_SUCCESS;
    }
    rc = cpu_ptx_push_kernel(img, &k, cap);
    if (rc != CUDA_SUCCESS) {
        free(k.params);
        free(k.name);
    }
    return rc;
}

/* ---- variables ------------------------------------------------------- */

struct cpu_ptx_init {
    uint8_t *buf;
    size_t len;
    size_t cap;
    bool trivial;               /* only numeric literals seen */
};

static bool cpu_ptx_init_put(struct cpu_ptx_init *in, const void *v,
                             size_t n, uint64_t limit)
{
    if (in->len + n > limit) {
        return false;
    }
    if (in->len + n > in->cap) {
        size_t ncap = in->cap ? in->cap * 2 : 64;
        uint8_t *nb;

        while (ncap < in->len + n) {
            ncap *= 2;
        }
        nb = realloc(in->buf, ncap);
        if (!nb) {
            return false;
        }
        in->buf = nb;
        in->cap = ncap;
    }
    memcpy(in->buf + in->len, v, n);
    in->len += n;
    return true;
}

/* One numeric initialiser element, stored little-endian in @esize bytes. */
static bool cpu_ptx_init_elem(struct cpu_ptx_init *in, const struct cpu_ptx_tok *t,
                              bool neg, bool is_float, unsigned int esize,
                              uint64_t limit)
{
    uint64_t bits = 0;

    if (t->kind != CPU_TOK_NUM) {
        return false;
    }
    if (t->len == 10 && (t->s[1] == 'f' || t->s[1] == 'F') && t->s[0] == '0') {
        char buf[12];
        struct cpu_ptx_tok h = { CPU_TOK_NUM, buf, 10 };
        uint64_t v;

        memcpy(buf, "0x", 2);
        memcpy(buf + 2, t->s + 2, 8);
        if (!cpu_ptx_uint(&h, &v)) {
            return false;
        }
        if (esize == 8) {
            float f;
            double d;
            uint32_t u = (uint32_t)v;

            memcpy(&f, &u, 4);
            d = f;
            memcpy(&bits, &d, 8);
        } else {
            bits = v;
        }
        if (neg) {
            bits ^= esize == 8 ? 1ull << 63 : 1ull << 31;
        }
    } else if (t->len == 18 && (t->s[1] == 'd' || t->s[1] == 'D') &&
               t->s[0] == '0') {
        char buf[20];
        struct cpu_ptx_tok h = { CPU_TOK_NUM, buf, 18 };

        memcpy(buf, "0x", 2);
        memcpy(buf + 2, t->s + 2, 16);
        if (!cpu_ptx_uint(&h, &bits)) {
            return false;
        }
        if (esize == 4) {
            double d;
            float f;

            memcpy(&d, &bits, 8);
            f = (float)d;
            bits = 0;
            memcpy(&bits, &f, 4);
        }
        if (neg) {
            bits ^= esize == 8 ? 1ull << 63 : 1ull << 31;
        }
    } else if (is_float || memchr(t->s, '.', t->len) ||
               ((memchr(t->s, 'e', t->len) || memchr(t->s, 'E', t->len)) &&
                !(t->len > 1 && (t->s[1] == 'x' || t->s[1] == 'X')))) {
        char buf[64];
        char *end;
        double d;

        if (t->len >= sizeof(buf)) {
            return false;
        }
        memcpy(buf, t->s, t->len);
        buf[t->len] = 0;
        d = strtod(buf, &end);
        if (*end) {
            return false;
        }
        if (neg) {
            d = -d;
        }
        if (esize == 8) {
            memcpy(&bits, &d, 8);
        } else if (esize == 4) {
            float f = (float)d;

            memcpy(&bits, &f, 4);
        } else {
            return false;
        }
    } else {
        if (!cpu_ptx_uint(t, &bits)) {
            return false;
        }
        if (neg) {
            bits = (uint64_t)0 - bits;
        }
    }
    return cpu_ptx_init_put(in, &bits, esize, limit);
}

/*
 * Parse an initialiser after '=' up to (not including) the ',' or ';'
 * ending the declarator.  Non-numeric elements (addresses of symbols)
 * make it non-trivial: the variable then starts zeroed.
 */
static void cpu_ptx_initializer(struct cpu_ptx_lex *lx, struct cpu_ptx_init *in,
                                bool is_float, unsigned int esize,
                                uint64_t limit, size_t *leaves)
{
    size_t depth = 0;
    bool neg = false;

    for (;;) {
        struct cpu_ptx_tok t = cpu_ptx_peek(lx);

        if (t.kind == CPU_TOK_EOF) {
            return;
        }
        if (depth == 0 && (cpu_ptx_is_punct(&t, ';') ||
                           cpu_ptx_is_punct(&t, ','))) {
            return;
        }
        cpu_ptx_next(lx);
        if (cpu_ptx_is_punct(&t, '{')) {
            depth++;
        } else if (cpu_ptx_is_punct(&t, '}')) {
            if (depth) {
                depth--;
            }
        } else if (cpu_ptx_is_punct(&t, ',')) {
            neg = false;
        } else if (cpu_ptx_is_punct(&t, '-')) {
            neg = !neg;
        } else if (t.kind == CPU_TOK_NUM) {
            (*leaves)++;
            if (in->trivial &&
                !cpu_ptx_init_elem(in, &t, neg, is_float, esize, limit)) {
                in->trivial = false;
            }
            neg = false;
        } else {
            /* "generic(sym)" is one element, counted at "sym" */
            if (t.kind == CPU_TOK_WORD && !cpu_ptx_is(&t, "generic")) {
                (*leaves)++;
            }
            in->trivial = false;
        }
    }
}

static CUresult cpu_ptx_push_global(struct cpu_image *img,
                                    struct cpu_global_desc *g, size_t *cap)
{
    if (img->nglobals == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct cpu_global_desc *v = realloc(img->globals, ncap * sizeof(*v));

        if (!v) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        img->globals = v;
        *cap = ncap;
    }
    img->globals[img->nglobals++] = *g;
    return CUDA_SUCCESS;
}

/*
 * ".global" or ".const" consumed.  Declarators:
 *   [.align N] [.vN] .type name[dims] [= init] {, name[dims] [= init]} ;
 */
static CUresult cpu_ptx_variable(struct cpu_ptx_lex *lx, struct cpu_image *img,
                                 bool extern_decl, size_t *cap)
{
    unsigned int esize = 0, vec = 1;
    bool is_float = false;
    struct cpu_ptx_tok t;

    for (t = cpu_ptx_next(lx); t.kind == CPU_TOK_WORD && t.s[0] == '.';
         t = cpu_ptx_next(lx)) {
        unsigned int ts = cpu_ptx_type_size(&t);

        if (ts) {
            esize = ts;
            is_float = t.len >= 2 && t.s[1] == 'f';
        } else if (cpu_ptx_is(&t, ".v2")) {
            vec = 2;
        } else if (cpu_ptx_is(&t, ".v4")) {
            vec = 4;
        } else if (cpu_ptx_is(&t, ".v8")) {
            vec = 8;
        } else if (cpu_ptx_is(&t, ".align")) {
            cpu_ptx_next(lx);
        } else {
            /* .texref, .samplerref, .surfref, .attribute...: not memory */
            esize = 0;
            break;
        }
    }
    if (esize == 0 || t.kind != CPU_TOK_WORD) {
        if (!cpu_ptx_is_punct(&t, ';')) {
            cpu_ptx_skip_statement(lx);
        }
        return CUDA_SUCCESS;
    }
    for (;;) {
        struct cpu_global_desc g = { 0 };
        struct cpu_ptx_init in = { .trivial = true };
        uint64_t count = 1, size;
        bool unsized = false;
        size_t leaves = 0;
        CUresult rc;

        g.name = cpu_ptx_name(&t);
        if (!g.name) {
            return t.kind == CPU_TOK_WORD ? CUDA_ERROR_OUT_OF_MEMORY
                                          : CUDA_ERROR_INVALID_IMAGE;
        }
        for (t = cpu_ptx_next(lx); cpu_ptx_is_punct(&t, '[');
             t = cpu_ptx_next(lx)) {
            uint64_t dim;

            t = cpu_ptx_next(lx);
            if (cpu_ptx_is_punct(&t, ']')) {
                unsized = true;
                continue;
            }
            if (!cpu_ptx_uint(&t, &dim) ||
                __builtin_mul_overflow(count, dim, &count)) {
                free(g.name);
                return CUDA_ERROR_INVALID_IMAGE;
            }
            t = cpu_ptx_next(lx);
            if (!cpu_ptx_is_punct(&t, ']')) {
                free(g.name);
                return CUDA_ERROR_INVALID_IMAGE;
            }
        }
        if (__builtin_mul_overflow(count, (uint64_t)esize * vec, &size)) {
            free(g.name);
            return CUDA_ERROR_INVALID_IMAGE;
        }
        if (cpu_ptx_is_punct(&t, '=')) {
            cpu_ptx_initializer(lx, &in, is_float, esize,
                                unsized ? CPU_IMAGE_MAX : size, &leaves);
            /* "x[] = {...}": as many elements as initialisers */
            if (unsized &&
                __builtin_mul_overflow((uint64_t)leaves, (uint64_t)esize,
                                       &size)) {
                size = 0;
                in.trivial = false;
            }
            t = cpu_ptx_next(lx);
        } else if (unsized) {
            size = 0;           /* storage defined elsewhere */
        }
        if (in.trivial && in.len && in.len <= size) {
            g.init = in.buf;
            g.init_len = in.len;
        } else {
            free(in.buf);
        }
        g.size = size;
        if (extern_decl || size == 0) {
            free(g.init);
            free(g.name);
        } else {
            rc = cpu_ptx_push_global(img, &g, cap);
            if (rc != CUDA_SUCCESS) {
                free(g.init);
                free(g.name);
                return rc;
            }
        }
        if (!cpu_ptx_is_punct(&t, ',')) {
            break;
        }
        t = cpu_ptx_next(lx);
    }
    if (!cpu_ptx_is_punct(&t, ';')) {
        cpu_ptx_skip_statement(lx);
    }
    return CUDA_SUCCESS;
}

/* ---- module scope ---------------------------------------------------- */

CUresult cpu_ptx_scan(struct cpu_image *img)
{
    struct cpu_ptx_lex lx = { img->ptx, img->ptx + img->ptx_len, { 0 }, false };
    size_t kcap = 0, gcap = 0;
    bool seen_version = false;

    for (;;) {
        struct cpu_ptx_tok t = cpu_ptx_next(&lx);
        bool extern_decl = false;
        CUresult rc = CUDA_SUCCESS;

        if (t.kind == CPU_TOK_EOF) {
            break;
        }
        if (cpu_ptx_is_punct(&t, '{')) {
            cpu_ptx_skip_block(&lx);
            continue;
        }
        if (t.kind != CPU_TOK_WORD || t.s[0] != '.') {
            cpu_ptx_skip_statement(&lx);
            continue;
        }
        /* Linkage qualifiers come first. */
        while (cpu_ptx_is(&t, ".visible") || cpu_ptx_is(&t, ".extern") ||
               cpu_ptx_is(&t, ".weak") || cpu_ptx_is(&t, ".common")) {
            extern_decl |= cpu_ptx_is(&t, ".extern");
            t = cpu_ptx_next(&lx);
        }
        if (cpu_ptx_is(&t, ".version")) {
            seen_version = true;
            cpu_ptx_next(&lx);
        } else if (cpu_ptx_is(&t, ".target")) {
            uint64_t arch;
            struct cpu_ptx_tok a = cpu_ptx_next(&lx);

            if (a.kind == CPU_TOK_WORD && a.len > 3 &&
                memcmp(a.s, "sm_", 3) == 0) {
                struct cpu_ptx_tok n = { CPU_TOK_NUM, a.s + 3, a.len - 3 };

                while (n.len && !isdigit((unsigned char)n.s[n.len - 1])) {
                    n.len--;    /* sm_90a */
                }
                if (cpu_ptx_uint(&n, &arch) && arch < 10000) {
                    img->ptx_arch = (int)arch;
                }
            }
            /* ", texmode_independent" and the like */
            while (t = cpu_ptx_peek(&lx), cpu_ptx_is_punct(&t, ',')) {
                cpu_ptx_next(&lx);
                cpu_ptx_next(&lx);
            }
        } else if (cpu_ptx_is(&t, ".address_size")) {
            cpu_ptx_next(&lx);
        } else if (cpu_ptx_is(&t, ".file")) {
            /* .file N "name" [, timestamp, size] -- no ';' */
            cpu_ptx_next(&lx);
            cpu_ptx_next(&lx);
            while (t = cpu_ptx_peek(&lx), cpu_ptx_is_punct(&t, ',')) {
                cpu_ptx_next(&lx);
                cpu_ptx_next(&lx);
            }
        } else if (cpu_ptx_is(&t, ".entry")) {
            rc = cpu_ptx_entry(&lx, img, extern_decl, &kcap);
        } else if (cpu_ptx_is(&t, ".global") || cpu_ptx_is(&t, ".const")) {
            rc = cpu_ptx_variable(&lx, img, extern_decl, &gcap);
        } else {
            /* .func, .shared, .alias, .section, .pragma, ... */
            cpu_ptx_skip_statement(&lx);
        }
        if (rc != CUDA_SUCCESS) {
            return rc;
        }
    }
    return seen_version ? CUDA_SUCCESS : CUDA_ERROR_INVALID_IMAGE;
}
