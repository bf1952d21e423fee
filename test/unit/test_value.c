/* test_value.c -- payload helpers (lib/value.c): round trips of every
 * type and width, the flat reading order, and hostile input: truncated,
 * garbage, absurd counts, deep nesting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skc/skc.h"

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */
/* ---------------------------------------------------------------------- */

static skc_pack *
new_pack(void)
{
    skc_pack *p = NULL;

    assert_int_equal(skc_pack_create(&p), SKC_OK);
    assert_non_null(p);
    return p;
}

static skc_unpack *
new_unpack(const void *data, size_t len)
{
    skc_unpack *u = NULL;

    assert_int_equal(skc_unpack_create(&u, data, len), SKC_OK);
    assert_non_null(u);
    return u;
}

/* Reads one item and checks its type. */
static void
next_type(skc_unpack *u, skc_item *it, int type)
{
    assert_int_equal(skc_unpack_next(u, it), 1);
    assert_int_equal(it->type, type);
}

static void
expect_end(skc_unpack *u)
{
    skc_item it = SKC_ITEM_INIT;

    assert_int_equal(skc_unpack_next(u, &it), 0);
    /* The end is stable. */
    assert_int_equal(skc_unpack_next(u, &it), 0);
}

static void
expect_error_text(const char *needle)
{
    const char *text = skc_last_error();

    if (strstr(text, needle) == NULL) {
        fail_msg("detail \"%s\" does not contain \"%s\"", text, needle);
    }
}

/* Borrowed bytes must lie inside the reader's data. */
static void
assert_inside(const skc_item *it, const void *data, size_t len)
{
    const char *lo = data;

    assert_non_null(it->ptr);
    assert_true(it->ptr >= lo);
    assert_true(it->ptr + it->len <= lo + len);
}

/* Packs one int and returns how many bytes it took. */
static size_t
packed_int_len(int64_t v)
{
    skc_pack *p = new_pack();
    size_t len;

    assert_int_equal(skc_pack_int(p, v), SKC_OK);
    skc_pack_data(p, &len);
    skc_pack_destroy(p);
    return len;
}

/* ---------------------------------------------------------------------- */
/* Round trips                                                            */
/* ---------------------------------------------------------------------- */

static void
test_empty_payload(void **state)
{
    skc_pack *p = new_pack();
    skc_unpack *u;
    const void *d;
    size_t len = 99;

    (void)state;
    d = skc_pack_data(p, &len);
    assert_non_null(d);
    assert_int_equal(len, 0);

    u = new_unpack(d, len);
    expect_end(u);
    skc_unpack_destroy(u);

    u = new_unpack(NULL, 0);
    expect_end(u);
    skc_unpack_destroy(u);
    skc_pack_destroy(p);
}

static void
test_nil_bool(void **state)
{
    skc_pack *p = new_pack();
    skc_unpack *u;
    skc_item it = SKC_ITEM_INIT;
    const void *d;
    size_t len;

    (void)state;
    assert_int_equal(skc_pack_nil(p), SKC_OK);
    assert_int_equal(skc_pack_bool(p, 1), SKC_OK);
    assert_int_equal(skc_pack_bool(p, 0), SKC_OK);
    assert_int_equal(skc_pack_bool(p, -7), SKC_OK); /* nonzero = true */
    d = skc_pack_data(p, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(d, "\xc0\xc3\xc2\xc3", 4);

    u = new_unpack(d, len);
    next_type(u, &it, SKC_T_NIL);
    next_type(u, &it, SKC_T_BOOL);
    assert_int_equal(it.i, 1);
    next_type(u, &it, SKC_T_BOOL);
    assert_int_equal(it.i, 0);
    next_type(u, &it, SKC_T_BOOL);
    assert_int_equal(it.i, 1);
    expect_end(u);
    skc_unpack_destroy(u);
    skc_pack_destroy(p);
}

/* Every width msgpack has for integers, at both edges. */
static const struct {
    int64_t v;
    size_t len; /* encoded size */
} int_cases[] = {
    { 0, 1 },
    { 1, 1 },
    { 127, 1 },                    /* positive fixint */
    { 128, 2 },                    /* uint8 */
    { 255, 2 },
    { 256, 3 },                    /* uint16 */
    { 65535, 3 },
    { 65536, 5 },                  /* uint32 */
    { 4294967295LL, 5 },
    { 4294967296LL, 9 },           /* uint64 */
    { INT64_MAX, 9 },
    { -1, 1 },                     /* negative fixint */
    { -32, 1 },
    { -33, 2 },                    /* int8 */
    { -128, 2 },
    { -129, 3 },                   /* int16 */
    { -32768, 3 },
    { -32769, 5 },                 /* int32 */
    { INT32_MIN, 5 },
    { (int64_t)INT32_MIN - 1, 9 }, /* int64 */
    { INT64_MIN, 9 },
};
#define N_INT_CASES (sizeof(int_cases) / sizeof(int_cases[0]))

static void
test_int_widths(void **state)
{
    skc_pack *p = new_pack();
    skc_unpack *u;
    skc_item it = SKC_ITEM_INIT;
    const void *d;
    size_t len, i;

    (void)state;
    for (i = 0; i < N_INT_CASES; i++) {
        assert_int_equal(packed_int_len(int_cases[i].v), int_cases[i].len);
        assert_int_equal(skc_pack_int(p, int_cases[i].v), SKC_OK);
    }
    d = skc_pack_data(p, &len);
    u = new_unpack(d, len);
    for (i = 0; i < N_INT_CASES; i++) {
        next_type(u, &it, SKC_T_INT);
        assert_true(it.i == int_cases[i].v);
    }
    expect_end(u);
    skc_unpack_destroy(u);
    skc_pack_destroy(p);
}

static void
test_uint(void **state)
{
    static const uint64_t vals[] = { 0, 200, 70000, (uint64_t)INT64_MAX,
        (uint64_t)INT64_MAX + 1, UINT64_MAX };
    skc_pack *p = new_pack();
    skc_unpack *u;
    skc_item it = SKC_ITEM_INIT;
    const void *d;
    size_t len, i;

    (void)state;
    for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        assert_int_equal(skc_pack_uint(p, vals[i]), SKC_OK);
    }
    d = skc_pack_data(p, &len);
    u = new_unpack(d, len);
    /* What fits int64 is INT, whatever way it was packed. */
    for (i = 0; i < 4; i++) {
        next_type(u, &it, SKC_T_INT);
        assert_true((uint64_t)it.i == vals[i]);
    }
    next_type(u, &it, SKC_T_UINT);
    assert_true(it.u == (uint64_t)INT64_MAX + 1);
    next_type(u, &it, SKC_T_UINT);
    assert_true(it.u == UINT64_MAX);
    expect_end(u);
    skc_unpack_destroy(u);
    skc_pack_destroy(p);
}

