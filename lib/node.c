/* node.c -- node lifecycle: create (options), open and close listeners,
 * destroy.  Cluster-map changes are applied in mapapply.c. */
#include "core.h"
#include "error.h"
#include "etcd.h"
#include "map.h"
#include "url.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_MSG (16u * 1024 * 1024)
#define DEFAULT_WORKERS 2
#define DEFAULT_MAX_INFLIGHT 65536
#define DEFAULT_MAX_SERVING 1024
#define DEFAULT_MAX_CONNS 1024
#define DEFAULT_LOG_BURST 20
#define DEFAULT_MAX_DEADLINE_MS 600000
#define DEFAULT_HEARTBEAT_MS 1000
#define DEFAULT_HEARTBEAT_MISSES 3
#define DEFAULT_MAX_MAILBOX 100000
#define DEFAULT_MAX_MAILBOX_BYTES (64u * 1024 * 1024)
#define DEFAULT_MAX_QUEUED_BYTES (256u * 1024 * 1024)
#define DEFAULT_HELLO_TIMEOUT_MS 10000
#define DEFAULT_IDLE_TIMEOUT_MS 60000
#define DEFAULT_LARGE_MSG 65536
#define DEFAULT_CHANNELS 4

uint32_t
skc_version(void)
{
    return SKC_VERSION_NUMBER;
}

const char *
skc_version_string(void)
{
    return SKC_VERSION_STRING;
}

void
skc_log_stderr(int level, const char *node, const char *text, void *arg)
{
    (void)arg;
    static const char *names[] = { "?", "ERROR", "WARN", "INFO", "DEBUG" };
    const char *l = level >= 1 && level <= 4 ? names[level] : names[0];
    fprintf(stderr, "[skc %s] %s %s\n", node, l, text);
}

static void
server_log(void *arg, int level, const char *kind, const char *text)
{
    skci_node_log_kind(arg, level, kind, text);
}

/* 0 if the options can make a node, else SKC_EINVAL naming the field. */
static int
opts_check(const skc_node_opts *o)
{
    if (o->name != NULL && strlen(o->name) > SKCI_NAME_MAX) {
        return skci_error(
            SKC_EINVAL, "node name longer than %d bytes", SKCI_NAME_MAX);
    }
    if (o->call_timeout_ms < 0) {
        return skci_error(SKC_EINVAL, "call_timeout_ms is negative");
    }
    if (o->workers < SKC_CALLER_DRIVEN || o->workers > 256) {
        return skci_error(SKC_EINVAL,
            "workers must be 1..256, 0 (default) or SKC_CALLER_DRIVEN");
    }
    if (o->max_deadline_ms < 0) {
        return skci_error(SKC_EINVAL, "max_deadline_ms is negative");
    }
    if (o->hello_timeout_ms < -1 || o->idle_timeout_ms < -1) {
        return skci_error(SKC_EINVAL,
            "hello_timeout_ms and idle_timeout_ms must be -1 (never), 0 (default) or more");
    }
    if (o->log_burst < -1) {
        return skci_error(SKC_EINVAL,
            "log_burst must be -1 (no limit), 0 (default) or more");
    }
    if (o->send_port < -1 || o->send_port > 65535) {
        return skci_error(SKC_EINVAL,
            "send_port must be 0 (the call port + 1), -1 (any free port) or 1..65535");
    }
    if (o->heartbeat_ms < -1 || o->heartbeat_misses < 0) {
        return skci_error(SKC_EINVAL,
            "heartbeat_ms must be -1 (off), 0 (default) or positive, and heartbeat_misses 0 (default) or positive");
    }
    if (o->etcd_ttl_s < 0 || o->etcd_ttl_s > 3600) {
        return skci_error(
            SKC_EINVAL, "etcd_ttl_s must be 0 (default: 3) or 1..3600");
    }
    if (o->large_msg < -1 || o->channels < -1 || o->channels > 255) {
        return skci_error(SKC_EINVAL,
            "large_msg must be -1 (no large-message lane), 0 (default) or more, and channels -1 (none), 0 (default) or 1..255");
    }
    if (o->max_msg_size > 0x7fff0000u) {
        return skci_error(SKC_EINVAL, "max_msg_size above 2 GiB");
    }
    return 0;
}

