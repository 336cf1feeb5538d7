/* fuzz-nbd.c -- the NBD server's real handshake and request dispatch (lib/nbd nbd_serve) fed a
 * client byte stream, against a small in-memory device that checks the backend contract, with
 * every reply checked by a model of the client.
 *
 * Input: byte 0 picks the export, the rest is what the client sends (client flags, options,
 * then requests and WRITE payloads), served from a memfd; the server runs on its own thread and
 * its replies come back through a pipe.
 *   bit 0   read-only            bit 1   min_block 512 (else 1)
 *   bit 2-3 size: 1 MiB, 4 KiB, 64 KiB + 512, 0
 *   bit 4   only pread/pwrite (no flush, trim, zero, cache, extents)
 *   bit 5   export name "build" (else "")
 *   bit 6   multi_conn           bit 7   the device fails everything in its last 4 KiB
 * One worker, so requests run and are answered in order and a run is deterministic.
 *
 * Two oracles besides ASan/UBSan:
 * - The device aborts when lib/nbd hands it a request nbd.h promises never to pass: outside the
 *   export, unaligned, over 32 MiB, a write to a read-only export, an extents list overflowing
 *   its capacity.
 * - The checker walks the client's bytes and the server's replies in lockstep: the greeting;
 *   for each option, replies naming that option ending in ACK or an error (INFO_EXPORT with the
 *   export's size and flags); the EXPORT_NAME answer; then exactly one reply per request, in
 *   order, with its cookie, simple or structured as negotiated, a READ carrying exactly its
 *   length of bytes equal to a shadow copy of the device (kept from the writes, trims and zeroes
 *   the server acknowledged), block status inside the request (one extent with REQ_ONE); and the
 *   output ending exactly where the protocol says the connection ends.
 */
#include "base/bytes.h"
#include "base/err.h"
#include "base/log.h"
#include "nbd/nbd.h"
#include "nbd/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FZ_MEM (1u << 20)
#define FZ_FAIL(...) (fprintf(stderr, "fuzz-nbd: " __VA_ARGS__), fputc('\n', stderr), abort())

struct fzdev {
    uint8_t mem[FZ_MEM];
    uint64_t size;
    uint32_t min_block;
    bool read_only, fail_tail;
    uint64_t dirty_end;     /* mem[dirty_end..] is still zero (reset per run) */
};

static struct fzdev g_dev;

static void check(const struct fzdev *d, uint32_t len, uint64_t off, bool write, bool aligned)
{
    if (len == 0 || off > d->size || len > d->size - off)
        FZ_FAIL("device: %llu+%u outside the export", (unsigned long long)off, len);
    if (aligned && ((off | len) & (d->min_block - 1)))
        FZ_FAIL("device: %llu+%u not aligned to %u", (unsigned long long)off, len, d->min_block);
    if (write && d->read_only)
        FZ_FAIL("device: a write on a read-only export");
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
        FZ_FAIL("device: %u bytes, over 32 MiB", len);
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
        FZ_FAIL("device: %u bytes, over 32 MiB", len);
    if (fails(d, len, off))
        return SNAP_ENOSPC;
    memcpy(d->mem + off, buf, len);
    if (off + len > d->dirty_end)
        d->dirty_end = off + len;
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

/* Every third 4 KiB block is a hole; extents are appended until the list is full.  A request
 * under 8 bytes gets no extent at all (allowed: lib/nbd then answers one data extent). */
static int fz_extents(void *ctx, uint32_t len, uint64_t off, struct dev_extents *x)
{
    struct fzdev *d = ctx;
    check(d, len, off, false, false);
    if (x->cap == 0 || x->n != 0 || x->start != off)
        FZ_FAIL("device: extents list handed over in use");
    if (fails(d, len, off))
        return SNAP_EIO;
    if (len < 8)
        return 0;
    uint64_t end = off + len;
    while (off < end) {
        uint64_t next = (off / 4096 + 1) * 4096;
        if (next > end)
            next = end;
        uint32_t flags = (off / 4096) % 3 == 0 ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0;
        bool more = dev_extents_add(x, (uint32_t)(next - off), flags);
        if (x->n > x->cap)
            FZ_FAIL("device: extents list overflowed");
        if (!more)
            break;
        off = next;
    }
    return 0;
}

static const struct dev_ops fz_ops_all = {
    .pread = fz_pread, .pwrite = fz_pwrite, .flush = fz_flush, .trim = fz_trim,
    .zero = fz_zero, .cache = fz_cache, .extents = fz_extents,
};
static const struct dev_ops fz_ops_min = {.pread = fz_pread, .pwrite = fz_pwrite};

/* ---- the checker: a client model read in lockstep with the server's output ---- */

struct model {
    const uint8_t *in;      /* the client's bytes */
    size_t inlen, inpos;
    int out;                /* the server's replies */
    const struct nbd_export *exp;
    bool structured, meta;
    uint8_t *shadow;        /* what the device should hold */
};

static uint8_t g_shadow[FZ_MEM], g_scratch[FZ_MEM + 64];

/* Read exactly n reply bytes; false at EOF before the first byte, abort if cut in the middle. */
static bool out_get(struct model *m, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(m->out, (uint8_t *)buf + got, n - got);
        if (r < 0 && errno == EINTR) /* libFuzzer's timer */
            continue;
        if (r < 0)
            FZ_FAIL("read replies: %m");
        if (r == 0) {
            if (got)
                FZ_FAIL("a reply cut short after %zu of %zu bytes", got, n);
            return false;
        }
        got += (size_t)r;
    }
    return true;
}

