/* test_lanes.c -- lanes (issue #15): a small call to a peer is not stuck
 * behind a 16 MiB call in flight to the same peer.  The client reaches
 * the server through a relay on 127.0.0.1 that forwards each connection's
 * client-to-server bytes at a fixed rate, so the 16 MiB request takes
 * seconds to cross, and counts what it forwarded: the check is that the
 * small call completes while the large request is still being
 * transferred (fewer than 16 MiB forwarded), not a timing threshold.
 * With the large-message lane turned off the same sequence shows the
 * blocking: the small call completes only after all 16 MiB crossed.
 * Also: channels, the cluster cookie on a lane, the order of a send and a
 * later call on a lane, and a lane the server closes while idle.  Uses
 * only skc.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "skc/skc.h"
#include "waits.h"

#define BIG (16u * 1024 * 1024)
#define RATE_BPS (8 * 1024 * 1024) /* the relay's client-to-server rate */

/* ---- the relay: 127.0.0.1:port -> 127.0.0.1:up_port, throttled ---- */

#define RELAY_MAX 16

typedef struct relay relay;

typedef struct pump {
    relay *r;
    int from, to;
    int idx;      /* connection index; -1 for server-to-client */
    int throttle; /* client-to-server: at RATE_BPS */
    pthread_t th;
} pump;

struct relay {
    int lfd;
    int port;
    int up_port;
    atomic_int stop;
    pthread_t acceptor;
    pthread_mutex_t lk;
    int fds[RELAY_MAX * 2];
    int nfds;
    pump *pumps[RELAY_MAX * 2];
    int npumps;
    atomic_llong fwd[RELAY_MAX]; /* client-to-server bytes, per conn */
    atomic_int nconns;
};

static int
write_all(int fd, const char *b, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *
pump_main(void *arg)
{
    pump *pp = arg;
    relay *r = pp->r;
    size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    assert_non_null(buf);
    while (!atomic_load(&r->stop)) {
        ssize_t n = read(pp->from, buf, pp->throttle ? 16 * 1024 : cap);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0 || write_all(pp->to, buf, (size_t)n) != 0) {
            break;
        }
        if (pp->idx >= 0) {
            atomic_fetch_add(&r->fwd[pp->idx], n);
        }
        if (pp->throttle) {
            long us = (long)((int64_t)n * 1000000 / RATE_BPS);
            struct timespec ts = { us / 1000000, (us % 1000000) * 1000L };
            nanosleep(&ts, NULL);
        }
    }
    free(buf);
    shutdown(pp->to, SHUT_RDWR);
    shutdown(pp->from, SHUT_RDWR);
    return NULL;
}

static void
relay_pump(relay *r, int from, int to, int idx, int throttle)
{
    pump *pp = calloc(1, sizeof(*pp));
    assert_non_null(pp);
    pp->r = r;
    pp->from = from;
    pp->to = to;
    pp->idx = idx;
    pp->throttle = throttle;
    assert_int_equal(pthread_create(&pp->th, NULL, pump_main, pp), 0);
    r->pumps[r->npumps++] = pp;
}

static void *
relay_accept(void *arg)
{
    relay *r = arg;
    while (!atomic_load(&r->stop)) {
        struct pollfd pf = { r->lfd, POLLIN, 0 };
        if (poll(&pf, 1, 50) <= 0) {
            continue;
        }
        int c = accept(r->lfd, NULL, NULL);
        if (c < 0) {
            continue;
        }
        int u = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { 0 };
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)r->up_port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        pthread_mutex_lock(&r->lk);
        int idx = atomic_load(&r->nconns);
        if (u < 0 || idx >= RELAY_MAX ||
            connect(u, (struct sockaddr *)&a, sizeof(a)) != 0) {
            pthread_mutex_unlock(&r->lk);
            close(c);
            if (u >= 0) {
                close(u);
            }
            continue;
        }
        int one = 1;
        setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        r->fds[r->nfds++] = c;
        r->fds[r->nfds++] = u;
        relay_pump(r, c, u, idx, 1);
        relay_pump(r, u, c, -1, 0);
        atomic_store(&r->nconns, idx + 1);
        pthread_mutex_unlock(&r->lk);
    }
    return NULL;
}

