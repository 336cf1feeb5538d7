/* Unit tests of lib/chunker's demand path under load, zero detection and streaming without
 * staging: a reader whose chunk finds every fetch thread busy runs its own small range request
 * (no queueing behind whole-chunk fetches, no allocation per request); fetched all-zero blocks
 * become holes; over an http store a fetch fills the cache from each delivery, whole blocks only. */
#include "test.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "cache/cache.h"
#include "chunker/chunker.h"
#include "bench/simstore.h"
#include "net-testsrv.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KiB 1024u
#define MiB (1024u * 1024u)
#define SEED 7u

static struct chunker *open_chunker(struct store *s, const char *key, uint32_t chunk, uint64_t size,
                                    unsigned fetchers, unsigned direct)
{
    static unsigned n;
    char path[512];
    snprintf(path, sizeof path, "%s/chunker-demand-%u.cache", test_tmpdir(), n++);
    struct chunker_opts o = {.size = size, .cache_path = path, .chunk_size = chunk, .fetchers = fetchers,
                             .direct_reads = direct, .fetch_timeout_ms = 10000};
    struct chunker *ch = NULL;
    return chunker_open(s, key, &o, &ch) == 0 ? ch : NULL;
}

static int check_read(struct chunker *ch, uint64_t off, uint64_t len, uint8_t *got, uint8_t *want)
{
    int err = chunker_read(ch, off, len, got);
    if (err)
        return err;
    store_sim_pattern(SEED, off, want, (size_t)len);
    return memcmp(got, want, (size_t)len) == 0 ? 0 : -1;
}

struct bg_read {
    struct chunker *ch;
    uint64_t off, len;
    int err;
};

static void *bg_reader(void *p)
{
    struct bg_read *a = p;
    uint8_t *got = malloc(a->len), *want = malloc(a->len);
    a->err = check_read(a->ch, a->off, a->len, got, want);
    free(got);
    free(want);
    return NULL;
}

/* Wait until the chunker has started n chunk fetches (a reader's job is on the fetch thread). */
static void wait_fetches(struct chunker *ch, uint64_t n)
{
    struct chunker_stats st;
    for (;;) {
        chunker_stats(ch, &st);
        if (st.fetches >= n)
            return;
        usleep(200);
    }
}

/* One fetch thread, busy streaming chunk 0: a cold read in chunk 2 is its own 4 KiB request, run
 * at once (not queued behind chunk 0), and starts no background fill of chunk 2.  Once the fetch
 * thread is free again, the next miss in chunk 2 starts the chunk's fill as before. */
TEST(chunker_busy_fetchers_give_the_reader_its_own_range)
{
    uint32_t chunk = 1 * MiB;
    uint64_t size = 4 * (uint64_t)chunk;
    /* 5 ms to first byte, 1 MiB at 10 MB/s: chunk 0's stream takes ~100 ms. */
    struct sim_opts so = {.size = size, .seed = SEED, .ttfb_us = 5000, .bytes_per_sec = 10000000,
                          .slice = 16 * KiB};
    struct store *s;
    CHECK_EQ(store_sim_open(&so, &s), 0);
    struct chunker *ch = open_chunker(s, "obj", chunk, size, 1, 0);
    CHECK(ch != NULL);

    struct bg_read a = {.ch = ch, .off = 0, .len = 4096};
    pthread_t t;
    pthread_create(&t, NULL, bg_reader, &a);
    wait_fetches(ch, 1);

    uint8_t got[8192], want[8192];
    CHECK_EQ(check_read(ch, 2 * (uint64_t)chunk + 300 * KiB + 5, 5000, got, want), 0);
    struct chunker_stats st;
    chunker_stats(ch, &st);
    CHECK_EQ(st.fetches, 1);       /* no fill of chunk 2 queued behind chunk 0 */
    CHECK_EQ(st.range_fetches, 1);
    CHECK_EQ(st.direct_reads, 1);
    struct sim_request rq[8];
    size_t n = store_sim_requests(s, rq, 8);
    CHECK(n >= 2);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= rq[i].off == 2 * (uint64_t)chunk + 300 * KiB && rq[i].len == 8192;
    CHECK(found); /* just the reader's two blocks */
    /* The reader did not wait for chunk 0's stream: it is still running. */
    struct cache *c = chunker_cache(ch);
    CHECK(!cache_readable(c, 0, chunk));
    pthread_join(t, NULL);
    CHECK_EQ(a.err, 0);

    /* Chunk 0's stream done and the fetch thread idle again: the next miss in chunk 2 fills it. */
    while (!cache_readable(c, 0, chunk))
        usleep(1000);
    usleep(20000); /* the thread frees its job slot just after the last fill */
    CHECK_EQ(check_read(ch, 2 * (uint64_t)chunk + 700 * KiB, 4096, got, want), 0);
    chunker_stats(ch, &st);
    CHECK_EQ(st.fetches, 2);
    CHECK_EQ(st.direct_reads, 1);
    chunker_close(ch);
    store_close(s);
}

