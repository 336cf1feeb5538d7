/* dispatch.c -- the transmission phase: one reader per connection, replies in batches, and
 * workers that grow with demand for whatever has to wait.
 *
 * Design:
 * - The connection's own thread is its reader.  It reads whatever the socket holds into a 64 KiB
 *   input buffer (one read() for many pipelined requests) and parses the requests out of it.
 * - A request the device can answer without waiting runs right there, on the reader: a READ of
 *   data the device already holds (dev_ops.pread_nowait: page cache, the chunker's cache, the
 *   overlay) and a WRITE that needs no flush and meets no export (pwrite_nowait, straight from
 *   the input buffer: one copy, into the device).  Its reply joins a batch.
 * - The batch goes out in one writev when the input holds no further complete request (before
 *   the reader waits for the client again), or when it is full (64 replies or 1 MiB).  So a
 *   client with 32 requests in flight costs one read and one write per 32, not three system calls
 *   and a thread wake-up per request.  At queue depth 1 it is one read and one write.
 * - Everything else goes to a worker: a read that would wait for a fetch (it gets SNAP_EAGAIN
 *   from the fast path), FUA writes, flush, trim, zero, block status, cache, sub-block requests,
 *   and writes during an export.  Workers are started when a request is queued and none is idle,
 *   up to `workers` (default 64) per connection, and stay until the connection ends.  So 32
 *   cold reads are 32 fetches in flight, not 4.  A worker replies itself, under the send lock.
 * - Requests in flight are bounded: at most 256 per connection and 64 MiB of READ/WRITE data
 *   (one larger request is let through alone); past that the reader stops reading and the client
 *   meets TCP back-pressure.  Each request has a slot whose buffer is reused; slots keep at most
 *   32 MiB of buffers between requests in all, so after warm-up a request allocates nothing and
 *   memory does not grow with what a client once sent.
 * - Busy-polling: a client that sends its next request right after our reply (queue depth 1, or
 *   a pipeline that drained) would find the reader asleep, and waking a thread costs more than
 *   the request (tens of microseconds on a virtual machine).  So after a batch the reader polls
 *   the socket (recv MSG_DONTWAIT) for up to poll_us (default 50 us) -- but only when the client's
 *   last answer came within that window.  An idle or slow client costs one window, once; then
 *   the reader sleeps in read() until the client is quick again.  poll_us -1 turns it off.
 * - Deadlines: waiting for a request's first byte is free; once part of a request is in, the
 *   rest must follow within the socket timeout (io_timeout_ms), a WRITE payload at 1 MiB/s at
 *   least.  On DISC, EOF or a protocol error the reader stops reading, flushes its batch, waits
 *   for the workers' requests to be answered, and ends the connection.
 */
#include "nbd/exports.h"
#include "nbd/internal.h"
#include "nbd/proto.h"

#include "base/bytes.h"
#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/util.h"
#include "device/device.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define IN_CAP (64u << 10)            /* the reader's input buffer */
#define BATCH_MAX 64                  /* replies per batched write */
#define BATCH_BYTES (1u << 20)        /* data bytes per batched write */
#define SLOTS_MAX 256                 /* requests in flight per connection */
#define INFLIGHT_BYTES (64u << 20)    /* READ/WRITE bytes in flight per connection */
#define KEEP_BYTES (32u << 20)        /* slot buffers kept between requests, per connection */
#define ZERO_COPY_MIN (64u << 10)  /* smaller READs are copied: a copy costs less than a syscall */
#define WORKERS_DEFAULT 64
#define POLL_US_DEFAULT 50
#define WORKERS_MAX 256

struct dispatch {
    struct nbd_conn *c;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;           /* a request was queued, or quit */
    pthread_cond_t free_cv;           /* a slot came back */
    struct nbd_slot *queue, **queue_tail, *free;
    unsigned nslots, nfree, queued;
    uint64_t inflight_bytes, kept_bytes;
    unsigned nworkers, idle, max_workers;
    bool quit;
    pthread_t tids[WORKERS_MAX];
    _Atomic int send_error;           /* a worker's reply that could not be sent */

