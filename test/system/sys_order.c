/* sys_order.c -- a send and a later call from one node to another are
 * handled in that order (issue #13; docs/PROTOCOL.md, "Order of sends and
 * calls").
 *
 *   sys_order [PAIRS]         the test (PAIRS per caller, default 2500)
 *   sys_order serve ADDRESS   the server it starts (this same program)
 *
 * The server node "kv" has one service @kv: a send "SET key value" stores
 * the value, a call "GET key" answers it ("nil" if unset).
 *  A. Load: 4 caller threads of one client node, 3 keys each, PAIRS times
 *     `send SET k i` then `call GET k`: every call reads i (zero stale
 *     reads), and the server never had to give up waiting for a send.
 *     Half the callers use skc_node_call, half skc_node_call_async.
 *  B. Raw frames on NNG sockets (the wire form, deterministically):
 *     HELLO with flags bit 1 gets the features word, without it the old
 *     body; a call whose sends were "lost" (never sent) runs after the
 *     bounded wait (500 ms; a quarter of a 200 ms deadline) with one WARN
 *     line; a call sent before its sends waits for them and reads their
 *     value, without that line; a call without the order block (an older
 *     client) runs at once.
 *  C. An older server (raw REP + PULL that answer HELLO without the
 *     features word): the skc client sends it frames without the order
 *     block, exactly version 1's lengths.
 */
#include "sys.h"

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CALLERS 4
#define KEYS 3
#define WARN_TEXT "that did not arrive"

/* ---- the server ---- */

#define KV_MAX 256
static char kv_key[KV_MAX][32];
static char kv_val[KV_MAX][32];
static int kv_n;

static int
kv_slot(const char *key, int create)
{
    for (int i = 0; i < kv_n; i++) {
        if (strcmp(kv_key[i], key) == 0) {
            return i;
        }
    }
    if (!create || kv_n == KV_MAX) {
        return -1;
    }
    snprintf(kv_key[kv_n], sizeof(kv_key[0]), "%s", key);
    kv_val[kv_n][0] = '\0';
    return kv_n++;
}

/* One service: its handler never runs twice at once, so no lock. */
static void
svc_kv(skc_node *n, uint32_t self, skc_msg *msg, void *arg)
{
    (void)n;
    (void)self;
    (void)arg;
    size_t len;
    const char *d = skc_msg_data(msg, &len);
    char text[128], key[32], val[32];
    snprintf(text, sizeof(text), "%.*s", (int)(len < 127 ? len : 127), d);
    if (sscanf(text, "SET %31s %31s", key, val) == 2) {
        int i = kv_slot(key, 1);
        if (i >= 0) {
            snprintf(kv_val[i], sizeof(kv_val[0]), "%s", val);
        }
        return;
    }
    if (sscanf(text, "GET %31s", key) == 1) {
        int i = kv_slot(key, 0);
        const char *v = i >= 0 ? kv_val[i] : "nil";
        skc_msg_reply(msg, v, strlen(v));
        return;
    }
    skc_msg_fail(msg, "bad command");
}

static volatile sig_atomic_t serve_stop;

static void
on_term(int sig)
{
    (void)sig;
    serve_stop = 1;
}

