/* builddev.c -- a build file served through its header chain, with a copy-on-write overlay and
 * the export of the overlay as a new diff build.
 *
 * Design note.  Two layers, looked at in this order for every byte:
 *   overlay  a cache (lib/cache) of the device's size: DIRTY and ZERO blocks are what was written
 *            (or zeroed/trimmed) since open; ABSENT means "ask the header".  Nothing is ever
 *            fetched into it, so it is exactly the diff to export.
 *   header   hdr_lookup gives (build, storage offset) or zeros; data comes from that build's
 *            chunker over `{build}/{file}`, which keeps its own cache of the build's diff object.
 * A read walks the overlay's runs (cache_extent is one step per run), and inside an ABSENT run
 * the header's entries (one O(log n) lookup per entry touched), so a read spanning entries and
 * builds is split and each piece goes to the right place.  Block status walks the same two
 * levels and emits one extent per step.
 *
 * Chunkers are opened on first use, one per distinct build, indexed by the header's build index;
 * the hot path reads the slot with an acquire load and takes no lock once it is open.
 *
 * Quiesce: writers (write, zero) register in `active` under `q_mu`; an export sets `exporting`,
 * waits for `active` to drain, packs and writes, then lets writers go.  Reads never wait.
 */
#include "device/builddev.h"

#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "cache/cache.h"
#include "chunker/chunker.h"
#include "chunker/frames.h"
#include "header/header.h"
#include "header/layout.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <dirent.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define ULL(x) ((unsigned long long)(x))

struct builddev {
    struct hdr *h;
    struct store *store;
    char *file;
    char *cache_dir;
    unsigned fetchers;
    unsigned format;               /* of exported headers */
    bool empty;                    /* opened with builddev_open_empty: exports a base build */
    uint64_t size;
    struct cache *overlay;
    struct cache_file *builds;     /* the builds' caches, one region each (created at the first) */

    _Atomic(struct chunker *) *ch; /* per header build index, opened lazily */
    _Atomic(struct chunker_frames *) *fr; /* the same for compressed builds */
    pthread_mutex_t open_mu;

    pthread_mutex_t q_mu;          /* quiesce */
    pthread_cond_t q_cv;
    unsigned active;               /* writers inside the overlay */
    bool exporting;
    uint64_t writes;               /* under q_mu: writer_enter calls since open */
    pthread_mutex_t export_mu;     /* one export at a time */
    bool exported;                 /* under export_mu: an empty device's base build exists */
    uint64_t exported_writes;      /* under export_mu: `writes` when it was made */
    snap_uuid exported_id;         /* under export_mu: that base build */

    _Atomic uint64_t zero_bytes, overlay_bytes;
};

static int open_common(struct builddev *d, const struct builddev_opts *o)
{
    if (!o || !o->file || !*o->file || strchr(o->file, '/'))
        return snap_fail(SNAP_EUSAGE, "build device: the file name must be one path segment "
                         "such as memfile or rootfs.ext4");
    if (o->header_format && (o->header_format < 3 || o->header_format > 5))
        return snap_fail(SNAP_EUSAGE, "build device: header format %u: choose 3, 4 or 5",
                         o->header_format);
    const char *cd = o->cache_dir && *o->cache_dir ? o->cache_dir : "/tmp";
    if (!(d->file = snap_strdup(o->file)) || !(d->cache_dir = snap_strdup(cd)))
        return snap_fail(SNAP_ENOMEM, "build device: out of memory");
    d->fetchers = o->fetchers;
    pthread_mutex_init(&d->open_mu, NULL);
    pthread_mutex_init(&d->q_mu, NULL);
    pthread_cond_init(&d->q_cv, NULL);
    pthread_mutex_init(&d->export_mu, NULL);
    d->size = d->h->meta.size;
    if (d->size == 0)
        return snap_fail(SNAP_EUSAGE, "build device: the size is 0");
    if (!(d->ch = snap_calloc((size_t)d->h->nids + 1, sizeof *d->ch)) ||
        !(d->fr = snap_calloc((size_t)d->h->nids + 1, sizeof *d->fr)))
        return snap_fail(SNAP_ENOMEM, "build device: out of memory");
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/.snapctl-overlay.%ld.%p", d->cache_dir,
                         (long)getpid(), (void *)d) >= sizeof path)
        return snap_fail(SNAP_EUSAGE, "%s: path too long", d->cache_dir);
    int err = cache_open(path, d->size, HDR_PAGE, &d->overlay);
    if (err)
        return snap_fail_ctx(err, "the copy-on-write cache in %s", d->cache_dir);
    unlink(path);
    return 0;
}

