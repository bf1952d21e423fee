/* sys_etcd.c -- the cluster map kept in etcd (issue #16): a real etcd on
 * loopback and C nodes that find each other with no map file.
 *
 *   sys_etcd SYSNODE
 *
 * etcd runs from a temporary data dir on free client and peer ports and
 * is killed by PID at the end; without an etcd binary the test is skipped
 * (77) with the reason.  Nodes a and b (skc_sysnode) and this driver's
 * client node (which reads the map but announces nothing):
 *  1. the client calls a and b with no map file;
 *  2. a new node c joins: callable within 1 s of its start;
 *  3. a second node named c is refused at start (put-if-absent);
 *  4. group g = {a, b} (failover) set once in etcd: calls go to a;
 *     kill -9 a: the map marks it down within TTL + 1 s, the monitor
 *     says so, and g fails over to b;
 *  5. a malformed value is logged and ignored; the map goes on;
 *  6. etcd killed: calls to b and c keep working; etcd restarted on the
 *     same data: the watch resumes (a new node d is seen), and node f
 *     started while etcd was away is announced now; every lease
 *     revoked behind the nodes' backs: they are down, then announce
 *     themselves again;
 *  7. b stops cleanly: it is down at once (its lease revoked).
 */
#include "sys.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TTL_S 3
#define PREFIX "/skc/t"

static char etcd_bin[512];
static char endpoint[128];
static char peer_url[128];
static char data_dir[512];
static sys_proc etcd_p;
static int etcd_runs;

/* The client's log, to look for lines. */
static pthread_mutex_t log_lk = PTHREAD_MUTEX_INITIALIZER;
static char log_text[65536];

static void
client_log(int level, const char *node, const char *text, void *arg)
{
    (void)node, (void)arg;
    pthread_mutex_lock(&log_lk);
    size_t l = strlen(log_text);
    if (l + 1 < sizeof(log_text)) {
        snprintf(log_text + l, sizeof(log_text) - l, "%d %s\n", level, text);
    }
    pthread_mutex_unlock(&log_lk);
}

static int
log_seen(const char *needle)
{
    pthread_mutex_lock(&log_lk);
    int seen = strstr(log_text, needle) != NULL;
    pthread_mutex_unlock(&log_lk);
    return seen;
}

static int
find_etcd(void)
{
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(
        buf, sizeof(buf), "%s:/usr/bin:/usr/sbin", path != NULL ? path : "");
    for (char *d = strtok(buf, ":"); d != NULL; d = strtok(NULL, ":")) {
        snprintf(etcd_bin, sizeof(etcd_bin), "%s/etcd", d);
        if (access(etcd_bin, X_OK) == 0) {
            return 1;
        }
    }
    return 0;
}

/* tls mode: the files etcd and the nodes use (tls_make) */
static char ca_crt[512], srv_crt[512], srv_key[512], cli_crt[512],
    cli_key[512];
static int tls;

static void
etcd_start(void)
{
    char name[32], cluster[300];
    snprintf(name, sizeof(name), "etcd%d", ++etcd_runs);
    snprintf(cluster, sizeof(cluster), "t=%s", peer_url);
    char *argv[24] = { etcd_bin, "--name", "t", "--data-dir", data_dir,
        "--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
        "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls",
        peer_url, "--initial-cluster", cluster, NULL };
    if (tls) {
        char *more[] = { "--cert-file", srv_crt, "--key-file", srv_key,
            "--client-cert-auth", "--trusted-ca-file", ca_crt, NULL };
        memcpy(&argv[15], more, sizeof(more));
    }
    const char *log = sys_path(name);
    sys_spawn(&etcd_p, "etcd", argv, log, 0);
    CHECK(sys_file_wait(log, "ready to serve client requests", 20000),
        "etcd did not become ready within %d ms (log %s)", sys_ms(20000), log);
}

/* etcdctl put/del; 0 on success. */
static int
etcdctl(const char *verb, const char *key, const char *value)
{
    char ep[160];
    snprintf(ep, sizeof(ep), "--endpoints=%s", endpoint);
    char *argv[] = { "etcdctl", ep, (char *)verb, (char *)key, (char *)value,
        NULL };
    return sys_run(argv, 1);
}

/* Revokes every lease etcd has, behind the nodes' backs (as if each had
 * expired); returns how many. */
