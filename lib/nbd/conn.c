/* conn.c -- executing one request and replying to it: validation, the commands, replies.
 *
 * dispatch.c reads requests and decides where each runs (inline on the connection's reader, or
 * on a worker); this file is what runs.  Rules the seeds learned the hard way:
 * - Everything is validated before the backend sees it: magic, command, flags, read-only,
 *   length <= 32 MiB, offset + length inside the export, alignment to min_block.
 * - A READ reply is a point-in-time copy: the backend copies into the request's own buffer,
 *   which is sent and only then reused.  Replies go out whole under the connection's send lock,
 *   in completion order (the client matches them by cookie).  A reply that cannot be sent shuts
 *   the socket, so the reader wakes and the connection ends with its buffers freed.
 * - Sub-block requests: a client that never asked for block sizes may send 512-byte-aligned
 *   requests to an export whose backend needs 4 KiB.  Reads read the covering blocks into the
 *   request's buffer and reply from the middle; writes and zeroes of partial blocks are
 *   read-modify-write under an exclusive lock that such connections' aligned writes share, so
 *   two sectors of one block never lose each other's update.  They always run on a worker.
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

/* Read-modify-write against every other write of sub-block connections (of any export: one lock
 * for the process is coarse, but only clients that never asked for block sizes take it). */
static pthread_rwlock_t rmw_lock = PTHREAD_RWLOCK_INITIALIZER;


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


static int slot_reserve(struct nbd_slot *s, size_t n)
{
    int err = snap_buf_reserve(&s->buf, n);
    return err ? snap_fail_ctx(err, "request buffer") : 0;
}

/* ---- replies ---- */

int nbd_send_iov(struct nbd_conn *c, struct iovec *iov, int n)
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

int nbd_send_ref(struct nbd_conn *c, struct nbd_slot *s, int fd, uint64_t off)
{
    struct iovec iov[2];
    nbd_reply_iov(c, s, 0, iov); /* the header; the data comes from the file */
    pthread_mutex_lock(&c->send_lock);
    int err = snap_send_file(c->wfd, iov[0].iov_base, iov[0].iov_len, fd, off, s->length, c->peer);
    pthread_mutex_unlock(&c->send_lock);
    if (err) {
        shutdown(c->rfd, SHUT_RDWR);
        snap_fail_ctx(err, "reply not sent");
    }
    return err;
}

static void chunk_header(uint8_t *h, uint16_t flags, uint16_t type, uint64_t cookie, uint32_t len)
{
    put_be32(h, NBD_STRUCTURED_REPLY_MAGIC);
    put_be16(h + 4, flags);
    put_be16(h + 6, type);
    put_be64(h + 8, cookie);
    put_be32(h + 16, len);
}

_Static_assert(sizeof ((struct nbd_slot *)0)->head >= NBD_CHUNK_HEADER_SIZE + 8, "reply header room");

int nbd_reply_iov(struct nbd_conn *c, struct nbd_slot *s, uint32_t error, struct iovec iov[2])
{
    uint8_t *h = s->head;
    bool data = !error && s->type == NBD_CMD_READ;
    if (error)
        NBD_STAT(c, errors, 1);
    if (error && c->structured && (s->type == NBD_CMD_READ || s->type == NBD_CMD_BLOCK_STATUS)) {
        chunk_header(h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, s->cookie, 6);
        put_be32(h + 20, error);
        put_be16(h + 24, 0); /* no message */
        iov[0] = (struct iovec){h, NBD_CHUNK_HEADER_SIZE + 6};
    } else if (data && c->structured) {
        chunk_header(h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, s->cookie, 8 + s->length);
        put_be64(h + 20, s->offset);
        iov[0] = (struct iovec){h, NBD_CHUNK_HEADER_SIZE + 8};
    } else {
        put_be32(h, NBD_SIMPLE_REPLY_MAGIC);
        put_be32(h + 4, error);
        put_be64(h + 8, s->cookie);
        iov[0] = (struct iovec){h, NBD_SIMPLE_REPLY_SIZE};
    }
    if (!data)
        return 1;
    /* A zero-copy reply (nbd_send_ref) uses only iov[0]: its slot may have no buffer yet. */
    iov[1] = (struct iovec){s->buf.data ? s->buf.data + s->data_off : NULL, s->length};
    return 2;
}

/* Build and send the reply now (a worker). */
static int reply(struct nbd_conn *c, struct nbd_slot *s, uint32_t error)
{
    struct iovec iov[2];
    int n = nbd_reply_iov(c, s, error, iov);
    return nbd_send_iov(c, iov, n);
}

static int reply_block_status(struct nbd_conn *c, struct nbd_slot *s, const struct dev_extents *x)
{
    /* Descriptors are encoded in place, after the header, in the slot's buffer. */
    size_t n = 4 + 8u * x->n;
    int err = slot_reserve(s, NBD_CHUNK_HEADER_SIZE + n);
    if (err)
        return reply(c, s, NBD_ENOMEM);
    uint8_t *p = s->buf.data;
    chunk_header(p, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, s->cookie, (uint32_t)n);
    put_be32(p + 20, NBD_META_ALLOC_ID);
    for (uint32_t i = 0; i < x->n; i++) {
        put_be32(p + 24 + 8 * i, x->e[i].length);
        put_be32(p + 28 + 8 * i, x->e[i].flags);
    }
    struct iovec iov[1] = {{p, NBD_CHUNK_HEADER_SIZE + n}};
    return nbd_send_iov(c, iov, 1);
}

