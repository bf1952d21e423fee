/* bench_raw.c -- the baseline: the same services and cases written the
 * plain way in NNG 1.5.2, with no skc in between.
 *
 * Server: a cooked REP socket served by a fixed pool of contexts, each with
 * its own aio (recv -> answer -> recv), and a PULL socket drained by one
 * thread with blocking receives.  Client: a cooked REQ socket; K contexts
 * with callback aios for K calls in flight, blocking send/recv for the
 * 1-in-flight latency, a PUSH socket with blocking sends.
 *
 * With no names to route on, the first payload byte says what to do:
 * 'e' echo, 'a' empty reply, 'h' hold (never answer), '?' stats.  skc
 * routes on the target name in its frame instead.
 *
 * Diagnostic variants (--variant, call case only; not in the table, used
 * to take the skc/raw gap apart in docs/PERFORMANCE.md):
 *   raw_server --variant hop   requests are handed to 2 worker threads
 *                              (mutex + condvar queue) that send the reply,
 *                              and one-way messages to 2 threads that count
 *                              them, as skc hands both to its handlers
 *   raw_client --variant hop   completions are handed to 2 worker threads
 *                              that issue the next request
 *   --variant hopspin          as hop, but an idle worker polls the queue
 *                              for 50 us before it sleeps
 *   raw_client --variant xreq  a raw-mode REQ socket, request id in the
 *                              header, one receive aio draining with
 *                              non-blocking receives, non-blocking sends:
 *                              the pattern of skc's client link
 *   --variant wrecv            raw-mode sockets; 2 threads per socket (one
 *                              on PULL) receive with callback-less aios
 *                              (nng_aio_wait) and answer, count or issue
 *                              the next request themselves: could skc's
 *                              workers receive without a hand-off? (No:
 *                              see docs/PERFORMANCE.md.)
 */
#include "bench.h"

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define RAW_MAXSZ (32u * 1024 * 1024) /* RECVMAXSZ: always set it */
#define RAW_AIO_TIMEOUT_MS 120000

/* Same socket buffers as skc's link (lib/transport.c), so that a
 * difference in the results is code, not configuration. */
#define RAW_PUSH_SENDBUF 1024
#define RAW_PULL_RECVBUF 1024

const char *
bench_nng_version(void)
{
    return nng_version();
}

static void
raw_fail(const char *what, int rv)
{
    fprintf(stderr, "skc_bench raw: %s: %s\n", what, nng_strerror(rv));
}

/* ---------------------------------------------------------------------- */
/* Handoff queue (diagnostic variants): work items run on worker threads   */
/* ---------------------------------------------------------------------- */

typedef struct hop_item {
    struct hop_item *next;
} hop_item;

typedef struct hopq {
    pthread_mutex_t lk;
    pthread_cond_t cv;
    hop_item *head, *tail;
    int stop;
    void (*fn)(hop_item *);
    pthread_t thr[2];
    int nthr;
    int64_t spin_ns; /* variant hopspin */
    atomic_int nq;   /* items queued, read while spinning */
    int sleepers;
} hopq;

static void *
hop_main(void *arg)
{
    hopq *q = arg;
    pthread_mutex_lock(&q->lk);
    for (;;) {
        hop_item *it = q->head;
        if (it != NULL) {
            atomic_fetch_sub(&q->nq, 1);
            q->head = it->next;
            if (q->head == NULL) {
                q->tail = NULL;
            }
            pthread_mutex_unlock(&q->lk);
            q->fn(it);
            pthread_mutex_lock(&q->lk);
            continue;
        }
        if (q->stop) {
            break;
        }
        if (q->spin_ns > 0) {
            /* Variant hopspin: poll a moment before sleeping, so a burst
             * of work does not pay a futex wake per item. */
            pthread_mutex_unlock(&q->lk);
            int64_t until = bench_now_ns() + q->spin_ns;
            while (atomic_load_explicit(&q->nq, memory_order_relaxed) == 0 &&
                bench_now_ns() < until) {
                sched_yield();
            }
            pthread_mutex_lock(&q->lk);
            if (q->head != NULL) {
                continue;
            }
        }
        q->sleepers++;
        pthread_cond_wait(&q->cv, &q->lk);
        q->sleepers--;
    }
    pthread_mutex_unlock(&q->lk);
    return NULL;
}

