/* maplex.c -- the cluster-map lexer and its messages: tokens of the
 * subset of Lua map files use, and "file:line: expected ... near 'x'".
 * See map.c for the invariants both keep.
 */
#include "maplex.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const map_keywords[] = { "and", "break", "do", "else",
    "elseif", "end", "false", "for", "function", "goto", "if", "in", "local",
    "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" };

/* ---------------------------------------------------------------------- */
/* Messages                                                               */
/* ---------------------------------------------------------------------- */

void
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
void
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

int
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
int
map_fail_near(struct map_parser *mp, int line, const char *what,
    const char *src, size_t srclen)
{
    char near[MAP_NEAR_BUF];

    map_near(near, src, srclen);
    return map_fail(mp, line, "%s near %s", what, near);
}

/* "<origin>:<line>: expected <what> near '<current token>'". */
int
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

int
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
 * follows it.  Longer than 80 lines on purpose: one case per Lua escape,
 * read top to bottom against the Lua manual's list. */
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

/* Advances to the next token.  Returns 0 or an error (message set).
 * One switch over the first byte of a token, kept whole (a bit over 80
 * lines) so the token grammar reads in one place. */
int
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

int
map_tok_is(const struct map_parser *mp, int ch)
{
    return mp->tok.type == MAP_TPUNCT && mp->tok.ch == ch;
}

int
map_tok_is_word(const struct map_parser *mp, const char *word)
{
    size_t n = strlen(word);

    return mp->tok.type == MAP_TNAME && mp->tok.srclen == n &&
        memcmp(mp->tok.src, word, n) == 0;
}

int
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
