/* cli.c -- `skc ping|call|send|query|map`: poke at a cluster from a shell.
 *
 * Each verb makes one client node (named "skc-cli-<pid>", never
 * listening), loads the cluster map, does its one request with the
 * public API only, prints the outcome and exits with a code that says
 * who failed (cli.h): 0, 1 the remote side answered with an error, 2
 * usage, 3 the request got no answer.  Options come between the verb and
 * its first argument, so arguments may start with '-' (`-5` is a JSON
 * number).  docs/OPERATIONS.md, "The command line", is the manual. */
#include "cli.h"
#include "json.h"

#include "skc/skc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLI_DEFAULT_TIMEOUT_MS 5000
#define CLI_DEFAULT_MAP "./clustermap.lua"
#define CLI_MAP_ENV "SKC_MAP"
/* After a send: how long the node stays up once its send backlog is
 * empty, so that the message's bytes leave the process.  skc_node_send
 * has no completion and skc_node_destroy drops what is still queued
 * (docs/OPERATIONS.md); a new send connection gets sends only once it has
 * lived 100 ms (docs/RELIABILITY.md, B9), so the backlog is waited for
 * first (send_wait_backlog). */
#define CLI_SEND_LINGER_MS 100
#define CLI_SEND_POLL_MS 10

typedef struct cli_opts {
    const char *map;    /* -m; NULL = $SKC_MAP, then ./clustermap.lua */
    const char *etcd;   /* -e; or a map given as etcd://host:port/prefix */
    int32_t timeout_ms; /* -t */
    int raw;            /* --raw */
    int verbose;        /* -v */
    int prometheus;     /* --prometheus */
    /* --cookie-file (default $SKC_COOKIE_FILE), --tls-cert, --tls-key,
     * --tls-ca, --tls-server-name (docs/SECURITY.md) */
    const char *sec[5];
} cli_opts;

/* The security options, in cli_opts.sec's order. */
static const char *const sec_opts[5] = { "--cookie-file", "--tls-cert",
    "--tls-key", "--tls-ca", "--tls-server-name" };

typedef struct cli_verb {
    const char *name;
    const char *args; /* positional arguments, for usage */
    int min_args;
    int max_args; /* -1: any number */
    int raw_ok;
    const char *help;
    int (*run)(const cli_opts *o, int argc, char **argv);
} cli_verb;

static int verb_ping(const cli_opts *o, int argc, char **argv);
static int verb_call(const cli_opts *o, int argc, char **argv);
static int verb_send(const cli_opts *o, int argc, char **argv);
static int verb_query(const cli_opts *o, int argc, char **argv);
static int verb_stats(const cli_opts *o, int argc, char **argv);
static int verb_map(const cli_opts *o, int argc, char **argv);

static const cli_verb verbs[] = {
    { "ping", "NODE", 1, 1, 0,
        "Connects to NODE (a map name, a group, or an address such as\n"
        "127.0.0.1:7102) and prints its name, address, the time the\n"
        "connection took and the round-trip time of a ping on it.\n",
        verb_ping },
    { "call", "NODE TARGET [ARG...]", 2, -1, 1,
        "Calls TARGET (@name, .name or :handle) on NODE with the ARGs and\n"
        "prints each value of the reply on a line of its own, as JSON.\n"
        "An ARG that is a JSON value (5, \"5\", [1,2], {\"a\":1}, true, "
        "null,\n"
        "1.5) is sent as that value, any other ARG as a string.\n",
        verb_call },
    { "send", "NODE TARGET [ARG...]", 2, -1, 0,
        "Sends a one-way message to TARGET on NODE (arguments as for call).\n"
        "Checks first that NODE answers; there is no reply.\n",
        verb_send },
    { "query", "NODE NAME", 2, 2, 0,
        "Prints the handle of the service registered as NAME (@name,\n"
        ".name or a bare name = @name) on NODE, as a target (:0000000a).\n",
        verb_query },
    { "stats", "NODE [--prometheus]", 1, 1, 0,
        "Prints NODE's statistics as one JSON object (counters, gauges,\n"
        "mailboxes and peers: docs/OPERATIONS.md, \"Statistics\"), or with\n"
        "--prometheus in the Prometheus text format, each sample labelled\n"
        "node=\"NAME\".\n",
        verb_stats },
    { "map", "", 0, 0, 0,
        "Prints the cluster map as a node loads it: a first line\n"
        "\"-- source: file PATH\" or \"-- source: etcd ENDPOINT prefix "
        "PREFIX\",\n"
        "then every entry with its address as a URL, false for a node\n"
        "marked down, groups in the map's syntax, and the options.\n",
        verb_map },
};

