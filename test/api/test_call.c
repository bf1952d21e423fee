/* test_call.c -- two nodes in one process: call, send, query, names,
 * deferred replies, errors, over inproc://, ipc:// and tcp://.  Uses only
 * skc.h. */
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

static void
sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a test service: echo, fail, noreply, slow, defer, count sends ---- */

typedef struct svc_state {
    atomic_int sends;
    atomic_int calls;
    atomic_int running; /* concurrent invocations, must stay <= 1 */
    atomic_int max_running;
    char last_send[64];
    skc_reply *deferred;
    pthread_mutex_t lk;
} svc_state;

static void
svc_handler(skc_node *node, uint32_t service, skc_msg *msg, void *arg)
{
    (void)node;
    (void)service;
    svc_state *st = arg;
    int r = atomic_fetch_add(&st->running, 1) + 1;
    int m = atomic_load(&st->max_running);
    while (r > m && !atomic_compare_exchange_weak(&st->max_running, &m, r)) {
    }
    size_t len;
    const char *d = skc_msg_data(msg, &len);
    if (skc_msg_kind(msg) == SKC_MSG_SEND) {
        pthread_mutex_lock(&st->lk);
        snprintf(st->last_send, sizeof(st->last_send), "%.*s", (int)len, d);
        pthread_mutex_unlock(&st->lk);
        atomic_fetch_add(&st->sends, 1);
        assert_int_equal(skc_msg_reply(msg, "x", 1), SKC_ESTATE);
        atomic_fetch_sub(&st->running, 1);
        return;
    }
    atomic_fetch_add(&st->calls, 1);
    if (len >= 4 && memcmp(d, "fail", 4) == 0) {
        skc_msg_fail(msg, "boom: bad command");
    } else if (len >= 7 && memcmp(d, "noreply", 7) == 0) {
        /* forget to reply */
    } else if (len >= 4 && memcmp(d, "slow", 4) == 0) {
        sleep_ms(200);
        skc_msg_reply(msg, d, len);
    } else if (len >= 5 && memcmp(d, "defer", 5) == 0) {
        pthread_mutex_lock(&st->lk);
        assert_int_equal(skc_msg_defer(msg, &st->deferred), SKC_OK);
        pthread_mutex_unlock(&st->lk);
        assert_int_equal(skc_msg_reply(msg, "x", 1), SKC_ESTATE);
    } else {
        assert_int_equal(skc_msg_reply(msg, d, len), SKC_OK);
        assert_int_equal(skc_msg_reply(msg, d, len), SKC_ESTATE);
    }
    atomic_fetch_sub(&st->running, 1);
}

typedef struct pair {
    skc_node *server;
    skc_node *client;
    svc_state st;
    uint32_t svc;
    char *addr;
} pair;

static void
pair_open(pair *p, const char *url, int client_workers)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->st.lk, NULL);
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "db";
    assert_int_equal(skc_node_create(&p->server, &o), SKC_OK);
    assert_int_equal(skc_service_create(p->server, &p->svc, svc_handler,
                         &p->st), SKC_OK);
    assert_int_equal(skc_name_register(p->server, "@sdb", p->svc), SKC_OK);
    assert_int_equal(skc_name_register(p->server, ".local", p->svc), SKC_OK);
    assert_int_equal(skc_node_open(p->server, &p->addr, url), SKC_OK);
    assert_non_null(p->addr);
    skc_node_opts c = SKC_NODE_OPTS_INIT;
    c.name = "gate";
    c.call_timeout_ms = 10000; /* generous: valgrind runs share 2 cores */
    c.workers = client_workers;
    assert_int_equal(skc_node_create(&p->client, &c), SKC_OK);
    assert_int_equal(skc_node_map_set(p->client, "db", p->addr), SKC_OK);
}

static void
pair_close(pair *p)
{
    assert_int_equal(skc_node_destroy(p->client), SKC_OK);
    assert_int_equal(skc_node_destroy(p->server), SKC_OK);
    skc_free(p->addr);
    pthread_mutex_destroy(&p->st.lk);
}

