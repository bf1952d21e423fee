/* test_wire.c -- frame codec and the small containers (id map, heap,
 * string map).  Links skc_static to reach internals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skc/skc.h"
#include "util.h"
#include "wire.h"

static size_t
build_req(uint8_t *buf, const char *target, const char *payload)
{
    skci_req r;
    memset(&r, 0, sizeof(r));
    r.kind = SKCI_KIND_CALL;
    r.timeout_ms = 1234;
    r.max_reply = 99;
    r.id = 0x1122334455667788ULL;
    assert_int_equal(skci_target_parse(&r.target, target, 0), 0);
    r.len = (uint32_t)strlen(payload);
    size_t h = skci_wire_req_hdr_size(&r);
    skci_wire_req_put_hdr(buf, &r);
    memcpy(buf + h, payload, r.len);
    return h + r.len;
}

static void
test_req_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t n = build_req(buf, "@sdb", "hello");
    assert_int_equal(n, SKCI_REQ_FIXED + 3 + 5);
    skci_req d;
    char err[128];
    assert_int_equal(skci_wire_req_decode(&d, buf, n, err, sizeof(err)), 0);
    assert_int_equal(d.kind, SKCI_KIND_CALL);
    assert_int_equal(d.timeout_ms, 1234);
    assert_int_equal(d.max_reply, 99);
    assert_true(d.id == 0x1122334455667788ULL);
    assert_int_equal(d.target.type, SKCI_TARGET_CLUSTER);
    assert_int_equal(d.target.name_len, 3);
    assert_memory_equal(d.target.name, "sdb", 3);
    assert_int_equal(d.len, 5);
    assert_memory_equal(d.payload, "hello", 5);
    /* byte layout: magic, version, little-endian fields */
    assert_int_equal(buf[0], 'S');
    assert_int_equal(buf[1], 'K');
    assert_int_equal(buf[2], 1);
    assert_int_equal(buf[8], 1234 & 0xff);
    assert_int_equal(buf[16], 0x88);

    n = build_req(buf, ":0000000a", "");
    assert_int_equal(skci_wire_req_decode(&d, buf, n, err, sizeof(err)), 0);
    assert_int_equal(d.target.type, SKCI_TARGET_HANDLE);
    assert_int_equal(d.target.handle, 10);
    assert_int_equal(d.len, 0);
}

static void
test_req_bad(void **state)
{
    (void)state;
    uint8_t buf[512];
    char err[128];
    skci_req d;
    size_t n = build_req(buf, ".local", "payload");
    /* every truncation is rejected, never read past */
    for (size_t i = 0; i < n; i++) {
        uint8_t *copy = malloc(i ? i : 1);
        memcpy(copy, buf, i);
        assert_int_equal(skci_wire_req_decode(&d, copy, i, err, sizeof(err)),
            SKC_EPROTO);
        assert_true(err[0] != '\0');
        free(copy);
    }
    uint8_t b2[512];
    memcpy(b2, buf, n);
    b2[0] = 'X';
    assert_int_equal(skci_wire_req_decode(&d, b2, n, err, sizeof(err)),
        SKC_EPROTO);
    assert_non_null(strstr(err, "magic"));
    memcpy(b2, buf, n);
    b2[2] = 9;
    assert_int_equal(skci_wire_req_decode(&d, b2, n, err, sizeof(err)),
        SKC_EPROTO);
    assert_non_null(strstr(err, "version"));
    memcpy(b2, buf, n);
    b2[3] = 77;
    assert_int_equal(skci_wire_req_decode(&d, b2, n, err, sizeof(err)),
        SKC_EPROTO);
    /* lying payload length */
    memcpy(b2, buf, n);
    skci_put_u32(b2 + 30 + 5, 1000);
    assert_int_equal(skci_wire_req_decode(&d, b2, n, err, sizeof(err)),
        SKC_EPROTO);
    assert_non_null(strstr(err, "length"));
    /* lying name length */
    memcpy(b2, buf, n);
    b2[25] = 250;
    assert_int_equal(skci_wire_req_decode(&d, b2, n, err, sizeof(err)),
        SKC_EPROTO);
    /* extra trailing bytes */
    memcpy(b2, buf, n);
    b2[n] = 0;
    assert_int_equal(skci_wire_req_decode(&d, b2, n + 1, err, sizeof(err)),
        SKC_EPROTO);
    /* bad target type and a handle with a name */
    memcpy(b2, buf, n);
    b2[24] = 9;
    assert_int_equal(skci_wire_req_decode(&d, b2, n, err, sizeof(err)),
        SKC_EPROTO);
    memcpy(b2, buf, n);
    b2[24] = SKCI_TARGET_HANDLE;
    assert_int_equal(skci_wire_req_decode(&d, b2, n, err, sizeof(err)),
        SKC_EPROTO);
    /* NUL inside the name */
    memcpy(b2, buf, n);
    b2[31] = 0;
    assert_int_equal(skci_wire_req_decode(&d, b2, n, err, sizeof(err)),
        SKC_EPROTO);
    /* random garbage never crashes */
    srand(7);
    for (int k = 0; k < 20000; k++) {
        size_t len = (size_t)(rand() % 64);
        for (size_t i = 0; i < len; i++) {
            b2[i] = (uint8_t)rand();
        }
        if (len > 3 && (k & 1)) {
            b2[0] = 'S';
            b2[1] = 'K';
            b2[2] = 1;
        }
        skci_wire_req_decode(&d, b2, len, err, sizeof(err));
        skci_rep rp;
        skci_wire_rep_decode(&rp, b2, len, err, sizeof(err));
    }
}

