/* call.c -- the public call, send and query functions: argument checks,
 * the call record, and waiting for (or calling back with) the outcome.
 */
#include "core.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
check_peer_name(const char *peer)
{
    if (peer == NULL || peer[0] == '\0') {
        return skci_error(SKC_EINVAL, "node name is empty");
    }
    if (strlen(peer) > SKCI_NAME_MAX) {
        return skci_error(
            SKC_EINVAL, "node name longer than %d bytes", SKCI_NAME_MAX);
    }
    return 0;
}

/* An async call's or query's completion (dispatch runs it as a task). */
static void
run_completion(skc_node *n, skci_task *t)
{
    skci_call *c = (skci_call *)((char *)t - offsetof(skci_call, task));
    skc_node *prev = skci_current_node;
    skci_current_node = n;
    if (c->status != 0) {
        skci_error_set_text(c->detail);
    } else {
        skci_error_clear();
    }
    if (c->pcb != NULL) {
        int64_t rtt = c->status == 0 ? c->end_us - c->start_us : 0;
        c->pcb(c->status, rtt, c->status != 0 ? c->detail : NULL, c->arg);
    } else if (c->qcb != NULL) {
        uint32_t h = 0;
        int status = c->status;
        if (status == 0 && c->len != 4) {
            status = SKC_EPROTO;
            free(c->detail);
            c->detail = skci_strdup(
                "a query was answered with a payload that is not 4 bytes");
            skci_error_set_text(c->detail);
        } else if (status == 0) {
            h = skci_get_u32(c->data);
        }
        c->qcb(status, h, status != 0 ? c->detail : NULL, c->arg);
    } else {
        c->cb(c->status, c->status == 0 ? c->data : NULL, c->len,
            c->status != 0 ? c->detail : NULL, c->arg);
    }
    skci_current_node = prev;
    skci_call_free(c);
}

/* Builds a call and its frame; nothing is shared yet. */
static int
call_new(skc_node *n, skci_call **out, int kind, int mode, const char *peer,
    const char *target, const void *data, size_t len, int32_t timeout_ms)
{
    int rc;
    skci_target t = { .type = SKCI_TARGET_NONE };
    if ((rc = check_peer_name(peer)) != 0) {
        return rc;
    }
    int no_target = kind == SKCI_KIND_PING || kind == SKCI_KIND_STATS;
    if (!no_target &&
        (rc = skci_target_parse(&t, target, kind == SKCI_KIND_QUERY)) != 0) {
        return rc;
    }
    if (kind == SKCI_KIND_QUERY && t.type == SKCI_TARGET_HANDLE) {
        return skci_error(SKC_EINVAL, "query takes a name, not a handle");
    }
    if (data == NULL && len > 0) {
        return skci_error(SKC_EINVAL, "data is NULL with length %zu", len);
    }
    if (len > n->max_msg) {
        return skci_error(SKC_ETOOBIG,
            "payload of %zu bytes exceeds this node's limit of %u bytes (max_msg_size)",
            len, n->max_msg);
    }
    if (timeout_ms < 0) {
        return skci_error(SKC_EINVAL, "timeout_ms is negative");
    }
    char tname[SKCI_NAME_MAX + 2];
    size_t tlen = no_target
        ? (size_t)snprintf(tname, sizeof(tname), "%s",
              kind == SKCI_KIND_PING ? "(ping)" : "(stats)")
        : skci_target_format(&t, tname, sizeof(tname));
    skci_call *c = calloc(1, sizeof(*c) + tlen + 1);
    if (c == NULL) {
        return skci_error(SKC_ENOMEM, "call");
    }
    memcpy(c->target, tname, tlen + 1);
    c->mode = mode;
    c->kind = kind;
    c->hn.idx = SKCI_HEAP_NONE;
    c->timeout_ms = timeout_ms ? timeout_ms : n->call_timeout_ms;
    c->start = skci_now_ms();
    c->hn.when = c->start + c->timeout_ms;
    c->payload_len = len;
    skci_req r = {
        .kind = (uint8_t)kind,
        /* calls and sends leave room for the order block, filled in (or
         * taken out, for an older peer) when the frame leaves: peer.c */
        .flags = kind == SKCI_KIND_CALL || kind == SKCI_KIND_SEND
            ? SKCI_FLAG_ORDER
            : 0,
        .max_reply = n->max_msg,
        .target = t,
        .len = (uint32_t)len,
    };
    size_t hdr = skci_wire_req_hdr_size(&r);
    if (skci_tmsg_alloc(&c->req, hdr + len) != 0) {
        free(c);
        return SKC_ENOMEM;
    }
    uint8_t *b = skci_tmsg_body(c->req);
    skci_wire_req_put_hdr(b, &r);
    if (len > 0) {
        memcpy(b + hdr, data, len);
    }
    if (mode == SKCI_MODE_SYNC) {
        pthread_cond_init(&c->cond, NULL);
    }
    c->task.run = run_completion;
    *out = c;
    return 0;
}