static void
expect_echo(skc_node *client, const char *target, const char *text)
{
    void *out = NULL;
    size_t len = 0;
    int rc = skc_node_call(client, &out, &len, "db", target, text,
        strlen(text), 0);
    if (rc != SKC_OK) {
        fail_msg("call %s: %s (%s)", target, skc_strerror(rc),
            skc_last_error());
    }
    assert_int_equal(len, strlen(text));
    assert_memory_equal(out, text, len);
    skc_free(out);
}

static void
run_basic(const char *url)
{
    pair p;
    pair_open(&p, url, 0);
    expect_echo(p.client, "@sdb", "hello");
    expect_echo(p.client, ".local", "local name");
    char h[16];
    snprintf(h, sizeof(h), ":%08x", p.svc);
    expect_echo(p.client, h, "by handle");

    /* query */
    uint32_t got = 0;
    assert_int_equal(skc_node_query(p.client, &got, "db", "sdb", 0), SKC_OK);
    assert_int_equal(got, p.svc);
    assert_int_equal(skc_node_query(p.client, &got, "db", "@nope", 0),
        SKC_ENOSERVICE);
    assert_non_null(strstr(skc_last_error(), "@nope"));

    /* remote handler error travels back */
    void *out = NULL;
    size_t len = 0;
    assert_int_equal(skc_node_call(p.client, &out, &len, "db", "@sdb",
                         "fail", 4, 0), SKC_EHANDLER);
    assert_null(out);
    assert_non_null(strstr(skc_last_error(), "boom: bad command"));
    assert_non_null(strstr(skc_last_error(), "db"));

    /* unknown service names the node */
    assert_int_equal(skc_node_call(p.client, &out, &len, "db", "@missing",
                         "x", 1, 0), SKC_ENOSERVICE);
    assert_non_null(strstr(skc_last_error(), "@missing"));
    assert_non_null(strstr(skc_last_error(), "'db'"));

    /* handler that forgets to reply */
    assert_int_equal(skc_node_call(p.client, &out, &len, "db", "@sdb",
                         "noreply", 7, 0), SKC_ENOREPLY);

    /* sends arrive, in order, on the service */
    for (int i = 0; i < 50; i++) {
        char b[32];
        int bl = snprintf(b, sizeof(b), "send-%d", i);
        assert_int_equal(skc_node_send(p.client, "db", "@sdb", b,
                             (size_t)bl), SKC_OK);
    }
    for (int i = 0; i < 300 && atomic_load(&p.st.sends) < 50; i++) {
        sleep_ms(10);
    }
    assert_int_equal(atomic_load(&p.st.sends), 50);
    assert_string_equal(p.st.last_send, "send-49");

    /* empty payload */
    assert_int_equal(skc_node_call(p.client, &out, &len, "db", "@sdb", NULL,
                         0, 0), SKC_OK);
    assert_int_equal(len, 0);
    skc_free(out);
    pair_close(&p);
}

static void
test_inproc(void **state)
{
    (void)state;
    run_basic("inproc://skc-test-basic");
}

static void
test_ipc(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "ipc:///tmp/skc-test-%d.sock", (int)getpid());
    run_basic(url);
    unlink(url + 6);
}

static void
test_tcp(void **state)
{
    (void)state;
    run_basic("127.0.0.1:0");
}

/* ---- errors that need no server ---- */

