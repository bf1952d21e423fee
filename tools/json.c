/* json.c -- a strict JSON reader that packs MessagePack, and a MessagePack
 * printer that writes JSON (json.h).
 *
 * The reader is one recursive descent (RFC 8259 grammar) run in two modes:
 * with `out` NULL it only checks the text and counts a container's
 * members, with `out` set it packs.  A container is checked and counted
 * first, then packed, because a MessagePack header carries its count;
 * nesting is bounded by CLI_JSON_MAX_DEPTH, so the rescans stay cheap.
 * Nothing is packed until the whole argument has been checked, so an
 * argument that is not JSON leaves the builder as it was. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct jreader {
    const char *p;   /* next byte */
    const char *end; /* one past the last byte */
    skc_pack *out;   /* NULL: check only */
    int depth;
    int too_deep;
    char *err;
    size_t errlen;
} jreader;

/* j_* functions return 0, J_BAD (not JSON: why in err) or an SKC_E* code
 * from skc_pack_*. */
#define J_BAD (-1000)

static int j_value(jreader *j);

static int
j_fail(jreader *j, const char *what)
{
    if (j->err != NULL && j->errlen > 0) {
        snprintf(j->err, j->errlen, "%s", what);
    }
    return J_BAD;
}

static void
j_space(jreader *j)
{
    while (j->p < j->end &&
        (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) {
        j->p++;
    }
}

static int
j_literal(jreader *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) {
        return j_fail(j, "not a JSON value");
    }
    j->p += n;
    return 0;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one
 * (overlong forms, surrogates and code points above U+10FFFF are not). */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
        return 0;
    }
    return len;
}

static int
hex4(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (uint32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (uint32_t)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= (uint32_t)(c - 'A' + 10);
        } else {
            return -1;
        }
    }
    *out = v;
    return 0;
}

static size_t
utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string at j->p (the opening quote).  When packing, the decoded bytes
 * (never longer than the source) are packed as one str. */
static int
j_string(jreader *j)
{
    const char *start = ++j->p;
    char *buf = NULL;
    size_t n = 0;
    int rc = 0;
    if (j->out != NULL) {
        /* the decoded text is never longer than the encoded text */
        buf = malloc((size_t)(j->end - start) + 1);
        if (buf == NULL) {
            return SKC_ENOMEM;
        }
    }
    for (;;) {
        if (j->p >= j->end) {
            rc = j_fail(j, "unterminated string");
            break;
        }
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20) {
            rc = j_fail(j, "control character in a string");
            break;
        }
        if (c != '\\') {
            size_t len =
                utf8_seq((const unsigned char *)j->p, (size_t)(j->end - j->p));
            if (len == 0) {
                rc = j_fail(j, "invalid UTF-8 in a string");
                break;
            }
            if (buf != NULL) {
                memcpy(buf + n, j->p, len);
                n += len;
            }
            j->p += len;
            continue;
        }
        if (j->end - j->p < 2) {
            rc = j_fail(j, "unterminated string");
            break;
        }
        char e = j->p[1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e != '\0' && simple != NULL) {
            static const char to[] = "\"\\/\b\f\n\r\t";
            if (buf != NULL) {
                buf[n++] = to[simple - "\"\\/bfnrt"];
            }
            j->p += 2;
            continue;
        }
        if (e != 'u') {
            rc = j_fail(j, "bad escape in a string");
            break;
        }
        uint32_t cp, lo;
        if (j->end - j->p < 6 || hex4(j->p + 2, &cp) != 0) {
            rc = j_fail(j, "bad \\u escape in a string");
            break;
        }
        j->p += 6;
        if (cp >= 0xdc00 && cp <= 0xdfff) {
            rc = j_fail(j, "lone low surrogate in a string");
            break;
        }
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
                hex4(j->p + 2, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff) {
                rc = j_fail(j, "high surrogate without its low half");
                break;
            }
            j->p += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (buf != NULL) {
            n += utf8_put(buf + n, cp);
        }
    }
    if (rc == 0 && buf != NULL) {
        rc = skc_pack_str(j->out, buf, n);
    }
    free(buf);
    return rc;
}

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int
j_number(jreader *j)
{
    const char *s = j->p, *q = j->p;
    int integral = 1;
    if (q < j->end && *q == '-') {
        q++;
    }
    if (q >= j->end || !is_digit(*q)) {
        return j_fail(j, "not a JSON value");
    }
    if (*q == '0') {
        q++;
    } else {
        while (q < j->end && is_digit(*q)) {
            q++;
        }
    }
    if (q < j->end && *q == '.') {
        integral = 0;
        q++;
        if (q >= j->end || !is_digit(*q)) {
            return j_fail(j, "digits expected after '.'");
        }
        while (q < j->end && is_digit(*q)) {
            q++;
        }
    }
    if (q < j->end && (*q == 'e' || *q == 'E')) {
        integral = 0;
        q++;
        if (q < j->end && (*q == '+' || *q == '-')) {
            q++;
        }
        if (q >= j->end || !is_digit(*q)) {
            return j_fail(j, "digits expected in the exponent");
        }
        while (q < j->end && is_digit(*q)) {
            q++;
        }
    }
    j->p = q;
    if (j->out == NULL) {
        return 0;
    }
    char num[512];
    size_t len = (size_t)(q - s);
    if (len >= sizeof(num)) {
        integral = 0; /* far beyond 64 bits: a float */
    }
    char *big = NULL, *text = num;
    if (len >= sizeof(num) && (text = big = malloc(len + 1)) == NULL) {
        return SKC_ENOMEM;
    }
    memcpy(text, s, len);
    text[len] = '\0';
    int rc;
    char *tail;
    errno = 0;
    if (integral && text[0] == '-') {
        long long v = strtoll(text, &tail, 10);
        if (errno == 0) {
            rc = skc_pack_int(j->out, (int64_t)v);
            free(big);
            return rc;
        }
    } else if (integral) {
        unsigned long long v = strtoull(text, &tail, 10);
        if (errno == 0) {
            rc = v <= INT64_MAX ? skc_pack_int(j->out, (int64_t)v)
                                : skc_pack_uint(j->out, (uint64_t)v);
            free(big);
            return rc;
        }
    }
    /* The C locale is never changed here, so '.' is the decimal point. */
    rc = skc_pack_double(j->out, strtod(text, &tail));
    free(big);
    return rc;
}

