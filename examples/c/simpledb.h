/* simpledb.h -- the seed's simpledb service, in C (GET/SET/PING). */
#ifndef SKC_EXAMPLE_SIMPLEDB_H
#define SKC_EXAMPLE_SIMPLEDB_H

#include "skc/skc.h"

typedef struct simpledb simpledb;

/* Creates the service on node; *out_handle receives its handle. */
int simpledb_create(simpledb **out, skc_node *node, uint32_t *out_handle);
void simpledb_destroy(simpledb *db);

/* Packs ("CMD", key[, value]) into pack (reset first). */
int simpledb_pack_cmd(skc_pack *pack, const char *cmd, const char *key,
    const char *value);

/* Writes the first value of a payload as text into buf ("nil" for nil,
 * strings as they are, other types in a Lua-like notation). */
void simpledb_format(const void *data, size_t len, char *buf, size_t size);

#endif