static relay *
relay_start(int up_port)
{
    relay *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    pthread_mutex_init(&r->lk, NULL);
    r->up_port = up_port;
    r->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->lfd >= 0);
    struct sockaddr_in a = { 0 };
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(r->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(r->lfd, 16), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(r->lfd, (struct sockaddr *)&a, &al), 0);
    r->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&r->acceptor, NULL, relay_accept, r), 0);
    return r;
}

static void
relay_stop(relay *r)
{
    atomic_store(&r->stop, 1);
    pthread_join(r->acceptor, NULL);
    pthread_mutex_lock(&r->lk);
    for (int i = 0; i < r->nfds; i++) {
        shutdown(r->fds[i], SHUT_RDWR);
    }
    pthread_mutex_unlock(&r->lk);
    for (int i = 0; i < r->npumps; i++) {
        pthread_join(r->pumps[i]->th, NULL);
        free(r->pumps[i]);
    }
    for (int i = 0; i < r->nfds; i++) {
        close(r->fds[i]);
    }
    close(r->lfd);
    pthread_mutex_destroy(&r->lk);
    free(r);
}

/* The most client-to-server bytes one connection has carried. */
static int64_t
relay_max_fwd(relay *r)
{
    int64_t m = 0;
    for (int i = 0; i < atomic_load(&r->nconns); i++) {
        int64_t v = atomic_load(&r->fwd[i]);
        m = v > m ? v : m;
    }
    return m;
}

/* ---- the server: @echo answers its payload, @sink answers "ok" with
 * the number of sends it had seen before the call ---- */

typedef struct srv_state {
    atomic_int sends;
    atomic_int big_calls;
} srv_state;

static void
echo_handler(skc_node *node, uint32_t service, skc_msg *msg, void *arg)
{
    (void)node;
    (void)service;
    (void)arg;
    size_t len;
    const void *d = skc_msg_data(msg, &len);
    skc_msg_reply(msg, d, len);
}

static void
sink_handler(skc_node *node, uint32_t service, skc_msg *msg, void *arg)
{
    (void)node;
    (void)service;
    srv_state *st = arg;
    if (skc_msg_kind(msg) == SKC_MSG_SEND) {
        atomic_fetch_add(&st->sends, 1);
        return;
    }
    atomic_fetch_add(&st->big_calls, 1);
    char out[16];
    int n = snprintf(out, sizeof(out), "ok %d", atomic_load(&st->sends));
    skc_msg_reply(msg, out, (size_t)n);
}

typedef struct fixture {
    skc_node *srv;
    skc_node *cli;
    relay *rl;
    srv_state st;
    int port;
    char warns[4096]; /* the client's WARN and ERROR lines */
    pthread_mutex_t lk;
} fixture;

static void
cli_log(int level, const char *node, const char *text, void *arg)
{
    fixture *f = arg;
    (void)node;
    if (level <= SKC_LOG_WARN) {
        pthread_mutex_lock(&f->lk);
        size_t l = strlen(f->warns);
        snprintf(f->warns + l, sizeof(f->warns) - l, "%s\n", text);
        pthread_mutex_unlock(&f->lk);
    }
}

/* Server on 127.0.0.1 (srv_opts may be NULL), client with cli_opts
 * naming it "srv" at the relay's address (use_relay) or directly. */