/* Many cold reads while the only fetch thread streams a slow chunk: every one is a direct range
 * request, and none of them allocates (the slots' buffers are made at open). */
TEST(chunker_direct_reads_allocate_nothing)
{
    uint32_t chunk = 4 * MiB;
    uint64_t size = 64 * (uint64_t)MiB;
    /* 4 MiB at 8 MB/s: chunk 0's stream keeps the fetch thread busy for ~500 ms. */
    struct sim_opts so = {.size = size, .seed = SEED, .ttfb_us = 200, .bytes_per_sec = 8000000,
                          .slice = 16 * KiB};
    struct store *s;
    CHECK_EQ(store_sim_open(&so, &s), 0);
    struct chunker *ch = open_chunker(s, "obj", chunk, size, 1, 2);
    CHECK(ch != NULL);
    struct bg_read a = {.ch = ch, .off = 0, .len = 4096};
    pthread_t t;
    pthread_create(&t, NULL, bg_reader, &a);
    wait_fetches(ch, 1);
    /* The pool thread that runs chunk 0 has its staging (grown at a job's start, once per thread)
     * once the store has its request. */
    struct sim_request rq0[1];
    while (store_sim_requests(s, rq0, 1) == 0)
        usleep(200);

    uint8_t got[8192], want[8192];
    uint64_t before = snap_alloc_count();
    for (unsigned i = 0; i < 40; i++) {
        uint64_t k = 1 + i % 15, off = k * chunk + (uint64_t)(i * 97 % 1000) * 4096 + i;
        int err = chunker_read(ch, off, 6000, got);
        CHECK_EQ(err, 0);
        store_sim_pattern(SEED, off, want, 6000);
        CHECK_MEM(got, want, 6000);
    }
    CHECK_EQ(snap_alloc_count(), before);
    struct chunker_stats st;
    chunker_stats(ch, &st);
    CHECK_EQ(st.direct_reads, 40);
    CHECK_EQ(st.fetches, 1);
    pthread_join(t, NULL);
    CHECK_EQ(a.err, 0);
    chunker_close(ch);
    store_close(s);
}

/* A reader that gives up during its own range request gets its timeout; the blocks stay absent or
 * whole, and a later reader gets the right bytes. */
TEST(chunker_direct_read_reader_timeout)
{
    uint32_t chunk = 1 * MiB;
    uint64_t size = 4 * (uint64_t)chunk;
    struct sim_opts so = {.size = size, .seed = SEED, .ttfb_us = 60000, .bytes_per_sec = 10000000,
                          .slice = 4 * KiB};
    struct store *s;
    CHECK_EQ(store_sim_open(&so, &s), 0);
    struct chunker *ch = open_chunker(s, "obj", chunk, size, 1, 0);
    CHECK(ch != NULL);
    struct bg_read a = {.ch = ch, .off = 0, .len = 4096};
    pthread_t t;
    pthread_create(&t, NULL, bg_reader, &a);
    wait_fetches(ch, 1);
    uint8_t got[8192], want[8192];
    CHECK_ERR(chunker_read_ex(ch, 3 * (uint64_t)chunk, 8192, got, 10, NULL), SNAP_ETIMEOUT, "waited more than");
    struct chunker_stats st;
    chunker_stats(ch, &st);
    CHECK_EQ(st.direct_reads, 1);
    CHECK_EQ(st.fetch_errors, 0); /* the reader's own giving up is not a store failure */
    pthread_join(t, NULL);
    CHECK_EQ(a.err, 0);
    CHECK_EQ(check_read(ch, 3 * (uint64_t)chunk, 8192, got, want), 0);
    chunker_close(ch);
    store_close(s);
}

/* Fetched all-zero blocks become zero blocks (holes), data blocks present; the bytes read back
 * right either way, and a local write still wins over both. */
