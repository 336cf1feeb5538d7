/* fetch.c -- the 'fetch' applet (not built yet: see the issue tracker). */
#include "cli.h"

static const char usage[] =
    "Usage: snapctl fetch [OPTIONS] ...\n";

int fetch_main(int argc, char **argv)
{
    return cli_not_built(argc, argv, usage);
}
