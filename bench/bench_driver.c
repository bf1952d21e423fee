/* bench_driver.c -- `skc_bench run`: runs every case for skc and for the
 * raw NNG baseline as separate server and client processes on 127.0.0.1,
 * alternating which goes first, N times; prints one table of medians and
 * writes the same rows as JSON.
 *
 * Every child is started by fork/exec, remembered by PID, bounded by a
 * deadline and killed by that PID if it overstays (also on SIGINT/SIGTERM
 * and on exit).  Servers stop when the driver closes their stdin.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CHILDREN 8
#define MAX_RUNS 15
#define HOLD_N 10000

/* ---------------------------------------------------------------------- */
/* Children                                                               */
/* ---------------------------------------------------------------------- */

typedef struct child {
    pid_t pid;
    int in_fd;  /* write end of the child's stdin */
    int out_fd; /* read end of the child's stdout */
    char buf[4096];
    size_t blen;
} child;

static pid_t live[MAX_CHILDREN];

static void
live_add(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (live[i] == 0) {
            live[i] = pid;
            return;
        }
    }
}

static void
live_del(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (live[i] == pid) {
            live[i] = 0;
        }
    }
}

static void
kill_live(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
    }
}

static void
on_signal(int sig)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
        }
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Starts argv[0] (a path, or a name looked up in PATH) with pipes on its
 * stdin and stdout.  env_set: "NAME=value" strings to add, NULL-ended. */
static int
child_spawn(child *c, char *const argv[], char *const env_set[])
{
    int in[2], out[2];
    memset(c, 0, sizeof(*c));
    if (pipe(in) != 0) {
        return -1;
    }
    if (pipe(out) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        for (int i = 0; env_set != NULL && env_set[i] != NULL; i++) {
            putenv(env_set[i]);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "skc_bench: cannot run %s: %s\n", argv[0],
            strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    fcntl(in[1], F_SETFD, FD_CLOEXEC);
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    c->pid = pid;
    c->in_fd = in[1];
    c->out_fd = out[0];
    live_add(pid);
    return 0;
}

/* Reads lines until one starts with prefix; copies its rest into line.
 * Other lines go to stderr.  -1 on EOF or when timeout_ms passes. */
static int
child_read_line(
    child *c, const char *prefix, char *line, size_t cap, int timeout_ms)
{
    int64_t until = bench_now_ns() + (int64_t)timeout_ms * 1000000;
    size_t pl = strlen(prefix);
    for (;;) {
        char *nl;
        while ((nl = memchr(c->buf, '\n', c->blen)) != NULL) {
            size_t n = (size_t)(nl - c->buf);
            *nl = '\0';
            int match = strncmp(c->buf, prefix, pl) == 0;
            if (match) {
                snprintf(line, cap, "%s", c->buf + pl);
            } else {
                fprintf(stderr, "  [child %d] %s\n", (int)c->pid, c->buf);
            }
            memmove(c->buf, nl + 1, c->blen - n - 1);
            c->blen -= n + 1;
            if (match) {
                return 0;
            }
        }
        int64_t left = (until - bench_now_ns()) / 1000000;
        if (left <= 0) {
            return -1;
        }
        struct pollfd p = { c->out_fd, POLLIN, 0 };
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        if (c->blen == sizeof(c->buf) - 1) {
            c->blen = 0; /* an absurd line: drop it */
        }
        ssize_t k =
            read(c->out_fd, c->buf + c->blen, sizeof(c->buf) - 1 - c->blen);
        if (k <= 0) {
            return -1;
        }
        c->blen += (size_t)k;
    }
}

/* Closes the child's stdin, waits up to wait_ms for it to exit, then kills
 * it by PID.  Returns its exit status, or -1 if it had to be killed. */
static int
child_stop(child *c, int wait_ms)
{
    if (c->pid <= 0) {
        return -1;
    }
    if (c->in_fd >= 0) {
        close(c->in_fd);
        c->in_fd = -1;
    }
    int status = 0, ret = -1;
    int64_t until = bench_now_ns() + (int64_t)wait_ms * 1000000;
    for (;;) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid) {
            ret = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            break;
        }
        if (bench_now_ns() > until) {
            fprintf(stderr,
                "skc_bench: child %d did not exit in %d ms; "
                "killing it\n",
                (int)c->pid, wait_ms);
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            break;
        }
        bench_sleep_ms(5);
    }
    live_del(c->pid);
    close(c->out_fd);
    c->out_fd = -1;
    c->pid = 0;
    return ret;
}

/* ---------------------------------------------------------------------- */
/* Results                                                                */
/* ---------------------------------------------------------------------- */

/* Value of key in a "k=v k=v" line, NAN if absent. */
static double
kv(const char *line, const char *key)
{
    size_t kl = strlen(key);
    const char *p = line;
    while ((p = strstr(p, key)) != NULL) {
        if ((p == line || p[-1] == ' ') && p[kl] == '=') {
            return strtod(p + kl + 1, NULL);
        }
        p += kl;
    }
    return NAN;
}

enum impl { IMPL_SKC = 0, IMPL_RAW = 1, IMPL_LUA = 2, IMPL_PY = 3 };

/* What one measurement runs; a measurement fills one or more rows. */
enum mkind {
    M_CALL = 1, /* rate or MB/s of K calls in flight */
    M_LAT,      /* blocking calls: rate, p50, p99 */
    M_SEND,     /* msgs/s at the receiver */
    M_LUA,      /* Lua client vs the C skc client */
    M_IDLE,     /* RSS of an idle server */
    M_HOLD,     /* memory per in-flight call, client and server */
    M_HOL,      /* head-of-line: small calls' p99 beside a 16 MiB call */
    M_PY        /* Python client vs the C skc client */
};

typedef struct row {
    const char *name;
    const char *unit;
    int lower_better;
    int digits;         /* decimals printed */
    double a[MAX_RUNS]; /* skc (or Lua) */
    double b[MAX_RUNS]; /* raw (or C skc) */
    int na;             /* not measured: reason in note */
    const char *note;
} row;

