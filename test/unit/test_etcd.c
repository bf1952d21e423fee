/* test_etcd.c -- decoding etcd keys and values into map entries
 * (lib/etcd.c): nodes, groups, deletions, keys skc does not use, and
 * malformed values, which must be refused with a reason, never crash.
 *
 * Values are decoded from exact-size heap copies, so ASan reports any
 * read past the end (etcd's values carry no NUL).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "etcd.h"
#include "map.h"
#include "skc/skc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P "/skc/prod"

/* Decodes key = value (value NULL: a deletion) from exact-size copies. */
static int
decode(skci_map_entry *e, const char *key, const char *value, char *err)
{
    size_t kl = strlen(key), vl = value ? strlen(value) : 0;
    char *k = malloc(kl ? kl : 1), *v = value ? malloc(vl ? vl : 1) : NULL;
    assert_non_null(k);
    memcpy(k, key, kl);
    if (value != NULL) {
        assert_non_null(v);
        memcpy(v, value, vl);
    }
    err[0] = '\0';
    int rc = skci_etcd_decode(e, P, k, kl, v, vl, err, 256);
    free(k);
    free(v);
    return rc;
}

static void
test_node(void **state)
{
    (void)state;
    skci_map_entry e;
    char err[256];
    assert_int_equal(decode(&e, P "/nodes/db",
                         "{\"addr\":\"tcp://127.0.0.1:7102\",\"version\":"
                         "\"0.3.0\"}",
                         err),
        1);
    assert_string_equal(e.name, "db");
    assert_int_equal(e.kind, SKCI_MAP_ADDR);
    assert_string_equal(e.value, "tcp://127.0.0.1:7102");
    skci_etcd_entry_free(&e);
    /* a deletion (lease expired, key deleted): the node is down */
    assert_int_equal(decode(&e, P "/nodes/db", NULL, err), 1);
    assert_string_equal(e.name, "db");
    assert_int_equal(e.kind, SKCI_MAP_DOWN);
    skci_etcd_entry_free(&e);
}

static void
test_group(void **state)
{
    (void)state;
    skci_map_entry e;
    char err[256];
    assert_int_equal(decode(&e, P "/groups/db",
                         "{\"members\":[\"db_a\",\"db_b\"],\"policy\":"
                         "\"roundrobin\"}",
                         err),
        1);
    assert_string_equal(e.name, "db");
    assert_int_equal(e.kind, SKCI_MAP_GROUP);
    assert_int_equal(e.nmembers, 2);
    assert_string_equal(e.members[0], "db_a");
    assert_string_equal(e.members[1], "db_b");
    assert_int_equal(e.policy, SKCI_GROUP_ROUNDROBIN);
    skci_etcd_entry_free(&e);
    assert_int_equal(
        decode(&e, P "/groups/g", "{\"members\":[\"x\"]}", err), 1);
    assert_int_equal(e.policy, SKCI_GROUP_FAILOVER);
    skci_etcd_entry_free(&e);
}

static void
test_not_ours(void **state)
{
    (void)state;
    skci_map_entry e;
    char err[256];
    static const char *const keys[] = { "/skc/prodx/nodes/a", "/other/a",
        P "/nodes/", P "/nodes/a/b", P "/else/a", P, "/skc" };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        assert_int_equal(decode(&e, keys[i], "{\"addr\":\"a:1\"}", err), 0);
        assert_null(e.name);
    }
}

