/* value.c -- payload helpers: zero or more MessagePack values back to back.
 *
 * Packing goes through msgpack-c's sbuffer and packer.
 *
 * Reading is streaming-flat: each skc_unpack_next() returns one item, a
 * container's header before its children.  msgpack-c's C unpacker builds a
 * whole object tree per top-level value, which does not fit for three
 * reasons (msgpack-c 4.0, unpack.c and unpack_template.h):
 *  - it reserves count * sizeof(msgpack_object) bytes (x2 for maps) as soon
 *    as it sees a container header, before any element arrives, so the five
 *    peer bytes "dd ff ff ff ff" ask for 96 GiB;
 *  - its parse stack is MSGPACK_EMBED_STACK_SIZE (32) deep, fixed when the
 *    library was built, and deeper data fails as "out of memory", while skc
 *    accepts 64 levels;
 *  - on failure it does not say at which byte.
 * So this file decodes the six container header forms itself and keeps the
 * items each open container still owes on its own stack, and it hands
 * msgpack_unpack_next() only scalars (nil, bool, int, float, str, bin,
 * ext).  For a scalar msgpack-c reads exactly one value and allocates
 * nothing, and every MessagePack width and format is still decoded by it.
 *
 * Container headers (the only bytes decoded here; big-endian counts):
 *   0x80-0x8f  fixmap, count in the low 4 bits     0xde map16    0xdf map32
 *   0x90-0x9f  fixarray, count in the low 4 bits   0xdc array16  0xdd array32
 */
#include "error.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deepest container nesting a reader accepts; a top-level array is at level
 * 1.  Deeper data is refused, so that consumers which recurse (the Lua
 * binding builds tables) have a known bound. */
#define VALUE_MAX_DEPTH 64

struct skc_pack {
    msgpack_sbuffer buf;
    msgpack_packer pk; /* writes into buf: the struct must not move */
};

struct skc_unpack {
    const unsigned char *data; /* borrowed from the caller */
    size_t len;
    size_t off;     /* next byte to read */
    uint32_t depth; /* open containers, the innermost last in left[] */
    /* Items each open container still owes (a map owes 2 per pair).  A
     * container stays open until the item after its last child is asked
     * for, so depth counts every enclosing container, also those whose
     * last child is the item being read. */
    uint64_t left[VALUE_MAX_DEPTH];
    int err;           /* 0, or the sticky code of the first failure */
    char errtext[160]; /* its detail, repeated on every later call */
};

/* What skc_pack_data() returns for a builder that never allocated, so
 * that its result is never NULL and (pointer, 0) is always a usable empty
 * payload.  Read-only, so not shared state. */
static const char value_empty[1] = { 0 };

/* ---------------------------------------------------------------------- */
/* Packing                                                                */
/* ---------------------------------------------------------------------- */

int
skc_pack_create(skc_pack **out)
{
    skc_pack *pack;

    if (out == NULL) {
        return skci_error(SKC_EINVAL, "skc_pack_create: out is NULL");
    }
    *out = NULL;
    if ((pack = malloc(sizeof(*pack))) == NULL) {
        return skci_error(SKC_ENOMEM, "skc_pack_create: out of memory");
    }
    msgpack_sbuffer_init(&pack->buf);
    msgpack_packer_init(&pack->pk, &pack->buf, msgpack_sbuffer_write);
    *out = pack;
    return SKC_OK;
}

void
skc_pack_destroy(skc_pack *pack)
{
    if (pack == NULL) {
        return;
    }
    msgpack_sbuffer_destroy(&pack->buf);
    free(pack);
}

void
skc_pack_reset(skc_pack *pack)
{
    if (pack != NULL) {
        /* Keeps the allocation: a reused builder rarely needs to grow. */
        msgpack_sbuffer_clear(&pack->buf);
    }
}

/* Finishes an append.  msgpack-c's only failure is realloc, possibly after
 * a string's header went out but not its body; cutting back to `mark`
 * keeps the bytes a sequence of whole values, so a builder that failed
 * can still be sent or reused. */
static int
value_packed(skc_pack *pack, size_t mark, int r, const char *fn)
{
    if (r == 0) {
        return SKC_OK;
    }
    pack->buf.size = mark;
    return skci_error(SKC_ENOMEM, "%s: out of memory", fn);
}

static int
value_null_pack(const char *fn)
{
    return skci_error(SKC_EINVAL, "%s: pack is NULL", fn);
}

int
skc_pack_nil(skc_pack *pack)
{
    size_t mark;

    if (pack == NULL) {
        return value_null_pack("skc_pack_nil");
    }
    mark = pack->buf.size;
    return value_packed(
        pack, mark, msgpack_pack_nil(&pack->pk), "skc_pack_nil");
}

