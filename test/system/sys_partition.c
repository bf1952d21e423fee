/* sys_partition.c -- a network partition between two hosts, made with two
 * network namespaces joined by a veth pair (needs root; CI runs as root).
 *
 *   sys_partition SYSNODE
 *
 * Namespace A holds this driver's client node, namespace B a server node;
 * the veth pair carries 10.199.N.1/30 <-> 10.199.N.2/30, addresses that
 * exist only inside the two namespaces, so no packet can leave the
 * machine.  Two partitions are made in turn:
 *   1. nftables in A drops everything to and from B (link stays up);
 *   2. the veth end in A is set down.
 * During each, heartbeats declare the peer down within heartbeat_ms *
 * heartbeat_misses (3 s) of its last answer, and the monitor says so with
 * the reason; calls fail by their deadline (SKC_ETIMEDOUT, SKC_ECONNLOST
 * when the heartbeat verdict ends them, SKC_EUNREACHABLE while redialling)
 * with the node named in the detail; after healing, calls succeed again
 * with no action by the caller, and the monitor reports the peer up.  A
 * group g = { "far", "backup" } (backup runs in A) fails over to backup
 * once far is declared down, and returns to far after healing.  If namespaces cannot be made (not root, no veth),
 * the test prints "SKIPPED: ..." and exits 77, which ctest shows as
 * skipped -- never as passed.  The namespaces are deleted on every exit
 * path (and stale ones from killed runs are removed at start).
 */
#include "sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char ns_a[32], ns_b[32], veth_a[16], veth_b[16];
static char ip_a[32], ip_b[32];
static int made_a, made_b;

static void
ns_cleanup(void *arg)
{
    (void)arg;
    /* async-signal-safe enough: fork/exec/waitpid */
    if (made_a) {
        char *v[] = { "ip", "netns", "del", ns_a, NULL };
        sys_run(v, 1);
    }
    if (made_b) {
        char *v[] = { "ip", "netns", "del", ns_b, NULL };
        sys_run(v, 1);
    }
}

/* Namespaces of earlier runs that were killed with SIGKILL. */
static void
remove_stale(void)
{
    DIR *d = opendir("/var/run/netns");
    struct dirent *e;
    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        int pid;
        char side;
        if (sscanf(e->d_name, "skcpart%c%d", &side, &pid) == 2 &&
            kill(pid, 0) != 0 && errno == ESRCH) {
            char *v[] = { "ip", "netns", "del", e->d_name, NULL };
            sys_run(v, 1);
        }
    }
    closedir(d);
}

/* Runs a command; returns its exit code; its stderr to *errtext. */
static int
run(char *errtext, size_t size, char *const argv[])
{
    const char *ef = sys_path("cmd.err");
    char cmd[1024] = "";
    for (int i = 0; argv[i]; i++) {
        strncat(cmd, argv[i], sizeof(cmd) - strlen(cmd) - 2);
        strncat(cmd, " ", sizeof(cmd) - strlen(cmd) - 1);
    }
    static sys_proc p;
    sys_spawn(&p, "cmd", argv, ef, 0);
    int st = sys_wait(&p, 20000);
    close(p.out_fd);
    int rc = st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (errtext != NULL) {
        char *t = sys_read_file(ef);
        snprintf(errtext, size, "%s-> %s", cmd, t ? t : "");
        free(t);
        size_t n = strlen(errtext);
        while (n > 0 && errtext[n - 1] == '\n') {
            errtext[--n] = '\0';
        }
    }
    unlink(ef);
    return rc;
}

static void
skip(const char *why)
{
    printf("SKIPPED: cannot create network namespaces: %s\n", why);
    fflush(stdout);
    exit(SYS_SKIP);
}

static void
must(char *const argv[])
{
    char err[1024];
    int rc = run(err, sizeof(err), argv);
    CHECK(rc == 0, "command failed (%d): %s", rc, err);
}

