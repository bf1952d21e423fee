/* sys_exitrace.c -- a program may exit right after skc_node_destroy().
 *
 *   sys_exitrace [ROUNDS]      (meaningful under valgrind: the
 *                               skc.system.exitrace_valgrind test)
 *
 * The test runs with slowexit.so preloaded: every detached thread skc
 * starts lingers 1 s after its work, so a thread that skc does not wait
 * for is still alive when the process exits.  Each round, in a fresh
 * process: a node dials a refused address (a dial thread), replaces a link
 * (a close thread), is destroyed, and the process exits at once.  Nothing
 * may still be running or allocated then: valgrind must report no leak,
 * not even "possibly lost" thread stacks.
 *
 * Regression test for bug B5 (docs/RELIABILITY.md, fixed in 53da3a7):
 * skc's background threads were detached and signalled completion
 * (skci_bg_done) before returning, so skc_node_destroy() could return
 * while they were still finishing; a process exiting then had live skc
 * threads, reported "possibly lost" (about 1 process in 20 on a loaded
 * machine without slowexit.so; every round with it).
 */
#include "sys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void
round_main(void)
{
    skc_node *n = sys_client("exiter", 0);
    char refused[64], out[600];
    snprintf(refused, sizeof(refused), "127.0.0.1:%d", sys_free_port());
    CHECK(skc_node_map_set(n, "nobody", refused) == SKC_OK, "map_set");
    int rc = sys_call(n, "nobody", "@x", "x", 1, 2000, out, sizeof(out));
    CHECK(rc == SKC_EUNREACHABLE, "refused dial: %s", skc_errname(rc));
    /* a link to a live node (ourselves), then an address change */
    char *addr = NULL;
    CHECK(skc_node_open(n, &addr, "127.0.0.1:0") == SKC_OK, "open");
    CHECK(skc_node_map_set(n, "self", addr) == SKC_OK, "map_set");
    rc = sys_call(n, "self", "@none", "x", 1, 5000, out, sizeof(out));
    CHECK(rc == SKC_ENOSERVICE, "self call: %s (%s)", skc_errname(rc), out);
    CHECK(skc_node_map_set(n, "self", refused) == SKC_OK, "map_set");
    skc_free(addr);
    CHECK(skc_node_destroy(n) == SKC_OK, "destroy");
}

int
main(int argc, char **argv)
{
    sys_init("exitrace", 280);
    int rounds = argc > 1 ? atoi(argv[1]) : 10;
    int bad = 0;
    for (int r = 0; r < rounds; r++) {
        fflush(stdout);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
            sys_forked();
            round_main();
            exit(0); /* at once: no grace period for skc's threads */
        }
        int st;
        CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            bad++;
            sys_log("round %d: the process exited with %s %d", r,
                WIFEXITED(st) ? "status" : "signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        }
    }
    CHECK(bad == 0, "%d of %d processes that exited right after "
        "skc_node_destroy() still had skc threads running (valgrind: thread "
        "stacks 'possibly lost'): skc_node_destroy must join every thread "
        "it started", bad,
        rounds);
    sys_log("PASS");
    return 0;
}
