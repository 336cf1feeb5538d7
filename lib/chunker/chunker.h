/* chunker.h -- fetches one store object's chunks into a cache, waking each reader as soon as its
 * own blocks are in.
 *
 * The object is cut in chunks of `chunk_size` (4 MiB) aligned to it, the last one shorter.  A
 * read that finds its blocks in the cache copies them out; otherwise it joins the fetch of its
 * chunk or starts one, and waits only for the blocks it asked for.  Fetches run on the chunker's
 * own threads, one per chunk however many readers wait on it; they outlive the reader that
 * started them (bounded by their own timeout), and their error reaches every waiter.  Nothing is
 * marked present unless it arrived whole (block granularity); the next read retries.  A fetched
 * block that is all zeros becomes a zero block (a hole), not a present one.
 *
 * Modes, for the benchmark and for comparison:
 *   CHUNKER_DEMAND     (default) the fetch starts at the first block someone waits for, then
 *                      fills the rest of the chunk (after, then before); a reader whose blocks
 *                      the running stream will not reach soon, or whose chunk finds every fetch
 *                      thread busy, gets its own small range request, run on its own thread
 *   CHUNKER_STREAMING  the whole chunk from its start; readers wake as their bytes arrive
 *   CHUNKER_FULL       the whole chunk; readers wake when all of it is in (the old behaviour)
 *
 * Fetch pool.  Fetches do not run on threads of the chunker's own: every chunker of a process
 * (and every frame chunker, frames.h) posts its queued jobs to one bounded fetch pool -- the
 * process-wide one unless opts.pool names another -- whose threads and direct-read slots all of
 * them share (pool.c).  A chunker that is not being read holds no thread and no buffer but its
 * cache; `fetchers` and `direct_reads` cap what one chunker may use of the pool at once, and
 * chunkers with queued jobs take turns at its threads, so one busy object cannot starve reads of
 * another.  The thread count, and the fetch memory, stay bounded by the pool however many chunkers
 * are open.
 *
 * The size may be unknown at open: the first fetch asks for a chunk-sized range at the requested
 * offset and learns the size from the response (store_read_result.total_size); the cache file is
 * created then.  Reads, cancellation and stats are thread safe; see chunker.c for the locking.
 */
#ifndef SNAP_CHUNKER_H
#define SNAP_CHUNKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct store;
struct cache;
struct chunker;
struct chunker_pool;

/* The process-wide pool's size: fetch threads (started on demand) and direct-read slots (each a
 * CHUNKER_DIRECT_MAX buffer, allocated with the pool; pages never used cost no memory).  24 threads: one object's 16 streams (its
 * cold sequential bandwidth) and 8 more for the others meanwhile. */
#define CHUNKER_POOL_THREADS 24
#define CHUNKER_POOL_DIRECT 64
#define CHUNKER_POOL_THREADS_MAX 1024
#define CHUNKER_POOL_DIRECT_MAX 4096

/* A pool of its own (tests, benchmarks); threads start on demand, up to `threads`. */
int chunker_pool_new(unsigned threads, unsigned direct_slots, struct chunker_pool **out);
/* Every chunker using it must be closed first. */
void chunker_pool_free(struct chunker_pool *p);
/* The process-wide pool, created at first use and never freed; NULL only when out of memory. */
struct chunker_pool *chunker_pool_default(void);
struct chunker_pool_stats {
    unsigned threads, max_threads;   /* started, at most */
    unsigned busy, queued;           /* jobs running, posted and waiting for a thread */
    unsigned direct_slots, directs_used;
};
void chunker_pool_stats(struct chunker_pool *p, struct chunker_pool_stats *out);

#define CHUNKER_CHUNK_DEFAULT (4u << 20)

enum chunker_mode {
    CHUNKER_DEMAND = 0,
    CHUNKER_STREAMING,
    CHUNKER_FULL,
};