int
skc_pack_bool(skc_pack *pack, int value)
{
    size_t mark;
    int r;

    if (pack == NULL) {
        return value_null_pack("skc_pack_bool");
    }
    mark = pack->buf.size;
    r = value != 0 ? msgpack_pack_true(&pack->pk)
                   : msgpack_pack_false(&pack->pk);
    return value_packed(pack, mark, r, "skc_pack_bool");
}

int
skc_pack_int(skc_pack *pack, int64_t value)
{
    size_t mark;

    if (pack == NULL) {
        return value_null_pack("skc_pack_int");
    }
    mark = pack->buf.size;
    /* msgpack-c picks the shortest form (positive values as uint forms),
     * as Lua's and Python's msgpack do; the reader maps them back. */
    return value_packed(
        pack, mark, msgpack_pack_int64(&pack->pk, value), "skc_pack_int");
}

int
skc_pack_uint(skc_pack *pack, uint64_t value)
{
    size_t mark;

    if (pack == NULL) {
        return value_null_pack("skc_pack_uint");
    }
    mark = pack->buf.size;
    return value_packed(
        pack, mark, msgpack_pack_uint64(&pack->pk, value), "skc_pack_uint");
}

int
skc_pack_double(skc_pack *pack, double value)
{
    size_t mark;

    if (pack == NULL) {
        return value_null_pack("skc_pack_double");
    }
    mark = pack->buf.size;
    return value_packed(
        pack, mark, msgpack_pack_double(&pack->pk, value), "skc_pack_double");
}

/* Checks a byte string argument.  MessagePack lengths are 32 bits and
 * msgpack-c silently truncates a longer one to its low 32 bits, which
 * would frame the rest of the body as garbage values. */
static int
value_bytes_check(const void *p, size_t len, const char *fn)
{
    if (p == NULL && len > 0) {
        return skci_error(SKC_EINVAL, "%s: NULL with length %zu", fn, len);
    }
    if ((uint64_t)len > UINT32_MAX) {
        return skci_error(SKC_ETOOBIG,
            "%s: %zu bytes exceed MessagePack's limit of 4294967295", fn, len);
    }
    return SKC_OK;
}

int
skc_pack_str(skc_pack *pack, const char *s, size_t len)
{
    size_t mark;
    int rc;

    if (pack == NULL) {
        return value_null_pack("skc_pack_str");
    }
    if ((rc = value_bytes_check(s, len, "skc_pack_str")) != SKC_OK) {
        return rc;
    }
    mark = pack->buf.size;
    return value_packed(pack, mark,
        msgpack_pack_str_with_body(&pack->pk, s, len), "skc_pack_str");
}

int
skc_pack_bin(skc_pack *pack, const void *data, size_t len)
{
    size_t mark;
    int rc;

    if (pack == NULL) {
        return value_null_pack("skc_pack_bin");
    }
    if ((rc = value_bytes_check(data, len, "skc_pack_bin")) != SKC_OK) {
        return rc;
    }
    mark = pack->buf.size;
    return value_packed(pack, mark,
        msgpack_pack_bin_with_body(&pack->pk, data, len), "skc_pack_bin");
}

int
skc_pack_array(skc_pack *pack, uint32_t count)
{
    size_t mark;

    if (pack == NULL) {
        return value_null_pack("skc_pack_array");
    }
    mark = pack->buf.size;
    return value_packed(
        pack, mark, msgpack_pack_array(&pack->pk, count), "skc_pack_array");
}

int
skc_pack_map(skc_pack *pack, uint32_t count)
{
    size_t mark;

    if (pack == NULL) {
        return value_null_pack("skc_pack_map");
    }
    mark = pack->buf.size;
    return value_packed(
        pack, mark, msgpack_pack_map(&pack->pk, count), "skc_pack_map");
}

const void *
skc_pack_data(const skc_pack *pack, size_t *len)
{
    if (pack == NULL) {
        if (len != NULL) {
            *len = 0;
        }
        skci_error(SKC_EINVAL, "skc_pack_data: pack is NULL");
        return NULL;
    }
    if (len != NULL) {
        *len = pack->buf.size;
    }
    /* sbuffer allocates on first write only. */
    return pack->buf.data != NULL ? (const void *)pack->buf.data
                                  : (const void *)value_empty;
}

/* ---------------------------------------------------------------------- */
/* Reading                                                                */
/* ---------------------------------------------------------------------- */

