/* call.c -- outgoing calls, sends and queries; links to peers; deadlines;
 * and the serving side of incoming frames.
 *
 * Invariants (all under call_lock):
 *  - every pending call is in n->calls (by id) and n->deadlines, and in
 *    exactly one list of its peer: the queue (not yet sent) or the sent list;
 *  - a call ends exactly once, in call_finish(), which takes it out of all
 *    three; the deadline heap guarantees it ends by its deadline;
 *  - a peer's queue only holds calls while its link is not UP; going UP
 *    flushes the queue in order.
 * Links are closed and dialed on background threads (skci_bg_run), never
 * under call_lock and never on an NNG thread.
 */
#include "core.h"
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HELLO_TIMEOUT_MS 5000

/* Replies are handed out in place with skc_free's 16-byte block header
 * written over the reply header, and echo replies reuse the request frame:
 * both need these sizes. */
_Static_assert(SKCI_REP_FIXED >= 16, "reply header too small");
_Static_assert(SKCI_REQ_FIXED >= SKCI_REP_FIXED, "request header too small");
#define DETAIL_MAX 1024

/* ---- small helpers ---- */

static const char *
peer_addr(const skci_peer *p)
{
    return p->url != NULL ? p->url : "no address";
}

static skci_tmsg *
reply_frame(uint32_t status, uint64_t id, const void *data, size_t len)
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

static skci_tmsg *
error_frame(int code, uint64_t id, const char *fmt, ...) SKCI_PRINTF(3, 4);

static skci_tmsg *
error_frame(int code, uint64_t id, const char *fmt, ...)
{
    char text[DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return reply_frame((uint32_t)-code, id, text, strlen(text));
}

/* ---- peers ---- */

skci_peer *
skci_peer_get(skc_node *n, const char *name, int create)
{
    skci_peer *p = skci_strmap_get(&n->peers, name);
    if (p != NULL || !create) {
        return p;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL || (p->name = skci_strdup(name)) == NULL ||
        skci_strmap_set(&n->peers, name, p) != 0) {
        if (p != NULL) {
            free(p->name);
        }
        free(p);
        return NULL;
    }
    return p;
}

static void
list_unlink(skci_call **head, skci_call **tail, skci_call *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        *head = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    } else if (tail != NULL) {
        *tail = c->prev;
    }
    c->prev = c->next = NULL;
}

static void
queue_append(skci_peer *p, skci_call *c)
{
    c->state = SKCI_CALL_QUEUED;
    c->prev = p->qtail;
    c->next = NULL;
    if (p->qtail != NULL) {
        p->qtail->next = c;
    } else {
        p->qhead = c;
    }
    p->qtail = c;
}

static void
sent_add(skci_peer *p, skci_call *c)
{
    c->state = SKCI_CALL_SENT;
    c->prev = NULL;
    c->next = p->shead;
    if (p->shead != NULL) {
        p->shead->prev = c;
    }
    p->shead = c;
}

static void
link_state_set(skci_peer *p, int st)
{
    p->link_state = st;
}

/* ---- ending calls ---- */

static void hello_done(skc_node *n, skci_call *c);

static void
call_free(skci_call *c)
{
    skci_tmsg_free(c->req);
    skci_tmsg_free(c->rep);
    free(c->detail);
    if (c->mode == SKCI_MODE_SYNC) {
        pthread_cond_destroy(&c->cond);
    }
    free(c);
}

/* Ends a call (call_lock held).  rep (consumed) owns data when not NULL. */
static void
call_finish(skc_node *n, skci_call *c, int status, skci_tmsg *rep,
    const uint8_t *data, size_t len, const char *detail)
{
    skci_idmap_del(&n->calls, c->id);
    skci_heap_remove(&n->deadlines, &c->hn);
    if (c->peer != NULL) {
        if (c->state == SKCI_CALL_QUEUED) {
            list_unlink(&c->peer->qhead, &c->peer->qtail, c);
        } else if (c->state == SKCI_CALL_SENT) {
            list_unlink(&c->peer->shead, NULL, c);
        }
    }
    c->state = 0;
    if (c->mode != SKCI_MODE_INTERNAL) {
        n->inflight--;
    }
    c->status = status;
    c->rep = rep;
    c->data = data;
    c->len = len;
    if (status != 0) {
        c->detail = skci_strdup(detail ? detail : skc_strerror(status));
    }
    switch (c->mode) {
    case SKCI_MODE_SYNC:
        c->done = 1;
        pthread_cond_broadcast(&c->cond);
        break;
    case SKCI_MODE_ASYNC:
        c->task.type = SKCI_TASK_COMPLETION;
        if (c->inline_take) {
            break; /* on_reply runs it on this thread, unlocked */
        }
        skci_dispatch_push(n, &c->task);
        break;
    case SKCI_MODE_INTERNAL:
        hello_done(n, c);
        call_free(c);
        break;
    case SKCI_MODE_SEND:
        if (status != 0) {
            skci_node_log(n, SKC_LOG_WARN, "dropped a send to node '%s' %s: "
                "%s", c->peer ? c->peer->name : "?", c->target,
                c->detail ? c->detail : "");
        }
        call_free(c);
        break;
    }
}

static void
call_fail(skc_node *n, skci_call *c, int status, const char *fmt, ...)
    SKCI_PRINTF(4, 5);

