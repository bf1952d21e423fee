/* sys.c -- see sys.h.  Process bookkeeping is kept in plain static arrays
 * so that the signal handler can walk it without locks or allocation. */
#include "sys.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SYS_MAX_PROCS 64
#define SYS_MAX_HOOKS 16

static char sys_name[64] = "system";
static sys_proc *sys_procs[SYS_MAX_PROCS];
static int sys_nprocs;
static struct {
    void (*fn)(void *);
    void *arg;
} sys_hooks[SYS_MAX_HOOKS];
static int sys_nhooks;
static volatile sig_atomic_t sys_cleaned;
static char sys_dir[256];
static int sys_slow_factor = 1;

/* ---- cleanup on every exit path ---- */

static void
sys_kill_children(void)
{
    for (int i = 0; i < sys_nprocs; i++) {
        sys_proc *p = sys_procs[i];
        if (p != NULL && p->pid > 0 && !p->reaped) {
            kill(p->pid, SIGKILL);
        }
    }
    for (int i = 0; i < sys_nprocs; i++) {
        sys_proc *p = sys_procs[i];
        if (p != NULL && p->pid > 0 && !p->reaped) {
            int st;
            if (waitpid(p->pid, &st, 0) == p->pid) {
                p->reaped = 1;
                p->status = st;
            }
        }
    }
}

/* Only async-signal-safe calls: this also runs from the signal handler. */
static void
sys_cleanup(void)
{
    if (sys_cleaned) {
        return;
    }
    sys_cleaned = 1;
    /* skc's background threads may still be finishing after the last
     * skc_node_destroy (skc.system.exitrace_valgrind tests that bug);
     * let them end so the other valgrind runs test their own things. */
    if (sys_slow_factor > 1) {
        struct timespec ts = { 0, 300 * 1000000L };
        nanosleep(&ts, NULL);
    }
    sys_kill_children();
    for (int i = sys_nhooks - 1; i >= 0; i--) {
        sys_hooks[i].fn(sys_hooks[i].arg);
    }
    if (sys_dir[0] != '\0' && getenv("SKC_SYS_KEEP") == NULL) {
        pid_t pid = fork();
        if (pid == 0) {
            execl("/bin/rm", "rm", "-rf", sys_dir, (char *)NULL);
            _exit(127);
        }
        if (pid > 0) {
            int st;
            waitpid(pid, &st, 0);
        }
    }
}

static void
sys_on_signal(int sig)
{
    char msg[160];
    int n;
    if (sig == SIGALRM) {
        n = snprintf(msg, sizeof(msg),
            "[%s] FAIL: watchdog expired; "
            "killing children\n",
            sys_name);
    } else {
        n = snprintf(msg, sizeof(msg),
            "[%s] FAIL: killed by signal %d; "
            "killing children\n",
            sys_name, sig);
    }
    if (n > 0) {
        ssize_t w = write(1, msg, (size_t)n);
        (void)w;
    }
    sys_cleanup();
    _exit(sig == SIGALRM ? 1 : 128 + sig);
}

void
sys_forked(void)
{
    sys_cleaned = 1; /* the parent owns children, hooks and the tmpdir */
}

void
sys_settle(void)
{
    if (sys_slow_factor > 1) {
        sys_sleep_ms(300);
    }
}

void
sys_atexit(void (*fn)(void *), void *arg)
{
    if (sys_nhooks < SYS_MAX_HOOKS) {
        sys_hooks[sys_nhooks].fn = fn;
        sys_hooks[sys_nhooks].arg = arg;
        sys_nhooks++;
    }
}

void
sys_init(const char *test_name, int watchdog_s)
{
    snprintf(sys_name, sizeof(sys_name), "%s", test_name);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *slow = getenv("SKC_SYS_SLOW");
    if (slow != NULL && atoi(slow) > 1) {
        sys_slow_factor = atoi(slow);
    }
    atexit(sys_cleanup);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = sys_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (watchdog_s > 0) {
        alarm((unsigned)(watchdog_s * sys_slow_factor));
    }
}

