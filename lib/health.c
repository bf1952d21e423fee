/* health.c -- whether each peer is alive: heartbeats on idle links, the
 * verdicts (up, down and why), redials with backoff, and monitor reports.
 *
 * Everything here runs under call_lock; monitor reports are delivered by
 * a dispatch task, one at a time and in order, with no lock held.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REDIAL_MIN_MS 100
#define REDIAL_MAX_MS 5000
/* A dial to a peer that is down is abandoned and started again after this
 * long (at least): a connect to a host behind a partition can hang for
 * minutes, and would hold the redial back after the network heals. */
#define DIAL_STUCK_MS 2000

void
skci_health_init(skc_node *n, int32_t hb_ms, int32_t misses)
{
    n->health.hb_ms = hb_ms < 0 ? 0 : hb_ms;
    n->health.hb_misses = misses;
}

void
skci_health_fini(skc_node *n)
{
    skci_lnode *l;
    while ((l = skci_list_pop(&n->health.events)) != NULL) {
        skci_monev *e = SKCI_LIST_ENTRY(l, skci_monev, link);
        free(e->addr);
        free(e);
    }
}

static const char *
state_name(int state)
{
    switch (state) {
    case SKC_PEER_UP:
        return "up";
    case SKC_PEER_DOWN:
        return "down";
    case SKC_PEER_CONNECTING:
        return "connecting";
    default:
        return "unknown";
    }
}

/* Delivers the queued reports (a dispatch task; no lock held). */
static void
monitor_run(skc_node *n, skci_task *t)
{
    (void)t;
    skc_node *prev = skci_current_node;
    skci_current_node = n;
    for (;;) {
        skci_call_lock(n);
        skci_list evs = { NULL, NULL, 0 };
        skci_list_move(&evs, &n->health.events);
        skc_monitor_fn fn = n->health.fn;
        void *arg = n->health.arg;
        if (skci_list_empty(&evs)) {
            n->health.running = 0;
            skci_call_unlock(n);
            break;
        }
        skci_call_unlock(n);
        skci_lnode *l;
        while ((l = skci_list_pop(&evs)) != NULL) {
            skci_monev *e = SKCI_LIST_ENTRY(l, skci_monev, link);
            if (fn != NULL) {
                fn(arg, e->peer, e->up, e->reason, e->addr ? e->addr : "");
            }
            free(e->addr);
            free(e);
        }
    }
    skci_current_node = prev;
}

static void
monitor_queue(skc_node *n, skci_peer *p, int up, const char *reason)
{
    if (n->health.fn == NULL || atomic_load(&n->closing)) {
        return;
    }
    size_t nl = strlen(p->name) + 1;
    skci_monev *e = calloc(1, sizeof(*e) + nl);
    if (e == NULL) {
        skci_node_log(n, SKC_LOG_ERROR,
            "no memory to report node '%s' %s to the monitor", p->name,
            up ? "up" : "down");
        return;
    }
    memcpy(e->peer, p->name, nl);
    e->up = up;
    e->reason = reason;
    e->addr = p->url != NULL ? skci_strdup(p->url) : NULL;
    skci_list_append(&n->health.events, &e->link);
    if (!n->health.running) {
        n->health.running = 1;
        n->health.task.run = monitor_run;
        skci_dispatch_push(n, &n->health.task);
    }
}

/* Calls queued on p that came through a group go to another member
 * (they never left this node). */
static void
reroute_group_calls(skc_node *n, skci_peer *p)
{
    skci_lnode *e = p->queued.head;
    while (e != NULL) {
        skci_lnode *next = e->next;
        skci_call *c = SKCI_CALL_OF(e);
        if (c->group != NULL) {
            char why[SKCI_DETAIL_MAX];
            skci_peer *m = skci_group_pick(n, c->group, p, why, sizeof(why));
            if (m != NULL) {
                skci_list_remove(&p->queued, e);
                c->state = 0;
                skci_peer_route(n, m, c);
            }
        }
        e = next;
    }
}

