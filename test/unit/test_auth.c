/* test_auth.c -- the cluster cookie's proofs and state (lib/auth.c):
 * known HMAC values (the bytes docs/PROTOCOL.md describes), challenge and
 * HELLO, tickets used once, wrong sizes and proofs, bounded tables.
 * Links skc_static to reach internals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "skc/skc.h"

static const uint8_t KEY[] = "k";

static void
hex(char *out, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02x", b[i]);
    }
}

/* Values computed independently (Python's hmac module) over the bytes
 * PROTOCOL.md lists: label, NUL, nonces or ticket, u16 name length, name. */
static void
test_known_values(void **state)
{
    (void)state;
    uint8_t nc[32], ns[32], mac[32], t[16];
    char h[65];
    memset(nc, 0, sizeof(nc));
    memset(ns, 1, sizeof(ns));
    assert_int_equal(skci_auth_proof(mac, KEY, 1, SKCI_PROOF_CLIENT, nc, 32,
                         ns, 32, "db", 2),
        0);
    hex(h, mac, 32);
    assert_string_equal(
        h, "0e463121614cc3ac157289519f5cb92419a7dfe549e7ce8c4396da20ea59473d");
    memset(t, 7, sizeof(t));
    assert_int_equal(skci_auth_proof(mac, KEY, 1, SKCI_PROOF_PUSH, t, 16, NULL,
                         0, "cli", 3),
        0);
    hex(h, mac, 32);
    assert_string_equal(
        h, "61fe738cc82bf39402debb6aaa54da86ee5b37ba0ff18d5f55061f999a311f0f");
    /* Another label, name or key: another proof. */
    uint8_t a[32], b[32];
    skci_auth_proof(a, KEY, 1, SKCI_PROOF_CLIENT, nc, 32, ns, 32, "db", 2);
    skci_auth_proof(b, KEY, 1, SKCI_PROOF_SERVER, nc, 32, ns, 32, "db", 2);
    assert_false(skci_auth_mac_equal(a, b));
    skci_auth_proof(b, KEY, 1, SKCI_PROOF_CLIENT, nc, 32, ns, 32, "dc", 2);
    assert_false(skci_auth_mac_equal(a, b));
    skci_auth_proof(b, (const uint8_t *)"K", 1, SKCI_PROOF_CLIENT, nc, 32, ns,
        32, "db", 2);
    assert_false(skci_auth_mac_equal(a, b));
    skci_auth_proof(b, KEY, 1, SKCI_PROOF_CLIENT, nc, 32, ns, 32, "db", 2);
    assert_true(skci_auth_mac_equal(a, b));
}

static void
auth_setup(skci_auth *a)
{
    memset(a, 0, sizeof(*a));
    skci_auth_init(a);
    a->key = malloc(1);
    a->key[0] = 'k';
    a->keylen = 1;
}

/* A client's HELLO on pipe: challenge, proof; 0 or SKC_EAUTH. */
static int
hello(skci_auth *a, uint32_t pipe, const char *name, int wrong,
    uint8_t ticket[16], char *why, size_t wl)
{
    uint8_t nc[32], ns[32], mac[32], sproof[32], want[32];
    memset(nc, 9, sizeof(nc));
    assert_int_equal(skci_auth_challenge(a, pipe, nc, ns), 0);
    skci_auth_proof(mac, a->key, a->keylen, SKCI_PROOF_CLIENT, nc, 32, ns, 32,
        name, strlen(name));
    mac[0] ^= (uint8_t)wrong;
    int rc = skci_auth_hello(
        a, pipe, name, strlen(name), mac, "db", sproof, ticket, why, wl);
    if (rc == 0) {
        skci_auth_proof(want, a->key, a->keylen, SKCI_PROOF_SERVER, nc, 32, ns,
            32, "db", 2);
        assert_true(skci_auth_mac_equal(want, sproof));
    }
    return rc;
}

