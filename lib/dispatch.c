/* dispatch.c -- mailboxes, the ready queue, worker threads and the
 * caller-driven poll loop.
 *
 * A service is in the ready queue at most once (its `scheduled` flag), and
 * only the thread that popped it runs its handler, so one service never
 * runs two handlers at once and takes its mail in arrival order, while
 * different services run in parallel on different workers.  After a turn
 * of up to RUN_BATCH messages a service with more mail goes to the back of
 * the queue, so a busy service cannot starve the others.
 *
 * Inline (opt-in, SKC_SERVICE_INLINE / SKC_CALL_INLINE, nodes with worker
 * threads only): an idle service with an empty mailbox takes its turn on
 * the thread that received the message, and an async completion runs on
 * the thread that received the reply, which saves the hand-off to a
 * worker.  The same `scheduled` flag keeps one handler at a time and the
 * arrival order; n->dq.inline_running counts such turns so that
 * skci_dispatch_stop can wait for them.
 */
#include "core.h"
#include "error.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

_Thread_local skc_node *skci_current_node;
_Thread_local int skci_inline_depth;

#define RUN_BATCH 16
/* An inline turn (on a receiving thread) goes on with the mail that
 * arrives meanwhile for up to this many messages or this long, whichever
 * comes first, before a worker takes over.  A short turn hands a steady
 * stream of calls to a worker over and over (a thread wake-up each, which
 * inline handlers exist to avoid; docs/PERFORMANCE.md, "What skc does about
 * it").
 * Inline handlers must not block, so the time bound is the one that
 * matters for a receiving thread. */
#define RUN_BATCH_INLINE 256
#define RUN_INLINE_NS 5000000

/* dq.lock held: makes the fd readable, if the host waits on it.  A
 * host that never asked for the fd (skc_node_fd) waits in skc_node_poll
 * on the condvar only, so the two system calls per wake-up (this write,
 * the read in efd_disarm_locked) are skipped. */
static void
efd_arm_locked(skc_node *n)
{
    if (n->dq.efd_wanted && !n->dq.efd_armed && n->dq.efd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(n->dq.efd, &one, sizeof(one));
        (void)w; /* an eventfd write only fails on overflow */
        n->dq.efd_armed = 1;
    }
}

/* dq.lock held. */
static void
queue_push_locked(skc_node *n, skci_task *t)
{
    skci_list_append(&n->dq.ready, &t->ready);
    if (n->workers > 0) {
        pthread_cond_signal(&n->dq.cond);
    } else {
        pthread_cond_broadcast(&n->dq.cond);
        efd_arm_locked(n);
    }
}

static skci_task *
queue_pop_locked(skc_node *n)
{
    skci_lnode *e = skci_list_pop(&n->dq.ready);
    return e != NULL ? SKCI_LIST_ENTRY(e, skci_task, ready) : NULL;
}

/* dq.lock held: the queue is empty, so the fd stops being readable. */
static void
efd_disarm_locked(skc_node *n)
{
    if (n->dq.efd_armed && skci_list_empty(&n->dq.ready)) {
        uint64_t v;
        ssize_t r = read(n->dq.efd, &v, sizeof(v));
        (void)r;
        n->dq.efd_armed = 0;
    }
}

void
skci_dispatch_push(skc_node *n, skci_task *t)
{
    pthread_mutex_lock(&n->dq.lock);
    queue_push_locked(n, t);
    pthread_mutex_unlock(&n->dq.lock);
}

skc_msg *
skci_mail_pop(skc_node *n, skci_service *s)
{
    skci_lnode *e = skci_list_pop(&s->mail);
    if (e == NULL) {
        return NULL;
    }
    skc_msg *m = SKCI_LIST_ENTRY(e, skc_msg, mail);
    s->mail_bytes -= m->len;
    s->mail_calls -= m->route != NULL;
    n->dq.queued_bytes -= m->len;
    return m;
}

void
skci_mail_take(skc_node *n, skci_service *s, skci_list *to)
{
    skci_list_move(to, &s->mail);
    n->dq.queued_bytes -= s->mail_bytes;
    s->mail_bytes = 0;
    s->mail_calls = 0;
}

/* Half of max_serving or more are held by calls being served (dq.lock
 * held; serve.lock is below it): only then is a service held to its
 * share, so a burst to one service is served while slots are plenty. */
static int
serving_scarce(skc_node *n)
{
    pthread_mutex_lock(&n->serve.lock);
    size_t held = n->serve.routes.len;
    pthread_mutex_unlock(&n->serve.lock);
    return held >= n->max_serving / 2;
}