static int
revoke_all_leases(void)
{
    char cmd[300], line[128];
    snprintf(cmd, sizeof(cmd), "etcdctl --endpoints=%s lease list", endpoint);
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL, "popen etcdctl");
    char ids[16][128];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL && n < 16) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] != '\0' &&
            strspn(line, "0123456789abcdef") == strlen(line)) {
            snprintf(ids[n++], sizeof(ids[0]), "%s", line);
        }
    }
    pclose(f);
    for (int i = 0; i < n; i++) {
        CHECK(etcdctl("lease", "revoke", ids[i]) == 0, "lease revoke %s",
            ids[i]);
    }
    return n;
}

static void
spawn_node(sys_proc *p, const char *name)
{
    char ttl[8];
    snprintf(ttl, sizeof(ttl), "%d", TTL_S);
    const char *sysnode = getenv("SYS_ETCD_SYSNODE");
    char *argv[24] = { (char *)sysnode, "--name", (char *)name, "--etcd",
        endpoint, "--etcd-prefix", PREFIX, "--etcd-ttl", ttl };
    int i = 9;
    if (tls) {
        char *more[] = { "--etcd-cafile", ca_crt, "--etcd-certfile", cli_crt,
            "--etcd-keyfile", cli_key };
        memcpy(&argv[i], more, sizeof(more));
        i += 6;
    }
    argv[i++] = (char *)name;
    argv[i] = NULL;
    char err[64];
    snprintf(err, sizeof(err), "%s.err", name);
    sys_spawn(p, name, argv, sys_path(err), 1);
}

/* The map's value for name now: 1 an address, 0 down, -1 not in it. */
static int
map_state(skc_node *cli, const char *name)
{
    char *addr = NULL;
    int rc = skc_node_map_get(cli, &addr, name);
    int st = rc != SKC_OK ? -1 : addr != NULL ? 1 : 0;
    skc_free(addr);
    return st;
}

/* Waits up to ms (scaled) for name's map state; returns the time. */
static int64_t
wait_state(skc_node *cli, const char *name, int want, int ms)
{
    int64_t t0 = sys_now_ms();
    while (map_state(cli, name) != want && sys_now_ms() - t0 < sys_ms(ms)) {
        sys_sleep_ms(10);
    }
    CHECK(map_state(cli, name) == want,
        "'%s' is not %s in the map within %d ms", name,
        want == 1       ? "an address"
            : want == 0 ? "down"
                        : "absent",
        sys_ms(ms));
    return sys_now_ms() - t0;
}

static void
expect_whoami(skc_node *cli, const char *peer, const char *want, int ms)
{
    char out[600];
    int rc =
        sys_call(cli, peer, "@whoami", "?", 1, sys_ms(ms), out, sizeof(out));
    CHECK(rc == SKC_OK && strcmp(out, want) == 0,
        "call %s @whoami: %s (%s), expected %s", peer, skc_errname(rc), out,
        want);
}

/* The driver's own node: reads the map from etcd (the files given in tls
 * mode; NULL ones are left out), logs into log_text, announces nothing. */
static skc_node *
client_node(const char *ca, const char *cert, const char *key)
{
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "client";
    o.log = client_log;
    o.log_level = SKC_LOG_INFO;
    o.log_burst = -1;
    o.etcd = endpoint;
    o.etcd_prefix = PREFIX;
    o.etcd_cafile = ca;
    o.etcd_certfile = cert;
    o.etcd_keyfile = key;
    skc_node *cli = NULL;
    int rc = skc_node_create(&cli, &o);
    CHECK(rc == SKC_OK, "create: %s (%s)", skc_errname(rc), skc_last_error());
    return cli;
}

/* A CA, a certificate for etcd (127.0.0.1) and one for the nodes. */
static void
tls_make(void)
{
    char cmd[4096];
    const char *d = sys_tmpdir();
    snprintf(ca_crt, sizeof(ca_crt), "%s/ca.crt", d);
    snprintf(srv_crt, sizeof(srv_crt), "%s/srv.crt", d);
    snprintf(srv_key, sizeof(srv_key), "%s/srv.key", d);
    snprintf(cli_crt, sizeof(cli_crt), "%s/cli.crt", d);
    snprintf(cli_key, sizeof(cli_key), "%s/cli.key", d);
    snprintf(cmd, sizeof(cmd),
        "cd %s && exec >openssl.log 2>&1 && "
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=skc-ca "
        "-keyout ca.key -out ca.crt && "
        "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,"
        "clientAuth\\n' >ext && "
        "for n in srv cli; do "
        "openssl req -newkey rsa:2048 -nodes -subj /CN=$n -keyout $n.key "
        "-out $n.csr && "
        "openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key "
        "-CAcreateserial -days 2 -extfile ext -out $n.crt || exit 1; done",
        d);
    CHECK(system(cmd) == 0, "openssl could not make the certificates (%s)",
        sys_path("openssl.log"));
}