static void
call_fail(skc_node *n, skci_call *c, int status, const char *fmt, ...)
{
    char detail[DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    call_finish(n, c, status, NULL, NULL, 0, detail);
}

/* Fails every call in a peer list. */
static void
fail_list(skc_node *n, skci_call *head, int status, const char *detail)
{
    while (head != NULL) {
        skci_call *next = head->next;
        call_finish(n, head, status, NULL, NULL, 0, detail);
        head = next;
    }
}

/* ---- sending ---- */

/* Hands a call to its peer's link (link UP, call_lock held). */
static void
call_transmit(skc_node *n, skci_peer *p, skci_call *c)
{
    if (c->payload_len > p->max_msg) {
        call_fail(n, c, SKC_ETOOBIG, "node '%s' accepts messages of at most "
            "%u bytes; this one has %zu", p->name, p->max_msg,
            c->payload_len);
        return;
    }
    skci_tmsg *m = c->req;
    c->req = NULL;
    /* The remaining deadline travels with the request, measured now. */
    int64_t left = c->hn.when - skci_now_ms();
    skci_put_u32(skci_tmsg_body(m) + 8, (uint32_t)(left > 0 ? left : 1));
    int rc;
    if (c->mode == SKCI_MODE_SEND) {
        rc = skci_link_push(p->lr->link, m);
        if (rc == 0) {
            call_finish(n, c, 0, NULL, NULL, 0, NULL);
        } else {
            call_fail(n, c, rc, "%s", skc_last_error());
        }
        return;
    }
    rc = skci_link_send(p->lr->link, m, (int32_t)(left > 0 ? left : 1));
    if (rc != 0) {
        call_fail(n, c, SKC_ECONNLOST, "node '%s' (%s): %s", p->name,
            peer_addr(p), skc_last_error());
        return;
    }
    sent_add(p, c);
}

static void
peer_flush(skc_node *n, skci_peer *p)
{
    while (p->qhead != NULL && p->link_state == SKCI_LINK_UP) {
        skci_call *c = p->qhead;
        list_unlink(&p->qhead, &p->qtail, c);
        c->state = 0;
        call_transmit(n, p, c);
    }
}

/* ---- links ---- */

static void on_reply(void *arg, skci_tmsg *msg);
static void on_pipe(void *arg, int up, uint32_t pipe_id);

static void
housekeeper_wake(skc_node *n, int64_t when)
{
    /* Only if it would sleep past `when`: at one call in flight every new
     * call is the earliest deadline, and waking the housekeeper for each
     * cost a thread wake-up and a call_lock round per call. */
    if (when < n->timer_until) {
        pthread_cond_signal(&n->timer_cond);
    }
}

static void lr_release(skci_linkref *lr);

static void *
close_main(void *arg)
{
    skci_linkref *lr = arg;
    skc_node *n = lr->node;
    skci_link_close(lr->link);
    lr_release(lr);
    skci_bg_done(n);
    return NULL;
}

/* Detaches the peer's link and closes it on a background thread (closing
 * waits for the link's callbacks, which take call_lock; see skci_bg). */
static void
peer_detach_link(skc_node *n, skci_peer *p)
{
    skci_linkref *lr = p->lr;
    if (lr == NULL) {
        return;
    }
    p->lr = NULL;
    link_state_set(p, SKCI_LINK_NONE);
    p->hello = NULL;
    if (skci_bg_run(n, close_main, lr) != 0) {
        skci_node_log(n, SKC_LOG_ERROR, "cannot start a thread to close the "
            "link to node '%s'; it is left open", p->name);
    }
}

/* Work for a background thread on a link: dial url. */
struct link_job {
    skci_linkref *lr;
    char *url;
};

/* Starts fn on a background thread with a job holding a reference to lr
 * (call_lock held).  0, or -1 if nothing was started. */
static int
link_job_start(skc_node *n, skci_linkref *lr, const char *url,
    void *(*fn)(void *))
{
    struct link_job *job = calloc(1, sizeof(*job));
    if (job == NULL || (job->url = skci_strdup(url)) == NULL) {
        free(job);
        return -1;
    }
    job->lr = lr;
    atomic_fetch_add(&lr->refs, 1);
    if (skci_bg_run(n, fn, job) != 0) {
        atomic_fetch_sub(&lr->refs, 1); /* the peer still holds one */
        free(job->url);
        free(job);
        return -1;
    }
    return 0;
}

/* The last thing a job's thread does. */
static void
link_job_end(struct link_job *job)
{
    skc_node *n = job->lr->node;
    lr_release(job->lr);
    free(job->url);
    free(job);
    skci_bg_done(n);
}

static void start_hello(skc_node *n, skci_peer *p);

/* A dial failed (call_lock held): the peer's queued calls fail now, as
 * skynet's sender fails them when its connect fails. */
static void
dial_failed(skc_node *n, skci_peer *p, const char *detail)
{
    link_state_set(p, SKCI_LINK_NONE);
    free(p->last_error);
    p->last_error = skci_strdup(detail);
    char why[DETAIL_MAX + 64];
    snprintf(why, sizeof(why), "node '%s' unreachable: %s", p->name, detail);
    skci_node_log(n, SKC_LOG_WARN, "%s", why);
    fail_list(n, p->qhead, SKC_EUNREACHABLE, why);
}

static void *
dial_main(void *arg)
{
    struct link_job *job = arg;
    skci_linkref *lr = job->lr;
    skc_node *n = lr->node;
    int rc = skci_link_dial(lr->link, job->url);
    char detail[DETAIL_MAX];
    snprintf(detail, sizeof(detail), "%s", skc_last_error());
    pthread_mutex_lock(&n->call_lock);
    skci_peer *p = lr->peer;
    if (p->lr == lr && p->link_state == SKCI_LINK_DIALING) {
        if (rc == 0) {
            start_hello(n, p);
        } else {
            dial_failed(n, p, detail);
        }
    }
    pthread_mutex_unlock(&n->call_lock);
    link_job_end(job);
    return NULL;
}

static void *
push_dial_main(void *arg)
{
    struct link_job *job = arg;
    skci_linkref *lr = job->lr;
    if (skci_link_push_dial(lr->link, job->url) != 0) {
        skci_node_log(lr->node, SKC_LOG_WARN, "%s", skc_last_error());
    }
    link_job_end(job);
    return NULL;
}

/* Drops a reference; the last one frees the link (closed by then, so this
 * never blocks).  Never called with call_lock held. */
static void
lr_release(skci_linkref *lr)
{
    if (atomic_fetch_sub(&lr->refs, 1) == 1) {
        skci_link_free(lr->link);
        free(lr);
    }
}

/* Starts connecting peer p (call_lock held, map has an address). */
static void
start_dial(skc_node *n, skci_peer *p)
{
    if (p->lr == NULL) {
        skci_linkref *lr = calloc(1, sizeof(*lr));
        if (lr == NULL) {
            return;
        }
        skci_link_cfg cfg = {
            .max_recv = n->max_msg + SKCI_REP_FIXED,
            .push_backlog = 65536,
            .on_reply = on_reply,
            .on_pipe = on_pipe,
            .arg = lr,
        };
        lr->peer = p;
        lr->node = n;
        atomic_init(&lr->refs, 1);
        if (skci_link_create(&lr->link, &cfg) != 0) {
            free(lr);
            goto fail;
        }
        p->lr = lr;
    }
    link_state_set(p, SKCI_LINK_DIALING);
    if (link_job_start(n, p->lr, p->url, dial_main) != 0) {
        link_state_set(p, SKCI_LINK_NONE);
        goto fail;
    }
    return;
fail:
    fail_list(n, p->qhead, SKC_ENOMEM, "cannot start a connection");
}

/* Sends a hello on the peer's link (call_lock held). */
static void
start_hello(skc_node *n, skci_peer *p)
{
    link_state_set(p, SKCI_LINK_HELLO);
    static const char hello_target[] = "(hello)";
    skci_call *c = calloc(1, sizeof(*c) + sizeof(hello_target));
    if (c == NULL) {
        return;
    }
    memcpy(c->target, hello_target, sizeof(hello_target));
    size_t nl = strlen(n->name);
    skci_req r = { .kind = SKCI_KIND_HELLO, .max_reply = 65536 };
    size_t hdr = skci_wire_req_hdr_size(&r);
    r.len = (uint32_t)nl;
    if (skci_tmsg_alloc(&c->req, hdr + nl) != 0) {
        free(c);
        return;
    }
    c->mode = SKCI_MODE_INTERNAL;
    c->kind = SKCI_KIND_HELLO;
    c->peer = p;
    c->hn.idx = SKCI_HEAP_NONE;
    c->start = skci_now_ms();
    c->timeout_ms = HELLO_TIMEOUT_MS;
    c->hn.when = c->start + HELLO_TIMEOUT_MS;
    do {
        c->id = ++n->next_id & 0x7fffffffu;
    } while (c->id == 0 || skci_idmap_get(&n->calls, c->id) != NULL);
    r.id = c->id;
    uint8_t *b = skci_tmsg_body(c->req);
    skci_wire_req_put_hdr(b, &r);
    memcpy(b + hdr, n->name, nl);
    if (skci_idmap_set(&n->calls, c->id, c) != 0 ||
        skci_heap_push(&n->deadlines, &c->hn) != 0) {
        skci_idmap_del(&n->calls, c->id);
        call_free(c);
        return;
    }
    if (skci_heap_top(&n->deadlines) == &c->hn) {
        housekeeper_wake(n, c->hn.when);
    }
    p->hello = c;
    skci_tmsg *m = c->req;
    c->req = NULL;
    sent_add(p, c);
    skci_link_send(p->lr->link, m, HELLO_TIMEOUT_MS);
}

/* Builds the PUSH address: the host from the map address, the port the
 * peer announced (for TCP-like URLs); otherwise the announced URL. */
static char *
push_url_for(const char *map_url, const char *announced, size_t alen)
{
    const char *ms = strstr(map_url, "://");
    const char *as = memmem(announced, alen, "://", 3);
    const char *mport = strrchr(map_url, ':');
    const char *aport = NULL;
    for (size_t i = alen; i > 0; i--) {
        if (announced[i - 1] == ':') {
            aport = announced + i - 1;
            break;
        }
    }
    int tcpish = ms != NULL && as != NULL &&
        (size_t)(ms - map_url) == (size_t)(as - announced) &&
        strncmp(map_url, announced, (size_t)(ms - map_url)) == 0 &&
        (strncmp(map_url, "tcp", 3) == 0 || strncmp(map_url, "tls", 3) == 0 ||
            strncmp(map_url, "ws", 2) == 0) &&
        mport != NULL && mport > ms + 2 && aport != NULL && aport > as + 2;
    if (!tcpish) {
        char *u = malloc(alen + 1);
        if (u != NULL) {
            memcpy(u, announced, alen);
            u[alen] = '\0';
        }
        return u;
    }
    size_t hl = (size_t)(mport - map_url);
    size_t pl = alen - (size_t)(aport - announced);
    char *u = malloc(hl + pl + 1);
    if (u != NULL) {
        memcpy(u, map_url, hl);
        memcpy(u + hl, aport, pl);
        u[hl + pl] = '\0';
    }
    return u;
}

static void
hello_done(skc_node *n, skci_call *c)
{
    skci_peer *p = c->peer;
    if (p->hello != c) {
        return; /* the link it belonged to was replaced */
    }
    p->hello = NULL;
    if (p->lr == NULL || p->link_state != SKCI_LINK_HELLO) {
        return;
    }
    if (c->status == 0) {
        skci_hello h;
        char err[256];
        if (skci_wire_hello_decode(&h, c->data, c->len, err, sizeof(err)) ==
            0) {
            p->max_msg = h.max_msg < n->max_msg ? h.max_msg : n->max_msg;
            free(p->push_url);
            p->push_url = push_url_for(p->url, h.url, h.url_len);
            if (p->push_url != NULL) {
                link_job_start(n, p->lr, p->push_url, push_dial_main);
            }
            link_state_set(p, SKCI_LINK_UP);
            free(p->last_error);
            p->last_error = NULL;
            skci_node_log(n, SKC_LOG_INFO, "connected to node '%s' (%s)",
                p->name, peer_addr(p));
            peer_flush(n, p);
            return;
        }
        c->status = SKC_EPROTO;
        free(c->detail);
        c->detail = skci_strdup(err);
    }
    if (c->status == SKC_ECONNLOST || c->status == SKC_ETIMEDOUT) {
        if (p->lr->pipe != 0) {
            start_hello(n, p); /* connected but slow: ask again */
        } else {
            link_state_set(p, SKCI_LINK_RETRY);
        }
        return;
    }
    /* The peer answered but not as an skc node of our version. */
    char why[DETAIL_MAX + 64];
    snprintf(why, sizeof(why), "node '%s' (%s) refused the skc hello: %s",
        p->name, peer_addr(p), c->detail ? c->detail : "");
    skci_node_log(n, SKC_LOG_ERROR, "%s", why);
    free(p->last_error);
    p->last_error = skci_strdup(why);
    peer_detach_link(n, p);
    skci_call *q = p->qhead;
    while (q != NULL) {
        skci_call *next = q->next;
        call_finish(n, q, SKC_EPROTO, NULL, NULL, 0, why);
        q = next;
    }
}

static void
on_reply(void *arg, skci_tmsg *msg)
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
    pthread_mutex_lock(&n->call_lock);
    skci_call *c = rep.id <= 0x7fffffffu
        ? skci_idmap_get(&n->calls, (uint32_t)rep.id) : NULL;
    if (c == NULL || c->peer != lr->peer || c->state != SKCI_CALL_SENT) {
        pthread_mutex_unlock(&n->call_lock);
        skci_node_log(n, SKC_LOG_DEBUG, "reply from node '%s' for no pending "
            "call (id %llu): dropped", lr->peer->name,
            (unsigned long long)rep.id);
        skci_tmsg_free(msg);
        return;
    }
    skci_peer *p = c->peer;
    /* SKC_CALL_INLINE: call_finish leaves the completion to this thread
     * (no thread-local state: NNG's threads never exit, and a dlopen'ed
     * libskc would allocate TLS on each of them). */
    skci_call *inl = c->mode == SKCI_MODE_ASYNC && c->inline_cb &&
            n->workers > 0 ? c : NULL;
    c->inline_take = inl != NULL;
    if (rep.status == 0) {
        call_finish(n, c, 0, msg, rep.payload, rep.len, NULL);
    } else {
        int code = -(int)rep.status;
        if (rep.status > 0x7fff || strcmp(skc_errname(code), "EUNKNOWN") == 0) {
            code = SKC_EPROTO;
        }
        char detail[DETAIL_MAX];
        int tl = rep.len > 900 ? 900 : (int)rep.len;
        if (code == SKC_EHANDLER) {
            snprintf(detail, sizeof(detail), "node '%s' %s: %.*s", p->name,
                c->target, tl, (const char *)rep.payload);
        } else {
            snprintf(detail, sizeof(detail), "node '%s' (%s) %s: %.*s",
                p->name, peer_addr(p), c->target, tl,
                (const char *)rep.payload);
        }
        call_finish(n, c, code, NULL, NULL, 0, detail);
        skci_tmsg_free(msg);
    }
    pthread_mutex_unlock(&n->call_lock);
    if (inl != NULL) {
        if (skci_dispatch_inline_begin(n)) {
            skci_inline_depth++;
            skci_call_run_completion(n, &inl->task);
            skci_inline_depth--;
            skci_dispatch_inline_end(n);
        } else {
            skci_dispatch_push(n, &inl->task);
        }
    }
}

