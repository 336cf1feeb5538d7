/* access.h -- a layer in front of any device serve-nbd exports: it records which blocks the
 * client touches (lib/device/trace.h) and replays a recorded trace ahead of the client.  It is
 * a device itself: it takes the inner device's struct dev_ops (device.h) and gives one of the
 * same interface, so the NBD server calls it as it would the device.
 *
 *   struct access *a;
 *   access_open(&(struct access_opts){.ops = ops, .ctx = dev, .size = size, .block_size = 4096,
 *                                     .prefetch = &trace}, &a);
 *   export.ops = access_ops(a); export.ctx = a;     // every request goes through the layer
 *   ...
 *   access_close(a);                               // stops the prefetch first
 *
 * Recording: every request's blocks go to a trace_rec (reads "r"; writes, WRITE_ZEROES and TRIM
 * "w"); flushes, block status and CACHE are not accesses.
 *
 * Prefetch: `threads` threads (default 2, so the device's fetch threads are never all taken by
 * the prefetch) walk the trace's chunks -- the device's 4 MiB regions, in the order of their first
 * block in the trace, each once -- and read each chunk through the device in 256 KiB pieces,
 * starting at that first block, then to the chunk's end, then from its start: the order in which
 * the device's chunk fetch streams it, so each piece joins the fetch already running and nothing
 * is requested twice.  (A piece is larger than the chunker's direct reads, CHUNKER_DIRECT_MAX:
 * a piece that finds no stream never becomes a small range request of its own, it queues the
 * chunk's fetch.)  Pieces the client has read already are skipped.  A
 * prefetch thread does not start a piece while a client read of a block it has not brought in is
 * running (demand first), and stops at access_stop_prefetch / access_close.  Every entry counts,
 * "w" too: a trace is replayed on the build exported after it was recorded, where what the
 * client wrote is data to read (the file a guest wrote is read at its next boot).
 *
 * Counters (blocks of block_size): prefetched = trace blocks the prefetch brought in; used = of
 * those, the ones the client then read; unused = prefetched - used; missed = client first reads
 * of a block the prefetch had not brought in (without a prefetch: every first read).
 */
#ifndef SNAP_ACCESS_H
#define SNAP_ACCESS_H

#include "device/device.h"
#include "device/trace.h"

#include <stdbool.h>
#include <stdint.h>

struct access;

#define ACCESS_PIECE (256u << 10)
#define ACCESS_CHUNK (4u << 20)

struct access_opts {
    const struct dev_ops *ops;      /* the device */
    void *ctx;
    uint64_t size;
    uint32_t block_size;            /* recording granularity: the device's block (4096) */
    const struct trace *prefetch;   /* NULL: none; copied, the caller may free it after open */
    unsigned threads;               /* prefetch threads: 0 = 2, at most 16 */
};

struct access_stats {
    uint64_t recorded;              /* blocks in the recording */
    uint64_t trace_blocks;          /* blocks the prefetch trace asks for (within the device) */
    uint64_t prefetched, used, unused, missed;
    uint64_t chunks_done;           /* chunks the prefetch walked through */
    bool prefetch_running;
};

int access_open(const struct access_opts *o, struct access **out);
/* Stop the prefetch threads (a piece in flight finishes), then free; NULL is fine. */
void access_close(struct access *a);
void access_stop_prefetch(struct access *a);
/* The ops table to export with ctx = the struct access: the device's, each wrapped (an op the
 * device lacks stays NULL, so it is not advertised). */
const struct dev_ops *access_ops(const struct access *a);
/* What the client touched so far, in first-access order. */
int access_trace(struct access *a, struct trace *out);
void access_stats(struct access *a, struct access_stats *out);
/* The counters as one JSON object into j:
 *   {"access":{"recorded_blocks":N,"prefetch":BOOL,"trace_blocks":N,"prefetched":N,"used":N,
 *              "unused":N,"missed":N}}
 * (prefetch: whether a trace was being prefetched). */
struct json;
void access_stats_json(const struct access_stats *s, bool prefetching, struct json *j);

#endif