int
skc_unpack_create(skc_unpack **out, const void *data, size_t len)
{
    skc_unpack *u;

    if (out == NULL) {
        return skci_error(SKC_EINVAL, "skc_unpack_create: out is NULL");
    }
    *out = NULL;
    if (data == NULL && len > 0) {
        return skci_error(
            SKC_EINVAL, "skc_unpack_create: NULL data with length %zu", len);
    }
    /* calloc: depth, offset and sticky error all start at zero. */
    if ((u = calloc(1, sizeof(*u))) == NULL) {
        return skci_error(SKC_ENOMEM, "skc_unpack_create: out of memory");
    }
    u->data = data;
    u->len = len;
    *out = u;
    return SKC_OK;
}

void
skc_unpack_destroy(skc_unpack *unpack)
{
    /* Nothing else to release: items point into the caller's data, never
     * into memory owned by the reader or by msgpack-c. */
    free(unpack);
}

static int value_fail(skc_unpack *u, int rc, const char *fmt, ...)
    SKCI_PRINTF(3, 4);

/* Records a failure of the data itself.  It is sticky: the offset can no
 * longer be trusted, so every later call returns the same code and text. */
static int
value_fail(skc_unpack *u, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(u->errtext, sizeof(u->errtext), fmt, ap);
    va_end(ap);
    u->err = rc;
    return skci_error(rc, "%s", u->errtext);
}

/* Decodes a container header at p (avail >= 1 bytes).  Returns 1 and sets
 * *type, *count and *hlen for an array or map, 0 for any other value,
 * -1 if the header is cut short. */
static int
value_container(const unsigned char *p, size_t avail, int32_t *type,
    uint32_t *count, size_t *hlen)
{
    unsigned char b = p[0];

    if (b >= 0x80 && b <= 0x9f) {
        *type = b < 0x90 ? SKC_T_MAP : SKC_T_ARRAY;
        *count = b & 0x0fu;
        *hlen = 1;
        return 1;
    }
    switch (b) {
    case 0xdc:
    case 0xde:
        if (avail < 3) {
            return -1;
        }
        *type = b == 0xdc ? SKC_T_ARRAY : SKC_T_MAP;
        *count = (uint32_t)p[1] << 8 | p[2];
        *hlen = 3;
        return 1;
    case 0xdd:
    case 0xdf:
        if (avail < 5) {
            return -1;
        }
        *type = b == 0xdd ? SKC_T_ARRAY : SKC_T_MAP;
        *count = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
            (uint32_t)p[3] << 8 | p[4];
        *hlen = 5;
        return 1;
    default:
        return 0;
    }
}

/* Reads the container whose header starts at `start`. */
static int
value_read_container(skc_unpack *u, skc_item *item, size_t start, int32_t type,
    uint32_t count, size_t hlen)
{
    const char *what = type == SKC_T_ARRAY ? "array" : "map";
    uint64_t owed = type == SKC_T_MAP ? 2 * (uint64_t)count : count;
    size_t rest = u->len - start - hlen;

    if (u->depth >= VALUE_MAX_DEPTH) {
        return value_fail(u, SKC_EPROTO,
            "payload: %s at offset %zu: nesting deeper than %d", what, start,
            VALUE_MAX_DEPTH);
    }
    /* Every item takes at least one byte.  Refusing a count the data
     * cannot hold reports truncation at the header, and keeps callers who
     * size a table from item.count from allocating what a few peer bytes
     * ask for. */
    if (owed > rest) {
        return value_fail(u, SKC_EPROTO,
            "payload: %s at offset %zu claims %" PRIu32
            " %s but only %zu bytes follow",
            what, start, count, type == SKC_T_ARRAY ? "elements" : "pairs",
            rest);
    }
    if (u->depth > 0) {
        u->left[u->depth - 1]--;
    }
    u->left[u->depth++] = owed;
    u->off = start + hlen;
    item->type = type;
    item->count = count;
    return 1;
}

/* Reads the scalar starting at `start` with msgpack-c.  One case per
 * MessagePack scalar type, kept in one switch (a bit over 80 lines) so it
 * can be checked against the type list. */
