/* lskc_pack.c -- skc.pack and skc.unpack: Lua values <-> a payload of
 * MessagePack values back to back (DESIGN.md decision 3). */
#include "lskc.h"

/* Rules (docs/LUA.md):
 *  - nil, booleans, integers (int64), floats (always as float64, so 1.0
 *    stays a float), strings (MessagePack str, byte-exact);
 *  - a table whose keys are exactly 1..n (n >= 0) is an array, so an empty
 *    table is an empty array; any other table is a map (holes make a map
 *    with integer keys, which unpacks to the same Lua table);
 *  - metatables are ignored (raw access);
 *  - functions, userdata, threads, cycles and nesting deeper than
 *    LSKC_MAX_DEPTH raise an error. */

/* The codec's scratch state: one per Lua state, kept in the registry and
 * reused by every skc.pack / skc.unpack (and the node methods that pack
 * their arguments in C), so that a call allocates no packer: its buffer
 * keeps its size from one call to the next.  A Lua error that leaves a
 * call early leaves the buffer to be reset by the next one; the GC frees
 * it with the state.  Nothing here runs Lua code (raw access only), so a
 * pack or unpack never nests inside another. */
typedef struct packbuf {
    skc_pack *pack;
    skc_unpack *unpack;
} packbuf;

static const char packbuf_key = 'p'; /* registry key: its address */

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

/* The state's packbuf (not pushed). */
static packbuf *
packbuf_get(lua_State *L)
{
    packbuf *b;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &packbuf_key);
    b = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return b;
}

void
lskc_pack_init(lua_State *L)
{
    static const luaL_Reg packbuf_meta[] = {
        { "__gc", packbuf_gc },
        { NULL, NULL },
    };
    packbuf *b;
    int rc;

    lskc_new_class(L, LSKC_PACKBUF, NULL, packbuf_meta);
    b = lua_newuserdatauv(L, sizeof(*b), 0);
    b->pack = NULL;
    b->unpack = NULL;
    luaL_setmetatable(L, LSKC_PACKBUF);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &packbuf_key);
    if ((rc = skc_pack_create(&b->pack)) < 0) {
        luaL_error(L, "skc: %s", skc_strerror(rc));
    }
}

/* ---------------------------------------------------------------------- */
/* Packing                                                                */
/* ---------------------------------------------------------------------- */

typedef struct packer {
    lua_State *L;
    skc_pack *p;
    int seen; /* stack slot of the table of tables being packed: nil until
                 the first table (most payloads have none) */
    int argn; /* argument number, for messages */
} packer;

static void
pack_check(packer *pk, int rc)
{
    if (rc < 0) {
        luaL_error(
            pk->L, "skc.pack: %s (%s)", skc_strerror(rc), skc_last_error());
    }
}

static void pack_value(packer *pk, int idx, int depth);

/* Whether the table at idx is an array (keys exactly 1..n); *count gets
 * its number of keys. */
static int
pack_is_array(lua_State *L, int idx, lua_Integer *count)
{
    lua_Integer n = 0, max = 0;
    int is_array = 1;

    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        n++;
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
    *count = n;
    return is_array && max == n;
}

static void
pack_table(packer *pk, int idx, int depth)
{
    lua_State *L = pk->L;
    lua_Integer count = 0;
    int is_array;

    if (depth > LSKC_MAX_DEPTH) {
        luaL_error(L, "skc.pack: argument #%d: tables nested deeper than %d",
            pk->argn, LSKC_MAX_DEPTH);
    }
    if (lua_type(L, pk->seen) != LUA_TTABLE) {
        lua_newtable(L);
        lua_replace(L, pk->seen);
    }
    lua_pushvalue(L, idx);
    if (lua_rawget(L, pk->seen) != LUA_TNIL) {
        luaL_error(L,
            "skc.pack: argument #%d: table cycle (a table contains itself)",
            pk->argn);
    }
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, pk->seen);

    luaL_checkstack(L, 6, "skc.pack: nesting too deep");
    is_array = pack_is_array(L, idx, &count);
    if (count > (lua_Integer)UINT32_MAX) {
        luaL_error(L, "skc.pack: table too large");
    }
    if (is_array) {
        pack_check(pk, skc_pack_array(pk->p, (uint32_t)count));
        for (lua_Integer i = 1; i <= count; i++) {
            lua_rawgeti(L, idx, i);
            pack_value(pk, lua_gettop(L), depth);
            lua_pop(L, 1);
        }
    } else {
        pack_check(pk, skc_pack_map(pk->p, (uint32_t)count));
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
        /* Split at the parenthesis: grep "cannot pack a". */
        luaL_error(L,
            "skc.pack: argument #%d: cannot pack a %s value "
            "(only nil, booleans, numbers, strings and tables)",
            pk->argn, luaL_typename(L, idx));
    }
}

