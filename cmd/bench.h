/* bench.h -- shared by the `snapctl bench` benchmarks. */
#ifndef SNAP_BENCH_H
#define SNAP_BENCH_H

#include <stdint.h>

#define BENCH(name, id, summary) int bench_##id(int argc, char **argv);
#include "bench.def"
#undef BENCH

/* Peak resident set size of this process so far, in bytes (getrusage ru_maxrss). */
uint64_t bench_peak_rss(void);

#endif
