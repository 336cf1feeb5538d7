/* conn.c -- the transmission phase: pipelined requests, out-of-order replies.
 *
 * Design (the rules the seeds learned the hard way):
 * - A pool of workers per connection, leader/followers style: a worker takes the connection's
 *   read lock, reads one request -- a WRITE's payload straight into its own reusable buffer --
 *   releases the lock, and only then calls the backend.  So the payload is off the socket before
 *   any backend lock is taken, the next worker is already reading the next request, and no
 *   request is handed from thread to thread (no wake-up per request).  With W workers, W requests
 *   are in flight; the rest wait in the socket buffer (back-pressure).
 * - Replies go out whole under the connection's send lock, in completion order (the client
 *   matches them by cookie).  A READ reply is a point-in-time copy: the backend copies into the
 *   worker's buffer, which is then sent.  A worker's buffer is reused only by that worker, after
 *   its reply is on the wire.
 * - Everything is validated before the backend sees it: magic, command, flags, read-only,
 *   length <= 32 MiB, offset + length inside the export, alignment to min_block.  A WRITE that is
 *   refused has its payload drained so the stream stays in sync; bad magic or a short header ends
 *   this connection only.
 * - Buffers only grow, up to 32 MiB; after warm-up a request allocates nothing.
 * - Deadlines (a socket's SO_RCVTIMEO/SO_SNDTIMEO of io_timeout_ms, plus a deadline for a whole
 *   head or payload): waiting for a request's first byte is free, anything after it must keep
 *   coming.  A reply that cannot be sent shuts the socket, so the reader wakes and the
 *   connection ends with its buffers freed.
 * - Sub-block requests: a client that never asked for block sizes may send 512-byte-aligned
 *   requests to an export whose backend needs 4 KiB.  Reads read the covering blocks into the
 *   worker's buffer and reply from the middle; writes and zeroes of partial blocks are
 *   read-modify-write under an exclusive lock that such connections' aligned writes share, so
 *   two sectors of one block never lose each other's update.
 */
#include "nbd/internal.h"
#include "nbd/proto.h"

#include "base/buf.h"
#include "base/bytes.h"
#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#define NBD_EXTENTS_MAX 8192 /* descriptors per BLOCK_STATUS reply; a partial answer is valid */

/* A device's extent flags go on the wire as they are. */
_Static_assert(DEV_STATE_HOLE == NBD_STATE_HOLE && DEV_STATE_ZERO == NBD_STATE_ZERO,
               "device extent flags must be NBD's base:allocation flags");

struct slot {
    uint16_t flags, type;
    uint64_t cookie, offset;
    uint32_t length;
    uint32_t early_error;       /* wire error decided when the request was read, or 0 */
    struct snap_buf buf;        /* the request's data; grows to the largest request, then reused */
    uint32_t data_off;          /* a READ's data starts here in buf (sub-block reads) */
    uint8_t *blk;               /* one backend block for read-modify-write, on first use */
    struct dev_extent *ext;     /* BLOCK_STATUS descriptors, allocated on first use */
};

/* Read-modify-write against every other write of sub-block connections (one export per process). */
static pthread_rwlock_t rmw_lock = PTHREAD_RWLOCK_INITIALIZER;

struct dispatch {
    struct nbd_conn *c;
    pthread_mutex_t read_lock;  /* one worker reads a request at a time */
    bool closing;               /* under read_lock: DISC, EOF or a protocol error was seen */
    int error;                  /* under read_lock: why the connection ends, if not cleanly */
    _Atomic int send_error;     /* a reply that could not be sent (the socket is shut then) */
};

#define STAT(c, field, v) atomic_fetch_add_explicit(&(c)->stats->field, (v), memory_order_relaxed)

uint32_t nbd_wire_error(int e)
{
    switch (e) {
    case SNAP_OK: return 0;
    case SNAP_EAUTH: return NBD_EPERM;
    case SNAP_ENOMEM: return NBD_ENOMEM;
    case SNAP_ENOSPC: return NBD_ENOSPC;
    case SNAP_EUSAGE: case SNAP_ERANGE: return NBD_EINVAL;
    case SNAP_ENOTSUP: return NBD_ENOTSUP;
    case SNAP_ETOOBIG: return NBD_EOVERFLOW;
    case SNAP_ECANCELED: return NBD_ESHUTDOWN;
    default: return NBD_EIO;
    }
}


