/* lskc_map.c -- the cluster-map methods of skc.node: load, reload, parse,
 * set, update and get the names and addresses of the other nodes. */
#include "lskc.h"

#include <stdio.h>
#include <string.h>

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

/* A reload made by the watch: fn(ok, detail) runs inside poll() on the
 * Lua thread (the node is caller-driven), under lua_pcall. */
static void
watch_report(void *arg, int status, const char *detail)
{
    lnode *n = arg;
    lua_State *L = n->L;

    if (L == NULL || n->closing || n->watch_ref == LUA_NOREF ||
        !lua_checkstack(L, 3)) {
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, n->watch_ref);
    lua_pushboolean(L, status == SKC_OK);
    lua_pushstring(L, detail != NULL ? detail : "");
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        lskc_node_keep_error(n, L);
    }
}

void
lskc_watch_free(lnode *n, lua_State *L)
{
    if (n->watch_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, n->watch_ref);
        n->watch_ref = LUA_NOREF;
    }
}

/* node:map_watch(on [, fn]) -> true.  While on, the node reloads the map
 * file it loaded whenever that file changes on disk; fn(ok, detail) is
 * told of each reload (detail: the file, or the error with file:line). */
int
lskc_node_map_watch(lua_State *L)
{
    lnode *n = lskc_check_lnode(L, 1);
    skc_node *node = lskc_check_node(L, 1);
    int on = lua_toboolean(L, 2);
    int rc;

    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TFUNCTION);
    }
    if (!on) {
        rc = skc_node_map_watch(node, 0, NULL, NULL);
        lskc_watch_free(n, L);
        return lskc_result(L, rc);
    }
    lskc_watch_free(n, L);
    if (!lua_isnoneornil(L, 3)) {
        lua_pushvalue(L, 3);
        n->watch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    rc = skc_node_map_watch(node, 1, watch_report, n);
    if (rc < 0) {
        lskc_watch_free(n, L);
    }
    return lskc_result(L, rc);
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

/* Appends s as a quoted string of the map format: \\, \" and control
 * bytes escaped (decimal \ddd, which the map parser reads as Lua does). */
static void
text_quote(luaL_Buffer *b, const char *s, size_t len)
{
    size_t i;
    luaL_addchar(b, '"');
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            luaL_addchar(b, '\\');
            luaL_addchar(b, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[8];
            snprintf(esc, sizeof(esc), "\\%03u", (unsigned)c);
            luaL_addstring(b, esc);
        } else {
            luaL_addchar(b, (char)c);
        }
    }
    luaL_addchar(b, '"');
}

/* Checks the group at idx: member names 1..n and an optional string
 * field policy, nothing else.  Raises otherwise. */
static void
check_group(lua_State *L, int idx, const char *name)
{
    lua_Integer count = (lua_Integer)lua_rawlen(L, idx);

    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int ok = lua_type(L, -1) == LUA_TSTRING &&
            (lua_type(L, -2) == LUA_TSTRING
                    ? strcmp(lua_tostring(L, -2), "policy") == 0
                    : lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 &&
                        lua_tointeger(L, -2) <= count);
        if (!ok) {
            const char *vtype = luaL_typename(L, -1);
            const char *k;
            lua_pushvalue(L, -2);
            k = luaL_tolstring(L, -1, NULL);
            luaL_error(L,
                "cluster map group '%s': expected member name strings 1..n and an optional policy string, got %s = %s",
                name, k, vtype);
        }
        lua_pop(L, 1);
    }
}

/* Appends the (checked) group at idx in the map format.  Every stack use
 * between two buffer operations is balanced (the buffer may sit on top). */
static void
text_group(lua_State *L, luaL_Buffer *b, int idx)
{
    lua_Integer i, count = (lua_Integer)lua_rawlen(L, idx);
    size_t len;
    const char *s;

    luaL_addchar(b, '{');
    for (i = 1; i <= count; i++) {
        lua_rawgeti(L, idx, i);
        s = lua_tolstring(L, -1, &len);
        lua_pop(L, 1); /* still anchored by the group table */
        if (i > 1) {
            luaL_addstring(b, ", ");
        }
        text_quote(b, s, len);
    }
    lua_getfield(L, idx, "policy");
    s = lua_tolstring(L, -1, &len);
    lua_pop(L, 1);
    if (s != NULL) {
        luaL_addstring(b, count > 0 ? ", policy = " : "policy = ");
        text_quote(b, s, len);
    }
    luaL_addchar(b, '}');
}