/* Reads the cookie file's first line into n->auth (the file must not be
 * readable by group or others, as ssh demands of a private key). */
static int
cookie_file_read(skc_node *n, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return skci_error(
            SKC_EIO, "cluster_cookie_file %s: cannot open it", path);
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return skci_error(
            SKC_EIO, "cluster_cookie_file %s: not a regular file", path);
    }
    if ((st.st_mode & 077) != 0) {
        fclose(f);
        return skci_error(SKC_EINVAL,
            "cluster_cookie_file %s is readable by group or others (mode %03o): chmod 600 it",
            path, (unsigned)(st.st_mode & 0777));
    }
    char buf[SKCI_AUTH_KEY_MAX + 3];
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';
    len = strcspn(buf, "\r\n");
    if (len == 0 || len > SKCI_AUTH_KEY_MAX) {
        memset(buf, 0, sizeof(buf));
        return skci_error(SKC_EINVAL,
            "cluster_cookie_file %s: the first line must hold 1..%d bytes",
            path, SKCI_AUTH_KEY_MAX);
    }
    n->auth.key = malloc(len);
    if (n->auth.key != NULL) {
        memcpy(n->auth.key, buf, len);
        n->auth.keylen = len;
    }
    memset(buf, 0, sizeof(buf));
    return n->auth.key != NULL ? 0 : skci_error(SKC_ENOMEM, "cookie");
}

static char *
opt_dup(const char *s, int *oom)
{
    char *d = s != NULL ? skci_strdup(s) : NULL;
    *oom |= s != NULL && d == NULL;
    return d;
}

/* The cookie and TLS settings (n just allocated): 0 or an error with the
 * field named. */
static int
node_security(skc_node *n, const skc_node_opts *o)
{
    int rc = 0;
    if (o->cluster_cookie != NULL && o->cluster_cookie_file != NULL) {
        return skci_error(
            SKC_EINVAL, "cluster_cookie and cluster_cookie_file are both set");
    }
    if (o->cluster_cookie != NULL) {
        size_t len = strlen(o->cluster_cookie);
        if (len == 0 || len > SKCI_AUTH_KEY_MAX) {
            return skci_error(SKC_EINVAL,
                "cluster_cookie must hold 1..%d bytes", SKCI_AUTH_KEY_MAX);
        }
        if ((n->auth.key = malloc(len)) == NULL) {
            return skci_error(SKC_ENOMEM, "cookie");
        }
        memcpy(n->auth.key, o->cluster_cookie, len);
        n->auth.keylen = len;
    } else if (o->cluster_cookie_file != NULL &&
        (rc = cookie_file_read(n, o->cluster_cookie_file)) != 0) {
        return rc;
    }
    int oom = 0;
    n->tls.cert = opt_dup(o->tls_cert, &oom);
    n->tls.key = opt_dup(o->tls_key, &oom);
    n->tls.ca = opt_dup(o->tls_ca, &oom);
    n->tls.server_name = opt_dup(o->tls_server_name, &oom);
    if (oom) {
        return skci_error(SKC_ENOMEM, "TLS settings");
    }
    if (skci_tls_configured(&n->tls) && (rc = skci_tls_check(&n->tls)) != 0) {
        return rc;
    }
    n->secure = n->auth.key != NULL || skci_tls_configured(&n->tls);
    n->names_only = o->names_only != 0;
    return 0;
}

