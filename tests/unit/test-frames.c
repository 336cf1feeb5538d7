/* Unit tests of lib/chunker/frames.c: the chunker's promises, per frame. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "chunker/chunker.h"
#include "chunker/chunker-int.h"
#include "chunker/frames.h"
#include "header/internal.h"
#include "bench/simstore.h"
#include "store/chunkcache.h"
#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#define FR (2u << 20)
#define NFR 3u
#define READERS 8

struct ffx {
    struct chunker_pool *pool; /* NULL: the process-wide one */
    struct store *file, *sim;
    struct chunker_frames *c;
    struct hdr h;
    struct hdr_build b;
    struct hdr_frame f[NFR];
    uint8_t *data;     /* the uncompressed bytes */
    uint8_t *obj;      /* the compressed object */
    size_t objlen;
    char dir[512];
};

/* Rootfs-like bytes: text with some noise, so frames compress but not to nothing. */
static void fill(uint8_t *p, size_t n)
{
    static const char words[] = "inode extent journal superblock bitmap directory ";
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (x >> 24) % 7 == 0 ? (uint8_t)(x >> 16) : (uint8_t)words[i % (sizeof words - 1)];
    }
}

/* Write the object (frames as given) into a file store, behind a sim store with a slow first
 * byte so concurrent readers overlap one fetch. */
static int ffx_store(struct ffx *x, const char *name, unsigned ttfb_ms)
{
    snprintf(x->dir, sizeof x->dir, "%s/frames-%s", test_tmpdir(), name);
    char path[700], url[600];
    mkdir(x->dir, 0755);
    snprintf(path, sizeof path, "%s/b", x->dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/b/rootfs.ext4.lz4", x->dir);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(x->obj, 1, x->objlen, fp) != x->objlen || fclose(fp) != 0)
        return SNAP_EIO;
    snprintf(url, sizeof url, "file://%s", x->dir);
    int err = store_open(url, NULL, &x->file);
    struct sim_opts so = {.size = x->objlen, .inner = x->file, .ttfb_us = ttfb_ms * 1000u};
    return err ? err : store_sim_open(&so, &x->sim);
}

static int ffx_open(struct ffx *x, const char *name, unsigned ttfb_ms, uint32_t nframes, const uint32_t *which,
                    unsigned fetchers)
{
    memset(x, 0, sizeof *x);
    x->data = snap_malloc((size_t)FR * NFR);
    size_t cap = hdr_lz4_bound(FR) * NFR;
    x->obj = snap_malloc(cap);
    if (!x->data || !x->obj)
        return SNAP_ENOMEM;
    fill(x->data, (size_t)FR * NFR);
    struct hdr_frame all[NFR];
    for (uint32_t k = 0; k < NFR; k++) {
        size_t n;
        int err = hdr_lz4_compress(x->data + (size_t)k * FR, FR, x->obj + x->objlen, cap - x->objlen, &n);
        if (err)
            return err;
        all[k] = (struct hdr_frame){.start_u = (int64_t)k * FR, .start_c = (int64_t)x->objlen, .size_u = (int32_t)FR,
                                    .size_c = (int32_t)n};
        x->objlen += n;
    }
    for (uint32_t k = 0; k < nframes; k++)
        x->f[k] = all[which ? which[k] : k];
    x->b = (struct hdr_build){.comp = HDR_COMP_LZ4, .nframes = nframes, .file_size = (int64_t)FR * NFR};
    x->h.frames = x->f;
    x->h.nframes = nframes;
    int err = ffx_store(x, name, ttfb_ms);
    if (err)
        return err;
    char cache[700];
    snprintf(cache, sizeof cache, "%s/cache", x->dir);
    /* One fetcher: a pool of one thread of its own, so every fetch runs on the same thread. */
    if (fetchers == 1 && (err = chunker_pool_new(1, 0, &x->pool)) != 0)
        return err;
    struct chunker_frames_opts o = {.h = &x->h, .build = &x->b, .size = (uint64_t)FR * NFR, .cache_path = cache,
                                    .read_timeout_ms = 20000, .fetchers = fetchers, .pool = x->pool};
    return chunker_frames_open(x->sim, "b/rootfs.ext4.lz4", &o, &x->c);
}

static void ffx_close(struct ffx *x)
{
    chunker_frames_close(x->c);
    chunker_pool_free(x->pool);
    store_close(x->sim);
    store_close(x->file);
    snap_free(x->data);
    snap_free(x->obj);
}

static uint64_t sim_reads(struct ffx *x)
{
    struct sim_stats st;
    store_sim_stats(x->sim, &st);
    return st.reads;
}

struct reader {
    struct ffx *x;
    uint64_t off;
    int err;
    bool same;
    pthread_barrier_t *bar;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    uint8_t buf[4096];
    pthread_barrier_wait(r->bar);
    r->err = chunker_frames_read(r->x->c, r->off, sizeof buf, buf);
    r->same = !r->err && memcmp(buf, r->x->data + r->off, sizeof buf) == 0;
    return NULL;
}

/* READERS threads read frame k at once; returns how many failed with `code`. */
static int read_together(struct ffx *x, uint32_t k, int code, unsigned *ok)
{
    pthread_t t[READERS];
    struct reader r[READERS];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, READERS);
    for (int i = 0; i < READERS; i++) {
        r[i] = (struct reader){.x = x, .off = (uint64_t)k * FR + (uint64_t)i * 200 * 1024, .bar = &bar};
        pthread_create(&t[i], NULL, reader_main, &r[i]);
    }
    int failed = 0;
    *ok = 0;
    for (int i = 0; i < READERS; i++) {
        pthread_join(t[i], NULL);
        failed += r[i].err == code;
        *ok += r[i].same;
    }
    pthread_barrier_destroy(&bar);
    return failed;
}