/* Registers and routes a new call.  On error the call is freed and the
 * error returned (the callback of an async call never runs). */
static int
call_submit(skc_node *n, skci_call *c, const char *peer)
{
    int rc = 0;
    skci_call_lock(n);
    if (atomic_load(&n->closing)) {
        rc = skci_error(SKC_ECLOSED, "node '%s' is closing", n->name);
        goto fail;
    }
    if (n->pend.inflight >= n->max_inflight) {
        rc = skci_error(SKC_ELIMIT,
            "%u calls already pending on node '%s' (max_inflight)",
            n->pend.inflight, n->name);
        goto fail;
    }
    skci_peer *p = skci_peer_get(n, peer, 1);
    if (p == NULL) {
        rc = skci_error(SKC_ENOMEM, "peer");
        goto fail;
    }
    if (p->map == SKCI_PEER_GROUP) {
        char why[SKCI_DETAIL_MAX];
        skci_peer *m = skci_group_pick(n, p, NULL, why, sizeof(why));
        if (m == NULL) {
            rc = skci_error(SKC_EUNREACHABLE, "%s", why);
            goto fail;
        }
        c->group = p;
        p = m;
    }
    if (c->kind == SKCI_KIND_PING) {
        c->start_us = skci_now_us(); /* its round-trip time */
    }
    if ((rc = skci_peer_admit(n, p, c)) != 0 ||
        (rc = skci_call_register(n, c)) != 0) {
        goto fail;
    }
    skci_wire_req_set_id(skci_tmsg_body(c->req), c->id);
    n->pend.inflight++;
    skci_peer_route(n, p, c);
    skci_call_unlock(n);
    return 0;
fail:
    skci_call_unlock(n);
    skci_call_free(c);
    return rc;
}

/* Waits for a sync call and takes its result (frees c). */
static int
call_wait(skc_node *n, skci_call *c, skci_tmsg **rep, const uint8_t **data,
    size_t *len)
{
    skci_call_lock(n);
    while (!c->done) {
        skci_call_wait(n, &c->cond, INT64_MAX);
    }
    skci_call_unlock(n);
    int rc = c->status;
    if (rc == 0) {
        *rep = c->rep;
        *data = c->data;
        *len = c->len;
        c->rep = NULL;
        skci_error_clear();
    } else {
        skci_error_set_text(c->detail);
    }
    skci_call_free(c);
    return rc;
}

/* Runs a call or query to the end on this thread.  On 0 the reply frame
 * (*rep) owns *data. */
static int
call_sync(skc_node *node, int kind, const char *peer, const char *target,
    const void *data, size_t len, int32_t timeout_ms, int channel,
    skci_tmsg **rep, const uint8_t **d, size_t *l)
{
    if (skci_inline_depth > 0) {
        return skci_error(SKC_EBUSY,
            "a blocking %s to node '%s' from an inline handler or callback of node '%s' would stall the thread that receives replies; use the async form",
            kind == SKCI_KIND_QUERY       ? "query"
                : kind == SKCI_KIND_PING  ? "ping"
                : kind == SKCI_KIND_STATS ? "stats request"
                                          : "call",
            peer ? peer : "?",
            skci_current_node ? skci_current_node->name : "?");
    }
    skci_call *c;
    int rc = call_new(
        node, &c, kind, SKCI_MODE_SYNC, peer, target, data, len, timeout_ms);
    if (rc == 0) {
        c->channel = channel;
    }
    if (rc == 0 && (rc = call_submit(node, c, peer)) == 0) {
        rc = call_wait(node, c, rep, d, l);
    }
    return rc;
}