static void
on_pipe(void *arg, int up, uint32_t pipe_id)
{
    skci_linkref *lr = arg;
    skc_node *n = lr->node;
    pthread_mutex_lock(&n->call_lock);
    skci_peer *p = lr->peer;
    if (p->lr != lr) {
        pthread_mutex_unlock(&n->call_lock);
        return;
    }
    if (up) {
        if (pipe_id != lr->dead_pipe) {
            lr->pipe = pipe_id;
            if (p->link_state == SKCI_LINK_RETRY) {
                start_hello(n, p);
            }
        }
    } else if (lr->pipe != pipe_id) {
        /* REM before ADD (NNG may report them in that order). */
        lr->dead_pipe = pipe_id;
    } else {
        lr->pipe = 0;
        if (p->link_state == SKCI_LINK_UP ||
            p->link_state == SKCI_LINK_HELLO) {
            link_state_set(p, SKCI_LINK_RETRY);
            char why[DETAIL_MAX];
            snprintf(why, sizeof(why), "connection to node '%s' (%s) lost "
                "after the request was sent; the outcome is unknown",
                p->name, peer_addr(p));
            if (!atomic_load(&n->closing)) {
                skci_node_log(n, SKC_LOG_WARN, "connection to node '%s' (%s) "
                    "lost; reconnecting", p->name, peer_addr(p));
            }
            fail_list(n, p->shead, SKC_ECONNLOST, why);
        }
    }
    pthread_mutex_unlock(&n->call_lock);
}

