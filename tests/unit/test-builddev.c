/* Unit tests of lib/device/builddev: reads split across header entries and builds, zero builds
 * without store I/O, the copy-on-write overlay, block status, export (header merged, data
 * packed, generation + 1), export while writers run, and no allocation on warm reads.  The
 * builds' data comes from the simulated store (lib/store/sim): every object holds the pattern of
 * SEED, so the bytes at storage offset S are store_sim_pattern(SEED, S). */
#include "test.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "device/builddev.h"
#include "header/header.h"
#include "bench/simstore.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define KiB 1024u
#define SEED 7u

static const snap_uuid BA = {{0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}};
static const snap_uuid BB = {{0xbb, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}};

/* 1 MiB device: [0,64K) A@128K, [64K,128K) zeros, [128K,256K) B@0, [256K,1M) A@192K. */
static struct hdr *test_header(void)
{
    struct hdr_meta m = {.version = 4, .block_size = 4096, .size = 1024 * KiB, .generation = 3,
                         .build_id = BA, .base_build_id = BB};
    struct hdr *h;
    if (hdr_new(&m, &h))
        return NULL;
    if (hdr_append(h, 0, 64 * KiB, &BA, 128 * KiB) || hdr_append(h, 64 * KiB, 64 * KiB, NULL, 0) ||
        hdr_append(h, 128 * KiB, 128 * KiB, &BB, 0) || hdr_append(h, 256 * KiB, 768 * KiB, &BA, 192 * KiB)) {
        hdr_free(h);
        return NULL;
    }
    return h;
}

/* The device's expected bytes before any write. */
static void expected(uint8_t *dst)
{
    store_sim_pattern(SEED, 128 * KiB, dst, 64 * KiB);
    memset(dst + 64 * KiB, 0, 64 * KiB);
    store_sim_pattern(SEED, 0, dst + 128 * KiB, 128 * KiB);
    store_sim_pattern(SEED, 192 * KiB, dst + 256 * KiB, 768 * KiB);
}

static int open_dev(struct builddev **d, struct store **sim)
{
    struct sim_opts so = {.size = 4096 * KiB, .seed = SEED};
    int err = store_sim_open(&so, sim);
    if (err)
        return err;
    struct builddev_opts o = {.file = "rootfs.ext4", .cache_dir = test_tmpdir()};
    return builddev_open(test_header(), *sim, &o, d);
}

static uint64_t sim_reads(struct store *s)
{
    struct sim_stats st;
    store_sim_stats(s, &st);
    return st.reads;
}

TEST(builddev_split_read_across_entries_and_builds)
{
    struct builddev *d;
    struct store *sim;
    CHECK_EQ(open_dev(&d, &sim), 0);
    CHECK_EQ(builddev_size(d), 1024 * KiB);
    uint8_t *got = malloc(1024 * KiB), *want = malloc(1024 * KiB);
    expected(want);
    CHECK_EQ(builddev_ops.pread(d, got, 1024 * KiB, 0), 0); /* one read over all four entries */
    CHECK(memcmp(got, want, 1024 * KiB) == 0);
    /* A read straddling the zero entry and build B. */
    CHECK_EQ(builddev_ops.pread(d, got, 128 * KiB, 60 * KiB), 0);
    CHECK(memcmp(got, want + 60 * KiB, 128 * KiB) == 0);
    struct builddev_stats st;
    builddev_stats(d, &st);
    CHECK_EQ(st.chunkers, 2);
    CHECK(st.zero_bytes >= 64 * KiB);
    CHECK(sim_reads(sim) > 0);
    CHECK_EQ(builddev_ops.pread(d, got, 1, 1024 * KiB), SNAP_ERANGE);
    free(got);
    free(want);
    builddev_close(d);
}

