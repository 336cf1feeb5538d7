/* Unit tests of lib/chunker: the lessons of the seeds, pinned one by one. */
#include "test.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "chunker/chunker.h"
#include "bench/simstore.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define KiB 1024u
#define SEED 42u

struct fixture {
    struct store *store;
    struct chunker *ch;
    char path[512];
};

static struct chunker_pool *fx_pool; /* NULL: the process-wide one */

static int fx_open(struct fixture *fx, const struct sim_opts *so, enum chunker_mode mode, uint32_t chunk,
                   uint64_t size)
{
    static unsigned n;
    snprintf(fx->path, sizeof fx->path, "%s/chunker-%u.cache", test_tmpdir(), n++);
    int err = store_sim_open(so, &fx->store);
    if (err)
        return err;
    struct chunker_opts o = {.mode = mode, .size = size, .cache_path = fx->path, .chunk_size = chunk,
                             .fetch_timeout_ms = 5000, .pool = fx_pool};
    return chunker_open(fx->store, "build/memfile", &o, &fx->ch);
}

static void fx_close(struct fixture *fx)
{
    chunker_close(fx->ch);
    store_close(fx->store);
}

static uint64_t sim_reads(struct fixture *fx)
{
    struct sim_stats st;
    store_sim_stats(fx->store, &st);
    return st.reads;
}

/* Read through the chunker and compare with the source pattern. */
static int read_check(struct chunker *ch, uint64_t off, uint64_t len)
{
    uint8_t *got = malloc(len ? len : 1), *want = malloc(len ? len : 1);
    int err = chunker_read(ch, off, len, got);
    if (!err) {
        store_sim_pattern(SEED, off, want, (size_t)len);
        if (memcmp(got, want, (size_t)len) != 0)
            err = -1;
    }
    free(got);
    free(want);
    return err;
}

TEST(chunker_reads_match_source_in_every_mode)
{
    uint32_t chunk = 256 * KiB;
    uint64_t size = 3 * chunk + 5000; /* a partial last chunk and a partial last block */
    for (int mode = CHUNKER_DEMAND; mode <= CHUNKER_FULL; mode++) {
        struct sim_opts so = {.size = size, .seed = SEED, .slice = 16 * KiB};
        struct fixture fx;
        CHECK_EQ(fx_open(&fx, &so, (enum chunker_mode)mode, chunk, size), 0);
        CHECK_EQ(chunker_size(fx.ch), size);
        CHECK_EQ(read_check(fx.ch, 0, 0), 0);                     /* zero-length */
        CHECK_EQ(read_check(fx.ch, size, 0), 0);                  /* zero-length at the end */
        CHECK_EQ(sim_reads(&fx), 0);                              /* ... fetch nothing */
        CHECK_EQ(read_check(fx.ch, chunk - 100, 300), 0);         /* across a chunk boundary */
        CHECK_EQ(read_check(fx.ch, size - 100, 100), 0);          /* the last partial block */
        CHECK_EQ(read_check(fx.ch, size - 5000, 5000), 0);        /* the last partial chunk */
        CHECK_EQ(read_check(fx.ch, 12345, 2 * chunk), 0);         /* three chunks, unaligned */
        CHECK_EQ(read_check(fx.ch, 0, size), 0);                  /* everything */
        uint8_t b[8];
        CHECK_ERR(chunker_read(fx.ch, size - 4, 8, b), SNAP_ERANGE, "past the end");
        CHECK_ERR(chunker_read(fx.ch, UINT64_MAX - 2, 8, b), SNAP_ERANGE, "overflows");
        struct chunker_stats st;
        chunker_stats(fx.ch, &st);
        CHECK_EQ(read_check(fx.ch, 0, size), 0);                  /* now all cached: a hit */
        struct chunker_stats st2;
        chunker_stats(fx.ch, &st2);
        CHECK_EQ(st2.hits, st.hits + 1);
        if (mode == CHUNKER_DEMAND)
            CHECK(st.bytes_fetched >= size);                      /* range requests may overlap */
        else
            CHECK_EQ(st.bytes_fetched, size);                     /* every byte fetched once */
        fx_close(&fx);
    }
}

/* ---- one fetch per chunk however many readers ---- */

