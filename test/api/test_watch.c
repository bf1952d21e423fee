/* test_watch.c -- a map file that reloads itself: an edit in place, an
 * atomic rename, a symlink swap (as Kubernetes ConfigMaps do), a bad edit
 * (logged, reported, nothing applied), loading another file, turning the
 * watch off.  Uses only skc.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "skc/skc.h"
#include "waits.h"

static char dir[64];

static void
put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

struct reloads {
    pthread_mutex_t lk;
    int count;
    int status;
    char detail[1200];
};

static void
on_reload(void *arg, int status, const char *detail)
{
    struct reloads *r = arg;
    pthread_mutex_lock(&r->lk);
    r->count++;
    r->status = status;
    snprintf(r->detail, sizeof(r->detail), "%s", detail);
    pthread_mutex_unlock(&r->lk);
}

/* Waits for reload number `count`; returns its status. */
static int
wait_reload(struct reloads *r, int count)
{
    int64_t until = now_ms() + scaled(5000);
    for (;;) {
        pthread_mutex_lock(&r->lk);
        int c = r->count, st = r->status;
        pthread_mutex_unlock(&r->lk);
        if (c >= count) {
            assert_int_equal(c, count);
            return st;
        }
        if (now_ms() > until) {
            fail_msg("reload %d did not come within %d ms (%d so far)", count,
                scaled(5000), c);
        }
        sleep_ms(10);
    }
}

static void
expect_addr(skc_node *n, const char *want)
{
    char *a = NULL;
    assert_int_equal(skc_node_map_get(n, &a, "a"), SKC_OK);
    assert_string_equal(a, want);
    skc_free(a);
}

static void
test_watch(void **state)
{
    (void)state;
    char path[128], tmp[128], other[128];
    snprintf(path, sizeof(path), "%s/m.lua", dir);
    snprintf(tmp, sizeof(tmp), "%s/m.lua.tmp", dir);
    snprintf(other, sizeof(other), "%s/other.lua", dir);
    put(path, "a = '127.0.0.1:1'\n");
    skc_node *n;
    assert_int_equal(skc_node_create(&n, NULL), SKC_OK);
    assert_int_equal(skc_node_map_watch(n, 1, on_reload, NULL), SKC_ESTATE);
    assert_int_equal(skc_node_map_load(n, path), SKC_OK);
    struct reloads r = { .count = 0 };
    pthread_mutex_init(&r.lk, NULL);
    assert_int_equal(skc_node_map_watch(n, 1, on_reload, &r), SKC_OK);

    /* an edit in place */
    put(path, "a = '127.0.0.1:2'\n");
    assert_int_equal(wait_reload(&r, 1), SKC_OK);
    expect_addr(n, "tcp://127.0.0.1:2");
    assert_string_equal(r.detail, path);

    /* an atomic replace */
    put(tmp, "a = '127.0.0.1:3'\nb = false\n");
    assert_int_equal(rename(tmp, path), 0);
    assert_int_equal(wait_reload(&r, 2), SKC_OK);
    expect_addr(n, "tcp://127.0.0.1:3");

    /* a bad edit: reported with file:line, nothing applied */
    put(path, "a = '127.0.0.1:4'\nb = \n");
    assert_int_equal(wait_reload(&r, 3), SKC_ESYNTAX);
    assert_non_null(strstr(r.detail, "m.lua:"));
    expect_addr(n, "tcp://127.0.0.1:3");
    put(path, "a = '127.0.0.1:5'\n");
    assert_int_equal(wait_reload(&r, 4), SKC_OK);
    expect_addr(n, "tcp://127.0.0.1:5");

    /* a symlink swapped to another file */
    char d1[128], d2[128], link[128], tmplink[128];
    snprintf(d1, sizeof(d1), "%s/data1.lua", dir);
    snprintf(d2, sizeof(d2), "%s/data2.lua", dir);
    snprintf(link, sizeof(link), "%s/linked.lua", dir);
    snprintf(tmplink, sizeof(tmplink), "%s/linked.tmp", dir);
    put(d1, "a = '127.0.0.1:6'\n");
    put(d2, "a = '127.0.0.1:7'\n");
    assert_int_equal(symlink("data1.lua", link), 0);
    /* loading another file moves the watch to it */
    assert_int_equal(skc_node_map_load(n, link), SKC_OK);
    expect_addr(n, "tcp://127.0.0.1:6");
    assert_int_equal(symlink("data2.lua", tmplink), 0);
    assert_int_equal(rename(tmplink, link), 0);
    assert_int_equal(wait_reload(&r, 5), SKC_OK);
    expect_addr(n, "tcp://127.0.0.1:7");

    /* off: edits are no longer applied */
    assert_int_equal(skc_node_map_watch(n, 0, NULL, NULL), SKC_OK);
    put(d2, "a = '127.0.0.1:8'\n");
    sleep_ms(scaled(400));
    expect_addr(n, "tcp://127.0.0.1:7");
    pthread_mutex_lock(&r.lk);
    assert_int_equal(r.count, 5);
    pthread_mutex_unlock(&r.lk);

    /* destroyed while watching */
    assert_int_equal(skc_node_map_watch(n, 1, NULL, NULL), SKC_OK);
    put(d2, "a = '127.0.0.1:9'\n");
    assert_int_equal(skc_node_destroy(n), SKC_OK);
    pthread_mutex_destroy(&r.lk);
    unlink(path);
    unlink(other);
    unlink(link);
    unlink(d1);
    unlink(d2);
}

int
main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/skc-test-watch-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(dir);
    return rc;
}
