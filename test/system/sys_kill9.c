/* sys_kill9.c -- kill -9 a node while 100 calls to it are in flight.
 *
 *   sys_kill9 SYSNODE
 *
 * 1. A server process holds 100 calls (its @hold service defers them), so
 *    all 100 are in flight: sent and unanswered.  The caller's
 *    max_inflight is 100, so a 101st call must fail with SKC_ELIMIT.
 * 2. kill -9 the server: every call must end with SKC_ECONNLOST or
 *    SKC_EUNREACHABLE naming the node, well before its 10 s deadline.
 * 3. While the node is down, a call with a short deadline fails with
 *    SKC_EUNREACHABLE by that deadline.
 * 4. The pending-call state is freed: 100 new calls are accepted at once
 *    (max_inflight = 100 would refuse them otherwise).  Made while the
 *    node is down, they wait for it; each ends OK once it is back, or with
 *    SKC_EUNREACHABLE naming the node if the caller gave the link up
 *    first (after 6 s without a connection skc redials, and a refused
 *    dial fails the calls waiting for it) -- never anything else, and
 *    by its deadline.
 * 5. The server restarts on the same address: the next calls succeed with
 *    no action by the caller.
 */
#include "sys.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 100

static void
never_cb(int status, const void *data, size_t len, const char *detail,
    void *arg)
{
    (void)status, (void)data, (void)len, (void)detail, (void)arg;
    printf("[kill9] FAIL: a refused call ran its callback\n");
    abort();
}

