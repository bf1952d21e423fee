/* sys_badinput.c -- garbage, truncated, wrong-version, lying, empty and
 * oversized frames sent to a node's call port (REP) and send port (PULL),
 * through raw NNG sockets and raw TCP, while a well-behaved client keeps
 * calling and sending.
 *
 *   sys_badinput SYSNODE
 *
 * Checks: the good client never sees a failure or a wrong reply; every bad
 * request on the call port is answered with SKC_EPROTO and the reason,
 * and the node logs "rejected a bad request frame: <reason>"; every bad
 * one-way frame is dropped with "dropped a bad one-way frame: <reason>";
 * oversized frames and raw-TCP garbage cost the sender its connection and
 * nothing else; at the end the node exits cleanly on SIGTERM (leak-free
 * under the ASan and valgrind runs).  This driver links NNG itself: it
 * plays a hostile peer, not an skc node.
 */
#include "sys.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/req.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_MSG 65536 /* the node's max_msg_size in this test */

static sys_proc srv;
static const char *srvlog;
static char url[512];
static char pull_url[512];
static int port;

/* ---- the well-behaved client, running all along ---- */

static atomic_int good_stop;
static atomic_long good_ok, good_bad, good_sends;
static char good_err[700];

static void *
good_main(void *arg)
{
    skc_node *n = arg;
    unsigned seed = 7;
    char buf[2048];
    while (!atomic_load(&good_stop)) {
        size_t len = 1 + rand_r(&seed) % sizeof(buf);
        for (size_t i = 0; i < len; i++) {
            buf[i] = (char)rand_r(&seed);
        }
        void *out = NULL;
        size_t ol = 0;
        int rc = skc_node_call(n, &out, &ol, "victim", "@echo", buf, len,
            sys_ms(5000));
        if (rc == SKC_OK && ol == len && memcmp(out, buf, len) == 0) {
            atomic_fetch_add(&good_ok, 1);
        } else if (atomic_fetch_add(&good_bad, 1) == 0) {
            snprintf(good_err, sizeof(good_err), "%s: %s", skc_errname(rc),
                rc == SKC_OK ? "wrong reply" : skc_last_error());
        }
        skc_free(out);
        if (skc_node_send(n, "victim", "@sink", buf, 16) == SKC_OK) {
            atomic_fetch_add(&good_sends, 1);
        }
    }
    return NULL;
}

/* ---- frames built by hand (layout: lib/wire.c, docs/PROTOCOL.md) ---- */

typedef struct frame {
    uint8_t b[1024];
    size_t len;
} frame;

static void
req(frame *f, uint8_t ver, uint8_t kind, uint8_t ttype, const char *name,
    uint32_t handle, const char *payload)
{
    f->len = sys_put_req(f->b, kind, 0, ttype, name, handle, payload,
        payload ? strlen(payload) : 0);
    f->b[2] = ver;
    sys_put_u32(f->b + 12, MAX_MSG);
    sys_put_u64(f->b + 16, 77);
}

static void
raw(frame *f, const void *data, size_t len)
{
    memcpy(f->b, data, len);
    f->len = len;
}

/* ---- raw NNG REQ against the call port ---- */

/* The node drops the connection of an oversized frame and NNG redials.
 * Closing a socket while that new connection exchanges SP headers leaks
 * it in NNG 1.5.2 (docs/RELIABILITY.md, B7 and L7; LeakSanitizer saw it
 * here), and the redial cannot be put off: 1.5.2 draws the back-off as
 * (int)random() % NNG_OPT_RECONNMINT, which is negative, so immediate,
 * half the time.  So the redial is made quick, and a socket whose
 * connection was dropped is closed only once its new connection is up
 * (close_after_redial).  The test then goes on with a fresh socket: in
 * NNG 1.5.2 the first message pushed down the redialed connection was
 * lost in about 1 of 5 tries, with raw NNG on both ends. */
static atomic_int raw_pipes; /* connections of the open raw socket */