/* A map update with a group in it: the whole table as map text, one entry
 * a line, merged by skc_node_map_parse(), which checks every entry before
 * it applies any (so it is all or nothing, as skc_node_map_update). */
static int
map_update_text(
    lua_State *L, skc_node *node, int t, int anchor, const char *origin)
{
    luaL_Buffer b;
    lua_Integer nparts = 0, i;
    int parts;

    lua_newtable(L); /* one line per entry */
    parts = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        int kidx = lua_absindex(L, -2), vidx = lua_absindex(L, -1);
        size_t klen;
        const char *key = lua_tolstring(L, kidx, &klen);
        const char *addr = NULL;
        int group = lua_type(L, vidx) == LUA_TTABLE;

        if (group) {
            check_group(L, vidx, key);
        } else {
            addr = map_value(L, vidx, key, anchor);
        }
        luaL_buffinit(L, &b);
        luaL_addchar(&b, '[');
        text_quote(&b, key, klen);
        luaL_addstring(&b, "] = ");
        if (group) {
            text_group(L, &b, vidx);
        } else if (addr == NULL) {
            luaL_addstring(&b, "false");
        } else if (lua_type(L, vidx) == LUA_TBOOLEAN) {
            luaL_addstring(&b, "true");
        } else {
            text_quote(&b, addr, strlen(addr));
        }
        luaL_addstring(&b, ",\n");
        luaL_pushresult(&b);
        lua_rawseti(L, parts, ++nparts);
        lua_pop(L, 1); /* the value; the key stays for lua_next */
    }
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "return {\n");
    for (i = 1; i <= nparts; i++) {
        lua_rawgeti(L, parts, i);
        luaL_addvalue(&b);
    }
    luaL_addstring(&b, "}\n");
    luaL_pushresult(&b);
    return lskc_result(
        L, skc_node_map_parse(node, lua_tostring(L, -1), origin));
}

/* node:map_update({ name = addr | false | group, __nowaiting = bool, ... }
 * [, origin]).  A group is { "a", "b" [, policy = "roundrobin"] }.  All
 * or nothing; origin names the table in syntax errors ("map_update"). */
int
lskc_node_map_update(lua_State *L)
{
    skc_node *node = lskc_check_node(L, 1);
    const char *origin = luaL_optstring(L, 3, "map_update");
    size_t count = 0, i = 0;
    const char **names, **addrs;
    int rc, anchor, groups = 0;

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);
    lua_newtable(L);
    anchor = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, 2) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            return luaL_error(L, "cluster map keys must be strings, got %s",
                luaL_typename(L, -2));
        }
        groups += lua_type(L, -1) == LUA_TTABLE;
        count++;
        lua_pop(L, 1);
    }
    if (groups > 0) {
        return map_update_text(L, node, 2, anchor, origin);
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

/* node:map_names() -> { name, ... } (sorted) | nil, msg, code
 * node:map_source() -> "etcd ... prefix ..." | "file ..." | "" */
static int
map_text(lua_State *L, int names)
{
    skc_node *node = lskc_check_node(L, 1);
    char *text = NULL;
    int rc = names ? skc_node_map_names(node, &text)
                   : skc_node_map_source(node, &text);
    if (rc < 0) {
        return lskc_fail(L, rc);
    }
    if (!names) {
        lua_pushstring(L, text);
        skc_free(text);
        return 1;
    }
    lua_newtable(L);
    lua_Integer i = 0;
    for (const char *p = text; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t l = nl != NULL ? (size_t)(nl - p) : strlen(p);
        lua_pushlstring(L, p, l);
        lua_rawseti(L, -2, ++i);
        p += l + (nl != NULL);
    }
    skc_free(text);
    return 1;
}

int
lskc_node_map_names(lua_State *L)
{
    return map_text(L, 1);
}

int
lskc_node_map_source(lua_State *L)
{
    return map_text(L, 0);
}
