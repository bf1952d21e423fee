/* test_deadline_cap.c -- a peer cannot make a node hold a call longer than
 * the node's max_deadline_ms: a handler sees at most the cap left, and a
 * call that waits in a mailbox past the cap is answered SKC_ETIMEDOUT
 * instead of being run hours later.  Uses only skc.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "skc/skc.h"
#include "waits.h"

/* @rem answers the milliseconds it has left; @busy also sleeps 2.5 s. */
static void
svc_rem(skc_node *n, uint32_t self, skc_msg *m, void *arg)
{
    (void)n, (void)self;
    if (arg != NULL) {
        sleep_ms(2500);
    }
    char out[32];
    int l = snprintf(out, sizeof(out), "%d", (int)skc_msg_remaining_ms(m));
    skc_msg_reply(m, out, (size_t)l);
}

struct result {
    atomic_int done;
    int status;
};

static void
on_done(int status, const void *data, size_t len, const char *detail,
    void *arg)
{
    (void)data, (void)len, (void)detail;
    struct result *r = arg;
    r->status = status;
    atomic_store(&r->done, 1);
}

static void
test_cap(void **state)
{
    (void)state;
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "srv";
    o.max_deadline_ms = 1500;
    skc_node *s, *c;
    assert_int_equal(skc_node_create(&s, &o), SKC_OK);
    uint32_t h1, h2;
    assert_int_equal(skc_service_create(s, &h1, svc_rem, NULL), SKC_OK);
    assert_int_equal(skc_name_register(s, "@rem", h1), SKC_OK);
    assert_int_equal(skc_service_create(s, &h2, svc_rem, &h2), SKC_OK);
    assert_int_equal(skc_name_register(s, "@busy", h2), SKC_OK);
    char *url;
    assert_int_equal(skc_node_open(s, &url, "127.0.0.1:0"), SKC_OK);
    assert_int_equal(skc_node_create(&c, NULL), SKC_OK);
    assert_int_equal(skc_node_map_set(c, "srv", url), SKC_OK);

    /* asked for 10 s: the handler sees at most the cap */
    void *rep;
    size_t len;
    assert_int_equal(
        skc_node_call(c, &rep, &len, "srv", "@rem", NULL, 0, 10000), SKC_OK);
    int left = atoi(rep);
    skc_free(rep);
    assert_true(left >= 0 && left <= 1500);

    /* the second call to a busy service waits past the cap: ETIMEDOUT,
     * long before the 10 s its caller allowed */
    struct result a = { .status = -1 }, b = { .status = -1 };
    atomic_init(&a.done, 0);
    atomic_init(&b.done, 0);
    assert_int_equal(
        skc_node_call_async(c, "srv", "@busy", NULL, 0, 10000, on_done, &a),
        SKC_OK);
    assert_int_equal(
        skc_node_call_async(c, "srv", "@busy", NULL, 0, 10000, on_done, &b),
        SKC_OK);
    for (int i = 0; i < 1000 && !(atomic_load(&a.done) && atomic_load(&b.done));
         i++) {
        sleep_ms(10);
    }
    assert_int_equal(a.status, SKC_OK);
    assert_int_equal(b.status, SKC_ETIMEDOUT);

    o.max_deadline_ms = -1;
    skc_node *bad;
    assert_int_equal(skc_node_create(&bad, &o), SKC_EINVAL);
    assert_int_equal(skc_node_destroy(c), SKC_OK);
    assert_int_equal(skc_node_destroy(s), SKC_OK);
    skc_free(url);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