typedef struct meas {
    int kind;
    int inflight;
    size_t size;
    int echo;
    int mbps; /* report MB/s instead of calls/s */
    int row0; /* first row index */
    /* Side a's variants.  --decompose rows (diag): raw NNG with these
     * variants (bench_raw.c) instead of skc, NULL/NULL = skc as usual.
     * Other rows: skc's server/client variant ("inline"). */
    int diag;
    const char *srv_var;
    const char *cli_var;
    int vs_skc;  /* side b is plain skc, not raw NNG (security rows) */
    int cpu_row; /* also fills this row with CPU per call; 0 = none */
} meas;

typedef struct drv {
    char self[4096];
    int runs;
    int warm_ms, dur_ms;
    int quick;
    const char *json;
    const char *lua_bin;
    const char *lua_script;
    const char *lua_cpath;
    const char *lua_path;
    const char *no_lua;
    const char *py_bin;    /* python3 with the skc package on py_path */
    const char *py_script; /* bench/python_client.py */
    const char *py_path;   /* PYTHONPATH: <src>/bindings/python */
    const char *py_lib;    /* SKC_LIBRARY: the libskc.so just built */
    const char *no_py;
    int decompose;
    int failures;
    char load0[64]; /* /proc/loadavg when the run started */
} drv;

/* First three fields of /proc/loadavg ("1.20 0.80 0.41"). */
static void
read_loadavg(char *buf, size_t cap)
{
    snprintf(buf, cap, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (f == NULL) {
        return;
    }
    double a, b, c;
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3) {
        snprintf(buf, cap, "%.2f %.2f %.2f", a, b, c);
    }
    fclose(f);
}

/* "AMD EPYC" from /proc/cpuinfo. */
static void
read_cpu_model(char *buf, size_t cap)
{
    snprintf(buf, cap, "?");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL) {
        return;
    }
    char line[512];
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "model name", 10) == 0) {
            char *v = strchr(line, ':');
            if (v != NULL) {
                v++;
                while (*v == ' ' || *v == '\t') {
                    v++;
                }
                v[strcspn(v, "\n")] = '\0';
                snprintf(buf, cap, "%s", v);
            }
            break;
        }
    }
    fclose(f);
}

#define NROWS_MAIN 30
#define NROWS 42
#define ROW_LUA 10  /* the Lua rows: 1 and 16 coroutines */
#define ROW_SEC 19  /* the security rows: cookie and mutual TLS */
#define ROW_HOL 23  /* head-of-line: the ratio, then both p99s */
#define ROW_CPU 26  /* CPU per call (from the call rows' windows) */
#define ROW_PY 28   /* the Python rows: 1 and 16 in flight */
#define ROW_DIAG 30 /* --decompose */
static row rows[NROWS] = {
    { "call 32 B, 1 in flight", "calls/s", 0, 0, { 0 }, { 0 }, 0, NULL },
    { "call 32 B, 16 in flight", "calls/s", 0, 0, { 0 }, { 0 }, 0, NULL },
    { "call 32 B, 128 in flight", "calls/s", 0, 0, { 0 }, { 0 }, 0, NULL },
    { "send 32 B, counted at receiver", "msgs/s", 0, 0, { 0 }, { 0 }, 0,
        NULL },
    { "call 64 KiB, 1 in flight", "MB/s", 0, 1, { 0 }, { 0 }, 0, NULL },
    { "call 1 MiB, 1 in flight", "MB/s", 0, 1, { 0 }, { 0 }, 0, NULL },
    { "call 1 MiB echoed, 1 in flight", "MB/s", 0, 1, { 0 }, { 0 }, 0, NULL },
    { "blocking call 32 B, 1 in flight", "calls/s", 0, 0, { 0 }, { 0 }, 0,
        NULL },
    { "latency p50, 1 in flight", "us", 1, 1, { 0 }, { 0 }, 0, NULL },
    { "latency p99, 1 in flight", "us", 1, 1, { 0 }, { 0 }, 0, NULL },
    { "Lua call, 1 coroutine (raw col: C skc)", "calls/s", 0, 0, { 0 }, { 0 },
        0, NULL },
    { "Lua call, 16 coroutines (raw col: C skc)", "calls/s", 0, 0, { 0 },
        { 0 }, 0, NULL },
    { "idle node RSS", "KiB", 1, 0, { 0 }, { 0 }, 0, NULL },
    { "memory per in-flight call, client", "bytes", 1, 0, { 0 }, { 0 }, 0,
        NULL },
    { "memory per held call, server", "bytes", 1, 0, { 0 }, { 0 }, 0, NULL },
    /* SKC_SERVICE_INLINE handlers and SKC_CALL_INLINE callbacks */
    { "inline: call 32 B, 1 in flight", "calls/s", 0, 0, { 0 }, { 0 }, 0,
        NULL },
    { "inline: call 32 B, 16 in flight", "calls/s", 0, 0, { 0 }, { 0 }, 0,
        NULL },
    { "inline: call 32 B, 128 in flight", "calls/s", 0, 0, { 0 }, { 0 }, 0,
        NULL },
    { "inline: send 32 B, counted at receiver", "msgs/s", 0, 0, { 0 }, { 0 },
        0, NULL },
    /* the cluster cookie and mutual TLS against plain skc (SECURITY.md) */
    { "cookie: call 32 B, 16 in flight (raw col: skc)", "calls/s", 0, 0, { 0 },
        { 0 }, 0, NULL },
    { "cookie: send 32 B (raw col: skc)", "msgs/s", 0, 0, { 0 }, { 0 }, 0,
        NULL },
    { "mTLS: call 32 B, 16 in flight (raw col: skc)", "calls/s", 0, 0, { 0 },
        { 0 }, 0, NULL },
    { "mTLS: call 1 MiB, 1 in flight (raw col: skc)", "MB/s", 0, 1, { 0 },
        { 0 }, 0, NULL },
    /* small calls beside a 16 MiB call to the same peer (lanes, issue #15);
     * raw NNG: one REQ socket, so one connection */
    { "head-of-line: p99 beside 16 MiB call / idle p99", "x", 1, 2, { 0 },
        { 0 }, 0, NULL },
    { "head-of-line: small-call p99, idle link", "us", 1, 1, { 0 }, { 0 }, 0,
        NULL },
    { "head-of-line: small-call p99, 16 MiB in flight", "us", 1, 1, { 0 },
        { 0 }, 0, NULL },
    /* client + server CPU over the window of the call rows above */
    { "CPU per call 32 B, 1 in flight, client + server", "us", 1, 1, { 0 },
        { 0 }, 0, NULL },
    { "CPU per call 32 B, 16 in flight, client + server", "us", 1, 1, { 0 },
        { 0 }, 0, NULL },
    /* the Python binding (bench/python_client.py) against the C client */
    { "Python call, 1 in flight (raw col: C skc)", "calls/s", 0, 0, { 0 },
        { 0 }, 0, NULL },
    { "Python call, 16 in flight (raw col: C skc)", "calls/s", 0, 0, { 0 },
        { 0 }, 0, NULL },
    /* --decompose: the skc column is raw NNG changed one way at a time */
    { "call 16: skc", "calls/s", 0, 0, { 0 }, { 0 }, 0, NULL },
    { "call 16: raw REQ socket (skc's link up to 0.1)", "calls/s", 0, 0, { 0 },
        { 0 }, 0, NULL },
    { "call 16: + server hands requests to threads", "calls/s", 0, 0, { 0 },
        { 0 }, 0, NULL },
    { "call 16: + client hands completions to threads", "calls/s", 0, 0, { 0 },
        { 0 }, 0, NULL },
    { "call 16: + both hand-offs", "calls/s", 0, 0, { 0 }, { 0 }, 0, NULL },
    { "send: + receiver hands messages to threads", "msgs/s", 0, 0, { 0 },
        { 0 }, 0, NULL },
    { "call 1: threads receive themselves (wrecv)", "calls/s", 0, 0, { 0 },
        { 0 }, 0, NULL },
    { "call 16: threads receive themselves (wrecv)", "calls/s", 0, 0, { 0 },
        { 0 }, 0, NULL },
    { "send: receiver thread receives itself", "msgs/s", 0, 0, { 0 }, { 0 }, 0,
        NULL },
    { "head-of-line: 16 MiB call on a 2nd socket, x", "x", 1, 2, { 0 }, { 0 },
        0, NULL },
    { "  its small-call p99, idle link", "us", 1, 1, { 0 }, { 0 }, 0, NULL },
    { "  its small-call p99, 16 MiB in flight", "us", 1, 1, { 0 }, { 0 }, 0,
        NULL },
};