/* tls mode: etcd over https with client certificates; nodes with the
 * files find each other, a node without its certificate (or without the
 * CA) cannot read the map and says why. */
static int
main_tls(void)
{
    static sys_proc s1;
    char line[600];
    tls_make();
    etcd_start();
    sys_log("etcd ready on %s (client certificates required)", endpoint);
    spawn_node(&s1, "s1");
    sys_expect(&s1, "LISTENING ", line, sizeof(line), 15000);

    skc_node *cli = client_node(ca_crt, cli_crt, cli_key);
    expect_whoami(cli, "s1", "s1", 5000);
    CHECK(skc_node_destroy(cli) == SKC_OK, "destroy");
    sys_log(
        "https: a node with the CA and a client certificate reads the map");

    /* no client certificate: etcd refuses; no CA: etcd is not trusted */
    for (int k = 0; k < 2; k++) {
        pthread_mutex_lock(&log_lk);
        log_text[0] = '\0';
        pthread_mutex_unlock(&log_lk);
        cli = k == 0 ? client_node(ca_crt, NULL, NULL)
                     : client_node(NULL, cli_crt, cli_key);
        CHECK(log_seen("etcd: cannot read " PREFIX),
            "no log line says the map could not be read:\n%s", log_text);
        CHECK(map_state(cli, "s1") == -1, "s1 is in the map");
        CHECK(skc_node_destroy(cli) == SKC_OK, "destroy");
        sys_log("https: without %s the map is not read, and the log says so",
            k == 0 ? "a client certificate" : "the CA");
    }
    sys_stop_clean(&s1, 10000);
    sys_kill9(&etcd_p);
    sys_settle();
    sys_log("PASS");
    return 0;
}