/* Forms other encoders produce but msgpack-c's packer never does. */
static void
test_foreign_int_forms(void **state)
{
    static const unsigned char data[] = {
        0xd0, 0x05,                                     /* int8 5 */
        0xd1, 0xff, 0xff,                               /* int16 -1 */
        0xcc, 0x00,                                     /* uint8 0 */
        0xcf, 0, 0, 0, 0, 0, 0, 0, 0x05,                /* uint64 5 */
        0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0,                /* uint64 2^63 */
        0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0,                /* int64 min */
        0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xd2, 0x00, 0x00, 0x00, 0x07,                   /* int32 7 */
    };
    skc_unpack *u = new_unpack(data, sizeof(data));
    skc_item it = SKC_ITEM_INIT;

    (void)state;
    next_type(u, &it, SKC_T_INT);
    assert_true(it.i == 5);
    next_type(u, &it, SKC_T_INT);
    assert_true(it.i == -1);
    next_type(u, &it, SKC_T_INT);
    assert_true(it.i == 0);
    next_type(u, &it, SKC_T_INT);
    assert_true(it.i == 5);
    next_type(u, &it, SKC_T_UINT);
    assert_true(it.u == (uint64_t)1 << 63);
    next_type(u, &it, SKC_T_INT);
    assert_true(it.i == INT64_MIN);
    next_type(u, &it, SKC_T_INT);
    assert_true(it.i == INT64_MAX);
    next_type(u, &it, SKC_T_INT);
    assert_true(it.i == 7);
    expect_end(u);
    skc_unpack_destroy(u);
}

static void
test_floats(void **state)
{
    static const double vals[] = { 0.0, -0.0, 1.5, -2.25, DBL_MAX, DBL_MIN,
        4.9406564584124654e-324, 1e300, -1e-300 };
    static const unsigned char f32[] = {
        0xca, 0x3f, 0xc0, 0x00, 0x00, /* float32 1.5 */
        0xca, 0x7f, 0x80, 0x00, 0x00, /* float32 +inf */
        0xca, 0x7f, 0xc0, 0x00, 0x00, /* float32 NaN */
        0xca, 0x80, 0x00, 0x00, 0x00, /* float32 -0.0 */
    };
    skc_pack *p = new_pack();
    skc_unpack *u;
    skc_item it = SKC_ITEM_INIT;
    const void *d;
    size_t len, i, n = sizeof(vals) / sizeof(vals[0]);

    (void)state;
    for (i = 0; i < n; i++) {
        assert_int_equal(skc_pack_double(p, vals[i]), SKC_OK);
    }
    assert_int_equal(skc_pack_double(p, INFINITY), SKC_OK);
    assert_int_equal(skc_pack_double(p, -INFINITY), SKC_OK);
    assert_int_equal(skc_pack_double(p, NAN), SKC_OK);
    d = skc_pack_data(p, &len);
    assert_int_equal(len, 9 * (n + 3)); /* always float64 */

    u = new_unpack(d, len);
    for (i = 0; i < n; i++) {
        next_type(u, &it, SKC_T_FLOAT);
        /* Bitwise: also tells -0.0 from 0.0. */
        assert_memory_equal(&it.d, &vals[i], sizeof(double));
    }
    next_type(u, &it, SKC_T_FLOAT);
    assert_true(isinf(it.d) && it.d > 0);
    next_type(u, &it, SKC_T_FLOAT);
    assert_true(isinf(it.d) && it.d < 0);
    next_type(u, &it, SKC_T_FLOAT);
    assert_true(isnan(it.d));
    expect_end(u);
    skc_unpack_destroy(u);
    skc_pack_destroy(p);

    u = new_unpack(f32, sizeof(f32));
    next_type(u, &it, SKC_T_FLOAT);
    assert_true(it.d == 1.5);
    next_type(u, &it, SKC_T_FLOAT);
    assert_true(isinf(it.d) && it.d > 0);
    next_type(u, &it, SKC_T_FLOAT);
    assert_true(isnan(it.d));
    next_type(u, &it, SKC_T_FLOAT);
    assert_true(it.d == 0.0 && signbit(it.d));
    expect_end(u);
    skc_unpack_destroy(u);
}