static const meas measures[] = {
    { M_CALL, 1, 32, 1, 0, 0, 0, NULL, NULL, 0, ROW_CPU },
    { M_CALL, 16, 32, 1, 0, 1, 0, NULL, NULL, 0, ROW_CPU + 1 },
    { M_CALL, 128, 32, 1, 0, 2, 0, NULL, NULL, 0, 0 },
    { M_SEND, 1, 32, 0, 0, 3, 0, NULL, NULL, 0, 0 },
    { M_CALL, 1, 65536, 0, 1, 4, 0, NULL, NULL, 0, 0 },
    { M_CALL, 1, 1048576, 0, 1, 5, 0, NULL, NULL, 0, 0 },
    { M_CALL, 1, 1048576, 1, 1, 6, 0, NULL, NULL, 0, 0 },
    { M_LAT, 1, 32, 1, 0, 7, 0, NULL, NULL, 0, 0 },
    { M_LUA, 1, 32, 1, 0, ROW_LUA, 0, NULL, NULL, 0, 0 },
    { M_LUA, 16, 32, 1, 0, ROW_LUA + 1, 0, NULL, NULL, 0, 0 },
    { M_IDLE, 1, 0, 0, 0, 12, 0, NULL, NULL, 0, 0 },
    { M_HOLD, 1, 32, 0, 0, 13, 0, NULL, NULL, 0, 0 },
    /* skc with inline handlers and callbacks (skc side variants) */
    { M_CALL, 1, 32, 1, 0, 15, 0, "inline", "inline", 0, 0 },
    { M_CALL, 16, 32, 1, 0, 16, 0, "inline", "inline", 0, 0 },
    { M_CALL, 128, 32, 1, 0, 17, 0, "inline", "inline", 0, 0 },
    { M_SEND, 1, 32, 0, 0, 18, 0, "inline", "plain", 0, 0 },
    /* the cookie and mutual TLS (skc side variants) against plain skc */
    { M_CALL, 16, 32, 1, 0, ROW_SEC, 0, "cookie", "cookie", 1, 0 },
    { M_SEND, 1, 32, 0, 0, ROW_SEC + 1, 0, "cookie", "cookie", 1, 0 },
    { M_CALL, 16, 32, 1, 0, ROW_SEC + 2, 0, "tls", "tls", 1, 0 },
    { M_CALL, 1, 1048576, 0, 1, ROW_SEC + 3, 0, "tls", "tls", 1, 0 },
    /* --decompose */
    { M_CALL, 16, 32, 1, 0, ROW_DIAG, 1, NULL, NULL, 0, 0 },
    { M_CALL, 16, 32, 1, 0, ROW_DIAG + 1, 1, "plain", "xreq", 0, 0 },
    { M_CALL, 16, 32, 1, 0, ROW_DIAG + 2, 1, "hop", "plain", 0, 0 },
    { M_CALL, 16, 32, 1, 0, ROW_DIAG + 3, 1, "plain", "hop", 0, 0 },
    { M_CALL, 16, 32, 1, 0, ROW_DIAG + 4, 1, "hop", "hop", 0, 0 },
    { M_SEND, 1, 32, 0, 0, ROW_DIAG + 5, 1, "hop", "plain", 0, 0 },
    { M_CALL, 1, 32, 1, 0, ROW_DIAG + 6, 1, "wrecv", "wrecv", 0, 0 },
    { M_CALL, 16, 32, 1, 0, ROW_DIAG + 7, 1, "wrecv", "wrecv", 0, 0 },
    { M_SEND, 1, 32, 0, 0, ROW_DIAG + 8, 1, "wrecv", "plain", 0, 0 },
    /* head-of-line (after the others: the rows above keep their --only
     * numbers) */
    { M_HOL, 1, 32, 0, 0, ROW_HOL, 0, NULL, NULL, 0, 0 },
    /* --decompose: raw NNG with the large call on a socket of its own */
    { M_HOL, 1, 32, 0, 0, ROW_DIAG + 9, 1, "plain", "lanes", 0, 0 },
    /* the Python binding (after the others, for the same reason) */
    { M_PY, 1, 32, 1, 0, ROW_PY, 0, NULL, NULL, 0, 0 },
    { M_PY, 16, 32, 1, 0, ROW_PY + 1, 0, NULL, NULL, 0, 0 },
};
#define NMEAS (sizeof(measures) / sizeof(measures[0]))

