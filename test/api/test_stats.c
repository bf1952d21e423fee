/* test_stats.c -- skc_node_stats and skc_node_stats_remote through the
 * public API: every counter moves with the events it counts (calls made
 * and how they ended, requests, replies, sends in and out, bytes), the
 * gauges see calls in flight, a held mailbox and the connections, peers
 * are listed with their state, and a peer's statistics come over the
 * network.  Servers are nodes of this process on 127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skc/skc.h"
#include "waits.h"

static void
svc_echo(skc_node *n, uint32_t self, skc_msg *m, void *arg)
{
    (void)n;
    (void)self;
    (void)arg;
    size_t len;
    const void *d = skc_msg_data(m, &len);
    skc_msg_reply(m, d, len);
}

static void
svc_fail(skc_node *n, uint32_t self, skc_msg *m, void *arg)
{
    (void)n;
    (void)self;
    (void)arg;
    skc_msg_fail(m, "no such item");
}

/* @hold keeps its thread until released: its mailbox fills meanwhile. */
static atomic_int hold_release;
static atomic_int sinks;

static void
svc_hold(skc_node *n, uint32_t self, skc_msg *m, void *arg)
{
    (void)n;
    (void)self;
    (void)arg;
    int64_t until = now_ms() + scaled(10000);
    while (!atomic_load(&hold_release) && now_ms() < until) {
        sleep_ms(5);
    }
    atomic_fetch_add(&sinks, 1);
    (void)m; /* sends: nothing to answer */
}

static skc_node *
server_with(char **url, const skc_node_opts *opts)
{
    skc_node_opts o = *opts;
    o.name = "srv";
    skc_node *n;
    assert_int_equal(skc_node_create(&n, &o), SKC_OK);
    uint32_t h;
    assert_int_equal(skc_service_create(n, &h, svc_echo, NULL), SKC_OK);
    assert_int_equal(skc_name_register(n, "@echo", h), SKC_OK);
    assert_int_equal(skc_service_create(n, &h, svc_fail, NULL), SKC_OK);
    assert_int_equal(skc_name_register(n, "@fail", h), SKC_OK);
    assert_int_equal(skc_service_create(n, &h, svc_hold, NULL), SKC_OK);
    assert_int_equal(skc_name_register(n, "@hold", h), SKC_OK);
    assert_int_equal(skc_node_open(n, url, "127.0.0.1:0"), SKC_OK);
    return n;
}

static skc_node *
server(char **url)
{
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    return server_with(url, &o);
}

/* A client node "cli" whose map names the server "srv" at url. */
static skc_node *
client(const char *url)
{
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "cli";
    skc_node *c;
    assert_int_equal(skc_node_create(&c, &o), SKC_OK);
    assert_int_equal(skc_node_map_set(c, "srv", url), SKC_OK);
    return c;
}

/* The JSON of n (skc_free). */
static char *
stats(skc_node *n)
{
    char *j = NULL;
    assert_int_equal(skc_node_stats(n, &j), SKC_OK);
    assert_non_null(j);
    return j;
}

/* Asserts that json contains text. */
static void
has(const char *json, const char *text)
{
    if (strstr(json, text) == NULL) {
        fail_msg("%s not in %s", text, json);
    }
}

