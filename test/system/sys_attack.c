/* sys_attack.c -- what one peer can make a node with default settings
 * hold (docs/RELIABILITY.md, "Limits").
 *
 *   sys_attack SYSNODE calls|sends
 *
 * A node (skc_sysnode, defaults) is attacked from this process while a
 * legit client calls its @echo every 20 ms:
 *   calls  1,600 calls with the longest deadline to @nap (2 s each, one
 *          at a time): calls wait until half of max_serving is held, then
 *          a service past its share (a quarter) is refused at once with
 *          SKC_ELIMIT;
 *   sends  sends of 64 KiB to @block (1 ms each) as fast as the
 *          attacker's link takes them, for 3 s: past max_mailbox_bytes
 *          the node stops reading its send port, so the attacker's own
 *          backlog fills and it gets SKC_ELIMIT; nothing is dropped.
 * Checks: the legit client's calls succeed (>= 99 %), a client started
 * during the attack connects and calls, the node's RSS stays under its
 * idle RSS + BOUND, the refusals and pauses are counted in its
 * statistics, its log has at most log_burst lines of each (plus the line
 * that counts the suppressed ones), and once the attacker is gone the
 * node's RSS stays under idle + RSS_AFTER for AFTER_MS.
 */
#include "sys.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The node may hold this much more than idle during an attack: the calls
 * attack queues 256 small calls; the sends attack fills one mailbox
 * (64 MiB by default) and NNG's buffers. */
#define RSS_CALLS_KB (32 * 1024)
#define RSS_SENDS_KB (192 * 1024)
/* ... and this much more than idle once the attacker has gone. */
#define RSS_AFTER_KB (96 * 1024)
#define AFTER_MS 10000

static sys_proc srv;
static char url[512];

static atomic_int legit_stop;
static atomic_long legit_ok, legit_failed;

/* The legit client: @echo every 20 ms until told to stop. */
static void *
legit_main(void *arg)
{
    skc_node *c = arg;
    while (!atomic_load(&legit_stop)) {
        char out[64];
        int rc = sys_call(
            c, "victim", "@echo", "hi", 2, sys_ms(2000), out, sizeof(out));
        if (rc == SKC_OK && strcmp(out, "hi") == 0) {
            atomic_fetch_add(&legit_ok, 1);
        } else {
            atomic_fetch_add(&legit_failed, 1);
            sys_log("legit call failed: %s (%s)", skc_errname(rc), out);
        }
        sys_sleep_ms(20);
    }
    return NULL;
}

static skc_node *
client(const char *name)
{
    skc_node *c = sys_client(name, 100000);
    CHECK(skc_node_map_set(c, "victim", url) == SKC_OK, "map: %s",
        skc_last_error());
    return c;
}

/* A counter of the victim's statistics, asked over the network. */
static long
victim_stat(skc_node *c, const char *key)
{
    char *json = NULL;
    int rc = skc_node_stats_remote(c, "victim", sys_ms(5000), &json);
    CHECK(rc == SKC_OK, "stats: %s", skc_last_error());
    char pat[80];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    long v = p != NULL ? strtol(p + strlen(pat), NULL, 10) : -1;
    skc_free(json);
    return v;
}

static void
new_client_calls(void)
{
    skc_node *c = client("newcomer");
    char out[64];
    int rc = sys_call(
        c, "victim", "@echo", "new", 3, sys_ms(5000), out, sizeof(out));
    CHECK(rc == SKC_OK, "a client started during the attack: %s (%s)",
        skc_errname(rc), out);
    CHECK(skc_node_destroy(c) == SKC_OK, "destroy newcomer");
}

static void
after_attack(long idle_kb, long bound_kb, long peak_kb)
{
    int64_t until = sys_now_ms() + sys_ms(AFTER_MS);
    long kb = sys_rss_kb(srv.pid);
    while (kb > idle_kb + RSS_AFTER_KB && sys_now_ms() < until) {
        sys_sleep_ms(200);
        kb = sys_rss_kb(srv.pid);
    }
    sys_log("FIGURE rss idle=%ld KiB peak=%ld KiB (bound %ld) after=%ld KiB",
        idle_kb, peak_kb, idle_kb + bound_kb, kb);
    CHECK(kb <= idle_kb + RSS_AFTER_KB,
        "RSS %ld KiB is still above idle %ld + %d KiB %d ms after the attack",
        kb, idle_kb, RSS_AFTER_KB, sys_ms(AFTER_MS));
}

/* Lines of the victim's log that contain text. */
static int
log_lines(const char *text)
{
    return sys_file_count(sys_path("victim.log"), text);
}

static atomic_long call_done, call_limit, call_other;

static void
on_attack_call(
    int status, const void *data, size_t len, const char *detail, void *arg)
{
    (void)data;
    (void)len;
    (void)detail;
    (void)arg;
    atomic_fetch_add(&call_done, 1);
    if (status == SKC_ELIMIT) {
        atomic_fetch_add(&call_limit, 1);
    } else {
        atomic_fetch_add(&call_other, 1);
    }
}