static void
test_errors_without_server(void **state)
{
    (void)state;
    skc_node *n;
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.call_timeout_ms = 500;
    assert_int_equal(skc_node_create(&n, &o), SKC_OK);
    void *out;
    size_t len;

    /* bad arguments */
    assert_int_equal(skc_node_call(n, &out, &len, "", "@x", NULL, 0, 0),
        SKC_EINVAL);
    assert_int_equal(skc_node_call(n, &out, &len, "db", "x", NULL, 0, 0),
        SKC_EINVAL);
    assert_non_null(strstr(skc_last_error(), "must start with"));
    assert_int_equal(skc_node_call(n, NULL, &len, "db", "@x", NULL, 0, 0),
        SKC_EINVAL);
    assert_int_equal(skc_node_call(NULL, &out, &len, "db", "@x", NULL, 0, 0),
        SKC_EINVAL);
    assert_int_equal(skc_node_call(n, &out, &len, "db", "@x", NULL, 5, 0),
        SKC_EINVAL);
    assert_int_equal(skc_node_call(n, &out, &len, "db", "@x", "a", 1, -5),
        SKC_EINVAL);

    /* node marked down */
    assert_int_equal(skc_node_map_set(n, "down", NULL), SKC_OK);
    assert_int_equal(skc_node_call(n, &out, &len, "down", "@x", "a", 1, 0),
        SKC_ENODEDOWN);
    assert_non_null(strstr(skc_last_error(), "'down'"));

    /* unknown node: waits for its deadline, then ENONODE */
    int64_t t0 = now_ms();
    assert_int_equal(skc_node_call(n, &out, &len, "ghost", "@x", "a", 1, 200),
        SKC_ENONODE);
    int64_t dt = now_ms() - t0;
    assert_true(dt >= 190 && dt < 2000);
    assert_non_null(strstr(skc_last_error(), "'ghost'"));

    /* __nowaiting: fails at once */
    assert_int_equal(skc_node_map_set(n, "__nowaiting", "true"), SKC_OK);
    t0 = now_ms();
    assert_int_equal(skc_node_call(n, &out, &len, "ghost", "@x", "a", 1, 0),
        SKC_ENONODE);
    assert_true(now_ms() - t0 < 100);
    assert_int_equal(skc_node_send(n, "ghost", "@x", "a", 1), SKC_ENONODE);

    /* nobody listening: unreachable, with the address and cause */
    assert_int_equal(skc_node_map_set(n, "closed", "127.0.0.1:1"), SKC_OK);
    assert_int_equal(skc_node_call(n, &out, &len, "closed", "@x", "a", 1, 0),
        SKC_EUNREACHABLE);
    assert_non_null(strstr(skc_last_error(), "'closed'"));
    assert_non_null(strstr(skc_last_error(), "tcp://127.0.0.1:1"));

    /* too big for this node */
    skc_node *small;
    skc_node_opts so = SKC_NODE_OPTS_INIT;
    so.max_msg_size = 100;
    assert_int_equal(skc_node_create(&small, &so), SKC_OK);
    char big[200] = { 0 };
    assert_int_equal(skc_node_call(small, &out, &len, "x", "@x", big,
                         sizeof(big), 0), SKC_ETOOBIG);
    assert_int_equal(skc_node_destroy(small), SKC_OK);

    /* map get */
    char *addr = NULL;
    assert_int_equal(skc_node_map_get(n, &addr, "closed"), SKC_OK);
    assert_string_equal(addr, "tcp://127.0.0.1:1");
    skc_free(addr);
    assert_int_equal(skc_node_map_get(n, &addr, "down"), SKC_OK);
    assert_null(addr);
    assert_int_equal(skc_node_map_get(n, &addr, "ghost"), SKC_ENONODE);

    assert_int_equal(skc_node_destroy(n), SKC_OK);
    assert_int_equal(skc_node_destroy(NULL), SKC_OK);
}

/* ---- waiting for the map, reload defines the node ---- */

struct reload_arg {
    skc_node *n;
    const char *addr;
};

static void *
reload_later(void *arg)
{
    struct reload_arg *ra = arg;
    sleep_ms(200);
    skc_node_map_set(ra->n, "late", ra->addr);
    return NULL;
}

static void
test_wait_for_map(void **state)
{
    (void)state;
    pair p;
    pair_open(&p, "inproc://skc-test-wait", 0);
    struct reload_arg ra = { p.client, p.addr };
    pthread_t t;
    pthread_create(&t, NULL, reload_later, &ra);
    void *out;
    size_t len;
    int rc = skc_node_call(p.client, &out, &len, "late", "@sdb", "hi", 2,
        3000);
    assert_int_equal(rc, SKC_OK);
    skc_free(out);
    pthread_join(t, NULL);
    pair_close(&p);
}

/* ---- async calls and caller-driven poll ---- */

struct async_res {
    int done;
    int status;
    char data[64];
};

static void
async_cb(int status, const void *data, size_t len, const char *detail,
    void *arg)
{
    struct async_res *r = arg;
    r->status = status;
    if (status == 0) {
        snprintf(r->data, sizeof(r->data), "%.*s", (int)len,
            (const char *)data);
    } else {
        assert_non_null(detail);
    }
    r->done = 1;
}

