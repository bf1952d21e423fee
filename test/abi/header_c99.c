/*
 * header_c99.c -- skc.h must compile alone, first, as strict C99:
 *   cc -std=c99 -pedantic -Werror -Wall -Wextra ... -c header_c99.c
 * (driven by header_test.sh; see docs/ABI.md).  Nothing is included
 * before skc.h, so the header has to bring what it uses.
 */
#include <skc/skc.h>
#include <skc/skc.h> /* the include guard must make this harmless */

/* Compile-time checks that need no library. */
typedef char skc_check_version_number[
    SKC_VERSION_NUMBER == SKC_VERSION_MAJOR * 1000000 +
            SKC_VERSION_MINOR * 1000 + SKC_VERSION_PATCH
        ? 1
        : -1];
typedef char skc_check_opts_size_first[
    offsetof(skc_node_opts, size) == 0 ? 1 : -1];
typedef char skc_check_item_size_first[offsetof(skc_item, size) == 0 ? 1 : -1];
typedef char skc_check_ok[SKC_OK == 0 ? 1 : -1];
typedef char skc_check_caller_driven[SKC_CALLER_DRIVEN < 0 ? 1 : -1];

#if SKC_VERSION_MAJOR < 0 || SKC_VERSION_MINOR < 0 || SKC_VERSION_PATCH < 0
#error "version macros must be usable in #if"
#endif

/* The initialisers must be valid C99 constant initialisers. */
static const skc_node_opts check_opts = SKC_NODE_OPTS_INIT;
static const skc_item check_item = SKC_ITEM_INIT;

/* Callback typedefs must accept ordinary functions. */
static void
check_handler(skc_node *node, uint32_t service, skc_msg *msg, void *arg)
{
    (void) node;
    (void) service;
    (void) msg;
    (void) arg;
}

static void
check_call(int status, const void *data, size_t len, const char *detail,
    void *arg)
{
    (void) status;
    (void) data;
    (void) len;
    (void) detail;
    (void) arg;
}

static void
check_log(int level, const char *node, const char *text, void *arg)
{
    (void) level;
    (void) node;
    (void) text;
    (void) arg;
}

int
main(void)
{
    skc_handler_fn h = check_handler;
    skc_call_fn c = check_call;
    skc_log_fn l = check_log;
    (void) h;
    (void) c;
    (void) l;
    return (int) (check_opts.size == sizeof(skc_node_opts) &&
               check_item.size == sizeof(skc_item))
        ? 0
        : 1;
}