/* Packs a string (bin if `bin`) of n bytes and checks header size, type,
 * content and that ptr is borrowed from the data. */
static void
check_bytes(int bin, size_t n, size_t hlen)
{
    skc_pack *p = new_pack();
    skc_unpack *u;
    skc_item it = SKC_ITEM_INIT;
    char *s = malloc(n + 1);
    const void *d;
    size_t len, i;

    assert_non_null(s);
    for (i = 0; i < n; i++) {
        s[i] = (char)(i * 7 % 256); /* includes NUL bytes */
    }
    if (bin) {
        assert_int_equal(skc_pack_bin(p, s, n), SKC_OK);
    } else {
        assert_int_equal(skc_pack_str(p, s, n), SKC_OK);
    }
    d = skc_pack_data(p, &len);
    assert_int_equal(len, hlen + n);

    u = new_unpack(d, len);
    next_type(u, &it, bin ? SKC_T_BIN : SKC_T_STR);
    assert_int_equal(it.len, n);
    assert_inside(&it, d, len);
    assert_ptr_equal(it.ptr, (const char *)d + hlen);
    if (n > 0) {
        assert_memory_equal(it.ptr, s, n);
    }
    expect_end(u);
    skc_unpack_destroy(u);
    skc_pack_destroy(p);
    free(s);
}

static void
test_strings(void **state)
{
    (void)state;
    check_bytes(0, 0, 1);
    check_bytes(0, 4, 1);
    check_bytes(0, 31, 1);     /* fixstr */
    check_bytes(0, 32, 2);     /* str8 */
    check_bytes(0, 255, 2);
    check_bytes(0, 256, 3);    /* str16 */
    check_bytes(0, 65535, 3);
    check_bytes(0, 65536, 5);  /* str32 */
}

static void
test_bin(void **state)
{
    (void)state;
    check_bytes(1, 0, 2);      /* bin8 */
    check_bytes(1, 5, 2);
    check_bytes(1, 255, 2);
    check_bytes(1, 256, 3);    /* bin16 */
    check_bytes(1, 65535, 3);
    check_bytes(1, 65536, 5);  /* bin32 */
}

static void
test_nul_string(void **state)
{
    skc_pack *p = new_pack();
    skc_unpack *u;
    skc_item it = SKC_ITEM_INIT;
    const void *d;
    size_t len;

    (void)state;
    assert_int_equal(skc_pack_str(p, "a\0b\0", 4), SKC_OK);
    assert_int_equal(skc_pack_str(p, NULL, 0), SKC_OK);
    assert_int_equal(skc_pack_bin(p, NULL, 0), SKC_OK);
    assert_int_equal(skc_pack_bin(p, "\0\0\xff", 3), SKC_OK);
    d = skc_pack_data(p, &len);
    u = new_unpack(d, len);
    next_type(u, &it, SKC_T_STR);
    assert_int_equal(it.len, 4);
    assert_memory_equal(it.ptr, "a\0b\0", 4);
    next_type(u, &it, SKC_T_STR);
    assert_int_equal(it.len, 0);
    assert_inside(&it, d, len);
    next_type(u, &it, SKC_T_BIN);
    assert_int_equal(it.len, 0);
    next_type(u, &it, SKC_T_BIN);
    assert_int_equal(it.len, 3);
    assert_memory_equal(it.ptr, "\0\0\xff", 3);
    expect_end(u);
    skc_unpack_destroy(u);
    skc_pack_destroy(p);
}

