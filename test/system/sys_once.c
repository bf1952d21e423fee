/* sys_once.c -- a request runs at most once, across processes.
 *
 *   sys_once SYSNODE
 *
 * The server's @slow service appends "RUN <tag>" to a run log (one
 * O_APPEND write, so it survives kill -9) before it sleeps and replies.
 *  A. Handlers slower than a REQ resend interval (1.2 s each; NNG ran a
 *     request 4 times with a 500 ms resend in reference/nng-1.5.2.md):
 *     3 concurrent calls, each runs exactly once.
 *  B. kill -9 mid-call, restart on the same address: the call ends with
 *     SKC_ECONNLOST (outcome unknown) and the new server never runs it.
 *  C. SIGTERM mid-call (graceful stop waits for the handler), restart:
 *     same.
 */
#include "sys.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sys_proc srv;
static char url[512];
static const char *runlog;
static char *node;

static void
server_start(const char *where)
{
    char *sargv[] = { node, "--name", "once", "--runlog", (char *)runlog,
        (char *)where, NULL };
    char got[512];
    sys_spawn(&srv, "once", sargv, sys_path("once.log"), 1);
    sys_expect(&srv, "LISTENING", got, sizeof(got), sys_ms(10000));
    if (url[0] == '\0') {
        snprintf(url, sizeof(url), "%s", got);
    }
    CHECK(strcmp(url, got) == 0, "restarted on %s, not %s", got, url);
}

static void
expect_runs(const char *tag, int times)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "RUN %s\n", tag);
    int n = sys_file_count(runlog, needle);
    CHECK(n == times, "request %s ran %d times (expected %d)", tag, n,
        times);
}

/* One call to @slow killed mid-handler by `sig`; returns nothing, checks
 * everything. */
static void
restart_mid_call(skc_node *cli, const char *tag, int sig)
{
    sys_batch b;
    char payload[128], line[80];
    sys_batch_init(&b, 1);
    snprintf(payload, sizeof(payload), "%d:%s", sig == SIGKILL ? 3000 : 1500,
        tag);
    int rc = sys_batch_start(&b, 0, cli, "once", "@slow", payload,
        strlen(payload), 10000);
    CHECK(rc == SKC_OK, "start: %s", skc_errname(rc));
    snprintf(line, sizeof(line), "RUN %s", tag);
    sys_expect(&srv, line, NULL, 0, sys_ms(5000));
    int64_t t0 = sys_now_ms();
    if (sig == SIGKILL) {
        sys_kill9(&srv);
    } else {
        sys_stop_clean(&srv, sys_ms(10000));
    }
    CHECK(sys_batch_wait(&b, 1, sys_ms(5000)) == 1, "%s: no outcome", tag);
    int64_t dt = b.r[0].t_end - t0;
    CHECK(b.r[0].status == SKC_ECONNLOST, "%s: %s (%s)", tag,
        skc_errname(b.r[0].status), b.r[0].text);
    CHECK(strstr(b.r[0].text, "outcome is unknown") != NULL, "%s: detail: "
        "%s", tag, b.r[0].text);
    sys_log("%s: %s %lld ms after the %s: %s", tag,
        skc_errname(b.r[0].status), (long long)dt,
        sig == SIGKILL ? "kill -9" : "SIGTERM", b.r[0].text);
    sys_batch_fini(&b);
    server_start(url);
    /* the restarted server must not get the old request: wait for the
     * link to come back and well past any resend */
    char out[600], tag2[48];
    snprintf(tag2, sizeof(tag2), "%s-next", tag);
    snprintf(payload, sizeof(payload), "10:%s", tag2);
    rc = sys_call(cli, "once", "@slow", payload, strlen(payload),
        sys_ms(15000), out, sizeof(out));
    CHECK(rc == SKC_OK, "call after restart: %s (%s)", skc_errname(rc),
        out);
    sys_sleep_ms(1000);
    expect_runs(tag, 1);
    expect_runs(tag2, 1);
}

int
main(int argc, char **argv)
{
    sys_init("once", 120);
    CHECK(argc >= 2, "usage: sys_once SYSNODE");
    node = argv[1];
    runlog = sys_path("runs.log");
    server_start("127.0.0.1:0");
    skc_node *cli = sys_client("caller", 0);
    CHECK(skc_node_map_set(cli, "once", url) == SKC_OK, "map_set");

    /* A. slow handlers, concurrent callers */
    sys_batch b;
    sys_batch_init(&b, 3);
    const char *tags[3] = { "a1", "a2", "a3" };
    for (int i = 0; i < 3; i++) {
        char payload[32];
        snprintf(payload, sizeof(payload), "1200:%s", tags[i]);
        CHECK(sys_batch_start(&b, i, cli, "once", "@slow", payload,
                  strlen(payload), 10000) == SKC_OK, "start");
    }
    CHECK(sys_batch_wait(&b, 3, sys_ms(15000)) == 3, "slow calls ended");
    for (int i = 0; i < 3; i++) {
        char want[32];
        snprintf(want, sizeof(want), "done %s", tags[i]);
        CHECK(b.r[i].status == SKC_OK && strcmp(b.r[i].text, want) == 0,
            "%s: %s (%s)", tags[i], skc_errname(b.r[i].status),
            b.r[i].text);
    }
    sys_batch_fini(&b);
    sys_sleep_ms(1000);
    for (int i = 0; i < 3; i++) {
        expect_runs(tags[i], 1);
    }
    sys_log("A: 3 handlers of 1.2 s each ran exactly once");

    /* B. kill -9 mid-call */
    restart_mid_call(cli, "k1", SIGKILL);
    sys_log("B: kill -9 mid-call: ECONNLOST, ran once, not re-run");
    /* C. graceful stop mid-call */
    restart_mid_call(cli, "t1", SIGTERM);
    sys_log("C: SIGTERM mid-call: ECONNLOST, ran once, not re-run");

    CHECK(skc_node_destroy(cli) == SKC_OK, "destroy");
    sys_stop_clean(&srv, sys_ms(10000));
    sys_log("PASS");
    return 0;
}