static int
value_read_scalar(skc_unpack *u, skc_item *item, size_t start)
{
    msgpack_unpacked res;
    msgpack_unpack_return r;
    const msgpack_object *o;
    size_t end = start;
    int rc = 1;

    msgpack_unpacked_init(&res);
    r = msgpack_unpack_next(&res, (const char *)u->data, u->len, &end);
    if (r != MSGPACK_UNPACK_SUCCESS && r != MSGPACK_UNPACK_EXTRA_BYTES) {
        msgpack_unpacked_destroy(&res);
        switch (r) {
        case MSGPACK_UNPACK_CONTINUE:
            return value_fail(u, SKC_EPROTO,
                "payload: value at offset %zu (type byte 0x%02x) is truncated: data ends at %zu",
                start, u->data[start], u->len);
        case MSGPACK_UNPACK_NOMEM_ERROR:
            /* Not sticky: nothing was consumed, a retry may succeed. */
            return skci_error(SKC_ENOMEM,
                "payload: out of memory reading offset %zu", start);
        default:
            return value_fail(u, SKC_EPROTO,
                "payload: invalid byte 0x%02x at offset %zu", u->data[start],
                start);
        }
    }
    if (end <= start || end > u->len) {
        /* msgpack-c broke its own contract; do not walk off the data. */
        msgpack_unpacked_destroy(&res);
        return value_fail(
            u, SKC_EPROTO, "payload: decoder failed at offset %zu", start);
    }

    o = &res.data;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        item->type = SKC_T_NIL;
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        item->type = SKC_T_BOOL;
        item->i = o->via.boolean ? 1 : 0;
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        /* Encoders use uint forms for any value >= 0, so the width says
         * nothing about the type; only what int64 cannot hold is UINT. */
        if (o->via.u64 <= (uint64_t)INT64_MAX) {
            item->type = SKC_T_INT;
            item->i = (int64_t)o->via.u64;
        } else {
            item->type = SKC_T_UINT;
            item->u = o->via.u64;
        }
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        item->type = SKC_T_INT;
        item->i = o->via.i64;
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        item->type = SKC_T_FLOAT;
        item->d = o->via.f64;
        break;
    /* The body of a str, bin or ext is always the last bytes of its
     * encoding.  The pointer is derived from the offsets rather than taken
     * from msgpack-c, so it points into the caller's data whatever
     * msgpack-c does with its zone (and is not NULL for an empty body, as
     * msgpack-c's is), and it outlives the reader as skc.h promises. */
    case MSGPACK_OBJECT_STR:
        item->type = SKC_T_STR;
        item->len = o->via.str.size;
        item->ptr = (const char *)u->data + end - item->len;
        break;
    case MSGPACK_OBJECT_BIN:
        item->type = SKC_T_BIN;
        item->len = o->via.bin.size;
        item->ptr = (const char *)u->data + end - item->len;
        break;
    case MSGPACK_OBJECT_EXT:
        item->type = SKC_T_EXT;
        item->ext_type = o->via.ext.type;
        item->len = o->via.ext.size;
        item->ptr = (const char *)u->data + end - item->len;
        break;
    default:
        /* Containers are handled before msgpack-c sees the data. */
        rc = value_fail(
            u, SKC_EPROTO, "payload: unexpected value at offset %zu", start);
        break;
    }
    msgpack_unpacked_destroy(&res);
    if (rc == 1) {
        if (u->depth > 0) {
            u->left[u->depth - 1]--;
        }
        u->off = end;
    }
    return rc;
}

int
skc_unpack_next(skc_unpack *unpack, skc_item *item)
{
    int32_t type;
    uint32_t count;
    size_t hlen, start;
    int kind;

    if (unpack == NULL || item == NULL) {
        return skci_error(SKC_EINVAL, "skc_unpack_next: %s is NULL",
            unpack == NULL ? "unpack" : "item");
    }
    /* The caller's struct may be newer and larger, never older. */
    if (item->size < sizeof(skc_item)) {
        return skci_error(SKC_EINVAL,
            "skc_unpack_next: item.size is %" PRIu32
            ", expected at least %zu (use SKC_ITEM_INIT)",
            item->size, sizeof(skc_item));
    }
    if (unpack->err != 0) {
        return skci_error(unpack->err, "%s", unpack->errtext);
    }

    /* Containers whose last item was read before this call are done. */
    while (unpack->depth > 0 && unpack->left[unpack->depth - 1] == 0) {
        unpack->depth--;
    }
    if (unpack->off >= unpack->len) {
        if (unpack->depth == 0) {
            return 0;
        }
        return value_fail(unpack, SKC_EPROTO,
            "payload: data ends at offset %zu inside a container that still owes %" PRIu64
            " items",
            unpack->len, unpack->left[unpack->depth - 1]);
    }

    /* Only the fields this version knows; a larger caller struct keeps its
     * tail untouched. */
    item->type = SKC_T_NIL;
    item->i = 0;
    item->u = 0;
    item->d = 0.0;
    item->ptr = NULL;
    item->len = 0;
    item->count = 0;
    item->ext_type = 0;

    start = unpack->off;
    kind = value_container(
        unpack->data + start, unpack->len - start, &type, &count, &hlen);
    if (kind < 0) {
        return value_fail(unpack, SKC_EPROTO,
            "payload: container header at offset %zu (type byte 0x%02x) is truncated: data ends at %zu",
            start, unpack->data[start], unpack->len);
    }
    if (kind > 0) {
        return value_read_container(unpack, item, start, type, count, hlen);
    }
    return value_read_scalar(unpack, item, start);
}
