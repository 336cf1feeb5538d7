/* objdev.c -- a store object as a lazily fetched, copy-on-write device.
 *
 * Reads go through the chunker: present, dirty and zero blocks are copied out of the cache,
 * absent ones are fetched (only the chunks asked for).  Writes and zeroing go straight into the
 * chunker's cache as dirty / zero blocks, which a fetch never overwrites, so a write racing a
 * fetch of the same chunk keeps the written bytes.  Nothing is ever written to the store.
 */
#include "device/objdev.h"

#include "base/err.h"
#include "base/mem.h"
#include "cache/cache.h"
#include "chunker/chunker.h"
#include "store/store.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct objdev {
    struct store *store;
    char *key;
    struct chunker *ch;
    struct cache *cache;
    uint64_t size;
};

int objdev_open_store(struct store *s, const char *key, const char *cache_dir, struct objdev **out)
{
    struct objdev *d = snap_calloc(1, sizeof *d);
    if (!d) {
        store_close(s);
        return snap_fail(SNAP_ENOMEM, "out of memory");
    }
    d->store = s;
    int err = (d->key = snap_strdup(key)) ? 0 : snap_fail(SNAP_ENOMEM, "out of memory");
    struct store_info info;
    if (!err)
        err = store_stat(d->store, d->key, &info);
    char path[PATH_MAX];
    if (!err && (size_t)snprintf(path, sizeof path, "%s/.snapctl-cache.%ld.%p", cache_dir, (long)getpid(),
                                 (void *)d) >= sizeof path)
        err = snap_fail(SNAP_EUSAGE, "%s: path too long", cache_dir);
    if (!err) {
        struct chunker_opts o = {.size = info.size, .cache_path = path};
        err = chunker_open(d->store, d->key, &o, &d->ch);
    }
    if (!err && !(d->cache = chunker_cache(d->ch)))
        err = snap_fail(SNAP_EINTERNAL, "%s/%s: the chunker has no cache", s->url, key);
    if (err) {
        objdev_close(d);
        return err;
    }
    d->size = info.size;
    *out = d;
    return 0;
}

void objdev_close(struct objdev *d)
{
    if (!d)
        return;
    if (d->ch)
        chunker_close(d->ch);
    store_close(d->store);
    snap_free(d->key);
    snap_free(d);
}

uint64_t objdev_size(const struct objdev *d) { return d->size; }

void objdev_stats(struct objdev *d, struct chunker_stats *out)
{
    chunker_stats(d->ch, out);
}

static int od_pread(void *ctx, void *buf, uint32_t len, uint64_t off)
{
    struct objdev *d = ctx;
    return chunker_read(d->ch, off, len, buf);
}

static int od_pwrite(void *ctx, const void *buf, uint32_t len, uint64_t off, bool fua)
{
    struct objdev *d = ctx;
    int err = cache_write(d->cache, off, len, buf);
    return (!err && fua) ? cache_flush(d->cache) : err;
}

static int od_pread_nowait(void *ctx, void *buf, uint32_t len, uint64_t off)
{
    struct objdev *d = ctx;
    return chunker_read_cached(d->ch, off, len, buf);
}

static int od_pwrite_nowait(void *ctx, const void *buf, uint32_t len, uint64_t off, bool fua)
{
    return fua ? SNAP_EAGAIN : od_pwrite(ctx, buf, len, off, false);
}

/* TRIM: zero blocks in the cache (a fetch never overwrites them). */
static int od_trim(void *ctx, uint32_t len, uint64_t off, bool fua)
{
    struct objdev *d = ctx;
    int err = cache_zero(d->cache, off, len);
    return (!err && fua) ? cache_flush(d->cache) : err;
}

static int od_zero(void *ctx, uint32_t len, uint64_t off, bool may_trim, bool fua)
{
    (void)may_trim; /* a zero block reads as zeros either way */
    return od_trim(ctx, len, off, fua);
}

static int od_flush(void *ctx)
{
    struct objdev *d = ctx;
    return cache_flush(d->cache);
}

/* Extents from the block states: zero blocks are holes; everything else is data. */
static int od_extents(void *ctx, uint32_t len, uint64_t off, struct dev_extents *x)
{
    struct objdev *d = ctx;
    uint64_t end = off + len;
    while (off < end) {
        enum cache_state st;
        uint64_t n;
        int err = cache_extent(d->cache, off, end - off, &st, &n);
        if (err)
            return err;
        if (n == 0)
            break;
        if (!dev_extents_append(x, off, n, st == CACHE_ZERO))
            break;
        off += n;
    }
    return 0;
}

/* NBD_CMD_CACHE: start fetching the chunks behind [off, off+len). */
static int od_cache(void *ctx, uint32_t len, uint64_t off)
{
    struct objdev *d = ctx;
    /* Reading one byte of each chunk starts that chunk's fetch and waits only for its first
     * block; the rest of the chunk keeps streaming in on the chunker's threads. */
    uint8_t b;
    for (uint64_t o = off; o < (uint64_t)off + len; o += CHUNKER_CHUNK_DEFAULT) {
        int err = chunker_read(d->ch, o, 1, &b);
        if (err)
            return err;
    }
    return 0;
}


/* The device interface (device.h). */
const struct dev_ops objdev_ops = {
    .pread = od_pread, .pwrite = od_pwrite, .flush = od_flush, .trim = od_trim, .zero = od_zero,
    .cache = od_cache, .extents = od_extents, .pread_nowait = od_pread_nowait, .pwrite_nowait = od_pwrite_nowait,
};
