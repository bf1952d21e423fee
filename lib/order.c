/* order.c -- an incoming call handled after the sends its caller issued
 * before it (docs/PROTOCOL.md, "Order of sends and calls").
 *
 * A sender numbers its sends to this node on a stream (a random id it
 * picks at each HELLO) and tells each call how many sends of that stream
 * came before it.  Sends arrive on the PULL socket, calls on REP contexts,
 * so a call can arrive first: it is held here (its REP context stays
 * open) until the sends before it are in their services' mailboxes
 * (skci_order_sent, called by serve.c after each send's delivery), then
 * it goes to its own service's mailbox.  A send lost with its connection
 * never comes, so the wait is bounded: ORDER_WAIT_MS, or a quarter of the
 * call's remaining deadline when that is shorter; the call then goes on
 * without it, and one WARN line per stream says so.
 *
 * The held calls of a stream go on in arrival order.  `releasing` makes
 * the thread that delivers them the only one doing so; a call arriving
 * meanwhile is queued behind them, so it cannot overtake them.
 *
 * Bounds: at most ORDER_MAX_STREAMS streams; a stream with no held call
 * is forgotten ORDER_IDLE_MS after its last send, or the oldest first
 * when the table is full (a sender's call waits for no send once its last
 * send is SKCI_ORDER_SENDER_IDLE_MS old, so a forgotten stream is never
 * waited for).  Held calls are bounded by max_serving: each holds a REP
 * context.
 *
 * The waiter thread, which ends the bounded waits, runs on the node's bg
 * set: started at the first held call, ended by skci_order_close
 * (destroy), joined with the bg set.
 */
#include "core.h"
#include "error.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define ORDER_WAIT_MS 500
#define ORDER_IDLE_MS 120000
#define ORDER_MAX_STREAMS 4096

typedef struct order_held {
    skci_lnode link; /* on its stream's held list */
    skc_msg *m;
    skci_target t; /* its name points into m's frame */
    uint64_t need; /* sends of the stream before it */
    int64_t since; /* ms: when it arrived */
    int64_t until; /* ms: when it goes on regardless */
} order_held;

struct skci_ostream {
    uint64_t id;
    uint64_t seen;       /* the highest send number put in a mailbox */
    int64_t last;        /* ms: its last send or held call */
    skci_list held;      /* order_held, in arrival order */
    int releasing;       /* a thread is delivering its held calls */
    skci_ostream *hnext; /* hash chain */
    skci_lnode age;      /* on o->ages */
};

void
skci_order_init(skc_node *n)
{
    skci_order *o = &n->order;
    pthread_mutex_init(&o->lock, NULL);
    skci_cond_init_mono(&o->cond);
    o->wake_at = INT64_MIN;
}

/* The bucket of id among nb (a power of two). */
static size_t
order_bucket(uint64_t id, size_t nb)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ULL) >> 32) & (nb - 1);
}

static skci_ostream *
order_find(const skci_order *o, uint64_t id)
{
    if (o->nb == 0) {
        return NULL;
    }
    skci_ostream *st = o->b[order_bucket(id, o->nb)];
    while (st != NULL && st->id != id) {
        st = st->hnext;
    }
    return st;
}

#define STREAM_OF(e) SKCI_LIST_ENTRY(e, skci_ostream, age)
#define HELD_OF(e) SKCI_LIST_ENTRY(e, order_held, link)

/* The first held call of st (lock held); NULL when none. */
static order_held *
held_first(const skci_ostream *st)
{
    return st->held.head != NULL ? HELD_OF(st->held.head) : NULL;
}

static void
order_touch(skci_order *o, skci_ostream *st, int64_t now)
{
    st->last = now;
    if (o->ages.tail != &st->age) {
        skci_list_remove(&o->ages, &st->age);
        skci_list_append(&o->ages, &st->age);
    }
}

static void
order_forget(skci_order *o, skci_ostream *st)
{
    skci_ostream **pp = &o->b[order_bucket(st->id, o->nb)];
    while (*pp != st) {
        pp = &(*pp)->hnext;
    }
    *pp = st->hnext;
    skci_list_remove(&o->ages, &st->age);
    o->count--;
    free(st);
}

