/* test_ports.c -- the ports a node listens on: its call port and the call
 * port + 1 for sends, nothing else; a free pair for port 0; the send_port
 * option; a map that gives port + 1 to another node (the seed's gate =
 * 7101, db = 7102); port + 1 in use (a free port instead) and an
 * explicit send port in use (SKC_EEXIST, nothing left open).
 * Listening sockets are read from /proc/self/net/tcp, matched to this
 * process's descriptors.  Uses only skc.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "skc/skc.h"

/* The TCP ports this process listens on (sorted, at most max). */
static int
listening_ports(int *ports, int max)
{
    unsigned long inodes[512];
    int ni = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && ni < 512) {
        char path[300], link[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t l = readlink(path, link, sizeof(link) - 1);
        if (l > 0) {
            link[l] = '\0';
            if (sscanf(link, "socket:[%lu]", &inodes[ni]) == 1) {
                ni++;
            }
        }
    }
    closedir(d);
    FILE *f = fopen("/proc/self/net/tcp", "r");
    assert_non_null(f);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned port, st;
        unsigned long inode;
        if (sscanf(line,
                " %*d: %*x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*d %*d %lu",
                &port, &st, &inode) != 3 ||
            st != 0x0A) {
            continue;
        }
        for (int i = 0; i < ni; i++) {
            if (inodes[i] == inode && n < max) {
                ports[n++] = (int)port;
            }
        }
    }
    fclose(f);
    for (int i = 1; i < n; i++) { /* insertion sort */
        for (int k = i; k > 0 && ports[k] < ports[k - 1]; k--) {
            int t = ports[k];
            ports[k] = ports[k - 1];
            ports[k - 1] = t;
        }
    }
    return n;
}

