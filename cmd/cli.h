/* cli.h -- what every applet shares: the applet table, error printing, option helpers.
 * Only cmd/ prints for people. */
#ifndef SNAP_CLI_H
#define SNAP_CLI_H

#include <stdbool.h>
#include <stdio.h>

#define APPLET(name, id, summary) int id##_main(int argc, char **argv);
#include "applets.def"
#undef APPLET

struct applet {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
};
extern const struct applet cli_applets[];
extern const char *cli_applet; /* the running applet's name, for messages */

/* Print "snapctl APPLET: <detail of err>" (and hint, if any) on stderr; return the exit code. */
int cli_fail(int err, const char *hint);
/* Print "snapctl APPLET: <message>" and "Try 'snapctl APPLET --help'."; return SNAP_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* For applets not built yet: say so and return SNAP_EXIT_USAGE (--help still works). */
int cli_not_built(int argc, char **argv, const char *usage);
/* True when argv holds --help or -h before any "--". */
bool cli_wants_help(int argc, char **argv);

#endif