const char *
lskc_pack_values(lua_State *L, int from, size_t *len)
{
    int n = lua_gettop(L);
    packbuf *b = packbuf_get(L);
    packer pk;
    const void *data;

    skc_pack_reset(b->pack);
    luaL_checkstack(L, 8, "skc.pack");
    lua_pushnil(L); /* the seen slot */
    pk.L = L;
    pk.p = b->pack;
    pk.seen = lua_gettop(L);
    for (int i = from; i <= n; i++) {
        pk.argn = i - from + 1;
        pack_value(&pk, i, 0);
    }
    lua_settop(L, n);
    *len = 0;
    data = skc_pack_data(b->pack, len);
    if (data == NULL) {
        *len = 0;
        return "";
    }
    return data;
}

/* skc.pack(...) -> string */
int
lskc_pack(lua_State *L)
{
    size_t len;
    const char *data = lskc_pack_values(L, 1, &len);
    lua_pushlstring(L, data, len);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Unpacking                                                              */
/* ---------------------------------------------------------------------- */

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
        luaL_error(up->L, "skc.unpack: malformed data: %s", skc_last_error());
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
    return (int)n;
}

static void unpack_push(unpacker *up, const skc_item *it, int depth);

/* Reads the next item, which a container of `what` still owes, and pushes
 * it. */
static void
unpack_child(unpacker *up, const char *what, int depth)
{
    skc_item sub = SKC_ITEM_INIT;
    if (unpack_next(up, &sub) == 0) {
        luaL_error(up->L, "skc.unpack: truncated %s", what);
    }
    unpack_push(up, &sub, depth);
}

static void
unpack_array(unpacker *up, uint32_t count, int depth)
{
    lua_State *L = up->L;
    lua_createtable(L, prealloc(up, count), 0);
    for (uint32_t i = 1; i <= count; i++) {
        unpack_child(up, "array", depth + 1);
        lua_rawseti(L, -2, (lua_Integer)i);
    }
}

static void
unpack_map(unpacker *up, uint32_t count, int depth)
{
    lua_State *L = up->L;
    lua_createtable(L, 0, prealloc(up, count));
    for (uint32_t i = 0; i < count; i++) {
        unpack_child(up, "map", depth + 1);
        unpack_child(up, "map", depth + 1);
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
}

static void
unpack_push(unpacker *up, const skc_item *it, int depth)
{
    lua_State *L = up->L;

    luaL_checkstack(L, 4, "skc.unpack: too many values");
    switch (it->type) {
    case SKC_T_NIL:
        lua_pushnil(L);
        break;
    case SKC_T_BOOL:
        lua_pushboolean(L, it->i != 0);
        break;
    case SKC_T_INT:
        lua_pushinteger(L, (lua_Integer)it->i);
        break;
    case SKC_T_UINT:
        /* Beyond int64: the nearest float (documented). */
        lua_pushnumber(L, (lua_Number)it->u);
        break;
    case SKC_T_FLOAT:
        lua_pushnumber(L, it->d);
        break;
    case SKC_T_STR:
    case SKC_T_BIN:
        lua_pushlstring(L, it->ptr != NULL ? it->ptr : "", it->len);
        break;
    case SKC_T_ARRAY:
    case SKC_T_MAP:
        if (depth >= LSKC_MAX_DEPTH) {
            luaL_error(
                L, "skc.unpack: tables nested deeper than %d", LSKC_MAX_DEPTH);
        }
        if (it->type == SKC_T_ARRAY) {
            unpack_array(up, it->count, depth);
        } else {
            unpack_map(up, it->count, depth);
        }
        break;
    case SKC_T_EXT:
        luaL_error(L, "skc.unpack: unsupported MessagePack ext type %d",
            (int)it->ext_type);
        break;
    default:
        luaL_error(L, "skc.unpack: unknown item type %d", (int)it->type);
    }
}

/* skc.unpack(str) -> ... (every value in the payload) */
int
lskc_unpack(lua_State *L)
{
    size_t len = 0;
    const char *data = luaL_checklstring(L, 1, &len);
    packbuf *b;
    unpacker up;
    skc_item it = SKC_ITEM_INIT;
    int base, rc;

    lua_settop(L, 1);
    b = packbuf_get(L);
    skc_unpack_destroy(b->unpack); /* left by an error, or NULL */
    b->unpack = NULL;
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
