/* sys_limits.c -- the limits a node can be given, each pushed past.
 *
 *   sys_limits SYSNODE caller|serving|conns|sendport
 *
 * caller:
 *   - max_inflight = 8: with 8 calls held, call 9 and a sync call fail
 *     at once with SKC_ELIMIT naming the limit; once answered, calls work
 *     again.
 *   - the send backlog: the peer process is stopped (SIGSTOP) so nothing
 *     drains; sends queue up to a bound and then fail with SKC_ELIMIT
 *     (memory stays bounded); after SIGCONT sends work again.
 * serving:
 *   - max_serving = 4: 12 calls held by the server: it never holds more
 *     than 4 at once, the others wait (back-pressure) and all 12 end OK
 *     as the held ones are answered; another caller's call meanwhile ends
 *     with SKC_ETIMEDOUT by its deadline (a documented wait, not a hang).
 * conns:
 *   - max_conns = 2: a third connecting node is refused (the server logs
 *     "refused a connection ... (max_conns)"), its call fails by its
 *     deadline naming the node, the first two keep working; when one of
 *     them leaves, the third gets in with no action.
 * sendport:
 *   - max_conns = 2 on the send (PULL) port too: raw NNG PUSH peers beyond
 *     the limit must be refused like on the call port.
 */
#include "sys.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static sys_proc srv;
static char url[512];

/* Counts the caller's "dropped a send" log lines (and prints the rest). */
static atomic_long dropped_sends;

static void
count_log(int level, const char *node, const char *text, void *arg)
{
    (void)arg;
    if (strstr(text, "dropped a send") != NULL) {
        atomic_fetch_add(&dropped_sends, 1);
        return;
    }
    skc_log_stderr(level, node, text, NULL);
}

static void
start_server(char *node, const char *opt, const char *val)
{
    char *sargv[] = { node, "--name", "lim", (char *)opt, (char *)val,
        "127.0.0.1:0", NULL };
    if (opt == NULL) {
        sargv[3] = "127.0.0.1:0";
        sargv[4] = NULL;
    }
    sys_spawn(&srv, "lim", sargv, sys_path("lim.log"), 1);
    sys_expect(&srv, "LISTENING", url, sizeof(url), sys_ms(10000));
}

static void
echo_ok(skc_node *n, const char *what)
{
    char out[600];
    int rc = sys_call(n, "lim", "@echo", "ok", 2, sys_ms(10000), out,
        sizeof(out));
    CHECK(rc == SKC_OK && strcmp(out, "ok") == 0, "%s: %s (%s)", what,
        skc_errname(rc), out);
}

/* ---- caller side ---- */