void
sys_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    printf(
        "[%s] FAIL %s:%d: %s\n    (%s)\n", sys_name, file, line, text, cond);
    fflush(stdout);
    if (getenv("SKC_SYS_PAUSE_ON_FAIL") != NULL) {
        /* debugging: time to attach gdb to the driver and its children */
        printf("[%s] pid %d paused for 120 s\n", sys_name, (int)getpid());
        fflush(stdout);
        sys_sleep_ms(120000);
    }
    exit(1);
}

void
sys_log(const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    printf("[%s] %s\n", sys_name, text);
    fflush(stdout);
}

int64_t
sys_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
sys_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { }
}

int
sys_ms(int ms)
{
    return ms * sys_slow_factor;
}

int
sys_slow(void)
{
    return sys_slow_factor;
}

/* ---- child processes ---- */

void
sys_spawn(sys_proc *p, const char *name, char *const argv[],
    const char *errpath, int wrap)
{
    char *args[128];
    char wrapbuf[1024];
    int na = 0;
    const char *w = getenv("SKC_SYS_WRAP");
    if (wrap && w != NULL && w[0] != '\0') {
        snprintf(wrapbuf, sizeof(wrapbuf), "%s", w);
        for (char *tok = strtok(wrapbuf, " "); tok && na < 64;
             tok = strtok(NULL, " ")) {
            args[na++] = tok;
        }
    }
    for (int i = 0; argv[i] != NULL && na < 126; i++) {
        args[na++] = argv[i];
    }
    args[na] = NULL;

    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    if (errpath != NULL) {
        snprintf(p->errpath, sizeof(p->errpath), "%s", errpath);
    }
    int in[2], out[2];
    CHECK(pipe(in) == 0 && pipe(out) == 0, "pipe: %s", strerror(errno));
    int errfd = -1;
    if (errpath != NULL) {
        errfd = open(errpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        CHECK(errfd >= 0, "open %s: %s", errpath, strerror(errno));
    }
    CHECK(sys_nprocs < SYS_MAX_PROCS, "too many children");
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* Dies with the driver, even if the driver is SIGKILLed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        dup2(in[0], 0);
        dup2(out[1], 1);
        if (errfd >= 0) {
            dup2(errfd, 2);
        }
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(args[0], args);
        fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
        _exit(127);
    }
    if (errfd >= 0) {
        close(errfd);
    }
    close(in[0]);
    close(out[1]);
    fcntl(in[1], F_SETFD, FD_CLOEXEC);
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    p->pid = pid;
    p->in_fd = in[1];
    p->out_fd = out[0];
    /* Reuse a slot of the same struct if it was spawned before. */
    int i;
    for (i = 0; i < sys_nprocs && sys_procs[i] != p; i++) { }
    if (i == sys_nprocs) {
        sys_procs[sys_nprocs++] = p;
    }
}

int
sys_readline(sys_proc *p, char *line, size_t size, int timeout_ms)
{
    int64_t until = sys_now_ms() + timeout_ms;
    for (;;) {
        char *nl = memchr(p->buf, '\n', p->blen);
        if (nl != NULL) {
            size_t n = (size_t)(nl - p->buf);
            size_t c = n < size - 1 ? n : size - 1;
            memcpy(line, p->buf, c);
            line[c] = '\0';
            memmove(p->buf, nl + 1, p->blen - n - 1);
            p->blen -= n + 1;
            return 1;
        }
        if (p->blen == sizeof(p->buf)) {
            p->blen = 0; /* a line longer than the buffer: drop it */
        }
        if (p->eof) {
            return -1;
        }
        int left = (int)(until - sys_now_ms());
        if (left <= 0) {
            return 0;
        }
        struct pollfd pf = { p->out_fd, POLLIN, 0 };
        int r = poll(&pf, 1, left);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            continue;
        }
        ssize_t got =
            read(p->out_fd, p->buf + p->blen, sizeof(p->buf) - p->blen);
        if (got > 0) {
            p->blen += (size_t)got;
        } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
            p->eof = 1;
        }
    }
}