/* ---- execution (worker threads) ---- */

static int do_block_status(struct nbd_conn *c, struct nbd_slot *s)
{
    const struct dev_ops *ops = c->exp->ops;
    if (!s->ext && !(s->ext = snap_calloc(NBD_EXTENTS_MAX, sizeof *s->ext)))
        return reply(c, s, NBD_ENOMEM);
    struct dev_extents x = {s->ext, 0, (s->flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : NBD_EXTENTS_MAX, s->offset};
    int err = 0;
    if (ops->extents)
        err = ops->extents(c->exp->ctx, s->length, s->offset, &x);
    else
        dev_extents_add(&x, s->length, 0);
    if (err)
        return reply(c, s, nbd_wire_error(err));
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

uint32_t nbd_backend_block(const struct nbd_conn *c)
{
    return c->exp->min_block ? c->exp->min_block : 1;
}

/* Is this request finer than the backend takes? */
bool nbd_sub_block(const struct nbd_conn *c, const struct nbd_slot *s)
{
    uint32_t mb = nbd_backend_block(c);
    return c->align < mb && ((s->offset | s->length) & (mb - 1));
}

/* Read the blocks covering the request into buf; the reply starts at data_off. */
static int read_covering(struct nbd_conn *c, struct nbd_slot *s)
{
    const struct nbd_export *e = c->exp;
    uint64_t mb = nbd_backend_block(c), a0 = s->offset & ~(mb - 1);
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
static int patch_block(struct nbd_conn *c, struct nbd_slot *s, uint64_t off, uint32_t n, const uint8_t *src, bool fua)
{
    const struct nbd_export *e = c->exp;
    uint32_t mb = nbd_backend_block(c);
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
static int write_sub_block(struct nbd_conn *c, struct nbd_slot *s, const uint8_t *src, bool fua)
{
    const struct nbd_export *e = c->exp;
    uint32_t mb = nbd_backend_block(c);
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
static int trim_sub_block(struct nbd_conn *c, const struct nbd_slot *s, bool fua)
{
    uint64_t mb = nbd_backend_block(c);
    uint64_t a0 = (s->offset + mb - 1) & ~(mb - 1), a1 = (s->offset + s->length) & ~(mb - 1);
    return a1 > a0 ? c->exp->ops->trim(c->exp->ctx, (uint32_t)(a1 - a0), a0, fua) : 0;
}

/* The commands that write, for a connection that may send sub-block requests. */
static int execute_sub_block_write(struct nbd_conn *c, struct nbd_slot *s, bool fua)
{
    bool sub = nbd_sub_block(c, s) && s->type != NBD_CMD_TRIM;
    int err;
    if (sub)
        pthread_rwlock_wrlock(&rmw_lock);
    else
        pthread_rwlock_rdlock(&rmw_lock);
    if (!nbd_sub_block(c, s))
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

void nbd_count(struct nbd_conn *c, const struct nbd_slot *s)
{
    if (s->type == NBD_CMD_READ) {
        NBD_STAT(c, reads, 1);
        NBD_STAT(c, bytes_read, s->length);
    } else if (s->type == NBD_CMD_WRITE) {
        NBD_STAT(c, writes, 1);
        NBD_STAT(c, bytes_written, s->length);
    }
}

int nbd_execute(struct nbd_conn *c, struct nbd_slot *s)
{
    const struct nbd_export *e = c->exp;
    bool fua = s->flags & NBD_CMD_FLAG_FUA;
    int err = 0;
    if (s->early_error)
        return reply(c, s, s->early_error);
    bool rmw_conn = c->align < nbd_backend_block(c);
    s->data_off = 0;
    if (rmw_conn && (s->type == NBD_CMD_WRITE || s->type == NBD_CMD_TRIM || s->type == NBD_CMD_WRITE_ZEROES)) {
        if ((err = execute_sub_block_write(c, s, fua)) == 0)
            nbd_count(c, s);
        goto done;
    }
    switch (s->type) {
    case NBD_CMD_READ:
        if (nbd_sub_block(c, s))
            err = read_covering(c, s);
        else if ((err = slot_reserve(s, s->length)) == 0)
            err = e->ops->pread(e->ctx, s->buf.data, s->length, s->offset);
        if (err)
            break;
        nbd_count(c, s);
        return reply(c, s, 0);
    case NBD_CMD_WRITE:
        if ((err = e->ops->pwrite(e->ctx, s->buf.data, s->length, s->offset, fua)) == 0)
            nbd_count(c, s);
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
            uint64_t mb = nbd_backend_block(c), a0 = s->offset & ~(mb - 1);
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
        return reply(c, s, nbd_wire_error(err));
    }
    return reply(c, s, 0);
}

/* ---- validation (the reader calls it) ---- */

/* Check a request against the export; returns the wire error to answer with, or 0. */
uint32_t nbd_validate(const struct nbd_conn *c, const struct nbd_slot *s)
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
