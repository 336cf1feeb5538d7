/* bench.c -- `snapctl bench NAME ...`: dispatch to the benchmarks listed in bench.def. */
#include "bench.h"
#include "cli.h"

#include "base/log.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} benches[] = {
#define BENCH(name, id, summary) {name, bench_##id, summary},
#include "bench.def"
#undef BENCH
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: snapctl bench NAME [OPTIONS]\n"
               "\n"
               "Reproducible benchmarks, each against a named peer measured in the same run.\n"
               "snapctl bench NAME --help shows a benchmark's options.\n"
               "\n"
               "Benchmarks:\n");
    for (int i = 0; benches[i].name; i++)
        fprintf(f, "  %-10s %s\n", benches[i].name, benches[i].summary);
}

int bench_main(int argc, char **argv)
{
    static char prefix[80];
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    for (int i = 0; benches[i].name; i++)
        if (!strcmp(benches[i].name, argv[1])) {
            /* Messages and their "Try ... --help" name the benchmark: its options are its own. */
            static char name[64];
            snprintf(name, sizeof name, "bench %s", benches[i].name);
            cli_applet = name;
            snprintf(prefix, sizeof prefix, "snapctl %s", name);
            snap_log_set_prefix(prefix);
            return benches[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "snapctl bench: unknown benchmark '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
