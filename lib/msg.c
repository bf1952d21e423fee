/* msg.c -- the life of a message delivered to a service: its reply route,
 * skc_msg_* and skc_reply_* (answer now, fail, defer), and the error reply
 * a call gets when its handler returns without answering.
 */
#include "core.h"
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Replies are handed out in place with skc_free's 16-byte block header
 * written over the reply header, and echo replies reuse the request frame:
 * both need these sizes. */
_Static_assert(SKCI_REP_FIXED >= 16, "reply header too small");
_Static_assert(SKCI_REQ_FIXED >= SKCI_REP_FIXED, "request header too small");

skci_tmsg *
skci_reply_frame(uint32_t status, uint64_t id, const void *data, size_t len)
{
    skci_tmsg *m;
    if (skci_tmsg_alloc(&m, SKCI_REP_FIXED + len) != 0) {
        return NULL;
    }
    uint8_t *b = skci_tmsg_body(m);
    skci_wire_rep_put_hdr(b, status, id, (uint32_t)len);
    if (len > 0) {
        memcpy(b + SKCI_REP_FIXED, data, len);
    }
    return m;
}

skci_tmsg *
skci_error_frame(int code, uint64_t id, const char *fmt, ...)
{
    char text[SKCI_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return skci_reply_frame((uint32_t)-code, id, text, strlen(text));
}

void
skci_route_link(skc_node *n, skci_route *r)
{
    pthread_mutex_lock(&n->serve.lock);
    skci_list_append(&n->serve.routes, &r->link);
    pthread_mutex_unlock(&n->serve.lock);
}

/* Sends the reply frame (consumed) for route r and frees r.  Returns
 * SKC_ECLOSED if the node is gone (frame dropped). */
static int
route_answer(skci_route *r, skci_tmsg *frame)
{
    skc_node *n = r->node;
    int rc = 0;
    pthread_mutex_lock(&n->serve.lock);
    skci_rctx *rc_ = r->rctx;
    if (rc_ != NULL) {
        r->rctx = NULL;
        skci_list_remove(&n->serve.routes, &r->link);
        skci_server_reply(rc_, frame);
    } else {
        skci_tmsg_free(frame);
        rc = skci_error(
            SKC_ECLOSED, "node '%s' was destroyed before the reply", n->name);
    }
    pthread_mutex_unlock(&n->serve.lock);
    free(r);
    return rc;
}

/* Sends a reply with a payload of len bytes (counted). */
static int
route_answer_ok(skci_route *r, skci_tmsg *frame, size_t len)
{
    SKCI_COUNT(r->node, replies_ok, 1);
    SKCI_COUNT(r->node, bytes_out, len);
    return route_answer(r, frame);
}

static int
route_answer_error(skci_route *r, int code, const char *text)
{
    SKCI_COUNT(r->node, replies_failed, 1);
    /* Without memory for a frame (f == NULL) the request is dropped and
     * the caller still gets an answer: its deadline. */
    skci_tmsg *f =
        skci_reply_frame((uint32_t)-code, r->id, text, strlen(text));
    return route_answer(r, f);
}

void
skci_msg_drop(skc_msg *m, int code, const char *why)
{
    if (m->route != NULL) {
        route_answer_error(m->route, code, why);
        m->route = NULL;
    }
    skci_tmsg_free(m->frame);
    free(m);
}

void
skci_msg_finish(skc_msg *m)
{
    char why[SKCI_DETAIL_MAX] = "";
    if (m->route != NULL) {
        snprintf(why, sizeof(why),
            "service %s on node '%s' returned without replying", m->target,
            m->node->name);
    }
    skci_msg_drop(m, SKC_ENOREPLY, why);
}

void
skci_detach_routes(skc_node *n)
{
    pthread_mutex_lock(&n->serve.lock);
    skci_lnode *e;
    while ((e = skci_list_pop(&n->serve.routes)) != NULL) {
        SKCI_LIST_ENTRY(e, skci_route, link)->rctx = NULL;
    }
    pthread_mutex_unlock(&n->serve.lock);
}

const void *
skc_msg_data(const skc_msg *msg, size_t *len)
{
    if (msg == NULL) {
        if (len != NULL) {
            *len = 0;
        }
        return NULL;
    }
    if (len != NULL) {
        *len = msg->len;
    }
    return msg->payload;
}

int
skc_msg_kind(const skc_msg *msg)
{
    return msg != NULL ? msg->kind : SKC_EINVAL;
}

int32_t
skc_msg_remaining_ms(const skc_msg *msg)
{
    if (msg == NULL || msg->deadline == 0) {
        return -1;
    }
    int64_t left = msg->deadline - skci_now_ms();
    return left > 0 ? (int32_t)left : 0;
}

const char *
skc_msg_target(const skc_msg *msg)
{
    return msg != NULL ? msg->target : "";
}

static int
msg_check_answerable(skc_msg *msg)
{
    if (msg == NULL) {
        return skci_error(SKC_EINVAL, "msg is NULL");
    }
    if (msg->kind != SKC_MSG_CALL) {
        return skci_error(SKC_ESTATE, "a send cannot be answered");
    }
    if (msg->route == NULL) {
        return skci_error(
            SKC_ESTATE, "this call was already answered or deferred");
    }
    return 0;
}

static int
route_reply(skci_route *r, const void *data, size_t len)
{
    if (data == NULL && len > 0) {
        route_answer_error(r, SKC_EHANDLER, "reply data was NULL");
        return skci_error(SKC_EINVAL, "data is NULL with length %zu", len);
    }
    if (len > r->max_reply) {
        char why[700];
        snprintf(why, sizeof(why),
            "the reply of %zu bytes from %s on node '%s' exceeds the caller's limit of %u bytes",
            len, r->target, r->node->name, r->max_reply);
        route_answer_error(r, SKC_ETOOBIG, why);
        return skci_error(SKC_ETOOBIG, "%s", why);
    }
    skci_tmsg *f = skci_reply_frame(0, r->id, data, len);
    if (f == NULL) {
        route_answer_error(r, SKC_ENOMEM, "out of memory for the reply");
        return skci_error(SKC_ENOMEM, "reply of %zu bytes", len);
    }
    return route_answer_ok(r, f, len);
}

int
skc_msg_reply(skc_msg *msg, const void *data, size_t len)
{
    int rc = msg_check_answerable(msg);
    if (rc != 0) {
        return rc;
    }
    skci_route *r = msg->route;
    msg->route = NULL;
    if (data != NULL && data == (const void *)msg->payload &&
        len == msg->len && len <= r->max_reply && msg->frame != NULL) {
        /* Echoing the request's own bytes: turn the request frame into
         * the reply in place (the request header in front of the payload
         * is at least as long as a reply header), no copy. */
        skci_tmsg *f = msg->frame;
        size_t front = (size_t)(msg->payload - skci_tmsg_body(f));
        skci_tmsg_trim_front(f, front - SKCI_REP_FIXED);
        skci_wire_rep_put_hdr(skci_tmsg_body(f), 0, r->id, (uint32_t)len);
        msg->frame = NULL;
        msg->payload = NULL;
        msg->len = 0;
        return route_answer_ok(r, f, len);
    }
    return route_reply(r, data, len);
}

int
skc_msg_fail(skc_msg *msg, const char *text)
{
    int rc = msg_check_answerable(msg);
    if (rc != 0) {
        return rc;
    }
    skci_route *r = msg->route;
    msg->route = NULL;
    char buf[4097];
    snprintf(buf, sizeof(buf), "%s", text ? text : "handler failed");
    return route_answer_error(r, SKC_EHANDLER, buf);
}

int
skc_msg_defer(skc_msg *msg, skc_reply **out)
{
    if (out == NULL) {
        return skci_error(SKC_EINVAL, "out is NULL");
    }
    *out = NULL;
    int rc = msg_check_answerable(msg);
    if (rc != 0) {
        return rc;
    }
    skc_reply *rep = malloc(sizeof(*rep));
    if (rep == NULL) {
        return skci_error(SKC_ENOMEM, "reply");
    }
    rep->route = msg->route;
    msg->route = NULL;
    atomic_fetch_add(&msg->node->refs, 1);
    *out = rep;
    return 0;
}

static void
reply_release(skc_reply *rep, skc_node *n)
{
    free(rep);
    skci_node_unref(n);
}

int
skc_reply_send(skc_reply *reply, const void *data, size_t len)
{
    if (reply == NULL) {
        return skci_error(SKC_EINVAL, "reply is NULL");
    }
    skc_node *n = reply->route->node;
    int rc = route_reply(reply->route, data, len);
    reply_release(reply, n);
    return rc;
}

int
skc_reply_fail(skc_reply *reply, const char *text)
{
    if (reply == NULL) {
        return skci_error(SKC_EINVAL, "reply is NULL");
    }
    skc_node *n = reply->route->node;
    char buf[4097];
    snprintf(buf, sizeof(buf), "%s", text ? text : "handler failed");
    int rc = route_answer_error(reply->route, SKC_EHANDLER, buf);
    reply_release(reply, n);
    return rc;
}

void
skc_reply_free(skc_reply *reply)
{
    if (reply == NULL) {
        return;
    }
    skc_node *n = reply->route->node;
    char why[SKCI_DETAIL_MAX];
    snprintf(why, sizeof(why), "service %s on node '%s' abandoned the reply",
        reply->route->target, n->name);
    route_answer_error(reply->route, SKC_ENOREPLY, why);
    reply_release(reply, n);
}
