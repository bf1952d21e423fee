/* sys.h -- helpers for skc's multi-process system tests (test/system).
 *
 * A driver is a small C program that spawns nodes (skc_sysnode, or any
 * command) as child processes, talks to them over pipes, makes its own
 * skc node for the client side, and checks what happens.  Every child is
 * registered here: whatever way the driver ends (return, exit, a failed
 * check, SIGTERM from ctest, the watchdog alarm), every child still alive
 * is killed by PID and every cleanup hook runs.  Children also get
 * PR_SET_PDEATHSIG, so a driver killed with SIGKILL takes them along.
 *
 * Environment read by the helpers:
 *   SKC_SYS_WRAP   a command prefix for spawned nodes, words separated by
 *                  spaces (e.g. "valgrind -q --error-exitcode=99"); used by
 *                  the valgrind variants of the tests.
 *   SKC_SYS_VERBOSE  set: lines skipped by sys_expect() are shown.
 *   SKC_SYS_SLOW   a factor (default 1) applied by sys_ms() to the time
 *                  bounds a driver checks, for slow runs (valgrind).
 */
#ifndef SKC_TEST_SYSTEM_SYS_H
#define SKC_TEST_SYSTEM_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "skc/skc.h"

#define SYS_SKIP 77 /* ctest SKIP_RETURN_CODE */

/* A failed check: prints where and why, then exit(1) (children killed). */
#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            sys_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                \
        }                                                                    \
    } while (0)

void sys_fail(const char *file, int line, const char *cond, const char *fmt,
    ...) __attribute__((format(printf, 4, 5), noreturn));

/* Prints "[<test>] text" to stdout (unbuffered for ctest logs). */
void sys_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Names the test in messages, installs the exit/signal cleanup and a
 * watchdog: after `watchdog_s` seconds (scaled by SKC_SYS_SLOW) the
 * driver fails, killing its children first. */
void sys_init(const char *test_name, int watchdog_s);

/* Cleanup hooks run (last registered first) on every exit path, also from
 * the signal handler: keep them simple (fork/exec, kill, unlink). */
void sys_atexit(void (*fn)(void *), void *arg);

/* Call in a fork()ed child that returns to test code: its exit must not
 * run the parent's cleanup. */
void sys_forked(void);

/* In slow (valgrind) runs, waits 300 ms: skc's background threads may
 * still be finishing right after skc_node_destroy (a known core bug that
 * skc.system.exitrace_valgrind covers); other tests let them end before
 * exiting.  The exit cleanup does the same. */
void sys_settle(void);

int64_t sys_now_ms(void);
void sys_sleep_ms(int ms);
/* ms scaled by SKC_SYS_SLOW. */
int sys_ms(int ms);

/* How late a call may end after its deadline before a test calls that a
 * bug: timers fire late on a loaded 2-core machine (ASan, valgrind and
 * other tests at once; 973 ms was seen), while a deadline that is not kept
 * ends at the 10 s default or never.  Use as
 * deadline + sys_ms(SYS_LATE_MS). */
#define SYS_LATE_MS 1500
int sys_slow(void);

/* ---- child processes ---- */

typedef struct sys_proc {
    char name[32];
    pid_t pid;
    int in_fd;   /* its stdin (write end), -1 if closed */
    int out_fd;  /* its stdout (read end) */
    char buf[16384];
    size_t blen;
    int eof;
    int status;  /* wait status once reaped */
    int reaped;
    char errpath[512]; /* its stderr goes here */
} sys_proc;

/* Starts argv (argv[0] searched in PATH)  p must be static (or live until
 * exit): the exit cleanup reads it. with stdin/stdout piped and
 * stderr appended to errpath (NULL: inherit).  With wrap != 0 the
 * SKC_SYS_WRAP prefix is put in front.  Returns 0 or -1 (fails the test
 * if it cannot fork). */
void sys_spawn(sys_proc *p, const char *name, char *const argv[],
    const char *errpath, int wrap);

/* Reads one line (without the newline) into line.  Returns 1, 0 on
 * timeout, -1 at end of file. */
int sys_readline(sys_proc *p, char *line, size_t size, int timeout_ms);

/* Reads lines until one starts with prefix; the rest of that line goes to
 * rest (may be NULL).  Other lines are skipped.  Fails the test
 * on timeout or end of file. */
void sys_expect(sys_proc *p, const char *prefix, char *rest, size_t size,
    int timeout_ms);

/* Writes a line to its stdin. */
void sys_send_line(sys_proc *p, const char *line);

/* Sends a signal if the child is still running. */
void sys_signal(sys_proc *p, int sig);

/* Waits up to timeout_ms for the child to exit; then SIGKILL.  Returns
 * the wait status (as waitpid), or -1 if it had to be killed. */
int sys_wait(sys_proc *p, int timeout_ms);

/* SIGTERM, wait; requires a clean exit (status 0): a node that leaks under
 * ASan or valgrind exits non-zero.  Fails the test otherwise. */
void sys_stop_clean(sys_proc *p, int timeout_ms);

/* SIGKILL and reap. */
void sys_kill9(sys_proc *p);

