/* compress.c -- a build's data file as a compressed object: frame by frame on worker threads.
 *
 * Design note: the input is mapped read-only; worker threads take frame numbers in order, each
 * compresses its frame into its own buffer (hdr_frame_encode) and then waits for its turn to
 * append: frames are written to the output in order, so the compressed offsets are known as
 * they are written, and the writer of frame k also feeds it to the SHA-256 of the uncompressed
 * data and drops its input pages (MADV_DONTNEED).  Memory: one compressed-frame buffer per
 * worker, whatever the file's size.  The output is a temp file (unlinked at once) that
 * upload_file then sends like any other object -- or, to a store that can multipart, the frames
 * are packed into parts and sent while the next ones are compressed (upload_compress_stream).
 */
#include "upload/upload.h"

#include "base/cancel.h"
#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "base/util.h"
#include "crypto/sha256.h"
#include "header/header.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMPRESS_WORKERS 2u

struct cjob;
/* Where frame k's compressed bytes go, in order (the caller holds the turn): the temp file, or
 * the part being packed.  last: the final frame. */
typedef int (*cjob_emit_fn)(struct cjob *j, const uint8_t *buf, size_t clen, bool last);

struct cjob {
    const uint8_t *map;
    uint64_t size;
    uint32_t fsize, nframes, comp;
    int level;
    int out;
    const char *path;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t next_take, next_write;
    uint64_t pos;
    int err;
    char msg[512];
    struct sha256_ctx sha;
    struct hdr_frame *frames;
    cjob_emit_fn emit;
    void *emit_ctx;
    const struct snap_cancel *cancel;
    _Atomic uint64_t done_u;         /* uncompressed bytes emitted, for progress */
    atomic_uint running;             /* workers not yet returned */
};

