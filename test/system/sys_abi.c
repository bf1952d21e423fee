/* sys_abi.c -- bad arguments at the C ABI: NULL, empty names, names over
 * the 255-byte limit, unknown nodes, handles of destroyed services, calls
 * from the wrong place.  Every one must give an error code (and a detail
 * text), never a crash.
 *
 *   sys_abi
 *
 * Each group runs in its own forked process (forked before any skc or NNG
 * thread exists), so a crash is reported as "group X died of signal N"
 * and the other groups still run.  Uses only skc.h.
 */
#include "sys.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;
static char long_name[300];   /* 256 bytes: one over the limit */
static char max_name[300];    /* 255 bytes: the limit */
static char long_target[300]; /* "@" + 256 bytes */
static char max_target[300];  /* "@" + 255 bytes */

#define EXPECT_RC(expr, want)                                                \
    do {                                                                     \
        int rc_ = (expr);                                                    \
        if (rc_ != (want)) {                                                 \
            printf("    FAIL line %d: %s\n      returned %s (%d), expected " \
                   "%s; detail: %s\n",                                       \
                __LINE__, #expr, skc_errname(rc_), rc_, skc_errname(want),   \
                skc_last_error());                                           \
            failures++;                                                      \
        } else if ((want) < 0 && skc_last_error()[0] == '\0') {              \
            printf("    FAIL line %d: %s\n      returned %s with an empty "  \
                   "detail text\n",                                          \
                __LINE__, #expr, skc_errname(rc_));                          \
            failures++;                                                      \
        }                                                                    \
    } while (0)

#define EXPECT(cond)                                                         \
    do {                                                                     \
        if (!(cond)) {                                                       \
            printf("    FAIL line %d: %s\n", __LINE__, #cond);               \
            failures++;                                                      \
        }                                                                    \
    } while (0)

static skc_node *
node_new(const char *name)
{
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = name;
    o.call_timeout_ms = sys_ms(10000); /* only waits for connections */
    skc_node *n = NULL;
    int rc = skc_node_create(&n, &o);
    CHECK(rc == SKC_OK, "create: %s", skc_last_error());
    return n;
}

static void
nop_handler(skc_node *n, uint32_t s, skc_msg *m, void *arg)
{
    (void)n, (void)s, (void)arg;
    skc_msg_reply(m, "ok", 2);
}

static void
nop_cb(int status, const void *data, size_t len, const char *detail,
    void *arg)
{
    (void)status, (void)data, (void)len, (void)detail, (void)arg;
}

/* ---- groups ---- */

static void
g_errors(void)
{
    int codes[] = { 0, -1, -20, -21, 1, 12345, INT_MIN, INT_MAX };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        EXPECT(skc_strerror(codes[i]) != NULL);
        EXPECT(skc_errname(codes[i]) != NULL);
    }
    EXPECT(strcmp(skc_errname(INT_MIN), "EUNKNOWN") == 0);
    EXPECT(skc_last_error() != NULL);
    skc_free(NULL);
    EXPECT(skc_version() == SKC_VERSION_NUMBER);
}

static void
g_create(void)
{
    skc_node *n = NULL;
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    EXPECT_RC(skc_node_create(NULL, NULL), SKC_EINVAL);
    EXPECT_RC(skc_node_create(NULL, &o), SKC_EINVAL);
    o.size = 0;
    EXPECT_RC(skc_node_create(&n, &o), SKC_EINVAL);
    o.size = 3;
    EXPECT_RC(skc_node_create(&n, &o), SKC_EINVAL);
    o.size = 100000;
    EXPECT_RC(skc_node_create(&n, &o), SKC_EINVAL);
    o.size = sizeof(o);
    o.name = long_name;
    EXPECT_RC(skc_node_create(&n, &o), SKC_EINVAL);
    EXPECT(n == NULL);
    o.name = max_name;
    EXPECT_RC(skc_node_create(&n, &o), SKC_OK);
    EXPECT(n != NULL && strcmp(skc_node_name(n), max_name) == 0);
    EXPECT_RC(skc_node_destroy(n), SKC_OK);
    o.name = NULL;
    o.call_timeout_ms = -1;
    EXPECT_RC(skc_node_create(&n, &o), SKC_EINVAL);
    o.call_timeout_ms = 0;
    o.workers = -2;
    EXPECT_RC(skc_node_create(&n, &o), SKC_EINVAL);
    o.workers = 257;
    EXPECT_RC(skc_node_create(&n, &o), SKC_EINVAL);
    o.workers = 0;
    o.max_msg_size = 0x80000000u;
    EXPECT_RC(skc_node_create(&n, &o), SKC_EINVAL);
    EXPECT_RC(skc_node_destroy(NULL), SKC_OK);
    EXPECT(strcmp(skc_node_name(NULL), "") == 0);
    /* an older, smaller opts struct: the rest takes defaults */
    o = (skc_node_opts)SKC_NODE_OPTS_INIT;
    o.size = offsetof(skc_node_opts, workers);
    EXPECT_RC(skc_node_create(&n, &o), SKC_OK);
    EXPECT_RC(skc_node_destroy(n), SKC_OK);
}

static void
g_open(void)
{
    skc_node *n = node_new("opener");
    char *a = (char *)1;
    /* a 5000-byte address (inproc: no resolver involved) */
    char big[5000];
    memset(big, 'h', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "inproc://", 9);
    EXPECT_RC(skc_node_open(NULL, NULL, "127.0.0.1:0"), SKC_EINVAL);
    EXPECT_RC(skc_node_open(n, &a, NULL), SKC_EINVAL);
    EXPECT(a == NULL);
    EXPECT_RC(skc_node_open(n, NULL, ""), SKC_EINVAL);
    EXPECT_RC(skc_node_open(n, NULL, "tcp://"), SKC_EINVAL);
    EXPECT_RC(skc_node_open(n, NULL, "nosuch://x:1"), SKC_EINVAL);
    EXPECT_RC(skc_node_open(n, NULL, "127.0.0.1:99999"), SKC_EINVAL);
    EXPECT_RC(skc_node_open(n, NULL, "notinthemap"), SKC_ENONODE);
    EXPECT_RC(skc_node_open(n, NULL, long_name), SKC_ENONODE);
    int rc = skc_node_open(n, NULL, big);
    EXPECT(rc == SKC_OK || rc == SKC_EINVAL || rc == SKC_ETRANSPORT);
    EXPECT_RC(skc_node_map_set(n, "gone", NULL), SKC_OK);
    EXPECT_RC(skc_node_open(n, NULL, "gone"), SKC_ENODEDOWN);
    EXPECT_RC(skc_node_close(NULL), SKC_EINVAL);
    EXPECT_RC(skc_node_close(n), SKC_OK); /* nothing open: fine */
    char *u = NULL;
    EXPECT_RC(skc_node_open(n, &u, "127.0.0.1:0"), SKC_OK);
    char *u2 = NULL;
    EXPECT_RC(skc_node_open(n, &u2, u), SKC_EEXIST);
    EXPECT(u2 == NULL);
    skc_free(u);
    EXPECT_RC(skc_node_destroy(n), SKC_OK);
}

static void
g_map(void)
{
    skc_node *n = node_new("mapper");
    char *a = (char *)1;
    const char *bad = sys_path("bad.lua");
    sys_write_file(bad, "db = \"127.0.0.1:1\"\nthis is not lua\n");
    EXPECT_RC(skc_node_map_load(NULL, bad), SKC_EINVAL);
    EXPECT_RC(skc_node_map_load(n, NULL), SKC_EINVAL);
    EXPECT_RC(skc_node_map_load(n, ""), SKC_EINVAL);
    EXPECT_RC(skc_node_map_load(n, "/nonexistent/skc/map.lua"), SKC_EIO);
    EXPECT_RC(skc_node_map_load(n, "/"), SKC_EIO);
    EXPECT_RC(skc_node_map_load(n, bad), SKC_ESYNTAX);
    EXPECT(strstr(skc_last_error(), "bad.lua:2") != NULL);
    EXPECT_RC(skc_node_map_get(n, &a, "db"), SKC_ENONODE); /* nothing */
    EXPECT_RC(skc_node_map_reload(n), SKC_ESTATE);
    EXPECT_RC(skc_node_map_reload(NULL), SKC_EINVAL);
    EXPECT_RC(skc_node_map_parse(n, NULL, NULL), SKC_EINVAL);
    EXPECT_RC(skc_node_map_parse(NULL, "a = false", NULL), SKC_EINVAL);
    EXPECT_RC(skc_node_map_parse(n, "a = ", NULL), SKC_ESYNTAX);
    EXPECT_RC(skc_node_map_set(NULL, "x", "127.0.0.1:1"), SKC_EINVAL);
    EXPECT_RC(skc_node_map_set(n, NULL, "127.0.0.1:1"), SKC_EINVAL);
    EXPECT_RC(skc_node_map_set(n, "", "127.0.0.1:1"), SKC_EINVAL);
    EXPECT_RC(skc_node_map_set(n, long_name, "127.0.0.1:1"), SKC_EINVAL);
    EXPECT_RC(skc_node_map_set(n, max_name, "127.0.0.1:1"), SKC_OK);
    EXPECT_RC(skc_node_map_set(n, "x", ""), SKC_EINVAL);
    EXPECT_RC(skc_node_map_set(n, "x", "no port"), SKC_EINVAL);
    EXPECT_RC(skc_node_map_set(n, "x", "nosuch://a:1"), SKC_EINVAL);
    EXPECT_RC(skc_node_map_update(n, NULL, NULL, 1), SKC_EINVAL);
    EXPECT_RC(skc_node_map_update(n, NULL, NULL, 0), SKC_OK);
    {
        /* all or nothing: one bad entry, nothing applied */
        const char *names[] = { "first", "" };
        const char *addrs[] = { "127.0.0.1:5", "127.0.0.1:6" };
        EXPECT_RC(skc_node_map_update(n, names, addrs, 2), SKC_EINVAL);
        EXPECT_RC(skc_node_map_get(n, &a, "first"), SKC_ENONODE);
    }
    EXPECT_RC(skc_node_map_get(NULL, &a, "x"), SKC_EINVAL);
    EXPECT_RC(skc_node_map_get(n, NULL, "x"), SKC_EINVAL);
    EXPECT_RC(skc_node_map_get(n, &a, NULL), SKC_EINVAL);
    EXPECT_RC(skc_node_map_get(n, &a, "unknown"), SKC_ENONODE);
    EXPECT_RC(skc_node_map_get(n, &a, long_name), SKC_ENONODE);
    EXPECT_RC(skc_node_destroy(n), SKC_OK);
}

static void
g_services(void)
{
    skc_node *n = node_new("svc");
    uint32_t h = 0, h2 = 0, got = 0;
    EXPECT_RC(skc_service_create(NULL, &h, nop_handler, NULL), SKC_EINVAL);
    EXPECT_RC(skc_service_create(n, NULL, nop_handler, NULL), SKC_EINVAL);
    EXPECT_RC(skc_service_create(n, &h, NULL, NULL), SKC_EINVAL);
    EXPECT_RC(skc_service_destroy(NULL, 1), SKC_EINVAL);
    EXPECT_RC(skc_service_destroy(n, 0), SKC_ENOSERVICE);
    EXPECT_RC(skc_service_destroy(n, 0xffffffffu), SKC_ENOSERVICE);
    EXPECT_RC(skc_service_create(n, &h, nop_handler, NULL), SKC_OK);
    EXPECT_RC(skc_name_register(NULL, "@x", h), SKC_EINVAL);
    EXPECT_RC(skc_name_register(n, NULL, h), SKC_EINVAL);
    EXPECT_RC(skc_name_register(n, "", h), SKC_EINVAL);
    EXPECT_RC(skc_name_register(n, "@", h), SKC_EINVAL);
    EXPECT_RC(skc_name_register(n, ".", h), SKC_EINVAL);
    EXPECT_RC(skc_name_register(n, ":0000000a", h), SKC_EINVAL);
    EXPECT_RC(skc_name_register(n, long_target, h), SKC_EINVAL);
    EXPECT_RC(skc_name_register(n, long_name, h), SKC_EINVAL);
    EXPECT_RC(skc_name_register(n, max_target, h), SKC_OK);
    EXPECT_RC(skc_name_register(n, "@x", 0), SKC_ENOSERVICE);
    EXPECT_RC(skc_name_register(n, "@x", 12345), SKC_ENOSERVICE);
    EXPECT_RC(skc_name_register(n, "@x", h), SKC_OK);
    EXPECT_RC(skc_name_register(n, "@x", h), SKC_OK);
    EXPECT_RC(skc_service_create(n, &h2, nop_handler, NULL), SKC_OK);
    EXPECT_RC(skc_name_register(n, "@x", h2), SKC_EEXIST);
    EXPECT_RC(skc_name_unregister(NULL, "@x"), SKC_EINVAL);
    EXPECT_RC(skc_name_unregister(n, NULL), SKC_EINVAL);
    EXPECT_RC(skc_name_unregister(n, ""), SKC_EINVAL);
    EXPECT_RC(skc_name_unregister(n, "@never"), SKC_ENOSERVICE);
    EXPECT_RC(skc_name_lookup(NULL, &got, "@x"), SKC_EINVAL);
    EXPECT_RC(skc_name_lookup(n, NULL, "@x"), SKC_EINVAL);
    EXPECT_RC(skc_name_lookup(n, &got, NULL), SKC_EINVAL);
    EXPECT_RC(skc_name_lookup(n, &got, long_target), SKC_EINVAL);
    EXPECT_RC(skc_name_lookup(n, &got, "@x"), SKC_OK);
    EXPECT(got == h);
    /* the handle of a destroyed service */
    EXPECT_RC(skc_service_destroy(n, h), SKC_OK);
    EXPECT_RC(skc_name_lookup(n, &got, "@x"), SKC_ENOSERVICE);
    EXPECT_RC(skc_service_destroy(n, h), SKC_ENOSERVICE);
    EXPECT_RC(skc_name_register(n, "@y", h), SKC_ENOSERVICE);
    EXPECT_RC(skc_name_unregister(n, "@x"), SKC_ENOSERVICE);
    EXPECT_RC(skc_node_destroy(n), SKC_OK);
}

/* A server node on inproc plus a client node that knows it as "srv". */
static void
pair_new(skc_node **srv, skc_node **cli, const char *addr, uint32_t *h)
{
    *srv = node_new("srv");
    EXPECT_RC(skc_service_create(*srv, h, nop_handler, NULL), SKC_OK);
    EXPECT_RC(skc_name_register(*srv, "@svc", *h), SKC_OK);
    EXPECT_RC(skc_node_open(*srv, NULL, addr), SKC_OK);
    *cli = node_new("cli");
    EXPECT_RC(skc_node_map_set(*cli, "srv", addr), SKC_OK);
}

static void
g_calls(void)
{
    skc_node *srv, *cli;
    uint32_t h;
    pair_new(&srv, &cli, "inproc://skc-sys-abi-calls", &h);
    void *out = (void *)1;
    size_t len = 7;
    char t[32];
    EXPECT_RC(skc_node_call(NULL, &out, &len, "srv", "@svc", "x", 1, 0),
        SKC_EINVAL);
    EXPECT_RC(skc_node_call(cli, NULL, &len, "srv", "@svc", "x", 1, 0),
        SKC_EINVAL);
    EXPECT_RC(skc_node_call(cli, &out, &len, NULL, "@svc", "x", 1, 0),
        SKC_EINVAL);
    EXPECT(out == NULL && len == 0);
    EXPECT_RC(skc_node_call(cli, &out, NULL, "srv", "@svc", "x", 1, 0),
        SKC_OK); /* out_len may be NULL */
    skc_free(out);
    EXPECT_RC(skc_node_call(cli, &out, &len, "", "@svc", "x", 1, 0),
        SKC_EINVAL);
    EXPECT_RC(skc_node_call(cli, &out, &len, long_name, "@svc", "x", 1, 0),
        SKC_EINVAL);
    const char *bad_targets[] = { "", "svc", "@", ".", ":", ":0",
        ":123456789", ":xyz", "@@", NULL };
    for (int i = 0; bad_targets[i] != NULL; i++) {
        int rc = skc_node_call(cli, &out, &len, "srv", bad_targets[i], "x",
            1, 0);
        if (bad_targets[i][0] == '@' && bad_targets[i][1] == '@') {
            /* "@@" is the legal name "@"+"@": just unknown there */
            EXPECT(rc == SKC_ENOSERVICE);
            continue;
        }
        if (rc != SKC_EINVAL) {
            printf("    FAIL: target '%s' gave %s\n", bad_targets[i],
                skc_errname(rc));
            failures++;
        }
    }
    EXPECT_RC(skc_node_call(cli, &out, &len, "srv", NULL, "x", 1, 0),
        SKC_EINVAL);
    EXPECT_RC(skc_node_call(cli, &out, &len, "srv", long_target, "x", 1, 0),
        SKC_EINVAL);
    EXPECT_RC(skc_node_call(cli, &out, &len, "srv", max_target, "x", 1, 0),
        SKC_ENOSERVICE);
    EXPECT_RC(skc_node_call(cli, &out, &len, "srv", "@svc", NULL, 5, 0),
        SKC_EINVAL);
    EXPECT_RC(skc_node_call(cli, &out, &len, "srv", "@svc", NULL, 0, 0),
        SKC_OK);
    skc_free(out);
    EXPECT_RC(skc_node_call(cli, &out, &len, "srv", "@svc", "x", 1, -1),
        SKC_EINVAL);
    EXPECT_RC(skc_node_call(cli, &out, &len, "srv", "@svc", "x", 1,
                  INT32_MIN), SKC_EINVAL);
    /* unknown node: waits for its deadline, or fails at once */
    EXPECT_RC(skc_node_call(cli, &out, &len, "nobody", "@svc", "x", 1, 100),
        SKC_ENONODE);
    EXPECT_RC(skc_node_map_set(cli, "__nowaiting", "true"), SKC_OK);
    EXPECT_RC(skc_node_call(cli, &out, &len, "nobody", "@svc", "x", 1, 0),
        SKC_ENONODE);
    EXPECT_RC(skc_node_send(cli, "nobody", "@svc", "x", 1), SKC_ENONODE);
    EXPECT_RC(skc_node_call_async(cli, "srv", "@svc", "x", 1, 0, NULL, NULL),
        SKC_EINVAL);
    EXPECT_RC(skc_node_call_async(NULL, "srv", "@svc", "x", 1, 0, nop_cb,
                  NULL), SKC_EINVAL);
    EXPECT_RC(skc_node_call_async(cli, "srv", "bad", "x", 1, 0, nop_cb,
                  NULL), SKC_EINVAL);
    EXPECT_RC(skc_node_send(NULL, "srv", "@svc", "x", 1), SKC_EINVAL);
    EXPECT_RC(skc_node_send(cli, NULL, "@svc", "x", 1), SKC_EINVAL);
    EXPECT_RC(skc_node_send(cli, "srv", NULL, "x", 1), SKC_EINVAL);
    EXPECT_RC(skc_node_send(cli, "srv", "@svc", NULL, 1), SKC_EINVAL);
    uint32_t q = 5;
    EXPECT_RC(skc_node_query(cli, NULL, "srv", "@svc", 0), SKC_EINVAL);
    EXPECT_RC(skc_node_query(NULL, &q, "srv", "@svc", 0), SKC_EINVAL);
    EXPECT_RC(skc_node_query(cli, &q, "srv", ":1", 0), SKC_EINVAL);
    EXPECT_RC(skc_node_query(cli, &q, "srv", NULL, 0), SKC_EINVAL);
    EXPECT_RC(skc_node_query(cli, &q, "srv", long_name, 0), SKC_EINVAL);
    EXPECT_RC(skc_node_query(cli, &q, "srv", "svc", 0), SKC_OK);
    EXPECT(q == h);
    /* the handle of a destroyed service, seen from another node */
    snprintf(t, sizeof(t), ":%08x", h);
    EXPECT_RC(skc_node_call(cli, &out, &len, "srv", t, "x", 1, 0), SKC_OK);
    skc_free(out);
    EXPECT_RC(skc_service_destroy(srv, h), SKC_OK);
    EXPECT_RC(skc_node_call(cli, &out, &len, "srv", t, "x", 1, 0),
        SKC_ENOSERVICE);
    EXPECT(strstr(skc_last_error(), t) != NULL);
    EXPECT_RC(skc_node_query(cli, &q, "srv", "@svc", 0), SKC_ENOSERVICE);
    EXPECT_RC(skc_node_send(cli, "srv", t, "x", 1), SKC_OK); /* dropped */
    EXPECT_RC(skc_node_destroy(cli), SKC_OK);
    EXPECT_RC(skc_node_destroy(srv), SKC_OK);
}

/* Handler that abuses the message API; results go to a static array. */
static volatile int hres[16];
static skc_node *hnode;

static void
abusive_handler(skc_node *n, uint32_t s, skc_msg *m, void *arg)
{
    (void)s, (void)arg;
    skc_reply *r = (skc_reply *)1;
    size_t len = 9;
    hres[0] = skc_msg_defer(m, NULL);
    hres[1] = skc_msg_reply(m, NULL, 5); /* answers with an error */
    hres[2] = skc_msg_reply(m, "x", 1);  /* already answered */
    hres[3] = skc_msg_fail(m, NULL);
    hres[4] = skc_msg_defer(m, &r);
    hres[5] = r == NULL;
    hres[6] = skc_node_destroy(n);
    hres[7] = skc_node_poll(n, 0);
    hres[8] = skc_msg_data(m, &len) != NULL || len == 1;
    hres[9] = n == hnode;
    __atomic_store_n(&hres[10], 1, __ATOMIC_SEQ_CST);
}

static void
g_messages(void)
{
    size_t len = 9;
    EXPECT(skc_msg_data(NULL, &len) == NULL && len == 0);
    EXPECT(skc_msg_data(NULL, NULL) == NULL);
    EXPECT(skc_msg_kind(NULL) == SKC_EINVAL); /* a getter: no detail */
    EXPECT(skc_msg_remaining_ms(NULL) == -1);
    EXPECT(skc_msg_target(NULL) != NULL);
    EXPECT_RC(skc_msg_reply(NULL, "x", 1), SKC_EINVAL);
    EXPECT_RC(skc_msg_fail(NULL, "x"), SKC_EINVAL);
    skc_reply *r = NULL;
    EXPECT_RC(skc_msg_defer(NULL, &r), SKC_EINVAL);
    EXPECT_RC(skc_reply_send(NULL, "x", 1), SKC_EINVAL);
    EXPECT_RC(skc_reply_fail(NULL, "x"), SKC_EINVAL);
    skc_reply_free(NULL);

    skc_node *srv = node_new("abused"), *cli = node_new("cli");
    hnode = srv;
    uint32_t h;
    EXPECT_RC(skc_service_create(srv, &h, abusive_handler, NULL), SKC_OK);
    EXPECT_RC(skc_name_register(srv, "@abuse", h), SKC_OK);
    EXPECT_RC(skc_node_open(srv, NULL, "inproc://skc-sys-abi-msg"), SKC_OK);
    EXPECT_RC(skc_node_map_set(cli, "a", "inproc://skc-sys-abi-msg"),
        SKC_OK);
    void *out = NULL;
    EXPECT_RC(skc_node_call(cli, &out, &len, "a", "@abuse", "m", 1, 0),
        SKC_EHANDLER);
    /* the caller got its answer at skc_msg_reply(m, NULL, 5); wait for
     * the handler to finish its abuse */
    for (int i = 0; i < 500 && !__atomic_load_n(&hres[10], __ATOMIC_SEQ_CST);
         i++) {
        sys_sleep_ms(10);
    }
    EXPECT(hres[10] == 1);
    EXPECT(hres[0] == SKC_EINVAL);
    EXPECT(hres[1] == SKC_EINVAL);
    EXPECT(hres[2] == SKC_ESTATE);
    EXPECT(hres[3] == SKC_ESTATE);
    EXPECT(hres[4] == SKC_ESTATE && hres[5]);
    EXPECT(hres[6] == SKC_EBUSY);
    EXPECT(hres[7] == SKC_ESTATE);
    EXPECT(hres[8] && hres[9]);
    /* poll/fd/wakeup on a node with workers, and NULL */
    int fd = -5;
    EXPECT_RC(skc_node_fd(NULL, &fd), SKC_EINVAL);
    EXPECT_RC(skc_node_fd(srv, NULL), SKC_EINVAL);
    EXPECT_RC(skc_node_fd(srv, &fd), SKC_ESTATE);
    EXPECT_RC(skc_node_poll(NULL, 0), SKC_EINVAL);
    EXPECT_RC(skc_node_poll(srv, 0), SKC_ESTATE);
    EXPECT_RC(skc_node_wakeup(NULL), SKC_EINVAL);
    EXPECT_RC(skc_node_destroy(cli), SKC_OK);
    EXPECT_RC(skc_node_destroy(srv), SKC_OK);
}

static void
g_payloads(void)
{
    skc_pack *p = NULL;
    skc_unpack *u = NULL;
    skc_item it = SKC_ITEM_INIT;
    size_t len = 9;
    EXPECT_RC(skc_pack_create(NULL), SKC_EINVAL);
    skc_pack_destroy(NULL);
    skc_pack_reset(NULL);
    EXPECT_RC(skc_pack_nil(NULL), SKC_EINVAL);
    EXPECT_RC(skc_pack_bool(NULL, 1), SKC_EINVAL);
    EXPECT_RC(skc_pack_int(NULL, 1), SKC_EINVAL);
    EXPECT_RC(skc_pack_uint(NULL, 1), SKC_EINVAL);
    EXPECT_RC(skc_pack_double(NULL, 1), SKC_EINVAL);
    EXPECT_RC(skc_pack_str(NULL, "x", 1), SKC_EINVAL);
    EXPECT_RC(skc_pack_bin(NULL, "x", 1), SKC_EINVAL);
    EXPECT_RC(skc_pack_array(NULL, 1), SKC_EINVAL);
    EXPECT_RC(skc_pack_map(NULL, 1), SKC_EINVAL);
    EXPECT(skc_pack_data(NULL, &len) == NULL);
    EXPECT_RC(skc_pack_create(&p), SKC_OK);
    EXPECT_RC(skc_pack_str(p, NULL, 3), SKC_EINVAL);
    EXPECT_RC(skc_pack_bin(p, NULL, 3), SKC_EINVAL);
    EXPECT_RC(skc_pack_str(p, NULL, 0), SKC_OK);
    EXPECT(skc_pack_data(p, NULL) != NULL);
    skc_pack_destroy(p);
    EXPECT_RC(skc_unpack_create(NULL, "x", 1), SKC_EINVAL);
    EXPECT_RC(skc_unpack_create(&u, NULL, 3), SKC_EINVAL);
    EXPECT_RC(skc_unpack_create(&u, NULL, 0), SKC_OK);
    EXPECT_RC(skc_unpack_next(u, &it), 0);
    EXPECT_RC(skc_unpack_next(u, NULL), SKC_EINVAL);
    EXPECT_RC(skc_unpack_next(NULL, &it), SKC_EINVAL);
    it.size = 0;
    EXPECT_RC(skc_unpack_next(u, &it), SKC_EINVAL);
    skc_unpack_destroy(u);
    skc_unpack_destroy(NULL);
}

static const struct {
    const char *name;
    void (*fn)(void);
} groups[] = {
    { "errors", g_errors },
    { "node_create", g_create },
    { "node_open", g_open },
    { "cluster_map", g_map },
    { "services_names", g_services },
    { "calls", g_calls },
    { "messages_replies", g_messages },
    { "payloads", g_payloads },
};

int
main(void)
{
    sys_init("abi", 120);
    sys_tmpdir();
    memset(long_name, 'n', 256);
    memset(max_name, 'm', 255);
    long_target[0] = '@';
    memset(long_target + 1, 't', 256);
    max_target[0] = '@';
    memset(max_target + 1, 't', 255);
    int bad = 0;
    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        fflush(stdout);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
            sys_forked();
            alarm(60);
            groups[g].fn();
            fflush(stdout);
            sys_settle();
            exit(failures > 0 ? 1 : 0);
        }
        int st;
        CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
        if (WIFSIGNALED(st)) {
            sys_log("FAIL group %s died of signal %d (%s)", groups[g].name,
                WTERMSIG(st), strsignal(WTERMSIG(st)));
            bad++;
        } else if (WEXITSTATUS(st) != 0) {
            sys_log("FAIL group %s: wrong results (above)", groups[g].name);
            bad++;
        } else {
            sys_log("ok   group %s", groups[g].name);
        }
    }
    CHECK(bad == 0, "%d of %zu groups failed", bad,
        sizeof(groups) / sizeof(groups[0]));
    sys_log("PASS");
    return 0;
}
