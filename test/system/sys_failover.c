/* sys_failover.c -- a group fails over when its first member is killed,
 * and returns to it when it comes back (the seed's fault scenario 1).
 *
 *   sys_failover SYSNODE
 *
 * Two server processes db_a and db_b; this driver's node maps
 * db = { "db_a", "db_b" } and calls db's @whoami every 50 ms.
 * 1. Calls are answered by db_a.
 * 2. kill -9 db_a: within 1.5 s calls are answered by db_b, with at most
 *    a few errors (calls that were in flight end with SKC_ECONNLOST or
 *    SKC_EUNREACHABLE, naming the group and the member); the monitor
 *    reports db_a down.
 * 3. db_a restarts on its address: calls return to it with no action by
 *    the caller, and the monitor reports it up.
 */
#include "sys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Calls db every 50 ms until it is answered by `want` (bounded); counts
 * the errors on the way and checks each.  Returns the time it took. */
static int64_t
calls_until(skc_node *cli, const char *want, int bound_ms, int *errors)
{
    int64_t t0 = sys_now_ms();
    char out[1200] = "";
    int rc;
    *errors = 0;
    for (;;) {
        rc = sys_call(cli, "db", "@whoami", "?", 1, 1000, out, sizeof(out));
        if (rc == SKC_OK && strcmp(out, want) == 0) {
            return sys_now_ms() - t0;
        }
        if (rc != SKC_OK) {
            (*errors)++;
            CHECK(rc == SKC_ECONNLOST || rc == SKC_EUNREACHABLE,
                "a call to the group ended with %s: %s", skc_errname(rc),
                out);
            CHECK(strstr(out, "group 'db'") && strstr(out, "'db_a'"),
                "the error does not name the group and the member: %s",
                out);
            sys_log("error on the way to %s: %s: %s", want, skc_errname(rc),
                out);
        }
        CHECK(sys_now_ms() - t0 < sys_ms(bound_ms),
            "db was not answered by %s within %d ms: last %s (%s)", want,
            sys_ms(bound_ms), skc_errname(rc), out);
        sys_sleep_ms(50);
    }
}

int
main(int argc, char **argv)
{
    sys_init("failover", 120);
    CHECK(argc >= 2, "usage: sys_failover SYSNODE");
    static sys_proc a, b; /* static: the exit cleanup reads them */
    char url_a[512], url_b[512];
    char *aargv[] = { argv[1], "--name", "db_a", "127.0.0.1:0", NULL };
    char *bargv[] = { argv[1], "--name", "db_b", "127.0.0.1:0", NULL };
    sys_spawn(&a, "db_a", aargv, sys_path("db_a.log"), 1);
    sys_spawn(&b, "db_b", bargv, sys_path("db_b.log"), 1);
    sys_expect(&a, "LISTENING", url_a, sizeof(url_a), sys_ms(10000));
    sys_expect(&b, "LISTENING", url_b, sizeof(url_b), sys_ms(10000));

    skc_node *cli = sys_client("gate", 0);
    sys_monitor_start(cli);
    char map[1200];
    snprintf(map, sizeof(map),
        "db_a = '%s'\ndb_b = '%s'\ndb = { 'db_a', 'db_b' }\n", url_a, url_b);
    CHECK(skc_node_map_parse(cli, map, "failover") == SKC_OK, "map: %s",
        skc_last_error());

    /* 1. the first member answers */
    int errors;
    calls_until(cli, "db_a", 5000, &errors);
    CHECK(errors == 0, "%d errors before any fault", errors);
    sys_monitor_wait("db_b up connected", 5000); /* watched without a call */

    /* 2. kill -9 the first member: calls move to the second */
    sys_kill9(&a);
    int64_t dt = calls_until(cli, "db_b", 1500, &errors);
    CHECK(errors <= 3, "%d calls failed during the failover", errors);
    sys_monitor_wait("db_a down", 2000);
    sys_log("FIGURE failover_ms=%lld errors=%d", (long long)dt, errors);
    for (int i = 0; i < 10; i++) {
        char out[1200];
        int rc = sys_call(cli, "db", "@whoami", "?", 1, 2000, out,
            sizeof(out));
        CHECK(rc == SKC_OK && strcmp(out, "db_b") == 0,
            "call %d after the failover: %s (%s)", i, skc_errname(rc), out);
    }
    int st;
    char *detail = NULL;
    CHECK(skc_node_peer_state(cli, "db", &st, &detail) == SKC_OK &&
            st == SKC_PEER_UP,
        "group state %d: %s", st, detail ? detail : "");
    sys_log("group state: %s", detail);
    skc_free(detail);

    /* 3. the first member comes back on its address */
    char *rargv[] = { argv[1], "--name", "db_a", url_a, NULL };
    sys_spawn(&a, "db_a", rargv, sys_path("db_a.log"), 1);
    char url_a2[512];
    sys_expect(&a, "LISTENING", url_a2, sizeof(url_a2), sys_ms(10000));
    CHECK(strcmp(url_a, url_a2) == 0, "restarted on %s, not %s", url_a2,
        url_a);
    dt = calls_until(cli, "db_a", 15000, &errors);
    CHECK(errors == 0, "%d calls failed while db_a came back", errors);
    sys_monitor_wait("db_a up connected", 2000);
    sys_log("FIGURE failback_ms=%lld", (long long)dt);

    CHECK(skc_node_destroy(cli) == SKC_OK, "destroy");
    sys_stop_clean(&a, sys_ms(10000));
    sys_stop_clean(&b, sys_ms(10000));
    sys_log("PASS");
    return 0;
}
