/* node.c -- node lifecycle, open/close, the cluster map, logging. */
#include "core.h"
#include "error.h"
#include "map.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_MSG (16u * 1024 * 1024)
#define DEFAULT_WORKERS 2
#define DEFAULT_MAX_INFLIGHT 65536
#define DEFAULT_MAX_SERVING 1024
#define DEFAULT_MAX_CONNS 1024

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
skc_free(void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    unsigned char *b = (unsigned char *)ptr - 16;
    uint64_t magic;
    memcpy(&magic, b, sizeof(magic));
    if (magic == SKCI_UMAGIC_HEAP) {
        magic = 0; /* a double free then finds no magic */
        memcpy(b, &magic, sizeof(magic));
        free(b);
    } else if (magic == SKCI_UMAGIC_MSG) {
        skci_tmsg *m;
        memcpy(&m, b + 8, sizeof(m));
        magic = 0;
        memcpy(b, &magic, sizeof(magic));
        skci_tmsg_free(m);
    }
    /* Anything else was not allocated by skc: ignored rather than passed
     * to free(), which would corrupt the heap. */
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
server_log(void *arg, int level, const char *text)
{
    skci_node_log(arg, level, "%s", text);
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
    if (o.name != NULL && strlen(o.name) > SKCI_NAME_MAX) {
        return skci_error(
            SKC_EINVAL, "node name longer than %d bytes", SKCI_NAME_MAX);
    }
    if (o.call_timeout_ms < 0) {
        return skci_error(SKC_EINVAL, "call_timeout_ms is negative");
    }
    if (o.workers < SKC_CALLER_DRIVEN || o.workers > 256) {
        return skci_error(SKC_EINVAL,
            "workers must be 1..256, 0 (default) or SKC_CALLER_DRIVEN");
    }
    if (o.max_msg_size > 0x7fff0000u) {
        return skci_error(SKC_EINVAL, "max_msg_size above 2 GiB");
    }
    skc_node *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return skci_error(SKC_ENOMEM, "node");
    }
    atomic_init(&n->refs, 1);
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
    n->log = o.log;
    n->log_arg = o.log_arg;
    n->log_level = o.log_level ? o.log_level : SKC_LOG_INFO;
    pthread_mutex_init(&n->open_lock, NULL);
    pthread_mutex_init(&n->serve.lock, NULL);
    skci_log_init(n);
    int rc;
    skci_registry_init(n);
    if ((rc = skci_dispatch_init(n)) != 0) {
        skci_dispatch_stop(n);
        skci_dispatch_fini(n);
        skci_registry_fini(n);
        skci_node_unref(n);
        return rc;
    }
    skci_pending_init(n);
    skci_peers_init(n);
    skci_bg_init(&n->bg);
    if ((rc = skci_timer_start(n)) != 0) {
        skci_bg_fini(&n->bg);
        skci_peers_fini(n);
        skci_pending_fini(n);
        skci_dispatch_stop(n);
        skci_dispatch_fini(n);
        skci_registry_fini(n);
        skci_node_unref(n);
        return rc;
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
    skci_detach_routes(node);
    if (srv != NULL) {
        node->server = NULL;
        skci_server_destroy(srv);
    }
    /* Every pending call ends, every link closes (which also ends the
     * dials in progress), then the threads that did that work end. */
    char why[SKCI_NAME_MAX + 64];
    snprintf(why, sizeof(why), "node '%s' is being destroyed", node->name);
    skci_call_lock(node);
    skci_pending_fail_all(node, SKC_ECLOSED, why);
    skci_peers_close_links(node);
    skci_call_unlock(node);
    skci_timer_stop(node);
    skci_bg_drain(&node->bg);
    skci_dispatch_stop(node);
    skci_dispatch_fini(node);
    skci_registry_fini(node);
    skci_peers_fini(node);
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
    if (strchr(where, ':') != NULL) {
        if (skci_addr_to_url(url, where, err, sizeof(err)) != 0) {
            return skci_error(SKC_EINVAL, "open: %s", err);
        }
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
    if (node->server == NULL) {
        skci_server_cfg cfg = {
            .max_recv = node->max_msg + SKCI_REQ_FIXED + SKCI_NAME_MAX,
            .max_serving = node->max_serving,
            .max_conns = node->max_conns,
            .on_request = skci_on_request,
            .on_push = skci_on_push,
            .on_log = server_log,
            .arg = node,
        };
        if ((rc = skci_server_create(&node->server, &cfg)) != 0) {
            pthread_mutex_unlock(&node->open_lock);
            free(url);
            return rc;
        }
    }
    char *bound = NULL;
    rc = skci_server_listen(node->server, url, &bound);
    pthread_mutex_unlock(&node->open_lock);
    if (rc != 0) {
        free(url);
        free(bound);
        return rc;
    }
    skci_node_log(node, SKC_LOG_INFO, "listening on %s", bound);
    free(url);
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

/* ---- cluster map ---- */

/* One validated change. */
struct map_change {
    const char *name;
    int kind; /* SKCI_MAP_ADDR (url set) / SKCI_MAP_DOWN / option */
    char *url;
    int option; /* 1 = __nowaiting */
    int bval;
};

static int
map_prepare(struct map_change *ch, const char *name, int kind,
    const char *value, const char *where)
{
    memset(ch, 0, sizeof(*ch));
    ch->name = name;
    if (name == NULL || name[0] == '\0') {
        return skci_error(SKC_EINVAL, "%scluster map: empty node name", where);
    }
    if (strlen(name) > SKCI_NAME_MAX) {
        return skci_error(SKC_EINVAL,
            "%scluster map: name longer than %d bytes", where, SKCI_NAME_MAX);
    }
    if (strncmp(name, "__", 2) == 0) {
        ch->option = strcmp(name, "__nowaiting") == 0 ? 1 : 2;
        if (kind == SKCI_MAP_TRUE) {
            ch->bval = 1;
        } else if (kind == SKCI_MAP_ADDR && value != NULL) {
            ch->bval = strcmp(value, "true") == 0;
        }
        return 0;
    }
    ch->kind = kind;
    if (kind == SKCI_MAP_DOWN) {
        return 0;
    }
    if (kind != SKCI_MAP_ADDR || value == NULL) {
        return skci_error(SKC_EINVAL,
            "%snode '%s': expected an address string or false", where, name);
    }
    char err[512];
    int rc = skci_addr_to_url(&ch->url, value, err, sizeof(err));
    if (rc != 0) {
        return skci_error(rc, "%snode '%s': %s", where, name, err);
    }
    return 0;
}

/* Applies validated changes atomically (all under call_lock). */
static int
map_apply(skc_node *n, struct map_change *ch, size_t count)
{
    skci_call_lock(n);
    /* Create peers first so that no allocation can fail half-way. */
    for (size_t i = 0; i < count; i++) {
        if (!ch[i].option && skci_peer_get(n, ch[i].name, 1) == NULL) {
            skci_call_unlock(n);
            return skci_error(SKC_ENOMEM, "cluster map");
        }
    }
    int nowaiting_was = n->peers.nowaiting;
    for (size_t i = 0; i < count; i++) {
        if (ch[i].option == 1) {
            n->peers.nowaiting = ch[i].bval;
            continue;
        }
        if (ch[i].option) {
            continue; /* unknown options are accepted, as in skynet */
        }
        skci_peer *p = skci_peer_get(n, ch[i].name, 0);
        int nmap = ch[i].kind == SKCI_MAP_DOWN ? SKCI_PEER_MARKED_DOWN
                                               : SKCI_PEER_HAS_ADDR;
        if (p->map == nmap &&
            (nmap == SKCI_PEER_MARKED_DOWN ||
                strcmp(p->url, ch[i].url) == 0)) {
            continue;
        }
        p->map = nmap;
        free(p->url);
        p->url = ch[i].url;
        ch[i].url = NULL;
        skci_node_log(n, SKC_LOG_INFO, "cluster map: %s = %s", p->name,
            p->url ? p->url : "false");
        skci_peer_map_changed(n, p);
    }
    if (n->peers.nowaiting && !nowaiting_was) {
        skci_nowaiting_changed(n);
    }
    skci_call_unlock(n);
    return 0;
}

static void
map_changes_free(struct map_change *ch, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(ch[i].url);
    }
    free(ch);
}

static int
map_apply_list(skc_node *n, const skci_map_list *l, const char *origin)
{
    struct map_change *ch = calloc(l->n ? l->n : 1, sizeof(*ch));
    if (ch == NULL) {
        return skci_error(SKC_ENOMEM, "cluster map");
    }
    int rc = 0;
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        char where[600];
        snprintf(where, sizeof(where), "%s:%d: ", origin, l->v[i].line);
        rc = map_prepare(
            &ch[i], l->v[i].name, l->v[i].kind, l->v[i].value, where);
    }
    if (rc == 0) {
        rc = map_apply(n, ch, l->n);
    }
    map_changes_free(ch, l->n);
    return rc;
}

static int
map_parse_apply(skc_node *n, const char *text, size_t len, const char *origin)
{
    skci_map_list l = { NULL, 0 };
    char err[600];
    int rc = skci_map_parse(&l, text, len, origin, err, sizeof(err));
    if (rc != 0) {
        return skci_error(rc, "%s", err);
    }
    rc = map_apply_list(n, &l, origin);
    skci_map_list_free(&l);
    return rc;
}

static int
map_load_file(skc_node *n, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    char err[600];
    int rc = skci_map_read_file(&text, &len, path, err, sizeof(err));
    if (rc != 0) {
        return skci_error(rc, "%s", err);
    }
    rc = map_parse_apply(n, text, len, path);
    free(text);
    return rc;
}

int
skc_node_map_load(skc_node *node, const char *path)
{
    int rc;
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    if (path == NULL || path[0] == '\0') {
        return skci_error(SKC_EINVAL, "map path is empty");
    }
    if ((rc = map_load_file(node, path)) != 0) {
        return rc;
    }
    char *p = skci_strdup(path);
    skci_call_lock(node);
    free(node->peers.map_path);
    node->peers.map_path = p;
    skci_call_unlock(node);
    return 0;
}

int
skc_node_map_reload(skc_node *node)
{
    int rc;
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    skci_call_lock(node);
    char *path = skci_strdup(node->peers.map_path);
    skci_call_unlock(node);
    if (path == NULL) {
        return skci_error(SKC_ESTATE,
            "node '%s' has no cluster map file to reload", node->name);
    }
    rc = map_load_file(node, path);
    free(path);
    return rc;
}

int
skc_node_map_parse(skc_node *node, const char *text, const char *origin)
{
    int rc;
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    if (text == NULL) {
        return skci_error(SKC_EINVAL, "map text is NULL");
    }
    return map_parse_apply(
        node, text, strlen(text), origin ? origin : "<string>");
}

int
skc_node_map_update(skc_node *node, const char *const *names,
    const char *const *addrs, size_t count)
{
    int rc;
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    if (count > 0 && (names == NULL || addrs == NULL)) {
        return skci_error(SKC_EINVAL, "names or addrs is NULL");
    }
    struct map_change *ch = calloc(count ? count : 1, sizeof(*ch));
    if (ch == NULL) {
        return skci_error(SKC_ENOMEM, "cluster map");
    }
    for (size_t i = 0; i < count && rc == 0; i++) {
        rc = map_prepare(&ch[i], names[i],
            addrs[i] ? SKCI_MAP_ADDR : SKCI_MAP_DOWN, addrs[i], "");
    }
    if (rc == 0) {
        rc = map_apply(node, ch, count);
    }
    map_changes_free(ch, count);
    return rc;
}

int
skc_node_map_set(skc_node *node, const char *name, const char *addr)
{
    return skc_node_map_update(node, &name, &addr, 1);
}

int
skc_node_map_get(skc_node *node, char **out_addr, const char *name)
{
    if (node == NULL || out_addr == NULL || name == NULL) {
        return skci_error(SKC_EINVAL, "node, out_addr or name is NULL");
    }
    *out_addr = NULL;
    if (strcmp(name, "__nowaiting") == 0) {
        skci_call_lock(node);
        *out_addr = skci_user_strdup(node->peers.nowaiting ? "true" : "false");
        skci_call_unlock(node);
        return *out_addr ? 0 : skci_error(SKC_ENOMEM, "map_get");
    }
    skci_call_lock(node);
    skci_peer *p = skci_peer_get(node, name, 0);
    int state = p ? p->map : SKCI_PEER_NOT_IN_MAP;
    char *url = state == SKCI_PEER_HAS_ADDR ? skci_user_strdup(p->url) : NULL;
    skci_call_unlock(node);
    if (state == SKCI_PEER_NOT_IN_MAP) {
        return skci_error(
            SKC_ENONODE, "node '%s' is not in the cluster map", name);
    }
    if (state == SKCI_PEER_HAS_ADDR && url == NULL) {
        return skci_error(SKC_ENOMEM, "map_get");
    }
    *out_addr = url;
    return 0;
}