static void
test_reply(void **state)
{
    (void)state;
    uint8_t buf[64];
    skci_wire_rep_put_hdr(buf, 8, 42, 5);
    memcpy(buf + SKCI_REP_FIXED, "oops!", 5);
    skci_rep r;
    char err[128];
    assert_int_equal(skci_wire_rep_decode(&r, buf, SKCI_REP_FIXED + 5, err,
                         sizeof(err)), 0);
    assert_int_equal(r.status, 8);
    assert_true(r.id == 42);
    assert_int_equal(r.len, 5);
    assert_int_equal(skci_wire_rep_decode(&r, buf, SKCI_REP_FIXED + 4, err,
                         sizeof(err)), SKC_EPROTO);
    buf[3] = SKCI_KIND_CALL;
    assert_int_equal(skci_wire_rep_decode(&r, buf, SKCI_REP_FIXED + 5, err,
                         sizeof(err)), SKC_EPROTO);
}

static void
test_hello(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n = skci_wire_hello_size(2, 20, 0);
    skci_wire_hello_put(
        buf, 1000, "db", 2, "tcp://127.0.0.1:5555", 20, 0, SKCI_FEAT_ORDER);
    skci_hello h;
    char err[128];
    assert_int_equal(n, 4 + 2 + 2 + 2 + 20);
    assert_int_equal(skci_wire_hello_decode(&h, buf, n, err, sizeof(err)), 0);
    assert_int_equal(h.max_msg, 1000);
    assert_memory_equal(h.name, "db", 2);
    assert_memory_equal(h.url, "tcp://127.0.0.1:5555", 20);
    assert_false(h.has_features);
    assert_int_equal(h.features, 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(skci_wire_hello_decode(&h, buf, i, err,
                             sizeof(err)), SKC_EPROTO);
    }
    /* the form with the features word (asked for by the HELLO) */
    n = skci_wire_hello_size(2, 20, 1);
    assert_int_equal(n, 4 + 2 + 2 + 2 + 20 + 4);
    skci_wire_hello_put(
        buf, 1000, "db", 2, "tcp://127.0.0.1:5555", 20, 1, SKCI_FEAT_ORDER);
    assert_int_equal(buf[n - 4], SKCI_FEAT_ORDER);
    assert_int_equal(skci_wire_hello_decode(&h, buf, n, err, sizeof(err)), 0);
    assert_true(h.has_features);
    assert_int_equal(h.features, SKCI_FEAT_ORDER);
    assert_memory_equal(h.url, "tcp://127.0.0.1:5555", 20);
    /* 1..3 bytes after the url, or 5: neither form */
    for (size_t extra = 1; extra <= 5; extra++) {
        if (extra == 4) {
            continue;
        }
        assert_int_equal(skci_wire_hello_decode(&h, buf,
                             skci_wire_hello_size(2, 20, 0) + extra, err,
                             sizeof(err)),
            SKC_EPROTO);
    }
}

/* The order block (flags bit 0) on a CALL and a SEND: layout, decode,
 * the form without it for an older peer, truncations. */
