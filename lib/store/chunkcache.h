/* chunkcache.h -- a read-through local chunk cache directory in front of another store.
 *
 * Layout (formats.md section 7): object `key` lives in {root}/{key}/ as chunk files
 * `{index:012d}-{length}.bin` (index = offset / chunk size, length = the chunk's bytes, shorter
 * for the last chunk) plus `size.txt` (the object's size in decimal).  A chunk file appears only
 * whole: its bytes gather in `{name}.tmp-{pid}-{n}` (from one read or several partial ones, e.g.
 * a demand-first chunker's range requests and its stream) and are linked into place once every
 * byte is there, so a writer killed at any point never leaves a partial chunk visible; leftover
 * temp files of dead processes are removed at open.  Several processes may share one root.
 *
 * The directory is bounded by `limit` bytes of chunk files: least recently used files go first
 * (an in-memory index rebuilt at open from the files' mtimes; a hit bumps its file's mtime).
 *
 * The result is a struct store: reads are served from chunk files where they exist and fall
 * through to the inner store (one ranged read per run of missing chunks) where they do not;
 * stat goes to the inner store; the wrapper is read-only.  It does not own the inner store:
 * close the wrapper first, then the inner store.
 */
#ifndef SNAP_STORE_CHUNKCACHE_H
#define SNAP_STORE_CHUNKCACHE_H

#include "store/store.h"

struct chunkcache_opts {
    uint64_t limit;          /* bytes of chunk files to keep; 0: 10 GiB */
    uint32_t chunk_size;     /* 0: 4 MiB */
};

struct chunkcache_stats {
    uint64_t hits;           /* chunk pieces served from files */
    uint64_t inner_reads;    /* reads passed to the inner store */
    uint64_t files_written;  /* chunk files linked into place */
    uint64_t evictions;      /* chunk files removed for the limit */
    uint64_t bytes;          /* bytes of chunk files in the index */
};

int store_chunkcache_open(struct store *inner, const char *root, const struct chunkcache_opts *o,
                          struct store **out);
/* The counters of a chunk cache; all zeros for any other store (or NULL), so a caller need not
 * know what its store is. */
void store_chunkcache_stats(struct store *s, struct chunkcache_stats *out);

#endif
