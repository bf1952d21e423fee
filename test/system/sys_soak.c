/* sys_soak.c -- load between two processes: many calls with 64 in flight,
 * payloads from 32 B to 1 MiB, plus sends; zero errors, RSS flat after
 * warm-up.
 *
 *   sys_soak SYSNODE CALLS [--inflight N] [--max-size BYTES] [--rss]
 *
 * Every reply is compared byte for byte with its request (@echo); every
 * 8th call is accompanied by a send to @sink, and at the end the server
 * must have counted every send.  With --rss the resident set of both
 * processes is sampled: after warm-up (the first 20 % of the calls) it
 * must stay flat (growth under 16 MiB + 10 %).  `make soak` runs it with
 * 1,000,000 calls (test/system/soak.sh), `make test` with 50,000, and the
 * valgrind / ASan runs with fewer.
 */
#include "sys.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PATTERN (1024 * 1024 + 4096)
#define HBUCKETS 20000 /* 10 us each: up to 200 ms, then overflow */

typedef struct slot {
    size_t off, len;
    int64_t t0_us;
    int free;
} slot;

static uint8_t *pattern;
static slot *slots;
static int nslots;
static pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int inflight;
static long done, errors, hist[HBUCKETS + 1];
static int64_t lat_max_us;
static char first_error[700];
static unsigned long long bytes;

static int64_t
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
on_reply(int status, const void *data, size_t len, const char *detail,
    void *arg)
{
    slot *s = arg;
    int ok = status == SKC_OK && len == s->len &&
        (len == 0 || memcmp(data, pattern + s->off, len) == 0);
    int64_t lat = now_us() - s->t0_us;
    pthread_mutex_lock(&lk);
    if (!ok && errors++ == 0) {
        snprintf(first_error, sizeof(first_error), "%s: %s (len %zu, want "
            "%zu)", skc_errname(status), status ? detail : "wrong bytes",
            len, s->len);
    }
    hist[lat / 10 < HBUCKETS ? lat / 10 : HBUCKETS]++;
    if (lat > lat_max_us) {
        lat_max_us = lat;
    }
    bytes += 2 * (unsigned long long)s->len;
    done++;
    s->free = 1;
    inflight--;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&lk);
}

static size_t
pick_size(unsigned *seed, long i, size_t max)
{
    size_t n;
    unsigned r = (unsigned)rand_r(seed) % 1000;
    if (i % 1009 == 0) {
        n = 32;
    } else if (i % 1013 == 0) {
        n = 1024 * 1024;
    } else if (r < 800) {
        n = 32 + (size_t)rand_r(seed) % (512 - 32 + 1);
    } else if (r < 950) {
        n = 512 + (size_t)rand_r(seed) % (16 * 1024 - 512 + 1);
    } else if (r < 990) {
        n = 16 * 1024 + (size_t)rand_r(seed) % (240 * 1024 + 1);
    } else {
        n = 256 * 1024 + (size_t)rand_r(seed) % (768 * 1024 + 1);
    }
    return n < max ? n : max;
}

static int64_t
percentile(double p)
{
    long total = 0, acc = 0;
    for (int i = 0; i <= HBUCKETS; i++) {
        total += hist[i];
    }
    for (int i = 0; i <= HBUCKETS; i++) {
        acc += hist[i];
        if (acc >= (long)(p * (double)total)) {
            return i == HBUCKETS ? lat_max_us : (int64_t)i * 10 + 5;
        }
    }
    return lat_max_us;
}


