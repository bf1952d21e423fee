/* peer.c -- the nodes this node talks to: each peer's map state and its
 * link (dial, HELLO, push address, reconnects), and the calls queued for
 * it or sent on it.  With a cluster cookie the HELLO is preceded by a
 * challenge and carries a proof (PROTOCOL.md, "Cluster cookie"); with a
 * cookie or TLS the peer must be the node its map name says.
 *
 * A peer's queue only holds calls while its link is not UP; going UP
 * flushes the queue in order.  The transport dials and closes links on
 * its own threads; the link's callbacks find their peer through an
 * skci_linkref, which the transport hands back (on_released) when the
 * link is gone.
 */
#include "core.h"
#include "error.h"
#include "url.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define HELLO_TIMEOUT_MS SKCI_HELLO_TIMEOUT_MS

const char *
skci_peer_addr(const skci_peer *p)
{
    return p->url != NULL ? p->url : "no address";
}

skci_peer *
skci_peer_get(skc_node *n, const char *name, int create)
{
    skci_peer *p = skci_strmap_get(&n->peers.byname, name);
    if (p != NULL || !create) {
        return p;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL || (p->name = skci_strdup(name)) == NULL ||
        skci_strmap_set(&n->peers.byname, name, p) != 0) {
        if (p != NULL) {
            free(p->name);
        }
        free(p);
        return NULL;
    }
    return p;
}

void
skci_peer_queue(skci_peer *p, skci_call *c)
{
    c->state = SKCI_CALL_QUEUED;
    skci_list_append(&p->queued, &c->link);
}

static void
sent_add(skci_peer *p, skci_call *c)
{
    c->state = SKCI_CALL_SENT;
    skci_list_prepend(&p->sent, &c->link);
}

static void
link_state_set(skci_peer *p, int st)
{
    p->link_state = st;
}

static void hello_done(skc_node *n, skci_call *c);

/* A new stream id for a link's sends: random, never 0 (PROTOCOL.md,
 * "Order of sends and calls"). */
static uint64_t
order_stream_id(const skci_peer *p)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
        /* splitmix64 over the clock, the process and the peer */
        v = (uint64_t)skci_now_ns() ^ ((uint64_t)getpid() << 32) ^
            (uint64_t)(uintptr_t)p;
        v += 0x9e3779b97f4a7c15ULL;
        v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ULL;
        v = (v ^ (v >> 27)) * 0x94d049bb133111ebULL;
        v ^= v >> 31;
    }
    return v != 0 ? v : 1;
}

/* Makes frame *m what peer p reads (call_lock held): its order block
 * stamped with p's stream and seq, or, for a peer that did not announce
 * ordering, the frame copied without the block.  0, or SKC_ENOMEM (*m
 * freed). */
static int
order_fit(skci_peer *p, skci_tmsg **m, uint64_t seq)
{
    uint8_t *b = skci_tmsg_body(*m);
    if (!skci_wire_req_has_order(b[3], skci_get_u32(b + 4))) {
        return 0;
    }
    if (p->ostream != 0) {
        skci_wire_req_set_order(b, p->ostream, seq);
        return 0;
    }
    size_t len = skci_tmsg_len(*m);
    skci_tmsg *plain;
    int rc = skci_tmsg_alloc(&plain, len - SKCI_ORDER_BLOCK);
    if (rc == 0) {
        skci_wire_req_strip_order(skci_tmsg_body(plain), b, len);
    }
    skci_tmsg_free(*m);
    *m = rc == 0 ? plain : NULL;
    return rc;
}

/* Pushes a send frame (consumed) on p's link, numbered on p's stream
 * (call_lock held, link UP): the number is used only when the push is
 * accepted, so the sends a call counts are the ones that left. */
static int
order_push(skci_peer *p, skci_tmsg *m)
{
    int rc = order_fit(p, &m, p->osent + 1);
    if (rc != 0) {
        return skci_error(rc, "out of memory for a send");
    }
    rc = skci_link_push(p->lr->link, m);
    if (rc == 0 && p->ostream != 0) {
        p->osent++;
        p->olast_send = skci_now_ms();
    }
    return rc;
}

