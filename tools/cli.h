/* cli.h -- the `skc` command's cluster verbs (ping, call, send, query,
 * stats, map), beside `skc run`, which stays in skc.c.  docs/OPERATIONS.md, "The
 * command line", is their manual. */
#ifndef SKC_TOOLS_CLI_H
#define SKC_TOOLS_CLI_H

#include <stddef.h>
#include <stdio.h>

/* Exit codes of the verbs. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_REMOTE 1      /* the remote side answered with an error */
#define CLI_EXIT_USAGE 2       /* bad command line, map file unusable */
#define CLI_EXIT_UNREACHABLE 3 /* unknown, down, unreachable, timed out */

/* Whether name is one of the verbs cli_main runs. */
int cli_is_verb(const char *name);

/* Runs a verb: argv[0] is the verb, the rest its options and arguments.
 * Returns the process exit code. */
int cli_main(int argc, char **argv);

/* The verbs' one-line usages, for `skc --help`. */
void cli_usage(FILE *f);

/* Prints a node's statistics JSON (skc_node_stats) in the Prometheus
 * text format (prom.c).  0, or -1 with the reason in err. */
int cli_prometheus(FILE *f, const char *json, size_t len, char *err,
    size_t errlen);

/* Names defined in a map file's text (mapkeys.c). */
typedef struct cli_names {
    char **names;
    size_t count;
} cli_names;

/* Fills *out with the names, in order, without repeats.  0, or -1 when
 * out of memory (*out then holds what was found; free it). */
int cli_map_names(cli_names *out, const char *text, size_t len);
/* The same for text of one name a line (skc_node_map_names). */
int cli_lines(cli_names *out, const char *text, size_t len);
void cli_names_free(cli_names *names);

#endif /* SKC_TOOLS_CLI_H */
