/* lskc_node.c -- skc.node: create and destroy a node, listen, serve with
 * Lua handlers, deliver its log lines, and run it all in node:poll(). */
#include "lskc.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Node state                                                             */
/* ---------------------------------------------------------------------- */

lnode *
lskc_check_lnode(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, LSKC_NODE);
}

skc_node *
lskc_check_node(lua_State *L, int idx)
{
    lnode *n = lskc_check_lnode(L, idx);
    if (n->node == NULL) {
        luaL_error(L, "skc.node is closed");
    }
    return n->node;
}

void
lskc_callback_unlink(lcallback **head, lcallback *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        *head = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
}

lcallback *
lskc_callback_new(lua_State *L, lnode *n, lcallback **head, int fn)
{
    lcallback *c;

    luaL_checktype(L, fn, LUA_TFUNCTION);
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        luaL_error(L, "out of memory");
        return NULL;
    }
    c->n = n;
    c->arg_ref = LUA_NOREF;
    lua_pushvalue(L, fn);
    c->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    c->next = *head;
    if (*head != NULL) {
        (*head)->prev = c;
    }
    *head = c;
    return c;
}

void
lskc_callback_free(lua_State *L, lcallback **head, lcallback *c)
{
    lskc_callback_unlink(head, c);
    luaL_unref(L, LUA_REGISTRYINDEX, c->ref);
    luaL_unref(L, LUA_REGISTRYINDEX, c->arg_ref);
    free(c);
}

void
lskc_callback_arg(lua_State *L, lcallback *c, int idx)
{
    if (!lua_isnone(L, idx)) {
        lua_pushvalue(L, idx);
        c->arg_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
}

void
lskc_node_keep_error(lnode *n, lua_State *L)
{
    if (n->err_ref == LUA_NOREF) {
        n->err_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else {
        lua_pop(L, 1);
    }
}

/* ---------------------------------------------------------------------- */
/* Logging: any thread -> queue -> Lua in poll()                          */
/* ---------------------------------------------------------------------- */

#define LSKC_LOG_QUEUE_MAX 10000

typedef struct logent {
    int level;
    struct logent *next;
    char text[];
} logent;

/* The node's log function when opts.log is a Lua function: runs on any
 * thread, so it only queues (under log_lock) for poll() to deliver. */
static void
log_to_queue(int level, const char *node, const char *text, void *arg)
{
    lnode *n = arg;
    size_t tl = strlen(text);
    logent *e;

    (void)node; /* poll() passes skc_node_name() */
    pthread_mutex_lock(&n->log_lock);
    if (n->log_count >= LSKC_LOG_QUEUE_MAX) {
        /* Nobody is polling: drop rather than grow without bound. */
        pthread_mutex_unlock(&n->log_lock);
        return;
    }
    e = malloc(sizeof(*e) + tl + 1);
    if (e != NULL) {
        e->level = level;
        e->next = NULL;
        memcpy(e->text, text, tl + 1);
        if (n->log_tail != NULL) {
            n->log_tail->next = e;
        } else {
            n->log_head = e;
        }
        n->log_tail = e;
        n->log_count++;
    }
    pthread_mutex_unlock(&n->log_lock);
}

static logent *
log_take_all(lnode *n)
{
    logent *e;
    if (!n->log_init) {
        return NULL;
    }
    pthread_mutex_lock(&n->log_lock);
    e = n->log_head;
    n->log_head = n->log_tail = NULL;
    n->log_count = 0;
    pthread_mutex_unlock(&n->log_lock);
    return e;
}

static const char *
log_level_name(int level)
{
    switch (level) {
    case SKC_LOG_ERROR:
        return "error";
    case SKC_LOG_WARN:
        return "warn";
    case SKC_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

/* Delivers queued log lines to the Lua log function (fn(level, text)). */
static void
log_drain(lnode *n, lua_State *L)
{
    logent *e = log_take_all(n);
    while (e != NULL) {
        logent *next = e->next;
        if (n->log_ref != LUA_NOREF && !n->closing) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, n->log_ref);
            lua_pushstring(L, log_level_name(e->level));
            lua_pushstring(L, e->text);
            if (n->node != NULL) {
                lua_pushstring(L, skc_node_name(n->node));
            } else {
                lua_pushliteral(L, "");
            }
            if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
                lskc_node_keep_error(n, L);
            }
        }
        free(e);
        e = next;
    }
}

/* Frees the queue and the log function of a node being destroyed. */
static void
log_free(lnode *n, lua_State *L)
{
    logent *e = log_take_all(n);
    while (e != NULL) {
        logent *next = e->next;
        free(e);
        e = next;
    }
    if (n->log_init) {
        pthread_mutex_destroy(&n->log_lock);
        n->log_init = 0;
    }
    if (n->log_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, n->log_ref);
        n->log_ref = LUA_NOREF;
    }
}

