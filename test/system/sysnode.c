/* sysnode.c -- the node the system tests start as a separate process.
 *
 *   skc_sysnode [options] ADDRESS
 *     --name NAME         node name (default "sys")
 *     --id TAG            what @whoami answers (default: the name)
 *     --max-serving N, --max-conns N, --max-msg N, --workers N
 *     --log-level N       1 error .. 4 debug (default 3); log -> stderr
 *     --log-burst N       lines of one kind per 10 s (default: no limit;
 *                         0 = the library default, 20)
 *     --runlog FILE       @slow appends "RUN <tag>" here before it works
 *     --etcd URL, --etcd-prefix P, --etcd-ttl S, --etcd-cafile F,
 *     --etcd-certfile F, --etcd-keyfile F
 *                         the map from etcd (ADDRESS: the node's name)
 *     --cookie S, --cookie-file F   the cluster cookie (docs/SECURITY.md)
 *     --tls-cert F, --tls-key F, --tls-ca F, --tls-server-name N
 *     --names-only 1      refuse peers' targets by raw handle
 *
 * Prints "LISTENING <url>" once it serves, then runs until SIGTERM/SIGINT
 * or "quit" on stdin, and exits 0 after destroying its node (so ASan and
 * valgrind see a clean exit).  Services (all "@name"):
 *   echo     replies with the payload
 *   whoami   replies with the --id tag
 *   slow     payload "MS:TAG": logs RUN TAG (stdout and runlog), sleeps
 *            MS, replies "done TAG"
 *   hold     defers the reply and keeps it; prints "HELD <n held>";
 *            "release" on stdin answers them all ("released")
 *   block    payload "MS": sleeps MS and returns without replying
 *   sink     sends: counted; calls: reply "sends=N bytes=M"
 *   remain   replies with skc_msg_remaining_ms() as text
 *   nap      payload "MS": sleeps MS, replies "ok" (quietly, unlike slow)
 * Other stdin commands: "stats" prints "STATS held=N sends=N rss_kb=N". */
#include "skc/skc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

static const char *node_id = "sys";
static const char *runlog;
static pthread_mutex_t held_lk = PTHREAD_MUTEX_INITIALIZER;
static skc_reply **held;
static size_t nheld, capheld;
static atomic_llong sends, send_bytes;
static atomic_int spin_stop;

static void *
spin_main(void *arg)
{
    (void)arg;
    volatile unsigned long x = 0;
    while (!atomic_load(&spin_stop)) {
        x++;
    }
    return NULL;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static long
rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
        }
    }
    fclose(f);
    return kb;
}

static void
say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
    static pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
    va_list ap;
    pthread_mutex_lock(&lk);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&lk);
}

static void
svc_echo(skc_node *n, uint32_t s, skc_msg *m, void *arg)
{
    (void)n, (void)s, (void)arg;
    size_t len;
    const void *d = skc_msg_data(m, &len);
    if (skc_msg_kind(m) == SKC_MSG_CALL) {
        skc_msg_reply(m, d, len);
    }
}

static void
svc_whoami(skc_node *n, uint32_t s, skc_msg *m, void *arg)
{
    (void)n, (void)s, (void)arg;
    skc_msg_reply(m, node_id, strlen(node_id));
}

static void
svc_slow(skc_node *n, uint32_t s, skc_msg *m, void *arg)
{
    (void)n, (void)s, (void)arg;
    size_t len;
    const char *d = skc_msg_data(m, &len);
    char buf[256], tag[200] = "";
    snprintf(buf, sizeof(buf), "%.*s", (int)(len < 255 ? len : 255), d);
    long ms = strtol(buf, NULL, 10);
    const char *c = strchr(buf, ':');
    if (c != NULL) {
        snprintf(tag, sizeof(tag), "%s", c + 1);
    }
    if (runlog != NULL) {
        /* One write() per line with O_APPEND: survives kill -9 (page
         * cache), and lines from two server runs never interleave. */
        int fd = open(runlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            char line[256];
            int k = snprintf(line, sizeof(line), "RUN %s\n", tag);
            ssize_t w = write(fd, line, (size_t)k);
            (void)w;
            close(fd);
        }
    }
    say("RUN %s", tag);
    sleep_ms(ms);
    char rep[256];
    int k = snprintf(rep, sizeof(rep), "done %s", tag);
    skc_msg_reply(m, rep, (size_t)k);
}

static void
svc_hold(skc_node *n, uint32_t s, skc_msg *m, void *arg)
{
    (void)n, (void)s, (void)arg;
    skc_reply *r = NULL;
    if (skc_msg_defer(m, &r) != SKC_OK) {
        return;
    }
    pthread_mutex_lock(&held_lk);
    if (nheld == capheld) {
        capheld = capheld ? capheld * 2 : 64;
        held = realloc(held, capheld * sizeof(*held));
    }
    held[nheld++] = r;
    size_t k = nheld;
    pthread_mutex_unlock(&held_lk);
    say("HELD %zu", k);
}

