/* timer.c -- the timer thread: it ends every pending call whose deadline
 * has passed, with the error that says why it never finished, and runs
 * health.c's periodic work (heartbeats, redials).
 */
#include "core.h"

#include <stddef.h>
#include <stdio.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

static void
call_expire(skc_node *n, skci_call *c)
{
    skci_peer *p = c->peer;
    int32_t waited = (int32_t)(skci_now_ms() - c->start);
    if (c->mode == SKCI_MODE_SEND) {
        /* a send queued for a link that did not come up in time: it was
         * told SKC_OK, so it counts as lost (pending.c logs it) */
        SKCI_COUNT(n, sends_lost, 1);
    }
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

/* How often connections are checked for the hello and idle timeouts. */
#define SWEEP_EVERY_MS 1000

/* Runs fn on the node's server under open_lock (no other skc lock held).
 * open_lock is only tried: destroy holds it while it stops this thread.
 * Returns 0 when it was busy; 1 otherwise, also when fn did not run (no
 * server, or the node is closing). */
static int
with_server(skc_node *n, void (*fn)(skc_node *, skci_server *))
{
    if (pthread_mutex_trylock(&n->open_lock) != 0) {
        return 0;
    }
    if (n->server != NULL && !atomic_load(&n->closing)) {
        fn(n, n->server);
    }
    pthread_mutex_unlock(&n->open_lock);
    return 1;
}

static void
sweep_server(skc_node *n, skci_server *s)
{
    SKCI_COUNT(n, conns_closed,
        skci_server_sweep(s, n->hello_timeout_ms, n->idle_timeout_ms));
}

static void
resume_server(skc_node *n, skci_server *s)
{
    (void)n;
    skci_server_pull_resume(s);
}

/* Closes the connections past the hello or idle timeout (call_lock held
 * on entry and on return, released meanwhile: the close runs transport
 * callbacks). */
static void
sweep(skc_node *n)
{
    if (n->hello_timeout_ms < 0 && n->idle_timeout_ms < 0) {
        return;
    }
    skci_call_unlock(n);
    with_server(n, sweep_server);
    skci_call_lock(n);
}

/* glibc keeps what a process frees for its next allocations, so a node
 * that held a peer's large frames (16 MiB calls, sends queued up to the
 * mailbox limits, half-sent frames) would stay at its peak RSS for good.
 * The timer gives freed memory back (malloc_trim) when the resident
 * memory that no live allocation accounts for (RSS minus glibc's bytes in
 * use, the "gap") is TRIM_OVER_KB above what it was after the last trim
 * (or at the start; lowered when the RSS falls below it), glibc holds that
 * much free, and the mailboxes are about empty (so a node under load does not
 * give back what it needs again at once).  The gap, not the RSS, is compared:
 * a trim while frames are still held (the tail of an attack) must not raise
 * the level the next trim waits for, or the memory those frames free later
 * would stay (RSS 42-91 MiB above idle for good in attack_bigcalls with the
 * RSS rule).  A trim that cannot give much back (fragmentation) raises the
 * level, so it is not repeated in vain every TRIM_EVERY_MS.  malloc_trim
 * is process-wide; two nodes in a process trim independently, which costs
 * a walk of the heap each, nothing more.  glibc 2.33 or newer (mallinfo2)
 * only. */
#if defined(__GLIBC__) &&                                                     \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#define TRIM_GLIBC 1
#endif
/* Not under AddressSanitizer: its allocator replaces glibc's, so there is
 * nothing to trim, and glibc's malloc_trim/mallinfo2 would then initialise
 * glibc's malloc from whichever timer threads get there first (ptmalloc_init
 * is not thread-safe): two nodes' timers racing there attach two threads to
 * main_arena's one count, and the second thread's exit aborts ("malloc
 * assertion failure in __malloc_arena_thread_freeres"; api_lanes under
 * ASan, 2 runs of 5). */
#if defined(__SANITIZE_ADDRESS__)
#undef TRIM_GLIBC
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#undef TRIM_GLIBC
#endif
#endif
#define TRIM_OVER_KB (32 * 1024)
#define TRIM_EVERY_MS 2000
#define TRIM_QUIET_BYTES (1024 * 1024)

#ifdef TRIM_GLIBC
/* This process's resident set in KiB, or -1. */
static long
rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    long size, res = -1;
    if (f == NULL) {
        return -1;
    }
    if (fscanf(f, "%ld %ld", &size, &res) != 2) {
        res = -1;
    }
    fclose(f);
    return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* rss minus what glibc has handed out (heap and mmapped chunks), KiB;
 * *free_kb receives what glibc holds free. */
static long
gap_kb(long rss, long *free_kb)
{
    struct mallinfo2 mi = mallinfo2();
    *free_kb = (long)(mi.fordblks / 1024);
    return rss - (long)((mi.uordblks + mi.hblkhd) / 1024);
}
#endif

/* call_lock held on entry and return, released meanwhile (a trim of a
 * large heap takes milliseconds). */
static void
trim(skc_node *n, int64_t now)
{
#ifdef TRIM_GLIBC
    if (now < n->pend.trim_at) {
        return;
    }
    int first = n->pend.trim_at == 0;
    n->pend.trim_at = now + TRIM_EVERY_MS;
    long kb = rss_kb();
    /* The gap is at most the RSS, so the level comes down with the RSS:
     * frames of 4 MiB or more are mapped outside glibc (skc's NNG patch),
     * so frames held during a trim count in the gap measured after it,
     * and go back to the system by themselves when freed; the level must
     * not stay up by what they held. */
    if (kb > 0 && !first && kb < n->pend.trim_base_kb) {
        n->pend.trim_base_kb = kb;
    }
    /* ... and mallinfo2 (which locks every arena) only when a trim may be
     * due */
    if (kb < 0 || (!first && kb <= n->pend.trim_base_kb + TRIM_OVER_KB)) {
        return;
    }
    skci_call_unlock(n);
    long free_kb, gap = gap_kb(kb, &free_kb);
    if (first) {
        n->pend.trim_base_kb = gap; /* the start */
    } else if (gap > n->pend.trim_base_kb + TRIM_OVER_KB &&
        free_kb >= TRIM_OVER_KB) {
        pthread_mutex_lock(&n->dq.lock);
        size_t queued = n->dq.queued_bytes;
        pthread_mutex_unlock(&n->dq.lock);
        if (queued < TRIM_QUIET_BYTES) {
            malloc_trim(0);
            SKCI_COUNT(n, mem_trims, 1);
            long after = rss_kb();
            if (after > 0) {
                n->pend.trim_base_kb = gap_kb(after, &free_kb);
            }
            skci_node_log(n, SKC_LOG_INFO,
                "gave freed memory back to the system: RSS %ld -> %ld KiB", kb,
                after);
        }
    }
    skci_call_lock(n);
#else
    (void)n;
    (void)now;
#endif
}

/* Offers the parked send to its mailbox again and, once it is in, reads
 * the send port again (call_lock held on entry and return, released
 * meanwhile). */
static void
unpark(skc_node *n)
{
    n->pend.unpark_at = 0;
    skci_call_unlock(n);
    int64_t again = skci_serve_unpark(n);
    pthread_mutex_lock(&n->serve.lock);
    int resume = n->serve.resume;
    pthread_mutex_unlock(&n->serve.lock);
    if (resume && with_server(n, resume_server)) {
        pthread_mutex_lock(&n->serve.lock);
        n->serve.resume = 0;
        pthread_mutex_unlock(&n->serve.lock);
    } else if (resume && again == 0) {
        again = skci_now_ms() + 10; /* open_lock was busy */
    }
    skci_call_lock(n);
    if (again != 0 && (n->pend.unpark_at == 0 || again < n->pend.unpark_at)) {
        n->pend.unpark_at = again;
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
        if (n->pend.unpark_at != 0 && now >= n->pend.unpark_at) {
            unpark(n);
            continue; /* call_lock was released: look again */
        }
        if (now >= n->pend.sweep_at) {
            n->pend.sweep_at = now + SWEEP_EVERY_MS;
            sweep(n);
            trim(n, now);
            continue; /* call_lock was released: look again */
        }
        /* Heartbeats and redials, then sleep until the next deadline, the
         * next health check or the next sweep, whichever comes first. */
        int64_t until = skci_health_tick(n, now);
        if (n->pend.sweep_at < until) {
            until = n->pend.sweep_at;
        }
        if (n->pend.unpark_at != 0 && n->pend.unpark_at < until) {
            until = n->pend.unpark_at;
        }
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