int
main(int argc, char **argv)
{
    sys_init("kill9", 120);
    CHECK(argc >= 2, "usage: sys_kill9 SYSNODE");
    const char *log = sys_path("victim.log");
    static sys_proc srv; /* static: the exit cleanup reads it */
    char url[512];
    char *sargv[] = { argv[1], "--name", "victim", "127.0.0.1:0", NULL };
    sys_spawn(&srv, "victim", sargv, log, 1);
    sys_expect(&srv, "LISTENING", url, sizeof(url), sys_ms(10000));
    sys_log("server listening on %s", url);

    skc_node *cli = sys_client("caller", N);
    CHECK(skc_node_map_set(cli, "victim", url) == SKC_OK, "map_set");
    char out[600];
    int rc = sys_call(cli, "victim", "@echo", "warm", 4, sys_ms(5000), out,
        sizeof(out));
    CHECK(rc == SKC_OK, "warm-up call: %s (%s)", skc_errname(rc), out);

    /* 1. 100 calls held by the server */
    sys_batch b;
    sys_batch_init(&b, N);
    for (int i = 0; i < N; i++) {
        rc = sys_batch_start(&b, i, cli, "victim", "@hold", "h", 1, 10000);
        CHECK(rc == SKC_OK, "call %d not started: %s (%s)", i,
            skc_errname(rc), b.r[i].text);
    }
    char line[64];
    snprintf(line, sizeof(line), "HELD %d", N);
    sys_expect(&srv, line, NULL, 0, sys_ms(10000));
    sys_log("the server holds %d calls", N);
    rc = skc_node_call_async(cli, "victim", "@echo", "x", 1, 1000,
        never_cb, NULL);
    CHECK(rc == SKC_ELIMIT, "call 101 with max_inflight %d: %s", N,
        skc_errname(rc));
    CHECK(strstr(skc_last_error(), "max_inflight") != NULL,
        "ELIMIT detail does not name the limit: %s", skc_last_error());

    /* 2. kill -9 */
    int64_t t_kill = sys_now_ms();
    sys_kill9(&srv);
    int done = sys_batch_wait(&b, N, sys_ms(5000));
    CHECK(done == N, "only %d of %d calls ended within 5 s of kill -9",
        done, N);
    int64_t worst = 0;
    int lost = 0, unreach = 0;
    for (int i = 0; i < N; i++) {
        sys_result *r = &b.r[i];
        CHECK(r->status == SKC_ECONNLOST || r->status == SKC_EUNREACHABLE,
            "call %d ended with %s: %s", i, skc_errname(r->status), r->text);
        CHECK(strstr(r->text, "'victim'") != NULL,
            "call %d: detail does not name the node: %s", i, r->text);
        CHECK(r->done == 1, "call %d completed %d times", i, r->done);
        if (r->t_end - t_kill > worst) {
            worst = r->t_end - t_kill;
        }
        lost += r->status == SKC_ECONNLOST;
        unreach += r->status == SKC_EUNREACHABLE;
    }
    CHECK(worst < sys_ms(2000), "the last call ended %lld ms after kill -9 "
        "(deadline 10000 ms)", (long long)worst);
    sys_log("FIGURE kill9_end_ms=%lld econnlost=%d eunreachable=%d "
        "(deadline 10000 ms)", (long long)worst, lost, unreach);
    sys_log("sample detail: %s", b.r[0].text);
    sys_batch_fini(&b);

    /* 3. while down: unreachable by the deadline */
    int64_t t0 = sys_now_ms();
    rc = sys_call(cli, "victim", "@echo", "x", 1, 300, out, sizeof(out));
    int64_t dt = sys_now_ms() - t0;
    CHECK(rc == SKC_EUNREACHABLE, "call while down: %s (%s)",
        skc_errname(rc), out);
    CHECK(strstr(out, "'victim'") != NULL, "detail: %s", out);
    CHECK(dt >= 250 && dt < 300 + sys_ms(SYS_LATE_MS),
        "call while down ended after %lld ms (deadline 300)", (long long)dt);
    sys_log("while down: %s after %lld ms: %s", skc_errname(rc),
        (long long)dt, out);

    /* 4. the state of the 100 failed calls was freed */
    sys_batch_init(&b, N);
    char payload[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(payload[i], sizeof(payload[i]), "again-%d", i);
        rc = sys_batch_start(&b, i, cli, "victim", "@echo", payload[i],
            strlen(payload[i]), 20000);
        CHECK(rc == SKC_OK, "new call %d refused (state of failed calls "
            "not freed?): %s (%s)", i, skc_errname(rc), b.r[i].text);
    }

    /* 5. restart on the same address; no action by the caller */
    sys_sleep_ms(300);
    char *rargv[] = { argv[1], "--name", "victim", url, NULL };
    sys_spawn(&srv, "victim", rargv, log, 1);
    char url2[512];
    sys_expect(&srv, "LISTENING", url2, sizeof(url2), sys_ms(10000));
    CHECK(strcmp(url, url2) == 0, "restarted on %s, not %s", url2, url);
    int64_t t_up = sys_now_ms();
    done = sys_batch_wait(&b, N, sys_ms(25000));
    CHECK(done == N, "only %d of %d calls ended after the restart", done,
        N);
    int64_t last = 0;
    int ok = 0;
    for (int i = 0; i < N; i++) {
        sys_result *r = &b.r[i];
        CHECK(r->status == SKC_OK || r->status == SKC_EUNREACHABLE,
            "call %d made while down: %s (%s)", i, skc_errname(r->status),
            r->text);
        CHECK(r->t_end - r->t_start <= 20000 + sys_ms(500), "call %d made "
            "while down ended after its deadline", i);
        if (r->status == SKC_OK) {
            CHECK(strcmp(r->text, payload[i]) == 0, "call %d: reply '%s'",
                i, r->text);
            ok++;
        } else {
            CHECK(strstr(r->text, "'victim'") != NULL, "detail: %s",
                r->text);
        }
        if (r->t_end - t_up > last) {
            last = r->t_end - t_up;
        }
    }
    sys_log("FIGURE restart_calls_made_while_down ok=%d eunreachable=%d "
        "last_ended_ms_after_restart=%lld", ok, N - ok, (long long)last);
    sys_batch_fini(&b);
    /* the next call after the restart succeeds, with no action by the
     * caller (it may wait for NNG's redial: backoff up to 5 s) */
    t_up = sys_now_ms();
    rc = sys_call(cli, "victim", "@echo", "next", 4, 10000, out,
        sizeof(out));
    CHECK(rc == SKC_OK && strcmp(out, "next") == 0, "first call after the "
        "restart: %s (%s)", skc_errname(rc), out);
    sys_log("FIGURE restart_first_call_ms=%lld",
        (long long)(sys_now_ms() - t_up));
    for (int i = 0; i < 20; i++) {
        rc = sys_call(cli, "victim", "@echo", "next", 4, sys_ms(2000), out,
            sizeof(out));
        CHECK(rc == SKC_OK && strcmp(out, "next") == 0,
            "call %d after restart: %s (%s)", i, skc_errname(rc), out);
    }
    CHECK(skc_node_destroy(cli) == SKC_OK, "destroy");
    sys_stop_clean(&srv, sys_ms(10000));
    sys_log("PASS");
    return 0;
}
