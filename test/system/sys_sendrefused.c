/* sys_sendrefused.c -- clients whose send (PUSH) connection a node refuses
 * over and over.
 *
 *   sys_sendrefused SYSNODE [REFUSALS]      (default 600)
 *
 * The node runs with max_conns = CLIENTS.  The test fills its send port
 * with CLIENTS silent raw connections, then CLIENTS skc client nodes (in
 * this process) call it: their calls get in (the call port has its own
 * budget), but each one's send connection, dialed after the HELLO, is
 * refused: the node closes it as soon as the SP headers are exchanged,
 * and NNG redials it at once.  After REFUSALS refusals (bounded in time)
 * the raw connections leave, and every client's sends must get through.
 *
 * NNG 1.5.2's PUSH protocol starts a new connection by posting a receive
 * and then putting the pipe on the socket's ready list.  When the
 * connection is already closed by the peer, the receive fails at once and
 * the pipe's close (push0_pipe_close) can run before the pipe is put on
 * the list; the pipe is then freed by NNG's reaper while still listed, and
 * the next connection's start writes into the freed memory: ASan reports
 * a heap-use-after-free in push0_pipe_ready, a plain build panics
 * ("appending node already on a list or not inited") or crashes later.
 * Checks: this process survives, its calls keep working all along, the
 * sends arrive at the end, and everything stops cleanly (no leak under
 * ASan or valgrind).
 */
#include "sys.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLIENTS 4

static sys_proc srv;

/* A TCP connection to 127.0.0.1:port that has exchanged SP headers as
 * protocol `proto` (REQ 0x30, PUSH 0x50), or -1. */
static int
sp_connect(int port, uint8_t proto, int ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    uint8_t hdr[8] = { 0, 'S', 'P', 0, 0, proto, 0, 0 }, peer[8];
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL) != (ssize_t)sizeof(hdr) ||
        recv(fd, peer, sizeof(peer), MSG_WAITALL) != (ssize_t)sizeof(peer) ||
        peer[1] != 'S' || peer[2] != 'P' || peer[5] != proto + 1) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The node's send port, from a HELLO sent by hand (docs/PROTOCOL.md) over
 * a raw REQ connection. */
static int
learn_send_port(int call_port)
{
    int fd = sp_connect(call_port, 0x30, sys_ms(3000));
    CHECK(fd >= 0, "SP header exchange with the call port failed");
    uint8_t req[8 + 4 + 34] = { 0 };
    req[7] = 4 + 34; /* SP length prefix, big-endian */
    req[8] = 0x80;   /* REQ request id, high bit set */
    req[11] = 1;
    uint8_t *f = req + 12;
    f[0] = 'S';
    f[1] = 'K';
    f[2] = 1;
    f[3] = 3; /* HELLO, empty name */
    sys_put_u32(f + 8, 3000);
    sys_put_u32(f + 12, 65536);
    sys_put_u64(f + 16, 1);
    CHECK(send(fd, req, sizeof(req), MSG_NOSIGNAL) == (ssize_t)sizeof(req),
        "HELLO: %s", strerror(errno));
    uint8_t rep[8 + 4 + 20 + 600];
    CHECK(recv(fd, rep, 8, MSG_WAITALL) == 8, "HELLO: no answer");
    size_t len = 0;
    for (int i = 0; i < 8; i++) {
        len = len << 8 | rep[i];
    }
    CHECK(len > 4 + 20 + 8 && len <= sizeof(rep) - 8,
        "HELLO answer of %zu "
        "bytes",
        len);
    CHECK(recv(fd, rep + 8, len, MSG_WAITALL) == (ssize_t)len,
        "HELLO: short answer");
    close(fd);
    const uint8_t *b = rep + 8 + 4;
    CHECK(b[3] == 0x81 && sys_get_u32(b + 4) == 0, "HELLO refused");
    b += 20; /* max_msg u32, n u16, name, u u16, url */
    size_t nl = (size_t)b[4] | (size_t)b[5] << 8;
    size_t ul = (size_t)b[6 + nl] | (size_t)b[7 + nl] << 8;
    char url[256];
    snprintf(url, sizeof(url), "%.*s", (int)ul, (const char *)b + 8 + nl);
    const char *c = strrchr(url, ':');
    CHECK(c != NULL && strncmp(url, "tcp://", 6) == 0, "send port %s", url);
    return atoi(c + 1);
}