/* Whether msg fits in s's mailbox (dq.lock held); if not, why. */
static int
mail_fits(skc_node *n, const skci_service *s, const skc_msg *msg)
{
    if (s->mail.len >= n->max_mailbox) {
        return skci_error(SKC_ELIMIT,
            "service %s on node '%s' has %zu messages waiting (max_mailbox)",
            msg->target, n->name, s->mail.len);
    }
    if (s->mail_bytes + msg->len > n->max_mailbox_bytes) {
        return skci_error(SKC_ELIMIT,
            "service %s on node '%s' has %zu bytes waiting; this message of %zu would pass max_mailbox_bytes (%u)",
            msg->target, n->name, s->mail_bytes, msg->len,
            n->max_mailbox_bytes);
    }
    /* Each waiting call holds one of the node's max_serving slots: one
     * slow service may hold a quarter of them (at least 8), so the rest
     * stay for the other services, HELLOs and pings. */
    size_t share = n->max_serving / 4 > 8 ? n->max_serving / 4 : 8;
    if (msg->route != NULL && s->mail_calls >= share && serving_scarce(n)) {
        return skci_error(SKC_ELIMIT,
            "service %s on node '%s' has %zu calls waiting, its share of the node's %u serving slots (max_serving / 4; half of them are in use)",
            msg->target, n->name, s->mail_calls, n->max_serving);
    }
    if (n->dq.queued_bytes + msg->len > n->max_queued_bytes) {
        return skci_error(SKC_ELIMIT,
            "node '%s' has %zu bytes waiting in its mailboxes; this message of %zu would pass max_queued_bytes (%u)",
            n->name, n->dq.queued_bytes, msg->len, n->max_queued_bytes);
    }
    return 0;
}

int
skci_dispatch_deliver(skc_node *n, skci_service *s, skc_msg *msg)
{
    pthread_mutex_lock(&n->dq.lock);
    if (s->dead) {
        pthread_mutex_unlock(&n->dq.lock);
        return SKC_ENOSERVICE;
    }
    if (s->inline_ok && !s->scheduled && n->workers > 0 && !n->dq.stop &&
        skci_inline_depth == 0) {
        /* SKC_SERVICE_INLINE and idle with an empty mailbox: the caller
         * (the receiving thread) runs it now, see skci_dispatch_run. */
        s->scheduled = 1;
        s->running = 1;
        s->runner = pthread_self();
        s->refs++; /* the turn's, as the queue's */
        n->dq.inline_running++;
        pthread_mutex_unlock(&n->dq.lock);
        return 1;
    }
    int rc = mail_fits(n, s, msg);
    if (rc != 0) {
        pthread_mutex_unlock(&n->dq.lock);
        return rc;
    }
    skci_list_append(&s->mail, &msg->mail);
    s->mail_bytes += msg->len;
    s->mail_calls += msg->route != NULL;
    n->dq.queued_bytes += msg->len;
    if (!s->scheduled) {
        s->scheduled = 1;
        s->refs++; /* the queue's */
        queue_push_locked(n, &s->task);
    }
    pthread_mutex_unlock(&n->dq.lock);
    return 0;
}

/* Runs one message of service s on this thread. */
static void
run_one(skc_node *n, skci_service *s, skc_msg *m)
{
    if (m->deadline != 0 && skci_now_ms() > m->deadline) {
        /* The caller has given up: do not start work nobody awaits. */
        char why[700];
        snprintf(why, sizeof(why),
            "the deadline passed before service %s on node '%s' could run the request",
            m->target, n->name);
        skci_node_log(n, SKC_LOG_INFO, "%s", why);
        skci_msg_drop(m, SKC_ETIMEDOUT, why);
        return;
    }
    skc_node *prev = skci_current_node;
    skci_current_node = n;
    s->fn(n, s->handle, m, s->arg);
    skci_current_node = prev;
    skci_msg_finish(m);
}

/* Runs m and then up to RUN_BATCH - 1 more messages of s (s->running is
 * set; RUN_BATCH_INLINE / RUN_INLINE_NS for an inline turn), and ends the
 * turn: s goes back to the ready queue if it has more mail.  Under load the
 * batch saves a trip through the ready queue (and often a thread wake-up) per
 * message; other services still get a turn every RUN_BATCH messages. */
static void
run_turn(skc_node *n, skci_service *s, skc_msg *m, int is_inline)
{
    int limit = is_inline ? RUN_BATCH_INLINE : RUN_BATCH;
    int64_t until = 0;
    for (int batch = 1;; batch++) {
        run_one(n, s, m);
        if (is_inline && batch == 1) {
            until = skci_now_ns() + RUN_INLINE_NS; /* from going on */
        }
        pthread_mutex_lock(&n->dq.lock);
        if (batch >= limit || s->dead || n->dq.stop ||
            skci_list_empty(&s->mail) ||
            (is_inline && skci_now_ns() > until)) {
            break;
        }
        m = skci_mail_pop(n, s);
        pthread_mutex_unlock(&n->dq.lock);
    }
    s->running = 0;
    pthread_cond_broadcast(&n->dq.idle_cond);
    int last = 0;
    if (!s->dead && !skci_list_empty(&s->mail)) {
        queue_push_locked(n, &s->task); /* keeps the turn's reference */
    } else {
        s->scheduled = 0;
        last = --s->refs == 0;
    }
    pthread_mutex_unlock(&n->dq.lock);
    if (last) {
        free(s);
    }
}

