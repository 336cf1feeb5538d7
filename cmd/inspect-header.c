/* inspect-header.c -- placeholder until lib/header lands. */
#include "cli.h"

static const char usage[] = "Usage: snapctl inspect-header [OPTIONS] FILE\n";

int inspect_header_main(int argc, char **argv)
{
    return cli_not_built(argc, argv, usage);
}
