/* test_map.c -- cluster-map files through the public API: both forms,
 * reload merge, errors with file:line, all-or-nothing updates, open by map
 * name; and services running in parallel.  Uses only skc.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "skc/skc.h"

static char dir[64];

static void
write_file(const char *name, const char *text, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void
expect_addr(skc_node *n, const char *name, const char *want)
{
    char *a = NULL;
    int rc = skc_node_map_get(n, &a, name);
    if (want == NULL) {
        assert_int_equal(rc, SKC_OK);
        assert_null(a);
        return;
    }
    if (rc != SKC_OK) {
        fail_msg("%s: %s", name, skc_last_error());
    }
    assert_string_equal(a, want);
    skc_free(a);
}

static void
test_file_forms_and_reload(void **state)
{
    (void)state;
    char path[128];
    write_file("map1.lua",
        "-- assignments and a returned table in one file\n"
        "__nowaiting = true\n"
        "db = \"127.0.0.1:7102\"\n"
        "old = false\n"
        "return {\n"
        "  gate = \"127.0.0.1:7101\",  -- gate\n"
        "  [\"with-dash\"] = \"ipc:///tmp/x.sock\";\n"
        "  --[[ cache = \"1.2.3.4:1\", ]]\n"
        "}\n",
        path, sizeof(path));
    skc_node *n;
    assert_int_equal(skc_node_create(&n, NULL), SKC_OK);
    assert_int_equal(skc_node_map_reload(n), SKC_ESTATE);
    assert_int_equal(skc_node_map_load(n, path), SKC_OK);
    expect_addr(n, "db", "tcp://127.0.0.1:7102");
    expect_addr(n, "gate", "tcp://127.0.0.1:7101");
    expect_addr(n, "with-dash", "ipc:///tmp/x.sock");
    expect_addr(n, "old", NULL);
    expect_addr(n, "__nowaiting", "true");
    char *a;
    assert_int_equal(skc_node_map_get(n, &a, "cache"), SKC_ENONODE);

    /* reload merges: absent keys keep their value */
    write_file("map1.lua", "db = false\nnew = \"[::1]:9000\"\n", path,
        sizeof(path));
    assert_int_equal(skc_node_map_reload(n), SKC_OK);
    expect_addr(n, "db", NULL);
    expect_addr(n, "gate", "tcp://127.0.0.1:7101");
    expect_addr(n, "new", "tcp://[::1]:9000");

    /* a malformed file changes nothing and says file:line */
    write_file("bad.lua", "a = \"127.0.0.1:1\"\nb = \"127.0.0.1:2\"\nc 3\n",
        path, sizeof(path));
    assert_int_equal(skc_node_map_load(n, path), SKC_ESYNTAX);
    assert_non_null(strstr(skc_last_error(), "bad.lua:3:"));
    assert_non_null(strstr(skc_last_error(), "expected"));
    assert_int_equal(skc_node_map_get(n, &a, "a"), SKC_ENONODE);

    /* a bad address in a valid file: rejected whole, with its line */
    write_file("badaddr.lua", "a = \"127.0.0.1:1\"\nb = \"nonsense\"\n", path,
        sizeof(path));
    assert_int_equal(skc_node_map_load(n, path), SKC_EINVAL);
    assert_non_null(strstr(skc_last_error(), "badaddr.lua:2"));
    assert_int_equal(skc_node_map_get(n, &a, "a"), SKC_ENONODE);

    assert_int_equal(skc_node_map_load(n, "/nonexistent/map.lua"), SKC_EIO);
    assert_non_null(strstr(skc_last_error(), "/nonexistent/map.lua"));

    /* text form and the batch update, all or nothing */
    assert_int_equal(skc_node_map_parse(n, "x = \"inproc://x\"", NULL),
        SKC_OK);
    expect_addr(n, "x", "inproc://x");
    assert_int_equal(skc_node_map_parse(n, "x = ", "inline"), SKC_ESYNTAX);
    assert_non_null(strstr(skc_last_error(), "inline:1"));
    const char *names[] = { "p", "q" };
    const char *addrs[] = { "127.0.0.1:5", "not an address" };
    assert_int_equal(skc_node_map_update(n, names, addrs, 2), SKC_EINVAL);
    assert_int_equal(skc_node_map_get(n, &a, "p"), SKC_ENONODE);
    assert_int_equal(skc_node_map_set(n, "", "127.0.0.1:1"), SKC_EINVAL);
    assert_int_equal(skc_node_map_set(NULL, "a", "127.0.0.1:1"), SKC_EINVAL);
    assert_int_equal(skc_node_destroy(n), SKC_OK);
}

struct par {
    atomic_int running;
    atomic_int max_seen;
};

static void
slow_handler(skc_node *node, uint32_t service, skc_msg *msg, void *arg)
{
    (void)node;
    (void)service;
    struct par *p = arg;
    int r = atomic_fetch_add(&p->running, 1) + 1;
    int m = atomic_load(&p->max_seen);
    while (r > m && !atomic_compare_exchange_weak(&p->max_seen, &m, r)) {
    }
    struct timespec ts = { 0, 300 * 1000000L };
    nanosleep(&ts, NULL);
    atomic_fetch_sub(&p->running, 1);
    skc_msg_reply(msg, "done", 4);
}

struct res {
    atomic_int done;
    int status;
};