/* Plans the next dial of a peer that is down. */
static void
plan_redial(skc_node *n, skci_peer *p)
{
    if (p->map != SKCI_PEER_HAS_ADDR || (!p->watched && !p->ever_up)) {
        return;
    }
    p->backoff_ms = p->backoff_ms == 0       ? REDIAL_MIN_MS
        : p->backoff_ms >= REDIAL_MAX_MS / 2 ? REDIAL_MAX_MS
                                             : p->backoff_ms * 2;
    p->redial_at = skci_now_ms() + p->backoff_ms;
    n->health.any = 1;
    skci_timer_wake(n, p->redial_at);
}

void
skci_health_set(skc_node *n, skci_peer *p, int state, const char *reason)
{
    if (state == SKC_PEER_DOWN) {
        reroute_group_calls(n, p);
        if (p->link_state == SKCI_LINK_NONE) {
            plan_redial(n, p);
        }
    }
    if (p->health == state) {
        return;
    }
    int was = p->health;
    p->health = state;
    p->reason = reason;
    if (state == SKC_PEER_UP) {
        p->ever_up = 1;
        p->backoff_ms = 0;
        p->redial_at = 0;
        n->health.any = 1;
        if (n->health.hb_ms > 0) {
            skci_timer_wake(n, skci_now_ms() + n->health.hb_ms);
        }
    }
    if (state != SKC_PEER_UP && state != SKC_PEER_DOWN) {
        return;
    }
    if (!atomic_load(&n->closing)) {
        skci_node_log(n, SKC_LOG_INFO, "node '%s' (%s) is %s (%s; was %s)",
            p->name, skci_peer_addr(p), state_name(state), reason,
            state_name(was));
    }
    monitor_queue(n, p, state == SKC_PEER_UP, reason);
}

/* A peer that stopped answering: its link goes, calls sent on it end. */
static void
heartbeat_timeout(skc_node *n, skci_peer *p, int64_t silent)
{
    char why[SKCI_DETAIL_MAX];
    snprintf(why, sizeof(why),
        "node '%s' (%s) did not answer for %lld ms (heartbeat timeout); the outcome is unknown",
        p->name, skci_peer_addr(p), (long long)silent);
    skci_peer_detach(n, p);
    skci_call_fail_list(n, &p->sent, SKC_ECONNLOST, why);
    skci_health_set(n, p, SKC_PEER_DOWN, "heartbeat timeout");
}

/* One peer's periodic work; returns when it next needs the tick. */
static int64_t
peer_tick(skc_node *n, skci_peer *p, int64_t now)
{
    int64_t hb = n->health.hb_ms;
    if (p->map != SKCI_PEER_HAS_ADDR) {
        return INT64_MAX;
    }
    if (p->link_state == SKCI_LINK_UP && hb > 0) {
        int64_t silent = now - p->last_rx;
        int64_t limit = hb * n->health.hb_misses;
        if (silent >= limit) {
            heartbeat_timeout(n, p, silent);
            return now + REDIAL_MIN_MS;
        }
        if (silent >= hb && p->hb == NULL) {
            skci_peer_heartbeat(n, p);
        }
        int64_t next = p->last_rx + limit;
        if (p->hb == NULL && p->last_rx + hb < next) {
            next = p->last_rx + hb;
        }
        return next > now ? next : now + 1;
    }
    if (p->link_state == SKCI_LINK_DIALING && p->health == SKC_PEER_DOWN) {
        int64_t stuck = hb * n->health.hb_misses;
        if (stuck < DIAL_STUCK_MS) {
            stuck = DIAL_STUCK_MS;
        }
        if (now - p->dial_start >= stuck) {
            skci_peer_detach(n, p);
            p->redial_at = now;
        } else {
            return p->dial_start + stuck;
        }
    }
    if (p->redial_at != 0 && p->link_state == SKCI_LINK_NONE) {
        if (now < p->redial_at) {
            return p->redial_at;
        }
        p->redial_at = 0;
        skci_peer_dial(n, p);
        return p->dial_start + DIAL_STUCK_MS;
    }
    return INT64_MAX;
}

