/* simstore.h -- a simulated store for tests and benchmarks: real delays, deterministic bytes, faults.
 *
 * Every key is an object of `size` bytes holding a pattern derived from `seed` (or, with
 * `inner`, the bytes of the same key in another store).  A read sleeps for the time to first
 * byte, then delivers the range in slices, sleeping so the bytes arrive at `bytes_per_sec`, and
 * reports progress as each slice lands -- the delays are real, not computed.  Faults are drawn per
 * read from a seeded generator: fail after some bytes, stall for a while, or end early (truncate)
 * without an error.  Not reachable by URL: built with store_sim_open().
 */
#ifndef SNAP_BENCH_SIMSTORE_H
#define SNAP_BENCH_SIMSTORE_H

#include "store/store.h"

struct sim_opts {
    uint64_t size;             /* every object's size */
    uint32_t seed;             /* of the byte pattern */
    struct store *inner;       /* serve this store's bytes instead (not owned; size is still `size`) */
    unsigned ttfb_us;          /* sleep before the first byte of every read */
    uint64_t bytes_per_sec;    /* delivery rate; 0 = as fast as possible */
    uint32_t slice;            /* delivery granularity; 0 = 32 KiB */
    bool size_at_end;          /* report total_size only when the read returns (default: before
                                  the first byte, like a Content-Range header) */
    /* Faults, each with this percentage of reads, at a random point of the range. */
    uint32_t fault_seed;
    unsigned fail_pct;         /* SNAP_ENET after some bytes */
    unsigned stall_pct;        /* no byte for stall_ms */
    unsigned stall_ms;
    unsigned truncate_pct;     /* success with fewer bytes than the object has */
    unsigned idle_timeout_ms;  /* a stall at least this long fails with SNAP_ETIMEOUT; 0 = 30 s */
    unsigned fail_first;       /* the first this many reads fail (SNAP_ENET) ... */
    uint64_t fail_first_at;    /* ... after this many bytes of their range */
};

struct sim_stats {
    uint64_t reads;            /* read calls */
    uint64_t bytes;            /* bytes delivered */
    uint64_t failures, stalls, truncations;
};

struct sim_request {
    uint64_t off, len;
};

int store_sim_open(const struct sim_opts *o, struct store **out);
void store_sim_stats(struct store *s, struct sim_stats *out);
/* Copy up to n of the most recent read requests into out, oldest first; returns how many. */
size_t store_sim_requests(struct store *s, struct sim_request *out, size_t n);
/* A storage countdown, like snap_mem_fail_after(): let the next n reads succeed and fail every
 * later one at once with SNAP_EIO ("injected"); n < 0 turns it off (the default).  Tests loop n
 * over every read a chunker or a device makes and accept only success or that one error. */
void store_sim_fail_after(struct store *s, long n);

/* The pattern bytes [off, off+len) of an object made with `seed`. */
void store_sim_pattern(uint32_t seed, uint64_t off, void *dst, size_t len);

#endif
