/* test_health.c -- peer health and groups through the public API: failover
 * to the next member and back, roundrobin and random, no live member,
 * ping and peer state, monitors (ordered, with reasons, allowed to call
 * skc), heartbeats against a peer that stops answering, and malformed
 * groups.  Uses only skc.h; servers are nodes of this process on
 * 127.0.0.1.  Waits are bounded generously (valgrind runs this too). */
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
#include <time.h>
#include <unistd.h>

#include "skc/skc.h"
#include "waits.h"

/* @who answers with its node's name. */
static void
svc_who(skc_node *n, uint32_t self, skc_msg *m, void *arg)
{
    (void)self;
    (void)arg;
    const char *name = skc_node_name(n);
    skc_msg_reply(m, name, strlen(name));
}

/* A server node named `name` on 127.0.0.1:port (0: any); *url receives
 * the bound URL (skc_free). */
static skc_node *
server(const char *name, int port, char **url, const skc_node_opts *opts)
{
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    if (opts != NULL) {
        o = *opts;
    }
    o.name = name;
    skc_node *n;
    assert_int_equal(skc_node_create(&n, &o), SKC_OK);
    uint32_t h;
    assert_int_equal(skc_service_create(n, &h, svc_who, NULL), SKC_OK);
    assert_int_equal(skc_name_register(n, "@who", h), SKC_OK);
    char where[64];
    snprintf(where, sizeof(where), "127.0.0.1:%d", port);
    int64_t until = now_ms() + scaled(5000);
    int rc;
    /* A port just freed may be held a moment by another socket. */
    while ((rc = skc_node_open(n, url, where)) == SKC_EEXIST &&
        now_ms() < until) {
        sleep_ms(50);
    }
    if (rc != SKC_OK) {
        fail_msg("open %s: %s", where, skc_last_error());
    }
    return n;
}

static int
port_of(const char *url)
{
    const char *c = strrchr(url, ':');
    return c != NULL ? atoi(c + 1) : 0;
}

/* Calls peer's @who: 0 and the answer in who, or the error (text in who). */
static int
who(skc_node *c, const char *peer, char *out, size_t size, int timeout)
{
    void *rep = NULL;
    size_t len = 0;
    int rc = skc_node_call(c, &rep, &len, peer, "@who", NULL, 0, timeout);
    if (rc == SKC_OK) {
        snprintf(out, size, "%.*s", (int)len, (const char *)rep);
        skc_free(rep);
    } else {
        snprintf(out, size, "%s", skc_last_error());
    }
    return rc;
}

/* Calls `peer` until it is answered by `want` (bounded). */
static void
until_answered_by(skc_node *c, const char *peer, const char *want, int ms)
{
    char out[1200] = "";
    int64_t until = now_ms() + scaled(ms);
    int rc;
    do {
        rc = who(c, peer, out, sizeof(out), scaled(1000));
        if (rc == SKC_OK && strcmp(out, want) == 0) {
            return;
        }
        sleep_ms(20);
    } while (now_ms() < until);
    fail_msg("%s was not answered by %s within %d ms: last %s (%s)", peer,
        want, scaled(ms), skc_errname(rc), out);
}

/* ---- monitor reports, as lines "peer up|down reason" ---- */

struct reports {
    pthread_mutex_t lk;
    char text[8192];
    skc_node *node; /* the monitor calls skc_node_peer_state on it */
    atomic_int state_ok;
};

static void
on_monitor(
    void *arg, const char *peer, int up, const char *reason, const char *addr)
{
    struct reports *r = arg;
    int st;
    /* skc functions may be called from a monitor */
    if (skc_node_peer_state(r->node, peer, &st, NULL) == SKC_OK) {
        atomic_fetch_add(&r->state_ok, 1);
    }
    pthread_mutex_lock(&r->lk);
    size_t l = strlen(r->text);
    snprintf(r->text + l, sizeof(r->text) - l, "%s %s %s%s\n", peer,
        up ? "up" : "down", reason, addr[0] ? "" : " (no address)");
    pthread_mutex_unlock(&r->lk);
}

static void
expect_report(struct reports *r, const char *line, int ms)
{
    int64_t until = now_ms() + scaled(ms);
    for (;;) {
        pthread_mutex_lock(&r->lk);
        int seen = strstr(r->text, line) != NULL;
        pthread_mutex_unlock(&r->lk);
        if (seen) {
            return;
        }
        if (now_ms() > until) {
            pthread_mutex_lock(&r->lk);
            fail_msg("no report '%s' within %d ms; got:\n%s", line, scaled(ms),
                r->text);
        }
        sleep_ms(10);
    }
}