    /* The reader's own. */
    bool serial;                      /* opts->serial: no workers, replies in request order */
    uint64_t poll_ns;                 /* busy-poll window (0: never) */
    bool poll;                        /* the client answered within it last time */
    uint8_t *in;
    size_t in_off, in_len;            /* unparsed bytes are in[in_off, in_len) */
    const uint8_t *payload;           /* the WRITE just read: its payload (in `in` or the slot) */
    struct iovec iov[2 * BATCH_MAX];
    struct nbd_slot *batch[BATCH_MAX];
    unsigned nbatch, niov;
    size_t batch_bytes;
};

static uint64_t slot_bytes(const struct nbd_slot *s)
{
    bool data = (s->type == NBD_CMD_READ || s->type == NBD_CMD_WRITE) && !s->early_error;
    return data ? s->length : 0;
}

/* ---- slots ---- */

/* Give s back (d->mu held): its bytes leave the budget, its buffer is kept within KEEP_BYTES. */
static void slot_put_locked(struct dispatch *d, struct nbd_slot *s)
{
    d->inflight_bytes -= slot_bytes(s);
    if (s->buf.cap > KEEP_BYTES - d->kept_bytes)
        snap_buf_free(&s->buf);
    d->kept_bytes += s->buf.cap;
    s->next = d->free;
    d->free = s;
    d->nfree++;
    pthread_cond_signal(&d->free_cv);
}

static void slot_put(struct dispatch *d, struct nbd_slot *s)
{
    pthread_mutex_lock(&d->mu);
    slot_put_locked(d, s);
    pthread_mutex_unlock(&d->mu);
}

static int batch_flush(struct dispatch *d);

/* A slot for a request of `bytes` data bytes, waiting while the connection is at its bounds
 * (after sending the batch, whose slots are then free).  NULL when out of memory. */
static struct nbd_slot *slot_get(struct dispatch *d, uint64_t bytes)
{
    pthread_mutex_lock(&d->mu);
    for (;;) {
        bool room = d->inflight_bytes == 0 || d->inflight_bytes + bytes <= INFLIGHT_BYTES;
        if (room && (d->free || d->nslots < SLOTS_MAX))
            break;
        if (d->nbatch) {
            pthread_mutex_unlock(&d->mu);
            batch_flush(d); /* an error shuts the socket: the next read ends the connection */
            pthread_mutex_lock(&d->mu);
            continue;
        }
        pthread_cond_wait(&d->free_cv, &d->mu);
    }
    struct nbd_slot *s = d->free;
    if (s) {
        d->free = s->next;
        d->nfree--;
        d->kept_bytes -= s->buf.cap;
    } else if ((s = snap_calloc(1, sizeof *s)) != NULL) {
        d->nslots++;
        /* The largest request: a full payload widened by one backend block on each side. */
        snap_buf_init(&s->buf, 4096, NBD_MAX_PAYLOAD + 2 * (size_t)nbd_backend_block(d->c));
    }
    if (s)
        d->inflight_bytes += bytes;
    pthread_mutex_unlock(&d->mu);
    return s;
}

static void slot_free(struct nbd_slot *s)
{
    snap_buf_free(&s->buf);
    snap_free(s->blk);
    snap_free(s->ext);
    snap_free(s);
}

/* ---- the batch of replies the reader made ---- */

static int batch_flush(struct dispatch *d)
{
    if (!d->nbatch)
        return 0;
    int err = nbd_send_iov(d->c, d->iov, (int)d->niov);
    pthread_mutex_lock(&d->mu);
    for (unsigned i = 0; i < d->nbatch; i++)
        slot_put_locked(d, d->batch[i]);
    pthread_mutex_unlock(&d->mu);
    d->nbatch = d->niov = 0;
    d->batch_bytes = 0;
    return err;
}

static int batch_add(struct dispatch *d, struct nbd_slot *s, uint32_t error)
{
    unsigned n = (unsigned)nbd_reply_iov(d->c, s, error, d->iov + d->niov);
    d->niov += n;
    d->batch[d->nbatch++] = s;
    d->batch_bytes += n == 2 ? s->length : 0;
    return d->nbatch == BATCH_MAX || d->batch_bytes >= BATCH_BYTES ? batch_flush(d) : 0;
}

/* ---- workers ---- */