static void
raw_pipe_up(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    (void)ev;
    (void)arg;
    atomic_fetch_add(&raw_pipes, 1);
}

static void
raw_setup(nng_socket s)
{
    atomic_store(&raw_pipes, 0);
    nng_pipe_notify(s, NNG_PIPE_EV_ADD_POST, raw_pipe_up, NULL);
    nng_socket_set_ms(s, NNG_OPT_RECONNMINT, 20);
    nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, 100);
}

static void
close_after_redial(nng_socket s)
{
    int64_t until = sys_now_ms() + sys_ms(5000);
    while (atomic_load(&raw_pipes) < 2 && sys_now_ms() < until) {
        sys_sleep_ms(10);
    }
    CHECK(atomic_load(&raw_pipes) >= 2, "a raw socket did not reconnect "
        "after the node dropped its connection");
    nng_close(s);
}

static nng_socket
req_open(void)
{
    nng_socket s;
    CHECK(nng_req0_open(&s) == 0, "req0_open");
    nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, sys_ms(3000));
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, sys_ms(3000));
    nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 1 << 20);
    raw_setup(s);
    int rv = nng_dial(s, url, NULL, 0);
    CHECK(rv == 0, "dial %s: %s", url, nng_strerror(rv));
    return s;
}

/* Sends len bytes as one message (blocking); 0 or NNG's error. */
static int
send_bytes(nng_socket s, const void *data, size_t len)
{
    nng_msg *m;
    CHECK(nng_msg_alloc(&m, 0) == 0, "msg");
    if (len > 0) {
        CHECK(nng_msg_append(m, data, len) == 0, "append");
    }
    int rv = nng_sendmsg(s, m, 0);
    if (rv != 0) {
        nng_msg_free(m);
    }
    return rv;
}

/* Sends f; returns 1 and the reply status/text, or 0 if no reply. */
static int
req_exchange(nng_socket s, const void *data, size_t len, uint32_t *status,
    char *text, size_t size)
{
    if (send_bytes(s, data, len) != 0) {
        return 0;
    }
    nng_msg *m;
    int rv = nng_recvmsg(s, &m, 0);
    if (rv != 0) {
        return 0;
    }
    const uint8_t *b = nng_msg_body(m);
    size_t bl = nng_msg_len(m);
    CHECK(bl >= 20 && b[0] == 'S' && b[1] == 'K' && b[2] == 1 &&
        b[3] == 0x81, "the node answered with a malformed reply frame");
    CHECK(sys_get_u32(b + 16) == bl - 20, "reply length field disagrees");
    *status = sys_get_u32(b + 4);
    size_t tl = bl - 20 < size - 1 ? bl - 20 : size - 1;
    memcpy(text, b + 20, tl);
    text[tl] = '\0';
    nng_msg_free(m);
    return 1;
}

/* A bad request: answered with EPROTO (12) carrying `why`, and logged
 * ("rejected a bad request frame: why") unless log is 0. */
static void
expect_rejected(nng_socket s, const char *name, const frame *f,
    const char *why, int log)
{
    uint32_t st = 0;
    char text[1200];
    int before = sys_file_count(srvlog, why);
    CHECK(req_exchange(s, f->b, f->len, &st, text, sizeof(text)),
        "%s: no reply from the node", name);
    CHECK(st == (uint32_t)-SKC_EPROTO, "%s: status %u (%s)", name, st, text);
    CHECK(strstr(text, why) != NULL, "%s: reply text '%s' lacks '%s'", name,
        text, why);
    if (log) {
        char needle[400];
        snprintf(needle, sizeof(needle), "rejected a bad request frame: %s",
            why);
        int64_t until = sys_now_ms() + sys_ms(2000);
        while (sys_file_count(srvlog, needle) <= 0 ||
            sys_file_count(srvlog, why) <= before) {
            CHECK(sys_now_ms() < until, "%s: the node did not log '%s'",
                name, needle);
            sys_sleep_ms(20);
        }
    }
    sys_log("call port, %-22s -> EPROTO \"%s\"", name, text);
}

