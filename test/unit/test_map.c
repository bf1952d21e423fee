/* test_map.c -- cluster-map parser, address normalisation, file reading.
 *
 * Texts are parsed from exact-size heap copies, so ASan reports any read
 * past the end (the parser must not rely on a NUL terminator).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "map.h"
#include "url.h"
#include "skc/skc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ERRLEN 256

static const char seed_map[] =
    "-- 定义集群节点地址\n"
    "return {\n"
    "  gate = \"127.0.0.1:7101\",  -- 网关节点\n"
    "  db   = \"127.0.0.1:7102\",  -- 数据库节点\n"
    "  -- 可动态添加新节点,例如:\n"
    "  -- cache = \"192.168.1.100:7103\",\n"
    "}\n";

static const char skynet_map[] =
    "__nowaiting = true\n"
    "db = \"127.0.0.1:2528\"\n"
    "db2 = \"127.0.0.1:2529\"\n"
    "old = false\n"
    "[\"node-with-dash\"] = \"ipc:///tmp/x.sock\"\n"
    "--[[ block\n"
    "comment ]]\n";

/* Parses len bytes from an exact-size heap copy. */
static int
parse_n(skci_map_list *l, const char *text, size_t len, char *err,
    size_t errlen)
{
    char *copy = malloc(len > 0 ? len : 1);
    int rc;

    assert_non_null(copy);
    if (len > 0) {
        memcpy(copy, text, len);
    }
    rc = skci_map_parse(l, copy, len, "t.lua", err, errlen);
    free(copy);
    return rc;
}

static int
parse(skci_map_list *l, const char *text, char *err)
{
    return parse_n(l, text, strlen(text), err, ERRLEN);
}

static const skci_map_entry *
find(const skci_map_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].name, name) == 0) {
            return &l->v[i];
        }
    }
    return NULL;
}

static void
check_entry(const skci_map_list *l, const char *name, int kind,
    const char *value, int line)
{
    const skci_map_entry *e = find(l, name);

    if (e == NULL) {
        fail_msg("no entry '%s'", name);
    }
    assert_int_equal(e->kind, kind);
    if (value == NULL) {
        assert_null(e->value);
    } else {
        assert_non_null(e->value);
        assert_string_equal(e->value, value);
    }
    if (line > 0) {
        assert_int_equal(e->line, line);
    }
}

static void
check_error_n(const char *text, size_t len, const char *msg)
{
    skci_map_list l = { (skci_map_entry *)&l, 99 }; /* must be cleared */
    char err[ERRLEN];
    int rc = parse_n(&l, text, len, err, sizeof(err));

    if (rc != SKC_ESYNTAX) {
        fail_msg("rc %d for <%s>, err '%s'", rc, text, rc ? err : "");
    }
    assert_null(l.v);
    assert_int_equal(l.n, 0);
    assert_string_equal(err, msg);
}

static void
check_error(const char *text, const char *msg)
{
    check_error_n(text, strlen(text), msg);
}

/* ---------------------------------------------------------------------- */

static void
test_seed_example(void **state)
{
    skci_map_list l;
    char err[ERRLEN];

    (void)state;
    assert_int_equal(parse(&l, seed_map, err), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0].name, "gate");
    assert_string_equal(l.v[1].name, "db");
    check_entry(&l, "gate", SKCI_MAP_ADDR, "127.0.0.1:7101", 3);
    check_entry(&l, "db", SKCI_MAP_ADDR, "127.0.0.1:7102", 4);
    assert_null(find(&l, "cache"));
    skci_map_list_free(&l);
    assert_null(l.v);
    assert_int_equal(l.n, 0);
    skci_map_list_free(&l); /* empty list again: fine */
    skci_map_list_free(NULL);
}

static void
test_skynet_example(void **state)
{
    skci_map_list l;
    char err[ERRLEN];

    (void)state;
    assert_int_equal(parse(&l, skynet_map, err), 0);
    assert_int_equal(l.n, 5);
    check_entry(&l, "__nowaiting", SKCI_MAP_TRUE, NULL, 1);
    check_entry(&l, "db", SKCI_MAP_ADDR, "127.0.0.1:2528", 2);
    check_entry(&l, "db2", SKCI_MAP_ADDR, "127.0.0.1:2529", 3);
    check_entry(&l, "old", SKCI_MAP_DOWN, NULL, 4);
    check_entry(&l, "node-with-dash", SKCI_MAP_ADDR, "ipc:///tmp/x.sock", 5);
    skci_map_list_free(&l);
}

static void
test_both_forms_and_later_wins(void **state)
{
    skci_map_list l;
    char err[ERRLEN];
    const char *text = "a = 'x'\n"
                       "b = 'y'\n"
                       "c = 'keep'\n"
                       "a = 'x2'\n"
                       "return {\n"
                       "  b = false,\n"
                       "  ['a'] = 'z';\n"
                       "  d = \"h:1\",\n"
                       "  a = 'w',\n"
                       "};\n";

    (void)state;
    assert_int_equal(parse(&l, text, err), 0);
    /* One entry per key, ordered by each key's last assignment. */
    assert_int_equal(l.n, 4);
    assert_string_equal(l.v[0].name, "c");
    assert_string_equal(l.v[1].name, "b");
    assert_string_equal(l.v[2].name, "d");
    assert_string_equal(l.v[3].name, "a");
    check_entry(&l, "a", SKCI_MAP_ADDR, "w", 9);
    check_entry(&l, "b", SKCI_MAP_DOWN, NULL, 6);
    check_entry(&l, "c", SKCI_MAP_ADDR, "keep", 3);
    check_entry(&l, "d", SKCI_MAP_ADDR, "h:1", 8);
    skci_map_list_free(&l);
}

static void
test_escapes(void **state)
{
    skci_map_list l;
    char err[ERRLEN];
    const char *text =
        "a = \"\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\\'\"\n"
        "b = '\\65\\066\\0377\\255'\n"
        "c = '\\x41\\x6a\\x7E\\xff'\n"
        "d = \"\\u{48}\\u{20AC}\\u{10FFFF}\\u{7FFFFFFF}\\u{000041}\"\n"
        "e = 'x\\z   \n\n   y\\z'\n"
        "f = 'line1\\\nline2\\\r\nline3'\n"
        "g = 'it\\'s \"quoted\"'\n"
        "h = \"it's \\\"quoted\\\"\"\n"
        "i = ''\n"
        "j = 'after'\n";

    (void)state;
    assert_int_equal(parse(&l, text, err), 0);
    assert_int_equal(l.n, 10);
    check_entry(&l, "a", SKCI_MAP_ADDR, "\a\b\f\n\r\t\v\\\"'", 1);
    /* Decimal, not octal: \037 is 37, a percent sign. */
    check_entry(&l, "b", SKCI_MAP_ADDR, "AB%7\xff", 2);
    check_entry(&l, "c", SKCI_MAP_ADDR, "Aj~\xff", 3);
    check_entry(&l, "d", SKCI_MAP_ADDR,
        "H\xE2\x82\xAC\xF4\x8F\xBF\xBF\xFD\xBF\xBF\xBF\xBF\xBF"
        "A",
        4);
    check_entry(&l, "e", SKCI_MAP_ADDR, "xy", 5);
    check_entry(&l, "f", SKCI_MAP_ADDR, "line1\nline2\nline3", 8);
    check_entry(&l, "g", SKCI_MAP_ADDR, "it's \"quoted\"", 11);
    check_entry(&l, "h", SKCI_MAP_ADDR, "it's \"quoted\"", 12);
    check_entry(&l, "i", SKCI_MAP_ADDR, "", 13);
    check_entry(&l, "j", SKCI_MAP_ADDR, "after", 14);
    skci_map_list_free(&l);
}