static void
test_caller(char *node)
{
    start_server(node, NULL, NULL);
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "caller";
    o.max_inflight = 8;
    o.log = count_log;
    o.log_level = SKC_LOG_WARN;
    skc_node *cli = NULL;
    CHECK(skc_node_create(&cli, &o) == SKC_OK, "create");
    CHECK(skc_node_map_set(cli, "lim", url) == SKC_OK, "map_set");
    echo_ok(cli, "warm-up");

    sys_batch b;
    sys_batch_init(&b, 8);
    for (int i = 0; i < 8; i++) {
        CHECK(sys_batch_start(&b, i, cli, "lim", "@hold", "h", 1, 20000) ==
            SKC_OK, "call %d refused below the limit", i);
    }
    sys_expect(&srv, "HELD 8", NULL, 0, sys_ms(5000));
    sys_batch extra;
    sys_batch_init(&extra, 1);
    int64_t t0 = sys_now_ms();
    int rc = sys_batch_start(&extra, 0, cli, "lim", "@echo", "x", 1, 1000);
    CHECK(rc == SKC_ELIMIT, "call 9 with max_inflight 8: %s",
        skc_errname(rc));
    CHECK(strstr(extra.r[0].text, "max_inflight") != NULL, "detail: %s",
        extra.r[0].text);
    sys_log("max_inflight: call 9 -> %s: %s", skc_errname(rc),
        extra.r[0].text);
    char out[600];
    rc = sys_call(cli, "lim", "@echo", "x", 1, 1000, out, sizeof(out));
    CHECK(rc == SKC_ELIMIT, "sync call over the limit: %s", skc_errname(rc));
    CHECK(sys_now_ms() - t0 < sys_ms(100), "ELIMIT was not immediate");
    /* (sends are not calls: they are bounded by the send backlog below) */
    sys_batch_fini(&extra);
    sys_send_line(&srv, "release");
    CHECK(sys_batch_wait(&b, 8, sys_ms(5000)) == 8, "held calls ended");
    for (int i = 0; i < 8; i++) {
        CHECK(b.r[i].status == SKC_OK, "held call %d: %s (%s)", i,
            skc_errname(b.r[i].status), b.r[i].text);
    }
    sys_batch_fini(&b);
    echo_ok(cli, "after the held calls ended");

    /* send backlog: the peer stops reading */
    CHECK(skc_node_send(cli, "lim", "@sink", "first", 5) == SKC_OK, "send");
    for (int i = 0; i < 100; i++) {
        rc = sys_call(cli, "lim", "@sink", "?", 1, 2000, out, sizeof(out));
        if (rc == SKC_OK && atoi(out + 6) >= 1) {
            break;
        }
        sys_sleep_ms(20);
    }
    CHECK(atoi(out + 6) >= 1, "the first send never arrived");
    long rss0 = sys_rss_kb(0);
    sys_signal(&srv, SIGSTOP);
    char msg[1024];
    memset(msg, 's', sizeof(msg));
    long sent = 0;
    int limited = 0;
    for (long i = 0; i < 400000; i++) {
        rc = skc_node_send(cli, "lim", "@sink", msg, sizeof(msg));
        if (rc == SKC_ELIMIT) {
            limited = 1;
            break;
        }
        CHECK(rc == SKC_OK, "send %ld: %s (%s)", i, skc_errname(rc),
            skc_last_error());
        if (atomic_load(&dropped_sends) > 0) {
            break; /* returned OK, but dropped: see below */
        }
        sent++;
    }
    long rss1 = sys_rss_kb(0);
    CHECK(limited || atomic_load(&dropped_sends) > 0, "400000 sends of "
        "1 KiB to a stopped peer were all accepted: the send backlog is not "
        "bounded");
    CHECK(atomic_load(&dropped_sends) == 0, "sends were dropped with a log "
        "line although skc_node_send returned SKC_OK (regression of bug B2)");
    /* memory stays bounded: 65536 queued 1 KiB messages plus NNG's */
    CHECK(rss1 - rss0 < 512 * 1024, "RSS grew by %ld KiB", rss1 - rss0);
    /* bug B2 (fixed in 9b516ce): the send past the backlog returned
     * SKC_OK and the node dropped it with a log line */
    CHECK(limited, "send %ld returned SKC_OK but the node dropped it (\"send "
        "backlog full\"); skc.h promises SKC_ELIMIT (regression of bug B2)",
        sent + 1);
    CHECK(strstr(skc_last_error(), "backlog") != NULL, "ELIMIT detail: %s",
        skc_last_error());
    sys_log("send backlog: %ld sends of 1 KiB accepted, then %s: %s", sent,
        skc_errname(rc), skc_last_error());
    sys_log("FIGURE send_backlog accepted=%ld rss_growth_kb=%ld", sent,
        rss1 - rss0);
    sys_signal(&srv, SIGCONT);
    /* the peer drains; sends are accepted again */
    int64_t until = sys_now_ms() + sys_ms(20000);
    do {
        rc = skc_node_send(cli, "lim", "@sink", "again", 5);
        if (rc == SKC_OK) {
            break;
        }
        sys_sleep_ms(50);
    } while (sys_now_ms() < until);
    CHECK(rc == SKC_OK, "sends still refused after the peer resumed: %s",
        skc_errname(rc));
    echo_ok(cli, "after the peer resumed");
    /* let the backlog drain before stopping anything: closing sockets
     * mid-transfer is what sys_shutdown tests (NNG 1.5.2 can hang there) */
    long last = -1, now = 0;
    until = sys_now_ms() + sys_ms(20000);
    while (sys_now_ms() < until) {
        rc = sys_call(cli, "lim", "@sink", "?", 1, 2000, out, sizeof(out));
        now = rc == SKC_OK ? atol(out + 6) : now;
        if (now == last) {
            break;
        }
        last = now;
        sys_sleep_ms(200);
    }
    sys_log("the stopped peer received %ld sends once resumed", now);
    /* every send that was accepted arrived: the first, the ones before
     * the limit, and the one after resuming */
    CHECK(now == sent + 2, "%ld sends accepted, %ld arrived", sent + 2, now);
    CHECK(skc_node_destroy(cli) == SKC_OK, "destroy");
    sys_stop_clean(&srv, sys_ms(20000));
}

/* ---- server side ---- */

