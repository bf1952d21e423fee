/* serve.c -- frames that arrive at this node: requests on the call port
 * (call, query, hello, ping) and one-way sends on the send port, decoded
 * and handed to the service they name (the transport's server callbacks).
 * With a cluster cookie, a connection gets nothing but the handshake
 * until it has proven the cookie (auth.c keeps who has).
 */
#include "core.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Answers a request context at once; a NULL frame (no memory) drops the
 * request, and the caller's deadline answers it. */
static void
answer_now(skci_rctx *rctx, skci_tmsg *frame)
{
    skci_server_reply(rctx, frame);
}

/* The HELLO reply body; with the features word (this node reads the
 * order block) when the HELLO asked for it, after `auth` (the server's
 * proof and a send ticket) when the HELLO proved the cookie. */
static skci_tmsg *
hello_reply(skc_node *n, uint64_t id, uint32_t flags,
    const uint8_t auth[SKCI_AUTH_HELLO_BLOCK])
{
    const char *url = n->server ? skci_server_pull_url(n->server) : NULL;
    if (url == NULL) {
        url = "";
    }
    size_t nl = strlen(n->name), ul = strlen(url);
    uint8_t body[SKCI_AUTH_HELLO_BLOCK + 4 + 2 + SKCI_NAME_MAX + 2 + 1024 + 4];
    if (ul > 1024) {
        ul = 1024;
    }
    int feat = (flags & SKCI_FLAG_HELLO_FEATURES) != 0;
    size_t pre = auth != NULL ? SKCI_AUTH_HELLO_BLOCK : 0;
    if (auth != NULL) {
        memcpy(body, auth, pre);
    }
    skci_wire_hello_put(
        body + pre, n->max_msg, n->name, nl, url, ul, feat, SKCI_FEAT_ORDER);
    return skci_reply_frame(
        0, id, body, pre + skci_wire_hello_size(nl, ul, feat));
}

/* One rate-limited line (one kind for all refusals) naming the peer. */
static void
auth_refused(skc_node *n, uint32_t pipe, const char *port, const char *why)
{
    char addr[160];
    skci_pipe_addr(pipe, addr, sizeof(addr));
    skci_node_log(n, SKC_LOG_WARN,
        "refused a connection from %s on the %s port: %s", addr, port, why);
}

/* A connection's cookie state was just made: if the connection is gone
 * already (its removal may be reported before its last request is
 * handled), the state goes now, so none outlives its connection. */
static void
auth_pipe_check(skc_node *n, uint32_t pipe)
{
    if (!skci_pipe_alive(pipe)) {
        skci_auth_pipe_gone(&n->auth, pipe);
    }
}

/* The cookie's part of a request: the handshake (AUTH, HELLO with a
 * proof), and the refusal of anything else on a connection that has not
 * proven the cookie.  The reply, or NULL when the request goes on. */
static skci_tmsg *
auth_request(skc_node *n, const skci_req *req, uint32_t pipe)
{
    skci_auth *a = &n->auth;
    int hello_auth = req->kind == SKCI_KIND_HELLO &&
        (req->flags & SKCI_FLAG_HELLO_AUTH) != 0;
    if (req->kind != SKCI_KIND_AUTH && !hello_auth) {
        if (a->key == NULL || skci_auth_pipe_ok(a, pipe)) {
            return NULL;
        }
        const char *why = req->kind == SKCI_KIND_HELLO
            ? "a HELLO without the cluster cookie"
            : "a request before the cluster cookie handshake";
        auth_refused(n, pipe, "call", why);
        return skci_error_frame(SKC_EAUTH, req->id,
            "this node requires the cluster cookie (%s)", why);
    }
    if (a->key == NULL) {
        return skci_error_frame(SKC_EAUTH, req->id,
            "node '%s' has no cluster cookie, but the caller has one",
            n->name);
    }
    char why[160];
    if (hello_auth) {
        if (req->len < SKCI_AUTH_MAC) {
            return skci_error_frame(SKC_EPROTO, req->id,
                "a HELLO with a proof of %u bytes", req->len);
        }
        uint8_t blk[SKCI_AUTH_HELLO_BLOCK];
        size_t nl = req->len - SKCI_AUTH_MAC;
        if (skci_auth_hello(a, pipe, (const char *)req->payload, nl,
                req->payload + nl, n->name, blk, blk + SKCI_AUTH_MAC, why,
                sizeof(why)) != 0) {
            auth_refused(n, pipe, "call", why);
            return skci_error_frame(SKC_EAUTH, req->id, "refused: %s", why);
        }
        return hello_reply(n, req->id, req->flags, blk);
    }
    uint8_t out[SKCI_AUTH_NONCE];
    if (req->len == SKCI_AUTH_NONCE) {
        int rc = skci_auth_challenge(a, pipe, req->payload, out);
        auth_pipe_check(n, pipe);
        return rc == 0
            ? skci_reply_frame(0, req->id, out, SKCI_AUTH_NONCE)
            : skci_error_frame(rc, req->id, "cannot make a challenge");
    }
    if (req->len == 0) {
        if (skci_auth_ticket(a, pipe, out) != 0) {
            auth_refused(
                n, pipe, "call", "a ticket request before the handshake");
            return skci_error_frame(SKC_EAUTH, req->id,
                "a ticket needs an authenticated connection");
        }
        return skci_reply_frame(0, req->id, out, SKCI_AUTH_TICKET);
    }
    return skci_error_frame(
        SKC_EPROTO, req->id, "an auth request of %u bytes", req->len);
}