static void
test_long_strings_and_comments(void **state)
{
    skci_map_list l;
    char err[ERRLEN];
    const char *text = "a = [[host:1]]\n"
                       "b = [==[x]]y]=]z]===]w]==]\n"
                       "c = [[\nfirst newline dropped]]\n"
                       "d = [=[\r\nCRLF dropped too]=]\n"
                       "--[==[ a comment with ]] and ]=] inside\n"
                       "e = 'not a value'\n"
                       "]==] e = [[\\n stays raw]]\n"
                       "--[=x this is a line comment, not a long one\n"
                       "--[ also a line comment\n"
                       "--[[]] f = 'after an empty long comment'\n"
                       "g = [[two\nlines]] h = true\n";

    (void)state;
    /* h = true is an error (not an option): check the rest first. */
    assert_int_equal(parse(&l, text, err), SKC_ESYNTAX);
    assert_string_equal(
        err, "t.lua:14: expected an address string or false near 'true'");
    {
        size_t len = strlen(text) - strlen(" h = true\n");
        assert_int_equal(parse_n(&l, text, len, err, sizeof(err)), 0);
    }
    assert_int_equal(l.n, 7);
    check_entry(&l, "a", SKCI_MAP_ADDR, "host:1", 1);
    check_entry(&l, "b", SKCI_MAP_ADDR, "x]]y]=]z]===]w", 2);
    check_entry(&l, "c", SKCI_MAP_ADDR, "first newline dropped", 3);
    check_entry(&l, "d", SKCI_MAP_ADDR, "CRLF dropped too", 5);
    check_entry(&l, "e", SKCI_MAP_ADDR, "\\n stays raw", 9);
    check_entry(&l, "f", SKCI_MAP_ADDR, "after an empty long comment", 12);
    check_entry(&l, "g", SKCI_MAP_ADDR, "two\nlines", 13);
    skci_map_list_free(&l);
}

static void
test_separators(void **state)
{
    skci_map_list l;
    char err[ERRLEN];

    (void)state;
    assert_int_equal(parse(&l,
                         ";; a = 'x'; b = 'y';;\n"
                         "c = 'z' d = false\n"
                         "return { e = 'p'; f = 'q', g = 'r'; };",
                         err),
        0);
    assert_int_equal(l.n, 7);
    check_entry(&l, "d", SKCI_MAP_DOWN, NULL, 2);
    check_entry(&l, "g", SKCI_MAP_ADDR, "r", 3);
    skci_map_list_free(&l);

    assert_int_equal(parse(&l, "return {}", err), 0);
    assert_int_equal(l.n, 0);
    skci_map_list_free(&l);
    assert_int_equal(parse(&l, "return{a='b'}", err), 0);
    assert_int_equal(l.n, 1);
    skci_map_list_free(&l);
}

