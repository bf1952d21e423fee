/* fuzz_wire.c -- libFuzzer target for the frame codec (lib/wire.c).
 *
 * The first input byte picks a decoder, the rest is its input:
 *   0  skci_wire_req_decode   (CALL/SEND/HELLO/QUERY/PING frames)
 *   1  skci_wire_rep_decode   (REPLY frames)
 *   2  skci_wire_hello_decode (the body of a HELLO reply)
 *   3  skci_target_parse / skci_target_format (user target strings)
 * and the promises of wire.h are checked: a rejected input gives
 * SKC_EPROTO (SKC_EINVAL for targets) with a NUL-terminated reason that
 * never overruns the error buffer; an accepted one has every pointer and
 * length inside the input, and encoding what was decoded gives back the
 * input's bytes exactly.  A broken promise traps, so libFuzzer keeps the
 * input.  Seeds: corpus/wire/ (made by make_wire_corpus.py).
 *
 * Build (from the source root; test/fuzz/run.sh does this):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *       -Iinclude -Ilib lib/wire.c lib/error.c test/fuzz/fuzz_wire.c \
 *       -o /tmp/fuzz_wire
 *   cp -r test/fuzz/corpus/wire /tmp/wire-corpus
 *   /tmp/fuzz_wire -max_total_time=60 /tmp/wire-corpus
 */
#include "skc/skc.h"
#include "wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                             \
    do {                                                                     \
        if (!(c)) {                                                          \
            __builtin_trap();                                                \
        }                                                                    \
    } while (0)

/* A pointer range lies inside [buf, buf + len). */
static int
inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
    const uint8_t *q = p;
    return q >= buf && n <= len && q + n <= buf + len;
}

/* The error text of a rejected input: NUL-terminated inside errlen, not a
 * byte written past it, and not empty. */
static void
check_err(const char *err, size_t errlen, char guard)
{
    CHECK(err[errlen] == guard);
    if (errlen > 0) {
        CHECK(memchr(err, '\0', errlen) != NULL);
        CHECK(errlen == 1 || err[0] != '\0');
    }
}

static void
fuzz_req(const uint8_t *buf, size_t len, size_t errlen)
{
    skci_req r;
    char err[300];
    err[errlen] = 'Z';
    int rc = skci_wire_req_decode(&r, buf, len, err, errlen);
    if (rc != 0) {
        CHECK(rc == SKC_EPROTO);
        check_err(err, errlen, 'Z');
        return;
    }
    CHECK(len >= SKCI_REQ_FIXED);
    CHECK(r.kind >= SKCI_KIND_CALL && r.kind <= SKCI_KIND_STATS);
    switch (r.target.type) {
    case SKCI_TARGET_NONE:
    case SKCI_TARGET_HANDLE:
        CHECK(r.target.name_len == 0);
        break;
    case SKCI_TARGET_CLUSTER:
    case SKCI_TARGET_LOCAL:
        CHECK(r.target.name_len > 0);
        CHECK(inside(r.target.name, r.target.name_len, buf, len));
        CHECK(memchr(r.target.name, 0, r.target.name_len) == NULL);
        break;
    default:
        CHECK(0);
    }
    size_t hdr = skci_wire_req_hdr_size(&r);
    CHECK(hdr ==
        SKCI_REQ_FIXED + r.target.name_len +
            (skci_wire_req_has_order(r.kind, r.flags) ? SKCI_ORDER_BLOCK : 0));
    CHECK((uint64_t)hdr + r.len == len);
    CHECK(r.payload == buf + hdr);
    CHECK(inside(r.payload, r.len, buf, len));
    /* encode what was decoded: the same header bytes */
    uint8_t *again = malloc(hdr);
    CHECK(again != NULL);
    skci_wire_req_put_hdr(again, &r);
    CHECK(memcmp(again, buf, hdr) == 0);
    if (skci_wire_req_has_order(r.kind, r.flags)) {
        /* the form for an older peer: the same request without the block */
        uint8_t *plain = malloc(len - SKCI_ORDER_BLOCK + 1);
        CHECK(plain != NULL);
        skci_wire_req_strip_order(plain, buf, len);
        skci_req p;
        CHECK(skci_wire_req_decode(
                  &p, plain, len - SKCI_ORDER_BLOCK, err, sizeof(err)) == 0);
        CHECK((p.flags & SKCI_FLAG_ORDER) == 0 && p.stream == 0 &&
            p.seq == 0 && p.id == r.id && p.len == r.len);
        CHECK(memcmp(p.payload, r.payload, r.len) == 0);
        free(plain);
    }
    free(again);
}