/* ---- raw NNG PUSH against the send port ---- */

static nng_socket
push_open(void)
{
    nng_socket s;
    CHECK(nng_push0_open(&s) == 0, "push0_open");
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, sys_ms(3000));
    raw_setup(s);
    int rv = nng_dial(s, pull_url, NULL, 0);
    CHECK(rv == 0, "dial %s: %s", pull_url, nng_strerror(rv));
    return s;
}

static void
push(nng_socket s, const void *data, size_t len)
{
    int rv = send_bytes(s, data, len);
    CHECK(rv == 0, "push: %s", nng_strerror(rv));
}

static int
expect_dropped_soft(nng_socket s, const char *name, const frame *f,
    const char *needle)
{
    int before = sys_file_count(srvlog, needle);
    push(s, f->b, f->len);
    int64_t until = sys_now_ms() + sys_ms(3000);
    while (sys_file_count(srvlog, needle) <= before) {
        if (sys_now_ms() >= until) {
            return 0;
        }
        sys_sleep_ms(20);
    }
    sys_log("send port, %-22s -> logged \"%s\"", name, needle);
    return 1;
}

static void
expect_dropped(nng_socket s, const char *name, const frame *f,
    const char *needle)
{
    CHECK(expect_dropped_soft(s, name, f, needle), "send port, %s: the node "
        "did not log '%s'", name, needle);
}

/* ---- raw TCP ---- */

static int
tcp_connect(int p)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)p);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0,
        "connect 127.0.0.1:%d: %s", p, strerror(errno));
    return fd;
}

static void
tcp_write(int fd, const void *b, size_t n)
{
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    CHECK(w == (ssize_t)n, "tcp write: %s", strerror(errno));
}

/* Reads up to n bytes within ms; returns bytes read, 0 on close, -1 on
 * timeout (nothing read), -2 on reset. */
static ssize_t
tcp_read(int fd, void *b, size_t n, int ms)
{
    size_t got = 0;
    int64_t until = sys_now_ms() + ms;
    while (got < n) {
        int left = (int)(until - sys_now_ms());
        if (left <= 0) {
            break;
        }
        struct pollfd pf = { fd, POLLIN, 0 };
        if (poll(&pf, 1, left) <= 0) {
            continue;
        }
        ssize_t r = recv(fd, (char *)b + got, n - got, 0);
        if (r == 0) {
            return got > 0 ? (ssize_t)got : 0;
        }
        if (r < 0) {
            return errno == ECONNRESET ? -2 : -1;
        }
        got += (size_t)r;
    }
    return got > 0 ? (ssize_t)got : -1;
}

/* The node must drop the connection (EOF or reset) within 3 s. */
static void
expect_closed(int fd, const char *name)
{
    char b[256];
    int64_t until = sys_now_ms() + sys_ms(3000);
    for (;;) {
        ssize_t r = tcp_read(fd, b, sizeof(b), 200);
        if (r == 0 || r == -2) {
            break;
        }
        CHECK(sys_now_ms() < until, "raw TCP, %s: the node kept the "
            "connection open", name);
    }
    close(fd);
    sys_log("raw TCP,   %-22s -> connection closed by the node", name);
}

static const uint8_t sp_req[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 };
static const uint8_t sp_push[8] = { 0, 'S', 'P', 0, 0, 0x50, 0, 0 };
static const uint8_t sp_pub[8] = { 0, 'S', 'P', 0, 0, 0x20, 0, 0 };

static int
sp_connect(int p, const uint8_t hdr[8])
{
    int fd = tcp_connect(p);
    uint8_t peer[8];
    tcp_write(fd, hdr, 8);
    ssize_t r = tcp_read(fd, peer, 8, sys_ms(3000));
    CHECK(r == 8 && peer[0] == 0 && peer[1] == 'S' && peer[2] == 'P',
        "SP handshake with 127.0.0.1:%d failed (%zd)", p, r);
    return fd;
}

