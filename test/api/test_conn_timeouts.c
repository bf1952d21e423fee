/* test_conn_timeouts.c -- connections that hold a node's slots without
 * using them are closed: one that finishes the SP handshake on the call
 * port and then sends nothing (hello_timeout_ms), and a node's link that
 * stays idle (idle_timeout_ms, heartbeats off); the statistics count both,
 * the idle link's next call reconnects, and -1 turns the rules off.
 * Servers are nodes of this process on 127.0.0.1; the silent peer is a
 * raw socket speaking only the SP header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "skc/skc.h"
#include "stat_of.h"
#include "waits.h"

static void
svc_echo(skc_node *n, uint32_t self, skc_msg *m, void *arg)
{
    (void)n;
    (void)self;
    (void)arg;
    size_t len;
    const void *d = skc_msg_data(m, &len);
    skc_msg_reply(m, d, len);
}

static skc_node *
server(char **url, int32_t hello_ms, int32_t idle_ms)
{
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "srv";
    o.max_conns = 2; /* one connection is half: the idle rule applies */
    o.hello_timeout_ms = hello_ms;
    o.idle_timeout_ms = idle_ms;
    skc_node *n;
    assert_int_equal(skc_node_create(&n, &o), SKC_OK);
    uint32_t h;
    assert_int_equal(skc_service_create(n, &h, svc_echo, NULL), SKC_OK);
    assert_int_equal(skc_name_register(n, "@echo", h), SKC_OK);
    assert_int_equal(skc_node_open(n, url, "127.0.0.1:0"), SKC_OK);
    return n;
}

static int
port_of(const char *url)
{
    const char *c = strrchr(url, ':');
    return c != NULL ? atoi(c + 1) : 0;
}

/* A TCP socket that completes the SP header exchange as a peer of
 * protocol proto (0x30 REQ, 0x50 PUSH), then says nothing. */
