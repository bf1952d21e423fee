/* lskc.h -- what the files of the Lua module `skc` share: class names, the
 * node's state, the failure convention and each file's entry points. */

/* The module is split as luv is, one file per type: lskc.c opens it,
 * lskc_node.c is skc.node, lskc_call.c, lskc_map.c and lskc_health.c hold
 * its request, cluster-map and peer-health methods, lskc_msg.c is skc.msg and
 * skc.reply, lskc_pack.c the payload codec, and lskc_result.c the result
 * helpers they all use.
 *
 * Rules every file keeps (STYLE.md §7):
 *  - Lua only runs on the thread that calls node:poll().  Nodes are always
 *    created in caller-driven mode, so service handlers and async-call
 *    completions run inside skc_node_poll(), on the Lua thread, and the
 *    module calls into Lua from there.  Log lines, which the core may emit
 *    from any thread, are queued under a mutex and delivered by poll().
 *  - Bad arguments raise (luaL_check*); runtime failures return
 *    nil, message, code_name (message = skc_last_error() or strerror).
 *  - A Lua error must never unwind through the core's C frames: every call
 *    into Lua from a core callback is a lua_pcall.  The first error raised
 *    by a handler or callback during one poll() is re-raised by poll()
 *    after skc_node_poll() has returned.
 *  - Everything the module allocates is released by __gc/__close: nodes
 *    (with their callbacks), deferred replies, pack and unpack buffers.
 *
 * Only skc.h is used; nothing from lib/ internals.  The functions declared
 * here are hidden (the build's visibility preset): skc.so exports only
 * luaopen_skc. */
#ifndef SKC_LSKC_H
#define SKC_LSKC_H

#include <lauxlib.h>
#include <lua.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "skc/skc.h"

#define LSKC_NODE "skc.node"
#define LSKC_MSG "skc.msg"
#define LSKC_REPLY "skc.reply"
#define LSKC_PACKBUF "skc.packbuf"

/* Tables nested deeper than this are refused by skc.pack and skc.unpack
 * (skc.MAX_DEPTH; a top-level table is level 1).  Not the C reader's 64
 * (VALUE_MAX_DEPTH in lib/value.c), on purpose: 32 is the binding's
 * documented and tested limit (docs/LUA.md; test/lua/test_binding.lua packs
 * 32 levels and expects 33 to raise), and being the stricter one is safe
 * in the direction that matters: whatever Lua packs, skc_unpack_next()
 * reads.  Moving to 64 would change that contract and its test. */
#define LSKC_MAX_DEPTH 32

/* ---------------------------------------------------------------------- */
/* Results (lskc_result.c)                                                */
/* ---------------------------------------------------------------------- */

/* Pushes nil, message, code_name for status; message is detail when that is
 * neither NULL nor empty, else skc_strerror(status). */
void lskc_push_failure(lua_State *L, int status, const char *detail);

/* Pushes the failure triple for rc with skc_last_error() as the message;
 * returns 3 (luv's fail convention). */
int lskc_fail(lua_State *L, int rc);

/* Pushes true (rc >= 0) and returns 1, or the failure triple and 3. */
int lskc_result(lua_State *L, int rc);

/* Creates the metatable `name` with the metamethods `meta` (required) and,
 * if methods is not NULL, an __index table holding `methods`. */
void lskc_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
    const luaL_Reg *meta);

/* ---------------------------------------------------------------------- */
/* Node state (lskc_node.c)                                               */
/* ---------------------------------------------------------------------- */

typedef struct lnode lnode;

/* A Lua function the core calls back: a service handler or the completion
 * of an async call or query.  Linked into its node, so that whatever is
 * left when the node is destroyed is released with it. */
typedef struct lcallback {
    lnode *n;
    int ref;          /* registry ref of the Lua function */
    int arg_ref;      /* ref of a value passed first to it, or LUA_NOREF */
    uint32_t service; /* service handle (handlers only) */
    struct lcallback *prev;
    struct lcallback *next;
} lcallback;

/* The userdata behind an skc.node. */
struct lnode {
    skc_node *node;
    lua_State *L;     /* thread inside poll(); NULL outside */
    int err_ref;      /* first error raised during this poll, or LUA_NOREF */
    int closing;      /* set by destroy: callbacks no longer enter Lua */
    lcallback *calls; /* pending async calls and queries */
    lcallback *services; /* live service handlers */
    int log_ref;         /* Lua log function, or LUA_NOREF */
    int monitor_ref;     /* Lua monitor function, or LUA_NOREF */
    int watch_ref;       /* Lua map-reload function, or LUA_NOREF */
    int log_init;        /* log_lock initialised */
    pthread_mutex_t log_lock;
    struct logent *log_head; /* queued lines (lskc_node.c) */
    struct logent *log_tail;
    size_t log_count;
};

/* skc.node([opts]) */
int lskc_node_new(lua_State *L);

/* Registers the skc.node metatable. */
void lskc_node_init(lua_State *L);

