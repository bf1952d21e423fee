/* lskc_map.c -- the cluster-map methods of skc.node: load, reload, parse,
 * set, update and get the names and addresses of the other nodes. */
#include "lskc.h"

int
lskc_node_map_load(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
    return lskc_result(L, skc_node_map_load(node, luaL_checkstring(L, 2)));
}

int
lskc_node_map_reload(lua_State *L)
{
    return lskc_result(L, skc_node_map_reload(lskc_check_node(L, 1)));
}

int
lskc_node_map_parse(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
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
                lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
            lua_rawsetp(L, anchor, s);
            return s;
        }
        /* fall through */
    default:
        /* Split after the entry's name: grep "expected an address". */
        luaL_error(L,
            "cluster map entry '%s': "
            "expected an address string or false, got %s",
            name, luaL_typename(L, idx));
        return NULL;
    }
}

/* node:map_set(name, addr | false) */
int
lskc_node_map_set(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
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
int
lskc_node_map_update(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
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
int
lskc_node_map_get(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
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