int builddev_open(struct hdr *h, struct store *s, const struct builddev_opts *o, struct builddev **out)
{
    struct builddev *d = snap_calloc(1, sizeof *d);
    if (!d) {
        hdr_free(h);
        store_close(s);
        return snap_fail(SNAP_ENOMEM, "build device: out of memory");
    }
    d->h = h;
    d->store = s;
    int err = hdr_check(h);
    if (err)
        snap_fail_ctx(err, "the header does not cover its size (see inspect-header --check)");
    if (!err && h->nids && !s)
        err = snap_fail(SNAP_EUSAGE, "build device: the header names builds but no store was given");
    if (!err) {
        unsigned f = o ? o->header_format : 0;
        d->format = f ? f : (h->format < 3 ? 3 : h->format);
        err = open_common(d, o);
    }
    if (err) {
        builddev_close(d);
        return err;
    }
    *out = d;
    return 0;
}

int builddev_open_empty(uint64_t size, const struct builddev_opts *o, struct builddev **out)
{
    if (size == 0 || size > (UINT64_MAX >> 2))
        return snap_fail(SNAP_EUSAGE, "build device: size %llu is out of range", ULL(size));
    struct hdr_meta meta = {.version = 4, .block_size = HDR_PAGE, .size = size};
    struct hdr *h;
    int err = hdr_new(&meta, &h);
    if (!err && (err = hdr_append(h, 0, snap_round_up(size, HDR_PAGE), NULL, 0)) != 0)
        hdr_free(h);
    if (err)
        return err;
    struct builddev *d = snap_calloc(1, sizeof *d);
    if (!d) {
        hdr_free(h);
        return snap_fail(SNAP_ENOMEM, "build device: out of memory");
    }
    d->h = h;
    d->empty = true;
    d->format = o && o->header_format ? o->header_format : 4;
    if ((err = open_common(d, o)) != 0) {
        builddev_close(d);
        return err;
    }
    *out = d;
    return 0;
}

void builddev_close(struct builddev *d)
{
    if (!d)
        return;
    if (d->ch) {
        for (uint32_t i = 0; i < d->h->nids; i++) {
            struct chunker *c = atomic_load(&d->ch[i]);
            if (c)
                chunker_close(c);
            if (d->fr)
                chunker_frames_close(atomic_load(&d->fr[i]));
        }
        snap_free((void *)d->ch);
        snap_free((void *)d->fr);
        pthread_mutex_destroy(&d->open_mu);
        pthread_mutex_destroy(&d->q_mu);
        pthread_cond_destroy(&d->q_cv);
        pthread_mutex_destroy(&d->export_mu);
    }
    cache_file_put(d->builds);
    cache_close(d->overlay);
    store_close(d->store);
    hdr_free(d->h);
    snap_free(d->file);
    snap_free(d->cache_dir);
    snap_free(d);
}

uint64_t builddev_size(const struct builddev *d) { return d->size; }
const struct hdr *builddev_header(const struct builddev *d) { return d->h; }

/* The uncompressed size of a compressed build: its header entry, else the object's metadata --
 * never the compressed object's length. */