static int
serve(const char *where)
{
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "kv";
    o.log = skc_log_stderr;
    o.log_level = SKC_LOG_INFO;
    skc_node *n;
    uint32_t h;
    char *addr = NULL;
    if (skc_node_create(&n, &o) != SKC_OK ||
        skc_service_create(n, &h, svc_kv, NULL) != SKC_OK ||
        skc_name_register(n, "@kv", h) != SKC_OK ||
        skc_node_open(n, &addr, where) != SKC_OK) {
        fprintf(stderr, "serve: %s\n", skc_last_error());
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    printf("LISTENING %s\n", addr);
    fflush(stdout);
    skc_free(addr);
    char line[64];
    while (!serve_stop) {
        /* stdin closed or "quit": stop */
        if (fgets(line, sizeof(line), stdin) == NULL ||
            strncmp(line, "quit", 4) == 0) {
            break;
        }
    }
    return skc_node_destroy(n) == SKC_OK ? 0 : 1;
}

/* ---- A: load ---- */

static skc_node *cli;
static int pairs = 2500;
static atomic_int stale, failed, done_pairs;

typedef struct waiter {
    pthread_mutex_t lk;
    pthread_cond_t cv;
    int done;
    int status;
    char got[32];
} waiter;

static void
on_get(int status, const void *data, size_t len, const char *detail, void *arg)
{
    waiter *w = arg;
    pthread_mutex_lock(&w->lk);
    w->status = status;
    if (status == SKC_OK) {
        snprintf(w->got, sizeof(w->got), "%.*s", (int)(len < 31 ? len : 31),
            (const char *)data);
    } else {
        snprintf(w->got, sizeof(w->got), "%.31s", detail ? detail : "");
    }
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->lk);
}

/* GET key through skc_node_call (sync) or skc_node_call_async. */
static int
get(int async, const char *key, char *got, size_t size)
{
    char cmd[64];
    int n = snprintf(cmd, sizeof(cmd), "GET %s", key);
    if (!async) {
        return sys_call(cli, "kv", "@kv", cmd, (size_t)n, 10000, got, size);
    }
    waiter w = { .done = 0 };
    pthread_mutex_init(&w.lk, NULL);
    pthread_cond_init(&w.cv, NULL);
    int rc = skc_node_call_async(
        cli, "kv", "@kv", cmd, (size_t)n, 10000, on_get, &w);
    if (rc == SKC_OK) {
        pthread_mutex_lock(&w.lk);
        while (!w.done) {
            pthread_cond_wait(&w.cv, &w.lk);
        }
        pthread_mutex_unlock(&w.lk);
        rc = w.status;
        snprintf(got, size, "%s", w.got);
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.lk);
    return rc;
}

static void *
caller_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 1; i <= pairs; i++) {
        char key[32], cmd[64], want[32], got[64];
        snprintf(key, sizeof(key), "c%d.k%d", id, i % KEYS);
        snprintf(want, sizeof(want), "%d", i);
        int n = snprintf(cmd, sizeof(cmd), "SET %s %s", key, want);
        int rc = skc_node_send(cli, "kv", "@kv", cmd, (size_t)n);
        if (rc != SKC_OK) {
            /* a full backlog: the send did not leave; try again */
            if (rc == SKC_ELIMIT) {
                sys_sleep_ms(1);
                i--;
                continue;
            }
            atomic_fetch_add(&failed, 1);
            sys_log("caller %d: send %d: %s (%s)", id, i, skc_errname(rc),
                skc_last_error());
            continue;
        }
        rc = get(id & 1, key, got, sizeof(got));
        if (rc != SKC_OK) {
            atomic_fetch_add(&failed, 1);
            sys_log(
                "caller %d: call %d: %s (%s)", id, i, skc_errname(rc), got);
        } else if (strcmp(got, want) != 0) {
            if (atomic_fetch_add(&stale, 1) < 10) {
                sys_log("caller %d: GET %s read %s after SET %s", id, key, got,
                    want);
            }
        }
        atomic_fetch_add(&done_pairs, 1);
    }
    return NULL;
}

static void
part_load(const char *url, const char *srvlog)
{
    cli = sys_client("client", 0);
    CHECK(skc_node_map_set(cli, "kv", url) == SKC_OK, "map: %s",
        skc_last_error());
    pthread_t t[CALLERS];
    int64_t t0 = sys_now_ms();
    for (int i = 0; i < CALLERS; i++) {
        CHECK(
            pthread_create(&t[i], NULL, caller_main, (void *)(intptr_t)i) == 0,
            "thread");
    }
    for (int i = 0; i < CALLERS; i++) {
        pthread_join(t[i], NULL);
    }
    int64_t dt = sys_now_ms() - t0;
    sys_log("A: %d send/call pairs from %d callers in %lld ms: %d stale, %d "
            "failed",
        atomic_load(&done_pairs), CALLERS, (long long)dt, atomic_load(&stale),
        atomic_load(&failed));
    CHECK(atomic_load(&failed) == 0, "%d pairs failed", atomic_load(&failed));
    CHECK(atomic_load(&stale) == 0,
        "%d calls read a value older than the send before them",
        atomic_load(&stale));
    CHECK(atomic_load(&done_pairs) == CALLERS * pairs, "pairs done: %d",
        atomic_load(&done_pairs));
    CHECK(sys_file_count(srvlog, WARN_TEXT) == 0,
        "the server gave up waiting for a send that was sent");
    CHECK(skc_node_destroy(cli) == SKC_OK, "destroy");
    cli = NULL;
}

