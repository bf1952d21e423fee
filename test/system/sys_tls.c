/* sys_tls.c -- mutual TLS through tls+tcp:// (issue #17), with the
 * cluster cookie on top, between processes; certificates are made with
 * openssl at run time in the test's temporary directory.
 *
 *   sys_tls SYSNODE
 *
 * A node "db" listens on tls+tcp:// with a certificate signed by a test
 * CA, requires client certificates signed by that CA, and has a cookie.
 * Checks: a client with a CA-signed certificate and the cookie calls and
 * sends (the send port is TLS too); a client with no certificate, with
 * one from another CA, with an expired one, one that expects another
 * server name, one speaking plaintext to the TLS port, and one speaking
 * TLS to a plaintext node each fail within the call's deadline with an
 * error that says what (SKC_EAUTH or SKC_EUNREACHABLE naming TLS or the
 * handshake), and the node still serves the good client; the right
 * certificate with a wrong cookie is SKC_EAUTH from the cookie; a node
 * whose key does not exist is refused at create.
 *
 * Then a TLS connection whose TCP side ends abruptly (no TLS close_notify)
 * while its request waits for a free context: node "db1" serves one
 * request at a time and is holding one, raw NNG callers send a request
 * each and vanish; once db1 answers the held call it must still serve and
 * stop cleanly.  With NNG 1.5.2's TLS as released the vanished
 * connection's next receive never ended, and db1's stop hung for ever
 * (issue #17's teardown hang; docs/RELIABILITY.md, L8).
 */
#include "sys.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define COOKIE "tls-and-cookie"

static sys_proc srv, plain, one;
static char url[256], plain_url[256], one_url[256];

/* "<tmpdir>/name", kept in a pool that lives to the end (no leak for
 * ASan, no rotation as sys_path's buffers). */
static char *
file(const char *name)
{
    static char pool[96][512];
    static int used;
    CHECK(used < 96, "file pool");
    snprintf(pool[used], sizeof(pool[used]), "%s", sys_path(name));
    return pool[used++];
}

/* Runs openssl with the words of cmd (split at spaces), in the tmpdir. */
static void
ossl(const char *cmd)
{
    char buf[1024], *argv[48];
    snprintf(buf, sizeof(buf), "%s", cmd);
    int i = 0;
    argv[i++] = (char *)"openssl";
    for (char *t = strtok(buf, " "); t != NULL && i < 47;
         t = strtok(NULL, " ")) {
        argv[i++] = t[0] == '@' ? file(t + 1) : t;
    }
    argv[i] = NULL;
    CHECK(sys_run(argv, 1) == 0, "openssl %s failed", cmd);
}

/* A key and a certificate "name" for CN cn, signed by CA ca, valid days
 * (negative: expired). */
static void
make_cert(const char *name, const char *cn, const char *ca, int days)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
        "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout @%s.key -out @%s.csr -subj /CN=%s",
        name, name, cn);
    ossl(cmd);
    snprintf(cmd, sizeof(cmd),
        "x509 -req -in @%s.csr -CA @%s.pem -CAkey @%s.key -CAcreateserial "
        "-out @%s.pem -days %d",
        name, ca, ca, name, days);
    ossl(cmd);
}

static void
make_ca(const char *name)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout @%s.key -out @%s.pem -days 2 -subj /CN=%s",
        name, name, name);
    ossl(cmd);
}

/* A client node with cert (NULL: none), the CA, a server name and a
 * cookie. */
static skc_node *
client(const char *name, const char *cert, const char *cookie,
    const char *server_name)
{
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    char certf[64], keyf[64];
    o.name = name;
    o.cluster_cookie = cookie;
    if (cert != NULL) {
        snprintf(certf, sizeof(certf), "%s.pem", cert);
        snprintf(keyf, sizeof(keyf), "%s.key", cert);
        o.tls_cert = file(certf);
        o.tls_key = file(keyf);
    }
    o.tls_ca = file("ca.pem");
    o.tls_server_name = server_name;
    /* db1 (section 3) serves one request at a time, so while it holds a
     * call it answers no heartbeat either: the heartbeat verdict (3 s by
     * default) scales with the run's slowness like every wait here, or a
     * valgrind run declares db1 down while the vanishing callers connect. */
    o.heartbeat_misses = sys_ms(3000) / 1000;
    return sys_node_create(&o);
}

