/* lskc.c -- the Lua 5.4 module `skc`: a thin, luv-style layer over skc.h.
 *
 * Rules this file keeps (STYLE.md §7):
 *  - Lua only runs on the thread that calls node:poll().  Nodes are always
 *    created in caller-driven mode, so service handlers and async-call
 *    completions run inside skc_node_poll(), on the Lua thread, and this
 *    file calls into Lua from there.  Log lines, which the core may emit
 *    from any thread, are queued under a mutex and delivered by poll().
 *  - Bad arguments raise (luaL_check*); runtime failures return
 *    nil, message, code_name (message = skc_last_error() or strerror).
 *  - A Lua error must never unwind through the core's C frames: every call
 *    into Lua from a core callback is a lua_pcall.  The first error raised
 *    by a handler or callback during one poll() is re-raised by poll()
 *    after skc_node_poll() has returned.
 *  - Everything the module allocates is released by __gc/__close: nodes
 *    (with their service and call contexts), deferred replies, pack and
 *    unpack buffers.
 *
 * Only skc.h is used; nothing from lib/ internals.
 */
#include <lauxlib.h>
#include <lua.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "skc/skc.h"

#define LSKC_NODE "skc.node"
#define LSKC_MSG "skc.msg"
#define LSKC_REPLY "skc.reply"
#define LSKC_PACKBUF "skc.packbuf"

/* Tables nested deeper than this are refused by pack and unpack. */
#define LSKC_MAX_DEPTH 32

/* ---------------------------------------------------------------------- */
/* Results                                                                 */
/* ---------------------------------------------------------------------- */

/* Pushes nil, message, code_name; returns 3 (luv's fail convention). */
static int
lskc_fail(lua_State *L, int rc)
{
    const char *detail = skc_last_error();
    lua_pushnil(L);
    if (detail != NULL && detail[0] != '\0') {
        lua_pushstring(L, detail);
    } else {
        lua_pushstring(L, skc_strerror(rc));
    }
    lua_pushstring(L, skc_errname(rc));
    return 3;
}

/* Pushes true (rc == 0) or the failure triple. */
static int
lskc_result(lua_State *L, int rc)
{
    if (rc < 0) {
        return lskc_fail(L, rc);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Node state                                                              */
/* ---------------------------------------------------------------------- */

typedef struct lnode lnode;

/* A Lua function held for the core: a service handler or the completion of
 * an async call.  Linked into its node so that everything left is released
 * when the node is destroyed. */
typedef struct lctx {
    lnode *n;
    int ref;          /* registry ref of the Lua function */
    uint32_t service; /* service handle (handlers only) */
    struct lctx *prev;
    struct lctx *next;
} lctx;

typedef struct logent {
    int level;
    struct logent *next;
    char text[];
} logent;

struct lnode {
    skc_node *node;
    lua_State *L;     /* thread inside poll(); NULL outside */
    int err_ref;      /* first error raised during this poll, or LUA_NOREF */
    int closing;      /* set by destroy: callbacks no longer enter Lua */
    lctx *calls;      /* pending async calls */
    lctx *services;   /* live service handlers */
    int log_ref;      /* Lua log function, or LUA_NOREF */
    int log_init;     /* log_lock initialised */
    pthread_mutex_t log_lock;
    logent *log_head;
    logent *log_tail;
    size_t log_count;
};

static void
ctx_link(lctx **head, lctx *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head != NULL) {
        (*head)->prev = c;
    }
    *head = c;
}

static void
ctx_unlink(lctx **head, lctx *c)
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

/* Records an error raised by a callback (the value on top of L): the first
 * one is kept for poll() to re-raise, later ones are dropped. */
static void
node_keep_error(lnode *n, lua_State *L)
{
    if (n->err_ref == LUA_NOREF) {
        n->err_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else {
        lua_pop(L, 1);
    }
}

/* ---------------------------------------------------------------------- */
/* Logging: any thread -> queue -> Lua in poll()                           */
/* ---------------------------------------------------------------------- */

#define LSKC_LOG_QUEUE_MAX 10000

static void
log_to_queue(int level, const char *node, const char *text, void *arg)
{
    lnode *n = arg;
    size_t nl = strlen(node), tl = strlen(text);
    logent *e;

    (void) nl;
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
                node_keep_error(n, L);
            }
        }
        free(e);
        e = next;
    }
}

/* ---------------------------------------------------------------------- */
/* skc.msg: a message borrowed for the duration of its handler             */
/* ---------------------------------------------------------------------- */

typedef struct lmsg {
    skc_msg *msg; /* NULL once the handler has returned */
} lmsg;

static skc_msg *
check_msg(lua_State *L, int idx)
{
    lmsg *m = luaL_checkudata(L, idx, LSKC_MSG);
    if (m->msg == NULL) {
        luaL_error(L, "skc.msg used after its handler returned");
    }
    return m->msg;
}

static int
msg_data(lua_State *L)
{
    size_t len = 0;
    const void *p = skc_msg_data(check_msg(L, 1), &len);
    lua_pushlstring(L, p != NULL ? p : "", p != NULL ? len : 0);
    return 1;
}

static int
msg_kind(lua_State *L)
{
    int k = skc_msg_kind(check_msg(L, 1));
    lua_pushstring(L, k == SKC_MSG_CALL ? "call" : "send");
    return 1;
}

static int
msg_target(lua_State *L)
{
    const char *t = skc_msg_target(check_msg(L, 1));
    lua_pushstring(L, t != NULL ? t : "");
    return 1;
}