void
skci_dispatch_run(skc_node *n, skci_service *s, skc_msg *m)
{
    skci_inline_depth++;
    run_turn(n, s, m, 1);
    skci_inline_depth--;
    skci_dispatch_inline_end(n);
}

int
skci_dispatch_inline_begin(skc_node *n)
{
    if (n->workers == 0 || skci_inline_depth != 0) {
        return 0;
    }
    pthread_mutex_lock(&n->dq.lock);
    int ok = !n->dq.stop;
    if (ok) {
        n->dq.inline_running++;
    }
    pthread_mutex_unlock(&n->dq.lock);
    return ok;
}

int
skci_inline_busy(const char *what, const skc_node *target)
{
    return skci_error(SKC_EBUSY,
        "%s on node '%s' called from an inline handler or callback of node '%s', where nothing may block",
        what, target->name, skci_current_node ? skci_current_node->name : "?");
}

void
skci_dispatch_inline_end(skc_node *n)
{
    pthread_mutex_lock(&n->dq.lock);
    if (--n->dq.inline_running == 0) {
        pthread_cond_broadcast(&n->dq.idle_cond);
    }
    pthread_mutex_unlock(&n->dq.lock);
}

static void
run_service(skc_node *n, skci_service *s)
{
    pthread_mutex_lock(&n->dq.lock);
    skc_msg *m = skci_mail_pop(n, s);
    int stopping = n->dq.stop;
    if (m == NULL || s->dead || stopping) {
        /* Dead, or the node is shutting down: nothing more runs. */
        skci_list rest = { NULL, NULL, 0 };
        if (stopping && !s->dead) {
            skci_mail_take(n, s, &rest);
        }
        s->scheduled = 0;
        int last = --s->refs == 0;
        pthread_mutex_unlock(&n->dq.lock);
        if (last) {
            free(s);
        }
        if (m != NULL) {
            skci_msg_drop(m, SKC_ECLOSED, "the node is shutting down");
        }
        skci_lnode *e;
        while ((e = skci_list_pop(&rest)) != NULL) {
            skci_msg_drop(SKCI_LIST_ENTRY(e, skc_msg, mail), SKC_ECLOSED,
                "the node is shutting down");
        }
        return;
    }
    s->running = 1;
    s->runner = pthread_self();
    pthread_mutex_unlock(&n->dq.lock);
    run_turn(n, s, m, 0);
}

void
skci_dispatch_run_service(skc_node *n, skci_task *t)
{
    run_service(n, (skci_service *)((char *)t - offsetof(skci_service, task)));
}

static void
run_task(skc_node *n, skci_task *t)
{
    t->run(n, t);
}

static void *
worker_main(void *arg)
{
    skc_node *n = arg;
    pthread_mutex_lock(&n->dq.lock);
    for (;;) {
        skci_task *t = queue_pop_locked(n);
        if (t != NULL) {
            n->dq.busy++;
            pthread_mutex_unlock(&n->dq.lock);
            run_task(n, t);
            pthread_mutex_lock(&n->dq.lock);
            n->dq.busy--;
            continue;
        }
        if (n->dq.stop) {
            break;
        }
        pthread_cond_wait(&n->dq.cond, &n->dq.lock);
    }
    pthread_mutex_unlock(&n->dq.lock);
    return NULL;
}

int
skci_dispatch_init(skc_node *n)
{
    pthread_mutex_init(&n->dq.lock, NULL);
    skci_cond_init_mono(&n->dq.cond);
    pthread_cond_init(&n->dq.idle_cond, NULL);
    n->dq.efd = -1;
    if (n->workers == 0) {
        n->dq.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (n->dq.efd < 0) {
            return skci_error(SKC_ENOMEM, "eventfd: %s", strerror(errno));
        }
        return 0;
    }
    n->dq.threads = calloc((size_t)n->workers, sizeof(pthread_t));
    if (n->dq.threads == NULL) {
        return skci_error(SKC_ENOMEM, "worker threads");
    }
    for (int i = 0; i < n->workers; i++) {
        if (pthread_create(&n->dq.threads[i], NULL, worker_main, n) != 0) {
            return skci_error(SKC_ENOMEM, "cannot start worker thread %d", i);
        }
        n->dq.nthreads++;
    }
    return 0;
}

