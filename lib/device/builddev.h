/* builddev.h -- a build file (a header over a chain of builds) as a read-write device, and the
 * export of its changes as a new diff build.
 *
 * The device is the header's Size.  A read of a range nobody wrote resolves through the header:
 * zero entries answer zeros with no I/O; other entries come from a chunker over the store object
 * `{buildId}/{file}` of the entry's build, at the entry's storage offset (for a compressed build,
 * a frame chunker over `{buildId}/{file}.lz4` or `.zstd`, in uncompressed space).  There is one chunker
 * per distinct build, opened on first use, sized from the header's builds section when it has
 * one, else from the first response.  Writes, WRITE_ZEROES and TRIM go to a copy-on-write
 * overlay cache of the device's size and never fetch anything.
 *
 * builddev_export() packs the overlay's dirty blocks into DIR/{new}/{file} and writes the merged
 * header DIR/{new}/{file}.header (Generation + 1).  Writers are held off while it runs; reads go
 * on.  Every export is relative to the build the device was opened on, so a second export
 * contains the first one's changes too (the two are siblings, not a chain).
 *
 * An empty device (builddev_open_empty) reads as zeros and exports a *base* build: Generation 0,
 * BaseBuildId = its own id, every unwritten range a zero entry.
 *
 * All calls are thread safe.  docs/design.md ("builddev and export") has the choices made.
 */
#ifndef SNAP_BUILDDEV_H
#define SNAP_BUILDDEV_H

#include "base/util.h"
#include "device/device.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

struct builddev;
struct hdr;
struct store;

struct builddev_opts {
    const char *file;        /* the object name inside each build: "memfile", "rootfs.ext4" */
    const char *cache_dir;   /* the overlay and the per-build chunker caches (unlinked at once) */
    unsigned fetchers;       /* fetch threads per build's chunker; 0: the chunker's default */
    unsigned header_format;  /* format of exported headers: 0 = the parent's (v1/v2 -> 3; an
                                empty device -> 4), else 3, 4 or 5 */
};

/* Serve header h (ownership passes to the device, also on failure) with its builds' data from
 * store s (owned too; may be NULL when every entry is zeros).  h must pass hdr_check; a header
 * whose upload is not finished is fine.  A build whose entry has a frame table is read frame
 * by frame from {id}/{file}.lz4 or .zstd (lib/chunker/frames.h). */
int builddev_open(struct hdr *h, struct store *s, const struct builddev_opts *o, struct builddev **out);
/* An all-zero device of size bytes whose first export is a base build. */
int builddev_open_empty(uint64_t size, const struct builddev_opts *o, struct builddev **out);
void builddev_close(struct builddev *d);

/* The device's ops (device.h), ctx = the struct builddev: TRIM and WRITE_ZEROES both zero
 * blocks in the overlay, with no fetch; CACHE starts fetching the chunks behind the range;
 * block status: zero overlay blocks and zero header entries are holes, the rest data. */
extern const struct dev_ops builddev_ops;

uint64_t builddev_size(const struct builddev *d);
/* The header the device serves (read-only). */
const struct hdr *builddev_header(const struct builddev *d);


struct builddev_stats {
    uint64_t chunkers;        /* builds whose chunker is open */
    uint64_t store_reads;     /* store_read calls of all chunkers */
    uint64_t bytes_fetched;
    uint64_t hits;            /* reads of fetched data served from the cache without waiting */
    uint64_t waits;           /* reads that waited for a fetch */
    uint64_t fetch_errors;    /* fetches that failed */
    uint64_t zero_bytes;      /* bytes answered from zero entries, no I/O */
    uint64_t overlay_bytes;   /* bytes answered from written blocks */
};
void builddev_stats(struct builddev *d, struct builddev_stats *out);

struct builddev_export {
    bool changed;                 /* false: nothing written since open; no files were made */
    snap_uuid build_id;           /* the new build (when changed) */
    snap_uuid parent_id;          /* the build the device was opened on (zero UUID: empty) */
    uint64_t generation;
    unsigned format;              /* header format written */
    uint64_t diff_bytes;          /* size of the diff object */
    uint64_t dirty_runs, zero_runs;
    char data_path[PATH_MAX];     /* DIR/{id}/{file} */
    char header_path[PATH_MAX];   /* DIR/{id}/{file}.header */
};

/* Export the changes into dir (created if missing): the diff object and its header, each
 * written to a temp file, fsync'd and renamed, the data first.  One export runs at a time;
 * writes wait while it runs. */
int builddev_export(struct builddev *d, const char *dir, struct builddev_export *r);

/* Remove what exports that never finished (a crash, kill -9) left in dir: the `.{uuid}.tmp/`
 * directories no running export holds (each export keeps a lock on its own).  *removed counts
 * them.  A missing dir is not an error. */
int builddev_clean_export_dir(const char *dir, unsigned *removed);

#endif
