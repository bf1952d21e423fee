/* lskc_health.c -- the peer-health methods of skc.node: the monitor,
 * a peer's present state, pings (blocking or with a callback poll() runs)
 * and group entries of the map. */
#include "lskc.h"

static const char *
state_name(int state)
{
    switch (state) {
    case SKC_PEER_CONNECTING:
        return "connecting";
    case SKC_PEER_UP:
        return "up";
    case SKC_PEER_DOWN:
        return "down";
    default:
        return "unknown";
    }
}

/* ---------------------------------------------------------------------- */
/* Monitor                                                                */
/* ---------------------------------------------------------------------- */

/* The node's skc monitor while a Lua one is set.  The node is
 * caller-driven, so reports run inside skc_node_poll() on the Lua thread
 * (n->L set) with no skc lock held: fn(peer, "up" | "down", reason, addr),
 * under lua_pcall. */
static void
monitor_report(
    void *arg, const char *peer, int up, const char *reason, const char *addr)
{
    lnode *n = arg;
    lua_State *L = n->L;

    if (L == NULL || n->closing || n->monitor_ref == LUA_NOREF ||
        !lua_checkstack(L, 5)) {
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, n->monitor_ref);
    lua_pushstring(L, peer);
    lua_pushstring(L, up ? "up" : "down");
    lua_pushstring(L, reason != NULL ? reason : "");
    lua_pushstring(L, addr != NULL ? addr : "");
    if (lua_pcall(L, 4, 0, 0) != LUA_OK) {
        lskc_node_keep_error(n, L);
    }
}

void
lskc_monitor_free(lnode *n, lua_State *L)
{
    if (n->monitor_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, n->monitor_ref);
        n->monitor_ref = LUA_NOREF;
    }
}

/* node:monitor(fn | nil) -> true.  fn(peer, state, reason, addr) runs in
 * poll() for each change after this call; nil stops reporting. */
int
lskc_node_monitor(lua_State *L)
{
    lnode *n = lskc_check_lnode(L, 1);
    skc_node *node = lskc_check_node(L, 1);
    int rc;

    if (lua_isnoneornil(L, 2)) {
        rc = skc_node_monitor(node, NULL, NULL);
        if (rc >= 0) {
            lskc_monitor_free(n, L);
        }
        return lskc_result(L, rc);
    }
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lskc_monitor_free(n, L);
    lua_pushvalue(L, 2);
    n->monitor_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    rc = skc_node_monitor(node, monitor_report, n);
    if (rc < 0) {
        lskc_monitor_free(n, L);
    }
    return lskc_result(L, rc);
}

/* ---------------------------------------------------------------------- */
/* State and ping                                                         */
/* ---------------------------------------------------------------------- */

/* node:peer_state(name) -> "up" | "down" | "connecting" | "unknown", detail
 */
int
lskc_node_peer_state(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
    const char *peer = luaL_checkstring(L, 2);
    int state = SKC_PEER_UNKNOWN;
    char *detail = NULL;
    int rc = skc_node_peer_state(node, peer, &state, &detail);

    if (rc < 0) {
        return lskc_fail(L, rc);
    }
    lua_pushstring(L, state_name(state));
    lua_pushstring(L, detail != NULL ? detail : "");
    skc_free(detail);
    return 2;
}

/* node:ping(peer [, timeout_ms]) -> round-trip time in microseconds
 * (blocking: this node's handlers do not run meanwhile). */
int
lskc_node_ping(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
    const char *peer = luaL_checkstring(L, 2);
    int32_t timeout = lskc_opt_timeout(L, 3);
    int64_t rtt = 0;
    int rc = skc_node_ping(node, peer, timeout, &rtt);

    if (rc < 0) {
        return lskc_fail(L, rc);
    }
    lua_pushinteger(L, (lua_Integer)rtt);
    return 1;
}

/* node:stats([peer [, timeout_ms]]) -> the statistics JSON (a string):
 * this node's, or peer's asked over the network (blocking: this node's
 * handlers do not run meanwhile). */
int
lskc_node_stats(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
    const char *peer = luaL_optstring(L, 2, NULL);
    char *json = NULL;
    int rc = peer == NULL
        ? skc_node_stats(node, &json)
        : skc_node_stats_remote(node, peer, lskc_opt_timeout(L, 3), &json);

    if (rc < 0) {
        return lskc_fail(L, rc);
    }
    lua_pushstring(L, json);
    skc_free(json);
    return 1;
}

/* The end of a ping_async: cb(rtt_us) or cb(nil, message, code), in
 * poll(); dropped while the node is being destroyed, as async calls are. */
static void
ping_done(int status, int64_t rtt_us, const char *detail, void *arg)
{
    lnode *n;
    int nargs;
    lua_State *L = lskc_async_begin(arg, &n, &nargs);
    if (L == NULL) {
        return;
    }
    if (status == SKC_OK) {
        lua_pushinteger(L, (lua_Integer)rtt_us);
    }
    lskc_async_finish(n, L, nargs, status, detail);
}

/* node:ping_async(peer, timeout_ms | nil, cb) -> true; later, in poll:
 * cb(rtt_us) or cb(nil, message, code). */
int
lskc_node_ping_async(lua_State *L)
{
    lnode *n = lskc_check_lnode(L, 1);
    skc_node *node = lskc_check_node(L, 1);
    const char *peer = luaL_checkstring(L, 2);
    int32_t timeout = lskc_opt_timeout(L, 3);
    lcallback *c = lskc_callback_new(L, n, &n->calls, 4);
    return lskc_async_started(
        L, n, c, skc_node_ping_async(node, peer, timeout, ping_done, c));
}

/* ---------------------------------------------------------------------- */
/* Groups                                                                 */
/* ---------------------------------------------------------------------- */

/* node:map_set_group(name, { "a", "b", ... } [, policy]) -> true
 * policy: nil (failover), "roundrobin" or "random"; also read from the
 * table's field `policy` when the argument is absent. */
int
lskc_node_map_set_group(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
    const char *name = luaL_checkstring(L, 2);
    const char *policy = NULL;
    const char **members;
    lua_Integer i, count;

    luaL_checktype(L, 3, LUA_TTABLE);
    if (!lua_isnoneornil(L, 4)) {
        policy = luaL_checkstring(L, 4);
    } else if (lua_getfield(L, 3, "policy") != LUA_TNIL) {
        policy = luaL_checkstring(L, -1); /* anchored by the table */
    }
    count = (lua_Integer)lua_rawlen(L, 3);
    /* A userdata buffer: collected even if a check below raises. */
    members = lua_newuserdatauv(L, sizeof(char *) * ((size_t)count + 1), 0);
    for (i = 1; i <= count; i++) {
        if (lua_rawgeti(L, 3, i) != LUA_TSTRING) {
            return luaL_error(L,
                "group '%s': member %I must be a node name string, got %s",
                name, (LUAI_UACINT)i, luaL_typename(L, -1));
        }
        members[i - 1] = lua_tostring(L, -1); /* anchored by the table */
        lua_pop(L, 1);
    }
    return lskc_result(
        L, skc_node_map_set_group(node, name, members, (size_t)count, policy));
}