static void *worker_main(void *arg)
{
    struct dispatch *d = arg;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->queue && !d->quit) {
            d->idle++;
            pthread_cond_wait(&d->work_cv, &d->mu);
            d->idle--;
        }
        if (!d->queue)
            break;
        struct nbd_slot *s = d->queue;
        if (!(d->queue = s->next))
            d->queue_tail = &d->queue;
        d->queued--;
        pthread_mutex_unlock(&d->mu);
        struct nbd_timing t;
        uint16_t type = s->type;
        nbd_stats_start(&t);
        int err = nbd_execute(d->c, s);
        nbd_stats_done(d->c->stats, &t, type);
        if (err) { /* the socket is shut; the reader sees it and ends the connection */
            int none = 0;
            atomic_compare_exchange_strong(&d->send_error, &none, err);
        }
        pthread_mutex_lock(&d->mu);
        slot_put_locked(d, s);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* Queue s for a worker, starting one when none is free (and the cap allows). */
static void to_worker(struct dispatch *d, struct nbd_slot *s)
{
    s->next = NULL;
    pthread_mutex_lock(&d->mu);
    *d->queue_tail = s;
    d->queue_tail = &s->next;
    d->queued++;
    if (d->queued > d->idle && d->nworkers < d->max_workers &&
        pthread_create(&d->tids[d->nworkers], NULL, worker_main, d) == 0)
        d->nworkers++;
    pthread_cond_signal(&d->work_cv);
    pthread_mutex_unlock(&d->mu);
}

/* ---- the reader ---- */

/* The first bytes of the next request: busy-poll for up to poll_ns if the client answered within
 * that window last time, else (or after the window) sleep in read(). */
static ssize_t read_next(struct dispatch *d)
{
    struct nbd_conn *c = d->c;
    uint64_t t0 = snap_now_ns();
    ssize_t r = -1;
    if (d->poll) {
        do
            r = recv(c->rfd, d->in, IN_CAP, MSG_DONTWAIT);
        while (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && snap_now_ns() - t0 < d->poll_ns);
        if (r < 0 && errno == ENOTSOCK) /* a pipe (--stdio): no polling */
            d->poll_ns = 0;
    }
    if (r < 0)
        r = read(c->rfd, d->in, IN_CAP);
    d->poll = d->poll_ns && snap_now_ns() - t0 <= d->poll_ns;
    return r;
}

/* More bytes from the client.  Waiting for the first byte of a request is free; in the middle
 * of one the socket timeout ends it.  Returns 1, 0 at a clean end, or a snap_err. */
static int fill(struct dispatch *d)
{
    struct nbd_conn *c = d->c;
    size_t have = d->in_len - d->in_off;
    memmove(d->in, d->in + d->in_off, have);
    d->in_off = 0;
    d->in_len = have;
    for (;;) {
        ssize_t r = have ? read(c->rfd, d->in + have, IN_CAP - have) : read_next(d);
        if (r > 0) {
            d->in_len += (size_t)r;
            return 1;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !have)
            continue; /* the socket timeout just woke us between requests */
        if (r == 0 && !have) {
            snap_info("nbd %s: client closed the connection without NBD_CMD_DISC", c->peer);
            return 0;
        }
        if (r == 0)
            return snap_fail(SNAP_EPROTO, "%s: connection closed in the middle of a request header", c->peer);
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return snap_fail(SNAP_ETIMEOUT, "%s: nothing received for %u ms in the middle of a request header",
                             c->peer, c->io_timeout_ms);
        return snap_fail_errno("%s: read request", c->peer);
    }
}

/* A WRITE's payload: in place when the input buffer holds all of it, else gathered into the
 * slot's buffer (the part already read, then the rest straight from the socket).  A refused
 * WRITE's payload is read and dropped, so the stream stays in sync. */
static int take_payload(struct dispatch *d, struct nbd_slot *s)
{
    struct nbd_conn *c = d->c;
    size_t here = snap_min_u64(d->in_len - d->in_off, s->length);
    c->deadline_ns = snap_now_ns() + (uint64_t)c->io_timeout_ms * 1000000u + (uint64_t)s->length * 1000u;
    if (!s->early_error && here == s->length) {
        d->payload = d->in + d->in_off;
        d->in_off += here;
        return 0;
    }
    if (!s->early_error && snap_buf_reserve(&s->buf, s->length) != 0)
        s->early_error = NBD_ENOMEM;
    int err;
    if (s->early_error) {
        err = nbd_discard(c, s->length - here);
    } else {
        memcpy(s->buf.data, d->in + d->in_off, here);
        err = nbd_recv(c, s->buf.data + here, s->length - here);
        d->payload = s->buf.data;
    }
    d->in_off += here;
    return err ? snap_fail_ctx(err, "short WRITE payload") : 0;
}