/* ---- map changes ---- */

void
skci_peer_map_changed(skc_node *n, skci_peer *p)
{
    char why[DETAIL_MAX];
    if (p->map == SKCI_MAP_IS_DOWN) {
        snprintf(why, sizeof(why), "node '%s' was marked down (false) in "
            "the cluster map", p->name);
        peer_detach_link(n, p);
        fail_list(n, p->shead, SKC_ENODEDOWN, why);
        fail_list(n, p->qhead, SKC_ENODEDOWN, why);
        return;
    }
    if (p->map != SKCI_MAP_IS_ADDR) {
        return;
    }
    if (p->lr != NULL) {
        snprintf(why, sizeof(why), "the address of node '%s' changed to %s "
            "while the request was in flight; the outcome is unknown",
            p->name, p->url);
        skci_call *sent = p->shead;
        peer_detach_link(n, p);
        fail_list(n, sent, SKC_ECONNLOST, why);
        /* Calls that were not sent yet go to the new address. */
    }
    if (p->qhead != NULL) {
        start_dial(n, p);
    }
}

void
skci_nowaiting_changed(skc_node *n)
{
    if (!n->nowaiting) {
        return;
    }
    for (size_t i = 0; i < n->peers.nb; i++) {
        for (skci_strmap_ent *e = n->peers.b[i]; e; e = e->next) {
            skci_peer *p = e->val;
            if (p->map == SKCI_MAP_UNKNOWN && p->qhead != NULL) {
                char why[DETAIL_MAX];
                snprintf(why, sizeof(why), "node '%s' is not in the cluster "
                    "map (__nowaiting was turned on)", p->name);
                fail_list(n, p->qhead, SKC_ENONODE, why);
            }
        }
    }
}

/* ---- housekeeper: deadlines ---- */