static skc_node *
client(const char *map, struct reports *r, int32_t hb_ms)
{
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "client";
    o.heartbeat_ms = hb_ms;
    skc_node *c;
    assert_int_equal(skc_node_create(&c, &o), SKC_OK);
    if (r != NULL) {
        pthread_mutex_init(&r->lk, NULL);
        r->text[0] = '\0';
        r->node = c;
        atomic_init(&r->state_ok, 0);
        assert_int_equal(skc_node_monitor(c, on_monitor, r), SKC_OK);
    }
    if (skc_node_map_parse(c, map, "test") != SKC_OK) {
        fail_msg("map: %s", skc_last_error());
    }
    return c;
}

static void
test_failover_and_back(void **state)
{
    (void)state;
    char *ua, *ub;
    skc_node *a = server("a", 0, &ua, NULL);
    skc_node *b = server("b", 0, &ub, NULL);
    int port_a = port_of(ua);
    char map[512];
    snprintf(
        map, sizeof(map), "a = '%s'\nb = '%s'\ndb = { 'a', 'b' }\n", ua, ub);
    struct reports r;
    skc_node *c = client(map, &r, 0);
    until_answered_by(c, "db", "a", 5000);
    /* members are connected eagerly: b is up without a call to it */
    expect_report(&r, "b up connected", 5000);
    expect_report(&r, "a up connected", 5000);
    char *g = NULL;
    assert_int_equal(skc_node_map_get(c, &g, "db"), SKC_OK);
    assert_string_equal(g, "{\"a\",\"b\"}");
    skc_free(g);

    /* a goes away: its connection closes, so a is down at once and new
     * calls go to b */
    assert_int_equal(skc_node_destroy(a), SKC_OK);
    int64_t t0 = now_ms();
    until_answered_by(c, "db", "b", 3000);
    expect_report(&r, "a down reset", 3000);
    int st;
    char *detail;
    assert_int_equal(skc_node_peer_state(c, "a", &st, &detail), SKC_OK);
    assert_true(st == SKC_PEER_DOWN || st == SKC_PEER_CONNECTING);
    skc_free(detail);
    assert_int_equal(skc_node_peer_state(c, "db", &st, &detail), SKC_OK);
    assert_int_equal(st, SKC_PEER_UP);
    assert_non_null(strstr(detail, "group (failover): a: "));
    assert_non_null(strstr(detail, "b: "));
    skc_free(detail);
    printf("# failover to b after %lld ms\n", (long long)(now_ms() - t0));

    /* a comes back on its address: the group returns to it */
    char *ua2;
    a = server("a", port_a, &ua2, NULL);
    until_answered_by(c, "db", "a", 15000);
    expect_report(&r, "a up connected\n", 3000);
    assert_true(atomic_load(&r.state_ok) >= 3);

    assert_int_equal(skc_node_destroy(c), SKC_OK);
    assert_int_equal(skc_node_destroy(a), SKC_OK);
    assert_int_equal(skc_node_destroy(b), SKC_OK);
    pthread_mutex_destroy(&r.lk);
    skc_free(ua);
    skc_free(ua2);
    skc_free(ub);
}

/* Both members up (connected eagerly), then n calls counted by member. */
static void
count_answers(const char *policy, int calls, int *na, int *nb)
{
    char *ua, *ub;
    skc_node *a = server("a", 0, &ua, NULL);
    skc_node *b = server("b", 0, &ub, NULL);
    char map[512];
    snprintf(map, sizeof(map),
        "a = '%s'\nb = '%s'\ng = { 'a', 'b', policy = '%s' }\n", ua, ub,
        policy);
    struct reports r;
    skc_node *c = client(map, &r, 0);
    expect_report(&r, "a up connected", 5000);
    expect_report(&r, "b up connected", 5000);
    *na = *nb = 0;
    for (int i = 0; i < calls; i++) {
        char out[1200];
        int rc = who(c, "g", out, sizeof(out), scaled(5000));
        if (rc != SKC_OK) {
            fail_msg("call %d: %s", i, out);
        }
        *na += strcmp(out, "a") == 0;
        *nb += strcmp(out, "b") == 0;
    }
    assert_int_equal(skc_node_destroy(c), SKC_OK);
    assert_int_equal(skc_node_destroy(a), SKC_OK);
    assert_int_equal(skc_node_destroy(b), SKC_OK);
    pthread_mutex_destroy(&r.lk);
    skc_free(ua);
    skc_free(ub);
}