int64_t
skci_health_tick(skc_node *n, int64_t now)
{
    if (!n->health.any || atomic_load(&n->closing)) {
        return INT64_MAX;
    }
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < n->peers.byname.nb; i++) {
        for (skci_strmap_ent *e = n->peers.byname.b[i]; e; e = e->next) {
            int64_t t = peer_tick(n, e->val, now);
            if (t < next) {
                next = t;
            }
        }
    }
    n->health.any = next != INT64_MAX;
    return next;
}

/* ---- public ---- */

int
skc_node_monitor(skc_node *node, skc_monitor_fn fn, void *arg)
{
    int rc;
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    skci_call_lock(node);
    node->health.fn = fn;
    node->health.arg = arg;
    skci_call_unlock(node);
    return 0;
}

/* One peer's state and its text ("tcp://... down (refused)"). */
static int
peer_describe(const skci_peer *p, char *buf, size_t len)
{
    int st = p->map == SKCI_PEER_MARKED_DOWN ? SKC_PEER_DOWN : p->health;
    if (p->map == SKCI_PEER_NOT_IN_MAP) {
        snprintf(buf, len, "not in the cluster map");
        return SKC_PEER_UNKNOWN;
    }
    const char *why = p->map == SKCI_PEER_MARKED_DOWN ? "marked down"
        : p->reason != NULL                           ? p->reason
                                                      : "";
    if (st == SKC_PEER_UP && p->rtt_us > 0) {
        snprintf(buf, len, "%s up (rtt %lld us)", skci_peer_addr(p),
            (long long)p->rtt_us);
    } else {
        snprintf(buf, len, "%s %s%s%s%s", skci_peer_addr(p), state_name(st),
            why[0] ? " (" : "", why, why[0] ? ")" : "");
    }
    return st;
}

static int
group_describe(skc_node *n, const skci_peer *g, char *buf, size_t len)
{
    const skci_group *grp = g->group;
    int up = 0, down = 0;
    size_t off = (size_t)snprintf(
        buf, len, "group (%s):", skci_group_policy_name(grp->policy));
    for (size_t i = 0; i < grp->n && off < len; i++) {
        skci_peer *m = skci_peer_get(n, grp->members[i], 0);
        char one[SKCI_DETAIL_MAX];
        int st = SKC_PEER_UNKNOWN;
        if (m != NULL) {
            st = peer_describe(m, one, sizeof(one));
        } else {
            snprintf(one, sizeof(one), "not in the cluster map");
        }
        up += st == SKC_PEER_UP;
        down += st == SKC_PEER_DOWN;
        off += (size_t)snprintf(buf + off, len - off, "%s %s: %s",
            i ? "," : "", grp->members[i], one);
    }
    return up                    ? SKC_PEER_UP
        : (size_t)down == grp->n ? SKC_PEER_DOWN
                                 : SKC_PEER_CONNECTING;
}

int
skci_peer_state(skc_node *n, const skci_peer *p)
{
    char buf[SKCI_DETAIL_MAX];
    return p->map == SKCI_PEER_GROUP ? group_describe(n, p, buf, sizeof(buf))
                                     : peer_describe(p, buf, sizeof(buf));
}

const char *
skci_peer_state_name(int state)
{
    return state_name(state);
}

int
skc_node_peer_state(
    skc_node *node, const char *peer, int *state, char **detail)
{
    int rc;
    if (detail != NULL) {
        *detail = NULL;
    }
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    if (peer == NULL || state == NULL) {
        return skci_error(SKC_EINVAL, "peer or state is NULL");
    }
    char buf[4096];
    skci_call_lock(node);
    skci_peer *p = skci_peer_get(node, peer, 0);
    if (p == NULL) {
        snprintf(buf, sizeof(buf), "not in the cluster map");
        *state = SKC_PEER_UNKNOWN;
    } else if (p->map == SKCI_PEER_GROUP) {
        *state = group_describe(node, p, buf, sizeof(buf));
    } else {
        *state = peer_describe(p, buf, sizeof(buf));
    }
    skci_call_unlock(node);
    if (detail != NULL && (*detail = skci_user_strdup(buf)) == NULL) {
        return skci_error(SKC_ENOMEM, "peer state");
    }
    return 0;
}