/* Hands a call to its peer's link (link UP, call_lock held). */
void
skci_peer_transmit(skc_node *n, skci_peer *p, skci_call *c)
{
    if (c->payload_len > p->max_msg) {
        skci_call_fail(n, c, SKC_ETOOBIG,
            "node '%s' accepts messages of at most %u bytes; this one has %zu",
            p->name, p->max_msg, c->payload_len);
        return;
    }
    /* A call may go on one of the peer's lanes (lane.c), or wait for
     * its handshake. */
    skci_link *via = p->lr->link;
    if (c->kind == SKCI_KIND_CALL && (via = skci_lane_link(n, p, c)) == NULL) {
        return;
    }
    skci_tmsg *m = c->req;
    c->req = NULL;
    n->stats.bytes_out_lk += c->payload_len;
    /* The remaining deadline travels with the request, measured now. */
    int64_t now = skci_now_ms();
    int64_t left = c->hn.when - now;
    skci_wire_req_set_timeout(
        skci_tmsg_body(m), (uint32_t)(left > 0 ? left : 1));
    int rc;
    if (c->mode == SKCI_MODE_SEND) {
        rc = order_push(p, m);
        if (rc == 0) {
            skci_call_finish(n, c, 0, NULL, NULL, 0, NULL);
        } else {
            skci_call_fail(n, c, rc, "%s", skc_last_error());
        }
        return;
    }
    /* A call follows the sends pushed on the stream before it; none when
     * the last is old enough that the peer may have forgotten the stream
     * (order.c), since those sends have long arrived or are lost. */
    uint64_t before =
        p->osent > 0 && now - p->olast_send <= SKCI_ORDER_SENDER_IDLE_MS
        ? p->osent
        : 0;
    if ((rc = order_fit(p, &m, before)) != 0) {
        skci_call_fail(
            n, c, rc, "out of memory for a call to node '%s'", p->name);
        return;
    }
    rc = skci_link_send(via, m, (int32_t)(left > 0 ? left : 1));
    if (rc != 0) {
        skci_call_fail(n, c, SKC_ECONNLOST, "node '%s' (%s): %s", p->name,
            skci_peer_addr(p), skc_last_error());
        return;
    }
    sent_add(p, c);
}

static void
peer_flush(skc_node *n, skci_peer *p)
{
    while (!skci_list_empty(&p->queued) && p->link_state == SKCI_LINK_UP) {
        skci_call *c = SKCI_CALL_OF(skci_list_pop(&p->queued));
        c->state = 0;
        skci_peer_transmit(n, p, c);
    }
}

/* Gives the peer's link up (it closes on a transport thread, and its
 * skci_linkref is freed in on_released). */
void
skci_peer_detach(skc_node *n, skci_peer *p)
{
    skci_linkref *lr = p->lr;
    if (lr == NULL) {
        return;
    }
    p->lr = NULL;
    link_state_set(p, SKCI_LINK_NONE);
    p->hello = NULL;
    p->hb = NULL;
    p->ticket = NULL;
    skci_lanes_detach(n, p);
    if (skci_link_release(lr->link) != 0) {
        skci_node_log(n, SKC_LOG_ERROR,
            "cannot close the link to node '%s' (%s); it is left open",
            p->name, skc_last_error());
    }
}

static void start_hello(skc_node *n, skci_peer *p);

/* A dial failed (call_lock held): the peer's queued calls fail now, as
 * skynet's sender fails them when its connect fails. */
static void
dial_failed(skc_node *n, skci_peer *p, int rc, const char *detail)
{
    link_state_set(p, SKCI_LINK_NONE);
    free(p->last_error);
    p->last_error = skci_strdup(detail);
    char why[SKCI_DETAIL_MAX + 64];
    snprintf(why, sizeof(why), "node '%s' %s: %s", p->name,
        rc == SKC_EAUTH ? "refused the connection" : "unreachable", detail);
    /* WARN when calls wait for it; a watched member that is not up yet
     * (members start in any order) is INFO, and a redial that fails
     * again is no news. */
    skci_node_log(n,
        p->health == SKC_PEER_DOWN         ? SKC_LOG_DEBUG
            : !skci_list_empty(&p->queued) ? SKC_LOG_WARN
                                           : SKC_LOG_INFO,
        "%s", why);
    /* Calls sent through a group move to another member first. */
    skci_health_set(n, p, SKC_PEER_DOWN,
        rc == SKC_EAUTH                         ? "not authenticated"
            : strstr(detail, "refused") != NULL ? "refused"
                                                : "unreachable");
    /* A TLS refusal (transport.c says SKC_EAUTH) is not a network
     * problem: the caller is told so. */
    skci_call_fail_list(
        n, &p->queued, rc == SKC_EAUTH ? SKC_EAUTH : SKC_EUNREACHABLE, why);
}

/* The link's first connect ended (transport thread, no lock held). */
static void
on_dialed(void *arg, int rc, const char *detail)
{
    skci_linkref *lr = arg;
    skc_node *n = lr->node;
    skci_call_lock(n);
    skci_peer *p = lr->peer;
    if (p->lr == lr && p->link_state == SKCI_LINK_DIALING) {
        if (rc == 0) {
            start_hello(n, p);
        } else {
            dial_failed(n, p, rc, detail);
        }
    }
    skci_call_unlock(n);
}

void
skci_peer_on_link_log(void *arg, int level, const char *text)
{
    skci_linkref *lr = arg;
    skci_node_log(lr->node, level, "%s", text);
}

