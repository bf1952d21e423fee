/* fuzz_map.c -- libFuzzer target for the cluster-map parser.
 *
 * Parses the input as a map file, checks the promises map.h makes about
 * the result, and runs every address through skci_addr_to_url().  Any
 * broken promise traps, so the fuzzer reports it like a crash.
 *
 * Build (from the source root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Ilib \
 *       lib/map.c lib/error.c test/fuzz/fuzz_map.c -o /tmp/fuzz_map
 *   cp -r test/fuzz/corpus/map /tmp/map-corpus
 *   /tmp/fuzz_map -max_total_time=60 /tmp/map-corpus
 */
#include "map.h"
#include "url.h"
#include "skc/skc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void
fuzz_check(int ok)
{
    if (!ok) {
        __builtin_trap();
    }
}

/* A group's members are valid node names, none listed twice, none the
 * group itself or another group of the same map.  The pairwise checks are
 * quadratic, so they run only on small maps (the parser sorts instead). */
static void
fuzz_check_group(const skci_map_list *l, const skci_map_entry *g)
{
    int small = g->nmembers <= 64 && l->n <= 64;

    for (size_t i = 0; i < g->nmembers; i++) {
        const char *m = g->members[i];
        size_t n = strlen(m);

        fuzz_check(n >= 1 && n <= 255 && strncmp(m, "__", 2) != 0);
        fuzz_check(strcmp(m, g->name) != 0);
        for (size_t k = i + 1; small && k < g->nmembers; k++) {
            fuzz_check(strcmp(m, g->members[k]) != 0);
        }
        for (size_t k = 0; small && k < l->n; k++) {
            fuzz_check(l->v[k].kind != SKCI_MAP_GROUP ||
                strcmp(m, l->v[k].name) != 0);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    skci_map_list l;
    char err[256];
    /* Vary the buffer size so truncated messages get exercised too; the
     * bytes past errlen must stay untouched. */
    size_t errlen = size % 7 == 0 ? size % 16 : sizeof(err) - 1;
    int rc;

    err[sizeof(err) - 1] = 'Z';
    rc = skci_map_parse(&l, (const char *)data, size, "fuzz", err, errlen);
    fuzz_check(err[sizeof(err) - 1] == 'Z');
    if (errlen > 0) {
        fuzz_check(memchr(err, '\0', errlen) != NULL);
    }
    if (rc != 0) {
        fuzz_check(rc == SKC_ESYNTAX);
        fuzz_check(l.v == NULL && l.n == 0);
        return 0;
    }

    for (size_t i = 0; i < l.n; i++) {
        const skci_map_entry *e = &l.v[i];
        size_t n = strlen(e->name);

        fuzz_check(n >= 1 && n <= 255);
        fuzz_check(e->line >= 1);
        for (size_t k = i + 1; k < l.n; k++) {
            fuzz_check(strcmp(e->name, l.v[k].name) != 0);
        }
        if (e->kind != SKCI_MAP_GROUP) {
            fuzz_check(e->members == NULL && e->nmembers == 0);
        }
        switch (e->kind) {
        case SKCI_MAP_ADDR: {
            char *url = NULL;
            char uerr[64];
            rc = skci_addr_to_url(&url, e->value, uerr, sizeof(uerr));
            fuzz_check(rc == 0 || rc == SKC_EINVAL);
            fuzz_check((rc == 0) == (url != NULL));
            free(url);
            break;
        }
        case SKCI_MAP_NUMBER:
            fuzz_check(e->value != NULL && e->value[0] != '\0');
            break;
        case SKCI_MAP_GROUP:
            fuzz_check(e->value == NULL && e->nmembers >= 1);
            fuzz_check(e->policy >= SKCI_GROUP_FAILOVER &&
                e->policy <= SKCI_GROUP_RANDOM);
            fuzz_check_group(&l, e);
            break;
        case SKCI_MAP_DOWN:
        case SKCI_MAP_TRUE:
            fuzz_check(e->value == NULL);
            break;
        default:
            fuzz_check(0);
        }
    }
    skci_map_list_free(&l);
    return 0;
}