/* A call from n to peer at addr that must fail within its deadline with
 * one of the two codes, its detail containing one of the words. */
static void
expect_refused(skc_node *n, const char *peer, const char *addr, int code1,
    int code2, const char *w1, const char *w2)
{
    CHECK(skc_node_map_set(n, peer, addr) == SKC_OK, "map_set");
    char out[800];
    int64_t t0 = sys_now_ms();
    int32_t deadline = sys_ms(4000);
    int rc = sys_call(n, peer, "@echo", "x", 1, deadline, out, sizeof(out));
    int64_t el = sys_now_ms() - t0;
    CHECK(rc == code1 || rc == code2, "%s: want %s or %s, got %s (%s)",
        skc_node_name(n), skc_errname(code1), skc_errname(code2),
        skc_errname(rc), out);
    CHECK(el <= deadline + sys_ms(SYS_LATE_MS), "refused after %lld ms",
        (long long)el);
    CHECK(strstr(out, w1) != NULL || strstr(out, w2) != NULL,
        "%s: the detail '%s' says neither '%s' nor '%s'", skc_node_name(n),
        out, w1, w2);
    sys_log("%s: %s in %lld ms: %s", skc_node_name(n), skc_errname(rc),
        (long long)el, out);
}

static void
good_call(skc_node *n, const char *peer)
{
    char out[800];
    int rc =
        sys_call(n, peer, "@echo", "hi", 2, sys_ms(5000), out, sizeof(out));
    CHECK(rc == SKC_OK && strcmp(out, "hi") == 0, "%s -> %s: %s (%s)",
        skc_node_name(n), peer, skc_errname(rc), out);
}

/* Starts node name on tls+tcp:// with db's certificate, mutual TLS and
 * the cookie (max_serving: NULL = the default); its URL goes to out. */
static void
tls_server(sys_proc *p, const char *sysnode, const char *name,
    const char *max_serving, char *out, size_t size)
{
    char logf[64];
    char *a[24];
    int i = 0;
    a[i++] = (char *)sysnode;
    a[i++] = (char *)"--name";
    a[i++] = (char *)name;
    if (max_serving != NULL) {
        a[i++] = (char *)"--max-serving";
        a[i++] = (char *)max_serving;
    }
    a[i++] = (char *)"--cookie";
    a[i++] = (char *)COOKIE;
    a[i++] = (char *)"--tls-cert";
    a[i++] = file("db.pem");
    a[i++] = (char *)"--tls-key";
    a[i++] = file("db.key");
    a[i++] = (char *)"--tls-ca";
    a[i++] = file("ca.pem");
    a[i++] = (char *)"tls+tcp://127.0.0.1:0";
    a[i] = NULL;
    snprintf(logf, sizeof(logf), "%s.log", name);
    sys_spawn(p, name, a, file(logf), 1);
    sys_expect(p, "LISTENING ", out, size, sys_ms(10000));
}

/* The fd of this process's TCP socket whose local port is port. */
static int
fd_of_port(int port)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL, "/proc/self/fd");
    int found = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        struct sockaddr_in sa;
        socklen_t n = sizeof(sa);
        if (fd > 2 && getsockname(fd, (struct sockaddr *)&sa, &n) == 0 &&
            sa.sin_family == AF_INET && ntohs(sa.sin_port) == port) {
            found = fd;
        }
    }
    closedir(d);
    return found;
}

static nng_pipe vanish_pipe;

static void
vanish_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)ev;
    (void)arg;
    vanish_pipe = p;
}

/* A raw NNG caller with the good certificate sends one request to addr
 * and vanishes: its TCP connection is shut down under NNG's TLS, so the
 * server sees the connection end without a TLS close_notify. */