/* Parse the request at the input's front into a slot.  *out = NULL at DISC.  0 or a snap_err. */
static int take_request(struct dispatch *d, struct nbd_slot **out)
{
    struct nbd_conn *c = d->c;
    const uint8_t *h = d->in + d->in_off;
    *out = NULL;
    if (get_be32(h) != NBD_REQUEST_MAGIC)
        return snap_fail(SNAP_EPROTO, "%s: bad request magic 0x%08x", c->peer, get_be32(h));
    struct nbd_slot r = {
        .flags = get_be16(h + 4), .type = get_be16(h + 6), .cookie = get_be64(h + 8),
        .offset = get_be64(h + 16), .length = get_be32(h + 24),
    };
    d->in_off += NBD_REQUEST_SIZE;
    NBD_STAT(c, requests, 1);
    if (r.type == NBD_CMD_DISC)
        return 0;
    r.early_error = nbd_validate(c, &r);
    struct nbd_slot *s = slot_get(d, slot_bytes(&r));
    if (!s) { /* out of memory for a new slot: wait for one of ours to come back */
        if (r.type == NBD_CMD_WRITE)
            nbd_discard(c, r.length);
        return snap_fail(SNAP_ENOMEM, "%s: no memory for a request", c->peer);
    }
    s->flags = r.flags, s->type = r.type, s->cookie = r.cookie;
    s->offset = r.offset, s->length = r.length, s->early_error = r.early_error;
    s->data_off = 0;
    *out = s;
    return s->type == NBD_CMD_WRITE ? take_payload(d, s) : 0;
}

/* Answer s here, on the reader, if the device can without waiting: true (and *err: a reply that
 * could not be sent), else false with nothing done. */
static bool run_inline(struct dispatch *d, struct nbd_slot *s, int *err)
{
    struct nbd_conn *c = d->c;
    const struct nbd_export *e = c->exp;
    int fd;
    uint64_t fd_off;
    *err = 0;
    if (s->early_error) {
        *err = batch_add(d, s, s->early_error);
        return true;
    }
    bool read = s->type == NBD_CMD_READ && !nbd_sub_block(c, s);
    if (read && s->length >= ZERO_COPY_MIN && e->ops->read_ref &&
        e->ops->read_ref(e->ctx, s->length, s->offset, &fd, &fd_off) == 0) {
        nbd_count(c, s);
        *err = batch_flush(d); /* the replies read before it go first */
        if (!*err)
            *err = nbd_send_ref(c, s, fd, fd_off);
        slot_put(d, s);
        return true;
    }
    bool done = (read && e->ops->pread_nowait && snap_buf_reserve(&s->buf, s->length) == 0 &&
                 e->ops->pread_nowait(e->ctx, s->buf.data, s->length, s->offset) == 0) ||
                (s->type == NBD_CMD_WRITE && e->ops->pwrite_nowait && c->align >= nbd_backend_block(c) &&
                 e->ops->pwrite_nowait(e->ctx, d->payload, s->length, s->offset, s->flags & NBD_CMD_FLAG_FUA) == 0);
    if (done) {
        nbd_count(c, s);
        *err = batch_add(d, s, 0);
    }
    return done;
}

/* Run s on the reader if the device can without waiting, else hand it to a worker.  An inline
 * request is timed (stats) to its place in the batch; a worker times its own. */
static int route(struct dispatch *d, struct nbd_slot *s)
{
    struct nbd_timing t;
    uint16_t type = s->type;
    int err = 0;
    nbd_stats_start(&t);
    if (run_inline(d, s, &err))
        goto done;
    if (s->type == NBD_CMD_WRITE && d->payload != s->buf.data) { /* it lives in the input buffer */
        if (snap_buf_reserve(&s->buf, s->length) != 0) {
            err = batch_add(d, s, NBD_ENOMEM);
            goto done;
        }
        memcpy(s->buf.data, d->payload, s->length);
    }
    if (!d->serial) {
        to_worker(d, s); /* the worker times it */
        return 0;
    }
    if ((err = batch_flush(d)) == 0) /* serial: every request here, replies in request order */
        err = nbd_execute(d->c, s);
    slot_put(d, s);
done:
    nbd_stats_done(d->c->stats, &t, type);
    return err;
}

