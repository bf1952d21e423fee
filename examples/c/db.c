/* db.c -- the seed's db node in C (db.lua): a simpledb service registered
 * as @sdb (and .SIMPLEDB), two calls to it, then the node listens.
 *
 *   simpledb_c [-m clustermap.lua] WHERE
 * WHERE is a node name from the map ("db") or an address ("127.0.0.1:7102",
 * port 0 = any).  Prints "listening on <url>" and serves until SIGINT or
 * SIGTERM. */
#include "simpledb.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static int
call_print(skc_node *n, skc_pack *p, const char *cmd, const char *key,
    const char *val)
{
    void *out = NULL;
    size_t len = 0;
    simpledb_pack_cmd(p, cmd, key, val);
    size_t pl;
    const void *pd = skc_pack_data(p, &pl);
    int rc = skc_node_call(n, &out, &len, "db", "@sdb", pd, pl, 0);
    if (rc != 0) {
        fprintf(stderr, "call %s: %s (%s)\n", cmd, skc_strerror(rc),
            skc_last_error());
        return rc;
    }
    char text[512];
    simpledb_format(out, len, text, sizeof(text));
    printf("%s\n", text);
    skc_free(out);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *map = NULL;
    int i = 1;
    if (argc > 2 && strcmp(argv[1], "-m") == 0) {
        map = argv[2];
        i = 3;
    }
    if (i >= argc) {
        fprintf(
            stderr, "usage: %s [-m clustermap.lua] NODE|ADDRESS\n", argv[0]);
        return 2;
    }
    const char *where = argv[i];
    /* SIGINT/SIGTERM are waited for below, not delivered to a thread. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    skc_node_opts o = SKC_NODE_OPTS_INIT;
    o.name = strchr(where, ':') ? "db" : NULL;
    o.log = skc_log_stderr;
    o.log_level = SKC_LOG_WARN;
    skc_node *n;
    int rc = skc_node_create(&n, &o);
    if (rc == 0 && map != NULL) {
        rc = skc_node_map_load(n, map);
    }
    simpledb *db = NULL;
    uint32_t h = 0;
    if (rc == 0) {
        rc = simpledb_create(&db, n, &h);
    }
    if (rc == 0) {
        rc = skc_name_register(n, "@sdb", h);
    }
    if (rc == 0) {
        rc = skc_name_register(n, ".SIMPLEDB", h);
    }
    char *bound = NULL;
    if (rc == 0) {
        rc = skc_node_open(n, &bound, where);
    }
    if (rc == 0 && map == NULL) {
        rc = skc_node_map_set(n, "db", bound);
    }
    if (rc != 0) {
        fprintf(stderr, "db: %s (%s)\n", skc_strerror(rc), skc_last_error());
        simpledb_destroy(db);
        skc_node_destroy(n);
        return 1;
    }
    skc_pack *p;
    skc_pack_create(&p);
    /* db.lua: print(skynet.call(sdb, "lua", "SET", "a", "showsss")) ... */
    if (call_print(n, p, "SET", "a", "showsss") != 0 ||
        call_print(n, p, "GET", "a", NULL) != 0) {
        rc = 1;
    }
    skc_pack_destroy(p);
    printf("listening on %s\n", bound);
    printf("Database node ready\n");
    fflush(stdout);
    skc_free(bound);
    if (rc == 0) {
        int sig;
        sigwait(&sigs, &sig);
    }
    simpledb_destroy(db);
    skc_node_destroy(n);
    return rc;
}
