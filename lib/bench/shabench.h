/* shabench.h -- the SHA-256 benchmark's logic (`snapctl bench sha256`): the contenders, the test
 * file, the interleaved runs and their medians.  The applet parses options and prints.
 *
 *   struct shabench_contender c[SHABENCH_NCONT];
 *   shabench_init(c);                                   // finds sha256sum and openssl
 *   shabench_make_file(dir, size, &cancel, path, sizeof path);  // or an existing file
 *   shabench_self(path, SHA256_IMPL_AUTO, &secs, warm); // warm the page cache
 *   shabench_measure(c, path, runs, digest);            // every digest must agree
 *
 * snapctl hashes in-process with read(2) into one 256 KiB buffer, as the fetch path does; the
 * peers run as child processes (fork/exec, timed from fork to waitpid) and their digests are
 * parsed from stdout.  Each run times every contender in turn, so drift in load hits them alike.
 */
#ifndef SNAP_BENCH_SHABENCH_H
#define SNAP_BENCH_SHABENCH_H

#include "bench/bench-run.h"
#include "crypto/sha256.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct snap_cancel;

enum { SHABENCH_NI, SHABENCH_GENERIC, SHABENCH_SHA256SUM, SHABENCH_OPENSSL, SHABENCH_NCONT };

struct shabench_contender {
    const char *name;
    const char *peer;         /* program name for the peers; NULL for snapctl's own */
    char path[PATH_MAX];      /* where the peer was found */
    bool available;
    double secs[BENCH_MAX_RUNS];
    double median;            /* seconds, at least 1e-9 */
};

/* The four contenders, the peers looked up in $PATH (SNAP_ENOTFOUND when one is missing). */
int shabench_init(struct shabench_contender c[SHABENCH_NCONT]);
/* Create a file of size pseudo-random bytes (fixed seed) in dir; its path into path, registered
 * with cancel (may be NULL) so a signal removes it.  path is "" when no file was created. */
int shabench_make_file(const char *dir, uint64_t size, struct snap_cancel *cancel, char *path, size_t cap);
/* Hash file in-process with impl: seconds and hex digest. */
int shabench_self(const char *file, enum sha256_impl impl, double *secs, char hex[65]);
/* runs (1..BENCH_MAX_RUNS) interleaved runs of every available contender; digest gets the one
 * digest all agreed on (SNAP_EHASH when one differs), then the medians are set. */
int shabench_measure(struct shabench_contender c[SHABENCH_NCONT], const char *file, int runs, char digest[65]);
/* Set each available contender's median of its runs (at least 1e-9 s). */
void shabench_medians(struct shabench_contender c[SHABENCH_NCONT], int runs);
/* Check hex against the digest so far (taken when digest is ""); SNAP_EHASH naming who and run. */
int shabench_agree(char digest[65], const char *hex, const char *who, int run);

#endif