static void
test_serving(char *node)
{
    start_server(node, "--max-serving", "4");
    skc_node *cli = sys_client("caller", 0);
    skc_node *other = sys_client("other", 0);
    CHECK(skc_node_map_set(cli, "lim", url) == SKC_OK, "map_set");
    CHECK(skc_node_map_set(other, "lim", url) == SKC_OK, "map_set");
    echo_ok(cli, "warm-up");
    echo_ok(other, "warm-up");
    sys_batch b;
    sys_batch_init(&b, 12);
    for (int i = 0; i < 12; i++) {
        CHECK(sys_batch_start(&b, i, cli, "lim", "@hold", "h", 1, 20000) ==
            SKC_OK, "start");
    }
    int released = 0, rounds = 0;
    char out[600], line[128];
    while (released < 12) {
        sys_expect(&srv, "HELD 4", NULL, 0, sys_ms(5000));
        if (rounds == 0) {
            /* saturated: another caller waits, bounded by its deadline */
            int64_t t0 = sys_now_ms();
            int rc = sys_call(other, "lim", "@echo", "x", 1, 500, out,
                sizeof(out));
            int64_t dt = sys_now_ms() - t0;
            CHECK(rc == SKC_ETIMEDOUT && dt < 500 + sys_ms(SYS_LATE_MS),
                "call to a saturated node: %s after %lld ms (%s)",
                skc_errname(rc), (long long)dt, out);
            sys_log("max_serving: while 4 calls are held another caller "
                "got %s after %lld ms: %s", skc_errname(rc),
                (long long)dt, out);
        }
        /* never a 5th at once */
        int r = sys_readline(&srv, line, sizeof(line), sys_ms(700));
        CHECK(r == 0, "the server holds more than max_serving (4): '%s'",
            line);
        sys_send_line(&srv, "release");
        sys_expect(&srv, "RELEASED 4", NULL, 0, sys_ms(5000));
        released += 4;
        rounds++;
    }
    CHECK(sys_batch_wait(&b, 12, sys_ms(10000)) == 12, "held calls ended");
    for (int i = 0; i < 12; i++) {
        CHECK(b.r[i].status == SKC_OK && strcmp(b.r[i].text, "released") ==
            0, "held call %d: %s (%s)", i, skc_errname(b.r[i].status),
            b.r[i].text);
    }
    sys_batch_fini(&b);
    echo_ok(other, "after the back-pressure");
    sys_log("max_serving: 12 calls served 4 at a time, all OK");
    CHECK(skc_node_destroy(cli) == SKC_OK, "destroy");
    CHECK(skc_node_destroy(other) == SKC_OK, "destroy");
    sys_stop_clean(&srv, sys_ms(10000));
}

static void
test_conns(char *node)
{
    char out[600];
    const char *log = sys_path("lim.log");
    start_server(node, "--max-conns", "2");
    skc_node *c[3];
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof(name), "c%d", i);
        c[i] = sys_client(name, 0);
        CHECK(skc_node_map_set(c[i], "lim", url) == SKC_OK, "map_set");
    }
    echo_ok(c[0], "c0");
    echo_ok(c[1], "c1");
    int64_t t0 = sys_now_ms();
    int rc = sys_call(c[2], "lim", "@echo", "x", 1, 1500, out, sizeof(out));
    int64_t dt = sys_now_ms() - t0;
    CHECK(rc == SKC_EUNREACHABLE || rc == SKC_ETIMEDOUT ||
        rc == SKC_ECONNLOST, "third connection: %s (%s)", skc_errname(rc),
        out);
    CHECK(strstr(out, "'lim'") != NULL, "detail: %s", out);
    CHECK(dt < 1500 + sys_ms(SYS_LATE_MS),
        "third connection: ended after %lld ms", (long long)dt);
    CHECK(sys_file_wait(log, "refused a connection", sys_ms(2000)) &&
        sys_file_count(log, "2 connections is the limit (max_conns)") > 0,
        "the refusal was not logged with its reason");
    sys_log("max_conns: a third node got %s after %lld ms: %s",
        skc_errname(rc), (long long)dt, out);
    echo_ok(c[0], "c0 while c2 is refused");
    echo_ok(c[1], "c1 while c2 is refused");
    CHECK(skc_node_destroy(c[0]) == SKC_OK, "destroy");
    t0 = sys_now_ms();
    rc = sys_call(c[2], "lim", "@echo", "in", 2, sys_ms(12000), out,
        sizeof(out));
    CHECK(rc == SKC_OK, "c2 after c0 left: %s (%s)", skc_errname(rc), out);
    sys_log("FIGURE max_conns third_node_in_after_ms=%lld (NNG redial "
        "backoff 100 ms .. 5 s)", (long long)(sys_now_ms() - t0));
    echo_ok(c[1], "c1 at the end");
    CHECK(skc_node_destroy(c[1]) == SKC_OK, "destroy");
    CHECK(skc_node_destroy(c[2]) == SKC_OK, "destroy");
    sys_stop_clean(&srv, sys_ms(10000));
}

/* ---- the send port ---- */

/* Writes all of b, without SIGPIPE; 1 on success. */
static int
send_all(int fd, const void *b, size_t n)
{
    const uint8_t *p = b;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            return 0;
        }
        p += w;
        n -= (size_t)w;
    }
    return 1;
}

