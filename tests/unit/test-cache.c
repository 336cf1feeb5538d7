/* Unit tests of lib/cache: states, queries, extents, zero blocks and holes, export, concurrency. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "cache/cache.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BS 4096u

static void cache_tmp(char *path, size_t n, const char *name)
{
    snprintf(path, n, "%s/%s", test_tmpdir(), name);
}

/* A block whose every byte says which block and which "version" wrote it. */
static void fill_block(uint8_t *p, size_t n, uint64_t block, unsigned version)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(block * 31 + version * 7 + i % 251 + 1) | 1;
}

TEST(cache_states_and_queries)
{
    char path[512];
    cache_tmp(path, sizeof path, "states.cache");
    uint64_t size = 100 * BS + 1000; /* last block partial */
    struct cache *c;
    CHECK_EQ(cache_open(path, size, 0, &c), 0);
    CHECK_EQ(cache_block_size(c), BS);
    CHECK_EQ(cache_size(c), size);
    CHECK(!cache_readable(c, 0, 1));
    CHECK(cache_readable(c, 5, 0));
    uint64_t at = 0;
    CHECK(cache_find_absent(c, 5000, 10, &at));
    CHECK_EQ(at, BS); /* block-aligned, below off */

    uint8_t *buf = malloc(8 * BS), *back = malloc(8 * BS);
    for (int i = 0; i < 3; i++)
        fill_block(buf + i * BS, BS, (uint64_t)i, 1);
    CHECK_EQ(cache_write(c, 0, 3 * BS, buf), 0);             /* blocks 0..2 dirty */
    memset(buf, 0, BS);
    CHECK_EQ(cache_write(c, 3 * BS, BS, buf), 0);            /* block 3: all zeros -> zero */
    for (int i = 0; i < 5; i++)
        fill_block(buf + i * BS, BS, (uint64_t)(2 + i), 9);
    uint64_t filled = 0;
    CHECK_EQ(cache_fill(c, 2 * BS, 5 * BS, buf, &filled), 0); /* only 4..6 were absent */
    CHECK_EQ(filled, 3 * BS);

    CHECK_EQ(cache_state_at(c, 0), CACHE_DIRTY);
    CHECK_EQ(cache_state_at(c, 2 * BS + 17), CACHE_DIRTY);
    CHECK_EQ(cache_state_at(c, 3 * BS), CACHE_ZERO);
    CHECK_EQ(cache_state_at(c, 4 * BS), CACHE_PRESENT);
    CHECK_EQ(cache_state_at(c, 6 * BS + BS - 1), CACHE_PRESENT);
    CHECK_EQ(cache_state_at(c, 7 * BS), CACHE_ABSENT);
    CHECK(cache_readable(c, 0, 7 * BS));
    CHECK(!cache_readable(c, 0, 7 * BS + 1));
    CHECK(cache_find_absent(c, 0, size, &at));
    CHECK_EQ(at, 7 * BS);

    /* The fill did not touch the dirty block 2 nor the zero block 3. */
    CHECK_EQ(cache_read(c, 0, 7 * BS, back), 0);
    fill_block(buf, BS, 2, 1);
    CHECK_MEM(back + 2 * BS, buf, BS);
    memset(buf, 0, BS);
    CHECK_MEM(back + 3 * BS, buf, BS);
    fill_block(buf, BS, 4, 9);
    CHECK_MEM(back + 4 * BS, buf, BS);
    /* Unaligned reads are fine; absent blocks are an error that names the offset. */
    CHECK_EQ(cache_read(c, 2 * BS + 5, 10, back), 0);
    fill_block(buf, BS, 2, 1);
    CHECK_MEM(back, buf + 5, 10);
    CHECK_ERR(cache_read(c, 6 * BS, BS + 1, back), SNAP_ENOTFOUND, "offset 28672");

    /* Evict: present blocks become absent; dirty and zero ones stay. */
    CHECK_EQ(cache_evict(c, 0, 7 * BS), 0);
    CHECK_EQ(cache_state_at(c, 4 * BS), CACHE_ABSENT);
    CHECK_EQ(cache_state_at(c, 2 * BS), CACHE_DIRTY);
    CHECK_EQ(cache_state_at(c, 3 * BS), CACHE_ZERO);

    /* The last, partial block: written and filled as [100*BS, size). */
    fill_block(buf, 1000, 100, 3);
    CHECK_EQ(cache_fill(c, 100 * BS, 1000, buf, &filled), 0);
    CHECK_EQ(filled, 1000);
    CHECK(cache_readable(c, size - 1, 1));
    CHECK_EQ(cache_read(c, 100 * BS, 1000, back), 0);
    CHECK_MEM(back, buf, 1000);
    CHECK_EQ(cache_flush(c), 0);
    free(buf);
    free(back);
    cache_close(c);
    unlink(path);
}