void
sys_expect(
    sys_proc *p, const char *prefix, char *rest, size_t size, int timeout_ms)
{
    char line[4096];
    int64_t until = sys_now_ms() + timeout_ms;
    size_t pl = strlen(prefix);
    for (;;) {
        int left = (int)(until - sys_now_ms());
        int r = sys_readline(p, line, sizeof(line), left > 0 ? left : 0);
        CHECK(r != 0, "%s: no line starting with '%s' within %d ms", p->name,
            prefix, timeout_ms);
        CHECK(r > 0, "%s: exited before printing '%s'", p->name, prefix);
        if (strncmp(line, prefix, pl) == 0) {
            if (rest != NULL) {
                const char *s = line + pl;
                while (*s == ' ') {
                    s++;
                }
                snprintf(rest, size, "%s", s);
            }
            return;
        }
        if (getenv("SKC_SYS_VERBOSE") != NULL) {
            sys_log("%s: %s", p->name, line);
        }
    }
}

void
sys_send_line(sys_proc *p, const char *line)
{
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "%s\n", line);
    CHECK(p->in_fd >= 0 && write(p->in_fd, buf, (size_t)n) == n,
        "%s: cannot write to stdin: %s", p->name, strerror(errno));
}

void
sys_signal(sys_proc *p, int sig)
{
    if (p->pid > 0 && !p->reaped) {
        kill(p->pid, sig);
    }
}

int
sys_wait(sys_proc *p, int timeout_ms)
{
    if (p->pid <= 0) {
        return -1;
    }
    int64_t until = sys_now_ms() + timeout_ms;
    while (!p->reaped) {
        int st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->reaped = 1;
            p->status = st;
            break;
        }
        if (sys_now_ms() >= until) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            p->reaped = 1;
            p->status = st;
            return -1;
        }
        sys_sleep_ms(10);
    }
    if (p->in_fd >= 0) {
        close(p->in_fd);
        p->in_fd = -1;
    }
    return p->status;
}

void
sys_stop_clean(sys_proc *p, int timeout_ms)
{
    sys_signal(p, SIGTERM);
    int st = sys_wait(p, timeout_ms);
    CHECK(st != -1, "%s did not exit within %d ms of SIGTERM", p->name,
        timeout_ms);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0) && p->errpath[0]) {
        char *t = sys_read_file(p->errpath);
        if (t != NULL) {
            size_t n = strlen(t);
            sys_log("%s stderr (last 3000 bytes):\n%s", p->name,
                n > 3000 ? t + n - 3000 : t);
            free(t);
        }
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
        "%s did not exit cleanly: %s %d (leak or error under "
        "ASan/valgrind?)",
        p->name, WIFEXITED(st) ? "exit status" : "signal",
        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    close(p->out_fd);
}

void
sys_kill9(sys_proc *p)
{
    sys_signal(p, SIGKILL);
    sys_wait(p, 5000);
    close(p->out_fd);
    p->blen = 0;
}

/* /proc/self/<what> for pid 0, else /proc/<pid>/<what>. */
static void
proc_path(char *buf, size_t size, pid_t pid, const char *what)
{
    if (pid == 0) {
        snprintf(buf, size, "/proc/self/%s", what);
    } else {
        snprintf(buf, size, "/proc/%d/%s", (int)pid, what);
    }
}

long
sys_rss_kb(pid_t pid)
{
    char path[64];
    proc_path(path, sizeof(path), pid, "status");
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

/* ---- files, ports, commands ---- */

const char *
sys_tmpdir(void)
{
    if (sys_dir[0] == '\0') {
        const char *t = getenv("TMPDIR");
        snprintf(sys_dir, sizeof(sys_dir), "%s/skc-sys-XXXXXX",
            t != NULL && t[0] != '\0' ? t : "/tmp");
        CHECK(mkdtemp(sys_dir) != NULL, "mkdtemp: %s", strerror(errno));
    }
    return sys_dir;
}

const char *
sys_path(const char *name)
{
    static char bufs[8][600];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof(bufs[0]), "%s/%s", sys_tmpdir(), name);
    return b;
}

