/* test_callorder.c -- calls one thread makes, one after another without
 * waiting for their replies, reach their service in the order they were
 * made (PROTOCOL.md, "Guarantees": requests from one client connection to
 * one service are handled in the order sent).  The server's REP contexts
 * receive on several NNG threads, so without skc restoring the order two
 * calls in flight could run in either order; the case with few serving
 * slots makes NNG hand requests over the way that reorders them most.
 * Uses only skc.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skc/skc.h"
#include "waits.h"

#define CALLS 4000

/* The order @seq saw (its handler runs one message at a time). */
static uint32_t seen[CALLS];
static size_t nseen;

static void
svc_seq(skc_node *n, uint32_t self, skc_msg *m, void *arg)
{
    (void)n, (void)self, (void)arg;
    uint32_t v = 0;
    size_t len;
    const void *p = skc_msg_data(m, &len);
    if (len == sizeof(v)) {
        memcpy(&v, p, sizeof(v));
    }
    if (nseen < CALLS) {
        seen[nseen++] = v;
    }
    skc_msg_reply(m, NULL, 0);
}

static atomic_int done, failed;

static void
on_done(int status, const void *data, size_t len, const char *detail,
    void *arg)
{
    (void)data, (void)len, (void)detail, (void)arg;
    if (status != SKC_OK) {
        atomic_fetch_add(&failed, 1);
    }
    atomic_fetch_add(&done, 1);
}

/* CALLS calls to srv's @seq, made back to back by this thread; then the
 * order @seq saw them in must be the order they were made in. */
static void
run(uint32_t max_serving)
{
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "srv";
    o.max_serving = max_serving;
    skc_node *s, *c;
    assert_int_equal(skc_node_create(&s, &o), SKC_OK);
    uint32_t h;
    assert_int_equal(skc_service_create(s, &h, svc_seq, NULL), SKC_OK);
    assert_int_equal(skc_name_register(s, "@seq", h), SKC_OK);
    char *url;
    assert_int_equal(skc_node_open(s, &url, "127.0.0.1:0"), SKC_OK);
    assert_int_equal(skc_node_create(&c, NULL), SKC_OK);
    assert_int_equal(skc_node_map_set(c, "srv", url), SKC_OK);
    /* the link is up before the burst */
    assert_int_equal(skc_node_ping(c, "srv", scaled(5000), NULL), SKC_OK);

    nseen = 0;
    atomic_store(&done, 0);
    atomic_store(&failed, 0);
    for (uint32_t i = 0; i < CALLS; i++) {
        assert_int_equal(skc_node_call_async(c, "srv", "@seq", &i, sizeof(i),
                             scaled(30000), on_done, NULL),
            SKC_OK);
    }
    int64_t until = now_ms() + scaled(60000);
    while (atomic_load(&done) < CALLS && now_ms() < until) {
        sleep_ms(10);
    }
    assert_int_equal(atomic_load(&done), CALLS);
    assert_int_equal(atomic_load(&failed), 0);
    assert_int_equal(skc_node_destroy(c), SKC_OK);
    assert_int_equal(skc_node_destroy(s), SKC_OK);
    skc_free(url);

    assert_int_equal(nseen, CALLS);
    size_t out = 0, first = CALLS;
    for (size_t i = 0; i < CALLS; i++) {
        if (seen[i] != i) {
            out++;
            first = first < i ? first : i;
        }
    }
    if (out > 0) {
        print_error("max_serving %u: %zu of %d calls out of order, the first "
                    "at %zu (got %u)\n",
            max_serving, out, CALLS, first, seen[first]);
    }
    assert_int_equal(out, 0);
}

/* Slots for every call (no share refusal: a quarter of them is more
 * than CALLS): contexts are added while the burst arrives. */
static void
test_order_many_slots(void **state)
{
    (void)state;
    run(4 * CALLS + 1024);
}

static void
test_order_few_slots(void **state)
{
    (void)state;
    run(4); /* the burst waits in NNG for the four contexts */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_many_slots),
        cmocka_unit_test(test_order_few_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
