/*
 * ptx_lex.c - the cpu executor's PTX scanner (ptx_lex.h): tokens with
 * line numbers, literals, and the directives and names of declarations.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ptx_lex.h"

void ptx_lex_init(struct ptx_lex *lx, const char *text, size_t len)
{
    memset(lx, 0, sizeof(*lx));
    lx->p = text;
    lx->end = text + len;
    lx->line = 1;
}

/* Character classes, as the C locale has them (the guest's text is read
 * the same whatever the daemon's locale). */
enum { PTX_CC_SPACE = 1, PTX_CC_WORD = 2, PTX_CC_DIGIT = 4, PTX_CC_NUM = 8 };

static const uint8_t ptx_cc[256] = {
    [' '] = PTX_CC_SPACE, ['\t'] = PTX_CC_SPACE, ['\n'] = PTX_CC_SPACE,
    ['\v'] = PTX_CC_SPACE, ['\f'] = PTX_CC_SPACE, ['\r'] = PTX_CC_SPACE,
    ['a' ... 'z'] = PTX_CC_WORD | PTX_CC_NUM,
    ['A' ... 'Z'] = PTX_CC_WORD | PTX_CC_NUM,
    ['0' ... '9'] = PTX_CC_DIGIT | PTX_CC_NUM,
    ['.'] = PTX_CC_WORD | PTX_CC_NUM,
    ['_'] = PTX_CC_WORD, ['$'] = PTX_CC_WORD, ['%'] = PTX_CC_WORD,
};

static inline bool ptx_is(char c, unsigned cls)
{
    return ptx_cc[(unsigned char)c] & cls;
}

static void ptx_skip_space(struct ptx_lex *lx)
{
    const char *p = lx->p, *end = lx->end;

    while (p < end) {
        if (ptx_is(*p, PTX_CC_SPACE)) {
            lx->line += *p == '\n';
            p++;
        } else if (*p == '/' && end - p >= 2 && p[1] == '/') {
            while (p < end && *p != '\n') {
                p++;
            }
        } else if (*p == '/' && end - p >= 2 && p[1] == '*') {
            p += 2;
            while (end - p >= 2 && !(p[0] == '*' && p[1] == '/')) {
                lx->line += *p == '\n';
                p++;
            }
            p = end - p >= 2 ? p + 2 : end;
        } else {
            break;
        }
    }
    lx->p = p;
}

struct ptx_tok ptx_lex_scan(struct ptx_lex *lx)
{
    struct ptx_tok t;
    const char *q, *end = lx->end;

    ptx_skip_space(lx);
    q = lx->p;
    t.s = q;
    t.line = lx->line;
    if (q >= end || *q == 0) {
        lx->p = end;
        t.kind = PTX_TOK_EOF;
        t.len = 0;
        return t;
    }
    if (ptx_is(*q, PTX_CC_WORD)) {
        t.kind = PTX_TOK_WORD;
        while (q < end && ptx_is(*q, PTX_CC_WORD | PTX_CC_DIGIT)) {
            q++;
        }
    } else if (ptx_is(*q, PTX_CC_DIGIT)) {
        /* 0x / 0f / 0d: hex digits, no exponent sign */
        bool hex = end - q >= 2 && q[0] == '0' && q[1] &&
                   strchr("xXfFdD", q[1]);

        t.kind = PTX_TOK_NUM;
        while (q < end && ptx_is(*q, PTX_CC_NUM)) {
            if (!hex && (*q == 'e' || *q == 'E') && end - q >= 2 &&
                (q[1] == '+' || q[1] == '-')) {
                q++;
            }
            q++;
        }
    } else if (*q == '"') {
        t.kind = PTX_TOK_STR;
        q++;
        while (q < end && *q != '"' && *q != '\n') {
            q += (*q == '\\' && end - q >= 2) ? 2 : 1;
        }
        if (q < end && *q == '"') {
            q++;
        }
    } else {
        t.kind = PTX_TOK_PUNCT;
        q++;
    }
    t.len = (size_t)(q - t.s);
    lx->p = q;
    return t;
}

