/* map.c -- cluster-map parser for skynet's config format.
 *
 * skynet runs the map file as a Lua chunk and keeps the globals it assigns.
 * We accept the part of Lua such files use (see map.h), so no interpreter
 * is needed and a bad file still gets a Lua-like "file:line: ... near 'x'"
 * message.
 *
 * The only nesting is one level: a group is a table whose items are
 * strings, and a '{' inside it is an error, so the parser is a plain loop
 * over a token stream: no input can drive recursion.  Every scan is linear
 * in the input, and the checks that compare names (repeated keys,
 * duplicate members, groups named as members) sort, so even a 16 MiB file
 * of tiny entries, or one group of a million members, stays cheap.
 *
 * Invariants:
 *  - the lexer never reads at or past `end`; the text need not be
 *    NUL-terminated and may contain NUL bytes;
 *  - line breaks are counted as Lua counts them: LF, CR, CR LF and LF CR
 *    are one break each, so messages match what Lua would say;
 *  - on any error everything allocated so far is freed before returning,
 *    so *out is either complete or empty.
 */
#include "map.h"

#include "error.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAP_KEY_MAX 255
#define MAP_FILE_MAX ((size_t)16 * 1024 * 1024)
/* Bytes of source quoted after "near"; enough to recognise the spot,
 * short enough that the message fits a small buffer. */
#define MAP_NEAR_MAX 32
#define MAP_NEAR_BUF (MAP_NEAR_MAX + 8)

enum map_tok {
    MAP_TEOF,
    MAP_TNAME,   /* identifier or keyword, text in src/srclen */
    MAP_TSTRING, /* decoded bytes in str/slen */
    MAP_TNUMBER, /* decimal digits in src/srclen */
    MAP_TPUNCT,  /* one of { } [ ] = , ; - in ch */
    MAP_TOTHER   /* any other byte (or UTF-8 sequence), for messages */
};

struct map_token {
    int type;
    int ch;
    const char *src; /* the token as written, for "near" */
    size_t srclen;
    int line;
    const char *str; /* MAP_TSTRING only; not NUL-terminated */
    size_t slen;
};

struct map_parser {
    const char *p;
    const char *end;
    int line;
    struct map_token tok;

    /* Decoded contents of the current string token; reused. */
    char *scratch;
    size_t scratch_len;
    size_t scratch_cap;

    skci_map_entry *v;
    size_t n;
    size_t cap;

    const char *origin;
    char *err;
    size_t errlen;
};

static const char *const map_keywords[] = { "and", "break", "do", "else",
    "elseif", "end", "false", "for", "function", "goto", "if", "in", "local",
    "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" };

/* Indexed by SKCI_GROUP_*. */
static const char *const map_policies[] = { "failover", "roundrobin",
    "random" };

/* ---------------------------------------------------------------------- */
/* Messages                                                               */
/* ---------------------------------------------------------------------- */

static void map_set_err(char *err, size_t errlen, const char *fmt, ...)
    SKCI_PRINTF(3, 4);

static void
map_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Quotes a token for "near": stops at a line break and after
 * MAP_NEAR_MAX bytes (on a UTF-8 boundary, so the message stays valid
 * UTF-8 whenever the source is), and hides control bytes, which could
 * otherwise garble a terminal or a log line. */
static void
map_near(char *buf, const char *s, size_t len)
{
    size_t cut = len;
    size_t o = 0;
    int more = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n' || s[i] == '\r') {
            cut = i;
            more = 1;
            break;
        }
    }
    if (cut > MAP_NEAR_MAX) {
        cut = MAP_NEAR_MAX;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80) {
            cut--;
        }
        more = 1;
    }
    buf[o++] = '\'';
    for (size_t i = 0; i < cut; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[o++] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
    }
    if (more) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '\'';
    buf[o] = '\0';
}

/* "<origin>:<line>: <message>", for errors that have no "near". */
static int map_fail(struct map_parser *mp, int line, const char *fmt, ...)
    SKCI_PRINTF(3, 4);

static int
map_fail(struct map_parser *mp, int line, const char *fmt, ...)
{
    char msg[256]; /* two quoted names (MAP_NEAR_BUF) and some words */
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    map_set_err(mp->err, mp->errlen, "%s:%d: %s", mp->origin, line, msg);
    return SKC_ESYNTAX;
}

/* "<origin>:<line>: <what> near '<src>'" with an explicit source span,
 * for lexer errors that point inside a token. */
static int
map_fail_near(struct map_parser *mp, int line, const char *what,
    const char *src, size_t srclen)
{
    char near[MAP_NEAR_BUF];

    map_near(near, src, srclen);
    return map_fail(mp, line, "%s near %s", what, near);
}

/* "<origin>:<line>: expected <what> near '<current token>'". */
static int
map_expected(struct map_parser *mp, const char *what)
{
    char near[MAP_NEAR_BUF];
    const struct map_token *t = &mp->tok;

    if (t->type == MAP_TEOF) {
        snprintf(near, sizeof(near), "<eof>");
    } else {
        map_near(near, t->src, t->srclen);
    }
    return map_fail(mp, t->line, "expected %s near %s", what, near);
}

static int
map_nomem(struct map_parser *mp)
{
    map_set_err(mp->err, mp->errlen, "%s: out of memory", mp->origin);
    return SKC_ENOMEM;
}

