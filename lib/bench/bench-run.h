/* bench-run.h -- running the named peers of the benchmarks: find a program in $PATH, run a
 * child with its stdout captured and time it from fork to exit, pick a digest out of its
 * output, take medians and percentiles.  Shared by the benchmarks. */
#ifndef SNAP_BENCH_RUN_H
#define SNAP_BENCH_RUN_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_RUNS 100

/* Find prog in $PATH into out; SNAP_ENOTFOUND naming the benchmark (what) when it is missing. */
int bench_which(const char *what, const char *prog, char *out, size_t cap);
/* Run argv (argv[0] a full path) with stdin /dev/null and stdout captured into out (at most
 * cap - 1 bytes, NUL-terminated; the rest is read and dropped); *secs from fork to exit.
 * A non-zero exit or a signal is SNAP_EIO naming label; *exit_code (if not NULL) gets the
 * exit status, or 128 + the signal. */
int bench_run_capture(const char *label, char *const argv[], double *secs, char *out, size_t cap, int *exit_code);
/* The first run of exactly 64 lowercase hex digits in s, or -1. */
int bench_parse_digest(const char *s, char hex[65]);
/* Median of n (1..BENCH_MAX_RUNS) values. */
double bench_median(const double *v, int n);
/* Median of n run times, at least 1e-9 s, so rates and ratios never divide by zero. */
double bench_median_secs(const double *v, int n);
/* Peak resident set size of this process so far, in bytes (getrusage ru_maxrss). */
uint64_t bench_peak_rss(void);
/* The next value of a xorshift64 sequence (state must not be 0): the benchmarks' fixed-seed data. */
uint64_t bench_xorshift64(uint64_t *state);
/* Sort n values ascending, in place. */
void bench_sort(double *v, size_t n);
/* The value at fraction p (0..1) of n >= 1 sorted values, rounded to the nearest index. */
double bench_percentile(const double *sorted, size_t n, double p);

#endif