static void
call_expire(skc_node *n, skci_call *c)
{
    skci_peer *p = c->peer;
    int32_t waited = (int32_t)(skci_now_ms() - c->start);
    if (c->state == SKCI_CALL_SENT) {
        call_fail(n, c, SKC_ETIMEDOUT, "node '%s' (%s) %s: no reply within "
            "%d ms", p->name, peer_addr(p), c->target, c->timeout_ms);
    } else if (p->map == SKCI_MAP_UNKNOWN) {
        call_fail(n, c, SKC_ENONODE, "node '%s' is not in the cluster map "
            "(waited %d ms for a reload to define it)", p->name, waited);
    } else {
        call_fail(n, c, SKC_EUNREACHABLE, "node '%s' (%s): no connection "
            "within %d ms%s%s", p->name, peer_addr(p), waited,
            p->last_error ? ": " : "", p->last_error ? p->last_error : "");
    }
}

static void *
housekeeper_main(void *arg)
{
    skc_node *n = arg;
    pthread_mutex_lock(&n->call_lock);
    while (!n->timer_stop) {
        int64_t now = skci_now_ms();
        skci_heap_node *top;
        while ((top = skci_heap_top(&n->deadlines)) != NULL &&
            top->when <= now) {
            skci_call *c = (skci_call *)((char *)top -
                offsetof(skci_call, hn));
            call_expire(n, c);
        }
        /* Sleep until the next deadline. */
        top = skci_heap_top(&n->deadlines);
        int64_t until = top != NULL ? top->when : INT64_MAX;
        n->timer_until = until;
        if (until == INT64_MAX) {
            pthread_cond_wait(&n->timer_cond, &n->call_lock);
        } else {
            skci_cond_wait_until(&n->timer_cond, &n->call_lock, until);
        }
        n->timer_until = INT64_MIN; /* awake: nobody needs to wake it */
    }
    pthread_mutex_unlock(&n->call_lock);
    return NULL;
}

/* ---- background threads ---- */

/* Joins the threads that have ended (each calls skci_bg_done as its last
 * act and takes no lock after it, so joining never waits long). */
static void
bg_join_finished(skci_bg *bg)
{
    pthread_mutex_lock(&bg->lk);
    pthread_t *v = bg->fin;
    size_t cnt = bg->nfin;
    bg->fin = NULL;
    bg->nfin = bg->capfin = 0;
    pthread_mutex_unlock(&bg->lk);
    for (size_t i = 0; i < cnt; i++) {
        pthread_join(v[i], NULL);
    }
    free(v);
}

int
skci_bg_run(skc_node *n, void *(*fn)(void *), void *arg)
{
    skci_bg *bg = &n->bg;
    bg_join_finished(bg);
    pthread_mutex_lock(&bg->lk);
    bg->count++;
    pthread_mutex_unlock(&bg->lk);
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg) != 0) {
        pthread_mutex_lock(&bg->lk);
        if (--bg->count == 0) {
            pthread_cond_broadcast(&bg->idle);
        }
        pthread_mutex_unlock(&bg->lk);
        return SKC_ENOMEM;
    }
    return 0;
}

void
skci_bg_done(skc_node *n)
{
    skci_bg *bg = &n->bg;
    pthread_mutex_lock(&bg->lk);
    if (bg->nfin == bg->capfin) {
        size_t nc = bg->capfin ? bg->capfin * 2 : 8;
        pthread_t *v = realloc(bg->fin, nc * sizeof(*v));
        if (v != NULL) {
            bg->fin = v;
            bg->capfin = nc;
        }
    }
    if (bg->nfin < bg->capfin) {
        bg->fin[bg->nfin++] = pthread_self();
    } else {
        pthread_detach(pthread_self()); /* no memory to be joined */
    }
    if (--bg->count == 0) {
        pthread_cond_broadcast(&bg->idle);
    }
    pthread_mutex_unlock(&bg->lk);
}

void
skci_bg_drain(skc_node *n)
{
    skci_bg *bg = &n->bg;
    pthread_mutex_lock(&bg->lk);
    while (bg->count > 0) {
        pthread_cond_wait(&bg->idle, &bg->lk);
    }
    pthread_mutex_unlock(&bg->lk);
    bg_join_finished(bg);
}

int
skci_calls_init(skc_node *n)
{
    pthread_mutex_init(&n->call_lock, NULL);
    skci_cond_init_mono(&n->timer_cond);
    n->timer_until = INT64_MAX;
    skci_idmap_init(&n->calls);
    skci_heap_init(&n->deadlines);
    skci_strmap_init(&n->peers);
    pthread_mutex_init(&n->bg.lk, NULL);
    pthread_cond_init(&n->bg.idle, NULL);
    if (pthread_create(&n->timer, NULL, housekeeper_main, n) != 0) {
        return skci_error(SKC_ENOMEM, "cannot start the timer thread");
    }
    return 0;
}

static void
collect_call(uint32_t id, void *val, void *arg)
{
    (void)id;
    skci_call ***pp = arg;
    **pp = val;
    (*pp)++;
}

void
skci_calls_shutdown(skc_node *n)
{
    pthread_mutex_lock(&n->call_lock);
    /* Fail everything still pending. */
    size_t cnt = n->calls.count;
    skci_call **v = cnt ? calloc(cnt, sizeof(*v)) : NULL;
    if (v != NULL) {
        skci_call **w = v;
        skci_idmap_each(&n->calls, collect_call, &w);
        for (size_t i = 0; i < cnt; i++) {
            call_fail(n, v[i], SKC_ECLOSED, "node '%s' is being destroyed",
                n->name);
        }
        free(v);
    }
    for (size_t i = 0; i < n->peers.nb; i++) {
        for (skci_strmap_ent *e = n->peers.b[i]; e; e = e->next) {
            peer_detach_link(n, e->val);
        }
    }
    n->timer_stop = 1;
    pthread_cond_signal(&n->timer_cond);
    pthread_mutex_unlock(&n->call_lock);
    pthread_join(n->timer, NULL);
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
    free(p);
}

void
skci_calls_fini(skc_node *n)
{
    skci_strmap_each(&n->peers, free_peer, NULL);
    skci_strmap_fini(&n->peers);
    skci_idmap_fini(&n->calls);
    skci_heap_fini(&n->deadlines);
    free(n->bg.fin);
    pthread_cond_destroy(&n->bg.idle);
    pthread_mutex_destroy(&n->bg.lk);
    pthread_cond_destroy(&n->timer_cond);
    pthread_mutex_destroy(&n->call_lock);
}

/* ---- the API: call, call_async, send, query ---- */

