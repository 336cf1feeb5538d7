/* device.h -- the one interface every exported device implements (a file, a store object, a
 * build, an empty build, and the access layer in front of any of them), in the NBD server's own
 * argument order (buf, len, off); lib/nbd serves a struct dev_ops directly.  And device_open,
 * which opens a device by kind.
 *
 *   struct device *d;
 *   device_open(&(struct device_opts){.kind = DEVICE_FILE, .path = "disk.img"}, &d);
 *   export.ops = d->ops; export.ctx = d->ctx; export.size = d->size;
 *   ...
 *   device_close(d);
 *
 * The ops are called from several threads at once: every device is thread safe.  They return 0
 * or a snap_err.
 */
#ifndef SNAP_DEVICE_H
#define SNAP_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Extent flags (the NBD base:allocation values). */
#define DEV_STATE_HOLE (1u << 0)
#define DEV_STATE_ZERO (1u << 1)

/* Extents, filled by the device's extents op. */
struct dev_extent {
    uint32_t length;
    uint32_t flags; /* DEV_STATE_HOLE | DEV_STATE_ZERO */
};
struct dev_extents {
    struct dev_extent *e;
    uint32_t n, cap;    /* the device appends while n < cap */
    uint64_t start;     /* the offset asked for */
};
/* Append [.., +length) with flags, merging with the previous extent of the same flags.
 * Returns false when the list is full (the device stops: a partial answer is valid). */
bool dev_extents_add(struct dev_extents *x, uint32_t length, uint32_t flags);

/* The same for a device walking its range: [off, off+len) (the next piece, contiguous with the
 * last) is data (zero=false) or a hole reading as zeros (zero=true).  False: stop. */
bool dev_extents_append(struct dev_extents *x, uint64_t off, uint64_t len, bool zero);

struct dev_ops {
    int (*pread)(void *ctx, void *buf, uint32_t len, uint64_t off);
    int (*pwrite)(void *ctx, const void *buf, uint32_t len, uint64_t off, bool fua);
    /* Optional (NULL: the device cannot; the NBD server does not advertise the command). */
    int (*flush)(void *ctx);
    int (*trim)(void *ctx, uint32_t len, uint64_t off, bool fua);
    int (*zero)(void *ctx, uint32_t len, uint64_t off, bool may_trim, bool fua);
    int (*cache)(void *ctx, uint32_t len, uint64_t off);
    int (*extents)(void *ctx, uint32_t len, uint64_t off, struct dev_extents *x);
    /* Optional fast paths, called on a connection's reader thread between requests: the same as
     * pread/pwrite, but they never wait for the network, a fetch, an export or a flush.  Where they
     * would, they return SNAP_EAGAIN (with no message, having done nothing) and the server calls
     * pread/pwrite on a worker thread.  NULL: always the worker. */
    int (*pread_nowait)(void *ctx, void *buf, uint32_t len, uint64_t off);
    int (*pwrite_nowait)(void *ctx, const void *buf, uint32_t len, uint64_t off, bool fua);
    /* Optional zero-copy reads, also on the reader thread: when all of [off, off+len) is held by
     * one file in pages that stay as they are while the server sends them (sendfile), that file
     * and offset (*fd, *fd_off) and 0; else SNAP_EAGAIN, and the server copies.  Which pages
     * qualify, and why that is safe, is in docs/design.md ("Zero-copy reads"). */
    int (*read_ref)(void *ctx, uint32_t len, uint64_t off, int *fd, uint64_t *fd_off);
};

/* ---- opening a device by kind (device.c) ---- */

struct store;
struct builddev;
struct builddev_export;

enum device_kind {
    DEVICE_FILE,    /* a local file or disk image, read and written in place */
    DEVICE_OBJECT,  /* one store object, fetched lazily; writes stay in the local cache */
    DEVICE_BUILD,   /* a build file: its header over the chain of builds in a store */
    DEVICE_EMPTY,   /* an all-zero build device whose first export is a base build */
};