void
skci_on_pipe_gone(void *arg, uint32_t pipe)
{
    skc_node *n = arg;
    skci_auth_pipe_gone(&n->auth, pipe);
}

/* names_only: a peer's target by raw handle is refused. */
static int
handle_refused(const skc_node *n, const skci_req *req)
{
    return n->names_only && req->target.type == SKCI_TARGET_HANDLE;
}

static skci_tmsg *
query_reply(skc_node *n, const skci_req *req, const char *tname)
{
    skci_service *s = skci_registry_find(n, &req->target);
    if (s == NULL) {
        return skci_error_frame(SKC_ENOSERVICE, req->id,
            "node '%s' has no name %s", n->name, tname);
    }
    uint8_t h[4];
    skci_put_u32(h, s->handle);
    skci_service_release(n, s);
    return skci_reply_frame(0, req->id, h, 4);
}

/* A CALL request: a message with a route back to rctx goes to the service
 * (takes msg). */
static void
deliver_call(skc_node *n, skci_rctx *rctx, skci_tmsg *msg, const skci_req *req,
    const char *tname, size_t tlen)
{
    skc_msg *m = calloc(1, sizeof(*m) + tlen + 1);
    skci_route *r = calloc(1, sizeof(*r) + tlen + 1);
    if (m == NULL || r == NULL) {
        free(m);
        free(r);
        skci_tmsg_free(msg);
        answer_now(rctx,
            skci_error_frame(
                SKC_ENOMEM, req->id, "node '%s': out of memory", n->name));
        return;
    }
    m->node = n;
    m->kind = SKC_MSG_CALL;
    m->frame = msg;
    m->payload = req->payload;
    m->len = req->len;
    /* No unbounded work from outside: a call asking for more than this
     * node's cap, or for no deadline, gets the cap. */
    uint32_t t = req->timeout_ms;
    if (t == 0 || t > (uint32_t)n->max_deadline_ms) {
        t = (uint32_t)n->max_deadline_ms;
    }
    m->deadline = skci_now_ms() + t;
    memcpy(m->target, tname, tlen + 1);
    r->node = n;
    r->rctx = rctx;
    r->id = req->id;
    r->max_reply = req->max_reply;
    memcpy(r->target, tname, tlen + 1);
    m->route = r;
    skci_route_link(n, r);
    if (skci_wire_req_has_order(req->kind, req->flags)) {
        /* After the sends its caller issued before it (order.c). */
        skci_order_call(
            n, &req->target, m, req->stream, req->seq, req->timeout_ms);
    } else {
        skci_serve_call(n, &req->target, m);
    }
}

void
skci_serve_call(skc_node *n, const skci_target *t, skc_msg *m)
{
    int rc = skci_registry_deliver(n, t, m);
    if (rc == 0) {
        SKCI_COUNT(n, calls_in, 1);
        return;
    }
    SKCI_COUNT(n, calls_refused, 1);
    char why[SKCI_DETAIL_MAX];
    if (rc == SKC_ELIMIT) {
        /* The caller is told at once (its own log shows it); here one
         * rate-limited line. */
        SKCI_COUNT(n, mailbox_full, 1);
        snprintf(why, sizeof(why), "%s", skc_last_error());
        skci_node_log(n, SKC_LOG_WARN, "refused a call: %s", why);
    } else {
        snprintf(why, sizeof(why), "node '%s' has no service %s", n->name,
            m->target);
    }
    skci_msg_drop(m, rc == SKC_ELIMIT ? SKC_ELIMIT : SKC_ENOSERVICE, why);
}

/* The answer to a STATS request: the node's statistics as JSON. */
static skci_tmsg *
stats_reply(skc_node *n, const skci_req *req)
{
    size_t len;
    char *json = skci_stats_json(n, &len);
    if (json == NULL) {
        return skci_error_frame(SKC_ENOMEM, req->id,
            "node '%s': out of memory for its statistics", n->name);
    }
    skci_tmsg *f = len > req->max_reply
        ? skci_error_frame(SKC_ETOOBIG, req->id,
              "node '%s': its statistics take %zu bytes; the caller accepts %u",
              n->name, len, req->max_reply)
        : skci_reply_frame(0, req->id, json, len);
    free(json);
    return f;
}

