/* upload.h -- upload a file, or a whole build directory, to any store: parallel multipart
 * straight from a read-only mmap, the SHA-256 computed in the same pass.
 *
 *   struct upload_result r;
 *   int e = upload_file(store, "{buildId}/memfile", "/data/memfile", NULL, &r);  // r.sha256, r.etag
 *
 * How a file goes up:
 * - file:// (a store with put_file): copied in the kernel (copy_file_range), temp file, fsync,
 *   atomic rename; the hash is taken from the mapping at the same time.
 * - Not larger than one part: hashed, then one PUT carrying the sha256 metadata.
 * - Larger: a multipart upload.  Worker threads take part numbers in order and hand each part,
 *   a sub-slice of the mapping, to store_mp_part (the HTTP client writes it to the socket from
 *   the mapping, or mbedTLS encrypts it from there).  The calling thread hashes the mapping in
 *   order right behind what the workers have sent, while those pages are still hot; a page
 *   that is sent and hashed is dropped from the process (MADV_DONTNEED), so the peak RSS does
 *   not grow with the file or the part size.  Retries are the HTTP client's (each part and the
 *   complete call, 200-with-<Error> included); when a part or the complete gives up, the upload
 *   is aborted so no parts are left behind.  Metadata is fixed when an object is created, so
 *   the sha256 is set afterwards with store_set_meta (a server-side copy onto itself).
 * Part size: at least the minimum (5 MiB, S3's rule for every part but the last), grown in
 * MiB steps so there are at most 10,000 parts.
 */
#ifndef SNAP_UPLOAD_H
#define SNAP_UPLOAD_H

#include "store/store.h"

struct hdr_frame;
struct snap_cancel;

#include <stdbool.h>
#include <stdint.h>

#define UPLOAD_PART_DEFAULT (50ull << 20)
#define UPLOAD_PART_MIN (5ull << 20)
#define UPLOAD_MAX_PARTS 10000u
#define UPLOAD_CONCURRENCY_DEFAULT 16u
#define UPLOAD_CONCURRENCY_MAX 256u

struct upload_opts {
    uint64_t part_size;      /* 0 = 50 MiB; must be >= min_part_size */
    unsigned concurrency;    /* 0 = 16 */
    uint64_t min_part_size;  /* 0 = UPLOAD_PART_MIN (tests lower it for a scripted server) */
    uint64_t uncompressed_size; /* not 0: stored as the object's uncompressed-size metadata */
    /* Bytes sent so far (may step back a little when a part is retried), from the calling thread. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
    /* Optional: once SIGINT/SIGTERM set it, parts in flight finish, no new one starts, the
     * multipart upload is aborted (a file:// copy stops and its temp file goes) and the upload
     * returns SNAP_EINTR. */
    const struct snap_cancel *cancel;
};

struct upload_result {
    uint8_t sha256[32];
    char etag[STORE_ETAG_MAX];
    uint32_t parts;          /* 0 for a single PUT or a file copy */
    uint64_t bytes;
    double seconds;
};

/* The part size for a file of `size` bytes: want (0 = default), at least min (0 = 5 MiB),
 * grown to a whole MiB so that there are at most 10,000 parts. */
uint64_t upload_part_size(uint64_t size, uint64_t want, uint64_t min);

/* Upload the file at path to key. */
int upload_file(struct store *s, const char *key, const char *path, const struct upload_opts *o,
                struct upload_result *r);

/* ---- compressed objects (docs/formats.md sections 4-6) ---- */

struct upload_compress_opts {
    uint32_t comp;           /* HDR_COMP_LZ4 or HDR_COMP_ZSTD */
    int level;               /* 0: the library's default */
    uint32_t frame_size;     /* uncompressed bytes per frame; 0: 2 MiB */
    const char *tmp_dir;     /* where the compressed temp file goes; NULL: /tmp */
};

struct upload_compressed {
    int fd;                  /* the compressed object: an unlinked temp file */
    uint64_t bytes;          /* its size */
    uint64_t usize;          /* the input's size */
    uint8_t sha256[32];      /* of the input (the uncompressed data) */
    struct hdr_frame *frames;
    uint32_t nframes;
};

/* Compress the file at path frame by frame on two worker threads into a temp file, with its
 * frame table and the SHA-256 of the input.  Memory: one frame buffer per worker. */
int upload_compress_file(const char *path, const struct upload_compress_opts *o, struct upload_compressed *out);
void upload_compressed_free(struct upload_compressed *c);
/* The same, sent as it is made: frames packed into multipart parts of key (at least the part
 * size, default 8 MiB, grown to fit 10,000 parts), uploaded by three threads while two compress,
 * with the object's uncompressed-size metadata.  Memory: four part buffers.  out gets the frame
 * table and SHA-256 of the input (fd -1); r the object's size, parts, ETag and SHA-256.  Any
 * failure or a cancel aborts the multipart upload.  For stores that can multipart. */
int upload_compress_stream(struct store *s, const char *key, const char *path, const struct upload_compress_opts *co,
                           const struct upload_opts *uo, struct upload_compressed *out, struct upload_result *r);

/* ---- build directories (formats.md section 1) ---- */

#define UPLOAD_BUILD_FILES 6

struct upload_build_item {
    const char *name;        /* "memfile", ... */
    bool present, skipped;   /* skipped: an empty diff, not uploaded */
    struct upload_result r;
    uint32_t comp, nframes;  /* compressed: the type and frame count; r.bytes is the compressed size */
    uint64_t usize;          /* compressed: the uncompressed size */
};

struct upload_build_opts {
    struct upload_opts file;
    /* comp != 0: memfile and rootfs.ext4 go up compressed as {id}/{file}.lz4 or .zstd with their
     * uncompressed-size metadata, and their headers get the frame table, the uncompressed size
     * and its SHA-256 (written as v4, or header_format 5). */
    struct upload_compress_opts compress;
    unsigned header_format;  /* 0: the header's own format, at least 4 */
    /* Called before each object ("upload", "skip: empty diff", ...) -- for messages. */
    void (*event)(void *ctx, const char *name, const char *what);
    void *event_ctx;
};

/* Upload DIR, a build directory named by its build id (.../{buildId}/), to {buildId}/NAME
 * under the store: the data objects (memfile, rootfs.ext4, snapfile) first, then the headers
 * and metadata.json, so a header never names data that is not there yet.  A data object of
 * zero bytes, or whose header maps nothing to this build, is an empty diff and is skipped.
 * build_id receives the id (36 characters + NUL).  items[] follows the upload order. */
int upload_build(struct store *s, const char *dir, const struct upload_build_opts *o, char build_id[37],
                 struct upload_build_item items[UPLOAD_BUILD_FILES]);

#endif