/* No skc_pack_ext exists, so ext items come from other encoders. */
static void
test_ext(void **state)
{
    static const unsigned char data[] = {
        0xd4, 0x01, 0xaa,                         /* fixext1 type 1 */
        0xd6, 0xff, 0x00, 0x00, 0x00, 0x01,       /* timestamp32 */
        0xc7, 0x00, 0x05,                         /* ext8, empty */
        0xc7, 0x03, 0x80, 'x', 'y', 'z',          /* ext8 type -128 */
        0xc8, 0x00, 0x01, 0x07, 0xab,             /* ext16 */
        0xc9, 0x00, 0x00, 0x00, 0x02, 0x09, 1, 2, /* ext32 */
        0xd8, 0x02, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    };
    skc_unpack *u = new_unpack(data, sizeof(data));
    skc_item it = SKC_ITEM_INIT;

    (void)state;
    next_type(u, &it, SKC_T_EXT);
    assert_int_equal(it.ext_type, 1);
    assert_int_equal(it.len, 1);
    assert_ptr_equal(it.ptr, (const char *)data + 2);
    next_type(u, &it, SKC_T_EXT);
    assert_int_equal(it.ext_type, -1);
    assert_int_equal(it.len, 4);
    assert_memory_equal(it.ptr, "\0\0\0\1", 4);
    next_type(u, &it, SKC_T_EXT);
    assert_int_equal(it.ext_type, 5);
    assert_int_equal(it.len, 0);
    assert_inside(&it, data, sizeof(data));
    next_type(u, &it, SKC_T_EXT);
    assert_int_equal(it.ext_type, -128);
    assert_int_equal(it.len, 3);
    assert_memory_equal(it.ptr, "xyz", 3);
    next_type(u, &it, SKC_T_EXT);
    assert_int_equal(it.ext_type, 7);
    assert_int_equal(it.len, 1);
    assert_int_equal((unsigned char)it.ptr[0], 0xab);
    next_type(u, &it, SKC_T_EXT);
    assert_int_equal(it.ext_type, 9);
    assert_int_equal(it.len, 2);
    next_type(u, &it, SKC_T_EXT);
    assert_int_equal(it.ext_type, 2);
    assert_int_equal(it.len, 16);
    assert_int_equal(it.ptr[15], 15);
    expect_end(u);
    skc_unpack_destroy(u);
}

/* ---------------------------------------------------------------------- */
/* Flat reading of containers                                             */
/* ---------------------------------------------------------------------- */

/* A payload touching every type: the map
 *   { "a" = [1, [2, 3], {}], "b" = {"c" = nil}, 5 = true,
 *     "s" = <300-byte str>, "bin" = <bin>, "f" = -0.5, "big" = 2^64-1 }
 * then 42, then "end", then an empty array. */
static skc_pack *
build_complex(void)
{
    static char long_str[300];
    skc_pack *p = new_pack();

    memset(long_str, 'q', sizeof(long_str));
    assert_int_equal(skc_pack_map(p, 7), SKC_OK);
    assert_int_equal(skc_pack_str(p, "a", 1), SKC_OK);
    assert_int_equal(skc_pack_array(p, 3), SKC_OK);
    assert_int_equal(skc_pack_int(p, 1), SKC_OK);
    assert_int_equal(skc_pack_array(p, 2), SKC_OK);
    assert_int_equal(skc_pack_int(p, 2), SKC_OK);
    assert_int_equal(skc_pack_int(p, 3), SKC_OK);
    assert_int_equal(skc_pack_map(p, 0), SKC_OK);
    assert_int_equal(skc_pack_str(p, "b", 1), SKC_OK);
    assert_int_equal(skc_pack_map(p, 1), SKC_OK);
    assert_int_equal(skc_pack_str(p, "c", 1), SKC_OK);
    assert_int_equal(skc_pack_nil(p), SKC_OK);
    assert_int_equal(skc_pack_int(p, 5), SKC_OK);
    assert_int_equal(skc_pack_bool(p, 1), SKC_OK);
    assert_int_equal(skc_pack_str(p, "s", 1), SKC_OK);
    assert_int_equal(skc_pack_str(p, long_str, sizeof(long_str)), SKC_OK);
    assert_int_equal(skc_pack_str(p, "bin", 3), SKC_OK);
    assert_int_equal(skc_pack_bin(p, "\0\1\2", 3), SKC_OK);
    assert_int_equal(skc_pack_str(p, "f", 1), SKC_OK);
    assert_int_equal(skc_pack_double(p, -0.5), SKC_OK);
    assert_int_equal(skc_pack_str(p, "big", 3), SKC_OK);
    assert_int_equal(skc_pack_uint(p, UINT64_MAX), SKC_OK);
    assert_int_equal(skc_pack_int(p, 42), SKC_OK);
    assert_int_equal(skc_pack_str(p, "end", 3), SKC_OK);
    assert_int_equal(skc_pack_array(p, 0), SKC_OK);
    return p;
}