TEST(cache_alignment_rules)
{
    char path[512];
    cache_tmp(path, sizeof path, "align.cache");
    uint64_t size = 10 * BS + 512;
    struct cache *c;
    CHECK_ERR(cache_open(path, size, 3000, &c), SNAP_EUSAGE, "power of two");
    CHECK_ERR(cache_open(path, size, 256, &c), SNAP_EUSAGE, "power of two");
    CHECK_EQ(cache_open(path, size, BS, &c), 0);
    uint8_t buf[2 * BS];
    memset(buf, 0x5a, sizeof buf);
    CHECK_ERR(cache_write(c, 100, BS, buf), SNAP_ERANGE, "not aligned");
    CHECK_ERR(cache_write(c, 0, 100, buf), SNAP_ERANGE, "not aligned");
    CHECK_ERR(cache_zero(c, BS, BS + 1), SNAP_ERANGE, "not aligned");
    CHECK_ERR(cache_fill(c, 1, BS, buf, NULL), SNAP_ERANGE, "not aligned");
    CHECK_ERR(cache_write(c, 10 * BS, 2 * BS, buf), SNAP_ERANGE, "past the end");
    CHECK_ERR(cache_read(c, size - 1, 2, buf), SNAP_ERANGE, "past the end");
    CHECK_ERR(cache_read(c, UINT64_MAX, 2, buf), SNAP_ERANGE, "past the end");
    /* A partial range is fine when it ends at the size. */
    CHECK_EQ(cache_write(c, 10 * BS, 512, buf), 0);
    CHECK_EQ(cache_state_at(c, size - 1), CACHE_DIRTY);
    /* Zero-length calls are no-ops, even at the end. */
    CHECK_EQ(cache_write(c, size, 0, buf), 0);
    CHECK_EQ(cache_read(c, size, 0, buf), 0);
    CHECK(cache_readable(c, size, 0));
    enum cache_state st;
    uint64_t len;
    CHECK_EQ(cache_extent(c, size, 100, &st, &len), 0);
    CHECK_EQ(len, 0);
    cache_close(c);

    /* An empty cache is valid. */
    CHECK_EQ(cache_open(path, 0, BS, &c), 0);
    CHECK_EQ(cache_read(c, 0, 0, buf), 0);
    CHECK(cache_readable(c, 0, 0));
    CHECK_EQ(cache_flush(c), 0);
    cache_close(c);
    unlink(path);
}

struct want_extent {
    enum cache_state st;
    uint64_t off, len;
};