static void
test_req_order(void **state)
{
    (void)state;
    uint8_t buf[512], plain[512];
    char err[128];
    skci_req r, d;
    memset(&r, 0, sizeof(r));
    r.kind = SKCI_KIND_SEND;
    r.flags = SKCI_FLAG_ORDER;
    r.id = 5;
    r.stream = 0x0102030405060708ULL;
    r.seq = 9;
    assert_int_equal(skci_target_parse(&r.target, "@kv", 0), 0);
    r.len = 3;
    size_t h = skci_wire_req_hdr_size(&r);
    assert_int_equal(h, SKCI_REQ_FIXED + 2 + SKCI_ORDER_BLOCK);
    skci_wire_req_put_hdr(buf, &r);
    memcpy(buf + h, "abc", 3);
    size_t n = h + 3;
    /* offsets: L at 30+N, stream at 34+N, seq at 42+N, payload at 50+N */
    assert_int_equal(skci_get_u32(buf + 4), SKCI_FLAG_ORDER);
    assert_int_equal(skci_get_u32(buf + 32), 3);
    assert_true(skci_get_u64(buf + 36) == 0x0102030405060708ULL);
    assert_true(skci_get_u64(buf + 44) == 9);
    assert_memory_equal(buf + 52, "abc", 3);
    assert_int_equal(skci_wire_req_decode(&d, buf, n, err, sizeof(err)), 0);
    assert_true(d.stream == r.stream);
    assert_true(d.seq == 9);
    assert_int_equal(d.len, 3);
    assert_memory_equal(d.payload, "abc", 3);
    /* restamped in place */
    skci_wire_req_set_order(buf, 77, 78);
    assert_int_equal(skci_wire_req_decode(&d, buf, n, err, sizeof(err)), 0);
    assert_true(d.stream == 77 && d.seq == 78);
    /* every truncation is rejected */
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(skci_wire_req_decode(&d, buf, i, err, sizeof(err)),
            SKC_EPROTO);
    }
    /* without the flag the same bytes are 16 too many */
    memcpy(plain, buf, n);
    skci_put_u32(plain + 4, 0);
    assert_int_equal(skci_wire_req_decode(&d, plain, n, err, sizeof(err)),
        SKC_EPROTO);
    /* unknown flag bits are ignored */
    skci_put_u32(buf + 4, SKCI_FLAG_ORDER | 0x80000000u);
    assert_int_equal(skci_wire_req_decode(&d, buf, n, err, sizeof(err)), 0);
    assert_true(d.seq == 78);
    skci_put_u32(buf + 4, SKCI_FLAG_ORDER);
    /* stripped: a version-1 frame an older node reads */
    skci_wire_req_strip_order(plain, buf, n);
    assert_int_equal(skci_wire_req_decode(
                         &d, plain, n - SKCI_ORDER_BLOCK, err, sizeof(err)),
        0);
    assert_int_equal(d.flags, 0);
    assert_true(d.stream == 0 && d.seq == 0 && d.id == 5);
    assert_int_equal(d.len, 3);
    assert_memory_equal(d.payload, "abc", 3);
    /* a CALL carries it too; HELLO/QUERY/PING ignore bit 0 (no block) */
    r.kind = SKCI_KIND_CALL;
    assert_int_equal(skci_wire_req_hdr_size(&r), h);
    r.kind = SKCI_KIND_PING;
    r.target.type = SKCI_TARGET_NONE;
    r.target.name_len = 0;
    r.len = 0;
    assert_int_equal(skci_wire_req_hdr_size(&r), SKCI_REQ_FIXED);
    skci_wire_req_put_hdr(buf, &r);
    assert_int_equal(
        skci_wire_req_decode(&d, buf, SKCI_REQ_FIXED, err, sizeof(err)), 0);
    assert_int_equal(d.flags, SKCI_FLAG_ORDER);
    assert_true(d.stream == 0);
    assert_false(skci_wire_req_has_order(SKCI_KIND_QUERY, SKCI_FLAG_ORDER));
    assert_false(skci_wire_req_has_order(SKCI_KIND_HELLO, SKCI_FLAG_ORDER));
    assert_true(skci_wire_req_has_order(SKCI_KIND_SEND, SKCI_FLAG_ORDER));
    assert_false(skci_wire_req_has_order(SKCI_KIND_CALL, 0));
}