/* An array or object at j->p; `close` is ']' or '}'.  Checks and counts
 * the members, then (when packing) packs the header and reads them again
 * with packing on. */
static int
j_container(jreader *j, char close)
{
    int object = close == '}';
    if (j->depth >= CLI_JSON_MAX_DEPTH) {
        j->too_deep = 1;
        return j_fail(j, "nested too deep");
    }
    j->depth++;
    const char *open = j->p;
    uint32_t count = 0;
    skc_pack *out = NULL;
    int rc = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        if (pass == 1) {
            if (out == NULL) {
                break; /* checking only: one pass */
            }
            j->out = out;
            rc =
                object ? skc_pack_map(out, count) : skc_pack_array(out, count);
            if (rc != 0) {
                break;
            }
        } else {
            out = j->out;
            j->out = NULL;
        }
        j->p = open + 1;
        j_space(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            continue;
        }
        for (;;) {
            j_space(j);
            if (object) {
                if (j->p >= j->end || *j->p != '"') {
                    rc = j_fail(j, "object key must be a string");
                    break;
                }
                if ((rc = j_string(j)) != 0) {
                    break;
                }
                j_space(j);
                if (j->p >= j->end || *j->p != ':') {
                    rc = j_fail(j, "':' expected after an object key");
                    break;
                }
                j->p++;
            }
            if ((rc = j_value(j)) != 0) {
                break;
            }
            if (pass == 0) {
                if (count == UINT32_MAX) {
                    rc = j_fail(j, "too many members");
                    break;
                }
                count++;
            }
            j_space(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == close) {
                j->p++;
                break;
            }
            rc = j_fail(
                j, object ? "',' or '}' expected" : "',' or ']' expected");
            break;
        }
    }
    j->out = out;
    j->depth--;
    return rc;
}

static int
j_value(jreader *j)
{
    int rc;
    j_space(j);
    if (j->p >= j->end) {
        return j_fail(j, "value expected");
    }
    switch (*j->p) {
    case '{':
        return j_container(j, '}');
    case '[':
        return j_container(j, ']');
    case '"':
        return j_string(j);
    case 't':
        if ((rc = j_literal(j, "true")) == 0 && j->out != NULL) {
            rc = skc_pack_bool(j->out, 1);
        }
        return rc;
    case 'f':
        if ((rc = j_literal(j, "false")) == 0 && j->out != NULL) {
            rc = skc_pack_bool(j->out, 0);
        }
        return rc;
    case 'n':
        if ((rc = j_literal(j, "null")) == 0 && j->out != NULL) {
            rc = skc_pack_nil(j->out);
        }
        return rc;
    default:
        return j_number(j);
    }
}

int
cli_json_pack(
    skc_pack *pack, const char *text, size_t len, char *err, size_t errlen)
{
    jreader j = { text, text + len, NULL, 0, 0, err, errlen };
    int rc = j_value(&j);
    if (rc == 0) {
        j_space(&j);
        if (j.p != j.end) {
            rc = j_fail(&j, "text after the value");
        }
    }
    if (rc != 0) {
        if (rc != J_BAD) {
            return rc;
        }
        return j.too_deep ? CLI_JSON_TOO_DEEP : CLI_JSON_NOT_JSON;
    }
    j.p = text;
    j.out = pack;
    rc = j_value(&j);
    return rc == 0 ? CLI_JSON_PACKED : rc;
}