static void
test_roundrobin_and_random(void **state)
{
    (void)state;
    int na, nb;
    count_answers("roundrobin", 10, &na, &nb);
    assert_int_equal(na, 5);
    assert_int_equal(nb, 5);
    count_answers("random", 60, &na, &nb);
    assert_int_equal(na + nb, 60);
    assert_true(na > 0 && nb > 0); /* fails with probability 2^-59 */
    count_answers("failover", 10, &na, &nb);
    assert_int_equal(na, 10);
}

static void
test_no_live_member(void **state)
{
    (void)state;
    char map[512];
    snprintf(map, sizeof(map),
        "x = 'ipc:///tmp/skc-test-health-%d-x'\n"
        "y = 'ipc:///tmp/skc-test-health-%d-y'\n"
        "g = { 'x', 'y' }\n",
        (int)getpid(), (int)getpid());
    struct reports r;
    skc_node *c = client(map, &r, 0);
    expect_report(&r, "x down refused", 5000);
    expect_report(&r, "y down refused", 5000);
    char out[1200];
    int rc = who(c, "g", out, sizeof(out), scaled(2000));
    assert_int_equal(rc, SKC_EUNREACHABLE);
    assert_non_null(strstr(out, "group 'g': member 'x' (ipc:///tmp/"));
    assert_non_null(strstr(out, "down (refused); member 'y'"));
    assert_non_null(strstr(out, "no live member"));
    int st;
    assert_int_equal(skc_node_peer_state(c, "g", &st, NULL), SKC_OK);
    assert_int_equal(st, SKC_PEER_DOWN);
    /* a send to the group fails the same way, at once */
    assert_int_equal(skc_node_send(c, "g", "@who", "x", 1), SKC_EUNREACHABLE);
    assert_int_equal(skc_node_destroy(c), SKC_OK);
    pthread_mutex_destroy(&r.lk);
}

/* Destroy while a watched member that refuses is being redialed: the
 * redial's dial and the link's close run on two threads, and NNG 1.5.2
 * could leave that dial waiting for ever (and the close behind it) when
 * the close stopped the dialer just before its connect began (skc's NNG
 * patch, src/core/dialer.c).  Every destroy must return. */
static void
test_destroy_during_redial(void **state)
{
    (void)state;
    for (int i = 0; i < 80; i++) {
        skc_node_opts o = SKC_NODE_OPTS_INIT;
        o.name = "redialer";
        o.workers = 1;
        o.heartbeat_ms = -1;
        skc_node *n;
        assert_int_equal(skc_node_create(&n, &o), SKC_OK);
        assert_int_equal(skc_node_map_set(n, "closed", "127.0.0.1:1"), SKC_OK);
        const char *members[] = { "closed" };
        assert_int_equal(
            skc_node_map_set_group(n, "g", members, 1, "failover"), SKC_OK);
        sleep_ms((i % 8) * 25); /* redials start 100 ms after a refusal */
        assert_int_equal(skc_node_destroy(n), SKC_OK);
    }
}

struct ping_result {
    atomic_int done;
    int status;
    int64_t rtt;
};

static void
on_ping(int status, int64_t rtt_us, const char *detail, void *arg)
{
    (void)detail;
    struct ping_result *p = arg;
    p->status = status;
    p->rtt = rtt_us;
    atomic_store(&p->done, 1);
}