/* The flat sequence build_complex() must read back as. */
static const struct {
    int type;
    int64_t i;     /* INT, BOOL */
    uint32_t count; /* ARRAY, MAP */
    const char *s; /* STR (first bytes) */
} complex_items[] = {
    { SKC_T_MAP, 0, 7, NULL },
    { SKC_T_STR, 0, 0, "a" },
    { SKC_T_ARRAY, 0, 3, NULL },
    { SKC_T_INT, 1, 0, NULL },
    { SKC_T_ARRAY, 0, 2, NULL },
    { SKC_T_INT, 2, 0, NULL },
    { SKC_T_INT, 3, 0, NULL },
    { SKC_T_MAP, 0, 0, NULL },
    { SKC_T_STR, 0, 0, "b" },
    { SKC_T_MAP, 0, 1, NULL },
    { SKC_T_STR, 0, 0, "c" },
    { SKC_T_NIL, 0, 0, NULL },
    { SKC_T_INT, 5, 0, NULL },
    { SKC_T_BOOL, 1, 0, NULL },
    { SKC_T_STR, 0, 0, "s" },
    { SKC_T_STR, 0, 0, "qqq" },
    { SKC_T_STR, 0, 0, "bin" },
    { SKC_T_BIN, 0, 0, NULL },
    { SKC_T_STR, 0, 0, "f" },
    { SKC_T_FLOAT, 0, 0, NULL },
    { SKC_T_STR, 0, 0, "big" },
    { SKC_T_UINT, 0, 0, NULL },
    { SKC_T_INT, 42, 0, NULL },
    { SKC_T_STR, 0, 0, "end" },
    { SKC_T_ARRAY, 0, 0, NULL },
};
#define N_COMPLEX (sizeof(complex_items) / sizeof(complex_items[0]))

static void
test_nested(void **state)
{
    skc_pack *p = build_complex();
    skc_unpack *u;
    skc_item it = SKC_ITEM_INIT;
    const void *d;
    size_t len, i;

    (void)state;
    d = skc_pack_data(p, &len);
    u = new_unpack(d, len);
    for (i = 0; i < N_COMPLEX; i++) {
        next_type(u, &it, complex_items[i].type);
        switch (it.type) {
        case SKC_T_INT:
        case SKC_T_BOOL:
            assert_true(it.i == complex_items[i].i);
            break;
        case SKC_T_ARRAY:
        case SKC_T_MAP:
            assert_int_equal(it.count, complex_items[i].count);
            break;
        case SKC_T_STR:
            assert_true(it.len >= strlen(complex_items[i].s));
            assert_memory_equal(it.ptr, complex_items[i].s,
                strlen(complex_items[i].s));
            break;
        case SKC_T_BIN:
            assert_int_equal(it.len, 3);
            assert_memory_equal(it.ptr, "\0\1\2", 3);
            break;
        case SKC_T_FLOAT:
            assert_true(it.d == -0.5);
            break;
        case SKC_T_UINT:
            assert_true(it.u == UINT64_MAX);
            break;
        }
    }
    expect_end(u);
    skc_unpack_destroy(u);
    skc_pack_destroy(p);
}

/* What a read item looks like, with ptr as an offset, to compare readers
 * over different buffers. */
struct flat_item {
    int32_t type;
    int64_t i;
    uint64_t u;
    double d;
    size_t off;
    size_t len;
    uint32_t count;
};

static void
flatten(struct flat_item *f, const skc_item *it, const void *base)
{
    memset(f, 0, sizeof(*f));
    f->type = it->type;
    f->i = it->i;
    f->u = it->u;
    f->d = it->d;
    f->off = it->ptr != NULL ? (size_t)(it->ptr - (const char *)base) : 0;
    f->len = it->len;
    f->count = it->count;
}

/* Every prefix of a complex payload, in a buffer of exactly that size so
 * that ASan sees any read past it: the reader returns the items that are
 * whole, the same as for the full payload, then EPROTO (or 0 when the
 * prefix ends between top-level values), and never crashes. */
static void
test_truncated_prefixes(void **state)
{
    skc_pack *p = build_complex();
    struct flat_item full[N_COMPLEX], f;
    skc_item it = SKC_ITEM_INIT;
    skc_unpack *u;
    const void *d;
    size_t len, cut, n, ends = 0, protos = 0;
    int rc;

    (void)state;
    d = skc_pack_data(p, &len);
    u = new_unpack(d, len);
    for (n = 0; n < N_COMPLEX; n++) {
        assert_int_equal(skc_unpack_next(u, &it), 1);
        flatten(&full[n], &it, d);
    }
    expect_end(u);
    skc_unpack_destroy(u);

    for (cut = 0; cut < len; cut++) {
        char *buf = malloc(cut > 0 ? cut : 1);

        assert_non_null(buf);
        memcpy(buf, d, cut);
        u = new_unpack(buf, cut);
        n = 0;
        while ((rc = skc_unpack_next(u, &it)) == 1) {
            assert_true(n < N_COMPLEX);
            assert_true(it.ptr == NULL ||
                it.ptr + it.len <= buf + cut);
            flatten(&f, &it, buf);
            assert_memory_equal(&f, &full[n], sizeof(f));
            n++;
        }
        assert_true(n < N_COMPLEX);
        if (rc == 0) {
            ends++;
        } else {
            assert_int_equal(rc, SKC_EPROTO);
            expect_error_text("offset");
            /* Sticky. */
            assert_int_equal(skc_unpack_next(u, &it), SKC_EPROTO);
            protos++;
        }
        skc_unpack_destroy(u);
        free(buf);
    }
    /* Boundaries: 0, after the map, after 42, after "end". */
    assert_int_equal(ends, 4);
    assert_int_equal(protos, len - 4);
    skc_pack_destroy(p);
}