static void
fixture_up(fixture *f, skc_node_opts *so, skc_node_opts *co, int use_relay)
{
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->lk, NULL);
    skc_node_opts sdef = SKC_NODE_OPTS_INIT;
    skc_node_opts cdef = SKC_NODE_OPTS_INIT;
    so = so != NULL ? so : &sdef;
    co = co != NULL ? co : &cdef;
    so->name = "srv";
    co->name = "cli";
    co->log = cli_log;
    co->log_arg = f;
    assert_int_equal(skc_node_create(&f->srv, so), SKC_OK);
    assert_int_equal(skc_node_create(&f->cli, co), SKC_OK);
    char *addr = NULL;
    assert_int_equal(skc_node_open(f->srv, &addr, "127.0.0.1:0"), SKC_OK);
    const char *colon = strrchr(addr, ':');
    assert_non_null(colon);
    f->port = atoi(colon + 1);
    skc_free(addr);
    uint32_t h;
    assert_int_equal(
        skc_service_create(f->srv, &h, echo_handler, NULL), SKC_OK);
    assert_int_equal(skc_name_register(f->srv, "@echo", h), SKC_OK);
    assert_int_equal(
        skc_service_create(f->srv, &h, sink_handler, &f->st), SKC_OK);
    assert_int_equal(skc_name_register(f->srv, "@sink", h), SKC_OK);
    char where[64];
    if (use_relay) {
        f->rl = relay_start(f->port);
        snprintf(where, sizeof(where), "127.0.0.1:%d", f->rl->port);
    } else {
        snprintf(where, sizeof(where), "127.0.0.1:%d", f->port);
    }
    assert_int_equal(skc_node_map_set(f->cli, "srv", where), SKC_OK);
}

static void
fixture_down(fixture *f)
{
    assert_int_equal(skc_node_destroy(f->cli), SKC_OK);
    assert_int_equal(skc_node_destroy(f->srv), SKC_OK);
    if (f->rl != NULL) {
        relay_stop(f->rl);
    }
    pthread_mutex_destroy(&f->lk);
}

static void
small_call_within(fixture *f, uint32_t flags, int timeout_ms)
{
    void *out = NULL;
    size_t len = 0;
    int rc = skc_node_call_ex(
        f->cli, &out, &len, "srv", "@echo", "ping", 4, timeout_ms, flags);
    if (rc != SKC_OK) {
        fail_msg("small call: %s (%s)", skc_strerror(rc), skc_last_error());
    }
    assert_int_equal(len, 4);
    assert_memory_equal(out, "ping", 4);
    skc_free(out);
}

static void
small_call(fixture *f, uint32_t flags)
{
    small_call_within(f, flags, scaled(10000));
}

typedef struct big_state {
    atomic_int done;
    int status;
    char reply[32];
} big_state;

static void
big_cb(int status, const void *data, size_t len, const char *detail,
    void *arg)
{
    big_state *b = arg;
    b->status = status;
    if (status == 0) {
        snprintf(b->reply, sizeof(b->reply), "%.*s", (int)len,
            (const char *)data);
    } else {
        snprintf(b->reply, sizeof(b->reply), "%.31s", detail);
    }
    atomic_store(&b->done, 1);
}

/* Starts the 16 MiB call and waits until its transfer is under way (1 MiB
 * through the relay, of which it takes 2 s to pass all). */
static void
big_start(fixture *f, big_state *b, char *payload)
{
    memset(b, 0, sizeof(*b));
    assert_int_equal(skc_node_call_async(f->cli, "srv", "@sink", payload,
                         BIG, scaled(60000), big_cb, b),
        SKC_OK);
    int64_t until = now_ms() + scaled(20000);
    while (relay_max_fwd(f->rl) < 1024 * 1024 && now_ms() < until) {
        sleep_ms(5);
    }
    assert_true(relay_max_fwd(f->rl) >= 1024 * 1024);
}

static void
big_wait(big_state *b)
{
    int64_t until = now_ms() + scaled(60000);
    while (!atomic_load(&b->done) && now_ms() < until) {
        sleep_ms(10);
    }
    assert_true(atomic_load(&b->done));
    if (b->status != SKC_OK) {
        fail_msg("big call: %s (%s)", skc_strerror(b->status), b->reply);
    }
    assert_string_equal(b->reply, "ok 0");
}

/* A call of len bytes to @sink that must succeed; its reply, "ok N"
 * (N sends seen before it), must be `want` when not NULL. */
static void
sink_call(fixture *f, const void *data, size_t len, const char *want)
{
    void *out = NULL;
    size_t olen = 0;
    int rc = skc_node_call(
        f->cli, &out, &olen, "srv", "@sink", data, len, scaled(10000));
    if (rc != SKC_OK) {
        fail_msg("call: %s (%s)", skc_strerror(rc), skc_last_error());
    }
    if (want != NULL) {
        assert_int_equal(olen, strlen(want));
        assert_memory_equal(out, want, olen);
    }
    skc_free(out);
}