static void
echo_ok(skc_node *n, const char *what)
{
    char out[600];
    int rc =
        sys_call(n, "node", "@echo", "ok", 2, sys_ms(10000), out, sizeof(out));
    CHECK(rc == SKC_OK && strcmp(out, "ok") == 0, "%s: %s (%s)", what,
        skc_errname(rc), out);
}

int
main(int argc, char **argv)
{
    sys_init("sendrefused", 200);
    CHECK(argc >= 2, "usage: sys_sendrefused SYSNODE [REFUSALS]");
    int want = argc >= 3 ? atoi(argv[2]) : 600;
    CHECK(want > 0 && want <= 1000000, "refusals: %d", want);
    const char *log = sys_path("node.log");
    char url[512], conns[16];
    snprintf(conns, sizeof(conns), "%d", CLIENTS);
    char *sargv[] = { argv[1], "--name", "node", "--max-conns", conns,
        "127.0.0.1:0", NULL };
    sys_spawn(&srv, "node", sargv, log, 1);
    sys_expect(&srv, "LISTENING", url, sizeof(url), sys_ms(10000));
    const char *c = strrchr(url, ':');
    int call_port = c != NULL ? atoi(c + 1) : 0;
    int send_port = learn_send_port(call_port);

    /* fill the send port */
    int hog[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        hog[i] = sp_connect(send_port, 0x50, sys_ms(3000));
        CHECK(hog[i] >= 0, "raw connection %d to the send port", i);
    }
    sys_sleep_ms(200);
    CHECK(sys_file_count(log, "refused a connection") == 0,
        "a raw connection was refused: %d", sys_file_count(log, "refused"));

    skc_node *cli[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "c%d", i);
        cli[i] = sys_client(name, 0);
        CHECK(skc_node_map_set(cli[i], "node", url) == SKC_OK, "map_set");
        echo_ok(cli[i], "first call");
    }
    int64_t t0 = sys_now_ms(), until = t0 + sys_ms(30000);
    int refused = 0, calls = 0;
    while (refused < want && sys_now_ms() < until) {
        sys_sleep_ms(100);
        echo_ok(cli[calls++ % CLIENTS], "a call while its sends are refused");
        refused = sys_file_count(log, "refused a connection to the send port");
    }
    int64_t ms = sys_now_ms() - t0;
    sys_log(
        "%d send connections refused in %lld ms; %d calls all OK meanwhile",
        refused, (long long)ms, calls);
    CHECK(refused >= want / 2,
        "only %d refusals in %lld ms: the clients' send connections are no "
        "longer redialed",
        refused, (long long)ms);

    /* The send port frees up: every client's sends get through again.
     * PUSH has no acknowledgement, so a send handed to a connection that
     * the node refuses a moment later is lost (as on skynet's socket, and
     * documented for NNG): each client sends until one of its sends is
     * counted by @sink, within a bound.  A PUSH socket left with a freed
     * pipe on its ready list never gets there (or crashes). */
    for (int i = 0; i < CLIENTS; i++) {
        close(hog[i]);
    }
    long got = 0;
    for (int i = 0; i < CLIENTS; i++) {
        sys_sleep_ms(300); /* late copies of the last client's sends */
        long base = sys_sink_count(cli[0], "node", sys_ms(5000));
        long now = base;
        int tries = 0;
        until = sys_now_ms() + sys_ms(15000);
        while (now == base && sys_now_ms() < until) {
            /* SKC_EUNREACHABLE until its send connection has held (skc
             * refuses sends that would go nowhere, docs/OPERATIONS.md) */
            int rc = skc_node_send(cli[i], "node", "@sink", "s", 1);
            CHECK(rc == SKC_OK || rc == SKC_EUNREACHABLE, "send: %s",
                skc_last_error());
            tries++;
            for (int k = 0; k < 5 && now == base; k++) {
                sys_sleep_ms(100);
                now = sys_sink_count(cli[0], "node", sys_ms(5000));
            }
        }
        CHECK(now > base,
            "client %d: none of its %d sends arrived within %d ms of the "
            "send port being free (a PUSH pipe freed but left on NNG's "
            "ready list takes them)",
            i, tries, sys_ms(15000));
        got++;
    }
    sys_log("FIGURE sendrefused refusals=%d ms=%lld calls=%d sends_after=%ld",
        refused, (long long)ms, calls, got);
    for (int i = 0; i < CLIENTS; i++) {
        CHECK(skc_node_destroy(cli[i]) == SKC_OK, "destroy");
    }
    sys_stop_clean(&srv, sys_ms(10000));
    sys_settle();
    sys_log("PASS");
    return 0;
}