void ptx_lex_skip_line(struct ptx_lex *lx)
{
    if (lx->has_peek) {
        /* The peeked token is on the line being skipped: drop it. */
        lx->has_peek = false;
        lx->p = lx->peeked.s + lx->peeked.len;
    }
    while (lx->p < lx->end && *lx->p != '\n') {
        lx->p++;
    }
}

bool ptx_lex_skip_block(struct ptx_lex *lx)
{
    size_t depth = 1;

    while (depth) {
        struct ptx_tok t = ptx_lex_next(lx);

        if (t.kind == PTX_TOK_EOF) {
            return false;
        }
        depth += ptx_tok_punct(&t, '{');
        depth -= ptx_tok_punct(&t, '}');
    }
    return true;
}

bool ptx_lex_skip_statement(struct ptx_lex *lx)
{
    for (;;) {
        struct ptx_tok t = ptx_lex_next(lx);

        if (t.kind == PTX_TOK_EOF || ptx_tok_punct(&t, ';')) {
            return true;
        }
        if (ptx_tok_punct(&t, '{')) {
            return ptx_lex_skip_block(lx);
        }
    }
}

/* ---- literals ---------------------------------------------------------- */

bool ptx_tok_int(const struct ptx_tok *t, uint64_t *out)
{
    char buf[72];
    char *e;
    size_t len = t->len;
    int base = 10;
    const char *p = buf;

    if (t->kind != PTX_TOK_NUM || len == 0 || len >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, t->s, len);
    buf[len] = 0;
    if (buf[len - 1] == 'U' || buf[len - 1] == 'u') {
        buf[--len] = 0;
    }
    if (len > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) {
        base = 16;
        p += 2;
    } else if (len > 2 && buf[0] == '0' && (buf[1] == 'b' || buf[1] == 'B')) {
        base = 2;
        p += 2;
    } else if (len > 1 && buf[0] == '0') {
        base = 8;
    }
    if (!*p || *p == '-' || *p == '+') {
        return false;
    }
    errno = 0;
    *out = strtoull(p, &e, base);
    return *e == 0 && errno == 0;
}

bool ptx_tok_float(const struct ptx_tok *t, unsigned size, bool neg,
                   uint64_t *bits)
{
    char buf[72];
    char *e;
    uint64_t v;
    double d;

    if (t->kind != PTX_TOK_NUM || t->len >= sizeof(buf) ||
        (size != 4 && size != 8)) {
        return false;
    }
    memcpy(buf, t->s, t->len);
    buf[t->len] = 0;
    if (t->len >= 2 && buf[0] == '0' &&
        ((buf[1] | 0x20) == 'f' || (buf[1] | 0x20) == 'd')) {
        /* 0fXXXXXXXX: float bits; 0dXXXXXXXXXXXXXXXX: double bits */
        unsigned hs = (buf[1] | 0x20) == 'f' ? 4 : 8;
        size_t i;

        if (t->len != 2 + 2 * hs) {
            return false;
        }
        for (i = 2; i < t->len; i++) {
            if (!isxdigit((unsigned char)buf[i])) {
                return false;
            }
        }
        v = strtoull(buf + 2, NULL, 16);
        if (hs == size) {
            *bits = neg ? v ^ (1ULL << (8 * size - 1)) : v;
            return true;
        }
        if (hs == 4) {
            uint32_t u = (uint32_t)v;
            float f;

            memcpy(&f, &u, 4);
            d = f;
        } else {
            memcpy(&d, &v, 8);
        }
    } else if (ptx_tok_int(t, &v)) {
        d = (double)v;
    } else {
        d = strtod(buf, &e);
        if (*e) {
            return false;
        }
    }
    if (neg) {
        d = -d;
    }
    if (size == 4) {
        float f = (float)d;
        uint32_t u;

        memcpy(&u, &f, 4);
        *bits = u;
    } else {
        memcpy(bits, &d, 8);
    }
    return true;
}