#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

static const char options_help[] =
    "Options:\n"
    "  -m, --map MAPFILE   the cluster map (default: $" CLI_MAP_ENV
    ", then " CLI_DEFAULT_MAP ")\n"
    "  -e, --etcd URL      the map kept in etcd: etcd://HOST:PORT/PREFIX,\n"
    "                      or http(s)://HOST:PORT (prefix /skc); -m and\n"
    "                      $" CLI_MAP_ENV " take the etcd:// form too\n"
    "  -t, --timeout MS    deadline in milliseconds (default 5000)\n"
    "  -v, --verbose       log what the client node does on stderr\n"
    "  --cookie-file FILE  the cluster cookie (default: $SKC_COOKIE_FILE;\n"
    "                      mode 600), for nodes that require one\n"
    "  --tls-cert F, --tls-key F, --tls-ca F, --tls-server-name NAME\n"
    "                      TLS for tls+tcp:// nodes (docs/SECURITY.md)\n"
    "  -h, --help          this text\n"
    "  --                  end of options\n";

static const char exit_help[] =
    "Exit codes: 0 success; 1 the remote side answered with an error;\n"
    "2 usage (or an unusable map file); 3 the node is unknown, down,\n"
    "unreachable or did not answer in time.\n";

int
cli_is_verb(const char *name)
{
    for (size_t i = 0; i < NVERBS; i++) {
        if (strcmp(name, verbs[i].name) == 0) {
            return 1;
        }
    }
    return 0;
}

void
cli_usage(FILE *f)
{
    for (size_t i = 0; i < NVERBS; i++) {
        fprintf(f, "       skc %s [-m MAPFILE|-e ETCD] [-t MS]%s%s%s\n",
            verbs[i].name, verbs[i].raw_ok ? " [--raw]" : "",
            verbs[i].args[0] != '\0' ? " " : "", verbs[i].args);
    }
}

static void
verb_help(FILE *f, const cli_verb *v)
{
    fprintf(f, "usage: skc %s [options]%s %s\n\n%s\n%s", v->name,
        v->raw_ok ? " [--raw]" : "", v->args, v->help, options_help);
    if (v->raw_ok) {
        fprintf(f,
            "  --raw               print the reply's MessagePack bytes in "
            "hex\n");
    }
    fprintf(f, "\n%s", exit_help);
}

static int
usage_error(const cli_verb *v, const char *fmt, const char *what)
{
    fprintf(stderr, "skc %s: ", v->name);
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n(skc %s --help for help)\n", v->name);
    return CLI_EXIT_USAGE;
}

/* The exit code for a failed skc call. */
static int
exit_for(int rc)
{
    switch (rc) {
    case SKC_EHANDLER:
    case SKC_ENOSERVICE:
    case SKC_ENOREPLY:
    case SKC_ETOOBIG:
    case SKC_EPROTO:
    case SKC_ENOMEM:
        return CLI_EXIT_REMOTE;
    case SKC_EINVAL:
        return CLI_EXIT_USAGE;
    default:
        /* ENONODE, ENODEDOWN, EUNREACHABLE, ETIMEDOUT, ECONNLOST,
         * ECLOSED, ETRANSPORT, ELIMIT */
        return CLI_EXIT_UNREACHABLE;
    }
}

/* Reports a failed skc call: its code's text and skc's detail. */
static int
fail(const char *verb, int rc, const char *detail)
{
    fprintf(stderr, "skc %s: %s (%s)%s%s\n", verb, skc_strerror(rc),
        skc_errname(rc), detail[0] != '\0' ? ": " : "", detail);
    return exit_for(rc);
}

static int
parse_ms(const char *s, int32_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v <= 0 || v > INT32_MAX) {
        return -1;
    }
    *out = (int32_t)v;
    return 0;
}

