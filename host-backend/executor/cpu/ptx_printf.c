/*
 * ptx_printf.c - device-side printf for the cpu executor's PTX
 * interpreter: formats one vprintf call (the CUDA printf ABI) into text.
 *
 * vprintf(fmt, args) gets the generic address of the format string and
 * of a packed argument buffer: each argument naturally aligned, integers
 * 4 bytes (8 with l, ll, j, z, t), floating point promoted to double (8),
 * %s and %p pointers (8), %c an int (4).  Both addresses are untrusted:
 * every byte is read through the caller's bounds-checked reader, and the
 * format, each %s string and each conversion's output are bounded.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ptx_internal.h"

#define PF_FMT_MAX      4096    /* bytes of format string read */
#define PF_STR_MAX      4096    /* bytes of one %s argument read */
#define PF_FIELD_MAX    1024    /* width / precision honoured */

struct pf_out {
    char *buf;
    size_t cap, len;
};

static void pf_put(struct pf_out *o, const char *s, size_t n)
{
    size_t room = o->cap - o->len;

    if (n > room) {
        n = room;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void pf_puts(struct pf_out *o, const char *s)
{
    pf_put(o, s, strlen(s));
}

/* Next argument of @size bytes (naturally aligned) from the buffer. */
static bool pf_arg(ptx_read_fn rd, void *opaque, uint64_t *ap, unsigned size,
                   uint64_t *v)
{
    uint64_t a = (*ap + size - 1) & ~(uint64_t)(size - 1);

    *v = 0;
    if (!rd(opaque, a, v, size)) {
        return false;
    }
    *ap = a + size;
    return true;
}

int ptx_printf_format(ptx_read_fn rd, void *opaque, uint64_t fmt,
                      uint64_t args, char *out, size_t cap, size_t *outlen)
{
    char f[PF_FMT_MAX + 1];
    struct pf_out o = { out, cap, 0 };
    size_t flen = 0, i = 0;
    uint64_t ap = args;
    int nargs = 0;

    *outlen = 0;
    while (flen < PF_FMT_MAX) {
        char c;

        if (!rd(opaque, fmt + flen, &c, 1)) {
            pf_puts(&o, "<printf: unreadable format string>\n");
            *outlen = o.len;
            return -1;
        }
        if (!c) {
            break;
        }
        f[flen++] = c;
    }
    f[flen] = 0;
    while (i < flen) {
        char spec[48], tmp[PF_FIELD_MAX + 64];
        const char *lenmod = "";
        size_t st = i, sp = 0;
        int width = -1, prec = -1, lng = 0, n = -1;
        char conv;
        uint64_t v;

        if (f[i] != '%') {
            size_t j = i;

            while (j < flen && f[j] != '%') {
                j++;
            }
            pf_put(&o, f + i, j - i);
            i = j;
            continue;
        }
        i++;
        if (f[i] == '%') {
            pf_put(&o, "%", 1);
            i++;
            continue;
        }
        spec[sp++] = '%';
        while (i < flen && strchr("-+ #0", f[i]) && sp < 8) {
            spec[sp++] = f[i++];
        }
        while (i < flen && strchr("-+ #0", f[i])) {
            i++;
        }
        if (f[i] == '*') {
            if (!pf_arg(rd, opaque, &ap, 4, &v)) {
                goto bad_args;
            }
            nargs++;
            width = (int32_t)v;
            i++;
        } else {
            width = 0;
            while (i < flen && f[i] >= '0' && f[i] <= '9') {
                width = width > PF_FIELD_MAX ? width :
                        width * 10 + (f[i] - '0');
                i++;
            }
            if (width == 0) {
                width = -1;
            }
        }
        if (f[i] == '.') {
            i++;
            prec = 0;
            if (f[i] == '*') {
                if (!pf_arg(rd, opaque, &ap, 4, &v)) {
                    goto bad_args;
                }
                nargs++;
                prec = (int32_t)v;
                i++;
            } else {
                while (i < flen && f[i] >= '0' && f[i] <= '9') {
                    prec = prec > PF_FIELD_MAX ? prec :
                           prec * 10 + (f[i] - '0');
                    i++;
                }
            }
        }
        if (width < -PF_FIELD_MAX) {
            width = -PF_FIELD_MAX;
        }
        if (width > PF_FIELD_MAX) {
            width = PF_FIELD_MAX;
        }
        if (prec > PF_FIELD_MAX) {
            prec = PF_FIELD_MAX;
        }
        while (i < flen && strchr("hlLqjzt", f[i])) {
            lng += f[i] == 'l' || f[i] == 'q' || f[i] == 'j' ||
                   f[i] == 'z' || f[i] == 't' ? 1 : 0;
            i++;
        }
        if (i >= flen) {
            pf_put(&o, f + st, flen - st);
            break;
        }
        conv = f[i++];
        if (width >= 0 || width < -1) {
            sp += (size_t)snprintf(spec + sp, sizeof(spec) - sp, "%d", width);
        }
        if (prec >= 0) {
            sp += (size_t)snprintf(spec + sp, sizeof(spec) - sp, ".%d", prec);
        }
        switch (conv) {
        case 'd': case 'i': case 'u': case 'o': case 'x': case 'X': {
            unsigned size = lng ? 8 : 4;
            bool sgn = conv == 'd' || conv == 'i';

            if (!pf_arg(rd, opaque, &ap, size, &v)) {
                goto bad_args;
            }
            nargs++;
            lenmod = "ll";
            snprintf(spec + sp, sizeof(spec) - sp, "%s%c", lenmod, conv);
            if (sgn) {
                long long x = size == 4 ? (long long)(int32_t)v :
                              (long long)v;

                n = snprintf(tmp, sizeof(tmp), spec, x);
            } else {
                unsigned long long x = size == 4 ? (uint32_t)v : v;

                n = snprintf(tmp, sizeof(tmp), spec, x);
            }
            break;
        }
        case 'c':
            if (!pf_arg(rd, opaque, &ap, 4, &v)) {
                goto bad_args;
            }
            nargs++;
            snprintf(spec + sp, sizeof(spec) - sp, "c");
            n = snprintf(tmp, sizeof(tmp), spec, (int)(int32_t)v);
            break;
        case 'f': case 'F': case 'e': case 'E': case 'g': case 'G':
        case 'a': case 'A': {
            double d;

            if (!pf_arg(rd, opaque, &ap, 8, &v)) {
                goto bad_args;
            }
            nargs++;
            memcpy(&d, &v, 8);
            snprintf(spec + sp, sizeof(spec) - sp, "%c", conv);
            n = snprintf(tmp, sizeof(tmp), spec, d);
            break;
        }
        case 'p':
            if (!pf_arg(rd, opaque, &ap, 8, &v)) {
                goto bad_args;
            }
            nargs++;
            snprintf(spec + sp, sizeof(spec) - sp, "s");
            {
                char pb[24];

                snprintf(pb, sizeof(pb), "0x%" PRIx64, v);
                n = snprintf(tmp, sizeof(tmp), spec, pb);
            }
            break;
        case 's': {
            char str[PF_STR_MAX + 1];
            size_t sl = 0, lim = prec >= 0 && (size_t)prec < PF_STR_MAX ?
                                 (size_t)prec : PF_STR_MAX;

            if (!pf_arg(rd, opaque, &ap, 8, &v)) {
                goto bad_args;
            }
            nargs++;
            if (!v) {
                snprintf(str, sizeof(str), "(null)");
            } else {
                while (sl < lim && rd(opaque, v + sl, &str[sl], 1) &&
                       str[sl]) {
                    sl++;
                }
                str[sl] = 0;
            }
            snprintf(spec + sp, sizeof(spec) - sp, "s");
            n = snprintf(tmp, sizeof(tmp), spec, str);
            if (n > 0) {
                /* a long string: emit it whole, padding included */
                size_t slen = strlen(str);

                if ((size_t)n >= sizeof(tmp) && slen > 0) {
                    pf_put(&o, str, slen);
                    n = -1;
                }
            }
            break;
        }
        case 'n':
            if (!pf_arg(rd, opaque, &ap, 8, &v)) {
                goto bad_args;
            }
            nargs++;
            n = 0;
            break;
        default:
            /* not a conversion we know: print it as written */
            pf_put(&o, f + st, i - st);
            continue;
        }
        if (n > 0) {
            pf_put(&o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n :
                   sizeof(tmp) - 1);
        }
    }
    *outlen = o.len;
    return nargs;
bad_args:
    pf_puts(&o, "<printf: unreadable argument buffer>\n");
    *outlen = o.len;
    return -1;
}