static void
vanish(const char *addr)
{
    nng_socket s;
    nng_dialer d;
    nng_tls_config *c;
    char *cert = sys_read_file(file("cli.pem"));
    char *key = sys_read_file(file("cli.key"));
    CHECK(cert != NULL && key != NULL, "read cli.pem/cli.key");
    CHECK(nng_req0_open(&s) == 0, "req0_open");
    nng_pipe_notify(s, NNG_PIPE_EV_ADD_POST, vanish_pipe_cb, NULL);
    CHECK(nng_tls_config_alloc(&c, NNG_TLS_MODE_CLIENT) == 0, "tls config");
    CHECK(nng_tls_config_own_cert(c, cert, key, NULL) == 0 &&
            nng_tls_config_ca_file(c, file("ca.pem")) == 0 &&
            nng_tls_config_server_name(c, "db") == 0 &&
            nng_tls_config_auth_mode(c, NNG_TLS_AUTH_MODE_REQUIRED) == 0,
        "tls config");
    /* No redial: the request is not sent again on a new connection. */
    CHECK(nng_dialer_create(&d, s, addr) == 0 &&
            nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, c) == 0 &&
            nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 600000) == 0 &&
            nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, 600000) == 0,
        "dialer");
    int rv = nng_dialer_start(d, 0);
    CHECK(rv == 0, "raw TLS dial %s: %s", addr, nng_strerror(rv));
    CHECK(nng_send(s, "x", 1, 0) == 0, "raw send");
    /* Let the request reach the server, where it waits for a context. */
    sys_sleep_ms(sys_ms(200));
    nng_sockaddr la;
    CHECK(nng_pipe_get_addr(vanish_pipe, NNG_OPT_LOCADDR, &la) == 0,
        "local address");
    int fd = fd_of_port(ntohs(la.s_in.sa_port));
    CHECK(fd >= 0, "no socket on port %d", ntohs(la.s_in.sa_port));
    shutdown(fd, SHUT_RDWR);
    sys_sleep_ms(sys_ms(100));
    nng_close(s);
    nng_tls_config_free(c);
    free(cert);
    free(key);
}

static atomic_int idle_done;

static void
idle_cb(void *arg)
{
    (void)arg;
    atomic_store(&idle_done, 1);
}

/* NNG's TLS streams alone, the bug itself: the server's stream has read
 * all there was, so its TCP receive is posted while no TLS operation is
 * queued; the client's TCP is then shut down (no close_notify).  A
 * receive, and then a send too big for TLS's buffer, posted afterwards
 * with a timeout must each end within a few seconds.  With NNG 1.5.2 as
 * released neither ever did, timeout or not. */