/* Whether s reads as an address rather than a map name: an NNG URL, or
 * host:port. */
static int
looks_like_address(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (strstr(s, "://") != NULL) {
        return 1;
    }
    if (colon == NULL || colon == s || colon[1] == '\0') {
        return 0;
    }
    for (const char *p = colon + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return 0;
        }
    }
    return 1;
}

static int
file_readable(const char *path)
{
    return access(path, R_OK) == 0;
}

/* The etcd the map comes from (-e, or -m / $SKC_MAP in the etcd://
 * form), or NULL. */
static const char *
cli_etcd(const cli_opts *o)
{
    const char *map = o->map != NULL ? o->map : getenv(CLI_MAP_ENV);
    if (o->etcd != NULL) {
        return o->etcd;
    }
    return map != NULL && strncmp(map, "etcd://", 7) == 0 ? map : NULL;
}

/* The client node, with the map loaded.  `peer` (may be NULL) is the
 * node the verb talks to: an address that is not a name in the map
 * becomes an entry of its own, and without a map file such a peer is
 * enough.  Returns 0 or an exit code (said on stderr). */
static int
client_node(skc_node **out, const cli_opts *o, const char *verb,
    const char *peer, int nowaiting)
{
    skc_node_opts no = SKC_NODE_OPTS_INIT;
    char name[64];
    const char *map = o->map;
    int explicit_map = 1, rc;
    skc_node *n;

    *out = NULL;
    if (map == NULL) {
        map = getenv(CLI_MAP_ENV);
        if (map == NULL || map[0] == '\0') {
            map = CLI_DEFAULT_MAP;
            explicit_map = 0;
        }
    }
    snprintf(name, sizeof(name), "skc-cli-%ld", (long)getpid());
    no.name = name;
    no.call_timeout_ms = o->timeout_ms;
    no.workers = 1;
    no.heartbeat_ms = -1; /* one request, then gone */
    no.cluster_cookie_file = o->sec[0];
    if (no.cluster_cookie_file == NULL) {
        const char *env = getenv("SKC_COOKIE_FILE");
        no.cluster_cookie_file = env != NULL && env[0] != '\0' ? env : NULL;
    }
    no.tls_cert = o->sec[1];
    no.tls_key = o->sec[2];
    no.tls_ca = o->sec[3];
    no.tls_server_name = o->sec[4];
    if (o->verbose) {
        no.log = skc_log_stderr;
        no.log_level = SKC_LOG_DEBUG;
    }
    no.etcd = cli_etcd(o);
    if ((rc = skc_node_create(&n, &no)) != 0) {
        return fail(verb, rc, skc_last_error());
    }
    if (no.etcd != NULL) {
        /* the map is etcd's, read by create */
    } else if (explicit_map || file_readable(map)) {
        if ((rc = skc_node_map_load(n, map)) != 0) {
            fprintf(stderr, "skc %s: cluster map %s: %s (%s): %s\n", verb, map,
                skc_strerror(rc), skc_errname(rc), skc_last_error());
            skc_node_destroy(n);
            return CLI_EXIT_USAGE;
        }
    } else if (peer == NULL || !looks_like_address(peer)) {
        fprintf(stderr,
            "skc %s: no cluster map: %s does not exist (use -m MAPFILE or "
            "set %s)\n",
            verb, map, CLI_MAP_ENV);
        skc_node_destroy(n);
        return CLI_EXIT_USAGE;
    }
    if (peer != NULL && looks_like_address(peer)) {
        char *addr = NULL;
        if (skc_node_map_get(n, &addr, peer) == SKC_ENONODE &&
            (rc = skc_node_map_set(n, peer, peer)) != 0) {
            fprintf(stderr, "skc %s: address %s: %s\n", verb, peer,
                skc_last_error());
            skc_node_destroy(n);
            return CLI_EXIT_USAGE;
        }
        skc_free(addr);
    }
    /* A name not in the map fails at once instead of waiting for a
     * reload that will not come. */
    if (nowaiting && (rc = skc_node_map_set(n, "__nowaiting", "true")) != 0) {
        skc_node_destroy(n);
        return fail(verb, rc, skc_last_error());
    }
    *out = n;
    return 0;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { }
}