/* ---------------------------------------------------------------------- */
/* Lexer                                                                  */
/* ---------------------------------------------------------------------- */

static int
map_is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
        c == '\v';
}

static int
map_is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int
map_is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int
map_is_alnum(int c)
{
    return map_is_alpha(c) || map_is_digit(c);
}

static int
map_hex_value(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static int
map_is_newline(int c)
{
    return c == '\n' || c == '\r';
}

/* Steps over the line break at q (see the invariant above) and returns
 * the byte after it. */
static const char *
map_newline(struct map_parser *mp, const char *q)
{
    char first = *q++;

    if (q < mp->end && map_is_newline((unsigned char)*q) && *q != first) {
        q++;
    }
    /* A 16 MiB file has far fewer lines than INT_MAX, but the parser
     * takes any length, and signed overflow must not be reachable. */
    if (mp->line < INT_MAX) {
        mp->line++;
    }
    return q;
}

/* Looks at a '[' at q.  Returns 1 and the level if it opens a long
 * bracket ("[[", "[==["), 0 if it is a plain '[', -1 for "[=" without the
 * second '[' (Lua rejects that as a delimiter). */
static int
map_long_open(const struct map_parser *mp, const char *q, size_t *level)
{
    const char *r = q + 1;

    while (r < mp->end && *r == '=') {
        r++;
    }
    *level = (size_t)(r - q - 1);
    if (r < mp->end && *r == '[') {
        return 1;
    }
    return *level == 0 ? 0 : -1;
}

static int
map_scratch_put(struct map_parser *mp, const char *s, size_t n)
{
    if (n == 0) {
        return 0; /* the buffer may still be NULL, which memcpy rejects */
    }
    if (mp->scratch_cap - mp->scratch_len < n) {
        size_t cap = mp->scratch_cap != 0 ? mp->scratch_cap : 64;
        while (cap - mp->scratch_len < n) {
            if (cap > SIZE_MAX / 2) {
                return map_nomem(mp);
            }
            cap *= 2;
        }
        char *p = realloc(mp->scratch, cap);
        if (p == NULL) {
            return map_nomem(mp);
        }
        mp->scratch = p;
        mp->scratch_cap = cap;
    }
    memcpy(mp->scratch + mp->scratch_len, s, n);
    mp->scratch_len += n;
    return 0;
}

/* Skips a long bracket whose opening (level `level`) starts at mp->p.
 * With `keep`, the contents go to the scratch buffer the way Lua reads
 * them: without the line break right after the opening, and with every
 * line break turned into a LF.  Returns 0; 1 if the input ends first
 * (mp->p is then at the end); or SKC_ENOMEM. */
static int
map_long_skip(struct map_parser *mp, size_t level, int keep)
{
    const char *q = mp->p + level + 2;
    const char *run;
    int rc;

    if (q < mp->end && map_is_newline((unsigned char)*q)) {
        q = map_newline(mp, q);
    }
    run = q;
    while (q < mp->end) {
        if (map_is_newline((unsigned char)*q)) {
            if (keep &&
                ((rc = map_scratch_put(mp, run, (size_t)(q - run))) != 0 ||
                    (rc = map_scratch_put(mp, "\n", 1)) != 0)) {
                return rc;
            }
            q = map_newline(mp, q);
            run = q;
        } else if (*q == ']') {
            /* A run of '=' holds no ']', so the next candidate lies past
             * it: the whole scan stays linear whatever the level. */
            const char *r = q + 1;
            while (r < mp->end && *r == '=') {
                r++;
            }
            if (r < mp->end && *r == ']' && (size_t)(r - q - 1) == level) {
                mp->p = r + 1;
                return keep ? map_scratch_put(mp, run, (size_t)(q - run)) : 0;
            }
            q = r;
        } else {
            q++;
        }
    }
    mp->p = mp->end;
    return 1;
}

static int
map_skip_space(struct map_parser *mp)
{
    for (;;) {
        while (mp->p < mp->end && map_is_space((unsigned char)*mp->p)) {
            if (map_is_newline((unsigned char)*mp->p)) {
                mp->p = map_newline(mp, mp->p);
            } else {
                mp->p++;
            }
        }
        if (mp->end - mp->p < 2 || mp->p[0] != '-' || mp->p[1] != '-') {
            return 0;
        }
        mp->p += 2;
        size_t level;
        if (mp->p < mp->end && *mp->p == '[' &&
            map_long_open(mp, mp->p, &level) == 1) {
            int start = mp->line;
            if (map_long_skip(mp, level, 0) != 0) {
                return map_fail(mp, start, "unfinished long comment");
            }
            continue;
        }
        /* A line comment; its line break is counted by the loop above. */
        while (mp->p < mp->end && !map_is_newline((unsigned char)*mp->p)) {
            mp->p++;
        }
    }
}

/* Lua 5.4 accepts \u{} up to 2^31 - 1, encoded with the original
 * (up to six byte) UTF-8 scheme; we do the same so a file means what it
 * means to Lua. */
static size_t
map_utf8_encode(char *buf, unsigned long x)
{
    static const unsigned long limits[] = { 0x7F, 0x7FF, 0xFFFF, 0x1FFFFF,
        0x3FFFFFF, 0x7FFFFFFF };
    size_t n = 1;

    if (x <= limits[0]) {
        buf[0] = (char)x;
        return 1;
    }
    while (n < 6 && x > limits[n - 1]) {
        n++;
    }
    for (size_t i = n - 1; i > 0; i--) {
        buf[i] = (char)(0x80 | (x & 0x3F));
        x >>= 6;
    }
    buf[0] = (char)((0xFF00u >> n) | x);
    return n;
}

/* Decodes one escape; mp->p is at the backslash and at least one byte
 * follows it. */
static int
map_escape(struct map_parser *mp)
{
    const char *bs = mp->p;
    const char *q = bs + 1;
    char out[8];
    size_t n = 1;

    switch (*q) {
    case 'a':
        out[0] = '\a';
        q++;
        break;
    case 'b':
        out[0] = '\b';
        q++;
        break;
    case 'f':
        out[0] = '\f';
        q++;
        break;
    case 'n':
        out[0] = '\n';
        q++;
        break;
    case 'r':
        out[0] = '\r';
        q++;
        break;
    case 't':
        out[0] = '\t';
        q++;
        break;
    case 'v':
        out[0] = '\v';
        q++;
        break;
    case '\\':
        out[0] = '\\';
        q++;
        break;
    case '"':
        out[0] = '"';
        q++;
        break;
    case '\'':
        out[0] = '\'';
        q++;
        break;
    case '\n':
    case '\r':
        /* An escaped line break is a LF, whichever form it has. */
        q = map_newline(mp, q);
        out[0] = '\n';
        break;
    case 'z':
        q++;
        while (q < mp->end && map_is_space((unsigned char)*q)) {
            if (map_is_newline((unsigned char)*q)) {
                q = map_newline(mp, q);
            } else {
                q++;
            }
        }
        n = 0;
        break;
    case 'x': {
        int hi = q + 1 < mp->end ? map_hex_value((unsigned char)q[1]) : -1;
        int lo = q + 2 < mp->end ? map_hex_value((unsigned char)q[2]) : -1;
        if (hi < 0 || lo < 0) {
            const char *stop = q + (hi < 0 ? 2 : 3);
            if (stop > mp->end) {
                stop = mp->end;
            }
            return map_fail_near(mp, mp->line, "hexadecimal digit expected",
                bs, (size_t)(stop - bs));
        }
        out[0] = (char)(hi * 16 + lo);
        q += 3;
        break;
    }
    case 'u': {
        unsigned long x = 0;
        int digits = 0;
        q++;
        if (q >= mp->end || *q != '{') {
            return map_fail_near(mp, mp->line, "missing '{' in \\u{xxxx}", bs,
                (size_t)(q - bs) + (q < mp->end));
        }
        q++;
        while (q < mp->end && map_hex_value((unsigned char)*q) >= 0) {
            x = x * 16 + (unsigned long)map_hex_value((unsigned char)*q);
            if (x > 0x7FFFFFFFUL) {
                return map_fail_near(mp, mp->line, "UTF-8 value too large", bs,
                    (size_t)(q + 1 - bs));
            }
            digits++;
            q++;
        }
        if (digits == 0) {
            return map_fail_near(mp, mp->line, "hexadecimal digit expected",
                bs, (size_t)(q - bs) + (q < mp->end));
        }
        if (q >= mp->end || *q != '}') {
            return map_fail_near(mp, mp->line, "missing '}' in \\u{xxxx}", bs,
                (size_t)(q - bs) + (q < mp->end));
        }
        q++;
        n = map_utf8_encode(out, x);
        break;
    }
    default:
        if (map_is_digit((unsigned char)*q)) {
            unsigned v = 0;
            for (int i = 0;
                 i < 3 && q < mp->end && map_is_digit((unsigned char)*q);
                 i++) {
                v = v * 10 + (unsigned)(*q - '0');
                q++;
            }
            if (v > 255) {
                return map_fail_near(mp, mp->line, "decimal escape too large",
                    bs, (size_t)(q - bs));
            }
            out[0] = (char)v;
            break;
        }
        return map_fail_near(mp, mp->line, "invalid escape sequence", bs, 2);
    }
    mp->p = q;
    return map_scratch_put(mp, out, n);
}

static int
map_lex_short_string(struct map_parser *mp)
{
    struct map_token *t = &mp->tok;
    char quote = *mp->p++;
    int rc;

    mp->scratch_len = 0;
    for (;;) {
        if (mp->p >= mp->end || *mp->p == '\n' || *mp->p == '\r') {
            return map_fail(mp, t->line, "unfinished string");
        }
        if (*mp->p == quote) {
            mp->p++;
            break;
        }
        if (*mp->p == '\\') {
            if (mp->end - mp->p < 2) {
                return map_fail(mp, t->line, "unfinished string");
            }
            if ((rc = map_escape(mp)) != 0) {
                return rc;
            }
            continue;
        }
        /* Copy the run up to the next byte that needs a look. */
        const char *s = mp->p;
        while (mp->p < mp->end && *mp->p != quote && *mp->p != '\\' &&
            *mp->p != '\n' && *mp->p != '\r') {
            mp->p++;
        }
        if ((rc = map_scratch_put(mp, s, (size_t)(mp->p - s))) != 0) {
            return rc;
        }
    }
    t->type = MAP_TSTRING;
    /* Never NULL: mem* functions must not see a null pointer. */
    t->str = mp->scratch != NULL ? mp->scratch : "";
    t->slen = mp->scratch_len;
    return 0;
}

/* Advances to the next token.  Returns 0 or an error (message set). */
static int
map_next(struct map_parser *mp)
{
    struct map_token *t = &mp->tok;
    int rc;

    if ((rc = map_skip_space(mp)) != 0) {
        return rc;
    }
    t->src = mp->p;
    t->srclen = 0;
    t->line = mp->line;
    t->str = NULL;
    t->slen = 0;
    t->ch = 0;
    if (mp->p >= mp->end) {
        t->type = MAP_TEOF;
        return 0;
    }

    unsigned char c = (unsigned char)*mp->p;
    if (map_is_alpha(c)) {
        while (mp->p < mp->end && map_is_alnum((unsigned char)*mp->p)) {
            mp->p++;
        }
        t->type = MAP_TNAME;
    } else if (map_is_digit(c)) {
        /* Take what Lua would read as one numeral, then insist on plain
         * digits, so "1.5" or "0x10" is reported whole. */
        while (mp->p < mp->end &&
            (map_is_alnum((unsigned char)*mp->p) || *mp->p == '.')) {
            mp->p++;
        }
        t->srclen = (size_t)(mp->p - t->src);
        for (size_t i = 0; i < t->srclen; i++) {
            if (!map_is_digit((unsigned char)t->src[i])) {
                return map_fail_near(
                    mp, t->line, "malformed number", t->src, t->srclen);
            }
        }
        t->type = MAP_TNUMBER;
    } else if (c == '"' || c == '\'') {
        if ((rc = map_lex_short_string(mp)) != 0) {
            return rc;
        }
    } else if (c == '[') {
        size_t level;
        int kind = map_long_open(mp, mp->p, &level);
        if (kind < 0) {
            return map_fail_near(mp, t->line, "invalid long string delimiter",
                t->src, level + 1);
        }
        if (kind > 0) {
            mp->scratch_len = 0;
            if ((rc = map_long_skip(mp, level, 1)) > 0) {
                return map_fail(mp, t->line, "unfinished long string");
            }
            if (rc != 0) {
                return rc;
            }
            t->type = MAP_TSTRING;
            t->str = mp->scratch != NULL ? mp->scratch : "";
            t->slen = mp->scratch_len;
        } else {
            mp->p++;
            t->type = MAP_TPUNCT;
            t->ch = c;
        }
    } else if (c == '{' || c == '}' || c == ']' || c == '=' || c == ',' ||
        c == ';' || c == '-') {
        mp->p++;
        t->type = MAP_TPUNCT;
        t->ch = c;
    } else {
        /* Keep a whole UTF-8 sequence so the message quotes a character,
         * not half of one. */
        mp->p++;
        if (c >= 0xC0) {
            int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
            while (extra-- > 0 && mp->p < mp->end &&
                ((unsigned char)*mp->p & 0xC0) == 0x80) {
                mp->p++;
            }
        }
        t->type = MAP_TOTHER;
    }
    t->srclen = (size_t)(mp->p - t->src);
    return 0;
}

static int
map_tok_is(const struct map_parser *mp, int ch)
{
    return mp->tok.type == MAP_TPUNCT && mp->tok.ch == ch;
}

static int
map_tok_is_word(const struct map_parser *mp, const char *word)
{
    size_t n = strlen(word);

    return mp->tok.type == MAP_TNAME && mp->tok.srclen == n &&
        memcmp(mp->tok.src, word, n) == 0;
}

static int
map_tok_is_keyword(const struct map_parser *mp)
{
    for (size_t i = 0; i < sizeof(map_keywords) / sizeof(map_keywords[0]);
         i++) {
        if (map_tok_is_word(mp, map_keywords[i])) {
            return 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Parser                                                                 */
/* ---------------------------------------------------------------------- */

static char *
map_memdup(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static void
map_entry_clear(skci_map_entry *e)
{
    free(e->name);
    free(e->value);
    for (size_t i = 0; i < e->nmembers; i++) {
        free(e->members[i]);
    }
    free(e->members);
    e->name = NULL;
    e->value = NULL;
    e->members = NULL;
    e->nmembers = 0;
}

static void
map_entries_free(skci_map_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        map_entry_clear(&v[i]);
    }
    free(v);
}

/* Appends *e, whose allocations the list then owns. */
static int
map_push(struct map_parser *mp, const skci_map_entry *e)
{
    if (mp->n == mp->cap) {
        size_t cap = mp->cap != 0 ? mp->cap * 2 : 16;
        if (cap > SIZE_MAX / sizeof(*mp->v)) {
            return map_nomem(mp);
        }
        skci_map_entry *v = realloc(mp->v, cap * sizeof(*v));
        if (v == NULL) {
            return map_nomem(mp);
        }
        mp->v = v;
        mp->cap = cap;
    }
    mp->v[mp->n++] = *e;
    return 0;
}

/* Reads a key (a name, or the string after '[') and leaves the token
 * after it; the caller checks the closing ']'.  On success *name is
 * malloc'd. */
static int
map_parse_key(struct map_parser *mp, char **name)
{
    const char *s;
    size_t n;
    int rc;

    *name = NULL;
    if (mp->tok.type == MAP_TNAME && !map_tok_is_keyword(mp)) {
        s = mp->tok.src;
        n = mp->tok.srclen;
        if (n > MAP_KEY_MAX) {
            return map_expected(mp, "a name of 1 to 255 bytes");
        }
    } else if (map_tok_is(mp, '[')) {
        if ((rc = map_next(mp)) != 0) {
            return rc;
        }
        if (mp->tok.type != MAP_TSTRING) {
            return map_expected(mp, "a string");
        }
        s = mp->tok.str;
        n = mp->tok.slen;
        if (n == 0 || n > MAP_KEY_MAX) {
            return map_expected(mp, "a name of 1 to 255 bytes");
        }
        if (memchr(s, '\0', n) != NULL) {
            return map_expected(mp, "a name without NUL bytes");
        }
    } else {
        return map_expected(mp, "a name");
    }
    if ((*name = map_memdup(s, n)) == NULL) {
        return map_nomem(mp);
    }
    if ((rc = map_next(mp)) != 0) {
        free(*name);
        *name = NULL;
        return rc;
    }
    return 0;
}

/* Reads a string, false, true or number value into e (kind, value) and
 * leaves the token after it. */
static int
map_parse_scalar(struct map_parser *mp, skci_map_entry *e, int option)
{
    const char *what = option ? "a value" : "an address string or false";
    int rc;

    if (mp->tok.type == MAP_TSTRING) {
        if (memchr(mp->tok.str, '\0', mp->tok.slen) != NULL) {
            return map_expected(mp, "a string without NUL bytes");
        }
        e->kind = SKCI_MAP_ADDR;
        e->value = map_memdup(mp->tok.str, mp->tok.slen);
    } else if (map_tok_is_word(mp, "false")) {
        e->kind = SKCI_MAP_DOWN;
    } else if (option && map_tok_is_word(mp, "true")) {
        e->kind = SKCI_MAP_TRUE;
    } else if (option && mp->tok.type == MAP_TNUMBER) {
        e->kind = SKCI_MAP_NUMBER;
        e->value = map_memdup(mp->tok.src, mp->tok.srclen);
    } else if (option && map_tok_is(mp, '-')) {
        if ((rc = map_next(mp)) != 0) {
            return rc;
        }
        if (mp->tok.type != MAP_TNUMBER) {
            return map_expected(mp, "a number");
        }
        e->kind = SKCI_MAP_NUMBER;
        if ((e->value = malloc(mp->tok.srclen + 2)) != NULL) {
            e->value[0] = '-';
            memcpy(e->value + 1, mp->tok.src, mp->tok.srclen);
            e->value[mp->tok.srclen + 1] = '\0';
        }
    } else {
        return map_expected(mp, what);
    }
    if ((e->kind == SKCI_MAP_ADDR || e->kind == SKCI_MAP_NUMBER) &&
        e->value == NULL) {
        return map_nomem(mp);
    }
    return map_next(mp);
}

/* ---------------------------------------------------------------------- */
/* Groups                                                                 */
/* ---------------------------------------------------------------------- */

/* A group being read.  Its members grow in place in the entry, so the
 * entry alone owns them whatever fails; `lines` (each member's line, for
 * messages) lives only while the table is read. */
struct map_group {
    skci_map_entry *e;
    size_t cap;
    int *lines;
    int policy_line; /* 0 until a policy is given */
};

static int
map_policy_lookup(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof(map_policies) / sizeof(map_policies[0]);
         i++) {
        if (strlen(map_policies[i]) == n &&
            memcmp(s, map_policies[i], n) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* "group '<name>': <message>" at `line`. */
static int map_group_fail(struct map_parser *mp, const struct map_group *g,
    int line, const char *fmt, ...) SKCI_PRINTF(4, 5);

static int
map_group_fail(struct map_parser *mp, const struct map_group *g, int line,
    const char *fmt, ...)
{
    char gname[MAP_NEAR_BUF];
    char msg[160];
    va_list ap;

    map_near(gname, g->e->name, strlen(g->e->name));
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return map_fail(mp, line, "group %s: %s", gname, msg);
}

/* Adds the current string token as a member. */
static int
map_group_add(struct map_parser *mp, struct map_group *g)
{
    const struct map_token *t = &mp->tok;
    skci_map_entry *e = g->e;
    char quoted[MAP_NEAR_BUF];
    char *name;

    if (t->slen == 0 || t->slen > MAP_KEY_MAX) {
        return map_expected(mp, "a name of 1 to 255 bytes");
    }
    if (memchr(t->str, '\0', t->slen) != NULL) {
        return map_expected(mp, "a name without NUL bytes");
    }
    map_near(quoted, t->str, t->slen);
    if (t->slen >= 2 && t->str[0] == '_' && t->str[1] == '_') {
        return map_group_fail(
            mp, g, t->line, "member %s is an option name, not a node", quoted);
    }
    if (t->slen == strlen(e->name) && memcmp(t->str, e->name, t->slen) == 0) {
        return map_group_fail(
            mp, g, t->line, "a group cannot be its own member");
    }
    if (e->nmembers == g->cap) {
        size_t cap = g->cap != 0 ? g->cap * 2 : 4;
        char **m;
        int *l;
        if (cap > SIZE_MAX / sizeof(*m)) {
            return map_nomem(mp);
        }
        if ((m = realloc(e->members, cap * sizeof(*m))) == NULL) {
            return map_nomem(mp);
        }
        e->members = m;
        if ((l = realloc(g->lines, cap * sizeof(*l))) == NULL) {
            return map_nomem(mp);
        }
        g->lines = l;
        g->cap = cap;
    }
    if ((name = map_memdup(t->str, t->slen)) == NULL) {
        return map_nomem(mp);
    }
    g->lines[e->nmembers] = t->line;
    e->members[e->nmembers++] = name;
    return 0;
}

/* Reads a keyed field (`policy = "..."`, the only one there is) from the
 * current name or '[' to the token after its value. */
static int
map_group_field(struct map_parser *mp, struct map_group *g)
{
    const char *src = mp->tok.src;
    size_t srclen = mp->tok.srclen;
    int line = mp->tok.line;
    int bracket = map_tok_is(mp, '[');
    char quoted[MAP_NEAR_BUF];
    char *key;
    int policy;
    int rc;

    if ((rc = map_parse_key(mp, &key)) != 0) {
        return rc;
    }
    map_near(quoted, key, strlen(key));
    policy = strcmp(key, "policy") == 0;
    free(key);
    if (bracket) {
        if (!map_tok_is(mp, ']')) {
            return map_expected(mp, "']'");
        }
        if ((rc = map_next(mp)) != 0) {
            return rc;
        }
    }
    if (!map_tok_is(mp, '=')) {
        /* A bare name is a Lua variable: the quotes were forgotten. */
        return bracket ? map_expected(mp, "'='")
                       : map_fail_near(mp, line,
                             "expected a member name string", src, srclen);
    }
    if (!policy) {
        return map_group_fail(
            mp, g, line, "unknown field %s (only policy is allowed)", quoted);
    }
    if (g->policy_line != 0) {
        return map_group_fail(mp, g, line,
            "policy given twice (first on line %d)", g->policy_line);
    }
    if ((rc = map_next(mp)) != 0) {
        return rc;
    }
    if (mp->tok.type != MAP_TSTRING) {
        return map_expected(mp, "a policy name string");
    }
    if ((policy = map_policy_lookup(mp->tok.str, mp->tok.slen)) < 0) {
        map_near(quoted, mp->tok.str, mp->tok.slen);
        return map_group_fail(mp, g, mp->tok.line,
            "unknown policy %s (use failover, roundrobin or random)", quoted);
    }
    g->e->policy = policy;
    g->policy_line = line;
    return map_next(mp);
}

static int
map_cmp_member(const void *a, const void *b)
{
    char *const *x = *(char *const *const *)a;
    char *const *y = *(char *const *const *)b;
    int c = strcmp(*x, *y);

    if (c != 0) {
        return c;
    }
    return x < y ? -1 : x > y; /* same array: written order */
}

/* Rejects a member listed twice, naming the earliest repeat.  Sorts
 * pointers into the members array, so a pointer's offset is the index. */
static int
map_group_dups(struct map_parser *mp, const struct map_group *g)
{
    char **m = g->e->members;
    size_t n = g->e->nmembers;
    size_t dup = SIZE_MAX;
    size_t first = 0;
    char quoted[MAP_NEAR_BUF];
    char ***v;

    if (n < 2) {
        return 0;
    }
    if ((v = malloc(n * sizeof(*v))) == NULL) {
        return map_nomem(mp);
    }
    for (size_t i = 0; i < n; i++) {
        v[i] = &m[i];
    }
    qsort(v, n, sizeof(*v), map_cmp_member);
    for (size_t i = 0, run = 0; i + 1 < n; i++) {
        if (strcmp(*v[i], *v[i + 1]) != 0) {
            run = i + 1;
        } else if ((size_t)(v[i + 1] - m) < dup) {
            dup = (size_t)(v[i + 1] - m);
            first = (size_t)(v[run] - m);
        }
    }
    free(v);
    if (dup == SIZE_MAX) {
        return 0;
    }
    map_near(quoted, m[dup], strlen(m[dup]));
    return map_group_fail(mp, g, g->lines[dup],
        "member %s listed twice (first on line %d)", quoted, g->lines[first]);
}

/* Reads a group table into e (kind, members, policy), from its '{' to
 * the token after its '}'. */
static int
map_parse_group(struct map_parser *mp, skci_map_entry *e)
{
    struct map_group g = { e, 0, NULL, 0 };
    int rc;

    e->kind = SKCI_MAP_GROUP;
    e->policy = SKCI_GROUP_FAILOVER;
    if ((rc = map_next(mp)) != 0) {
        goto done;
    }
    while (!map_tok_is(mp, '}')) {
        if (mp->tok.type == MAP_TEOF) {
            rc = map_expected(mp, "'}'");
        } else if (mp->tok.type == MAP_TSTRING) {
            if ((rc = map_group_add(mp, &g)) == 0) {
                rc = map_next(mp);
            }
        } else if ((mp->tok.type == MAP_TNAME && !map_tok_is_keyword(mp)) ||
            map_tok_is(mp, '[')) {
            rc = map_group_field(mp, &g);
        } else {
            rc = map_expected(mp, "a member name string");
        }
        if (rc != 0) {
            goto done;
        }
        if (map_tok_is(mp, ',') || map_tok_is(mp, ';')) {
            if ((rc = map_next(mp)) != 0) {
                goto done;
            }
        } else if (!map_tok_is(mp, '}')) {
            rc = map_expected(mp, "'}'");
            goto done;
        }
    }
    if (e->nmembers == 0) {
        rc = map_group_fail(
            mp, &g, e->line, "a group needs at least one member");
    } else if ((rc = map_group_dups(mp, &g)) == 0) {
        rc = map_next(mp);
    }

done:
    free(g.lines);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Entries                                                                */
/* ---------------------------------------------------------------------- */

/* Parses `key = value` starting at the current token and leaves the token
 * after the value. */
static int
map_parse_entry(struct map_parser *mp)
{
    int bracket = map_tok_is(mp, '[');
    skci_map_entry e;
    int rc;

    memset(&e, 0, sizeof(e));
    e.line = mp->tok.line;
    if ((rc = map_parse_key(mp, &e.name)) != 0) {
        return rc;
    }
    if (bracket) {
        if (!map_tok_is(mp, ']')) {
            rc = map_expected(mp, "']'");
            goto fail;
        }
        if ((rc = map_next(mp)) != 0) {
            goto fail;
        }
    }
    if (!map_tok_is(mp, '=')) {
        rc = map_expected(mp, "'='");
        goto fail;
    }
    if ((rc = map_next(mp)) != 0) {
        goto fail;
    }

    /* skynet reads "__" keys as options and every other key as a node,
     * whose value must be an address or false; skc adds groups. */
    int option = e.name[0] == '_' && e.name[1] == '_';
    if (option && map_tok_is(mp, '{')) {
        char quoted[MAP_NEAR_BUF];
        map_near(quoted, e.name, strlen(e.name));
        rc = map_fail(mp, mp->tok.line, "option %s cannot be a group", quoted);
    } else if (map_tok_is(mp, '{')) {
        rc = map_parse_group(mp, &e);
    } else {
        rc = map_parse_scalar(mp, &e, option);
    }
    if (rc == 0 && (rc = map_push(mp, &e)) == 0) {
        return 0;
    }

fail:
    map_entry_clear(&e);
    return rc;
}

/* Parses `return { ... }` up to the end of input; the current token is
 * `return`. */
static int
map_parse_return(struct map_parser *mp)
{
    int rc;

    if ((rc = map_next(mp)) != 0) {
        return rc;
    }
    if (!map_tok_is(mp, '{')) {
        return map_expected(mp, "'{'");
    }
    if ((rc = map_next(mp)) != 0) {
        return rc;
    }
    while (!map_tok_is(mp, '}')) {
        if (mp->tok.type == MAP_TEOF) {
            return map_expected(mp, "'}'");
        }
        if ((rc = map_parse_entry(mp)) != 0) {
            return rc;
        }
        if (map_tok_is(mp, ',') || map_tok_is(mp, ';')) {
            if ((rc = map_next(mp)) != 0) {
                return rc;
            }
        } else if (!map_tok_is(mp, '}')) {
            return map_expected(mp, "'}'");
        }
    }
    if ((rc = map_next(mp)) != 0) {
        return rc;
    }
    /* Lua allows one ';' after a return, and nothing else. */
    if (map_tok_is(mp, ';') && (rc = map_next(mp)) != 0) {
        return rc;
    }
    if (map_tok_is_word(mp, "return")) {
        return map_fail(mp, mp->tok.line, "duplicate return");
    }
    if (mp->tok.type != MAP_TEOF) {
        return map_expected(mp, "end of file");
    }
    return 0;
}

static int
map_cmp_entry(const void *a, const void *b)
{
    const skci_map_entry *x = *(const skci_map_entry *const *)a;
    const skci_map_entry *y = *(const skci_map_entry *const *)b;
    int c = strcmp(x->name, y->name);

    if (c != 0) {
        return c;
    }
    /* Same array, so comparing addresses is defined: source order. */
    return x < y ? -1 : x > y;
}

/* Keeps only the last entry for each key, in source order of those last
 * entries.  Sorting instead of a pairwise scan keeps a huge map at
 * O(n log n). */
static int
map_merge_repeats(struct map_parser *mp)
{
    skci_map_entry **byname;
    size_t kept = 0;

    if (mp->n < 2) {
        return 0;
    }
    if ((byname = malloc(mp->n * sizeof(*byname))) == NULL) {
        return map_nomem(mp);
    }
    for (size_t i = 0; i < mp->n; i++) {
        byname[i] = &mp->v[i];
    }
    qsort(byname, mp->n, sizeof(*byname), map_cmp_entry);
    for (size_t i = 0; i + 1 < mp->n; i++) {
        if (strcmp(byname[i]->name, byname[i + 1]->name) == 0) {
            map_entry_clear(byname[i]);
        }
    }
    free(byname);
    for (size_t i = 0; i < mp->n; i++) {
        if (mp->v[i].name != NULL) {
            mp->v[kept++] = mp->v[i];
        }
    }
    mp->n = kept;
    return 0;
}

static int
map_cmp_group_name(const void *key, const void *elem)
{
    const skci_map_entry *e = *(const skci_map_entry *const *)elem;

    return strcmp((const char *)key, e->name);
}

/* Rejects a group with a member that is a group of this text, after the
 * merge, so only the last assignment of each name counts.  A group of an
 * earlier map is the caller's to check (map.h). */
static int
map_check_nesting(struct map_parser *mp)
{
    skci_map_entry **groups;
    size_t ng = 0;
    int rc = 0;

    for (size_t i = 0; i < mp->n; i++) {
        ng += mp->v[i].kind == SKCI_MAP_GROUP;
    }
    if (ng == 0) {
        return 0;
    }
    if ((groups = malloc(ng * sizeof(*groups))) == NULL) {
        return map_nomem(mp);
    }
    ng = 0;
    for (size_t i = 0; i < mp->n; i++) {
        if (mp->v[i].kind == SKCI_MAP_GROUP) {
            groups[ng++] = &mp->v[i];
        }
    }
    qsort(groups, ng, sizeof(*groups), map_cmp_entry);
    for (size_t i = 0; i < mp->n && rc == 0; i++) {
        const skci_map_entry *e = &mp->v[i];
        for (size_t k = 0; k < e->nmembers && rc == 0; k++) {
            skci_map_entry **hit = bsearch(e->members[k], groups, ng,
                sizeof(*groups), map_cmp_group_name);
            if (hit != NULL) {
                char gname[MAP_NEAR_BUF];
                char mname[MAP_NEAR_BUF];
                map_near(gname, e->name, strlen(e->name));
                map_near(mname, e->members[k], strlen(e->members[k]));
                rc = map_fail(mp, e->line,
                    "group %s: member %s is itself a group (line %d); a group's members must be nodes",
                    gname, mname, (*hit)->line);
            }
        }
    }
    free(groups);
    return rc;
}

int
skci_map_parse(skci_map_list *out, const char *text, size_t len,
    const char *origin, char *err, size_t errlen)
{
    struct map_parser mp;
    int rc;

    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (out == NULL || (text == NULL && len > 0)) {
        map_set_err(err, errlen, "map parse: NULL argument");
        return SKC_EINVAL;
    }
    out->v = NULL;
    out->n = 0;

    if (text == NULL) {
        text = ""; /* NULL + 0 is undefined behaviour */
    }
    memset(&mp, 0, sizeof(mp));
    mp.p = text;
    mp.end = text + len;
    mp.line = 1;
    mp.origin = origin != NULL ? origin : "(map)";
    mp.err = err;
    mp.errlen = errlen;

    /* Editors on some systems start UTF-8 files with a BOM; Lua's
     * loadfile skips it too. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        mp.p += 3;
    }

    if ((rc = map_next(&mp)) != 0) {
        goto done;
    }
    while (mp.tok.type != MAP_TEOF) {
        if (map_tok_is(&mp, ';')) {
            rc = map_next(&mp);
        } else if (map_tok_is_word(&mp, "return")) {
            rc = map_parse_return(&mp);
            break;
        } else {
            rc = map_parse_entry(&mp);
        }
        if (rc != 0) {
            break;
        }
    }
    if (rc == 0) {
        rc = map_merge_repeats(&mp);
    }
    if (rc == 0) {
        rc = map_check_nesting(&mp);
    }

done:
    free(mp.scratch);
    if (rc != 0) {
        map_entries_free(mp.v, mp.n);
        return rc;
    }
    out->v = mp.v;
    out->n = mp.n;
    return 0;
}

void
skci_map_list_free(skci_map_list *list)
{
    if (list == NULL) {
        return;
    }
    map_entries_free(list->v, list->n);
    list->v = NULL;
    list->n = 0;
}

const char *
skci_group_policy_name(int policy)
{
    if (policy < 0 ||
        (size_t)policy >= sizeof(map_policies) / sizeof(map_policies[0])) {
        return "unknown";
    }
    return map_policies[policy];
}

int
skci_group_policy_parse(const char *s, int *policy)
{
    int p;

    if (s == NULL || policy == NULL ||
        (p = map_policy_lookup(s, strlen(s))) < 0) {
        return -1;
    }
    *policy = p;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Files                                                                  */
/* ---------------------------------------------------------------------- */

int
skci_map_read_file(
    char **out, size_t *len, const char *path, char *err, size_t errlen)
{
    /* One byte past the limit proves the file too large without reading
     * all of it; one more holds the NUL. */
    const size_t limit = MAP_FILE_MAX + 1;
    size_t cap = 4096;
    size_t n = 0;
    char *buf;
    FILE *f;
    int e;

    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (out == NULL || len == NULL || path == NULL) {
        map_set_err(err, errlen, "map read: NULL argument");
        return SKC_EINVAL;
    }
    *out = NULL;
    *len = 0;
    if ((f = fopen(path, "rb")) == NULL) {
        e = errno;
        map_set_err(err, errlen, "%s: %s", path, strerror(e));
        return SKC_EIO;
    }
    if ((buf = malloc(cap)) == NULL) {
        fclose(f);
        map_set_err(err, errlen, "%s: out of memory", path);
        return SKC_ENOMEM;
    }
    for (;;) {
        if (n == cap - 1) {
            size_t ncap = cap * 2 < limit + 1 ? cap * 2 : limit + 1;
            char *nb = realloc(buf, ncap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                map_set_err(err, errlen, "%s: out of memory", path);
                return SKC_ENOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        size_t want = cap - 1 - n;
        errno = 0;
        size_t got = fread(buf + n, 1, want, f);
        n += got;
        if (n > MAP_FILE_MAX) {
            free(buf);
            fclose(f);
            map_set_err(err, errlen, "%s: file too large", path);
            return SKC_EIO;
        }
        if (got < want) {
            if (ferror(f)) {
                e = errno != 0 ? errno : EIO;
                free(buf);
                fclose(f);
                map_set_err(err, errlen, "%s: %s", path, strerror(e));
                return SKC_EIO;
            }
            break;
        }
    }
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}