/* ---------------------------------------------------------------------- */
/* MessagePack -> JSON                                                    */
/* ---------------------------------------------------------------------- */

void
cli_json_print_string(FILE *f, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        unsigned c = u[i];
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
            i++;
        } else if (c < 0x20) {
            switch (c) {
            case '\b':
                fputs("\\b", f);
                break;
            case '\f':
                fputs("\\f", f);
                break;
            case '\n':
                fputs("\\n", f);
                break;
            case '\r':
                fputs("\\r", f);
                break;
            case '\t':
                fputs("\\t", f);
                break;
            default:
                fprintf(f, "\\u%04x", c);
            }
            i++;
        } else {
            size_t n = utf8_seq(u + i, len - i);
            if (n == 0) {
                fprintf(f, "\\u%04x", c); /* a stray byte, as Latin-1 */
                i++;
            } else {
                fwrite(u + i, 1, n, f);
                i += n;
            }
        }
    }
    fputc('"', f);
}

/* A float that reads back as the same double, and stays a float when read
 * as JSON (1.0, not 1). */
static void
print_double(FILE *f, double d)
{
    char buf[64];
    if (!isfinite(d)) {
        fputs("null", f); /* JSON has no NaN or infinity */
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d) {
            break;
        }
    }
    fputs(buf, f);
    if (strpbrk(buf, ".eE") == NULL) {
        fputs(".0", f);
    }
}

static void
print_hex(FILE *f, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        fprintf(f, "%02x", (unsigned char)p[i]);
    }
}

/* Prints the value whose first item is `it` (already read), reading its
 * members from u.  The payload was checked whole before, so reads here
 * do not fail. */
static void
print_value(FILE *f, skc_unpack *u, const skc_item *it)
{
    skc_item m = SKC_ITEM_INIT;
    switch (it->type) {
    case SKC_T_NIL:
        fputs("null", f);
        break;
    case SKC_T_BOOL:
        fputs(it->i ? "true" : "false", f);
        break;
    case SKC_T_INT:
        fprintf(f, "%lld", (long long)it->i);
        break;
    case SKC_T_UINT:
        fprintf(f, "%llu", (unsigned long long)it->u);
        break;
    case SKC_T_FLOAT:
        print_double(f, it->d);
        break;
    case SKC_T_STR:
    case SKC_T_BIN:
        cli_json_print_string(f, it->ptr, it->len);
        break;
    case SKC_T_EXT:
        fprintf(f, "{\"ext\":%d,\"hex\":\"", (int)it->ext_type);
        print_hex(f, it->ptr, it->len);
        fputs("\"}", f);
        break;
    case SKC_T_ARRAY:
        fputc('[', f);
        for (uint32_t i = 0; i < it->count; i++) {
            if (i > 0) {
                fputc(',', f);
            }
            skc_unpack_next(u, &m);
            print_value(f, u, &m);
        }
        fputc(']', f);
        break;
    case SKC_T_MAP:
        fputc('{', f);
        for (uint32_t i = 0; i < it->count; i++) {
            if (i > 0) {
                fputc(',', f);
            }
            skc_unpack_next(u, &m);
            if (m.type == SKC_T_STR || m.type == SKC_T_BIN) {
                cli_json_print_string(f, m.ptr, m.len);
            } else {
                /* JSON keys are strings: the key's JSON text as one */
                char *text = NULL;
                size_t tlen = 0;
                FILE *mf = open_memstream(&text, &tlen);
                if (mf != NULL) {
                    print_value(mf, u, &m);
                    fclose(mf);
                    cli_json_print_string(f, text, tlen);
                } else {
                    fputs("\"?\"", f);
                }
                free(text);
            }
            fputc(':', f);
            skc_unpack_next(u, &m);
            print_value(f, u, &m);
        }
        fputc('}', f);
        break;
    default:
        fputs("null", f);
    }
}

int
cli_json_print_payload(
    FILE *f, const void *data, size_t len, char *err, size_t errlen)
{
    skc_unpack *u = NULL;
    skc_item it = SKC_ITEM_INIT;
    int rc, n = 0;
    /* First check it whole, so that nothing is printed for bad bytes. */
    if ((rc = skc_unpack_create(&u, data, len)) != 0) {
        snprintf(err, errlen, "%s", skc_strerror(rc));
        return rc;
    }
    while ((rc = skc_unpack_next(u, &it)) == 1) { }
    skc_unpack_destroy(u);
    if (rc < 0) {
        snprintf(err, errlen, "%s", skc_last_error());
        return SKC_EPROTO;
    }
    if ((rc = skc_unpack_create(&u, data, len)) != 0) {
        snprintf(err, errlen, "%s", skc_strerror(rc));
        return rc;
    }
    while (skc_unpack_next(u, &it) == 1) {
        print_value(f, u, &it);
        fputc('\n', f);
        n++;
    }
    skc_unpack_destroy(u);
    return n;
}
