/* log.c -- the node's log: lines are formatted here and handed to the
 * user's callback, never while this thread holds call_lock (skc.h's rule).
 *
 * A line logged under call_lock is queued on the node and delivered by
 * skci_call_unlock once the lock is released, so a log callback may call
 * back into skc (its own node included) without deadlocking.
 *
 * Lines cannot be forged or flooded from outside: every line is cleaned
 * (control characters and broken UTF-8 become \xNN, so a peer's name or
 * text cannot start a line of its own or drive a terminal), and each kind
 * of line (its format) is limited to log_burst lines per LOG_WINDOW_MS;
 * the next line of that kind let through says how many were suppressed.
 */
#include "core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_WINDOW_MS 10000

struct skci_logline {
    skci_lnode link; /* on logq.lines */
    int level;
    char text[];
};

void
skci_log_init(skc_node *n)
{
    pthread_mutex_init(&n->logq.lock, NULL);
    atomic_init(&n->logq.queued, 0);
    atomic_init(&n->call_lock_owner, 0);
}

/* Delivers every queued line (no skc lock held). */
static void
log_flush(skc_node *n)
{
    pthread_mutex_lock(&n->logq.lock);
    skci_list lines = { NULL, NULL, 0 };
    skci_list_move(&lines, &n->logq.lines);
    atomic_store(&n->logq.queued, 0);
    pthread_mutex_unlock(&n->logq.lock);
    skci_lnode *e;
    while ((e = skci_list_pop(&lines)) != NULL) {
        skci_logline *l = SKCI_LIST_ENTRY(e, skci_logline, link);
        n->log(l->level, n->name, l->text, n->log_arg);
        free(l);
    }
}

void
skci_log_fini(skc_node *n)
{
    if (n->log != NULL) {
        log_flush(n);
    }
    pthread_mutex_destroy(&n->logq.lock);
}

/* Counts a line of kind fmt: 1 to let it through (with *suppressed, the
 * lines of its kind dropped since the last one let through), 0 to drop.
 * Kinds share one of SKCI_LOG_KINDS slots by the format's address. */
static int
log_admit(skc_node *n, const char *fmt, long *suppressed)
{
    if (n->log_burst < 0) {
        *suppressed = 0;
        return 1;
    }
    size_t slot = ((uintptr_t)fmt >> 3) % SKCI_LOG_KINDS;
    int64_t now = skci_now_ms();
    pthread_mutex_lock(&n->logq.lock);
    skci_logkind *k = &n->logq.kinds[slot];
    if (k->fmt != fmt || now - k->since >= LOG_WINDOW_MS) {
        if (k->fmt != fmt) {
            k->dropped = 0;
        }
        k->fmt = fmt;
        k->since = now;
        k->count = 0;
    }
    int ok = k->count < n->log_burst;
    if (ok) {
        k->count++;
        *suppressed = k->dropped;
        k->dropped = 0;
    } else {
        k->dropped++;
    }
    pthread_mutex_unlock(&n->logq.lock);
    return ok;
}

static void log_line(skc_node *n, int level, long suppressed, const char *raw);

void
skci_node_log(skc_node *n, int level, const char *fmt, ...)
{
    if (n->log == NULL || level > n->log_level) {
        return;
    }
    long suppressed = 0;
    if (!log_admit(n, fmt, &suppressed)) {
        return;
    }
    char raw[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    log_line(n, level, suppressed, raw);
}

void
skci_node_log_kind(skc_node *n, int level, const char *kind, const char *text)
{
    if (n->log == NULL || level > n->log_level) {
        return;
    }
    long suppressed = 0;
    if (log_admit(n, kind, &suppressed)) {
        log_line(n, level, suppressed, text);
    }
}

/* Cleans raw and delivers it, or queues it while call_lock is held. */
static void
log_line(skc_node *n, int level, long suppressed, const char *raw)
{
    char buf[1300];
    skci_text_clean(buf, 1200, raw);
    size_t tl = strlen(buf);
    if (suppressed > 0) {
        snprintf(buf + tl, sizeof(buf) - tl,
            " [%ld more like this suppressed]", suppressed);
        tl = strlen(buf);
    }
    if (!skci_call_lock_held(n)) {
        n->log(level, n->name, buf, n->log_arg);
        return;
    }
    skci_logline *l = malloc(sizeof(*l) + tl + 1);
    if (l == NULL) {
        return; /* no memory: the line is lost, nothing else is */
    }
    l->level = level;
    memcpy(l->text, buf, tl + 1);
    pthread_mutex_lock(&n->logq.lock);
    skci_list_append(&n->logq.lines, &l->link);
    atomic_store(&n->logq.queued, 1);
    pthread_mutex_unlock(&n->logq.lock);
}

/* Who holds call_lock is kept in the node, not in a thread-local: NNG's
 * task threads never exit, and thread-local storage of a dlopen()ed
 * libskc (the Lua module) would be allocated on each of them for good. */
_Static_assert(sizeof(pthread_t) <= sizeof(unsigned long),
    "pthread_t does not fit the call_lock owner field");

int
skci_call_lock_held(skc_node *n)
{
    return atomic_load(&n->call_lock_owner) == (unsigned long)pthread_self();
}

void
skci_call_lock(skc_node *n)
{
    pthread_mutex_lock(&n->call_lock);
    atomic_store(&n->call_lock_owner, (unsigned long)pthread_self());
}

void
skci_call_unlock(skc_node *n)
{
    atomic_store(&n->call_lock_owner, 0);
    pthread_mutex_unlock(&n->call_lock);
    if (atomic_load(&n->logq.queued)) {
        log_flush(n);
    }
}

void
skci_call_wait(skc_node *n, pthread_cond_t *cond, int64_t until)
{
    atomic_store(&n->call_lock_owner, 0);
    if (until == INT64_MAX) {
        pthread_cond_wait(cond, &n->call_lock);
    } else {
        skci_cond_wait_until(cond, &n->call_lock, until);
    }
    atomic_store(&n->call_lock_owner, (unsigned long)pthread_self());
}
