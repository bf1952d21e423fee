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
#include "maplex.h"

#include "error.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Indexed by SKCI_GROUP_*. */
static const char *const map_policies[] = { "failover", "roundrobin",
    "random" };

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

void
skci_map_entry_clear(skci_map_entry *e)
{
    free(e->name);
    free(e->value);
    for (size_t i = 0; i < e->nmembers; i++) {
        free(e->members[i]);
    }
    free(e->members);
    memset(e, 0, sizeof(*e));
}

static void
map_entries_free(skci_map_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        skci_map_entry_clear(&v[i]);
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
    skci_map_entry_clear(&e);
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
            skci_map_entry_clear(byname[i]);
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