static int slot_reserve(struct slot *s, size_t n)
{
    int err = snap_buf_reserve(&s->buf, n);
    return err ? snap_fail_ctx(err, "request buffer") : 0;
}

/* ---- replies (called with no lock; they take the send lock) ---- */

static int send_iov(struct nbd_conn *c, struct iovec *iov, int n)
{
    pthread_mutex_lock(&c->send_lock);
    int err = snap_writev_full(c->wfd, iov, n, c->peer);
    pthread_mutex_unlock(&c->send_lock);
    if (err) { /* a client that reads no replies, or is gone: wake the reader, end it all */
        shutdown(c->rfd, SHUT_RDWR);
        snap_fail_ctx(err, "reply not sent: the client read nothing for %u ms, left, or the server is stopping", c->io_timeout_ms);
    }
    return err;
}

static int reply_simple(struct nbd_conn *c, const struct slot *s, uint32_t error, const void *data, size_t n)
{
    uint8_t h[NBD_SIMPLE_REPLY_SIZE];
    put_be32(h, NBD_SIMPLE_REPLY_MAGIC);
    put_be32(h + 4, error);
    put_be64(h + 8, s->cookie);
    struct iovec iov[2] = {{h, sizeof h}, {(void *)data, error ? 0 : n}};
    return send_iov(c, iov, iov[1].iov_len ? 2 : 1);
}

static void chunk_header(uint8_t *h, uint16_t flags, uint16_t type, uint64_t cookie, uint32_t len)
{
    put_be32(h, NBD_STRUCTURED_REPLY_MAGIC);
    put_be16(h + 4, flags);
    put_be16(h + 6, type);
    put_be64(h + 8, cookie);
    put_be32(h + 16, len);
}

static int reply_error(struct nbd_conn *c, const struct slot *s, uint32_t error)
{
    STAT(c, errors, 1);
    bool structured_cmd = s->type == NBD_CMD_READ || s->type == NBD_CMD_BLOCK_STATUS;
    if (!c->structured || !structured_cmd)
        return reply_simple(c, s, error, NULL, 0);
    uint8_t h[NBD_CHUNK_HEADER_SIZE + 6];
    chunk_header(h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, s->cookie, 6);
    put_be32(h + 20, error);
    put_be16(h + 24, 0); /* no message */
    struct iovec iov[1] = {{h, sizeof h}};
    return send_iov(c, iov, 1);
}

static int reply_read(struct nbd_conn *c, const struct slot *s)
{
    if (!c->structured)
        return reply_simple(c, s, 0, s->buf.data + s->data_off, s->length);
    uint8_t h[NBD_CHUNK_HEADER_SIZE + 8];
    chunk_header(h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, s->cookie, 8 + s->length);
    put_be64(h + 20, s->offset);
    struct iovec iov[2] = {{h, sizeof h}, {s->buf.data + s->data_off, s->length}};
    return send_iov(c, iov, 2);
}

static int reply_block_status(struct nbd_conn *c, struct slot *s, const struct dev_extents *x)
{
    /* Descriptors are encoded in place, after the header, in the slot's buffer. */
    size_t n = 4 + 8u * x->n;
    int err = slot_reserve(s, NBD_CHUNK_HEADER_SIZE + n);
    if (err)
        return reply_error(c, s, NBD_ENOMEM);
    uint8_t *p = s->buf.data;
    chunk_header(p, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, s->cookie, (uint32_t)n);
    put_be32(p + 20, NBD_META_ALLOC_ID);
    for (uint32_t i = 0; i < x->n; i++) {
        put_be32(p + 24 + 8 * i, x->e[i].length);
        put_be32(p + 28 + 8 * i, x->e[i].flags);
    }
    struct iovec iov[1] = {{p, NBD_CHUNK_HEADER_SIZE + n}};
    return send_iov(c, iov, 1);
}

/* ---- execution (worker threads) ---- */