/* Resident set size in KiB of a process (0 = self), or -1. */
long sys_rss_kb(pid_t pid);

/* ---- files, ports, commands ---- */

/* A fresh directory under $TMPDIR (removed at exit with its files). */
const char *sys_tmpdir(void);
/* "<tmpdir>/<name>" in a static rotating buffer. */
const char *sys_path(const char *name);
void sys_write_file(const char *path, const char *text);
/* Reads a whole file (malloc'd, NUL-terminated); NULL if unreadable. */
char *sys_read_file(const char *path);
/* Counts occurrences of needle in a file (0 if unreadable). */
int sys_file_count(const char *path, const char *needle);

/* How many sends the sysnode `peer`'s @sink service has counted (its
 * reply is "sends=N bytes=M"); fails the test if the call fails within
 * timeout_ms. */
long sys_sink_count(skc_node *cli, const char *peer, int32_t timeout_ms);

/* Records node cli's monitor reports as lines "peer up|down reason".
 * One recorder per process. */
void sys_monitor_start(skc_node *cli);
int sys_monitor_seen(const char *text);
/* Fails the test unless a report containing text comes within ms
 * (scaled). */
void sys_monitor_wait(const char *text, int ms);
void sys_monitor_clear(void);

/* Open file descriptors of process pid (0: this process, not counting the
 * one this call uses), or -1. */
int sys_fd_count(pid_t pid);
/* Waits up to timeout_ms for needle to appear in a file. */
int sys_file_wait(const char *path, const char *needle, int timeout_ms);

/* A TCP port on 127.0.0.1 that nothing listens on right now. */
int sys_free_port(void);

/* ---- raw TCP, as an attacker (or a peer in another language) talks ---- */

/* A TCP connection to 127.0.0.1:port within ms (non-blocking connect, the
 * socket stays non-blocking: a node that stopped accepting must not hang
 * the test), or -1. */
int sys_tcp_connect(int port, int ms);
/* Writes all of b within ms; 1 on success. */
int sys_tcp_write(int fd, const void *b, size_t n, int ms);
/* Reads exactly n bytes within ms; 1 on success. */
int sys_tcp_read(int fd, void *b, size_t n, int ms);
/* NNG's SP protocol ids: a peer speaks proto, the node answers proto + 1. */
#define SYS_SP_REQ 0x30
#define SYS_SP_PUSH 0x50
/* A connection that has done NNG's TCP SP header exchange (00 'S' 'P' 00,
 * protocol id big-endian, 00 00) as a proto peer, or -1. */
int sys_sp_connect(int port, int proto, int ms);
/* The port of "tcp://host:port" (0 if none). */
int sys_url_port(const char *url);

/* Runs argv, waits (bounded); returns its exit code, or -1.  Output goes
 * to the log unless quiet. */
int sys_run(char *const argv[], int quiet);

/* ---- skc helpers for the client side ---- */

/* A client node with defaults plus log to stderr at WARN. */
skc_node *sys_client(const char *name, uint32_t max_inflight);
/* A node made with options o, logging to stderr at WARN unless o sets a
 * log; fails the test if it cannot be made. */
skc_node *sys_node_create(skc_node_opts *o);

/* One synchronous call; returns the status; reply text (if any) copied to
 * out (NUL-terminated, may be NULL). */
int sys_call(skc_node *n, const char *peer, const char *target,
    const void *data, size_t len, int32_t timeout_ms, char *out,
    size_t outsize);

/* A batch of async calls whose outcomes are collected for checking. */
typedef struct sys_result {
    struct sys_batch *b;
    int started;
    int done;
    int status;
    int64_t t_start, t_end;
    char text[600]; /* reply (status 0) or detail */
    size_t len;
} sys_result;

typedef struct sys_batch {
    void *lk;   /* pthread_mutex_t *, kept opaque to spare the include */
    void *cv;
    int n;
    int ndone;
    sys_result *r;
} sys_batch;

void sys_batch_init(sys_batch *b, int n);
void sys_batch_fini(sys_batch *b);
/* Starts call i; returns skc_node_call_async's code (on error result i is
 * marked done with that status). */
int sys_batch_start(sys_batch *b, int i, skc_node *node, const char *peer,
    const char *target, const void *data, size_t len, int32_t timeout_ms);
/* Waits until `count` results are done or timeout; returns how many. */
int sys_batch_wait(sys_batch *b, int count, int timeout_ms);

/* Little-endian helpers for frames built by hand. */
void sys_put_u32(uint8_t *b, uint32_t v);
uint32_t sys_get_u32(const uint8_t *b);
void sys_put_u64(uint8_t *b, uint64_t v);
/* Writes a request frame (docs/PROTOCOL.md) into b: version 1, kind,
 * flags, deadline 2000 ms, max_reply 65536, id 9, the target (type,
 * name or handle) and pl payload bytes.  Returns its length. */
size_t sys_put_req(uint8_t *b, uint8_t kind, uint32_t flags, uint8_t ttype,
    const char *name, uint32_t handle, const void *payload, size_t pl);

#endif