/* Sleeps for the number of milliseconds the payload spells. */
static void
sleep_payload_ms(skc_msg *m)
{
    size_t len;
    const char *d = skc_msg_data(m, &len);
    char buf[32];
    snprintf(buf, sizeof(buf), "%.*s", (int)(len < 31 ? len : 31), d);
    sleep_ms(strtol(buf, NULL, 10));
}

static void
svc_block(skc_node *n, uint32_t s, skc_msg *m, void *arg)
{
    (void)n, (void)s, (void)arg;
    sleep_payload_ms(m);
    /* returns without replying */
}

static void
svc_nap(skc_node *n, uint32_t s, skc_msg *m, void *arg)
{
    (void)n, (void)s, (void)arg;
    sleep_payload_ms(m);
    skc_msg_reply(m, "ok", 2);
}

static void
svc_sink(skc_node *n, uint32_t s, skc_msg *m, void *arg)
{
    (void)n, (void)s, (void)arg;
    size_t len;
    skc_msg_data(m, &len);
    if (skc_msg_kind(m) == SKC_MSG_SEND) {
        atomic_fetch_add(&sends, 1);
        atomic_fetch_add(&send_bytes, (long long)len);
        return;
    }
    char rep[128];
    int k = snprintf(rep, sizeof(rep), "sends=%lld bytes=%lld",
        (long long)atomic_load(&sends), (long long)atomic_load(&send_bytes));
    skc_msg_reply(m, rep, (size_t)k);
}

static void
svc_remain(skc_node *n, uint32_t s, skc_msg *m, void *arg)
{
    (void)n, (void)s, (void)arg;
    char rep[32];
    int k = snprintf(rep, sizeof(rep), "%d", (int)skc_msg_remaining_ms(m));
    skc_msg_reply(m, rep, (size_t)k);
}

static void
release_all(void)
{
    pthread_mutex_lock(&held_lk);
    skc_reply **v = held;
    size_t k = nheld;
    held = NULL;
    nheld = capheld = 0;
    pthread_mutex_unlock(&held_lk);
    /* Said before answering: answers free contexts, new calls are then
     * held ("HELD 1" ...), and a reader sees the lines in that order. */
    say("RELEASED %zu", k);
    for (size_t i = 0; i < k; i++) {
        skc_reply_send(v[i], "released", 8);
    }
    free(v);
}

static int
add_service(skc_node *n, const char *name, skc_handler_fn fn)
{
    uint32_t h;
    int rc = skc_service_create(n, &h, fn, NULL);
    if (rc == SKC_OK) {
        rc = skc_name_register(n, name, h);
    }
    if (rc != SKC_OK) {
        fprintf(stderr, "service %s: %s (%s)\n", name, skc_strerror(rc),
            skc_last_error());
    }
    return rc;
}