static int
hop_start(hopq *q, void (*fn)(hop_item *), int64_t spin_ns)
{
    memset(q, 0, sizeof(*q));
    q->spin_ns = spin_ns;
    pthread_mutex_init(&q->lk, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->fn = fn;
    for (int i = 0; i < 2; i++) {
        if (pthread_create(&q->thr[i], NULL, hop_main, q) != 0) {
            return -1;
        }
        q->nthr++;
    }
    return 0;
}

/* "hopspin" spins 50 us before sleeping; "hop" sleeps at once. */
static int64_t
hop_spin_ns(const bench_opts *o)
{
    return strcmp(o->variant, "hopspin") == 0 ? 50000 : 0;
}

static void
hop_push(hopq *q, hop_item *it)
{
    it->next = NULL;
    pthread_mutex_lock(&q->lk);
    if (q->tail != NULL) {
        q->tail->next = it;
    } else {
        q->head = it;
    }
    q->tail = it;
    atomic_fetch_add(&q->nq, 1);
    if (q->sleepers > 0) {
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->lk);
}

static void
hop_stop(hopq *q)
{
    if (q->fn == NULL) {
        return;
    }
    pthread_mutex_lock(&q->lk);
    q->stop = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->lk);
    for (int i = 0; i < q->nthr; i++) {
        pthread_join(q->thr[i], NULL);
    }
    q->fn = NULL;
}

/* ---------------------------------------------------------------------- */
/* Server                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct rsrv rsrv;

/* Variant wrecv: what one receiving thread serves. */
typedef struct wrecv_job {
    nng_socket sock;
    void (*got)(void *, nng_msg *);
    void *arg;
} wrecv_job;

typedef struct rwork {
    hop_item hop; /* first: the item is the work */
    rsrv *s;
    nng_ctx ctx;
    nng_aio *aio;
    int sending;
    nng_msg *reply; /* variant hop: the reply a worker sends */
} rwork;

struct rsrv {
    nng_socket rep, pull;
    rwork *work;
    int nwork;
    atomic_ullong sends;
    atomic_llong last_ns;
    atomic_ullong held;
    atomic_int closing;
    nng_aio *pull_aio;
    hopq hq; /* variant hop: replies */
    hopq sq; /* variant hop: one-way messages */
    int hop;
    pthread_t wthr[3]; /* variant wrecv */
    wrecv_job wjob[3];
    int nwthr;
};

/* Turns request m into its reply in place, by its first byte; NULL when
 * the request is held (never answered). */
static nng_msg *
rsrv_answer(rsrv *s, nng_msg *m)
{
    const char *b = nng_msg_body(m);
    char op = nng_msg_len(m) > 0 ? b[0] : 'a';
    if (op == 'e') {
        return m; /* the request is the reply */
    }
    if (op == 'h') {
        nng_msg_free(m);
        atomic_fetch_add(&s->held, 1);
        return NULL;
    }
    nng_msg_clear(m);
    if (op == '?') {
        char text[160];
        int n = snprintf(text, sizeof(text), BENCH_STATS_FMT,
            (unsigned long long)atomic_load(&s->sends),
            (long long)bench_now_ns(), (long long)atomic_load(&s->last_ns),
            (unsigned long long)atomic_load(&s->held));
        nng_msg_append(m, text, (size_t)n);
    }
    return m;
}

static void
rwork_recv(rwork *w)
{
    w->sending = 0;
    nng_ctx_recv(w->ctx, w->aio);
}

static void
rwork_cb(void *arg)
{
    rwork *w = arg;
    rsrv *s = w->s;
    int rv = nng_aio_result(w->aio);
    if (w->sending) {
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(w->aio));
            nng_aio_set_msg(w->aio, NULL);
        }
        if (!atomic_load(&s->closing)) {
            rwork_recv(w);
        }
        return;
    }
    if (rv != 0) {
        if (rv != NNG_ECLOSED && !atomic_load(&s->closing)) {
            rwork_recv(w);
        }
        return;
    }
    nng_msg *m = nng_aio_get_msg(w->aio);
    nng_aio_set_msg(w->aio, NULL);
    if ((m = rsrv_answer(s, m)) == NULL) {
        return; /* held: the context stays taken, as a deferred reply
                 * keeps its context in skc */
    }
    if (s->hop) {
        w->reply = m;
        hop_push(&s->hq, &w->hop);
        return;
    }
    w->sending = 1;
    nng_aio_set_msg(w->aio, m);
    nng_ctx_send(w->ctx, w->aio);
}