static void
test_ping_and_state(void **state)
{
    (void)state;
    char *ua;
    skc_node *a = server("a", 0, &ua, NULL);
    char map[512];
    snprintf(map, sizeof(map), "a = '%s'\ng = { 'a' }\nold = false\n", ua);
    skc_node *c = client(map, NULL, 0);
    int64_t rtt = -1;
    int rc = skc_node_ping(c, "a", scaled(5000), &rtt);
    if (rc != SKC_OK) {
        fail_msg("ping: %s", skc_last_error());
    }
    assert_true(rtt > 0);
    assert_int_equal(skc_node_ping(c, "g", scaled(5000), &rtt), SKC_OK);
    struct ping_result pr = { .status = -1 };
    atomic_init(&pr.done, 0);
    assert_int_equal(
        skc_node_ping_async(c, "a", scaled(5000), on_ping, &pr), SKC_OK);
    int64_t until = now_ms() + scaled(5000);
    while (!atomic_load(&pr.done) && now_ms() < until) {
        sleep_ms(5);
    }
    assert_int_equal(pr.status, SKC_OK);
    assert_true(pr.rtt > 0);

    int st;
    char *detail;
    assert_int_equal(skc_node_peer_state(c, "a", &st, &detail), SKC_OK);
    assert_int_equal(st, SKC_PEER_UP);
    assert_non_null(strstr(detail, ua));
    assert_non_null(strstr(detail, " up"));
    skc_free(detail);
    assert_int_equal(skc_node_peer_state(c, "nobody", &st, &detail), SKC_OK);
    assert_int_equal(st, SKC_PEER_UNKNOWN);
    skc_free(detail);
    assert_int_equal(skc_node_peer_state(c, "old", &st, &detail), SKC_OK);
    assert_int_equal(st, SKC_PEER_DOWN);
    assert_non_null(strstr(detail, "marked down"));
    skc_free(detail);
    assert_int_equal(skc_node_ping(c, "old", 1000, &rtt), SKC_ENODEDOWN);
    assert_int_equal(skc_node_peer_state(c, NULL, &st, NULL), SKC_EINVAL);
    assert_int_equal(
        skc_node_ping_async(c, "a", 1000, NULL, NULL), SKC_EINVAL);

    /* marked down in the map: reported with that reason */
    struct reports r;
    pthread_mutex_init(&r.lk, NULL);
    r.text[0] = '\0';
    r.node = c;
    atomic_init(&r.state_ok, 0);
    assert_int_equal(skc_node_monitor(c, on_monitor, &r), SKC_OK);
    assert_int_equal(skc_node_map_set(c, "a", NULL), SKC_OK);
    expect_report(&r, "a down marked down", 3000);
    assert_int_equal(skc_node_monitor(c, NULL, NULL), SKC_OK);
    assert_int_equal(skc_node_destroy(c), SKC_OK);
    assert_int_equal(skc_node_destroy(a), SKC_OK);
    pthread_mutex_destroy(&r.lk);
    skc_free(ua);
}

/* A handler that holds the server's only serving slot until released:
 * the server then answers nothing, heartbeats included. */
static pthread_mutex_t hold_lk = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static int hold_release;

static void
svc_hold(skc_node *n, uint32_t self, skc_msg *m, void *arg)
{
    (void)n;
    (void)self;
    (void)arg;
    pthread_mutex_lock(&hold_lk);
    while (!hold_release) {
        pthread_cond_wait(&hold_cv, &hold_lk);
    }
    pthread_mutex_unlock(&hold_lk);
    skc_msg_reply(m, "late", 4);
}

struct call_result {
    atomic_int done;
    int status;
    char detail[600];
};

static void
on_call(
    int status, const void *data, size_t len, const char *detail, void *arg)
{
    (void)data;
    (void)len;
    struct call_result *cr = arg;
    cr->status = status;
    snprintf(cr->detail, sizeof(cr->detail), "%s", detail ? detail : "");
    atomic_store(&cr->done, 1);
}

static void
test_heartbeat_silent_peer(void **state)
{
    (void)state;
    skc_node_opts so = SKC_NODE_OPTS_INIT;
    so.max_serving = 1;
    char *ua;
    skc_node *a = server("a", 0, &ua, &so);
    uint32_t h;
    assert_int_equal(skc_service_create(a, &h, svc_hold, NULL), SKC_OK);
    assert_int_equal(skc_name_register(a, "@hold", h), SKC_OK);
    char map[512];
    snprintf(map, sizeof(map), "a = '%s'\n", ua);
    struct reports r;
    /* 200 ms x 3 misses: silent for 600 ms = down */
    skc_node *c = client(map, &r, scaled(200));
    int64_t rtt;
    assert_int_equal(skc_node_ping(c, "a", scaled(5000), &rtt), SKC_OK);
    struct call_result cr = { .status = -1 };
    atomic_init(&cr.done, 0);
    int64_t t0 = now_ms();
    assert_int_equal(skc_node_call_async(
                         c, "a", "@hold", "x", 1, scaled(30000), on_call, &cr),
        SKC_OK);
    int64_t until = now_ms() + scaled(10000);
    while (!atomic_load(&cr.done) && now_ms() < until) {
        sleep_ms(10);
    }
    int64_t dt = now_ms() - t0;
    if (cr.status != SKC_ECONNLOST) {
        fail_msg("the call to a silent peer ended with %s after %lld ms: %s",
            skc_errname(cr.status), (long long)dt, cr.detail);
    }
    assert_non_null(strstr(cr.detail, "heartbeat timeout"));
    assert_non_null(strstr(cr.detail, "outcome is unknown"));
    expect_report(&r, "a down heartbeat timeout", 3000);
    printf("# silent peer declared down after %lld ms\n", (long long)dt);
    pthread_mutex_lock(&hold_lk);
    hold_release = 1;
    pthread_cond_broadcast(&hold_cv);
    pthread_mutex_unlock(&hold_lk);
    /* once it answers again, it is redialled and up */
    expect_report(&r, "a up connected\n", 15000);
    assert_int_equal(skc_node_destroy(c), SKC_OK);
    assert_int_equal(skc_node_destroy(a), SKC_OK);
    pthread_mutex_destroy(&r.lk);
    skc_free(ua);
}