static int compressed_size(struct builddev *d, const struct hdr_build *hb, const char *id, const char *key,
                           uint64_t *size)
{
    if (hb->file_size > 0) {
        *size = (uint64_t)hb->file_size;
        return 0;
    }
    struct store_info info;
    int err = store_stat(d->store, key, &info);
    if (err)
        return snap_fail_ctx(err, "build %s: its header entry has no uncompressed size, and the object's "
                             "metadata cannot be read", id);
    if (info.uncompressed_size == STORE_SIZE_UNKNOWN)
        return snap_fail(SNAP_EFORMAT, "build %s: neither its header entry nor %s/%s has an uncompressed "
                         "size (object metadata uncompressed-size)", id, d->store->url, key);
    *size = info.uncompressed_size;
    return 0;
}

/* Open the source of header build index b: a chunker over {id}/{file}, or for a build whose
 * entry has a frame table, a frame chunker over {id}/{file}.lz4 or .zstd. */
static int open_source(struct builddev *d, uint32_t b)
{
    char id[SNAP_UUID_STRLEN + 1], key[PATH_MAX], path[PATH_MAX];
    snap_uuid_format(&d->h->ids[b], id);
    const struct hdr_build *hb = d->h->has_builds ? hdr_find_build(d->h, &d->h->ids[b]) : NULL;
    bool framed = hb && hb->comp != HDR_COMP_NONE;
    char suffix[16] = "";
    if (framed)
        snprintf(suffix, sizeof suffix, ".%s", hdr_comp_name(hb->comp));
    int err = hdr_layout_key(key, sizeof key, id, d->file, suffix);
    if (err)
        return err;
    /* One file for the caches of every build of the chain, a region each: open files stay flat
     * however deep the chain (docs/chunker.md, "What grows with the depth"). */
    if ((size_t)snprintf(path, sizeof path, "%s/.snapctl-builds.%ld.%p", d->cache_dir, (long)getpid(),
                         (void *)d) >= sizeof path)
        return snap_fail(SNAP_EUSAGE, "%s: path too long", d->cache_dir);
    if (!d->builds) {
        if ((err = cache_file_open(path, &d->builds)) != 0)
            return snap_fail_ctx(err, "the build cache in %s", d->cache_dir);
        unlink(path);
    }
    if (framed) {
        char plain[PATH_MAX]; /* a peer serves the build uncompressed under its plain name */
        snprintf(plain, sizeof plain, "%s/%s", id, d->file);
        struct chunker_frames_opts fo = {.h = d->h, .build = hb, .cache_file = d->builds, .fetchers = d->fetchers,
                                         .peer_key = plain};
        struct chunker_frames *f = NULL;
        if ((err = compressed_size(d, hb, id, key, &fo.size)) == 0 &&
            (err = chunker_frames_open(d->store, key, &fo, &f)) == 0)
            atomic_store_explicit(&d->fr[b], f, memory_order_release);
        return err;
    }
    struct chunker_opts co = {
        .size = hb && hb->file_size > 0 ? (uint64_t)hb->file_size : STORE_SIZE_UNKNOWN,
        .cache_file = d->builds,
        .fetchers = d->fetchers,
    };
    struct chunker *c;
    if ((err = chunker_open(d->store, key, &co, &c)) != 0)
        return snap_fail_ctx(err, "build %s", id);
    atomic_store_explicit(&d->ch[b], c, memory_order_release);
    return 0;
}

/* Read [off, off+len) of header build index b's data (uncompressed space), opening its source
 * on first use.  nowait: only what its cache holds, else SNAP_EAGAIN. */
static int read_build(struct builddev *d, uint32_t b, uint64_t off, uint64_t len, void *dst, bool nowait)
{
    struct chunker *c = atomic_load_explicit(&d->ch[b], memory_order_acquire);
    struct chunker_frames *f = c ? NULL : atomic_load_explicit(&d->fr[b], memory_order_acquire);
    if (nowait)
        return c ? chunker_read_cached(c, off, len, dst) : f ? chunker_frames_read_cached(f, off, len, dst)
                                                             : SNAP_EAGAIN;
    if (!c && !f) {
        int err = 0;
        pthread_mutex_lock(&d->open_mu);
        if (!atomic_load(&d->ch[b]) && !atomic_load(&d->fr[b]))
            err = open_source(d, b);
        pthread_mutex_unlock(&d->open_mu);
        if (err)
            return err;
        c = atomic_load_explicit(&d->ch[b], memory_order_acquire);
        f = atomic_load_explicit(&d->fr[b], memory_order_acquire);
    }
    return c ? chunker_read(c, off, len, dst) : chunker_frames_read(f, off, len, dst);
}