/* Calls until one succeeds; returns ms until then. */
static int64_t
recover(skc_node *cli, int bound_ms)
{
    int64_t t0 = sys_now_ms();
    char out[600];
    int rc;
    do {
        rc = sys_call(cli, "far", "@echo", "back", 4, 2000, out, sizeof(out));
    } while (rc != SKC_OK && sys_now_ms() - t0 < bound_ms);
    CHECK(rc == SKC_OK, "no call succeeded within %d ms of healing: %s (%s)",
        bound_ms, skc_errname(rc), out);
    int64_t dt = sys_now_ms() - t0;
    for (int i = 0; i < 20; i++) {
        rc = sys_call(cli, "far", "@echo", "ok", 2, 2000, out, sizeof(out));
        CHECK(rc == SKC_OK && strcmp(out, "ok") == 0, "call %d after "
            "healing: %s (%s)", i, skc_errname(rc), out);
    }
    return dt;
}

/* Polls @sink until it counted `want` sends or the time is up. */
static long
sink_wait(skc_node *cli, long want, int ms)
{
    int64_t until = sys_now_ms() + ms;
    long n = -1;
    do {
        char out[600];
        int rc = sys_call(cli, "far", "@sink", "?", 1, 2000, out,
            sizeof(out));
        CHECK(rc == SKC_OK, "@sink: %s (%s)", skc_errname(rc), out);
        n = strtol(out + 6, NULL, 10);
        if (n >= want) {
            break;
        }
        sys_sleep_ms(50);
    } while (sys_now_ms() < until);
    return n;
}

/* Calls group g until @whoami answers `want` (bounded). */
static void
group_answers(skc_node *cli, const char *want, int ms, const char *how)
{
    int64_t until = sys_now_ms() + sys_ms(ms);
    char out[600] = "";
    int rc;
    do {
        rc = sys_call(cli, "g", "@whoami", "?", 1, 1000, out, sizeof(out));
        if (rc == SKC_OK && strcmp(out, want) == 0) {
            return;
        }
        sys_sleep_ms(50);
    } while (sys_now_ms() < until);
    CHECK(0, "%s: group g not answered by %s within %d ms: %s (%s)", how,
        want, sys_ms(ms), skc_errname(rc), out);
}

static void
expect_partitioned(skc_node *cli, const char *how)
{
    /* Heartbeats: down within 3 s of the last answer (a call just made),
     * plus one heartbeat tick and the machine's lateness. */
    int64_t t0 = sys_now_ms(), bound = 3000 + 300 + sys_ms(SYS_LATE_MS);
    int st = SKC_PEER_UP;
    char *detail = NULL;
    while (sys_now_ms() - t0 < bound + 2000) {
        skc_free(detail);
        CHECK(skc_node_peer_state(cli, "far", &st, &detail) == SKC_OK,
            "peer_state: %s", skc_last_error());
        if (st == SKC_PEER_DOWN) {
            break;
        }
        sys_sleep_ms(20);
    }
    int64_t dt = sys_now_ms() - t0;
    CHECK(st == SKC_PEER_DOWN && strstr(detail, "heartbeat timeout"),
        "%s: not declared down after %lld ms: %s", how, (long long)dt,
        detail);
    CHECK(dt <= bound, "%s: declared down after %lld ms (bound %lld)", how,
        (long long)dt, (long long)bound);
    sys_log("%s: peer state %s after %lld ms", how, detail, (long long)dt);
    skc_free(detail);
    sys_monitor_wait("far down heartbeat timeout", 2000);
    sys_monitor_clear();
    group_answers(cli, "backup", 1000, how); /* at once: far is down */
    char out[600];
    for (int i = 0; i < 3; i++) {
        t0 = sys_now_ms();
        int rc = sys_call(cli, "far", "@echo", "x", 1, 1000, out,
            sizeof(out));
        dt = sys_now_ms() - t0;
        CHECK(rc == SKC_ETIMEDOUT || rc == SKC_EUNREACHABLE,
            "%s: call %d: %s after %lld ms (%s)", how, i, skc_errname(rc),
            (long long)dt, out);
        CHECK(strstr(out, "'far'") != NULL,
            "%s: the detail does not name the node: %s", how, out);
        CHECK(dt <= 1000 + sys_ms(SYS_LATE_MS),
            "%s: ended after %lld ms (deadline 1000)", how, (long long)dt);
        if (i == 0) {
            sys_log("%s: %s after %lld ms: %s", how, skc_errname(rc),
                (long long)dt, out);
        }
    }
    CHECK(skc_node_send(cli, "far", "@sink", "p", 1) == SKC_OK,
        "send during the partition");
}