int
skc_node_call(skc_node *node, void **out, size_t *out_len, const char *peer,
    const char *target, const void *data, size_t len, int32_t timeout_ms)
{
    return skc_node_call_ex(
        node, out, out_len, peer, target, data, len, timeout_ms, 0);
}

int
skc_node_call_ex(skc_node *node, void **out, size_t *out_len, const char *peer,
    const char *target, const void *data, size_t len, int32_t timeout_ms,
    uint32_t flags)
{
    int rc;
    if (out != NULL) {
        *out = NULL;
    }
    if (out_len != NULL) {
        *out_len = 0;
    }
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    if ((flags & ~(uint32_t)SKC_CALL_CHANNEL_MASK) != 0) {
        return skci_error(SKC_EINVAL, "unknown call flags 0x%x",
            (unsigned)(flags & ~(uint32_t)SKC_CALL_CHANNEL_MASK));
    }
    if (out == NULL) {
        return skci_error(SKC_EINVAL, "out is NULL");
    }
    skci_tmsg *rep = NULL;
    const uint8_t *d = NULL;
    size_t l = 0;
    if ((rc = call_sync(node, SKCI_KIND_CALL, peer, target, data, len,
             timeout_ms, (flags & SKC_CALL_CHANNEL_MASK) >> 8, &rep, &d,
             &l)) != 0) {
        return rc;
    }
    /* Handed out in place: the reply header in front of the payload
     * becomes skc_free's block header (umem.c). */
    *out = skci_user_from_msg(rep, (uint8_t *)d);
    if (out_len != NULL) {
        *out_len = l;
    }
    return 0;
}

int
skc_node_call_async(skc_node *node, const char *peer, const char *target,
    const void *data, size_t len, int32_t timeout_ms, skc_call_fn cb,
    void *arg)
{
    return skc_node_call_async_ex(
        node, peer, target, data, len, timeout_ms, 0, cb, arg);
}

int
skc_node_call_async_ex(skc_node *node, const char *peer, const char *target,
    const void *data, size_t len, int32_t timeout_ms, uint32_t flags,
    skc_call_fn cb, void *arg)
{
    int rc;
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    if (cb == NULL) {
        return skci_error(SKC_EINVAL, "callback is NULL");
    }
    const uint32_t known = SKC_CALL_INLINE | SKC_CALL_CHANNEL_MASK;
    if ((flags & ~known) != 0) {
        return skci_error(
            SKC_EINVAL, "unknown call flags 0x%x", (unsigned)(flags & ~known));
    }
    skci_call *c;
    if ((rc = call_new(node, &c, SKCI_KIND_CALL, SKCI_MODE_ASYNC, peer, target,
             data, len, timeout_ms)) != 0) {
        return rc;
    }
    c->cb = cb;
    c->arg = arg;
    c->inline_cb = (flags & SKC_CALL_INLINE) != 0;
    c->channel = (int)((flags & SKC_CALL_CHANNEL_MASK) >> 8);
    return call_submit(node, c, peer);
}

/* Checks and builds an async query or ping (has_cb: its callback is not
 * NULL); the caller sets the callback and submits. */
static int
async_new(skc_node *node, skci_call **c, int kind, const char *peer,
    const char *target, int32_t timeout_ms, int has_cb)
{
    int rc;
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    if (!has_cb) {
        return skci_error(SKC_EINVAL, "callback is NULL");
    }
    return call_new(
        node, c, kind, SKCI_MODE_ASYNC, peer, target, NULL, 0, timeout_ms);
}

int
skc_node_query_async(skc_node *node, const char *peer, const char *name,
    int32_t timeout_ms, skc_query_fn cb, void *arg)
{
    skci_call *c;
    int rc = async_new(
        node, &c, SKCI_KIND_QUERY, peer, name, timeout_ms, cb != NULL);
    if (rc != 0) {
        return rc;
    }
    c->qcb = cb;
    c->arg = arg;
    return call_submit(node, c, peer);
}