struct device_opts {
    enum device_kind kind;
    const char *path;          /* FILE: the file; BUILD: the header's URL (read unless key is set) */
    const char *name;          /* BUILD: what messages call the header (NULL: path), e.g. the
                                * path as the user gave it */
    struct store *store;       /* OBJECT, BUILD: the store (the device owns it from here, also
                                * when device_open fails) */
    const char *key;           /* OBJECT: the object; BUILD: the header's key in store, to read it
                                * through the store (a peer has the header of a build whose upload
                                * is not finished), or NULL to read path */
    const char *file;          /* BUILD, EMPTY: the object name inside each build ("rootfs.ext4",
                                * "memfile"); EMPTY: NULL = "rootfs.ext4" */
    uint64_t size;             /* EMPTY: bytes */
    const char *cache_dir;     /* OBJECT, BUILD, EMPTY: the copy-on-write cache files (unlinked at
                                * once) */
    unsigned header_format;    /* BUILD, EMPTY: format of exported headers (0: the parent's) */
    bool read_only;            /* FILE: open the file read-only */
};

struct device {
    const struct dev_ops *ops; /* what the NBD server calls, with ctx */
    void *ctx;
    uint64_t size;
    uint32_t min_block;        /* the smallest write the device takes whole (its cache block) */
    enum device_kind kind;
    struct store *store;       /* OBJECT, BUILD: the store behind (owned by the device), for its
                                * statistics; else NULL */
    struct builddev *build;    /* BUILD, EMPTY: the build device (exports); else NULL */
    const char *file;          /* BUILD, EMPTY: the object name inside each build; else NULL */
};

/* Open a device of kind o->kind.  Errors say what failed on what: SNAP_EFORMAT, SNAP_ECHECK or
 * SNAP_ETOOBIG for a header that does not parse or check. */
int device_open(const struct device_opts *o, struct device **out);
void device_close(struct device *d);
/* Counters since open, for /metrics; zero where a kind has no such thing (a file has no store). */
struct device_stats {
    uint64_t cache_hits;       /* reads of fetched data answered from the local cache, no wait */
    uint64_t fetch_waits;      /* reads that waited for a fetch (cold reads) */
    uint64_t store_reads;      /* reads sent to the store */
    uint64_t store_bytes;      /* the bytes they brought */
    uint64_t fetch_errors;     /* fetches that failed (the next read retries) */
    uint64_t chunk_cache_hits; /* pieces served from the host's chunk cache directory, when the
                                * store is one (lib/store/chunkcache.h) */
};
void device_stats(struct device *d, struct device_stats *out);
/* Export the changes of a build device (DEVICE_BUILD, DEVICE_EMPTY) into dir (builddev_export);
 * SNAP_EUSAGE for other kinds. */
int device_export(struct device *d, const char *dir, struct builddev_export *r);
/* The answer to one export as one line of JSON with its newline, into out[cap]: err = 0 and r,
 * or err = what failed (r unused):
 *   {"ok":true,"changed":true,"parent_build_id":"..."|null,"build_id":"...","generation":N,
 *    "format":N,"diff_bytes":N,"dirty_runs":N,"zero_runs":N,"data":"...","header":"..."}
 *   {"ok":true,"changed":false,"parent_build_id":...}
 *   {"ok":false,"error":"...","exit":N}
 * An answer that does not fit becomes {"ok":false,"error":"export answer too long","exit":1}.
 * Returns the length written. */
size_t device_export_json(int err, const struct builddev_export *r, char *out, size_t cap);

/* One answer read back (the control client's side).  A field the answer lacks stays "" or 0. */
struct device_export_answer {
    bool ok, changed;
    int exit_code;                 /* !ok: the exit code the failure stands for (1 if none) */
    char error[1024];              /* !ok: why */
    char build_id[40], parent_build_id[40];
    int64_t generation, diff_bytes;
    char data[4096], header[4096]; /* the paths written */
};
/* Read one line of device_export_json; SNAP_EFORMAT (with what was wrong) if it is not JSON. */
int device_export_answer_parse(const char *line, size_t len, struct device_export_answer *out);

#endif
