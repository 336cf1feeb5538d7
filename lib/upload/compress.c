/* compress.c -- a build's data file as a compressed object: frame by frame on worker threads.
 *
 * Design note: the input is mapped read-only; worker threads take frame numbers in order, each
 * compresses its frame into its own buffer (hdr_frame_encode) and then waits for its turn to
 * append: frames are written to the output in order, so the compressed offsets are known as
 * they are written, and the writer of frame k also feeds it to the SHA-256 of the uncompressed
 * data and drops its input pages (MADV_DONTNEED).  Memory: one compressed-frame buffer per
 * worker, whatever the file's size.  The output is a temp file (unlinked at once) that
 * upload_file then sends like any other object.
 */
#include "upload/upload.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
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
    int err = snap_pwrite_full(j->out, buf, clen, j->pos, "the compressed temp file");
    if (err)
        return err;
    sha256_update(&j->sha, j->map + su, (size_t)n);
    long page = sysconf(_SC_PAGESIZE);
    uint64_t a = su / (uint64_t)page * (uint64_t)page;
    madvise((void *)(j->map + a), (size_t)(su + n - a), MADV_DONTNEED); /* read-only: refetched if needed */
    j->frames[k] = (struct hdr_frame){.start_u = (int64_t)su, .start_c = (int64_t)j->pos, .size_u = (int32_t)n,
                                      .size_c = (int32_t)clen};
    j->pos += clen;
    return 0;
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
    return NULL;
}

static int run_workers(struct cjob *j)
{
    pthread_t t[COMPRESS_WORKERS];
    unsigned started = 0;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    sha256_init(&j->sha);
    for (; started < COMPRESS_WORKERS && started < j->nframes; started++)
        if (pthread_create(&t[started], NULL, cworker, j) != 0)
            break;
    if (!started && j->nframes)
        cworker(j);
    for (unsigned i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    return j->err ? snap_fail(j->err, "%s", j->msg) : 0;
}

int upload_compress_file(const char *path, const struct upload_compress_opts *o, struct upload_compressed *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    uint32_t fsize = o->frame_size ? o->frame_size : HDR_FRAME_SIZE;
    if (fsize % 4096 || fsize > HDR_FRAME_MAX)
        return snap_fail(SNAP_EUSAGE, "frame size %u is not a multiple of 4096 up to %u", fsize, HDR_FRAME_MAX);
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return snap_fail_errno("%s", path);
    struct stat st;
    int err = fstat(in, &st) < 0 ? snap_fail_errno("%s: stat", path) : 0;
    uint64_t size = err ? 0 : (uint64_t)st.st_size;
    struct cjob j = {.size = size, .fsize = fsize, .comp = o->comp, .level = o->level, .path = path,
                     .nframes = (uint32_t)((size + fsize - 1) / fsize)};
    if (!err && (size == 0 || (size + fsize - 1) / fsize > HDR_MAX_FRAMES))
        err = snap_fail(SNAP_ERANGE, "%s: %llu bytes make %llu frames; a compressed object has 1 to %u", path,
                        (unsigned long long)size, (unsigned long long)((size + fsize - 1) / fsize), HDR_MAX_FRAMES);
    if (!err && (j.map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, in, 0)) == MAP_FAILED) {
        j.map = NULL;
        err = snap_fail_errno("%s: mmap of %llu bytes", path, (unsigned long long)size);
    }
    char tmp[4096];
    const char *dir = o->tmp_dir && *o->tmp_dir ? o->tmp_dir : "/tmp";
    if (!err && (size_t)snprintf(tmp, sizeof tmp, "%s/.snapctl-compress.XXXXXX", dir) >= sizeof tmp)
        err = snap_fail(SNAP_EUSAGE, "%s: path too long", dir);
    if (!err && (j.out = mkostemp(tmp, O_CLOEXEC)) < 0)
        err = snap_fail_errno("%s: create a temp file for the compressed object", dir);
    else if (!err)
        unlink(tmp);
    if (!err && !(j.frames = snap_calloc(j.nframes, sizeof *j.frames)))
        err = snap_fail(SNAP_ENOMEM, "out of memory for %u frames", j.nframes);
    if (!err)
        err = run_workers(&j);
    if (j.map)
        munmap((void *)j.map, (size_t)size);
    close(in);
    if (err) {
        if (j.out > 0)
            close(j.out);
        snap_free(j.frames);
        return err;
    }
    sha256_final(&j.sha, out->sha256);
    out->fd = j.out;
    out->bytes = j.pos;
    out->usize = size;
    out->frames = j.frames;
    out->nframes = j.nframes;
    return 0;
}

void upload_compressed_free(struct upload_compressed *c)
{
    if (c->fd >= 0)
        close(c->fd);
    snap_free(c->frames);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}
