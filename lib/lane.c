/* lane.c -- a peer's lanes: more connections to it, so that a large call
 * does not hold up the small calls behind it (docs/PERFORMANCE.md,
 * "Lanes").  Lane 0 is the peer's link (peer.c: REQ + PUSH, HELLO, send
 * ticket, heartbeats, the peer's health); lane 1 carries the calls whose
 * payload has at least large_msg bytes; lanes 2.. carry the calls that
 * chose a channel (SKC_CALL_CHANNEL(k) -> lane 2 + (k - 1) % channels).
 * Queries, pings, stats requests and sends stay on the link.
 *
 * A lane is one more REQ socket dialing the peer's call port: for the
 * server it is one more inbound connection, whose replies go back on the
 * connection the request came in on, so the wire is unchanged.  It is
 * dialed when a call first needs it (an unused lane costs nothing), and
 * proves the cluster cookie on its own connection (challenge, HELLO with
 * the proof, the server's proof and identity checked), over TLS when the
 * link is (the same settings).  Calls wait in the lane's queue for its
 * handshake; they are numbered for the order of sends and calls when they
 * leave, on the link's stream (the receiver keys its order by stream, not
 * by connection).  A lane is used only while the link is UP.
 *
 * Health: a lane's loss never changes the peer's state (the link's
 * heartbeats decide it); it ends the calls sent on that lane with
 * SKC_ECONNLOST (at most once: nothing is resent) and gives the lane up
 * (NNG does not redial it): the next call that needs it dials it again.
 * So a lane the server closed while idle (its idle sweep) comes back
 * quietly when needed.  A lane that cannot be connected or authenticated
 * is not tried again for a while (1 s doubling to 30 s), and its calls go
 * on the link meanwhile.
 */
#include "core.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LANE_BACKOFF_MIN_MS 1000
#define LANE_BACKOFF_MAX_MS 30000

static const char *
lane_name(int k, char *buf, size_t len)
{
    if (k == SKCI_LANE_LARGE) {
        snprintf(buf, len, "large-message lane");
    } else {
        snprintf(buf, len, "channel lane %d", k - 1);
    }
    return buf;
}

/* The lane a call goes on (0 = the link). */
static int
lane_pick(const skc_node *n, const skci_call *c)
{
    if (c->channel > 0 && n->channels > 0) {
        return 2 + (c->channel - 1) % n->channels;
    }
    if (n->large_msg > 0 && c->payload_len >= n->large_msg) {
        return SKCI_LANE_LARGE;
    }
    return 0;
}

/* Lane k of p, allocating the lanes at first need; NULL without memory. */
static skci_lane *
lane_get(skc_node *n, skci_peer *p, int k)
{
    if (p->lanes == NULL) {
        int count = 1 + n->channels;
        p->lanes = calloc((size_t)count, sizeof(*p->lanes));
        if (p->lanes == NULL) {
            return NULL;
        }
        p->nlanes = count;
    }
    return k >= 1 && k <= p->nlanes ? &p->lanes[k - 1] : NULL;
}

/* The lane whose link callbacks got lr, if it is still that lane's. */
static skci_lane *
lane_of(skci_linkref *lr)
{
    skci_peer *p = lr->peer;
    if (p->lanes == NULL || lr->lane < 1 || lr->lane > p->nlanes) {
        return NULL;
    }
    skci_lane *ln = &p->lanes[lr->lane - 1];
    return ln->lr == lr ? ln : NULL;
}

/* Calls waiting for lane ln go on (the link is UP) or back to the peer's
 * queue, in order. */
static void
lane_flush(skc_node *n, skci_peer *p, skci_lane *ln)
{
    skci_list w = { NULL, NULL, 0 };
    skci_list_move(&w, &ln->queued);
    skci_lnode *e;
    while ((e = skci_list_pop(&w)) != NULL) {
        skci_call *c = SKCI_CALL_OF(e);
        c->state = 0;
        c->lane = 0;
        if (p->link_state == SKCI_LINK_UP && p->lr != NULL) {
            skci_peer_transmit(n, p, c);
        } else {
            skci_peer_queue(p, c);
        }
    }
}