struct qres {
    int done, status;
    uint32_t h;
};

static void
query_cb(int status, uint32_t handle, const char *detail, void *arg)
{
    struct qres *q = arg;
    q->status = status;
    q->h = handle;
    if (status != 0) {
        assert_non_null(detail);
        assert_non_null(strstr(detail, "@none"));
    }
    q->done = 1;
}

static void
test_async_poll(void **state)
{
    (void)state;
    pair p;
    pair_open(&p, "inproc://skc-test-async", SKC_CALLER_DRIVEN);
    int fd = -1;
    assert_int_equal(skc_node_fd(p.client, &fd), SKC_OK);
    assert_true(fd >= 0);
    assert_int_equal(skc_node_fd(p.server, &fd), SKC_ESTATE);
    struct async_res r[8];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 8; i++) {
        char b[16];
        int bl = snprintf(b, sizeof(b), "a%d", i);
        assert_int_equal(skc_node_call_async(p.client, "db", "@sdb", b,
                             (size_t)bl, 0, async_cb, &r[i]), SKC_OK);
    }
    /* Nothing runs inside call_async: only in poll. */
    int total = 0;
    for (int i = 0; i < 200 && total < 8; i++) {
        int n = skc_node_poll(p.client, 50);
        assert_true(n >= 0);
        total += n;
    }
    assert_int_equal(total, 8);
    for (int i = 0; i < 8; i++) {
        char b[16];
        snprintf(b, sizeof(b), "a%d", i);
        assert_int_equal(r[i].status, SKC_OK);
        assert_string_equal(r[i].data, b);
    }
    /* poll with nothing ready returns 0 after the timeout */
    int64_t t0 = now_ms();
    assert_int_equal(skc_node_poll(p.client, 50), 0);
    assert_true(now_ms() - t0 >= 40);
    /* wakeup interrupts an infinite poll */
    assert_int_equal(skc_node_wakeup(p.client), SKC_OK);
    assert_int_equal(skc_node_poll(p.client, -1), 0);
    /* async query */
    struct qres q = { 0, 0, 0 };
    assert_int_equal(skc_node_query_async(p.client, "db", "sdb", 0, query_cb,
                         &q), SKC_OK);
    for (int i = 0; i < 100 && !q.done; i++) {
        skc_node_poll(p.client, 50);
    }
    assert_int_equal(q.status, SKC_OK);
    assert_int_equal(q.h, p.svc);
    memset(&q, 0, sizeof(q));
    assert_int_equal(skc_node_query_async(p.client, "db", "@none", 0,
                         query_cb, &q), SKC_OK);
    for (int i = 0; i < 100 && !q.done; i++) {
        skc_node_poll(p.client, 50);
    }
    assert_int_equal(q.status, SKC_ENOSERVICE);
    assert_int_equal(skc_node_query_async(p.client, "db", ":12", 0, query_cb,
                         &q), SKC_EINVAL);
    /* async failures also go through the callback */
    struct async_res e;
    memset(&e, 0, sizeof(e));
    assert_int_equal(skc_node_call_async(p.client, "db", "@none", "x", 1, 0,
                         async_cb, &e), SKC_OK);
    for (int i = 0; i < 100 && !e.done; i++) {
        skc_node_poll(p.client, 50);
    }
    assert_int_equal(e.status, SKC_ENOSERVICE);
    pair_close(&p);
}

/* ---- timeouts, deferred reply, actor ordering ---- */