static int
msg_remaining(lua_State *L)
{
    lua_pushinteger(L, skc_msg_remaining_ms(check_msg(L, 1)));
    return 1;
}

static int
msg_reply(lua_State *L)
{
    skc_msg *msg = check_msg(L, 1);
    size_t len = 0;
    const char *data = luaL_optlstring(L, 2, "", &len);
    return lskc_result(L, skc_msg_reply(msg, data, len));
}

static int
msg_fail(lua_State *L)
{
    skc_msg *msg = check_msg(L, 1);
    const char *text = luaL_checkstring(L, 2);
    return lskc_result(L, skc_msg_fail(msg, text));
}

typedef struct lreply {
    skc_reply *reply; /* NULL once answered or abandoned */
} lreply;

static int
msg_defer(lua_State *L)
{
    skc_msg *msg = check_msg(L, 1);
    lreply *r = lua_newuserdatauv(L, sizeof(*r), 0);
    int rc;
    r->reply = NULL;
    luaL_setmetatable(L, LSKC_REPLY);
    rc = skc_msg_defer(msg, &r->reply);
    if (rc < 0) {
        r->reply = NULL;
        return lskc_fail(L, rc);
    }
    return 1;
}

static int
msg_tostring(lua_State *L)
{
    lmsg *m = luaL_checkudata(L, 1, LSKC_MSG);
    if (m->msg == NULL) {
        lua_pushliteral(L, "skc.msg (expired)");
    } else {
        lua_pushfstring(L, "skc.msg (%s %s)",
            skc_msg_kind(m->msg) == SKC_MSG_CALL ? "call" : "send",
            skc_msg_target(m->msg));
    }
    return 1;
}

/* ---------------------------------------------------------------------- */
/* skc.reply: a deferred reply                                             */
/* ---------------------------------------------------------------------- */

static lreply *
check_reply(lua_State *L, int idx)
{
    lreply *r = luaL_checkudata(L, idx, LSKC_REPLY);
    if (r->reply == NULL) {
        luaL_error(L, "skc.reply already answered");
    }
    return r;
}

static int
reply_send(lua_State *L)
{
    lreply *r = check_reply(L, 1);
    size_t len = 0;
    const char *data = luaL_optlstring(L, 2, "", &len);
    skc_reply *rep = r->reply;
    r->reply = NULL; /* freed by skc_reply_send whatever the result */
    return lskc_result(L, skc_reply_send(rep, data, len));
}

static int
reply_fail(lua_State *L)
{
    lreply *r = check_reply(L, 1);
    const char *text = luaL_checkstring(L, 2);
    skc_reply *rep = r->reply;
    r->reply = NULL;
    return lskc_result(L, skc_reply_fail(rep, text));
}

/* reply:free(): abandon (the caller gets ENOREPLY).  Also __gc/__close. */
static int
reply_free(lua_State *L)
{
    lreply *r = luaL_checkudata(L, 1, LSKC_REPLY);
    if (r->reply != NULL) {
        skc_reply_free(r->reply);
        r->reply = NULL;
    }
    return 0;
}

static int
reply_pending(lua_State *L)
{
    lreply *r = luaL_checkudata(L, 1, LSKC_REPLY);
    lua_pushboolean(L, r->reply != NULL);
    return 1;
}

static int
reply_tostring(lua_State *L)
{
    lreply *r = luaL_checkudata(L, 1, LSKC_REPLY);
    lua_pushfstring(
        L, "skc.reply (%s)", r->reply != NULL ? "pending" : "answered");
    return 1;
}

/* ---------------------------------------------------------------------- */
/* skc.node                                                                */
/* ---------------------------------------------------------------------- */

static lnode *
check_lnode(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, LSKC_NODE);
}

static skc_node *
check_node(lua_State *L, int idx)
{
    lnode *n = check_lnode(L, idx);
    if (n->node == NULL) {
        luaL_error(L, "skc.node is closed");
    }
    return n->node;
}

static lua_Integer
opt_field_int(lua_State *L, int t, const char *key, lua_Integer def,
    lua_Integer lo, lua_Integer hi)
{
    lua_Integer v = def;
    int isnum = 0;
    if (lua_getfield(L, t, key) != LUA_TNIL) {
        v = lua_tointegerx(L, -1, &isnum);
        if (!isnum || v < lo || v > hi) {
            luaL_error(L, "skc.node: option '%s' must be an integer in "
                          "[%I, %I]", key, lo, hi);
        }
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
        level = (int) v;
    }
    lua_pop(L, 1);
    return level;
}

/* skc.node([opts]) -> node | nil, msg, code
 * opts: name, call_timeout (ms), max_msg_size, max_inflight, max_serving,
 *       max_conns, log (function(level, text, node) | true = stderr),
 *       log_level ("error".."debug" or 1..4). */