void
sys_write_file(const char *path, const char *text)
{
    char tmp[700];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    CHECK(f != NULL, "open %s: %s", tmp, strerror(errno));
    fputs(text, f);
    CHECK(fclose(f) == 0, "write %s", tmp);
    /* rename: a reader never sees half a file */
    CHECK(rename(tmp, path) == 0, "rename %s: %s", path, strerror(errno));
}

char *
sys_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            b = realloc(b, cap);
        }
        size_t r = fread(b + n, 1, cap - n - 1, f);
        if (r == 0) {
            break;
        }
        n += r;
    }
    fclose(f);
    b[n] = '\0';
    return b;
}

int
sys_file_count(const char *path, const char *needle)
{
    char *t = sys_read_file(path);
    if (t == NULL) {
        return 0;
    }
    int c = 0;
    size_t nl = strlen(needle);
    for (char *s = strstr(t, needle); s; s = strstr(s + nl, needle)) {
        c++;
    }
    free(t);
    return c;
}

int
sys_file_wait(const char *path, const char *needle, int timeout_ms)
{
    int64_t until = sys_now_ms() + timeout_ms;
    do {
        if (sys_file_count(path, needle) > 0) {
            return 1;
        }
        sys_sleep_ms(20);
    } while (sys_now_ms() < until);
    return 0;
}

int
sys_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind: %s",
        strerror(errno));
    socklen_t l = sizeof(a);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &l) == 0, "getsockname");
    close(fd);
    return ntohs(a.sin_port);
}

/* A TCP connection to 127.0.0.1:port within ms (non-blocking connect: a
 * node that stopped accepting must not hang the test), or -1. */
int
sys_tcp_connect(int port, int ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return -1;
        }
        struct pollfd pf = { fd, POLLOUT, 0 };
        int err = 0;
        socklen_t el = sizeof(err);
        if (poll(&pf, 1, ms) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* Writes all of b within ms; 1 on success. */
int
sys_tcp_write(int fd, const void *b, size_t n, int ms)
{
    const uint8_t *p = b;
    int64_t until = sys_now_ms() + ms;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            return 0;
        }
        int left = (int)(until - sys_now_ms());
        if (left <= 0) {
            return 0;
        }
        struct pollfd pf = { fd, POLLOUT, 0 };
        poll(&pf, 1, left);
    }
    return 1;
}

/* Reads exactly n bytes within ms; 1 on success. */
int
sys_tcp_read(int fd, void *b, size_t n, int ms)
{
    uint8_t *p = b;
    int64_t until = sys_now_ms() + ms;
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
            return 0;
        }
        int left = (int)(until - sys_now_ms());
        if (left <= 0) {
            return 0;
        }
        struct pollfd pf = { fd, POLLIN, 0 };
        poll(&pf, 1, left);
    }
    return 1;
}

int
sys_sp_connect(int port, int proto, int ms)
{
    const uint8_t hdr[8] = { 0, 'S', 'P', 0, (uint8_t)(proto >> 8),
        (uint8_t)proto, 0, 0 };
    int fd = sys_tcp_connect(port, ms);
    if (fd < 0) {
        return -1;
    }
    uint8_t peer[8];
    if (!sys_tcp_write(fd, hdr, sizeof(hdr), ms) ||
        !sys_tcp_read(fd, peer, sizeof(peer), ms) || peer[0] != 0 ||
        peer[1] != 'S' || peer[2] != 'P' || peer[3] != 0 ||
        peer[4] != (uint8_t)((proto + 1) >> 8) ||
        peer[5] != (uint8_t)(proto + 1)) {
        close(fd);
        return -1;
    }
    return fd;
}

int
sys_url_port(const char *u)
{
    const char *c = strrchr(u, ':');
    return c ? atoi(c + 1) : 0;
}

