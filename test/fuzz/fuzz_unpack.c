/* fuzz_unpack.c -- libFuzzer target for the payload reader (lib/value.c).
 *
 * Reads every item of the input until the end or an error, and checks
 * what skc.h promises: only 1, 0 or SKC_EPROTO come back, errors are
 * sticky, borrowed bytes lie inside the input, counts fit the input.
 * When the input reads cleanly (and holds no ext, which skc cannot
 * pack), it is re-encoded with skc_pack_* and both are read side by side:
 * the item sequences must match.
 *
 * Build (from the source root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Ilib \
 *       lib/value.c lib/error.c test/fuzz/fuzz_unpack.c \
 *       $(pkg-config --cflags --libs msgpack) -o /tmp/fuzz_unpack
 *   /tmp/fuzz_unpack -max_total_time=60 test/fuzz/corpus/unpack
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skc/skc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken promise is a crash, so libFuzzer keeps the input. */
#define CHECK(c)                                                             \
    do {                                                                     \
        if (!(c)) {                                                          \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* Checks one item against the input it came from. */
static void
fuzz_check_item(const skc_item *it, const uint8_t *data, size_t size)
{
    CHECK(it->size == sizeof(skc_item));
    CHECK(it->type >= SKC_T_NIL && it->type <= SKC_T_EXT);
    switch (it->type) {
    case SKC_T_BOOL:
        CHECK(it->i == 0 || it->i == 1);
        break;
    case SKC_T_UINT:
        CHECK(it->u > (uint64_t)INT64_MAX);
        break;
    case SKC_T_STR:
    case SKC_T_BIN:
    case SKC_T_EXT:
        CHECK(it->ptr != NULL);
        CHECK((const uint8_t *)it->ptr >= data);
        CHECK(it->len <= size);
        CHECK((const uint8_t *)it->ptr + it->len <= data + size);
        break;
    case SKC_T_ARRAY:
        CHECK(it->count <= size);
        break;
    case SKC_T_MAP:
        CHECK(2 * (uint64_t)it->count <= size);
        break;
    default:
        break;
    }
}

/* Appends what `it` describes; returns 0 when it cannot (ext). */
static int
fuzz_repack(skc_pack *p, const skc_item *it)
{
    int rc;

    switch (it->type) {
    case SKC_T_NIL:
        rc = skc_pack_nil(p);
        break;
    case SKC_T_BOOL:
        rc = skc_pack_bool(p, (int)it->i);
        break;
    case SKC_T_INT:
        rc = skc_pack_int(p, it->i);
        break;
    case SKC_T_UINT:
        rc = skc_pack_uint(p, it->u);
        break;
    case SKC_T_FLOAT:
        rc = skc_pack_double(p, it->d);
        break;
    case SKC_T_STR:
        rc = skc_pack_str(p, it->ptr, it->len);
        break;
    case SKC_T_BIN:
        rc = skc_pack_bin(p, it->ptr, it->len);
        break;
    case SKC_T_ARRAY:
        rc = skc_pack_array(p, it->count);
        break;
    case SKC_T_MAP:
        rc = skc_pack_map(p, it->count);
        break;
    default:
        return 0;
    }
    CHECK(rc == SKC_OK);
    return 1;
}

/* The same value, whatever encoding width carried it. */
static int
fuzz_same(const skc_item *a, const skc_item *b)
{
    if (a->type != b->type) {
        return 0;
    }
    switch (a->type) {
    case SKC_T_BOOL:
    case SKC_T_INT:
        return a->i == b->i;
    case SKC_T_UINT:
        return a->u == b->u;
    case SKC_T_FLOAT:
        /* Bitwise: NaN payloads and -0.0 must survive too. */
        return memcmp(&a->d, &b->d, sizeof(double)) == 0;
    case SKC_T_STR:
    case SKC_T_BIN:
        return a->len == b->len &&
            (a->len == 0 || memcmp(a->ptr, b->ptr, a->len) == 0);
    case SKC_T_ARRAY:
    case SKC_T_MAP:
        return a->count == b->count;
    default:
        return 1;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    skc_item it = SKC_ITEM_INIT, again = SKC_ITEM_INIT;
    skc_unpack *u, *v;
    skc_pack *p;
    const void *out;
    size_t out_len, items = 0;
    int rc, repackable = 1;

    CHECK(skc_unpack_create(&u, data, size) == SKC_OK);
    CHECK(skc_pack_create(&p) == SKC_OK);
    while ((rc = skc_unpack_next(u, &it)) == 1) {
        fuzz_check_item(&it, data, size);
        if (repackable) {
            repackable = fuzz_repack(p, &it);
        }
        items++;
        /* Every item takes at least one byte of input. */
        CHECK(items <= size);
    }
    CHECK(rc == 0 || rc == SKC_EPROTO);
    CHECK(skc_unpack_next(u, &it) == rc);
    skc_unpack_destroy(u);

    if (rc == 0 && repackable) {
        out = skc_pack_data(p, &out_len);
        CHECK(out != NULL);
        CHECK(skc_unpack_create(&u, data, size) == SKC_OK);
        CHECK(skc_unpack_create(&v, out, out_len) == SKC_OK);
        do {
            rc = skc_unpack_next(u, &it);
            CHECK(skc_unpack_next(v, &again) == rc);
            CHECK(rc != 1 || fuzz_same(&it, &again));
        } while (rc == 1);
        CHECK(rc == 0);
        skc_unpack_destroy(v);
        skc_unpack_destroy(u);
    }
    skc_pack_destroy(p);
    return 0;
}