int
skc_node_create(skc_node **out, const skc_node_opts *opts)
{
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    if (out == NULL) {
        return skci_error(SKC_EINVAL, "out is NULL");
    }
    *out = NULL;
    if (opts != NULL) {
        if (opts->size < sizeof(uint32_t) || opts->size > 4096) {
            return skci_error(SKC_EINVAL,
                "opts->size is %u: initialise options with SKC_NODE_OPTS_INIT",
                opts->size);
        }
        /* Copy the part the caller knows; newer fields keep defaults. */
        memcpy(&o, opts, opts->size < sizeof(o) ? opts->size : sizeof(o));
    }
    int rc = opts_check(&o);
    if (rc != 0) {
        return rc;
    }
    skc_node *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return skci_error(SKC_ENOMEM, "node");
    }
    atomic_init(&n->refs, 1);
    pthread_mutex_init(&n->open_lock, NULL);
    pthread_mutex_init(&n->serve.lock, NULL);
    skci_log_init(n);
    skci_watch_init(n);
    skci_auth_init(&n->auth);
    if ((rc = node_security(n, &o)) != 0) {
        skci_node_unref(n);
        return rc;
    }
    if (o.name != NULL) {
        snprintf(n->name, sizeof(n->name), "%s", o.name);
    }
    n->call_timeout_ms =
        o.call_timeout_ms ? o.call_timeout_ms : DEFAULT_TIMEOUT_MS;
    n->max_msg = o.max_msg_size ? o.max_msg_size : DEFAULT_MAX_MSG;
    n->workers = o.workers == SKC_CALLER_DRIVEN ? 0
        : o.workers                             ? o.workers
                                                : DEFAULT_WORKERS;
    n->max_inflight = o.max_inflight ? o.max_inflight : DEFAULT_MAX_INFLIGHT;
    n->max_serving = o.max_serving ? o.max_serving : DEFAULT_MAX_SERVING;
    n->max_conns = o.max_conns ? o.max_conns : DEFAULT_MAX_CONNS;
    n->send_port = o.send_port;
    n->log_burst = o.log_burst == 0 ? DEFAULT_LOG_BURST : o.log_burst;
    n->max_deadline_ms =
        o.max_deadline_ms ? o.max_deadline_ms : DEFAULT_MAX_DEADLINE_MS;
    n->max_mailbox = o.max_mailbox ? o.max_mailbox : DEFAULT_MAX_MAILBOX;
    n->max_mailbox_bytes =
        o.max_mailbox_bytes ? o.max_mailbox_bytes : DEFAULT_MAX_MAILBOX_BYTES;
    n->max_queued_bytes =
        o.max_queued_bytes ? o.max_queued_bytes : DEFAULT_MAX_QUEUED_BYTES;
    n->hello_timeout_ms =
        o.hello_timeout_ms ? o.hello_timeout_ms : DEFAULT_HELLO_TIMEOUT_MS;
    n->idle_timeout_ms =
        o.idle_timeout_ms ? o.idle_timeout_ms : DEFAULT_IDLE_TIMEOUT_MS;
    n->large_msg = o.large_msg < 0 ? 0
        : o.large_msg > 0          ? (uint32_t)o.large_msg
                                   : DEFAULT_LARGE_MSG;
    n->channels = o.channels < 0 ? 0
        : o.channels > 0         ? o.channels
                                 : DEFAULT_CHANNELS;
    n->log = o.log;
    n->log_arg = o.log_arg;
    n->log_level = o.log_level ? o.log_level : SKC_LOG_INFO;
    skci_registry_init(n);
    skci_order_init(n);
    if ((rc = skci_dispatch_init(n)) != 0) {
        skci_dispatch_stop(n);
        skci_dispatch_fini(n);
        skci_registry_fini(n);
        skci_order_fini(n);
        skci_node_unref(n);
        return rc;
    }
    skci_pending_init(n);
    n->stats.start_ms = skci_now_ms();
    skci_peers_init(n);
    skci_health_init(n, o.heartbeat_ms ? o.heartbeat_ms : DEFAULT_HEARTBEAT_MS,
        o.heartbeat_misses ? o.heartbeat_misses : DEFAULT_HEARTBEAT_MISSES);
    skci_bg_init(&n->bg);
    if ((rc = skci_timer_start(n)) != 0) {
        skci_bg_fini(&n->bg);
        skci_peers_fini(n);
        skci_pending_fini(n);
        skci_dispatch_stop(n);
        skci_dispatch_fini(n);
        skci_registry_fini(n);
        skci_order_fini(n);
        skci_node_unref(n);
        return rc;
    }
    if (o.etcd != NULL && (rc = skci_etcd_start(n, &o)) != 0) {
        char why[SKCI_DETAIL_MAX];
        snprintf(why, sizeof(why), "%s", skc_last_error());
        skc_node_destroy(n);
        return skci_error(rc, "%s", why);
    }
    *out = n;
    return 0;
}

