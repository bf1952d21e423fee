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
 */
#include "sys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COOKIE "tls-and-cookie"

static sys_proc srv, plain;
static char url[256], plain_url[256];

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

int
main(int argc, char **argv)
{
    CHECK(argc == 2, "usage: sys_tls SYSNODE");
    sys_init("tls", 240);
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

    char *a[20];
    int i = 0;
    a[i++] = argv[1];
    a[i++] = (char *)"--name";
    a[i++] = (char *)"db";
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
    sys_spawn(&srv, "db", a, file("db.log"), 1);
    sys_expect(&srv, "LISTENING ", url, sizeof(url), sys_ms(10000));
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

    /* 3. a key that does not exist: refused at create */
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
