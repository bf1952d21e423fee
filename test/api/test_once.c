/* test_once.c -- a request runs at most once: a handler slower than NNG's
 * resend interval, a server restarted mid-call, and a request whose
 * deadline passed while it waited in the mailbox.  Uses only skc.h. */
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

static void
sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

typedef struct counter {
    atomic_int runs;
    int sleep_ms;
    int defer;
    skc_reply *held;
} counter;

static void
count_handler(skc_node *node, uint32_t service, skc_msg *msg, void *arg)
{
    (void)node;
    (void)service;
    counter *c = arg;
    if (c->defer) {
        /* held is written before runs is counted: the test reads held
         * once it sees runs == 1 */
        skc_msg_defer(msg, &c->held); /* never answered */
        atomic_fetch_add(&c->runs, 1);
        return;
    }
    atomic_fetch_add(&c->runs, 1);
    if (c->sleep_ms > 0) {
        sleep_ms(c->sleep_ms);
    }
    skc_msg_reply(msg, "ok", 2);
}

static skc_node *
server_start(counter *c, const char *where, char **bound)
{
    skc_node *n;
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "srv";
    assert_int_equal(skc_node_create(&n, &o), SKC_OK);
    uint32_t h;
    assert_int_equal(skc_service_create(n, &h, count_handler, c), SKC_OK);
    assert_int_equal(skc_name_register(n, "@count", h), SKC_OK);
    assert_int_equal(skc_node_open(n, bound, where), SKC_OK);
    return n;
}

static skc_node *
client_start(const char *addr, int timeout)
{
    skc_node *n;
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.call_timeout_ms = timeout;
    assert_int_equal(skc_node_create(&n, &o), SKC_OK);
    assert_int_equal(skc_node_map_set(n, "srv", addr), SKC_OK);
    return n;
}

/* NNG's REQ would resend a request whose reply takes longer than its
 * resend time; skc uses raw REQ sockets, so the handler runs once. */
static void
test_slow_handler_runs_once(void **state)
{
    (void)state;
    counter c = { .sleep_ms = 1500 };
    char *addr;
    skc_node *srv = server_start(&c, "127.0.0.1:0", &addr);
    skc_node *cli = client_start(addr, 5000);
    void *out;
    size_t len;
    assert_int_equal(skc_node_call(cli, &out, &len, "srv", "@count", "x", 1,
                         0), SKC_OK);
    skc_free(out);
    sleep_ms(700);
    assert_int_equal(atomic_load(&c.runs), 1);
    skc_node_destroy(cli);
    skc_node_destroy(srv);
    skc_free(addr);
}

struct result {
    atomic_int done;
    int status;
};

static void
done_cb(int status, const void *data, size_t len, const char *detail,
    void *arg)
{
    (void)data;
    (void)len;
    (void)detail;
    struct result *r = arg;
    r->status = status;
    atomic_store(&r->done, 1);
}

/* The server dies with the request in service and comes back on the same
 * address: the caller learns the outcome is unknown, and the restarted
 * server never sees the old request. */
static void
test_restart_mid_call(void **state)
{
    (void)state;
    counter c1 = { .defer = 1 };
    char *addr;
    skc_node *srv = server_start(&c1, "127.0.0.1:0", &addr);
    skc_node *cli = client_start(addr, 8000);
    struct result r = { 0 };
    assert_int_equal(skc_node_call_async(cli, "srv", "@count", "x", 1, 0,
                         done_cb, &r), SKC_OK);
    for (int i = 0; i < 200 && atomic_load(&c1.runs) == 0; i++) {
        sleep_ms(5);
    }
    assert_int_equal(atomic_load(&c1.runs), 1);
    skc_reply *held = c1.held;
    assert_int_equal(skc_node_destroy(srv), SKC_OK);
    /* the deferred reply outlives its node: answering it is an error */
    assert_int_equal(skc_reply_send(held, "late", 4), SKC_ECLOSED);
    for (int i = 0; i < 400 && !atomic_load(&r.done); i++) {
        sleep_ms(5);
    }
    assert_true(atomic_load(&r.done));
    assert_int_equal(r.status, SKC_ECONNLOST);

    counter c2 = { 0 };
    char *again;
    srv = server_start(&c2, addr, &again);
    skc_free(again);
    /* give a resending REQ every chance to replay the old request */
    sleep_ms(1500);
    assert_int_equal(atomic_load(&c2.runs), 0);
    void *out;
    size_t len;
    int rc = SKC_ETIMEDOUT;
    for (int i = 0; i < 50 && rc != SKC_OK; i++) {
        rc = skc_node_call(cli, &out, &len, "srv", "@count", "y", 1, 1000);
        if (rc != SKC_OK) {
            sleep_ms(100);
        }
    }
    assert_int_equal(rc, SKC_OK);
    skc_free(out);
    assert_int_equal(atomic_load(&c2.runs), 1);
    skc_node_destroy(cli);
    skc_node_destroy(srv);
    skc_free(addr);
}

/* A request that waited in the mailbox past its caller's deadline is
 * dropped, not run. */
static void
test_expired_request_not_run(void **state)
{
    (void)state;
    counter c = { .sleep_ms = 600 };
    char *addr;
    skc_node *srv = server_start(&c, "inproc://skc-once-expired", &addr);
    skc_node *cli = client_start(addr, 5000);
    struct result first = { 0 }, second = { 0 };
    assert_int_equal(skc_node_call_async(cli, "srv", "@count", "a", 1, 3000,
                         done_cb, &first), SKC_OK);
    sleep_ms(100); /* the first is running */
    assert_int_equal(skc_node_call_async(cli, "srv", "@count", "b", 1, 200,
                         done_cb, &second), SKC_OK);
    for (int i = 0; i < 400 && !(atomic_load(&first.done) &&
                                   atomic_load(&second.done)); i++) {
        sleep_ms(5);
    }
    assert_int_equal(first.status, SKC_OK);
    assert_int_equal(second.status, SKC_ETIMEDOUT);
    sleep_ms(300);
    assert_int_equal(atomic_load(&c.runs), 1);
    skc_node_destroy(cli);
    skc_node_destroy(srv);
    skc_free(addr);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_handler_runs_once),
        cmocka_unit_test(test_restart_mid_call),
        cmocka_unit_test(test_expired_request_not_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
