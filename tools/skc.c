/* skc -- the command line: runs a skynet-style config on skc, and pokes
 * at a running cluster.
 *
 *   skc run CONFIG      start the config's `start` service (see docs/LUA.md)
 *   skc CONFIG          the same, as `skynet CONFIG` is invoked
 *   skc ping|call|send|query|map ...
 *                       the cluster verbs (cli.c, docs/OPERATIONS.md)
 *   skc version         print the library version of the Lua module
 *   skc script FILE ... run a Lua script with the same paths (the way the
 *                       tests run under AddressSanitizer, where the stock
 *                       lua5.4 cannot load an instrumented module)
 *
 * It embeds Lua 5.4, points package.path/cpath at the skc module and the
 * pure-Lua layers (the build tree first when the binary runs from it, then
 * the install prefix relative to the binary), and hands over to the Lua
 * bootstrap `skc.launcher`.
 */
#include "cli.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SKC_LUA_SOURCE_DIR
#define SKC_LUA_SOURCE_DIR ""
#endif
#ifndef SKC_INSTALL_LIBDIR
#define SKC_INSTALL_LIBDIR "lib"
#endif
#ifndef SKC_INSTALL_DATADIR
#define SKC_INSTALL_DATADIR "share"
#endif

static void
usage(FILE *f)
{
    fprintf(f,
        "usage: skc run CONFIG   start the `start` service of a skynet-style "
        "config\n"
        "       skc CONFIG       the same\n");
    cli_usage(f);
    fprintf(f,
        "       skc version      print the version\n"
        "       skc script FILE [ARGS]  run a Lua script with skc's paths\n"
        "`skc VERB --help` explains a verb; docs/OPERATIONS.md has them "
        "all.\n");
}

/* The directory holding this executable, or "." if unknown. */
static void
exe_dir(char *out, size_t size)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    char *slash;
    if (n <= 0) {
        snprintf(out, size, ".");
        return;
    }
    buf[n] = '\0';
    slash = strrchr(buf, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    snprintf(out, size, "%s", buf);
}

static int
file_exists(const char *path)
{
    return access(path, R_OK) == 0;
}

/* Prepends the build-tree and install-prefix search paths. */
static void
set_paths(lua_State *L)
{
    char dir[PATH_MAX], probe[PATH_MAX + 64];
    int build_tree, n;

    exe_dir(dir, sizeof(dir));
    snprintf(probe, sizeof(probe), "%s/../lua/skc.so", dir);
    build_tree = file_exists(probe);
    lua_getglobal(L, "package");

    n = 0;
    if (build_tree && SKC_LUA_SOURCE_DIR[0] != '\0') {
        lua_pushliteral(
            L, SKC_LUA_SOURCE_DIR "/?.lua;" SKC_LUA_SOURCE_DIR "/?/init.lua;");
        n++;
    }
    lua_pushfstring(L,
        "%s/../" SKC_INSTALL_DATADIR "/lua/5.4/?.lua;"
        "%s/../" SKC_INSTALL_DATADIR "/lua/5.4/?/init.lua;",
        dir, dir);
    lua_getfield(L, -2 - n, "path");
    lua_concat(L, n + 2);
    lua_setfield(L, -2, "path");

    n = 0;
    if (build_tree) {
        lua_pushfstring(L, "%s/../lua/?.so;", dir);
        n++;
    }
    lua_pushfstring(L, "%s/../" SKC_INSTALL_LIBDIR "/lua/5.4/?.so;", dir);
    lua_getfield(L, -2 - n, "cpath");
    lua_concat(L, n + 2);
    lua_setfield(L, -2, "cpath");

    lua_pop(L, 1);
}

static int
traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        msg = lua_pushfstring(
            L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Runs `require(module)[fn](arg)`; returns the exit code. */
static int
run_lua(lua_State *L, const char *module, const char *fn, const char *arg)
{
    int code = 1;
    lua_pushcfunction(L, traceback);
    lua_getglobal(L, "require");
    lua_pushstring(L, module);
    if (lua_pcall(L, 1, 1, 1) != LUA_OK) {
        fprintf(stderr, "skc: %s\n", lua_tostring(L, -1));
        return 1;
    }
    lua_getfield(L, -1, fn);
    if (arg != NULL) {
        lua_pushstring(L, arg);
    }
    if (lua_pcall(L, arg != NULL ? 1 : 0, 1, 1) != LUA_OK) {
        fprintf(stderr, "skc: %s\n", lua_tostring(L, -1));
        return 1;
    }
    if (lua_isinteger(L, -1)) {
        code = (int)lua_tointeger(L, -1);
    } else if (lua_isstring(L, -1)) {
        printf("%s\n", lua_tostring(L, -1));
        code = 0;
    } else {
        code = 0;
    }
    return code;
}

/* skc script FILE ARGS...: like `lua5.4 FILE ARGS...`. */
static int
run_script(lua_State *L, int argc, char **argv)
{
    int code = 0;
    lua_createtable(L, argc, 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_setglobal(L, "arg");
    lua_pushcfunction(L, traceback);
    if (luaL_loadfile(L, argv[0]) != LUA_OK) {
        fprintf(stderr, "skc: %s\n", lua_tostring(L, -1));
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
    }
    if (lua_pcall(L, argc - 1, 0, 1) != LUA_OK) {
        fprintf(stderr, "skc: %s\n", lua_tostring(L, -1));
        code = 1;
    }
    return code;
}

static int
version(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "skc");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "VERSION");
    return 1;
}

/* A Lua state with the standard libraries and skc's module paths; NULL
 * (said on stderr) if none can be made. */
static lua_State *
new_state(void)
{
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "skc: cannot create a Lua state\n");
        return NULL;
    }
    luaL_openlibs(L);
    set_paths(L);
    return L;
}

int
main(int argc, char **argv)
{
    lua_State *L;
    const char *config = NULL;
    int code;

    if (argc >= 2 && cli_is_verb(argv[1])) {
        return cli_main(argc - 1, argv + 1);
    }
    if (argc >= 3 && strcmp(argv[1], "script") == 0) {
        if ((L = new_state()) == NULL) {
            return 1;
        }
        code = run_script(L, argc - 2, argv + 2);
        lua_close(L);
        return code;
    }
    if (argc == 3 && strcmp(argv[1], "run") == 0) {
        config = argv[2];
    } else if (argc == 2 && strcmp(argv[1], "version") == 0) {
        config = NULL;
    } else if (argc == 2 &&
        (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "-h") == 0 ||
            strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    } else if (argc == 2 && argv[1][0] != '-') {
        config = argv[1];
    } else {
        usage(stderr);
        return 2;
    }

    if ((L = new_state()) == NULL) {
        return 1;
    }
    if (config == NULL) {
        lua_pushcfunction(L, traceback);
        lua_pushcfunction(L, version);
        if (lua_pcall(L, 0, 1, -2) != LUA_OK) {
            fprintf(stderr, "skc: %s\n", lua_tostring(L, -1));
            code = 1;
        } else {
            printf(
                "skc %s (Lua module), %s\n", lua_tostring(L, -1), LUA_RELEASE);
            code = 0;
        }
    } else {
        code = run_lua(L, "skc.launcher", "run", config);
    }
    lua_close(L);
    return code;
}