/* Read and route requests until DISC, EOF or an error (returned; 0 for a clean end). */
static int reader_loop(struct dispatch *d)
{
    for (;;) {
        if (d->in_len - d->in_off < NBD_REQUEST_SIZE) {
            int err = batch_flush(d); /* before waiting for the client */
            if (err)
                return err;
            d->c->deadline_ns = 0;
            int r = fill(d);
            if (r != 1)
                return r;
            continue;
        }
        struct nbd_slot *s;
        int err = take_request(d, &s);
        if (!err && !s)
            return 0; /* DISC */
        if (!err)
            err = route(d, s);
        else if (s)
            slot_put(d, s);
        if (err)
            return err;
    }
}

int nbd_transmission(struct nbd_conn *c, const struct nbd_conn_opts *opts)
{
    struct dispatch *d = snap_calloc(1, sizeof *d);
    if (!d || !(d->in = snap_malloc(IN_CAP))) {
        snap_free(d);
        return snap_fail(SNAP_ENOMEM, "%s: no memory for the connection", c->peer);
    }
    d->c = c;
    d->queue_tail = &d->queue;
    d->max_workers = opts && opts->workers ? opts->workers : WORKERS_DEFAULT;
    d->serial = opts && opts->serial;
    int poll_us = opts && opts->poll_us ? opts->poll_us : POLL_US_DEFAULT;
    d->poll_ns = poll_us > 0 ? (uint64_t)poll_us * 1000u : 0;
    if (d->max_workers > WORKERS_MAX)
        d->max_workers = WORKERS_MAX;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->work_cv, NULL);
    pthread_cond_init(&d->free_cv, NULL);
    /* Progress deadlines for the middle of a request and for every reply (fail on pipes). */
    struct timeval tv = {.tv_sec = c->io_timeout_ms / 1000, .tv_usec = (c->io_timeout_ms % 1000) * 1000};
    setsockopt(c->rfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->wfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

    int err = reader_loop(d);
    int ferr = batch_flush(d);
    pthread_mutex_lock(&d->mu);
    while (d->nfree < d->nslots) /* every request answered */
        pthread_cond_wait(&d->free_cv, &d->mu);
    d->quit = true;
    pthread_cond_broadcast(&d->work_cv);
    pthread_mutex_unlock(&d->mu);
    for (unsigned i = 0; i < d->nworkers; i++)
        pthread_join(d->tids[i], NULL);
    for (struct nbd_slot *s = d->free, *n; s; s = n) {
        n = s->next;
        slot_free(s);
    }
    if (!err)
        err = ferr ? ferr : atomic_load(&d->send_error);
    pthread_cond_destroy(&d->free_cv);
    pthread_cond_destroy(&d->work_cv);
    pthread_mutex_destroy(&d->mu);
    snap_free(d->in);
    snap_free(d);
    return err;
}

/* Handshake, then transmission, on c (its export or registry set). */
static int serve_conn(struct nbd_conn *c, int rfd, int wfd, const struct nbd_conn_opts *opts)
{
    c->rfd = rfd;
    c->wfd = wfd;
    c->peer = opts && opts->peer ? opts->peer : "client";
    c->io_timeout_ms = opts && opts->io_timeout_ms ? opts->io_timeout_ms : 30000;
    c->admit = opts ? opts->admit : NULL;
    c->align = NBD_DEFAULT_ALIGN; /* until GO says otherwise */
    pthread_mutex_init(&c->send_lock, NULL);
    int err = nbd_handshake(c);
    if (!err)
        err = nbd_transmission(c, opts);
    else if (err == SNAP_ECANCELED)
        err = 0;
    pthread_mutex_destroy(&c->send_lock);
    return err;
}

int nbd_serve(const struct nbd_export *exp, int rfd, int wfd, const struct nbd_conn_opts *opts,
              struct nbd_stats *stats)
{
    struct nbd_stats dummy = {0};
    struct nbd_conn c = {.only = exp, .stats = stats ? stats : &dummy};
    return serve_conn(&c, rfd, wfd, opts);
}

int nbd_serve_exports(struct nbd_exports *reg, int rfd, int wfd, const struct nbd_conn_opts *opts)
{
    struct nbd_stats dummy = {0}; /* until GO picks an export: nothing is counted before */
    struct nbd_conn c = {.reg = reg, .stats = &dummy};
    int err = serve_conn(&c, rfd, wfd, opts);
    nbd_exports_put(reg, c.entry, NBD_REF_CONN);
    return err;
}
