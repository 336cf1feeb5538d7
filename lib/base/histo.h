/* histo.h -- latency histograms for /metrics, and the per-thread count of fetch waits that tells a
 * cold request from a warm one.
 *
 * A histogram has fixed, Prometheus-style upper bounds from 50 us to 10 s (1-2.5-5 steps) plus
 * +Inf.  Recording is lock-free and allocation-free: one relaxed atomic add on the bucket found
 * by a short scan, one on the sum.  Buckets are kept non-cumulative; snap_histo_read takes a
 * snapshot (each bucket read once) whose count is the sum of its buckets, so the cumulative
 * buckets of a snapshot always end at its count, however many threads record meanwhile.
 *
 *   static struct snap_histo h;              // zeroed: empty
 *   uint64_t t0 = snap_now_ns();
 *   ... the request ...
 *   snap_histo_add(&h, snap_now_ns() - t0);
 *   struct snap_histo_snap s = {0};
 *   snap_histo_read(&h, &s);                 // adds into s: sum several histograms this way
 *
 * Cold or warm: a reader that has to wait for data being fetched (lib/chunker) calls
 * snap_fetch_waited() on its own thread; the caller of a device op compares snap_fetch_waits()
 * before and after it.  A thread-local counter, so neither side takes a lock or passes a flag
 * through the layers in between (the device, the access layer, the build device).
 */
#ifndef SNAP_HISTO_H
#define SNAP_HISTO_H

#include <stdatomic.h>
#include <stdint.h>

#define SNAP_HISTO_BUCKETS 18 /* 17 finite upper bounds, then +Inf */

struct snap_histo {
    _Atomic uint64_t n[SNAP_HISTO_BUCKETS]; /* non-cumulative */
    _Atomic uint64_t sum_ns;
};

struct snap_histo_snap {
    uint64_t n[SNAP_HISTO_BUCKETS];
    uint64_t count, sum_ns;
};

/* Bucket i holds values <= snap_histo_bound_ns[i] (and above the bound before it); the last
 * bucket, everything above 10 s. */
extern const uint64_t snap_histo_bound_ns[SNAP_HISTO_BUCKETS - 1];
/* The bounds in seconds as Prometheus writes them: "5e-05" ... "10", "+Inf". */
extern const char *const snap_histo_le[SNAP_HISTO_BUCKETS];

/* The bucket of a value in ns. */
unsigned snap_histo_bucket(uint64_t ns);
void snap_histo_add(struct snap_histo *h, uint64_t ns);
/* Add a snapshot of h into out (zero out first for h alone). */
void snap_histo_read(const struct snap_histo *h, struct snap_histo_snap *out);
/* Add snapshot from into into. */
void snap_histo_merge(struct snap_histo_snap *into, const struct snap_histo_snap *from);

extern _Thread_local uint64_t snap_tl_fetch_waits;
/* This thread waits for a fetch (called by the waiter, before it waits). */
static inline void snap_fetch_waited(void)
{
    snap_tl_fetch_waits++;
}
/* How many times this thread has waited for a fetch. */
static inline uint64_t snap_fetch_waits(void)
{
    return snap_tl_fetch_waits;
}

#endif