static int do_block_status(struct nbd_conn *c, struct slot *s)
{
    const struct dev_ops *ops = c->exp->ops;
    if (!s->ext && !(s->ext = snap_calloc(NBD_EXTENTS_MAX, sizeof *s->ext)))
        return reply_error(c, s, NBD_ENOMEM);
    struct dev_extents x = {s->ext, 0, (s->flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : NBD_EXTENTS_MAX, s->offset};
    int err = 0;
    if (ops->extents)
        err = ops->extents(c->exp->ctx, s->length, s->offset, &x);
    else
        dev_extents_add(&x, s->length, 0);
    if (err)
        return reply_error(c, s, nbd_wire_error(err));
    /* Never describe past the request; always describe something. */
    uint64_t total = 0;
    for (uint32_t i = 0; i < x.n; i++) {
        if (total + x.e[i].length > s->length) {
            x.e[i].length = (uint32_t)(s->length - total);
            x.n = i + 1;
        }
        total += x.e[i].length;
    }
    if (x.n == 0 || x.e[0].length == 0) {
        x.n = 0;
        dev_extents_add(&x, s->length, 0);
    }
    return reply_block_status(c, s, &x);
}

/* ---- sub-block requests (see the top) ---- */

static uint32_t backend_block(const struct nbd_conn *c)
{
    return c->exp->min_block ? c->exp->min_block : 1;
}

/* Is this request finer than the backend takes? */
static bool sub_block(const struct nbd_conn *c, const struct slot *s)
{
    uint32_t mb = backend_block(c);
    return c->align < mb && ((s->offset | s->length) & (mb - 1));
}

/* Read the blocks covering the request into buf; the reply starts at data_off. */
static int read_covering(struct nbd_conn *c, struct slot *s)
{
    const struct nbd_export *e = c->exp;
    uint64_t mb = backend_block(c), a0 = s->offset & ~(mb - 1);
    uint64_t a1 = (s->offset + s->length + mb - 1) & ~(mb - 1);
    if (a1 > e->size)
        a1 = e->size;
    int err = slot_reserve(s, (size_t)(a1 - a0));
    if (!err)
        err = e->ops->pread(e->ctx, s->buf.data, (uint32_t)(a1 - a0), a0);
    s->data_off = (uint32_t)(s->offset - a0);
    return err;
}

/* Part of one block, [off, off+n) inside it: read it, patch (src, or zeros), write it back. */
static int patch_block(struct nbd_conn *c, struct slot *s, uint64_t off, uint32_t n, const uint8_t *src, bool fua)
{
    const struct nbd_export *e = c->exp;
    uint32_t mb = backend_block(c);
    uint64_t b0 = off & ~(uint64_t)(mb - 1);
    uint32_t bl = e->size - b0 < mb ? (uint32_t)(e->size - b0) : mb;
    if (!s->blk && !(s->blk = snap_malloc(mb)))
        return SNAP_ENOMEM;
    int err = e->ops->pread(e->ctx, s->blk, bl, b0);
    if (err)
        return err;
    if (src)
        memcpy(s->blk + (off - b0), src, n);
    else
        memset(s->blk + (off - b0), 0, n);
    return e->ops->pwrite(e->ctx, s->blk, bl, b0, fua);
}

/* WRITE (src = the payload) or WRITE_ZEROES (src = NULL) of a sub-block range: the partial
 * blocks at either end by read-modify-write, the whole ones in the middle in one call.
 * Called with rmw_lock held exclusively. */
static int write_sub_block(struct nbd_conn *c, struct slot *s, const uint8_t *src, bool fua)
{
    const struct nbd_export *e = c->exp;
    uint32_t mb = backend_block(c);
    uint64_t off = s->offset;
    uint32_t len = s->length;
    int err = 0;
    if (off & (mb - 1)) {
        uint32_t n = mb - (uint32_t)(off & (mb - 1));
        n = n < len ? n : len;
        err = patch_block(c, s, off, n, src, fua);
        off += n;
        len -= n;
        src = src ? src + n : NULL;
    }
    uint32_t whole = len & ~(mb - 1);
    if (!err && whole)
        err = src ? e->ops->pwrite(e->ctx, src, whole, off, fua) : e->ops->zero(e->ctx, whole, off, true, fua);
    if (!err && len > whole)
        err = patch_block(c, s, off + whole, len - whole, src ? src + whole : NULL, fua);
    return err;
}

/* TRIM is advisory: only the whole blocks inside the range are trimmed. */
static int trim_sub_block(struct nbd_conn *c, const struct slot *s, bool fua)
{
    uint64_t mb = backend_block(c);
    uint64_t a0 = (s->offset + mb - 1) & ~(mb - 1), a1 = (s->offset + s->length) & ~(mb - 1);
    return a1 > a0 ? c->exp->ops->trim(c->exp->ctx, (uint32_t)(a1 - a0), a0, fua) : 0;
}

/* The commands that write, for a connection that may send sub-block requests. */
static int execute_sub_block_write(struct nbd_conn *c, struct slot *s, bool fua)
{
    bool sub = sub_block(c, s) && s->type != NBD_CMD_TRIM;
    int err;
    if (sub)
        pthread_rwlock_wrlock(&rmw_lock);
    else
        pthread_rwlock_rdlock(&rmw_lock);
    if (!sub_block(c, s))
        err = s->type == NBD_CMD_WRITE ? c->exp->ops->pwrite(c->exp->ctx, s->buf.data, s->length, s->offset, fua)
            : s->type == NBD_CMD_TRIM  ? c->exp->ops->trim(c->exp->ctx, s->length, s->offset, fua)
                                       : c->exp->ops->zero(c->exp->ctx, s->length, s->offset,
                                                           !(s->flags & NBD_CMD_FLAG_NO_HOLE), fua);
    else if (s->type == NBD_CMD_TRIM)
        err = trim_sub_block(c, s, fua);
    else
        err = write_sub_block(c, s, s->type == NBD_CMD_WRITE ? s->buf.data : NULL, fua);
    pthread_rwlock_unlock(&rmw_lock);
    return err;
}

static int execute(struct nbd_conn *c, struct slot *s)
{
    const struct nbd_export *e = c->exp;
    bool fua = s->flags & NBD_CMD_FLAG_FUA;
    int err = 0;
    if (s->early_error)
        return reply_error(c, s, s->early_error);
    bool rmw_conn = c->align < backend_block(c);
    s->data_off = 0;
    if (rmw_conn && (s->type == NBD_CMD_WRITE || s->type == NBD_CMD_TRIM || s->type == NBD_CMD_WRITE_ZEROES)) {
        err = execute_sub_block_write(c, s, fua);
        if (!err && s->type == NBD_CMD_WRITE) {
            STAT(c, writes, 1);
            STAT(c, bytes_written, s->length);
        }
        goto done;
    }
    switch (s->type) {
    case NBD_CMD_READ:
        if (sub_block(c, s))
            err = read_covering(c, s);
        else if ((err = slot_reserve(s, s->length)) == 0)
            err = e->ops->pread(e->ctx, s->buf.data, s->length, s->offset);
        if (err)
            break;
        STAT(c, reads, 1);
        STAT(c, bytes_read, s->length);
        return reply_read(c, s);
    case NBD_CMD_WRITE:
        err = e->ops->pwrite(e->ctx, s->buf.data, s->length, s->offset, fua);
        if (!err) {
            STAT(c, writes, 1);
            STAT(c, bytes_written, s->length);
        }
        break;
    case NBD_CMD_FLUSH:
        err = e->ops->flush ? e->ops->flush(e->ctx) : 0;
        break;
    case NBD_CMD_TRIM:
        err = e->ops->trim(e->ctx, s->length, s->offset, fua);
        break;
    case NBD_CMD_WRITE_ZEROES:
        err = e->ops->zero(e->ctx, s->length, s->offset, !(s->flags & NBD_CMD_FLAG_NO_HOLE), fua);
        break;
    case NBD_CMD_CACHE:
        if (e->ops->cache) { /* whole blocks, rounded outwards */
            uint64_t mb = backend_block(c), a0 = s->offset & ~(mb - 1);
            uint64_t a1 = (s->offset + s->length + mb - 1) & ~(mb - 1);
            err = e->ops->cache(e->ctx, (uint32_t)((a1 > e->size ? e->size : a1) - a0), a0);
        }
        break;
    case NBD_CMD_BLOCK_STATUS:
        return do_block_status(c, s);
    }
done:
    if (err) {
        snap_debug("nbd %s: command %u at %llu+%u: %s", c->peer, s->type,
                   (unsigned long long)s->offset, s->length, snap_errmsg(err));
        return reply_error(c, s, nbd_wire_error(err));
    }
    return reply_simple(c, s, 0, NULL, 0);
}

/* ---- the reader ---- */

/* Check a request against the export; returns the wire error to answer with, or 0. */
static uint32_t validate(const struct nbd_conn *c, const struct slot *s)
{
    const struct nbd_export *e = c->exp;
    const uint16_t known = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_DF |
                           NBD_CMD_FLAG_REQ_ONE | NBD_CMD_FLAG_FAST_ZERO;
    bool is_write = s->type == NBD_CMD_WRITE || s->type == NBD_CMD_TRIM || s->type == NBD_CMD_WRITE_ZEROES;
    if (s->type > NBD_CMD_BLOCK_STATUS)
        return NBD_EINVAL;
    if (s->flags & ~known)
        return NBD_EINVAL;
    if ((s->flags & NBD_CMD_FLAG_DF) && (s->type != NBD_CMD_READ || !c->structured))
        return NBD_EINVAL;
    if ((s->flags & NBD_CMD_FLAG_REQ_ONE) && s->type != NBD_CMD_BLOCK_STATUS)
        return NBD_EINVAL;
    if ((s->flags & (NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO)) && s->type != NBD_CMD_WRITE_ZEROES)
        return NBD_EINVAL;
    if ((s->flags & NBD_CMD_FLAG_FUA) && !is_write && s->type != NBD_CMD_FLUSH)
        return NBD_EINVAL;
    if (s->type == NBD_CMD_FLUSH)
        return (s->offset || s->length) ? NBD_EINVAL : 0;
    if (is_write && e->read_only)
        return NBD_EPERM;
    if ((s->type == NBD_CMD_TRIM && !e->ops->trim) || (s->type == NBD_CMD_WRITE_ZEROES && !e->ops->zero))
        return NBD_EINVAL;
    if (s->type == NBD_CMD_BLOCK_STATUS && !c->meta_alloc)
        return NBD_EINVAL;
    if (s->length == 0)
        return NBD_EINVAL;
    if ((s->type == NBD_CMD_READ || s->type == NBD_CMD_WRITE) && s->length > NBD_MAX_PAYLOAD)
        return s->type == NBD_CMD_READ ? NBD_EOVERFLOW : NBD_EINVAL;
    if (s->offset > e->size || s->length > e->size - s->offset)
        return is_write ? NBD_ENOSPC : NBD_EINVAL;
    if (s->type != NBD_CMD_BLOCK_STATUS && ((s->offset | s->length) & (c->align - 1)))
        return NBD_EINVAL;
    return 0;
}

/* Read one request into s.  Returns 1 for a request to execute, 0 when the connection ends
 * cleanly (DISC or the client hung up between requests), or a snap_err. */
static int read_request(struct nbd_conn *c, struct slot *s)
{
    uint8_t h[NBD_REQUEST_SIZE];
    ssize_t r;
    /* One read for the whole header in the common case.  A client that closes between requests
     * has hung up; one that closes mid-header broke the protocol. */
    do /* waiting for a request has no deadline: the socket timeout just wakes us */
        r = read(c->rfd, h, sizeof h);
    while (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK));
    if (r == 0) {
        snap_info("nbd %s: client closed the connection without NBD_CMD_DISC", c->peer);
        return 0;
    }
    uint64_t tmo = (uint64_t)c->io_timeout_ms * 1000000u;
    c->deadline_ns = r < (ssize_t)sizeof h ? snap_now_ns() + tmo : 0;
    int err = r < 0 ? snap_fail_errno("%s: read request", c->peer)
                    : nbd_recv(c, h + r, sizeof h - (size_t)r);
    if (err)
        return snap_fail_ctx(err, "short request header");
    if (get_be32(h) != NBD_REQUEST_MAGIC)
        return snap_fail(SNAP_EPROTO, "%s: bad request magic 0x%08x", c->peer, get_be32(h));
    s->flags = get_be16(h + 4);
    s->type = get_be16(h + 6);
    s->cookie = get_be64(h + 8);
    s->offset = get_be64(h + 16);
    s->length = get_be32(h + 24);
    STAT(c, requests, 1);
    if (s->type == NBD_CMD_DISC)
        return 0;
    s->early_error = validate(c, s);
    if (s->type == NBD_CMD_WRITE) {
        /* The payload follows whatever we think of the request, at 1 MiB/s at the least. */
        c->deadline_ns = snap_now_ns() + tmo + (uint64_t)s->length * 1000u;
        if (s->early_error) {
            err = nbd_discard(c, s->length);
        } else if ((err = slot_reserve(s, s->length)) == 0) {
            err = nbd_recv(c, s->buf.data, s->length);
        } else {
            s->early_error = NBD_ENOMEM;
            err = nbd_discard(c, s->length);
        }
        if (err)
            return snap_fail_ctx(err, "short WRITE payload");
    }
    return 1;
}