static void
expect_map_error(skc_node *c, const char *text, int code, const char *want)
{
    int rc = skc_node_map_parse(c, text, "m.lua");
    assert_int_equal(rc, code);
    if (strstr(skc_last_error(), want) == NULL) {
        fail_msg("'%s': got '%s', want '%s'", text, skc_last_error(), want);
    }
}

static void
test_group_errors(void **state)
{
    (void)state;
    skc_node *c = client("a = '127.0.0.1:1'\nb = '127.0.0.1:2'\n"
                         "g = { 'a', 'b', policy = 'random' }\n",
        NULL, -1);
    char *t;
    assert_int_equal(skc_node_map_get(c, &t, "g"), SKC_OK);
    assert_string_equal(t, "{\"a\",\"b\",policy=\"random\"}");
    skc_free(t);
    /* a group as a member, across two maps: nothing is applied */
    expect_map_error(c, "h = { 'g' }\nz = '127.0.0.1:3'\n", SKC_ESYNTAX,
        "m.lua:1: group 'h': member 'g' is itself a group");
    assert_int_equal(skc_node_map_get(c, &t, "z"), SKC_ENONODE);
    expect_map_error(c, "a = { 'b' }\n", SKC_ESYNTAX,
        "'a' cannot become a group: it is a member of group 'g'");
    expect_map_error(c, "k = { }\n", SKC_ESYNTAX, "at least one member");
    expect_map_error(c, "k = { 'a', policy = 'best' }\n", SKC_ESYNTAX,
        "unknown policy 'best'");

    const char *two[] = { "a", "a" };
    assert_int_equal(skc_node_map_set_group(c, "k", two, 2, NULL), SKC_EINVAL);
    assert_non_null(strstr(skc_last_error(), "listed twice"));
    assert_int_equal(skc_node_map_set_group(c, "k", two, 0, NULL), SKC_EINVAL);
    assert_int_equal(
        skc_node_map_set_group(c, "k", two, 1, "fast"), SKC_EINVAL);
    assert_non_null(strstr(skc_last_error(), "unknown policy 'fast'"));
    const char *self[] = { "k" };
    assert_int_equal(
        skc_node_map_set_group(c, "k", self, 1, NULL), SKC_EINVAL);
    const char *grp[] = { "g" };
    assert_int_equal(
        skc_node_map_set_group(c, "k", grp, 1, NULL), SKC_ESYNTAX);
    assert_int_equal(
        skc_node_map_set_group(c, "__x", two, 1, NULL), SKC_EINVAL);
    const char *ok[] = { "b", "a" };
    assert_int_equal(
        skc_node_map_set_group(c, "k", ok, 2, "roundrobin"), SKC_OK);
    assert_int_equal(skc_node_map_get(c, &t, "k"), SKC_OK);
    assert_string_equal(t, "{\"b\",\"a\",policy=\"roundrobin\"}");
    skc_free(t);
    /* a group can become a node again, and the reverse */
    assert_int_equal(skc_node_map_set(c, "k", "127.0.0.1:4"), SKC_OK);
    assert_int_equal(skc_node_map_get(c, &t, "k"), SKC_OK);
    assert_string_equal(t, "tcp://127.0.0.1:4");
    skc_free(t);
    assert_int_equal(skc_node_map_parse(c, "k = { 'a' }", NULL), SKC_OK);
    assert_int_equal(skc_node_map_get(c, &t, "k"), SKC_OK);
    assert_string_equal(t, "{\"a\"}");
    skc_free(t);
    assert_int_equal(skc_node_destroy(c), SKC_OK);

    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.heartbeat_ms = -2;
    assert_int_equal(skc_node_create(&c, &o), SKC_EINVAL);
    o.heartbeat_ms = 0;
    o.heartbeat_misses = -1;
    assert_int_equal(skc_node_create(&c, &o), SKC_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failover_and_back),
        cmocka_unit_test(test_roundrobin_and_random),
        cmocka_unit_test(test_no_live_member),
        cmocka_unit_test(test_ping_and_state),
        cmocka_unit_test(test_heartbeat_silent_peer),
        cmocka_unit_test(test_group_errors),
        cmocka_unit_test(test_destroy_during_redial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