static void
test_empty_and_comments_only(void **state)
{
    skci_map_list l;
    char err[ERRLEN];

    (void)state;
    /* Empty strings before any other string (no scratch buffer yet). */
    assert_int_equal(parse(&l, "x = ''", err), 0);
    check_entry(&l, "x", SKCI_MAP_ADDR, "", 1);
    skci_map_list_free(&l);
    assert_int_equal(parse(&l, "x = [[]]", err), 0);
    check_entry(&l, "x", SKCI_MAP_ADDR, "", 1);
    skci_map_list_free(&l);

    assert_int_equal(parse_n(&l, "", 0, err, sizeof(err)), 0);
    assert_int_equal(l.n, 0);
    skci_map_list_free(&l);
    assert_int_equal(skci_map_parse(&l, NULL, 0, NULL, err, sizeof(err)), 0);
    assert_int_equal(l.n, 0);

    assert_int_equal(parse(&l, " \t\r\n\f\v\n", err), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(parse(&l,
                         "-- only comments\n"
                         "--[[ 多行\n注释 ]]\n"
                         "--[==[\n]]\n]==]\n"
                         "-- last line without newline",
                         err),
        0);
    assert_int_equal(l.n, 0);
    assert_int_equal(parse(&l, "--", err), 0);
    assert_int_equal(parse(&l, "\xEF\xBB\xBF-- BOM\n", err), 0);
    assert_int_equal(l.n, 0);
    skci_map_list_free(&l);
}

static void
test_utf8_bom_crlf(void **state)
{
    skci_map_list l;
    char err[ERRLEN];

    (void)state;
    assert_int_equal(parse(&l,
                         "\xEF\xBB\xBF"
                         "[\"节点\"] = \"主机:1\" -- 注释\r\n"
                         "['ключ'] = [[значение]]\r\n"
                         "ascii = 'ünïcödé'\r\n",
                         err),
        0);
    assert_int_equal(l.n, 3);
    check_entry(&l, "节点", SKCI_MAP_ADDR, "主机:1", 1);
    check_entry(&l, "ключ", SKCI_MAP_ADDR, "значение", 2);
    check_entry(&l, "ascii", SKCI_MAP_ADDR, "ünïcödé", 3);
    skci_map_list_free(&l);
    check_error("a = 'x'\r\n\r\nb = true",
        "t.lua:3: expected an address string or false near 'true'");
    /* Line breaks as Lua counts them: CR, LF, CR LF, LF CR. */
    check_error("a = 'x'\rb = 'y'\n\r\n\nc = true",
        "t.lua:5: expected an address string or false near 'true'");
    check_error("-- c\r--[[\r\n\n\r]]\rb = true",
        "t.lua:5: expected an address string or false near 'true'");
    /* ... and, in long strings, each break becomes one LF. */
    assert_int_equal(parse(&l, "a = [[\r\nx\r\ny\rz\n\rw\n\n]]", err), 0);
    check_entry(&l, "a", SKCI_MAP_ADDR, "x\ny\nz\nw\n\n", 1);
    skci_map_list_free(&l);
    check_error("x = 节点",
        "t.lua:1: expected an address string or false near '节'");
}

static void
test_options(void **state)
{
    skci_map_list l;
    char err[ERRLEN];

    (void)state;
    assert_int_equal(parse(&l,
                         "__nowaiting = false\n"
                         "__n = 42; __m = - 7; __z = 007\n"
                         "__s = 'text'\n"
                         "__ = true\n"
                         "return { __nowaiting = true }",
                         err),
        0);
    assert_int_equal(l.n, 6);
    check_entry(&l, "__nowaiting", SKCI_MAP_TRUE, NULL, 5);
    check_entry(&l, "__n", SKCI_MAP_NUMBER, "42", 2);
    check_entry(&l, "__m", SKCI_MAP_NUMBER, "-7", 2);
    check_entry(&l, "__z", SKCI_MAP_NUMBER, "007", 2);
    check_entry(&l, "__s", SKCI_MAP_ADDR, "text", 3);
    check_entry(&l, "__", SKCI_MAP_TRUE, NULL, 4);
    skci_map_list_free(&l);
    /* One underscore is a node name, not an option. */
    check_error("_x = true",
        "t.lua:1: expected an address string or false near 'true'");
}

static void
test_errors(void **state)
{
    (void)state;
    check_error("return {\n  gate \"127.0.0.1:7101\",\n}",
        "t.lua:2: expected '=' near '\"127.0.0.1:7101\"'");
    check_error("foo\ngate = \"x\"", "t.lua:2: expected '=' near 'gate'");
    check_error("x", "t.lua:1: expected '=' near <eof>");
    check_error("db = true",
        "t.lua:1: expected an address string or false near 'true'");
    check_error("\n\ndb = 5",
        "t.lua:3: expected an address string or false near '5'");
    check_error("db = -5",
        "t.lua:1: expected an address string or false near '-'");
    check_error("x = nil",
        "t.lua:1: expected an address string or false near 'nil'");
    check_error("x =\n", "t.lua:2: expected an address string or false "
                         "near <eof>");
    check_error("x = @",
        "t.lua:1: expected an address string or false near '@'");
    check_error_n("x = \0", 5,
        "t.lua:1: expected an address string or false near '?'");
    check_error("x = {}",
        "t.lua:1: group 'x': a group needs at least one member");
    check_error("__x = {}", "t.lua:1: option '__x' cannot be a group");
    check_error("__x = -'a'", "t.lua:1: expected a number near ''a''");
    check_error("__x = 1.5", "t.lua:1: malformed number near '1.5'");
    check_error("__x = 0x10", "t.lua:1: malformed number near '0x10'");
    check_error("__x = 12ab", "t.lua:1: malformed number near '12ab'");

    check_error("a = 'x'\nb = \"abc\n\"", "t.lua:2: unfinished string");
    check_error("a = 'abc", "t.lua:1: unfinished string");
    check_error("a = 'abc\\", "t.lua:1: unfinished string");
    check_error("a = 'abc\\z  \n", "t.lua:1: unfinished string");
    check_error("a = 'abc\rdef'", "t.lua:1: unfinished string");
    check_error("\n--[==[ x\n]] \n", "t.lua:2: unfinished long comment");
    check_error("--[[", "t.lua:1: unfinished long comment");
    check_error("a = [[x\n\n", "t.lua:1: unfinished long string");
    check_error("\na = [=[x]]", "t.lua:2: unfinished long string");
    check_error("x = [==x", "t.lua:1: invalid long string delimiter "
                            "near '[=='");

    check_error("x = 'a\\qb'",
        "t.lua:1: invalid escape sequence near '\\q'");
    check_error("x = '\\xZZ'",
        "t.lua:1: hexadecimal digit expected near '\\xZ'");
    check_error("x = '\\x4Z'",
        "t.lua:1: hexadecimal digit expected near '\\x4Z'");
    check_error("x = '\\256'",
        "t.lua:1: decimal escape too large near '\\256'");
    check_error("x = '\\u{80000000}'",
        "t.lua:1: UTF-8 value too large near '\\u{80000000'");
    check_error("x = '\\u48'",
        "t.lua:1: missing '{' in \\u{xxxx} near '\\u4'");
    check_error("x = \"\\u{48\"",
        "t.lua:1: missing '}' in \\u{xxxx} near '\\u{48\"'");
    check_error("x = '\\u{}'",
        "t.lua:1: hexadecimal digit expected near '\\u{}'");
    /* The line of an escape error is where the escape is. */
    check_error("x = 'a\\z\n\n  \\q'",
        "t.lua:3: invalid escape sequence near '\\q'");

    check_error("return {}\nreturn {}", "t.lua:2: duplicate return");
    check_error("return { a = 'x' };\n\n  return { b = 'y' }",
        "t.lua:3: duplicate return");
    check_error("return { a = 'x' }\nb = 'y'",
        "t.lua:2: expected end of file near 'b'");
    check_error("return { a = 'x' };;",
        "t.lua:1: expected end of file near ';'");
    check_error("return\n[[x]]", "t.lua:2: expected '{' near '[[x]]'");
    check_error("return", "t.lua:1: expected '{' near <eof>");
    check_error("return { a = 'x' b = 'y' }",
        "t.lua:1: expected '}' near 'b'");
    check_error("return { a = 'x',\n", "t.lua:2: expected '}' near <eof>");
    check_error("return { 'x' }", "t.lua:1: expected a name near ''x''");
    check_error("return { a = { b = 'c' } }",
        "t.lua:1: group 'a': unknown field 'b' (only policy is allowed)");
    check_error("return { , }", "t.lua:1: expected a name near ','");

    check_error("[42] = 'x'", "t.lua:1: expected a string near '42'");
    check_error("['a' = 'x'", "t.lua:1: expected ']' near '='");
    check_error("local x = 'y'", "t.lua:1: expected a name near 'local'");
    check_error("true = 'y'", "t.lua:1: expected a name near 'true'");
    check_error("a, b = 'x', 'y'", "t.lua:1: expected '=' near ','");
    check_error("a = 'x', b = 'y'", "t.lua:1: expected a name near ','");
    check_error("= 'x'", "t.lua:1: expected a name near '='");
    check_error("['a\\0b'] = 'x'",
        "t.lua:1: expected a name without NUL bytes near ''a\\0b''");
    check_error("x = 'a\\0'",
        "t.lua:1: expected a string without NUL bytes near ''a\\0''");
    check_error_n("x = 'a\0b'", 9,
        "t.lua:1: expected a string without NUL bytes near ''a?b''");

    /* Lines counted across long comments and strings. */
    check_error("--[[\n\n]] x = true",
        "t.lua:3: expected an address string or false near 'true'");
    check_error("a = [[\n\n]] x = true",
        "t.lua:3: expected an address string or false near 'true'");
    /* A long token is cut in the message, at its first line break. */
    check_error("x = [[abc\ndef]] y",
        "t.lua:2: expected '=' near <eof>");
    check_error("return { a = 'x' } [[abc\ndef]]",
        "t.lua:1: expected end of file near '[[abc...'");
    check_error("return { a = 'x' } 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'",
        "t.lua:1: expected end of file near "
        "''aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'");
    /* ... on a UTF-8 character boundary. */
    check_error("return { a = 'x' } '123456789012345678901234567890节'",
        "t.lua:1: expected end of file near "
        "''123456789012345678901234567890...'");
}

/* A lexer error must surface (and free what is held) wherever the
 * parser asks for the next token. */
static void
test_lexer_error_positions(void **state)
{
    static const char *const texts[] = {
        "'abc",
        "a 'abc",
        "a = 'abc",
        "a = 'x' 'abc",
        "['abc",
        "['a' 'abc",
        "['a'] 'abc",
        "['a'] = 'abc",
        "__x = -'abc",
        "return 'abc",
        "return { 'abc",
        "return { a 'abc",
        "return { a = 'x' 'abc",
        "return { a = 'x', 'abc",
        "return { a = 'x'; 'abc",
        "return { } 'abc",
        "return { }; 'abc",
        "g = { 'abc",
        "g = { 'a' 'abc",
        "g = { 'a', 'abc",
        "g = { 'a'; 'abc",
        "g = { p 'abc",
        "g = { ['p' 'abc",
        "g = { ['p'] 'abc",
        "g = { policy = 'abc",
        "g = { 'a' } 'abc",
        "return { g = { 'a' }, 'abc",
    };
    static const char *const tails[][2] = {
        { "'abc", "t.lua:1: unfinished string" },
        { "[[abc", "t.lua:1: unfinished long string" },
        { "--[[abc", "t.lua:1: unfinished long comment" },
        { "'\\q'", "t.lua:1: invalid escape sequence near '\\q'" },
        { "[=", "t.lua:1: invalid long string delimiter near '[='" },
        { "1x", "t.lua:1: malformed number near '1x'" },
    };
    char text[128];

    (void)state;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        size_t head = strlen(texts[i]) - strlen("'abc");
        for (size_t k = 0; k < sizeof(tails) / sizeof(tails[0]); k++) {
            /* The space keeps "[" + "[=" from reading as "[[". */
            snprintf(text, sizeof(text), "%.*s %s", (int)head, texts[i],
                tails[k][0]);
            check_error(text, tails[k][1]);
        }
    }
}