TEST(cache_extents_walk_runs)
{
    char path[512];
    cache_tmp(path, sizeof path, "extents.cache");
    uint64_t nblocks = 300, size = nblocks * BS - 100;
    struct cache *c;
    CHECK_EQ(cache_open(path, size, BS, &c), 0);
    uint8_t *buf = malloc(200 * BS);
    for (unsigned i = 0; i < 200; i++)
        fill_block(buf + (size_t)i * BS, BS, i, 2);
    CHECK_EQ(cache_write(c, 10 * BS, 2 * BS, buf), 0);          /* dirty 10..11 */
    CHECK_EQ(cache_zero(c, 12 * BS, 120 * BS), 0);               /* zero 12..131, spans words */
    CHECK_EQ(cache_fill(c, 0, 200 * BS, buf, NULL), 0);          /* present 0..9, 132..199 */
    CHECK_EQ(cache_write(c, 299 * BS, size - 299 * BS, buf), 0); /* dirty last partial block */
    static const struct want_extent want[] = {
        {CACHE_PRESENT, 0, 10 * BS},   {CACHE_DIRTY, 10 * BS, 2 * BS},
        {CACHE_ZERO, 12 * BS, 120 * BS}, {CACHE_PRESENT, 132 * BS, 68 * BS},
        {CACHE_ABSENT, 200 * BS, 99 * BS}, {CACHE_DIRTY, 299 * BS, BS - 100},
    };
    uint64_t off = 0;
    size_t i = 0;
    while (off < size) {
        enum cache_state st;
        uint64_t len;
        CHECK_EQ(cache_extent(c, off, UINT64_MAX, &st, &len), 0);
        CHECK(i < sizeof want / sizeof want[0]);
        CHECK_EQ(st, want[i].st);
        CHECK_EQ(off, want[i].off);
        CHECK_EQ(len, want[i].len);
        off += len;
        i++;
    }
    CHECK_EQ(i, sizeof want / sizeof want[0]);
    /* From inside a run, bounded by max. */
    enum cache_state st;
    uint64_t len;
    CHECK_EQ(cache_extent(c, 20 * BS + 7, 5 * BS, &st, &len), 0);
    CHECK_EQ(st, CACHE_ZERO);
    CHECK_EQ(len, 5 * BS);
    CHECK_EQ(cache_extent(c, 130 * BS + 7, 50 * BS, &st, &len), 0);
    CHECK_EQ(st, CACHE_ZERO);
    CHECK_EQ(len, 2 * BS - 7);
    free(buf);
    cache_close(c);
    unlink(path);
}

TEST(cache_zero_blocks_punch_holes)
{
    char path[512];
    cache_tmp(path, sizeof path, "holes.cache");
    uint64_t size = 256 * BS;
    struct cache *c;
    CHECK_EQ(cache_open(path, size, BS, &c), 0);
    uint8_t *buf = malloc(size), *back = malloc(size);
    for (unsigned i = 0; i < 256; i++)
        fill_block(buf + (size_t)i * BS, BS, i, 4);
    CHECK_EQ(cache_write(c, 0, size, buf), 0);
    CHECK_EQ(cache_flush(c), 0);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    blkcnt_t full = st.st_blocks;
    CHECK(full >= (blkcnt_t)(size / 512));

    /* An all-zero write in the middle of data: those blocks become zero blocks and holes. */
    memset(buf + 64 * BS, 0, 64 * BS);
    CHECK_EQ(cache_write(c, 0, 128 * BS, buf), 0);
    CHECK_EQ(cache_state_at(c, 63 * BS), CACHE_DIRTY);
    CHECK_EQ(cache_state_at(c, 64 * BS), CACHE_ZERO);
    CHECK_EQ(cache_state_at(c, 127 * BS), CACHE_ZERO);
    /* An explicit zero over the rest. */
    CHECK_EQ(cache_zero(c, 128 * BS, 128 * BS), 0);
    CHECK_EQ(cache_flush(c), 0);
    CHECK_EQ(stat(path, &st), 0);
    CHECK(st.st_blocks <= full - (blkcnt_t)(192 * BS / 512)); /* 192 blocks' worth released */
    CHECK_EQ(cache_read(c, 0, size, back), 0);
    CHECK_MEM(back, buf, 128 * BS);
    memset(buf, 0, size);
    CHECK_MEM(back + 128 * BS, buf, 128 * BS);

    /* Data written over a zero block makes it dirty again. */
    fill_block(buf, BS, 70, 5);
    CHECK_EQ(cache_write(c, 70 * BS, BS, buf), 0);
    CHECK_EQ(cache_state_at(c, 70 * BS), CACHE_DIRTY);
    CHECK_EQ(cache_read(c, 70 * BS, BS, back), 0);
    CHECK_MEM(back, buf, BS);
    free(buf);
    free(back);
    cache_close(c);
    unlink(path);
}