TEST(frames_one_fetch_per_frame_for_concurrent_readers)
{
    struct ffx x;
    CHECK_EQ(ffx_open(&x, "one", 300, NFR, NULL, 0), 0);
    unsigned ok;
    CHECK_EQ(read_together(&x, 1, 0, &ok), READERS);
    CHECK_EQ(ok, READERS);
    CHECK_EQ(sim_reads(&x), 1);      /* one range request for eight readers */
    struct sim_request rq;
    CHECK_EQ(store_sim_requests(x.sim, &rq, 1), 1);
    CHECK_EQ(rq.off, (uint64_t)x.f[1].start_c); /* exactly the frame's compressed bytes */
    CHECK_EQ(rq.len, (uint64_t)x.f[1].size_c);
    uint8_t b[100];
    CHECK_EQ(chunker_frames_read(x.c, FR + 5, sizeof b, b), 0); /* a hit: no new request */
    CHECK_EQ(sim_reads(&x), 1);
    CHECK_MEM(b, x.data + FR + 5, sizeof b);
    /* A read spanning frames 0 and 1 fetches only frame 0. */
    uint8_t *big = snap_malloc(FR);
    CHECK(big);
    CHECK_EQ(chunker_frames_read(x.c, FR / 2, FR, big), 0);
    CHECK(memcmp(big, x.data + FR / 2, FR) == 0);
    snap_free(big);
    CHECK_EQ(sim_reads(&x), 2);
    CHECK_EQ(chunker_frames_read(x.c, 0, 0, b), 0);
    ffx_close(&x);
}