static void out_need(struct model *m, void *buf, size_t n, const char *what)
{
    if (!out_get(m, buf, n))
        FZ_FAIL("no %s", what);
}

/* The connection must end here: no more output. */
static void out_eof(struct model *m, const char *why)
{
    uint8_t b;
    if (out_get(m, &b, 1))
        FZ_FAIL("output after the connection should have ended (%s)", why);
}

static const uint8_t *in_take(struct model *m, size_t n)
{
    if (m->inlen - m->inpos < n)
        return NULL;
    const uint8_t *p = m->in + m->inpos;
    m->inpos += n;
    return p;
}

/* The replies to one option, up to ACK or an error; returns the final reply type. */
static uint32_t option_replies(struct model *m, uint32_t opt, bool *saw_meta)
{
    for (;;) {
        uint8_t h[20];
        out_need(m, h, sizeof h, "option reply");
        uint32_t type = get_be32(h + 12), len = get_be32(h + 16);
        if (get_be64(h) != NBD_REP_MAGIC || get_be32(h + 8) != opt)
            FZ_FAIL("option %u: reply with magic %llx for option %u", opt, (unsigned long long)get_be64(h),
                    get_be32(h + 8));
        if (len > 8192)
            FZ_FAIL("option %u: reply of %u bytes", opt, len);
        out_need(m, g_scratch, len, "option reply data");
        if (type == NBD_REP_ACK) {
            if (len != 0)
                FZ_FAIL("option %u: ACK with %u bytes", opt, len);
            return type;
        }
        if (type & NBD_REP_ERR_BIT)
            return type;
        if (type == NBD_REP_INFO && (opt == NBD_OPT_INFO || opt == NBD_OPT_GO)) {
            if (len < 2)
                FZ_FAIL("INFO reply of %u bytes", len);
            if (get_be16(g_scratch) == NBD_INFO_EXPORT) {
                uint16_t f = len == 12 ? get_be16(g_scratch + 10) : 0;
                if (len != 12 || get_be64(g_scratch + 2) != m->exp->size || !(f & NBD_FLAG_HAS_FLAGS) ||
                    !(f & NBD_FLAG_READ_ONLY) != !m->exp->read_only)
                    FZ_FAIL("INFO_EXPORT: %u bytes, size or flags 0x%x wrong", len, f);
            }
        } else if (type == NBD_REP_SERVER && opt == NBD_OPT_LIST) {
            if (len < 4 || get_be32(g_scratch) != len - 4)
                FZ_FAIL("LIST reply: name length does not match");
        } else if (type == NBD_REP_META_CONTEXT &&
                   (opt == NBD_OPT_LIST_META_CONTEXT || opt == NBD_OPT_SET_META_CONTEXT)) {
            if (len != 4 + 15 || get_be32(g_scratch) != 1 || memcmp(g_scratch + 4, "base:allocation", 15) != 0)
                FZ_FAIL("META_CONTEXT reply");
            *saw_meta = true;
        } else {
            FZ_FAIL("option %u: unexpected reply type %u", opt, type);
        }
    }
}