/* ---- B: raw frames ---- */

/* A request frame: SK v1, kind, flags, timeout, id, target "@name",
 * the order block when order != 0, payload. */
static size_t
frame(uint8_t *b, int kind, uint32_t flags, uint32_t timeout, uint64_t id,
    const char *name, int order, uint64_t stream, uint64_t seq,
    const char *payload)
{
    size_t nl = name ? strlen(name) : 0, pl = strlen(payload), o = 0;
    b[0] = 'S';
    b[1] = 'K';
    b[2] = 1;
    b[3] = (uint8_t)kind;
    sys_put_u32(b + 4, flags | (order ? 1u : 0u));
    sys_put_u32(b + 8, timeout);
    sys_put_u32(b + 12, 1 << 20);
    sys_put_u64(b + 16, id);
    b[24] = nl ? 2 : 0;
    b[25] = (uint8_t)nl;
    sys_put_u32(b + 26, 0);
    memcpy(b + 30, name ? name : "", nl);
    sys_put_u32(b + 30 + nl, (uint32_t)pl);
    if (order) {
        sys_put_u64(b + 34 + nl, stream);
        sys_put_u64(b + 42 + nl, seq);
        o = 16;
    }
    memcpy(b + 34 + nl + o, payload, pl);
    return 34 + nl + o + pl;
}

static void
raw_send(nng_socket s, const uint8_t *b, size_t len)
{
    int rv = nng_send(s, (void *)b, len, 0);
    CHECK(rv == 0, "nng_send: %s", nng_strerror(rv));
}

/* Receives a reply: its status, payload as text; returns the length. */
static size_t
raw_reply(nng_socket s, uint64_t id, uint32_t *status, char *text, size_t size)
{
    nng_msg *m;
    int rv = nng_recvmsg(s, &m, 0);
    CHECK(rv == 0, "no reply: %s", nng_strerror(rv));
    const uint8_t *b = nng_msg_body(m);
    size_t bl = nng_msg_len(m);
    CHECK(bl >= 20 && b[3] == 0x81 && sys_get_u32(b + 16) == bl - 20,
        "malformed reply frame (%zu bytes)", bl);
    uint64_t rid =
        (uint64_t)sys_get_u32(b + 8) | ((uint64_t)sys_get_u32(b + 12) << 32);
    CHECK(rid == id, "reply to id %llu, expected %llu",
        (unsigned long long)rid, (unsigned long long)id);
    *status = sys_get_u32(b + 4);
    size_t pl = bl - 20, c = pl < size - 1 ? pl : size - 1;
    memcpy(text, b + 20, c);
    text[c] = '\0';
    nng_msg_free(m);
    return pl;
}

/* A call with the order block; returns the ms it took to be answered. */
static int64_t
raw_call(nng_socket req, uint64_t id, uint32_t timeout, uint64_t stream,
    uint64_t before, const char *cmd, const char *want)
{
    uint8_t b[256];
    char text[256];
    uint32_t st;
    int64_t t0 = sys_now_ms();
    raw_send(
        req, b, frame(b, 1, 0, timeout, id, "kv", 1, stream, before, cmd));
    raw_reply(req, id, &st, text, sizeof(text));
    int64_t dt = sys_now_ms() - t0;
    CHECK(st == 0, "%s: status %u (%s)", cmd, st, text);
    CHECK(strcmp(text, want) == 0, "%s read '%s', expected '%s'", cmd, text,
        want);
    return dt;
}

