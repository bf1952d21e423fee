/* wire.c -- the skc frame codec.
 *
 * Every frame is one NNG message body; NNG frames messages, so there is no
 * length prefix or splitting here.  All integers are little-endian.
 *
 * Request (CALL, SEND, HELLO, QUERY, PING, STATS), 34 + N + L bytes:
 *
 *   off  size  field
 *     0     1  magic 'S' (0x53)
 *     1     1  magic 'K' (0x4b)
 *     2     1  version (1)
 *     3     1  kind: 1 CALL, 2 SEND, 3 HELLO, 4 QUERY, 5 PING, 6 AUTH,
 *              7 STATS
 *     4     4  flags (receivers ignore unknown bits): bit 0 ORDER, bit 1
 *              HELLO_FEATURES, bit 2 HELLO_AUTH (the cluster cookie)
 *     8     4  timeout_ms: caller's remaining deadline, 0 = none
 *    12     4  max_reply: largest reply payload the caller accepts
 *    16     8  request id (unique per calling node run)
 *    24     1  target type: 0 none, 1 handle, 2 "@name", 3 ".name"
 *    25     1  N = target name length (0 unless type 2 or 3)
 *    26     4  target handle (0 unless type 1)
 *    30     N  target name bytes (without the '@' / '.')
 *  30+N     4  L = payload length
 *  34+N     L  payload
 *
 * With flags bit 0 (ORDER) on a CALL or SEND, 50 + N + L bytes: an order
 * block sits between the payload length and the payload (only sent to a
 * node whose HELLO reply announced feature bit 0):
 *
 *  34+N     8  stream id (random, chosen by the sender per connection)
 *  42+N     8  SEND: this send's number on the stream (1, 2, ...);
 *              CALL: the sends on the stream issued before it (0 = none)
 *  50+N     L  payload
 *
 * Reply (to CALL, HELLO, QUERY, PING, STATS), 20 + L bytes:
 *
 *     0     2  magic 'S' 'K'
 *     2     1  version (1)
 *     3     1  kind 0x81 REPLY
 *     4     4  status: 0 = ok, else the positive value of an SKC_E* code
 *     8     8  request id, echoed
 *    16     4  L = length
 *    20     L  payload (status 0) or UTF-8 error text
 *
 * HELLO reply payload: max_msg u32, n u16, name, u u16, url, and when the
 * HELLO had flags bit 1 (HELLO_FEATURES) a features u32 (bit 0: ORDER).
 * With flags bit 2 (HELLO_AUTH) the HELLO's payload is the name then a
 * 32-byte proof, and its reply payload starts with the server's 32-byte
 * proof and a 16-byte send ticket (PROTOCOL.md, "Cluster cookie").
 *
 * The decoder checks every length against the bytes present: a frame whose
 * fields disagree with its size is rejected, never read past.
 */
#include "wire.h"

#include "error.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

int
skci_wire_req_has_order(uint8_t kind, uint32_t flags)
{
    return (flags & SKCI_FLAG_ORDER) != 0 &&
        (kind == SKCI_KIND_CALL || kind == SKCI_KIND_SEND);
}

size_t
skci_wire_req_hdr_size(const skci_req *r)
{
    return SKCI_REQ_FIXED + r->target.name_len +
        (skci_wire_req_has_order(r->kind, r->flags) ? SKCI_ORDER_BLOCK : 0);
}

void
skci_wire_req_set_order(uint8_t *buf, uint64_t stream, uint64_t seq)
{
    size_t at = SKCI_REQ_FIXED + buf[25];
    skci_put_u64(buf + at, stream);
    skci_put_u64(buf + at + 8, seq);
}

void
skci_wire_req_strip_order(uint8_t *dst, const uint8_t *src, size_t len)
{
    size_t at = SKCI_REQ_FIXED + src[25];
    memcpy(dst, src, at);
    memcpy(dst + at, src + at + SKCI_ORDER_BLOCK, len - at - SKCI_ORDER_BLOCK);
    skci_put_u32(dst + 4, skci_get_u32(src + 4) & ~SKCI_FLAG_ORDER);
}

void
skci_wire_req_set_timeout(uint8_t *buf, uint32_t timeout_ms)
{
    skci_put_u32(buf + 8, timeout_ms);
}

void
skci_wire_req_set_id(uint8_t *buf, uint64_t id)
{
    skci_put_u64(buf + 16, id);
}

void
skci_wire_req_put_hdr(uint8_t *buf, const skci_req *r)
{
    buf[0] = SKCI_WIRE_MAGIC0;
    buf[1] = SKCI_WIRE_MAGIC1;
    buf[2] = SKCI_WIRE_VERSION;
    buf[3] = r->kind;
    skci_put_u32(buf + 4, r->flags);
    skci_wire_req_set_timeout(buf, r->timeout_ms);
    skci_put_u32(buf + 12, r->max_reply);
    skci_wire_req_set_id(buf, r->id);
    buf[24] = r->target.type;
    buf[25] = r->target.name_len;
    skci_put_u32(buf + 26, r->target.handle);
    if (r->target.name_len > 0) {
        memcpy(buf + 30, r->target.name, r->target.name_len);
    }
    skci_put_u32(buf + 30 + r->target.name_len, r->len);
    if (skci_wire_req_has_order(r->kind, r->flags)) {
        skci_wire_req_set_order(buf, r->stream, r->seq);
    }
}