static int
lskc_node_new(lua_State *L)
{
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    lnode *n;
    int rc, t = 1, log_kind = 0;
    const char *name = NULL;

    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        if (lua_getfield(L, t, "name") != LUA_TNIL) {
            name = luaL_checkstring(L, -1); /* kept alive below */
        }
        lua_pop(L, 1);
        o.call_timeout_ms = (int32_t) opt_field_int(
            L, t, "call_timeout", 0, 0, INT32_MAX);
        o.max_msg_size = (uint32_t) opt_field_int(
            L, t, "max_msg_size", 0, 0, UINT32_MAX);
        o.max_inflight = (uint32_t) opt_field_int(
            L, t, "max_inflight", 0, 0, UINT32_MAX);
        o.max_serving = (uint32_t) opt_field_int(
            L, t, "max_serving", 0, 0, UINT32_MAX);
        o.max_conns = (uint32_t) opt_field_int(
            L, t, "max_conns", 0, 0, UINT32_MAX);
        o.log_level = parse_log_level(L, t);
        switch (lua_getfield(L, t, "log")) {
        case LUA_TNIL:
            break;
        case LUA_TFUNCTION:
            log_kind = 2;
            break;
        case LUA_TBOOLEAN:
            log_kind = lua_toboolean(L, -1) ? 1 : 0;
            break;
        case LUA_TSTRING:
            if (strcmp(lua_tostring(L, -1), "stderr") != 0) {
                return luaL_error(L, "skc.node: option 'log' must be a "
                                     "function, true or \"stderr\"");
            }
            log_kind = 1;
            break;
        default:
            return luaL_error(L, "skc.node: option 'log' must be a "
                                 "function, true or \"stderr\"");
        }
        /* the log value stays at the top of the stack */
    } else {
        lua_pushnil(L);
    }
    o.name = name;
    o.workers = SKC_CALLER_DRIVEN;

    n = lua_newuserdatauv(L, sizeof(*n), 0);
    memset(n, 0, sizeof(*n));
    n->err_ref = LUA_NOREF;
    n->log_ref = LUA_NOREF;
    luaL_setmetatable(L, LSKC_NODE);
    if (log_kind == 1) {
        o.log = skc_log_stderr;
    } else if (log_kind == 2) {
        if (pthread_mutex_init(&n->log_lock, NULL) != 0) {
            return luaL_error(L, "skc.node: cannot create a mutex");
        }
        n->log_init = 1;
        lua_pushvalue(L, -2);
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

static void
node_free_contexts(lnode *n, lua_State *L)
{
    lctx *c;
    while ((c = n->calls) != NULL) {
        ctx_unlink(&n->calls, c);
        luaL_unref(L, LUA_REGISTRYINDEX, c->ref);
        free(c);
    }
    while ((c = n->services) != NULL) {
        ctx_unlink(&n->services, c);
        luaL_unref(L, LUA_REGISTRYINDEX, c->ref);
        free(c);
    }
}

/* node:close() (also __gc, __close): destroys the node.  Async calls still
 * pending are dropped without running their callbacks. */
static int
node_destroy(lua_State *L)
{
    lnode *n = check_lnode(L, 1);
    logent *e;
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
    node_free_contexts(n, L);
    e = log_take_all(n);
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
    lnode *n = check_lnode(L, 1);
    if (n->node == NULL) {
        lua_pushliteral(L, "skc.node (closed)");
    } else {
        lua_pushfstring(L, "skc.node '%s' (%p)", skc_node_name(n->node),
            (void *) n->node);
    }
    return 1;
}

static int
node_name(lua_State *L)
{
    lua_pushstring(L, skc_node_name(check_node(L, 1)));
    return 1;
}

static int
node_closed(lua_State *L)
{
    lua_pushboolean(L, check_lnode(L, 1)->node == NULL);
    return 1;
}

/* node:open(where) -> bound address URL */
static int
node_open(lua_State *L)
{
    skc_node *node = check_node(L, 1);
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

static int
node_unlisten(lua_State *L)
{
    return lskc_result(L, skc_node_close(check_node(L, 1)));
}

static int
node_map_load(lua_State *L)
{
    skc_node *node = check_node(L, 1);
    return lskc_result(L, skc_node_map_load(node, luaL_checkstring(L, 2)));
}

static int
node_map_reload(lua_State *L)
{
    return lskc_result(L, skc_node_map_reload(check_node(L, 1)));
}

static int
node_map_parse(lua_State *L)
{
    skc_node *node = check_node(L, 1);
    const char *text = luaL_checkstring(L, 2);
    const char *origin = luaL_optstring(L, 3, NULL);
    return lskc_result(L, skc_node_map_parse(node, text, origin));
}

/* Converts a map value at idx: string -> itself, false/nil -> NULL (down),
 * true -> "true" (options), integer -> its digits (options).  A converted
 * integer is stored in the table at `anchor` so that it stays alive. */
static const char *
map_value(lua_State *L, int idx, const char *name, int anchor)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        return lua_tostring(L, idx);
    case LUA_TNIL:
        return NULL;
    case LUA_TBOOLEAN:
        return lua_toboolean(L, idx) ? "true" : NULL;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            const char *s =
                lua_pushfstring(L, "%I", (LUAI_UACINT) lua_tointeger(L, idx));
            lua_rawsetp(L, anchor, s);
            return s;
        }
        /* fall through */
    default:
        luaL_error(L, "cluster map entry '%s': expected an address string "
                      "or false, got %s", name, luaL_typename(L, idx));
        return NULL;
    }
}

/* node:map_set(name, addr | false) */
static int
node_map_set(lua_State *L)
{
    skc_node *node = check_node(L, 1);
    const char *name = luaL_checkstring(L, 2);
    const char *addr;
    int anchor;
    lua_settop(L, 3);
    lua_newtable(L);
    anchor = lua_gettop(L);
    addr = map_value(L, 3, name, anchor);
    return lskc_result(L, skc_node_map_set(node, name, addr));
}