void
skci_peer_on_released(void *arg)
{
    free(arg);
}

static void on_conn(void *arg, int up);
static void on_push_lost(void *arg);

/* Sends this node told OK for that will not arrive, or may not (transport
 * thread, no lock held; lr->peer may be gone, lr->node is not). */
static void
on_sends_lost(void *arg, size_t count, const char *text)
{
    skci_linkref *lr = arg;
    SKCI_COUNT(lr->node, sends_lost, count);
    skci_node_log(lr->node, SKC_LOG_WARN, "sends lost: %s", text);
}

/* Starts connecting peer p (call_lock held, map has an address). */
void
skci_peer_dial(skc_node *n, skci_peer *p)
{
    if (p->lr == NULL) {
        skci_linkref *lr = calloc(1, sizeof(*lr));
        if (lr == NULL) {
            return;
        }
        skci_link_cfg cfg = {
            .max_recv = n->max_msg + SKCI_REP_FIXED,
            .push_backlog = 65536,
            .bg = &n->bg,
            .on_reply = skci_peer_on_reply,
            .on_conn = on_conn,
            .on_dialed = on_dialed,
            .on_log = skci_peer_on_link_log,
            .on_released = skci_peer_on_released,
            .on_push_lost = n->auth.key != NULL ? on_push_lost : NULL,
            .on_sends_lost = on_sends_lost,
            .tls = &n->tls,
            .arg = lr,
        };
        lr->peer = p;
        lr->node = n;
        if (skci_link_create(&lr->link, &cfg) != 0) {
            free(lr);
            goto fail;
        }
        p->lr = lr;
    }
    link_state_set(p, SKCI_LINK_DIALING);
    p->dial_start = skci_now_ms();
    if (p->health == SKC_PEER_UNKNOWN) {
        p->health = SKC_PEER_CONNECTING;
    }
    if (skci_link_dial(p->lr->link, p->url) != 0) {
        link_state_set(p, SKCI_LINK_NONE);
        goto fail;
    }
    return;
fail:
    skci_call_fail_list(
        n, &p->queued, SKC_ENOMEM, "cannot start a connection");
}

skci_call *
skci_peer_request(skc_node *n, skci_peer *p, int lane, int kind,
    const char *target, const void *data, size_t len, int32_t timeout_ms,
    void (*done)(skc_node *n, skci_call *c))
{
    size_t tl = strlen(target) + 1;
    skci_call *c = calloc(1, sizeof(*c) + tl);
    if (c == NULL) {
        return NULL;
    }
    memcpy(c->target, target, tl);
    skci_req r = {
        .kind = (uint8_t)kind,
        .max_reply = 65536,
        /* a HELLO asks for the features word in the reply (order), and
         * carries a proof when the node has a cookie */
        .flags = kind != SKCI_KIND_HELLO ? 0
            : n->auth.key != NULL
            ? SKCI_FLAG_HELLO_FEATURES | SKCI_FLAG_HELLO_AUTH
            : SKCI_FLAG_HELLO_FEATURES,
    };
    size_t hdr = skci_wire_req_hdr_size(&r);
    r.len = (uint32_t)len;
    if (skci_tmsg_alloc(&c->req, hdr + len) != 0) {
        free(c);
        return NULL;
    }
    c->mode = SKCI_MODE_INTERNAL;
    c->internal_done = done;
    c->kind = kind;
    c->peer = p;
    c->hn.idx = SKCI_HEAP_NONE;
    c->start = skci_now_ms();
    c->start_us = skci_now_us();
    c->timeout_ms = timeout_ms;
    c->hn.when = c->start + timeout_ms;
    uint8_t *b = skci_tmsg_body(c->req);
    skci_wire_req_put_hdr(b, &r);
    if (len > 0) {
        memcpy(b + hdr, data, len);
    }
    if (skci_call_register(n, c) != 0) {
        skci_call_free(c);
        return NULL;
    }
    skci_wire_req_set_id(b, c->id);
    skci_tmsg *m = c->req;
    c->req = NULL;
    c->lane = lane;
    sent_add(p, c);
    skci_link_send(
        lane == 0 ? p->lr->link : p->lanes[lane - 1].lr->link, m, timeout_ms);
    return c;
}

static void challenge_done(skc_node *n, skci_call *c);

/* Sends a hello on the peer's link (call_lock held); with a cookie, the
 * challenge that comes first. */
