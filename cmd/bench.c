/* bench.c -- the 'bench' applet (not built yet: see the issue tracker). */
#include "cli.h"

static const char usage[] =
    "Usage: snapctl bench [OPTIONS] ...\n";

int bench_main(int argc, char **argv)
{
    return cli_not_built(argc, argv, usage);
}
