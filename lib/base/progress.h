/* progress.h -- a one-line progress bar on stderr, only when stderr is a terminal.
 *
 *   struct progress p; progress_start(&p, "fetch asset.bin", total);   // total 0 = unknown
 *   progress_update(&p, done);   // cheap; redraws at most 10 times a second
 *   progress_end(&p);            // clears the line
 */
#ifndef SNAP_PROGRESS_H
#define SNAP_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct progress {
    bool on;
    char label[48];
    uint64_t total, done;
    uint64_t start_ns, last_ns;
};

void progress_start(struct progress *p, const char *label, uint64_t total);
void progress_set_total(struct progress *p, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
void progress_end(struct progress *p);
/* For tests: force drawing even without a terminal. */
void progress_force(struct progress *p, bool on);

#endif