struct reader_arg {
    struct chunker *ch;
    uint64_t off, len;
    unsigned timeout_ms;
    struct chunker_cancel *cancel;
    pthread_barrier_t *go;
    int err;
    uint64_t ns;
};

static void *reader_main(void *p)
{
    struct reader_arg *a = p;
    if (a->go)
        pthread_barrier_wait(a->go);
    uint64_t t0 = snap_now_ns();
    uint8_t *got = malloc(a->len), *want = malloc(a->len);
    a->err = chunker_read_ex(a->ch, a->off, a->len, got, a->timeout_ms, a->cancel);
    a->ns = snap_now_ns() - t0;
    if (!a->err) {
        store_sim_pattern(SEED, a->off, want, (size_t)a->len);
        if (memcmp(got, want, (size_t)a->len) != 0)
            a->err = -1;
    }
    free(got);
    free(want);
    return NULL;
}

TEST(chunker_one_fetch_for_many_readers)
{
    uint32_t chunk = 1024 * KiB;
    struct sim_opts so = {.size = chunk, .seed = SEED, .ttfb_us = 20000, .bytes_per_sec = 200000000};
    for (int mode = CHUNKER_STREAMING; mode <= CHUNKER_FULL; mode++) {
        struct fixture fx;
        CHECK_EQ(fx_open(&fx, &so, (enum chunker_mode)mode, chunk, chunk), 0);
        enum { N = 8 };
        pthread_t t[N];
        struct reader_arg a[N];
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, N);
        for (int i = 0; i < N; i++) {
            a[i] = (struct reader_arg){.ch = fx.ch, .off = (uint64_t)i * 100 * KiB + 7, .len = 5000, .go = &go};
            pthread_create(&t[i], NULL, reader_main, &a[i]);
        }
        for (int i = 0; i < N; i++) {
            pthread_join(t[i], NULL);
            CHECK_EQ(a[i].err, 0);
        }
        pthread_barrier_destroy(&go);
        CHECK_EQ(sim_reads(&fx), 1);
        struct chunker_stats st;
        chunker_stats(fx.ch, &st);
        CHECK_EQ(st.fetches, 1);
        CHECK_EQ(st.range_fetches, 0);
        fx_close(&fx);
    }
}

/* Streaming wakes a reader when its bytes land; full waits for the whole chunk. */
TEST(chunker_streaming_wakes_before_the_chunk_is_done)
{
    uint32_t chunk = 1024 * KiB;
    /* 10 ms to first byte, 1 MiB at 20 MB/s: 52 ms for the whole chunk. */
    struct sim_opts so = {.size = chunk, .seed = SEED, .ttfb_us = 10000, .bytes_per_sec = 20000000};
    uint64_t ms[3];
    for (int mode = CHUNKER_STREAMING; mode <= CHUNKER_FULL; mode++) {
        struct fixture fx;
        CHECK_EQ(fx_open(&fx, &so, (enum chunker_mode)mode, chunk, chunk), 0);
        uint64_t t0 = snap_now_ns();
        CHECK_EQ(read_check(fx.ch, 4096, 4096), 0);
        ms[mode] = (snap_now_ns() - t0) / 1000000;
        fx_close(&fx);
    }
    CHECK(ms[CHUNKER_STREAMING] < 40);
    CHECK(ms[CHUNKER_FULL] >= 52);
}

