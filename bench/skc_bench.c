/* skc_bench.c -- entry point: picks the role named by argv[1] (see
 * bench.h). */
#include "bench.h"

#include <string.h>

static int
usage(void)
{
    fprintf(stderr,
        "usage: skc_bench run [--quick] [--runs N] [--dur ms] [--warm ms]\n"
        "                 [--json file] [--decompose] [--only i,j,...]\n"
        "                 [--lua-bin B --lua-script F --lua-cpath P\n"
        "                  --lua-path P | --no-lua reason]\n"
        "                 [--py-bin B --py-script F --py-path P\n"
        "                  --py-lib L | --no-py reason]\n"
        "       skc_bench server|raw_server [--addr URL] [--max-serving N]\n"
        "                 [--workers N]\n"
        "                 [--variant plain|inline (skc) | hop|hopspin|wrecv]\n"
        "       skc_bench client|raw_client --addr URL [--push URL]\n"
        "                 --case call|lat|send|hold [--inflight K]\n"
        "                 [--size B] [--echo 0|1] [--warm ms] [--dur ms]\n"
        "                 [--hold N] [--workers N]\n"
        "                 [--variant plain|inline (skc) |\n"
        "                  hop|hopspin|xreq|wrecv (raw)]\n"
        "(see bench.h; run.sh passes the Lua paths)\n");
    return 2;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        return usage();
    }
    const char *role = argv[1];
    if (strcmp(role, "run") == 0) {
        return bench_driver(argc - 2, argv + 2);
    }
    bench_opts o;
    if (bench_parse_opts(&o, argc - 2, argv + 2) != 0) {
        return usage();
    }
    if (strcmp(role, "server") == 0) {
        return bench_skc_server(&o);
    }
    if (strcmp(role, "client") == 0) {
        return bench_skc_client(&o);
    }
    if (strcmp(role, "raw_server") == 0) {
        return bench_raw_server(&o);
    }
    if (strcmp(role, "raw_client") == 0) {
        return bench_raw_client(&o);
    }
    return usage();
}