/* ---- declarations ------------------------------------------------------- */

static unsigned ptx_type_size(const struct ptx_tok *t)
{
    static const struct {
        const char *name;
        unsigned size;
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
        if (ptx_tok_is(t, types[i].name)) {
            return types[i].size;
        }
    }
    return 0;
}

/* The name's suffixes: <N> and [N]... */
static bool ptx_decl_suffixes(struct ptx_lex *lx, struct ptx_decl *d)
{
    struct ptx_tok t = ptx_lex_peek(lx);

    if (ptx_tok_punct(&t, '<')) {
        ptx_lex_next(lx);
        t = ptx_lex_next(lx);
        if (!ptx_tok_int(&t, &d->count)) {
            return false;
        }
        t = ptx_lex_next(lx);
        if (!ptx_tok_punct(&t, '>')) {
            return false;
        }
        t = ptx_lex_peek(lx);
    }
    while (ptx_tok_punct(&t, '[')) {
        uint64_t dim;

        ptx_lex_next(lx);
        t = ptx_lex_next(lx);
        if (ptx_tok_punct(&t, ']')) {
            d->unsized = true;
        } else {
            if (!ptx_tok_int(&t, &dim) ||
                __builtin_mul_overflow(d->elems, dim, &d->elems)) {
                return false;
            }
            t = ptx_lex_next(lx);
            if (!ptx_tok_punct(&t, ']')) {
                return false;
            }
        }
        t = ptx_lex_peek(lx);
    }
    return true;
}

bool ptx_decl_next_name(struct ptx_lex *lx, struct ptx_decl *d)
{
    d->name = ptx_lex_next(lx);
    d->named = d->name.kind == PTX_TOK_WORD && !ptx_tok_directive(&d->name);
    d->count = 0;
    d->elems = 1;
    d->unsized = false;
    return d->named && ptx_decl_suffixes(lx, d);
}

bool ptx_decl_parse(struct ptx_lex *lx, struct ptx_decl *d)
{
    bool ptr = false;

    memset(d, 0, sizeof(*d));
    d->vec = 1;
    d->elems = 1;
    for (;;) {
        struct ptx_tok t = ptx_lex_peek(lx);
        unsigned ts = ptx_type_size(&t);

        if (!ptx_tok_directive(&t)) {
            break;
        }
        ptx_lex_next(lx);
        if (ts) {
            d->esize = ts;
            d->is_float = t.s[1] == 'f';
        } else if (ptx_tok_is(&t, ".align")) {
            uint64_t a;

            t = ptx_lex_next(lx);
            if (!ptx_tok_int(&t, &a)) {
                return false;
            }
            /* After .ptr, .align is the pointee's, not the variable's. */
            if (!ptr) {
                d->align = a;
            }
        } else if (ptx_tok_is(&t, ".v2") || ptx_tok_is(&t, ".v4") ||
                   ptx_tok_is(&t, ".v8")) {
            d->vec = (unsigned)(t.s[2] - '0');
        } else if (ptx_tok_is(&t, ".ptr")) {
            ptr = true;
        } else if (!ptr) {
            /* .texref, .attribute ...; a .ptr's state space is fine */
            d->other = true;
        }
    }
    if (!d->esize) {
        d->name = ptx_lex_next(lx);
        return true;
    }
    return ptx_decl_next_name(lx, d) || !d->named;
}

bool ptx_decl_layout(const struct ptx_decl *d, uint64_t *size,
                     uint64_t *align)
{
    uint64_t a = d->align ? d->align : (uint64_t)d->esize * d->vec;

    *align = a;
    return !__builtin_mul_overflow(d->elems, (uint64_t)d->esize * d->vec,
                                   size) &&
           a && !(a & (a - 1)) && a <= 4096;
}