/* Builds `depth` nested arrays (maps if `map`, keyed by nil) around an
 * innermost nil, or an empty array if `empty_inner`. */
static skc_pack *
build_nested(int depth, int map, int empty_inner)
{
    skc_pack *p = new_pack();
    int i;

    for (i = 0; i < depth; i++) {
        if (map) {
            assert_int_equal(skc_pack_map(p, 1), SKC_OK);
            assert_int_equal(skc_pack_nil(p), SKC_OK);
        } else {
            assert_int_equal(skc_pack_array(p, 1), SKC_OK);
        }
    }
    if (empty_inner) {
        assert_int_equal(skc_pack_array(p, 0), SKC_OK);
    } else {
        assert_int_equal(skc_pack_nil(p), SKC_OK);
    }
    return p;
}

/* Reads a nested payload: returns the result of the first call that did
 * not return 1, and the containers seen in *containers. */
static int
read_nested(skc_pack *p, int *containers)
{
    skc_item it = SKC_ITEM_INIT;
    skc_unpack *u;
    const void *d;
    size_t len;
    int rc;

    d = skc_pack_data(p, &len);
    u = new_unpack(d, len);
    *containers = 0;
    while ((rc = skc_unpack_next(u, &it)) == 1) {
        if (it.type == SKC_T_ARRAY || it.type == SKC_T_MAP) {
            (*containers)++;
        }
    }
    if (rc < 0) {
        char first[256];

        /* Sticky, with the same text. */
        snprintf(first, sizeof(first), "%s", skc_last_error());
        assert_int_equal(skc_unpack_next(u, &it), rc);
        assert_string_equal(skc_last_error(), first);
    }
    skc_unpack_destroy(u);
    return rc;
}

static void
test_deep_nesting(void **state)
{
    static const struct {
        int depth, map, empty_inner, ok;
    } cases[] = {
        { 32, 0, 0, 1 },
        { 33, 0, 0, 1 },  /* beyond msgpack-c's own parser stack */
        { 40, 1, 0, 1 },
        { 64, 0, 0, 1 },
        { 64, 1, 0, 1 },
        { 63, 0, 1, 1 },  /* 64 levels counting the empty array */
        { 64, 0, 1, 0 },  /* the empty array is level 65 */
        { 65, 0, 0, 0 },
        { 65, 1, 0, 0 },
        { 100, 0, 0, 0 },
        { 100000, 0, 0, 0 },
    };
    size_t i;
    int containers;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        skc_pack *p = build_nested(
            cases[i].depth, cases[i].map, cases[i].empty_inner);
        int rc = read_nested(p, &containers);

        if (cases[i].ok) {
            assert_int_equal(rc, 0);
            assert_int_equal(containers,
                cases[i].depth + cases[i].empty_inner);
        } else {
            assert_int_equal(rc, SKC_EPROTO);
            expect_error_text("nesting deeper than 64");
            assert_int_equal(containers, 64);
        }
        skc_pack_destroy(p);
    }
}

/* Closed containers leave the depth: many deep values side by side, and
 * one wide array of deep values, are fine. */