static void cjob_fail(struct cjob *j, int err)
{
    pthread_mutex_lock(&j->mu);
    if (!j->err) {
        j->err = err;
        snprintf(j->msg, sizeof j->msg, "%s", snap_errmsg(err));
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Append frame k (its turn has come: nobody else writes). */
static int append_frame(struct cjob *j, uint32_t k, const uint8_t *buf, size_t clen)
{
    uint64_t su = (uint64_t)k * j->fsize, n = snap_min_u64(j->fsize, j->size - su);
    int err = j->emit(j, buf, clen, k + 1 == j->nframes);
    if (err)
        return err;
    sha256_update(&j->sha, j->map + su, (size_t)n);
    long page = sysconf(_SC_PAGESIZE);
    uint64_t a = su / (uint64_t)page * (uint64_t)page;
    madvise((void *)(j->map + a), (size_t)(su + n - a), MADV_DONTNEED); /* read-only: refetched if needed */
    j->frames[k] = (struct hdr_frame){.start_u = (int64_t)su, .start_c = (int64_t)j->pos, .size_u = (int32_t)n,
                                      .size_c = (int32_t)clen};
    j->pos += clen;
    atomic_store(&j->done_u, su + n);
    return 0;
}

static int emit_to_file(struct cjob *j, const uint8_t *buf, size_t clen, bool last)
{
    (void)last;
    return snap_pwrite_full(j->out, buf, clen, j->pos, "the compressed temp file");
}

static void *cworker(void *arg)
{
    struct cjob *j = arg;
    struct hdr_frame_enc *e = NULL;
    uint8_t *buf = NULL;
    int err = hdr_frame_enc_new(j->comp, j->level, &e);
    size_t cap = err ? 0 : hdr_frame_bound(e, j->fsize);
    if (!err && !(buf = snap_malloc(cap)))
        err = snap_fail(SNAP_ENOMEM, "cannot allocate a %zu-byte frame buffer", cap);
    while (!err) {
        pthread_mutex_lock(&j->mu);
        uint32_t k = j->next_take++;
        bool stop = j->err || k >= j->nframes;
        pthread_mutex_unlock(&j->mu);
        if (stop)
            break;
        if (snap_cancelled(j->cancel)) {
            err = snap_fail(SNAP_EINTR, "%s: interrupted while compressing", j->path);
            break;
        }
        uint64_t su = (uint64_t)k * j->fsize, n = snap_min_u64(j->fsize, j->size - su);
        size_t clen;
        if ((err = hdr_frame_encode(e, j->map + su, (size_t)n, buf, cap, &clen)) != 0) {
            snap_fail_ctx(err, "%s: frame %u", j->path, k);
            break;
        }
        if (clen > INT32_MAX) {
            err = snap_fail(SNAP_ETOOBIG, "%s: frame %u compresses to %zu bytes", j->path, k, clen);
            break;
        }
        pthread_mutex_lock(&j->mu);
        while (j->next_write != k && !j->err)
            pthread_cond_wait(&j->cv, &j->mu);
        bool failed = j->err != 0;
        pthread_mutex_unlock(&j->mu);
        if (failed || (err = append_frame(j, k, buf, clen)) != 0)
            break;
        pthread_mutex_lock(&j->mu);
        j->next_write++;
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
    }
    if (err)
        cjob_fail(j, err);
    snap_free(buf);
    hdr_frame_enc_free(e);
    atomic_fetch_sub(&j->running, 1);
    return NULL;
}

/* Run the workers to the end; meanwhile the calling thread reports progress (uncompressed bytes
 * done) every 50 ms, if asked to. */
static int run_workers(struct cjob *j, void (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx)
{
    pthread_t t[COMPRESS_WORKERS];
    unsigned started = 0;
    atomic_store(&j->running, COMPRESS_WORKERS);
    for (; started < COMPRESS_WORKERS && started < j->nframes; started++)
        if (pthread_create(&t[started], NULL, cworker, j) != 0)
            break;
    atomic_fetch_sub(&j->running, COMPRESS_WORKERS - started);
    if (!started && j->nframes) {
        atomic_store(&j->running, 1);
        cworker(j);
    }
    while (progress && atomic_load(&j->running) > 0) {
        progress(ctx, atomic_load(&j->done_u), j->size);
        snap_sleep_until_ns(snap_now_ns() + 50000000);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    return j->err ? snap_fail(j->err, "%s", j->msg) : 0;
}

/* Open and map the input, check the frame count, allocate the frame table. */
static int cjob_open(struct cjob *j, const char *path, const struct upload_compress_opts *o, int *in)
{
    uint32_t fsize = o->frame_size ? o->frame_size : HDR_FRAME_SIZE;
    *j = (struct cjob){.fsize = fsize, .comp = o->comp, .level = o->level, .path = path, .out = -1};
    *in = -1;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    sha256_init(&j->sha);
    if (fsize % 4096 || fsize > HDR_FRAME_MAX)
        return snap_fail(SNAP_EUSAGE, "frame size %u is not a multiple of 4096 up to %u", fsize, HDR_FRAME_MAX);
    int err = snap_open_regular(path, O_RDONLY, in, &j->size);
    if (err)
        return err;
    uint64_t n = (j->size + fsize - 1) / fsize;
    if (j->size == 0 || n > HDR_MAX_FRAMES)
        return snap_fail(SNAP_ERANGE, "%s: %llu bytes make %llu frames; a compressed object has 1 to %u", path,
                         (unsigned long long)j->size, (unsigned long long)n, HDR_MAX_FRAMES);
    j->nframes = (uint32_t)n;
    if ((j->map = mmap(NULL, (size_t)j->size, PROT_READ, MAP_SHARED, *in, 0)) == MAP_FAILED) {
        j->map = NULL;
        return snap_fail_errno("%s: mmap of %llu bytes", path, (unsigned long long)j->size);
    }
    if (!(j->frames = snap_calloc(j->nframes, sizeof *j->frames)))
        return snap_fail(SNAP_ENOMEM, "out of memory for %u frames", j->nframes);
    return 0;
}

/* Unmap and close the input; on success hand the results to out (which then owns the table). */
static int cjob_close(struct cjob *j, int in, int err, struct upload_compressed *out)
{
    if (j->map)
        munmap((void *)j->map, (size_t)j->size);
    if (in >= 0)
        close(in);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    if (err) {
        if (j->out >= 0)
            close(j->out);
        snap_free(j->frames);
        return err;
    }
    sha256_final(&j->sha, out->sha256);
    out->fd = j->out;
    out->bytes = j->pos;
    out->usize = j->size;
    out->frames = j->frames;
    out->nframes = j->nframes;
    return 0;
}

int upload_compress_file(const char *path, const struct upload_compress_opts *o, struct upload_compressed *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    struct cjob j;
    int in, err = cjob_open(&j, path, o, &in);
    char tmp[4096];
    const char *dir = o->tmp_dir && *o->tmp_dir ? o->tmp_dir : "/tmp";
    if (!err && (size_t)snprintf(tmp, sizeof tmp, "%s/.snapctl-compress.XXXXXX", dir) >= sizeof tmp)
        err = snap_fail(SNAP_EUSAGE, "%s: path too long", dir);
    if (!err && (j.out = mkostemp(tmp, O_CLOEXEC)) < 0)
        err = snap_fail_errno("%s: create a temp file for the compressed object", dir);
    else if (!err)
        unlink(tmp);
    j.emit = emit_to_file;
    if (!err)
        err = run_workers(&j, NULL, NULL);
    return cjob_close(&j, in, err, out);
}

void upload_compressed_free(struct upload_compressed *c)
{
    if (c->fd >= 0)
        close(c->fd);
    snap_free(c->frames);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

/* ---- streaming: frames packed into multipart parts while they are compressed ----------------
 * The frame writer whose turn it is appends to the part being filled; a part that reaches the
 * part size (or holds the last frame) is sealed and handed to the senders, and the writer takes
 * the next free buffer, waiting for one if all are sealed or being sent: STREAM_BUFS buffers in
 * all, so memory is STREAM_BUFS x (part size + one frame's bound) whatever the file's size, and
 * compression and upload overlap.  Parts are numbered in frame order. */

#define STREAM_BUFS 4u
#define STREAM_SENDERS 3u
#define STREAM_PART (8ull << 20)

enum pbuf_state { PB_FREE, PB_FILLING, PB_SEALED, PB_SENDING };

struct pbuf {
    uint8_t *p;
    size_t len;
    uint32_t part; /* 1-based */
    enum pbuf_state st;
};

struct packer {
    struct cjob *j;
    struct store *s;
    const char *key, *id;
    uint64_t psize;
    struct pbuf b[STREAM_BUFS];
    int cur;                         /* the buffer being filled, -1: none */
    bool produced;                   /* every frame is emitted (or the job failed) */
    struct store_part *parts;
    uint32_t nparts, maxparts;
    struct sha256_ctx sha;           /* of the compressed object */
};

/* Take a free buffer for the next part (the caller has the turn); waits while none is free. */
static int take_buffer(struct packer *k)
{
    struct cjob *j = k->j;
    pthread_mutex_lock(&j->mu);
    int got = -1;
    while (!j->err) {
        for (unsigned i = 0; i < STREAM_BUFS && got < 0; i++)
            if (k->b[i].st == PB_FREE)
                got = (int)i;
        if (got >= 0)
            break;
        pthread_cond_wait(&j->cv, &j->mu);
    }
    int err = j->err;
    if (!err && k->nparts == k->maxparts)
        err = snap_fail(SNAP_ETOOBIG, "%s: more than %u parts", j->path, k->maxparts);
    if (!err) {
        k->b[got] = (struct pbuf){.p = k->b[got].p, .part = ++k->nparts, .st = PB_FILLING};
        k->cur = got;
    }
    pthread_mutex_unlock(&j->mu);
    return err ? SNAP_ECANCELED : 0;
}

static int emit_to_part(struct cjob *j, const uint8_t *buf, size_t clen, bool last)
{
    struct packer *k = j->emit_ctx;
    if (k->cur < 0 && take_buffer(k) != 0)
        return SNAP_ECANCELED;
    struct pbuf *b = &k->b[k->cur];
    memcpy(b->p + b->len, buf, clen); /* only the writer with the turn touches the filling buffer */
    b->len += clen;
    sha256_update(&k->sha, buf, clen);
    if (b->len >= k->psize || last) {
        pthread_mutex_lock(&j->mu);
        b->st = PB_SEALED;
        k->cur = -1;
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
    }
    return 0;
}

static void *sender(void *arg)
{
    struct packer *k = arg;
    struct cjob *j = k->j;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        struct pbuf *b = NULL;
        for (unsigned i = 0; i < STREAM_BUFS && !b; i++)
            if (k->b[i].st == PB_SEALED)
                b = &k->b[i];
        if (j->err || (!b && k->produced))
            break;
        if (!b) {
            pthread_cond_wait(&j->cv, &j->mu);
            continue;
        }
        b->st = PB_SENDING;
        pthread_mutex_unlock(&j->mu);
        struct store_part *sp = &k->parts[b->part - 1];
        int err = store_mp_part(k->s, k->key, k->id, b->part, b->p, b->len, NULL, NULL, sp->etag);
        sp->number = b->part;
        if (err)
            cjob_fail(j, err);
        pthread_mutex_lock(&j->mu);
        b->st = PB_FREE;
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* Buffers and the part table; the part size grows so that the worst case fits 10,000 parts. */
static int packer_init(struct packer *k, struct cjob *j, const struct upload_opts *uo)
{
    struct hdr_frame_enc *e = NULL;
    int err = hdr_frame_enc_new(j->comp, j->level, &e);
    if (err)
        return err;
    size_t bound = hdr_frame_bound(e, j->fsize);
    hdr_frame_enc_free(e);
    uint64_t worst = (uint64_t)bound * j->nframes;
    k->psize = uo->part_size ? uo->part_size : STREAM_PART;
    if (k->psize < (worst + UPLOAD_MAX_PARTS - 1) / UPLOAD_MAX_PARTS)
        k->psize = snap_round_up((worst + UPLOAD_MAX_PARTS - 1) / UPLOAD_MAX_PARTS, 1ull << 20);
    k->maxparts = (uint32_t)snap_min_u64(UPLOAD_MAX_PARTS, worst / k->psize + 2);
    k->cur = -1;
    sha256_init(&k->sha);
    if (!(k->parts = snap_calloc(k->maxparts, sizeof *k->parts)))
        return snap_fail(SNAP_ENOMEM, "out of memory for %u parts", k->maxparts);
    for (unsigned i = 0; i < STREAM_BUFS; i++)
        if (!(k->b[i].p = snap_malloc((size_t)k->psize + bound)))
            return snap_fail(SNAP_ENOMEM, "cannot allocate %u part buffers of %llu bytes", STREAM_BUFS,
                             (unsigned long long)(k->psize + bound));
    return 0;
}

static void packer_free(struct packer *k)
{
    for (unsigned i = 0; i < STREAM_BUFS; i++)
        snap_free(k->b[i].p);
    snap_free(k->parts);
}

/* Compress and send: workers and senders run; the calling thread reports progress. */
static int stream_run(struct packer *k, const struct upload_opts *uo)
{
    struct cjob *j = k->j;
    pthread_t t[STREAM_SENDERS];
    unsigned started = 0;
    for (; started < STREAM_SENDERS; started++)
        if (pthread_create(&t[started], NULL, sender, k) != 0)
            break;
    int err = started ? run_workers(j, uo->progress, uo->progress_ctx)
                      : snap_fail(SNAP_ENOMEM, "%s: cannot start the upload threads", j->path);
    pthread_mutex_lock(&j->mu);
    k->produced = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    for (unsigned i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    if (!err && j->err)
        err = snap_fail(j->err, "%s", j->msg);
    if (!err && snap_cancelled(uo->cancel))
        err = snap_fail(SNAP_EINTR, "%s/%s: interrupted", k->s->url, k->key);
    return err;
}

int upload_compress_stream(struct store *s, const char *key, const char *path, const struct upload_compress_opts *co,
                           const struct upload_opts *uo, struct upload_compressed *out, struct upload_result *r)
{
    memset(out, 0, sizeof *out);
    memset(r, 0, sizeof *r);
    out->fd = -1;
    uint64_t t0 = snap_now_ns();
    struct cjob j;
    struct packer k = {.j = &j, .s = s, .key = key};
    int in, err = cjob_open(&j, path, co, &in);
    j.emit = emit_to_part;
    j.emit_ctx = &k;
    j.cancel = uo->cancel;
    if (!err)
        err = packer_init(&k, &j, uo);
    char *id = NULL;
    if (!err)
        err = store_mp_create(s, key, &(struct store_put_opts){.uncompressed_size = j.size}, &id);
    k.id = id;
    if (!err) {
        err = stream_run(&k, uo);
        if (!err)
            err = store_mp_complete(s, key, id, k.parts, k.nparts, r->etag);
        if (err) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", snap_errmsg(err));
            if (store_mp_abort(s, key, id) != 0)
                snap_fail(err, "%s; and the abort failed too: the parts stay until a lifecycle rule removes them "
                          "(upload id %s)", msg, id);
            else
                snap_fail(err, "%s; the upload was aborted", msg);
        }
    }
    sha256_final(&k.sha, r->sha256);
    if (!err && store_can_set_meta(s)) { /* its SHA-256 is known only now, as with any multipart upload */
        struct store_put_opts po = {.sha256 = r->sha256, .uncompressed_size = j.size};
        if ((err = store_set_meta(s, key, j.pos, &po)) != 0)
            snap_fail_ctx(err, "%s/%s: uploaded, but its sha256 metadata could not be set", s->url, key);
    }
    struct store_info info; /* RGW's complete answer may carry an empty ETag */
    if (!err && !r->etag[0] && store_stat(s, key, &info) == 0)
        snprintf(r->etag, sizeof r->etag, "%s", info.etag);
    r->parts = k.nparts;
    r->bytes = j.pos;
    r->seconds = (double)(snap_now_ns() - t0) / 1e9;
    snap_free(id);
    packer_free(&k);
    err = cjob_close(&j, in, err, out);
    return err;
}