TEST(frames_bad_checksum_reaches_every_waiter_and_is_refetched)
{
    struct ffx x;
    CHECK_EQ(ffx_open(&x, "bad", 300, NFR, NULL, 0), 0);
    /* Flip a byte inside frame 2's first block and rewrite the object. */
    x.obj[x.f[2].start_c + x.f[2].size_c / 2] ^= 0x40;
    chunker_frames_close(x.c);
    store_close(x.sim);
    store_close(x.file);
    CHECK_EQ(ffx_store(&x, "bad", 300), 0);
    char cache[700];
    snprintf(cache, sizeof cache, "%s/cache", x.dir);
    struct chunker_frames_opts o = {.h = &x.h, .build = &x.b, .size = (uint64_t)FR * NFR, .cache_path = cache};
    CHECK_EQ(chunker_frames_open(x.sim, "b/rootfs.ext4.lz4", &o, &x.c), 0);

    unsigned ok;
    CHECK_EQ(read_together(&x, 2, SNAP_EHASH, &ok), READERS); /* every waiter gets the error */
    CHECK_EQ(sim_reads(&x), 1);
    uint8_t b[4096];
    CHECK_ERR(chunker_frames_read(x.c, 2 * (uint64_t)FR, sizeof b, b), SNAP_EHASH, "frame 2 (uncompressed [4194304");
    CHECK_EQ(sim_reads(&x), 2);      /* not cached: fetched again */
    CHECK_EQ(chunker_frames_read(x.c, 0, sizeof b, b), 0);
    CHECK_MEM(b, x.data, sizeof b);
    struct chunker_frames_stats st;
    chunker_frames_stats(x.c, &st);
    CHECK_EQ(st.fetch_errors, 2);
    ffx_close(&x);
}

TEST(frames_missing_from_a_trimmed_table_fail_without_io)
{
    static const uint32_t which[] = {0, 2};
    struct ffx x;
    CHECK_EQ(ffx_open(&x, "trim", 0, 2, which, 0), 0);
    uint8_t b[4096];
    CHECK_ERR(chunker_frames_read(x.c, FR + 4096, sizeof b, b), SNAP_ENOTFOUND, "no frame holds uncompressed offset 2101248");
    CHECK_EQ(sim_reads(&x), 0);
    CHECK_EQ(chunker_frames_read(x.c, 2 * (uint64_t)FR + 8192, sizeof b, b), 0);
    CHECK_MEM(b, x.data + 2 * FR + 8192, sizeof b);
    CHECK_ERR(chunker_frames_read(x.c, 3 * (uint64_t)FR, 1, b), SNAP_ERANGE, "past the uncompressed size");
    ffx_close(&x);
}

TEST(frames_fetch_and_hit_allocate_nothing)
{
    struct ffx x;
    CHECK_EQ(ffx_open(&x, "alloc", 0, NFR, NULL, 1), 0);
    uint8_t b[4096];
    /* One fetch thread: its decoder's work area is allocated by the first frame, once. */
    CHECK_EQ(chunker_frames_read(x.c, 0, sizeof b, b), 0);
    uint64_t before = snap_alloc_count();
    CHECK_EQ(chunker_frames_read(x.c, FR, sizeof b, b), 0);     /* a cold frame */
    CHECK_EQ(chunker_frames_read(x.c, 2 * FR, sizeof b, b), 0);
    for (unsigned i = 0; i < 1000; i++)                          /* hits */
        CHECK_EQ(chunker_frames_read(x.c, (uint64_t)(i * 7919u % 1500) * 4096, sizeof b, b), 0);
    CHECK_EQ(snap_alloc_count(), before);
    ffx_close(&x);
}

/* A decoded frame is staged in one of the pool's scratch buffers while it is written to the cache;
 * with every buffer taken the fetch decodes straight into the cache mapping.  Both give the
 * frame's bytes, to the waiting readers and to later hits. */
TEST(frames_staged_and_unstaged_decodes_give_the_same_bytes)
{
    struct ffx x;
    CHECK_EQ(ffx_open(&x, "staged", 50, NFR, NULL, 1), 0);
    struct pool_client taker = {.pool = x.pool};
    uint8_t *held[CHUNKER_POOL_SCRATCH];
    for (unsigned i = 0; i < CHUNKER_POOL_SCRATCH; i++)
        CHECK((held[i] = pool_take_scratch(&taker, FR)) != NULL);
    CHECK(pool_take_scratch(&taker, FR) == NULL);  /* all taken */
    unsigned ok;
    CHECK_EQ(read_together(&x, 0, 0, &ok), READERS); /* decoded into the mapping */
    CHECK_EQ(ok, READERS);
    pool_give_scratch(&taker, held[0]);
    CHECK_EQ(read_together(&x, 1, 0, &ok), READERS); /* staged: readers copy from the buffer */
    CHECK_EQ(ok, READERS);
    for (unsigned i = 1; i < CHUNKER_POOL_SCRATCH; i++)
        pool_give_scratch(&taker, held[i]);
    uint8_t *all = snap_malloc((size_t)FR * NFR);
    CHECK(all);
    CHECK_EQ(chunker_frames_read(x.c, 0, (uint64_t)FR * 2, all), 0); /* hits, from the cache file */
    CHECK(memcmp(all, x.data, (size_t)FR * 2) == 0);
    CHECK_EQ(sim_reads(&x), 2);
    snap_free(all);
    ffx_close(&x);
}