/* node:map_update{ name = addr | false, __nowaiting = bool, ... } */
static int
node_map_update(lua_State *L)
{
    skc_node *node = check_node(L, 1);
    size_t count = 0, i = 0;
    const char **names, **addrs;
    int rc, anchor;

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_newtable(L);
    anchor = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, 2) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            return luaL_error(L, "cluster map keys must be strings, got %s",
                luaL_typename(L, -2));
        }
        count++;
        lua_pop(L, 1);
    }
    /* Userdata buffers: freed by the GC even if a check below raises. */
    names = lua_newuserdatauv(L, sizeof(char *) * (count + 1), 0);
    addrs = lua_newuserdatauv(L, sizeof(char *) * (count + 1), 0);
    lua_pushnil(L);
    while (lua_next(L, 2) != 0) {
        names[i] = lua_tostring(L, -2);
        addrs[i] = map_value(L, -1, names[i], anchor);
        /* Keys and string values are anchored by the table itself,
         * converted integers by the anchor table. */
        i++;
        lua_pop(L, 1);
    }
    rc = skc_node_map_update(node, names, addrs, count);
    return lskc_result(L, rc);
}

/* node:map_get(name) -> url | false (down) | nil, msg, "ENONODE" */
static int
node_map_get(lua_State *L)
{
    skc_node *node = check_node(L, 1);
    char *addr = NULL;
    int rc = skc_node_map_get(node, &addr, luaL_checkstring(L, 2));
    if (rc < 0) {
        return lskc_fail(L, rc);
    }
    if (addr == NULL) {
        lua_pushboolean(L, 0);
    } else {
        lua_pushstring(L, addr);
        skc_free(addr);
    }
    return 1;
}

/* The handler of every service created from Lua.  Runs inside
 * skc_node_poll() on the Lua thread: fn(msg). */
static void
service_handler(skc_node *node, uint32_t service, skc_msg *msg, void *arg)
{
    lctx *c = arg;
    lnode *n = c->n;
    lua_State *L = n->L;
    lmsg *m;
    int failed = 0;

    (void) node;
    (void) service;
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
    m = lua_newuserdatauv(L, sizeof(*m), 0);
    m->msg = msg;
    luaL_setmetatable(L, LSKC_MSG);
    lua_pushvalue(L, -1);
    lua_insert(L, -3); /* keep the msg below the call to expire it */
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        failed = 1;
        if (skc_msg_kind(msg) == SKC_MSG_CALL) {
            /* The caller must not hang: tell it what went wrong. If the
             * handler had already answered, this is an ESTATE no-op. */
            const char *text = luaL_tolstring(L, -1, NULL);
            skc_msg_fail(msg, text);
            lua_pop(L, 1);
        }
        node_keep_error(n, L);
    }
    (void) failed;
    m->msg = NULL;
    lua_pop(L, 1);
}

/* node:service(fn) -> handle.  fn(msg) runs in poll() for each message. */
static int
node_service(lua_State *L)
{
    lnode *n = check_lnode(L, 1);
    skc_node *node = check_node(L, 1);
    lctx *c;
    int rc;

    luaL_checktype(L, 2, LUA_TFUNCTION);
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return luaL_error(L, "out of memory");
    }
    c->n = n;
    lua_pushvalue(L, 2);
    c->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    rc = skc_service_create(node, &c->service, service_handler, c);
    if (rc < 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, c->ref);
        free(c);
        return lskc_fail(L, rc);
    }
    ctx_link(&n->services, c);
    lua_pushinteger(L, (lua_Integer) c->service);
    return 1;
}

static uint32_t
check_handle(lua_State *L, int idx)
{
    lua_Integer h = luaL_checkinteger(L, idx);
    luaL_argcheck(L, h > 0 && h <= (lua_Integer) UINT32_MAX, idx,
        "service handle out of range");
    return (uint32_t) h;
}