static void
test_counters(void **state)
{
    (void)state;
    char *url = NULL;
    skc_node *s = server(&url);
    skc_node *c = client(url);
    assert_int_equal(skc_node_map_set(c, "gone", NULL), SKC_OK);

    char *j = stats(c);
    has(j, "\"node\":\"cli\"");
    has(j, "\"version\":\"" SKC_VERSION_STRING "\"");
    has(j, "\"calls_ok\":0,");
    has(j, "\"calls_failed\":{}");
    skc_free(j);

    for (int i = 0; i < 3; i++) {
        void *rep;
        size_t len;
        assert_int_equal(
            skc_node_call(c, &rep, &len, "srv", "@echo", "hello", 5, 0),
            SKC_OK);
        skc_free(rep);
    }
    void *rep = NULL;
    size_t len;
    assert_int_equal(
        skc_node_call(c, &rep, &len, "srv", "@fail", "x", 1, 0), SKC_EHANDLER);
    assert_int_equal(
        skc_node_call(c, &rep, &len, "srv", "@nothing", "x", 1, 0),
        SKC_ENOSERVICE);
    assert_int_equal(skc_node_call(c, &rep, &len, "gone", "@echo", "x", 1, 0),
        SKC_ENODEDOWN);
    assert_int_equal(skc_node_send(c, "srv", "@nothing", "abc", 3), SKC_OK);
    assert_int_equal(
        skc_node_send(c, "gone", "@echo", "abc", 3), SKC_ENODEDOWN);

    j = stats(c);
    has(j, "\"calls_ok\":3,");
    /* a call refused before it is made (down in the map) is not counted */
    has(j, "\"calls_failed\":{\"ENOSERVICE\":1,\"EHANDLER\":1}");
    has(j, "\"sends_ok\":1,");
    has(j, "\"bytes_out\":20,"); /* 3 x 5 + 1 + 1 + 3 */
    has(j, "\"bytes_in\":15}");  /* the three echoes */
    has(j, "\"srv\":{\"address\":\"");
    has(j, "\"state\":\"up\",\"link\":\"up\"");
    has(j, "\"gone\":{\"address\":\"\",\"state\":\"down\"");
    has(j, "\"calls_in_flight\":0,");
    has(j, "\"links_up\":1,");
    skc_free(j);

    /* The server's side: the send to @nothing is dropped. */
    int64_t until = now_ms() + scaled(5000);
    do {
        j = stats(s);
        if (strstr(j, "\"sends_dropped\":1,") != NULL) {
            break;
        }
        skc_free(j);
        j = NULL;
        sleep_ms(10);
    } while (now_ms() < until);
    assert_non_null(j);
    has(j, "\"node\":\"srv\"");
    has(j, "\"calls_in\":4,"); /* 3 echoes + @fail */
    has(j, "\"calls_refused\":1,");
    has(j, "\"replies_ok\":3,");
    has(j, "\"replies_failed\":2,"); /* @fail and the refused one */
    has(j, "\"sends_in\":1,");
    has(j, "\"bytes_out\":15,");
    has(j, "\"bytes_in\":20}");
    has(j, "\"connections_in\":1,");
    has(j, "\"services\":3,");
    skc_free(j);

    /* The server's statistics over the network, with the client's own
     * stats request counted as a request. */
    char *remote = NULL;
    assert_int_equal(
        skc_node_stats_remote(c, "srv", scaled(5000), &remote), SKC_OK);
    has(remote, "{\"node\":\"srv\"");
    has(remote, "\"calls_in\":4,");
    skc_free(remote);
    assert_int_equal(
        skc_node_stats_remote(c, "gone", 1000, &remote), SKC_ENODEDOWN);
    assert_null(remote);
    assert_int_equal(skc_node_stats_remote(c, "srv", 1000, NULL), SKC_EINVAL);
    assert_int_equal(skc_node_stats(NULL, &remote), SKC_EINVAL);
    assert_int_equal(skc_node_stats(c, NULL), SKC_EINVAL);

    assert_int_equal(skc_node_destroy(c), SKC_OK);
    assert_int_equal(skc_node_destroy(s), SKC_OK);
    skc_free(url);
}

