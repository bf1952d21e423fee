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

typedef struct skci_map_entry {
    char *name;  /* key, NUL-terminated, 1..255 bytes */
    int kind;    /* SKCI_MAP_* */
    char *value; /* SKCI_MAP_ADDR: the string as written (unescaped);
                    SKCI_MAP_NUMBER: the digits; otherwise NULL */
    int line;    /* 1-based line of the key, for messages */
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
 *     \\ \" \' \ddd \xXX), [[long strings]], false, true, integers
 *   - comments: `-- ...` to end of line and `--[[ ... ]]` / `--[==[ ]==]`
 * Keys that start with "__" are options; other keys must have a string or
 * false value ("expected an address string or false").  Key names: Lua
 * identifiers, or any 1..255-byte string in the ["..."] form.
 * A key assigned twice appears once, at the position and line of its last
 * assignment.  Strings with a NUL byte are rejected (values are C strings).
 * On success returns 0 and fills *out (release with skci_map_list_free);
 * *out is overwritten on entry, so pass an empty list.
 * On error returns SKC_ESYNTAX (or SKC_ENOMEM, or SKC_EINVAL for NULL
 * arguments), leaves *out empty, and writes
 * "<origin>:<line>: expected <what> near '<token>'" into err; it does not
 * set the thread's detail text (the caller copies err there). */
int skci_map_parse(skci_map_list *out, const char *text, size_t len,
    const char *origin, char *err, size_t errlen);

/* Frees the entries (not the struct itself); leaves an empty list. */
void skci_map_list_free(skci_map_list *list);

/* Reads a whole file (max 16 MiB) into a NUL-terminated malloc'd buffer.
 * Returns 0, or SKC_EIO with "<path>: <strerror>" in err. */
int skci_map_read_file(
    char **out, size_t *len, const char *path, char *err, size_t errlen);

/* Normalises a map address into an NNG URL (malloc'd into *out):
 *   "host:port" -> "tcp://host:port", "[v6]:port" -> "tcp://[v6]:port",
 *   "scheme://..." unchanged (scheme must be tcp, tcp4, tcp6, ipc, inproc,
 *   tls+tcp, ws, wss), anything else is an error.
 * Returns 0, SKC_EINVAL (text in err), SKC_ENOMEM. */
int skci_addr_to_url(char **out, const char *addr, char *err, size_t errlen);

#endif