/* node:service_destroy(handle) */
static int
node_service_destroy(lua_State *L)
{
    lnode *n = check_lnode(L, 1);
    skc_node *node = check_node(L, 1);
    uint32_t h = check_handle(L, 2);
    int rc = skc_service_destroy(node, h);
    lctx *c;
    if (rc < 0) {
        return lskc_fail(L, rc);
    }
    for (c = n->services; c != NULL; c = c->next) {
        if (c->service == h) {
            ctx_unlink(&n->services, c);
            luaL_unref(L, LUA_REGISTRYINDEX, c->ref);
            free(c);
            break;
        }
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int
node_register(lua_State *L)
{
    skc_node *node = check_node(L, 1);
    const char *name = luaL_checkstring(L, 2);
    uint32_t h = check_handle(L, 3);
    return lskc_result(L, skc_name_register(node, name, h));
}

static int
node_unregister(lua_State *L)
{
    skc_node *node = check_node(L, 1);
    return lskc_result(L, skc_name_unregister(node, luaL_checkstring(L, 2)));
}

static int
node_lookup(lua_State *L)
{
    skc_node *node = check_node(L, 1);
    uint32_t h = 0;
    int rc = skc_name_lookup(node, &h, luaL_checkstring(L, 2));
    if (rc < 0) {
        return lskc_fail(L, rc);
    }
    lua_pushinteger(L, (lua_Integer) h);
    return 1;
}

static int32_t
opt_timeout(lua_State *L, int idx)
{
    lua_Integer t = luaL_optinteger(L, idx, 0);
    luaL_argcheck(L, t >= 0 && t <= INT32_MAX, idx,
        "timeout must be >= 0 milliseconds (0 = node default)");
    return (int32_t) t;
}

/* node:call(peer, target, data [, timeout_ms]) -> reply (blocking) */
static int
node_call(lua_State *L)
{
    skc_node *node = check_node(L, 1);
    const char *peer = luaL_checkstring(L, 2);
    const char *target = luaL_checkstring(L, 3);
    size_t len = 0;
    const char *data = luaL_optlstring(L, 4, "", &len);
    int32_t timeout = opt_timeout(L, 5);
    void *out = NULL;
    size_t out_len = 0;
    int rc = skc_node_call(node, &out, &out_len, peer, target, data, len,
        timeout);
    if (rc < 0) {
        skc_free(out);
        return lskc_fail(L, rc);
    }
    lua_pushlstring(L, out != NULL ? out : "", out != NULL ? out_len : 0);
    skc_free(out);
    return 1;
}

/* The end of an async call or query: unlinks and frees c and pushes its
 * Lua callback.  Returns the Lua state to finish with ctx_call(), or NULL
 * when nothing is to be called (the node is closing). */
static lua_State *
ctx_begin(lctx *c, lnode **np)
{
    lnode *n = c->n;
    lua_State *L = n->L;
    int ref = c->ref;

    ctx_unlink(&n->calls, c);
    free(c);
    *np = n;
    if (L == NULL) {
        /* Cannot happen in caller-driven mode (completions run in poll or
         * destroy, both set L); the ref is then released with the state. */
        return NULL;
    }
    if (n->closing || !lua_checkstack(L, 4)) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return NULL;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    return L;
}

/* Pushes nil, message, code for a failed operation. */
static void
push_failure(lua_State *L, int status, const char *detail)
{
    lua_pushnil(L);
    lua_pushstring(L, detail != NULL && detail[0] != '\0'
            ? detail
            : skc_strerror(status));
    lua_pushstring(L, skc_errname(status));
}

/* Calls the callback with the 3 values pushed after it. */
static void
ctx_call(lnode *n, lua_State *L)
{
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
        node_keep_error(n, L);
    }
}

static void
call_done(int status, const void *data, size_t len, const char *detail,
    void *arg)
{
    lnode *n;
    lua_State *L = ctx_begin(arg, &n);
    if (L == NULL) {
        return;
    }
    if (status == SKC_OK) {
        lua_pushlstring(
            L, data != NULL ? data : "", data != NULL ? len : 0);
        lua_pushnil(L);
        lua_pushnil(L);
    } else {
        push_failure(L, status, detail);
    }
    ctx_call(n, L);
}

/* node:call_async(peer, target, data, timeout_ms | nil, cb) -> true
 * cb(reply) on success, cb(nil, msg, code) on failure; runs in poll(). */
/* Registers the Lua function at stack index cb for an async operation;
 * raises on bad arguments or out of memory. */
static lctx *
ctx_new(lua_State *L, lnode *n, int cb)
{
    luaL_checktype(L, cb, LUA_TFUNCTION);
    lctx *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        luaL_error(L, "out of memory");
        return NULL;
    }
    c->n = n;
    lua_pushvalue(L, cb);
    c->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    ctx_link(&n->calls, c);
    return c;
}

