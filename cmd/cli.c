/* cli.c -- helpers shared by the applets: error printing and option checks. */
#include "cli.h"

#include "base/err.h"

#include <stdarg.h>
#include <string.h>

int cli_fail(int err, const char *hint)
{
    fprintf(stderr, "snapctl %s: %s\n", cli_applet, snap_errmsg(err));
    if (hint)
        fprintf(stderr, "snapctl %s: %s\n", cli_applet, hint);
    return snap_exit_code(err);
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "snapctl %s: ", cli_applet);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'snapctl %s --help'.\n", cli_applet);
    return SNAP_EXIT_USAGE;
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return true;
    }
    return false;
}

int cli_not_built(int argc, char **argv, const char *usage)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        printf("\n(not built yet in this version of snapctl)\n");
        return 0;
    }
    fprintf(stderr, "snapctl %s: not built yet in this version of snapctl\n", cli_applet);
    return SNAP_EXIT_USAGE;
}
