/* lskc.c -- opens the Lua 5.4 module `skc` (a thin luv-style layer over
 * skc.h): its functions and its classes. */
#include "lskc.h"

#include <dlfcn.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------- */
/* Module functions                                                       */
/* ---------------------------------------------------------------------- */

static int
lskc_version(lua_State *L)
{
    lua_pushstring(L, skc_version_string());
    lua_pushinteger(L, (lua_Integer)skc_version());
    return 2;
}

/* skc.strerror(code) / skc.errname(code) */
static int
lskc_strerror(lua_State *L)
{
    lua_pushstring(L, skc_strerror((int)luaL_checkinteger(L, 1)));
    return 1;
}

static int
lskc_errname(lua_State *L)
{
    lua_pushstring(L, skc_errname((int)luaL_checkinteger(L, 1)));
    return 1;
}

/* skc.clock() -> monotonic milliseconds (integer) */
static int
lskc_clock(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    return 1;
}

/* skc.hpc() -> monotonic nanoseconds (integer), skynet.hpc's clock */
static int
lskc_hpc(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000000000 + ts.tv_nsec);
    return 1;
}

/* skc.time() -> wall-clock seconds (float) */
static int
lskc_time(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec / 1e9);
    return 1;
}

static const luaL_Reg module_funcs[] = {
    { "node", lskc_node_new },
    { "pack", lskc_pack },
    { "unpack", lskc_unpack },
    { "version", lskc_version },
    { "strerror", lskc_strerror },
    { "errname", lskc_errname },
    { "clock", lskc_clock },
    { "hpc", lskc_hpc },
    { "time", lskc_time },
    { NULL, NULL },
};

/* ---------------------------------------------------------------------- */
/* Opening                                                                */
/* ---------------------------------------------------------------------- */

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
    if (dladdr((void *)&pin_module, &info) != 0 && info.dli_fname != NULL) {
        if (dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) !=
            NULL) {
            pinned = 1;
        }
    }
}

/* Pushes skc.E: error codes by name (skc.E.ETIMEDOUT == -8). */
static void
push_error_codes(lua_State *L)
{
    lua_newtable(L);
    for (int code = 0; code >= -64; code--) {
        const char *nm = skc_errname(code);
        if (strcmp(nm, "EUNKNOWN") == 0) {
            continue;
        }
        lua_pushinteger(L, code);
        lua_setfield(L, -2, nm);
    }
}

__attribute__((visibility("default"))) int
luaopen_skc(lua_State *L)
{
    pin_module();
    lskc_node_init(L);
    lskc_msg_init(L);
    lskc_pack_init(L);

    luaL_newlib(L, module_funcs);
    lua_pushstring(L, SKC_VERSION_STRING);
    lua_setfield(L, -2, "VERSION");
    lua_pushinteger(L, LSKC_MAX_DEPTH);
    lua_setfield(L, -2, "MAX_DEPTH");
    push_error_codes(L);
    lua_setfield(L, -2, "E");
    return 1;
}