static void
test_small_error_buffer(void **state)
{
    skci_map_list l;
    char err[8];

    (void)state;
    memset(err, 'X', sizeof(err));
    assert_int_equal(
        parse_n(&l, "x = true", 8, err, 8), SKC_ESYNTAX);
    assert_string_equal(err, "t.lua:1");
    memset(err, 'X', sizeof(err));
    assert_int_equal(parse_n(&l, "x = true", 8, err, 1), SKC_ESYNTAX);
    assert_int_equal(err[0], '\0');
    assert_int_equal(err[1], 'X');
    assert_int_equal(parse_n(&l, "x = true", 8, NULL, 0), SKC_ESYNTAX);
    assert_int_equal(l.n, 0);
    /* A NULL origin still gives a message. */
    {
        char big[ERRLEN];
        assert_int_equal(skci_map_parse(&l, "x", 1, NULL, big, sizeof(big)),
            SKC_ESYNTAX);
        assert_string_equal(big, "(map):1: expected '=' near <eof>");
    }
    assert_int_equal(skci_map_parse(NULL, "x", 1, "o", NULL, 0),
        SKC_EINVAL);
    assert_int_equal(skci_map_parse(&l, NULL, 1, "o", NULL, 0), SKC_EINVAL);
}

static void
test_key_length(void **state)
{
    skci_map_list l;
    char err[ERRLEN];
    char text[600];
    char name[300];

    (void)state;
    memset(name, 'k', 255);
    name[255] = '\0';

    snprintf(text, sizeof(text), "%s = 'a'", name);
    assert_int_equal(parse(&l, text, err), 0);
    assert_int_equal(strlen(l.v[0].name), 255);
    skci_map_list_free(&l);
    snprintf(text, sizeof(text), "return { ['%s'] = 'a' }", name);
    assert_int_equal(parse(&l, text, err), 0);
    assert_string_equal(l.v[0].name, name);
    skci_map_list_free(&l);

    snprintf(text, sizeof(text), "k%s = 'a'", name);
    check_error(text, "t.lua:1: expected a name of 1 to 255 bytes near "
                      "'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...'");
    snprintf(text, sizeof(text), "\n['k%s'] = 'a'", name);
    check_error(text, "t.lua:2: expected a name of 1 to 255 bytes near "
                      "''kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...'");
    check_error("[''] = 'a'",
        "t.lua:1: expected a name of 1 to 255 bytes near ''''");
    check_error("[[[]]] = 'a'",
        "t.lua:1: expected a name near '[[[]]'");
    /* Any string form works between brackets. */
    assert_int_equal(parse(&l, "[ [[a b]] ] = 'x'", err), 0);
    check_entry(&l, "a b", SKCI_MAP_ADDR, "x", 1);
    skci_map_list_free(&l);
}

static char *
repeat(const char *head, char c, size_t n, const char *tail)
{
    size_t h = strlen(head);
    size_t t = strlen(tail);
    char *s = malloc(h + n + t + 1);

    assert_non_null(s);
    memcpy(s, head, h);
    memset(s + h, c, n);
    memcpy(s + h + n, tail, t + 1);
    return s;
}

/* ---------------------------------------------------------------------- */
/* Groups                                                                 */
/* ---------------------------------------------------------------------- */

/* Checks that `name` is a group with `policy` and exactly the members
 * listed (NULL-terminated varargs), in order. */
static void
check_group(const skci_map_list *l, const char *name, int policy, int line,
    ...)
{
    const skci_map_entry *e = find(l, name);
    va_list ap;
    size_t n = 0;
    const char *m;

    if (e == NULL) {
        fail_msg("no entry '%s'", name);
    }
    assert_int_equal(e->kind, SKCI_MAP_GROUP);
    assert_null(e->value);
    assert_int_equal(e->policy, policy);
    if (line > 0) {
        assert_int_equal(e->line, line);
    }
    va_start(ap, line);
    while ((m = va_arg(ap, const char *)) != NULL) {
        if (n >= e->nmembers) {
            fail_msg("group '%s': missing member '%s'", name, m);
        }
        assert_string_equal(e->members[n], m);
        n++;
    }
    va_end(ap);
    assert_int_equal(e->nmembers, n);
}

/* Entries that are not groups carry no members. */
static void
check_no_members(const skci_map_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].kind != SKCI_MAP_GROUP) {
            assert_null(l->v[i].members);
            assert_int_equal(l->v[i].nmembers, 0);
        }
    }
}