/* Closes lane ln's connection (its link closes on a transport thread; no
 * callback of it comes after this). */
static void
lane_release(skc_node *n, skci_peer *p, skci_lane *ln)
{
    skci_linkref *lr = ln->lr;
    ln->lr = NULL;
    ln->state = SKCI_LINK_NONE;
    ln->hello = NULL;
    if (lr != NULL && skci_link_release(lr->link) != 0) {
        skci_node_log(n, SKC_LOG_ERROR,
            "cannot close a lane to node '%s' (%s); it is left open", p->name,
            skc_last_error());
    }
}

/* Lane k failed to come up or was lost: given up, its waiting calls go
 * on the link, and it is not dialed again for a while when `backoff`. */
static void
lane_down(skc_node *n, skci_peer *p, int k, int backoff)
{
    skci_lane *ln = &p->lanes[k - 1];
    lane_release(n, p, ln);
    if (backoff) {
        ln->backoff_ms = ln->backoff_ms == 0            ? LANE_BACKOFF_MIN_MS
            : ln->backoff_ms >= LANE_BACKOFF_MAX_MS / 2 ? LANE_BACKOFF_MAX_MS
                                                        : ln->backoff_ms * 2;
        ln->retry_at = skci_now_ms() + ln->backoff_ms;
    }
    lane_flush(n, p, ln);
}

/* The lane's handshake failed (call_lock held): logged, the lane waits
 * out its backoff. */
static void
lane_refused(skc_node *n, skci_peer *p, int k, const char *why)
{
    char nm[32];
    skci_node_log(n, SKC_LOG_WARN,
        "node '%s' (%s): cannot open its %s (%s); its calls go on the link for %d ms",
        p->name, skci_peer_addr(p), lane_name(k, nm, sizeof(nm)), why,
        p->lanes[k - 1].backoff_ms == 0 ? LANE_BACKOFF_MIN_MS
            : p->lanes[k - 1].backoff_ms >= LANE_BACKOFF_MAX_MS / 2
            ? LANE_BACKOFF_MAX_MS
            : p->lanes[k - 1].backoff_ms * 2);
    lane_down(n, p, k, 1);
}

/* 1 when c is the handshake step in progress on its lane (it is then no
 * longer in progress), 0 when the lane was given up meanwhile. */
static skci_lane *
lane_step(skci_call *c)
{
    skci_peer *p = c->peer;
    if (p->lanes == NULL || c->lane < 1 || c->lane > p->nlanes) {
        return NULL;
    }
    skci_lane *ln = &p->lanes[c->lane - 1];
    if (ln->hello != c) {
        return NULL;
    }
    ln->hello = NULL;
    return ln->state == SKCI_LINK_HELLO ? ln : NULL;
}

static void
lane_hello_done(skc_node *n, skci_call *c)
{
    skci_lane *ln = lane_step(c);
    if (ln == NULL) {
        return;
    }
    skci_peer *p = c->peer;
    const uint8_t *ticket = NULL;
    skci_hello h;
    if (c->status == 0 &&
        skci_peer_hello_verify(
            n, p, c, ln->auth_nc, ln->auth_ns, &h, &ticket) == 0) {
        /* The reply's send ticket is not used: a lane makes no sends. */
        ln->state = SKCI_LINK_UP;
        ln->backoff_ms = 0;
        ln->retry_at = 0;
        lane_flush(n, p, ln);
        return;
    }
    lane_refused(n, p, c->lane,
        c->detail != NULL ? c->detail : skc_strerror(c->status));
}