static void
sp_send(int fd, const void *body, size_t len, uint64_t claimed)
{
    uint8_t l[8];
    for (int i = 0; i < 8; i++) {
        l[i] = (uint8_t)(claimed >> (56 - 8 * i));
    }
    tcp_write(fd, l, 8);
    if (len > 0) {
        tcp_write(fd, body, len);
    }
}

static int
url_port(const char *u)
{
    const char *c = strrchr(u, ':');
    return c ? atoi(c + 1) : 0;
}


int
main(int argc, char **argv)
{
    sys_init("badinput", 200);
    CHECK(argc >= 2, "usage: sys_badinput SYSNODE");
    srvlog = sys_path("victim.log");
    char maxmsg[16];
    snprintf(maxmsg, sizeof(maxmsg), "%d", MAX_MSG);
    char *sargv[] = { argv[1], "--name", "victim", "--max-msg", maxmsg,
        "127.0.0.1:0", NULL };
    sys_spawn(&srv, "victim", sargv, srvlog, 1);
    sys_expect(&srv, "LISTENING", url, sizeof(url), sys_ms(10000));
    port = url_port(url);

    skc_node *good = sys_client("good", 0);
    CHECK(skc_node_map_set(good, "victim", url) == SKC_OK, "map_set");
    char out[700];
    int rc = sys_call(good, "victim", "@echo", "hi", 2, sys_ms(5000), out,
        sizeof(out));
    CHECK(rc == SKC_OK, "warm-up: %s (%s)", skc_errname(rc), out);
    pthread_t gt;
    pthread_create(&gt, NULL, good_main, good);

    /* ---- the call port, raw NNG REQ ---- */
    nng_socket s = req_open();
    frame f;
    uint32_t st;

    req(&f, 1, 5, 0, NULL, 0, NULL); /* PING */
    CHECK(req_exchange(s, f.b, f.len, &st, out, sizeof(out)) && st == 0,
        "ping: %u %s", st, out);
    req(&f, 1, 3, 0, NULL, 0, "intruder"); /* HELLO: learn the send port */
    {
        /* body: max_msg u32, name_len u16, name, url_len u16, url */
        nng_msg *m;
        nng_msg_alloc(&m, 0);
        nng_msg_append(m, f.b, f.len);
        nng_sendmsg(s, m, 0);
        CHECK(nng_recvmsg(s, &m, 0) == 0, "hello: no answer");
        CHECK(nng_msg_len(m) > 28 && sys_get_u32((uint8_t *)nng_msg_body(m)
            + 4) == 0, "hello refused");
        const uint8_t *b = (const uint8_t *)nng_msg_body(m) + 20;
        CHECK(sys_get_u32(b) == MAX_MSG, "hello announces max_msg %u",
            sys_get_u32(b));
        size_t nl = (size_t)b[4] | (size_t)b[5] << 8;
        size_t ul = (size_t)b[6 + nl] | (size_t)b[7 + nl] << 8;
        snprintf(pull_url, sizeof(pull_url), "%.*s", (int)ul,
            (const char *)b + 8 + nl);
        nng_msg_free(m);
        sys_log("the node's send port (from a hand-made HELLO): %s",
            pull_url);
    }

    raw(&f, "", 0);
    expect_rejected(s, "empty message", &f,
        "frame of 0 bytes is shorter than a header", 1);
    raw(&f, "SK\1", 3);
    expect_rejected(s, "3 bytes", &f,
        "frame of 3 bytes is shorter than a header", 1);
    raw(&f, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    expect_rejected(s, "garbage (HTTP)", &f, "bad magic 0x4745", 1);
    req(&f, 2, 1, 2, "echo", 0, "x");
    expect_rejected(s, "protocol version 2", &f,
        "unsupported protocol version 2", 1);
    req(&f, 0, 1, 2, "echo", 0, "x");
    expect_rejected(s, "protocol version 0", &f,
        "unsupported protocol version 0", 1);
    req(&f, 1, 1, 2, "echo", 0, "x");
    f.len = 20;
    expect_rejected(s, "truncated header", &f,
        "truncated frame: 20 bytes, header needs 34", 1);
    req(&f, 1, 9, 2, "echo", 0, "x");
    expect_rejected(s, "unknown kind 9", &f, "unknown request kind 9", 1);
    req(&f, 1, 0x81, 2, "echo", 0, "x");
    expect_rejected(s, "a reply as request", &f,
        "unknown request kind 129", 1);
    req(&f, 1, 1, 7, NULL, 0, "x");
    expect_rejected(s, "target type 7", &f, "unknown target type 7", 1);
    req(&f, 1, 1, 2, NULL, 0, "x");
    expect_rejected(s, "empty target name", &f, "empty target name", 1);
    req(&f, 1, 1, 1, "echo", 5, "x");
    expect_rejected(s, "handle with a name", &f,
        "target type 1 with a name", 1);
    req(&f, 1, 1, 2, "echo", 0, "x");
    f.b[25] = 200;
    expect_rejected(s, "name length lies", &f,
        "truncated frame: target name of 200 bytes does not fit", 1);
    req(&f, 1, 1, 2, "ec\1o", 0, "x");
    f.b[32] = 0;
    expect_rejected(s, "NUL in the name", &f,
        "target name contains a NUL byte", 1);
    req(&f, 1, 1, 2, "echo", 0, "0123456789");
    sys_put_u32(f.b + 34, 1000);
    expect_rejected(s, "payload length > data", &f,
        "payload length field says 1000 bytes, frame carries 10", 1);
    sys_put_u32(f.b + 34, 0xffffffffu);
    expect_rejected(s, "payload length 2^32-1", &f,
        "payload length field says 4294967295 bytes", 1);
    sys_put_u32(f.b + 34, 2);
    expect_rejected(s, "payload length < data", &f,
        "payload length field says 2 bytes, frame carries 10", 1);
    req(&f, 1, 2, 2, "sink", 0, "x");
    expect_rejected(s, "a send on the call port", &f,
        "cannot be sent as a request", 0);
    req(&f, 1, 1, 0, NULL, 0, "x");
    expect_rejected(s, "a call without target", &f, "needs a target", 0);
    req(&f, 1, 1, 2, "nosuch", 0, "x");
    CHECK(req_exchange(s, f.b, f.len, &st, out, sizeof(out)) &&
        st == (uint32_t)-SKC_ENOSERVICE && strstr(out, "@nosuch"),
        "unknown service: %u %s", st, out);

    /* random frames: each gets an answer, nothing else changes */
    unsigned seed = 1234;
    int answered = 0;
    for (int i = 0; i < 300; i++) {
        uint8_t b[160];
        size_t len = rand_r(&seed) % sizeof(b);
        for (size_t k = 0; k < len; k++) {
            b[k] = (uint8_t)rand_r(&seed);
        }
        if (i % 2 == 0 && len >= 4) {
            b[0] = 'S', b[1] = 'K', b[2] = 1, b[3] = 1 + i % 5;
        }
        if (len > 26 && b[24] == 1) {
            b[26] = 0xde; /* never a real service's handle */
        }
        if (len > 24 && b[3] == 1 && b[24] >= 2 && b[24] <= 3) {
            b[24] = 1, b[25] = 0, b[29] = 0xde; /* no real name either */
        }
        answered += req_exchange(s, b, len, &st, out, sizeof(out));
    }
    CHECK(answered == 300, "only %d of 300 random frames were answered",
        answered);
    sys_log("call port, 300 random frames       -> 300 answers");

    /* oversized: NNG drops the connection; the node goes on */
    {
        size_t big = 4 * MAX_MSG;
        uint8_t *b = calloc(1, big);
        frame hdr;
        req(&hdr, 1, 1, 2, "echo", 0, NULL);
        memcpy(b, hdr.b, hdr.len);
        sys_put_u32(b + 34, (uint32_t)(big - hdr.len));
        int got = req_exchange(s, b, big, &st, out, sizeof(out));
        CHECK(!got, "an oversized frame was answered: %u %s", st, out);
        free(b);
        sys_log("call port, %-22s -> no answer (connection dropped)",
            "256 KiB frame");
    }
    close_after_redial(s);
    s = req_open();
    req(&f, 1, 5, 0, NULL, 0, NULL);
    CHECK(req_exchange(s, f.b, f.len, &st, out, sizeof(out)) && st == 0,
        "ping after the oversized frame");
    nng_close(s);

    /* ---- the send port, raw NNG PUSH ---- */
    s = push_open();
    raw(&f, "", 0);
    expect_dropped(s, "empty message", &f,
        "dropped a bad one-way frame: frame of 0 bytes");
    raw(&f, "\xff\xfe garbage", 10);
    expect_dropped(s, "garbage", &f,
        "dropped a bad one-way frame: bad magic 0xfffe");
    req(&f, 9, 2, 2, "sink", 0, "x");
    expect_dropped(s, "protocol version 9", &f,
        "dropped a bad one-way frame: unsupported protocol version 9");
    req(&f, 1, 2, 2, "sink", 0, "x");
    f.len = 30;
    expect_dropped(s, "truncated", &f,
        "dropped a bad one-way frame: truncated frame: 30 bytes");
    req(&f, 1, 2, 2, "sink", 0, "0123456789");
    sys_put_u32(f.b + 34, 99);
    expect_dropped(s, "payload length lies", &f,
        "dropped a bad one-way frame: payload length field says 99");
    req(&f, 1, 2, 2, "nosuch", 0, "x");
    expect_dropped(s, "unknown service", &f,
        "dropped a send to @nosuch: no such service");
    /* bug B1 (docs/RELIABILITY.md, fixed in 74ba73e): skci_on_push logged
     * an uninitialised buffer for a well-formed frame that is not a SEND */
    req(&f, 1, 1, 2, "sink", 0, "x");
    CHECK(expect_dropped_soft(s, "a call on the send port", &f,
              "not a send"), "a CALL frame on the send port was not logged "
        "as 'not a send' (regression of bug B1)");
    {
        size_t big = 4 * MAX_MSG;
        uint8_t *b = calloc(1, big);
        push(s, b, big);
        free(b);
        sys_log("send port, %-22s -> pushed (the node drops the link)",
            "256 KiB frame");
    }
    close_after_redial(s);
    s = push_open();
    req(&f, 1, 2, 2, "sink", 0, "valid");
    push(s, f.b, f.len);
    /* logged once it has arrived, so "valid" before it has too */
    req(&f, 1, 2, 2, "nosuch", 0, "x");
    expect_dropped(s, "after the oversized one", &f,
        "dropped a send to @nosuch: no such service");
    nng_close(s);

    /* ---- raw TCP ---- */
    int idle[5];
    for (int i = 0; i < 5; i++) {
        idle[i] = tcp_connect(port); /* held open, silent, to the end */
    }
    {
        int fd = tcp_connect(port);
        uint8_t g[4096];
        for (size_t i = 0; i < sizeof(g); i++) {
            g[i] = (uint8_t)rand_r(&seed);
        }
        g[0] = 0x47; /* not a 0 byte: not an SP header */
        tcp_write(fd, g, sizeof(g));
        expect_closed(fd, "4 KiB of garbage");
    }
    {
        int fd = tcp_connect(port);
        tcp_write(fd, sp_pub, 8);
        expect_closed(fd, "SP header, wrong proto");
    }
    {
        int fd = sp_connect(port, sp_req);
        sp_send(fd, NULL, 0, (uint64_t)1 << 40);
        expect_closed(fd, "length 2^40");
    }
    {
        /* a well-framed SP request whose skc frame is garbage: the node
         * answers it over the raw connection */
        int fd = sp_connect(port, sp_req);
        uint8_t body[4 + 16] = { 0x80, 0, 0, 1 };
        memcpy(body + 4, "XXXXXXXXXXXXXXXX", 16);
        sp_send(fd, body, sizeof(body), sizeof(body));
        uint8_t rep[8 + 4 + 200];
        ssize_t r = tcp_read(fd, rep, 8, sys_ms(3000));
        CHECK(r == 8, "raw TCP: no answer to a framed garbage request");
        uint64_t rl = 0;
        for (int i = 0; i < 8; i++) {
            rl = rl << 8 | rep[i];
        }
        CHECK(rl >= 24 && rl <= sizeof(rep) - 8, "answer of %llu bytes",
            (unsigned long long)rl);
        CHECK(tcp_read(fd, rep + 8, (size_t)rl, sys_ms(3000)) ==
            (ssize_t)rl, "short answer");
        CHECK(memcmp(rep + 8, body, 4) == 0, "request id not echoed");
        const uint8_t *sk = rep + 12;
        CHECK(sk[0] == 'S' && sk[1] == 'K' && sk[3] == 0x81 &&
            sys_get_u32(sk + 4) == (uint32_t)-SKC_EPROTO,
            "raw TCP answer is not an EPROTO reply");
        sys_log("raw TCP,   %-22s -> EPROTO \"%.*s\"", "framed garbage",
            (int)(rl - 24), (const char *)sk + 20);
        CHECK(sys_file_wait(srvlog, "rejected a bad request frame: bad "
            "magic 0x5858", sys_ms(2000)), "not logged");
        close(fd);
    }
    {
        /* a body without an SP request id: NNG drops it */
        int fd = sp_connect(port, sp_req);
        sp_send(fd, "ab", 2, 2);
        sys_sleep_ms(100);
        close(fd);
    }
    {
        /* a length that promises 100 bytes, then 10, then silence */
        int fd = sp_connect(port, sp_req);
        sp_send(fd, "0123456789", 10, 100);
        idle[4] = (close(idle[4]), fd);
    }
    {
        int fd = sp_connect(url_port(pull_url), sp_push);
        sp_send(fd, "JUNKJUNK", 8, 8);
        CHECK(sys_file_wait(srvlog, "dropped a bad one-way frame: bad magic "
            "0x4a55", sys_ms(3000)), "raw TCP junk on the send port was "
            "not logged");
        sys_log("raw TCP,   %-22s -> logged \"dropped a bad one-way "
            "frame: bad magic 0x4a55\"", "send-port junk");
        close(fd);
    }

    /* the good client all along */
    sys_sleep_ms(300);
    atomic_store(&good_stop, 1);
    pthread_join(gt, NULL);
    long ok = atomic_load(&good_ok), bad = atomic_load(&good_bad);
    CHECK(bad == 0, "the good client saw %ld failures, first: %s", bad,
        good_err);
    CHECK(ok > 0, "the good client made no call");
    long sinks = 0;
    int64_t until = sys_now_ms() + sys_ms(3000);
    do {
        sinks = sys_sink_count(good, "victim", sys_ms(3000));
        if (sinks >= atomic_load(&good_sends) + 1) {
            break;
        }
        sys_sleep_ms(50);
    } while (sys_now_ms() < until);
    CHECK(sinks == atomic_load(&good_sends) + 1, "@sink counted %ld sends; "
        "the good client sent %ld plus 1 valid raw one", sinks,
        atomic_load(&good_sends));
    sys_log("FIGURE badinput good_calls=%ld good_failures=0 good_sends=%ld "
        "all_delivered=yes", ok, atomic_load(&good_sends));
    for (int i = 0; i < 5; i++) {
        close(idle[i]);
    }
    CHECK(skc_node_destroy(good) == SKC_OK, "destroy");
    sys_stop_clean(&srv, sys_ms(10000));
    sys_log("PASS");
    return 0;
}