/* Ends an async start: on failure the callback never runs, so c goes. */
static int
ctx_started(lua_State *L, lnode *n, lctx *c, int rc)
{
    if (rc < 0) {
        ctx_unlink(&n->calls, c);
        luaL_unref(L, LUA_REGISTRYINDEX, c->ref);
        free(c);
        return lskc_fail(L, rc);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int
node_call_async(lua_State *L)
{
    lnode *n = check_lnode(L, 1);
    skc_node *node = check_node(L, 1);
    const char *peer = luaL_checkstring(L, 2);
    const char *target = luaL_checkstring(L, 3);
    size_t len = 0;
    const char *data = luaL_optlstring(L, 4, "", &len);
    int32_t timeout = opt_timeout(L, 5);
    lctx *c = ctx_new(L, n, 6);
    return ctx_started(L, n, c, skc_node_call_async(
        node, peer, target, data, len, timeout, call_done, c));
}

/* node:send(peer, target, data) -> true */
static int
node_send(lua_State *L)
{
    skc_node *node = check_node(L, 1);
    const char *peer = luaL_checkstring(L, 2);
    const char *target = luaL_checkstring(L, 3);
    size_t len = 0;
    const char *data = luaL_optlstring(L, 4, "", &len);
    return lskc_result(
        L, skc_node_send(node, peer, target, data, len));
}

static void
query_done(int status, uint32_t handle, const char *detail, void *arg)
{
    lnode *n;
    lua_State *L = ctx_begin(arg, &n);
    if (L == NULL) {
        return;
    }
    if (status == SKC_OK) {
        lua_pushinteger(L, (lua_Integer) handle);
        lua_pushnil(L);
        lua_pushnil(L);
    } else {
        push_failure(L, status, detail);
    }
    ctx_call(n, L);
}

/* node:query_async(peer, name, timeout_ms | nil, cb) -> true; later, in
 * poll: cb(handle) or cb(nil, message, code) */
static int
node_query_async(lua_State *L)
{
    lnode *n = check_lnode(L, 1);
    skc_node *node = check_node(L, 1);
    const char *peer = luaL_checkstring(L, 2);
    const char *name = luaL_checkstring(L, 3);
    int32_t timeout = opt_timeout(L, 4);
    lctx *c = ctx_new(L, n, 5);
    return ctx_started(L, n, c, skc_node_query_async(
        node, peer, name, timeout, query_done, c));
}

/* node:query(peer, name [, timeout_ms]) -> handle (blocking) */
static int
node_query(lua_State *L)
{
    skc_node *node = check_node(L, 1);
    const char *peer = luaL_checkstring(L, 2);
    const char *name = luaL_checkstring(L, 3);
    int32_t timeout = opt_timeout(L, 4);
    uint32_t h = 0;
    int rc = skc_node_query(node, &h, peer, name, timeout);
    if (rc < 0) {
        return lskc_fail(L, rc);
    }
    lua_pushinteger(L, (lua_Integer) h);
    return 1;
}

static int
node_fd(lua_State *L)
{
    int fd = -1;
    int rc = skc_node_fd(check_node(L, 1), &fd);
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
    lnode *n = check_lnode(L, 1);
    skc_node *node = check_node(L, 1);
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
        rc = skc_node_poll(node, (int32_t) t);
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
    return lskc_result(L, skc_node_wakeup(check_node(L, 1)));
}

/* ---------------------------------------------------------------------- */
/* Payload codec: Lua values <-> MessagePack (DESIGN.md decision 3)        */
/* ---------------------------------------------------------------------- */

/* Rules (docs/LUA.md):
 *  - nil, booleans, integers (int64), floats (always as float64, so 1.0
 *    stays a float), strings (MessagePack str, byte-exact);
 *  - a table whose keys are exactly 1..n (n >= 0) is an array, so an empty
 *    table is an empty array; any other table is a map (holes make a map
 *    with integer keys, which unpacks to the same Lua table);
 *  - metatables are ignored (raw access);
 *  - functions, userdata, threads, cycles and nesting deeper than
 *    LSKC_MAX_DEPTH raise an error. */

typedef struct packbuf {
    skc_pack *pack;
    skc_unpack *unpack;
} packbuf;

static int
packbuf_gc(lua_State *L)
{
    packbuf *b = luaL_checkudata(L, 1, LSKC_PACKBUF);
    skc_pack_destroy(b->pack);
    skc_unpack_destroy(b->unpack);
    b->pack = NULL;
    b->unpack = NULL;
    return 0;
}

static packbuf *
packbuf_new(lua_State *L)
{
    packbuf *b = lua_newuserdatauv(L, sizeof(*b), 0);
    b->pack = NULL;
    b->unpack = NULL;
    luaL_setmetatable(L, LSKC_PACKBUF);
    return b;
}

typedef struct packer {
    lua_State *L;
    skc_pack *p;
    int seen;   /* stack index of the table of tables being packed */
    int argn;   /* argument number, for messages */
} packer;

static void
pack_check(packer *pk, int rc)
{
    if (rc < 0) {
        luaL_error(pk->L, "skc.pack: %s (%s)", skc_strerror(rc),
            skc_last_error());
    }
}

static void pack_value(packer *pk, int idx, int depth);

static void
pack_table(packer *pk, int idx, int depth)
{
    lua_State *L = pk->L;
    lua_Integer count = 0, max = 0;
    int is_array = 1;

    if (depth > LSKC_MAX_DEPTH) {
        luaL_error(L, "skc.pack: argument #%d: tables nested deeper than %d",
            pk->argn, LSKC_MAX_DEPTH);
    }
    lua_pushvalue(L, idx);
    if (lua_rawget(L, pk->seen) != LUA_TNIL) {
        luaL_error(L, "skc.pack: argument #%d: table cycle (a table "
                      "contains itself)", pk->argn);
    }
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, pk->seen);

    luaL_checkstack(L, 6, "skc.pack: nesting too deep");
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        count++;
        if (is_array) {
            if (lua_isinteger(L, -2)) {
                lua_Integer k = lua_tointeger(L, -2);
                if (k < 1) {
                    is_array = 0;
                } else if (k > max) {
                    max = k;
                }
            } else {
                is_array = 0;
            }
        }
        lua_pop(L, 1);
    }
    if (is_array && max != count) {
        is_array = 0;
    }
    if (count > (lua_Integer) UINT32_MAX) {
        luaL_error(L, "skc.pack: table too large");
    }
    if (is_array) {
        pack_check(pk, skc_pack_array(pk->p, (uint32_t) count));
        for (lua_Integer i = 1; i <= count; i++) {
            lua_rawgeti(L, idx, i);
            pack_value(pk, lua_gettop(L), depth);
            lua_pop(L, 1);
        }
    } else {
        pack_check(pk, skc_pack_map(pk->p, (uint32_t) count));
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            int top = lua_gettop(L);
            pack_value(pk, top - 1, depth);
            pack_value(pk, top, depth);
            lua_pop(L, 1);
        }
    }
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, pk->seen);
}

static void
pack_value(packer *pk, int idx, int depth)
{
    lua_State *L = pk->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        pack_check(pk, skc_pack_nil(pk->p));
        break;
    case LUA_TBOOLEAN:
        pack_check(pk, skc_pack_bool(pk->p, lua_toboolean(L, idx)));
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            pack_check(pk, skc_pack_int(pk->p, lua_tointeger(L, idx)));
        } else {
            pack_check(pk, skc_pack_double(pk->p, lua_tonumber(L, idx)));
        }
        break;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        pack_check(pk, skc_pack_str(pk->p, s, len));
        break;
    }
    case LUA_TTABLE:
        pack_table(pk, idx, depth + 1);
        break;
    default:
        luaL_error(L, "skc.pack: argument #%d: cannot pack a %s value "
                      "(only nil, booleans, numbers, strings and tables)",
            pk->argn, luaL_typename(L, idx));
    }
}

