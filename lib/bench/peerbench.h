/* peerbench.h -- the peer benchmark's runner (`snapctl bench peer`): cold 4 MiB chunk reads
 * through a tiered store (peer first, storage behind it) against the same chunks straight from
 * the store, interleaved in one run.
 *
 * Both sides read the same object.  Each run reads one chunk index both ways, alternating which
 * goes first, so machine noise hits both alike; chunk indexes advance every run (wrapping at the
 * object's end), so neither side reads a chunk it has read before.  Latency is from the call to
 * the last byte in the buffer.
 */
#ifndef SNAP_BENCH_PEERBENCH_H
#define SNAP_BENCH_PEERBENCH_H

#include "store/store.h"

#define PEERBENCH_CHUNK (4u << 20)
#define PEERBENCH_MAX_RUNS 1000

struct peerbench_result {
    double peer_p50_ms, peer_p99_ms;
    double store_p50_ms, store_p99_ms;
};

/* runs (1..PEERBENCH_MAX_RUNS) chunks of key each way.  SNAP_ERANGE when the object is under
 * one chunk, SNAP_ESHORT on a short read, SNAP_ECHECK when the peer did not answer every read
 * of the tiered store (storage did). */
int peerbench_run(struct store *tiered, struct store *plain, const char *key, unsigned runs,
                  struct peerbench_result *r);

#endif