static void
fuzz_rep(const uint8_t *buf, size_t len, size_t errlen)
{
    skci_rep r;
    char err[300];
    err[errlen] = 'Z';
    int rc = skci_wire_rep_decode(&r, buf, len, err, errlen);
    if (rc != 0) {
        CHECK(rc == SKC_EPROTO);
        check_err(err, errlen, 'Z');
        return;
    }
    CHECK(len >= SKCI_REP_FIXED && buf[3] == SKCI_KIND_REPLY);
    CHECK((uint64_t)SKCI_REP_FIXED + r.len == len);
    CHECK(r.payload == buf + SKCI_REP_FIXED);
    uint8_t again[SKCI_REP_FIXED];
    skci_wire_rep_put_hdr(again, r.status, r.id, r.len);
    CHECK(memcmp(again, buf, SKCI_REP_FIXED) == 0);
}

static void
fuzz_hello(const uint8_t *buf, size_t len, size_t errlen)
{
    skci_hello h;
    char err[300];
    err[errlen] = 'Z';
    int rc = skci_wire_hello_decode(&h, buf, len, err, errlen);
    if (rc != 0) {
        CHECK(rc == SKC_EPROTO);
        check_err(err, errlen, 'Z');
        return;
    }
    CHECK(inside(h.name, h.name_len, buf, len));
    CHECK(inside(h.url, h.url_len, buf, len));
    CHECK(skci_wire_hello_size(h.name_len, h.url_len, h.has_features) == len);
    CHECK(h.has_features || h.features == 0);
    uint8_t *again = malloc(len);
    CHECK(again != NULL);
    skci_wire_hello_put(again, h.max_msg, h.name, h.name_len, h.url,
        h.url_len, h.has_features, h.features);
    CHECK(memcmp(again, buf, len) == 0);
    free(again);
}

static void
fuzz_target(const uint8_t *buf, size_t len)
{
    char *s = malloc(len + 1);
    CHECK(s != NULL);
    memcpy(s, buf, len);
    s[len] = '\0';
    size_t n = strlen(s);
    skci_target t;
    int bare = len > 0 && (buf[0] & 1);
    int rc = skci_target_parse(&t, s, bare);
    if (rc != 0) {
        CHECK(rc == SKC_EINVAL);
        CHECK(skc_last_error()[0] != '\0');
        free(s);
        return;
    }
    char text[SKCI_NAME_MAX + 16];
    switch (t.type) {
    case SKCI_TARGET_HANDLE:
        CHECK(t.handle != 0 && t.name_len == 0);
        CHECK(n >= 2 && n <= 9 && s[0] == ':');
        break;
    case SKCI_TARGET_CLUSTER:
    case SKCI_TARGET_LOCAL:
        CHECK(t.name_len >= 1 && t.name_len <= SKCI_NAME_MAX);
        CHECK(inside(t.name, t.name_len, (const uint8_t *)s, n));
        break;
    default:
        CHECK(0);
    }
    /* format, parse again: the same target */
    skci_target_format(&t, text, sizeof(text));
    CHECK(strlen(text) < sizeof(text) - 1);
    skci_target u;
    CHECK(skci_target_parse(&u, text, 0) == 0);
    CHECK(u.type == t.type && u.handle == t.handle &&
        u.name_len == t.name_len);
    CHECK(t.name_len == 0 || memcmp(u.name, t.name, t.name_len) == 0);
    /* and a small buffer is never overrun */
    char small[8];
    small[7] = 'Z';
    skci_target_format(&t, small, 7);
    CHECK(small[7] == 'Z' && memchr(small, '\0', 7) != NULL);
    free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    /* Vary the error buffer size so truncated reasons get exercised. */
    size_t errlen = size % 7 == 0 ? size % 16 : 256;
    const uint8_t *buf = data + 1;
    size_t len = size - 1;
    /* A private copy: ASan then catches a read one byte past the frame,
     * which libFuzzer's own buffer might hide behind its slack. */
    uint8_t *copy = malloc(len > 0 ? len : 1);
    CHECK(copy != NULL);
    memcpy(copy, buf, len);
    switch (data[0] % 4) {
    case 0:
        fuzz_req(copy, len, errlen);
        break;
    case 1:
        fuzz_rep(copy, len, errlen);
        break;
    case 2:
        fuzz_hello(copy, len, errlen);
        break;
    default:
        fuzz_target(copy, len);
        break;
    }
    free(copy);
    return 0;
}