TEST(cache_export_packs_dirty_blocks)
{
    char path[512], diff[512];
    cache_tmp(path, sizeof path, "export.cache");
    cache_tmp(diff, sizeof diff, "export.diff");
    uint64_t size = 200 * BS + 300;
    struct cache *c;
    CHECK_EQ(cache_open(path, size, BS, &c), 0);
    uint8_t *buf = malloc(8 * BS), *back = malloc(8 * BS);
    static const uint64_t dirty_blocks[] = {1, 2, 5, 70, 200};
    for (size_t i = 0; i < 5; i++) {
        uint64_t b = dirty_blocks[i], n = b == 200 ? 300 : BS;
        fill_block(buf, (size_t)n, b, 6);
        CHECK_EQ(cache_write(c, b * BS, n, buf), 0);
    }
    CHECK_EQ(cache_zero(c, 3 * BS, BS), 0);
    CHECK_EQ(cache_zero(c, 100 * BS, 31 * BS), 0);
    fill_block(buf, BS, 9, 1);
    CHECK_EQ(cache_fill(c, 9 * BS, BS, buf, NULL), 0); /* present: not exported */

    int fd = open(diff, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "stale", 5), 5); /* the export truncates */
    struct cache_export ex;
    CHECK_EQ(cache_export(c, fd, &ex), 0);
    CHECK_EQ(ex.bytes, 4 * BS + 300);
    CHECK_EQ(ex.ndirty, 4);
    CHECK_EQ(ex.dirty[0].off, BS);
    CHECK_EQ(ex.dirty[0].len, 2 * BS);
    CHECK_EQ(ex.dirty[1].off, 5 * BS);
    CHECK_EQ(ex.dirty[2].off, 70 * BS);
    CHECK_EQ(ex.dirty[3].off, 200 * BS);
    CHECK_EQ(ex.dirty[3].len, 300);
    CHECK_EQ(ex.nzero, 2);
    CHECK_EQ(ex.zero[0].off, 3 * BS);
    CHECK_EQ(ex.zero[0].len, BS);
    CHECK_EQ(ex.zero[1].off, 100 * BS);
    CHECK_EQ(ex.zero[1].len, 31 * BS);
    struct stat st;
    CHECK_EQ(fstat(fd, &st), 0);
    CHECK_EQ(st.st_size, 4 * BS + 300);
    /* The packed bytes, in ascending block order. */
    CHECK_EQ(pread(fd, back, 4 * BS + 300, 0), 4 * BS + 300);
    for (size_t i = 0; i < 5; i++) {
        uint64_t b = dirty_blocks[i], n = b == 200 ? 300 : BS;
        fill_block(buf, (size_t)n, b, 6);
        CHECK_MEM(back + i * BS, buf, n);
    }
    cache_export_free(&ex);
    CHECK_EQ(ex.ndirty, 0);
    close(fd);

    /* Nothing dirty: an empty diff. */
    cache_close(c);
    CHECK_EQ(cache_open(path, size, BS, &c), 0);
    fd = open(diff, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK_EQ(cache_export(c, fd, &ex), 0);
    CHECK_EQ(ex.bytes, 0);
    CHECK_EQ(ex.ndirty + ex.nzero, 0);
    cache_export_free(&ex);
    close(fd);
    free(buf);
    free(back);
    cache_close(c);
    unlink(path);
    unlink(diff);
}

/* ---- concurrency: writers, fillers and readers on overlapping blocks ---- */

