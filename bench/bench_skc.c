/* bench_skc.c -- the skc side of the benchmark: a server node with the bench
 * services and a client that runs one case.  Uses only skc.h, the way an
 * application would. */
#include "bench.h"

#include "skc/skc.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* SKC_BENCH_LOG=1..4 in the environment: the node logs to stderr. */
static void
bench_log_opts(skc_node_opts *no)
{
    const char *e = getenv("SKC_BENCH_LOG");
    if (e != NULL && atoi(e) > 0) {
        no->log = skc_log_stderr;
        no->log_level = atoi(e);
    }
}

/* --variant cookie / tls: the node proves a cluster cookie, or speaks
 * mutual TLS with the files the driver made in $SKC_BENCH_TLS (ca.pem,
 * node.pem, node.key; docs/SECURITY.md).  Returns 1 for these variants
 * (the server then takes the map's name: the identity check), else 0. */
static int
bench_secure_opts(skc_node_opts *no, const char *variant)
{
    static char cert[4200], key[4200], ca[4200];
    if (strcmp(variant, "cookie") == 0) {
        no->cluster_cookie = "skc bench cluster cookie";
        return 1;
    }
    if (strcmp(variant, "tls") != 0) {
        return 0;
    }
    const char *dir = getenv("SKC_BENCH_TLS");
    dir = dir != NULL ? dir : ".";
    snprintf(cert, sizeof(cert), "%s/node.pem", dir);
    snprintf(key, sizeof(key), "%s/node.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    no->tls_cert = cert;
    no->tls_key = key;
    no->tls_ca = ca;
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Server                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct srv {
    atomic_ullong sends;
    atomic_llong last_ns;
    atomic_ullong held;
    pthread_mutex_t lk;
    skc_reply **replies; /* deferred by @hold, answered never */
    size_t n, cap;
} srv;

static void
h_echo(skc_node *node, uint32_t svc, skc_msg *msg, void *arg)
{
    (void)node;
    (void)svc;
    (void)arg;
    size_t len;
    const void *d = skc_msg_data(msg, &len);
    skc_msg_reply(msg, d, len);
}

static void
h_ack(skc_node *node, uint32_t svc, skc_msg *msg, void *arg)
{
    (void)node;
    (void)svc;
    (void)arg;
    skc_msg_reply(msg, NULL, 0);
}

static void
h_sink(skc_node *node, uint32_t svc, skc_msg *msg, void *arg)
{
    (void)node;
    (void)svc;
    (void)msg;
    srv *s = arg;
    atomic_store(&s->last_ns, bench_now_ns());
    atomic_fetch_add(&s->sends, 1);
}

static void
h_hold(skc_node *node, uint32_t svc, skc_msg *msg, void *arg)
{
    (void)node;
    (void)svc;
    srv *s = arg;
    skc_reply *r;
    if (skc_msg_defer(msg, &r) != 0) {
        return;
    }
    pthread_mutex_lock(&s->lk);
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        skc_reply **v = realloc(s->replies, nc * sizeof(*v));
        if (v == NULL) {
            pthread_mutex_unlock(&s->lk);
            skc_reply_fail(r, "bench server out of memory");
            return;
        }
        s->replies = v;
        s->cap = nc;
    }
    s->replies[s->n++] = r;
    pthread_mutex_unlock(&s->lk);
    atomic_fetch_add(&s->held, 1);
}

static void
h_stats(skc_node *node, uint32_t svc, skc_msg *msg, void *arg)
{
    (void)node;
    (void)svc;
    srv *s = arg;
    char text[160];
    int n = snprintf(text, sizeof(text), BENCH_STATS_FMT,
        (unsigned long long)atomic_load(&s->sends), (long long)bench_now_ns(),
        (long long)atomic_load(&s->last_ns),
        (unsigned long long)atomic_load(&s->held));
    skc_msg_reply(msg, text, (size_t)n);
}

static int
add_service(skc_node *node, const char *name, skc_handler_fn fn, void *arg,
    uint32_t flags)
{
    uint32_t h;
    int rc = skc_service_create_ex(node, &h, fn, arg, flags);
    if (rc == 0) {
        rc = skc_name_register(node, name, h);
    }
    if (rc != 0) {
        fprintf(stderr, "skc_bench server: service %s: %s (%s)\n", name,
            skc_strerror(rc), skc_last_error());
    }
    return rc;
}

int
bench_skc_server(const bench_opts *o)
{
    srv s;
    memset(&s, 0, sizeof(s));
    pthread_mutex_init(&s.lk, NULL);
    skc_node_opts no = SKC_NODE_OPTS_INIT;
    no.name = bench_secure_opts(&no, o->variant) ? BENCH_PEER : "benchsrv";
    bench_log_opts(&no);
    if (o->max_serving > 0) {
        no.max_serving = (uint32_t)o->max_serving;
    }
    if (o->workers != 0) {
        no.workers = o->workers;
    }
    skc_node *node;
    int rc = skc_node_create(&node, &no);
    if (rc != 0) {
        fprintf(stderr, "skc_bench server: create: %s (%s)\n",
            skc_strerror(rc), skc_last_error());
        return 1;
    }
    /* --variant inline: the handlers never block, so they may run on the
     * thread that received the request (SKC_SERVICE_INLINE). */
    uint32_t fl = strcmp(o->variant, "inline") == 0 ? SKC_SERVICE_INLINE : 0;
    if (add_service(node, "@echo", h_echo, &s, fl) != 0 ||
        add_service(node, "@ack", h_ack, &s, fl) != 0 ||
        add_service(node, "@sink", h_sink, &s, fl) != 0 ||
        add_service(node, "@hold", h_hold, &s, fl) != 0 ||
        add_service(node, "@stats", h_stats, &s, fl) != 0) {
        skc_node_destroy(node);
        return 1;
    }
    char *bound = NULL;
    const char *addr =
        strcmp(o->variant, "tls") == 0 ? "tls+tcp://127.0.0.1:0" : o->addr;
    rc = skc_node_open(node, &bound, addr);
    if (rc != 0) {
        fprintf(stderr, "skc_bench server: open %s: %s (%s)\n", addr,
            skc_strerror(rc), skc_last_error());
        skc_node_destroy(node);
        return 1;
    }
    printf("ADDR %s rss0=%ld\n", bound, bench_rss_kb(0));
    fflush(stdout);
    skc_free(bound);

    bench_wait_stdin_eof();

    pthread_mutex_lock(&s.lk);
    for (size_t i = 0; i < s.n; i++) {
        skc_reply_free(s.replies[i]);
    }
    s.n = 0;
    pthread_mutex_unlock(&s.lk);
    skc_node_destroy(node);
    free(s.replies);
    pthread_mutex_destroy(&s.lk);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Client                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct cli {
    skc_node *node;
    const char *target;
    char *payload;
    size_t size;
    int32_t timeout_ms;
    atomic_ullong ops;
    atomic_ullong errs;
    atomic_int active;
    atomic_int stop;
    atomic_int reported;
    uint32_t call_flags; /* --variant inline: SKC_CALL_INLINE */
    /* BC_HOL: the large calls beside the small ones */
    char *big;
    atomic_long bigs;
    atomic_int big_failed;
    atomic_int big_stop;
    atomic_int big_active;
} cli;

static void
report_error(cli *c, int status, const char *detail)
{
    if (atomic_fetch_add(&c->reported, 1) < 3) {
        fprintf(stderr, "skc_bench client: call failed: %s (%s)\n",
            skc_strerror(status), detail ? detail : "");
    }
}

static void
call_cb(
    int status, const void *data, size_t len, const char *detail, void *arg)
{
    (void)data;
    (void)len;
    cli *c = arg;
    if (status == 0) {
        atomic_fetch_add(&c->ops, 1);
    } else {
        atomic_fetch_add(&c->errs, 1);
        if (!atomic_load(&c->stop)) {
            report_error(c, status, detail);
        }
    }
    if (!atomic_load(&c->stop)) {
        int rc = skc_node_call_async_ex(c->node, BENCH_PEER, c->target,
            c->payload, c->size, c->timeout_ms, c->call_flags, call_cb, c);
        if (rc == 0) {
            return;
        }
        atomic_fetch_add(&c->errs, 1);
        report_error(c, rc, skc_last_error());
    }
    atomic_fetch_sub(&c->active, 1);
}

static int
start_calls(cli *c, int k)
{
    for (int i = 0; i < k; i++) {
        atomic_fetch_add(&c->active, 1);
        int rc = skc_node_call_async_ex(c->node, BENCH_PEER, c->target,
            c->payload, c->size, c->timeout_ms, c->call_flags, call_cb, c);
        if (rc != 0) {
            atomic_fetch_sub(&c->active, 1);
            report_error(c, rc, skc_last_error());
            return -1;
        }
    }
    return 0;
}

static int
get_stats(cli *c, unsigned long long *sends, long long *now, long long *last,
    unsigned long long *held)
{
    void *out = NULL;
    size_t len = 0;
    int rc =
        skc_node_call(c->node, &out, &len, BENCH_PEER, "@stats", "", 0, 5000);
    if (rc != 0) {
        fprintf(stderr, "skc_bench client: stats: %s (%s)\n", skc_strerror(rc),
            skc_last_error());
        return -1;
    }
    rc = bench_stats_parse(out, len, sends, now, last, held);
    skc_free(out);
    return rc;
}

static int
get_stats_any(void *c, unsigned long long *sends, long long *now,
    long long *last, unsigned long long *held)
{
    return get_stats(c, sends, now, last, held);
}

/* The first call dials and says hello; retried until the server is up. */
static int
connect_peer(cli *c)
{
    int64_t until = bench_now_ns() + 10000000000LL;
    for (;;) {
        void *out = NULL;
        size_t len;
        int rc = skc_node_call(
            c->node, &out, &len, BENCH_PEER, "@echo", "hi", 2, 2000);
        skc_free(out);
        if (rc == 0) {
            return 0;
        }
        if (bench_now_ns() > until) {
            fprintf(stderr, "skc_bench client: cannot reach %s: %s (%s)\n",
                BENCH_PEER, skc_strerror(rc), skc_last_error());
            return -1;
        }
        bench_sleep_ms(20);
    }
}

static int
run_call(cli *c, const bench_opts *o)
{
    if (start_calls(c, o->inflight) != 0) {
        bench_stop_window(&c->stop, &c->active, 5000);
        return 1;
    }
    bench_measure_window(&c->ops, &c->errs, &c->stop, &c->active, o);
    return 0;
}

/* bench_run_lat's round trip: one blocking call. */
static int
lat_call(void *arg)
{
    cli *c = arg;
    void *out = NULL;
    size_t len;
    int rc = skc_node_call(c->node, &out, &len, BENCH_PEER, c->target,
        c->payload, c->size, c->timeout_ms);
    skc_free(out);
    if (rc != 0) {
        report_error(c, rc, skc_last_error());
        return -1;
    }
    return 0;
}

/* bench_run_send's send: SKC_ELIMIT (the link's backlog is full) lets it
 * drain. */
static int
send_one(void *arg)
{
    cli *c = arg;
    int rc = skc_node_send(c->node, BENCH_PEER, "@sink", c->payload, c->size);
    if (rc == SKC_ELIMIT) {
        sched_yield();
        return 1;
    }
    if (rc != 0) {
        report_error(c, rc, skc_last_error());
        bench_sleep_ms(1);
        return -1;
    }
    return 0;
}

/* BC_HOL: one large call in flight, the next issued as each ends. */
static void
big_cb(int status, const void *data, size_t len, const char *detail, void *arg)
{
    (void)data;
    (void)len;
    cli *c = arg;
    if (status == 0) {
        atomic_fetch_add(&c->bigs, 1);
    } else {
        atomic_fetch_add(&c->big_failed, 1);
        report_error(c, status, detail);
    }
    if (!atomic_load(&c->big_stop) && status == 0) {
        int rc = skc_node_call_async(c->node, BENCH_PEER, "@ack", c->big,
            BENCH_HOL_BIG, 60000, big_cb, c);
        if (rc == 0) {
            return;
        }
        atomic_fetch_add(&c->big_failed, 1);
        report_error(c, rc, skc_last_error());
    }
    atomic_fetch_sub(&c->big_active, 1);
}

static long
hol_big(void *arg, int on)
{
    cli *c = arg;
    if (on) {
        if ((c->big = malloc(BENCH_HOL_BIG)) == NULL) {
            return -1;
        }
        memset(c->big, 'x', BENCH_HOL_BIG);
        atomic_store(&c->big_active, 1);
        int rc = skc_node_call_async(c->node, BENCH_PEER, "@ack", c->big,
            BENCH_HOL_BIG, 60000, big_cb, c);
        if (rc != 0) {
            atomic_store(&c->big_active, 0);
            report_error(c, rc, skc_last_error());
            return -1;
        }
        return 0;
    }
    bench_stop_window(&c->big_stop, &c->big_active, 60000);
    if (atomic_load(&c->big_active) == 0) {
        free(c->big);
        c->big = NULL;
    }
    return atomic_load(&c->big_failed) ? -1 : atomic_load(&c->bigs);
}

static int
run_hold(cli *c, const bench_opts *o)
{
    /* A few calls first, so allocator arenas and the link exist in the
     * baseline, as they would in any running node. */
    c->target = "@echo";
    if (start_calls(c, 16) != 0) {
        return 1;
    }
    bench_sleep_ms(200);
    bench_stop_window(&c->stop, &c->active,
        5000); /* leaves stop set: holds must not re-issue */
    bench_sleep_ms(100);
    long rss0 = bench_rss_kb(0);

    c->target = "@hold";
    c->timeout_ms = 120000;
    for (int i = 0; i < o->hold_n; i++) {
        atomic_fetch_add(&c->active, 1);
        int rc = skc_node_call_async(c->node, BENCH_PEER, c->target,
            c->payload, c->size, c->timeout_ms, call_cb, c);
        if (rc != 0) {
            atomic_fetch_sub(&c->active, 1);
            report_error(c, rc, skc_last_error());
            return 1;
        }
    }
    unsigned long long s, held = 0;
    long long n, l;
    int64_t until = bench_now_ns() + 30000000000LL;
    while (bench_now_ns() < until) {
        if (get_stats(c, &s, &n, &l, &held) != 0) {
            return 1;
        }
        if (held >= (unsigned long long)o->hold_n) {
            break;
        }
        bench_sleep_ms(50);
    }
    bench_sleep_ms(200);
    long rss1 = bench_rss_kb(0);
    bench_result("ops=%llu secs=1 errors=%llu rss0_kb=%ld rss1_kb=%ld "
                 "held=%llu",
        held, (unsigned long long)atomic_load(&c->errs), rss0, rss1, held);
    return held >= (unsigned long long)o->hold_n ? 0 : 1;
}

int
bench_skc_client(const bench_opts *o)
{
    cli c;
    memset(&c, 0, sizeof(c));
    c.size = o->size;
    c.payload = malloc(o->size ? o->size : 1);
    if (c.payload == NULL) {
        return 1;
    }
    memset(c.payload, 'x', o->size ? o->size : 1);
    c.target = o->echo ? "@echo" : "@ack";
    c.timeout_ms = 30000;
    c.call_flags = strcmp(o->variant, "inline") == 0 ? SKC_CALL_INLINE : 0;

    skc_node_opts no = SKC_NODE_OPTS_INIT;
    no.name = "benchcli";
    bench_secure_opts(&no, o->variant);
    bench_log_opts(&no);
    if (o->workers != 0) {
        no.workers = o->workers;
    }
    int rc = skc_node_create(&c.node, &no);
    if (rc != 0) {
        fprintf(stderr, "skc_bench client: create: %s (%s)\n",
            skc_strerror(rc), skc_last_error());
        free(c.payload);
        return 1;
    }
    rc = skc_node_map_set(c.node, BENCH_PEER, o->addr);
    if (rc != 0 || connect_peer(&c) != 0) {
        if (rc != 0) {
            fprintf(stderr, "skc_bench client: map: %s (%s)\n",
                skc_strerror(rc), skc_last_error());
        }
        skc_node_destroy(c.node);
        free(c.payload);
        return 1;
    }
    int ret;
    switch (o->bcase) {
    case BC_CALL:
        ret = run_call(&c, o);
        break;
    case BC_LAT:
        ret = bench_run_lat(lat_call, &c, o);
        break;
    case BC_SEND:
        ret = bench_run_send(get_stats_any, send_one, &c, o);
        break;
    case BC_HOL:
        ret = bench_run_hol(lat_call, hol_big, &c, o);
        break;
    default:
        ret = run_hold(&c, o);
        break;
    }
    skc_node_destroy(c.node); /* pending calls end with SKC_ECLOSED */
    free(c.payload);
    free(c.big);
    return ret;
}
