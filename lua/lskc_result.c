/* lskc_result.c -- what every file of the module shares: how a result or
 * a failure is returned to Lua (nil, detail, error name), and classes. */
#include "lskc.h"

void
lskc_push_failure(lua_State *L, int status, const char *detail)
{
    lua_pushnil(L);
    if (detail != NULL && detail[0] != '\0') {
        lua_pushstring(L, detail);
    } else {
        lua_pushstring(L, skc_strerror(status));
    }
    lua_pushstring(L, skc_errname(status));
}

int
lskc_fail(lua_State *L, int rc)
{
    lskc_push_failure(L, rc, skc_last_error());
    return 3;
}

int
lskc_result(lua_State *L, int rc)
{
    if (rc < 0) {
        return lskc_fail(L, rc);
    }
    lua_pushboolean(L, 1);
    return 1;
}

void
lskc_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
    const luaL_Reg *meta)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    if (methods != NULL) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}