TEST(chunker_fetched_zero_blocks_become_holes)
{
    char path[600];
    snprintf(path, sizeof path, "%s/zeroobj", test_tmpdir());
    uint64_t size = 1 * MiB + 1000; /* a partial last block, all zeros */
    uint8_t *img = calloc(1, size);
    for (uint64_t b = 0; b < size / 4096; b++)
        if (b % 5 == 0 || b == 100)
            for (unsigned i = 0; i < 4096; i += 512)
                img[b * 4096 + i] = (uint8_t)(b % 250 + 1); /* data */
    img[101 * 4096 + 4095] = 9;                       /* data in the last byte only */
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, img, size), (ssize_t)size);
    close(fd);
    char url[600];
    snprintf(url, sizeof url, "file://%s", test_tmpdir());
    struct store *s;
    CHECK_EQ(store_open(url, NULL, &s), 0);
    struct chunker *ch = open_chunker(s, "zeroobj", 256 * KiB, size, 2, 0);
    CHECK(ch != NULL);
    uint8_t *got = malloc(size);
    CHECK_EQ(chunker_read(ch, 0, size, got), 0);
    CHECK_MEM(got, img, size);
    struct cache *c = chunker_cache(ch);
    for (uint64_t b = 0; b * 4096 < size; b++) {
        bool data = b < size / 4096 && (b % 5 == 0 || b == 100 || b == 101);
        CHECK_EQ(cache_state_at(c, b * 4096), data ? CACHE_PRESENT : CACHE_ZERO);
    }
    /* Block status sees runs: blocks 1-4 are one hole. */
    enum cache_state st;
    uint64_t len;
    CHECK_EQ(cache_extent(c, 4096, size, &st, &len), 0);
    CHECK_EQ(st, CACHE_ZERO);
    CHECK_EQ(len, 4 * 4096);
    /* A local write to a fetched hole is data again; a read from the cache returns it. */
    uint8_t blk[4096];
    memset(blk, 0xab, sizeof blk);
    CHECK_EQ(cache_write(c, 4096, 4096, blk), 0);
    CHECK_EQ(chunker_read(ch, 4096, 4096, got), 0);
    CHECK_MEM(got, blk, 4096);
    CHECK_EQ(cache_state_at(c, 4096), CACHE_DIRTY);
    free(got);
    free(img);
    chunker_close(ch);
    store_close(s);
}

/* ---- no staging over a streaming store: deliveries go straight into the cache ---- */

#define SOBJ 60000u /* one chunk, a partial last block */

/* A 206 for [0, SOBJ) announcing clen bytes and sending `sent` of the object's bytes. */
static char *stream_reply(const uint8_t *obj, size_t sent, size_t clen, size_t *len)
{
    char *r = malloc(256 + sent);
    int n = snprintf(r, 256, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-%zu/%u\r\n"
                     "Content-Length: %zu\r\n\r\n", clen - 1, SOBJ, clen);
    memcpy(r + n, obj, sent);
    *len = (size_t)n + sent;
    return r;
}

static struct chunker *open_http(uint16_t port, struct store **s)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)port);
    struct store_opts so = {.connect_timeout_ms = 500, .idle_timeout_ms = 500, .max_attempts = 1};
    if (store_open(url, &so, s))
        return NULL;
    return open_chunker(*s, "obj", 64 * KiB, SOBJ, 1, 0);
}

TEST(chunker_streams_into_the_cache_without_staging)
{
    uint8_t *obj = malloc(SOBJ), *got = malloc(SOBJ);
    store_sim_pattern(SEED, 0, obj, SOBJ);
    memset(obj + 3 * 4096, 0, 2 * 4096); /* blocks 3-4: zeros */
    memset(obj + 14 * 4096, 0, SOBJ - 14 * 4096); /* the partial last block: zeros */
    size_t l_ok, l_cut;
    char *ok = stream_reply(obj, SOBJ, SOBJ, &l_ok);
    char *cut = stream_reply(obj, 7 * 4096 + 100, SOBJ, &l_cut); /* announces all, sends 7 blocks + 100 */
    const struct tsrv_reply script[] = {{ok, l_ok, 0, 0, false}, {cut, l_cut, 0, 0, true}};
    struct tsrv *srv = tsrv_start("127.0.0.1", script, 2, false);
    CHECK(srv != NULL);

    struct store *s;
    struct chunker *ch = open_http(tsrv_port(srv), &s);
    CHECK(ch != NULL);
    CHECK_EQ(chunker_read(ch, 0, SOBJ, got), 0);
    CHECK_MEM(got, obj, SOBJ);
    struct cache *c = chunker_cache(ch);
    for (unsigned b = 0; b * 4096 < SOBJ; b++)
        CHECK_EQ(cache_state_at(c, b * 4096), b == 3 || b == 4 || b == 14 ? CACHE_ZERO : CACHE_PRESENT);
    chunker_close(ch);
    store_close(s);

    /* A body cut after 7 blocks and 100 bytes: blocks 0-6 are in, block 7 is not (its head
     * was carried, never filled), and the reader gets the error. */
    ch = open_http(tsrv_port(srv), &s);
    CHECK(ch != NULL);
    CHECK(chunker_read(ch, 0, SOBJ, got) != 0); /* the stream starts at 0, as the reply does */
    c = chunker_cache(ch);
    CHECK(cache_readable(c, 0, 7 * 4096));
    CHECK_EQ(cache_state_at(c, 7 * 4096), CACHE_ABSENT);
    CHECK_EQ(chunker_read(ch, 0, 7 * 4096, got), 0);
    CHECK_MEM(got, obj, 7 * 4096);
    chunker_close(ch);
    store_close(s);
    tsrv_stop(srv);
    free(ok);
    free(cut);
    free(obj);
    free(got);
}