/* [off, off+len) from the header's builds (the overlay said: nobody wrote there). */
static int read_lower(struct builddev *d, uint8_t *p, uint64_t len, uint64_t off, bool nowait)
{
    while (len) {
        struct hdr_loc loc;
        int err = hdr_lookup(d->h, off, &loc);
        if (err)
            return err;
        uint64_t n = snap_min_u64(len, loc.remaining);
        if (loc.zero) {
            memset(p, 0, n);
            atomic_fetch_add_explicit(&d->zero_bytes, n, memory_order_relaxed);
        } else {
            if ((err = read_build(d, d->h->e[loc.entry].build, loc.storage, n, p, nowait)) != 0)
                return err;
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int bd_read(struct builddev *d, uint8_t *p, uint32_t len, uint64_t off, bool nowait)
{
    uint64_t end = off + len;
    if (off > d->size || len > d->size - off)
        return snap_fail(SNAP_ERANGE, "build device: read [%llu, +%u) past the size %llu",
                         ULL(off), len, ULL(d->size));
    while (off < end) {
        enum cache_state st;
        uint64_t n;
        int err = cache_extent(d->overlay, off, end - off, &st, &n);
        if (err)
            return err;
        if (n == 0)
            return snap_fail(SNAP_EINTERNAL, "build device: empty overlay run at %llu", ULL(off));
        if (st == CACHE_ABSENT) {
            err = read_lower(d, p, n, off, nowait);
        } else {
            err = cache_read(d->overlay, off, n, p);
            atomic_fetch_add_explicit(&d->overlay_bytes, n, memory_order_relaxed);
        }
        if (err)
            return err;
        p += n;
        off += n;
    }
    return 0;
}

static int bd_pread(void *ctx, void *buf, uint32_t len, uint64_t off)
{
    return bd_read(ctx, buf, len, off, false);
}

static int bd_pread_nowait(void *ctx, void *buf, uint32_t len, uint64_t off)
{
    return bd_read(ctx, buf, len, off, true);
}

/* Zero-copy: a range nobody wrote (overlay absent) inside one header entry of one build whose
 * cache holds all of it.  Those pages were written once by the fetch and never change; a write
 * racing this read lands in the overlay, so the reader gets the block from before the write,
 * whole. */
static int bd_read_ref(void *ctx, uint32_t len, uint64_t off, int *fd, uint64_t *fd_off)
{
    struct builddev *d = ctx;
    enum cache_state st;
    uint64_t n;
    struct hdr_loc loc;
    if (cache_extent(d->overlay, off, len, &st, &n) != 0 || st != CACHE_ABSENT || n < len ||
        hdr_lookup(d->h, off, &loc) != 0 || loc.zero || loc.remaining < len)
        return SNAP_EAGAIN;
    uint32_t b = d->h->e[loc.entry].build;
    struct chunker *c = atomic_load_explicit(&d->ch[b], memory_order_acquire);
    struct chunker_frames *f = c ? NULL : atomic_load_explicit(&d->fr[b], memory_order_acquire);
    return c ? chunker_read_ref(c, loc.storage, len, fd, fd_off)
         : f ? chunker_frames_read_ref(f, loc.storage, len, fd, fd_off) : SNAP_EAGAIN;
}

/* Writers hold off while an export runs; nowait: false instead of waiting. */
static bool writer_enter(struct builddev *d, bool nowait)
{
    pthread_mutex_lock(&d->q_mu);
    while (d->exporting && !nowait)
        pthread_cond_wait(&d->q_cv, &d->q_mu);
    bool in = !d->exporting;
    if (in) {
        d->active++;
        d->writes++;
    }
    pthread_mutex_unlock(&d->q_mu);
    return in;
}

static void writer_leave(struct builddev *d)
{
    pthread_mutex_lock(&d->q_mu);
    if (--d->active == 0 && d->exporting)
        pthread_cond_broadcast(&d->q_cv);
    pthread_mutex_unlock(&d->q_mu);
}

static int bd_pwrite(void *ctx, const void *buf, uint32_t len, uint64_t off, bool fua)
{
    struct builddev *d = ctx;
    writer_enter(d, false);
    int err = cache_write(d->overlay, off, len, buf);
    writer_leave(d);
    return (!err && fua) ? cache_flush(d->overlay) : err;
}

/* The payload is copied into the overlay's mapping once, under its stripe locks only. */
static int bd_pwrite_nowait(void *ctx, const void *buf, uint32_t len, uint64_t off, bool fua)
{
    struct builddev *d = ctx;
    if (fua || !writer_enter(d, true))
        return SNAP_EAGAIN;
    int err = cache_write(d->overlay, off, len, buf);
    writer_leave(d);
    return err;
}

/* TRIM: zero blocks in the overlay, no fetch. */
static int bd_trim(void *ctx, uint32_t len, uint64_t off, bool fua)
{
    struct builddev *d = ctx;
    writer_enter(d, false);
    int err = cache_zero(d->overlay, off, len);
    writer_leave(d);
    return (!err && fua) ? cache_flush(d->overlay) : err;
}

static int bd_zero(void *ctx, uint32_t len, uint64_t off, bool may_trim, bool fua)
{
    (void)may_trim; /* a zero block reads as zeros either way */
    return bd_trim(ctx, len, off, fua);
}

static int bd_flush(void *ctx)
{
    struct builddev *d = ctx;
    return cache_flush(d->overlay);
}

/* base:allocation: zero overlay blocks and zero header entries are holes, the rest data. */
static int bd_extents(void *ctx, uint32_t len, uint64_t off, struct dev_extents *x)
{
    struct builddev *d = ctx;
    uint64_t end = off + len > d->size ? d->size : off + len;
    while (off < end) {
        enum cache_state st;
        uint64_t n;
        int err = cache_extent(d->overlay, off, end - off, &st, &n);
        if (err)
            return err;
        if (n == 0)
            break;
        if (st != CACHE_ABSENT) {
            if (!dev_extents_append(x, off, n, st == CACHE_ZERO))
                return 0;
        } else {
            for (uint64_t o = off; o < off + n;) {
                struct hdr_loc loc;
                if ((err = hdr_lookup(d->h, o, &loc)) != 0)
                    return err;
                uint64_t m = snap_min_u64(off + n - o, loc.remaining);
                if (!dev_extents_append(x, o, m, loc.zero))
                    return 0;
                o += m;
            }
        }
        off += n;
    }
    return 0;
}

/* NBD_CMD_CACHE: start fetching the chunks behind [off, off+len). */
static int bd_cache(void *ctx, uint32_t len, uint64_t off)
{
    struct builddev *d = ctx;
    uint64_t end = snap_min_u64(off + len, d->size);
    uint8_t b;
    while (off < end) {
        struct hdr_loc loc;
        int err = hdr_lookup(d->h, off, &loc);
        if (err)
            return err;
        uint64_t n = snap_min_u64(end - off, loc.remaining);
        if (!loc.zero) {
            /* One byte per chunk starts its fetch; the rest streams in on the chunker's threads.
             * (A frame chunker reads the whole frame of that byte: frames are smaller.) */
            uint32_t bi = d->h->e[loc.entry].build;
            uint64_t step = atomic_load(&d->fr[bi]) ? HDR_FRAME_SIZE : CHUNKER_CHUNK_DEFAULT;
            for (uint64_t s = loc.storage; s < loc.storage + n; s += step)
                if ((err = read_build(d, bi, s, 1, &b, false)) != 0)
                    return err;
        }
        off += n;
    }
    return 0;
}

void builddev_stats(struct builddev *d, struct builddev_stats *out)
{
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < d->h->nids; i++) {
        struct chunker_frames *f = atomic_load_explicit(&d->fr[i], memory_order_acquire);
        if (f) {
            struct chunker_frames_stats fs;
            chunker_frames_stats(f, &fs);
            out->chunkers++;
            out->store_reads += fs.fetches;
            out->bytes_fetched += fs.bytes_fetched;
            out->hits += fs.hits;
            out->waits += fs.waits;
            out->fetch_errors += fs.fetch_errors;
        }
        struct chunker *c = atomic_load_explicit(&d->ch[i], memory_order_acquire);
        if (!c)
            continue;
        struct chunker_stats cs;
        chunker_stats(c, &cs);
        out->chunkers++;
        out->store_reads += cs.store_reads;
        out->bytes_fetched += cs.bytes_fetched;
        out->hits += cs.hits;
        out->waits += cs.waits;
        out->fetch_errors += cs.fetch_errors;
    }
    out->zero_bytes = atomic_load_explicit(&d->zero_bytes, memory_order_relaxed);
    out->overlay_bytes = atomic_load_explicit(&d->overlay_bytes, memory_order_relaxed);
}

/* ---- export ------------------------------------------------------------------------------ */

/* A run as the header wants it: a run clipped at an unaligned size is rounded up to the page
 * (the diff object is padded to match). */
static uint64_t page_len(const struct cache_extent *x)
{
    return snap_round_up(x->off + x->len, HDR_PAGE) - x->off;
}

/* The header of a base build: dirty runs packed onto the new build, everything else zeros. */
static int base_header(struct builddev *d, const snap_uuid *id, const struct cache_export *ex,
                       struct hdr **out)
{
    struct hdr_meta meta = {.version = 4, .block_size = hdr_block_size_for(d->file), .size = d->size,
                            .generation = 0, .build_id = *id, .base_build_id = *id};
    struct hdr *h;
    int err = hdr_new(&meta, &h);
    if (err)
        return err;
    uint64_t cursor = 0, storage = 0, whole = snap_round_up(d->size, HDR_PAGE);
    for (size_t i = 0; !err && i < ex->ndirty; i++) {
        const struct cache_extent *x = &ex->dirty[i];
        uint64_t n = page_len(x);
        if (x->off > cursor)
            err = hdr_append(h, cursor, x->off - cursor, NULL, 0);
        if (!err)
            err = hdr_append(h, x->off, n, id, storage);
        storage += n;
        cursor = x->off + n;
    }
    if (!err && cursor < whole)
        err = hdr_append(h, cursor, whole - cursor, NULL, 0);
    if (!err) {
        hdr_normalize(h);
        err = hdr_check(h);
    }
    if (!err)
        err = hdr_synth_builds(h);
    if (!err && ex->ndirty)
        err = hdr_set_build(h, id, (int64_t)storage, NULL);
    if (err) {
        hdr_free(h);
        return err;
    }
    *out = h;
    return 0;
}

/* The header of a diff on top of the served header: dirty and zero runs in ascending order. */
static int diff_header(struct builddev *d, const snap_uuid *id, const struct cache_export *ex,
                       struct hdr **out)
{
    struct hdr_diff *df;
    int err = hdr_diff_new(d->h, id, &df);
    if (err)
        return err;
    size_t i = 0, j = 0;
    while (!err && (i < ex->ndirty || j < ex->nzero)) {
        bool dirty = j == ex->nzero || (i < ex->ndirty && ex->dirty[i].off <= ex->zero[j].off);
        const struct cache_extent *x = dirty ? &ex->dirty[i++] : &ex->zero[j++];
        err = hdr_diff_add(df, x->off, page_len(x), dirty ? HDR_RUN_DIRTY : HDR_RUN_ZERO);
    }
    if (err) {
        hdr_diff_free(df);
        return err;
    }
    return hdr_diff_finish(df, out);
}

static void quiesce(struct builddev *d, bool on)
{
    pthread_mutex_lock(&d->q_mu);
    if (on) {
        d->exporting = true;
        while (d->active)
            pthread_cond_wait(&d->q_cv, &d->q_mu);
    } else {
        d->exporting = false;
        pthread_cond_broadcast(&d->q_cv);
    }
    pthread_mutex_unlock(&d->q_mu);
}

static void fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Pack, build the header, write both into tmpdir.  Called quiesced. */
static int export_into(struct builddev *d, const char *tmpdir, const snap_uuid *id,
                       struct builddev_export *r)
{
    char data[PATH_MAX], hpath[PATH_MAX];
    if ((size_t)snprintf(data, sizeof data, "%s/%s", tmpdir, d->file) >= sizeof data ||
        (size_t)snprintf(hpath, sizeof hpath, "%s/%s.header", tmpdir, d->file) >= sizeof hpath)
        return snap_fail(SNAP_EUSAGE, "%s: path too long", tmpdir);
    int fd = open(data, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return snap_fail_errno("%s", data);
    struct cache_export ex = {0};
    struct hdr *h = NULL;
    uint8_t *buf = NULL;
    size_t blen = 0;
    if (d->empty && d->exported && d->writes == d->exported_writes) {
        /* An empty device's base build is already out and nothing was written since. */
        r->changed = false;
        r->parent_id = d->exported_id;
        close(fd);
        return 0;
    }
    int err = cache_export(d->overlay, fd, &ex);
    if (!err && !d->empty && ex.ndirty == 0 && ex.nzero == 0) {
        r->changed = false; /* nothing to export: the caller removes tmpdir */
        goto out;
    }
    r->changed = true;
    if (!err)
        err = d->empty ? base_header(d, id, &ex, &h) : diff_header(d, id, &ex, &h);
    if (!err) {
        /* Pad a last partial page so the object is as long as the header says. */
        const struct hdr_build *nb = hdr_find_build(h, id);
        uint64_t want = nb && nb->file_size > 0 ? (uint64_t)nb->file_size : 0;
        if (want > ex.bytes && ftruncate(fd, (off_t)want) < 0)
            err = snap_fail_errno("%s: pad to %llu bytes", data, ULL(want));
        r->diff_bytes = snap_max_u64(want, ex.bytes);
    }
    if (!err && fsync(fd) < 0)
        err = snap_fail_errno("%s: fsync", data);
    if (!err)
        err = hdr_serialize(h, d->format, &buf, &blen);
    if (!err)
        err = snap_write_file_atomic(hpath, buf, blen, 0644);
    if (!err) {
        r->generation = h->meta.generation;
        r->format = d->format;
        r->dirty_runs = ex.ndirty;
        r->zero_runs = ex.nzero;
    }
out:
    close(fd);
    snap_free(buf);
    hdr_free(h);
    cache_export_free(&ex);
    return err;
}

static void remove_tmpdir(const char *tmpdir, const char *file)
{
    char p[PATH_MAX];
    if ((size_t)snprintf(p, sizeof p, "%s/%s", tmpdir, file) < sizeof p)
        unlink(p);
    if ((size_t)snprintf(p, sizeof p, "%s/%s.header", tmpdir, file) < sizeof p)
        unlink(p);
    rmdir(tmpdir);
}

int builddev_export(struct builddev *d, const char *dir, struct builddev_export *r)
{
    memset(r, 0, sizeof *r);
    if (!d->empty)
        r->parent_id = d->h->meta.build_id;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return snap_fail_errno("export directory %s", dir);
    snap_uuid id;
    int err = snap_uuid_random(&id);
    if (err)
        return err;
    char u[SNAP_UUID_STRLEN + 1], tmpdir[PATH_MAX], final[PATH_MAX];
    snap_uuid_format(&id, u);
    if ((size_t)snprintf(tmpdir, sizeof tmpdir, "%s/.%s.tmp", dir, u) >= sizeof tmpdir ||
        (size_t)snprintf(final, sizeof final, "%s/%s", dir, u) >= sizeof final ||
        (size_t)snprintf(r->data_path, sizeof r->data_path, "%s/%s", final, d->file) >= sizeof r->data_path ||
        (size_t)snprintf(r->header_path, sizeof r->header_path, "%s/%s.header", final, d->file) >=
            sizeof r->header_path)
        return snap_fail(SNAP_EUSAGE, "export directory %s: path too long", dir);
    if (mkdir(tmpdir, 0755) < 0)
        return snap_fail_errno("%s", tmpdir);
    /* Locked while it exists: builddev_clean_export_dir() leaves a live export's tmpdir alone. */
    int lockfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lockfd >= 0)
        flock(lockfd, LOCK_EX);

    pthread_mutex_lock(&d->export_mu);
    quiesce(d, true);
    err = export_into(d, tmpdir, &id, r);
    /* The build appears whole or not at all: its directory is renamed into place. */
    if (!err && r->changed) {
        fsync_dir(tmpdir);
        if (rename(tmpdir, final) < 0)
            err = snap_fail_errno("%s: rename into place", final);
        else
            fsync_dir(dir);
        if (!err && d->empty) { /* still quiesced: `writes` is the count this build holds */
            d->exported = true;
            d->exported_writes = d->writes;
            d->exported_id = id;
        }
    }
    quiesce(d, false);
    pthread_mutex_unlock(&d->export_mu);

    if (err || !r->changed)
        remove_tmpdir(tmpdir, d->file);
    if (lockfd >= 0)
        close(lockfd);
    if (err || !r->changed) {
        r->data_path[0] = r->header_path[0] = '\0';
        if (err)
            return snap_fail_ctx(err, "export into %s", dir);
        return 0;
    }
    r->build_id = id;
    snap_info("exported build %s (generation %llu, %llu diff bytes) into %s", u,
              ULL(r->generation), ULL(r->diff_bytes), dir);
    return 0;
}

/* Remove every non-directory entry of the directory open at fd, then parent/name itself. */
static void remove_flat_dir(int parent, const char *name, int fd)
{
    DIR *dh = fdopendir(fd);
    if (!dh) {
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(dh)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            unlinkat(dirfd(dh), de->d_name, 0);
    closedir(dh);
    unlinkat(parent, name, AT_REMOVEDIR);
}

/* Is name ".{uuid}.tmp"? */
static bool is_export_tmp(const char *name)
{
    char u[SNAP_UUID_STRLEN + 1];
    snap_uuid id;
    if (strlen(name) != SNAP_UUID_STRLEN + 5 || name[0] != '.' || strcmp(name + 1 + SNAP_UUID_STRLEN, ".tmp"))
        return false;
    memcpy(u, name + 1, SNAP_UUID_STRLEN);
    u[SNAP_UUID_STRLEN] = '\0';
    return snap_uuid_parse(u, &id) == 0;
}

int builddev_clean_export_dir(const char *dir, unsigned *removed)
{
    *removed = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return errno == ENOENT ? 0 : snap_fail_errno("export directory %s", dir);
    DIR *dh = fdopendir(dfd);
    if (!dh) {
        close(dfd);
        return snap_fail_errno("export directory %s", dir);
    }
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        if (!is_export_tmp(de->d_name))
            continue;
        int fd = openat(dirfd(dh), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) { /* an export running right now */
            close(fd);
            continue;
        }
        snap_info("removing %s/%s, left by an export that did not finish", dir, de->d_name);
        remove_flat_dir(dirfd(dh), de->d_name, fd);
        (*removed)++;
    }
    closedir(dh);
    return 0;
}


/* The device interface (device.h). */
const struct dev_ops builddev_ops = {
    .pread = bd_pread, .pwrite = bd_pwrite, .flush = bd_flush, .trim = bd_trim, .zero = bd_zero,
    .cache = bd_cache, .extents = bd_extents, .pread_nowait = bd_pread_nowait, .pwrite_nowait = bd_pwrite_nowait,
    .read_ref = bd_read_ref,
};