/* ---------------------------------------------------------------------- */
/* One sample                                                             */
/* ---------------------------------------------------------------------- */

static int
start_server(drv *d, child *srv, int impl, const char *variant,
    int max_serving, char *rep, char *pull, size_t cap, long *rss_kb,
    long *rss0_kb)
{
    char ms[32];
    snprintf(ms, sizeof(ms), "%d", max_serving);
    char *argv[] = { d->self, impl == IMPL_RAW ? "raw_server" : "server",
        "--addr", "tcp://127.0.0.1:0", "--max-serving", ms, "--variant",
        (char *)(variant ? variant : "plain"), NULL };
    if (child_spawn(srv, argv, NULL) != 0) {
        fprintf(stderr, "skc_bench: cannot start a server\n");
        return -1;
    }
    char line[1024];
    if (child_read_line(srv, "ADDR ", line, sizeof(line), 10000) != 0) {
        fprintf(stderr,
            "skc_bench: the server did not report its "
            "address\n");
        child_stop(srv, 2000);
        return -1;
    }
    /* "ADDR <rep-url> [<pull-url>] rss0=<KiB>" */
    char tok[3][512] = { "", "", "" };
    int nt = sscanf(line, "%511s %511s %511s", tok[0], tok[1], tok[2]);
    rep[0] = pull[0] = '\0';
    long rss0 = -1;
    for (int i = 0; i < nt; i++) {
        if (strncmp(tok[i], "rss0=", 5) == 0) {
            rss0 = strtol(tok[i] + 5, NULL, 10);
        } else {
            char *dst = rep[0] == '\0' ? rep : pull;
            size_t n = strnlen(tok[i], cap - 1);
            memcpy(dst, tok[i], n);
            dst[n] = '\0';
        }
    }
    if (rep[0] == '\0') {
        child_stop(srv, 2000);
        return -1;
    }
    if (rss_kb != NULL) {
        bench_sleep_ms(300); /* let it settle before reading its RSS */
        *rss_kb = bench_rss_kb(srv->pid);
    }
    if (rss0_kb != NULL) {
        *rss0_kb = rss0;
    }
    return 0;
}

/* Runs one client to its RESULT line.  impl IMPL_LUA runs the Lua
 * script, IMPL_PY the Python one. */
static int
run_client(drv *d, int impl, const char *variant, const meas *m, int bcase,
    const char *rep, const char *pull, pid_t srv_pid, char *res, size_t cap)
{
    /* The client reads the server's CPU time over its window. */
    char spid[48];
    snprintf(spid, sizeof(spid), "SKC_BENCH_SERVER_PID=%d", (int)srv_pid);
    char inflight[16], size[32], echo[8], warm[16], dur[16], hold[16];
    snprintf(inflight, sizeof(inflight), "%d", m->inflight);
    snprintf(size, sizeof(size), "%zu", m->size);
    snprintf(echo, sizeof(echo), "%d", m->echo);
    snprintf(warm, sizeof(warm), "%d", d->warm_ms);
    snprintf(dur, sizeof(dur), "%d", d->dur_ms);
    snprintf(hold, sizeof(hold), "%d", HOLD_N);
    const char *cs = bcase == BC_CALL ? "call"
        : bcase == BC_LAT             ? "lat"
        : bcase == BC_SEND            ? "send"
        : bcase == BC_HOL             ? "hol"
                                      : "hold";
    child cl;
    int rc;
    if (impl == IMPL_LUA) {
        char cpath[4200], lpath[4200];
        snprintf(cpath, sizeof(cpath), "LUA_CPATH=%s;;", d->lua_cpath);
        snprintf(lpath, sizeof(lpath), "LUA_PATH=%s;;",
            d->lua_path ? d->lua_path : "");
        char *env[] = { cpath, lpath, spid, NULL };
        char *argv[] = { (char *)d->lua_bin, (char *)d->lua_script,
            (char *)rep, inflight, size, warm, dur, NULL };
        rc = child_spawn(&cl, argv, env);
    } else if (impl == IMPL_PY) {
        char ppath[4200], plib[4200];
        snprintf(ppath, sizeof(ppath), "PYTHONPATH=%s", d->py_path);
        snprintf(plib, sizeof(plib), "SKC_LIBRARY=%s", d->py_lib);
        char *env[] = { ppath, plib, "PYTHONDONTWRITEBYTECODE=1", spid, NULL };
        char *argv[] = { (char *)d->py_bin, (char *)d->py_script, (char *)rep,
            inflight, size, warm, dur, NULL };
        rc = child_spawn(&cl, argv, env);
    } else {
        char *argv[] = { d->self, impl == IMPL_RAW ? "raw_client" : "client",
            "--addr", (char *)rep, "--push", (char *)(pull[0] ? pull : "-"),
            "--case", (char *)cs, "--inflight", inflight, "--size", size,
            "--echo", echo, "--warm", warm, "--dur", dur, "--hold", hold,
            "--variant", (char *)(variant ? variant : "plain"), NULL };
        char *env[] = { spid, NULL };
        rc = child_spawn(&cl, argv, env);
    }
    if (rc != 0) {
        fprintf(stderr, "skc_bench: cannot start a client\n");
        return -1;
    }
    int budget = d->warm_ms + d->dur_ms + 60000;
    rc = child_read_line(&cl, "RESULT ", res, cap, budget);
    if (rc != 0) {
        fprintf(
            stderr, "skc_bench: client gave no result within %d ms\n", budget);
    }
    int st = child_stop(&cl, 15000);
    if (rc == 0 && st != 0) {
        fprintf(stderr, "skc_bench: client exited with status %d\n", st);
    }
    return rc;
}

