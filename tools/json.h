/* json.h -- the command line's JSON: arguments in, replies out.
 *
 * No dependency beyond skc.h: arguments are parsed by a small strict
 * JSON reader (RFC 8259) straight into skc_pack_* calls, and replies are
 * read with skc_unpack_* and printed as JSON.  docs/OPERATIONS.md ("The
 * command line") states the mapping both ways. */
#ifndef SKC_TOOLS_JSON_H
#define SKC_TOOLS_JSON_H

#include "skc/skc.h"

#include <stddef.h>
#include <stdio.h>

/* Deepest nesting of arrays and objects in an argument; the same limit as
 * skc_unpack_next's, so whatever is packed can be read back by C. */
#define CLI_JSON_MAX_DEPTH 64

/* Results of cli_json_pack. */
#define CLI_JSON_PACKED 1        /* text was JSON: one value appended */
#define CLI_JSON_NOT_JSON 0      /* text is not JSON: nothing appended */
#define CLI_JSON_TOO_DEEP (-100) /* JSON nested deeper than the limit */

/* Appends the JSON value in text[0..len) to pack, as one MessagePack
 * value: null -> nil, true/false -> bool, an integer that fits int64 ->
 * int, a larger positive one that fits uint64 -> uint, any other number
 * -> float64, a string -> str (UTF-8), an array -> array, an object ->
 * map with str keys in their order.  Whitespace around the value is
 * allowed, nothing else is.  Returns CLI_JSON_PACKED, CLI_JSON_NOT_JSON
 * (pack unchanged; why in err), CLI_JSON_TOO_DEEP (pack unchanged), or a
 * negative SKC_E* code from skc_pack_* (pack may hold part of the value).
 */
int cli_json_pack(
    skc_pack *pack, const char *text, size_t len, char *err, size_t errlen);

/* Prints bytes as one JSON string: valid UTF-8 as is (with the escapes
 * JSON requires), each byte that is not part of valid UTF-8 as \u00XX. */
void cli_json_print_string(FILE *f, const char *s, size_t len);

/* Prints a payload's MessagePack values to f, one per line, as JSON.
 * Returns the number of values, or SKC_EPROTO (nothing printed) when the
 * payload is not a sequence of whole MessagePack values; the reason is in
 * err. */
int cli_json_print_payload(
    FILE *f, const void *data, size_t len, char *err, size_t errlen);

#endif /* SKC_TOOLS_JSON_H */