struct chunker_opts {
    enum chunker_mode mode;
    uint64_t size;               /* the object's size, or STORE_SIZE_UNKNOWN (learned from a fetch) */
    const char *cache_path;      /* the cache file to create; it is unlinked right after creation */
    struct cache_file *cache_file; /* or a region of this shared file (lib/cache); must outlive the
                                    chunker's open; then cache_path is not used */
    uint32_t block_size;         /* 0: 4096 */
    uint32_t chunk_size;         /* 0: 4 MiB; a power of two, a multiple of the block size */
    struct chunker_pool *pool;   /* NULL: the process-wide pool */
    unsigned fetchers;           /* jobs on pool threads at once; 0: 16 where the store streams into
                                    the cache (http, s3, gs with a known size), else 4 */
    unsigned fetch_timeout_ms;   /* a fetch gives up after this; 0: 60 s */
    unsigned read_timeout_ms;    /* a reader gives up waiting after this; 0: the fetch timeout */
    uint32_t demand_window;      /* CHUNKER_DEMAND, before the store's speed is known: a reader more
                                    than this many bytes ahead of the stream gets its own range
                                    request; 0: 64 KiB */
    unsigned max_waiters;        /* readers waiting at once (more wait for a slot); 0: 64 */
    unsigned direct_reads;       /* CHUNKER_DEMAND: range requests readers may run on their own threads
                                    at once (each in one of the pool's direct slots); 0: 32 */
};

/* The largest demand range a reader fetches on its own thread (see chunker.c, "Direct reads"). */
#define CHUNKER_DIRECT_MAX (128u << 10)

/* Counters since open, for tests and /metrics. */
struct chunker_stats {
    uint64_t fetches;            /* chunk fetches started */
    uint64_t range_fetches;      /* demand range requests started (queued or direct) */
    uint64_t direct_reads;       /* of which ran on their reader's thread */
    uint64_t store_reads;        /* store_read calls */
    uint64_t bytes_fetched;      /* bytes that landed */
    uint64_t fetch_errors;       /* fetches that failed */
    uint64_t hits;               /* reads served from the cache without waiting */
    uint64_t waits;              /* reads that waited for a fetch */
    uint64_t wait_errors;        /* waits that ended in an error, a timeout or a cancel */
    uint64_t handed_over;        /* bytes of chunks dropped here after a fetch, as the chunk cache
                                    directory holds them (reads then come from there); a chunk
                                    that a range request and its stream both fetched counts twice */
};

/* A reader's cancel token: chunker_cancel() ends the waits that use it with SNAP_ECANCELED. */
struct chunker_cancel {
    atomic_int canceled;
};

/* Open a chunker for `key` of store s (which must outlive it), a client of the fetch pool. */
int chunker_open(struct store *s, const char *key, const struct chunker_opts *o, struct chunker **out);
/* Stop the fetches (at their next progress report), end every wait with SNAP_ECANCELED, wait for
 * the waiting readers to leave, free.  No read may start once close has begun. */
void chunker_close(struct chunker *ch);

/* Copy [off, off+len) of the object to dst, fetching what is missing.  len 0 is a no-op;
 * a range past the object's end is SNAP_ERANGE. */
int chunker_read(struct chunker *ch, uint64_t off, uint64_t len, void *dst);
/* The same with a wait bound (0: the chunker's read timeout) and an optional cancel token. */
int chunker_read_ex(struct chunker *ch, uint64_t off, uint64_t len, void *dst, unsigned timeout_ms,
                    struct chunker_cancel *cancel);
void chunker_cancel(struct chunker *ch, struct chunker_cancel *cancel);
/* Only from the cache: 0 when all of [off, off+len) is there (copied to dst), else SNAP_EAGAIN
 * with no message and nothing started -- also for a range the full read would refuse. */
int chunker_read_cached(struct chunker *ch, uint64_t off, uint64_t len, void *dst);
/* Zero-copy: when all of [off, off+len) is in the cache, the cache file and the offset that hold
 * it (*fd, *fd_off) and 0, else SNAP_EAGAIN.  Fetched blocks are written once and never change
 * afterwards, so they may be sent (sendfile) while other blocks are filled -- as long as nobody
 * writes into the chunker's cache (an overlay elsewhere, as a build device has) and no
 * chunker_evict runs meanwhile. */
int chunker_read_ref(struct chunker *ch, uint64_t off, uint64_t len, int *fd, uint64_t *fd_off);

/* Stop the running fetches, wait for them, and forget every fetched block (a cold cache again).
 * What the chunker learned about the store's speed is kept. */
int chunker_evict(struct chunker *ch);

/* The cache the chunker fills, or NULL before the size is known.  A copy-on-write layer writes
 * into it directly (cache_write/cache_zero): fetched data never lands on dirty or zero blocks. */
struct cache *chunker_cache(struct chunker *ch);
/* The object's size, or STORE_SIZE_UNKNOWN before the first response. */
uint64_t chunker_size(struct chunker *ch);
void chunker_stats(struct chunker *ch, struct chunker_stats *out);
const char *chunker_mode_name(enum chunker_mode m);

#endif