int
skc_node_destroy(skc_node *node)
{
    if (node == NULL) {
        return 0;
    }
    if (skci_current_node == node) {
        return skci_error(SKC_EBUSY,
            "skc_node_destroy called from a handler or callback of node '%s'",
            node->name);
    }
    if (skci_inline_depth > 0) {
        return skci_inline_busy("skc_node_destroy", node);
    }
    atomic_store(&node->closing, 1);
    skci_watch_fini(node);
    pthread_mutex_lock(&node->open_lock);
    skci_server *srv = node->server;
    pthread_mutex_unlock(&node->open_lock);
    if (srv != NULL) {
        /* Stop taking requests first, so that no new reply route appears
         * once they are detached below. */
        skci_server_shutdown(srv);
    }
    /* Replies still owed (queued mail, deferred replies) can no longer go
     * out once the server is gone: detach them. */
    /* Calls held for the sends before them are answered first (ECLOSED)
     * and their waiter thread ends. */
    skci_order_close(node);
    skci_detach_routes(node);
    if (srv != NULL) {
        node->server = NULL;
        skci_server_destroy(srv);
    }
    /* The lease goes once the replies this node owed are out (a caller
     * told "down" by etcd first would lose its answer), and before
     * anything else: the others see this node down at once. */
    skci_etcd_stop(node);
    /* Every pending call ends, every link closes (which also ends the
     * dials in progress), then the threads that did that work end. */
    char why[SKCI_NAME_MAX + 64];
    snprintf(why, sizeof(why), "node '%s' is being destroyed", node->name);
    skci_call_lock(node);
    skci_pending_fail_all(node, SKC_ECLOSED, why);
    skci_peers_close_links(node);
    skci_call_unlock(node);
    skci_timer_stop(node);
    skci_serve_parked_drop(node);
    skci_bg_drain(&node->bg);
    skci_dispatch_stop(node);
    skci_dispatch_fini(node);
    skci_registry_fini(node);
    skci_order_fini(node);
    skci_peers_fini(node);
    skci_health_fini(node);
    skci_pending_fini(node);
    skci_bg_fini(&node->bg);
    skci_node_unref(node);
    return 0;
}

const char *
skc_node_name(const skc_node *node)
{
    return node != NULL ? node->name : "";
}

/* The URL skc_node_open(where) listens on: where itself when it is an
 * address, else the map's address for node name where (*name = where). */
static int
open_url(skc_node *node, const char *where, char **url, const char **name)
{
    char err[512];
    const char *listen = skci_etcd_listen(node);
    if (strchr(where, ':') != NULL || listen != NULL) {
        /* With etcd the name is announced, not looked up. */
        const char *addr = strchr(where, ':') != NULL ? where : listen;
        if (skci_addr_to_url(url, addr, err, sizeof(err)) != 0) {
            return skci_error(SKC_EINVAL, "open: %s", err);
        }
        *name = addr == where ? NULL : where;
        return 0;
    }
    skci_call_lock(node);
    skci_peer *p = skci_peer_get(node, where, 0);
    int state = p ? p->map : SKCI_PEER_NOT_IN_MAP;
    if (state == SKCI_PEER_HAS_ADDR) {
        *url = skci_strdup(p->url);
    }
    skci_call_unlock(node);
    if (state == SKCI_PEER_NOT_IN_MAP) {
        return skci_error(
            SKC_ENONODE, "open: node '%s' is not in the cluster map", where);
    }
    if (state == SKCI_PEER_MARKED_DOWN) {
        return skci_error(SKC_ENODEDOWN,
            "open: node '%s' is down (false in the cluster map)", where);
    }
    if (*url == NULL) {
        return skci_error(SKC_ENOMEM, "open");
    }
    *name = where;
    return 0;
}

/* The send port for a node listening on url: the option, or by default
 * the call port + 1 -- unless the map gives that port to a node (the seed
 * cluster's gate = 7101, db = 7102): then any free port, logged. */