static void *worker_main(void *arg)
{
    struct dispatch *d = arg;
    struct slot s = {0};
    /* The largest request: a full payload widened by one backend block on each side. */
    snap_buf_init(&s.buf, 65536, NBD_MAX_PAYLOAD + 2 * (size_t)backend_block(d->c));
    for (;;) {
        pthread_mutex_lock(&d->read_lock);
        if (d->closing) {
            pthread_mutex_unlock(&d->read_lock);
            break;
        }
        int r = read_request(d->c, &s);
        if (r != 1) {
            d->closing = true;
            d->error = r;
            pthread_mutex_unlock(&d->read_lock);
            break;
        }
        pthread_mutex_unlock(&d->read_lock);
        struct nbd_timing t;
        nbd_stats_start(&t);
        int err = execute(d->c, &s);
        nbd_stats_done(d->c->stats, &t, s.type);
        if (err) { /* the socket is shut; the reader sees it and ends the connection */
            int none = 0;
            atomic_compare_exchange_strong(&d->send_error, &none, err);
        }
    }
    snap_buf_free(&s.buf);
    snap_free(s.blk);
    snap_free(s.ext);
    return NULL;
}

int nbd_transmission(struct nbd_conn *c, const struct nbd_conn_opts *opts)
{
    unsigned nworkers = opts && opts->workers ? opts->workers : 4;
    if (nworkers > 256)
        nworkers = 256;
    struct dispatch d = {.c = c};
    pthread_t tids[256];
    /* Progress deadlines for the middle of a request and for every reply (fail on pipes). */
    struct timeval tv = {.tv_sec = c->io_timeout_ms / 1000, .tv_usec = (c->io_timeout_ms % 1000) * 1000};
    setsockopt(c->rfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->wfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    unsigned started = 0;
    pthread_mutex_init(&d.read_lock, NULL);
    /* This thread is worker 0. */
    for (; started + 1 < nworkers; started++)
        if (pthread_create(&tids[started], NULL, worker_main, &d) != 0)
            break; /* fewer workers is still correct */
    worker_main(&d);
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    pthread_mutex_destroy(&d.read_lock);
    return d.error ? d.error : d.send_error;
}

int nbd_serve(const struct nbd_export *exp, int rfd, int wfd, const struct nbd_conn_opts *opts,
              struct nbd_stats *stats)
{
    struct nbd_stats dummy = {0};
    struct nbd_conn c = {
        .exp = exp, .rfd = rfd, .wfd = wfd,
        .peer = opts && opts->peer ? opts->peer : "client",
        .stats = stats ? stats : &dummy,
        .io_timeout_ms = opts && opts->io_timeout_ms ? opts->io_timeout_ms : 30000,
        .admit = opts ? opts->admit : NULL,
    };
    uint32_t mb = exp->min_block ? exp->min_block : 1;
    c.align = mb < NBD_DEFAULT_ALIGN ? mb : NBD_DEFAULT_ALIGN; /* until GO says otherwise */
    pthread_mutex_init(&c.send_lock, NULL);
    int err = nbd_handshake(&c);
    if (!err)
        err = nbd_transmission(&c, opts);
    else if (err == SNAP_ECANCELED)
        err = 0;
    pthread_mutex_destroy(&c.send_lock);
    return err;
}