/* The handshake; returns true when the client entered transmission. */
static bool check_handshake(struct model *m)
{
    uint8_t g[18];
    out_need(m, g, sizeof g, "greeting");
    if (get_be64(g) != NBD_MAGIC || get_be64(g + 8) != NBD_IHAVEOPT ||
        get_be16(g + 16) != (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES))
        FZ_FAIL("greeting");
    const uint8_t *p = in_take(m, 4);
    if (!p || (get_be32(p) & ~3u))
        return false;
    bool no_zeroes = get_be32(p) & NBD_FLAG_C_NO_ZEROES;
    const char *name = m->exp->name;
    for (;;) {
        const uint8_t *oh = in_take(m, 16);
        if (!oh || get_be64(oh) != NBD_IHAVEOPT)
            return false;
        uint32_t opt = get_be32(oh + 8), len = get_be32(oh + 12);
        const uint8_t *d = in_take(m, len);
        if (!d || len > (16u << 20))
            return false;
        bool saw_meta = false;
        if (len > (64u << 10)) {
            if (option_replies(m, opt, &saw_meta) != NBD_REP_ERR_TOO_BIG)
                FZ_FAIL("option of %u bytes not refused as too big", len);
            continue;
        }
        if (opt == NBD_OPT_EXPORT_NAME) {
            if (len != strlen(name) || memcmp(d, name, len) != 0)
                return false;
            uint8_t r[134];
            out_need(m, r, no_zeroes ? 10 : 134, "EXPORT_NAME answer");
            if (get_be64(r) != m->exp->size || !(get_be16(r + 8) & NBD_FLAG_HAS_FLAGS))
                FZ_FAIL("EXPORT_NAME answer");
            for (int i = 10; !no_zeroes && i < 134; i++)
                if (r[i])
                    FZ_FAIL("EXPORT_NAME padding not zero");
            return true;
        }
        uint32_t t = option_replies(m, opt, &saw_meta);
        if (opt == NBD_OPT_ABORT)
            return false;
        if (t != NBD_REP_ACK)
            continue;
        if (opt == NBD_OPT_STRUCTURED_REPLY)
            m->structured = true;
        if (opt == NBD_OPT_SET_META_CONTEXT)
            m->meta = saw_meta;
        if (opt == NBD_OPT_GO)
            return true;
    }
}

/* One request's reply; updates the shadow for acknowledged writes. */
static void check_reply(struct model *m, uint16_t flags, uint16_t type, uint64_t cookie, uint64_t off,
                        uint32_t len, const uint8_t *payload)
{
    uint8_t h[20];
    /* A command that succeeds must have been inside the export (the shadow and buffer bounds). */
    bool inside = off <= m->exp->size && len <= m->exp->size - off;
    out_need(m, h, 4, "reply");
    uint32_t magic = get_be32(h), error = 0;
    bool structured_cmd = type == NBD_CMD_READ || type == NBD_CMD_BLOCK_STATUS;
    if (magic == NBD_SIMPLE_REPLY_MAGIC) {
        out_need(m, h + 4, 12, "simple reply");
        error = get_be32(h + 4);
        if (get_be64(h + 8) != cookie)
            FZ_FAIL("simple reply for cookie %llx, want %llx", (unsigned long long)get_be64(h + 8),
                    (unsigned long long)cookie);
        if (m->structured && structured_cmd)
            FZ_FAIL("simple reply to command %u after STRUCTURED_REPLY", type);
        if (!error && type == NBD_CMD_BLOCK_STATUS)
            FZ_FAIL("BLOCK_STATUS succeeded with a simple reply");
        if (!error && type == NBD_CMD_READ) {
            if (!inside)
                FZ_FAIL("READ %llu+%u outside the export succeeded", (unsigned long long)off, len);
            out_need(m, g_scratch, len, "READ data");
            if (memcmp(g_scratch, m->shadow + off, len) != 0)
                FZ_FAIL("READ %llu+%u: data differs from what was written", (unsigned long long)off, len);
        }
    } else if (magic == NBD_STRUCTURED_REPLY_MAGIC) {
        out_need(m, h + 4, 16, "structured reply");
        uint16_t cflags = get_be16(h + 4), ctype = get_be16(h + 6);
        uint32_t clen = get_be32(h + 16);
        if (!m->structured || !structured_cmd || cflags != NBD_REPLY_FLAG_DONE || get_be64(h + 8) != cookie)
            FZ_FAIL("structured chunk type %u flags %u for command %u", ctype, cflags, type);
        if (ctype == NBD_REPLY_TYPE_OFFSET_DATA) {
            uint8_t o[8];
            out_need(m, o, 8, "OFFSET_DATA offset");
            if (type != NBD_CMD_READ || clen != 8 + (uint64_t)len || get_be64(o) != off || !inside)
                FZ_FAIL("OFFSET_DATA chunk of %u bytes at %llu for %llu+%u", clen,
                        (unsigned long long)get_be64(o), (unsigned long long)off, len);
            out_need(m, g_scratch, len, "OFFSET_DATA data");
            if (memcmp(g_scratch, m->shadow + off, len) != 0)
                FZ_FAIL("READ %llu+%u: data differs from what was written", (unsigned long long)off, len);
        } else if (ctype == NBD_REPLY_TYPE_BLOCK_STATUS) {
            if (type != NBD_CMD_BLOCK_STATUS || !m->meta || clen < 12 || (clen - 4) % 8 || clen > 4 + 8 * 8192)
                FZ_FAIL("BLOCK_STATUS chunk of %u bytes", clen);
            out_need(m, g_scratch, clen, "BLOCK_STATUS descriptors");
            uint32_t n = (clen - 4) / 8;
            uint64_t total = 0;
            for (uint32_t i = 0; i < n; i++) {
                uint32_t el = get_be32(g_scratch + 4 + 8 * i), ef = get_be32(g_scratch + 8 + 8 * i);
                if (el == 0 || (ef & ~(uint32_t)(NBD_STATE_HOLE | NBD_STATE_ZERO)))
                    FZ_FAIL("extent %u: length %u flags %u", i, el, ef);
                total += el;
            }
            if (get_be32(g_scratch) != 1 || total > len || ((flags & NBD_CMD_FLAG_REQ_ONE) && n != 1))
                FZ_FAIL("BLOCK_STATUS: %u extents, %llu bytes for a request of %u", n,
                        (unsigned long long)total, len);
        } else if (ctype == NBD_REPLY_TYPE_ERROR) {
            uint8_t e[6];
            if (clen != 6)
                FZ_FAIL("ERROR chunk of %u bytes", clen);
            out_need(m, e, 6, "ERROR chunk");
            error = get_be32(e);
            if (get_be16(e + 4) != 0)
                FZ_FAIL("ERROR chunk message length");
        } else {
            FZ_FAIL("structured chunk type %u", ctype);
        }
        if (ctype == NBD_REPLY_TYPE_ERROR && !error)
            FZ_FAIL("ERROR chunk with error 0");
    } else {
        FZ_FAIL("reply magic 0x%08x", magic);
    }
    if (error)
        return;
    if (!inside && type != NBD_CMD_FLUSH)
        FZ_FAIL("command %u at %llu+%u outside the export succeeded", type, (unsigned long long)off, len);
    if (type == NBD_CMD_WRITE)
        memcpy(m->shadow + off, payload, len);
    else if (type == NBD_CMD_TRIM || type == NBD_CMD_WRITE_ZEROES)
        memset(m->shadow + off, 0, len);
}