static int32_t
send_port_for(skc_node *n, const char *url)
{
    int port = skci_url_port(url);
    if (n->send_port != 0 || port <= 0 || port >= 65535) {
        return n->send_port;
    }
    char tail[16];
    snprintf(tail, sizeof(tail), ":%d", port + 1);
    size_t tl = strlen(tail);
    const char *taken = NULL;
    skci_call_lock(n);
    for (size_t i = 0; i < n->peers.byname.nb && taken == NULL; i++) {
        for (skci_strmap_ent *e = n->peers.byname.b[i]; e; e = e->next) {
            skci_peer *p = e->val;
            size_t ul = p->url != NULL ? strlen(p->url) : 0;
            if (ul > tl && strcmp(p->url + ul - tl, tail) == 0) {
                taken = p->name;
                break;
            }
        }
    }
    if (taken != NULL) {
        skci_node_log(n, SKC_LOG_INFO,
            "send port: %d (the call port + 1) is node '%s''s port in the cluster map; using a free port (set send_port to choose one)",
            port + 1, taken);
    }
    skci_call_unlock(n);
    return taken != NULL ? -1 : 0;
}

int
skc_node_open(skc_node *node, char **out_addr, const char *where)
{
    int rc;
    if (out_addr != NULL) {
        *out_addr = NULL;
    }
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    if (where == NULL || where[0] == '\0') {
        return skci_error(SKC_EINVAL, "open: address or node name is empty");
    }
    char *url = NULL;
    const char *name = NULL;
    if ((rc = open_url(node, where, &url, &name)) != 0) {
        return rc;
    }
    pthread_mutex_lock(&node->open_lock);
    if (name != NULL && node->name[0] == '\0') {
        snprintf(node->name, sizeof(node->name), "%s", name);
    }
    if (name != NULL) {
        skci_call_lock(node);
        skci_peer_self_named(node);
        skci_call_unlock(node);
    }
    if (node->server == NULL) {
        skci_server_cfg cfg = {
            .max_recv = node->max_msg + SKCI_REQ_FIXED + SKCI_NAME_MAX,
            .max_serving = node->max_serving,
            .max_conns = node->max_conns,
            .on_request = skci_on_request,
            .on_push = skci_on_push,
            .on_log = server_log,
            .on_pipe_gone = node->auth.key != NULL ? skci_on_pipe_gone : NULL,
            .tls = &node->tls,
            .arg = node,
        };
        if ((rc = skci_server_create(&node->server, &cfg)) != 0) {
            pthread_mutex_unlock(&node->open_lock);
            free(url);
            return rc;
        }
    }
    if (node->etcd != NULL && node->name[0] == '\0') {
        pthread_mutex_unlock(&node->open_lock);
        free(url);
        return skci_error(SKC_EINVAL,
            "open: a node whose map is in etcd needs a name to announce (skc_node_opts.name, or open(name))");
    }
    char *bound = NULL;
    rc = skci_server_listen(
        node->server, url, send_port_for(node, url), &bound);
    pthread_mutex_unlock(&node->open_lock);
    if (rc != 0) {
        free(url);
        free(bound);
        return rc;
    }
    skci_node_log(node, SKC_LOG_INFO, "listening on %s", bound);
    free(url);
    if ((rc = skci_etcd_announce(node, bound)) != 0) {
        /* Another live node has the name: this one does not serve. */
        free(bound);
        skc_node_close_listeners(node);
        return rc;
    }
    if (out_addr != NULL) {
        *out_addr = skci_user_strdup(bound);
        free(bound);
        if (*out_addr == NULL) {
            return skci_error(SKC_ENOMEM, "open: bound address");
        }
    } else {
        free(bound);
    }
    return 0;
}

int
skc_node_close_listeners(skc_node *node)
{
    if (node == NULL) {
        return skci_error(SKC_EINVAL, "node is NULL");
    }
    if (skci_inline_depth > 0) {
        return skci_inline_busy("skc_node_close_listeners", node);
    }
    pthread_mutex_lock(&node->open_lock);
    if (node->server != NULL) {
        skci_server_stop(node->server);
    }
    pthread_mutex_unlock(&node->open_lock);
    return 0;
}

int
skc_node_close(skc_node *node)
{
    return skc_node_close_listeners(node);
}