/* ---------------------------------------------------------------------- */
/* Arguments                                                              */
/* ---------------------------------------------------------------------- */

/* Packs every ARG (JSON value or string) into *out.  0 or an exit code. */
static int
pack_args(skc_pack **out, const char *verb, int argc, char **argv)
{
    skc_pack *p;
    int rc;
    if ((rc = skc_pack_create(&p)) != 0) {
        return fail(verb, rc, skc_last_error());
    }
    for (int i = 0; i < argc; i++) {
        char why[128];
        size_t len = strlen(argv[i]);
        rc = cli_json_pack(p, argv[i], len, why, sizeof(why));
        if (rc == CLI_JSON_NOT_JSON) {
            rc = skc_pack_str(p, argv[i], len);
        } else if (rc == CLI_JSON_TOO_DEEP) {
            fprintf(stderr,
                "skc %s: argument %d: JSON nested deeper than %d levels\n",
                verb, i + 1, CLI_JSON_MAX_DEPTH);
            skc_pack_destroy(p);
            return CLI_EXIT_USAGE;
        } else if (rc == CLI_JSON_PACKED) {
            rc = 0;
        }
        if (rc < 0) {
            skc_pack_destroy(p);
            return fail(verb, rc, skc_last_error());
        }
    }
    *out = p;
    return 0;
}

static void
print_hex_line(FILE *f, const void *data, size_t len)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < len; i++) {
        fprintf(f, "%02x", b[i]);
    }
    fputc('\n', f);
}

/* ---------------------------------------------------------------------- */
/* Verbs                                                                  */
/* ---------------------------------------------------------------------- */

/* The string value of a top-level "key" in skc's statistics JSON (whose
 * keys are unique and whose strings escape every '"'), into buf; "" when
 * absent. */
static void
stats_field(const char *json, const char *key, char *buf, size_t size)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *s = strstr(json, pat);
    size_t n = 0;
    if (s != NULL) {
        s += strlen(pat);
        while (s[n] != '\0' && s[n] != '"' && n + 1 < size) {
            n += s[n] == '\\' && s[n + 1] != '\0' ? 2 : 1;
        }
        memcpy(buf, s, n < size ? n : size - 1);
    }
    buf[n < size ? n : size - 1] = '\0';
}

static int
verb_ping(const cli_opts *o, int argc, char **argv)
{
    (void)argc;
    const char *peer = argv[0];
    skc_node *n;
    char *addr = NULL, *state = NULL;
    int64_t connect_us, rtt_us;
    int rc, st;

    if ((rc = client_node(&n, o, "ping", peer, 1)) != 0) {
        return rc;
    }
    /* The first ping waits for the connection and the HELLO; the second
     * travels on the connection made. */
    rc = skc_node_ping(n, peer, o->timeout_ms, &connect_us);
    if (rc == 0) {
        rc = skc_node_ping(n, peer, o->timeout_ms, &rtt_us);
    }
    if (rc != 0) {
        rc = fail("ping", rc, skc_last_error());
        skc_node_destroy(n);
        return rc;
    }
    printf("name: %s\n", peer);
    /* The node's own name and version come with its statistics (a node
     * older than 0.4.0 does not answer that request). */
    char *js = NULL, node[256] = "", version[64] = "";
    if (skc_node_stats_remote(n, peer, o->timeout_ms, &js) == 0) {
        stats_field(js, "node", node, sizeof(node));
        stats_field(js, "version", version, sizeof(version));
        skc_free(js);
    }
    if (node[0] != '\0' && strcmp(node, peer) != 0) {
        printf("node: %s\n", node);
    }
    printf(
        "version: %s\n", version[0] ? version : "unknown (older than 0.4.0)");
    if (skc_node_map_get(n, &addr, peer) == 0 && addr != NULL) {
        printf("%s: %s\n", addr[0] == '{' ? "group" : "address", addr);
    }
    if (addr != NULL && addr[0] == '{' &&
        skc_node_peer_state(n, peer, &st, &state) == 0 && state != NULL) {
        printf("state: %s\n", state);
    }
    printf("connect_ms: %.3f\n", (double)connect_us / 1000.0);
    printf("rtt_ms: %.3f\n", (double)rtt_us / 1000.0);
    skc_free(addr);
    skc_free(state);
    skc_node_destroy(n);
    return CLI_EXIT_OK;
}