static int
check_peer_name(const char *peer)
{
    if (peer == NULL || peer[0] == '\0') {
        return skci_error(SKC_EINVAL, "node name is empty");
    }
    if (strlen(peer) > SKCI_NAME_MAX) {
        return skci_error(SKC_EINVAL, "node name longer than %d bytes",
            SKCI_NAME_MAX);
    }
    return 0;
}

/* Builds a call and its frame; nothing is shared yet. */
static int
call_new(skc_node *n, skci_call **out, int kind, int mode, const char *peer,
    const char *target, const void *data, size_t len, int32_t timeout_ms)
{
    int rc;
    skci_target t;
    if ((rc = check_peer_name(peer)) != 0) {
        return rc;
    }
    if ((rc = skci_target_parse(&t, target, kind == SKCI_KIND_QUERY)) != 0) {
        return rc;
    }
    if (kind == SKCI_KIND_QUERY && t.type == SKCI_TARGET_HANDLE) {
        return skci_error(SKC_EINVAL, "query takes a name, not a handle");
    }
    if (data == NULL && len > 0) {
        return skci_error(SKC_EINVAL, "data is NULL with length %zu", len);
    }
    if (len > n->max_msg) {
        return skci_error(SKC_ETOOBIG, "payload of %zu bytes exceeds this "
            "node's limit of %u bytes (max_msg_size)", len, n->max_msg);
    }
    if (timeout_ms < 0) {
        return skci_error(SKC_EINVAL, "timeout_ms is negative");
    }
    char tname[SKCI_NAME_MAX + 2];
    size_t tlen = skci_target_format(&t, tname, sizeof(tname));
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
    *out = c;
    return 0;
}

/* Registers and routes a new call.  On error the call is freed and the
 * error returned (the callback of an async call never runs). */
static int
call_submit(skc_node *n, skci_call *c, const char *peer)
{
    int rc = 0;
    pthread_mutex_lock(&n->call_lock);
    if (atomic_load(&n->closing)) {
        rc = skci_error(SKC_ECLOSED, "node '%s' is closing", n->name);
        goto fail;
    }
    if (n->inflight >= n->max_inflight) {
        rc = skci_error(SKC_ELIMIT, "%u calls already pending on node '%s' "
            "(max_inflight)", n->inflight, n->name);
        goto fail;
    }
    skci_peer *p = skci_peer_get(n, peer, 1);
    if (p == NULL) {
        rc = skci_error(SKC_ENOMEM, "peer");
        goto fail;
    }
    if (p->map == SKCI_MAP_IS_DOWN) {
        rc = skci_error(SKC_ENODEDOWN, "node '%s' is down (false in the "
            "cluster map)", peer);
        goto fail;
    }
    if (p->map == SKCI_MAP_UNKNOWN && n->nowaiting) {
        rc = skci_error(SKC_ENONODE, "node '%s' is not in the cluster map "
            "(__nowaiting is set)", peer);
        goto fail;
    }
    if (p->link_state == SKCI_LINK_UP && c->payload_len > p->max_msg) {
        rc = skci_error(SKC_ETOOBIG, "node '%s' accepts messages of at most "
            "%u bytes; this one has %zu", peer, p->max_msg, c->payload_len);
        goto fail;
    }
    do {
        c->id = ++n->next_id & 0x7fffffffu;
    } while (c->id == 0 || skci_idmap_get(&n->calls, c->id) != NULL);
    skci_put_u64(skci_tmsg_body(c->req) + 16, c->id);
    if (skci_idmap_set(&n->calls, c->id, c) != 0 ||
        skci_heap_push(&n->deadlines, &c->hn) != 0) {
        skci_idmap_del(&n->calls, c->id);
        rc = skci_error(SKC_ENOMEM, "call table");
        goto fail;
    }
    if (skci_heap_top(&n->deadlines) == &c->hn) {
        housekeeper_wake(n, c->hn.when);
    }
    n->inflight++;
    c->peer = p;
    if (p->map == SKCI_MAP_UNKNOWN) {
        if (!p->warned_waiting) {
            p->warned_waiting = 1;
            skci_node_log(n, SKC_LOG_INFO, "waiting for cluster node '%s' "
                "(not in the cluster map yet)", peer);
        }
        queue_append(p, c);
    } else if (p->link_state == SKCI_LINK_UP) {
        call_transmit(n, p, c);
    } else {
        queue_append(p, c);
        if (p->link_state == SKCI_LINK_NONE) {
            start_dial(n, p);
        }
    }
    pthread_mutex_unlock(&n->call_lock);
    return 0;
fail:
    pthread_mutex_unlock(&n->call_lock);
    call_free(c);
    return rc;
}

/* Waits for a sync call and takes its result (frees c). */
static int
call_wait(skc_node *n, skci_call *c, skci_tmsg **rep, const uint8_t **data,
    size_t *len)
{
    pthread_mutex_lock(&n->call_lock);
    while (!c->done) {
        pthread_cond_wait(&c->cond, &n->call_lock);
    }
    pthread_mutex_unlock(&n->call_lock);
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
    call_free(c);
    return rc;
}

/* Runs a call or query to the end on this thread.  On 0 the reply frame
 * (*rep) owns *data. */
static int
call_sync(skc_node *node, int kind, const char *peer, const char *target,
    const void *data, size_t len, int32_t timeout_ms, skci_tmsg **rep,
    const uint8_t **d, size_t *l)
{
    if (skci_inline_depth > 0) {
        return skci_error(SKC_EBUSY, "a blocking %s to node '%s' from an "
            "inline handler or callback of node '%s' would stall the thread "
            "that receives replies; use the async form",
            kind == SKCI_KIND_QUERY ? "query" : "call", peer ? peer : "?",
            skci_current_node ? skci_current_node->name : "?");
    }
    skci_call *c;
    int rc = call_new(node, &c, kind, SKCI_MODE_SYNC, peer, target, data,
        len, timeout_ms);
    if (rc == 0 && (rc = call_submit(node, c, peer)) == 0) {
        rc = call_wait(node, c, rep, d, l);
    }
    return rc;
}

