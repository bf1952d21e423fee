/* gate.c -- the seed's gate node in C (gates.lua): calls the db node's
 * @sdb, reloads the cluster map (db = false, db1 = ...), starts its own
 * simpledb as @sdb1 and calls it through the cluster.
 *
 *   gate_c [-m clustermap.lua] [DB_ADDRESS]
 * With -m the map file names "gate" and "db"; with DB_ADDRESS the gate
 * listens on 127.0.0.1 (any port) and db is DB_ADDRESS.  Exits 0 when every
 * step did what the seed expects. */
#include "simpledb.h"

#include <stdio.h>
#include <string.h>

static int
call_cmd(skc_node *n, const char *node, const char *target, const char *cmd,
    const char *key, const char *val, char *text, size_t size)
{
    skc_pack *p;
    skc_pack_create(&p);
    simpledb_pack_cmd(p, cmd, key, val);
    size_t pl;
    const void *pd = skc_pack_data(p, &pl);
    void *out = NULL;
    size_t len = 0;
    int rc = skc_node_call(n, &out, &len, node, target, pd, pl, 0);
    skc_pack_destroy(p);
    if (rc != 0) {
        snprintf(text, size, "%s: %s", skc_errname(rc), skc_last_error());
        return rc;
    }
    simpledb_format(out, len, text, size);
    skc_free(out);
    return 0;
}

#define CHECK(expr)                                                           \
    do {                                                                      \
        if ((rc = (expr)) != 0) {                                             \
            fprintf(stderr, "gate: %s failed: %s (%s)\n", #expr,              \
                skc_strerror(rc), skc_last_error());                          \
            goto out;                                                         \
        }                                                                     \
    } while (0)

int
main(int argc, char **argv)
{
    const char *map = NULL, *db_addr = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-m") == 0 && i + 1 < argc) {
            map = argv[++i];
        } else {
            db_addr = argv[i];
        }
    }
    if (map == NULL && db_addr == NULL) {
        fprintf(
            stderr, "usage: %s [-m clustermap.lua] [DB_ADDRESS]\n", argv[0]);
        return 2;
    }
    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = "gate";
    o.log = skc_log_stderr;
    o.log_level = SKC_LOG_WARN;
    o.call_timeout_ms = 5000;
    skc_node *n = NULL;
    simpledb *db1 = NULL;
    char *bound = NULL;
    char text[600];
    int rc;
    CHECK(skc_node_create(&n, &o));
    if (map != NULL) {
        CHECK(skc_node_map_load(n, map));
        CHECK(skc_node_open(n, &bound, "gate"));
    } else {
        CHECK(skc_node_map_set(n, "db", db_addr));
        CHECK(skc_node_open(n, &bound, "127.0.0.1:0"));
        CHECK(skc_node_map_set(n, "gate", bound));
    }
    /* gates.lua: local dbproxy = cluster.proxy("db", "@sdb") -- skc has no
     * proxy services in C; a query shows the remote handle instead. */
    uint32_t h = 0;
    CHECK(skc_node_query(n, &h, "db", "@sdb", 0));
    printf("proxy :%08x\n", h);
    CHECK(call_cmd(n, "db", "@sdb", "SET", "player_1001",
        "{name=\"Alice\", level=10}", text, sizeof(text)));
    CHECK(call_cmd(
        n, "db", "@sdb", "GET", "player_1001", NULL, text, sizeof(text)));
    printf("%s\n", text);
    CHECK(call_cmd(
        n, "db", "@sdb", "GET", "player_1001", NULL, text, sizeof(text)));
    printf("%s\n", text);
    fflush(stdout);

    /* cluster.reload { db = false, db1 = "127.0.0.1:7103" } */
    const char *names[] = { "db", "db1" };
    const char *addrs[] = { NULL, "127.0.0.1:7103" };
    CHECK(skc_node_map_update(n, names, addrs, 2));
    uint32_t h1;
    CHECK(simpledb_create(&db1, n, &h1));
    CHECK(skc_name_register(n, "@sdb1", h1));
    printf("Cluster config updated!\n");
    CHECK(call_cmd(n, "gate", "@sdb1", "SET", "player_1001", "hishow", text,
        sizeof(text)));
    CHECK(call_cmd(
        n, "gate", "@sdb1", "GET", "player_1001", NULL, text, sizeof(text)));
    printf("%s\n", text);

    /* The seed's pcall pattern: db is now down, and the error says so. */
    int e = call_cmd(
        n, "db", "@sdb", "GET", "invalid_key", NULL, text, sizeof(text));
    printf("DB query failed: %s\n", text);
    if (e != SKC_ENODEDOWN) {
        fprintf(stderr, "gate: expected ENODEDOWN, got %s\n", skc_errname(e));
        rc = 1;
    }
out:
    fflush(stdout);
    simpledb_destroy(db1);
    skc_free(bound);
    skc_node_destroy(n);
    return rc == 0 ? 0 : 1;
}
