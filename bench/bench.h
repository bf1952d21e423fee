/* bench.h -- shared pieces of skc_bench: options of the child roles,
 * timing, RSS, the one-line result protocol between children and driver.
 *
 * skc_bench is one program with five roles (argv[1]):
 *   run         the driver: spawns servers and clients as child processes,
 *               alternates skc and raw NNG per case, prints the table and
 *               writes the JSON (bench_driver.c)
 *   server      an skc node with the bench services (bench_skc.c)
 *   client      an skc client for one case (bench_skc.c)
 *   raw_server  the same services in plain NNG req/rep + push/pull
 *   raw_client  the same cases in plain NNG (bench_raw.c)
 *
 * Children talk to the driver through stdout lines:
 *   server:  "ADDR <rep-url> [<pull-url>]" once listening
 *   client:  "RESULT key=value ..." once measured
 * A server lives until its stdin reaches EOF (the driver closes the pipe),
 * so a driver that dies takes its servers with it.
 */
#ifndef SKC_BENCH_H
#define SKC_BENCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Service (skc) / behaviour (raw) names the cases use. */
#define BENCH_PEER "srv"

/* Send case: the most messages a sender keeps unconfirmed by the
 * receiver's count (it asks for the count when it gets there).  skc queues
 * at most 65536 one-way messages per link (lib/call.c push_backlog) and
 * skc_node_send does not block, so a sender that never looks would only
 * measure how fast messages are dropped; raw NNG's blocking send pushes
 * back by itself.  Both sides use the same window, so both pay the same
 * few stats round trips. */
#define BENCH_SEND_WINDOW 20000ULL

/* Cases a client runs. */
enum bench_case {
    BC_CALL = 1, /* K calls in flight, callbacks re-issue (rate) */
    BC_LAT,      /* 1 blocking call at a time (rate, p50, p99) */
    BC_SEND,     /* one-way messages, counted at the receiver */
    BC_HOLD,     /* N calls the server never answers (memory) */
    BC_HOL       /* head-of-line: small calls' p99, idle and beside a
                    16 MiB call in flight to the same peer */
};

/* BC_HOL: the large call's payload. */
#define BENCH_HOL_BIG (16u * 1024 * 1024)

typedef struct bench_opts {
    const char *addr;    /* server REP URL */
    const char *push;    /* raw: server PULL URL */
    int bcase;           /* enum bench_case */
    int inflight;        /* BC_CALL window */
    size_t size;         /* request payload bytes */
    int echo;            /* reply carries the payload back */
    int warm_ms;         /* run before measuring */
    int dur_ms;          /* measured time */
    int hold_n;          /* BC_HOLD calls */
    int max_serving;     /* server: contexts (skc max_serving / raw pool) */
    int workers;         /* skc: worker threads, 0 = default */
    const char *variant; /* skc: plain|inline; raw: a diagnostic variant,
                            see bench_raw.c */
} bench_opts;

int bench_parse_opts(bench_opts *o, int argc, char **argv);

/* Monotonic clock; the same clock in every process of the machine, so a
 * server's timestamps compare with a client's. */
int64_t bench_now_ns(void);
void bench_sleep_ms(int ms);

/* Reads a receiver's counters (sends seen, clock, time of the last one,
 * held calls) through a client c of either kind; 0 or -1. */
typedef int (*bench_stats_fn)(void *c, unsigned long long *sends,
    long long *now, long long *last, unsigned long long *held);

/* The rest of a call case (BC_CALL) once its o->inflight calls are
 * going, each completion counting into *ops or *errs and issuing the next
 * call unless *stop: warms up, counts completed calls over o->dur_ms,
 * sets *stop, waits (up to 10 s) for *active to reach 0, and writes the
 * RESULT line. */
void bench_measure_window(atomic_ullong *ops, atomic_ullong *errs,
    atomic_int *stop, atomic_int *active, const bench_opts *o);

/* Sets *stop and waits up to wait_ms for *active to reach 0. */
void bench_stop_window(atomic_int *stop, atomic_int *active, int wait_ms);

/* One blocking round trip of client c (reply freed); 0 or -1. */
typedef int (*bench_roundtrip_fn)(void *c);

/* The latency case (BC_LAT): round trips one at a time for o->warm_ms,
 * then o->dur_ms measured; writes the RESULT line with p50/p99.  0. */
int bench_run_lat(bench_roundtrip_fn fn, void *c, const bench_opts *o);

/* BC_HOL: starts (on = 1) client c's large calls -- BENCH_HOL_BIG bytes,
 * one in flight at a time, the next issued as each ends -- or stops them
 * (on = 0; returns once none is in flight).  Stop returns how many
 * completed, or -1 if one failed. */
typedef long (*bench_big_fn)(void *c, int on);

/* The head-of-line case (BC_HOL): small round trips one at a time (fn)
 * for o->warm_ms + o->dur_ms on an idle link, then as long again while
 * big keeps a large call in flight to the same peer; writes the RESULT
 * line with both p50/p99 and the large calls completed.  0, or 1 when a
 * large call failed or none completed. */
int bench_run_hol(
    bench_roundtrip_fn fn, bench_big_fn big, void *c, const bench_opts *o);

/* Sends one message for client c: 0 sent, 1 refused for now (a full
 * backlog: the caller has already yielded), -1 failed. */
typedef int (*bench_send_fn)(void *c);

/* The send case (BC_SEND): sends for o->warm_ms + o->dur_ms, keeping at
 * most BENCH_SEND_WINDOW messages unconfirmed by the receiver's count,
 * then waits until the receiver has counted everything (or its count
 * stops moving for 1 s, or 15 s pass) and writes the RESULT line: the
 * rate at the receiver.  0, or 1 if its counters could not be read. */
int bench_run_send(
    bench_stats_fn stats, bench_send_fn send, void *c, const bench_opts *o);

/* VmRSS of a process in KiB (pid 0 = this one), -1 if unreadable. */
long bench_rss_kb(int pid);

/* Latency samples (ns), grown as needed. */
typedef struct bench_lat {
    int64_t *v;
    size_t n, cap;
} bench_lat;

void bench_lat_add(bench_lat *l, int64_t ns);
/* q in [0,1]; sorts in place; microseconds. */
double bench_lat_pct_us(bench_lat *l, double q);
void bench_lat_free(bench_lat *l);

/* Writes "RESULT ..." plus newline to stdout and flushes. */
void bench_result(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Server side: blocks until stdin reaches EOF (or read fails). */
void bench_wait_stdin_eof(void);

/* Stats text a server returns for "stats": the sink count, the time of the
 * server's clock when answering, the last sink arrival, and held calls. */
#define BENCH_STATS_FMT "sends=%llu now=%lld last=%lld held=%llu"
int bench_stats_parse(const char *text, size_t len, unsigned long long *sends,
    long long *now, long long *last, unsigned long long *held);

/* The NNG version the program runs with ("1.5.2"). */
const char *bench_nng_version(void);

int bench_skc_server(const bench_opts *o);
int bench_skc_client(const bench_opts *o);
int bench_raw_server(const bench_opts *o);
int bench_raw_client(const bench_opts *o);
int bench_driver(int argc, char **argv);

#endif
