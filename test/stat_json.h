/* stat_json.h -- one counter out of a node's statistics JSON, for the C
 * tests (header-only; include after skc/skc.h).  The api tests reach it
 * through api/stat_of.h, the system tests directly. */
#ifndef SKC_TEST_STAT_JSON_H
#define SKC_TEST_STAT_JSON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of "key":N in json (skc_node_stats' text, freed here), -1 if
 * it has no such key. */
static inline long
stat_json_take(char *json, const char *key)
{
    char pat[80];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    long v = p != NULL ? strtol(p + strlen(pat), NULL, 10) : -1;
    skc_free(json);
    return v;
}

#endif
