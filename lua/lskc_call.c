/* lskc_call.c -- the request methods of skc.node: call, send and query
 * another node, blocking or with a Lua callback that poll() runs. */
#include "lskc.h"

#include <stdlib.h>

int32_t
lskc_opt_timeout(lua_State *L, int idx)
{
    lua_Integer t = luaL_optinteger(L, idx, 0);
    luaL_argcheck(L, t >= 0 && t <= INT32_MAX, idx,
        "timeout must be >= 0 milliseconds (0 = node default)");
    return (int32_t)t;
}

/* The arguments of call and call_async: node, peer, target [, data
 * [, timeout_ms]]. */
typedef struct call_args {
    skc_node *node;
    const char *peer;
    const char *target;
    const char *data;
    size_t len;
    int32_t timeout;
} call_args;

static void
check_call_args(lua_State *L, call_args *a)
{
    a->node = lskc_check_node(L, 1);
    a->peer = luaL_checkstring(L, 2);
    a->target = luaL_checkstring(L, 3);
    a->len = 0;
    a->data = luaL_optlstring(L, 4, "", &a->len);
    a->timeout = lskc_opt_timeout(L, 5);
}

/* ---------------------------------------------------------------------- */
/* Blocking                                                               */
/* ---------------------------------------------------------------------- */

/* node:call(peer, target, data [, timeout_ms]) -> reply */
int
lskc_node_call(lua_State *L)
{
    call_args a;
    void *out = NULL;
    size_t out_len = 0;
    int rc;

    check_call_args(L, &a);
    rc = skc_node_call(
        a.node, &out, &out_len, a.peer, a.target, a.data, a.len, a.timeout);
    if (rc < 0) {
        skc_free(out);
        return lskc_fail(L, rc);
    }
    lua_pushlstring(L, out != NULL ? out : "", out != NULL ? out_len : 0);
    skc_free(out);
    return 1;
}

/* node:send(peer, target, data) -> true */
int
lskc_node_send(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
    const char *peer = luaL_checkstring(L, 2);
    const char *target = luaL_checkstring(L, 3);
    size_t len = 0;
    const char *data = luaL_optlstring(L, 4, "", &len);
    return lskc_result(L, skc_node_send(node, peer, target, data, len));
}

/* node:send_values(peer, target, ...) -> true: node:send(peer, target,
 * skc.pack(...)) without the string in between. */
int
lskc_node_send_values(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
    const char *peer = luaL_checkstring(L, 2);
    const char *target = luaL_checkstring(L, 3);
    size_t len;
    const char *data = lskc_pack_values(L, 4, &len);
    return lskc_result(L, skc_node_send(node, peer, target, data, len));
}