/* Sends to a held service fill its mailbox; the gauges show it. */
static void
test_mailbox_gauges(void **state)
{
    (void)state;
    char *url = NULL;
    atomic_store(&hold_release, 0);
    atomic_store(&sinks, 0);
    skc_node *s = server(&url);
    skc_node *c = client(url);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(
            skc_node_send(c, "srv", "@hold", "0123456789", 10), SKC_OK);
    }
    /* one runs (held), five wait in the mailbox */
    int64_t until = now_ms() + scaled(5000);
    char *j = NULL;
    do {
        skc_free(j);
        j = stats(s);
        if (strstr(j, "\"mailbox_messages\":5,") != NULL) {
            break;
        }
        sleep_ms(10);
    } while (now_ms() < until);
    has(j, "\"mailbox_messages\":5,");
    has(j, "\"mailbox_bytes\":50}");
    has(j, "\"names\":[\"@hold\"],\"messages\":5,\"bytes\":50}");
    has(j, "\"workers_busy\":1,");
    skc_free(j);
    atomic_store(&hold_release, 1);
    until = now_ms() + scaled(5000);
    while (atomic_load(&sinks) < 6 && now_ms() < until) {
        sleep_ms(5);
    }
    assert_int_equal(atomic_load(&sinks), 6);
    j = stats(s);
    has(j, "\"mailbox_messages\":0,");
    has(j, "\"mailboxes\":[]");
    skc_free(j);
    assert_int_equal(skc_node_destroy(c), SKC_OK);
    assert_int_equal(skc_node_destroy(s), SKC_OK);
    skc_free(url);
}

/* Waits until n's statistics contain text (bounded); returns them. */
static char *
stats_until(skc_node *n, const char *text)
{
    int64_t until = now_ms() + scaled(5000);
    char *j = NULL;
    do {
        skc_free(j);
        j = stats(n);
        if (strstr(j, text) != NULL) {
            break;
        }
        sleep_ms(10);
    } while (now_ms() < until);
    has(j, text);
    return j;
}

/* Sends one message to @hold and waits until it runs (held). */
static void
hold_one(skc_node *c, skc_node *s)
{
    assert_int_equal(
        skc_node_send(c, "srv", "@hold", "0123456789", 10), SKC_OK);
    skc_free(stats_until(s, "\"workers_busy\":1,"));
}

/* max_mailbox and max_mailbox_bytes: beyond them a call gets SKC_ELIMIT
 * at once, with the reason; a send waits in the network: the node stops
 * reading its send port until the mailbox has room (counted), and no send
 * is lost. */
static void
test_mailbox_limits(void **state)
{
    (void)state;
    char *url = NULL;
    atomic_store(&hold_release, 0);
    atomic_store(&sinks, 0);
    skc_node_opts so = SKC_NODE_OPTS_INIT;
    so.max_mailbox = 3;
    so.max_mailbox_bytes = 1000;
    skc_node *s = server_with(&url, &so);
    skc_node *c = client(url);
    /* one runs (held), three wait in the mailbox, two in the network */
    hold_one(c, s);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(
            skc_node_send(c, "srv", "@hold", "0123456789", 10), SKC_OK);
    }
    char *j = stats_until(s, "\"send_port_paused\":1,");
    has(j, "\"sends_dropped\":0,");
    has(j, "\"mailbox_messages\":3,");
    skc_free(j);
    void *rep = NULL;
    size_t len;
    assert_int_equal(
        skc_node_call(c, &rep, &len, "srv", "@hold", "x", 1, scaled(5000)),
        SKC_ELIMIT);
    if (strstr(skc_last_error(), "max_mailbox") == NULL ||
        strstr(skc_last_error(), "@hold") == NULL) {
        fail_msg("ELIMIT text: %s", skc_last_error());
    }
    /* other services are not affected */
    assert_int_equal(
        skc_node_call(c, &rep, &len, "srv", "@echo", "ok", 2, scaled(5000)),
        SKC_OK);
    skc_free(rep);
    atomic_store(&hold_release, 1);
    int64_t until = now_ms() + scaled(5000);
    while (atomic_load(&sinks) < 6 && now_ms() < until) {
        sleep_ms(5);
    }
    assert_int_equal(atomic_load(&sinks), 6); /* every send ran */
    assert_int_equal(skc_node_destroy(c), SKC_OK);
    assert_int_equal(skc_node_destroy(s), SKC_OK);
    skc_free(url);

    /* bytes: 25 per service holds two messages of 10 */
    atomic_store(&hold_release, 0);
    atomic_store(&sinks, 0);
    so.max_mailbox = 0;
    so.max_mailbox_bytes = 25;
    s = server_with(&url, &so);
    c = client(url);
    hold_one(c, s);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(
            skc_node_send(c, "srv", "@hold", "0123456789", 10), SKC_OK);
    }
    j = stats_until(s, "\"send_port_paused\":1,");
    has(j, "\"mailbox_bytes\":20}");
    has(j, "\"sends_dropped\":0,");
    skc_free(j);
    atomic_store(&hold_release, 1);
    until = now_ms() + scaled(5000);
    while (atomic_load(&sinks) < 5 && now_ms() < until) {
        sleep_ms(5);
    }
    assert_int_equal(atomic_load(&sinks), 5); /* every send ran */
    assert_int_equal(skc_node_destroy(c), SKC_OK);
    assert_int_equal(skc_node_destroy(s), SKC_OK);
    skc_free(url);
}

