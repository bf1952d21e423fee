/* pending.c -- the table of calls in flight: ids, deadlines, the peer lists
 * a call waits in, and the one place a call ends (skci_call_finish).
 *
 * Invariants (all under call_lock):
 *  - every pending call is in n->pend.calls (by id) and n->pend.deadlines, and
 * in at most one list of its peer: the queue (not yet sent) or the sent list;
 *  - a call ends exactly once, in skci_call_finish(), which takes it out
 *    of all three; the deadline heap guarantees it ends by its deadline
 *    (timer.c fires it).
 */
#include "core.h"
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
skci_call_free(skci_call *c)
{
    skci_tmsg_free(c->req);
    skci_tmsg_free(c->rep);
    free(c->detail);
    if (c->mode == SKCI_MODE_SYNC) {
        pthread_cond_destroy(&c->cond);
    }
    free(c);
}

void
skci_timer_wake(skc_node *n, int64_t when)
{
    /* Only if it would sleep past `when`: at one call in flight every new
     * call is the earliest deadline, and waking the housekeeper for each
     * cost a thread wake-up and a call_lock round per call. */
    if (when < n->pend.timer_until) {
        pthread_cond_signal(&n->pend.timer_cond);
    }
}

int
skci_call_register(skc_node *n, skci_call *c)
{
    do {
        c->id = ++n->pend.next_id & 0x7fffffffu;
    } while (c->id == 0 || skci_idmap_get(&n->pend.calls, c->id) != NULL);
    if (skci_idmap_set(&n->pend.calls, c->id, c) != 0 ||
        skci_heap_push(&n->pend.deadlines, &c->hn) != 0) {
        skci_idmap_del(&n->pend.calls, c->id);
        return skci_error(SKC_ENOMEM, "call table");
    }
    if (skci_heap_top(&n->pend.deadlines) == &c->hn) {
        skci_timer_wake(n, c->hn.when);
    }
    return 0;
}

void
skci_call_finish(skc_node *n, skci_call *c, int status, skci_tmsg *rep,
    const uint8_t *data, size_t len, const char *detail)
{
    skci_idmap_del(&n->pend.calls, c->id);
    skci_heap_remove(&n->pend.deadlines, &c->hn);
    if (c->peer != NULL) {
        if (c->state == SKCI_CALL_QUEUED) {
            skci_list_remove(&c->peer->queued, &c->link);
        } else if (c->state == SKCI_CALL_SENT) {
            skci_list_remove(&c->peer->sent, &c->link);
        } else if (c->state == SKCI_CALL_LANE) {
            skci_lane_unqueue(c->peer, c);
        }
    }
    c->state = 0;
    if (c->mode != SKCI_MODE_INTERNAL) {
        n->pend.inflight--;
        skci_stats *st = &n->stats;
        int code = SKCI_STAT_CODE(status);
        if (c->kind == SKCI_KIND_SEND && status == 0) {
            st->sends_ok++;
        } else if (c->kind == SKCI_KIND_SEND) {
            st->sends_failed[code]++;
        } else if (status == 0) {
            st->calls_ok++;
            st->bytes_in_lk += len;
        } else {
            st->calls_failed[code]++;
        }
    }
    c->status = status;
    c->rep = rep;
    c->data = data;
    c->len = len;
    if (c->kind == SKCI_KIND_PING) {
        c->end_us = skci_now_us();
    }
    if (status != 0) {
        /* Cleaned: a detail may quote text from the network (util.h). */
        const char *t = detail ? detail : skc_strerror(status);
        char *d = NULL;
        size_t l = strlen(t) + (c->group ? strlen(c->group->name) : 0) + 16;
        if (c->group != NULL && (d = malloc(l)) != NULL) {
            snprintf(d, l, "group '%s': %s", c->group->name, t);
        }
        c->detail = skci_text_clean_dup(d != NULL ? d : t);
        free(d);
    }
    switch (c->mode) {
    case SKCI_MODE_SYNC:
        c->done = 1;
        pthread_cond_broadcast(&c->cond);
        break;
    case SKCI_MODE_ASYNC:
        if (c->inline_take) {
            break; /* on_reply runs it on this thread, unlocked */
        }
        skci_dispatch_push(n, &c->task);
        break;
    case SKCI_MODE_INTERNAL:
        c->internal_done(n, c);
        skci_call_free(c);
        break;
    case SKCI_MODE_SEND:
        if (status != 0) {
            skci_node_log(n, SKC_LOG_WARN,
                "dropped a send to node '%s' %s: %s",
                c->peer ? c->peer->name : "?", c->target,
                c->detail ? c->detail : "");
        }
        skci_call_free(c);
        break;
    }
}

void
skci_call_fail(skc_node *n, skci_call *c, int status, const char *fmt, ...)
{
    char detail[SKCI_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    skci_call_finish(n, c, status, NULL, NULL, 0, detail);
}

void
skci_call_fail_list(
    skc_node *n, skci_list *calls, int status, const char *detail)
{
    while (!skci_list_empty(calls)) {
        skci_call_finish(
            n, SKCI_CALL_OF(calls->head), status, NULL, NULL, 0, detail);
    }
}

void
skci_pending_init(skc_node *n)
{
    pthread_mutex_init(&n->call_lock, NULL);
    skci_cond_init_mono(&n->pend.timer_cond);
    n->pend.timer_until = INT64_MAX;
    skci_idmap_init(&n->pend.calls);
    skci_heap_init(&n->pend.deadlines);
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
skci_pending_fail_all(skc_node *n, int status, const char *detail)
{
    size_t cnt = n->pend.calls.count;
    skci_call **v = cnt ? calloc(cnt, sizeof(*v)) : NULL;
    if (v == NULL) {
        return;
    }
    skci_call **w = v;
    skci_idmap_each(&n->pend.calls, collect_call, &w);
    for (size_t i = 0; i < cnt; i++) {
        skci_call_finish(n, v[i], status, NULL, NULL, 0, detail);
    }
    free(v);
}

void
skci_pending_fini(skc_node *n)
{
    skci_idmap_fini(&n->pend.calls);
    skci_heap_fini(&n->pend.deadlines);
    pthread_cond_destroy(&n->pend.timer_cond);
    pthread_mutex_destroy(&n->call_lock);
}