static int
raw_peer(int port, unsigned char proto)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET,
        .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    /* SP header: 0, 'S', 'P', version 0, protocol REQ (0x30), reserved */
    const unsigned char hdr[8] = { 0, 'S', 'P', 0, 0, proto, 0, 0 };
    assert_int_equal(write(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
    unsigned char peer[8];
    size_t got = 0;
    while (got < sizeof(peer)) {
        ssize_t r = read(fd, peer + got, sizeof(peer) - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    assert_int_equal(peer[1], 'S');
    return fd;
}

/* A TCP port that was free a moment ago. */
static int
free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int
silent_peer(int port)
{
    return raw_peer(port, 0x30);
}

/* Whether the server closed fd within ms. */
static int
closed_within(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int64_t until = now_ms() + ms;
    while (now_ms() < until) {
        int r = poll(&p, 1, 50);
        if (r > 0) {
            char c;
            return read(fd, &c, 1) <= 0;
        }
    }
    return 0;
}


/* Waits (bounded) until "key" is v (at_least: v or more) in n's
 * statistics. */
static void
stat_wait(skc_node *n, const char *key, long v, int at_least)
{
    int64_t until = now_ms() + scaled(5000);
    long got;
    while ((got = stat_of(n, key)) != v && !(at_least && got > v) &&
        now_ms() < until) {
        sleep_ms(10);
    }
    if (got != v && !(at_least && got > v)) {
        fail_msg("%s is %ld, not %s%ld", key, got, at_least ? ">= " : "", v);
    }
}

static void
stat_until(skc_node *n, const char *key, long v)
{
    stat_wait(n, key, v, 0);
}

static void
test_silent_connection_closed(void **state)
{
    (void)state;
    char *url = NULL;
    skc_node *s = server(&url, scaled(300), -1);
    int64_t t0 = now_ms();
    int fd = silent_peer(port_of(url));
    assert_true(closed_within(fd, scaled(5000)));
    assert_true(now_ms() - t0 >= 250); /* not before its time */
    close(fd);
    stat_until(s, "connections_closed_idle", 1);
    stat_until(s, "connections_in", 0);
    assert_int_equal(skc_node_destroy(s), SKC_OK);
    skc_free(url);
}

static void
test_rules_off(void **state)
{
    (void)state;
    char *url = NULL;
    skc_node *s = server(&url, -1, -1);
    int fd = silent_peer(port_of(url));
    assert_false(closed_within(fd, scaled(1500)));
    close(fd);
    assert_int_equal(stat_of(s, "connections_closed_idle"), 0);
    assert_int_equal(skc_node_destroy(s), SKC_OK);
    skc_free(url);
}

static void
test_idle_link_closed_and_redialed(void **state)
{
    (void)state;
    char *url = NULL;
    skc_node *s = server(&url, -1, scaled(500));
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "cli";
    o.heartbeat_ms = -1; /* nothing keeps the link busy */
    skc_node *c;
    assert_int_equal(skc_node_create(&c, &o), SKC_OK);
    assert_int_equal(skc_node_map_set(c, "srv", url), SKC_OK);
    void *rep;
    size_t len;
    assert_int_equal(
        skc_node_call(c, &rep, &len, "srv", "@echo", "a", 1, 0), SKC_OK);
    skc_free(rep);
    /* its call and send connections (NNG redials them, and they go again
     * while they stay idle) */
    stat_wait(s, "connections_closed_idle", 1, 1);
    /* the next call reconnects (the link's outcome for it is unaffected:
     * nothing was in flight) */
    int64_t until = now_ms() + scaled(5000);
    int rc;
    do {
        rc = skc_node_call(c, &rep, &len, "srv", "@echo", "b", 1, 0);
        if (rc == SKC_OK) {
            skc_free(rep);
            break;
        }
        sleep_ms(50);
    } while (now_ms() < until);
    assert_int_equal(rc, SKC_OK);
    assert_int_equal(skc_node_destroy(c), SKC_OK);
    assert_int_equal(skc_node_destroy(s), SKC_OK);
    skc_free(url);
}

/* A send whose connection to the peer's send port cannot be made fails
 * with SKC_EUNREACHABLE after a grace, instead of SKC_OK for a message
 * that goes nowhere; once the port accepts, sends arrive again. */
static void
test_send_port_refused(void **state)
{
    (void)state;
    char *url = NULL;
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "srv";
    o.max_conns = 1; /* per port */
    o.hello_timeout_ms = -1;
    o.idle_timeout_ms = -1;
    o.send_port = free_port();
    skc_node *s;
    assert_int_equal(skc_node_create(&s, &o), SKC_OK);
    uint32_t h;
    assert_int_equal(skc_service_create(s, &h, svc_echo, NULL), SKC_OK);
    assert_int_equal(skc_name_register(s, "@echo", h), SKC_OK);
    assert_int_equal(skc_node_open(s, &url, "127.0.0.1:0"), SKC_OK);
    /* a raw PUSH peer takes the send port's only slot */
    int fd = raw_peer(o.send_port, 0x50);
    skc_node_opts co = SKC_NODE_OPTS_INIT;
    co.name = "cli";
    skc_node *c;
    assert_int_equal(skc_node_create(&c, &co), SKC_OK);
    assert_int_equal(skc_node_map_set(c, "srv", url), SKC_OK);
    void *rep;
    size_t len;
    assert_int_equal(
        skc_node_call(c, &rep, &len, "srv", "@echo", "a", 1, 0), SKC_OK);
    skc_free(rep);
    int64_t until = now_ms() + scaled(15000);
    int rc;
    while ((rc = skc_node_send(c, "srv", "@echo", "x", 1)) == SKC_OK &&
        now_ms() < until) {
        sleep_ms(100);
    }
    assert_int_equal(rc, SKC_EUNREACHABLE);
    if (strstr(skc_last_error(), "send port") == NULL) {
        fail_msg("EUNREACHABLE text: %s", skc_last_error());
    }
    close(fd); /* the slot is free: the client's PUSH redials */
    long before = stat_of(s, "sends_in");
    until = now_ms() + scaled(15000);
    while (stat_of(s, "sends_in") == before && now_ms() < until) {
        skc_node_send(c, "srv", "@echo", "y", 1);
        sleep_ms(100);
    }
    assert_true(stat_of(s, "sends_in") > before);
    assert_int_equal(skc_node_destroy(c), SKC_OK);
    assert_int_equal(skc_node_destroy(s), SKC_OK);
    skc_free(url);
}

static void
test_bad_options(void **state)
{
    (void)state;
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    skc_node *n = NULL;
    o.hello_timeout_ms = -2;
    assert_int_equal(skc_node_create(&n, &o), SKC_EINVAL);
    o.hello_timeout_ms = 0;
    o.idle_timeout_ms = -5;
    assert_int_equal(skc_node_create(&n, &o), SKC_EINVAL);
    assert_null(n);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_silent_connection_closed),
        cmocka_unit_test(test_rules_off),
        cmocka_unit_test(test_idle_link_closed_and_redialed),
        cmocka_unit_test(test_send_port_refused),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