/* Variant hop: a worker thread sends the reply. */
static void
rwork_hop(hop_item *it)
{
    rwork *w = (rwork *)it;
    nng_msg *m = w->reply;
    w->reply = NULL;
    w->sending = 1;
    nng_aio_set_msg(w->aio, m);
    nng_ctx_send(w->ctx, w->aio);
}

typedef struct sink_item {
    hop_item hop; /* first */
    rsrv *s;
    nng_msg *m;
} sink_item;

static void
sink_count(rsrv *s, nng_msg *m)
{
    atomic_store(&s->last_ns, bench_now_ns());
    atomic_fetch_add(&s->sends, 1);
    nng_msg_free(m);
}

/* One receive always posted; the callback counts and re-posts. */
static void
pull_cb(void *arg)
{
    rsrv *s = arg;
    int rv = nng_aio_result(s->pull_aio);
    if (rv == NNG_ECLOSED || atomic_load(&s->closing)) {
        return;
    }
    if (rv == 0) {
        nng_msg *m = nng_aio_get_msg(s->pull_aio);
        nng_aio_set_msg(s->pull_aio, NULL);
        sink_item *it;
        if (s->hop && (it = malloc(sizeof(*it))) != NULL) {
            it->s = s;
            it->m = m;
            hop_push(&s->sq, &it->hop);
        } else {
            sink_count(s, m);
        }
    }
    nng_recv_aio(s->pull, s->pull_aio);
}

/* Variant hop: a worker thread counts the one-way message. */
static void
sink_hop(hop_item *hi)
{
    sink_item *it = (sink_item *)hi;
    sink_count(it->s, it->m);
    free(it);
}

/* Variant wrecv: a thread receives on sock with a callback-less aio
 * until the socket closes, and hands each message to got.  Thread main. */
static void *
wrecv_main(void *jp)
{
    wrecv_job *j = jp;
    nng_aio *ra;
    if (nng_aio_alloc(&ra, NULL, NULL) != 0) {
        return NULL;
    }
    for (;;) {
        nng_recv_aio(j->sock, ra);
        nng_aio_wait(ra);
        if (nng_aio_result(ra) != 0) {
            break;
        }
        nng_msg *m = nng_aio_get_msg(ra);
        nng_aio_set_msg(ra, NULL);
        j->got(j->arg, m);
    }
    nng_aio_free(ra);
    return NULL;
}

/* Variant wrecv, raw REP socket: answer in place, send from this thread. */
static void
wrecv_answer(void *arg, nng_msg *m)
{
    rsrv *s = arg;
    if ((m = rsrv_answer(s, m)) != NULL && nng_sendmsg(s->rep, m, 0) != 0) {
        nng_msg_free(m);
    }
}

static void
wrecv_count(void *arg, nng_msg *m)
{
    sink_count(arg, m);
}

/* Listens on url; *port receives the bound TCP port. */
static int
raw_listen(nng_socket sock, const char *url, int *port)
{
    nng_listener l;
    int rv = nng_listener_create(&l, sock, url);
    if (rv == 0) {
        rv = nng_listener_start(l, 0);
    }
    if (rv == 0) {
        rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, port);
    }
    if (rv != 0) {
        raw_fail(url, rv);
    }
    return rv;
}