static atomic_int async_ok, async_limit, async_other;

static void
on_async(
    int status, const void *data, size_t len, const char *detail, void *arg)
{
    (void)data;
    (void)len;
    (void)arg;
    if (status == SKC_OK) {
        atomic_fetch_add(&async_ok, 1);
    } else if (status == SKC_ELIMIT && detail != NULL &&
        strstr(detail, "share of the node's 40 serving slots") != NULL) {
        atomic_fetch_add(&async_limit, 1);
    } else {
        atomic_fetch_add(&async_other, 1);
    }
}

/* One slow service holds at most a quarter of max_serving in calls
 * waiting for it; the next ones get SKC_ELIMIT at once, other services
 * are still served. */
static void
test_serving_share(void **state)
{
    (void)state;
    char *url = NULL;
    atomic_store(&hold_release, 0);
    atomic_store(&sinks, 0);
    atomic_store(&async_ok, 0);
    atomic_store(&async_limit, 0);
    atomic_store(&async_other, 0);
    skc_node_opts so = SKC_NODE_OPTS_INIT;
    so.max_serving = 40; /* a share of 10 */
    skc_node *s = server_with(&url, &so);
    skc_node *c = client(url);
    hold_one(c, s); /* a send: the handler holds its thread */
    for (int i = 0; i < 25; i++) {
        assert_int_equal(skc_node_call_async(c, "srv", "@hold", "x", 1,
                             scaled(10000), on_async, NULL),
            SKC_OK);
    }
    /* once half of the 40 slots are held (this call's included), a
     * service holding its share (10) is refused: 19 wait, 6 are refused */
    int64_t until = now_ms() + scaled(5000);
    while (atomic_load(&async_limit) < 6 && now_ms() < until) {
        sleep_ms(5);
    }
    assert_int_equal(atomic_load(&async_limit), 6);
    void *rep;
    size_t len;
    assert_int_equal(
        skc_node_call(c, &rep, &len, "srv", "@echo", "ok", 2, scaled(5000)),
        SKC_OK);
    skc_free(rep);
    atomic_store(&hold_release, 1);
    until = now_ms() + scaled(5000);
    while (atomic_load(&async_ok) + atomic_load(&async_other) < 19 &&
        now_ms() < until) {
        sleep_ms(5);
    }
    /* @hold does not reply: the nineteen that waited end ENOREPLY */
    assert_int_equal(atomic_load(&async_other), 19);
    assert_int_equal(atomic_load(&async_limit), 6);
    assert_int_equal(skc_node_destroy(c), SKC_OK);
    assert_int_equal(skc_node_destroy(s), SKC_OK);
    skc_free(url);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_mailbox_gauges),
        cmocka_unit_test(test_mailbox_limits),
        cmocka_unit_test(test_serving_share),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
