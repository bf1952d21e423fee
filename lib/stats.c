/* stats.c -- what a node counts and holds, as one JSON object: for
 * skc_node_stats, and for a peer's STATS request (`skc stats NODE`).
 *
 * The counters are bumped where their events happen (core.h, skci_stats);
 * this file only reads them, with the gauges each module keeps, and writes
 * the JSON that docs/OPERATIONS.md ("Statistics") documents.  Each lock is
 * taken on its own, in the lock order, so a snapshot is consistent per
 * section, not across sections. */
#include "core.h"
#include "error.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Mailboxes listed one by one: the deepest, at most this many. */
#define STATS_MAILBOXES 16

/* ---- a growing JSON text ---- */

typedef struct jtext {
    char *b;
    size_t len, cap;
    int oom;
} jtext;

static void
jt_raw(jtext *j, const char *s, size_t n)
{
    if (j->oom) {
        return;
    }
    if (j->len + n + 1 > j->cap) {
        size_t nc = j->cap ? j->cap * 2 : 2048;
        while (nc < j->len + n + 1) {
            nc *= 2;
        }
        char *nb = realloc(j->b, nc);
        if (nb == NULL) {
            j->oom = 1;
            return;
        }
        j->b = nb;
        j->cap = nc;
    }
    memcpy(j->b + j->len, s, n);
    j->len += n;
    j->b[j->len] = '\0';
}

static void jt_fmt(jtext *j, const char *fmt, ...) SKCI_PRINTF(2, 3);

static void
jt_fmt(jtext *j, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0) {
        jt_raw(j, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
    }
}

/* A JSON string: control characters escaped, and each byte that is not
 * part of valid UTF-8 (skci_utf8_len) as \u00XX (names and error texts
 * may come from the network). */