/* node:query(peer, name [, timeout_ms]) -> handle */
int
lskc_node_query(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
    const char *peer = luaL_checkstring(L, 2);
    const char *name = luaL_checkstring(L, 3);
    int32_t timeout = lskc_opt_timeout(L, 4);
    uint32_t h = 0;
    int rc = skc_node_query(node, &h, peer, name, timeout);
    if (rc < 0) {
        return lskc_fail(L, rc);
    }
    lua_pushinteger(L, (lua_Integer)h);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Asynchronous: the completion runs in poll()                            */
/* ---------------------------------------------------------------------- */

/* Ends an async start: on failure the callback never runs, so c goes. */
int
lskc_async_started(lua_State *L, lnode *n, lcallback *c, int rc)
{
    if (rc < 0) {
        lskc_callback_free(L, &n->calls, c);
        return lskc_fail(L, rc);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* The end of an async call or query: unlinks and frees c and pushes its
 * Lua callback.  Returns the Lua state to finish with lskc_async_finish(), or
 * NULL when nothing is to be called (the node is closing). */
lua_State *
lskc_async_begin(lcallback *c, lnode **np, int *nargs)
{
    lnode *n = c->n;
    lua_State *L = n->L;
    int ref = c->ref;
    int arg_ref = c->arg_ref;

    lskc_callback_unlink(&n->calls, c);
    free(c);
    *np = n;
    *nargs = 0;
    if (L == NULL) {
        /* Cannot happen in caller-driven mode (completions run in poll or
         * destroy, both set L); the refs are then released with the
         * state. */
        return NULL;
    }
    if (n->closing || !lua_checkstack(L, 5)) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        luaL_unref(L, LUA_REGISTRYINDEX, arg_ref);
        return NULL;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    if (arg_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, arg_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, arg_ref);
        *nargs = 1;
    }
    return L;
}

/* Calls the callback pushed by lskc_async_begin(): cb([arg,] value) when
 * status is SKC_OK (the caller has pushed the value), else cb([arg,] nil,
 * message, code). */
void
lskc_async_finish(
    lnode *n, lua_State *L, int nargs, int status, const char *detail)
{
    if (status == SKC_OK) {
        lua_pushnil(L);
        lua_pushnil(L);
    } else {
        lskc_push_failure(L, status, detail);
    }
    if (lua_pcall(L, nargs + 3, 0, 0) != LUA_OK) {
        lskc_node_keep_error(n, L);
    }
}

static void
call_done(
    int status, const void *data, size_t len, const char *detail, void *arg)
{
    lnode *n;
    int nargs;
    lua_State *L = lskc_async_begin(arg, &n, &nargs);
    if (L == NULL) {
        return;
    }
    if (status == SKC_OK) {
        lua_pushlstring(L, data != NULL ? data : "", data != NULL ? len : 0);
    }
    lskc_async_finish(n, L, nargs, status, detail);
}

/* node:call_async(peer, target, data, timeout_ms | nil, cb [, arg]) ->
 * true.  cb([arg,] reply) on success, cb([arg,] nil, msg, code) on
 * failure; runs in poll().  With arg, one cb can serve every call (the
 * skynet layer passes the waiting coroutine), so a call needs no closure. */
int
lskc_node_call_async(lua_State *L)
{
    lnode *n = lskc_check_lnode(L, 1);
    call_args a;
    lcallback *c;

    check_call_args(L, &a);
    c = lskc_callback_new(L, n, &n->calls, 6);
    lskc_callback_arg(L, c, 7);
    return lskc_async_started(L, n, c,
        skc_node_call_async(
            a.node, a.peer, a.target, a.data, a.len, a.timeout, call_done, c));
}

/* node:call_values(peer, target, timeout_ms | nil, cb, arg, ...) -> true:
 * node:call_async(peer, target, skc.pack(...), timeout_ms, cb, arg)
 * without the string in between (the values are packed into the state's
 * scratch buffer, which skc_node_call_async copies). */
int
lskc_node_call_values(lua_State *L)
{
    lnode *n = lskc_check_lnode(L, 1);
    skc_node *node = lskc_check_node(L, 1);
    const char *peer = luaL_checkstring(L, 2);
    const char *target = luaL_checkstring(L, 3);
    int32_t timeout = lskc_opt_timeout(L, 4);
    const char *data;
    size_t len;
    lcallback *c;

    luaL_checktype(L, 5, LUA_TFUNCTION);
    luaL_checkany(L, 6);
    /* Packed first, so that a value that cannot be packed raises before
     * c exists.  data lives in the state's scratch buffer until the next
     * pack; nothing below can run Lua code (no GC step: luaL_ref only
     * does raw gets and sets), so it is still intact when
     * skc_node_call_async copies it. */
    data = lskc_pack_values(L, 7, &len);
    c = lskc_callback_new(L, n, &n->calls, 5);
    lskc_callback_arg(L, c, 6);
    return lskc_async_started(L, n, c,
        skc_node_call_async(
            node, peer, target, data, len, timeout, call_done, c));
}

static void
query_done(int status, uint32_t handle, const char *detail, void *arg)
{
    lnode *n;
    int nargs;
    lua_State *L = lskc_async_begin(arg, &n, &nargs);
    if (L == NULL) {
        return;
    }
    if (status == SKC_OK) {
        lua_pushinteger(L, (lua_Integer)handle);
    }
    lskc_async_finish(n, L, nargs, status, detail);
}

/* node:query_async(peer, name, timeout_ms | nil, cb) -> true; later, in
 * poll: cb(handle) or cb(nil, message, code) */
int
lskc_node_query_async(lua_State *L)
{
    lnode *n = lskc_check_lnode(L, 1);
    skc_node *node = lskc_check_node(L, 1);
    const char *peer = luaL_checkstring(L, 2);
    const char *name = luaL_checkstring(L, 3);
    int32_t timeout = lskc_opt_timeout(L, 4);
    lcallback *c = lskc_callback_new(L, n, &n->calls, 5);
    return lskc_async_started(L, n, c,
        skc_node_query_async(node, peer, name, timeout, query_done, c));
}
