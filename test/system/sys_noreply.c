/* sys_noreply.c -- handlers that never reply: every call ends at its
 * deadline with SKC_ETIMEDOUT naming the node, and nothing piles up in
 * the caller.
 *
 *   sys_noreply SYSNODE
 *
 *  - @hold defers the reply and never answers: the call times out at its
 *    deadline (not before, not long after);
 *  - @block sleeps past the deadline and returns without replying: the
 *    call times out; the late SKC_ENOREPLY answer is dropped by the caller
 *    and the link keeps working;
 *  - 5 rounds of 200 concurrent calls that time out: all end by their
 *    deadline; the caller's max_inflight (200) accepts every new round, so
 *    the state of the timed-out calls was freed; its RSS stays flat;
 *  - the remaining deadline travels with the request (@remain);
 *  - the server answers the 1000 abandoned replies later: the caller drops
 *    them and keeps working.
 * The valgrind variant runs the driver and the server under memcheck. */
#include "sys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUND 200
#define ROUNDS 5

static void
expect_timeout(skc_node *cli, const char *target, const char *payload,
    int deadline)
{
    char out[600];
    int64_t t0 = sys_now_ms();
    int rc = sys_call(cli, "slowpoke", target, payload, strlen(payload),
        deadline, out, sizeof(out));
    int64_t dt = sys_now_ms() - t0;
    CHECK(rc == SKC_ETIMEDOUT, "%s: %s (%s)", target, skc_errname(rc), out);
    CHECK(strstr(out, "'slowpoke'") != NULL && strstr(out, target) != NULL,
        "%s: the detail names neither node nor service: %s", target, out);
    CHECK(dt >= deadline - 5 && dt <= deadline + sys_ms(SYS_LATE_MS),
        "%s: ended after %lld ms, deadline %d", target, (long long)dt,
        deadline);
    sys_log("%s: %s after %lld ms (deadline %d): %s", target,
        skc_errname(rc), (long long)dt, deadline, out);
}

int
main(int argc, char **argv)
{
    sys_init("noreply", 150);
    CHECK(argc >= 2, "usage: sys_noreply SYSNODE");
    static sys_proc srv;
    char url[512], out[600];
    char *sargv[] = { argv[1], "--name", "slowpoke", "127.0.0.1:0", NULL };
    sys_spawn(&srv, "slowpoke", sargv, sys_path("slowpoke.log"), 1);
    sys_expect(&srv, "LISTENING", url, sizeof(url), sys_ms(10000));

    skc_node *cli = sys_client("caller", ROUND);
    CHECK(skc_node_map_set(cli, "slowpoke", url) == SKC_OK, "map_set");
    int rc = sys_call(cli, "slowpoke", "@echo", "hi", 2, sys_ms(5000), out,
        sizeof(out));
    CHECK(rc == SKC_OK, "warm-up: %s (%s)", skc_errname(rc), out);

    expect_timeout(cli, "@hold", "h", 500);
    sys_expect(&srv, "HELD 1", NULL, 0, sys_ms(2000));

    /* a handler that blocks past the deadline and never replies */
    int64_t t_block = sys_now_ms();
    expect_timeout(cli, "@block", "1500", 400);
    rc = sys_call(cli, "slowpoke", "@echo", "during", 6, sys_ms(2000), out,
        sizeof(out));
    CHECK(rc == SKC_OK, "echo while @block runs: %s (%s)", skc_errname(rc),
        out);
    /* let the late ENOREPLY answer arrive, then the link must be fine */
    sys_sleep_ms((int)(1700 - (sys_now_ms() - t_block)));
    rc = sys_call(cli, "slowpoke", "@echo", "after", 5, sys_ms(2000), out,
        sizeof(out));
    CHECK(rc == SKC_OK && strcmp(out, "after") == 0,
        "echo after the late answer: %s (%s)", skc_errname(rc), out);

    /* the remaining deadline travels with the request */
    rc = sys_call(cli, "slowpoke", "@remain", "", 0, 700, out, sizeof(out));
    CHECK(rc == SKC_OK, "@remain: %s (%s)", skc_errname(rc), out);
    int remain = atoi(out);
    CHECK(remain > 0 && remain <= 700, "the server saw %d ms left of 700",
        remain);
    sys_log("FIGURE remaining_at_server_ms=%d (of 700)", remain);

    /* rounds of concurrent calls that all time out */
    long rss_first = 0, rss_last = 0;
    int64_t worst = 0;
    for (int round = 0; round < ROUNDS; round++) {
        sys_batch b;
        sys_batch_init(&b, ROUND);
        for (int i = 0; i < ROUND; i++) {
            rc = sys_batch_start(&b, i, cli, "slowpoke", "@hold", "h", 1,
                300);
            CHECK(rc == SKC_OK, "round %d call %d refused: %s (%s) -- the "
                "timed-out calls were not freed?", round, i,
                skc_errname(rc), b.r[i].text);
        }
        int done = sys_batch_wait(&b, ROUND, sys_ms(5000));
        CHECK(done == ROUND, "round %d: %d of %d ended", round, done, ROUND);
        for (int i = 0; i < ROUND; i++) {
            sys_result *r = &b.r[i];
            int64_t dt = r->t_end - r->t_start;
            CHECK(r->status == SKC_ETIMEDOUT, "round %d call %d: %s (%s)",
                round, i, skc_errname(r->status), r->text);
            CHECK(r->done == 1, "call completed %d times", r->done);
            CHECK(dt >= 295 && dt <= 300 + sys_ms(SYS_LATE_MS),
                "round %d call %d ended after %lld ms (deadline 300)",
                round, i, (long long)dt);
            if (dt > worst) {
                worst = dt;
            }
        }
        sys_batch_fini(&b);
        if (round == 0) {
            rss_first = sys_rss_kb(0);
        }
        rss_last = sys_rss_kb(0);
    }
    sys_log("FIGURE noreply_rounds=%d x %d timed_out_worst_ms=%lld "
        "(deadline 300) caller_rss_kb=%ld->%ld", ROUNDS, ROUND,
        (long long)worst, rss_first, rss_last);
    if (sys_slow() == 1) {
        CHECK(rss_last - rss_first < 4096, "caller RSS grew by %ld KiB over "
            "%d timed-out calls", rss_last - rss_first, (ROUNDS - 1) * ROUND);
    }

    /* the server answers the abandoned calls now; the caller drops them */
    sys_send_line(&srv, "release");
    char rel[64];
    sys_expect(&srv, "RELEASED", rel, sizeof(rel), sys_ms(5000));
    /* Requests whose deadline passed while they waited in the mailbox
     * are dropped unrun (the caller has given up): on a slow machine
     * (valgrind) not all of them reach @hold. */
    CHECK(atoi(rel) >= 1 && atoi(rel) <= 1 + ROUNDS * ROUND, "released %s",
        rel);
    sys_log("FIGURE noreply_held_by_server=%d of %d (the rest expired "
        "unrun in the mailbox)", atoi(rel), 1 + ROUNDS * ROUND);
    for (int i = 0; i < 10; i++) {
        rc = sys_call(cli, "slowpoke", "@echo", "end", 3, sys_ms(2000), out,
            sizeof(out));
        CHECK(rc == SKC_OK && strcmp(out, "end") == 0, "echo at end: %s "
            "(%s)", skc_errname(rc), out);
    }
    CHECK(skc_node_destroy(cli) == SKC_OK, "destroy");
    sys_stop_clean(&srv, sys_ms(10000));
    sys_log("PASS");
    return 0;
}
