/* maplex.h -- what the cluster-map parser (map.c) and its lexer and
 * messages (maplex.c) share: the token, the parser state, and the lexer's
 * entry points.  Private to those two files.
 */
#ifndef SKC_LIB_MAPLEX_H
#define SKC_LIB_MAPLEX_H

#include "error.h"
#include "map.h"

#include <stddef.h>

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

int map_expected(struct map_parser *mp, const char *what);
int map_fail(struct map_parser *mp, int line, const char *fmt, ...)
    SKCI_PRINTF(3, 4);
int map_fail_near(struct map_parser *mp, int line, const char *what,
    const char *src, size_t srclen);
void map_near(char *buf, const char *s, size_t len);
int map_next(struct map_parser *mp);
int map_nomem(struct map_parser *mp);
void map_set_err(char *err, size_t errlen, const char *fmt, ...)
    SKCI_PRINTF(3, 4);
int map_tok_is(const struct map_parser *mp, int ch);
int map_tok_is_keyword(const struct map_parser *mp);
int map_tok_is_word(const struct map_parser *mp, const char *word);

#endif
