/* sys_l7.c -- servers made and destroyed under a live client, in one
 * process (docs/RELIABILITY.md L7).
 *
 *   sys_l7 [ROUNDS [fresh|same|mixed]]     (defaults 300, fresh)
 *
 * One client node stays up.  Each round makes a server node on a TCP
 * loopback port, calls it once (@echo, must succeed), destroys it at once
 * and waits until the client has noticed it is gone.  At the end
 * everything is destroyed.
 *   fresh  every server gets a new port, given to the client with
 *          skc_node_map_set: the client dials it at once; its send (PUSH)
 *          connection, dialed after the HELLO, is often still being
 *          accepted when the server is destroyed.
 *   same   every server reuses the first one's port: the client's REQ and
 *          PUSH sockets redial by themselves, so connections arrive at
 *          every moment of a server's life, its destroy included, and
 *          some are closed by the server as soon as they are made.  Slow
 *          (each call waits for NNG's redial back-off, up to seconds).
 *          With NNG 1.5.2's PUSH protocol as it is this mode also meets the
 *          use after free that sys_sendrefused.c reproduces at will (300
 *          rounds crashed 4 runs in 6).
 *   mixed  every other round.
 *
 * NNG 1.5.2 as released keeps a connection for good when its listener (or
 * dialer) closes while the connection is in the SP header exchange, or
 * has finished it but is not yet handed to the socket: the connection,
 * its fd and the transport endpoint (about 3.7 KiB) are never freed.  skc
 * builds NNG with its patch (cmake/nng/nng-1.5.2-skc.patch), so this test
 * must be leak-free under valgrind and ASan without any suppression for
 * NNG.  It also checks, in any build, that once everything is destroyed
 * the process holds no more fds than during the first rounds: with the
 * unpatched NNG 300 fresh rounds kept 2-24 connections' fds.
 */
#include "sys.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int lost; /* the client's monitor reports of the server down */

static void
client_log(int level, const char *node, const char *text, void *arg)
{
    (void)arg;
    if (strstr(text, "lost; reconnecting") != NULL ||
        strstr(text, "is down (reset") != NULL) {
        return; /* one a round: expected */
    }
    skc_log_stderr(level, node, text, NULL);
}

/* The client noticed the server was gone (a monitor report). */
static void
client_monitor(void *arg, const char *peer, int up, const char *reason,
    const char *addr)
{
    (void)arg, (void)peer, (void)reason, (void)addr;
    if (!up) {
        atomic_fetch_add(&lost, 1);
    }
}

static void
svc_echo(skc_node *n, uint32_t s, skc_msg *m, void *arg)
{
    (void)n, (void)s, (void)arg;
    size_t len;
    const void *d = skc_msg_data(m, &len);
    skc_msg_reply(m, d, len);
}

/* A server node with @echo, listening on 127.0.0.1:port (0: any). */
static skc_node *
server_make(int port, char **url)
{
    skc_node *s = sys_client("srv", 0);
    uint32_t h;
    CHECK(skc_service_create(s, &h, svc_echo, NULL) == SKC_OK &&
            skc_name_register(s, "@echo", h) == SKC_OK,
        "@echo: %s", skc_last_error());
    char where[64];
    snprintf(where, sizeof(where), "127.0.0.1:%d", port);
    /* The port was free a moment ago; a socket of another program (an
     * outgoing connection's ephemeral port) may hold it for a while. */
    int64_t until = sys_now_ms() + sys_ms(3000);
    int rc;
    for (;;) {
        rc = skc_node_open(s, url, where);
        if (rc != SKC_EEXIST || sys_now_ms() > until) {
            break;
        }
        sys_sleep_ms(50);
    }
    CHECK(rc == SKC_OK, "server open %s: %s (%s)", where, skc_errname(rc),
        skc_last_error());
    return s;
}

