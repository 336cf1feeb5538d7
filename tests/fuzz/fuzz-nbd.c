/* fuzz-nbd.c -- the NBD server's real handshake and request dispatch (lib/nbd nbd_serve) fed a
 * client byte stream, against a small in-memory device that checks the backend contract.
 *
 * Input: byte 0 picks the export, the rest is what the client sends (client flags, options,
 * then requests and WRITE payloads), served from a memfd; replies go to /dev/null.
 *   bit 0   read-only            bit 1   min_block 512 (else 1)
 *   bit 2-3 size: 1 MiB, 4 KiB, 64 KiB + 512, 0
 *   bit 4   only pread/pwrite (no flush, trim, zero, cache, extents)
 *   bit 5   export name "build" (else "")
 *   bit 6   multi_conn           bit 7   the device fails everything in its last 4 KiB
 * One worker, so a run is deterministic.  The device aborts when lib/nbd hands it a request
 * nbd.h promises never to pass: outside the export, unaligned, over 32 MiB, a write to a
 * read-only export, or an extents list overflowing its capacity.
 */
#include "base/err.h"
#include "base/log.h"
#include "nbd/nbd.h"
#include "nbd/proto.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FZ_MEM (1u << 20)

struct fzdev {
    uint8_t mem[FZ_MEM];
    uint64_t size;
    uint32_t min_block;
    bool read_only, fail_tail;
};

static struct fzdev g_dev;

static void check(const struct fzdev *d, uint32_t len, uint64_t off, bool write, bool aligned)
{
    if (len == 0 || off > d->size || len > d->size - off)
        abort();
    if (aligned && ((off | len) & (d->min_block - 1)))
        abort();
    if (write && d->read_only)
        abort();
}

static bool fails(const struct fzdev *d, uint32_t len, uint64_t off)
{
    return d->fail_tail && d->size >= 4096 && off + len > d->size - 4096;
}

static int fz_pread(void *ctx, void *buf, uint32_t len, uint64_t off)
{
    struct fzdev *d = ctx;
    check(d, len, off, false, true);
    if (len > NBD_MAX_PAYLOAD)
        abort();
    if (fails(d, len, off))
        return SNAP_EIO;
    memcpy(buf, d->mem + off, len);
    return 0;
}

static int fz_pwrite(void *ctx, const void *buf, uint32_t len, uint64_t off, bool fua)
{
    (void)fua;
    struct fzdev *d = ctx;
    check(d, len, off, true, true);
    if (len > NBD_MAX_PAYLOAD)
        abort();
    if (fails(d, len, off))
        return SNAP_ENOSPC;
    memcpy(d->mem + off, buf, len);
    return 0;
}

static int fz_flush(void *ctx)
{
    struct fzdev *d = ctx;
    return d->fail_tail ? SNAP_EIO : 0;
}

static int fz_trim(void *ctx, uint32_t len, uint64_t off, bool fua)
{
    (void)fua;
    struct fzdev *d = ctx;
    check(d, len, off, true, true);
    if (fails(d, len, off))
        return SNAP_ENOTSUP;
    memset(d->mem + off, 0, len);
    return 0;
}

static int fz_zero(void *ctx, uint32_t len, uint64_t off, bool may_trim, bool fua)
{
    (void)may_trim;
    (void)fua;
    struct fzdev *d = ctx;
    check(d, len, off, true, true);
    if (fails(d, len, off))
        return SNAP_ERANGE;
    memset(d->mem + off, 0, len);
    return 0;
}

static int fz_cache(void *ctx, uint32_t len, uint64_t off)
{
    struct fzdev *d = ctx;
    check(d, len, off, false, true);
    return fails(d, len, off) ? SNAP_ETOOBIG : 0;
}

/* Every third 4 KiB block is a hole; extents are appended until the list is full. */
static int fz_extents(void *ctx, uint32_t len, uint64_t off, struct nbd_extents *x)
{
    struct fzdev *d = ctx;
    check(d, len, off, false, false);
    if (x->cap == 0 || x->n != 0 || x->start != off)
        abort();
    if (fails(d, len, off))
        return SNAP_EIO;
    uint64_t end = off + len;
    while (off < end) {
        uint64_t next = (off / 4096 + 1) * 4096;
        if (next > end)
            next = end;
        uint32_t flags = (off / 4096) % 3 == 0 ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0;
        bool more = nbd_extents_add(x, (uint32_t)(next - off), flags);
        if (x->n > x->cap)
            abort();
        if (!more)
            break;
        off = next;
    }
    return 0;
}

static const struct nbd_ops fz_ops_all = {
    .pread = fz_pread, .pwrite = fz_pwrite, .flush = fz_flush, .trim = fz_trim,
    .zero = fz_zero, .cache = fz_cache, .extents = fz_extents,
};
static const struct nbd_ops fz_ops_min = {.pread = fz_pread, .pwrite = fz_pwrite};

static int g_in = -1, g_out = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!getenv("SNAPCTL_LOG")) /* SNAPCTL_LOG=debug shows what a seed reaches */
        snap_log_set_level(SNAP_LOG_ERROR);
    g_in = memfd_create("fuzz-nbd-in", MFD_CLOEXEC);
    g_out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (g_in < 0 || g_out < 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const uint64_t sizes[4] = {FZ_MEM, 4096, 65536 + 512, 0};
    uint8_t cfg = data[0];
    struct fzdev *d = &g_dev;
    d->read_only = cfg & 1;
    d->min_block = (cfg & 2) ? 512 : 1;
    d->size = sizes[(cfg >> 2) & 3];
    d->fail_tail = cfg & 0x80;
    struct nbd_export exp = {
        .name = (cfg & 0x20) ? "build" : "",
        .description = "fuzz device",
        .size = d->size,
        .read_only = d->read_only,
        .multi_conn = cfg & 0x40,
        .min_block = d->min_block,
        .pref_block = 4096,
        .ops = (cfg & 0x10) ? &fz_ops_min : &fz_ops_all,
        .ctx = d,
    };
    if (ftruncate(g_in, 0) != 0 || pwrite(g_in, data + 1, size - 1, 0) != (ssize_t)(size - 1) ||
        lseek(g_in, 0, SEEK_SET) != 0)
        abort();
    struct nbd_conn_opts co = {.workers = 1, .peer = "fuzz"};
    struct nbd_stats st = {0};
    int err = nbd_serve(&exp, g_in, g_out, &co, &st);
    if (err < 0)
        abort();
    /* Counters stay consistent: bytes only move for requests that were counted. */
    if (st.reads > st.requests || st.writes > st.requests || st.bytes_written > size ||
        st.bytes_read > st.reads * (uint64_t)NBD_MAX_PAYLOAD)
        abort();
    return 0;
}