void
skci_on_request(void *arg, skci_rctx *rctx, skci_tmsg *msg)
{
    skc_node *n = arg;
    skci_req req;
    char err[256];
    if (skci_wire_req_decode(&req, skci_tmsg_body(msg), skci_tmsg_len(msg),
            err, sizeof(err)) != 0) {
        SKCI_COUNT(n, bad_frames, 1);
        skci_node_log(
            n, SKC_LOG_WARN, "rejected a bad request frame: %s", err);
        skci_tmsg_free(msg);
        answer_now(rctx,
            skci_error_frame(SKC_EPROTO, 0, "node '%s' rejected the frame: %s",
                n->auth.key != NULL ? "" : n->name, err));
        return;
    }
    SKCI_COUNT(n, requests_in, 1);
    if (req.kind == SKCI_KIND_CALL) {
        SKCI_COUNT(n, bytes_in, req.len); /* user payloads only */
    }
    char tname[SKCI_NAME_MAX + 2];
    size_t tlen = skci_target_format(&req.target, tname, sizeof(tname));
    skci_tmsg *reply = auth_request(n, &req, skci_tmsg_pipe(msg));
    if (reply != NULL) {
        skci_tmsg_free(msg);
        answer_now(rctx, reply);
        return;
    }
    switch (req.kind) {
    case SKCI_KIND_PING:
        reply = skci_reply_frame(0, req.id, NULL, 0);
        break;
    case SKCI_KIND_STATS:
        reply = stats_reply(n, &req);
        break;
    case SKCI_KIND_HELLO:
        reply = hello_reply(n, req.id, req.flags, NULL);
        break;
    case SKCI_KIND_QUERY:
        reply = query_reply(n, &req, tname);
        break;
    case SKCI_KIND_CALL:
        if (handle_refused(n, &req)) {
            reply = skci_error_frame(SKC_EAUTH, req.id,
                "node '%s' takes calls by name only, not by handle %s",
                n->name, tname);
        } else if (req.target.type != SKCI_TARGET_NONE) {
            deliver_call(n, rctx, msg, &req, tname, tlen);
            return;
        } else {
            reply = skci_error_frame(SKC_EPROTO, req.id,
                "node '%s': a call needs a target", n->name);
        }
        break;
    default:
        reply = skci_error_frame(SKC_EPROTO, req.id,
            "node '%s': a frame of kind %u cannot be sent as a request",
            n->name, req.kind);
        break;
    }
    skci_tmsg_free(msg);
    answer_now(rctx, reply);
}

/* How often a parked send is offered to its mailbox again. */
#define PARK_RETRY_MS 10

/* Keeps a send its service's mailbox has no room for; the transport stops
 * reading the send port until it is in (the senders' backlogs fill: they
 * get SKC_ELIMIT instead of this node growing or dropping). */
static void
park(skc_node *n, skc_msg *m, const skci_req *req)
{
    char why[SKCI_DETAIL_MAX];
    snprintf(why, sizeof(why), "%s", skc_last_error());
    int64_t now = skci_now_ms();
    pthread_mutex_lock(&n->serve.lock);
    n->serve.parked = m;
    n->serve.parked_t = req->target;
    n->serve.parked_order = skci_wire_req_has_order(req->kind, req->flags);
    n->serve.parked_stream = req->stream;
    n->serve.parked_seq = req->seq;
    n->serve.parked_since = now;
    pthread_mutex_unlock(&n->serve.lock);
    SKCI_COUNT(n, sends_paused, 1);
    SKCI_COUNT(n, mailbox_full, 1);
    skci_node_log(
        n, SKC_LOG_WARN, "stopped reading sends until there is room: %s", why);
    skci_call_lock(n);
    n->pend.unpark_at = now + PARK_RETRY_MS;
    skci_timer_wake(n, n->pend.unpark_at);
    skci_call_unlock(n);
}

