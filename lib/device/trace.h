/* trace.h -- access traces: the blocks a client touched, in first-access order, in the shape the
 * reference keeps in a build's metadata.json (docs/formats.md section 9):
 *
 *   {"indices": [block, ...], "access_types": ["r" | "w" | "p", ...], "block_size": bytes}
 *
 * and, inside metadata.json, under "prefetch": {"rootfs": TRACE} or {"memory": TRACE}.
 *
 * The recorder (trace_rec) is filled on the NBD hot path: a preallocated bitmap (one bit per
 * block: seen) and a preallocated order array (one slot per block), so recording a request takes
 * a few atomic operations per block and allocates nothing; it is lock free and thread safe.  A
 * block is recorded once, with the type of its first access.
 */
#ifndef SNAP_TRACE_H
#define SNAP_TRACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum trace_access { TRACE_READ = 1, TRACE_WRITE = 2, TRACE_PREFETCH = 3 };

/* A trace in memory (trace_free it). */
struct trace {
    uint64_t *idx;       /* block indices, first-access order */
    uint8_t *type;       /* enum trace_access, one per index */
    size_t n;
    uint32_t block_size;
};

/* The largest trace block size accepted (the reference's memfile uses 2 MiB pages). */
#define TRACE_BLOCK_MAX (1u << 30)

void trace_free(struct trace *t);

/* The trace kind metadata.json files a device's trace under: "memory" for "memfile", "rootfs"
 * for "rootfs.ext4" (and any other name). */
const char *trace_kind_for_file(const char *file);

/* Parse outside bytes: a bare trace object, or a metadata.json holding prefetch.{kind}.  kind
 * NULL: a metadata.json's only trace.  A metadata.json with no "prefetch" (or without that kind)
 * is SNAP_ENOTFOUND; anything malformed is SNAP_EFORMAT with what was wrong.  Indices must be
 * integers >= 0, access_types as long as indices, block_size a power of two from 512 to
 * TRACE_BLOCK_MAX.  The input is capped at 1 MiB (jsonr). */
int trace_parse(const void *buf, size_t len, const char *kind, struct trace *out);

/* The trace of kind in build_id's metadata.json on store s: SNAP_ENOTFOUND when the build has no
 * metadata.json or it holds no such trace. */
struct store;
int trace_load_build(struct store *s, const char *build_id, const char *kind, struct trace *out);
/* The trace in a local file: a trace (as trace_write_file writes it) or a metadata.json
 * (trace_parse); a parse error names the path. */
int trace_load_file(const char *path, const char *kind, struct trace *out);
/* Write metadata.json with t (of the device file named by data_path's last segment) beside
 * data_path, i.e. into the exported build's directory. */
int trace_export_beside(const struct trace *t, const char *data_path);

/* Write t as a bare trace object (one line). */
void trace_write_json(const struct trace *t, FILE *f);
/* Write t as a bare trace object to path, atomically (temp file + rename). */
int trace_write_file(const struct trace *t, const char *path);
/* Write {"version": 2, "prefetch": {kind: t}} to path, atomically (temp file + rename). */
int trace_write_metadata(const struct trace *t, const char *kind, const char *path);
/* Keep the blocks of a that b has too, in a's order, with a's access types (the reference keeps
 * the blocks two runs have in common).  The block sizes must match (SNAP_EUSAGE). */
int trace_merge(const struct trace *a, const struct trace *b, struct trace *out);

/* ---- the recorder ---- */
struct trace_rec;

/* A recorder for a device of size bytes in blocks of block_size (a power of two). */
int trace_rec_new(uint64_t size, uint32_t block_size, struct trace_rec **out);
void trace_rec_free(struct trace_rec *r);
uint32_t trace_rec_block_size(const struct trace_rec *r);
uint64_t trace_rec_blocks(const struct trace_rec *r);
/* Note an access to block b; true when it is b's first (it was recorded now).  Lock free,
 * allocation free; b past the device is ignored (false). */
bool trace_rec_touch(struct trace_rec *r, uint64_t b, enum trace_access a);
/* Blocks recorded so far. */
uint64_t trace_rec_count(const struct trace_rec *r);
/* Has block b been touched? */
bool trace_rec_seen(const struct trace_rec *r, uint64_t b);
/* The blocks recorded so far, in order (an access still being recorded may be left out). */
int trace_rec_snapshot(struct trace_rec *r, struct trace *out);

#endif