/* The path of the one file under dir whose name ends with suffix (recursive), or "" . */
static void find_suffix(const char *dir, const char *suffix, char *out, size_t n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char p[1024];
        size_t l = strlen(e->d_name), sl = strlen(suffix);
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
            find_suffix(p, suffix, out, n);
        else if (l > sl && !strcmp(e->d_name + l - sl, suffix))
            snprintf(out, n, "%s", p);
    }
    if (d)
        closedir(d);
}

/* Through a chunk cache a frame is kept as its own .frm file, named by its compressed range:
 * another chunker then reads it without the store; a file that does not decode is removed and
 * the frame fetched again. */
TEST(frames_through_a_chunk_cache_keep_frm_files)
{
    struct ffx x;
    CHECK_EQ(ffx_open(&x, "frm", 0, NFR, NULL, 0), 0);
    char root[700], path[1024] = "", want_name[64];
    snprintf(root, sizeof root, "%s/cc", x.dir);
    struct store *cc;
    CHECK_EQ(store_chunkcache_open(x.sim, root, &(struct chunkcache_opts){0}, &cc), 0);
    uint8_t b[4096];
    for (int round = 0; round < 3; round++) {
        char cache[800];
        snprintf(cache, sizeof cache, "%s/cache%d", x.dir, round);
        struct chunker_frames *c;
        struct chunker_frames_opts o = {.h = &x.h, .build = &x.b, .size = (uint64_t)FR * NFR, .cache_path = cache};
        CHECK_EQ(chunker_frames_open(cc, "b/rootfs.ext4.lz4", &o, &c), 0);
        uint64_t before = sim_reads(&x);
        CHECK_EQ(chunker_frames_read(c, FR + 8192, sizeof b, b), 0);
        CHECK_MEM(b, x.data + FR + 8192, sizeof b);
        CHECK_EQ(sim_reads(&x) - before, round == 1 ? 0u : 1u); /* 0: cold; 1: a hit; 2: after damage */
        chunker_frames_close(c);
        if (round == 0) {
            find_suffix(root, ".frm", path, sizeof path);
            snprintf(want_name, sizeof want_name, "/%016llx-%llx.frm", (unsigned long long)x.f[1].start_c,
                     (unsigned long long)x.f[1].size_c);
            CHECK(strstr(path, "/b/rootfs.ext4/") != NULL);          /* the plain name's directory */
            CHECK(strlen(path) > strlen(want_name) && !strcmp(path + strlen(path) - strlen(want_name), want_name));
        } else if (round == 1) { /* damage the file: it must not be served */
            int fd = open(path, O_RDWR);
            uint8_t v;
            CHECK(fd >= 0 && pread(fd, &v, 1, x.f[1].size_c / 2) == 1);
            v ^= 0x40;
            CHECK(pwrite(fd, &v, 1, x.f[1].size_c / 2) == 1);
            close(fd);
        }
    }
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);                               /* fetched again and kept, whole */
    CHECK_EQ((uint64_t)st.st_size, (uint64_t)x.f[1].size_c);
    store_close(cc);                                            /* not its inner store: ffx_close's */
    /* The directory's byte limit counts and evicts .frm files as it does chunks. */
    CHECK_EQ(store_chunkcache_open(x.sim, root, &(struct chunkcache_opts){.limit = 4096}, &cc), 0);
    CHECK(stat(path, &st) != 0);
    store_close(cc);
    ffx_close(&x);
}