static void
test_groups(void **state)
{
    skci_map_list l;
    char err[ERRLEN];

    (void)state;
    /* The issue's example, statement form. */
    assert_int_equal(
        parse(&l,
            "db_a = \"127.0.0.1:7311\"\n"
            "db_b = \"127.0.0.1:7312\"\n"
            "db   = { \"db_a\", \"db_b\" }  -- failover (default)\n"
            "sdb  = { \"db_a\", \"db_b\", policy = \"roundrobin\" }\n",
            err),
        0);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.v[2].name, "db");
    assert_string_equal(l.v[3].name, "sdb");
    check_entry(&l, "db_a", SKCI_MAP_ADDR, "127.0.0.1:7311", 1);
    check_group(&l, "db", SKCI_GROUP_FAILOVER, 3, "db_a", "db_b", NULL);
    check_group(&l, "sdb", SKCI_GROUP_ROUNDROBIN, 4, "db_a", "db_b", NULL);
    check_no_members(&l);
    skci_map_list_free(&l);
    assert_null(l.v);
    assert_int_equal(l.n, 0);

    /* The return form, with every separator and quoting. */
    assert_int_equal(parse(&l,
                         "return { g = { 'x', \"y\"; policy = 'random', },\n"
                         "  [\"h\"] = {\"x\"} }",
                         err),
        0);
    assert_int_equal(l.n, 2);
    check_group(&l, "g", SKCI_GROUP_RANDOM, 1, "x", "y", NULL);
    check_group(&l, "h", SKCI_GROUP_FAILOVER, 2, "x", NULL);
    skci_map_list_free(&l);

    /* policy anywhere, in either key form; members in any string form. */
    assert_int_equal(
        parse(&l,
            "a = { policy = \"random\", \"p\" }\n"
            "b = { 'p'; [\"policy\"] = [[roundrobin]]; 'q'; }\n"
            "c = { [[long]], [==[x]]y]==], '\\x41\\u{20AC}', \"a b\" }\n"
            "d = {\n  -- the first\n  'p', --[[ inline ]] 'q'\n\n}\n"
            "e = { [ [[policy]] ] = 'failover', 'p' }\n"
            "f = {'p'}; g = {'false'}\n",
            err),
        0);
    check_group(&l, "a", SKCI_GROUP_RANDOM, 1, "p", NULL);
    check_group(&l, "b", SKCI_GROUP_ROUNDROBIN, 2, "p", "q", NULL);
    check_group(&l, "c", SKCI_GROUP_FAILOVER, 3, "long", "x]]y",
        "A\xE2\x82\xAC", "a b", NULL);
    check_group(&l, "d", SKCI_GROUP_FAILOVER, 4, "p", "q", NULL);
    check_group(&l, "e", SKCI_GROUP_FAILOVER, 9, "p", NULL);
    check_group(&l, "f", SKCI_GROUP_FAILOVER, 10, "p", NULL);
    check_group(&l, "g", SKCI_GROUP_FAILOVER, 10, "false", NULL);
    skci_map_list_free(&l);

    /* Statements and return mixed; a repeated key keeps the last
     * assignment, group or not, and frees the others. */
    assert_int_equal(
        parse(&l,
            "x = { 'a', 'b' }\n"
            "y = 'h:1'\n"
            "z = { 'a' }\n"
            "return { x = 'h:2', y = { 'a', 'b', 'c', policy = 'random' },\n"
            "  z = { 'b' }, w = false }\n",
            err),
        0);
    assert_int_equal(l.n, 4);
    check_entry(&l, "x", SKCI_MAP_ADDR, "h:2", 4);
    check_group(&l, "y", SKCI_GROUP_RANDOM, 4, "a", "b", "c", NULL);
    check_group(&l, "z", SKCI_GROUP_FAILOVER, 5, "b", NULL);
    check_entry(&l, "w", SKCI_MAP_DOWN, NULL, 5);
    check_no_members(&l);
    skci_map_list_free(&l);

    /* Members need not be defined here, and may be down: the node
     * resolves them.  A 255-byte member is a valid name. */
    {
        char name[256];
        char text[400];
        memset(name, 'm', 255);
        name[255] = '\0';
        snprintf(text, sizeof(text), "x = false\ng = { 'x', 'nowhere', '%s' }",
            name);
        assert_int_equal(parse(&l, text, err), 0);
        check_group(&l, "g", SKCI_GROUP_FAILOVER, 2, "x", "nowhere", name,
            NULL);
        skci_map_list_free(&l);
    }

    /* A name that was a group earlier in the text but is an address in
     * the end is a node, so a group may list it. */
    assert_int_equal(
        parse(&l, "x = { 'a' }\ng = { 'x' }\nx = 'h:1'\n", err), 0);
    check_entry(&l, "x", SKCI_MAP_ADDR, "h:1", 3);
    check_group(&l, "g", SKCI_GROUP_FAILOVER, 2, "x", NULL);
    skci_map_list_free(&l);
}

static void
test_group_policies(void **state)
{
    static const char *const names[] = { "failover", "roundrobin",
        "random" };
    int p;

    (void)state;
    assert_int_equal(SKCI_GROUP_FAILOVER, 0);
    assert_int_equal(SKCI_GROUP_ROUNDROBIN, 1);
    assert_int_equal(SKCI_GROUP_RANDOM, 2);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(skci_group_policy_name(i), names[i]);
        p = -1;
        assert_int_equal(skci_group_policy_parse(names[i], &p), 0);
        assert_int_equal(p, i);
    }
    assert_string_equal(skci_group_policy_name(-1), "unknown");
    assert_string_equal(skci_group_policy_name(3), "unknown");
    p = 7;
    assert_int_equal(skci_group_policy_parse("Failover", &p), -1);
    assert_int_equal(skci_group_policy_parse("", &p), -1);
    assert_int_equal(skci_group_policy_parse("random ", &p), -1);
    assert_int_equal(skci_group_policy_parse("rand", &p), -1);
    assert_int_equal(skci_group_policy_parse(NULL, &p), -1);
    assert_int_equal(p, 7); /* unchanged on failure */
    assert_int_equal(skci_group_policy_parse("random", NULL), -1);
}

static void
test_group_errors(void **state)
{
    char *s;

    (void)state;
    /* Empty: reported at the group's key. */
    check_error("\nx = {\n}",
        "t.lua:2: group 'x': a group needs at least one member");
    check_error("return {\n  a = 'h:1',\n  g = { policy = 'random' } }",
        "t.lua:3: group 'g': a group needs at least one member");
    check_error("x = { , }", "t.lua:1: expected a member name string near ','");
    check_error("x = { ; }", "t.lua:1: expected a member name string near ';'");

    /* Policy: unknown (at its value), not a string, twice. */
    check_error("db = { 'a',\n  policy =\n  'fast' }",
        "t.lua:3: group 'db': unknown policy 'fast' (use failover, "
        "roundrobin or random)");
    check_error("db = { 'a', policy = 'Random' }",
        "t.lua:1: group 'db': unknown policy 'Random' (use failover, "
        "roundrobin or random)");
    check_error("db = { 'a', policy = '' }",
        "t.lua:1: group 'db': unknown policy '' (use failover, roundrobin "
        "or random)");
    check_error("db = { 'a', policy = 'random\\0' }",
        "t.lua:1: group 'db': unknown policy 'random?' (use failover, "
        "roundrobin or random)");
    check_error("db = { 'a', policy = random }",
        "t.lua:1: expected a policy name string near 'random'");
    check_error("db = { 'a', policy = 1 }",
        "t.lua:1: expected a policy name string near '1'");
    check_error("db = { 'a', policy = { 'random' } }",
        "t.lua:1: expected a policy name string near '{'");
    check_error("db = { 'a', policy = 'random',\n ['policy'] = 'random' }",
        "t.lua:2: group 'db': policy given twice (first on line 1)");

    /* Duplicate members: the earliest repeat, and where it was first. */
    check_error("db = { 'a',\n 'b',\n \"a\" }",
        "t.lua:3: group 'db': member 'a' listed twice (first on line 1)");
    check_error("db = {\n'c',\n'b',\n'b',\n'c',\n'c' }",
        "t.lua:4: group 'db': member 'b' listed twice (first on line 3)");
    check_error("db = { 'a', [[a]] }",
        "t.lua:1: group 'db': member 'a' listed twice (first on line 1)");

    /* Itself, an option name. */
    check_error("db = { 'a',\n 'db' }",
        "t.lua:2: group 'db': a group cannot be its own member");
    check_error("return { ['d b'] = { 'd b' } }",
        "t.lua:1: group 'd b': a group cannot be its own member");
    check_error("db = { 'a', '__x' }",
        "t.lua:1: group 'db': member '__x' is an option name, not a node");

    /* Any other field, at its key. */
    check_error("db = { 'a',\n  weight = 3 }",
        "t.lua:2: group 'db': unknown field 'weight' (only policy is "
        "allowed)");
    check_error("db = { ['a b'] = 'x' }",
        "t.lua:1: group 'db': unknown field 'a b' (only policy is allowed)");
    check_error("db = { Policy = 'random', 'a' }",
        "t.lua:1: group 'db': unknown field 'Policy' (only policy is "
        "allowed)");
    check_error("db = { [1] = 'a' }", "t.lua:1: expected a string near '1'");
    check_error("db = { [''] = 'a' }",
        "t.lua:1: expected a name of 1 to 255 bytes near ''''");

    /* Items that are not strings. */
    check_error("db = { db_a, db_b }",
        "t.lua:1: expected a member name string near 'db_a'");
    check_error("db = { 'a',\n  policy }",
        "t.lua:2: expected a member name string near 'policy'");
    check_error("db = { 5 }", "t.lua:1: expected a member name string near '5'");
    check_error("db = { -1 }",
        "t.lua:1: expected a member name string near '-'");
    check_error("db = { true }",
        "t.lua:1: expected a member name string near 'true'");
    check_error("db = { false }",
        "t.lua:1: expected a member name string near 'false'");
    check_error("db = { nil }",
        "t.lua:1: expected a member name string near 'nil'");
    check_error("db = { { 'a' } }",
        "t.lua:1: expected a member name string near '{'");
    check_error("db = { 'a', } }", "t.lua:1: expected a name near '}'");

    /* Member strings follow the key rules. */
    check_error("db = { '' }",
        "t.lua:1: expected a name of 1 to 255 bytes near ''''");
    check_error("db = { 'a\\0b' }",
        "t.lua:1: expected a name without NUL bytes near ''a\\0b''");
    s = repeat("db = {\n'", 'm', 256, "' }");
    check_error(s, "t.lua:2: expected a name of 1 to 255 bytes near "
                   "''mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm...'");
    free(s);

    /* A group is no option's value. */
    check_error("__x = { 'a' }", "t.lua:1: option '__x' cannot be a group");
    check_error("return {\n  __nowaiting =\n  { 'a' } }",
        "t.lua:3: option '__nowaiting' cannot be a group");

    /* Table syntax. */
    check_error("db = { 'a' 'b' }", "t.lua:1: expected '}' near ''b''");
    check_error("db = { 'a',\n", "t.lua:2: expected '}' near <eof>");
    check_error("db = { 'a'", "t.lua:1: expected '}' near <eof>");
    check_error("db = {", "t.lua:1: expected '}' near <eof>");
    check_error("db = { policy 'random' }",
        "t.lua:1: expected a member name string near 'policy'");
    check_error("db = { ['policy'] 'random' }",
        "t.lua:1: expected '=' near ''random''");
    check_error("db = { ['policy' = 'random' }",
        "t.lua:1: expected ']' near '='");
    check_error("db = { 'a' }, x = 'h:1'", "t.lua:1: expected a name near ','");
    check_error("return { db = { 'a' } x = 'h:1' }",
        "t.lua:1: expected '}' near 'x'");

    /* Long names are cut in messages, control bytes hidden. */
    s = repeat("", 'g', 255, " = {}");
    check_error(s, "t.lua:1: group 'gggggggggggggggggggggggggggggggg...': a "
                   "group needs at least one member");
    free(s);
    check_error("['a\\tb'] = { 'a\\tb' }",
        "t.lua:1: group 'a?b': a group cannot be its own member");
}