int
sys_run(char *const argv[], int quiet)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (quiet) {
            int fd = open("/dev/null", O_WRONLY);
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int64_t until = sys_now_ms() + 30000;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            break;
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        if (sys_now_ms() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        sys_sleep_ms(5);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- skc helpers ---- */

skc_node *
sys_node_create(skc_node_opts *o)
{
    if (o->log == NULL) {
        o->log = skc_log_stderr;
        o->log_level = SKC_LOG_WARN;
    }
    skc_node *n = NULL;
    int rc = skc_node_create(&n, o);
    CHECK(rc == SKC_OK, "skc_node_create %s: %s (%s)",
        o->name ? o->name : "", skc_strerror(rc), skc_last_error());
    return n;
}

skc_node *
sys_client(const char *name, uint32_t max_inflight)
{
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = name;
    o.max_inflight = max_inflight;
    return sys_node_create(&o);
}

int
sys_call(skc_node *n, const char *peer, const char *target, const void *data,
    size_t len, int32_t timeout_ms, char *out, size_t outsize)
{
    void *rep = NULL;
    size_t rl = 0;
    int rc = skc_node_call(n, &rep, &rl, peer, target, data, len, timeout_ms);
    if (out != NULL && outsize > 0) {
        if (rc == SKC_OK) {
            size_t c = rl < outsize - 1 ? rl : outsize - 1;
            memcpy(out, rep, c);
            out[c] = '\0';
        } else {
            snprintf(out, outsize, "%s", skc_last_error());
        }
    }
    skc_free(rep);
    return rc;
}

void
sys_put_u32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

uint32_t
sys_get_u32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
        (uint32_t)b[3] << 24;
}

void
sys_put_u64(uint8_t *b, uint64_t v)
{
    sys_put_u32(b, (uint32_t)v);
    sys_put_u32(b + 4, (uint32_t)(v >> 32));
}

size_t
sys_put_req(uint8_t *b, uint8_t kind, uint32_t flags, uint8_t ttype,
    const char *name, uint32_t handle, const void *payload, size_t pl)
{
    size_t nl = name ? strlen(name) : 0;
    b[0] = 'S';
    b[1] = 'K';
    b[2] = 1;
    b[3] = kind;
    sys_put_u32(b + 4, flags);
    sys_put_u32(b + 8, 2000);
    sys_put_u32(b + 12, 65536);
    sys_put_u64(b + 16, 9);
    b[24] = ttype;
    b[25] = (uint8_t)nl;
    sys_put_u32(b + 26, handle);
    memcpy(b + 30, name ? name : "", nl);
    sys_put_u32(b + 30 + nl, (uint32_t)pl);
    if (pl > 0) {
        memcpy(b + 34 + nl, payload, pl);
    }
    return 34 + nl + pl;
}

/* ---- batches of async calls ---- */

void
sys_batch_init(sys_batch *b, int n)
{
    memset(b, 0, sizeof(*b));
    pthread_mutex_t *lk = malloc(sizeof(*lk));
    pthread_cond_t *cv = malloc(sizeof(*cv));
    CHECK(lk != NULL && cv != NULL, "out of memory");
    pthread_mutex_init(lk, NULL);
    pthread_cond_init(cv, NULL);
    b->lk = lk;
    b->cv = cv;
    b->n = n;
    b->r = calloc((size_t)n, sizeof(*b->r));
    CHECK(b->r != NULL, "out of memory");
    for (int i = 0; i < n; i++) {
        b->r[i].b = b;
    }
}

void
sys_batch_fini(sys_batch *b)
{
    pthread_mutex_destroy(b->lk);
    pthread_cond_destroy(b->cv);
    free(b->lk);
    free(b->cv);
    free(b->r);
    memset(b, 0, sizeof(*b));
}

static void
sys_batch_cb(
    int status, const void *data, size_t len, const char *detail, void *arg)
{
    sys_result *r = arg;
    sys_batch *b = r->b;
    pthread_mutex_lock(b->lk);
    r->t_end = sys_now_ms();
    r->status = status;
    r->len = len;
    if (status == SKC_OK) {
        size_t c = len < sizeof(r->text) - 1 ? len : sizeof(r->text) - 1;
        if (c > 0) {
            memcpy(r->text, data, c);
        }
        r->text[c] = '\0';
    } else {
        snprintf(r->text, sizeof(r->text), "%s", detail ? detail : "");
    }
    r->done++;
    b->ndone++;
    pthread_cond_broadcast(b->cv);
    pthread_mutex_unlock(b->lk);
}

int
sys_batch_start(sys_batch *b, int i, skc_node *node, const char *peer,
    const char *target, const void *data, size_t len, int32_t timeout_ms)
{
    sys_result *r = &b->r[i];
    pthread_mutex_lock(b->lk);
    r->started = 1;
    r->t_start = sys_now_ms();
    pthread_mutex_unlock(b->lk);
    int rc = skc_node_call_async(
        node, peer, target, data, len, timeout_ms, sys_batch_cb, r);
    if (rc != SKC_OK) {
        pthread_mutex_lock(b->lk);
        r->status = rc;
        r->t_end = sys_now_ms();
        snprintf(r->text, sizeof(r->text), "%s", skc_last_error());
        r->done++;
        b->ndone++;
        pthread_mutex_unlock(b->lk);
    }
    return rc;
}

int
sys_batch_wait(sys_batch *b, int count, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(b->lk);
    while (b->ndone < count) {
        if (pthread_cond_timedwait(b->cv, b->lk, &ts) != 0) {
            break;
        }
    }
    int d = b->ndone;
    pthread_mutex_unlock(b->lk);
    return d;
}

int
sys_fd_count(pid_t pid)
{
    char path[64];
    proc_path(path, sizeof(path), pid, "fd");
    DIR *d = opendir(path);
    if (d == NULL) {
        return -1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return pid == 0 ? n - 1 : n;
}

long
sys_sink_count(skc_node *cli, const char *peer, int32_t timeout_ms)
{
    char out[600];
    int rc =
        sys_call(cli, peer, "@sink", "?", 1, timeout_ms, out, sizeof(out));
    CHECK(rc == SKC_OK, "@sink on %s: %s (%s)", peer, skc_errname(rc), out);
    return strtol(out + 6, NULL, 10);
}

static pthread_mutex_t mon_lk = PTHREAD_MUTEX_INITIALIZER;
static char mon_text[8192];

static void
mon_report(void *arg, const char *peer, int up, const char *reason,
    const char *addr)
{
    (void)arg;
    (void)addr;
    pthread_mutex_lock(&mon_lk);
    size_t l = strlen(mon_text);
    snprintf(mon_text + l, sizeof(mon_text) - l, "%s %s %s\n", peer,
        up ? "up" : "down", reason);
    pthread_mutex_unlock(&mon_lk);
}

void
sys_monitor_start(skc_node *cli)
{
    CHECK(skc_node_monitor(cli, mon_report, NULL) == SKC_OK, "monitor: %s",
        skc_last_error());
}

int
sys_monitor_seen(const char *text)
{
    pthread_mutex_lock(&mon_lk);
    int seen = strstr(mon_text, text) != NULL;
    pthread_mutex_unlock(&mon_lk);
    return seen;
}

void
sys_monitor_wait(const char *text, int ms)
{
    int64_t until = sys_now_ms() + sys_ms(ms);
    while (!sys_monitor_seen(text) && sys_now_ms() < until) {
        sys_sleep_ms(10);
    }
    pthread_mutex_lock(&mon_lk);
    CHECK(strstr(mon_text, text) != NULL,
        "no monitor report '%s' within %d ms; reports:\n%s", text,
        sys_ms(ms), mon_text);
    pthread_mutex_unlock(&mon_lk);
}

void
sys_monitor_clear(void)
{
    pthread_mutex_lock(&mon_lk);
    mon_text[0] = '\0';
    pthread_mutex_unlock(&mon_lk);
}
