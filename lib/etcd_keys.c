/* etcd_keys.c -- the cluster map's layout in etcd (etcd_keys.h): which
 * keys under the prefix are skc's, and their JSON values decoded into map
 * entries or encoded from a node's address.  Pure: no I/O, no node.
 * Without cJSON at build time, decoding says etcd support is missing.
 */
#include "etcd_keys.h"

#include "skc/skc.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SKC_HAVE_ETCD

int
skci_etcd_decode(skci_map_entry *e, const char *prefix, const char *key,
    size_t klen, const char *value, size_t vlen, char *err, size_t errlen)
{
    (void)e, (void)prefix, (void)key, (void)klen, (void)value, (void)vlen;
    snprintf(
        err, errlen, "built without etcd support (libcurl/cJSON missing)");
    return -1;
}

void
skci_etcd_entry_free(skci_map_entry *e)
{
    (void)e;
}

#else

#include <cjson/cJSON.h>

#define KEYS_NODES "nodes"
#define KEYS_GROUPS "groups"

const char *
skci_etcd_kind_dir(int kind)
{
    return kind == SKCI_MAP_GROUP ? KEYS_GROUPS : KEYS_NODES;
}

char *
skci_etcd_node_key(const char *prefix, const char *name)
{
    size_t len = strlen(prefix) + strlen(name) + sizeof("/" KEYS_NODES "/");
    char *key = malloc(len);
    if (key != NULL) {
        snprintf(key, len, "%s/" KEYS_NODES "/%s", prefix, name);
    }
    return key;
}

char *
skci_etcd_node_value(const char *addr)
{
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "addr", addr);
    cJSON_AddStringToObject(v, "version", SKC_VERSION_STRING);
    char *s = v != NULL ? cJSON_PrintUnformatted(v) : NULL;
    cJSON_Delete(v);
    return s;
}

void
skci_etcd_entry_free(skci_map_entry *e)
{
    skci_map_entry_clear(e);
}

static int
decode_group(skci_map_entry *e, const cJSON *v, char *err, size_t errlen)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, "members");
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(v, "policy");
    int n = cJSON_GetArraySize(m);
    if (!cJSON_IsArray(m) || n == 0) {
        snprintf(err, errlen, "expected \"members\": a list of node names");
        return -1;
    }
    e->policy = SKCI_GROUP_FAILOVER;
    if (pol != NULL &&
        (!cJSON_IsString(pol) ||
            skci_group_policy_parse(pol->valuestring, &e->policy) != 0)) {
        snprintf(err, errlen,
            "\"policy\" must be \"failover\", \"roundrobin\" or \"random\"");
        return -1;
    }
    if ((e->members = calloc((size_t)n, sizeof(char *))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, m)
    {
        if (!cJSON_IsString(it)) {
            snprintf(err, errlen, "a member is not a string");
            return -1;
        }
        if ((e->members[e->nmembers] = skci_strdup(it->valuestring)) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        e->nmembers++;
    }
    e->kind = SKCI_MAP_GROUP;
    return 1;
}

int
skci_etcd_decode(skci_map_entry *e, const char *prefix, const char *key,
    size_t klen, const char *value, size_t vlen, char *err, size_t errlen)
{
    static const char *const kinds[] = { "/" KEYS_NODES "/",
        "/" KEYS_GROUPS "/" };
    memset(e, 0, sizeof(*e));
    size_t pl = strlen(prefix);
    if (klen <= pl || memcmp(key, prefix, pl) != 0) {
        return 0;
    }
    int kind = -1;
    size_t kl = 0;
    for (int i = 0; i < 2 && kind < 0; i++) {
        kl = strlen(kinds[i]);
        if (klen > pl + kl && memcmp(key + pl, kinds[i], kl) == 0) {
            kind = i;
        }
    }
    if (kind < 0) {
        return 0;
    }
    const char *name = key + pl + kl;
    size_t nl = klen - pl - kl;
    if (memchr(name, '\0', nl) != NULL || memchr(name, '/', nl) != NULL) {
        return 0; /* deeper keys are not skc's */
    }
    if ((e->name = malloc(nl + 1)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(e->name, name, nl);
    e->name[nl] = '\0';
    if (nl >= 2 && name[0] == '_' && name[1] == '_') {
        /* the map's options (__nowaiting) are each node's own */
        snprintf(err, errlen, "a name may not start with \"__\"");
        skci_map_entry_clear(e);
        return -1;
    }
    if (value == NULL) {
        e->kind = SKCI_MAP_DOWN;
        return 1;
    }
    cJSON *v = cJSON_ParseWithLength(value, vlen);
    int rc = -1;
    if (!cJSON_IsObject(v)) {
        snprintf(err, errlen, "expected a JSON object");
    } else if (kind == 1) {
        rc = decode_group(e, v, err, errlen);
    } else {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(v, "addr");
        if (!cJSON_IsString(a) || a->valuestring[0] == '\0') {
            snprintf(err, errlen, "expected \"addr\": an address string");
        } else if ((e->value = skci_strdup(a->valuestring)) == NULL) {
            snprintf(err, errlen, "out of memory");
        } else {
            e->kind = SKCI_MAP_ADDR;
            rc = 1;
        }
    }
    cJSON_Delete(v);
    if (rc < 0) {
        skci_map_entry_clear(e);
    }
    return rc;
}

#endif
