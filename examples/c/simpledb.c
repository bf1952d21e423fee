/* simpledb.c -- the seed's simpledb.lua as a C service:
 *   ("SET", key, value) -> the previous value (nil if none)
 *   ("GET", key)        -> the value (nil if none)
 *   ("PING", text)      -> a send: logs "<target> ping <text>", no reply
 *   anything else       -> error "Unknown command <CMD>"
 * Payloads follow skc's convention (MessagePack values back to back), so a
 * Lua or Python node can call it and read the replies. */
#include "simpledb.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *key;
    void *val; /* one packed MessagePack value */
    size_t len;
    struct entry *next;
} entry;

struct simpledb {
    skc_node *node;
    uint32_t handle;
    entry *head;
    /* A service runs one message at a time, but keep the store safe for
     * readers from other threads anyway. */
    pthread_mutex_t lk;
};

/* Copies one whole value (containers included) from u into p. */
static int
copy_value(skc_unpack *u, skc_pack *p, int depth)
{
    skc_item it = SKC_ITEM_INIT;
    int rc = skc_unpack_next(u, &it);
    if (rc != 1) {
        return rc == 0 ? SKC_EPROTO : rc;
    }
    if (depth > 64) {
        return SKC_EPROTO;
    }
    switch (it.type) {
    case SKC_T_NIL:
        return skc_pack_nil(p);
    case SKC_T_BOOL:
        return skc_pack_bool(p, (int)it.i);
    case SKC_T_INT:
        return skc_pack_int(p, it.i);
    case SKC_T_UINT:
        return skc_pack_uint(p, it.u);
    case SKC_T_FLOAT:
        return skc_pack_double(p, it.d);
    case SKC_T_STR:
        return skc_pack_str(p, it.ptr, it.len);
    case SKC_T_BIN:
        return skc_pack_bin(p, it.ptr, it.len);
    case SKC_T_ARRAY:
    case SKC_T_MAP: {
        uint64_t n = it.type == SKC_T_MAP ? 2ull * it.count : it.count;
        rc = it.type == SKC_T_MAP ? skc_pack_map(p, it.count)
                                  : skc_pack_array(p, it.count);
        for (uint64_t i = 0; i < n && rc == 0; i++) {
            rc = copy_value(u, p, depth + 1);
        }
        return rc;
    }
    default:
        return SKC_EPROTO; /* ext: not stored by this example */
    }
}

static entry *
find(simpledb *db, const char *key)
{
    for (entry *e = db->head; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            return e;
        }
    }
    return NULL;
}

/* Reads a string argument into a NUL-terminated buffer. */
static int
read_str(skc_unpack *u, char *buf, size_t size)
{
    skc_item it = SKC_ITEM_INIT;
    if (skc_unpack_next(u, &it) != 1 || it.type != SKC_T_STR ||
        it.len >= size) {
        return -1;
    }
    memcpy(buf, it.ptr, it.len);
    buf[it.len] = '\0';
    return 0;
}

static void
reply_value(skc_msg *msg, const entry *e)
{
    if (e == NULL) {
        static const unsigned char nil = 0xc0;
        skc_msg_reply(msg, &nil, 1);
    } else {
        skc_msg_reply(msg, e->val, e->len);
    }
}