static void
start_hello(skc_node *n, skci_peer *p)
{
    link_state_set(p, SKCI_LINK_HELLO);
    if (n->auth.key == NULL) {
        p->hello = skci_peer_request(n, p, 0, SKCI_KIND_HELLO, "(hello)",
            n->name, strlen(n->name), HELLO_TIMEOUT_MS, hello_done);
    } else if (skci_auth_random(p->auth_nc, SKCI_AUTH_NONCE) == 0) {
        p->hello =
            skci_peer_request(n, p, 0, SKCI_KIND_AUTH, "(cookie challenge)",
                p->auth_nc, SKCI_AUTH_NONCE, HELLO_TIMEOUT_MS, challenge_done);
    } else {
        /* No random bytes (getrandom failed): no challenge can be made,
         * and a call must not wait for one. */
        skci_node_log(n, SKC_LOG_ERROR,
            "no random bytes for the cookie challenge to node '%s'", p->name);
        skci_peer_detach(n, p);
        skci_call_fail_list(n, &p->queued, SKC_EAUTH,
            "no random bytes for the cluster cookie challenge");
    }
}

skci_call *
skci_peer_auth_hello(skc_node *n, skci_peer *p, int lane, const uint8_t *nc,
    const uint8_t *ns, void (*done)(skc_node *n, skci_call *c))
{
    uint8_t buf[SKCI_NAME_MAX + SKCI_AUTH_MAC];
    size_t nl = strlen(n->name);
    memcpy(buf, n->name, nl);
    if (skci_auth_proof(buf + nl, n->auth.key, n->auth.keylen,
            SKCI_PROOF_CLIENT, nc, SKCI_AUTH_NONCE, ns, SKCI_AUTH_NONCE,
            n->name, nl) != 0) {
        return NULL;
    }
    return skci_peer_request(n, p, lane, SKCI_KIND_HELLO, "(hello)", buf,
        nl + SKCI_AUTH_MAC, HELLO_TIMEOUT_MS, done);
}

/* A send connection's first frame: the ticket and our proof over it. */
static skci_tmsg *
push_auth_frame(skc_node *n, const uint8_t ticket[SKCI_AUTH_TICKET])
{
    skci_req r = { .kind = SKCI_KIND_AUTH, .len = SKCI_AUTH_PUSH_LEN };
    size_t hdr = skci_wire_req_hdr_size(&r);
    skci_tmsg *m;
    if (skci_tmsg_alloc(&m, hdr + SKCI_AUTH_PUSH_LEN) != 0) {
        return NULL;
    }
    uint8_t *b = skci_tmsg_body(m);
    skci_wire_req_put_hdr(b, &r);
    memcpy(b + hdr, ticket, SKCI_AUTH_TICKET);
    if (skci_auth_proof(b + hdr + SKCI_AUTH_TICKET, n->auth.key,
            n->auth.keylen, SKCI_PROOF_PUSH, ticket, SKCI_AUTH_TICKET, NULL, 0,
            n->name, strlen(n->name)) != 0) {
        skci_tmsg_free(m);
        return NULL;
    }
    return m;
}

/* (Re)connects p's send connection (call_lock held); with a cookie its
 * first frame proves it with ticket. */
static void
push_dial(skc_node *n, skci_peer *p, const uint8_t *ticket)
{
    skci_tmsg *auth = NULL;
    if (ticket != NULL && (auth = push_auth_frame(n, ticket)) == NULL) {
        skci_node_log(n, SKC_LOG_WARN,
            "no auth frame for the send connection to node '%s'", p->name);
        return;
    }
    if (skci_link_push_dial(p->lr->link, p->push_url, auth) != 0) {
        skci_node_log(n, SKC_LOG_WARN, "%s", skc_last_error());
    }
}

static void
ticket_done(skc_node *n, skci_call *c)
{
    skci_peer *p = c->peer;
    if (p->ticket != c) {
        return;
    }
    p->ticket = NULL;
    if (p->lr == NULL || p->link_state != SKCI_LINK_UP ||
        p->push_url == NULL) {
        return; /* the next HELLO brings a ticket */
    }
    if (c->status == 0 && c->len == SKCI_AUTH_TICKET) {
        push_dial(n, p, c->data);
    } else {
        skci_node_log(n, SKC_LOG_WARN,
            "node '%s' (%s) gave no ticket for a new send connection: %s",
            p->name, skci_peer_addr(p), c->detail ? c->detail : "bad reply");
    }
}

/* An authenticated send connection was lost (NNG thread): a new one needs
 * a fresh ticket, asked for over the call connection. */
static void
on_push_lost(void *arg)
{
    skci_linkref *lr = arg;
    skc_node *n = lr->node;
    skci_call_lock(n);
    skci_peer *p = lr->peer;
    if (p->lr == lr && p->link_state == SKCI_LINK_UP && p->ticket == NULL &&
        !atomic_load(&n->closing)) {
        p->ticket = skci_peer_request(n, p, 0, SKCI_KIND_AUTH, "(send ticket)",
            NULL, 0, HELLO_TIMEOUT_MS, ticket_done);
    }
    skci_call_unlock(n);
}

