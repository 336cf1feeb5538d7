/* hdrbench.h -- the header benchmark's generator and measurement (`snapctl bench header`): how
 * fast a large header parses, and in how much memory, for each version we write.
 *
 * The header: n entries from a fixed seed (every run measures the same bytes), 64 builds with
 * packed storage like a real diff, about every fifth entry zeros (never two in a row, nor the
 * first, so a v5 reader rebuilds exactly n entries), lengths of 1 to 8 pages.
 */
#ifndef SNAP_BENCH_HDRBENCH_H
#define SNAP_BENCH_HDRBENCH_H

#include "header/header.h"

#include <stddef.h>
#include <stdint.h>

#define HDRBENCH_BUILDS 64
#define HDRBENCH_LIMIT_NS 1000000000ull /* the gate: v5's median parse under 1 s */

int hdrbench_generate(uint64_t n, struct hdr **out);

struct hdrbench_row {
    unsigned version;
    size_t bytes, entries;
    uint64_t median_ns;
    uint64_t rss;                      /* peak RSS of the process after the parses */
};

/* Serialize src as `version`, optionally save it as DIR/header.vN, parse it `runs` times;
 * SNAP_EINTERNAL when a parse gives a different number of entries. */
int hdrbench_measure(const struct hdr *src, unsigned version, int runs, const char *save_dir,
                     struct hdrbench_row *r);

#endif
