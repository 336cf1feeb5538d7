/* fetchbench.h -- the fetch benchmark's logic (`snapctl bench fetch`): a verified download into
 * the cache against the shell pipelines people would write instead, on the same URL.
 *
 *   struct fetchbench b = {.url = "http://127.0.0.1:8080/o.bin", .hex = "ab..", .runs = 3};
 *   fetchbench_run(&b);   // b.secs, b.median, b.size
 *
 * Contenders, each a child process timed from fork to exit, interleaved run by run so drift in
 * machine load hits them all alike:
 *   snapctl fetch URL --sha256 HEX --cache-dir DIR   (receive, write, hash, fsync, rename)
 *   curl -s URL | openssl dgst -sha256                (receive, hash in a second process)
 *   curl -s URL | sha256sum
 *   curl -s -o /dev/null URL                          (the transport alone)
 * Every digest must be the expected one; the cached file is removed after each run, so every
 * fetch is a miss.  The URL goes to the shell as $1, never into the shell text.
 */
#ifndef SNAP_BENCH_FETCHBENCH_H
#define SNAP_BENCH_FETCHBENCH_H

#include "bench/bench-run.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

enum { FETCHBENCH_FETCH, FETCHBENCH_OPENSSL, FETCHBENCH_SHA256SUM, FETCHBENCH_CURL, FETCHBENCH_N };

extern const char *const fetchbench_names[FETCHBENCH_N];

struct fetchbench {
    /* Set by the caller. */
    const char *url;          /* http(s):// */
    const char *hex;          /* the expected SHA-256, 64 lowercase hex digits */
    const char *dir;          /* the cache directory; NULL: a new one in $TMPDIR or /tmp, removed */
    int runs;                 /* 1..BENCH_MAX_RUNS */
    /* Results. */
    uint64_t size;            /* bytes of the object */
    double secs[FETCHBENCH_N][BENCH_MAX_RUNS], median[FETCHBENCH_N];
    /* Set by fetchbench_run (the programs, found in $PATH) and fetchbench_pipes. */
    char self[PATH_MAX], curl[PATH_MAX], openssl[PATH_MAX], sha256sum[PATH_MAX], sh[PATH_MAX];
    char pipe[FETCHBENCH_N][PATH_MAX * 2 + 64];
};

/* True when hex is a SHA-256 as --sha256 takes it: exactly 64 lowercase hex digits. */
bool fetchbench_hex_ok(const char *hex);
/* The shell text of the pipelines from the program paths (pipe[FETCHBENCH_FETCH] stays ""). */
void fetchbench_pipes(struct fetchbench *b);
/* Find the programs, warm the server with one curl run, time runs interleaved runs of every
 * contender and set the medians.  SNAP_ENOTFOUND for a missing program, SNAP_EHASH for a wrong
 * digest, the child's failure otherwise. */
int fetchbench_run(struct fetchbench *b);

#endif