static int
verb_call(const cli_opts *o, int argc, char **argv)
{
    skc_node *n;
    skc_pack *p;
    const void *req;
    void *reply = NULL;
    size_t req_len, reply_len = 0;
    char why[512];
    int rc;

    if ((rc = pack_args(&p, "call", argc - 2, argv + 2)) != 0) {
        return rc;
    }
    if ((rc = client_node(&n, o, "call", argv[0], 1)) != 0) {
        skc_pack_destroy(p);
        return rc;
    }
    req = skc_pack_data(p, &req_len);
    rc = skc_node_call(
        n, &reply, &reply_len, argv[0], argv[1], req, req_len, o->timeout_ms);
    skc_pack_destroy(p);
    if (rc != 0) {
        rc = fail("call", rc, skc_last_error());
        skc_node_destroy(n);
        return rc;
    }
    if (o->raw) {
        print_hex_line(stdout, reply, reply_len);
    } else if (cli_json_print_payload(
                   stdout, reply, reply_len, why, sizeof(why)) < 0) {
        fprintf(stderr,
            "skc call: the reply is not MessagePack values (%s); printed as "
            "one string (--raw prints its bytes)\n",
            why);
        cli_json_print_string(stdout, reply, reply_len);
        fputc('\n', stdout);
    }
    skc_free(reply);
    skc_node_destroy(n);
    return CLI_EXIT_OK;
}

/* Sends of n not yet given to a connection (every peer's send_backlog in
 * its statistics), or -1 if the statistics cannot be read. */
static long
send_backlog(skc_node *n)
{
    char *json = NULL;
    if (skc_node_stats(n, &json) != 0) {
        return -1;
    }
    static const char key[] = "\"send_backlog\":";
    long total = 0;
    for (const char *p = strstr(json, key); p != NULL;
         p = strstr(p + 1, key)) {
        total += strtol(p + sizeof(key) - 1, NULL, 10);
    }
    skc_free(json);
    return total;
}

/* Waits, at most timeout_ms, until n's sends have all been given to a
 * connection.  0, or -1 if some are still waiting. */
static int
send_wait_backlog(skc_node *n, int32_t timeout_ms)
{
    for (int32_t waited = 0;; waited += CLI_SEND_POLL_MS) {
        long b = send_backlog(n);
        if (b == 0) {
            return 0;
        }
        if (b < 0 || waited >= timeout_ms) {
            return -1;
        }
        sleep_ms(CLI_SEND_POLL_MS);
    }
}

static int
verb_send(const cli_opts *o, int argc, char **argv)
{
    skc_node *n;
    skc_pack *p;
    const void *req;
    size_t req_len;
    int64_t rtt;
    int rc;

    if ((rc = pack_args(&p, "send", argc - 2, argv + 2)) != 0) {
        return rc;
    }
    if ((rc = client_node(&n, o, "send", argv[0], 1)) != 0) {
        skc_pack_destroy(p);
        return rc;
    }
    /* A send is never answered: a ping first says whether the node is
     * there at all, and connects. */
    rc = skc_node_ping(n, argv[0], o->timeout_ms, &rtt);
    if (rc == 0) {
        req = skc_pack_data(p, &req_len);
        rc = skc_node_send(n, argv[0], argv[1], req, req_len);
    }
    skc_pack_destroy(p);
    if (rc != 0) {
        rc = fail("send", rc, skc_last_error());
        skc_node_destroy(n);
        return rc;
    }
    if (send_wait_backlog(n, o->timeout_ms) != 0) {
        char why[512];
        snprintf(why, sizeof(why),
            "the message to node '%s' did not leave: no send connection to it was kept within %d ms (its send port may be full or refusing; its log says why)",
            argv[0], o->timeout_ms);
        rc = fail("send", SKC_EUNREACHABLE, why);
        skc_node_destroy(n);
        return rc;
    }
    sleep_ms(CLI_SEND_LINGER_MS);
    skc_node_destroy(n);
    return CLI_EXIT_OK;
}