#define CC_BLOCKS 256u
#define CC_WRITERS 3
#define CC_READERS 3

struct cc {
    struct cache *c;
    atomic_int stop;
    atomic_int bad;
    unsigned last_version[CC_BLOCKS]; /* per block: highest version written (writers own blocks) */
};

struct cc_arg {
    struct cc *cc;
    unsigned id;
};

/* Every 8-byte word of a block carries (block, version): a torn read shows mixed versions. */
static void cc_block(uint8_t *p, uint64_t block, unsigned version)
{
    uint64_t v = block << 32 | version;
    for (size_t i = 0; i < BS; i += 8)
        memcpy(p + i, &v, 8);
}

static void *cc_writer(void *p)
{
    struct cc_arg *a = p;
    uint8_t buf[4 * BS];
    unsigned seed = a->id * 77 + 1;
    for (unsigned version = 1; version <= 400; version++) {
        /* Writer k owns blocks == k (mod CC_WRITERS), writes runs of up to 4 of them. */
        uint64_t b = (uint64_t)(rand_r(&seed) % (CC_BLOCKS / CC_WRITERS)) * CC_WRITERS + a->id;
        cc_block(buf, b, version);
        if (cache_write(a->cc->c, b * BS, BS, buf) != 0) {
            atomic_store(&a->cc->bad, 1);
            break;
        }
        a->cc->last_version[b] = version;
    }
    return NULL;
}

static void *cc_filler(void *p)
{
    struct cc_arg *a = p;
    uint8_t *buf = malloc(CC_BLOCKS * BS);
    for (uint64_t b = 0; b < CC_BLOCKS; b++)
        cc_block(buf + b * BS, b, 0);
    while (!atomic_load(&a->cc->stop)) {
        if (cache_fill(a->cc->c, 0, CC_BLOCKS * BS, buf, NULL) != 0 ||
            cache_evict(a->cc->c, 0, CC_BLOCKS * BS) != 0) {
            atomic_store(&a->cc->bad, 1);
            break;
        }
    }
    free(buf);
    return NULL;
}

static void *cc_reader(void *p)
{
    struct cc_arg *a = p;
    uint8_t buf[8 * BS];
    unsigned seed = a->id * 13 + 5;
    while (!atomic_load(&a->cc->stop)) {
        uint64_t b = (uint64_t)rand_r(&seed) % (CC_BLOCKS - 8), n = 1 + (uint64_t)rand_r(&seed) % 8;
        int err = cache_read(a->cc->c, b * BS, n * BS, buf);
        if (err == SNAP_ENOTFOUND)
            continue; /* an evicted block: fine */
        if (err) {
            atomic_store(&a->cc->bad, 1);
            break;
        }
        for (uint64_t i = 0; i < n; i++) {
            uint64_t first;
            memcpy(&first, buf + i * BS, 8);
            if (first >> 32 != b + i) {
                atomic_store(&a->cc->bad, 2);
                return NULL;
            }
            for (size_t j = 8; j < BS; j += 8)
                if (memcmp(buf + i * BS + j, &first, 8) != 0) {
                    atomic_store(&a->cc->bad, 3); /* torn block */
                    return NULL;
                }
        }
    }
    return NULL;
}