static void
cb(int status, const void *d, size_t l, const char *detail, void *arg)
{
    (void)d;
    (void)l;
    (void)detail;
    struct res *r = arg;
    r->status = status;
    atomic_store(&r->done, 1);
}

/* Open by map name (the node takes that name); two services run at the
 * same time on the two workers. */
static void
test_open_by_name_parallel(void **state)
{
    (void)state;
    char path[128];
    char sock[96];
    snprintf(sock, sizeof(sock), "ipc://%s/db.sock", dir);
    char text[256];
    snprintf(text, sizeof(text), "return { db = \"%s\", down = false }\n",
        sock);
    write_file("map2.lua", text, path, sizeof(path));
    skc_node *db, *cli;
    assert_int_equal(skc_node_create(&db, NULL), SKC_OK);
    assert_int_equal(skc_node_map_load(db, path), SKC_OK);
    assert_int_equal(skc_node_open(db, NULL, "down"), SKC_ENODEDOWN);
    assert_int_equal(skc_node_open(db, NULL, "nothere"), SKC_ENONODE);
    assert_int_equal(skc_node_open(db, NULL, "db"), SKC_OK);
    assert_string_equal(skc_node_name(db), "db");
    struct par p = { 0 };
    uint32_t a, b;
    assert_int_equal(skc_service_create(db, &a, slow_handler, &p), SKC_OK);
    assert_int_equal(skc_service_create(db, &b, slow_handler, &p), SKC_OK);
    assert_int_equal(skc_name_register(db, "a", a), SKC_OK);
    assert_int_equal(skc_name_register(db, "b", b), SKC_OK);
    assert_int_equal(skc_node_create(&cli, NULL), SKC_OK);
    assert_int_equal(skc_node_map_load(cli, path), SKC_OK);
    struct res ra = { 0 }, rb = { 0 };
    assert_int_equal(skc_node_call_async(cli, "db", "@a", "x", 1, 5000, cb,
                         &ra), SKC_OK);
    assert_int_equal(skc_node_call_async(cli, "db", "@b", "x", 1, 5000, cb,
                         &rb), SKC_OK);
    for (int i = 0; i < 500 && !(atomic_load(&ra.done) &&
                                   atomic_load(&rb.done)); i++) {
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
    assert_int_equal(ra.status, SKC_OK);
    assert_int_equal(rb.status, SKC_OK);
    assert_int_equal(atomic_load(&p.max_seen), 2);
    assert_int_equal(skc_node_destroy(cli), SKC_OK);
    assert_int_equal(skc_node_destroy(db), SKC_OK);
}

static int
setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/skc-map-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* skc.h: the log callback never runs with an skc lock held, so it may call
 * back into skc, its own node included.  Map changes and dial failures log
 * while the node holds its call lock; before the log queue this
 * deadlocked.  The work runs on a thread joined with a bound, so a
 * deadlock fails the test instead of hanging it. */
struct reenter {
    skc_node *_Atomic node; /* NULL once the test destroys it */
    atomic_int lines;
    atomic_int reentered;
};

static void
reenter_log(int level, const char *node, const char *text, void *arg)
{
    (void)level;
    (void)node;
    (void)text;
    struct reenter *r = arg;
    atomic_fetch_add(&r->lines, 1);
    skc_node *n = atomic_load(&r->node);
    if (n == NULL) {
        return;
    }
    char *a = NULL;
    if (skc_node_map_get(n, &a, "db") == SKC_OK) {
        atomic_fetch_add(&r->reentered, 1);
    }
    skc_free(a);
}

static void *
reenter_main(void *arg)
{
    struct reenter *r = arg;
    skc_node *n = atomic_load(&r->node);
    if (skc_node_map_set(n, "db", "127.0.0.1:1") != SKC_OK) {
        return "map_set failed";
    }
    void *out = NULL;
    size_t len = 0;
    int rc = skc_node_call(n, &out, &len, "db", "@x", "hi", 2, 3000);
    skc_free(out);
    if (rc != SKC_EUNREACHABLE && rc != SKC_ETIMEDOUT) {
        return "the call to a closed port did not fail as unreachable";
    }
    if (skc_node_map_set(n, "db", NULL) != SKC_OK) {
        return "map_set false failed";
    }
    return NULL;
}

static void
test_log_callback_calls_skc(void **state)
{
    (void)state;
    static struct reenter r;
    atomic_init(&r.lines, 0);
    atomic_init(&r.reentered, 0);
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "logger";
    o.log = reenter_log;
    o.log_arg = &r;
    o.log_level = SKC_LOG_DEBUG;
    skc_node *made = NULL;
    atomic_init(&r.node, NULL);
    assert_int_equal(skc_node_create(&made, &o), SKC_OK);
    atomic_store(&r.node, made);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reenter_main, &r), 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    void *err = NULL;
    if (pthread_timedjoin_np(t, &err, &ts) != 0) {
        fail_msg("a log callback that calls skc deadlocked the node (it ran "
            "with the node's call lock held)");
    }
    if (err != NULL) {
        fail_msg("%s: %s", (const char *)err, skc_last_error());
    }
    atomic_store(&r.node, NULL);
    assert_int_equal(skc_node_destroy(made), SKC_OK);
    /* map lines for db twice, and the unreachable warning */
    assert_true(atomic_load(&r.lines) >= 3);
    assert_true(atomic_load(&r.reentered) >= 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_forms_and_reload),
        cmocka_unit_test(test_open_by_name_parallel),
        cmocka_unit_test(test_log_callback_calls_skc),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
