/*
 * ptx_lex.h - the one PTX scanner of the cpu executor: tokens, literals
 * and declarations, shared by the load-time module scan (cpu_ptx.c) and
 * the decoder (ptx_parse.c).
 *
 * The text is untrusted: every token lies inside [text, text + len) (a
 * NUL ends the text early), literals are range-checked, and nothing here
 * allocates.  Tokens point into the text, which must outlive them.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_PTX_LEX_H
#define VGC_PTX_LEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum ptx_tok_kind {
    PTX_TOK_EOF,
    PTX_TOK_WORD,       /* identifiers, %registers, .directives, a.b.c */
    PTX_TOK_NUM,        /* 12, 0x1f, 017, 0b101, 1.5e-3, 0f3f800000, 0d... */
    PTX_TOK_STR,        /* "..." with its quotes, ends at a newline */
    PTX_TOK_PUNCT,      /* any other single character */
};

struct ptx_tok {
    enum ptx_tok_kind kind;
    const char *s;
    size_t len;
    uint32_t line;      /* 1-based */
};

struct ptx_lex {
    const char *p, *end;
    uint32_t line;      /* of the position p */
    struct ptx_tok peeked;
    bool has_peek;
};

void ptx_lex_init(struct ptx_lex *lx, const char *text, size_t len);
/* The token at the position, past any peeked one (ptx_lex_next's part). */
struct ptx_tok ptx_lex_scan(struct ptx_lex *lx);

static inline struct ptx_tok ptx_lex_next(struct ptx_lex *lx)
{
    if (lx->has_peek) {
        lx->has_peek = false;
        return lx->peeked;
    }
    return ptx_lex_scan(lx);
}

static inline struct ptx_tok ptx_lex_peek(struct ptx_lex *lx)
{
    if (!lx->has_peek) {
        lx->peeked = ptx_lex_scan(lx);
        lx->has_peek = true;
    }
    return lx->peeked;
}

/* Drop the rest of the line (.loc, .file): no ';' ends those. */
void ptx_lex_skip_line(struct ptx_lex *lx);
/* Skip a balanced {...} whose '{' was just read; false if never closed. */
bool ptx_lex_skip_block(struct ptx_lex *lx);
/* Skip past the next ';' or balanced block; false if a block never closes. */
bool ptx_lex_skip_statement(struct ptx_lex *lx);

/* @t is the word or punctuation @w exactly. */
static inline bool ptx_tok_is(const struct ptx_tok *t, const char *w)
{
    size_t n = strlen(w);

    return (t->kind == PTX_TOK_WORD || t->kind == PTX_TOK_PUNCT) &&
           t->len == n && memcmp(t->s, w, n) == 0;
}

static inline bool ptx_tok_punct(const struct ptx_tok *t, char c)
{
    return t->kind == PTX_TOK_PUNCT && t->s[0] == c;
}

/* A .directive (or a .type, .align ...: any word starting with '.'). */
static inline bool ptx_tok_directive(const struct ptx_tok *t)
{
    return t->kind == PTX_TOK_WORD && t->s[0] == '.';
}

/* Integer literal: decimal, 0x hex, 0b binary, 0 octal; U suffix; no sign. */
bool ptx_tok_int(const struct ptx_tok *t, uint64_t *out);
/*
 * Floating-point literal (0fXXXXXXXX, 0dXXXXXXXXXXXXXXXX, decimal, or an
 * integer literal) as the bits of a @size-byte float (4 or 8), negated
 * when @neg.  Hex floats of the same size keep their exact bits.
 */
bool ptx_tok_float(const struct ptx_tok *t, unsigned size, bool neg,
                   uint64_t *bits);

/*
 * A declaration: [.align N] [.vN] [.ptr [.space] [.align N]] .type name
 * [<N>] [[N]]... as in .param, .reg, .global, .const, .shared and .local
 * statements.  ptx_decl_parse reads the directives, the token after them
 * and, when that is the name, its suffixes; what follows (',', '=', ';',
 * ')') is left unread.  Each caller applies its own limits.
 */
struct ptx_decl {
    unsigned esize;     /* bytes of the fundamental type; 0: none seen */
    bool is_float;      /* .f16 .f32 .f64 .f16x2 */
    unsigned vec;       /* .v2 .v4 .v8; 1 if none */
    uint64_t align;     /* .align N of the variable (not after .ptr); 0 */
    bool other;         /* a directive none of these (.attribute ...) */
    struct ptx_tok name;    /* the token after the directives */
    bool named;         /* a type and a name */
    uint64_t count;     /* <N> of "%r<N>"; 0 if none */
    uint64_t elems;     /* product of the [N] dimensions (1 if none) */
    bool unsized;       /* one of them is [] */
};

/*
 * False when a literal is bad or the product of the dimensions
 * overflows; true otherwise, d->named saying whether it declares a name.
 */
bool ptx_decl_parse(struct ptx_lex *lx, struct ptx_decl *d);
/* After a ',': the next name of a declaration sharing the type; false
 * also when no name follows. */
bool ptx_decl_next_name(struct ptx_lex *lx, struct ptx_decl *d);
/*
 * Bytes (elements x vector x type) and alignment (.align, else the
 * vector's) of the variable @d names; false when the size overflows or
 * the alignment is not a power of two up to 4096.
 */
bool ptx_decl_layout(const struct ptx_decl *d, uint64_t *size,
                     uint64_t *align);

#endif /* VGC_PTX_LEX_H */
