/* frames.h -- the chunker of a compressed build object: the chunk is the frame.
 *
 * A build whose header entry carries a frame table (docs/header.md, "Compressed builds") is read
 * from its suffixed object ({id}/{file}.lz4 or .zstd).  Reading uncompressed offset X means: the
 * frame that holds X (binary search in the table); if its blocks are not in the cache, one range
 * request for the frame's compressed bytes, decoded into a warm scratch buffer and checked (the
 * frame's checksums, exactly sizeU bytes out); its waiting readers copy their bytes from there,
 * then the frame is written to the cache and published.  The same promises
 * as chunker.h, per frame: one fetch per frame however many readers wait on it, run on a thread
 * of the fetch pool (chunker.h, "Fetch pool") so it outlives the reader that started it; its error reaches every
 * waiter; a frame that fails is never marked present and the next read fetches it again; no
 * lock is held across remote I/O or decoding.  A read needing a frame the (possibly trimmed)
 * table lacks fails with SNAP_ENOTFOUND naming the build and the offset.
 *
 * Memory: the pool thread that runs a fetch brings a staging buffer (grown once to the largest
 * sizeC it met) and a decoder, both kept for its next fetches; the pool keeps 4 scratch buffers
 * of a frame each; nothing per read, and nothing per frame chunker but its cache and job table.  Thread safe.
 */
#ifndef SNAP_CHUNKER_FRAMES_H
#define SNAP_CHUNKER_FRAMES_H

#include <stdint.h>

struct store;
struct cache;
struct hdr;
struct hdr_build;
struct chunker_frames;
struct chunker_pool;

struct chunker_frames_opts {
    const struct hdr *h;           /* the header holding the frame table; must outlive the chunker */
    const struct hdr_build *build; /* the build's record (comp, frames) */
    uint64_t size;                 /* the uncompressed size (never the compressed object's) */
    const char *cache_path;        /* created, then unlinked at once */
    struct cache_file *cache_file; /* or a region of this shared file (lib/cache); NULL: cache_path */
    struct chunker_pool *pool;     /* NULL: the process-wide fetch pool */
    unsigned fetchers;             /* frame fetches on pool threads at once; 0: 4 */
    unsigned read_timeout_ms;      /* a reader gives up waiting after this; 0: 60 s */
    /* The build's plain name ({id}/{file}), for a tiered store (--peer): a frame is asked of the
     * peer first, in uncompressed space under this name (peers serve builds uncompressed), and
     * read compressed from storage when the peer cannot answer.  NULL: storage only. */
    const char *peer_key;
};

struct chunker_frames_stats {
    uint64_t fetches;        /* frame fetches started */
    uint64_t fetch_errors;   /* of which failed (transport, checksum, size) */
    uint64_t bytes_fetched;  /* compressed bytes read */
    uint64_t bytes_decoded;  /* uncompressed bytes published */
    uint64_t peer_frames;    /* frames the peer served uncompressed (not decoded) */
    uint64_t hits, waits;
};

/* Open for `key` (the suffixed object) of store s.  Checks the table against the size: every
 * frame inside [0, size), 4096-aligned, sizes at most HDR_FRAME_MAX (SNAP_EFORMAT otherwise). */
int chunker_frames_open(struct store *s, const char *key, const struct chunker_frames_opts *o,
                        struct chunker_frames **out);
/* Stop the fetches (a running one ends at its next progress report), end every wait, free. */
void chunker_frames_close(struct chunker_frames *c);
/* Copy uncompressed [off, off+len) to dst, fetching the frames that are missing. */
int chunker_frames_read(struct chunker_frames *c, uint64_t off, uint64_t len, void *dst);
/* Only frames already in the cache: 0, or SNAP_EAGAIN (no message, nothing started). */
int chunker_frames_read_cached(struct chunker_frames *c, uint64_t off, uint64_t len, void *dst);
/* Zero-copy, as chunker_read_ref: the cache file and offset of [off, off+len) when every block of
 * it was decompressed and checked (frames are published once and never change), else SNAP_EAGAIN. */
int chunker_frames_read_ref(struct chunker_frames *c, uint64_t off, uint64_t len, int *fd, uint64_t *fd_off);
uint64_t chunker_frames_size(const struct chunker_frames *c);
void chunker_frames_stats(struct chunker_frames *c, struct chunker_frames_stats *out);

#endif