/* A member may not be a group defined in the same text, before or after
 * it, in either form; the last assignment of a name decides. */
static void
test_group_nesting(void **state)
{
    skci_map_list l;
    char err[ERRLEN];

    (void)state;
    check_error("db = { 'a' }\nsdb = { 'b', 'db' }",
        "t.lua:2: group 'sdb': member 'db' is itself a group (line 1); a "
        "group's members must be nodes");
    check_error("sdb = { 'db' }\n\ndb = { 'a' }",
        "t.lua:1: group 'sdb': member 'db' is itself a group (line 3); a "
        "group's members must be nodes");
    check_error("return {\n  g = { 'h' },\n  h = { 'g' },\n}",
        "t.lua:2: group 'g': member 'h' is itself a group (line 3); a "
        "group's members must be nodes");
    check_error("db = 'h:1'\nsdb = { 'db' }\ndb = { 'a' }",
        "t.lua:2: group 'sdb': member 'db' is itself a group (line 3); a "
        "group's members must be nodes");
    check_error("db = { 'a' }\nsdb = { 'db' }\nsdb = { 'x', 'db' }",
        "t.lua:3: group 'sdb': member 'db' is itself a group (line 1); a "
        "group's members must be nodes");
    check_error("db = { 'a' }\nreturn { ['s d b'] = { 'db' } }",
        "t.lua:2: group 's d b': member 'db' is itself a group (line 1); a "
        "group's members must be nodes");
    /* An earlier group assignment overwritten by an address is gone. */
    assert_int_equal(
        parse(&l, "db = { 'a' }\nsdb = { 'db' }\ndb = false", err), 0);
    check_entry(&l, "db", SKCI_MAP_DOWN, NULL, 3);
    check_group(&l, "sdb", SKCI_GROUP_FAILOVER, 2, "db", NULL);
    skci_map_list_free(&l);
    /* And a group overwritten by a group checks the last one only. */
    assert_int_equal(
        parse(&l, "g = { 'h' }\nh = { 'a' }\ng = { 'a' }\n", err), 0);
    check_group(&l, "g", SKCI_GROUP_FAILOVER, 3, "a", NULL);
    check_group(&l, "h", SKCI_GROUP_FAILOVER, 2, "a", NULL);
    skci_map_list_free(&l);
}

/* Big groups stay cheap: the duplicate and nesting checks sort. */
static void
test_huge_groups(void **state)
{
    size_t n = 100000;
    size_t cap = n * 24 + 64;
    size_t len = 0;
    skci_map_list l;
    char err[ERRLEN];
    char *t = malloc(cap);

    (void)state;
    assert_non_null(t);
    /* One group of n members, one per line. */
    len += (size_t)snprintf(t, cap, "g = {\n");
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(t + len, cap - len, "'m%zu',\n", i);
    }
    memcpy(t + len, "}", 2);
    assert_int_equal(parse_n(&l, t, len + 1, err, sizeof(err)), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.v[0].nmembers, n);
    assert_string_equal(l.v[0].members[n - 1], "m99999");
    skci_map_list_free(&l);
    /* The same with a repeat at the end. */
    len += (size_t)snprintf(t + len, cap - len, "'m5' }");
    check_error_n(t, len,
        "t.lua:100002: group 'g': member 'm5' listed twice (first on line "
        "7)");

    /* n small groups, the last naming one of the others. */
    len = 0;
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(t + len, cap - len, "g%zu = { 'n%zu' }\n", i, i);
    }
    assert_int_equal(parse_n(&l, t, len, err, sizeof(err)), 0);
    assert_int_equal(l.n, n);
    check_group(&l, "g777", SKCI_GROUP_FAILOVER, 778, "n777", NULL);
    skci_map_list_free(&l);
    len += (size_t)snprintf(t + len, cap - len, "x = { 'n1', 'g5' }");
    check_error_n(t, len,
        "t.lua:100001: group 'x': member 'g5' is itself a group (line 6); a "
        "group's members must be nodes");
    free(t);
}