static void
idle_stream_death(void)
{
    nng_stream_listener *l;
    nng_stream_dialer *d;
    nng_tls_config *sc, *cc;
    char *cert = sys_read_file(file("db.pem"));
    char *key = sys_read_file(file("db.key"));
    CHECK(cert != NULL && key != NULL, "read db.pem/db.key");
    CHECK(nng_stream_listener_alloc(&l, "tls+tcp://127.0.0.1:0") == 0 &&
            nng_tls_config_alloc(&sc, NNG_TLS_MODE_SERVER) == 0 &&
            nng_tls_config_own_cert(sc, cert, key, NULL) == 0 &&
            nng_stream_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, sc) == 0 &&
            nng_stream_listener_listen(l) == 0,
        "TLS stream listener");
    int port = 0;
    nng_stream_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
    char u[64];
    snprintf(u, sizeof(u), "tls+tcp://127.0.0.1:%d", port);
    CHECK(nng_stream_dialer_alloc(&d, u) == 0 &&
            nng_tls_config_alloc(&cc, NNG_TLS_MODE_CLIENT) == 0 &&
            nng_tls_config_auth_mode(cc, NNG_TLS_AUTH_MODE_NONE) == 0 &&
            nng_stream_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cc) == 0,
        "TLS stream dialer");
    nng_aio *sa, *ca, *late;
    CHECK(nng_aio_alloc(&sa, NULL, NULL) == 0 &&
            nng_aio_alloc(&ca, NULL, NULL) == 0 &&
            nng_aio_alloc(&late, idle_cb, NULL) == 0,
        "aio");
    nng_aio_set_timeout(sa, sys_ms(10000));
    nng_aio_set_timeout(ca, sys_ms(10000));
    nng_stream_listener_accept(l, sa);
    nng_stream_dialer_dial(d, ca);
    nng_aio_wait(sa);
    nng_aio_wait(ca);
    CHECK(nng_aio_result(sa) == 0 && nng_aio_result(ca) == 0, "connect");
    nng_stream *srvs = nng_aio_get_output(sa, 0);
    nng_stream *clis = nng_aio_get_output(ca, 0);
    char out[8] = "hello", in[64];
    nng_iov oi = { out, 5 }, ii = { in, sizeof(in) };
    nng_aio_set_iov(ca, 1, &oi);
    nng_aio_set_iov(sa, 1, &ii);
    nng_stream_send(clis, ca);
    nng_stream_recv(srvs, sa);
    nng_aio_wait(ca);
    nng_aio_wait(sa);
    CHECK(nng_aio_result(ca) == 0 && nng_aio_result(sa) == 0 &&
            nng_aio_count(sa) == 5,
        "TLS handshake and 5 bytes");
    nng_sockaddr la;
    CHECK(nng_stream_get_addr(clis, NNG_OPT_LOCADDR, &la) == 0, "locaddr");
    int fd = fd_of_port(ntohs(la.s_in.sa_port));
    CHECK(fd >= 0, "no socket on port %d", ntohs(la.s_in.sa_port));
    shutdown(fd, SHUT_RDWR);
    sys_sleep_ms(sys_ms(200)); /* the server's TCP receive sees the end */
    static char big[100000];
    nng_iov bi = { big, sizeof(big) };
    for (int k = 0; k < 2; k++) {
        atomic_store(&idle_done, 0);
        nng_aio_set_timeout(late, sys_ms(500));
        if (k == 0) {
            nng_aio_set_iov(late, 1, &ii);
            nng_stream_recv(srvs, late);
        } else {
            nng_aio_set_iov(late, 1, &bi);
            nng_stream_send(srvs, late);
        }
        int64_t end = sys_now_ms() + sys_ms(5000);
        while (!atomic_load(&idle_done) && sys_now_ms() < end) {
            sys_sleep_ms(10);
        }
        CHECK(atomic_load(&idle_done),
            "a TLS %s after the peer's TCP ended never completed",
            k == 0 ? "receive" : "send");
        CHECK(nng_aio_result(late) != 0, "the %s succeeded",
            k == 0 ? "receive" : "send");
        sys_log("TLS %s after the peer's TCP ended: %s",
            k == 0 ? "receive" : "send", nng_strerror(nng_aio_result(late)));
    }
    nng_stream_free(clis);
    nng_stream_free(srvs);
    nng_aio_free(late);
    nng_aio_free(ca);
    nng_aio_free(sa);
    nng_stream_dialer_free(d);
    nng_stream_listener_free(l);
    nng_tls_config_free(cc);
    nng_tls_config_free(sc);
    free(cert);
    free(key);
}