int
skc_node_call(skc_node *node, void **out, size_t *out_len, const char *peer,
    const char *target, const void *data, size_t len, int32_t timeout_ms)
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
    if (out == NULL) {
        return skci_error(SKC_EINVAL, "out is NULL");
    }
    skci_tmsg *rep = NULL;
    const uint8_t *d = NULL;
    size_t l = 0;
    if ((rc = call_sync(node, SKCI_KIND_CALL, peer, target, data, len,
             timeout_ms, &rep, &d, &l)) != 0) {
        return rc;
    }
    /* Hand the reply out in place: the 20-byte reply header in front of
     * the payload becomes skc_free's block header (magic + message). */
    uint8_t *payload = (uint8_t *)d;
    uint64_t magic = SKCI_UMAGIC_MSG;
    memcpy(payload - 16, &magic, sizeof(magic));
    memcpy(payload - 8, &rep, sizeof(rep));
    *out = payload;
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
    if ((flags & ~(uint32_t)SKC_CALL_INLINE) != 0) {
        return skci_error(SKC_EINVAL, "unknown call flags 0x%x",
            (unsigned)(flags & ~(uint32_t)SKC_CALL_INLINE));
    }
    skci_call *c;
    if ((rc = call_new(node, &c, SKCI_KIND_CALL, SKCI_MODE_ASYNC, peer,
             target, data, len, timeout_ms)) != 0) {
        return rc;
    }
    c->cb = cb;
    c->arg = arg;
    c->inline_cb = (flags & SKC_CALL_INLINE) != 0;
    return call_submit(node, c, peer);
}

int
skc_node_query_async(skc_node *node, const char *peer, const char *name,
    int32_t timeout_ms, skc_query_fn cb, void *arg)
{
    int rc;
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    if (cb == NULL) {
        return skci_error(SKC_EINVAL, "callback is NULL");
    }
    skci_call *c;
    if ((rc = call_new(node, &c, SKCI_KIND_QUERY, SKCI_MODE_ASYNC, peer,
             name, NULL, 0, timeout_ms)) != 0) {
        return rc;
    }
    c->qcb = cb;
    c->arg = arg;
    return call_submit(node, c, peer);
}