static int
wire_check_magic(
    const uint8_t *buf, size_t len, size_t fixed, char *err, size_t errlen)
{
    if (len < 4) {
        snprintf(
            err, errlen, "frame of %zu bytes is shorter than a header", len);
        return SKC_EPROTO;
    }
    if (buf[0] != SKCI_WIRE_MAGIC0 || buf[1] != SKCI_WIRE_MAGIC1) {
        snprintf(err, errlen, "bad magic 0x%02x%02x (not an skc frame)",
            buf[0], buf[1]);
        return SKC_EPROTO;
    }
    if (buf[2] != SKCI_WIRE_VERSION) {
        snprintf(err, errlen, "unsupported protocol version %u (this is %u)",
            buf[2], SKCI_WIRE_VERSION);
        return SKC_EPROTO;
    }
    if (len < fixed) {
        snprintf(err, errlen, "truncated frame: %zu bytes, header needs %zu",
            len, fixed);
        return SKC_EPROTO;
    }
    return 0;
}

int
skci_wire_req_decode(
    skci_req *out, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    int rc = wire_check_magic(buf, len, SKCI_REQ_FIXED, err, errlen);
    if (rc != 0) {
        return rc;
    }
    memset(out, 0, sizeof(*out));
    out->kind = buf[3];
    if (out->kind < SKCI_KIND_CALL || out->kind > SKCI_KIND_STATS) {
        snprintf(err, errlen, "unknown request kind %u", out->kind);
        return SKC_EPROTO;
    }
    out->flags = skci_get_u32(buf + 4);
    out->timeout_ms = skci_get_u32(buf + 8);
    out->max_reply = skci_get_u32(buf + 12);
    out->id = skci_get_u64(buf + 16);
    out->target.type = buf[24];
    out->target.name_len = buf[25];
    out->target.handle = skci_get_u32(buf + 26);
    size_t n = out->target.name_len;
    switch (out->target.type) {
    case SKCI_TARGET_NONE:
    case SKCI_TARGET_HANDLE:
        if (n != 0) {
            snprintf(
                err, errlen, "target type %u with a name", out->target.type);
            return SKC_EPROTO;
        }
        break;
    case SKCI_TARGET_CLUSTER:
    case SKCI_TARGET_LOCAL:
        if (n == 0) {
            snprintf(err, errlen, "empty target name");
            return SKC_EPROTO;
        }
        break;
    default:
        snprintf(err, errlen, "unknown target type %u", out->target.type);
        return SKC_EPROTO;
    }
    if (len < SKCI_REQ_FIXED + n) {
        snprintf(err, errlen,
            "truncated frame: target name of %zu bytes does not fit in %zu bytes",
            n, len);
        return SKC_EPROTO;
    }
    out->target.name = (const char *)buf + 30;
    if (n > 0 && memchr(out->target.name, 0, n) != NULL) {
        snprintf(err, errlen, "target name contains a NUL byte");
        return SKC_EPROTO;
    }
    out->len = skci_get_u32(buf + 30 + n);
    size_t hdr = SKCI_REQ_FIXED + n;
    if (skci_wire_req_has_order(out->kind, out->flags)) {
        if (len < hdr + SKCI_ORDER_BLOCK) {
            snprintf(err, errlen,
                "truncated frame: the order block does not fit in %zu bytes",
                len);
            return SKC_EPROTO;
        }
        out->stream = skci_get_u64(buf + hdr);
        out->seq = skci_get_u64(buf + hdr + 8);
        hdr += SKCI_ORDER_BLOCK;
    }
    if ((uint64_t)out->len != (uint64_t)len - hdr) {
        snprintf(err, errlen,
            "payload length field says %u bytes, frame carries %zu", out->len,
            len - hdr);
        return SKC_EPROTO;
    }
    out->payload = buf + hdr;
    return 0;
}

void
skci_wire_rep_put_hdr(uint8_t *buf, uint32_t status, uint64_t id, uint32_t len)
{
    buf[0] = SKCI_WIRE_MAGIC0;
    buf[1] = SKCI_WIRE_MAGIC1;
    buf[2] = SKCI_WIRE_VERSION;
    buf[3] = SKCI_KIND_REPLY;
    skci_put_u32(buf + 4, status);
    skci_put_u64(buf + 8, id);
    skci_put_u32(buf + 16, len);
}

int
skci_wire_rep_decode(
    skci_rep *out, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    int rc = wire_check_magic(buf, len, SKCI_REP_FIXED, err, errlen);
    if (rc != 0) {
        return rc;
    }
    if (buf[3] != SKCI_KIND_REPLY) {
        snprintf(err, errlen, "expected a reply frame, got kind %u", buf[3]);
        return SKC_EPROTO;
    }
    out->status = skci_get_u32(buf + 4);
    out->id = skci_get_u64(buf + 8);
    out->len = skci_get_u32(buf + 16);
    if ((uint64_t)out->len != (uint64_t)len - SKCI_REP_FIXED) {
        snprintf(err, errlen,
            "reply length field says %u bytes, frame carries %zu", out->len,
            len - SKCI_REP_FIXED);
        return SKC_EPROTO;
    }
    out->payload = buf + SKCI_REP_FIXED;
    return 0;
}