static void
test_timeout_and_defer(void **state)
{
    (void)state;
    pair p;
    pair_open(&p, "inproc://skc-test-defer", 0);
    void *out;
    size_t len;
    int64_t t0 = now_ms();
    /* deferred and never answered within the deadline: times out */
    assert_int_equal(skc_node_call(p.client, &out, &len, "db", "@sdb",
                         "defer", 5, 300), SKC_ETIMEDOUT);
    int64_t dt = now_ms() - t0;
    assert_true(dt >= 290 && dt < 2000);
    assert_non_null(strstr(skc_last_error(), "'db'"));
    /* answering it late is harmless */
    pthread_mutex_lock(&p.st.lk);
    skc_reply *late = p.st.deferred;
    p.st.deferred = NULL;
    pthread_mutex_unlock(&p.st.lk);
    assert_non_null(late);
    assert_int_equal(skc_reply_send(late, "late", 4), SKC_OK);

    /* a deferred reply answered from another thread */
    struct async_res r;
    memset(&r, 0, sizeof(r));
    skc_node *c2;
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    assert_int_equal(skc_node_create(&c2, &o), SKC_OK);
    assert_int_equal(skc_node_map_set(c2, "db", p.addr), SKC_OK);
    assert_int_equal(skc_node_call_async(c2, "db", "@sdb", "defer", 5, 2000,
                         async_cb, &r), SKC_OK);
    skc_reply *d = NULL;
    for (int i = 0; i < 200 && d == NULL; i++) {
        pthread_mutex_lock(&p.st.lk);
        d = p.st.deferred;
        p.st.deferred = NULL;
        pthread_mutex_unlock(&p.st.lk);
        if (d == NULL) {
            sleep_ms(5);
        }
    }
    assert_non_null(d);
    assert_int_equal(skc_reply_send(d, "later", 5), SKC_OK);
    for (int i = 0; i < 200 && !r.done; i++) {
        sleep_ms(5);
    }
    assert_int_equal(r.status, SKC_OK);
    assert_string_equal(r.data, "later");

    /* abandoned deferred reply: ENOREPLY */
    memset(&r, 0, sizeof(r));
    assert_int_equal(skc_node_call_async(c2, "db", "@sdb", "defer", 5, 2000,
                         async_cb, &r), SKC_OK);
    d = NULL;
    for (int i = 0; i < 200 && d == NULL; i++) {
        pthread_mutex_lock(&p.st.lk);
        d = p.st.deferred;
        p.st.deferred = NULL;
        pthread_mutex_unlock(&p.st.lk);
        if (d == NULL) {
            sleep_ms(5);
        }
    }
    skc_reply_free(d);
    for (int i = 0; i < 200 && !r.done; i++) {
        sleep_ms(5);
    }
    assert_int_equal(r.status, SKC_ENOREPLY);
    assert_int_equal(skc_node_destroy(c2), SKC_OK);

    /* one service never runs two handlers at once */
    struct async_res many[6];
    memset(many, 0, sizeof(many));
    for (int i = 0; i < 6; i++) {
        assert_int_equal(skc_node_call_async(p.client, "db", "@sdb", "slow",
                             4, 5000, async_cb, &many[i]), SKC_OK);
    }
    for (int i = 0; i < 6; i++) {
        for (int k = 0; k < 500 && !many[i].done; k++) {
            sleep_ms(5);
        }
        assert_int_equal(many[i].status, SKC_OK);
    }
    assert_int_equal(atomic_load(&p.st.max_running), 1);
    pair_close(&p);
}

/* ---- names and services ---- */

static void
test_names(void **state)
{
    (void)state;
    pair p;
    pair_open(&p, "inproc://skc-test-names", 0);
    uint32_t other, h;
    svc_state st2;
    memset(&st2, 0, sizeof(st2));
    pthread_mutex_init(&st2.lk, NULL);
    assert_int_equal(skc_service_create(p.server, &other, svc_handler, &st2),
        SKC_OK);
    assert_true(other != p.svc);
    assert_int_equal(skc_name_register(p.server, "@sdb", other), SKC_EEXIST);
    assert_int_equal(skc_name_register(p.server, "@sdb", p.svc), SKC_OK);
    assert_int_equal(skc_name_register(p.server, "bare", other), SKC_OK);
    assert_int_equal(skc_name_lookup(p.server, &h, "@bare"), SKC_OK);
    assert_int_equal(h, other);
    assert_int_equal(skc_name_register(p.server, ":0001", other), SKC_EINVAL);
    assert_int_equal(skc_name_register(p.server, "@x", 9999), SKC_ENOSERVICE);
    assert_int_equal(skc_name_unregister(p.server, "@bare"), SKC_OK);
    assert_int_equal(skc_name_unregister(p.server, "@bare"), SKC_ENOSERVICE);
    assert_int_equal(skc_name_lookup(p.server, &h, "@bare"), SKC_ENOSERVICE);
    /* a destroyed service: its names go, calls get ENOSERVICE */
    assert_int_equal(skc_name_register(p.server, "@gone", other), SKC_OK);
    assert_int_equal(skc_service_destroy(p.server, other), SKC_OK);
    assert_int_equal(skc_service_destroy(p.server, other), SKC_ENOSERVICE);
    void *out;
    size_t len;
    assert_int_equal(skc_node_call(p.client, &out, &len, "db", "@gone", "x",
                         1, 0), SKC_ENOSERVICE);
    char hs[16];
    snprintf(hs, sizeof(hs), ":%x", other);
    assert_int_equal(skc_node_call(p.client, &out, &len, "db", hs, "x", 1, 0),
        SKC_ENOSERVICE);
    pthread_mutex_destroy(&st2.lk);
    pair_close(&p);
}

