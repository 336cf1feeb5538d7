/* upload.c -- the 'upload' applet (not built yet: see the issue tracker). */
#include "cli.h"

static const char usage[] =
    "Usage: snapctl upload [OPTIONS] ...\n";

int upload_main(int argc, char **argv)
{
    return cli_not_built(argc, argv, usage);
}
