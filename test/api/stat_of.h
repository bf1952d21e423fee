/* stat_of.h -- one counter of a node's statistics, for the cmocka tests
 * (header-only; include after cmocka.h and skc/skc.h). */
#ifndef SKC_TEST_API_STAT_OF_H
#define SKC_TEST_API_STAT_OF_H

#include "../stat_json.h"

/* The value of "key":N in n's statistics, -1 if it has no such key. */
static inline long
stat_of(skc_node *n, const char *key)
{
    char *j = NULL;
    assert_int_equal(skc_node_stats(n, &j), SKC_OK);
    return stat_json_take(j, key);
}

#endif
