/* wire.h -- skc frame codec: bytes <-> structs.  Pure, no I/O, no
 * allocation.  The layout is documented in wire.c and docs/PROTOCOL.md. */
#ifndef SKC_LIB_WIRE_H
#define SKC_LIB_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define SKCI_WIRE_MAGIC0 0x53 /* 'S' */
#define SKCI_WIRE_MAGIC1 0x4b /* 'K' */
#define SKCI_WIRE_VERSION 1

/* Frame kinds. */
#define SKCI_KIND_CALL 1
#define SKCI_KIND_SEND 2
#define SKCI_KIND_HELLO 3
#define SKCI_KIND_QUERY 4
#define SKCI_KIND_PING 5
/* The cluster cookie (auth.c, PROTOCOL.md "Cluster cookie"): on the call
 * port a challenge (payload: the client's nonce) or, on an authenticated
 * connection, a ticket request (empty payload); on the send port the
 * first frame of a connection (payload: ticket + proof). */
#define SKCI_KIND_AUTH 6
#define SKCI_KIND_STATS 7 /* the node's statistics (JSON) */
#define SKCI_KIND_REPLY 0x81

/* Target types. */
#define SKCI_TARGET_NONE 0
#define SKCI_TARGET_HANDLE 1
#define SKCI_TARGET_CLUSTER 2 /* "@name" */
#define SKCI_TARGET_LOCAL 3   /* ".name" */

/* Request flags (bits of the flags field).  ORDER: a CALL or SEND
 * carries the 16-byte order block after the payload length.
 * HELLO_FEATURES: a HELLO's reply may carry the features word. */
#define SKCI_FLAG_ORDER 0x1u
#define SKCI_FLAG_HELLO_FEATURES 0x2u
/* HELLO_AUTH: the HELLO's payload is the name then a 32-byte proof of the
 * cookie; the reply's payload starts with the server's proof and a
 * send-port ticket (auth.h). */
#define SKCI_FLAG_HELLO_AUTH 0x4u

/* Feature bits a node announces in its HELLO reply. */
#define SKCI_FEAT_ORDER 0x1u /* reads the order block (PROTOCOL.md) */

#define SKCI_REQ_FIXED 34   /* request header bytes without the name */
#define SKCI_ORDER_BLOCK 16 /* stream id u64 + sequence u64 */
#define SKCI_REP_FIXED 20   /* reply header bytes */
#define SKCI_NAME_MAX 255

typedef struct skci_target {
    uint8_t type;
    uint32_t handle;
    const char *name; /* not NUL-terminated on decode */
    uint8_t name_len;
} skci_target;

typedef struct skci_req {
    uint8_t kind;
    uint32_t flags;
    uint32_t timeout_ms; /* remaining; 0 = none */
    uint32_t max_reply;  /* largest reply payload the caller accepts */
    uint64_t id;
    skci_target target;
    /* The order block, present when flags has SKCI_FLAG_ORDER and kind is
     * CALL or SEND: the sender's stream id, and for a SEND its number on
     * the stream (1, 2, ...), for a CALL the number of sends issued on the
     * stream before it (0 = wait for none). */
    uint64_t stream;
    uint64_t seq;
    const uint8_t *payload;
    uint32_t len;
} skci_req;

typedef struct skci_rep {
    uint32_t status; /* 0 ok, else -SKC_E* */
    uint64_t id;
    const uint8_t *payload; /* payload, or error text */
    uint32_t len;
} skci_rep;

/* 1 if a request of this kind and flags carries the order block. */
int skci_wire_req_has_order(uint8_t kind, uint32_t flags);

/* Header size of a request (everything but the payload bytes, the order
 * block included when it has one). */
size_t skci_wire_req_hdr_size(const skci_req *r);

/* Writes the header (incl. payload length) into buf, which has
 * skci_wire_req_hdr_size(r) bytes. */
void skci_wire_req_put_hdr(uint8_t *buf, const skci_req *r);

/* Overwrite one field of a request header written by the above: the
 * remaining deadline (set when the request leaves) and the request id. */
void skci_wire_req_set_timeout(uint8_t *buf, uint32_t timeout_ms);
void skci_wire_req_set_id(uint8_t *buf, uint64_t id);
/* Overwrites the order block of a header that has one. */
void skci_wire_req_set_order(uint8_t *buf, uint64_t stream, uint64_t seq);
/* Copies the request frame src (len bytes, with an order block) into dst
 * (len - SKCI_ORDER_BLOCK bytes) without it, SKCI_FLAG_ORDER cleared: the
 * form for a peer that did not announce SKCI_FEAT_ORDER. */
void skci_wire_req_strip_order(uint8_t *dst, const uint8_t *src, size_t len);

/* Decodes and validates a request frame.  0 or SKC_EPROTO with a reason
 * in err.  Pointers in *out point into buf. */
int skci_wire_req_decode(
    skci_req *out, const uint8_t *buf, size_t len, char *err, size_t errlen);

/* Writes a reply header into buf (SKCI_REP_FIXED bytes). */
void skci_wire_rep_put_hdr(
    uint8_t *buf, uint32_t status, uint64_t id, uint32_t len);

int skci_wire_rep_decode(
    skci_rep *out, const uint8_t *buf, size_t len, char *err, size_t errlen);

/* Parses a user target string: "@name", ".name", ":hex" (1..8 hex digits,
 * non-zero) or a bare name (taken as "@name" when bare_ok).  0 or
 * SKC_EINVAL with a reason via skci_error(). name points into s. */
int skci_target_parse(skci_target *out, const char *s, int bare_ok);

/* Formats a target for messages: "@name", ".name" or ":0000000a". */
size_t skci_target_format(const skci_target *t, char *buf, size_t len);

/* HELLO reply body: max_msg u32, name_len u16, name, url_len u16, url,
 * then features u32 only when the HELLO asked for it
 * (SKCI_FLAG_HELLO_FEATURES); has_features says which form. */
size_t skci_wire_hello_size(size_t name_len, size_t url_len, int has_features);
void skci_wire_hello_put(uint8_t *buf, uint32_t max_msg, const char *name,
    size_t name_len, const char *url, size_t url_len, int has_features,
    uint32_t features);
typedef struct skci_hello {
    uint32_t max_msg;
    const char *name;
    uint16_t name_len;
    const char *url;
    uint16_t url_len;
    int has_features;  /* the body carried the features word */
    uint32_t features; /* SKCI_FEAT_*, 0 without the word */
} skci_hello;
int skci_wire_hello_decode(
    skci_hello *out, const uint8_t *buf, size_t len, char *err, size_t errlen);

#endif
