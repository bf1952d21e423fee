/* sys_reload_stress.c -- switch a node's address back and forth while
 * replies are arriving, and check after each switch that deadlines still
 * fire and sends still arrive.
 *
 *   sys_reload_stress SYSNODE [SWITCHES]
 *
 * Regression test: changing an address closes the old link, and with NNG
 * 1.5.2 nng_close can hang for ever when a reply is being received at
 * that moment (nanomsg/nng#616, fixed in NNG 1.6.0 by PR #1636:
 * tcptran_pipe_recv_cb re-arms a closed rxaio).  Until commit af3b5f1
 * the close ran on the node's housekeeper thread, which then never ran
 * again: calls stopped timing out, sends were never dialed, destroy hung
 * (this test failed within 3-15 switches).  Closes now run on background
 * threads; this test turns any return of that hang into a clear failure.
 */
#include "sys.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 6
#define PAYLOAD (64 * 1024)

static atomic_int stop;
static atomic_int odd; /* calls that ended other than OK/ECONNLOST */
static char odd_text[600];
static skc_node *cli;

static void *
flow(void *arg)
{
    (void)arg;
    char *buf = malloc(PAYLOAD);
    memset(buf, 'x', PAYLOAD);
    while (!atomic_load(&stop)) {
        void *out = NULL;
        size_t len = 0;
        int rc = skc_node_call(cli, &out, &len, "srv", "@echo", buf,
            PAYLOAD, 3000);
        if (rc != SKC_OK && rc != SKC_ECONNLOST &&
            atomic_fetch_add(&odd, 1) == 0) {
            snprintf(odd_text, sizeof(odd_text), "%s: %s", skc_errname(rc),
                skc_last_error());
        }
        skc_free(out);
    }
    free(buf);
    return NULL;
}

int
main(int argc, char **argv)
{
    sys_init("reload_stress", 150);
    CHECK(argc >= 2, "usage: sys_reload_stress SYSNODE [SWITCHES]");
    int switches = argc > 2 ? atoi(argv[2]) : 30;
    static sys_proc a, b;
    char url[2][512];
    char *aargv[] = { argv[1], "--name", "A", "127.0.0.1:0", NULL };
    char *bargv[] = { argv[1], "--name", "B", "127.0.0.1:0", NULL };
    sys_spawn(&a, "A", aargv, sys_path("A.log"), 1);
    sys_spawn(&b, "B", bargv, sys_path("B.log"), 1);
    sys_expect(&a, "LISTENING", url[0], sizeof(url[0]), sys_ms(10000));
    sys_expect(&b, "LISTENING", url[1], sizeof(url[1]), sys_ms(10000));
    cli = sys_client("caller", 0);
    CHECK(skc_node_map_set(cli, "srv", url[0]) == SKC_OK, "map_set");
    char out[600];
    int rc = sys_call(cli, "srv", "@echo", "x", 1, sys_ms(5000), out,
        sizeof(out));
    CHECK(rc == SKC_OK, "warm-up: %s (%s)", skc_errname(rc), out);

    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        pthread_create(&t[i], NULL, flow, NULL);
    }
    int64_t worst = 0;
    for (int s = 0; s < switches; s++) {
        sys_sleep_ms(100);
        CHECK(skc_node_map_set(cli, "srv", url[(s + 1) % 2]) == SKC_OK,
            "map_set");
        /* A call nobody answers must still end by its deadline: the
         * housekeeper that fires deadlines is alive. */
        sys_batch bt;
        sys_batch_init(&bt, 1);
        sys_batch_start(&bt, 0, cli, "srv", "@hold", "h", 1, 300);
        int done = sys_batch_wait(&bt, 1, sys_ms(3000));
        if (done == 0) {
            atomic_store(&stop, 1);
            sys_fail(__FILE__, __LINE__, "deadline fired",
                "switch %d: a call with a 300 ms deadline did not end "
                "within 3 s: the node's housekeeper thread is blocked "
                "(nng_close of the old link hangs in NNG 1.5.2, "
                "nanomsg/nng#616, and runs where deadlines are fired)", s);
        }
        /* timed out after it was sent, or before the new link was up;
         * or cut by the next switch */
        CHECK(bt.r[0].status == SKC_ETIMEDOUT ||
            bt.r[0].status == SKC_EUNREACHABLE ||
            bt.r[0].status == SKC_ECONNLOST, "switch %d: @hold: %s (%s)", s,
            skc_errname(bt.r[0].status), bt.r[0].text);
        if (bt.r[0].t_end - bt.r[0].t_start > worst) {
            worst = bt.r[0].t_end - bt.r[0].t_start;
        }
        sys_batch_fini(&bt);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK(atomic_load(&odd) == 0, "%d calls failed oddly, first: %s",
        atomic_load(&odd), odd_text);
    sys_log("FIGURE reload_stress switches=%d deadline_300_worst_ms=%lld",
        switches, (long long)worst);
    CHECK(skc_node_destroy(cli) == SKC_OK, "destroy");
    sys_send_line(&a, "release");
    sys_send_line(&b, "release");
    sys_stop_clean(&a, sys_ms(10000));
    sys_stop_clean(&b, sys_ms(10000));
    sys_log("PASS");
    return 0;
}