static int
warns(const char *srvlog)
{
    return sys_file_count(srvlog, WARN_TEXT);
}

static void
wait_warns(const char *srvlog, int n)
{
    int64_t until = sys_now_ms() + sys_ms(3000);
    while (warns(srvlog) < n && sys_now_ms() < until) {
        sys_sleep_ms(10);
    }
    CHECK(warns(srvlog) == n, "WARN lines '%s': %d, expected %d", WARN_TEXT,
        warns(srvlog), n);
}

static void
part_raw(const char *url, const char *srvlog)
{
    nng_socket req, push;
    CHECK(nng_req0_open(&req) == 0, "req0_open");
    nng_socket_set_ms(req, NNG_OPT_REQ_RESENDTIME, 0);
    nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, sys_ms(5000));
    nng_socket_set_ms(req, NNG_OPT_SENDTIMEO, sys_ms(5000));
    int rv = nng_dial(req, url, NULL, 0);
    CHECK(rv == 0, "dial %s: %s", url, nng_strerror(rv));

    /* HELLO: without flags bit 1 the version-1 body, with it the
     * features word (bit 0: order). */
    uint8_t b[512];
    char body[512];
    uint32_t st;
    raw_send(req, b, frame(b, 3, 0, 5000, 1, NULL, 0, 0, 0, "raw"));
    size_t bl = raw_reply(req, 1, &st, body, sizeof(body));
    CHECK(st == 0, "hello: %u", st);
    uint16_t nl = (uint16_t)((uint8_t)body[4] | ((uint8_t)body[5] << 8));
    uint16_t ul =
        (uint16_t)((uint8_t)body[6 + nl] | ((uint8_t)body[7 + nl] << 8));
    CHECK(bl == (size_t)8 + nl + ul, "old hello body: %zu bytes", bl);
    raw_send(req, b, frame(b, 3, 2, 5000, 2, NULL, 0, 0, 0, "raw"));
    bl = raw_reply(req, 2, &st, body, sizeof(body));
    CHECK(bl == (size_t)8 + nl + ul + 4, "hello body with features: %zu", bl);
    CHECK(((uint8_t)body[8 + nl + ul] & 1) == 1, "no order feature bit");
    char push_url[300];
    snprintf(push_url, sizeof(push_url), "%.*s", (int)ul, body + 8 + nl);
    sys_log("B: hello announces order; send port %s", push_url);

    CHECK(nng_push0_open(&push) == 0, "push0_open");
    rv = nng_dial(push, push_url, NULL, 0);
    CHECK(rv == 0, "dial %s: %s", push_url, nng_strerror(rv));

    /* The sends first, then the call: it reads their value. */
    const uint64_t s0 = 0x5eed000000000001ULL;
    raw_send(push, b, frame(b, 2, 0, 0, 0, "kv", 1, s0, 1, "SET b0 x"));
    int64_t dt = raw_call(req, 3, 10000, s0, 1, "GET b0", "x");
    sys_log("B: send then call: %lld ms", (long long)dt);
    CHECK(warns(srvlog) == 0, "warned");

    /* A lost send: the call names one send the server never gets; it runs
     * after the bounded wait (500 ms), with one WARN line. */
    const uint64_t s1 = 0x5eed000000000002ULL;
    dt = raw_call(req, 4, 10000, s1, 3, "GET b1", "nil");
    sys_log("B: a call after 3 lost sends ran after %lld ms", (long long)dt);
    CHECK(dt >= 450 && dt < 500 + sys_ms(SYS_LATE_MS),
        "the call waited %lld ms, expected about 500", (long long)dt);
    wait_warns(srvlog, 1);
    /* the lost sends count as lost: the next call does not wait again */
    dt = raw_call(req, 5, 10000, s1, 3, "GET b1", "nil");
    CHECK(
        dt < 400, "a call after given-up sends waited %lld ms", (long long)dt);

    /* Scaled: a 200 ms deadline waits a quarter of it, and is answered. */
    const uint64_t s2 = 0x5eed000000000003ULL;
    dt = raw_call(req, 6, 200, s2, 1, "GET b2", "nil");
    sys_log("B: with a 200 ms deadline: ran after %lld ms", (long long)dt);
    CHECK(dt >= 40 && dt < 200 + sys_ms(SYS_LATE_MS),
        "the call waited %lld ms, expected about 50", (long long)dt);
    wait_warns(srvlog, 2);

    /* The call first, its two sends 100 ms later: the call waits for
     * them (not for the bound) and reads the second value. */
    const uint64_t s3 = 0x5eed000000000004ULL;
    int64_t t0 = sys_now_ms();
    raw_send(req, b, frame(b, 1, 0, 10000, 7, "kv", 1, s3, 2, "GET b3"));
    sys_sleep_ms(100);
    raw_send(push, b, frame(b, 2, 0, 0, 0, "kv", 1, s3, 1, "SET b3 one"));
    raw_send(push, b, frame(b, 2, 0, 0, 0, "kv", 1, s3, 2, "SET b3 two"));
    char text[64];
    raw_reply(req, 7, &st, text, sizeof(text));
    dt = sys_now_ms() - t0;
    sys_log("B: a call sent 100 ms before its sends: '%s' after %lld ms", text,
        (long long)dt);
    CHECK(st == 0 && strcmp(text, "two") == 0, "read '%s' (status %u)", text,
        st);
    CHECK(dt >= 90 && dt < 450, "answered after %lld ms", (long long)dt);

    /* An older client: no order block, answered at once. */
    raw_send(req, b, frame(b, 1, 0, 10000, 8, "kv", 0, 0, 0, "GET b3"));
    raw_reply(req, 8, &st, text, sizeof(text));
    CHECK(st == 0 && strcmp(text, "two") == 0, "old form read '%s'", text);
    /* and an ordered send with a gap (2 lost) still lands */
    raw_send(push, b, frame(b, 2, 0, 0, 0, "kv", 1, s3, 5, "SET b3 five"));
    dt = raw_call(req, 9, 10000, s3, 5, "GET b3", "five");
    CHECK(dt < 400, "waited %lld ms", (long long)dt);
    wait_warns(srvlog, 2);
    nng_close(push);
    nng_close(req);
}