static void
test_depth_is_released(void **state)
{
    skc_pack *p = new_pack();
    skc_unpack *u;
    skc_item it = SKC_ITEM_INIT;
    const void *d;
    size_t len, items = 0;
    int i, j, rc;

    (void)state;
    for (i = 0; i < 10; i++) {
        for (j = 0; j < 64; j++) {
            assert_int_equal(skc_pack_array(p, 1), SKC_OK);
        }
        assert_int_equal(skc_pack_int(p, i), SKC_OK);
    }
    assert_int_equal(skc_pack_array(p, 10), SKC_OK);
    for (i = 0; i < 10; i++) {
        for (j = 0; j < 63; j++) {
            assert_int_equal(skc_pack_array(p, 1), SKC_OK);
        }
        assert_int_equal(skc_pack_int(p, i), SKC_OK);
    }
    d = skc_pack_data(p, &len);
    u = new_unpack(d, len);
    while ((rc = skc_unpack_next(u, &it)) == 1) {
        items++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(items, 10 * 65 + 1 + 10 * 64);
    skc_unpack_destroy(u);
    skc_pack_destroy(p);
}

/* ---------------------------------------------------------------------- */
/* Hostile input                                                          */
/* ---------------------------------------------------------------------- */

/* Reads data to the end; returns the final code and the item count. */
static int
read_all(const void *data, size_t len, size_t *items)
{
    skc_item it = SKC_ITEM_INIT;
    skc_unpack *u = new_unpack(data, len);
    int rc;

    *items = 0;
    while ((rc = skc_unpack_next(u, &it)) == 1) {
        (*items)++;
    }
    skc_unpack_destroy(u);
    return rc;
}

static void
test_garbage(void **state)
{
    static const struct {
        const char *bytes;
        size_t len;
        size_t items;       /* read before the failure */
        const char *detail; /* in skc_last_error() */
    } cases[] = {
        { "\xc1", 1, 0, "invalid byte 0xc1 at offset 0" },
        { "\x01\xc1", 2, 1, "invalid byte 0xc1 at offset 1" },
        { "\x92\x01\xc1", 3, 2, "at offset 2" },
        /* absurd counts fail at the header, before any allocation */
        { "\xdd\xff\xff\xff\xff", 5, 0, "claims 4294967295 elements" },
        { "\xdf\xff\xff\xff\xff", 5, 0, "claims 4294967295 pairs" },
        { "\xdc\xff\xff\x01", 4, 0, "only 1 bytes follow" },
        { "\x93\x01\x02", 3, 0, "array at offset 0 claims 3" },
        { "\x81\x01", 2, 0, "map at offset 0" },
        /* a child is missing at the very end */
        { "\x92\x92\x01\x02", 4, 4, "data ends at offset 4" },
        /* cut headers and bodies */
        { "\xdc\x00", 2, 0, "header at offset 0" },
        { "\xdf\x00\x00\x00", 4, 0, "header at offset 0" },
        { "\xdb\xff\xff\xff\xff", 5, 0, "truncated" },
        { "\xa5" "abcd", 5, 0, "value at offset 0" },
        { "\xc4", 1, 0, "truncated" },
        { "\x00\xcb\x00\x00", 4, 1, "value at offset 1" },
        { "\xd4\x01", 2, 0, "truncated" },
        { "\xc7\x05\x01\x02", 4, 0, "truncated" },
        { "\xcf\x00", 2, 0, "truncated" },
    };
    size_t i, items;
    int rc;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *buf = malloc(cases[i].len);

        assert_non_null(buf);
        memcpy(buf, cases[i].bytes, cases[i].len);
        rc = read_all(buf, cases[i].len, &items);
        if (rc != SKC_EPROTO || items != cases[i].items ||
            strstr(skc_last_error(), cases[i].detail) == NULL) {
            fail_msg("case %zu: rc %d, %zu items, detail \"%s\"", i, rc,
                items, skc_last_error());
        }
        free(buf);
    }
}

/* Random bytes: whatever they are, the reader ends with 0 or EPROTO. */
static void
test_random_bytes(void **state)
{
    uint64_t seed = 0x9e3779b97f4a7c15u;
    size_t round, i, items;
    unsigned char *buf;
    int rc;

    (void)state;
    for (round = 0; round < 20000; round++) {
        size_t len = round % 48;

        buf = malloc(len > 0 ? len : 1);
        assert_non_null(buf);
        for (i = 0; i < len; i++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            buf[i] = (unsigned char)(seed >> 56);
        }
        rc = read_all(buf, len, &items);
        assert_true(rc == 0 || rc == SKC_EPROTO);
        assert_true(items <= len);
        free(buf);
    }
}

static void
test_big_string(void **state)
{
    const size_t n = 1u << 20;
    skc_pack *p = new_pack();
    skc_unpack *u;
    skc_item it = SKC_ITEM_INIT;
    char *s = malloc(n);
    const void *d;
    size_t len, i;

    (void)state;
    assert_non_null(s);
    for (i = 0; i < n; i++) {
        s[i] = (char)(i % 251);
    }
    assert_int_equal(skc_pack_str(p, s, n), SKC_OK);
    assert_int_equal(skc_pack_int(p, 7), SKC_OK);
    d = skc_pack_data(p, &len);
    assert_int_equal(len, 5 + n + 1);

    u = new_unpack(d, len);
    next_type(u, &it, SKC_T_STR);
    assert_int_equal(it.len, n);
    assert_ptr_equal(it.ptr, (const char *)d + 5);
    assert_memory_equal(it.ptr, s, n);
    next_type(u, &it, SKC_T_INT);
    assert_true(it.i == 7);
    expect_end(u);
    skc_unpack_destroy(u);
    skc_pack_destroy(p);
    free(s);
}

/* skc.h: item->ptr "stays valid as long as the reader's data", so also
 * after the reader is gone. */
static void
test_ptr_outlives_reader(void **state)
{
    static const unsigned char data[] = { 0xa3, 'x', 'y', 'z' };
    skc_unpack *u = new_unpack(data, sizeof(data));
    skc_item it = SKC_ITEM_INIT;

    (void)state;
    next_type(u, &it, SKC_T_STR);
    skc_unpack_destroy(u);
    assert_ptr_equal(it.ptr, (const char *)data + 1);
    assert_memory_equal(it.ptr, "xyz", 3);
}