/* skc.pack(...) -> string */
static int
lskc_pack(lua_State *L)
{
    int n = lua_gettop(L);
    packbuf *b;
    packer pk;
    const void *data;
    size_t len = 0;
    int rc;

    b = packbuf_new(L);
    rc = skc_pack_create(&b->pack);
    if (rc < 0) {
        return luaL_error(L, "skc.pack: %s", skc_strerror(rc));
    }
    lua_newtable(L);
    pk.L = L;
    pk.p = b->pack;
    pk.seen = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        pk.argn = i;
        pack_value(&pk, i, 0);
    }
    data = skc_pack_data(b->pack, &len);
    lua_pushlstring(L, data != NULL ? data : "", data != NULL ? len : 0);
    skc_pack_destroy(b->pack);
    b->pack = NULL;
    return 1;
}

typedef struct unpacker {
    lua_State *L;
    skc_unpack *u;
    size_t len; /* bytes of input: bounds preallocation */
} unpacker;

static int
unpack_next(unpacker *up, skc_item *it)
{
    int rc;
    it->size = sizeof(*it);
    rc = skc_unpack_next(up->u, it);
    if (rc < 0) {
        luaL_error(up->L, "skc.unpack: malformed data: %s",
            skc_last_error());
    }
    return rc;
}

/* Table size hint: a hostile count must not allocate more than the input
 * could possibly fill. */
static int
prealloc(const unpacker *up, uint32_t count)
{
    size_t n = count;
    if (n > up->len) {
        n = up->len;
    }
    if (n > (1u << 20)) {
        n = 1u << 20;
    }
    return (int) n;
}

static void
unpack_push(unpacker *up, const skc_item *it, int depth)
{
    lua_State *L = up->L;
    skc_item sub = SKC_ITEM_INIT;

    luaL_checkstack(L, 4, "skc.unpack: too many values");
    switch (it->type) {
    case SKC_T_NIL:
        lua_pushnil(L);
        break;
    case SKC_T_BOOL:
        lua_pushboolean(L, it->i != 0);
        break;
    case SKC_T_INT:
        lua_pushinteger(L, (lua_Integer) it->i);
        break;
    case SKC_T_UINT:
        /* Beyond int64: the nearest float (documented). */
        lua_pushnumber(L, (lua_Number) it->u);
        break;
    case SKC_T_FLOAT:
        lua_pushnumber(L, it->d);
        break;
    case SKC_T_STR:
    case SKC_T_BIN:
        lua_pushlstring(L, it->ptr != NULL ? it->ptr : "", it->len);
        break;
    case SKC_T_ARRAY: {
        uint32_t count = it->count;
        if (depth >= LSKC_MAX_DEPTH) {
            luaL_error(L, "skc.unpack: tables nested deeper than %d",
                LSKC_MAX_DEPTH);
        }
        lua_createtable(L, prealloc(up, count), 0);
        for (uint32_t i = 1; i <= count; i++) {
            if (unpack_next(up, &sub) == 0) {
                luaL_error(L, "skc.unpack: truncated array");
            }
            unpack_push(up, &sub, depth + 1);
            lua_rawseti(L, -2, (lua_Integer) i);
        }
        break;
    }
    case SKC_T_MAP: {
        uint32_t count = it->count;
        if (depth >= LSKC_MAX_DEPTH) {
            luaL_error(L, "skc.unpack: tables nested deeper than %d",
                LSKC_MAX_DEPTH);
        }
        lua_createtable(L, 0, prealloc(up, count));
        for (uint32_t i = 0; i < count; i++) {
            if (unpack_next(up, &sub) == 0) {
                luaL_error(L, "skc.unpack: truncated map");
            }
            unpack_push(up, &sub, depth + 1);
            if (unpack_next(up, &sub) == 0) {
                luaL_error(L, "skc.unpack: truncated map");
            }
            unpack_push(up, &sub, depth + 1);
            if (lua_isnil(L, -2)) {
                luaL_error(L, "skc.unpack: map key is nil");
            }
            if (lua_type(L, -2) == LUA_TNUMBER && !lua_isinteger(L, -2)) {
                lua_Number k = lua_tonumber(L, -2);
                if (k != k) {
                    luaL_error(L, "skc.unpack: map key is NaN");
                }
            }
            lua_rawset(L, -3);
        }
        break;
    }
    case SKC_T_EXT:
        luaL_error(L, "skc.unpack: unsupported MessagePack ext type %d",
            (int) it->ext_type);
        break;
    default:
        luaL_error(L, "skc.unpack: unknown item type %d", (int) it->type);
    }
}

/* skc.unpack(str) -> ... (every value in the payload) */
static int
lskc_unpack(lua_State *L)
{
    size_t len = 0;
    const char *data = luaL_checklstring(L, 1, &len);
    packbuf *b;
    unpacker up;
    skc_item it = SKC_ITEM_INIT;
    int base, rc;

    lua_settop(L, 1);
    b = packbuf_new(L);
    rc = skc_unpack_create(&b->unpack, data, len);
    if (rc < 0) {
        return luaL_error(L, "skc.unpack: %s", skc_strerror(rc));
    }
    up.L = L;
    up.u = b->unpack;
    up.len = len;
    base = lua_gettop(L);
    while (unpack_next(&up, &it) == 1) {
        unpack_push(&up, &it, 0);
    }
    skc_unpack_destroy(b->unpack);
    b->unpack = NULL;
    return lua_gettop(L) - base;
}