/* ---------------------------------------------------------------------- */
/* Creating and destroying                                                */
/* ---------------------------------------------------------------------- */

/* How the node logs (its option `log`). */
enum { LOG_NONE, LOG_STDERR, LOG_LUA };

static lua_Integer
opt_field_int(lua_State *L, int t, const char *key, lua_Integer def,
    lua_Integer lo, lua_Integer hi)
{
    lua_Integer v = def;
    int isnum = 0;
    if (lua_getfield(L, t, key) != LUA_TNIL) {
        v = lua_tointegerx(L, -1, &isnum);
        if (!isnum || v < lo || v > hi) {
            luaL_error(L,
                "skc.node: option '%s' must be an integer in [%I, %I]", key,
                lo, hi);
        }
    }
    lua_pop(L, 1);
    return v;
}

/* A string option, or NULL; the table at t keeps it alive. */
static const char *
opt_field_str(lua_State *L, int t, const char *key)
{
    const char *v = NULL;
    if (lua_getfield(L, t, key) != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TSTRING) {
            luaL_error(L, "skc.node: option '%s' must be a string", key);
        }
        v = lua_tostring(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static int
parse_log_level(lua_State *L, int t)
{
    int level = 0;
    if (lua_getfield(L, t, "log_level") == LUA_TSTRING) {
        const char *s = lua_tostring(L, -1);
        if (strcmp(s, "error") == 0) {
            level = SKC_LOG_ERROR;
        } else if (strcmp(s, "warn") == 0) {
            level = SKC_LOG_WARN;
        } else if (strcmp(s, "info") == 0) {
            level = SKC_LOG_INFO;
        } else if (strcmp(s, "debug") == 0) {
            level = SKC_LOG_DEBUG;
        } else {
            luaL_error(L, "skc.node: bad log_level '%s'", s);
        }
    } else if (!lua_isnil(L, -1)) {
        lua_Integer v = luaL_checkinteger(L, -1);
        if (v < 0 || v > SKC_LOG_DEBUG) {
            luaL_error(L, "skc.node: bad log_level %I", v);
        }
        level = (int)v;
    }
    lua_pop(L, 1);
    return level;
}

/* Pushes the option `log` of the table at t; returns its LOG_ kind. */
static int
parse_log(lua_State *L, int t)
{
    switch (lua_getfield(L, t, "log")) {
    case LUA_TNIL:
        return LOG_NONE;
    case LUA_TFUNCTION:
        return LOG_LUA;
    case LUA_TBOOLEAN:
        return lua_toboolean(L, -1) ? LOG_STDERR : LOG_NONE;
    case LUA_TSTRING:
        if (strcmp(lua_tostring(L, -1), "stderr") == 0) {
            return LOG_STDERR;
        }
        /* fall through */
    default:
        return luaL_error(L,
            "skc.node: option 'log' must be a function, true or \"stderr\"");
    }
}

/* Reads the options (nil or a table at index 1) into o.  Pushes the values
 * of `name` (index 2), which must stay alive until the node is created,
 * and `log` (index 3), then the string options (cookie, TLS) above them.
 * Returns the LOG_ kind. */
static int
parse_opts(lua_State *L, skc_node_opts *o)
{
    if (lua_isnil(L, 1)) {
        lua_pushnil(L);
        lua_pushnil(L);
        return LOG_NONE;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_getfield(L, 1, "name") != LUA_TNIL) {
        o->name = luaL_checkstring(L, -1);
    }
    o->call_timeout_ms =
        (int32_t)opt_field_int(L, 1, "call_timeout", 0, 0, INT32_MAX);
    o->max_msg_size =
        (uint32_t)opt_field_int(L, 1, "max_msg_size", 0, 0, UINT32_MAX);
    o->max_inflight =
        (uint32_t)opt_field_int(L, 1, "max_inflight", 0, 0, UINT32_MAX);
    o->max_serving =
        (uint32_t)opt_field_int(L, 1, "max_serving", 0, 0, UINT32_MAX);
    o->max_conns =
        (uint32_t)opt_field_int(L, 1, "max_conns", 0, 0, UINT32_MAX);
    o->heartbeat_ms =
        (int32_t)opt_field_int(L, 1, "heartbeat_ms", 0, -1, INT32_MAX);
    o->heartbeat_misses =
        (int32_t)opt_field_int(L, 1, "heartbeat_misses", 0, 0, INT32_MAX);
    o->max_mailbox =
        (uint32_t)opt_field_int(L, 1, "max_mailbox", 0, 0, UINT32_MAX);
    o->max_mailbox_bytes =
        (uint32_t)opt_field_int(L, 1, "max_mailbox_bytes", 0, 0, UINT32_MAX);
    o->max_queued_bytes =
        (uint32_t)opt_field_int(L, 1, "max_queued_bytes", 0, 0, UINT32_MAX);
    o->hello_timeout_ms =
        (int32_t)opt_field_int(L, 1, "hello_timeout_ms", 0, -1, INT32_MAX);
    o->idle_timeout_ms =
        (int32_t)opt_field_int(L, 1, "idle_timeout_ms", 0, -1, INT32_MAX);
    o->large_msg = (int32_t)opt_field_int(L, 1, "large_msg", 0, -1, INT32_MAX);
    o->channels = (int32_t)opt_field_int(L, 1, "channels", 0, -1, 255);
    o->etcd = opt_field_str(L, 1, "etcd");
    o->etcd_prefix = opt_field_str(L, 1, "etcd_prefix");
    o->etcd_cafile = opt_field_str(L, 1, "etcd_cafile");
    o->etcd_certfile = opt_field_str(L, 1, "etcd_certfile");
    o->etcd_keyfile = opt_field_str(L, 1, "etcd_keyfile");
    o->etcd_listen = opt_field_str(L, 1, "etcd_listen");
    o->etcd_ttl_s = (int32_t)opt_field_int(L, 1, "etcd_ttl", 0, 0, 3600);
    o->log_level = parse_log_level(L, 1);
    int kind = parse_log(L, 1);
    o->cluster_cookie = opt_field_str(L, 1, "cluster_cookie");
    o->cluster_cookie_file = opt_field_str(L, 1, "cluster_cookie_file");
    o->tls_cert = opt_field_str(L, 1, "tls_cert");
    o->tls_key = opt_field_str(L, 1, "tls_key");
    o->tls_ca = opt_field_str(L, 1, "tls_ca");
    o->tls_server_name = opt_field_str(L, 1, "tls_server_name");
    lua_getfield(L, 1, "names_only");
    o->names_only = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return kind;
}

/* skc.node([opts]) -> node | nil, msg, code
 * opts: name, call_timeout (ms), max_msg_size, max_inflight, max_serving,
 *       max_conns, log (function(level, text, node) | true = stderr),
 *       log_level ("error".."debug" or 1..4), heartbeat_ms (-1 = off),
 *       heartbeat_misses, max_mailbox, max_mailbox_bytes,
 *       max_queued_bytes, hello_timeout_ms, idle_timeout_ms (-1 = never),
 *       etcd, etcd_prefix, etcd_ttl (s), etcd_cafile, etcd_certfile,
 *       etcd_keyfile, etcd_listen, cluster_cookie, cluster_cookie_file,
 *       tls_cert, tls_key, tls_ca, tls_server_name (strings), names_only
 *       (boolean), large_msg, channels (lanes, -1 = none). */
int
lskc_node_new(lua_State *L)
{
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    lnode *n;
    int rc, log_kind;

    lua_settop(L, 1);
    log_kind = parse_opts(L, &o);
    o.workers = SKC_CALLER_DRIVEN;

    n = lua_newuserdatauv(L, sizeof(*n), 0);
    memset(n, 0, sizeof(*n));
    n->err_ref = LUA_NOREF;
    n->log_ref = LUA_NOREF;
    n->monitor_ref = LUA_NOREF;
    n->watch_ref = LUA_NOREF;
    luaL_setmetatable(L, LSKC_NODE);
    if (log_kind == LOG_STDERR) {
        o.log = skc_log_stderr;
    } else if (log_kind == LOG_LUA) {
        if (pthread_mutex_init(&n->log_lock, NULL) != 0) {
            return luaL_error(L, "skc.node: cannot create a mutex");
        }
        n->log_init = 1;
        lua_pushvalue(L, 3);
        n->log_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        o.log = log_to_queue;
        o.log_arg = n;
    }
    rc = skc_node_create(&n->node, &o);
    if (rc < 0) {
        n->node = NULL;
        return lskc_fail(L, rc); /* the userdata is collected later */
    }
    return 1;
}

/* node:close() (also destroy, __gc, __close): destroys the node.  Async
 * calls still pending are dropped without running their callbacks. */
static int
node_destroy(lua_State *L)
{
    lnode *n = lskc_check_lnode(L, 1);
    if (n->node != NULL) {
        lua_State *saved = n->L;
        int rc;
        n->closing = 1;
        n->L = L;
        rc = skc_node_destroy(n->node);
        n->L = saved;
        if (rc < 0) {
            /* SKC_EBUSY: called from one of this node's own handlers. */
            n->closing = 0;
            return lskc_fail(L, rc);
        }
        n->node = NULL;
    }
    while (n->calls != NULL) {
        lskc_callback_free(L, &n->calls, n->calls);
    }
    while (n->services != NULL) {
        lskc_callback_free(L, &n->services, n->services);
    }
    log_free(n, L);
    lskc_monitor_free(n, L);
    lskc_watch_free(n, L);
    if (n->err_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, n->err_ref);
        n->err_ref = LUA_NOREF;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int
node_gc(lua_State *L)
{
    node_destroy(L);
    return 0;
}

static int
node_tostring(lua_State *L)
{
    lnode *n = lskc_check_lnode(L, 1);
    if (n->node == NULL) {
        lua_pushliteral(L, "skc.node (closed)");
    } else {
        lua_pushfstring(
            L, "skc.node '%s' (%p)", skc_node_name(n->node), (void *)n->node);
    }
    return 1;
}

static int
node_name(lua_State *L)
{
    lua_pushstring(L, skc_node_name(lskc_check_node(L, 1)));
    return 1;
}

static int
node_closed(lua_State *L)
{
    lua_pushboolean(L, lskc_check_lnode(L, 1)->node == NULL);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Listening                                                              */
/* ---------------------------------------------------------------------- */

/* node:open(where) -> bound address URL */
static int
node_open(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
    const char *where = luaL_checkstring(L, 2);
    char *addr = NULL;
    int rc = skc_node_open(node, &addr, where);
    if (rc < 0) {
        return lskc_fail(L, rc);
    }
    lua_pushstring(L, addr != NULL ? addr : where);
    skc_free(addr);
    return 1;
}

/* node:close_listeners() (old name: unlisten): skc_node_close, which stops
 * every listener; the node stays open and can still call out. */
static int
node_close_listeners(lua_State *L)
{
    return lskc_result(L, skc_node_close(lskc_check_node(L, 1)));
}

/* ---------------------------------------------------------------------- */
/* Services and names                                                     */
/* ---------------------------------------------------------------------- */

/* The handler of every service created from Lua.  Runs inside
 * skc_node_poll() on the Lua thread: fn(msg). */
static void
service_handler(skc_node *node, uint32_t service, skc_msg *msg, void *arg)
{
    lcallback *c = arg;
    lnode *n = c->n;
    lua_State *L = n->L;

    (void)node;
    (void)service;
    if (L == NULL || n->closing) {
        if (skc_msg_kind(msg) == SKC_MSG_CALL) {
            skc_msg_fail(msg, "node is closing");
        }
        return;
    }
    if (!lua_checkstack(L, 4)) {
        if (skc_msg_kind(msg) == SKC_MSG_CALL) {
            skc_msg_fail(msg, "Lua stack overflow");
        }
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
    lskc_msg_push(L, msg);
    lua_pushvalue(L, -1);
    lua_insert(L, -3); /* keep the msg below the call to expire it */
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        if (skc_msg_kind(msg) == SKC_MSG_CALL) {
            /* The caller must not hang: tell it what went wrong. If the
             * handler had already answered, this is an ESTATE no-op. */
            const char *text = luaL_tolstring(L, -1, NULL);
            skc_msg_fail(msg, text);
            lua_pop(L, 1);
        }
        lskc_node_keep_error(n, L);
    }
    lskc_msg_expire(L, -1);
    lua_pop(L, 1);
}

/* node:service(fn) -> handle.  fn(msg) runs in poll() for each message. */
static int
node_service(lua_State *L)
{
    lnode *n = lskc_check_lnode(L, 1);
    skc_node *node = lskc_check_node(L, 1);
    lcallback *c = lskc_callback_new(L, n, &n->services, 2);
    int rc = skc_service_create(node, &c->service, service_handler, c);
    if (rc < 0) {
        lskc_callback_free(L, &n->services, c);
        return lskc_fail(L, rc);
    }
    lua_pushinteger(L, (lua_Integer)c->service);
    return 1;
}

static uint32_t
check_handle(lua_State *L, int idx)
{
    lua_Integer h = luaL_checkinteger(L, idx);
    luaL_argcheck(L, h > 0 && h <= (lua_Integer)UINT32_MAX, idx,
        "service handle out of range");
    return (uint32_t)h;
}

/* node:service_destroy(handle) */
static int
node_service_destroy(lua_State *L)
{
    lnode *n = lskc_check_lnode(L, 1);
    skc_node *node = lskc_check_node(L, 1);
    uint32_t h = check_handle(L, 2);
    int rc = skc_service_destroy(node, h);
    lcallback *c;
    if (rc < 0) {
        return lskc_fail(L, rc);
    }
    for (c = n->services; c != NULL; c = c->next) {
        if (c->service == h) {
            lskc_callback_free(L, &n->services, c);
            break;
        }
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int
node_register(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
    const char *name = luaL_checkstring(L, 2);
    uint32_t h = check_handle(L, 3);
    return lskc_result(L, skc_name_register(node, name, h));
}

static int
node_unregister(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
    return lskc_result(L, skc_name_unregister(node, luaL_checkstring(L, 2)));
}

static int
node_lookup(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
    uint32_t h = 0;
    int rc = skc_name_lookup(node, &h, luaL_checkstring(L, 2));
    if (rc < 0) {
        return lskc_fail(L, rc);
    }
    lua_pushinteger(L, (lua_Integer)h);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Polling                                                                */
/* ---------------------------------------------------------------------- */

static int
node_fd(lua_State *L)
{
    int fd = -1;
    int rc = skc_node_fd(lskc_check_node(L, 1), &fd);
    if (rc < 0) {
        return lskc_fail(L, rc);
    }
    lua_pushinteger(L, fd);
    return 1;
}

/* node:poll([timeout_ms]) -> count.  timeout: nil/0 = do not wait,
 * < 0 = until something is ready.  Re-raises the first error raised by a
 * handler or callback run during this poll. */
static int
node_poll(lua_State *L)
{
    lnode *n = lskc_check_lnode(L, 1);
    skc_node *node = lskc_check_node(L, 1);
    lua_Integer t = luaL_optinteger(L, 2, 0);
    lua_State *saved_L = n->L;
    int saved_err = n->err_ref;
    int rc;

    if (t > INT32_MAX) {
        t = INT32_MAX;
    }
    if (t < 0) {
        t = -1;
    }
    n->L = L;
    n->err_ref = LUA_NOREF;
    log_drain(n, L);
    if (n->err_ref == LUA_NOREF) {
        rc = skc_node_poll(node, (int32_t)t);
        log_drain(n, L);
    } else {
        rc = 0;
    }
    n->L = saved_L;
    if (n->err_ref != LUA_NOREF) {
        int ref = n->err_ref;
        n->err_ref = saved_err;
        lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return lua_error(L);
    }
    n->err_ref = saved_err;
    if (rc < 0) {
        return lskc_fail(L, rc);
    }
    lua_pushinteger(L, rc);
    return 1;
}

static int
node_wakeup(lua_State *L)
{
    return lskc_result(L, skc_node_wakeup(lskc_check_node(L, 1)));
}

/* ---------------------------------------------------------------------- */
/* The class                                                              */
/* ---------------------------------------------------------------------- */

void
lskc_node_init(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "name", node_name },
        { "closed", node_closed },
        { "open", node_open },
        { "close_listeners", node_close_listeners },
        { "unlisten", node_close_listeners }, /* old name, kept */
        { "close", node_destroy },
        { "destroy", node_destroy },
        { "map_load", lskc_node_map_load },
        { "map_reload", lskc_node_map_reload },
        { "map_watch", lskc_node_map_watch },
        { "map_parse", lskc_node_map_parse },
        { "map_set", lskc_node_map_set },
        { "map_update", lskc_node_map_update },
        { "map_get", lskc_node_map_get },
        { "map_names", lskc_node_map_names },
        { "map_source", lskc_node_map_source },
        { "map_set_group", lskc_node_map_set_group },
        { "monitor", lskc_node_monitor },
        { "peer_state", lskc_node_peer_state },
        { "ping", lskc_node_ping },
        { "stats", lskc_node_stats },
        { "ping_async", lskc_node_ping_async },
        { "service", node_service },
        { "service_destroy", node_service_destroy },
        { "register", node_register },
        { "unregister", node_unregister },
        { "lookup", node_lookup },
        { "call", lskc_node_call },
        { "call_async", lskc_node_call_async },
        { "call_values", lskc_node_call_values },
        { "send", lskc_node_send },
        { "send_values", lskc_node_send_values },
        { "query", lskc_node_query },
        { "query_async", lskc_node_query_async },
        { "fd", node_fd },
        { "poll", node_poll },
        { "wakeup", node_wakeup },
        { NULL, NULL },
    };
    static const luaL_Reg meta[] = {
        { "__gc", node_gc },
        { "__close", node_gc },
        { "__tostring", node_tostring },
        { NULL, NULL },
    };

    lskc_new_class(L, LSKC_NODE, methods, meta);
}
