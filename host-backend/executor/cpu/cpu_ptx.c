/*
 * cpu_ptx.c - what the cpu executor reads from PTX text at load time:
 * kernel entry points with their parameter layout, and module-scope
 * .global / .const variables with their sizes and (simple) initialisers.
 *
 * Only module scope is read; function bodies are skipped as balanced
 * braces (ptx_parse.c decodes them on a module's first launch; both read
 * the text with the scanner of ptx_lex.c).  The text is untrusted: sizes
 * are overflow-checked, and anything not understood is skipped to the
 * end of its statement rather than trusted.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "ptx_lex.h"

#define CPU_PTX_MAX_PARAMS 4096

/* A copy of the name @t, a word that is not a directive. */
static CUresult cpu_ptx_name(const struct ptx_tok *t, char **out)
{
    *out = NULL;
    if (t->kind != PTX_TOK_WORD || t->len > CPU_NAME_MAX || t->s[0] == '.') {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    *out = strndup(t->s, t->len);
    return *out ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

/* ---- entries --------------------------------------------------------- */

/*
 * Parse "( .param ... , ... )" after an entry name; '(' already consumed.
 * Lays parameters out as the launch buffer does (and ptx_parse.c reads
 * it): each at the next multiple of its alignment.
 */
static CUresult cpu_ptx_params(struct ptx_lex *lx, struct cpu_kernel_desc *k)
{
    struct cpu_param *params = NULL;
    size_t n = 0, cap = 0;
    uint64_t offset = 0;
    struct ptx_tok t = ptx_lex_next(lx);

    if (ptx_tok_punct(&t, ')')) {
        k->nparams = 0;
        return CUDA_SUCCESS;
    }
    for (;;) {
        struct ptx_decl d;
        uint64_t size, align;

        if (!ptx_tok_is(&t, ".param") || !ptx_decl_parse(lx, &d) ||
            !d.named || d.count || d.unsized ||
            d.elems == 0 || d.elems > 65536 ||
            !ptx_decl_layout(&d, &size, &align)) {
            goto bad;
        }
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
        t = ptx_lex_next(lx);
        if (ptx_tok_punct(&t, ')')) {
            break;
        }
        if (!ptx_tok_punct(&t, ',')) {
            goto bad;
        }
        t = ptx_lex_next(lx);
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
static CUresult cpu_ptx_entry(struct ptx_lex *lx, struct cpu_image *img,
                              bool extern_decl, size_t *cap)
{
    struct cpu_kernel_desc k = { .nparams = 0 };
    struct ptx_tok t = ptx_lex_next(lx);
    CUresult rc = cpu_ptx_name(&t, &k.name);

    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    t = ptx_lex_peek(lx);
    if (ptx_tok_punct(&t, '(')) {
        ptx_lex_next(lx);
        rc = cpu_ptx_params(lx, &k);
        if (rc != CUDA_SUCCESS) {
            free(k.name);
            return rc;
        }
    }
    /* Performance directives (.maxntid ...) up to the body or ';'. */
    for (;;) {
        t = ptx_lex_next(lx);
        if (t.kind == PTX_TOK_EOF || ptx_tok_punct(&t, ';')) {
            extern_decl = true;
            break;
        }
        if (ptx_tok_punct(&t, '{')) {
            ptx_lex_skip_block(lx);
            break;
        }
    }
    if (!extern_decl) {
        rc = cpu_ptx_push_kernel(img, &k, cap);
    }
    if (extern_decl || rc != CUDA_SUCCESS) {
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

/*
 * One numeric initialiser element, stored little-endian in @esize bytes:
 * a float for float types and for literals that look like one.
 */
static bool cpu_ptx_init_elem(struct cpu_ptx_init *in, const struct ptx_tok *t,
                              bool neg, bool is_float, unsigned int esize,
                              uint64_t limit)
{
    uint64_t bits = 0;
    bool hex = t->len > 1 && t->s[0] == '0' && strchr("xX", t->s[1]);
    bool fp = is_float ||
              (t->len > 1 && t->s[0] == '0' && strchr("fFdD", t->s[1])) ||
              memchr(t->s, '.', t->len) ||
              (!hex && (memchr(t->s, 'e', t->len) ||
                        memchr(t->s, 'E', t->len)));

    if (fp) {
        if (!ptx_tok_float(t, esize, neg, &bits)) {
            return false;
        }
    } else {
        if (!ptx_tok_int(t, &bits)) {
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
static void cpu_ptx_initializer(struct ptx_lex *lx, struct cpu_ptx_init *in,
                                bool is_float, unsigned int esize,
                                uint64_t limit, size_t *leaves)
{
    size_t depth = 0;
    bool neg = false;

    for (;;) {
        struct ptx_tok t = ptx_lex_peek(lx);

        if (t.kind == PTX_TOK_EOF) {
            return;
        }
        if (depth == 0 && (ptx_tok_punct(&t, ';') ||
                           ptx_tok_punct(&t, ','))) {
            return;
        }
        ptx_lex_next(lx);
        if (ptx_tok_punct(&t, '{')) {
            depth++;
        } else if (ptx_tok_punct(&t, '}')) {
            if (depth) {
                depth--;
            }
        } else if (ptx_tok_punct(&t, ',')) {
            neg = false;
        } else if (ptx_tok_punct(&t, '-')) {
            neg = !neg;
        } else if (t.kind == PTX_TOK_NUM) {
            (*leaves)++;
            if (in->trivial &&
                !cpu_ptx_init_elem(in, &t, neg, is_float, esize, limit)) {
                in->trivial = false;
            }
            neg = false;
        } else {
            /* "generic(sym)" is one element, counted at "sym" */
            if (t.kind == PTX_TOK_WORD && !ptx_tok_is(&t, "generic")) {
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
static CUresult cpu_ptx_variable(struct ptx_lex *lx, struct cpu_image *img,
                                 bool extern_decl, size_t *cap)
{
    struct ptx_decl d;
    struct ptx_tok t;

    if (!ptx_decl_parse(lx, &d)) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    if (!d.named || d.other) {
        /* .texref, .samplerref, .surfref, .attribute...: not memory */
        if (!ptx_tok_punct(&d.name, ';')) {
            ptx_lex_skip_statement(lx);
        }
        return CUDA_SUCCESS;
    }
    for (;;) {
        struct cpu_global_desc g = { 0 };
        struct cpu_ptx_init in = { .trivial = true };
        uint64_t size, align;
        size_t leaves = 0;
        CUresult rc;

        if (!ptx_decl_layout(&d, &size, &align)) {
            return CUDA_ERROR_INVALID_IMAGE;
        }
        rc = cpu_ptx_name(&d.name, &g.name);
        if (rc != CUDA_SUCCESS) {
            return rc;
        }
        if (d.unsized) {
            size = 0;           /* storage defined elsewhere */
        }
        t = ptx_lex_peek(lx);
        if (ptx_tok_punct(&t, '=')) {
            ptx_lex_next(lx);
            cpu_ptx_initializer(lx, &in, d.is_float, d.esize,
                                d.unsized ? CPU_IMAGE_MAX : size, &leaves);
            /* "x[] = {...}": as many elements as initialisers */
            if (d.unsized &&
                __builtin_mul_overflow((uint64_t)leaves, (uint64_t)d.esize,
                                       &size)) {
                size = 0;
                in.trivial = false;
            }
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
        t = ptx_lex_next(lx);
        if (!ptx_tok_punct(&t, ',')) {
            break;
        }
        if (!ptx_decl_next_name(lx, &d)) {
            return CUDA_ERROR_INVALID_IMAGE;
        }
    }
    if (!ptx_tok_punct(&t, ';')) {
        ptx_lex_skip_statement(lx);
    }
    return CUDA_SUCCESS;
}

/* ---- module scope ---------------------------------------------------- */

CUresult cpu_ptx_scan(struct cpu_image *img)
{
    struct ptx_lex lx;
    size_t kcap = 0, gcap = 0;
    bool seen_version = false;

    ptx_lex_init(&lx, img->ptx, img->ptx_len);
    for (;;) {
        struct ptx_tok t = ptx_lex_next(&lx);
        bool extern_decl = false;
        CUresult rc = CUDA_SUCCESS;

        if (t.kind == PTX_TOK_EOF) {
            break;
        }
        if (ptx_tok_punct(&t, '{')) {
            ptx_lex_skip_block(&lx);
            continue;
        }
        if (!ptx_tok_directive(&t)) {
            ptx_lex_skip_statement(&lx);
            continue;
        }
        /* Linkage qualifiers come first. */
        while (ptx_tok_is(&t, ".visible") || ptx_tok_is(&t, ".extern") ||
               ptx_tok_is(&t, ".weak") || ptx_tok_is(&t, ".common")) {
            extern_decl |= ptx_tok_is(&t, ".extern");
            t = ptx_lex_next(&lx);
        }
        if (ptx_tok_is(&t, ".version")) {
            seen_version = true;
            ptx_lex_next(&lx);
        } else if (ptx_tok_is(&t, ".target")) {
            uint64_t arch;
            struct ptx_tok a = ptx_lex_next(&lx);

            if (a.kind == PTX_TOK_WORD && a.len > 3 &&
                memcmp(a.s, "sm_", 3) == 0) {
                struct ptx_tok n = { PTX_TOK_NUM, a.s + 3, a.len - 3, a.line };

                while (n.len && !isdigit((unsigned char)n.s[n.len - 1])) {
                    n.len--;    /* sm_90a */
                }
                if (ptx_tok_int(&n, &arch) && arch < 10000) {
                    img->ptx_arch = (int)arch;
                }
            }
            /* ", texmode_independent" and the like */
            while (t = ptx_lex_peek(&lx), ptx_tok_punct(&t, ',')) {
                ptx_lex_next(&lx);
                ptx_lex_next(&lx);
            }
        } else if (ptx_tok_is(&t, ".address_size")) {
            ptx_lex_next(&lx);
        } else if (ptx_tok_is(&t, ".file")) {
            /* .file N "name" [, timestamp, size] -- no ';' */
            ptx_lex_next(&lx);
            ptx_lex_next(&lx);
            while (t = ptx_lex_peek(&lx), ptx_tok_punct(&t, ',')) {
                ptx_lex_next(&lx);
                ptx_lex_next(&lx);
            }
        } else if (ptx_tok_is(&t, ".entry")) {
            rc = cpu_ptx_entry(&lx, img, extern_decl, &kcap);
        } else if (ptx_tok_is(&t, ".global") || ptx_tok_is(&t, ".const")) {
            rc = cpu_ptx_variable(&lx, img, extern_decl, &gcap);
        } else {
            /* .func, .shared, .alias, .section, .pragma, ... */
            ptx_lex_skip_statement(&lx);
        }
        if (rc != CUDA_SUCCESS) {
            return rc;
        }
    }
    return seen_version ? CUDA_SUCCESS : CUDA_ERROR_INVALID_IMAGE;
}
