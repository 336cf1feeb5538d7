/* progress.h -- a one-line progress display on stderr, only when stderr is a terminal.
 *
 *   struct progress p; progress_start(&p, "fetch asset.bin", total);   // total 0 = unknown
 *   progress_set_total(&p, total);   // when the total is learned later (a response head)
 *   progress_update(&p, done);       // cheap; redraws at most 10 times a second
 *   progress_end(&p);                // clears the line (if one was drawn)
 *
 * The line: "LABEL  37% [#######             ] 379.0 MiB / 1.0 GiB  98.2 MiB/s  ETA 0:06" with
 * a known total; "LABEL 379.0 MiB  98.2 MiB/s" without one.  It is fitted to the terminal's
 * width (the bar and then the label give way), so that "\r" always returns to its start and
 * clearing leaves nothing behind.  Callers print through cmd/ only: lib/ never draws.
 */
#ifndef SNAP_PROGRESS_H
#define SNAP_PROGRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROGRESS_INTERVAL_NS 100000000ull /* at most 10 redraws a second */

struct progress {
    atomic_bool on;
    atomic_int shown;            /* a line is on the screen (read by progress_clear_signal) */
    int cols;                    /* terminal width */
    char label[48];
    uint64_t total, done;
    uint64_t start_ns, last_ns;
};

void progress_start(struct progress *p, const char *label, uint64_t total);
void progress_set_total(struct progress *p, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
void progress_end(struct progress *p);
/* From the signal thread (lib/base/cancel) while another thread draws: clear the line with one
 * write(2); async-signal-safe too. */
void progress_clear_signal(struct progress *p);
/* Turn drawing off (--quiet, --json), or on for tests. */
void progress_force(struct progress *p, bool on);

/* The line for `done` bytes at `now` (ns, snap_now_ns clock) on a terminal `cols` wide, without
 * the leading "\r": at most cols - 1 characters.  Returns buf. */
const char *progress_format(const struct progress *p, uint64_t now, int cols, char *buf, size_t n);
/* "m:ss", or "h:mm:ss" from an hour on; "--:--" when unknown (secs < 0) or absurd. */
const char *progress_fmt_eta(double secs, char *buf, size_t n);

#endif
