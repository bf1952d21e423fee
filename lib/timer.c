/* timer.c -- the timer thread: it ends every pending call whose deadline
 * has passed, with the error that says why it never finished, and runs
 * health.c's periodic work (heartbeats, redials).
 */
#include "core.h"

#include <stddef.h>

static void
call_expire(skc_node *n, skci_call *c)
{
    skci_peer *p = c->peer;
    int32_t waited = (int32_t)(skci_now_ms() - c->start);
    if (c->state == SKCI_CALL_SENT) {
        skci_call_fail(n, c, SKC_ETIMEDOUT,
            "node '%s' (%s) %s: no reply within %d ms", p->name,
            skci_peer_addr(p), c->target, c->timeout_ms);
    } else if (p->map == SKCI_PEER_NOT_IN_MAP) {
        skci_call_fail(n, c, SKC_ENONODE,
            "node '%s' is not in the cluster map (waited %d ms for a reload to define it)",
            p->name, waited);
    } else {
        skci_call_fail(n, c, SKC_EUNREACHABLE,
            "node '%s' (%s): no connection within %d ms%s%s", p->name,
            skci_peer_addr(p), waited, p->last_error ? ": " : "",
            p->last_error ? p->last_error : "");
    }
}

static void *
timer_main(void *arg)
{
    skc_node *n = arg;
    skci_call_lock(n);
    while (!n->pend.timer_stop) {
        int64_t now = skci_now_ms();
        skci_heap_node *top;
        while ((top = skci_heap_top(&n->pend.deadlines)) != NULL &&
            top->when <= now) {
            skci_call *c =
                (skci_call *)((char *)top - offsetof(skci_call, hn));
            call_expire(n, c);
        }
        /* Heartbeats and redials, then sleep until the next deadline or
         * the next health check, whichever comes first. */
        int64_t until = skci_health_tick(n, now);
        top = skci_heap_top(&n->pend.deadlines);
        if (top != NULL && top->when < until) {
            until = top->when;
        }
        n->pend.timer_until = until;
        skci_call_wait(n, &n->pend.timer_cond, until);
        n->pend.timer_until = INT64_MIN; /* awake: nobody needs to wake it */
    }
    skci_call_unlock(n);
    return NULL;
}

int
skci_timer_start(skc_node *n)
{
    if (pthread_create(&n->pend.timer, NULL, timer_main, n) != 0) {
        return skci_error(SKC_ENOMEM, "cannot start the timer thread");
    }
    return 0;
}

void
skci_timer_stop(skc_node *n)
{
    skci_call_lock(n);
    n->pend.timer_stop = 1;
    pthread_cond_signal(&n->pend.timer_cond);
    skci_call_unlock(n);
    pthread_join(n->pend.timer, NULL);
}