static void
test_hello(void **state)
{
    (void)state;
    skci_auth a;
    auth_setup(&a);
    uint8_t t[16], mac[32];
    char why[160];
    assert_false(skci_auth_pipe_ok(&a, 5));
    assert_int_equal(hello(&a, 5, "cli", 1, t, why, sizeof(why)), SKC_EAUTH);
    assert_string_equal(why, "wrong cluster cookie");
    assert_false(skci_auth_pipe_ok(&a, 5));
    assert_int_equal(hello(&a, 5, "cli", 0, t, why, sizeof(why)), 0);
    assert_true(skci_auth_pipe_ok(&a, 5));
    assert_false(skci_auth_pipe_ok(&a, 6));
    /* One HELLO per challenge. */
    memset(mac, 0, sizeof(mac));
    assert_int_equal(
        skci_auth_hello(&a, 5, "cli", 3, mac, "db", mac, t, why, sizeof(why)),
        SKC_EAUTH);
    assert_non_null(strstr(why, "no challenge"));
    /* No challenge at all. */
    assert_int_equal(
        skci_auth_hello(&a, 7, "cli", 3, mac, "db", mac, t, why, sizeof(why)),
        SKC_EAUTH);
    skci_auth_pipe_gone(&a, 5);
    assert_false(skci_auth_pipe_ok(&a, 5));
    skci_auth_fini(&a);
}

static void
push_frame(
    const skci_auth *a, uint8_t p[48], const uint8_t t[16], const char *name)
{
    memcpy(p, t, 16);
    skci_auth_proof(p + 16, a->key, a->keylen, SKCI_PROOF_PUSH, t, 16, NULL, 0,
        name, strlen(name));
}

static void
test_tickets(void **state)
{
    (void)state;
    skci_auth a;
    auth_setup(&a);
    uint8_t t[16], p[48];
    char why[160];
    assert_int_equal(hello(&a, 1, "cli", 0, t, why, sizeof(why)), 0);
    push_frame(&a, p, t, "cli");
    /* Wrong sizes. */
    assert_int_equal(
        skci_auth_push(&a, 2, p, 47, why, sizeof(why)), SKC_EAUTH);
    assert_non_null(strstr(why, "47 bytes"));
    assert_int_equal(skci_auth_push(&a, 2, p, 0, why, sizeof(why)), SKC_EAUTH);
    /* Right: once. */
    assert_int_equal(skci_auth_push(&a, 2, p, 48, why, sizeof(why)), 0);
    assert_true(skci_auth_pipe_ok(&a, 2));
    assert_int_equal(
        skci_auth_push(&a, 3, p, 48, why, sizeof(why)), SKC_EAUTH);
    assert_non_null(strstr(why, "unknown, used or expired"));
    /* A ticket for another name, or a forged proof, is refused (and
     * used up). */
    assert_int_equal(skci_auth_ticket(&a, 1, t), 0);
    push_frame(&a, p, t, "other");
    assert_int_equal(
        skci_auth_push(&a, 4, p, 48, why, sizeof(why)), SKC_EAUTH);
    assert_string_equal(why, "wrong cluster cookie");
    push_frame(&a, p, t, "cli");
    assert_int_equal(
        skci_auth_push(&a, 4, p, 48, why, sizeof(why)), SKC_EAUTH);
    /* Tickets only for authenticated pipes. */
    assert_int_equal(skci_auth_ticket(&a, 99, t), SKC_EAUTH);
    /* The table is bounded: the oldest goes first. */
    uint8_t first[16];
    assert_int_equal(skci_auth_ticket(&a, 1, first), 0);
    for (int i = 0; i < SKCI_AUTH_TICKETS + 10; i++) {
        assert_int_equal(skci_auth_ticket(&a, 1, t), 0);
    }
    push_frame(&a, p, first, "cli");
    assert_int_equal(
        skci_auth_push(&a, 5, p, 48, why, sizeof(why)), SKC_EAUTH);
    push_frame(&a, p, t, "cli");
    assert_int_equal(skci_auth_push(&a, 5, p, 48, why, sizeof(why)), 0);
    skci_auth_fini(&a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_tickets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