int
main(int argc, char **argv)
{
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "sys";
    o.log = skc_log_stderr;
    o.log_level = SKC_LOG_INFO;
    /* Tests count this node's log lines (bad frames, refusals): every line
     * is logged unless --log-burst N sets a limit (0: the default). */
    o.log_burst = -1;
    int i, spin = 0;
    for (i = 1; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--name") == 0) {
            o.name = v;
        } else if (strcmp(k, "--id") == 0) {
            node_id = v;
        } else if (strcmp(k, "--max-serving") == 0) {
            o.max_serving = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(k, "--max-conns") == 0) {
            o.max_conns = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(k, "--max-msg") == 0) {
            o.max_msg_size = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(k, "--workers") == 0) {
            o.workers = atoi(v);
        } else if (strcmp(k, "--log-burst") == 0) {
            o.log_burst = atoi(v);
        } else if (strcmp(k, "--log-level") == 0) {
            o.log_level = atoi(v);
        } else if (strcmp(k, "--runlog") == 0) {
            runlog = v;
        } else if (strcmp(k, "--etcd") == 0) {
            o.etcd = v;
        } else if (strcmp(k, "--etcd-prefix") == 0) {
            o.etcd_prefix = v;
        } else if (strcmp(k, "--etcd-ttl") == 0) {
            o.etcd_ttl_s = atoi(v);
        } else if (strcmp(k, "--etcd-cafile") == 0) {
            o.etcd_cafile = v;
        } else if (strcmp(k, "--etcd-certfile") == 0) {
            o.etcd_certfile = v;
        } else if (strcmp(k, "--etcd-keyfile") == 0) {
            o.etcd_keyfile = v;
        } else if (strcmp(k, "--cookie") == 0) {
            o.cluster_cookie = v;
        } else if (strcmp(k, "--cookie-file") == 0) {
            o.cluster_cookie_file = v;
        } else if (strcmp(k, "--tls-cert") == 0) {
            o.tls_cert = v;
        } else if (strcmp(k, "--tls-key") == 0) {
            o.tls_key = v;
        } else if (strcmp(k, "--tls-ca") == 0) {
            o.tls_ca = v;
        } else if (strcmp(k, "--tls-server-name") == 0) {
            o.tls_server_name = v;
        } else if (strcmp(k, "--names-only") == 0) {
            o.names_only = atoi(v);
        } else if (strcmp(k, "--spin") == 0) {
            spin = atoi(v) < 16 ? atoi(v) : 16;
        } else {
            fprintf(stderr, "unknown option %s\n", k);
            return 2;
        }
    }
    if (i != argc - 1) {
        fprintf(stderr, "usage: %s [options] ADDRESS\n", argv[0]);
        return 2;
    }
    if (strcmp(node_id, "sys") == 0) {
        node_id = o.name;
    }
    /* Signals are read from a signalfd in the loop below. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    pthread_t spinners[16];
    for (int k = 0; k < spin; k++) {
        pthread_create(&spinners[k], NULL, spin_main, NULL);
    }

    skc_node *n = NULL;
    int rc = skc_node_create(&n, &o);
    if (rc != SKC_OK) {
        fprintf(stderr, "create: %s (%s)\n", skc_strerror(rc),
            skc_last_error());
        return 1;
    }
    if (add_service(n, "@echo", svc_echo) || add_service(n, "@whoami",
            svc_whoami) || add_service(n, "@slow", svc_slow) ||
        add_service(n, "@hold", svc_hold) || add_service(n, "@block",
            svc_block) || add_service(n, "@sink", svc_sink) ||
        add_service(n, "@remain", svc_remain) ||
        add_service(n, "@nap", svc_nap)) {
        skc_node_destroy(n);
        return 1;
    }
    char *url = NULL;
    rc = skc_node_open(n, &url, argv[i]);
    if (rc != SKC_OK) {
        fprintf(stderr, "open %s: %s (%s)\n", argv[i], skc_strerror(rc),
            skc_last_error());
        skc_node_destroy(n);
        return 1;
    }
    say("LISTENING %s", url);
    skc_free(url);

    struct pollfd pf[2] = { { sfd, POLLIN, 0 }, { 0, POLLIN, 0 } };
    char line[256];
    size_t ll = 0;
    int run = 1;
    while (run) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (pf[0].revents) {
            break;
        }
        if (pf[1].revents) {
            ssize_t r = read(0, line + ll, sizeof(line) - 1 - ll);
            if (r <= 0) {
                pf[1].fd = -1; /* stdin closed: keep serving */
                continue;
            }
            ll += (size_t)r;
            char *nl;
            while ((nl = memchr(line, '\n', ll)) != NULL) {
                *nl = '\0';
                if (strcmp(line, "release") == 0) {
                    release_all();
                } else if (strcmp(line, "stats") == 0) {
                    pthread_mutex_lock(&held_lk);
                    size_t h = nheld;
                    pthread_mutex_unlock(&held_lk);
                    say("STATS held=%zu sends=%lld rss_kb=%ld", h,
                        (long long)atomic_load(&sends), rss_kb());
                } else if (strcmp(line, "quit") == 0) {
                    run = 0;
                }
                size_t used = (size_t)(nl - line) + 1;
                memmove(line, nl + 1, ll - used);
                ll -= used;
            }
            if (ll == sizeof(line) - 1) {
                ll = 0;
            }
        }
    }
    fprintf(stderr, "sysnode %s: stopping\n", o.name);
    skc_node_destroy(n);
    fprintf(stderr, "sysnode %s: stopped\n", o.name);
    if (getenv("SKC_SYS_SLOW") != NULL) {
        /* valgrind runs: skc's background threads may still be finishing
         * (the bug skc.system.exitrace_valgrind covers) */
        struct timespec ts = { 0, 300 * 1000000L };
        nanosleep(&ts, NULL);
    }
    /* Replies still held: the node is gone, so answering them returns
     * SKC_ECLOSED and frees them (skc.h). */
    pthread_mutex_lock(&held_lk);
    for (size_t k = 0; k < nheld; k++) {
        skc_reply_free(held[k]);
    }
    free(held);
    held = NULL;
    nheld = 0;
    pthread_mutex_unlock(&held_lk);
    atomic_store(&spin_stop, 1);
    for (int k = 0; k < spin; k++) {
        pthread_join(spinners[k], NULL);
    }
    close(sfd);
    return 0;
}