static const char *
impl_name(int impl)
{
    return impl == IMPL_SKC ? "skc"
        : impl == IMPL_RAW  ? "raw"
        : impl == IMPL_LUA  ? "lua"
                            : "py";
}

static const char *
side_name(const meas *m, int impl, int side)
{
    if (m->diag && m->srv_var != NULL && side == 0) {
        return "var";
    }
    return impl_name(impl);
}

/* Runs measurement m for one implementation; stores into rows[..] at run
 * r, side 0 (a) or 1 (b).  Returns 0 or -1. */
static int
sample(drv *d, const meas *m, int impl, int side, int r)
{
    child srv;
    char rep[512], pull[512], res[2048];
    long rss_before = -1;
    int srv_impl = impl == IMPL_RAW ? IMPL_RAW : IMPL_SKC;
    /* Side a variants: a raw NNG variant on diagnostic rows, an skc one
     * (inline) on the others. */
    const char *sv = side == 0 ? m->srv_var : NULL;
    const char *cv = side == 0 ? m->cli_var : NULL;
    int max_serving = m->kind == M_HOLD ? HOLD_N + 64 : 0;
    if (m->kind == M_HOLD && srv_impl == IMPL_SKC) {
        /* One service holds every call here; with serving slots scarce
         * (half in use) skc holds a service to a quarter of them
         * (docs/RELIABILITY.md), and a loaded machine lets @hold's
         * mailbox back up past that share, which refused calls (1,396
         * of 10,000 in one bench_quick run).  Twice the holds keeps the
         * slots plentiful; contexts grow only as calls come. */
        max_serving = 2 * HOLD_N + 64;
    }
    if (srv_impl == IMPL_RAW && max_serving == 0) {
        max_serving = 128;
    }
    int want_rss = m->kind == M_IDLE || m->kind == M_HOLD;
    long srv_rss0 = -1;
    if (start_server(d, &srv, srv_impl, sv, max_serving, rep, pull,
            sizeof(rep), want_rss ? &rss_before : NULL, &srv_rss0) != 0) {
        return -1;
    }
    int ret = 0;
    row *rw = &rows[m->row0];
    double *out = side == 0 ? rw->a : rw->b;
    if (m->kind == M_IDLE) {
        out[r] = (double)rss_before;
        fprintf(stderr, "    %-4s idle RSS %ld KiB\n",
            side_name(m, impl, side), rss_before);
        child_stop(&srv, 5000);
        return rss_before > 0 ? 0 : -1;
    }
    int bcase = m->kind == M_LAT ? BC_LAT
        : m->kind == M_SEND      ? BC_SEND
        : m->kind == M_HOLD      ? BC_HOLD
        : m->kind == M_HOL       ? BC_HOL
                                 : BC_CALL;
    if (run_client(d, impl, cv, m, bcase, rep, pull, srv.pid, res,
            sizeof(res)) != 0) {
        child_stop(&srv, 5000);
        return -1;
    }
    long rss_after = want_rss ? bench_rss_kb(srv.pid) : -1;
    child_stop(&srv, 10000);

    double ops = kv(res, "ops"), secs = kv(res, "secs");
    double errs = kv(res, "errors");
    if (!(ops > 0) || !(secs > 0)) {
        fprintf(stderr, "skc_bench: bad result from %s: %s\n",
            side_name(m, impl, side), res);
        return -1;
    }
    if (errs > 0) {
        fprintf(stderr, "skc_bench: %s reported %.0f failed operations\n",
            side_name(m, impl, side), errs);
        ret = -1;
    }
    double rate = ops / secs;
    switch (m->kind) {
    case M_CALL:
    case M_LUA:
    case M_PY:
        out[r] = m->mbps ? rate * (double)m->size / 1e6 : rate;
        fprintf(
            stderr, "    %-4s %.0f calls/s\n", side_name(m, impl, side), rate);
        if (m->cpu_row != 0) {
            double cpu = kv(res, "cpu_us");
            row *cr = &rows[m->cpu_row];
            (side == 0 ? cr->a : cr->b)[r] = cpu > 0 ? cpu : NAN;
            fprintf(stderr, "    %-4s %.1f us of CPU per call\n",
                side_name(m, impl, side), cpu);
        }
        break;
    case M_SEND: {
        out[r] = rate;
        double lost = kv(res, "lost");
        fprintf(stderr,
            "    %-4s %.0f msgs/s at the receiver (sent %.0f, "
            "lost %.0f, backlog full %.0f)\n",
            side_name(m, impl, side), rate, kv(res, "sent"), lost,
            kv(res, "backlog_full"));
        if (lost > 0) {
            fprintf(stderr, "skc_bench: %s lost %.0f one-way messages\n",
                side_name(m, impl, side), lost);
        }
        break;
    }
    case M_LAT: {
        double p50 = kv(res, "p50_us"), p99 = kv(res, "p99_us");
        out[r] = rate;
        (side == 0 ? rows[m->row0 + 1].a : rows[m->row0 + 1].b)[r] = p50;
        (side == 0 ? rows[m->row0 + 2].a : rows[m->row0 + 2].b)[r] = p99;
        fprintf(stderr, "    %-4s %.0f calls/s, p50 %.1f us, p99 %.1f us\n",
            side_name(m, impl, side), rate, p50, p99);
        break;
    }
    case M_HOLD: {
        double held = kv(res, "held");
        double r0 = kv(res, "rss0_kb"), r1 = kv(res, "rss1_kb");
        double cli = (r1 - r0) * 1024.0 / held;
        /* The server's own baseline: raw NNG's is taken before its
         * context pool, skc's after open (its pool grows on demand). */
        long base = srv_rss0 > 0 ? srv_rss0 : rss_before;
        double sv = (double)(rss_after - base) * 1024.0 / held;
        out[r] = cli;
        (side == 0 ? rows[m->row0 + 1].a : rows[m->row0 + 1].b)[r] = sv;
        fprintf(stderr,
            "    %-4s client RSS %.0f -> %.0f KiB, server %ld "
            "-> %ld KiB for %.0f calls: %.0f / %.0f bytes per call\n",
            side_name(m, impl, side), r0, r1, base, rss_after, held, cli, sv);
        break;
    }
    case M_HOL: {
        double idle = kv(res, "p99_idle_us"), busy = kv(res, "p99_busy_us");
        out[r] = idle > 0 ? busy / idle : NAN;
        (side == 0 ? rows[m->row0 + 1].a : rows[m->row0 + 1].b)[r] = idle;
        (side == 0 ? rows[m->row0 + 2].a : rows[m->row0 + 2].b)[r] = busy;
        fprintf(stderr,
            "    %-4s small-call p99 %.1f us idle, %.1f us beside %.0f "
            "calls of 16 MiB (p50 %.1f -> %.1f us): %.2fx\n",
            side_name(m, impl, side), idle, busy, kv(res, "big"),
            kv(res, "p50_idle_us"), kv(res, "p50_busy_us"), out[r]);
        break;
    }
    default:
        break;
    }
    return ret;
}

