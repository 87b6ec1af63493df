/*
 * test_wire.c - the bounded reader and writer every decoder relies on.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "vgc_wire.h"

static int failures;

#define CHECK(cond) do { \
    if (!(cond)) { \
        printf("not ok - %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        failures++; \
    } else { \
        printf("ok - %s\n", #cond); \
    } \
} while (0)

static void test_round_trip(void)
{
    uint8_t buf[128];
    struct vgc_wr w;
    struct vgc_rd r;
    char s[16];
    uint64_t n;
    const void *p;

    vgc_wr_init(&w, buf, sizeof(buf));
    vgc_wr_u8(&w, 0xab);
    vgc_wr_u16(&w, 0xbeef);
    vgc_wr_u32(&w, 0xdeadbeef);
    vgc_wr_u64(&w, 0x0123456789abcdefULL);
    vgc_wr_i32(&w, -5);
    vgc_wr_blob(&w, "abc", 3);
    vgc_wr_str(&w, "hello");
    vgc_wr_str(&w, NULL);
    CHECK(!w.overflow);
    CHECK(w.len == 1 + 2 + 4 + 8 + 4 + 8 + 3 + 8 + 5 + 8);
    /* little-endian on the wire, whatever the host */
    CHECK(buf[1] == 0xef && buf[2] == 0xbe);

    vgc_rd_init(&r, buf, w.len);
    CHECK(vgc_rd_u8(&r) == 0xab);
    CHECK(vgc_rd_u16(&r) == 0xbeef);
    CHECK(vgc_rd_u32(&r) == 0xdeadbeef);
    CHECK(vgc_rd_u64(&r) == 0x0123456789abcdefULL);
    CHECK(vgc_rd_i32(&r) == -5);
    p = vgc_rd_blob(&r, &n, 100);
    CHECK(p && n == 3 && !memcmp(p, "abc", 3));
    vgc_rd_str(&r, s, sizeof(s));
    CHECK(!strcmp(s, "hello"));
    vgc_rd_str(&r, s, sizeof(s));
    CHECK(s[0] == '\0' && !r.bad);
    CHECK(vgc_rd_done(&r));
}

static void test_writer_overflow_is_sticky(void)
{
    uint8_t buf[8];
    struct vgc_wr w;

    vgc_wr_init(&w, buf, sizeof(buf));
    vgc_wr_u32(&w, 1);
    vgc_wr_u64(&w, 2);          /* does not fit */
    CHECK(w.overflow);
    vgc_wr_u8(&w, 3);           /* would fit, but the writer stays failed */
    CHECK(w.overflow && w.len == 4);
}

static void test_reader_bounds(void)
{
    uint8_t buf[16] = { 0 };
    struct vgc_rd r;
    uint64_t n;
    char s[4];
    uint64_t huge = UINT64_MAX;

    vgc_rd_init(&r, buf, 3);
    CHECK(vgc_rd_u32(&r) == 0 && r.bad);
    CHECK(vgc_rd_u8(&r) == 0 && r.bad);     /* sticky */
    CHECK(!vgc_rd_done(&r));

    /* a blob length beyond the payload */
    memcpy(buf, &huge, 8);
    vgc_rd_init(&r, buf, 16);
    CHECK(vgc_rd_blob(&r, &n, UINT64_MAX) == NULL && r.bad && n == 0);

    /* a blob longer than the caller allows */
    n = 5;
    memcpy(buf, &n, 8);
    vgc_rd_init(&r, buf, 16);
    CHECK(vgc_rd_blob(&r, &n, 4) == NULL && r.bad);

    /* a string that does not fit its buffer is refused, not cut */
    vgc_rd_init(&r, buf, 16);
    vgc_rd_str(&r, s, sizeof(s));
    CHECK(r.bad && s[0] == '\0');

    /* leftover bytes are not "done" */
    vgc_rd_init(&r, buf, 16);
    vgc_rd_u64(&r);
    CHECK(!r.bad && !vgc_rd_done(&r));
}

int main(void)
{
    test_round_trip();
    test_writer_overflow_is_sticky();
    test_reader_bounds();
    printf("%s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}