/* Demand-first: the stream starts at the reader's block; a far reader gets its own range. */
TEST(chunker_demand_first_issues_the_readers_range)
{
    uint32_t chunk = 1024 * KiB;
    struct sim_opts so = {.size = 2 * (uint64_t)chunk, .seed = SEED, .ttfb_us = 20000,
                          .bytes_per_sec = 20000000};
    struct fixture fx;
    CHECK_EQ(fx_open(&fx, &so, CHUNKER_DEMAND, chunk, 2 * (uint64_t)chunk), 0);

    /* One cold reader in the middle of chunk 1: the stream starts at its block, about one TTFB. */
    uint64_t t0 = snap_now_ns();
    CHECK_EQ(read_check(fx.ch, chunk + 512 * KiB + 10, 100), 0);
    CHECK((snap_now_ns() - t0) / 1000000 < 40);
    struct sim_request rq[4];
    CHECK_EQ(store_sim_requests(fx.store, rq, 1), 1);
    CHECK_EQ(rq[0].off, chunk + 512 * KiB);
    CHECK_EQ(rq[0].len, 512 * KiB);

    /* Chunk 0: reader A starts the stream at 0, reader B far ahead gets [900K, 904K). */
    struct reader_arg a = {.ch = fx.ch, .off = 0, .len = 4096};
    struct reader_arg b = {.ch = fx.ch, .off = 900 * KiB + 1, .len = 4000};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, reader_main, &a);
    struct chunker_stats st;
    do { /* until A's chunk fetch exists */
        usleep(500);
        chunker_stats(fx.ch, &st);
    } while (st.fetches < 2);
    pthread_create(&tb, NULL, reader_main, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK_EQ(a.err, 0);
    CHECK_EQ(b.err, 0);
    /* The stream would reach B after 20 + 45 ms; its own request takes about 20. */
    CHECK(b.ns / 1000000 < 45);
    chunker_stats(fx.ch, &st);
    CHECK_EQ(st.range_fetches, 1);
    size_t n = store_sim_requests(fx.store, rq, 4);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= rq[i].off == 900 * KiB && rq[i].len == 4096;
    CHECK(found);
    fx_close(&fx);
}

/* ---- a reader's wait can end early without disturbing the fetch ---- */

TEST(chunker_cancelled_reader_leaves_the_fetch_running)
{
    uint32_t chunk = 256 * KiB;
    struct sim_opts so = {.size = chunk, .seed = SEED, .ttfb_us = 80000};
    for (int mode = CHUNKER_DEMAND; mode <= CHUNKER_FULL; mode++) {
        struct fixture fx;
        CHECK_EQ(fx_open(&fx, &so, (enum chunker_mode)mode, chunk, chunk), 0);
        struct chunker_cancel cancel = {0};
        struct reader_arg a = {.ch = fx.ch, .off = 8192, .len = 4096, .cancel = &cancel};
        pthread_t t;
        pthread_create(&t, NULL, reader_main, &a);
        usleep(10000);
        chunker_cancel(fx.ch, &cancel);
        pthread_join(t, NULL);
        CHECK_EQ(a.err, SNAP_ECANCELED);
        CHECK(a.ns / 1000000 < 70); /* well before the fetch's first byte */

        /* A reader with a short timeout: SNAP_ETIMEOUT, and the same fetch still runs. */
        uint8_t buf[4096];
        CHECK_ERR(chunker_read_ex(fx.ch, 8192, 4096, buf, 20, NULL), SNAP_ETIMEOUT, "waited more than 20 ms");

        /* The fetch went on: the next reader joins it -- not a new one -- and gets the bytes. */
        CHECK_EQ(read_check(fx.ch, 8192, 4096), 0);
        struct chunker_stats st;
        chunker_stats(fx.ch, &st);
        CHECK_EQ(st.fetches, 1);
        CHECK_EQ(st.range_fetches, 0);
        CHECK_EQ(st.fetch_errors, 0);
        CHECK_EQ(st.wait_errors, 2);
        CHECK_EQ(read_check(fx.ch, 8192, 4096), 0); /* and then from the cache */
        chunker_stats(fx.ch, &st);
        CHECK_EQ(st.hits, 1);
        fx_close(&fx);
    }
}

/* ---- failures: only what arrived whole is present, the next read refetches ---- */

