/* lskc_msg.c -- skc.msg, a request borrowed by its Lua handler until it
 * returns, and skc.reply, the deferred answer a handler may keep. */
#include "lskc.h"

/* ---------------------------------------------------------------------- */
/* skc.msg                                                                */
/* ---------------------------------------------------------------------- */

typedef struct lmsg {
    skc_msg *msg; /* NULL once the handler has returned */
} lmsg;

typedef struct lreply {
    skc_reply *reply; /* NULL once answered or abandoned */
} lreply;

void
lskc_msg_push(lua_State *L, skc_msg *msg)
{
    lmsg *m = lua_newuserdatauv(L, sizeof(*m), 0);
    m->msg = msg;
    luaL_setmetatable(L, LSKC_MSG);
}

/* Runs inside a core callback, so it must not raise: no luaL_check*. */
void
lskc_msg_expire(lua_State *L, int idx)
{
    lmsg *m = lua_touserdata(L, idx);
    m->msg = NULL;
}

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

/* msg:take() -> data, reply: what a scheduler needs from a message in one
 * call.  reply is nil for a send; for a call, the deferred skc.reply (as
 * msg:defer()), or false, message, code if it cannot be deferred. */
static int
msg_take(lua_State *L)
{
    skc_msg *msg = check_msg(L, 1);
    size_t len = 0;
    const void *p = skc_msg_data(msg, &len);
    lua_pushlstring(L, p != NULL ? p : "", p != NULL ? len : 0);
    if (skc_msg_kind(msg) != SKC_MSG_CALL) {
        lua_pushnil(L);
        return 2;
    }
    lreply *r = lua_newuserdatauv(L, sizeof(*r), 0);
    r->reply = NULL;
    luaL_setmetatable(L, LSKC_REPLY);
    int rc = skc_msg_defer(msg, &r->reply);
    if (rc < 0) {
        r->reply = NULL;
        lua_pop(L, 1);
        lua_pushboolean(L, 0);
        lskc_push_failure(L, rc, skc_last_error());
        lua_remove(L, -3); /* the nil of nil, message, code */
        return 4;
    }
    return 2;
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
/* skc.reply                                                              */
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

/* reply:send_values(...): reply:send(skc.pack(...)) without the string in
 * between.  A value that cannot be packed raises before the reply is
 * used, so it stays pending. */
static int
reply_send_values(lua_State *L)
{
    lreply *r = check_reply(L, 1);
    size_t len;
    const char *data = lskc_pack_values(L, 2, &len);
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

void
lskc_msg_init(lua_State *L)
{
    static const luaL_Reg msg_methods[] = {
        { "data", msg_data },
        { "kind", msg_kind },
        { "target", msg_target },
        { "remaining", msg_remaining },
        { "reply", msg_reply },
        { "fail", msg_fail },
        { "defer", msg_defer },
        { "take", msg_take },
        { NULL, NULL },
    };
    static const luaL_Reg msg_meta[] = {
        { "__tostring", msg_tostring },
        { NULL, NULL },
    };
    static const luaL_Reg reply_methods[] = {
        { "send", reply_send },
        { "send_values", reply_send_values },
        { "fail", reply_fail },
        { "free", reply_free },
        { "pending", reply_pending },
        { NULL, NULL },
    };
    static const luaL_Reg reply_meta[] = {
        { "__gc", reply_free },
        { "__close", reply_free },
        { "__tostring", reply_tostring },
        { NULL, NULL },
    };

    lskc_new_class(L, LSKC_MSG, msg_methods, msg_meta);
    lskc_new_class(L, LSKC_REPLY, reply_methods, reply_meta);
}