static void
handler(skc_node *node, uint32_t service, skc_msg *msg, void *arg)
{
    (void)node;
    (void)service;
    simpledb *db = arg;
    size_t len;
    const void *data = skc_msg_data(msg, &len);
    skc_unpack *u = NULL;
    char cmd[32], key[256];
    if (skc_unpack_create(&u, data, len) != 0 ||
        read_str(u, cmd, sizeof(cmd)) != 0) {
        skc_msg_fail(msg, "simpledb: expected a command string");
        skc_unpack_destroy(u);
        return;
    }
    for (char *c = cmd; *c; c++) {
        *c = (char)toupper((unsigned char)*c);
    }
    if (strcmp(cmd, "PING") == 0) {
        char text[256] = "";
        read_str(u, text, sizeof(text));
        /* the seed: a PING is a send, logged, never answered */
        printf("[%s] %s ping %.20s%s\n", skc_node_name(node),
            skc_msg_target(msg), text, strlen(text) > 20 ? "..." : "");
        fflush(stdout);
        skc_unpack_destroy(u);
        return;
    }
    if (strcmp(cmd, "GET") != 0 && strcmp(cmd, "SET") != 0) {
        char err[64];
        snprintf(err, sizeof(err), "Unknown command %s", cmd);
        skc_msg_fail(msg, err);
        skc_unpack_destroy(u);
        return;
    }
    if (read_str(u, key, sizeof(key)) != 0) {
        skc_msg_fail(msg, "simpledb: expected a key string");
        skc_unpack_destroy(u);
        return;
    }
    pthread_mutex_lock(&db->lk);
    entry *e = find(db, key);
    if (strcmp(cmd, "GET") == 0) {
        reply_value(msg, e);
    } else {
        skc_pack *p = NULL;
        if (skc_pack_create(&p) != 0 || copy_value(u, p, 0) != 0) {
            skc_pack_destroy(p);
            pthread_mutex_unlock(&db->lk);
            skc_msg_fail(msg, "simpledb: SET needs a value");
            skc_unpack_destroy(u);
            return;
        }
        size_t vl;
        const void *v = skc_pack_data(p, &vl);
        void *copy = malloc(vl);
        if (copy != NULL) {
            memcpy(copy, v, vl);
        }
        skc_pack_destroy(p);
        /* SET answers the previous value, as the seed's command.SET */
        reply_value(msg, e);
        if (e == NULL && copy != NULL) {
            e = calloc(1, sizeof(*e));
            if (e != NULL && (e->key = strdup(key)) != NULL) {
                e->next = db->head;
                db->head = e;
            } else {
                free(e);
                e = NULL;
            }
        }
        if (e != NULL && copy != NULL) {
            free(e->val);
            e->val = copy;
            e->len = vl;
        } else {
            free(copy);
        }
    }
    pthread_mutex_unlock(&db->lk);
    skc_unpack_destroy(u);
}

int
simpledb_create(simpledb **out, skc_node *node, uint32_t *out_handle)
{
    simpledb *db = calloc(1, sizeof(*db));
    if (db == NULL) {
        return SKC_ENOMEM;
    }
    pthread_mutex_init(&db->lk, NULL);
    db->node = node;
    int rc = skc_service_create(node, &db->handle, handler, db);
    if (rc != 0) {
        pthread_mutex_destroy(&db->lk);
        free(db);
        return rc;
    }
    *out = db;
    *out_handle = db->handle;
    return 0;
}

void
simpledb_destroy(simpledb *db)
{
    if (db == NULL) {
        return;
    }
    skc_service_destroy(db->node, db->handle);
    entry *e = db->head;
    while (e != NULL) {
        entry *n = e->next;
        free(e->key);
        free(e->val);
        free(e);
        e = n;
    }
    pthread_mutex_destroy(&db->lk);
    free(db);
}

int
simpledb_pack_cmd(
    skc_pack *pack, const char *cmd, const char *key, const char *value)
{
    int rc;
    skc_pack_reset(pack);
    if ((rc = skc_pack_str(pack, cmd, strlen(cmd))) != 0) {
        return rc;
    }
    if (key != NULL && (rc = skc_pack_str(pack, key, strlen(key))) != 0) {
        return rc;
    }
    if (value != NULL) {
        rc = skc_pack_str(pack, value, strlen(value));
    }
    return rc;
}

void
simpledb_format(const void *data, size_t len, char *buf, size_t size)
{
    skc_unpack *u = NULL;
    skc_item it = SKC_ITEM_INIT;
    buf[0] = '\0';
    if (skc_unpack_create(&u, data, len) != 0) {
        return;
    }
    int rc = skc_unpack_next(u, &it);
    if (rc != 1) {
        snprintf(buf, size, "%s", rc == 0 ? "" : "<bad payload>");
    } else {
        switch (it.type) {
        case SKC_T_NIL:
            snprintf(buf, size, "nil");
            break;
        case SKC_T_BOOL:
            snprintf(buf, size, "%s", it.i ? "true" : "false");
            break;
        case SKC_T_INT:
            snprintf(buf, size, "%lld", (long long)it.i);
            break;
        case SKC_T_FLOAT:
            snprintf(buf, size, "%.14g", it.d);
            break;
        case SKC_T_STR:
            snprintf(buf, size, "%.*s", (int)it.len, it.ptr);
            break;
        default:
            snprintf(
                buf, size, "<%s>", it.type == SKC_T_MAP ? "table" : "value");
            break;
        }
    }
    skc_unpack_destroy(u);
}
