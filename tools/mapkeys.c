/* mapkeys.c -- the names a cluster-map file defines, in file order, for
 * `skc map` (cli.h).
 *
 * skc's C API can look an entry up (skc_node_map_get) but not list them,
 * so `skc map` loads the file into a node (which checks it, with
 * file:line errors) and asks for each name found here.  This is only a
 * lexer for the map format (lib/map.c is the parser): it skips comments
 * and strings (short and long forms), counts braces, and takes as a name
 * every `name =` or `["name"] =` at the top level of the file, or at the
 * first level of the table after `return`.  Members and `policy =` inside
 * a group's braces are one level deeper, so they are not names.  A name
 * found here that the node does not know is left out by the caller. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lex {
    const char *p, *end;
} lex;

/* Length of a long bracket opening `[==[` at p (0 if none); *level gets
 * the number of '='. */
static size_t
long_open(const char *p, const char *end, int *level)
{
    const char *q = p + 1;
    if (p >= end || *p != '[') {
        return 0;
    }
    *level = 0;
    while (q < end && *q == '=') {
        (*level)++;
        q++;
    }
    return q < end && *q == '[' ? (size_t)(q + 1 - p) : 0;
}

/* Skips to just after the long bracket close of `level`. */
static void
long_skip(lex *x, int level)
{
    while (x->p < x->end) {
        if (*x->p == ']') {
            const char *q = x->p + 1;
            int n = 0;
            while (q < x->end && *q == '=') {
                n++;
                q++;
            }
            if (n == level && q < x->end && *q == ']') {
                x->p = q + 1;
                return;
            }
        }
        x->p++;
    }
}

/* Skips whitespace and comments. */
static void
skip_blank(lex *x)
{
    while (x->p < x->end) {
        char c = *x->p;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
            c == '\v') {
            x->p++;
        } else if (c == '-' && x->end - x->p >= 2 && x->p[1] == '-') {
            int level;
            size_t n;
            x->p += 2;
            if ((n = long_open(x->p, x->end, &level)) > 0) {
                x->p += n;
                long_skip(x, level);
            } else {
                while (x->p < x->end && *x->p != '\n') {
                    x->p++;
                }
            }
        } else {
            return;
        }
    }
}

/* A quoted string at x->p: its contents go to s and len (escapes are left
 * as they are: map names do not need them). */
static void
quoted(lex *x, const char **s, size_t *len)
{
    char q = *x->p++;
    *s = x->p;
    while (x->p < x->end && *x->p != q && *x->p != '\n') {
        if (*x->p == '\\' && x->p + 1 < x->end) {
            x->p++;
        }
        x->p++;
    }
    *len = (size_t)(x->p - *s);
    if (x->p < x->end) {
        x->p++;
    }
}

static int
is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int
is_ident(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* Whether the next token is a single '=' (not '=='). */
static int
next_is_assign(lex *x)
{
    skip_blank(x);
    return x->p < x->end && *x->p == '=' &&
        (x->p + 1 >= x->end || x->p[1] != '=');
}

static int
add_name(cli_names *out, const char *s, size_t len)
{
    for (size_t i = 0; i < out->count; i++) {
        if (strlen(out->names[i]) == len &&
            memcmp(out->names[i], s, len) == 0) {
            return 0;
        }
    }
    char **grown = realloc(out->names, (out->count + 1) * sizeof(char *));
    if (grown == NULL) {
        return -1;
    }
    out->names = grown;
    if ((out->names[out->count] = strndup(s, len)) == NULL) {
        return -1;
    }
    out->count++;
    return 0;
}

int
cli_map_names(cli_names *out, const char *text, size_t len)
{
    lex x = { text, text + len };
    int depth = 0, level = 0; /* names are at depth == level */
    out->names = NULL;
    out->count = 0;
    for (;;) {
        skip_blank(&x);
        if (x.p >= x.end) {
            return 0;
        }
        char c = *x.p;
        const char *s;
        size_t n;
        int lv;
        if (c == '"' || c == '\'') {
            quoted(&x, &s, &n);
        } else if (c == '[' && (n = long_open(x.p, x.end, &lv)) > 0) {
            x.p += n;
            long_skip(&x, lv);
        } else if (c == '[') {
            /* ["name"] = ... */
            x.p++;
            skip_blank(&x);
            if (x.p < x.end && (*x.p == '"' || *x.p == '\'')) {
                quoted(&x, &s, &n);
                skip_blank(&x);
                if (x.p < x.end && *x.p == ']') {
                    x.p++;
                    if (depth == level && next_is_assign(&x) &&
                        add_name(out, s, n) != 0) {
                        return -1;
                    }
                }
            }
        } else if (is_ident_start(c)) {
            s = x.p;
            while (x.p < x.end && is_ident(*x.p)) {
                x.p++;
            }
            n = (size_t)(x.p - s);
            if (n == 6 && memcmp(s, "return", 6) == 0 && depth == 0) {
                level = 1;
            } else if (depth == level && next_is_assign(&x) &&
                add_name(out, s, n) != 0) {
                return -1;
            }
        } else {
            if (c == '{') {
                depth++;
            } else if (c == '}' && depth > 0) {
                depth--;
            } else if (c == '=') {
                /* skip '==' as one token */
                if (x.p + 1 < x.end && x.p[1] == '=') {
                    x.p++;
                }
            }
            x.p++;
        }
    }
}

int
cli_lines(cli_names *out, const char *text, size_t len)
{
    const char *end = text + len;
    out->names = NULL;
    out->count = 0;
    while (text < end) {
        const char *nl = memchr(text, '\n', (size_t)(end - text));
        size_t l = nl != NULL ? (size_t)(nl - text) : (size_t)(end - text);
        if (l > 0 && add_name(out, text, l) != 0) {
            return -1;
        }
        text += l + 1;
    }
    return 0;
}

void
cli_names_free(cli_names *names)
{
    for (size_t i = 0; i < names->count; i++) {
        free(names->names[i]);
    }
    free(names->names);
    names->names = NULL;
    names->count = 0;
}
