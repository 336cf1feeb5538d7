/* bench.h -- shared by the `snapctl bench` benchmarks. */
#ifndef SNAP_BENCH_H
#define SNAP_BENCH_H

#define BENCH(name, id, summary) int bench_##id(int argc, char **argv);
#include "bench.def"
#undef BENCH

#endif