static int
order_grow(skci_order *o)
{
    size_t nb = o->nb ? o->nb * 2 : 64;
    skci_ostream **b = calloc(nb, sizeof(*b));
    if (b == NULL) {
        return SKC_ENOMEM;
    }
    for (size_t i = 0; i < o->nb; i++) {
        skci_ostream *st = o->b[i];
        while (st != NULL) {
            skci_ostream *next = st->hnext;
            size_t k = order_bucket(st->id, nb);
            st->hnext = b[k];
            b[k] = st;
            st = next;
        }
    }
    free(o->b);
    o->b = b;
    o->nb = nb;
    return 0;
}

/* A new stream's state, after forgetting idle ones; NULL when the table
 * is full of streams with held calls, or without memory. */
static skci_ostream *
order_new(skci_order *o, uint64_t id, int64_t now)
{
    skci_lnode *e = o->ages.head;
    while (e != NULL &&
        (o->count >= ORDER_MAX_STREAMS ||
            now - STREAM_OF(e)->last > ORDER_IDLE_MS)) {
        skci_lnode *next = e->next;
        skci_ostream *st = STREAM_OF(e);
        if (skci_list_empty(&st->held) && !st->releasing) {
            order_forget(o, st);
        }
        e = next;
    }
    if (o->count >= ORDER_MAX_STREAMS ||
        (o->count >= o->nb && order_grow(o) != 0)) {
        return NULL;
    }
    skci_ostream *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    st->id = id;
    st->last = now;
    size_t k = order_bucket(id, o->nb);
    st->hnext = o->b[k];
    o->b[k] = st;
    skci_list_append(&o->ages, &st->age);
    o->count++;
    return st;
}

/* Delivers the held calls of st whose sends have arrived, in order
 * (lock held, st not being released; the lock is dropped meanwhile). */
static void
order_release(skc_node *n, skci_ostream *st)
{
    skci_order *o = &n->order;
    st->releasing = 1;
    while (!skci_list_empty(&st->held) && held_first(st)->need <= st->seen) {
        skci_list batch = { NULL, NULL, 0 };
        while (
            !skci_list_empty(&st->held) && held_first(st)->need <= st->seen) {
            skci_list_append(&batch, skci_list_pop(&st->held));
        }
        pthread_mutex_unlock(&o->lock);
        skci_lnode *e;
        while ((e = skci_list_pop(&batch)) != NULL) {
            order_held *h = HELD_OF(e);
            skci_serve_call(n, &h->t, h->m);
            free(h);
        }
        pthread_mutex_lock(&o->lock);
    }
    st->releasing = 0;
}

void
skci_order_sent(skc_node *n, uint64_t stream, uint64_t seq)
{
    skci_order *o = &n->order;
    int64_t now = skci_now_ms();
    pthread_mutex_lock(&o->lock);
    skci_ostream *st = order_find(o, stream);
    if (st == NULL) {
        st = order_new(o, stream, now);
    }
    if (st != NULL) {
        if (seq > st->seen) {
            st->seen = seq;
        }
        order_touch(o, st, now);
        if (!skci_list_empty(&st->held) && !st->releasing &&
            held_first(st)->need <= st->seen) {
            order_release(n, st);
        }
    }
    pthread_mutex_unlock(&o->lock);
}

