/* log.c -- diagnostics on stderr. */
#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int log_level = -1;
static const char *log_prefix = "snapctl";

void snap_log_set_level(int level) { atomic_store(&log_level, level); }

int snap_log_level(void)
{
    int l = atomic_load(&log_level);
    if (l < 0) {
        const char *e = getenv("SNAPCTL_LOG");
        l = SNAP_LOG_WARN;
        if (e) {
            if (!strcmp(e, "error")) l = SNAP_LOG_ERROR;
            else if (!strcmp(e, "info")) l = SNAP_LOG_INFO;
            else if (!strcmp(e, "debug")) l = SNAP_LOG_DEBUG;
        }
        atomic_store(&log_level, l);
    }
    return l;
}

void snap_log_set_prefix(const char *prefix) { log_prefix = prefix; }

void snap_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    if (level > snap_log_level())
        return;
    char line[2048];
    int n = snprintf(line, sizeof line, "%s: %s: ", log_prefix, names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line so concurrent threads do not interleave. */
    fprintf(stderr, "%s\n", line);
}