int
main(int argc, char **argv)
{
    sys_init("serverchurn", 280);
    int rounds = argc >= 2 ? atoi(argv[1]) : 300;
    CHECK(rounds >= 2 && rounds <= 100000, "rounds: %d", rounds);
    const char *mode = argc >= 3 ? argv[2] : "fresh";
    CHECK(strcmp(mode, "same") == 0 || strcmp(mode, "fresh") == 0 ||
            strcmp(mode, "mixed") == 0,
        "mode: %s (same, fresh or mixed)", mode);

    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "client";
    o.log = client_log;
    o.log_level = SKC_LOG_WARN;
    skc_node *cli = NULL;
    CHECK(skc_node_create(&cli, &o) == SKC_OK, "client create: %s",
        skc_last_error());
    CHECK(skc_node_monitor(cli, client_monitor, NULL) == SKC_OK, "monitor");

    int port = 0, fd_base = -1;
    int64_t t0 = sys_now_ms(), call_max = 0, notice_max = 0, call_sum = 0;
    for (int r = 0; r < rounds; r++) {
        char *url = NULL;
        int fresh = r == 0 || strcmp(mode, "fresh") == 0 ||
            (strcmp(mode, "mixed") == 0 && r % 2 == 0);
        if (fresh) {
            port = 0;
        }
        skc_node *srv = server_make(port, &url);
        if (fresh) {
            const char *c = strrchr(url, ':');
            port = c != NULL ? atoi(c + 1) : 0;
            CHECK(port > 0, "server url %s", url);
            CHECK(skc_node_map_set(cli, "srv", url) == SKC_OK, "map_set");
        }
        skc_free(url);

        char msg[32], out[600];
        int ml = snprintf(msg, sizeof(msg), "round %d", r);
        int seen = atomic_load(&lost);
        int64_t t = sys_now_ms();
        int rc = sys_call(cli, "srv", "@echo", msg, (size_t)ml, sys_ms(5000),
            out, sizeof(out));
        int64_t dt = sys_now_ms() - t;
        CHECK(rc == SKC_OK && strcmp(out, msg) == 0,
            "round %d: call over TCP: %s after %lld ms (%s)", r,
            skc_errname(rc), (long long)dt, out);
        call_max = dt > call_max ? dt : call_max;
        call_sum += dt;

        /* destroyed right after the call: the client's push connection
         * (dialed after its HELLO) may still be being accepted */
        CHECK(skc_node_destroy(srv) == SKC_OK, "round %d: destroy", r);
        t = sys_now_ms();
        while (atomic_load(&lost) == seen && sys_now_ms() - t < sys_ms(5000)) {
            sys_sleep_ms(2);
        }
        dt = sys_now_ms() - t;
        CHECK(atomic_load(&lost) > seen,
            "round %d: the client did not "
            "notice the server was gone within %d ms",
            r, sys_ms(5000));
        notice_max = dt > notice_max ? dt : notice_max;
        if (r < 5) {
            /* the least of a few samples: a redial in flight holds an fd
             * for a moment */
            int c = sys_fd_count(0);
            fd_base = fd_base < 0 || c < fd_base ? c : fd_base;
        }
        if ((r + 1) % 100 == 0 || r + 1 == rounds) {
            sys_log("%d rounds, %lld ms, %d fds (%d in the first rounds)",
                r + 1, (long long)(sys_now_ms() - t0), sys_fd_count(0),
                fd_base);
        }
    }
    CHECK(skc_node_destroy(cli) == SKC_OK, "client destroy");
    /* fd_base counts NNG's own fds (made on first use) and whatever the
     * client held then; once the client is gone nothing else may be left.
     * Sockets close asynchronously: a bounded wait. */
    int fd_end = sys_fd_count(0);
    int64_t t = sys_now_ms();
    while (fd_end > fd_base && sys_now_ms() - t < sys_ms(2000)) {
        sys_sleep_ms(20);
        fd_end = sys_fd_count(0);
    }
    sys_log("FIGURE serverchurn mode=%s rounds=%d ms=%lld call_sum_ms=%lld "
            "call_max_ms=%lld notice_max_ms=%lld fds_first_rounds=%d "
            "fds_at_end=%d",
        mode, rounds, (long long)(sys_now_ms() - t0), (long long)call_sum,
        (long long)call_max, (long long)notice_max, fd_base, fd_end);
    CHECK(fd_end <= fd_base,
        "the process holds %d fds with every node destroyed, %d during "
        "the first rounds: connections of destroyed servers were never "
        "freed (L7)",
        fd_end, fd_base);
    sys_settle();
    sys_log("PASS");
    return 0;
}
