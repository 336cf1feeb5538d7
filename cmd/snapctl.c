/* snapctl.c -- the multi-call entry: picks the applet from argv[0] (a symlink named after it)
 * or from argv[1], busybox-style. */
#include "cli.h"

#include "base/err.h"
#include "base/log.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifndef SNAPCTL_VERSION
#define SNAPCTL_VERSION "0.0.0-dev"
#endif

const struct applet cli_applets[] = {
#define APPLET(name, id, summary) {name, id##_main, summary},
#include "applets.def"
#undef APPLET
    {NULL, NULL, NULL},
};

const char *cli_applet = "snapctl";

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: snapctl APPLET [OPTIONS] ...\n"
            "   or: APPLET [OPTIONS] ...   (through a symlink named after the applet)\n"
            "\n"
            "The storage path of a microVM sandbox platform in one static binary.\n"
            "\n"
            "Applets:\n");
    for (const struct applet *a = cli_applets; a->name; a++)
        fprintf(f, "  %-16s %s\n", a->name, a->summary);
    fprintf(f,
            "\n"
            "Options:\n"
            "  -h, --help       show this help (snapctl APPLET --help for an applet's)\n"
            "  -V, --version    show the version (also APPLET --version)\n"
            "\n"
            "Environment: SNAPCTL_LOG=error|warn|info|debug sets the log level.\n"
            "Exit codes and storage URLs are described in snapctl(1).\n");
}

static const struct applet *find_applet(const char *name)
{
    for (const struct applet *a = cli_applets; a->name; a++)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

static int run_applet(const struct applet *a, int argc, char **argv)
{
    static char prefix[64];
    cli_applet = a->name;
    snprintf(prefix, sizeof prefix, "snapctl %s", a->name);
    snap_log_set_prefix(prefix);
    /* `serve-nbd --version` through the applet's symlink, like `snapctl --version`. */
    if (argc >= 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
        printf("snapctl %s\n", SNAPCTL_VERSION);
        return 0;
    }
    return a->main(argc, argv);
}

int main(int argc, char **argv)
{
    /* A peer that goes away is an error return from write, never a signal that kills us. */
    signal(SIGPIPE, SIG_IGN);

    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    const struct applet *a = find_applet(base);
    if (a)
        return run_applet(a, argc, argv);

    if (argc < 2) {
        usage(stderr);
        return SNAP_EXIT_USAGE;
    }
    const char *arg = argv[1];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h") || !strcmp(arg, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(arg, "--version") || !strcmp(arg, "-V")) {
        printf("snapctl %s\n", SNAPCTL_VERSION);
        return 0;
    }
    a = find_applet(arg);
    if (!a) {
        fprintf(stderr, "snapctl: unknown applet '%s'\n\n", arg);
        usage(stderr);
        return SNAP_EXIT_USAGE;
    }
    return run_applet(a, argc - 1, argv + 1);
}