static void
test_reset(void **state)
{
    skc_pack *p = new_pack();
    skc_unpack *u;
    skc_item it = SKC_ITEM_INIT;
    const void *d;
    size_t len;

    (void)state;
    assert_int_equal(skc_pack_str(p, "hello", 5), SKC_OK);
    skc_pack_reset(p);
    d = skc_pack_data(p, &len);
    assert_non_null(d);
    assert_int_equal(len, 0);
    assert_int_equal(skc_pack_int(p, -5), SKC_OK);
    d = skc_pack_data(p, &len);
    assert_int_equal(len, 1);
    u = new_unpack(d, len);
    next_type(u, &it, SKC_T_INT);
    assert_true(it.i == -5);
    expect_end(u);
    skc_unpack_destroy(u);
    skc_pack_reset(NULL);
    skc_pack_destroy(p);
}

static void
test_bad_args(void **state)
{
    static const unsigned char one[] = { 0x01 };
    skc_pack *p = new_pack();
    skc_unpack *u = (skc_unpack *)(uintptr_t)1; /* must become NULL */
    skc_item it = SKC_ITEM_INIT;
    const void *d;
    size_t len = 99;

    (void)state;
    assert_int_equal(skc_pack_create(NULL), SKC_EINVAL);
    expect_error_text("out is NULL");
    assert_int_equal(skc_unpack_create(NULL, one, 1), SKC_EINVAL);
    assert_int_equal(skc_unpack_create(&u, NULL, 1), SKC_EINVAL);
    assert_null(u);

    assert_int_equal(skc_pack_nil(NULL), SKC_EINVAL);
    expect_error_text("skc_pack_nil");
    assert_int_equal(skc_pack_bool(NULL, 1), SKC_EINVAL);
    assert_int_equal(skc_pack_int(NULL, 1), SKC_EINVAL);
    assert_int_equal(skc_pack_uint(NULL, 1), SKC_EINVAL);
    assert_int_equal(skc_pack_double(NULL, 1), SKC_EINVAL);
    assert_int_equal(skc_pack_str(NULL, "a", 1), SKC_EINVAL);
    assert_int_equal(skc_pack_bin(NULL, "a", 1), SKC_EINVAL);
    assert_int_equal(skc_pack_array(NULL, 1), SKC_EINVAL);
    assert_int_equal(skc_pack_map(NULL, 1), SKC_EINVAL);
    assert_null(skc_pack_data(NULL, &len));
    assert_int_equal(len, 0);
    assert_null(skc_pack_data(NULL, NULL));

    assert_int_equal(skc_pack_str(p, NULL, 1), SKC_EINVAL);
    expect_error_text("NULL with length 1");
    assert_int_equal(skc_pack_bin(p, NULL, 2), SKC_EINVAL);
    if ((uint64_t)SIZE_MAX > UINT32_MAX) {
        /* Refused before the bytes are read, so a short buffer is safe. */
        size_t huge = (size_t)((uint64_t)UINT32_MAX + 1);

        assert_int_equal(skc_pack_str(p, "x", huge), SKC_ETOOBIG);
        expect_error_text("4294967296 bytes");
        assert_int_equal(skc_pack_bin(p, "x", huge), SKC_ETOOBIG);
    }
    d = skc_pack_data(p, &len);
    assert_non_null(d);
    assert_int_equal(len, 0); /* failed appends left nothing behind */

    u = new_unpack(one, sizeof(one));
    assert_int_equal(skc_unpack_next(NULL, &it), SKC_EINVAL);
    assert_int_equal(skc_unpack_next(u, NULL), SKC_EINVAL);
    it.size = 0;
    assert_int_equal(skc_unpack_next(u, &it), SKC_EINVAL);
    expect_error_text("item.size");
    it.size = sizeof(skc_item) - 1;
    assert_int_equal(skc_unpack_next(u, &it), SKC_EINVAL);
    /* Bad arguments do not break the reader. */
    it.size = sizeof(skc_item);
    next_type(u, &it, SKC_T_INT);
    assert_true(it.i == 1);
    expect_end(u);
    skc_unpack_destroy(u);

    skc_unpack_destroy(NULL);
    skc_pack_destroy(NULL);
    skc_pack_destroy(p);
}

/* A caller compiled against a later, larger skc_item: accepted, and the
 * tail this version does not know is left alone. */
static void
test_larger_item(void **state)
{
    static const unsigned char data[] = { 0x2a };
    struct {
        skc_item item;
        uint64_t later_field;
    } big;
    skc_unpack *u = new_unpack(data, sizeof(data));

    (void)state;
    memset(&big, 0, sizeof(big));
    big.item.size = sizeof(big);
    big.later_field = 0x1234;
    assert_int_equal(skc_unpack_next(u, &big.item), 1);
    assert_int_equal(big.item.type, SKC_T_INT);
    assert_true(big.item.i == 42);
    assert_true(big.later_field == 0x1234);
    skc_unpack_destroy(u);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_payload),
        cmocka_unit_test(test_nil_bool),
        cmocka_unit_test(test_int_widths),
        cmocka_unit_test(test_uint),
        cmocka_unit_test(test_foreign_int_forms),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_bin),
        cmocka_unit_test(test_nul_string),
        cmocka_unit_test(test_ext),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_truncated_prefixes),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_depth_is_released),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_big_string),
        cmocka_unit_test(test_ptr_outlives_reader),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_larger_item),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