static void
test_deep_and_huge(void **state)
{
    skci_map_list l;
    char err[ERRLEN];
    char *s;

    (void)state;
    /* Nesting is not grammar: it fails at the first inner '{'. */
    s = repeat("return ", '{', 1000000, "");
    check_error(s, "t.lua:1: expected a name near '{'");
    free(s);
    /* A group's items are strings: a '{' inside one fails at once. */
    s = repeat("x = ", '{', 1000000, "");
    check_error(s, "t.lua:1: expected a member name string near '{'");
    free(s);
    s = repeat("", '[', 1000000, "");
    check_error(s, "t.lua:1: unfinished long string");
    free(s);

    /* A huge bracket level: linear, unfinished. */
    s = repeat("--[", '=', 1000000, "[ x ]");
    check_error(s, "t.lua:1: unfinished long comment");
    free(s);
    s = repeat("x = [", '=', 1000000, "");
    check_error(s, "t.lua:1: invalid long string delimiter near "
                   "'[===============================...'");
    free(s);

    /* A 4 MB string value. */
    s = repeat("x = '", 'v', 4000000, "'");
    assert_int_equal(parse(&l, s, err), 0);
    assert_int_equal(strlen(l.v[0].value), 4000000);
    skci_map_list_free(&l);
    free(s);

    /* Many lines of comment-closing look-alikes at a high level. */
    {
        size_t n = 200000;
        size_t len = 0;
        char *t = malloc(n * 8 + 64);
        assert_non_null(t);
        len += (size_t)sprintf(t, "--[=====[");
        for (size_t i = 0; i < n; i++) {
            memcpy(t + len, "]====]\n", 7);
            len += 7;
        }
        len += (size_t)sprintf(t + len, "]=====] x = true");
        check_error_n(t, len,
            "t.lua:200001: expected an address string or false "
            "near 'true'");
        free(t);
    }

    /* 200000 entries, each assigned twice: the merge keeps the later. */
    {
        size_t n = 200000;
        size_t cap = n * 2 * 40;
        size_t len = 0;
        char *t = malloc(cap);
        assert_non_null(t);
        for (size_t i = 0; i < n; i++) {
            len += (size_t)snprintf(
                t + len, cap - len, "n%zu = 'h:%zu'\n", i, i % 65536);
        }
        len += (size_t)snprintf(t + len, cap - len, "return {\n");
        for (size_t i = 0; i < n; i++) {
            len += (size_t)snprintf(t + len, cap - len,
                i % 2 ? "n%zu = false,\n" : "n%zu = 'x:%zu';\n", i, i);
        }
        len += (size_t)snprintf(t + len, cap - len, "}\n");
        assert_int_equal(parse_n(&l, t, len, err, sizeof(err)), 0);
        assert_int_equal(l.n, n);
        check_entry(&l, "n0", SKCI_MAP_ADDR, "x:0", (int)n + 2);
        check_entry(&l, "n199999", SKCI_MAP_DOWN, NULL, 2 * (int)n + 1);
        for (size_t i = 0; i < n; i++) {
            char name[32];
            snprintf(name, sizeof(name), "n%zu", i);
            assert_string_equal(l.v[i].name, name);
        }
        skci_map_list_free(&l);
        free(t);
    }
}

/* Every prefix of a valid file either parses or fails cleanly. */
static void
check_prefixes(const char *text)
{
    size_t len = strlen(text);
    char err[ERRLEN];

    for (size_t i = 0; i <= len; i++) {
        skci_map_list l = { NULL, 0 };
        int rc = parse_n(&l, text, i, err, sizeof(err));
        if (rc == 0) {
            for (size_t k = 0; k < l.n; k++) {
                size_t nl = strlen(l.v[k].name);
                assert_true(nl >= 1 && nl <= 255);
                if (l.v[k].kind == SKCI_MAP_GROUP) {
                    assert_true(l.v[k].nmembers >= 1);
                    for (size_t m = 0; m < l.v[k].nmembers; m++) {
                        nl = strlen(l.v[k].members[m]);
                        assert_true(nl >= 1 && nl <= 255);
                    }
                }
            }
            skci_map_list_free(&l);
        } else {
            assert_int_equal(rc, SKC_ESYNTAX);
            assert_null(l.v);
            assert_int_equal(l.n, 0);
            assert_memory_equal(err, "t.lua:", 6);
        }
    }
}

static void
test_truncated_prefixes(void **state)
{
    (void)state;
    check_prefixes(seed_map);
    check_prefixes(skynet_map);
    check_prefixes("\xEF\xBB\xBF"
                   "__n = -12; a = 'x\\z \n \\u{20AC}\\x41\\065\\\n'\r\n"
                   "[ [==[k]]]==] ] = [=[\nv]=] --[==[ c ]] ]==]\n"
                   "return { ['q'] = false, r = \"s\\\"\"; };\n");
    check_prefixes("db_a = '127.0.0.1:7311'\n"
                   "db = { \"db_a\", [[db_b]]; policy = 'roundrobin', }\n"
                   "return { g = { 'x', ['policy'] = \"random\" }, "
                   "h = {'db_a'} }\n");
}