static int
verb_query(const cli_opts *o, int argc, char **argv)
{
    (void)argc;
    skc_node *n;
    uint32_t handle;
    int rc;

    if ((rc = client_node(&n, o, "query", argv[0], 1)) != 0) {
        return rc;
    }
    rc = skc_node_query(n, &handle, argv[0], argv[1], o->timeout_ms);
    if (rc != 0) {
        rc = fail("query", rc, skc_last_error());
        skc_node_destroy(n);
        return rc;
    }
    printf(":%08x\n", (unsigned)handle);
    skc_node_destroy(n);
    return CLI_EXIT_OK;
}

static int
verb_stats(const cli_opts *o, int argc, char **argv)
{
    (void)argc;
    skc_node *n;
    char *json = NULL;
    int rc;

    if ((rc = client_node(&n, o, "stats", argv[0], 1)) != 0) {
        return rc;
    }
    rc = skc_node_stats_remote(n, argv[0], o->timeout_ms, &json);
    if (rc != 0) {
        rc = fail("stats", rc, skc_last_error());
        skc_node_destroy(n);
        return rc;
    }
    char err[256];
    if (!o->prometheus) {
        printf("%s\n", json);
    } else if (cli_prometheus(stdout, json, strlen(json), err, sizeof(err)) !=
        0) {
        fprintf(stderr, "skc stats: %s's statistics: %s\n", argv[0], err);
        rc = CLI_EXIT_REMOTE;
    }
    skc_free(json);
    skc_node_destroy(n);
    return rc;
}