static void
test_targets(void **state)
{
    (void)state;
    skci_target t;
    char b[300];
    assert_int_equal(skci_target_parse(&t, ":a", 0), 0);
    assert_int_equal(t.handle, 10);
    skci_target_format(&t, b, sizeof(b));
    assert_string_equal(b, ":0000000a");
    assert_int_equal(skci_target_parse(&t, ":0", 0), SKC_EINVAL);
    assert_int_equal(skci_target_parse(&t, ":123456789", 0), SKC_EINVAL);
    assert_int_equal(skci_target_parse(&t, ":xyz", 0), SKC_EINVAL);
    assert_int_equal(skci_target_parse(&t, "@", 0), SKC_EINVAL);
    assert_int_equal(skci_target_parse(&t, "", 0), SKC_EINVAL);
    assert_int_equal(skci_target_parse(&t, NULL, 0), SKC_EINVAL);
    assert_int_equal(skci_target_parse(&t, "bare", 0), SKC_EINVAL);
    assert_int_equal(skci_target_parse(&t, "bare", 1), 0);
    assert_int_equal(t.type, SKCI_TARGET_CLUSTER);
    char longname[300];
    memset(longname, 'a', sizeof(longname));
    longname[0] = '@';
    longname[256] = '\0'; /* 255 after '@' */
    assert_int_equal(skci_target_parse(&t, longname, 0), 0);
    longname[256] = 'a';
    longname[257] = '\0';
    assert_int_equal(skci_target_parse(&t, longname, 0), SKC_EINVAL);
    assert_int_equal(skci_target_parse(&t, ".x", 0), 0);
    skci_target_format(&t, b, sizeof(b));
    assert_string_equal(b, ".x");
}

static void
test_idmap(void **state)
{
    (void)state;
    skci_idmap m;
    skci_idmap_init(&m);
    for (uint32_t i = 1; i <= 5000; i++) {
        assert_int_equal(skci_idmap_set(&m, i, (void *)(uintptr_t)(i * 2)),
            0);
    }
    for (uint32_t i = 1; i <= 5000; i += 2) {
        assert_true(skci_idmap_del(&m, i) == (void *)(uintptr_t)(i * 2));
    }
    for (uint32_t i = 1; i <= 5000; i++) {
        void *v = skci_idmap_get(&m, i);
        assert_true(v == ((i & 1) ? NULL : (void *)(uintptr_t)(i * 2)));
    }
    assert_int_equal(m.count, 2500);
    /* churn: tombstones are reclaimed, capacity stays bounded */
    for (uint32_t k = 0; k < 200000; k++) {
        uint32_t id = 10000 + k;
        skci_idmap_set(&m, id, &m);
        skci_idmap_del(&m, id);
    }
    assert_true(m.cap <= 16384);
    assert_int_equal(skci_idmap_set(&m, 0, &m), SKC_EINVAL);
    skci_idmap_fini(&m);
}

static void
test_heap(void **state)
{
    (void)state;
    skci_heap h;
    skci_heap_init(&h);
    skci_heap_node nodes[300];
    srand(3);
    for (int i = 0; i < 300; i++) {
        nodes[i].when = rand() % 1000;
        assert_int_equal(skci_heap_push(&h, &nodes[i]), 0);
    }
    for (int i = 0; i < 300; i += 3) {
        skci_heap_remove(&h, &nodes[i]);
        assert_true(nodes[i].idx == SKCI_HEAP_NONE);
    }
    int64_t last = -1;
    int count = 0;
    skci_heap_node *top;
    while ((top = skci_heap_top(&h)) != NULL) {
        assert_true(top->when >= last);
        last = top->when;
        skci_heap_remove(&h, top);
        count++;
    }
    assert_int_equal(count, 200);
    skci_heap_fini(&h);
}

static void
test_strmap(void **state)
{
    (void)state;
    skci_strmap m;
    skci_strmap_init(&m);
    char k[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof(k), "key%d", i);
        assert_int_equal(skci_strmap_set(&m, k, (void *)(uintptr_t)(i + 1)),
            0);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof(k), "key%d", i);
        assert_true(skci_strmap_get(&m, k) == (void *)(uintptr_t)(i + 1));
    }
    assert_null(skci_strmap_get(&m, "nope"));
    assert_true(skci_strmap_del(&m, "key5") == (void *)(uintptr_t)6);
    assert_null(skci_strmap_del(&m, "key5"));
    skci_strmap_fini(&m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_req_roundtrip),
        cmocka_unit_test(test_req_bad),
        cmocka_unit_test(test_reply),
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_req_order),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_idmap),
        cmocka_unit_test(test_heap),
        cmocka_unit_test(test_strmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