static void
expect_str(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* url.c: the questions skc asks of a URL, one set of rules. */
static void
test_url_helpers(void **state)
{
    (void)state;
    assert_true(skci_url_is_tcpish("tcp://h:1"));
    assert_true(skci_url_is_tcpish("tcp6://[::1]:1"));
    assert_true(skci_url_is_tcpish("tls+tcp://h:1"));
    assert_true(skci_url_is_tcpish("wss://h:1/p"));
    assert_false(skci_url_is_tcpish("ipc:///tmp/x"));
    assert_false(skci_url_is_tcpish("inproc://x"));
    assert_false(skci_url_is_tcpish("tcpx://h:1"));
    assert_false(skci_url_is_tcpish(NULL));
    assert_int_equal(skci_url_port("tcp://127.0.0.1:7102"), 7102);
    assert_int_equal(skci_url_port("tcp://[::1]:7000"), 7000);
    assert_int_equal(skci_url_port("tcp://[::1]"), 0);
    assert_int_equal(skci_url_port("ipc:///tmp/a:5"), 0);
    expect_str(skci_url_with_port("tcp://h:1", 7103), "tcp://h:7103");
    expect_str(skci_url_with_port("tcp://[::1]:1", 0), "tcp://[::1]:0");
    expect_str(skci_url_with_port("ipc:///tmp/a", 5), "ipc:///tmp/a");
    /* the map's host, the announced port */
    const char *a = "tcp://0.0.0.0:7103";
    expect_str(skci_url_send_address("tcp://10.0.0.5:7102", a, strlen(a)),
        "tcp://10.0.0.5:7103");
    a = "ipc:///tmp/db.ipc.send";
    expect_str(skci_url_send_address("ipc:///tmp/db.ipc", a, strlen(a)),
        "ipc:///tmp/db.ipc.send");
    a = "tls+tcp://0.0.0.0:9";
    expect_str(skci_url_send_address("tcp://h:8", a, strlen(a)),
        "tls+tcp://0.0.0.0:9"); /* another scheme: as announced */
    a = "tcp://x:99"; /* only the first alen bytes count */
    expect_str(skci_url_send_address("tcp://h:8", a, 9), "tcp://h:9");
}

static void
test_addr_to_url(void **state)
{
    static const char *const good[][2] = {
        { "127.0.0.1:7101", "tcp://127.0.0.1:7101" },
        { "localhost:0", "tcp://localhost:0" },
        { "my_host-1.example.org:65535",
            "tcp://my_host-1.example.org:65535" },
        { "h:007", "tcp://h:007" },
        { "[::1]:7000", "tcp://[::1]:7000" },
        { "[fe80::1%eth0]:7000", "tcp://[fe80::1%eth0]:7000" },
        { "[::ffff:10.0.0.1]:1", "tcp://[::ffff:10.0.0.1]:1" },
        { "tcp://1.2.3.4:5", "tcp://1.2.3.4:5" },
        { "tcp4://h:1", "tcp4://h:1" },
        { "tcp6://[::1]:1", "tcp6://[::1]:1" },
        { "ipc:///tmp/x.sock", "ipc:///tmp/x.sock" },
        { "inproc://a", "inproc://a" },
        { "tls+tcp://h:1", "tls+tcp://h:1" },
        { "ws://h:1/p", "ws://h:1/p" },
        { "wss://h:1/p", "wss://h:1/p" },
    };
    static const char *const bad[] = { "", "xyz", "host:", ":7000",
        "host:65536", "host:123456", "host:-1", "host:7a", "host: 7",
        "ho st:1", "h/x:1", "[::1]7000", "[]:7000", "[abc]:7000",
        "[::1:7000", "::1]:7000x", "[::1/64]:7000", "tcp://", "ipc://" };
    char err[ERRLEN];
    char *url;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        url = (char *)1;
        if (skci_addr_to_url(&url, good[i][0], err, sizeof(err)) != 0) {
            fail_msg("'%s' rejected: %s", good[i][0], err);
        }
        assert_string_equal(url, good[i][1]);
        free(url);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[ERRLEN];
        url = (char *)1;
        if (skci_addr_to_url(&url, bad[i], err, sizeof(err)) !=
            SKC_EINVAL) {
            fail_msg("'%s' accepted", bad[i]);
        }
        assert_null(url);
        snprintf(want, sizeof(want),
            "bad address '%s': expected host:port or a URL such as "
            "tcp://host:port",
            bad[i]);
        assert_string_equal(err, want);
    }
    assert_int_equal(
        skci_addr_to_url(&url, "::1:7000", err, sizeof(err)), SKC_EINVAL);
    assert_string_equal(err, "bad address '::1:7000': put an IPv6 host in "
                             "brackets, as in [::1]:7000");
    assert_int_equal(
        skci_addr_to_url(&url, "http://x:1", err, sizeof(err)), SKC_EINVAL);
    assert_string_equal(err,
        "bad address 'http://x:1': unsupported scheme 'http' (use tcp, "
        "tcp4, tcp6, ipc, inproc, tls+tcp, ws or wss)");
    assert_int_equal(
        skci_addr_to_url(&url, "TCP://x:1", err, sizeof(err)), SKC_EINVAL);
    assert_int_equal(
        skci_addr_to_url(&url, "://x", err, sizeof(err)), SKC_EINVAL);
    assert_int_equal(skci_addr_to_url(&url, "xyz", err, 4), SKC_EINVAL);
    assert_string_equal(err, "bad");
    assert_int_equal(skci_addr_to_url(&url, "xyz", NULL, 0), SKC_EINVAL);
    assert_int_equal(skci_addr_to_url(NULL, "h:1", err, sizeof(err)),
        SKC_EINVAL);
    assert_int_equal(skci_addr_to_url(&url, NULL, err, sizeof(err)),
        SKC_EINVAL);
}

static char *
temp_file(const void *data, size_t len, off_t size)
{
    char path[] = "/tmp/test_map_XXXXXX";
    int fd = mkstemp(path);
    char *copy;

    assert_true(fd >= 0);
    if (len > 0) {
        assert_int_equal(write(fd, data, len), (ssize_t)len);
    }
    if (size > 0) {
        assert_int_equal(ftruncate(fd, size), 0);
    }
    close(fd);
    copy = strdup(path);
    assert_non_null(copy);
    return copy;
}

static void
test_read_file(void **state)
{
    skci_map_list l;
    char err[ERRLEN];
    char *buf = (char *)1;
    size_t len = 99;
    char *path;

    (void)state;
    assert_int_equal(skci_map_read_file(&buf, &len,
                         "/nonexistent/dir/cluster.lua", err, sizeof(err)),
        SKC_EIO);
    assert_null(buf);
    assert_int_equal(len, 0);
    assert_string_equal(
        err, "/nonexistent/dir/cluster.lua: No such file or directory");

    assert_int_equal(
        skci_map_read_file(&buf, &len, "/tmp", err, sizeof(err)), SKC_EIO);
    assert_string_equal(err, "/tmp: Is a directory");

    path = temp_file(seed_map, strlen(seed_map), 0);
    assert_int_equal(skci_map_read_file(&buf, &len, path, err, sizeof(err)),
        0);
    assert_int_equal(len, strlen(seed_map));
    assert_string_equal(buf, seed_map);
    assert_int_equal(skci_map_parse(&l, buf, len, path, err, sizeof(err)), 0);
    assert_int_equal(l.n, 2);
    skci_map_list_free(&l);
    free(buf);
    unlink(path);
    free(path);

    path = temp_file(NULL, 0, 0);
    assert_int_equal(skci_map_read_file(&buf, &len, path, err, sizeof(err)),
        0);
    assert_int_equal(len, 0);
    assert_string_equal(buf, "");
    free(buf);
    unlink(path);
    free(path);

    /* Exactly at the limit is fine; one byte more is not. */
    path = temp_file("x", 1, (off_t)16 * 1024 * 1024);
    assert_int_equal(skci_map_read_file(&buf, &len, path, err, sizeof(err)),
        0);
    assert_int_equal(len, (size_t)16 * 1024 * 1024);
    assert_int_equal(buf[0], 'x');
    assert_int_equal(buf[len], '\0');
    free(buf);
    unlink(path);
    free(path);

    path = temp_file("x", 1, (off_t)16 * 1024 * 1024 + 1);
    buf = (char *)1;
    assert_int_equal(skci_map_read_file(&buf, &len, path, err, sizeof(err)),
        SKC_EIO);
    assert_null(buf);
    {
        char want[ERRLEN];
        snprintf(want, sizeof(want), "%s: file too large", path);
        assert_string_equal(err, want);
    }
    unlink(path);
    free(path);

    assert_int_equal(skci_map_read_file(NULL, &len, "/tmp", err, 8),
        SKC_EINVAL);
    assert_int_equal(skci_map_read_file(&buf, NULL, "/tmp", err, 8),
        SKC_EINVAL);
    assert_int_equal(skci_map_read_file(&buf, &len, NULL, err, 8),
        SKC_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_example),
        cmocka_unit_test(test_skynet_example),
        cmocka_unit_test(test_both_forms_and_later_wins),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_long_strings_and_comments),
        cmocka_unit_test(test_separators),
        cmocka_unit_test(test_empty_and_comments_only),
        cmocka_unit_test(test_utf8_bom_crlf),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_group_policies),
        cmocka_unit_test(test_group_errors),
        cmocka_unit_test(test_group_nesting),
        cmocka_unit_test(test_huge_groups),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_lexer_error_positions),
        cmocka_unit_test(test_small_error_buffer),
        cmocka_unit_test(test_key_length),
        cmocka_unit_test(test_deep_and_huge),
        cmocka_unit_test(test_truncated_prefixes),
        cmocka_unit_test(test_addr_to_url),
        cmocka_unit_test(test_url_helpers),
        cmocka_unit_test(test_read_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