void
skci_call_run_completion(skc_node *n, skci_task *t)
{
    skci_call *c = (skci_call *)((char *)t - offsetof(skci_call, task));
    skc_node *prev = skci_current_node;
    skci_current_node = n;
    if (c->status != 0) {
        skci_error_set_text(c->detail);
    } else {
        skci_error_clear();
    }
    if (c->qcb != NULL) {
        uint32_t h = 0;
        int status = c->status;
        if (status == 0 && c->len != 4) {
            status = SKC_EPROTO;
            free(c->detail);
            c->detail = skci_strdup("a query was answered with a payload "
                "that is not 4 bytes");
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
    call_free(c);
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
            pthread_mutex_lock(&node->call_lock);
            skci_peer *p = skci_peer_get(node, peer, 0);
            if (p != NULL && p->link_state == SKCI_LINK_UP &&
                p->lr != NULL && p->qhead == NULL && len <= p->max_msg &&
                !atomic_load(&node->closing)) {
                rc = skci_link_push(p->lr->link, m);
                pthread_mutex_unlock(&node->call_lock);
                return rc;
            }
            pthread_mutex_unlock(&node->call_lock);
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
    if ((rc = call_sync(node, SKCI_KIND_QUERY, peer, name, NULL, 0,
             timeout_ms, &rep, &d, &l)) != 0) {
        return rc;
    }
    if (l != 4) {
        skci_tmsg_free(rep);
        return skci_error(SKC_EPROTO, "node '%s' answered a query with %zu "
            "bytes instead of 4", peer, l);
    }
    *out = skci_get_u32(d);
    skci_tmsg_free(rep);
    return 0;
}

/* ---- serving: incoming frames ---- */

static void
route_link(skc_node *n, skci_route *r)
{
    pthread_mutex_lock(&n->serve_lock);
    r->prev = NULL;
    r->next = n->serving;
    if (n->serving != NULL) {
        n->serving->prev = r;
    }
    n->serving = r;
    pthread_mutex_unlock(&n->serve_lock);
}

/* Sends the reply frame (consumed) for route r and frees r.  Returns
 * SKC_ECLOSED if the node is gone (frame dropped). */
static int
route_answer(skci_route *r, skci_tmsg *frame)
{
    skc_node *n = r->node;
    int rc = 0;
    pthread_mutex_lock(&n->serve_lock);
    skci_rctx *rc_ = r->rctx;
    if (rc_ != NULL) {
        r->rctx = NULL;
        if (r->prev != NULL) {
            r->prev->next = r->next;
        } else {
            n->serving = r->next;
        }
        if (r->next != NULL) {
            r->next->prev = r->prev;
        }
        skci_server_reply(rc_, frame);
    } else {
        skci_tmsg_free(frame);
        rc = skci_error(SKC_ECLOSED, "node '%s' was destroyed before the "
            "reply", n->name);
    }
    pthread_mutex_unlock(&n->serve_lock);
    free(r);
    return rc;
}

static int
route_answer_error(skci_route *r, int code, const char *text)
{
    /* Without memory for a frame (f == NULL) the request is dropped and
     * the caller still gets an answer: its deadline. */
    skci_tmsg *f = reply_frame((uint32_t)-code, r->id, text, strlen(text));
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
    if (m->route != NULL) {
        char why[DETAIL_MAX];
        snprintf(why, sizeof(why), "service %s on node '%s' returned without "
            "replying", m->target, m->node->name);
        route_answer_error(m->route, SKC_ENOREPLY, why);
        m->route = NULL;
    }
    skci_tmsg_free(m->frame);
    free(m);
}

void
skci_detach_routes(skc_node *n)
{
    pthread_mutex_lock(&n->serve_lock);
    for (skci_route *r = n->serving; r; r = r->next) {
        r->rctx = NULL;
    }
    n->serving = NULL;
    pthread_mutex_unlock(&n->serve_lock);
}

static void
answer_now(skci_rctx *rc, skci_tmsg *frame)
{
    skci_server_reply(rc, frame); /* NULL frame: drop, free the context */
}

void
skci_on_request(void *arg, skci_rctx *rc, skci_tmsg *msg)
{
    skc_node *n = arg;
    skci_req req;
    char err[256];
    if (skci_wire_req_decode(&req, skci_tmsg_body(msg), skci_tmsg_len(msg),
            err, sizeof(err)) != 0) {
        skci_node_log(n, SKC_LOG_WARN, "rejected a bad request frame: %s",
            err);
        skci_tmsg_free(msg);
        answer_now(rc, error_frame(SKC_EPROTO, 0, "node '%s' rejected the "
            "frame: %s", n->name, err));
        return;
    }
    char tname[SKCI_NAME_MAX + 2];
    size_t tlen = skci_target_format(&req.target, tname, sizeof(tname));
    skci_service *s;
    switch (req.kind) {
    case SKCI_KIND_PING:
        skci_tmsg_free(msg);
        answer_now(rc, reply_frame(0, req.id, NULL, 0));
        return;
    case SKCI_KIND_HELLO: {
        const char *url = n->server ? skci_server_pull_url(n->server) : NULL;
        if (url == NULL) {
            url = "";
        }
        size_t nl = strlen(n->name), ul = strlen(url);
        uint8_t body[4 + 2 + SKCI_NAME_MAX + 2 + 1024];
        if (ul > 1024) {
            ul = 1024;
        }
        skci_wire_hello_put(body, n->max_msg, n->name, nl, url, ul);
        skci_tmsg_free(msg);
        answer_now(rc, reply_frame(0, req.id, body,
            skci_wire_hello_size(nl, ul)));
        return;
    }
    case SKCI_KIND_QUERY:
        s = skci_registry_find(n, &req.target);
        skci_tmsg_free(msg);
        if (s == NULL) {
            answer_now(rc, error_frame(SKC_ENOSERVICE, req.id, "node '%s' has "
                "no name %s", n->name, tname));
        } else {
            uint8_t h[4];
            skci_put_u32(h, s->handle);
            skci_service_release(n, s);
            answer_now(rc, reply_frame(0, req.id, h, 4));
        }
        return;
    case SKCI_KIND_CALL:
        break;
    default:
        skci_tmsg_free(msg);
        answer_now(rc, error_frame(SKC_EPROTO, req.id, "node '%s': a frame "
            "of kind %u cannot be sent as a request", n->name, req.kind));
        return;
    }
    if (req.target.type == SKCI_TARGET_NONE) {
        skci_tmsg_free(msg);
        answer_now(rc, error_frame(SKC_EPROTO, req.id, "node '%s': a call "
            "needs a target", n->name));
        return;
    }
    skc_msg *m = calloc(1, sizeof(*m) + tlen + 1);
    skci_route *r = calloc(1, sizeof(*r) + tlen + 1);
    if (m == NULL || r == NULL) {
        free(m);
        free(r);
        skci_tmsg_free(msg);
        answer_now(rc, error_frame(SKC_ENOMEM, req.id, "node '%s': out of "
            "memory", n->name));
        return;
    }
    m->node = n;
    m->kind = SKC_MSG_CALL;
    m->frame = msg;
    m->payload = req.payload;
    m->len = req.len;
    m->deadline = req.timeout_ms ? skci_now_ms() + req.timeout_ms : 0;
    memcpy(m->target, tname, tlen + 1);
    r->node = n;
    r->rctx = rc;
    r->id = req.id;
    r->max_reply = req.max_reply;
    memcpy(r->target, tname, tlen + 1);
    m->route = r;
    route_link(n, r);
    if (skci_registry_deliver(n, &req.target, m) != 0) {
        char why[SKCI_NAME_MAX + 300];
        snprintf(why, sizeof(why), "node '%s' has no service %s", n->name,
            tname);
        skci_msg_drop(m, SKC_ENOSERVICE, why);
    }
}

void
skci_on_push(void *arg, skci_tmsg *msg)
{
    skc_node *n = arg;
    skci_req req;
    char err[256];
    int bad = skci_wire_req_decode(&req, skci_tmsg_body(msg),
        skci_tmsg_len(msg), err, sizeof(err));
    if (bad == 0 && req.kind != SKCI_KIND_SEND) {
        snprintf(err, sizeof(err), "a frame of kind %u is not a send",
            req.kind);
        bad = SKC_EPROTO;
    }
    if (bad != 0) {
        skci_node_log(n, SKC_LOG_WARN, "dropped a bad one-way frame: %s",
            err);
        skci_tmsg_free(msg);
        return;
    }
    char tname[SKCI_NAME_MAX + 2];
    size_t tlen = skci_target_format(&req.target, tname, sizeof(tname));
    skc_msg *m = calloc(1, sizeof(*m) + tlen + 1);
    if (m == NULL) {
        skci_tmsg_free(msg);
        return;
    }
    m->node = n;
    m->kind = SKC_MSG_SEND;
    m->frame = msg;
    m->payload = req.payload;
    m->len = req.len;
    memcpy(m->target, tname, tlen + 1);
    if (skci_registry_deliver(n, &req.target, m) != 0) {
        skci_node_log(n, SKC_LOG_WARN, "dropped a send to %s: no such "
            "service on node '%s'", tname, n->name);
        skci_msg_drop(m, SKC_ENOSERVICE, "no such service");
    }
}

/* ---- replies from handlers ---- */

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
        return skci_error(SKC_ESTATE, "this call was already answered or "
            "deferred");
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
        snprintf(why, sizeof(why), "the reply of %zu bytes from %s on node "
            "'%s' exceeds the caller's limit of %u bytes", len, r->target,
            r->node->name, r->max_reply);
        route_answer_error(r, SKC_ETOOBIG, why);
        return skci_error(SKC_ETOOBIG, "%s", why);
    }
    skci_tmsg *f = reply_frame(0, r->id, data, len);
    if (f == NULL) {
        route_answer_error(r, SKC_ENOMEM, "out of memory for the reply");
        return skci_error(SKC_ENOMEM, "reply of %zu bytes", len);
    }
    return route_answer(r, f);
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
        return route_answer(r, f);
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
    char why[DETAIL_MAX];
    snprintf(why, sizeof(why), "service %s on node '%s' abandoned the reply",
        reply->route->target, n->name);
    route_answer_error(reply->route, SKC_ENOREPLY, why);
    reply_release(reply, n);
}