/* ---------------------------------------------------------------------- */
/* Misc                                                                    */
/* ---------------------------------------------------------------------- */

static int
lskc_version(lua_State *L)
{
    lua_pushstring(L, skc_version_string());
    lua_pushinteger(L, (lua_Integer) skc_version());
    return 2;
}

/* skc.strerror(code) / skc.errname(code) */
static int
lskc_strerror(lua_State *L)
{
    lua_pushstring(L, skc_strerror((int) luaL_checkinteger(L, 1)));
    return 1;
}

static int
lskc_errname(lua_State *L)
{
    lua_pushstring(L, skc_errname((int) luaL_checkinteger(L, 1)));
    return 1;
}

/* skc.clock() -> monotonic milliseconds (integer) */
static int
lskc_clock(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushinteger(L, (lua_Integer) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    return 1;
}

/* skc.time() -> wall-clock seconds (float) */
static int
lskc_time(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number) ts.tv_sec + ts.tv_nsec / 1e9);
    return 1;
}

static const luaL_Reg node_methods[] = {
    { "name", node_name },
    { "closed", node_closed },
    { "open", node_open },
    { "unlisten", node_unlisten },
    { "close", node_destroy },
    { "destroy", node_destroy },
    { "map_load", node_map_load },
    { "map_reload", node_map_reload },
    { "map_parse", node_map_parse },
    { "map_set", node_map_set },
    { "map_update", node_map_update },
    { "map_get", node_map_get },
    { "service", node_service },
    { "service_destroy", node_service_destroy },
    { "register", node_register },
    { "unregister", node_unregister },
    { "lookup", node_lookup },
    { "call", node_call },
    { "call_async", node_call_async },
    { "send", node_send },
    { "query", node_query },
    { "query_async", node_query_async },
    { "fd", node_fd },
    { "poll", node_poll },
    { "wakeup", node_wakeup },
    { NULL, NULL },
};

static const luaL_Reg node_meta[] = {
    { "__gc", node_gc },
    { "__close", node_gc },
    { "__tostring", node_tostring },
    { NULL, NULL },
};

static const luaL_Reg msg_methods[] = {
    { "data", msg_data },
    { "kind", msg_kind },
    { "target", msg_target },
    { "remaining", msg_remaining },
    { "reply", msg_reply },
    { "fail", msg_fail },
    { "defer", msg_defer },
    { NULL, NULL },
};

static const luaL_Reg reply_methods[] = {
    { "send", reply_send },
    { "fail", reply_fail },
    { "free", reply_free },
    { "pending", reply_pending },
    { NULL, NULL },
};

static const luaL_Reg module_funcs[] = {
    { "node", lskc_node_new },
    { "pack", lskc_pack },
    { "unpack", lskc_unpack },
    { "version", lskc_version },
    { "strerror", lskc_strerror },
    { "errname", lskc_errname },
    { "clock", lskc_clock },
    { "time", lskc_time },
    { NULL, NULL },
};

static void
new_class(lua_State *L, const char *name, const luaL_Reg *methods,
    const luaL_Reg *meta)
{
    luaL_newmetatable(L, name);
    if (meta != NULL) {
        luaL_setfuncs(L, meta, 0);
    }
    if (methods != NULL) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}

/* Lua unloads C modules when the state closes.  libskc (through NNG) keeps
 * process-wide threads running until exit, so its code must stay mapped:
 * pin this module, and with it libskc and libnng, for the process's life. */
static void
pin_module(void)
{
    static int pinned;
    Dl_info info;
    if (pinned) {
        return;
    }
    if (dladdr((void *) &pin_module, &info) != 0 && info.dli_fname != NULL) {
        if (dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE)
            != NULL) {
            pinned = 1;
        }
    }
}

__attribute__((visibility("default"))) int
luaopen_skc(lua_State *L)
{
    static const luaL_Reg msg_meta[] = {
        { "__tostring", msg_tostring },
        { NULL, NULL },
    };
    static const luaL_Reg reply_meta[] = {
        { "__gc", reply_free },
        { "__close", reply_free },
        { "__tostring", reply_tostring },
        { NULL, NULL },
    };
    static const luaL_Reg packbuf_meta[] = {
        { "__gc", packbuf_gc },
        { NULL, NULL },
    };

    pin_module();
    new_class(L, LSKC_NODE, node_methods, node_meta);
    new_class(L, LSKC_MSG, msg_methods, msg_meta);
    new_class(L, LSKC_REPLY, reply_methods, reply_meta);
    new_class(L, LSKC_PACKBUF, NULL, packbuf_meta);

    luaL_newlib(L, module_funcs);
    lua_pushstring(L, SKC_VERSION_STRING);
    lua_setfield(L, -2, "VERSION");
    lua_pushinteger(L, LSKC_MAX_DEPTH);
    lua_setfield(L, -2, "MAX_DEPTH");
    /* Error codes by name: skc.E.ETIMEDOUT == -8, and back. */
    lua_newtable(L);
    for (int code = 0; code >= -64; code--) {
        const char *nm = skc_errname(code);
        if (strcmp(nm, "EUNKNOWN") == 0) {
            continue;
        }
        lua_pushinteger(L, code);
        lua_setfield(L, -2, nm);
    }
    lua_setfield(L, -2, "E");
    return 1;
}
