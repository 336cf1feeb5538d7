/* peer.c -- the 'peer' applet (not built yet: see the issue tracker). */
#include "cli.h"

static const char usage[] =
    "Usage: snapctl peer [OPTIONS] ...\n";

int peer_main(int argc, char **argv)
{
    return cli_not_built(argc, argv, usage);
}