static void
test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *key, *value, *why;
    } bad[] = {
        { P "/nodes/a", "", "JSON object" },
        { P "/nodes/a", "not json {", "JSON object" },
        { P "/nodes/a", "[1,2]", "JSON object" },
        { P "/nodes/a", "\"tcp://x:1\"", "JSON object" },
        { P "/nodes/a", "{\"addr\": 5}", "addr" },
        { P "/nodes/a", "{\"addr\": \"\"}", "addr" },
        { P "/nodes/a", "{}", "addr" },
        { P "/nodes/a", "{\"addr\": \"a:1\"", "JSON object" },
        { P "/groups/g", "{}", "members" },
        { P "/groups/g", "{\"members\": []}", "members" },
        { P "/groups/g", "{\"members\": \"a\"}", "members" },
        { P "/groups/g", "{\"members\": [\"a\", 3]}", "not a string" },
        { P "/groups/g", "{\"members\": [\"a\"], \"policy\": \"best\"}",
            "policy" },
        { P "/groups/g", "{\"members\": [\"a\"], \"policy\": 1}", "policy" },
        { P "/nodes/__nowaiting", "{\"addr\": \"true\"}", "__" },
        { P "/groups/__x", "{\"members\": [\"a\"]}", "__" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        skci_map_entry e;
        char err[256];
        int rc = decode(&e, bad[i].key, bad[i].value, err);
        if (rc != -1 || strstr(err, bad[i].why) == NULL) {
            fail_msg("%s = %s: rc %d, err '%s' (expected '%s')", bad[i].key,
                bad[i].value, rc, err, bad[i].why);
        }
        assert_null(e.name);
        assert_null(e.members);
    }
}

/* Every truncation of good values: refused or accepted, never a crash
 * or a read past the end. */
static void
test_truncated(void **state)
{
    (void)state;
    static const char *const good[] = {
        "{\"addr\":\"tcp://127.0.0.1:7102\",\"version\":\"0.3.0\"}",
        "{\"members\":[\"db_a\",\"db_b\"],\"policy\":\"failover\"}",
    };
    for (size_t g = 0; g < 2; g++) {
        size_t len = strlen(good[g]);
        for (size_t cut = 0; cut <= len; cut++) {
            char *v = malloc(cut ? cut : 1);
            assert_non_null(v);
            memcpy(v, good[g], cut);
            skci_map_entry e;
            char err[256];
            const char *key = g == 0 ? P "/nodes/a" : P "/groups/g";
            int rc = skci_etcd_decode(
                &e, P, key, strlen(key), v, cut, err, sizeof(err));
            assert_true(rc == -1 || (rc == 1 && cut == len));
            skci_etcd_entry_free(&e);
            free(v);
        }
    }
}

/* Options that cannot make an etcd map source: refused at create, with
 * the reason, and no node is made. */
static void
test_bad_options(void **state)
{
    (void)state;
    static const struct {
        const char *etcd, *prefix, *why;
        int32_t ttl;
    } bad[] = {
        { "127.0.0.1:2379", NULL, "expected http://host:port", 0 },
        { "tcp://127.0.0.1:2379", NULL, "expected http://host:port", 0 },
        { "etcd:///skc", NULL, "no host:port", 0 },
        { "http://127.0.0.1:1", "/", "the prefix is empty", 0 },
        { "http://127.0.0.1:1", NULL, "etcd_ttl_s", -1 },
        { "http://127.0.0.1:1", NULL, "etcd_ttl_s", 3601 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        skc_node_opts o = SKC_NODE_OPTS_INIT;
        o.etcd = bad[i].etcd;
        o.etcd_prefix = bad[i].prefix;
        o.etcd_ttl_s = bad[i].ttl;
        skc_node *n = NULL;
        int rc = skc_node_create(&n, &o);
        if (rc != SKC_EINVAL || strstr(skc_last_error(), bad[i].why) == NULL) {
            fail_msg("etcd %s: rc %d, '%s' (expected '%s')", bad[i].etcd, rc,
                skc_last_error(), bad[i].why);
        }
        assert_null(n);
    }
}

/* Built without libcurl/cJSON: the decoder says so, clearly. */
static void
test_unsupported(void **state)
{
    (void)state;
    skci_map_entry e;
    char err[256];
    assert_int_equal(decode(&e, P "/nodes/a", "{\"addr\":\"a:1\"}", err), -1);
    assert_string_equal(
        err, "built without etcd support (libcurl/cJSON missing)");
}

int
main(void)
{
    skci_map_entry e;
    char err[256];
    if (decode(&e, P "/nodes/a", "{\"addr\":\"a:1\"}", err) == -1) {
        const struct CMUnitTest only[] = {
            cmocka_unit_test(test_unsupported),
        };
        return cmocka_run_group_tests(only, NULL, NULL);
    }
    skci_etcd_entry_free(&e);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node),
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_not_ours),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