static char *
stats_of(skc_node *n)
{
    char *json = NULL;
    assert_int_equal(skc_node_stats(n, &json), SKC_OK);
    return json;
}

/* The small call completes while the 16 MiB request is still crossing:
 * the large-message lane (the default). */
static void
test_small_not_behind_large(void **state)
{
    (void)state;
    fixture f;
    fixture_up(&f, NULL, NULL, 1);
    small_call(&f, 0); /* the link is up */
    char *payload = calloc(1, BIG);
    assert_non_null(payload);
    big_state b;
    big_start(&f, &b, payload);
    for (int i = 0; i < 20; i++) {
        small_call(&f, 0);
    }
    int64_t crossed = relay_max_fwd(f.rl);
    assert_false(atomic_load(&b.done));
    assert_true(crossed < (int64_t)BIG);
    assert_int_equal(atomic_load(&f.st.big_calls), 0);
    char *json = stats_of(f.cli);
    assert_non_null(strstr(json, "\"lane\":\"large\",\"link\":\"up\""));
    skc_free(json);
    big_wait(&b);
    /* The link stayed up throughout: its heartbeats were not stuck. */
    int st = -1;
    assert_int_equal(skc_node_peer_state(f.cli, "srv", &st, NULL), SKC_OK);
    assert_int_equal(st, SKC_PEER_UP);
    free(payload);
    assert_string_equal(f.warns, "");
    fixture_down(&f);
}

/* With no large-message lane the same small call waits for the 16 MiB
 * request ahead of it on the one connection: the check above fails. */
static void
test_without_lane_blocks(void **state)
{
    (void)state;
    fixture f;
    skc_node_opts co = SKC_NODE_OPTS_INIT;
    co.large_msg = -1;
    co.heartbeat_ms = -1; /* they would be stuck behind it too */
    fixture_up(&f, NULL, &co, 1);
    small_call(&f, 0);
    char *payload = calloc(1, BIG);
    assert_non_null(payload);
    big_state b;
    big_start(&f, &b, payload);
    small_call_within(&f, 0, scaled(60000)); /* it waits for all 16 MiB */
    assert_true(relay_max_fwd(f.rl) >= (int64_t)BIG);
    big_wait(&b);
    assert_int_equal(atomic_load(&f.st.big_calls), 1);
    free(payload);
    fixture_down(&f);
}

/* A call with a channel goes on that channel's lane; with channels -1
 * the channel is ignored. */
static void
test_channels(void **state)
{
    (void)state;
    fixture f;
    fixture_up(&f, NULL, NULL, 0);
    small_call(&f, SKC_CALL_CHANNEL(2));
    small_call(&f, SKC_CALL_CHANNEL(6)); /* 4 lanes: the same as 2 */
    small_call(&f, 0);
    char *json = stats_of(f.cli);
    assert_non_null(strstr(json,
        "\"lane\":\"channel 2\",\"link\":\"up\",\"calls\":2,"));
    assert_null(strstr(json, "\"lane\":\"large\""));
    skc_free(json);
    /* unknown flag bits are refused */
    void *out = NULL;
    size_t len = 0;
    assert_int_equal(skc_node_call_ex(f.cli, &out, &len, "srv", "@echo", "x",
                         1, 1000, SKC_CALL_INLINE),
        SKC_EINVAL);
    fixture_down(&f);

    skc_node_opts co = SKC_NODE_OPTS_INIT;
    co.channels = -1;
    fixture_up(&f, NULL, &co, 0);
    small_call(&f, SKC_CALL_CHANNEL(2));
    json = stats_of(f.cli);
    assert_non_null(strstr(json, "\"lanes\":[]"));
    skc_free(json);
    fixture_down(&f);

    co = (skc_node_opts)SKC_NODE_OPTS_INIT;
    co.channels = 256;
    skc_node *bad = NULL;
    assert_int_equal(skc_node_create(&bad, &co), SKC_EINVAL);
}

/* With a cluster cookie each lane proves it on its own connection, and a
 * send before a call on a lane is handled first (the order block rides
 * the link's stream). */