/* ---- restart: the same address comes back, next calls succeed ---- */

static void
test_peer_restart(void **state)
{
    (void)state;
    pair p;
    pair_open(&p, "127.0.0.1:0", 0);
    expect_echo(p.client, "@sdb", "before");
    /* stop the server node and start a new one on the same address */
    assert_int_equal(skc_node_destroy(p.server), SKC_OK);
    void *out;
    size_t len;
    int rc = skc_node_call(p.client, &out, &len, "db", "@sdb", "x", 1, 300);
    assert_true(rc == SKC_EUNREACHABLE || rc == SKC_ECONNLOST ||
        rc == SKC_ETIMEDOUT);
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "db";
    assert_int_equal(skc_node_create(&p.server, &o), SKC_OK);
    assert_int_equal(skc_service_create(p.server, &p.svc, svc_handler,
                         &p.st), SKC_OK);
    assert_int_equal(skc_name_register(p.server, "@sdb", p.svc), SKC_OK);
    char *again = NULL;
    assert_int_equal(skc_node_open(p.server, &again, p.addr), SKC_OK);
    assert_string_equal(again, p.addr);
    skc_free(again);
    /* reconnect happens by itself (backoff up to 5 s) */
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        rc = skc_node_call(p.client, &out, &len, "db", "@sdb", "y", 1, 1000);
        if (rc == SKC_OK) {
            ok = 1;
            skc_free(out);
        } else {
            sleep_ms(50);
        }
    }
    assert_true(ok);
    /* sends work again too (new PULL port learned from the new hello) */
    int before = atomic_load(&p.st.sends);
    assert_int_equal(skc_node_send(p.client, "db", "@sdb", "s", 1), SKC_OK);
    for (int i = 0; i < 300 && atomic_load(&p.st.sends) == before; i++) {
        sleep_ms(10);
    }
    assert_int_equal(atomic_load(&p.st.sends), before + 1);
    pair_close(&p);
}

/* ---- reload to a new address: in-flight calls fail, next ones go to the
 * new address ---- */

static void
test_reload_address(void **state)
{
    (void)state;
    pair a, b;
    pair_open(&a, "inproc://skc-test-reload-a", 0);
    pair_open(&b, "inproc://skc-test-reload-b", 0);
    expect_echo(a.client, "@sdb", "a");
    struct async_res r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(skc_node_call_async(a.client, "db", "@sdb", "defer", 5,
                         3000, async_cb, &r), SKC_OK);
    sleep_ms(100);
    assert_int_equal(skc_node_map_set(a.client, "db", b.addr), SKC_OK);
    for (int i = 0; i < 200 && !r.done; i++) {
        sleep_ms(10);
    }
    assert_int_equal(r.status, SKC_ECONNLOST);
    expect_echo(a.client, "@sdb", "b");
    assert_int_equal(atomic_load(&b.st.calls), 1);
    /* the abandoned deferred reply on a */
    pthread_mutex_lock(&a.st.lk);
    skc_reply_free(a.st.deferred);
    a.st.deferred = NULL;
    pthread_mutex_unlock(&a.st.lk);
    /* marking down fails calls at once */
    assert_int_equal(skc_node_map_set(a.client, "db", NULL), SKC_OK);
    void *out;
    size_t len;
    assert_int_equal(skc_node_call(a.client, &out, &len, "db", "@sdb", "x", 1,
                         0), SKC_ENODEDOWN);
    pair_close(&a);
    pair_close(&b);
}