/* The waiter thread: ends the waits that reached their bound. */
static void *
order_main(void *arg)
{
    skc_node *n = arg;
    skci_order *o = &n->order;
    pthread_mutex_lock(&o->lock);
    while (!o->stop) {
        int64_t now = skci_now_ms(), next = INT64_MAX;
        char warn[SKCI_NAME_MAX + 400];
        skci_ostream *due = NULL;
        warn[0] = '\0';
        for (skci_lnode *e = o->ages.head; e != NULL; e = e->next) {
            skci_ostream *st = STREAM_OF(e);
            if (skci_list_empty(&st->held)) {
                continue;
            }
            uint64_t need = 0;
            for (skci_lnode *he = st->held.head; he != NULL; he = he->next) {
                order_held *h = HELD_OF(he);
                if (h->until <= now) {
                    need = h->need > need ? h->need : need;
                } else if (h->until < next) {
                    next = h->until;
                }
            }
            if (need > st->seen) {
                /* Given up: the missing sends count as lost, so the calls
                 * after them do not wait for them again. */
                snprintf(warn, sizeof(warn),
                    "node '%s': a call to %s waited %" PRId64
                    " ms for %" PRIu64
                    " earlier send(s) of its caller (stream %016" PRIx64
                    ") that did not arrive (lost with a connection?); it runs without them",
                    n->name, held_first(st)->m->target,
                    now - held_first(st)->since, need - st->seen, st->id);
                st->seen = need;
            }
            if (!st->releasing && held_first(st)->need <= st->seen) {
                due = st;
                break;
            }
            if (warn[0] != '\0') {
                break;
            }
        }
        if (due != NULL) {
            order_release(n, due);
        }
        if (warn[0] != '\0') {
            pthread_mutex_unlock(&o->lock);
            skci_node_log(n, SKC_LOG_WARN, "%s", warn);
            pthread_mutex_lock(&o->lock);
        }
        if (due != NULL || warn[0] != '\0') {
            continue; /* the table may have changed meanwhile */
        }
        o->wake_at = next;
        if (next == INT64_MAX) {
            pthread_cond_wait(&o->cond, &o->lock);
        } else {
            skci_cond_wait_until(&o->cond, &o->lock, next);
        }
        o->wake_at = INT64_MIN; /* awake: it scans again before sleeping */
    }
    pthread_mutex_unlock(&o->lock);
    skci_bg_done(&n->bg);
    return NULL;
}

void
skci_order_call(skc_node *n, const skci_target *t, skc_msg *m, uint64_t stream,
    uint64_t need, uint32_t timeout_ms)
{
    skci_order *o = &n->order;
    if (need == 0) {
        skci_serve_call(n, t, m);
        return;
    }
    int64_t now = skci_now_ms();
    pthread_mutex_lock(&o->lock);
    skci_ostream *st = order_find(o, stream);
    if (st != NULL && skci_list_empty(&st->held) && !st->releasing &&
        st->seen >= need) {
        pthread_mutex_unlock(&o->lock); /* the usual case: nothing to wait */
        skci_serve_call(n, t, m);
        return;
    }
    if (st == NULL) {
        st = order_new(o, stream, now);
    }
    order_held *h = st != NULL && !o->stop ? malloc(sizeof(*h)) : NULL;
    if (h != NULL && !o->thread) {
        if (skci_bg_run(&n->bg, order_main, n) == 0) {
            o->thread = 1;
        } else {
            free(h);
            h = NULL;
        }
    }
    if (h == NULL) {
        /* Cannot hold it (no memory, table full, shutting down): it goes
         * on unordered. */
        pthread_mutex_unlock(&o->lock);
        skci_serve_call(n, t, m);
        return;
    }
    int64_t wait = ORDER_WAIT_MS;
    if (timeout_ms > 0 && timeout_ms / 4 < wait) {
        wait = timeout_ms / 4 > 0 ? timeout_ms / 4 : 1;
    }
    h->m = m;
    h->t = *t;
    h->need = need;
    h->since = now;
    h->until = now + wait;
    skci_list_append(&st->held, &h->link);
    order_touch(o, st, now);
    if (!st->releasing && held_first(st)->need <= st->seen) {
        order_release(n, st);
    } else if (h->until < o->wake_at) {
        pthread_cond_signal(&o->cond);
    }
    pthread_mutex_unlock(&o->lock);
}

void
skci_order_close(skc_node *n)
{
    skci_order *o = &n->order;
    skci_list all = { NULL, NULL, 0 };
    pthread_mutex_lock(&o->lock);
    o->stop = 1;
    pthread_cond_signal(&o->cond);
    for (skci_lnode *e = o->ages.head; e != NULL; e = e->next) {
        skci_list_move(&all, &STREAM_OF(e)->held);
    }
    pthread_mutex_unlock(&o->lock);
    skci_lnode *e;
    while ((e = skci_list_pop(&all)) != NULL) {
        order_held *h = HELD_OF(e);
        skci_msg_drop(h->m, SKC_ECLOSED, "the node is shutting down");
        free(h);
    }
}

void
skci_order_fini(skc_node *n)
{
    skci_order *o = &n->order;
    while (!skci_list_empty(&o->ages)) {
        order_forget(o, STREAM_OF(o->ages.head));
    }
    free(o->b);
    o->b = NULL;
    o->nb = 0;
    pthread_cond_destroy(&o->cond);
    pthread_mutex_destroy(&o->lock);
}