static void
heartbeat_done(skc_node *n, skci_call *c)
{
    skci_peer *p = c->peer;
    if (p->hb != c) {
        return; /* its link was replaced */
    }
    p->hb = NULL;
    if (c->status == 0) {
        p->rtt_us = skci_now_us() - c->start_us;
        /* The housekeeper sleeps until the heartbeat's deadline while it
         * is out; the next one is due heartbeat_ms from now (without
         * this, a link was pinged again only after heartbeat_ms *
         * heartbeat_misses or at the next sweep, up to a second, whatever
         * heartbeat_ms said). */
        skci_timer_wake(n, skci_now_ms() + n->health.hb_ms);
    }
    /* A heartbeat that timed out: the tick declares the peer down. */
}

void
skci_peer_heartbeat(skc_node *n, skci_peer *p)
{
    int32_t t = n->health.hb_ms * n->health.hb_misses;
    p->hb = skci_peer_request(n, p, 0, SKCI_KIND_PING, "(heartbeat)", NULL, 0,
        t > 0 ? t : 1, heartbeat_done);
}

static void hello_failed(skc_node *n, skci_peer *p, skci_call *c);

/* Sets c's outcome to an error (it becomes why the hello failed). */
static void hello_error(skci_call *c, int status, const char *fmt, ...)
    SKCI_PRINTF(3, 4);