static void
lane_challenge_done(skc_node *n, skci_call *c)
{
    skci_lane *ln = lane_step(c);
    if (ln == NULL) {
        return;
    }
    skci_peer *p = c->peer;
    if (c->status == 0 && c->len == SKCI_AUTH_NONCE) {
        memcpy(ln->auth_ns, c->data, SKCI_AUTH_NONCE);
        ln->hello = skci_peer_auth_hello(
            n, p, c->lane, ln->auth_nc, ln->auth_ns, lane_hello_done);
        if (ln->hello != NULL) {
            return;
        }
    }
    lane_refused(n, p, c->lane,
        c->status != 0 && c->detail != NULL ? c->detail
                                            : "no cookie challenge");
}

/* Lane k is connected: its handshake, as the link's (peer.c). */
static void
lane_hello(skc_node *n, skci_peer *p, int k)
{
    skci_lane *ln = &p->lanes[k - 1];
    ln->state = SKCI_LINK_HELLO;
    ln->dials++;
    if (n->auth.key == NULL) {
        ln->hello = skci_peer_request(n, p, k, SKCI_KIND_HELLO, "(hello)",
            n->name, strlen(n->name), SKCI_HELLO_TIMEOUT_MS, lane_hello_done);
    } else if (skci_auth_random(ln->auth_nc, SKCI_AUTH_NONCE) == 0) {
        ln->hello = skci_peer_request(n, p, k, SKCI_KIND_AUTH,
            "(cookie challenge)", ln->auth_nc, SKCI_AUTH_NONCE,
            SKCI_HELLO_TIMEOUT_MS, lane_challenge_done);
    }
    if (ln->hello == NULL) {
        lane_refused(n, p, k, "no memory or random bytes for its handshake");
    }
}

/* The lane's first connect ended (transport thread, no lock held). */
static void
lane_on_dialed(void *arg, int rc, const char *detail)
{
    skci_linkref *lr = arg;
    skc_node *n = lr->node;
    skci_call_lock(n);
    skci_lane *ln = lane_of(lr);
    if (ln != NULL && ln->state == SKCI_LINK_DIALING) {
        if (rc == 0) {
            lane_hello(n, lr->peer, lr->lane);
        } else {
            lane_refused(n, lr->peer, lr->lane, detail);
        }
    }
    skci_call_unlock(n);
}

/* The lane's connection came up or went down (NNG thread).  A lost lane
 * is given up, not redialed by NNG: the next call that needs it dials. */
static void
lane_on_conn(void *arg, int up)
{
    skci_linkref *lr = arg;
    skc_node *n = lr->node;
    if (up) {
        return; /* the first connect is reported by lane_on_dialed */
    }
    skci_call_lock(n);
    skci_lane *ln = lane_of(lr);
    if (ln == NULL ||
        (ln->state != SKCI_LINK_UP && ln->state != SKCI_LINK_HELLO)) {
        skci_call_unlock(n);
        return;
    }
    skci_peer *p = lr->peer;
    int k = lr->lane;
    int was_up = ln->state == SKCI_LINK_UP;
    size_t sent = 0;
    for (skci_lnode *e = p->sent.head; e != NULL; e = e->next) {
        skci_call *c = SKCI_CALL_OF(e);
        sent += c->lane == k && c->mode != SKCI_MODE_INTERNAL;
    }
    char nm[32], why[SKCI_DETAIL_MAX];
    lane_name(k, nm, sizeof(nm));
    /* An idle lane that the peer closed (its idle sweep) is no news. */
    skci_node_log(n,
        sent > 0 && !atomic_load(&n->closing) ? SKC_LOG_WARN : SKC_LOG_DEBUG,
        "connection to node '%s' (%s), its %s, lost with %zu calls in flight",
        p->name, skci_peer_addr(p), nm, sent);
    snprintf(why, sizeof(why),
        "connection to node '%s' (%s) lost after the request was sent (its %s); the outcome is unknown",
        p->name, skci_peer_addr(p), nm);
    ln->hello = NULL; /* its handshake step ends below, unheeded */
    skci_lane_fail_sent(n, p, k, SKC_ECONNLOST, why);
    lane_down(n, p, k, !was_up || sent > 0);
    skci_call_unlock(n);
}

/* Starts connecting lane k of p (call_lock held).  0, or -1 (nothing
 * started). */