int
main(int argc, char **argv)
{
    sys_init("soak", 3000);
    CHECK(argc >= 3, "usage: sys_soak SYSNODE CALLS [--inflight N] "
        "[--max-size BYTES] [--rss]");
    long calls = atol(argv[2]);
    size_t max_size = 1024 * 1024;
    int check_rss = 0;
    nslots = 64;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--inflight") == 0 && i + 1 < argc) {
            nslots = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--max-size") == 0 && i + 1 < argc) {
            max_size = (size_t)atol(argv[++i]);
        } else if (strcmp(argv[i], "--rss") == 0) {
            check_rss = 1;
        }
    }
    pattern = malloc(PATTERN);
    slots = calloc((size_t)nslots, sizeof(*slots));
    CHECK(pattern != NULL && slots != NULL, "memory");
    unsigned seed = 42;
    for (size_t i = 0; i < PATTERN; i++) {
        pattern[i] = (uint8_t)rand_r(&seed);
    }
    for (int i = 0; i < nslots; i++) {
        slots[i].free = 1;
    }

    static sys_proc srv;
    char url[512];
    char *sargv[] = { argv[1], "--name", "srv", "127.0.0.1:0", NULL };
    sys_spawn(&srv, "srv", sargv, sys_path("srv.log"), 1);
    sys_expect(&srv, "LISTENING", url, sizeof(url), sys_ms(20000));
    skc_node *cli = sys_client("soaker", 0);
    CHECK(skc_node_map_set(cli, "srv", url) == SKC_OK, "map_set");
    char out[600];
    int rc = sys_call(cli, "srv", "@echo", "hi", 2, sys_ms(10000), out,
        sizeof(out));
    CHECK(rc == SKC_OK, "warm-up: %s (%s)", skc_errname(rc), out);

    long sends = 0;
    long warm_at = calls / 5;
    long rss_c_warm = 0, rss_s_warm = 0, rss_c_max = 0, rss_s_max = 0;
    long progress_every = calls / 10 > 0 ? calls / 10 : 1;
    int64_t t_start = sys_now_ms();
    for (long i = 0; i < calls; i++) {
        size_t len = pick_size(&seed, i, max_size);
        size_t off = (size_t)rand_r(&seed) % (PATTERN - len);
        pthread_mutex_lock(&lk);
        while (inflight >= nslots) {
            pthread_cond_wait(&cv, &lk);
        }
        slot *s = NULL;
        for (int k = 0; k < nslots; k++) {
            if (slots[k].free) {
                s = &slots[k];
                break;
            }
        }
        s->free = 0;
        s->off = off;
        s->len = len;
        s->t0_us = now_us();
        inflight++;
        pthread_mutex_unlock(&lk);
        rc = skc_node_call_async(cli, "srv", "@echo", pattern + off, len,
            sys_ms(30000), on_reply, s);
        if (rc != SKC_OK) {
            on_reply(rc, NULL, 0, skc_last_error(), s);
        }
        if (i % 8 == 0) {
            size_t sl = 16 + (size_t)(i % 240);
            rc = skc_node_send(cli, "srv", "@sink", pattern + (i % 4096),
                sl);
            CHECK(rc == SKC_OK, "send %ld: %s (%s)", i, skc_errname(rc),
                skc_last_error());
            sends++;
        }
        if (i > 0 && i % progress_every == 0) {
            long rc_kb = sys_rss_kb(0), rs_kb = sys_rss_kb(srv.pid);
            if (i >= warm_at && rss_c_warm == 0) {
                rss_c_warm = rc_kb;
                rss_s_warm = rs_kb;
            }
            if (i >= warm_at) {
                rss_c_max = rc_kb > rss_c_max ? rc_kb : rss_c_max;
                rss_s_max = rs_kb > rss_s_max ? rs_kb : rss_s_max;
            }
            pthread_mutex_lock(&lk);
            long e = errors;
            pthread_mutex_unlock(&lk);
            sys_log("%ld calls, %ld errors, rss caller %ld KiB server %ld "
                "KiB, %.1f s", i, e, rc_kb, rs_kb,
                (double)(sys_now_ms() - t_start) / 1000.0);
        }
    }
    pthread_mutex_lock(&lk);
    while (inflight > 0) {
        pthread_cond_wait(&cv, &lk);
    }
    pthread_mutex_unlock(&lk);
    double secs = (double)(sys_now_ms() - t_start) / 1000.0;
    long rc_end = sys_rss_kb(0), rs_end = sys_rss_kb(srv.pid);
    rss_c_max = rc_end > rss_c_max ? rc_end : rss_c_max;
    rss_s_max = rs_end > rss_s_max ? rs_end : rss_s_max;

    /* every send arrived */
    long got = 0;
    int64_t until = sys_now_ms() + sys_ms(20000);
    do {
        got = sys_sink_count(cli, "srv", sys_ms(10000));
        if (got >= sends) {
            break;
        }
        sys_sleep_ms(50);
    } while (sys_now_ms() < until);

    sys_log("FIGURE soak calls=%ld inflight=%d max_size=%zu errors=%ld "
        "sends=%ld sends_delivered=%ld secs=%.1f calls_per_s=%.0f "
        "MB_per_s=%.1f p50_us=%lld p99_us=%lld max_us=%lld "
        "rss_caller_kb=%ld/%ld/%ld rss_server_kb=%ld/%ld/%ld "
        "(warm/max/end)", calls, nslots, max_size, errors, sends, got, secs,
        (double)calls / secs, (double)bytes / secs / 1e6,
        (long long)percentile(0.5), (long long)percentile(0.99),
        (long long)lat_max_us, rss_c_warm, rss_c_max, rc_end, rss_s_warm,
        rss_s_max, rs_end);
    CHECK(errors == 0, "%ld of %ld calls failed, first: %s", errors, calls,
        first_error);
    CHECK(done == calls, "%ld of %ld calls completed", done, calls);
    CHECK(got == sends, "the server counted %ld of %ld sends", got, sends);
    if (check_rss && rss_c_warm > 0) {
        CHECK(rss_c_max - rss_c_warm < 16 * 1024 + rss_c_warm / 10,
            "caller RSS grew after warm-up: %ld -> %ld KiB", rss_c_warm,
            rss_c_max);
        CHECK(rss_s_max - rss_s_warm < 16 * 1024 + rss_s_warm / 10,
            "server RSS grew after warm-up: %ld -> %ld KiB", rss_s_warm,
            rss_s_max);
    }
    CHECK(skc_node_destroy(cli) == SKC_OK, "destroy");
    sys_stop_clean(&srv, sys_ms(20000));
    free(pattern);
    free(slots);
    sys_log("PASS");
    return 0;
}
