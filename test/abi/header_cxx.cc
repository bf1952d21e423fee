// header_cxx.cc -- skc.h must compile alone as C++ and link with C linkage:
//   c++ -std=c++11 -Wall -Wextra -pedantic -Werror header_cxx.cc -lskc
// (driven by header_test.sh).  Linking proves the extern "C" block: a
// C++-mangled declaration would not resolve against libskc.so.  Running it
// checks that the loaded library matches the header's version.
#include <skc/skc.h>
#include <skc/skc.h>

#include <cstdio>
#include <cstring>

static_assert(SKC_VERSION_NUMBER == SKC_VERSION_MAJOR * 1000000 +
                      SKC_VERSION_MINOR * 1000 + SKC_VERSION_PATCH,
    "SKC_VERSION_NUMBER layout");
static_assert(SKC_OK == 0, "SKC_OK is 0");

namespace {

void
on_msg(skc_node *, uint32_t, skc_msg *, void *)
{
}

void
on_done(int, const void *, size_t, const char *, void *)
{
}

} // namespace

int
main()
{
    skc_node_opts opts = SKC_NODE_OPTS_INIT;
    skc_item item = SKC_ITEM_INIT;
    skc_handler_fn h = on_msg;
    skc_call_fn c = on_done;
    (void) h;
    (void) c;

    int bad = 0;
    if (opts.size != sizeof(skc_node_opts) || item.size != sizeof(skc_item)) {
        std::fprintf(stderr, "option struct initialisers: wrong size\n");
        bad = 1;
    }
    if (skc_version() != SKC_VERSION_NUMBER) {
        std::fprintf(stderr, "skc_version() = %u, header says %u\n",
            static_cast<unsigned>(skc_version()),
            static_cast<unsigned>(SKC_VERSION_NUMBER));
        bad = 1;
    }
    if (std::strcmp(skc_version_string(), SKC_VERSION_STRING) != 0) {
        std::fprintf(stderr, "skc_version_string() = %s, header says %s\n",
            skc_version_string(), SKC_VERSION_STRING);
        bad = 1;
    }
    if (skc_strerror(SKC_ETIMEDOUT) == NULL ||
        std::strcmp(skc_errname(SKC_ETIMEDOUT), "ETIMEDOUT") != 0) {
        std::fprintf(stderr, "skc_strerror/skc_errname broken\n");
        bad = 1;
    }
    if (!bad)
        std::printf("header_cxx: version %s ok\n", skc_version_string());
    return bad;
}