/* A TCP connection to 127.0.0.1:port that has done the SP handshake as a
 * PUSH peer (docs: NNG's TCP transport, 8-byte header 00 'S' 'P' 00,
 * protocol 0x0050 big-endian, 00 00), or -1. */
static int
sp_push_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const uint8_t hs[8] = { 0, 'S', 'P', 0, 0x00, 0x50, 0, 0 };
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        !send_all(fd, hs, sizeof(hs))) {
        close(fd);
        return -1;
    }
    return fd;
}


static void
test_sendport(char *node)
{
    start_server(node, "--max-conns", "2");
    const char *log = sys_path("lim.log");
    /* learn the send port with a hand-made HELLO (docs/PROTOCOL.md) */
    nng_socket r;
    CHECK(nng_req0_open(&r) == 0, "req");
    nng_socket_set_ms(r, NNG_OPT_RECVTIMEO, 3000);
    CHECK(nng_dial(r, url, NULL, 0) == 0, "dial");
    uint8_t hello[34] = { 'S', 'K', 1, 3 };
    nng_msg *m;
    nng_msg_alloc(&m, 0);
    nng_msg_append(m, hello, sizeof(hello));
    CHECK(nng_sendmsg(r, m, 0) == 0 && nng_recvmsg(r, &m, 0) == 0,
        "hello");
    const uint8_t *b = (const uint8_t *)nng_msg_body(m) + 20;
    size_t nl = (size_t)b[4] | (size_t)b[5] << 8;
    size_t ul = (size_t)b[6 + nl] | (size_t)b[7 + nl] << 8;
    char pull[512];
    snprintf(pull, sizeof(pull), "%.*s", (int)ul, (const char *)b + 8 + nl);
    nng_msg_free(m);
    nng_close(r); /* the call port holds none of our connections now */

    /* The peers speak SP over plain TCP rather than through NNG PUSH
     * sockets: an NNG 1.5.2 PUSH dialer whose pipe the server closes at
     * once can crash in its own send path (~1 run in 8 here), which would
     * make this test fail for a bug that is not skc's. */
    enum { PEERS = 6 };
    int p[PEERS];
    uint8_t send[8 + 34 + 4] = { 0 };
    send[7] = 34 + 4; /* SP length prefix, big-endian u64 */
    uint8_t *f = send + 8;
    f[0] = 'S';
    f[1] = 'K';
    f[2] = 1;
    f[3] = 2; /* SEND */
    f[24] = 2;
    f[25] = 4;
    memcpy(f + 30, "sink", 4);
    const char *colon = strrchr(pull, ':');
    CHECK(colon != NULL && strncmp(pull, "tcp://", 6) == 0,
        "send port url %s", pull);
    int port = atoi(colon + 1);
    for (int i = 0; i < PEERS; i++) {
        p[i] = sp_push_connect(port);
        CHECK(p[i] >= 0, "connect to the send port %d", port);
    }
    sys_sleep_ms(300);
    for (int i = 0; i < PEERS; i++) {
        /* a refused peer finds its connection closed: the send fails */
        (void)!send_all(p[i], send, sizeof(send));
    }
    sys_sleep_ms(500);
    skc_node *cli = sys_client("counter", 0);
    CHECK(skc_node_map_set(cli, "lim", url) == SKC_OK, "map_set");
    int delivered = (int)sys_sink_count(cli, "lim", sys_ms(5000));
    int refused = sys_file_count(log, "refused a connection");
    sys_log("send port with max_conns 2: %d raw peers connected, %d sends "
        "delivered, %d refusals logged", PEERS, delivered, refused);
    for (int i = 0; i < PEERS; i++) {
        close(p[i]);
    }
    CHECK(skc_node_destroy(cli) == SKC_OK, "destroy");
    sys_stop_clean(&srv, sys_ms(10000));
    /* bug B3 (fixed in 74ba73e): only the REP socket counted connections;
     * the PULL socket took any number, each able to hold a message of up
     * to max_msg_size in flight */
    CHECK(delivered <= 2 && refused >= PEERS - 2, "max_conns (2) does not "
        "bound the send port: %d of %d raw PUSH peers were served and %d "
        "refused (regression of bug B3)", delivered, PEERS, refused);
}

int
main(int argc, char **argv)
{
    sys_init("limits", 150);
    CHECK(argc >= 3, "usage: sys_limits SYSNODE "
        "caller|serving|conns|sendport");
    if (strcmp(argv[2], "caller") == 0) {
        test_caller(argv[1]);
    } else if (strcmp(argv[2], "serving") == 0) {
        test_serving(argv[1]);
    } else if (strcmp(argv[2], "conns") == 0) {
        test_conns(argv[1]);
    } else {
        test_sendport(argv[1]);
    }
    sys_log("PASS");
    return 0;
}