/* The node at idx, raising if it is not an skc.node. */
lnode *lskc_check_lnode(lua_State *L, int idx);

/* Its skc_node, raising if the node has been closed. */
skc_node *lskc_check_node(lua_State *L, int idx);

/* Registers the Lua function at stack index fn as a callback of node n
 * (raises if it is not a function, or when out of memory), linked at
 * *head. */
lcallback *lskc_callback_new(lua_State *L, lnode *n, lcallback **head, int fn);

/* Unlinks c from *head, drops its Lua function and frees it. */
void lskc_callback_free(lua_State *L, lcallback **head, lcallback *c);

/* Unlinks c from *head; the caller then owns it. */
void lskc_callback_unlink(lcallback **head, lcallback *c);

/* Records an error raised by a callback (the value on top of L): the first
 * one is kept for poll() to re-raise, later ones are dropped. */
void lskc_node_keep_error(lnode *n, lua_State *L);

/* ---------------------------------------------------------------------- */
/* skc.node methods in other files (listed in lskc_node.c's table)        */
/* ---------------------------------------------------------------------- */

/* lskc_call.c: requests to other nodes. */

/* The optional timeout argument at idx: milliseconds, 0 = node default. */
int32_t lskc_opt_timeout(lua_State *L, int idx);

/* The end of starting an async operation whose completion is c (linked in
 * n->calls): rc < 0 frees c and returns the failure triple, else true. */
int lskc_async_started(lua_State *L, lnode *n, lcallback *c, int rc);

/* In a completion: unlinks and frees c and pushes its Lua function (and
 * the value given to be passed first, if any: *nargs = 1, else 0);
 * returns the Lua state to push the result on and finish with
 * lskc_async_finish(), or NULL when nothing is to be called (closing). */
lua_State *lskc_async_begin(lcallback *c, lnode **np, int *nargs);

/* Calls the function lskc_async_begin() pushed: fn([arg,] value) when
 * status is SKC_OK (the caller pushed the value), else fn([arg,] nil,
 * message, code).  nargs: lskc_async_begin's. */
void lskc_async_finish(
    lnode *n, lua_State *L, int nargs, int status, const char *detail);

/* Takes the optional value at idx (absent = none) as c's first argument. */
void lskc_callback_arg(lua_State *L, lcallback *c, int idx);

int lskc_node_call(lua_State *L);
int lskc_node_call_async(lua_State *L);
int lskc_node_call_values(lua_State *L);
int lskc_node_send(lua_State *L);
int lskc_node_send_values(lua_State *L);
int lskc_node_query(lua_State *L);
int lskc_node_query_async(lua_State *L);

/* lskc_map.c: the cluster map. */
int lskc_node_map_load(lua_State *L);
int lskc_node_map_reload(lua_State *L);
int lskc_node_map_watch(lua_State *L);
/* Drops the Lua map-reload function of a node being destroyed. */
void lskc_watch_free(lnode *n, lua_State *L);
int lskc_node_map_parse(lua_State *L);
int lskc_node_map_set(lua_State *L);
int lskc_node_map_update(lua_State *L);
int lskc_node_map_get(lua_State *L);
int lskc_node_map_names(lua_State *L);
int lskc_node_map_source(lua_State *L);

/* lskc_health.c: peer health and groups. */
int lskc_node_monitor(lua_State *L);
int lskc_node_peer_state(lua_State *L);
int lskc_node_ping(lua_State *L);
int lskc_node_stats(lua_State *L);
int lskc_node_ping_async(lua_State *L);
int lskc_node_map_set_group(lua_State *L);

/* Drops the Lua monitor function of a node being destroyed. */
void lskc_monitor_free(lnode *n, lua_State *L);

/* ---------------------------------------------------------------------- */
/* skc.msg and skc.reply (lskc_msg.c)                                     */
/* ---------------------------------------------------------------------- */

/* Registers the skc.msg and skc.reply metatables. */
void lskc_msg_init(lua_State *L);

/* Pushes an skc.msg for msg, valid until lskc_msg_expire() on it. */
void lskc_msg_push(lua_State *L, skc_msg *msg);

/* Ends the skc.msg at idx: its handler has returned, so later use raises. */
void lskc_msg_expire(lua_State *L, int idx);

/* ---------------------------------------------------------------------- */
/* Payload codec (lskc_pack.c)                                            */
/* ---------------------------------------------------------------------- */

/* Registers the metatable of the codec's scratch buffers. */
void lskc_pack_init(lua_State *L);

/* Packs the values at stack indexes from..top (the stack is left as it
 * was) into the state's scratch packer; returns the payload, valid until
 * the next pack from this state, and its length in *len.  Raises like
 * skc.pack for values that cannot be packed. */
const char *lskc_pack_values(lua_State *L, int from, size_t *len);

/* skc.pack(...) and skc.unpack(str) */
int lskc_pack(lua_State *L);
int lskc_unpack(lua_State *L);

#endif /* SKC_LSKC_H */