TEST(chunker_mid_chunk_failure_keeps_only_whole_blocks)
{
    uint32_t chunk = 256 * KiB;
    /* The first store read fails 10000 bytes in: blocks 0 and 1 arrived whole, block 2 did not. */
    struct sim_opts so = {.size = chunk, .seed = SEED, .slice = 4096, .fail_first = 1, .fail_first_at = 10000};
    struct fixture fx;
    CHECK_EQ(fx_open(&fx, &so, CHUNKER_STREAMING, chunk, chunk), 0);
    uint8_t buf[4096];
    CHECK_ERR(chunker_read(fx.ch, 100 * KiB, 100, buf), SNAP_ENET, "injected failure after 10000 bytes");
    CHECK_EQ(sim_reads(&fx), 1);
    /* Blocks 0-1 are served from the cache, without a store read. */
    CHECK_EQ(read_check(fx.ch, 0, 8192), 0);
    CHECK_EQ(sim_reads(&fx), 1);
    /* Block 2 (partly arrived) was not marked present: it is fetched again, correctly. */
    CHECK_EQ(read_check(fx.ch, 8192, 4096), 0);
    CHECK_EQ(sim_reads(&fx), 2);
    struct sim_request rq;
    CHECK_EQ(store_sim_requests(fx.store, &rq, 1), 1);
    CHECK_EQ(rq.off, 8192); /* the retry starts at the first missing block */
    struct chunker_stats st;
    chunker_stats(fx.ch, &st);
    CHECK_EQ(st.fetch_errors, 1);
    fx_close(&fx);

    /* Full mode is all or nothing: after the failure block 0 is fetched again. */
    CHECK_EQ(fx_open(&fx, &so, CHUNKER_FULL, chunk, chunk), 0);
    CHECK_ERR(chunker_read(fx.ch, 0, 100, buf), SNAP_ENET, "injected failure");
    CHECK_EQ(read_check(fx.ch, 0, 100), 0);
    CHECK_EQ(sim_reads(&fx), 2);
    fx_close(&fx);
}

TEST(chunker_truncated_response_is_an_error)
{
    uint32_t chunk = 256 * KiB;
    struct sim_opts so = {.size = 2 * (uint64_t)chunk, .seed = SEED, .slice = 4096, .truncate_pct = 100,
                          .fault_seed = 9};
    struct fixture fx;
    CHECK_EQ(fx_open(&fx, &so, CHUNKER_STREAMING, chunk, 2 * (uint64_t)chunk), 0);
    uint8_t *buf = malloc(chunk);
    CHECK_ERR(chunker_read(fx.ch, 0, chunk, buf), SNAP_ESHORT, "before the object's end");
    free(buf);
    /* Every later read is either right or the same clean error, never wrong bytes. */
    for (uint64_t off = 0; off < chunk; off += 16 * KiB) {
        int err = read_check(fx.ch, off, 4096);
        CHECK(err == 0 || err == SNAP_ESHORT);
    }
    fx_close(&fx);
}

/* ---- the size may be unknown until the first response ---- */

TEST(chunker_size_unknown_until_first_response)
{
    uint32_t chunk = 256 * KiB;
    uint64_t size = 2 * chunk + 3000;
    for (int at_end = 0; at_end <= 1; at_end++) {
        struct sim_opts so = {.size = size, .seed = SEED, .slice = 16 * KiB, .size_at_end = at_end};
        struct fixture fx;
        CHECK_EQ(fx_open(&fx, &so, CHUNKER_DEMAND, chunk, STORE_SIZE_UNKNOWN), 0);
        CHECK_EQ(chunker_size(fx.ch), STORE_SIZE_UNKNOWN);
        CHECK_EQ(read_check(fx.ch, 12345, 0), 0); /* zero-length: no fetch, no cache needed */
        CHECK_EQ(sim_reads(&fx), 0);
        /* The first read is the last partial block: a chunk-sized request at its offset. */
        CHECK_EQ(read_check(fx.ch, size - 10, 10), 0);
        CHECK_EQ(chunker_size(fx.ch), size);
        struct sim_request rq;
        store_sim_requests(fx.store, &rq, 1);
        CHECK(rq.len >= 4096);
        CHECK_EQ(read_check(fx.ch, 0, size), 0);
        uint8_t b[16];
        CHECK_ERR(chunker_read(fx.ch, size - 1, 2, b), SNAP_ERANGE, "past the end");
        fx_close(&fx);

        /* Unknown size, and the first read is past the end. */
        CHECK_EQ(fx_open(&fx, &so, CHUNKER_STREAMING, chunk, STORE_SIZE_UNKNOWN), 0);
        CHECK_ERR(chunker_read(fx.ch, size + 5, 2, b), SNAP_ERANGE, "past the end");
        CHECK_EQ(chunker_size(fx.ch), size);
        CHECK_EQ(read_check(fx.ch, 5, 2), 0);
        fx_close(&fx);
    }
    /* An empty object. */
    struct sim_opts so = {.size = 0, .seed = SEED};
    struct fixture fx;
    CHECK_EQ(fx_open(&fx, &so, CHUNKER_DEMAND, chunk, STORE_SIZE_UNKNOWN), 0);
    uint8_t b[1];
    CHECK_ERR(chunker_read(fx.ch, 0, 1, b), SNAP_ERANGE, "past the end");
    CHECK_EQ(chunker_size(fx.ch), 0);
    CHECK_EQ(chunker_read(fx.ch, 0, 0, b), 0);
    fx_close(&fx);
}