/* ---- C: an older server ---- */

static nng_socket old_rep, old_pull;
static char old_pull_url[256];
static atomic_int old_calls, old_sends, old_bad;

static void
old_check(const uint8_t *b, size_t len, int kind)
{
    size_t nl = len >= 26 ? b[25] : 0;
    if (len < 34 + nl || b[3] != kind || (sys_get_u32(b + 4) & 1) != 0 ||
        sys_get_u32(b + 30 + nl) != len - 34 - nl) {
        atomic_fetch_add(&old_bad, 1);
    }
}

static void *
old_server_main(void *arg)
{
    (void)arg;
    for (;;) {
        nng_msg *m;
        if (nng_recvmsg(old_rep, &m, 0) != 0) {
            return NULL;
        }
        const uint8_t *b = nng_msg_body(m);
        size_t len = nng_msg_len(m);
        uint8_t rep[512];
        size_t rl = 20;
        uint64_t id = len >= 24 ? ((uint64_t)sys_get_u32(b + 16) |
                                      ((uint64_t)sys_get_u32(b + 20) << 32))
                                : 0;
        if (len >= 4 && b[3] == 3) {
            /* HELLO: the version-1 body, whatever the flags ask */
            size_t ul = strlen(old_pull_url);
            sys_put_u32(rep + 20, 1 << 20);
            rep[24] = 3;
            rep[25] = 0;
            memcpy(rep + 26, "old", 3);
            rep[29] = (uint8_t)ul;
            rep[30] = 0;
            memcpy(rep + 31, old_pull_url, ul);
            rl = 31 + ul;
        } else {
            old_check(b, len, 1);
            atomic_fetch_add(&old_calls, 1);
            memcpy(rep + 20, "ok", 2);
            rl = 22;
        }
        rep[0] = 'S';
        rep[1] = 'K';
        rep[2] = 1;
        rep[3] = 0x81;
        sys_put_u32(rep + 4, 0);
        sys_put_u64(rep + 8, id);
        sys_put_u32(rep + 16, (uint32_t)(rl - 20));
        nng_msg_free(m);
        if (nng_send(old_rep, rep, rl, 0) != 0) {
            return NULL;
        }
    }
}

