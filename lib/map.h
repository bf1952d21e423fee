/* map.h -- cluster-map parser: skynet's config format, no Lua needed.
 *
 * Pure: no I/O except skci_map_read_file(), no global state.
 */
#ifndef SKC_LIB_MAP_H
#define SKC_LIB_MAP_H

#include <stddef.h>

/* What a map entry's value is. */
#define SKCI_MAP_ADDR 1   /* a string: an address (node) or option value */
#define SKCI_MAP_DOWN 2   /* false */
#define SKCI_MAP_TRUE 3   /* true (only meaningful for options) */
#define SKCI_MAP_NUMBER 4 /* an integer literal (options only) */
#define SKCI_MAP_GROUP 5  /* a table: a list of node names */

/* How a group picks a member (SKCI_MAP_GROUP entries' policy). */
#define SKCI_GROUP_FAILOVER 0   /* the first live member, in order */
#define SKCI_GROUP_ROUNDROBIN 1 /* the live members in turn */
#define SKCI_GROUP_RANDOM 2     /* any live member */

typedef struct skci_map_entry {
    char *name;      /* key, NUL-terminated, 1..255 bytes */
    int kind;        /* SKCI_MAP_* */
    char *value;     /* SKCI_MAP_ADDR: the string as written (unescaped);
                        SKCI_MAP_NUMBER: the digits; otherwise NULL */
    int line;        /* 1-based line of the key, for messages */
    char **members;  /* SKCI_MAP_GROUP: member names, each NUL-terminated */
    size_t nmembers; /* SKCI_MAP_GROUP: >= 1; otherwise 0 (members NULL) */
    int policy;      /* SKCI_MAP_GROUP: SKCI_GROUP_*; otherwise 0 */
} skci_map_entry;

typedef struct skci_map_list {
    skci_map_entry *v;
    size_t n;
} skci_map_list;

/* Parses a map text of `len` bytes.  Accepted (a subset of Lua):
 *   - statements `name = value` (optionally separated by `;`)
 *   - one `return { key = value, ["quoted key"] = value, ... }` statement,
 *     entries separated by `,` or `;`, trailing separator allowed; it may
 *     stand alone or after assignments (later entries win for a repeated key)
 *   - values: "double" or 'single' quoted strings with Lua escapes (\n \t
 *     \\ \" \' \ddd \xXX), [[long strings]], false, true, integers, and
 *     groups (below)
 *   - comments: `-- ...` to end of line and `--[[ ... ]]` / `--[==[ ]==]`
 * Keys that start with "__" are options; other keys are nodes, which must
 * have a string, false or group value ("expected an address string or
 * false").  Key names: Lua identifiers, or any 1..255-byte string in the
 * ["..."] form.
 * A group is a table of other node names with an optional policy, in
 * either file form:
 *     db  = { "db_a", "db_b" }                          -- failover
 *     sdb = { "db_a", 'db_b'; policy = "roundrobin", }  -- or "random"
 * Items are strings (any form above) of 1..255 bytes without NUL, not
 * starting with "__", separated by `,` or `;` (trailing one allowed); the
 * only keyed field is `policy = "<name>"` (or ["policy"]), anywhere, at
 * most once; the default is SKCI_GROUP_FAILOVER.  A group is SKCI_MAP_GROUP
 * with members in written order (value NULL).  Errors: an empty group, an
 * unknown policy, a member listed twice, the group itself or a group
 * defined in the same text as a member (a member that is a group of an
 * earlier map is the caller's to check), any other field, a non-string
 * item, a group as an option's value.
 * A key assigned twice appears once, at the position and line of its last
 * assignment; only that assignment is checked against the other groups.
 * Strings with a NUL byte are rejected (values are C strings).
 * On success returns 0 and fills *out (release with skci_map_list_free);
 * *out is overwritten on entry, so pass an empty list.
 * On error returns SKC_ESYNTAX (or SKC_ENOMEM, or SKC_EINVAL for NULL
 * arguments), leaves *out empty, and writes
 * "<origin>:<line>: expected <what> near '<token>'" (or, for a group,
 * "<origin>:<line>: group '<name>': <problem>" and "option '<name>' cannot
 * be a group") into err; it does not set the thread's detail text (the
 * caller copies err there). */
int skci_map_parse(skci_map_list *out, const char *text, size_t len,
    const char *origin, char *err, size_t errlen);

/* Frees the entries, with their group members (not the struct itself);
 * leaves an empty list. */
void skci_map_list_free(skci_map_list *list);

/* Frees one entry's name, value and group members (not the struct
 * itself) and leaves *e all zero: an empty entry, which may be cleared
 * again.  For entries filled by hand or by another decoder (etcd). */
void skci_map_entry_clear(skci_map_entry *e);

/* "failover", "roundrobin" or "random" for an SKCI_GROUP_* constant;
 * "unknown" for any other value.  Static text, never NULL. */
const char *skci_group_policy_name(int policy);

/* Sets *policy to the SKCI_GROUP_* constant named by s (exact, lower case
 * names as above).  Returns 0, or -1 (*policy unchanged) for an unknown
 * name or a NULL argument. */
int skci_group_policy_parse(const char *s, int *policy);

/* Reads a whole file (max 16 MiB) into a NUL-terminated malloc'd buffer.
 * Returns 0, or SKC_EIO with "<path>: <strerror>" in err. */
int skci_map_read_file(
    char **out, size_t *len, const char *path, char *err, size_t errlen);

#endif