static void
attack_calls(skc_node *legit, long idle_kb)
{
    skc_node *a = client("attacker");
    long peak = 0;
    for (int i = 0; i < 1600; i++) {
        int rc = skc_node_call_async(
            a, "victim", "@nap", "2000", 4, 600000, on_attack_call, NULL);
        CHECK(rc == SKC_OK, "attack call %d: %s", i, skc_last_error());
    }
    /* the share waits, the rest is refused at once */
    int64_t until = sys_now_ms() + sys_ms(10000);
    while (atomic_load(&call_limit) < 1600 - 513 && sys_now_ms() < until) {
        sys_sleep_ms(20);
        long kb = sys_rss_kb(srv.pid);
        peak = kb > peak ? kb : peak;
    }
    sys_log("attack calls: %ld refused ELIMIT, %ld other ends so far",
        atomic_load(&call_limit), atomic_load(&call_other));
    CHECK(atomic_load(&call_limit) >= 1600 - 513,
        "only %ld of the calls past the share were refused",
        atomic_load(&call_limit));
    new_client_calls();
    for (int i = 0; i < 50; i++) {
        sys_sleep_ms(20);
        long kb = sys_rss_kb(srv.pid);
        peak = kb > peak ? kb : peak;
    }
    CHECK(peak <= idle_kb + RSS_CALLS_KB, "RSS %ld KiB > idle %ld + %d KiB",
        peak, idle_kb, RSS_CALLS_KB);
    CHECK(victim_stat(legit, "mailbox_full") >= 1600 - 513,
        "the refusals are not counted");
    int lines = log_lines("refused a call");
    CHECK(lines >= 1 && lines <= 21,
        "%d log lines for the refused calls (want 1..20 and a count)", lines);
    CHECK(skc_node_destroy(a) == SKC_OK, "destroy attacker");
    after_attack(idle_kb, RSS_CALLS_KB, peak);
}

static void
attack_sends(skc_node *legit, long idle_kb)
{
    skc_node *a = client("attacker");
    size_t len = 64 * 1024;
    char *big = malloc(len);
    CHECK(big != NULL, "malloc");
    memset(big, 'x', len);
    memcpy(big, "1", 1); /* @block: sleep 1 ms */
    big[1] = '\0';
    long peak = 0, sent = 0, full = 0;
    int64_t until = sys_now_ms() + sys_ms(3000);
    while (sys_now_ms() < until) {
        int rc = skc_node_send(a, "victim", "@block", big, len);
        if (rc == SKC_OK) {
            sent++;
        } else {
            CHECK(rc == SKC_ELIMIT, "attack send: %s", skc_last_error());
            full++;
            sys_sleep_ms(1);
        }
        if ((sent + full) % 64 == 0) {
            long kb = sys_rss_kb(srv.pid);
            peak = kb > peak ? kb : peak;
        }
    }
    free(big);
    sys_log("attack sends: %ld sent, %ld refused by the backlog", sent, full);
    new_client_calls();
    long kb = sys_rss_kb(srv.pid);
    peak = kb > peak ? kb : peak;
    CHECK(peak <= idle_kb + RSS_SENDS_KB, "RSS %ld KiB > idle %ld + %d KiB",
        peak, idle_kb, RSS_SENDS_KB);
    long dropped = victim_stat(legit, "sends_dropped");
    long paused = victim_stat(legit, "send_port_paused");
    sys_log("victim: %ld sends in, %ld dropped, send port paused %ld times",
        victim_stat(legit, "sends_in"), dropped, paused);
    CHECK(full > 0, "the attacker never felt the back-pressure (ELIMIT)");
    CHECK(dropped == 0, "%ld sends dropped", dropped);
    CHECK(paused >= 1, "the send port was never paused");
    int lines = log_lines("stopped reading sends");
    CHECK(lines >= 1 && lines <= 21,
        "%d log lines for %ld pauses (want 1..20 and a count)", lines, paused);
    CHECK(skc_node_destroy(a) == SKC_OK, "destroy attacker");
    after_attack(idle_kb, RSS_SENDS_KB, peak);
}

int
main(int argc, char **argv)
{
    sys_init("attack", 300);
    if (argc < 3) {
        fprintf(stderr, "usage: sys_attack SYSNODE calls|sends\n");
        return 2;
    }
    char *sargv[] = { argv[1], "--name", "victim", "--log-burst", "0",
        "127.0.0.1:0", NULL };
    sys_spawn(&srv, "victim", sargv, sys_path("victim.log"), 1);
    sys_expect(&srv, "LISTENING", url, sizeof(url), sys_ms(10000));

    skc_node *legit = client("legit");
    char out[64];
    CHECK(sys_call(legit, "victim", "@echo", "hi", 2, sys_ms(5000), out,
              sizeof(out)) == SKC_OK,
        "first call");
    sys_sleep_ms(300);
    long idle_kb = sys_rss_kb(srv.pid);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, legit_main, legit) == 0, "thread");
    if (strcmp(argv[2], "calls") == 0) {
        attack_calls(legit, idle_kb);
    } else {
        attack_sends(legit, idle_kb);
    }
    atomic_store(&legit_stop, 1);
    pthread_join(t, NULL);
    long ok = atomic_load(&legit_ok), failed = atomic_load(&legit_failed);
    sys_log("FIGURE legit ok=%ld failed=%ld", ok, failed);
    CHECK(ok > 0 && failed * 100 <= ok + failed,
        "the legit client: %ld OK, %ld failed (want >= 99 %% OK)", ok, failed);
    CHECK(skc_node_destroy(legit) == SKC_OK, "destroy legit");
    sys_stop_clean(&srv, sys_ms(10000));
    sys_settle();
    sys_log("PASS");
    return 0;
}