int
main(int argc, char **argv)
{
    sys_init("etcd", 150);
    CHECK(argc >= 2, "usage: sys_etcd SYSNODE [tls]");
    if (!find_etcd()) {
        printf("SKIP: no etcd binary in PATH (Debian package etcd-server)\n");
        return SYS_SKIP;
    }
    setenv("SYS_ETCD_SYSNODE", argv[1], 1);
    tls = argc > 2 && strcmp(argv[2], "tls") == 0;
    snprintf(endpoint, sizeof(endpoint), "%s://127.0.0.1:%d",
        tls ? "https" : "http", sys_free_port());
    snprintf(
        peer_url, sizeof(peer_url), "http://127.0.0.1:%d", sys_free_port());
    snprintf(data_dir, sizeof(data_dir), "%s", sys_path("etcd.data"));
    if (tls) {
        return main_tls();
    }
    etcd_start();
    sys_log("etcd ready on %s", endpoint);

    static sys_proc a, b, c, c2, d, f;
    char line[600];
    spawn_node(&a, "a");
    spawn_node(&b, "b");
    sys_expect(&a, "LISTENING ", line, sizeof(line), 15000);
    sys_expect(&b, "LISTENING ", line, sizeof(line), 15000);

    skc_node *cli = client_node(NULL, NULL, NULL);
    sys_monitor_start(cli);

    /* 1. no map file: the map is etcd's */
    expect_whoami(cli, "a", "a", 5000);
    expect_whoami(cli, "b", "b", 5000);
    sys_log("1. a and b found through etcd");

    /* 2. a new node is callable within 1 s of its start */
    spawn_node(&c, "c");
    sys_expect(&c, "LISTENING ", line, sizeof(line), 15000);
    int64_t t0 = sys_now_ms();
    expect_whoami(cli, "c", "c", 1000);
    sys_log(
        "2. c joined; callable after %lld ms", (long long)(sys_now_ms() - t0));

    /* 3. a second c is refused */
    spawn_node(&c2, "c");
    int st = sys_wait(&c2, sys_ms(10000));
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1,
        "a second node named c was not refused (status %d)", st);
    CHECK(sys_file_count(sys_path("c.err"), "already announced") >= 1,
        "the refusal does not say the name is announced");
    expect_whoami(cli, "c", "c", 1000);
    sys_log("3. a second node named c was refused");

    /* 4. a group set once in etcd; kill -9 a */
    CHECK(etcdctl("put", PREFIX "/groups/g",
              "{\"members\":[\"a\",\"b\"],\"policy\":\"failover\"}") == 0,
        "etcdctl put group");
    expect_whoami(cli, "g", "a", 2000);
    sys_kill9(&a);
    t0 = sys_now_ms();
    int64_t took = wait_state(cli, "a", 0, (TTL_S + 1) * 1000);
    sys_log("4. a killed: down in the map after %lld ms", (long long)took);
    sys_monitor_wait("a down", 1000);
    expect_whoami(cli, "g", "b", 2000);
    sys_log("4. group g fails over to b");

    /* 5. malformed values */
    CHECK(etcdctl("put", PREFIX "/nodes/bad", "not json {") == 0, "put");
    CHECK(etcdctl("put", PREFIX "/nodes/bad2", "{\"addr\": 5}") == 0, "put");
    CHECK(etcdctl("put", PREFIX "/groups/bad3", "{\"members\": []}") == 0,
        "put");
    CHECK(etcdctl("put", PREFIX "/nodes/e", "{\"addr\":\"127.0.0.1:1\"}") == 0,
        "put");
    wait_state(cli, "e", 1, 2000);
    CHECK(log_seen("malformed value at " PREFIX "/nodes/bad ignored"),
        "no log line for the malformed value:\n%s", log_text);
    CHECK(log_seen("malformed value at " PREFIX "/nodes/bad2 ignored"),
        "no log line for bad2");
    CHECK(log_seen("malformed value at " PREFIX "/groups/bad3 ignored"),
        "no log line for bad3");
    CHECK(map_state(cli, "bad") == -1 && map_state(cli, "bad2") == -1,
        "a malformed value made an entry");
    expect_whoami(cli, "c", "c", 1000);
    sys_log("5. malformed values logged and ignored");

    /* 6. etcd away: calls go on; back: the watch resumes */
    sys_kill9(&etcd_p);
    int64_t until = sys_now_ms() + 1500;
    int ncalls = 0;
    while (sys_now_ms() < until) {
        expect_whoami(cli, "b", "b", 1000);
        expect_whoami(cli, "c", "c", 1000);
        ncalls += 2;
        sys_sleep_ms(50);
    }
    CHECK(map_state(cli, "b") == 1 && map_state(cli, "c") == 1,
        "etcd being away changed the map");
    sys_log("6. etcd killed: %d calls answered meanwhile", ncalls);
    /* a node that starts while etcd is away serves, and is announced
     * once etcd is back */
    spawn_node(&f, "f");
    sys_expect(&f, "LISTENING ", line, sizeof(line), 15000);
    etcd_start();
    spawn_node(&d, "d");
    sys_expect(&d, "LISTENING ", line, sizeof(line), 15000);
    wait_state(cli, "d", 1, 5000);
    expect_whoami(cli, "d", "d", 1000);
    expect_whoami(cli, "c", "c", 1000);
    CHECK(log_seen("answers again"), "no log line for etcd's return");
    sys_log("6. etcd restarted: the watch resumed (d seen)");
    wait_state(cli, "f", 1, 5000);
    expect_whoami(cli, "f", "f", 1000);
    sys_log("6. f, started while etcd was away, announced once it was back");

    /* 6b. the nodes' leases vanish (expired while a node was cut off
     * from etcd, say): they are down, then announce themselves again at
     * their next keepalive */
    int nl = revoke_all_leases();
    CHECK(nl >= 4, "etcd had %d leases, not those of b, c, d and f", nl);
    t0 = sys_now_ms();
    while (!log_seen("cluster map: c = false") &&
        sys_now_ms() - t0 < sys_ms(2000)) {
        sys_sleep_ms(10);
    }
    CHECK(log_seen("cluster map: c = false"),
        "c's revoked lease did not mark it down:\n%s", log_text);
    wait_state(cli, "c", 1, TTL_S * 1000 + 2000);
    wait_state(cli, "d", 1, TTL_S * 1000 + 2000);
    expect_whoami(cli, "c", "c", 1000);
    sys_log("6b. leases revoked: c and d down, then announced again");

    /* 7. a clean stop is seen at once */
    sys_stop_clean(&b, 10000);
    took = wait_state(cli, "b", 0, 1000);
    sys_log("7. b stopped cleanly: down after %lld ms", (long long)took);
    sys_monitor_wait("b down", 1000);

    CHECK(skc_node_destroy(cli) == SKC_OK, "destroy");
    sys_stop_clean(&c, 10000);
    sys_stop_clean(&d, 10000);
    sys_stop_clean(&f, 10000);
    sys_kill9(&etcd_p);
    sys_settle();
    sys_log("PASS");
    return 0;
}