static void
jt_str(jtext *j, const char *s)
{
    jt_raw(j, "\"", 1);
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    while (n > 0) {
        size_t k = 1;
        if (*p == '"' || *p == '\\') {
            char e[2] = { '\\', (char)*p };
            jt_raw(j, e, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            jt_fmt(j, "\\u%04x", *p);
        } else if (*p < 0x80) {
            jt_raw(j, (const char *)p, 1);
        } else if ((k = skci_utf8_len(p, n)) > 0) {
            jt_raw(j, (const char *)p, k);
        } else {
            k = 1;
            jt_fmt(j, "\\u%04x", *p);
        }
        p += k;
        n -= k;
    }
    jt_raw(j, "\"", 1);
}

/* "key": (with a comma before it unless first). */
static void
jt_key(jtext *j, int *first, const char *key)
{
    if (!*first) {
        jt_raw(j, ",", 1);
    }
    *first = 0;
    jt_str(j, key);
    jt_raw(j, ":", 1);
}

static void
jt_u64(jtext *j, int *first, const char *key, uint64_t v)
{
    jt_key(j, first, key);
    jt_fmt(j, "%" PRIu64, v);
}

static uint64_t
get(skci_counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* {"ECODE": count, ...} of the codes counted. */
static void
jt_codes(jtext *j, const uint64_t *by_code)
{
    int first = 1;
    jt_raw(j, "{", 1);
    for (int i = 1; i < SKCI_STAT_CODES; i++) {
        if (by_code[i] != 0) {
            jt_u64(j, &first, skc_errname(-i), by_code[i]);
        }
    }
    jt_raw(j, "}", 1);
}

/* ---- the sections ---- */

static const char *
link_name(int st)
{
    switch (st) {
    case SKCI_LINK_DIALING:
        return "dialing";
    case SKCI_LINK_HELLO:
        return "hello";
    case SKCI_LINK_UP:
        return "up";
    case SKCI_LINK_RETRY:
        return "retrying";
    default:
        return "none";
    }
}

/* The peer's lanes that were ever connected (lane.c): which, their
 * state, the calls sent on them and their connections (call_lock). */
static void
lanes_json(jtext *j, int *first, const skci_peer *p)
{
    jt_key(j, first, "lanes");
    jt_raw(j, "[", 1);
    int any = 0;
    for (int i = 0; i < p->nlanes; i++) {
        const skci_lane *ln = &p->lanes[i];
        if (ln->dials == 0 && ln->lr == NULL) {
            continue;
        }
        int f = 1;
        size_t sent = 0;
        for (skci_lnode *e = p->sent.head; e != NULL; e = e->next) {
            sent += SKCI_CALL_OF(e)->lane == i + 1;
        }
        jt_raw(j, any ? ",{" : "{", any ? 2 : 1);
        any = 1;
        jt_key(j, &f, "lane");
        if (i + 1 == SKCI_LANE_LARGE) {
            jt_str(j, "large");
        } else {
            jt_fmt(j, "\"channel %d\"", i);
        }
        jt_key(j, &f, "link");
        jt_str(j, link_name(ln->state));
        jt_u64(j, &f, "calls", ln->calls);
        jt_u64(j, &f, "calls_sent", sent);
        jt_u64(j, &f, "calls_queued", ln->queued.len);
        jt_u64(j, &f, "connects", ln->dials);
        jt_raw(j, "}", 1);
    }
    jt_raw(j, "]", 1);
}

/* One peer's object (call_lock held). */
static void
peer_json(jtext *j, skc_node *n, skci_peer *p)
{
    int first = 1;
    jt_raw(j, "{", 1);
    if (p->map == SKCI_PEER_GROUP) {
        jt_key(j, &first, "group");
        jt_str(j, skci_group_policy_name(p->group->policy));
        jt_key(j, &first, "members");
        jt_raw(j, "[", 1);
        for (size_t i = 0; i < p->group->n; i++) {
            if (i > 0) {
                jt_raw(j, ",", 1);
            }
            jt_str(j, p->group->members[i]);
        }
        jt_raw(j, "]", 1);
    } else {
        jt_key(j, &first, "address");
        jt_str(j, p->map == SKCI_PEER_HAS_ADDR ? p->url : "");
    }
    int st = skci_peer_state(n, p);
    jt_key(j, &first, "state");
    jt_str(j, skci_peer_state_name(st));
    if (p->map != SKCI_PEER_GROUP) {
        jt_key(j, &first, "link");
        jt_str(j, link_name(p->link_state));
        jt_u64(j, &first, "rtt_us", p->rtt_us > 0 ? (uint64_t)p->rtt_us : 0);
        jt_u64(j, &first, "calls_queued", p->queued.len);
        jt_u64(j, &first, "calls_sent", p->sent.len);
        jt_u64(j, &first, "send_backlog",
            p->lr != NULL ? skci_link_send_backlog(p->lr->link) : 0);
        jt_key(j, &first, "last_error");
        if (p->last_error != NULL) {
            jt_str(j, p->last_error);
        } else {
            jt_raw(j, "null", 4);
        }
        lanes_json(j, &first, p);
    }
    jt_raw(j, "}", 1);
}

/* Counters of this node's own calls and sends, its calls in flight and
 * its peers (call_lock). */
static void
caller_json(jtext *j, skc_node *n, uint64_t *links_up)
{
    skci_call_lock(n);
    skci_stats *s = &n->stats;
    uint64_t inflight = n->pend.inflight;
    int first = 1;
    jt_raw(j, "\"peers\":{", 9);
    *links_up = 0;
    for (size_t i = 0; i < n->peers.byname.nb; i++) {
        for (skci_strmap_ent *e = n->peers.byname.b[i]; e; e = e->next) {
            skci_peer *p = e->val;
            if (p->name[0] == '_' && p->name[1] == '_') {
                continue; /* __nowaiting and other settings */
            }
            *links_up += p->link_state == SKCI_LINK_UP;
            jt_key(j, &first, p->name);
            peer_json(j, n, p);
        }
    }
    jt_raw(j, "},\"counters\":{", 14);
    first = 1;
    jt_u64(j, &first, "calls_ok", s->calls_ok);
    jt_key(j, &first, "calls_failed");
    jt_codes(j, s->calls_failed);
    jt_u64(j, &first, "sends_ok", s->sends_ok);
    jt_key(j, &first, "sends_failed");
    jt_codes(j, s->sends_failed);
    jt_u64(j, &first, "sends_lost", get(&s->sends_lost));
    jt_u64(j, &first, "requests_in", get(&s->requests_in));
    jt_u64(j, &first, "calls_in", get(&s->calls_in));
    jt_u64(j, &first, "calls_refused", get(&s->calls_refused));
    jt_u64(j, &first, "replies_ok", get(&s->replies_ok));
    jt_u64(j, &first, "replies_failed", get(&s->replies_failed));
    jt_u64(j, &first, "sends_in", get(&s->sends_in));
    jt_u64(j, &first, "sends_dropped", get(&s->sends_dropped));
    jt_u64(j, &first, "bad_frames", get(&s->bad_frames));
    jt_u64(j, &first, "mailbox_full", get(&s->mailbox_full));
    jt_u64(j, &first, "connections_closed_idle", get(&s->conns_closed));
    jt_u64(j, &first, "send_port_paused", get(&s->sends_paused));
    jt_u64(j, &first, "memory_trims", get(&s->mem_trims));
    jt_u64(j, &first, "bytes_out", s->bytes_out_lk + get(&s->bytes_out));
    jt_u64(j, &first, "bytes_in", s->bytes_in_lk + get(&s->bytes_in));
    skci_call_unlock(n);
    jt_raw(j, "},\"gauges\":{", 12);
    first = 1;
    jt_u64(j, &first, "calls_in_flight", inflight);
}

typedef struct box {
    uint32_t handle;
    uint64_t msgs, bytes;
} box;

typedef struct box_walk {
    skc_node *n;
    box top[STATS_MAILBOXES];
    size_t ntop;
    uint64_t services, msgs, bytes;
} box_walk;

/* Per service (reg.lock held; takes dq.lock): totals and the deepest. */
static void
box_visit(uint32_t h, void *val, void *arg)
{
    box_walk *w = arg;
    skci_service *s = val;
    pthread_mutex_lock(&w->n->dq.lock);
    box b = { h, s->mail.len, s->mail_bytes };
    pthread_mutex_unlock(&w->n->dq.lock);
    w->services++;
    w->msgs += b.msgs;
    w->bytes += b.bytes;
    if (b.msgs == 0) {
        return;
    }
    size_t i;
    if (w->ntop < STATS_MAILBOXES) {
        i = w->ntop++;
    } else if (w->top[STATS_MAILBOXES - 1].msgs >= b.msgs) {
        return; /* not deeper than the shallowest listed */
    } else {
        i = STATS_MAILBOXES - 1;
    }
    while (i > 0 && w->top[i - 1].msgs < b.msgs) {
        w->top[i] = w->top[i - 1];
        i--;
    }
    w->top[i] = b;
}

typedef struct names_of {
    uint32_t handle;
    jtext *j;
    int first;
} names_of;

static void
name_visit(const char *name, void *val, void *arg)
{
    names_of *no = arg;
    if ((uint32_t)(uintptr_t)val == no->handle) {
        if (!no->first) {
            jt_raw(no->j, ",", 1);
        }
        no->first = 0;
        jt_str(no->j, name);
    }
}

/* The services' gauges and the deepest mailboxes (reg.lock, dq.lock). */
static void
services_json(jtext *j, skc_node *n, int *first)
{
    box_walk w = { .n = n };
    pthread_rwlock_rdlock(&n->reg.lock);
    skci_idmap_each(&n->reg.services, box_visit, &w);
    jt_u64(j, first, "services", w.services);
    jt_u64(j, first, "mailbox_messages", w.msgs);
    jt_u64(j, first, "mailbox_bytes", w.bytes);
    jt_raw(j, "},\"mailboxes\":[", 15);
    for (size_t i = 0; i < w.ntop; i++) {
        jt_fmt(j, "%s{\"service\":\":%08x\",\"names\":[", i ? "," : "",
            (unsigned)w.top[i].handle);
        names_of no = { w.top[i].handle, j, 1 };
        skci_strmap_each(&n->reg.names, name_visit, &no);
        jt_fmt(j, "],\"messages\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
            w.top[i].msgs, w.top[i].bytes);
    }
    pthread_rwlock_unlock(&n->reg.lock);
    jt_raw(j, "]", 1);
}

char *
skci_stats_json(skc_node *n, size_t *len)
{
    jtext j = { 0 };
    int first = 1;
    jt_raw(&j, "{", 1);
    jt_key(&j, &first, "node");
    jt_str(&j, n->name);
    jt_key(&j, &first, "version");
    jt_str(&j, SKC_VERSION_STRING);
    jt_u64(&j, &first, "uptime_ms",
        (uint64_t)(skci_now_ms() - n->stats.start_ms));
    jt_raw(&j, ",", 1);
    uint64_t links_up = 0;
    caller_json(&j, n, &links_up); /* leaves "gauges" open */
    first = 0;
    pthread_mutex_lock(&n->serve.lock);
    uint64_t serving = n->serve.routes.len;
    pthread_mutex_unlock(&n->serve.lock);
    jt_u64(&j, &first, "calls_serving", serving);
    uint32_t in_calls = 0, in_sends = 0;
    pthread_mutex_lock(&n->open_lock);
    if (n->server != NULL) {
        skci_server_conns(n->server, &in_calls, &in_sends);
    }
    pthread_mutex_unlock(&n->open_lock);
    jt_u64(&j, &first, "connections_in", in_calls);
    jt_u64(&j, &first, "connections_in_send", in_sends);
    jt_u64(&j, &first, "links_up", links_up);
    pthread_mutex_lock(&n->dq.lock);
    uint64_t busy = (uint64_t)n->dq.busy, ready = n->dq.ready.len;
    pthread_mutex_unlock(&n->dq.lock);
    jt_u64(&j, &first, "workers", (uint64_t)n->dq.nthreads);
    jt_u64(&j, &first, "workers_busy", busy);
    jt_u64(&j, &first, "tasks_ready", ready);
    services_json(&j, n, &first);
    jt_raw(&j, "}", 1);
    if (j.oom) {
        free(j.b);
        return NULL;
    }
    *len = j.len;
    return j.b;
}

/* The checks both entry points make. */
static int
stats_begin(skc_node *node, char **json)
{
    int rc;
    if (json != NULL) {
        *json = NULL;
    }
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    return json == NULL ? skci_error(SKC_EINVAL, "json is NULL") : 0;
}

int
skc_node_stats(skc_node *node, char **json)
{
    int rc;
    if ((rc = stats_begin(node, json)) != 0) {
        return rc;
    }
    size_t len;
    char *text = skci_stats_json(node, &len);
    if (text == NULL || (*json = skci_user_strdup(text)) == NULL) {
        free(text);
        return skci_error(SKC_ENOMEM, "statistics");
    }
    free(text);
    return 0;
}

int
skc_node_stats_remote(
    skc_node *node, const char *peer, int32_t timeout_ms, char **json)
{
    int rc;
    if ((rc = stats_begin(node, json)) != 0) {
        return rc;
    }
    skci_tmsg *rep = NULL;
    const uint8_t *d = NULL;
    size_t l = 0;
    if ((rc = skci_call_plain(
             node, SKCI_KIND_STATS, peer, timeout_ms, &rep, &d, &l)) != 0) {
        return rc;
    }
    char *s = skci_user_alloc(l + 1);
    if (s == NULL) {
        skci_tmsg_free(rep);
        return skci_error(SKC_ENOMEM, "statistics of %zu bytes", l);
    }
    memcpy(s, d, l);
    s[l] = '\0';
    skci_tmsg_free(rep);
    *json = s;
    return 0;
}