/* ---- message size limits announced by the peer ---- */

static void
test_peer_limit(void **state)
{
    (void)state;
    skc_node *srv, *cli;
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.max_msg_size = 1000;
    assert_int_equal(skc_node_create(&srv, &o), SKC_OK);
    svc_state st;
    memset(&st, 0, sizeof(st));
    pthread_mutex_init(&st.lk, NULL);
    uint32_t h;
    assert_int_equal(skc_service_create(srv, &h, svc_handler, &st), SKC_OK);
    assert_int_equal(skc_name_register(srv, "@e", h), SKC_OK);
    char *addr;
    assert_int_equal(skc_node_open(srv, &addr, "inproc://skc-limit"), SKC_OK);
    skc_node_opts c = SKC_NODE_OPTS_INIT;
    assert_int_equal(skc_node_create(&cli, &c), SKC_OK);
    assert_int_equal(skc_node_map_set(cli, "srv", addr), SKC_OK);
    void *out;
    size_t len;
    /* first call connects and learns the limit */
    assert_int_equal(skc_node_call(cli, &out, &len, "srv", "@e", "x", 1, 0),
        SKC_OK);
    skc_free(out);
    char *big = calloc(1, 5000);
    assert_int_equal(skc_node_call(cli, &out, &len, "srv", "@e", big, 5000,
                         0), SKC_ETOOBIG);
    assert_non_null(strstr(skc_last_error(), "1000"));
    /* the link still works */
    assert_int_equal(skc_node_call(cli, &out, &len, "srv", "@e", "ok", 2, 0),
        SKC_OK);
    skc_free(out);
    free(big);
    skc_free(addr);
    assert_int_equal(skc_node_destroy(cli), SKC_OK);
    assert_int_equal(skc_node_destroy(srv), SKC_OK);
    pthread_mutex_destroy(&st.lk);
}

static void
test_errors_and_version(void **state)
{
    (void)state;
    assert_int_equal(skc_version(), SKC_VERSION_NUMBER);
    assert_string_equal(skc_version_string(), SKC_VERSION_STRING);
    assert_string_equal(skc_errname(SKC_ETIMEDOUT), "ETIMEDOUT");
    assert_string_equal(skc_strerror(12345), "unknown error");
    assert_string_equal(skc_errname(12345), "EUNKNOWN");
    for (int c = 0; c >= SKC_ESTATE; c--) {
        assert_string_not_equal(skc_strerror(c), "unknown error");
    }
    skc_node *n;
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.size = 2;
    assert_int_equal(skc_node_create(&n, &o), SKC_EINVAL);
    o.size = sizeof(o);
    o.workers = -7;
    assert_int_equal(skc_node_create(&n, &o), SKC_EINVAL);
    assert_int_equal(skc_node_create(NULL, NULL), SKC_EINVAL);
    assert_int_equal(skc_node_create(&n, NULL), SKC_OK);
    assert_int_equal(skc_node_open(n, NULL, "nosuchnode"), SKC_ENONODE);
    assert_int_equal(skc_node_open(n, NULL, "bad:addr:"), SKC_EINVAL);
    assert_int_equal(skc_node_poll(n, 0), SKC_ESTATE);
    char *a1 = NULL;
    assert_int_equal(skc_node_open(n, &a1, "127.0.0.1:0"), SKC_OK);
    skc_node *m;
    assert_int_equal(skc_node_create(&m, NULL), SKC_OK);
    assert_int_equal(skc_node_open(m, NULL, a1), SKC_EEXIST);
    assert_int_equal(skc_node_destroy(m), SKC_OK);
    skc_free(a1);
    assert_int_equal(skc_node_destroy(n), SKC_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_and_version),
        cmocka_unit_test(test_inproc),
        cmocka_unit_test(test_ipc),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_errors_without_server),
        cmocka_unit_test(test_wait_for_map),
        cmocka_unit_test(test_async_poll),
        cmocka_unit_test(test_timeout_and_defer),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_peer_restart),
        cmocka_unit_test(test_reload_address),
        cmocka_unit_test(test_peer_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
