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
 */
#include "nbd/internal.h"
#include "nbd/proto.h"

#include "base/bytes.h"
#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define NBD_EXTENTS_MAX 8192 /* descriptors per BLOCK_STATUS reply; a partial answer is valid */

struct slot {
    uint16_t flags, type;
    uint64_t cookie, offset;
    uint32_t length;
    uint32_t early_error;       /* wire error decided when the request was read, or 0 */
    uint8_t *buf;
    size_t cap;
    struct nbd_extent *ext;     /* BLOCK_STATUS descriptors, allocated on first use */
};

struct dispatch {
    struct nbd_conn *c;
    pthread_mutex_t read_lock;  /* one worker reads a request at a time */
    bool closing;               /* under read_lock: DISC, EOF or a protocol error was seen */
    int error;                  /* under read_lock: why the connection ends, if not cleanly */
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

bool nbd_extents_add(struct nbd_extents *x, uint32_t length, uint32_t flags)
{
    if (length == 0)
        return x->n < x->cap;
    if (x->n > 0 && x->e[x->n - 1].flags == flags && x->e[x->n - 1].length <= UINT32_MAX - length) {
        x->e[x->n - 1].length += length;
        return true;
    }
    if (x->n >= x->cap)
        return false;
    x->e[x->n].length = length;
    x->e[x->n].flags = flags;
    x->n++;
    return x->n < x->cap;
}

static int slot_reserve(struct slot *s, size_t n)
{
    if (s->cap >= n)
        return 0;
    size_t want = s->cap ? s->cap : 65536;
    while (want < n)
        want *= 2;
    uint8_t *p = snap_realloc(s->buf, want);
    if (!p)
        return snap_fail(SNAP_ENOMEM, "cannot allocate a %zu byte request buffer", want);
    s->buf = p;
    s->cap = want;
    return 0;
}

/* ---- replies (called with no lock; they take the send lock) ---- */

static int send_iov(struct nbd_conn *c, struct iovec *iov, int n)
{
    pthread_mutex_lock(&c->send_lock);
    int err = snap_writev_full(c->wfd, iov, n, c->peer);
    pthread_mutex_unlock(&c->send_lock);
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
        return reply_simple(c, s, 0, s->buf, s->length);
    uint8_t h[NBD_CHUNK_HEADER_SIZE + 8];
    chunk_header(h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, s->cookie, 8 + s->length);
    put_be64(h + 20, s->offset);
    struct iovec iov[2] = {{h, sizeof h}, {s->buf, s->length}};
    return send_iov(c, iov, 2);
}

static int reply_block_status(struct nbd_conn *c, struct slot *s, const struct nbd_extents *x)
{
    /* Descriptors are encoded in place, after the header, in the slot's buffer. */
    size_t n = 4 + 8u * x->n;
    int err = slot_reserve(s, NBD_CHUNK_HEADER_SIZE + n);
    if (err)
        return reply_error(c, s, NBD_ENOMEM);
    uint8_t *p = s->buf;
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
    const struct nbd_ops *ops = c->exp->ops;
    if (!s->ext && !(s->ext = snap_calloc(NBD_EXTENTS_MAX, sizeof *s->ext)))
        return reply_error(c, s, NBD_ENOMEM);
    struct nbd_extents x = {s->ext, 0, (s->flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : NBD_EXTENTS_MAX, s->offset};
    int err = 0;
    if (ops->extents)
        err = ops->extents(c->exp->ctx, s->length, s->offset, &x);
    else
        nbd_extents_add(&x, s->length, 0);
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
        nbd_extents_add(&x, s->length, 0);
    }
    return reply_block_status(c, s, &x);
}

static int execute(struct nbd_conn *c, struct slot *s)
{
    const struct nbd_export *e = c->exp;
    bool fua = s->flags & NBD_CMD_FLAG_FUA;
    int err = 0;
    if (s->early_error)
        return reply_error(c, s, s->early_error);
    switch (s->type) {
    case NBD_CMD_READ:
        if ((err = slot_reserve(s, s->length)) == 0)
            err = e->ops->pread(e->ctx, s->buf, s->length, s->offset);
        if (err)
            break;
        STAT(c, reads, 1);
        STAT(c, bytes_read, s->length);
        return reply_read(c, s);
    case NBD_CMD_WRITE:
        err = e->ops->pwrite(e->ctx, s->buf, s->length, s->offset, fua);
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
        err = e->ops->cache ? e->ops->cache(e->ctx, s->length, s->offset) : 0;
        break;
    case NBD_CMD_BLOCK_STATUS:
        return do_block_status(c, s);
    }
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
    uint32_t mb = e->min_block ? e->min_block : 1;
    if (s->type != NBD_CMD_BLOCK_STATUS && ((s->offset | s->length) & (mb - 1)))
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
    do
        r = read(c->rfd, h, sizeof h);
    while (r < 0 && errno == EINTR);
    if (r == 0) {
        snap_info("nbd %s: client closed the connection without NBD_CMD_DISC", c->peer);
        return 0;
    }
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
        /* The payload follows whatever we think of the request. */
        if (s->early_error) {
            err = nbd_discard(c, s->length);
        } else if ((err = slot_reserve(s, s->length)) == 0) {
            err = nbd_recv(c, s->buf, s->length);
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
        int err = execute(d->c, &s);
        if (err) /* the socket is broken; whoever reads next sees it and ends the connection */
            snap_debug("nbd: %s", snap_errmsg(err));
    }
    snap_free(s.buf);
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
    return d.error;
}

int nbd_serve(const struct nbd_export *exp, int rfd, int wfd, const struct nbd_conn_opts *opts,
              struct nbd_stats *stats)
{
    struct nbd_stats dummy = {0};
    struct nbd_conn c = {
        .exp = exp, .rfd = rfd, .wfd = wfd,
        .peer = opts && opts->peer ? opts->peer : "client",
        .stats = stats ? stats : &dummy,
    };
    pthread_mutex_init(&c.send_lock, NULL);
    int err = nbd_handshake(&c);
    if (!err)
        err = nbd_transmission(&c, opts);
    else if (err == SNAP_ECANCELED)
        err = 0;
    pthread_mutex_destroy(&c.send_lock);
    return err;
}