TEST(builddev_zero_build_reads_without_store_io)
{
    struct builddev *d;
    struct store *sim;
    CHECK_EQ(open_dev(&d, &sim), 0);
    uint8_t buf[64 * KiB];
    memset(buf, 0xee, sizeof buf);
    CHECK_EQ(builddev_ops.pread(d, buf, sizeof buf, 64 * KiB), 0);
    for (size_t i = 0; i < sizeof buf; i++)
        CHECK_EQ(buf[i], 0);
    CHECK_EQ(sim_reads(sim), 0);
    struct builddev_stats st;
    builddev_stats(d, &st);
    CHECK_EQ(st.chunkers, 0); /* no build was even opened */
    CHECK_EQ(st.zero_bytes, 64 * KiB);
    builddev_close(d);

    /* An empty device: all zeros, no store at all. */
    struct builddev_opts o = {.file = "memfile", .cache_dir = test_tmpdir()};
    CHECK_EQ(builddev_open_empty(1000 * KiB + 512, &o, &d), 0);
    CHECK_EQ(builddev_ops.pread(d, buf, 512, 1000 * KiB), 0);
    CHECK_EQ(buf[0], 0);
    builddev_close(d);
}

TEST(builddev_overlay_writes_zeroes_and_block_status)
{
    struct builddev *d;
    struct store *sim;
    CHECK_EQ(open_dev(&d, &sim), 0);
    uint8_t *want = malloc(1024 * KiB), *got = malloc(1024 * KiB);
    expected(want);
    uint8_t w[8 * KiB];
    memset(w, 0x5a, sizeof w);
    CHECK_EQ(builddev_ops.pwrite(d, w, sizeof w, 68 * KiB, false), 0);    /* into the zero entry */
    memcpy(want + 68 * KiB, w, sizeof w);
    CHECK_EQ(builddev_ops.trim(d, 32 * KiB, 512 * KiB, false), 0);         /* zero part of A */
    memset(want + 512 * KiB, 0, 32 * KiB);
    uint64_t reads = sim_reads(sim);
    CHECK_EQ(reads, 0); /* neither the write nor the zeroing fetched anything */
    CHECK_EQ(builddev_ops.pread(d, got, 1024 * KiB, 0), 0);
    CHECK(memcmp(got, want, 1024 * KiB) == 0);

    struct dev_extent e[16];
    struct dev_extents x = {e, 0, 16, 0};
    CHECK_EQ(builddev_ops.extents(d, 1024 * KiB, 0, &x), 0);
    /* data [0,64K) | hole [64K,68K) | data [68K,76K) | hole [76K,128K) | data [128K,512K) |
     * hole [512K,544K) | data [544K,1M) */
    CHECK_EQ(x.n, 7);
    uint64_t offs[] = {0, 64 * KiB, 68 * KiB, 76 * KiB, 128 * KiB, 512 * KiB, 544 * KiB, 1024 * KiB};
    for (uint32_t i = 0, off = 0; i < 7; off += e[i++].length) {
        CHECK_EQ(off, offs[i]);
        CHECK_EQ(e[i].length, offs[i + 1] - offs[i]);
        CHECK_EQ(e[i].flags, i % 2 == 1 ? DEV_STATE_HOLE | DEV_STATE_ZERO : 0);
    }
    free(want);
    free(got);
    builddev_close(d);
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    return snap_read_file(path, 64u << 20, out, len);
}