int
bench_raw_server(const bench_opts *o)
{
    rsrv s;
    memset(&s, 0, sizeof(s));
    int rv;
    int wrecv = strcmp(o->variant, "wrecv") == 0;
    if ((rv = wrecv ? nng_rep0_open_raw(&s.rep) : nng_rep0_open(&s.rep)) !=
            0 ||
        (rv = nng_pull0_open(&s.pull)) != 0) {
        raw_fail("open", rv);
        return 1;
    }
    nng_socket_set_size(s.rep, NNG_OPT_RECVMAXSZ, RAW_MAXSZ);
    nng_socket_set_size(s.pull, NNG_OPT_RECVMAXSZ, RAW_MAXSZ);
    nng_socket_set_int(s.pull, NNG_OPT_RECVBUF, RAW_PULL_RECVBUF);

    /* Host part of the requested address, then free ports. */
    char host[200];
    const char *a = o->addr;
    if (strncmp(a, "tcp://", 6) == 0) {
        a += 6;
    }
    snprintf(host, sizeof(host), "%s", a);
    char *colon = strrchr(host, ':');
    if (colon != NULL) {
        *colon = '\0';
    }
    char url[256];
    int rep_port = 0, pull_port = 0;
    snprintf(url, sizeof(url), "tcp://%s:0", host);
    if (raw_listen(s.rep, url, &rep_port) != 0 ||
        raw_listen(s.pull, url, &pull_port) != 0) {
        return 1;
    }
    if (strncmp(o->variant, "hop", 3) == 0) {
        s.hop = 1;
        if (hop_start(&s.hq, rwork_hop, hop_spin_ns(o)) != 0 ||
            hop_start(&s.sq, sink_hop, hop_spin_ns(o)) != 0) {
            return 1;
        }
    }
    /* Before the pool: a plain server pre-allocates a context per request
     * it may hold, so the pool is part of its memory per held call. */
    long rss0 = bench_rss_kb(0);
    if (wrecv) {
        for (int i = 0; i < 3; i++) {
            s.wjob[i].sock = i < 2 ? s.rep : s.pull;
            s.wjob[i].got = i < 2 ? wrecv_answer : wrecv_count;
            s.wjob[i].arg = &s;
            if (pthread_create(&s.wthr[i], NULL, wrecv_main, &s.wjob[i]) !=
                0) {
                return 1;
            }
            s.nwthr++;
        }
        printf("ADDR tcp://%s:%d tcp://%s:%d rss0=%ld\n", host, rep_port, host,
            pull_port, rss0);
        fflush(stdout);
        bench_wait_stdin_eof();
        nng_close(s.rep);
        nng_close(s.pull);
        for (int i = 0; i < s.nwthr; i++) {
            pthread_join(s.wthr[i], NULL);
        }
        return 0;
    }
    s.nwork = o->max_serving > 0 ? o->max_serving : 128;
    s.work = calloc((size_t)s.nwork, sizeof(*s.work));
    if (s.work == NULL) {
        return 1;
    }
    for (int i = 0; i < s.nwork; i++) {
        rwork *w = &s.work[i];
        w->s = &s;
        if ((rv = nng_aio_alloc(&w->aio, rwork_cb, w)) != 0 ||
            (rv = nng_ctx_open(&w->ctx, s.rep)) != 0) {
            raw_fail("context", rv);
            return 1;
        }
        rwork_recv(w);
    }
    if ((rv = nng_aio_alloc(&s.pull_aio, pull_cb, &s)) != 0) {
        raw_fail("aio", rv);
        return 1;
    }
    nng_recv_aio(s.pull, s.pull_aio);
    printf("ADDR tcp://%s:%d tcp://%s:%d rss0=%ld\n", host, rep_port, host,
        pull_port, rss0);
    fflush(stdout);

    bench_wait_stdin_eof();

    atomic_store(&s.closing, 1);
    hop_stop(&s.hq);
    hop_stop(&s.sq);
    for (int i = 0; i < s.nwork; i++) {
        nng_aio_stop(s.work[i].aio);
        nng_msg_free(nng_aio_get_msg(s.work[i].aio));
        nng_aio_set_msg(s.work[i].aio, NULL);
    }
    for (int i = 0; i < s.nwork; i++) {
        nng_ctx_close(s.work[i].ctx);
        nng_aio_free(s.work[i].aio);
    }
    nng_aio_stop(s.pull_aio);
    nng_msg_free(nng_aio_get_msg(s.pull_aio));
    nng_aio_free(s.pull_aio);
    nng_close(s.rep);
    nng_close(s.pull);
    free(s.work);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Client                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct rcli rcli;

typedef struct rslot {
    hop_item hop; /* first: the item is the slot */
    rcli *c;
    nng_ctx ctx;
    nng_aio *aio;
    int sending;
} rslot;

struct rcli {
    nng_socket req;
    char *payload;
    size_t size;
    atomic_ullong ops;
    atomic_ullong errs;
    atomic_int active;
    atomic_int stop;
    atomic_int reported;
    hopq hq; /* variant hop */
    int hop;
    nng_aio *xaio;   /* variant xreq: the one receive */
    nng_socket push; /* send case */
    atomic_uint xid;
    /* BC_HOL: one large call in flight on a context of the same socket,
     * or (variant lanes) of a second socket: its own connection */
    nng_socket big_sock;
    int big_own;
    const char *addr;
    nng_ctx big_ctx;
    nng_aio *big_aio;
    char *big;
    int big_sending;
    atomic_long bigs;
    atomic_int big_failed;
    atomic_int big_stop;
    atomic_int big_active;
};

static nng_msg *
raw_request(rcli *c)
{
    nng_msg *m;
    if (nng_msg_alloc(&m, c->size) != 0) {
        return NULL;
    }
    memcpy(nng_msg_body(m), c->payload, c->size);
    return m;
}

static void
rslot_send(rslot *s)
{
    nng_msg *m = raw_request(s->c);
    if (m == NULL) {
        atomic_fetch_add(&s->c->errs, 1);
        atomic_fetch_sub(&s->c->active, 1);
        return;
    }
    s->sending = 1;
    nng_aio_set_msg(s->aio, m);
    nng_ctx_send(s->ctx, s->aio);
}

static void
rslot_cb(void *arg)
{
    rslot *s = arg;
    rcli *c = s->c;
    int rv = nng_aio_result(s->aio);
    if (s->sending) {
        s->sending = 0;
        if (rv == 0) {
            nng_ctx_recv(s->ctx, s->aio);
            return;
        }
        nng_msg_free(nng_aio_get_msg(s->aio));
        nng_aio_set_msg(s->aio, NULL);
    } else if (rv == 0) {
        nng_msg_free(nng_aio_get_msg(s->aio));
        nng_aio_set_msg(s->aio, NULL);
        atomic_fetch_add(&c->ops, 1);
    }
    if (rv != 0) {
        atomic_fetch_add(&c->errs, 1);
        if (!atomic_load(&c->stop) && atomic_fetch_add(&c->reported, 1) < 3) {
            raw_fail("call", rv);
        }
    }
    if (atomic_load(&c->stop)) {
        atomic_fetch_sub(&c->active, 1);
        return;
    }
    if (c->hop) {
        hop_push(&c->hq, &s->hop);
        return;
    }
    rslot_send(s);
}

/* Variant hop: a worker thread issues the next request. */
static void
rslot_hop(hop_item *it)
{
    rslot_send((rslot *)it);
}

static int
slots_open(rcli *c, rslot **out, int k)
{
    rslot *v = calloc((size_t)k, sizeof(*v));
    if (v == NULL) {
        return -1;
    }
    for (int i = 0; i < k; i++) {
        int rv;
        v[i].c = c;
        if ((rv = nng_aio_alloc(&v[i].aio, rslot_cb, &v[i])) != 0 ||
            (rv = nng_ctx_open(&v[i].ctx, c->req)) != 0) {
            raw_fail("context", rv);
            return -1;
        }
        nng_aio_set_timeout(v[i].aio, RAW_AIO_TIMEOUT_MS);
    }
    *out = v;
    return 0;
}

static void
slots_close(rslot *v, int k)
{
    for (int i = 0; i < k; i++) {
        nng_aio_stop(v[i].aio);
        nng_msg_free(nng_aio_get_msg(v[i].aio));
        nng_aio_set_msg(v[i].aio, NULL);
    }
    for (int i = 0; i < k; i++) {
        nng_ctx_close(v[i].ctx);
        nng_aio_free(v[i].aio);
    }
    free(v);
}

/* One blocking round trip on the socket's own context. */
static int
raw_roundtrip(rcli *c, const void *data, size_t len, nng_msg **reply)
{
    nng_msg *m;
    int rv = nng_msg_alloc(&m, len);
    if (rv != 0) {
        return rv;
    }
    memcpy(nng_msg_body(m), data, len);
    if ((rv = nng_sendmsg(c->req, m, 0)) != 0) {
        nng_msg_free(m);
        return rv;
    }
    return nng_recvmsg(c->req, reply, 0);
}

static int
raw_stats(rcli *c, unsigned long long *sends, long long *now, long long *last,
    unsigned long long *held)
{
    nng_msg *r;
    int rv = raw_roundtrip(c, "?", 1, &r);
    if (rv != 0) {
        raw_fail("stats", rv);
        return -1;
    }
    rv = bench_stats_parse(
        nng_msg_body(r), nng_msg_len(r), sends, now, last, held);
    nng_msg_free(r);
    return rv;
}

static int
raw_stats_any(void *c, unsigned long long *sends, long long *now,
    long long *last, unsigned long long *held)
{
    return raw_stats(c, sends, now, last, held);
}

/* Variant xreq: skc's link pattern on a raw REQ socket. */
static int
xreq_send(rcli *c)
{
    nng_msg *m = raw_request(c);
    if (m == NULL) {
        return -1;
    }
    uint32_t id = (atomic_fetch_add(&c->xid, 1) & 0x7fffffffu) | 0x80000000u;
    nng_msg_header_append_u32(m, id);
    int rv;
    while ((rv = nng_sendmsg(c->req, m, NNG_FLAG_NONBLOCK)) == NNG_EAGAIN) { }
    if (rv != 0) {
        nng_msg_free(m);
        return -1;
    }
    return 0;
}

static void
xreq_got(rcli *c, nng_msg *m)
{
    nng_msg_free(m);
    atomic_fetch_add(&c->ops, 1);
    if (atomic_load(&c->stop)) {
        atomic_fetch_sub(&c->active, 1);
        return;
    }
    if (xreq_send(c) != 0) {
        atomic_fetch_add(&c->errs, 1);
        atomic_fetch_sub(&c->active, 1);
    }
}

static void
xreq_cb(void *arg)
{
    rcli *c = arg;
    int rv = nng_aio_result(c->xaio);
    if (rv == NNG_ECLOSED) {
        return;
    }
    if (rv == 0) {
        nng_msg *m = nng_aio_get_msg(c->xaio);
        nng_aio_set_msg(c->xaio, NULL);
        xreq_got(c, m);
        for (int i = 0; i < 32; i++) {
            if (nng_recvmsg(c->req, &m, NNG_FLAG_NONBLOCK) != 0) {
                break;
            }
            xreq_got(c, m);
        }
    }
    nng_recv_aio(c->req, c->xaio);
}

static void
wrecv_got(void *arg, nng_msg *m)
{
    xreq_got(arg, m);
}

static int
xreq_run_call(rcli *c, const bench_opts *o)
{
    int rv;
    int wrecv = strcmp(o->variant, "wrecv") == 0;
    pthread_t wt[2];
    int nwt = 0;
    wrecv_job job = { c->req, wrecv_got, c }; /* variant wrecv */
    if ((rv = nng_aio_alloc(&c->xaio, xreq_cb, c)) != 0) {
        raw_fail("aio", rv);
        return 1;
    }
    if (wrecv) {
        for (; nwt < 2; nwt++) {
            if (pthread_create(&wt[nwt], NULL, wrecv_main, &job) != 0) {
                return 1;
            }
        }
    } else {
        nng_recv_aio(c->req, c->xaio);
    }
    for (int i = 0; i < o->inflight; i++) {
        atomic_fetch_add(&c->active, 1);
        if (xreq_send(c) != 0) {
            atomic_fetch_sub(&c->active, 1);
            atomic_fetch_add(&c->errs, 1);
        }
    }
    bench_measure_window(&c->ops, &c->errs, &c->stop, &c->active, o);
    if (wrecv) {
        nng_close(c->req);
        for (int i = 0; i < nwt; i++) {
            pthread_join(wt[i], NULL);
        }
    }
    nng_aio_stop(c->xaio);
    nng_msg_free(nng_aio_get_msg(c->xaio));
    nng_aio_free(c->xaio);
    return 0;
}

static int
raw_run_call(rcli *c, const bench_opts *o)
{
    rslot *v;
    if (slots_open(c, &v, o->inflight) != 0) {
        return 1;
    }
    for (int i = 0; i < o->inflight; i++) {
        atomic_fetch_add(&c->active, 1);
        rslot_send(&v[i]);
    }
    bench_measure_window(&c->ops, &c->errs, &c->stop, &c->active, o);
    hop_stop(&c->hq);
    slots_close(v, o->inflight);
    return 0;
}

/* bench_run_lat's round trip: blocking send and receive. */
static int
raw_lat_call(void *arg)
{
    rcli *c = arg;
    nng_msg *r = NULL;
    if (raw_roundtrip(c, c->payload, c->size, &r) != 0) {
        return -1;
    }
    nng_msg_free(r);
    return 0;
}

/* BC_HOL: the large call's next step (send, then receive). */
static void
big_send(rcli *c)
{
    nng_msg *m;
    if (nng_msg_alloc(&m, BENCH_HOL_BIG) != 0) {
        atomic_fetch_add(&c->big_failed, 1);
        atomic_fetch_sub(&c->big_active, 1);
        return;
    }
    memcpy(nng_msg_body(m), c->big, BENCH_HOL_BIG);
    c->big_sending = 1;
    nng_aio_set_msg(c->big_aio, m);
    nng_ctx_send(c->big_ctx, c->big_aio);
}

static void
big_cb(void *arg)
{
    rcli *c = arg;
    int rv = nng_aio_result(c->big_aio);
    if (c->big_sending && rv == 0) {
        c->big_sending = 0;
        nng_ctx_recv(c->big_ctx, c->big_aio);
        return;
    }
    nng_msg_free(nng_aio_get_msg(c->big_aio));
    nng_aio_set_msg(c->big_aio, NULL);
    if (rv == 0) {
        atomic_fetch_add(&c->bigs, 1);
        if (!atomic_load(&c->big_stop)) {
            big_send(c);
            return;
        }
    } else {
        atomic_fetch_add(&c->big_failed, 1);
        raw_fail("large call", rv);
    }
    atomic_fetch_sub(&c->big_active, 1);
}

static long
raw_hol_big(void *arg, int on)
{
    rcli *c = arg;
    int rv;
    if (on) {
        if ((c->big = malloc(BENCH_HOL_BIG)) == NULL) {
            return -1;
        }
        memset(c->big, 'x', BENCH_HOL_BIG);
        c->big_sock = c->req;
        if (c->big_own) {
            if ((rv = nng_req0_open(&c->big_sock)) != 0 ||
                (rv = nng_socket_set_size(
                     c->big_sock, NNG_OPT_RECVMAXSZ, RAW_MAXSZ)) != 0 ||
                (rv = nng_dial(c->big_sock, c->addr, NULL, 0)) != 0) {
                raw_fail("second socket", rv);
                return -1;
            }
        }
        if ((rv = nng_aio_alloc(&c->big_aio, big_cb, c)) != 0 ||
            (rv = nng_ctx_open(&c->big_ctx, c->big_sock)) != 0) {
            raw_fail("context", rv);
            return -1;
        }
        nng_aio_set_timeout(c->big_aio, RAW_AIO_TIMEOUT_MS);
        atomic_store(&c->big_active, 1);
        big_send(c);
        return 0;
    }
    bench_stop_window(&c->big_stop, &c->big_active, 60000);
    nng_aio_stop(c->big_aio);
    nng_msg_free(nng_aio_get_msg(c->big_aio));
    nng_aio_set_msg(c->big_aio, NULL);
    nng_ctx_close(c->big_ctx);
    nng_aio_free(c->big_aio);
    if (c->big_own) {
        nng_close(c->big_sock);
    }
    free(c->big);
    c->big = NULL;
    return atomic_load(&c->big_failed) ? -1 : atomic_load(&c->bigs);
}

/* bench_run_send's send: a blocking send on the PUSH socket. */
static int
raw_send_one(void *arg)
{
    rcli *c = arg;
    nng_msg *m = raw_request(c);
    if (m == NULL || nng_sendmsg(c->push, m, 0) != 0) {
        nng_msg_free(m);
        return -1;
    }
    return 0;
}

static int
raw_run_send(rcli *c, const bench_opts *o)
{
    int rv;
    if (o->push == NULL) {
        fprintf(stderr, "skc_bench raw: send needs --push\n");
        return 1;
    }
    if ((rv = nng_push0_open(&c->push)) != 0) {
        raw_fail("push", rv);
        return 1;
    }
    nng_socket_set_int(c->push, NNG_OPT_SENDBUF, RAW_PUSH_SENDBUF);
    if ((rv = nng_dial(c->push, o->push, NULL, 0)) != 0) {
        raw_fail(o->push, rv);
        nng_close(c->push);
        return 1;
    }
    int ret = bench_run_send(raw_stats_any, raw_send_one, c, o);
    nng_close(c->push);
    return ret;
}

static int
raw_run_hold(rcli *c, const bench_opts *o)
{
    /* Warm up like the skc client: a window of echo calls first. */
    c->payload[0] = 'e';
    rslot *w;
    if (slots_open(c, &w, 16) != 0) {
        return 1;
    }
    for (int i = 0; i < 16; i++) {
        atomic_fetch_add(&c->active, 1);
        rslot_send(&w[i]);
    }
    bench_sleep_ms(200);
    bench_stop_window(&c->stop, &c->active, 5000);
    slots_close(w, 16);
    bench_sleep_ms(100);
    long rss0 = bench_rss_kb(0);

    /* A plain NNG client needs a context and an aio per request in
     * flight: they are part of the cost per call. */
    c->payload[0] = 'h';
    rslot *v;
    if (slots_open(c, &v, o->hold_n) != 0) {
        return 1;
    }
    for (int i = 0; i < o->hold_n; i++) {
        atomic_fetch_add(&c->active, 1);
        rslot_send(&v[i]);
    }
    unsigned long long s, held = 0;
    long long n, l;
    int64_t until = bench_now_ns() + 30000000000LL;
    while (bench_now_ns() < until) {
        if (raw_stats(c, &s, &n, &l, &held) != 0) {
            return 1;
        }
        if (held >= (unsigned long long)o->hold_n) {
            break;
        }
        bench_sleep_ms(50);
    }
    bench_sleep_ms(200);
    long rss1 = bench_rss_kb(0);
    bench_result("ops=%llu secs=1 errors=%llu rss0_kb=%ld rss1_kb=%ld "
                 "held=%llu",
        held, (unsigned long long)atomic_load(&c->errs), rss0, rss1, held);
    slots_close(v, o->hold_n);
    return held >= (unsigned long long)o->hold_n ? 0 : 1;
}

int
bench_raw_client(const bench_opts *o)
{
    rcli c;
    memset(&c, 0, sizeof(c));
    c.size = o->size ? o->size : 1;
    c.payload = malloc(c.size);
    if (c.payload == NULL) {
        return 1;
    }
    memset(c.payload, 'x', c.size);
    c.payload[0] = o->echo ? 'e' : 'a';
    int xreq =
        strcmp(o->variant, "xreq") == 0 || strcmp(o->variant, "wrecv") == 0;
    if (strncmp(o->variant, "hop", 3) == 0) {
        c.hop = 1;
        if (hop_start(&c.hq, rslot_hop, hop_spin_ns(o)) != 0) {
            free(c.payload);
            return 1;
        }
    }
    int rv;
    if ((rv = xreq ? nng_req0_open_raw(&c.req) : nng_req0_open(&c.req)) != 0) {
        raw_fail("req", rv);
        free(c.payload);
        return 1;
    }
    nng_socket_set_size(c.req, NNG_OPT_RECVMAXSZ, RAW_MAXSZ);
    if (xreq) {
        /* As lib/transport.c sets its raw REQ socket. */
        nng_socket_set_int(c.req, NNG_OPT_SENDBUF, 1024);
        nng_socket_set_int(c.req, NNG_OPT_RECVBUF, 1024);
    }
    int64_t until = bench_now_ns() + 10000000000LL;
    while ((rv = nng_dial(c.req, o->addr, NULL, 0)) != 0) {
        if (bench_now_ns() > until) {
            raw_fail(o->addr, rv);
            nng_close(c.req);
            free(c.payload);
            return 1;
        }
        bench_sleep_ms(20);
    }
    int ret;
    switch (o->bcase) {
    case BC_CALL:
        ret = xreq ? xreq_run_call(&c, o) : raw_run_call(&c, o);
        break;
    case BC_LAT:
        ret = bench_run_lat(raw_lat_call, &c, o);
        break;
    case BC_SEND:
        ret = raw_run_send(&c, o);
        break;
    case BC_HOL:
        /* variant lanes: what skc's lanes do, in raw NNG */
        c.big_own = strcmp(o->variant, "lanes") == 0;
        c.addr = o->addr;
        ret = bench_run_hol(raw_lat_call, raw_hol_big, &c, o);
        break;
    default:
        ret = raw_run_hold(&c, o);
        break;
    }
    nng_close(c.req);
    free(c.payload);
    return ret;
}
