/* etcd_keys.h -- how the cluster map is laid out in etcd (etcd_keys.c):
 * the keys under a prefix and their JSON values, pure, no I/O.
 *
 *     <prefix>/nodes/<name>   {"addr": "host:port", "version": "..."}
 *     <prefix>/groups/<name>  {"members": ["a", "b"], "policy": "..."}
 *
 * A node's key is put by that node, with a lease (etcd.c); groups are
 * put by the operator (docs/OPERATIONS.md, "Running skc with etcd").
 */
#ifndef SKC_LIB_ETCD_KEYS_H
#define SKC_LIB_ETCD_KEYS_H

#include "map.h"

#include <stddef.h>

/* Decodes key (klen bytes) under prefix, with value (vlen bytes; NULL
 * for a deletion), into *e: a node ("<prefix>/nodes/<name>" ->
 * {"addr": "...", ...}) becomes an address, a group
 * ("<prefix>/groups/<name>" -> {"members": [...], "policy": "..."}) a
 * group, a deletion `false`.  Returns 1 (fill *e; release with
 * skci_etcd_entry_free), 0 (a key skc does not use: ignored) or -1 (a
 * malformed value: why written into err).  Without etcd support it
 * always returns -1. */
int skci_etcd_decode(skci_map_entry *e, const char *prefix, const char *key,
    size_t klen, const char *value, size_t vlen, char *err, size_t errlen);
/* Releases what skci_etcd_decode filled (skci_map_entry_clear). */
void skci_etcd_entry_free(skci_map_entry *e);

/* With etcd support only: */

/* The folder of an entry of this kind under the prefix: "groups" for
 * SKCI_MAP_GROUP, else "nodes".  Static text. */
const char *skci_etcd_kind_dir(int kind);

/* A node's key, "<prefix>/nodes/<name>", malloc'd; NULL without
 * memory. */
char *skci_etcd_node_key(const char *prefix, const char *name);
/* The value a node announces at its key: {"addr": addr, "version":
 * SKC_VERSION_STRING}, malloc'd; NULL without memory. */
char *skci_etcd_node_value(const char *addr);

#endif
