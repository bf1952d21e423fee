/* test_logs.c -- logs and error texts that cannot be forged or flooded:
 * a peer or target name with a newline, an ANSI escape or bytes that are
 * not UTF-8 comes out escaped (\xNN) in the log and in the error detail;
 * one kind of line is let through at most 20 times in 10 s, other kinds
 * still pass.  Uses only skc.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skc/skc.h"

static pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
static char lines[64][1400];
static int nlines, nmap;

static void
capture(int level, const char *node, const char *text, void *arg)
{
    (void)level, (void)node, (void)arg;
    pthread_mutex_lock(&lk);
    if (nlines < 64) {
        snprintf(lines[nlines++], sizeof(lines[0]), "%s", text);
    }
    nmap += strncmp(text, "cluster map: ", 13) == 0;
    pthread_mutex_unlock(&lk);
}

/* 1 if s has a control byte or an invalid UTF-8 byte. */
static int
unsafe(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p >= 0xf8 || *p == 0xc0) {
            return 1;
        }
    }
    return 0;
}

static void
test_forged_names_are_escaped(void **state)
{
    (void)state;
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "victim";
    o.log = capture;
    o.log_level = SKC_LOG_DEBUG;
    skc_node *n;
    assert_int_equal(skc_node_create(&n, &o), SKC_OK);
    const char *evil = "x\n[skc sys] ERROR FORGED: \x1b[31mred\xc0\xff";
    assert_int_equal(skc_node_map_set(n, evil, NULL), SKC_OK);
    void *out;
    size_t len;
    assert_int_equal(
        skc_node_call(n, &out, &len, evil, "@svc", "x", 1, 1000),
        SKC_ENODEDOWN);
    const char *d = skc_last_error();
    assert_false(unsafe(d));
    assert_non_null(strstr(d, "x\\x0a[skc sys] ERROR FORGED: \\x1b[31mred"));
    assert_non_null(strstr(d, "\\xc0\\xff"));
    pthread_mutex_lock(&lk);
    int found = 0;
    for (int i = 0; i < nlines; i++) {
        assert_false(unsafe(lines[i]));
        found += strstr(lines[i], "\\x0a[skc sys] ERROR FORGED") != NULL;
    }
    pthread_mutex_unlock(&lk);
    assert_true(found >= 1);
    /* valid UTF-8 passes unchanged */
    assert_int_equal(skc_node_map_set(n, "节点", NULL), SKC_OK);
    assert_int_equal(
        skc_node_call(n, &out, &len, "节点", "@svc", "x", 1, 1000),
        SKC_ENODEDOWN);
    assert_non_null(strstr(skc_last_error(), "'节点'"));
    assert_int_equal(skc_node_destroy(n), SKC_OK);
}

static void
test_one_kind_is_rate_limited(void **state)
{
    (void)state;
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "busy";
    o.log = capture;
    skc_node *n;
    assert_int_equal(skc_node_create(&n, &o), SKC_OK);
    pthread_mutex_lock(&lk);
    nlines = nmap = 0;
    pthread_mutex_unlock(&lk);
    for (int i = 0; i < 100; i++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", 1000 + i);
        assert_int_equal(skc_node_map_set(n, "a", addr), SKC_OK);
    }
    pthread_mutex_lock(&lk);
    int got = nmap;
    pthread_mutex_unlock(&lk);
    /* all 100 in well under the 10 s window */
    assert_int_equal(got, 20);
    /* another kind of line still passes */
    void *out;
    size_t len;
    assert_int_equal(skc_node_map_set(n, "down", NULL), SKC_OK);
    pthread_mutex_lock(&lk);
    int before = nlines;
    pthread_mutex_unlock(&lk);
    skc_node_call(n, &out, &len, "unknown-node", "@x", NULL, 0, 1);
    pthread_mutex_lock(&lk);
    int after = nlines;
    pthread_mutex_unlock(&lk);
    assert_true(after > before);
    assert_int_equal(skc_node_destroy(n), SKC_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forged_names_are_escaped),
        cmocka_unit_test(test_one_kind_is_rate_limited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