int64_t
skci_serve_unpark(skc_node *n)
{
    pthread_mutex_lock(&n->serve.lock);
    skc_msg *m = n->serve.parked;
    skci_target t = n->serve.parked_t;
    int has_order = n->serve.parked_order;
    uint64_t stream = n->serve.parked_stream, seq = n->serve.parked_seq;
    int64_t since = n->serve.parked_since;
    pthread_mutex_unlock(&n->serve.lock);
    if (m == NULL || atomic_load(&n->closing)) {
        return 0;
    }
    /* Only this thread delivers or drops it while it is parked. */
    int rc = skci_registry_deliver(n, &t, m);
    if (rc == SKC_ELIMIT) {
        return skci_now_ms() + PARK_RETRY_MS;
    }
    pthread_mutex_lock(&n->serve.lock);
    n->serve.parked = NULL;
    n->serve.resume = 1;
    pthread_mutex_unlock(&n->serve.lock);
    if (rc != 0) {
        SKCI_COUNT(n, sends_dropped, 1);
        skci_node_log(n, SKC_LOG_WARN,
            "dropped a send: its service is gone (%s)", skc_errname(rc));
        skci_msg_drop(m, rc, "no such service");
    }
    skci_node_log(n, SKC_LOG_INFO, "reading sends again after %lld ms",
        (long long)(skci_now_ms() - since));
    if (has_order) {
        skci_order_sent(n, stream, seq);
    }
    return 0;
}

/* A frame on a send connection that has not proven the cookie: only its
 * auth frame is accepted; anything else closes the connection. */
static void
push_auth(skc_node *n, skci_tmsg *msg, uint32_t pipe)
{
    skci_req req;
    char why[256];
    if (skci_wire_req_decode(&req, skci_tmsg_body(msg), skci_tmsg_len(msg),
            why, sizeof(why)) == 0) {
        if (req.kind != SKCI_KIND_AUTH) {
            snprintf(why, sizeof(why),
                "a frame of kind %u before the auth frame", req.kind);
        } else if (skci_auth_push(&n->auth, pipe, req.payload, req.len, why,
                       sizeof(why)) == 0) {
            auth_pipe_check(n, pipe);
            skci_tmsg_free(msg);
            return;
        }
    }
    skci_tmsg_free(msg);
    auth_refused(n, pipe, "send", why);
    skci_pipe_close(pipe);
}

void
skci_serve_parked_drop(skc_node *n)
{
    skc_msg *m = n->serve.parked;
    n->serve.parked = NULL;
    if (m != NULL) {
        skci_msg_drop(m, SKC_ECLOSED, "the node is shutting down");
    }
}

int
skci_on_push(void *arg, skci_tmsg *msg)
{
    skc_node *n = arg;
    if (n->auth.key != NULL) {
        uint32_t pipe = skci_tmsg_pipe(msg);
        if (!skci_auth_pipe_ok(&n->auth, pipe)) {
            push_auth(n, msg, pipe);
            return 0;
        }
    }
    skci_req req;
    char err[256];
    int bad = skci_wire_req_decode(
        &req, skci_tmsg_body(msg), skci_tmsg_len(msg), err, sizeof(err));
    if (bad == 0 && handle_refused(n, &req)) {
        snprintf(err, sizeof(err),
            "a send to a raw handle (this node takes names only)");
        bad = SKC_EAUTH;
    }
    if (bad == 0 && req.kind != SKCI_KIND_SEND) {
        snprintf(
            err, sizeof(err), "a frame of kind %u is not a send", req.kind);
        bad = SKC_EPROTO;
    }
    if (bad != 0) {
        SKCI_COUNT(n, bad_frames, 1);
        skci_node_log(n, SKC_LOG_WARN, "dropped a bad one-way frame: %s", err);
        skci_tmsg_free(msg);
        return 0;
    }
    SKCI_COUNT(n, sends_in, 1);
    SKCI_COUNT(n, bytes_in, req.len);
    char tname[SKCI_NAME_MAX + 2];
    size_t tlen = skci_target_format(&req.target, tname, sizeof(tname));
    skc_msg *m = calloc(1, sizeof(*m) + tlen + 1);
    if (m == NULL) {
        SKCI_COUNT(n, sends_dropped, 1);
        skci_tmsg_free(msg);
        if (skci_wire_req_has_order(req.kind, req.flags)) {
            skci_order_sent(n, req.stream, req.seq); /* lost: no wait */
        }
        return 0;
    }
    m->node = n;
    m->kind = SKC_MSG_SEND;
    m->frame = msg;
    m->payload = req.payload;
    m->len = req.len;
    memcpy(m->target, tname, tlen + 1);
    int rc = skci_registry_deliver(n, &req.target, m);
    if (rc == SKC_ELIMIT) {
        park(n, m, &req);
        return 1;
    }
    if (rc != 0) {
        SKCI_COUNT(n, sends_dropped, 1);
        skci_node_log(n, SKC_LOG_WARN,
            "dropped a send to %s: no such service on node '%s'", tname,
            n->name);
        skci_msg_drop(m, SKC_ENOSERVICE, "no such service");
    }
    /* In its mailbox (or dropped): calls that follow it may go on. */
    if (skci_wire_req_has_order(req.kind, req.flags)) {
        skci_order_sent(n, req.stream, req.seq);
    }
    return 0;
}
