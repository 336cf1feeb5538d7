/* chunkcache.h -- a read-through local chunk cache directory in front of another store, shared by
 * every process of a host.
 *
 * Layout (docs/formats.md section 8): object `key` lives in {root}/{key}/ as chunk files
 * `{index:012d}-{length}.bin` (index = offset / chunk size, length = the chunk's bytes, shorter
 * for the last chunk) plus `size.txt` (the object's size in decimal).  Beside them, while a chunk
 * is being filled: `{index:012d}.lock` (the fill's flock) and `{name}.tmp.{pid}.{n}` (its bytes);
 * at the root, `.usage` (the bytes the directory holds, under its own flock).
 *
 * Any number of processes may share one root (docs/chunker.md, "the host's chunk directory"):
 *  - a missing chunk is fetched whole by one filler at a time, host-wide: the filler holds the
 *    chunk's lock file; anyone else wanting it waits for the lock (at most wait_ms, then reads
 *    the store itself, uncached) and then reads the file;
 *  - a chunk file appears whole or not at all (temp file, fdatasync, rename), a file whose size
 *    is not the length in its name is never served (and is replaced); a killed filler leaves a
 *    temp file and a lock file nobody holds, removed later (its pid is gone, the lock is free);
 *  - the chunk files and the temp files being filled stay within `limit` bytes: the count in
 *    `.usage` is kept by every process, and going over it rescans the directory and removes the
 *    least recently used chunk files (mtime; a hit bumps it).  Removing is an unlink: a reader
 *    that has the file open reads on.
 *  - a directory that cannot be written (full, read-only, ...) only costs the caching: reads go
 *    on from the inner store, with one warning per cache (snap_warn).  On ENOSPC the cache also
 *    lowers its limit to 3/4 of what the directory holds and evicts to it.
 *
 * The result is a struct store: reads are served from chunk files where they exist and fetched
 * (up to 4 chunks per inner read, the caller's own offset first) where they do not; stat goes to
 * the inner store; the wrapper is read-only.  It owns the inner store only with owns_inner.
 */
#ifndef SNAP_STORE_CHUNKCACHE_H
#define SNAP_STORE_CHUNKCACHE_H

#include "store/store.h"

struct chunkcache_opts {
    uint64_t limit;          /* bytes of chunk files to keep; 0: 10 GiB */
    uint32_t chunk_size;     /* 0: 4 MiB */
    unsigned wait_ms;        /* longest wait for another filler of a chunk; 0: 30 s */
    bool owns_inner;         /* close the inner store with the cache (also on a failed open) */
};

struct chunkcache_stats {
    uint64_t hits;           /* chunk pieces served from files */
    uint64_t inner_reads;    /* reads passed to the inner store */
    uint64_t files_written;  /* chunk files renamed into place */
    uint64_t evictions;      /* chunk files removed for the limit */
    uint64_t waits;          /* chunks waited for while another filler had them */
    uint64_t uncached;       /* inner reads not written to the cache (timeouts, failures) */
    uint64_t bytes;          /* the directory's byte count when this cache last looked */
};

int store_chunkcache_open(struct store *inner, const char *root, const struct chunkcache_opts *o,
                          struct store **out);
/* The counters of a chunk cache; all zeros for any other store (or NULL), so a caller need not
 * know what its store is. */
void store_chunkcache_stats(struct store *s, struct chunkcache_stats *out);
bool store_is_chunkcache(const struct store *s);
/* Serve [off, off+len) of key from chunk files alone: 0, or SNAP_EAGAIN (no message) when a chunk
 * is not in the directory, the size is not known yet, or s is not a chunk cache.  Nothing is
 * fetched.  For a caller that keeps no copy of its own (lib/chunker hands whole chunks over). */
int store_chunkcache_read_hit(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst);
/* Are all the chunks holding [off, off+len) of key in the directory (whole)? */
bool store_chunkcache_has(struct store *s, const char *key, uint64_t off, uint64_t len);
/* One compressed frame, [off, off+len) of key (an .lz4 / .zstd object), through its own file
 * {root}/{key less the suffix}/{off %016x}-{len %x}.frm (docs/formats.md section 9): a hit is read
 * whole; a miss is read from the inner store by one process of the host at a time (the others
 * wait on its lock file and then hit), and kept only when verify(vctx, bytes, len) says 0 (the
 * caller decodes and checks the frame there); a file that fails verify is removed and fetched
 * again.  verify runs once per call that returns 0 with all len bytes.  On a store that is not a
 * chunk cache: store_read, then verify.  res as store_read's. */
typedef int (*store_verify_fn)(void *vctx, const uint8_t *p, uint64_t len);
int store_chunkcache_read_frame(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
                                store_verify_fn verify, void *vctx, store_progress_fn progress, void *ctx,
                                struct store_read_result *res);

#endif