/* ---------------------------------------------------------------------- */
/* Table and JSON                                                         */
/* ---------------------------------------------------------------------- */

static int
cmp_d(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Median of the finite values, NAN if none. */
static double
median(const double *v, int n)
{
    double t[MAX_RUNS];
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (isfinite(v[i])) {
            t[k++] = v[i];
        }
    }
    if (k == 0) {
        return NAN;
    }
    qsort(t, (size_t)k, sizeof(double), cmp_d);
    return k % 2 ? t[k / 2] : (t[k / 2 - 1] + t[k / 2]) / 2.0;
}

/* The ratio of a row: the median of the per-run ratios, so that each
 * ratio compares two numbers measured minutes apart at most. */
static double
row_ratio(const row *rw, int runs)
{
    double q[MAX_RUNS];
    for (int i = 0; i < runs; i++) {
        q[i] = isfinite(rw->a[i]) && isfinite(rw->b[i]) && rw->b[i] != 0
            ? rw->a[i] / rw->b[i]
            : NAN;
    }
    return median(q, runs);
}

static void
fmt_num(char *buf, size_t cap, double v, int digits)
{
    if (!isfinite(v)) {
        snprintf(buf, cap, "n/a");
        return;
    }
    if (digits > 0 || fabs(v) < 1000) {
        snprintf(buf, cap, "%.*f", digits, v);
        return;
    }
    /* Thousands separators for big integers. */
    char raw[64];
    snprintf(raw, sizeof(raw), "%.0f", v);
    size_t n = strlen(raw), o = 0;
    size_t lead = raw[0] == '-' ? 1 : 0;
    for (size_t i = 0; i < n && o + 2 < cap; i++) {
        buf[o++] = raw[i];
        size_t left = n - i - 1;
        if (i >= lead && left > 0 && left % 3 == 0) {
            buf[o++] = ',';
        }
    }
    buf[o] = '\0';
}

static void
json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            fputc('\\', f);
        }
        fputc(*s, f);
    }
    fputc('"', f);
}

static void
json_num(FILE *f, double v)
{
    if (isfinite(v)) {
        fprintf(f, "%.6g", v);
    } else {
        fputs("null", f);
    }
}

/* "0.41-0.80": the spread of the per-run ratios ("" for one run). */
static void
ratio_spread(char *buf, size_t cap, const row *rw, int runs)
{
    double lo = NAN, hi = NAN;
    for (int i = 0; i < runs; i++) {
        if (!isfinite(rw->a[i]) || !isfinite(rw->b[i]) || rw->b[i] == 0) {
            continue;
        }
        double q = rw->a[i] / rw->b[i];
        if (!isfinite(lo) || q < lo) {
            lo = q;
        }
        if (!isfinite(hi) || q > hi) {
            hi = q;
        }
    }
    if (runs < 2 || !isfinite(lo)) {
        snprintf(buf, cap, "%s", "");
    } else {
        snprintf(buf, cap, "%.2f-%.2f", lo, hi);
    }
}

static void
print_rows(const drv *d, int from, int to)
{
    for (int i = from; i < to; i++) {
        row *rw = &rows[i];
        char a[32], b[32], q[32], sp[32];
        if (rw->na) {
            printf("%-48s %-8s %s\n", rw->name, rw->unit, rw->note);
            continue;
        }
        fmt_num(a, sizeof(a), median(rw->a, d->runs), rw->digits);
        fmt_num(b, sizeof(b), median(rw->b, d->runs), rw->digits);
        fmt_num(q, sizeof(q), row_ratio(rw, d->runs), 2);
        ratio_spread(sp, sizeof(sp), rw, d->runs);
        printf(
            "%-48s %-8s %12s %12s %8s %s\n", rw->name, rw->unit, a, b, q, sp);
    }
}