TEST(builddev_export_merges_packs_and_increments_generation)
{
    struct builddev *d;
    struct store *sim;
    CHECK_EQ(open_dev(&d, &sim), 0);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/export-1", test_tmpdir());
    struct builddev_export r;
    CHECK_EQ(builddev_export(d, dir, &r), 0);
    CHECK(!r.changed); /* nothing written yet: nothing exported */

    uint8_t a[4 * KiB], b[8 * KiB];
    memset(a, 0x11, sizeof a);
    memset(b, 0x22, sizeof b);
    CHECK_EQ(builddev_ops.pwrite(d, b, sizeof b, 900 * KiB, false), 0);
    CHECK_EQ(builddev_ops.pwrite(d, a, sizeof a, 4 * KiB, false), 0);
    CHECK_EQ(builddev_ops.trim(d, 64 * KiB, 128 * KiB, false), 0);
    CHECK_EQ(builddev_export(d, dir, &r), 0);
    CHECK(r.changed);
    CHECK_EQ(r.generation, 4);
    CHECK_EQ(r.diff_bytes, 12 * KiB);
    CHECK_EQ(r.dirty_runs, 2);
    CHECK_EQ(r.zero_runs, 1);
    CHECK(memcmp(&r.parent_id, &BA, sizeof BA) == 0);

    /* The diff object: the dirty blocks packed in device order. */
    uint8_t *data, *hb;
    size_t dlen, hlen;
    CHECK_EQ(read_file(r.data_path, &data, &dlen), 0);
    CHECK_EQ(dlen, 12 * KiB);
    CHECK(memcmp(data, a, sizeof a) == 0 && memcmp(data + 4 * KiB, b, sizeof b) == 0);
    snap_free(data);

    /* The header: merged with the parent, covering the size, Generation + 1. */
    CHECK_EQ(read_file(r.header_path, &hb, &hlen), 0);
    struct hdr *h;
    CHECK_EQ(hdr_parse(hb, hlen, &h), 0);
    snap_free(hb);
    CHECK_EQ(hdr_check(h), 0);
    CHECK_EQ(h->format, 4);
    CHECK_EQ(h->meta.generation, 4);
    CHECK(memcmp(&h->meta.build_id, &r.build_id, sizeof r.build_id) == 0);
    CHECK(memcmp(&h->meta.base_build_id, &BB, sizeof BB) == 0);
    struct hdr_loc loc;
    CHECK_EQ(hdr_lookup(h, 4 * KiB, &loc), 0);
    CHECK(memcmp(loc.build, &r.build_id, sizeof r.build_id) == 0);
    CHECK_EQ(loc.storage, 0);
    CHECK_EQ(hdr_lookup(h, 904 * KiB, &loc), 0);
    CHECK_EQ(loc.storage, 8 * KiB);
    CHECK_EQ(hdr_lookup(h, 130 * KiB, &loc), 0);
    CHECK(loc.zero);
    CHECK_EQ(hdr_lookup(h, 8 * KiB, &loc), 0); /* the parent's A entry, trimmed: BSO + shift */
    CHECK(memcmp(loc.build, &BA, sizeof BA) == 0);
    CHECK_EQ(loc.storage, 136 * KiB);
    CHECK_EQ(hdr_lookup(h, 200 * KiB, &loc), 0); /* B, after the zeroed 64 KiB */
    CHECK(memcmp(loc.build, &BB, sizeof BB) == 0);
    CHECK_EQ(loc.storage, 72 * KiB);
    hdr_free(h);
    builddev_close(d);
}

TEST(builddev_export_base_build_from_empty_device)
{
    struct builddev_opts o = {.file = "memfile", .cache_dir = test_tmpdir()};
    struct builddev *d;
    /* A size that is not a multiple of the page: the last partial page is padded in the diff. */
    CHECK_EQ(builddev_open_empty(256 * KiB + 100, &o, &d), 0);
    uint8_t w[100];
    memset(w, 0x42, sizeof w);
    CHECK_EQ(builddev_ops.pwrite(d, w, sizeof w, 256 * KiB, false), 0);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/export-base", test_tmpdir());
    struct builddev_export r;
    CHECK_EQ(builddev_export(d, dir, &r), 0);
    CHECK(r.changed);
    CHECK_EQ(r.generation, 0);
    CHECK_EQ(r.diff_bytes, 4096);
    struct stat sb;
    CHECK_EQ(stat(r.data_path, &sb), 0);
    CHECK_EQ(sb.st_size, 4096);
    uint8_t *hb;
    size_t hlen;
    CHECK_EQ(read_file(r.header_path, &hb, &hlen), 0);
    struct hdr *h;
    CHECK_EQ(hdr_parse(hb, hlen, &h), 0);
    snap_free(hb);
    CHECK_EQ(hdr_check(h), 0);
    CHECK_EQ(h->meta.generation, 0);
    CHECK(memcmp(&h->meta.base_build_id, &r.build_id, sizeof r.build_id) == 0);
    CHECK_EQ(h->meta.size, 256 * KiB + 100);
    struct hdr_loc loc;
    CHECK_EQ(hdr_lookup(h, 0, &loc), 0);
    CHECK(loc.zero);
    CHECK_EQ(hdr_lookup(h, 256 * KiB, &loc), 0);
    CHECK(!loc.zero);
    hdr_free(h);
    builddev_close(d);
}

