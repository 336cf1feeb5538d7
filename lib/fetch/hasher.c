/* hasher.c -- SHA-256 of a file while it is being written, on a second thread (hasher.h). */
#include "fetch/hasher.h"

#include "base/err.h"
#include "base/mem.h"
#include "crypto/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#define HASHER_BUF (1u << 20)
#define HASHER_SYNC_STEP (8u << 20)
#define HASHER_BATCH (256u << 10) /* wake the thread only for this much new data */

struct fetch_hasher {
    pthread_t th;
    bool threaded;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd;
    const char *name;
    uint64_t avail;   /* bytes in the file (under mu) */
    uint64_t hashed;  /* bytes hashed: written by the worker, read under mu */
    bool waiting;     /* the worker sleeps on cv */
    bool stop;        /* no more data: hash to avail and end */
    int err;
    char msg[512];    /* the worker's failure detail (details are per thread) */
    struct sha256_ctx sha;
    uint8_t *buf;
};

static void *hasher_main(void *arg)
{
    struct fetch_hasher *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->stop && h->avail - h->hashed < HASHER_BATCH) {
            h->waiting = true;
            pthread_cond_wait(&h->cv, &h->mu);
            h->waiting = false;
        }
        if (h->err || h->hashed == h->avail) /* stop is set */
            break;
        uint64_t off = h->hashed, left = h->avail - off;
        pthread_mutex_unlock(&h->mu);
        size_t want = left < HASHER_BUF ? (size_t)left : HASHER_BUF;
        ssize_t n = pread(h->fd, h->buf, want, (off_t)off);
        int err = 0;
        if (n < 0 && errno != EINTR)
            err = snap_fail_errno("%s: reading back to hash", h->name);
        else if (n == 0)
            err = snap_fail(SNAP_EIO, "%s: ended at byte %llu while hashing", h->name, (unsigned long long)off);
        else if (n > 0)
            sha256_update(&h->sha, h->buf, (size_t)n);
        /* Start the disk writeback of what is hashed, so the final fsync has little left. */
        if (n > 0 && (off + (uint64_t)n) / HASHER_SYNC_STEP != off / HASHER_SYNC_STEP) {
            uint64_t end = (off + (uint64_t)n) / HASHER_SYNC_STEP * HASHER_SYNC_STEP;
            sync_file_range(h->fd, (off64_t)(end - HASHER_SYNC_STEP), HASHER_SYNC_STEP, SYNC_FILE_RANGE_WRITE);
        }
        pthread_mutex_lock(&h->mu);
        if (err) {
            h->err = err;
            snprintf(h->msg, sizeof h->msg, "%s", snap_errmsg(err));
        } else if (n > 0)
            h->hashed += (uint64_t)n;
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int fetch_hasher_start(int fd, const char *name, struct fetch_hasher **out)
{
    struct fetch_hasher *h = snap_calloc(1, sizeof *h);
    uint8_t *buf = snap_malloc(HASHER_BUF);
    if (!h || !buf) {
        snap_free(h);
        snap_free(buf);
        return snap_fail(SNAP_ENOMEM, "out of memory");
    }
    h->fd = fd;
    h->name = name;
    h->buf = buf;
    sha256_init(&h->sha);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->threaded = pthread_create(&h->th, NULL, hasher_main, h) == 0;
    *out = h;
    return 0;
}

void fetch_hasher_wrote(struct fetch_hasher *h, uint64_t end)
{
    pthread_mutex_lock(&h->mu);
    h->avail = end;
    if (h->waiting && end - h->hashed >= HASHER_BATCH)
        pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void hasher_stop(struct fetch_hasher *h)
{
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (h->threaded)
        pthread_join(h->th, NULL);
    else
        hasher_main(h);
}

static void hasher_free(struct fetch_hasher *h)
{
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    snap_free(h->buf);
    snap_free(h);
}

int fetch_hasher_finish(struct fetch_hasher *h, uint8_t out[32])
{
    hasher_stop(h);
    int err = h->err;
    if (err && h->threaded)
        snap_fail(err, "%s", h->msg);
    if (!err)
        sha256_final(&h->sha, out);
    hasher_free(h);
    return err;
}

void fetch_hasher_abort(struct fetch_hasher *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->err = h->err ? h->err : SNAP_ECANCELED;
    pthread_mutex_unlock(&h->mu);
    hasher_stop(h);
    hasher_free(h);
}