static int
report(drv *d)
{
    char cpu[256], load1[64];
    struct utsname un;
    read_cpu_model(cpu, sizeof(cpu));
    read_loadavg(load1, sizeof(load1));
    if (uname(&un) != 0) {
        snprintf(un.release, sizeof(un.release), "?");
    }
    printf("\nskc vs raw NNG %s, tcp 127.0.0.1, %d run%s x %.1f s per "
           "case; medians, ratio = median of per-run skc/raw\n",
        bench_nng_version(), d->runs, d->runs > 1 ? "s" : "",
        d->dur_ms / 1000.0);
    printf("machine: %ld CPUs, %s, Linux %s; load average %s at start, "
           "%s at end\n",
        sysconf(_SC_NPROCESSORS_ONLN), cpu, un.release, d->load0, load1);
    printf("%-48s %-8s %12s %12s %8s %s\n", "case", "unit", "skc", "raw NNG",
        "skc/raw", d->runs > 1 ? "(runs)" : "");
    for (int i = 0; i < 104; i++) {
        putchar('-');
    }
    putchar('\n');
    print_rows(d, 0, NROWS_MAIN);
    printf("(lower is better for us, x, KiB and bytes; the Lua and Python "
           "rows compare the binding with the C skc client, the cookie and "
           "mTLS rows "
           "skc with them against plain skc over tcp; head-of-line: each "
           "column's own busy/idle p99 ratio, raw NNG on one REQ socket)\n");
    if (d->decompose) {
        printf("\nWhere the gap comes from: raw NNG changed one way at a "
               "time (bench_raw.c variants), against plain raw NNG\n");
        printf("%-48s %-8s %12s %12s %8s %s\n", "variant", "unit", "variant",
            "raw NNG", "ratio", d->runs > 1 ? "(runs)" : "");
        print_rows(d, NROWS_MAIN, NROWS);
    }
    fflush(stdout);

    if (d->json == NULL) {
        return 0;
    }
    FILE *f = fopen(d->json, "w");
    if (f == NULL) {
        fprintf(stderr, "skc_bench: cannot write %s: %s\n", d->json,
            strerror(errno));
        return -1;
    }
    fputs("[\n", f);
    for (int i = 0; i < NROWS_MAIN; i++) {
        row *rw = &rows[i];
        fputs("  {\"case\": ", f);
        json_str(f, rw->name);
        fputs(", \"unit\": ", f);
        json_str(f, rw->unit);
        fputs(", \"skc\": ", f);
        json_num(f, rw->na ? NAN : median(rw->a, d->runs));
        fputs(", \"raw\": ", f);
        json_num(f, rw->na ? NAN : median(rw->b, d->runs));
        fputs(", \"ratio\": ", f);
        json_num(f, rw->na ? NAN : row_ratio(rw, d->runs));
        fprintf(f, "}%s\n", i + 1 < NROWS_MAIN ? "," : "");
    }
    fputs("]\n", f);
    fclose(f);
    printf("results: %s\n", d->json);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Driver                                                                 */
/* ---------------------------------------------------------------------- */

/* The mTLS rows' files: a CA and one certificate for every node (EC P-256,
 * made by openssl) in a temporary directory named by $SKC_BENCH_TLS, which
 * the children inherit; removed at exit.  0, or -1 with why in note. */
static char tls_dir[64];

static void
tls_cleanup(void)
{
    if (tls_dir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tls_dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "skc_bench: could not remove %s\n", tls_dir);
        }
    }
}

static int
bench_make_tls(char *note, size_t cap)
{
    snprintf(tls_dir, sizeof(tls_dir), "/tmp/skc-bench-tls-XXXXXX");
    if (mkdtemp(tls_dir) == NULL) {
        tls_dir[0] = '\0';
        snprintf(note, cap, "n/a (no temporary directory)");
        return -1;
    }
    atexit(tls_cleanup);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
        "cd '%s' && E='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-nodes' && openssl req -x509 $E -keyout ca.key -out ca.pem -days 2 "
        "-subj /CN=bench-ca && openssl req $E -keyout node.key -out node.csr "
        "-subj /CN=srv && openssl x509 -req -in node.csr -CA ca.pem -CAkey "
        "ca.key -CAcreateserial -out node.pem -days 2",
        tls_dir);
    char full[2200];
    snprintf(full, sizeof(full), "(%s) >/dev/null 2>&1", cmd);
    if (system(full) != 0) {
        snprintf(note, cap, "n/a (openssl could not make certificates)");
        return -1;
    }
    setenv("SKC_BENCH_TLS", tls_dir, 1);
    return 0;
}

static const char *
meas_title(const meas *m)
{
    switch (m->kind) {
    case M_LAT:
        return "blocking call 32 B (rate, p50, p99)";
    case M_HOLD:
        return "10,000 calls in flight (memory)";
    case M_HOL:
        return "head-of-line: small calls beside a 16 MiB call";
    default:
        return rows[m->row0].name;
    }
}

static int
usage(void)
{
    fprintf(stderr,
        "usage: skc_bench run [--quick] [--runs N] [--dur ms] [--warm ms]\n"
        "         [--json file] [--lua-bin lua5.4 --lua-script file\n"
        "          --lua-cpath '<build>/lua/?.so' --lua-path '...']\n"
        "         [--no-lua reason] [--py-bin python3 --py-script file\n"
        "          --py-path dir --py-lib libskc.so | --no-py reason]\n"
        "         [--only i,j,...] [--decompose]\n");
    return 2;
}

/* Rows first and first + 1 are not measured in this run: note says why. */
static void
rows_na(int first, const char *note)
{
    for (int i = first; i < first + 2; i++) {
        rows[i].na = 1;
        rows[i].note = note;
    }
}