/* Writers run while exports happen: every export must see whole writes only (each write fills
 * a block with one byte value; the export's packed data never has a torn block). */
struct writer {
    struct builddev *d;
    atomic_bool stop;
    atomic_uint writes;
};
static void *writer_main(void *arg)
{
    struct writer *w = arg;
    uint8_t buf[16 * KiB];
    for (unsigned i = 0; !atomic_load(&w->stop); i++) {
        memset(buf, (int)(i % 250) + 1, sizeof buf);
        if (builddev_ops.pwrite(w->d, buf, sizeof buf, (uint64_t)(i % 8) * 16 * KiB, false))
            break;
        w->writes++;
    }
    return NULL;
}

TEST(builddev_export_quiesces_writers)
{
    struct builddev *d;
    struct store *sim;
    CHECK_EQ(open_dev(&d, &sim), 0);
    struct writer w = {.d = d};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, writer_main, &w), 0);
    while (w.writes < 10)
        usleep(1000);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/export-q", test_tmpdir());
    for (int i = 0; i < 5; i++) {
        struct builddev_export r;
        CHECK_EQ(builddev_export(d, dir, &r), 0);
        CHECK(r.changed);
        uint8_t *data;
        size_t len;
        CHECK_EQ(read_file(r.data_path, &data, &len), 0);
        CHECK_EQ(len % (16 * KiB), 0);
        for (size_t blk = 0; blk < len; blk += 16 * KiB)
            for (size_t k = 1; k < 16 * KiB; k++)
                if (data[blk + k] != data[blk]) {
                    snap_free(data);
                    atomic_store(&w.stop, true);
                    pthread_join(t, NULL);
                    CHECK(!"a torn write in the export");
                }
        snap_free(data);
    }
    atomic_store(&w.stop, true);
    pthread_join(t, NULL);
    builddev_close(d);
}

TEST(builddev_warm_read_allocates_nothing)
{
    struct builddev *d;
    struct store *sim;
    CHECK_EQ(open_dev(&d, &sim), 0);
    uint8_t *buf = malloc(1024 * KiB);
    CHECK_EQ(builddev_ops.pread(d, buf, 1024 * KiB, 0), 0); /* warm: chunkers open, data fetched */
    CHECK_EQ(builddev_ops.pwrite(d, buf, 64 * KiB, 256 * KiB, false), 0);
    uint64_t before = snap_alloc_count();
    for (unsigned i = 0; i < 2000; i++) {
        uint64_t off = (uint64_t)(i * 7919u % 250) * 4 * KiB;
        CHECK_EQ(builddev_ops.pread(d, buf, 16 * KiB, off), 0);   /* builds, zeros, overlay */
        CHECK_EQ(builddev_ops.pwrite(d, buf, 4 * KiB, 300 * KiB, false), 0);
    }
    CHECK_EQ(snap_alloc_count(), before);
    free(buf);
    builddev_close(d);
}

TEST(builddev_refuses_bad_input)
{
    struct builddev_opts o = {.file = "a/b", .cache_dir = test_tmpdir()};
    struct builddev *d;
    CHECK_EQ(builddev_open_empty(4096, &o, &d), SNAP_EUSAGE);
    o.file = "memfile";
    CHECK_EQ(builddev_open_empty(0, &o, &d), SNAP_EUSAGE);
    /* A header with a hole does not pass hdr_check. */
    struct hdr_meta m = {.version = 4, .block_size = 4096, .size = 64 * KiB, .build_id = BA};
    struct hdr *h;
    CHECK_EQ(hdr_new(&m, &h), 0);
    CHECK_EQ(hdr_append(h, 0, 32 * KiB, NULL, 0), 0);
    CHECK_EQ(builddev_open(h, NULL, &o, &d), SNAP_ECHECK);
    /* Builds named but no store. */
    CHECK_EQ(hdr_new(&m, &h), 0);
    CHECK_EQ(hdr_append(h, 0, 64 * KiB, &BA, 0), 0);
    CHECK_EQ(builddev_open(h, NULL, &o, &d), SNAP_EUSAGE);
}