void
skci_dispatch_stop(skc_node *n)
{
    pthread_mutex_lock(&n->dq.lock);
    n->dq.stop = 1;
    pthread_cond_broadcast(&n->dq.cond);
    pthread_mutex_unlock(&n->dq.lock);
    for (int i = 0; i < n->dq.nthreads; i++) {
        pthread_join(n->dq.threads[i], NULL);
    }
    n->dq.nthreads = 0;
    /* Handlers and callbacks running inline on transport threads: none
     * starts once q_stop is set; wait for those that did. */
    pthread_mutex_lock(&n->dq.lock);
    while (n->dq.inline_running > 0) {
        pthread_cond_wait(&n->dq.idle_cond, &n->dq.lock);
    }
    pthread_mutex_unlock(&n->dq.lock);
    /* Caller-driven (or leftovers): completions still run exactly once,
     * here; services only drop their mail. */
    pthread_mutex_lock(&n->dq.lock);
    skci_task *t;
    while ((t = queue_pop_locked(n)) != NULL) {
        pthread_mutex_unlock(&n->dq.lock);
        run_task(n, t);
        pthread_mutex_lock(&n->dq.lock);
    }
    pthread_mutex_unlock(&n->dq.lock);
}

void
skci_dispatch_fini(skc_node *n)
{
    free(n->dq.threads);
    n->dq.threads = NULL;
    if (n->dq.efd >= 0) {
        close(n->dq.efd);
        n->dq.efd = -1;
    }
    pthread_cond_destroy(&n->dq.cond);
    pthread_cond_destroy(&n->dq.idle_cond);
    pthread_mutex_destroy(&n->dq.lock);
}

int
skc_node_fd(skc_node *node, int *out_fd)
{
    if (node == NULL || out_fd == NULL) {
        return skci_error(SKC_EINVAL, "%s is NULL", node ? "out_fd" : "node");
    }
    if (node->workers > 0) {
        return skci_error(SKC_ESTATE,
            "node '%s' has worker threads; skc_node_fd is for caller-driven nodes",
            node->name);
    }
    pthread_mutex_lock(&node->dq.lock);
    node->dq.efd_wanted = 1;
    if (!skci_list_empty(&node->dq.ready) || node->dq.woken) {
        efd_arm_locked(node); /* what is ready already */
    }
    pthread_mutex_unlock(&node->dq.lock);
    *out_fd = node->dq.efd;
    return 0;
}

int
skc_node_poll(skc_node *node, int32_t timeout_ms)
{
    if (node == NULL) {
        return skci_error(SKC_EINVAL, "node is NULL");
    }
    if (node->workers > 0) {
        return skci_error(SKC_ESTATE,
            "node '%s' has worker threads; skc_node_poll is for caller-driven nodes",
            node->name);
    }
    if (skci_current_node == node) {
        return skci_error(SKC_EBUSY,
            "skc_node_poll called from a handler or callback of node '%s'",
            node->name);
    }
    if (skci_inline_depth > 0) {
        return skci_inline_busy("skc_node_poll", node);
    }
    if (atomic_load(&node->closing)) {
        return skci_error(SKC_ECLOSED, "node '%s' is closing", node->name);
    }
    skc_node *n = node;
    pthread_mutex_lock(&n->dq.lock);
    if (skci_list_empty(&n->dq.ready) && timeout_ms != 0) {
        int64_t until = skci_now_ms() + timeout_ms;
        while (skci_list_empty(&n->dq.ready) && !n->dq.woken && !n->dq.stop) {
            if (timeout_ms < 0) {
                pthread_cond_wait(&n->dq.cond, &n->dq.lock);
                continue;
            }
            if (skci_now_ms() >= until) {
                break;
            }
            skci_cond_wait_until(&n->dq.cond, &n->dq.lock, until);
        }
    }
    n->dq.woken = 0;
    /* Run what is ready now (bounded, so a flood cannot keep the host's
     * thread here forever). */
    int count = 0;
    skci_task *t;
    while (count < 1024 && (t = queue_pop_locked(n)) != NULL) {
        pthread_mutex_unlock(&n->dq.lock);
        run_task(n, t);
        count++;
        pthread_mutex_lock(&n->dq.lock);
    }
    efd_disarm_locked(n);
    pthread_mutex_unlock(&n->dq.lock);
    return count;
}

int
skc_node_wakeup(skc_node *node)
{
    if (node == NULL) {
        return skci_error(SKC_EINVAL, "node is NULL");
    }
    pthread_mutex_lock(&node->dq.lock);
    node->dq.woken = 1; /* read by skc_node_poll */
    pthread_cond_broadcast(&node->dq.cond);
    efd_arm_locked(node);
    pthread_mutex_unlock(&node->dq.lock);
    return 0;
}
