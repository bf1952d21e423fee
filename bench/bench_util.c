/* bench_util.c -- option parsing, clocks, RSS, latency percentiles and the
 * result line shared by every role of skc_bench. */
#include "bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t
bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void
bench_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { }
}

long
bench_rss_kb(int pid)
{
    char path[64];
    if (pid == 0) {
        snprintf(path, sizeof(path), "/proc/self/status");
    } else {
        snprintf(path, sizeof(path), "/proc/%d/status", pid);
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* CPU time (user + system, seconds) of process pid, from /proc (clock
 * ticks, so 10 ms steps); -1 if it cannot be read. */
static double
proc_cpu_s(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* After the command name's ")": state is field 3, utime 14, stime 15. */
    char *p = strrchr(buf, ')');
    unsigned long ut, st;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
            &ut, &st) != 2) {
        return -1;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* This process's CPU time and, if SKC_BENCH_SERVER_PID names it, the
 * server's: the sum, in seconds; -1 if the server's cannot be read. */
static double
pair_cpu_s(void)
{
    const char *sp = getenv("SKC_BENCH_SERVER_PID");
    if (sp == NULL || atol(sp) <= 0) {
        return -1;
    }
    double srv = proc_cpu_s(atol(sp));
    struct timespec ts;
    if (srv < 0 || clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) {
        return -1;
    }
    return srv + (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
bench_lat_add(bench_lat *l, int64_t ns)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4096;
        int64_t *v = realloc(l->v, nc * sizeof(*v));
        if (v == NULL) {
            return; /* drop the sample rather than the run */
        }
        l->v = v;
        l->cap = nc;
    }
    l->v[l->n++] = ns;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

double
bench_lat_pct_us(bench_lat *l, double q)
{
    if (l->n == 0) {
        return 0.0;
    }
    qsort(l->v, l->n, sizeof(*l->v), cmp_i64);
    size_t i = (size_t)(q * (double)(l->n - 1) + 0.5);
    if (i >= l->n) {
        i = l->n - 1;
    }
    return (double)l->v[i] / 1000.0;
}

void
bench_lat_free(bench_lat *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

void
bench_result(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("RESULT ", stdout);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

void
bench_wait_stdin_eof(void)
{
    char buf[256];
    for (;;) {
        ssize_t r = read(0, buf, sizeof(buf));
        if (r == 0 || (r < 0 && errno != EINTR)) {
            return;
        }
    }
}

int
bench_stats_parse(const char *text, size_t len, unsigned long long *sends,
    long long *now, long long *last, unsigned long long *held)
{
    char buf[256];
    if (len >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    return sscanf(buf, BENCH_STATS_FMT, sends, now, last, held) == 4 ? 0 : -1;
}

static int
opt_case(const char *s)
{
    if (strcmp(s, "call") == 0) {
        return BC_CALL;
    }
    if (strcmp(s, "lat") == 0) {
        return BC_LAT;
    }
    if (strcmp(s, "send") == 0) {
        return BC_SEND;
    }
    if (strcmp(s, "hold") == 0) {
        return BC_HOLD;
    }
    if (strcmp(s, "hol") == 0) {
        return BC_HOL;
    }
    return -1;
}

int
bench_parse_opts(bench_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->addr = "tcp://127.0.0.1:0";
    o->bcase = BC_CALL;
    o->inflight = 1;
    o->size = 32;
    o->warm_ms = 300;
    o->dur_ms = 2000;
    o->hold_n = 10000;
    o->max_serving = 0;
    o->variant = "plain";
    for (int i = 0; i < argc; i++) {
        const char *k = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            fprintf(stderr, "skc_bench: option %s needs a value\n", k);
            return -1;
        }
        i++;
        if (strcmp(k, "--addr") == 0) {
            o->addr = v;
        } else if (strcmp(k, "--push") == 0) {
            o->push = v;
        } else if (strcmp(k, "--case") == 0) {
            if ((o->bcase = opt_case(v)) < 0) {
                fprintf(stderr, "skc_bench: unknown case %s\n", v);
                return -1;
            }
        } else if (strcmp(k, "--inflight") == 0) {
            o->inflight = atoi(v);
        } else if (strcmp(k, "--size") == 0) {
            o->size = (size_t)strtoull(v, NULL, 10);
        } else if (strcmp(k, "--echo") == 0) {
            o->echo = atoi(v);
        } else if (strcmp(k, "--warm") == 0) {
            o->warm_ms = atoi(v);
        } else if (strcmp(k, "--dur") == 0) {
            o->dur_ms = atoi(v);
        } else if (strcmp(k, "--hold") == 0) {
            o->hold_n = atoi(v);
        } else if (strcmp(k, "--max-serving") == 0) {
            o->max_serving = atoi(v);
        } else if (strcmp(k, "--workers") == 0) {
            o->workers = atoi(v);
        } else if (strcmp(k, "--variant") == 0) {
            o->variant = v;
        } else {
            fprintf(stderr, "skc_bench: unknown option %s\n", k);
            return -1;
        }
    }
    if (o->inflight < 1 || o->hold_n < 1 || o->dur_ms < 1) {
        fprintf(stderr, "skc_bench: bad numeric option\n");
        return -1;
    }
    return 0;
}

/* After a send burst: polls the receiver until it has counted `sent`, its
 * count stops moving for 1 s, or 15 s pass.  *count and *last get the
 * final counters.  0, or -1 if the counters could not be read. */
static int
bench_settle(bench_stats_fn fn, void *c, unsigned long long sent,
    unsigned long long *count, long long *last)
{
    unsigned long long s1 = 0, prev = ~0ULL, h;
    long long n1;
    int64_t stable_since = bench_now_ns();
    int64_t give_up = stable_since + 15000000000LL;
    for (;;) {
        if (fn(c, &s1, &n1, last, &h) != 0) {
            return -1;
        }
        int64_t now = bench_now_ns();
        if (s1 >= sent) {
            break;
        }
        if (s1 != prev) {
            prev = s1;
            stable_since = now;
        } else if (now - stable_since > 1000000000LL || now > give_up) {
            break;
        }
        bench_sleep_ms(20);
    }
    *count = s1;
    return 0;
}

void
bench_stop_window(atomic_int *stop, atomic_int *active, int wait_ms)
{
    atomic_store(stop, 1);
    int64_t until = bench_now_ns() + (int64_t)wait_ms * 1000000;
    while (atomic_load(active) > 0 && bench_now_ns() < until) {
        bench_sleep_ms(2);
    }
}

void
bench_measure_window(atomic_ullong *ops, atomic_ullong *errs, atomic_int *stop,
    atomic_int *active, const bench_opts *o)
{
    bench_sleep_ms(o->warm_ms);
    unsigned long long c0 = atomic_load(ops);
    double cpu0 = pair_cpu_s();
    int64_t t0 = bench_now_ns();
    bench_sleep_ms(o->dur_ms);
    unsigned long long c1 = atomic_load(ops);
    double cpu1 = pair_cpu_s();
    int64_t t1 = bench_now_ns();
    unsigned long long e = atomic_load(errs);
    bench_stop_window(stop, active, 10000);
    /* cpu_us: client + server CPU per call over the window (when the
     * driver named the server). */
    double cpu_us = cpu0 >= 0 && cpu1 >= 0 && c1 > c0
        ? (cpu1 - cpu0) * 1e6 / (double)(c1 - c0)
        : -1;
    bench_result("ops=%llu secs=%.6f errors=%llu cpu_us=%.2f", c1 - c0,
        (double)(t1 - t0) / 1e9, e, cpu_us);
}

/* Round trips of fn one at a time for warm_ms, then dur_ms measured into
 * *lat; *ops, *errs and *secs (the measured time) are set. */
static void
lat_sample(bench_roundtrip_fn fn, void *c, int warm_ms, int dur_ms,
    bench_lat *lat, unsigned long long *ops_out, unsigned long long *errs_out,
    double *secs)
{
    unsigned long long ops = 0, errs = 0;
    int64_t start = bench_now_ns();
    int64_t t0 = start + (int64_t)warm_ms * 1000000;
    int64_t end = t0 + (int64_t)dur_ms * 1000000;
    int64_t now = start, measured_from = 0;
    while (now < end) {
        int64_t a = bench_now_ns();
        int rc = fn(c);
        now = bench_now_ns();
        if (a < t0) {
            continue;
        }
        if (measured_from == 0) {
            measured_from = a;
        }
        if (rc != 0) {
            errs++;
            continue;
        }
        ops++;
        bench_lat_add(lat, now - a);
    }
    *ops_out = ops;
    *errs_out = errs;
    *secs = (double)(now - measured_from) / 1e9;
}

int
bench_run_lat(bench_roundtrip_fn fn, void *c, const bench_opts *o)
{
    bench_lat lat = { 0 };
    unsigned long long ops, errs;
    double secs;
    lat_sample(fn, c, o->warm_ms, o->dur_ms, &lat, &ops, &errs, &secs);
    double p50 = bench_lat_pct_us(&lat, 0.50);
    double p99 = bench_lat_pct_us(&lat, 0.99);
    bench_result("ops=%llu secs=%.6f errors=%llu p50_us=%.1f p99_us=%.1f", ops,
        secs, errs, p50, p99);
    bench_lat_free(&lat);
    return 0;
}

int
bench_run_hol(
    bench_roundtrip_fn fn, bench_big_fn big, void *c, const bench_opts *o)
{
    bench_lat idle = { 0 }, busy = { 0 };
    unsigned long long ops0, errs0, ops1, errs1;
    double secs0, secs1;
    lat_sample(fn, c, o->warm_ms, o->dur_ms, &idle, &ops0, &errs0, &secs0);
    long bigs = -1;
    if (big(c, 1) == 0) {
        /* the warm-up lets the first large call get under way */
        lat_sample(fn, c, o->warm_ms, o->dur_ms, &busy, &ops1, &errs1, &secs1);
        bigs = big(c, 0);
    } else {
        ops1 = errs1 = 0;
        secs1 = 0;
    }
    bench_result("ops=%llu secs=%.6f errors=%llu p50_idle_us=%.1f "
                 "p99_idle_us=%.1f p50_busy_us=%.1f p99_busy_us=%.1f "
                 "idle_ops=%llu big=%ld",
        ops1, secs1, errs0 + errs1 + (bigs < 0), bench_lat_pct_us(&idle, 0.50),
        bench_lat_pct_us(&idle, 0.99), bench_lat_pct_us(&busy, 0.50),
        bench_lat_pct_us(&busy, 0.99), ops0, bigs);
    bench_lat_free(&idle);
    bench_lat_free(&busy);
    return bigs > 0 ? 0 : 1;
}

int
bench_run_send(
    bench_stats_fn stats, bench_send_fn send, void *c, const bench_opts *o)
{
    unsigned long long sent = 0, errs = 0, full = 0, seen = 0, base;
    unsigned long long s0 = 0, h;
    long long n0 = 0, l;
    if (stats(c, &base, &l, &l, &h) != 0) {
        return 1;
    }
    int64_t start = bench_now_ns();
    int64_t t_warm = start + (int64_t)o->warm_ms * 1000000;
    int64_t end = t_warm + (int64_t)o->dur_ms * 1000000;
    int have0 = 0;
    for (;;) {
        int64_t now = bench_now_ns();
        if (!have0 && now >= t_warm) {
            /* Pairs the receiver's count with the receiver's clock. */
            if (stats(c, &s0, &n0, &l, &h) != 0) {
                return 1;
            }
            have0 = 1;
        }
        if (now >= end) {
            break;
        }
        if (sent - seen > BENCH_SEND_WINDOW) {
            /* Flow control: see BENCH_SEND_WINDOW. */
            unsigned long long got;
            if (stats(c, &got, &l, &l, &h) != 0) {
                return 1;
            }
            seen = got - base;
            if (sent - seen > BENCH_SEND_WINDOW) {
                bench_sleep_ms(1);
            }
            continue;
        }
        for (int i = 0; i < 256; i++) {
            int rc = send(c);
            if (rc == 0) {
                sent++;
            } else if (rc > 0) {
                full++;
            } else {
                errs++;
            }
        }
    }
    /* Wait until the receiver has counted everything (or stops moving). */
    unsigned long long s1 = 0;
    long long last = 0;
    if (bench_settle(stats, c, sent, &s1, &last) != 0) {
        return 1;
    }
    bench_result("ops=%llu secs=%.6f errors=%llu sent=%llu lost=%llu "
                 "backlog_full=%llu",
        s1 - s0, (double)(last - n0) / 1e9, errs, sent,
        sent > s1 ? sent - s1 : 0ULL, full);
    return 0;
}