int
main(int argc, char **argv)
{
    CHECK(argc == 2, "usage: sys_tls SYSNODE");
    sys_init("tls", 120);
    char *v[] = { (char *)"openssl", (char *)"version", NULL };
    if (sys_run(v, 1) != 0) {
        sys_log("SKIP: no openssl");
        return SYS_SKIP;
    }
    make_ca("ca");
    make_ca("ca2");
    make_cert("db", "db", "ca", 2);
    make_cert("cli", "cli", "ca", 2);
    make_cert("other", "cli", "ca2", 2);
    make_cert("old", "cli", "ca", -1);

    tls_server(&srv, argv[1], "db", NULL, url, sizeof(url));
    char *b[] = { argv[1], (char *)"--name", (char *)"plain",
        (char *)"127.0.0.1:0", NULL };
    sys_spawn(&plain, "plain", b, file("plain.log"), 1);
    sys_expect(
        &plain, "LISTENING ", plain_url, sizeof(plain_url), sys_ms(10000));
    sys_log("db on %s, plain on %s", url, plain_url);

    /* 1. mutual TLS and the cookie: calls and sends */
    skc_node *good = client("good", "cli", COOKIE, "db");
    CHECK(skc_node_map_set(good, "db", url) == SKC_OK, "map_set");
    good_call(good, "db");
    for (int k = 0; k < 4; k++) {
        CHECK(skc_node_send(good, "db", "@sink", "s", 1) == SKC_OK, "send");
    }
    long got = 0;
    int64_t end = sys_now_ms() + sys_ms(5000);
    for (int k = 0; k < 200 && got != 4 && sys_now_ms() < end; k++) {
        got = sys_sink_count(good, "db", sys_ms(3000));
        if (got != 4) {
            sys_sleep_ms(20);
        }
    }
    CHECK(got == 4, "sends over TLS: %ld of 4 arrived", got);
    sys_log("mutual TLS + cookie: call and 4 sends ok");

    /* 2. refusals, each within the deadline and saying what */
    skc_node *nocert = client("nocert", NULL, COOKIE, "db");
    expect_refused(
        nocert, "db", url, SKC_EAUTH, SKC_EAUTH, "TLS", "certificate");
    skc_node *other = client("other", "other", COOKIE, "db");
    expect_refused(
        other, "db", url, SKC_EAUTH, SKC_EAUTH, "TLS", "certificate");
    skc_node *old = client("old", "old", COOKIE, "db");
    expect_refused(old, "db", url, SKC_EAUTH, SKC_EAUTH, "TLS", "certificate");
    skc_node *name = client("wrongname", "cli", COOKIE, "notdb");
    expect_refused(
        name, "db", url, SKC_EAUTH, SKC_EAUTH, "TLS", "certificate");
    /* plaintext to the TLS port, TLS to a plaintext port */
    skc_node *clear = client("clear", NULL, COOKIE, NULL);
    char tcp_url[256];
    snprintf(tcp_url, sizeof(tcp_url), "tcp://%s", strstr(url, "://") + 3);
    expect_refused(clear, "db", tcp_url, SKC_EUNREACHABLE, SKC_EUNREACHABLE,
        "TLS", "handshake");
    char tls_url[256];
    snprintf(tls_url, sizeof(tls_url), "tls+tcp://%s",
        strstr(plain_url, "://") + 3);
    expect_refused(
        good, "plain", tls_url, SKC_EAUTH, SKC_EAUTH, "TLS", "handshake");
    /* the right certificate, a wrong cookie */
    skc_node *badcookie = client("badcookie", "cli", "wrong", "db");
    expect_refused(badcookie, "db", url, SKC_EAUTH, SKC_EAUTH,
        "wrong cluster cookie", "wrong cluster cookie");
    good_call(good, "db");

    /* 3. a TLS stream whose TCP ended while idle; then callers that
     * vanish while their requests wait for a context */
    idle_stream_death();
    tls_server(&one, argv[1], "db1", "1", one_url, sizeof(one_url));
    CHECK(skc_node_map_set(good, "db1", one_url) == SKC_OK, "map_set");
    good_call(good, "db1");
    sys_batch hb;
    sys_batch_init(&hb, 1);
    sys_batch_start(&hb, 0, good, "db1", "@hold", "h", 1, sys_ms(30000));
    char held[64];
    sys_expect(&one, "HELD ", held, sizeof(held), sys_ms(10000));
    for (int k = 0; k < 3; k++) {
        vanish(one_url);
    }
    sys_send_line(&one, "release");
    CHECK(sys_batch_wait(&hb, 1, sys_ms(10000)) == 1 &&
            hb.r[0].status == SKC_OK && strcmp(hb.r[0].text, "released") == 0,
        "the held call: %s (%s)", skc_errname(hb.r[0].status), hb.r[0].text);
    sys_batch_fini(&hb);
    good_call(good, "db1");
    sys_log("3 callers vanished while waiting for db1's only context");
    sys_log("stopping db1");
    sys_stop_clean(&one, sys_ms(10000));

    /* 4. a key that does not exist: refused at create */
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.tls_cert = file("cli.pem");
    o.tls_key = file("missing.key");
    skc_node *n = NULL;
    int rc = skc_node_create(&n, &o);
    CHECK(rc == SKC_EIO && strstr(skc_last_error(), "missing.key"),
        "a missing key: %s (%s)", skc_errname(rc), skc_last_error());
    sys_log("missing key: %s", skc_last_error());

    /* Each step said, so that a stop that hangs shows where. */
    skc_node *all[] = { nocert, other, old, name, clear, badcookie, good };
    for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++) {
        sys_log("destroying client %s", skc_node_name(all[k]));
        skc_node_destroy(all[k]);
    }
    sys_log("stopping db");
    sys_stop_clean(&srv, sys_ms(10000));
    sys_log("stopping plain");
    sys_stop_clean(&plain, sys_ms(10000));
    sys_log("PASS");
    return 0;
}
