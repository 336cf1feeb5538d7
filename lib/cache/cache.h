/* cache.h -- a sparse file of a device's (or an object's) size, mmap'd shared, with a state per block.
 *
 * Every block of `block_size` bytes (a power of two, 4096 by default; the last block may be
 * shorter than that when the size is not a multiple) is in one of four states:
 *
 *   CACHE_ABSENT   nothing local: the bytes live upstream (a fetch fills them)
 *   CACHE_PRESENT  fetched from upstream, unchanged: a clean copy, may be evicted
 *   CACHE_DIRTY    written locally: exported into the diff
 *   CACHE_ZERO     all zeros, the file range is a hole: exported as a zero run, never fetched
 *                  (written or zeroed locally, or fetched and found all zeros)
 *
 * Offsets and lengths are bytes.  Writers (write, zero, fill, evict) take block-aligned ranges:
 * `off` is a multiple of the block size and so is `len`, unless the range ends at the size (the
 * last, partial block).  Reads and queries take any byte range inside the size.  All calls are
 * thread safe; see the design note in cache.c for what is atomic with what.  Calls return 0 or a
 * snap_err whose detail names the cache file and the offset.
 *
 * The size is fixed when the cache is opened: a user whose size is learned late (the chunker,
 * from the first ranged response) opens the cache at that moment.
 */
#ifndef SNAP_CACHE_H
#define SNAP_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_BLOCK_DEFAULT 4096u
#define CACHE_BLOCK_MIN 512u
#define CACHE_BLOCK_MAX (1u << 24)

enum cache_state {
    CACHE_ABSENT = 0,
    CACHE_PRESENT = 1,
    CACHE_ZERO = 2,
    CACHE_DIRTY = 3,
};

struct cache;

struct cache_extent {
    uint64_t off, len;
};

/* What cache_export produced: the dirty runs packed into the output in this (ascending) order,
 * and the zero runs; both in device bytes, clipped at the size. */
struct cache_export {
    uint64_t bytes;              /* bytes written to the output file */
    struct cache_extent *dirty;
    size_t ndirty;
    struct cache_extent *zero;
    size_t nzero;
};

/* Create (or truncate) the file at path, size it (sparse) and map it.  block_size 0 means
 * CACHE_BLOCK_DEFAULT.  The file stays on disk after cache_close; unlink it whenever you like. */
int cache_open(const char *path, uint64_t size, uint32_t block_size, struct cache **out);
void cache_close(struct cache *c);
/* One file for the caches of several objects (a device's chain of builds), each in a region of
 * its own: one open file however many caches.  cache_file_open creates (or truncates) it; unlink
 * it whenever you like.  cache_open_in maps a new region of it, after every region before (a
 * region's disk is given back at its cache_close; the file grows sparse, never shrinks).  The
 * file lives until cache_file_put of its opener and the close of its last cache.  Thread safe. */
struct cache_file;
int cache_file_open(const char *path, struct cache_file **out);
void cache_file_put(struct cache_file *f);
int cache_open_in(struct cache_file *f, uint64_t size, uint32_t block_size, struct cache **out);
/* A cache nobody else opens by name: a region of f, or with f NULL a file of its own at path,
 * unlinked at once (the mapping keeps it). */
int cache_open_unlinked(struct cache_file *f, const char *path, uint64_t size, uint32_t block_size,
                        struct cache **out);

uint64_t cache_size(const struct cache *c);
uint32_t cache_block_size(const struct cache *c);
const char *cache_path(const struct cache *c);
/* The cache file's descriptor (for sendfile of blocks that no longer change; see chunker.h). */
int cache_fd(const struct cache *c);
/* Where cache offset off is in that file (a region of a shared file starts past 0). */
uint64_t cache_fd_offset(const struct cache *c, uint64_t off);

/* Queries: lock-free, a snapshot of the state at some instant during the call. */
enum cache_state cache_state_at(const struct cache *c, uint64_t off);
/* True when no block touching [off, off+len) is absent (len 0: true). */
bool cache_readable(const struct cache *c, uint64_t off, uint64_t len);
/* Find the first absent block touching [off, off+len): true and its (block-aligned) offset in
 * *at, or false when there is none. */
bool cache_find_absent(const struct cache *c, uint64_t off, uint64_t len, uint64_t *at);
/* The run of blocks of one state starting at the block holding off, at most max bytes from off
 * (clipped at the size): its state and its length from off.  Time is proportional to the run's
 * length in 64-block words, so walking a range costs about one step per run. */
int cache_extent(const struct cache *c, uint64_t off, uint64_t max, enum cache_state *state, uint64_t *len);

/* Copy [off, off+len) out to dst: a point-in-time copy per block.  Zero blocks read as zeros.
 * SNAP_ENOTFOUND (nothing reliable copied) when a block of the range is absent. */
int cache_read(struct cache *c, uint64_t off, uint64_t len, void *dst);
/* Copy src in and mark the blocks dirty; a block that is all zeros becomes a zero block instead
 * (its range punched out of the file). */
int cache_write(struct cache *c, uint64_t off, uint64_t len, const void *src);
/* Make the blocks zero blocks (punch the range): WRITE_ZEROES and TRIM.  Never needs a fetch. */
int cache_zero(struct cache *c, uint64_t off, uint64_t len);
/* Copy fetched bytes into the blocks of [off, off+len) that are absent and mark them present --
 * or, for an all-zero block, zero (a hole, no copy); present, dirty and zero blocks are left as
 * they are.  *filled (may be NULL) counts the bytes of the blocks that were absent. */
int cache_fill(struct cache *c, uint64_t off, uint64_t len, const void *src, uint64_t *filled);
/* Decoding straight into the cache: the mapping of [off, off+len) (NULL unless inside the size
 * and non-empty), for a writer that owns those blocks while they are absent -- the one fetch of a
 * compressed frame; nobody else fills them, and readers never copy absent blocks.  Once the
 * bytes are all in place, cache_publish marks the absent blocks of the (aligned) range present
 * exactly as cache_fill would (all-zero blocks become zero blocks), without a copy.  Bytes left
 * in blocks that are never published are never read. */
uint8_t *cache_map_range(struct cache *c, uint64_t off, uint64_t len);
int cache_publish(struct cache *c, uint64_t off, uint64_t len, uint64_t *filled);
/* Forget the present blocks of the range (they become absent, their pages are released). */
int cache_evict(struct cache *c, uint64_t off, uint64_t len);
/* Make written blocks durable (FLUSH, FUA): msync of the mapping and fdatasync. */
int cache_flush(struct cache *c);

/* Pack the dirty blocks, ascending, into out_fd from offset 0 (the file is truncated to the
 * packed length) and list the dirty and zero runs.  Uses copy_file_range from the cache file
 * where the kernel can, plain writes from the mapping otherwise.  Consistent when no writer runs
 * during the call (the device quiesces first).  Free the lists with cache_export_free. */
int cache_export(struct cache *c, int out_fd, struct cache_export *ex);
void cache_export_free(struct cache_export *ex);

#endif