/* The whole file, NUL-terminated; NULL if unreadable. */
static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    if (f == NULL) {
        return NULL;
    }
    do {
        if (cap - n < 4096) {
            char *grown = realloc(buf, cap + 65536);
            if (grown == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
            cap += 65536;
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
    } while (got > 0);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Prints one entry as the map file would have it; 0 if the node has
 * no such entry (an unused option). */
static int
print_entry(skc_node *n, const char *name)
{
    char *val = NULL;
    if (skc_node_map_get(n, &val, name) != 0) {
        return 0;
    }
    if (strspn(name,
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
            "0123456789_") == strlen(name) &&
        !(name[0] >= '0' && name[0] <= '9')) {
        printf("%s = ", name);
    } else {
        fputs("[", stdout);
        cli_json_print_string(stdout, name, strlen(name));
        fputs("] = ", stdout);
    }
    if (val == NULL) {
        fputs("false\n", stdout);
    } else if (val[0] == '{' || strcmp(name, "__nowaiting") == 0) {
        printf("%s\n", val); /* a group, or an option's true/false */
    } else {
        cli_json_print_string(stdout, val, strlen(val));
        fputc('\n', stdout);
    }
    skc_free(val);
    return 1;
}

/* The names of the map's entries: the file's, in its order, or (etcd)
 * the node's, sorted.  0 or an exit code (said on stderr). */
static int
map_names(cli_names *names, skc_node *n, const cli_opts *mo)
{
    char *text;
    size_t len;
    int rc;
    if (cli_etcd(mo) != NULL) {
        rc = skc_node_map_names(n, &text);
        if (rc != 0) {
            return fail("map", rc, skc_last_error());
        }
        rc = cli_lines(names, text, strlen(text));
        skc_free(text);
    } else {
        if ((text = read_file(mo->map, &len)) == NULL) {
            fprintf(stderr, "skc map: cannot read %s\n", mo->map);
            return CLI_EXIT_USAGE;
        }
        rc = cli_map_names(names, text, len);
        free(text);
    }
    if (rc != 0) {
        fprintf(stderr, "skc map: out of memory\n");
        cli_names_free(names);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

static int
verb_map(const cli_opts *o, int argc, char **argv)
{
    (void)argc, (void)argv;
    cli_opts mo = *o;
    skc_node *n;
    cli_names names;
    char *src = NULL;
    int rc;

    if (mo.map == NULL) {
        const char *env = getenv(CLI_MAP_ENV);
        /* no address to fall back on: the default file must exist */
        mo.map = env != NULL && env[0] != '\0' ? env : CLI_DEFAULT_MAP;
    }
    if ((rc = client_node(&n, &mo, "map", NULL, 0)) != 0) {
        return rc;
    }
    if ((rc = map_names(&names, n, &mo)) != 0) {
        skc_node_destroy(n);
        return rc;
    }
    if (skc_node_map_source(n, &src) == 0) {
        printf("-- source: %s\n", src);
        skc_free(src);
    }
    for (size_t i = 0; i < names.count; i++) {
        print_entry(n, names.names[i]);
    }
    cli_names_free(&names);
    skc_node_destroy(n);
    return CLI_EXIT_OK;
}

/* ---------------------------------------------------------------------- */
/* Options                                                                */
/* ---------------------------------------------------------------------- */

/* The value of an option at argv[*i] (`-m X`, `-mX`, `--map X`,
 * `--map=X`); NULL if missing.  `shortopt` is e.g. "-m", `longopt`
 * "--map". */
static const char *
opt_value(int argc, char **argv, int *i, const char *shortopt,
    const char *longopt, int *matched)
{
    const char *a = argv[*i];
    size_t ll = strlen(longopt);
    *matched = 1;
    if (strcmp(a, shortopt) == 0 || strcmp(a, longopt) == 0) {
        if (*i + 1 >= argc) {
            return NULL;
        }
        return argv[++*i];
    }
    if (strncmp(a, longopt, ll) == 0 && a[ll] == '=') {
        return a + ll + 1;
    }
    if (strncmp(a, shortopt, 2) == 0 && a[2] != '\0' && a[1] != '-') {
        return a + 2;
    }
    *matched = 0;
    return NULL;
}

int
cli_main(int argc, char **argv)
{
    const cli_verb *v = NULL;
    cli_opts o = { NULL, NULL, CLI_DEFAULT_TIMEOUT_MS, 0, 0, 0,
        { NULL, NULL, NULL, NULL, NULL } };
    int i, nargs, matched;
    const char *val;

    for (size_t k = 0; k < NVERBS; k++) {
        if (strcmp(argv[0], verbs[k].name) == 0) {
            v = &verbs[k];
        }
    }
    if (v == NULL) {
        fprintf(stderr, "skc: unknown verb '%s'\n", argv[0]);
        return CLI_EXIT_USAGE;
    }
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            break; /* the first argument */
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            verb_help(stdout, v);
            return CLI_EXIT_OK;
        }
        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            o.verbose = 1;
            continue;
        }
        if (strcmp(a, "--raw") == 0 && v->raw_ok) {
            o.raw = 1;
            continue;
        }
        if (strcmp(a, "--prometheus") == 0 && v->run == verb_stats) {
            o.prometheus = 1;
            continue;
        }
        val = opt_value(argc, argv, &i, "-m", "--map", &matched);
        if (matched) {
            if (val == NULL || val[0] == '\0') {
                return usage_error(v, "%s needs a file name", a);
            }
            o.map = val;
            continue;
        }
        val = opt_value(argc, argv, &i, "-e", "--etcd", &matched);
        if (matched) {
            if (val == NULL || val[0] == '\0') {
                return usage_error(v, "%s needs an etcd URL", a);
            }
            o.etcd = val;
            continue;
        }
        val = opt_value(argc, argv, &i, "-t", "--timeout", &matched);
        if (matched) {
            if (val == NULL || parse_ms(val, &o.timeout_ms) != 0) {
                return usage_error(v,
                    "%s needs a deadline in milliseconds (1 to 2147483647)",
                    a);
            }
            continue;
        }
        for (size_t k = 0; k < 5 && !matched; k++) {
            val =
                opt_value(argc, argv, &i, sec_opts[k], sec_opts[k], &matched);
            if (matched && (val == NULL || val[0] == '\0')) {
                return usage_error(v, "%s needs a value", sec_opts[k]);
            }
            if (matched) {
                o.sec[k] = val;
            }
        }
        if (matched) {
            continue;
        }
        return usage_error(v, "unknown option '%s'", a);
    }
    nargs = argc - i;
    if (nargs < v->min_args || (v->max_args >= 0 && nargs > v->max_args)) {
        fprintf(stderr, "usage: skc %s [options]%s %s\n", v->name,
            v->raw_ok ? " [--raw]" : "", v->args);
        fprintf(stderr, "(skc %s --help for help)\n", v->name);
        return CLI_EXIT_USAGE;
    }
    return v->run(&o, nargs, argv + i);
}