int
main(int argc, char **argv)
{
    sys_init("partition", 150);
    CHECK(argc >= 2, "usage: sys_partition SYSNODE");
    int id = (int)getpid();
    snprintf(ns_a, sizeof(ns_a), "skcpartA%d", id);
    snprintf(ns_b, sizeof(ns_b), "skcpartB%d", id);
    snprintf(veth_a, sizeof(veth_a), "skpa%d", id % 100000);
    snprintf(veth_b, sizeof(veth_b), "skpb%d", id % 100000);
    snprintf(ip_a, sizeof(ip_a), "10.199.%d.1", id % 250);
    snprintf(ip_b, sizeof(ip_b), "10.199.%d.2", id % 250);
    sys_atexit(ns_cleanup, NULL);
    remove_stale();

    char err[1024];
    {
        char *v[] = { "ip", "netns", "add", ns_a, NULL };
        if (run(err, sizeof(err), v) != 0) {
            skip(err);
        }
        made_a = 1;
    }
    {
        char *v[] = { "ip", "netns", "add", ns_b, NULL };
        if (run(err, sizeof(err), v) != 0) {
            skip(err);
        }
        made_b = 1;
    }
    {
        char *v[] = { "ip", "-n", ns_a, "link", "add", veth_a, "type",
            "veth", "peer", "name", veth_b, "netns", ns_b, NULL };
        if (run(err, sizeof(err), v) != 0) {
            skip(err);
        }
    }
    char cidr_a[40], cidr_b[40];
    snprintf(cidr_a, sizeof(cidr_a), "%s/30", ip_a);
    snprintf(cidr_b, sizeof(cidr_b), "%s/30", ip_b);
    {
        char *v1[] = { "ip", "-n", ns_a, "addr", "add", cidr_a, "dev",
            veth_a, NULL };
        char *v2[] = { "ip", "-n", ns_b, "addr", "add", cidr_b, "dev",
            veth_b, NULL };
        char *v3[] = { "ip", "-n", ns_a, "link", "set", veth_a, "up", NULL };
        char *v4[] = { "ip", "-n", ns_b, "link", "set", veth_b, "up", NULL };
        char *v5[] = { "ip", "-n", ns_a, "link", "set", "lo", "up", NULL };
        char *v6[] = { "ip", "-n", ns_b, "link", "set", "lo", "up", NULL };
        must(v1);
        must(v2);
        must(v3);
        must(v4);
        must(v5);
        must(v6);
    }
    sys_log("namespaces %s (%s) and %s (%s) joined by %s/%s", ns_a, ip_a,
        ns_b, ip_b, veth_a, veth_b);

    /* the server in B */
    static sys_proc srv;
    char where[64], url[512];
    snprintf(where, sizeof(where), "%s:0", ip_b);
    char *sargv[] = { "ip", "netns", "exec", ns_b, argv[1], "--name", "far",
        where, NULL };
    sys_spawn(&srv, "far", sargv, sys_path("far.log"), 1);
    sys_expect(&srv, "LISTENING", url, sizeof(url), sys_ms(10000));
    /* the group's second member, on A's side of the partition */
    static sys_proc bak;
    char burl[512];
    char *bargv[] = { "ip", "netns", "exec", ns_a, argv[1], "--name",
        "backup", "127.0.0.1:0", NULL };
    sys_spawn(&bak, "backup", bargv, sys_path("backup.log"), 1);
    sys_expect(&bak, "LISTENING", burl, sizeof(burl), sys_ms(10000));

    /* this driver moves into A before any skc/NNG thread exists, so every
     * thread the client node starts lives in A */
    char nspath[128];
    snprintf(nspath, sizeof(nspath), "/var/run/netns/%s", ns_a);
    int fd = open(nspath, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0 && setns(fd, CLONE_NEWNET) == 0, "setns %s: %s", nspath,
        strerror(errno));
    close(fd);

    skc_node *cli = sys_client("near", 0);
    sys_monitor_start(cli);
    char map[1200];
    snprintf(map, sizeof(map), "far = '%s'\nbackup = '%s'\n"
        "g = { 'far', 'backup' }\n", url, burl);
    CHECK(skc_node_map_parse(cli, map, "partition") == SKC_OK, "map: %s",
        skc_last_error());
    char out[600];
    int rc = sys_call(cli, "far", "@echo", "hello", 5, sys_ms(5000), out,
        sizeof(out));
    CHECK(rc == SKC_OK && strcmp(out, "hello") == 0, "across the veth: %s "
        "(%s)", skc_errname(rc), out);
    sys_log("connected to %s from %s", url, ns_a);
    group_answers(cli, "far", 5000, "before the partition");
    CHECK(skc_node_send(cli, "far", "@sink", "s", 1) == SKC_OK, "send");
    CHECK(sink_wait(cli, 1, sys_ms(3000)) == 1, "a send before the "
        "partition did not arrive");

    /* 1. nftables drop, link up */
    const char *rules = sys_path("partition.nft");
    char text[1024];
    snprintf(text, sizeof(text),
        "table inet skcpart {\n"
        "  chain out { type filter hook output priority 0; policy accept;\n"
        "    ip daddr %s drop; }\n"
        "  chain in { type filter hook input priority 0; policy accept;\n"
        "    ip saddr %s drop; }\n"
        "}\n", ip_b, ip_b);
    sys_write_file(rules, text);
    char *nft_add[] = { "ip", "netns", "exec", ns_a, "nft", "-f",
        (char *)rules, NULL };
    int64_t rec1 = -1;
    if (run(err, sizeof(err), nft_add) == 0) {
        expect_partitioned(cli, "nftables drop");
        char *nft_del[] = { "ip", "netns", "exec", ns_a, "nft", "delete",
            "table", "inet", "skcpart", NULL };
        must(nft_del);
        rec1 = recover(cli, sys_ms(30000));
        sys_monitor_wait("far up connected", 2000);
        group_answers(cli, "far", 3000, "nftables healed");
        sys_log("nftables partition healed: calls succeed again after %lld "
            "ms", (long long)rec1);
    } else {
        sys_log("NOTE: nftables not usable here (%s); only the link-down "
            "partition is tested", err);
    }

    /* 2. link down */
    char *down[] = { "ip", "-n", ns_a, "link", "set", veth_a, "down", NULL };
    char *up[] = { "ip", "-n", ns_a, "link", "set", veth_a, "up", NULL };
    must(down);
    expect_partitioned(cli, "link down");
    must(up);
    int64_t rec2 = recover(cli, sys_ms(30000));
    sys_monitor_wait("far up connected", 2000);
    group_answers(cli, "far", 3000, "link healed");
    sys_log("link-down partition healed: calls succeed again after %lld ms",
        (long long)rec2);

    /* sends made during the partitions may arrive late or be lost (no
     * acknowledgement, like skynet's cluster.send) */
    int parted = rec1 >= 0 ? 2 : 1;
    long got = sink_wait(cli, 1 + parted, sys_ms(3000)) - 1;
    sys_log("FIGURE partition timeout_ms=1000 recover_nft_ms=%lld "
        "recover_linkdown_ms=%lld sends_during_partitions_delivered=%ld/%d",
        (long long)rec1, (long long)rec2, got, parted);
    CHECK(skc_node_destroy(cli) == SKC_OK, "destroy");
    sys_stop_clean(&srv, sys_ms(10000));
    sys_stop_clean(&bak, sys_ms(10000));
    sys_log("PASS");
    return 0;
}