int
skc_node_send(skc_node *node, const char *peer, const char *target,
    const void *data, size_t len)
{
    int rc;
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    /* Fast path: link up and nothing queued ahead -> the frame goes
     * straight to the PUSH socket, with no call record, id or deadline,
     * and a full backlog (SKC_ELIMIT) reaches the caller. */
    skci_target t;
    if (check_peer_name(peer) == 0 && skci_target_parse(&t, target, 0) == 0 &&
        (data != NULL || len == 0) && len <= node->max_msg) {
        skci_req r = {
            .kind = SKCI_KIND_SEND,
            .flags = SKCI_FLAG_ORDER, /* numbered in skci_peer_push_now */
            .max_reply = node->max_msg,
            .target = t,
            .len = (uint32_t)len,
        };
        size_t hdr = skci_wire_req_hdr_size(&r);
        skci_tmsg *m;
        if (skci_tmsg_alloc(&m, hdr + len) == 0) {
            uint8_t *b = skci_tmsg_body(m);
            skci_wire_req_put_hdr(b, &r);
            if (len > 0) {
                memcpy(b + hdr, data, len);
            }
            if (skci_peer_push_now(node, peer, m, len, &rc)) {
                return rc;
            }
            skci_tmsg_free(m);
        }
    }
    skci_call *c;
    if ((rc = call_new(node, &c, SKCI_KIND_SEND, SKCI_MODE_SEND, peer, target,
             data, len, 0)) != 0) {
        return rc;
    }
    return call_submit(node, c, peer);
}

int
skc_node_query(skc_node *node, uint32_t *out, const char *peer,
    const char *name, int32_t timeout_ms)
{
    int rc;
    if (out != NULL) {
        *out = 0;
    }
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    if (out == NULL) {
        return skci_error(SKC_EINVAL, "out is NULL");
    }
    skci_tmsg *rep = NULL;
    const uint8_t *d = NULL;
    size_t l = 0;
    if ((rc = call_sync(node, SKCI_KIND_QUERY, peer, name, NULL, 0, timeout_ms,
             0, &rep, &d, &l)) != 0) {
        return rc;
    }
    if (l != 4) {
        skci_tmsg_free(rep);
        return skci_error(SKC_EPROTO,
            "node '%s' answered a query with %zu bytes instead of 4", peer, l);
    }
    *out = skci_get_u32(d);
    skci_tmsg_free(rep);
    return 0;
}

/* ---- ping ---- */

int
skc_node_ping(
    skc_node *node, const char *peer, int32_t timeout_ms, int64_t *rtt_us)
{
    int rc;
    if (rtt_us != NULL) {
        *rtt_us = 0;
    }
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    skci_tmsg *rep = NULL;
    const uint8_t *d = NULL;
    size_t l = 0;
    int64_t t0 = skci_now_us();
    if ((rc = call_sync(node, SKCI_KIND_PING, peer, NULL, NULL, 0, timeout_ms,
             0, &rep, &d, &l)) != 0) {
        return rc;
    }
    if (rtt_us != NULL) {
        *rtt_us = skci_now_us() - t0;
    }
    skci_tmsg_free(rep);
    return 0;
}

int
skci_call_plain(skc_node *node, int kind, const char *peer, int32_t timeout_ms,
    skci_tmsg **rep, const uint8_t **d, size_t *l)
{
    return call_sync(
        node, kind, peer, NULL, NULL, 0, timeout_ms, 0, rep, d, l);
}

int
skc_node_ping_async(skc_node *node, const char *peer, int32_t timeout_ms,
    skc_ping_fn cb, void *arg)
{
    skci_call *c;
    int rc = async_new(
        node, &c, SKCI_KIND_PING, peer, NULL, timeout_ms, cb != NULL);
    if (rc != 0) {
        return rc;
    }
    c->pcb = cb;
    c->arg = arg;
    return call_submit(node, c, peer);
}