static void
test_cookie_and_order(void **state)
{
    (void)state;
    fixture f;
    skc_node_opts so = SKC_NODE_OPTS_INIT, co = SKC_NODE_OPTS_INIT;
    so.cluster_cookie = "lane-secret";
    co.cluster_cookie = "lane-secret";
    co.large_msg = 1024;
    fixture_up(&f, &so, &co, 0);
    small_call(&f, 0);
    char big[4096] = { 0 };
    for (int i = 0; i < 20; i++) {
        assert_int_equal(
            skc_node_send(f.cli, "srv", "@sink", "s", 1), SKC_OK);
        char want[16];
        snprintf(want, sizeof(want), "ok %d", i + 1);
        sink_call(&f, big, sizeof(big), want);
        void *out = NULL;
        size_t len = 0;
        int rc = skc_node_call_ex(f.cli, &out, &len, "srv", "@sink", "c", 1,
            scaled(10000), SKC_CALL_CHANNEL(1));
        assert_int_equal(rc, SKC_OK);
        skc_free(out);
    }
    char *json = stats_of(f.cli);
    assert_non_null(strstr(json, "\"lane\":\"large\",\"link\":\"up\""));
    assert_non_null(strstr(json, "\"lane\":\"channel 1\",\"link\":\"up\""));
    skc_free(json);
    assert_string_equal(f.warns, "");
    fixture_down(&f);

    /* a lane whose handshake the server refuses is not used: a server
     * with another cookie refuses the link first, so the call fails with
     * SKC_EAUTH, never goes through */
    so = (skc_node_opts)SKC_NODE_OPTS_INIT;
    co = (skc_node_opts)SKC_NODE_OPTS_INIT;
    so.cluster_cookie = "one";
    co.cluster_cookie = "two";
    co.large_msg = 1024;
    fixture_up(&f, &so, &co, 0);
    void *out = NULL;
    size_t len = 0;
    assert_int_equal(skc_node_call(f.cli, &out, &len, "srv", "@sink", big,
                         sizeof(big), scaled(5000)),
        SKC_EAUTH);
    assert_int_equal(atomic_load(&f.st.big_calls), 0);
    fixture_down(&f);
}

/* The server's idle sweep closes an idle lane: the client gives it up
 * quietly and dials it again for the next large call. */
static void
test_idle_lane_closed(void **state)
{
    (void)state;
    fixture f;
    skc_node_opts so = SKC_NODE_OPTS_INIT, co = SKC_NODE_OPTS_INIT;
    so.max_conns = 4; /* the sweep runs with half of them in use */
    so.idle_timeout_ms = 200;
    co.heartbeat_ms = 50; /* keeps the link itself busy */
    /* ... but a loaded machine (ASan, 2 cores) can stall a process for
     * the default 3 misses (150 ms) and the peer would be marked down by
     * its heartbeats, which is not what this test looks at: the lane's
     * close must not take the peer down. */
    co.heartbeat_misses = 200;
    co.large_msg = 1024;
    fixture_up(&f, &so, &co, 0);
    char big[2048] = { 0 };
    for (int round = 0; round < 2; round++) {
        sink_call(&f, big, sizeof(big), NULL);
        /* wait until the sweep closed the lane */
        int64_t until = now_ms() + scaled(10000);
        char *json = NULL;
        for (;;) {
            json = stats_of(f.cli);
            if (strstr(json, "\"lane\":\"large\",\"link\":\"none\"") ||
                now_ms() > until) {
                break;
            }
            skc_free(json);
            sleep_ms(50);
        }
        assert_non_null(strstr(json, "\"lane\":\"large\",\"link\":\"none\""));
        skc_free(json);
    }
    char *json = stats_of(f.cli);
    assert_non_null(strstr(json, "\"connects\":2"));
    skc_free(json);
    int st = -1;
    assert_int_equal(skc_node_peer_state(f.cli, "srv", &st, NULL), SKC_OK);
    assert_int_equal(st, SKC_PEER_UP);
    assert_string_equal(f.warns, "");
    fixture_down(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_not_behind_large),
        cmocka_unit_test(test_without_lane_blocks),
        cmocka_unit_test(test_channels),
        cmocka_unit_test(test_cookie_and_order),
        cmocka_unit_test(test_idle_lane_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