static void *
old_pull_main(void *arg)
{
    (void)arg;
    for (;;) {
        nng_msg *m;
        if (nng_recvmsg(old_pull, &m, 0) != 0) {
            return NULL;
        }
        old_check(nng_msg_body(m), nng_msg_len(m), 2);
        atomic_fetch_add(&old_sends, 1);
        nng_msg_free(m);
    }
}

static void
part_old_server(void)
{
    char rep_url[256];
    snprintf(rep_url, sizeof(rep_url), "ipc://%s", sys_path("old.ipc"));
    snprintf(old_pull_url, sizeof(old_pull_url), "ipc://%s",
        sys_path("old.send.ipc"));
    CHECK(nng_rep0_open(&old_rep) == 0 && nng_pull0_open(&old_pull) == 0,
        "open");
    CHECK(nng_listen(old_rep, rep_url, NULL, 0) == 0, "listen %s", rep_url);
    CHECK(nng_listen(old_pull, old_pull_url, NULL, 0) == 0, "listen %s",
        old_pull_url);
    pthread_t t1, t2;
    CHECK(pthread_create(&t1, NULL, old_server_main, NULL) == 0 &&
            pthread_create(&t2, NULL, old_pull_main, NULL) == 0,
        "threads");
    skc_node *c = sys_client("client2", 0);
    CHECK(skc_node_map_set(c, "old", rep_url) == SKC_OK, "map");
    char got[64];
    for (int i = 0; i < 20; i++) {
        int rc = sys_call(c, "old", "@x", "call", 4, 5000, got, sizeof(got));
        CHECK(rc == SKC_OK && strcmp(got, "ok") == 0,
            "call to the old "
            "server: %s (%s)",
            skc_errname(rc), got);
        rc = skc_node_send(c, "old", "@x", "send", 4);
        CHECK(rc == SKC_OK, "send: %s", skc_errname(rc));
    }
    int64_t until = sys_now_ms() + sys_ms(5000);
    while (atomic_load(&old_sends) < 20 && sys_now_ms() < until) {
        sys_sleep_ms(10);
    }
    sys_log("C: an older server got %d calls and %d sends, %d malformed",
        atomic_load(&old_calls), atomic_load(&old_sends),
        atomic_load(&old_bad));
    CHECK(atomic_load(&old_sends) == 20 && atomic_load(&old_calls) == 20,
        "the older server got %d sends, %d calls", atomic_load(&old_sends),
        atomic_load(&old_calls));
    CHECK(atomic_load(&old_bad) == 0,
        "%d frames to the older server were not version 1's form",
        atomic_load(&old_bad));
    CHECK(skc_node_destroy(c) == SKC_OK, "destroy");
    nng_close(old_rep);
    nng_close(old_pull);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
}

int
main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "serve") == 0) {
        return serve(argv[2]);
    }
    if (argc >= 2) {
        pairs = atoi(argv[1]);
    }
    sys_init("order", 240);
    static sys_proc srv;
    char url[512];
    const char *srvlog = sys_path("kv.log");
    char *sargv[] = { argv[0], "serve", "127.0.0.1:0", NULL };
    sys_spawn(&srv, "kv", sargv, srvlog, 1);
    sys_expect(&srv, "LISTENING", url, sizeof(url), sys_ms(10000));
    sys_log("server at %s", url);
    part_load(url, srvlog);
    part_raw(url, srvlog);
    part_old_server();
    sys_send_line(&srv, "quit");
    sys_stop_clean(&srv, sys_ms(10000));
    sys_log("ok");
    return 0;
}
