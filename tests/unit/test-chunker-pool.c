/* Unit tests of the fetch pool (lib/chunker/pool.c): many chunkers share a bounded set of
 * threads, an idle chunker holds none, and one busy object does not starve reads of another --
 * chunkers with queued jobs take turns at the pool's threads. */
#include "test.h"

#include "base/err.h"
#include "base/io.h"
#include "chunker/chunker.h"
#include "bench/simstore.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KiB 1024u
#define MiB (1024u * 1024u)
#define SEED 11u

static struct chunker *pool_chunker(struct store *s, struct chunker_pool *p, const char *key, uint32_t chunk,
                                    uint64_t size, unsigned fetchers)
{
    static atomic_uint n;
    char path[512];
    snprintf(path, sizeof path, "%s/chunker-pool-%u.cache", test_tmpdir(), atomic_fetch_add(&n, 1));
    /* Streaming mode: whole-chunk jobs only (no direct reads), so every fetch goes through the pool. */
    struct chunker_opts o = {.mode = CHUNKER_STREAMING, .size = size, .cache_path = path, .chunk_size = chunk,
                             .fetchers = fetchers, .fetch_timeout_ms = 30000, .pool = p};
    struct chunker *ch = NULL;
    return chunker_open(s, key, &o, &ch) == 0 ? ch : NULL;
}

struct reader {
    struct chunker *ch;
    uint64_t off;
    int err;
    atomic_int *done;
};

static void *read_one(void *arg)
{
    struct reader *r = arg;
    uint8_t got[4096], want[4096];
    r->err = chunker_read(r->ch, r->off, sizeof got, got);
    store_sim_pattern(SEED, r->off, want, sizeof want);
    if (!r->err && memcmp(got, want, sizeof got) != 0)
        r->err = -1;
    if (r->done)
        atomic_fetch_add(r->done, 1);
    return NULL;
}

/* A pool of 4 threads; object A has 16 chunk fetches waiting for them (~100 ms each, so ~400 ms
 * in all; each of A's readers wants its chunk's last block, so it returns when its fetch ends).
 * A read of object B (its chunk's first block) posted after 4 of A's run and 6 more are queued
 * gets the next free thread: it is back after A's first 4 (~100 ms), where a first-come queue
 * would have served it after 8 (~300 ms). */
TEST(chunker_pool_busy_object_does_not_starve_another)
{
    uint32_t chunk = 1 * MiB;
    uint64_t size = 16 * (uint64_t)chunk;
    struct sim_opts so = {.size = size, .seed = SEED, .ttfb_us = 2000, .bytes_per_sec = 10000000,
                          .slice = 32 * KiB};
    struct store *s;
    CHECK_EQ(store_sim_open(&so, &s), 0);
    struct chunker_pool *p;
    CHECK_EQ(chunker_pool_new(4, 0, &p), 0);
    struct chunker *a = pool_chunker(s, p, "a", chunk, size, 4), *b = pool_chunker(s, p, "b", chunk, size, 4);
    CHECK(a && b);
    atomic_int a_done = 0;
    struct reader ra[16];
    pthread_t ta[16];
    for (unsigned i = 0; i < 16; i++) {
        ra[i] = (struct reader){.ch = a, .off = (uint64_t)(i + 1) * chunk - 4096, .done = &a_done};
        pthread_create(&ta[i], NULL, read_one, &ra[i]);
    }
    /* Wait until A holds every thread and has more queued. */
    for (;;) {
        struct chunker_pool_stats ps;
        chunker_pool_stats(p, &ps);
        if (ps.busy == 4 && ps.queued >= 4)
            break;
        usleep(500);
    }
    uint64_t t0 = snap_now_ns();
    struct reader rb = {.ch = b, .off = 3 * (uint64_t)chunk};
    read_one(&rb);
    uint64_t waited_ms = (snap_now_ns() - t0) / 1000000;
    int a_done_then = atomic_load(&a_done);
    for (unsigned i = 0; i < 16; i++) {
        pthread_join(ta[i], NULL);
        CHECK_EQ(ra[i].err, 0);
    }
    uint64_t a_ms = (snap_now_ns() - t0) / 1000000;
    printf("    B's read: %llu ms, with %d of A's 16 reads done; A's all done after %llu ms\n",
           (unsigned long long)waited_ms, a_done_then, (unsigned long long)a_ms);
    CHECK_EQ(rb.err, 0);
    CHECK(a_done_then < 7); /* B did not wait behind A's queued jobs */
    CHECK(waited_ms < a_ms);
    struct chunker_pool_stats ps;
    chunker_pool_stats(p, &ps);
    CHECK_EQ(ps.threads, 4u);
    chunker_close(a);
    chunker_close(b);
    chunker_pool_free(p);
    store_close(s);
}

/* 40 chunkers on a pool of 3 threads, read from 8 threads at once: the pool never starts more
 * than 3, every read is right, and chunkers that are open but not read hold no thread. */
TEST(chunker_pool_many_chunkers_share_its_threads)
{
    uint32_t chunk = 256 * KiB;
    uint64_t size = 4 * (uint64_t)chunk;
    struct sim_opts so = {.size = size, .seed = SEED, .ttfb_us = 500, .slice = 32 * KiB};
    struct store *s;
    CHECK_EQ(store_sim_open(&so, &s), 0);
    struct chunker_pool *p;
    CHECK_EQ(chunker_pool_new(3, 0, &p), 0);
    struct chunker *ch[40];
    for (unsigned i = 0; i < 40; i++) {
        char key[16];
        snprintf(key, sizeof key, "obj%u", i);
        ch[i] = pool_chunker(s, p, key, chunk, size, 0);
        CHECK(ch[i] != NULL);
    }
    struct chunker_pool_stats ps;
    chunker_pool_stats(p, &ps);
    CHECK_EQ(ps.threads, 1u); /* opening starts none but the first */
    struct reader r[40];
    pthread_t t[8];
    for (unsigned round = 0; round < 5; round++) {
        for (unsigned i = 0; i < 8; i++) {
            unsigned k = round * 8 + i;
            r[k] = (struct reader){.ch = ch[k], .off = (uint64_t)(k % 4) * chunk + 4096 * k};
            pthread_create(&t[i], NULL, read_one, &r[k]);
        }
        for (unsigned i = 0; i < 8; i++)
            pthread_join(t[i], NULL);
    }
    for (unsigned k = 0; k < 40; k++)
        CHECK_EQ(r[k].err, 0);
    chunker_pool_stats(p, &ps);
    CHECK(ps.threads <= 3);
    CHECK_EQ(ps.max_threads, 3u);
    for (unsigned i = 0; i < 40; i++)
        chunker_close(ch[i]);
    chunker_pool_free(p);
    store_close(s);
}