int
skci_target_parse(skci_target *out, const char *s, int bare_ok)
{
    memset(out, 0, sizeof(*out));
    if (s == NULL || s[0] == '\0') {
        return skci_error(SKC_EINVAL, "target is empty");
    }
    size_t n = strlen(s);
    if (s[0] == ':') {
        if (n < 2 || n > 9) {
            return skci_error(SKC_EINVAL,
                "target '%s': a handle is ':' and 1 to 8 hex digits", s);
        }
        uint32_t h = 0;
        for (size_t i = 1; i < n; i++) {
            char c = s[i];
            int d;
            if (c >= '0' && c <= '9') {
                d = c - '0';
            } else if (c >= 'a' && c <= 'f') {
                d = c - 'a' + 10;
            } else if (c >= 'A' && c <= 'F') {
                d = c - 'A' + 10;
            } else {
                return skci_error(
                    SKC_EINVAL, "target '%s': bad hex digit '%c'", s, c);
            }
            h = h * 16 + (uint32_t)d;
        }
        if (h == 0) {
            return skci_error(SKC_EINVAL, "target '%s': handle 0", s);
        }
        out->type = SKCI_TARGET_HANDLE;
        out->handle = h;
        return 0;
    }
    if (s[0] == '@' || s[0] == '.') {
        out->type = s[0] == '@' ? SKCI_TARGET_CLUSTER : SKCI_TARGET_LOCAL;
        s++;
        n--;
    } else if (bare_ok) {
        out->type = SKCI_TARGET_CLUSTER;
    } else {
        return skci_error(SKC_EINVAL,
            "target '%s' must start with '@' (cluster name), '.' (local name) or ':' (hex handle)",
            s);
    }
    if (n == 0) {
        return skci_error(SKC_EINVAL, "target name is empty");
    }
    if (n > SKCI_NAME_MAX) {
        return skci_error(SKC_EINVAL,
            "target name of %zu bytes is longer than %d", n, SKCI_NAME_MAX);
    }
    out->name = s;
    out->name_len = (uint8_t)n;
    return 0;
}

size_t
skci_target_format(const skci_target *t, char *buf, size_t len)
{
    switch (t->type) {
    case SKCI_TARGET_HANDLE:
        snprintf(buf, len, ":%08x", t->handle);
        break;
    case SKCI_TARGET_CLUSTER:
    case SKCI_TARGET_LOCAL: {
        /* No snprintf: this runs for every request. */
        size_t n = t->name_len;
        if (len < 2) {
            break;
        }
        if (n + 2 > len) {
            n = len - 2;
        }
        buf[0] = t->type == SKCI_TARGET_CLUSTER ? '@' : '.';
        memcpy(buf + 1, t->name, n);
        buf[n + 1] = '\0';
        return n + 1;
    }
    default:
        snprintf(buf, len, "(none)");
        break;
    }
    return len > 0 ? strlen(buf) : 0;
}

size_t
skci_wire_hello_size(size_t name_len, size_t url_len, int has_features)
{
    return 4 + 2 + name_len + 2 + url_len + (has_features ? 4 : 0);
}

void
skci_wire_hello_put(uint8_t *buf, uint32_t max_msg, const char *name,
    size_t name_len, const char *url, size_t url_len, int has_features,
    uint32_t features)
{
    skci_put_u32(buf, max_msg);
    skci_put_u16(buf + 4, (uint16_t)name_len);
    memcpy(buf + 6, name, name_len);
    skci_put_u16(buf + 6 + name_len, (uint16_t)url_len);
    memcpy(buf + 8 + name_len, url, url_len);
    if (has_features) {
        skci_put_u32(buf + 8 + name_len + url_len, features);
    }
}

int
skci_wire_hello_decode(
    skci_hello *out, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    if (len < 8) {
        snprintf(err, errlen, "hello body of %zu bytes is too short", len);
        return SKC_EPROTO;
    }
    out->max_msg = skci_get_u32(buf);
    out->name_len = skci_get_u16(buf + 4);
    if ((size_t)6 + out->name_len + 2 > len) {
        snprintf(err, errlen, "hello name length %u overruns the body",
            out->name_len);
        return SKC_EPROTO;
    }
    out->name = (const char *)buf + 6;
    out->url_len = skci_get_u16(buf + 6 + out->name_len);
    size_t end = (size_t)8 + out->name_len + out->url_len;
    /* Exactly the body, or the body and the features word. */
    if (end != len && end + 4 != len) {
        snprintf(err, errlen, "hello url length %u disagrees with the body",
            out->url_len);
        return SKC_EPROTO;
    }
    out->url = (const char *)buf + 8 + out->name_len;
    out->has_features = end + 4 == len;
    out->features = out->has_features ? skci_get_u32(buf + end) : 0;
    return 0;
}