static void
hello_error(skci_call *c, int status, const char *fmt, ...)
{
    char buf[SKCI_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    c->status = status;
    free(c->detail);
    c->detail = skci_strdup(buf);
}

/* 1 when c is the hello step in progress on p's current link (it is
 * then no longer in progress), 0 when its link was replaced. */
static int
hello_step_current(skci_peer *p, skci_call *c)
{
    if (p->hello != c) {
        return 0;
    }
    p->hello = NULL;
    return p->lr != NULL && p->link_state == SKCI_LINK_HELLO;
}

static void
challenge_done(skc_node *n, skci_call *c)
{
    skci_peer *p = c->peer;
    if (!hello_step_current(p, c)) {
        return;
    }
    if (c->status == 0 && c->len == SKCI_AUTH_NONCE) {
        memcpy(p->auth_ns, c->data, SKCI_AUTH_NONCE);
        p->hello =
            skci_peer_auth_hello(n, p, 0, p->auth_nc, p->auth_ns, hello_done);
        if (p->hello != NULL) {
            return;
        }
        hello_error(c, SKC_EAUTH, "cannot compute the cookie proof");
    } else if (c->status == 0) {
        hello_error(c, SKC_EPROTO, "a challenge reply of %zu bytes", c->len);
    } else if (c->status == SKC_EPROTO) {
        hello_error(c, SKC_EAUTH,
            "it does not know the cluster cookie handshake (%s)",
            c->detail ? c->detail : "");
    }
    hello_failed(n, p, c);
}

/* With a cookie, the reply starts with the server's proof and a ticket:
 * checks the proof (the server knows the cookie too) and moves data past
 * them.  0, or -1 with c's error set. */
static int
hello_auth_check(skc_node *n, skci_call *c, const uint8_t *nc,
    const uint8_t *ns, const uint8_t **ticket, const uint8_t **data,
    size_t *len)
{
    *data = c->data;
    *len = c->len;
    *ticket = NULL;
    if (n->auth.key == NULL) {
        return 0;
    }
    if (c->len < SKCI_AUTH_HELLO_BLOCK) {
        hello_error(c, SKC_EAUTH, "its HELLO reply carries no cookie proof");
        return -1;
    }
    *ticket = c->data + SKCI_AUTH_MAC;
    *data = c->data + SKCI_AUTH_HELLO_BLOCK;
    *len = c->len - SKCI_AUTH_HELLO_BLOCK;
    skci_hello h;
    char err[256];
    uint8_t want[SKCI_AUTH_MAC];
    if (skci_wire_hello_decode(&h, *data, *len, err, sizeof(err)) != 0) {
        return 0; /* reported by the caller */
    }
    if (skci_auth_proof(want, n->auth.key, n->auth.keylen, SKCI_PROOF_SERVER,
            nc, SKCI_AUTH_NONCE, ns, SKCI_AUTH_NONCE, h.name,
            h.name_len) != 0 ||
        !skci_auth_mac_equal(want, c->data)) {
        hello_error(c, SKC_EAUTH,
            "its answer does not prove the cluster cookie (wrong cookie)");
        return -1;
    }
    return 0;
}

int
skci_peer_hello_verify(skc_node *n, skci_peer *p, skci_call *c,
    const uint8_t *nc, const uint8_t *ns, skci_hello *h,
    const uint8_t **ticket)
{
    const uint8_t *data = NULL;
    size_t len = 0;
    if (hello_auth_check(n, c, nc, ns, ticket, &data, &len) != 0) {
        return -1;
    }
    char err[256];
    int rc = skci_wire_hello_decode(h, data, len, err, sizeof(err));
    if (rc == 0 && n->secure && strstr(p->name, "://") == NULL &&
        (h->name_len != strlen(p->name) ||
            memcmp(h->name, p->name, h->name_len) != 0)) {
        /* Identity: the node answering must be the one the map names
         * (its name is covered by the cookie proof or the TLS channel).
         * A peer known only by its address (an entry whose name is a URL,
         * as `skc ping tcp://...` makes) claims no name: the cookie or
         * certificate is its only check. */
        snprintf(err, sizeof(err),
            "the node answering is named '%.*s', not '%s' (identity check)",
            (int)h->name_len, h->name, p->name);
        rc = SKC_EAUTH;
    }
    if (rc != 0) {
        hello_error(c, rc, "%s", err);
        return -1;
    }
    return 0;
}

static void
hello_done(skc_node *n, skci_call *c)
{
    skci_peer *p = c->peer;
    if (!hello_step_current(p, c)) {
        return; /* the link it belonged to was replaced */
    }
    const uint8_t *ticket = NULL;
    skci_hello h;
    if (c->status == 0 &&
        skci_peer_hello_verify(n, p, c, p->auth_nc, p->auth_ns, &h, &ticket) ==
            0) {
        p->max_msg = h.max_msg < n->max_msg ? h.max_msg : n->max_msg;
        /* A new connection: its sends are numbered on a new stream. */
        p->ostream =
            (h.features & SKCI_FEAT_ORDER) != 0 ? order_stream_id(p) : 0;
        p->osent = 0;
        free(p->push_url);
        p->push_url = skci_url_send_address(p->url, h.url, h.url_len);
        if (p->push_url != NULL) {
            push_dial(n, p, ticket);
        }
        link_state_set(p, SKCI_LINK_UP);
        free(p->last_error);
        p->last_error = NULL;
        p->last_rx = skci_now_ms();
        p->rtt_us = skci_now_us() - c->start_us;
        skci_health_set(n, p, SKC_PEER_UP, "connected");
        peer_flush(n, p);
        return;
    }
    hello_failed(n, p, c);
}

/* The hello (or its challenge) c failed: asked again when the link is
 * merely slow, else the peer is refused and its queued calls fail with
 * c's status and detail. */
static void
hello_failed(skc_node *n, skci_peer *p, skci_call *c)
{
    if (c->status == SKC_ECONNLOST || c->status == SKC_ETIMEDOUT) {
        if (skci_link_connected(p->lr->link)) {
            start_hello(n, p); /* connected but slow: ask again */
        } else {
            link_state_set(p, SKCI_LINK_RETRY);
        }
        return;
    }
    /* The peer answered but not as an skc node of our version, or the
     * cookie or the identity check failed (SKC_EAUTH). */
    int status = c->status == SKC_EAUTH ? SKC_EAUTH : SKC_EPROTO;
    const char *d = c->detail ? c->detail : "";
    char why[SKCI_DETAIL_MAX + 64];
    if (status == SKC_EAUTH && strncmp(d, "node '", 6) == 0) {
        /* the peer's refusal, already naming it (on_reply) */
        snprintf(why, sizeof(why), "not authenticated: %s", d);
    } else {
        snprintf(why, sizeof(why), "node '%s' (%s) %s: %s", p->name,
            skci_peer_addr(p),
            status == SKC_EAUTH ? "not authenticated"
                                : "refused the skc hello",
            d);
    }
    skci_node_log(n, SKC_LOG_ERROR, "%s", why);
    free(p->last_error);
    p->last_error = skci_strdup(why);
    skci_peer_detach(n, p);
    skci_health_set(n, p, SKC_PEER_DOWN,
        status == SKC_EAUTH ? "not authenticated" : "hello refused");
    skci_call_fail_list(n, &p->queued, status, why);
}

void
skci_peer_on_reply(void *arg, skci_tmsg *msg)
{
    skci_linkref *lr = arg;
    skc_node *n = lr->node;
    skci_rep rep;
    char err[256];
    if (skci_wire_rep_decode(&rep, skci_tmsg_body(msg), skci_tmsg_len(msg),
            err, sizeof(err)) != 0) {
        skci_node_log(n, SKC_LOG_WARN, "bad reply from node '%s': %s",
            lr->peer->name, err);
        skci_tmsg_free(msg);
        return;
    }
    skci_call_lock(n);
    skci_call *c = rep.id <= 0x7fffffffu
        ? skci_idmap_get(&n->pend.calls, (uint32_t)rep.id)
        : NULL;
    if (c == NULL || c->peer != lr->peer || c->state != SKCI_CALL_SENT) {
        skci_call_unlock(n);
        skci_node_log(n, SKC_LOG_DEBUG,
            "reply from node '%s' for no pending call (id %llu): dropped",
            lr->peer->name, (unsigned long long)rep.id);
        skci_tmsg_free(msg);
        return;
    }
    skci_peer *p = c->peer;
    p->last_rx = skci_now_ms();
    /* SKC_CALL_INLINE: call_finish leaves the completion to this thread
     * (no thread-local state: NNG's threads never exit, and a dlopen'ed
     * libskc would allocate TLS on each of them). */
    skci_call *inl =
        c->mode == SKCI_MODE_ASYNC && c->inline_cb && n->workers > 0 ? c
                                                                     : NULL;
    c->inline_take = inl != NULL;
    if (rep.status == 0) {
        skci_call_finish(n, c, 0, msg, rep.payload, rep.len, NULL);
    } else {
        int code = -(int)rep.status;
        if (rep.status > 0x7fff ||
            strcmp(skc_errname(code), "EUNKNOWN") == 0) {
            code = SKC_EPROTO;
        }
        char detail[SKCI_DETAIL_MAX];
        int tl = rep.len > 900 ? 900 : (int)rep.len;
        if (code == SKC_EHANDLER) {
            snprintf(detail, sizeof(detail), "node '%s' %s: %.*s", p->name,
                c->target, tl, (const char *)rep.payload);
        } else {
            snprintf(detail, sizeof(detail), "node '%s' (%s) %s: %.*s",
                p->name, skci_peer_addr(p), c->target, tl,
                (const char *)rep.payload);
        }
        skci_call_finish(n, c, code, NULL, NULL, 0, detail);
        skci_tmsg_free(msg);
    }
    skci_call_unlock(n);
    if (inl != NULL) {
        if (skci_dispatch_inline_begin(n)) {
            skci_inline_depth++;
            inl->task.run(n, &inl->task);
            skci_inline_depth--;
            skci_dispatch_inline_end(n);
        } else {
            skci_dispatch_push(n, &inl->task);
        }
    }
}

/* The link's connection came up or went down (NNG thread). */
static void
on_conn(void *arg, int up)
{
    skci_linkref *lr = arg;
    skc_node *n = lr->node;
    skci_call_lock(n);
    skci_peer *p = lr->peer;
    if (p->lr != lr) {
        skci_call_unlock(n);
        return;
    }
    if (up) {
        if (p->link_state == SKCI_LINK_RETRY) {
            start_hello(n, p);
        }
    } else if (p->link_state == SKCI_LINK_UP ||
        p->link_state == SKCI_LINK_HELLO) {
        link_state_set(p, SKCI_LINK_RETRY);
        char why[SKCI_DETAIL_MAX];
        snprintf(why, sizeof(why),
            "connection to node '%s' (%s) lost after the request was sent; the outcome is unknown",
            p->name, skci_peer_addr(p));
        if (p->health == SKC_PEER_UP && !atomic_load(&n->closing)) {
            skci_node_log(n, SKC_LOG_WARN,
                "connection to node '%s' (%s) lost; reconnecting", p->name,
                skci_peer_addr(p));
        }
        /* Calls on the peer's lanes go on: their connections are their
         * own (lane.c); those waiting for a lane wait for the link. */
        skci_lane_fail_sent(n, p, 0, SKC_ECONNLOST, why);
        skci_lanes_requeue(p);
        skci_health_set(n, p, SKC_PEER_DOWN, "reset");
    }
    skci_call_unlock(n);
}

void
skci_peer_map_changed(skc_node *n, skci_peer *p)
{
    char why[SKCI_DETAIL_MAX];
    if (p->map == SKCI_PEER_MARKED_DOWN) {
        snprintf(why, sizeof(why),
            "node '%s' was marked down (false) in the cluster map", p->name);
        skci_peer_detach(n, p);
        skci_call_fail_list(n, &p->sent, SKC_ENODEDOWN, why);
        skci_health_set(n, p, SKC_PEER_DOWN, "marked down");
        skci_call_fail_list(n, &p->queued, SKC_ENODEDOWN, why);
        return;
    }
    if (p->map != SKCI_PEER_HAS_ADDR) {
        return;
    }
    if (p->lr != NULL) {
        snprintf(why, sizeof(why),
            "the address of node '%s' changed to %s while the request was in flight; the outcome is unknown",
            p->name, p->url);
        skci_peer_detach(n, p);
        skci_call_fail_list(n, &p->sent, SKC_ECONNLOST, why);
        if (p->health == SKC_PEER_UP) {
            skci_health_set(n, p, SKC_PEER_DOWN, "address changed");
        }
        /* Calls that were not sent yet go to the new address. */
    }
    p->redial_at = 0;
    p->backoff_ms = 0;
    if (!skci_list_empty(&p->queued) || p->watched) {
        skci_peer_dial(n, p);
    }
}

void
skci_nowaiting_changed(skc_node *n)
{
    if (!n->peers.nowaiting) {
        return;
    }
    for (size_t i = 0; i < n->peers.byname.nb; i++) {
        for (skci_strmap_ent *e = n->peers.byname.b[i]; e; e = e->next) {
            skci_peer *p = e->val;
            if (p->map == SKCI_PEER_NOT_IN_MAP &&
                !skci_list_empty(&p->queued)) {
                char why[SKCI_DETAIL_MAX];
                snprintf(why, sizeof(why),
                    "node '%s' is not in the cluster map (__nowaiting was turned on)",
                    p->name);
                skci_call_fail_list(n, &p->queued, SKC_ENONODE, why);
            }
        }
    }
}

static void
free_peer(const char *key, void *val, void *arg)
{
    (void)key;
    (void)arg;
    skci_peer *p = val;
    free(p->name);
    free(p->url);
    free(p->last_error);
    free(p->push_url);
    skci_lanes_free(p);
    skci_group_free(p->group);
    free(p);
}

/* Refuses a call that peer p cannot take (call_lock held): 0, or the
 * error with its detail set. */
int
skci_peer_admit(const skc_node *n, const skci_peer *p, const skci_call *c)
{
    if (p->map == SKCI_PEER_MARKED_DOWN) {
        return skci_error(SKC_ENODEDOWN,
            "node '%s' is down (false in the cluster map)", p->name);
    }
    if (p->map == SKCI_PEER_NOT_IN_MAP && n->peers.nowaiting) {
        return skci_error(SKC_ENONODE,
            "node '%s' is not in the cluster map (__nowaiting is set)",
            p->name);
    }
    if (p->link_state == SKCI_LINK_UP && c->payload_len > p->max_msg) {
        return skci_error(SKC_ETOOBIG,
            "node '%s' accepts messages of at most %u bytes; this one has %zu",
            p->name, p->max_msg, c->payload_len);
    }
    return 0;
}

/* Sends a registered call now, or queues it until the link is up, dialing
 * if nobody is (call_lock held). */
void
skci_peer_route(skc_node *n, skci_peer *p, skci_call *c)
{
    c->peer = p;
    if (p->map == SKCI_PEER_NOT_IN_MAP) {
        if (!p->warned_waiting) {
            p->warned_waiting = 1;
            skci_node_log(n, SKC_LOG_INFO,
                "waiting for cluster node '%s' (not in the cluster map yet)",
                p->name);
        }
        skci_peer_queue(p, c);
    } else if (p->link_state == SKCI_LINK_UP) {
        skci_peer_transmit(n, p, c);
    } else {
        skci_peer_queue(p, c);
        if (p->link_state == SKCI_LINK_NONE) {
            skci_peer_dial(n, p);
        }
    }
}

int
skci_peer_push_now(
    skc_node *n, const char *name, skci_tmsg *m, size_t len, int *rc)
{
    skci_call_lock(n);
    skci_peer *p = skci_peer_get(n, name, 0);
    if (p != NULL && p->map == SKCI_PEER_GROUP) {
        char why[8];
        p = skci_group_pick(n, p, NULL, why, sizeof(why));
    }
    if (p != NULL && p->link_state == SKCI_LINK_UP && p->lr != NULL &&
        skci_list_empty(&p->queued) && len <= p->max_msg &&
        !atomic_load(&n->closing)) {
        *rc = order_push(p, m);
        if (*rc == 0) {
            n->stats.sends_ok++;
            n->stats.bytes_out_lk += len;
        } else {
            n->stats.sends_failed[SKCI_STAT_CODE(*rc)]++;
        }
        skci_call_unlock(n);
        return 1;
    }
    skci_call_unlock(n);
    return 0;
}

/* Closes every peer's link (destroy; call_lock held). */
void
skci_peers_close_links(skc_node *n)
{
    for (size_t i = 0; i < n->peers.byname.nb; i++) {
        for (skci_strmap_ent *e = n->peers.byname.b[i]; e; e = e->next) {
            skci_peer_detach(n, e->val);
        }
    }
}

void
skci_peers_init(skc_node *n)
{
    skci_strmap_init(&n->peers.byname);
}

void
skci_peers_fini(skc_node *n)
{
    skci_strmap_each(&n->peers.byname, free_peer, NULL);
    skci_strmap_fini(&n->peers.byname);
}

void
skci_peer_self_named(skc_node *n)
{
    skci_peer *p = skci_peer_get(n, n->name, 0);
    if (p == NULL || p->map != SKCI_PEER_HAS_ADDR) {
        return;
    }
    /* This node is a member of a group in its own map: it does not watch
     * itself (calls to the group may still pick it, through a link). */
    p->watched = 0;
    p->redial_at = 0;
    if (p->lr != NULL && skci_list_empty(&p->queued) &&
        skci_list_empty(&p->sent)) {
        skci_peer_detach(n, p);
        p->health = SKC_PEER_UNKNOWN;
    }
}