int
bench_driver(int argc, char **argv)
{
    drv d;
    memset(&d, 0, sizeof(d));
    d.runs = 3;
    d.warm_ms = 300;
    d.dur_ms = 2000;
    d.lua_bin = "lua5.4";
    d.py_bin = "/usr/bin/python3";
    const char *only = NULL;
    int runs_set = 0, dur_set = 0, warm_set = 0;
    /* the options that take a string */
    const struct {
        const char *name;
        const char **to;
    } sopts[] = { { "--json", &d.json }, { "--lua-bin", &d.lua_bin },
        { "--lua-script", &d.lua_script }, { "--lua-cpath", &d.lua_cpath },
        { "--lua-path", &d.lua_path }, { "--no-lua", &d.no_lua },
        { "--py-bin", &d.py_bin }, { "--py-script", &d.py_script },
        { "--py-path", &d.py_path }, { "--py-lib", &d.py_lib },
        { "--no-py", &d.no_py }, { "--only", &only } };
    for (int i = 0; i < argc; i++) {
        const char *k = argv[i];
        if (strcmp(k, "--quick") == 0) {
            d.quick = 1;
            continue;
        }
        if (strcmp(k, "--decompose") == 0) {
            d.decompose = 1;
            continue;
        }
        if (i + 1 >= argc) {
            return usage();
        }
        const char *v = argv[++i];
        if (strcmp(k, "--runs") == 0) {
            d.runs = atoi(v);
            runs_set = 1;
        } else if (strcmp(k, "--dur") == 0) {
            d.dur_ms = atoi(v);
            dur_set = 1;
        } else if (strcmp(k, "--warm") == 0) {
            d.warm_ms = atoi(v);
            warm_set = 1;
        } else {
            size_t o = 0;
            while (o < sizeof(sopts) / sizeof(sopts[0]) &&
                strcmp(k, sopts[o].name) != 0) {
                o++;
            }
            if (o == sizeof(sopts) / sizeof(sopts[0])) {
                return usage();
            }
            *sopts[o].to = v;
        }
    }
    if (d.quick) {
        if (!runs_set) {
            d.runs = 1;
        }
        if (!dur_set) {
            d.dur_ms = 500;
        }
        if (!warm_set) {
            d.warm_ms = 150;
        }
    }
    if (d.runs < 1 || d.runs > MAX_RUNS || d.dur_ms < 50 || d.warm_ms < 0) {
        return usage();
    }
    ssize_t n = readlink("/proc/self/exe", d.self, sizeof(d.self) - 1);
    if (n <= 0) {
        fprintf(stderr, "skc_bench: cannot find my own path\n");
        return 1;
    }
    d.self[n] = '\0';
    if (d.lua_script == NULL || d.lua_cpath == NULL) {
        if (d.no_lua == NULL) {
            d.no_lua = "Lua binding not built";
        }
    }
    static char tls_note[256];
    if (bench_make_tls(tls_note, sizeof(tls_note)) != 0) {
        rows_na(ROW_SEC + 2, tls_note);
    }
    static char lua_note[256];
    if (d.no_lua != NULL) {
        snprintf(lua_note, sizeof(lua_note), "n/a (%s)", d.no_lua);
        rows_na(ROW_LUA, lua_note);
    }
    if (d.py_script == NULL || d.py_path == NULL || d.py_lib == NULL) {
        if (d.no_py == NULL) {
            d.no_py = "Python binding not set up";
        }
    }
    static char py_note[256];
    if (d.no_py != NULL) {
        snprintf(py_note, sizeof(py_note), "n/a (%s)", d.no_py);
        rows_na(ROW_PY, py_note);
    }
    for (int i = 0; i < NROWS; i++) {
        for (int r = 0; r < MAX_RUNS; r++) {
            rows[i].a[r] = rows[i].b[r] = NAN;
        }
    }
    atexit(kill_live);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    read_loadavg(d.load0, sizeof(d.load0));
    int64_t t_start = bench_now_ns();
    for (int r = 0; r < d.runs; r++) {
        for (size_t mi = 0; mi < NMEAS; mi++) {
            const meas *m = &measures[mi];
            if (only != NULL) {
                char key[16];
                snprintf(key, sizeof(key), "%zu", mi);
                char list[256];
                snprintf(list, sizeof(list), ",%s,", only);
                char pat[20];
                snprintf(pat, sizeof(pat), ",%s,", key);
                if (strstr(list, pat) == NULL) {
                    continue;
                }
            }
            if ((m->kind == M_LUA || m->kind == M_PY || m->vs_skc) &&
                rows[m->row0].na) {
                continue;
            }
            if (m->diag && !d.decompose) {
                continue;
            }
            fprintf(stderr, "[run %d/%d] %s\n", r + 1, d.runs, meas_title(m));
            /* Alternate who goes first, so slow drift of the machine
             * does not always favour the same side. */
            int first = (int)((r + mi) % 2);
            for (int k = 0; k < 2; k++) {
                int side = k ^ first;
                int impl = m->kind == M_LUA ? (side == 0 ? IMPL_LUA : IMPL_SKC)
                    : m->kind == M_PY
                    ? (side == 0 ? IMPL_PY : IMPL_SKC)
                    : (side == 0 || m->vs_skc ? IMPL_SKC : IMPL_RAW);
                if (m->diag && m->srv_var != NULL) {
                    impl = IMPL_RAW;
                }
                if (sample(&d, m, impl, side, r) != 0) {
                    d.failures++;
                }
            }
        }
    }
    fprintf(stderr, "[done in %.1f s, %d failed sample%s]\n",
        (double)(bench_now_ns() - t_start) / 1e9, d.failures,
        d.failures == 1 ? "" : "s");
    if (report(&d) != 0) {
        return 1;
    }
    return d.failures == 0 ? 0 : 1;
}
