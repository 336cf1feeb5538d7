/* log.h -- diagnostics on stderr for daemons and debugging ("snapctl: serve-nbd: ...").
 * Level from SNAPCTL_LOG (error, warn, info, debug) or snap_log_set_level(); default warn. */
#ifndef SNAP_LOG_H
#define SNAP_LOG_H

enum snap_log_level { SNAP_LOG_ERROR, SNAP_LOG_WARN, SNAP_LOG_INFO, SNAP_LOG_DEBUG };

void snap_log_set_level(int level);
int snap_log_level(void);
void snap_log_set_prefix(const char *prefix);
void snap_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define snap_error(...) snap_log(SNAP_LOG_ERROR, __VA_ARGS__)
#define snap_warn(...) snap_log(SNAP_LOG_WARN, __VA_ARGS__)
#define snap_info(...) snap_log(SNAP_LOG_INFO, __VA_ARGS__)
#define snap_debug(...) \
    do { if (snap_log_level() >= SNAP_LOG_DEBUG) snap_log(SNAP_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
