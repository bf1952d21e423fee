/* test_sendgate.c -- B9 (docs/RELIABILITY.md): a send told SKC_OK is not
 * lost while the peer's send port refuses the sender.  A node whose send
 * port is full (max_conns 1, its one slot held by a raw PUSH peer) lets
 * the sender's PUSH connections finish NNG's header exchange and then
 * closes them; the sends must wait in the sender's backlog and all arrive,
 * once each, when the slot frees.  Sends still waiting when the link
 * closes are counted in sends_lost.  Both nodes live in this process, on
 * 127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "skc/skc.h"
#include "../api/stat_of.h"
#include "../api/waits.h"

#define SENDS 20

static atomic_int arrived;

static void
svc_count(skc_node *n, uint32_t self, skc_msg *m, void *arg)
{
    (void)n;
    (void)self;
    (void)m;
    (void)arg;
    atomic_fetch_add(&arrived, 1);
}

/* A loopback address with a port nobody listens on now. */
static struct sockaddr_in
loopback(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int
unused_port(void)
{
    struct sockaddr_in a = loopback(0);
    socklen_t al = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0 && bind(s, (struct sockaddr *)&a, al) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &al) == 0);
    close(s);
    return ntohs(a.sin_port);
}

/* Takes the send port's one slot: a TCP connection that speaks the SP
 * header of a PUSH peer (protocol 0x50) and then nothing. */
static int
slot_holder(int port)
{
    struct sockaddr_in a = loopback(port);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
    static const unsigned char sp[8] = { 0, 'S', 'P', 0, 0, 0x50, 0, 0 };
    assert_int_equal(send(s, sp, sizeof(sp), 0), (ssize_t)sizeof(sp));
    unsigned char back[8];
    for (size_t n = 0; n < sizeof(back);) {
        ssize_t r = recv(s, back + n, sizeof(back) - n, 0);
        assert_true(r > 0);
        n += (size_t)r;
    }
    return s;
}


typedef struct pair {
    skc_node *srv, *cli;
    char *url;
    int holder; /* the raw connection in the send port's slot */
} pair;

/* A server with one slot per port, its send slot taken, and a client
 * whose link is up (a ping went through). */
static void
pair_start(pair *p)
{
    atomic_store(&arrived, 0);
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "srv";
    o.max_conns = 1;
    o.hello_timeout_ms = -1;
    o.idle_timeout_ms = -1;
    o.send_port = unused_port();
    assert_int_equal(skc_node_create(&p->srv, &o), SKC_OK);
    uint32_t h;
    assert_int_equal(skc_service_create(p->srv, &h, svc_count, NULL), SKC_OK);
    assert_int_equal(skc_name_register(p->srv, "@count", h), SKC_OK);
    assert_int_equal(skc_node_open(p->srv, &p->url, "127.0.0.1:0"), SKC_OK);
    p->holder = slot_holder(o.send_port);
    skc_node_opts co = SKC_NODE_OPTS_INIT;
    co.name = "cli";
    assert_int_equal(skc_node_create(&p->cli, &co), SKC_OK);
    assert_int_equal(skc_node_map_set(p->cli, "srv", p->url), SKC_OK);
    assert_int_equal(skc_node_ping(p->cli, "srv", scaled(5000), NULL), SKC_OK);
}

static void
pair_stop(pair *p)
{
    if (p->holder >= 0) {
        close(p->holder);
    }
    assert_int_equal(skc_node_destroy(p->cli), SKC_OK);
    assert_int_equal(skc_node_destroy(p->srv), SKC_OK);
    skc_free(p->url);
}

/* Sends told OK while the send port refuses the client all arrive, once,
 * after the slot frees; none before. */
static void
test_refused_sends_arrive(void **state)
{
    (void)state;
    pair p;
    pair_start(&p);
    for (int i = 0; i < SENDS; i++) {
        assert_int_equal(skc_node_send(p.cli, "srv", "@count", "x", 1), SKC_OK);
    }
    /* NNG redials the refused send connection meanwhile, many times */
    sleep_ms(scaled(1000));
    assert_int_equal(atomic_load(&arrived), 0);
    assert_true(stat_of(p.cli, "send_backlog") > 0);
    close(p.holder);
    p.holder = -1;
    int64_t until = now_ms() + scaled(10000);
    while (atomic_load(&arrived) < SENDS && now_ms() < until) {
        sleep_ms(10);
    }
    sleep_ms(scaled(300)); /* room for a duplicate to show */
    assert_int_equal(atomic_load(&arrived), SENDS);
    assert_int_equal(stat_of(p.cli, "sends_lost"), 0);
    assert_int_equal(stat_of(p.cli, "send_backlog"), 0);
    pair_stop(&p);
}

/* Sends still waiting for a send connection when the link closes (the
 * peer is set down) are counted in sends_lost. */
static void
test_backlog_dropped_is_counted(void **state)
{
    (void)state;
    pair p;
    pair_start(&p);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(skc_node_send(p.cli, "srv", "@count", "x", 1), SKC_OK);
    }
    assert_int_equal(skc_node_map_set(p.cli, "srv", NULL), SKC_OK);
    int64_t until = now_ms() + scaled(5000);
    while (stat_of(p.cli, "sends_lost") < 5 && now_ms() < until) {
        sleep_ms(10);
    }
    assert_int_equal(stat_of(p.cli, "sends_lost"), 5);
    assert_int_equal(atomic_load(&arrived), 0);
    pair_stop(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_sends_arrive),
        cmocka_unit_test(test_backlog_dropped_is_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