/* ---- the hot paths allocate nothing ---- */

TEST(chunker_no_allocation_per_read_or_fetch)
{
    uint32_t chunk = 256 * KiB;
    uint64_t size = 4 * (uint64_t)chunk;
    struct sim_opts so = {.size = size, .seed = SEED, .slice = 32 * KiB};
    /* A pool of one thread: its staging is allocated by the first fetch, once. */
    CHECK_EQ(chunker_pool_new(1, 4, &fx_pool), 0);
    for (int mode = CHUNKER_DEMAND; mode <= CHUNKER_FULL; mode++) {
        struct fixture fx;
        CHECK_EQ(fx_open(&fx, &so, (enum chunker_mode)mode, chunk, size), 0);
        uint8_t *buf = malloc(2 * (size_t)chunk);
        CHECK_EQ(chunker_read(fx.ch, 0, 2 * (uint64_t)chunk, buf), 0);
        /* Warm: cached reads. */
        uint64_t before = snap_alloc_count();
        for (unsigned i = 0; i < 1000; i++)
            CHECK_EQ(chunker_read(fx.ch, (i * 7919u) % (size / 2 - 4096), 4096, buf), 0);
        CHECK_EQ(snap_alloc_count(), before);
        /* Cold: evict and fetch again, many times. */
        for (unsigned i = 0; i < 20; i++) {
            CHECK_EQ(chunker_evict(fx.ch), 0);
            CHECK_EQ(chunker_read(fx.ch, (i * 104729u) % (size - chunk), chunk, buf), 0);
        }
        CHECK_EQ(snap_alloc_count(), before);
        struct chunker_stats st;
        chunker_stats(fx.ch, &st);
        CHECK(st.fetches >= 20);
        free(buf);
        fx_close(&fx);
    }
    chunker_pool_free(fx_pool);
    fx_pool = NULL;
}

/* Close while a fetch is in flight and a reader waits: both end, nothing leaks or hangs. */
TEST(chunker_close_with_fetch_in_flight)
{
    uint32_t chunk = 256 * KiB;
    struct sim_opts so = {.size = chunk, .seed = SEED, .ttfb_us = 30000, .bytes_per_sec = 10000000};
    struct fixture fx;
    CHECK_EQ(fx_open(&fx, &so, CHUNKER_STREAMING, chunk, chunk), 0);
    struct reader_arg a = {.ch = fx.ch, .off = 200 * KiB, .len = 4096};
    pthread_t t;
    pthread_create(&t, NULL, reader_main, &a);
    usleep(40000); /* the stream is flowing (it reaches 200 KiB at about 50 ms), the reader waits */
    uint64_t t0 = snap_now_ns();
    chunker_close(fx.ch);
    CHECK((snap_now_ns() - t0) / 1000000 < 30);
    pthread_join(t, NULL);
    CHECK_EQ(a.err, SNAP_ECANCELED);
    store_close(fx.store);
}

/* A read wider than every job slot together still completes: slots are reused as jobs end. */
TEST(chunker_read_wider_than_the_job_slots)
{
    uint32_t chunk = 64 * KiB;
    uint64_t size = 40 * (uint64_t)chunk + 77;
    struct sim_opts so = {.size = size, .seed = SEED, .slice = 16 * KiB};
    struct store *s;
    CHECK_EQ(store_sim_open(&so, &s), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/chunker-wide.cache", test_tmpdir());
    struct chunker_opts o = {.mode = CHUNKER_DEMAND, .size = size, .cache_path = path, .chunk_size = chunk,
                             .fetchers = 1};
    struct chunker *ch;
    CHECK_EQ(chunker_open(s, "wide", &o, &ch), 0);
    CHECK_EQ(read_check(ch, 3, size - 3), 0); /* 41 chunks through 1 thread and 4 job slots */
    struct chunker_stats st;
    chunker_stats(ch, &st);
    CHECK(st.fetches + st.direct_reads >= 41); /* a chunk may come as a reader's own range request */
    chunker_close(ch);
    store_close(s);
}