static int
lane_dial(skc_node *n, skci_peer *p, int k)
{
    skci_lane *ln = &p->lanes[k - 1];
    skci_linkref *lr = calloc(1, sizeof(*lr));
    if (lr == NULL) {
        return -1;
    }
    skci_link_cfg cfg = {
        .max_recv = n->max_msg + SKCI_REP_FIXED,
        .push_backlog = 1,
        .bg = &n->bg,
        .on_reply = skci_peer_on_reply,
        .on_conn = lane_on_conn,
        .on_dialed = lane_on_dialed,
        .on_log = skci_peer_on_link_log,
        .on_released = skci_peer_on_released,
        .tls = &n->tls,
        .arg = lr,
    };
    lr->peer = p;
    lr->node = n;
    lr->lane = k;
    if (skci_link_create(&lr->link, &cfg) != 0) {
        free(lr);
        return -1;
    }
    ln->lr = lr;
    ln->state = SKCI_LINK_DIALING;
    if (skci_link_dial(lr->link, p->url) != 0) {
        lane_release(n, p, ln);
        return -1;
    }
    return 0;
}

skci_link *
skci_lane_link(skc_node *n, skci_peer *p, skci_call *c)
{
    int k = lane_pick(n, c);
    c->lane = 0;
    skci_lane *ln = k > 0 ? lane_get(n, p, k) : NULL;
    if (ln == NULL) {
        return p->lr->link;
    }
    if (ln->state == SKCI_LINK_UP) {
        c->lane = k;
        ln->calls++;
        return ln->lr->link;
    }
    if (ln->state == SKCI_LINK_NONE &&
        (skci_now_ms() < ln->retry_at || lane_dial(n, p, k) != 0)) {
        return p->lr->link; /* the lane is not to be had now */
    }
    c->state = SKCI_CALL_LANE;
    c->lane = k;
    skci_list_append(&ln->queued, &c->link);
    return NULL;
}

void
skci_lane_unqueue(skci_peer *p, skci_call *c)
{
    skci_list_remove(&p->lanes[c->lane - 1].queued, &c->link);
}

void
skci_lane_fail_sent(
    skc_node *n, skci_peer *p, int lane, int status, const char *detail)
{
    if (lane == 0 && p->lanes == NULL) {
        skci_call_fail_list(n, &p->sent, status, detail);
        return;
    }
    /* Moved to a list of their own, each ended as it leaves it (state 0:
     * call_finish takes it off no list).  Only internal calls' done
     * functions run meanwhile, and none ends a call sent on a lane. */
    skci_list mine = { NULL, NULL, 0 };
    skci_lnode *e = p->sent.head;
    while (e != NULL) {
        skci_lnode *next = e->next;
        if (SKCI_CALL_OF(e)->lane == lane) {
            skci_list_remove(&p->sent, e);
            skci_list_append(&mine, e);
        }
        e = next;
    }
    while ((e = skci_list_pop(&mine)) != NULL) {
        skci_call *c = SKCI_CALL_OF(e);
        c->state = 0;
        skci_call_finish(n, c, status, NULL, NULL, 0, detail);
    }
}

void
skci_lanes_requeue(skci_peer *p)
{
    for (int i = 0; i < p->nlanes; i++) {
        skci_lnode *e;
        while ((e = skci_list_pop(&p->lanes[i].queued)) != NULL) {
            skci_call *c = SKCI_CALL_OF(e);
            c->lane = 0;
            skci_peer_queue(p, c);
        }
    }
}

void
skci_lanes_detach(skc_node *n, skci_peer *p)
{
    for (int i = 0; i < p->nlanes; i++) {
        skci_lane *ln = &p->lanes[i];
        lane_release(n, p, ln);
        ln->retry_at = 0;
        ln->backoff_ms = 0;
    }
    skci_lanes_requeue(p);
}

void
skci_lanes_free(skci_peer *p)
{
    free(p->lanes);
    p->lanes = NULL;
    p->nlanes = 0;
}
