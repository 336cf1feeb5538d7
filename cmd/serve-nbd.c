/* serve-nbd.c -- the 'serve-nbd' applet (not built yet: see the issue tracker). */
#include "cli.h"

static const char usage[] =
    "Usage: snapctl serve-nbd [OPTIONS] ...\n";

int serve_nbd_main(int argc, char **argv)
{
    return cli_not_built(argc, argv, usage);
}