TEST(cache_concurrent_writers_fillers_readers)
{
    char path[512];
    cache_tmp(path, sizeof path, "concurrent.cache");
    static struct cc cc;
    memset(&cc, 0, sizeof cc);
    CHECK_EQ(cache_open(path, CC_BLOCKS * BS, BS, &cc.c), 0);
    pthread_t w[CC_WRITERS], r[CC_READERS], f;
    struct cc_arg wa[CC_WRITERS], ra[CC_READERS], fa = {&cc, 0};
    pthread_create(&f, NULL, cc_filler, &fa);
    for (unsigned i = 0; i < CC_READERS; i++) {
        ra[i] = (struct cc_arg){&cc, i};
        pthread_create(&r[i], NULL, cc_reader, &ra[i]);
    }
    for (unsigned i = 0; i < CC_WRITERS; i++) {
        wa[i] = (struct cc_arg){&cc, i};
        pthread_create(&w[i], NULL, cc_writer, &wa[i]);
    }
    for (unsigned i = 0; i < CC_WRITERS; i++)
        pthread_join(w[i], NULL);
    atomic_store(&cc.stop, 1);
    pthread_join(f, NULL);
    for (unsigned i = 0; i < CC_READERS; i++)
        pthread_join(r[i], NULL);
    CHECK_EQ(atomic_load(&cc.bad), 0);
    /* Every written block holds its last write: no fill ever clobbered it. */
    uint8_t got[BS], want[BS];
    for (uint64_t b = 0; b < CC_BLOCKS; b++) {
        if (!cc.last_version[b])
            continue;
        CHECK_EQ(cache_state_at(cc.c, b * BS), CACHE_DIRTY);
        CHECK_EQ(cache_read(cc.c, b * BS, BS, got), 0);
        cc_block(want, b, cc.last_version[b]);
        CHECK_MEM(got, want, BS);
    }
    cache_close(cc.c);
    unlink(path);
}

/* Caches in regions of one shared file: separate states and bytes, offsets into the file for
 * zero-copy, and a closed region's disk given back while the others keep theirs. */
TEST(cache_regions_of_one_file)
{
    char path[512];
    cache_tmp(path, sizeof path, "regions");
    struct cache_file *f;
    CHECK_EQ(cache_file_open(path, &f), 0);
    unlink(path);
    struct cache *a, *b;
    CHECK_EQ(cache_open_in(f, 3 << 20, 4096, &a), 0);    /* 3 MiB: b starts at 4 MiB */
    CHECK_EQ(cache_open_in(f, 1 << 20, 4096, &b), 0);
    CHECK_EQ(cache_fd(a), cache_fd(b));
    CHECK_EQ(cache_fd_offset(a, 8192), 8192);
    CHECK_EQ(cache_fd_offset(b, 8192), (4u << 20) + 8192);
    uint8_t wa[65536], wb[65536], got[65536];
    memset(wa, 0xa1, sizeof wa);
    memset(wb, 0xb2, sizeof wb);
    CHECK_EQ(cache_fill(a, 0, sizeof wa, wa, NULL), 0);     /* 64 KiB: by pwrite */
    CHECK_EQ(cache_fill(b, 0, 4096, wb, NULL), 0);          /* 4 KiB: into the mapping */
    CHECK_EQ(cache_fill(b, 65536, sizeof wb, wb, NULL), 0);
    CHECK(!cache_readable(b, 4096, 4096));                  /* states are per cache */
    CHECK_EQ(cache_read(a, 0, sizeof got, got), 0);
    CHECK_MEM(got, wa, sizeof got);
    CHECK_EQ(cache_read(b, 65536, sizeof got, got), 0);
    CHECK_MEM(got, wb, sizeof got);
    CHECK_EQ(pread(cache_fd(b), got, 4096, (off_t)cache_fd_offset(b, 65536)), 4096); /* the file agrees */
    CHECK_MEM(got, wb, 4096);
    struct stat st;
    CHECK_EQ(fstat(cache_fd(a), &st), 0);
    CHECK(st.st_blocks * 512 >= 2 * 65536);  /* 64 KiB of a, 68 KiB of b */
    cache_close(a);                                          /* its region is punched */
    CHECK_EQ(fstat(cache_fd(b), &st), 0);
    CHECK(st.st_blocks * 512 < 2 * 65536);   /* b alone */
    CHECK_EQ(cache_read(b, 0, 4096, got), 0);
    CHECK_MEM(got, wb, 4096);
    cache_file_put(f);                                       /* b keeps the file open */
    CHECK_EQ(cache_read(b, 65536, 4096, got), 0);
    CHECK_MEM(got, wb, 4096);
    cache_close(b);
}