/* A socket bound to 127.0.0.1:port (0: any), listening; its port. */
static int
hold_port(int port, int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(*fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET,
        .sin_port = htons((uint16_t)port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(*fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(*fd, 1) != 0) {
        close(*fd);
        *fd = -1;
        return -1;
    }
    socklen_t l = sizeof(a);
    getsockname(*fd, (struct sockaddr *)&a, &l);
    return ntohs(a.sin_port);
}

/* A port P with P and P + 1 free a moment ago. */
static int
free_pair(void)
{
    for (int tries = 0; tries < 100; tries++) {
        int fd, fd2;
        int p = hold_port(0, &fd);
        if (p <= 0 || p >= 65535) {
            if (fd >= 0) {
                close(fd);
            }
            continue;
        }
        int q = hold_port(p + 1, &fd2);
        close(fd);
        if (q == p + 1) {
            close(fd2);
            return p;
        }
    }
    fail_msg("no free pair of ports");
    return -1;
}

static skc_node *
node_with(int32_t send_port)
{
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "n";
    o.send_port = send_port;
    skc_node *n;
    assert_int_equal(skc_node_create(&n, &o), SKC_OK);
    return n;
}

static int
open_at(skc_node *n, int port)
{
    char where[64];
    snprintf(where, sizeof(where), "127.0.0.1:%d", port);
    return skc_node_open(n, NULL, where);
}

static void
test_call_port_plus_one(void **state)
{
    (void)state;
    int before[16];
    int nb = listening_ports(before, 16);
    assert_int_equal(nb, 0);
    int p = -1;
    skc_node *n = NULL;
    int ports[16];
    /* p + 1 is in the ephemeral range: another process may take it
     * between free_pair and the open (then the node rightly picks a free
     * port instead, with a WARN).  That is retried, bounded; a port the
     * node did not take although it was free fails the test. */
    for (int tries = 0; tries < 10; tries++) {
        p = free_pair();
        n = node_with(0);
        if (open_at(n, p) != SKC_OK) {
            fail_msg("open %d: %s", p, skc_last_error());
        }
        assert_int_equal(listening_ports(ports, 16), 2);
        if (ports[0] == p && ports[1] == p + 1) {
            break;
        }
        int fd;
        int taken = hold_port(p + 1, &fd) != p + 1;
        if (fd >= 0) {
            close(fd);
        }
        if (!taken) {
            fail_msg("call port %d: listening on %d and %d, although %d is free",
                p, ports[0], ports[1], p + 1);
        }
        assert_int_equal(skc_node_destroy(n), SKC_OK);
        n = NULL;
    }
    assert_non_null(n);
    assert_int_equal(ports[0], p);
    assert_int_equal(ports[1], p + 1);
    /* a second listener adds its own port only */
    assert_int_equal(skc_node_open(n, NULL, "127.0.0.1:0"), SKC_OK);
    assert_int_equal(listening_ports(ports, 16), 3);
    assert_int_equal(skc_node_destroy(n), SKC_OK);
    assert_int_equal(listening_ports(ports, 16), 0);
}

static void
test_port_zero_and_option(void **state)
{
    (void)state;
    skc_node *n = node_with(0);
    char *url;
    assert_int_equal(skc_node_open(n, &url, "127.0.0.1:0"), SKC_OK);
    int ports[16];
    assert_int_equal(listening_ports(ports, 16), 2);
    const char *c = strrchr(url, ':');
    int p = atoi(c + 1);
    assert_true(ports[0] == p || ports[1] == p);
    skc_free(url);
    assert_int_equal(skc_node_destroy(n), SKC_OK);

    int q = free_pair(); /* q + 1 is free: use it as the send port */
    int pc = free_pair();
    n = node_with(q + 1);
    assert_int_equal(open_at(n, pc), SKC_OK);
    assert_int_equal(listening_ports(ports, 16), 2);
    assert_true((ports[0] == pc && ports[1] == q + 1) ||
        (ports[1] == pc && ports[0] == q + 1));
    assert_int_equal(skc_node_destroy(n), SKC_OK);

    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.send_port = 70000;
    assert_int_equal(skc_node_create(&n, &o), SKC_EINVAL);
    o.send_port = -2;
    assert_int_equal(skc_node_create(&n, &o), SKC_EINVAL);
}

static void
test_map_gives_next_port_away(void **state)
{
    (void)state;
    int p = free_pair();
    char map[256];
    snprintf(map, sizeof(map), "gate = '127.0.0.1:%d'\ndb = '127.0.0.1:%d'\n",
        p, p + 1);
    skc_node *gate = node_with(0), *db = node_with(0);
    assert_int_equal(skc_node_map_parse(gate, map, NULL), SKC_OK);
    assert_int_equal(skc_node_map_parse(db, map, NULL), SKC_OK);
    /* gate first: it must leave db's port alone */
    if (skc_node_open(gate, NULL, "gate") != SKC_OK) {
        fail_msg("gate: %s", skc_last_error());
    }
    if (skc_node_open(db, NULL, "db") != SKC_OK) {
        fail_msg("db: %s", skc_last_error());
    }
    int ports[16];
    int n = listening_ports(ports, 16);
    assert_int_equal(n, 4);
    int has_p = 0, has_p1 = 0;
    for (int i = 0; i < n; i++) {
        has_p += ports[i] == p;
        has_p1 += ports[i] == p + 1;
    }
    assert_int_equal(has_p, 1);
    assert_int_equal(has_p1, 1);
    assert_int_equal(skc_node_destroy(gate), SKC_OK);
    assert_int_equal(skc_node_destroy(db), SKC_OK);
}

static void
test_send_port_in_use(void **state)
{
    (void)state;
    int p = free_pair();
    int fd;
    assert_int_equal(hold_port(p + 1, &fd), p + 1);
    /* by default: a free port instead, with a WARN line */
    skc_node *n = node_with(0);
    if (open_at(n, p) != SKC_OK) {
        fail_msg("open %d with %d taken: %s", p, p + 1, skc_last_error());
    }
    int ports[16];
    assert_int_equal(listening_ports(ports, 16), 3); /* ours + the node's */
    int has_p = 0;
    for (int i = 0; i < 3; i++) {
        has_p += ports[i] == p;
    }
    assert_int_equal(has_p, 1);
    assert_int_equal(skc_node_destroy(n), SKC_OK);
    /* asked for explicitly: SKC_EEXIST, and nothing is left open */
    n = node_with(p + 1);
    assert_int_equal(open_at(n, p), SKC_EEXIST);
    assert_non_null(strstr(skc_last_error(), "send_port"));
    assert_int_equal(listening_ports(ports, 16), 1);
    assert_int_equal(ports[0], p + 1);
    close(fd);
    assert_int_equal(open_at(n, p), SKC_OK);
    assert_int_equal(listening_ports(ports, 16), 2);
    assert_int_equal(skc_node_destroy(n), SKC_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_port_plus_one),
        cmocka_unit_test(test_port_zero_and_option),
        cmocka_unit_test(test_map_gives_next_port_away),
        cmocka_unit_test(test_send_port_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