static void check_transmission(struct model *m)
{
    for (;;) {
        const uint8_t *r = in_take(m, NBD_REQUEST_SIZE);
        if (!r || get_be32(r) != NBD_REQUEST_MAGIC)
            return;
        uint16_t flags = get_be16(r + 4), type = get_be16(r + 6);
        uint64_t cookie = get_be64(r + 8), off = get_be64(r + 16);
        uint32_t len = get_be32(r + 24);
        if (type == NBD_CMD_DISC)
            return;
        const uint8_t *payload = NULL;
        if (type == NBD_CMD_WRITE && !(payload = in_take(m, len)))
            return;
        check_reply(m, flags, type, cookie, off, len, payload);
    }
}

/* ---- the run ---- */

static int g_in = -1;

struct server_arg {
    const struct nbd_export *exp;
    int wfd;
    struct nbd_stats st;
    int err;
};

static void *server_main(void *p)
{
    struct server_arg *a = p;
    /* Serial: the model checks replies in request order against a sequential shadow. */
    struct nbd_conn_opts co = {.workers = 1, .peer = "fuzz", .serial = true};
    a->err = nbd_serve(a->exp, g_in, a->wfd, &co, &a->st);
    close(a->wfd); /* the checker sees the end of the output */
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!getenv("SNAPCTL_LOG")) /* SNAPCTL_LOG=debug shows what a seed reaches */
        snap_log_set_level(SNAP_LOG_ERROR);
    g_in = memfd_create("fuzz-nbd-in", MFD_CLOEXEC);
    if (g_in < 0)
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
    memset(d->mem, 0, d->dirty_end); /* every run starts from a zero device */
    memset(g_shadow, 0, d->dirty_end);
    d->dirty_end = 0;
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
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        abort();
    fcntl(p[1], F_SETPIPE_SZ, 1 << 20); /* fewer switches between server and checker; best effort */
    struct server_arg a = {.exp = &exp, .wfd = p[1]};
    pthread_t t;
    if (pthread_create(&t, NULL, server_main, &a) != 0)
        abort();
    struct model m = {.in = data + 1, .inlen = size - 1, .out = p[0], .exp = &exp, .shadow = g_shadow};
    if (check_handshake(&m))
        check_transmission(&m);
    out_eof(&m, "the client's bytes are used up, or it broke the protocol, sent DISC or ABORT");
    pthread_join(t, NULL);
    close(p[0]);
    if (a.err < 0)
        FZ_FAIL("nbd_serve returned %d", a.err);
    /* Counters stay consistent: bytes only move for requests that were counted. */
    if (a.st.reads > a.st.requests || a.st.writes > a.st.requests || a.st.bytes_written > size ||
        a.st.bytes_read > a.st.reads * (uint64_t)NBD_MAX_PAYLOAD)
        FZ_FAIL("counters: %llu requests, %llu reads, %llu writes", (unsigned long long)a.st.requests,
                (unsigned long long)a.st.reads, (unsigned long long)a.st.writes);
    return 0;
}
