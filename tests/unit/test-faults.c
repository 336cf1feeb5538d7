/* SQLite-style fault loops: let N allocations (or N store reads) succeed and fail every later
 * one, for N = 0, 1, 2, ... until a run succeeds.  Every run must end in success or in the one
 * clean error of that fault (SNAP_ENOMEM, or SNAP_EIO for the storage countdown) and leak
 * nothing (the ASan build's leak check at exit); url_parse must also leave its output untouched.
 *
 * Covered here: URL parse/resolve, cache open/write/zero/export, store file put/read/stat,
 * chunker open/read over lib/store/sim, builddev open/read/write/export; the storage countdown
 * (store_sim_fail_after) over chunker and builddev reads, where a later read must then succeed
 * with the right bytes (nothing half-fetched is kept).  Header parse/serialize/diff have their
 * loop in test-header.c; HTTP, XML, JSON and JWT in their own files. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "cache/cache.h"
#include "chunker/chunker.h"
#include "device/builddev.h"
#include "header/header.h"
#include "net/url.h"
#include "bench/simstore.h"
#include "store/store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define KiB 1024u
#define SEED 11u
#define FAULT_MAX 100000 /* failure points walked at most: a run that never succeeds is a bug */

/* Run fn(arg) with allocation k failing, k = 0, 1, ... until it succeeds.  Returns the number
 * of failure points walked, or -1 (after reporting) if a run ended in another error. */
static long alloc_loop(int (*fn)(void *arg), void *arg, const char *what)
{
    for (long k = 0; k < FAULT_MAX; k++) {
        snap_mem_fail_after(k);
        int err = fn(arg);
        snap_mem_fail_after(-1);
        if (err == 0) {
            printf("    %s: %ld allocation failure points, each a clean SNAP_ENOMEM\n", what, k);
            return k;
        }
        if (err != SNAP_ENOMEM) {
            test_failed(__FILE__, __LINE__, "%s with allocation %ld failing: %s (%d), not out of memory",
                        what, k, snap_errmsg(err), err);
            return -1;
        }
    }
    test_failed(__FILE__, __LINE__, "%s never succeeded", what);
    return -1;
}

/* ---- URL parse and resolve ---- */

static int url_seq(void *arg)
{
    (void)arg;
    struct url u, r;
    memset(&u, 0xa5, sizeof u);
    int err = url_parse("https://us%40er:p%3Ass@Example.COM:8443/a/b%20c?X-Amz-Signature=s&x=1#frag", &u);
    if (err) {
        for (size_t i = 0; i < sizeof u; i++) /* untouched on failure */
            if (((uint8_t *)&u)[i] != 0xa5)
                return SNAP_EINTERNAL;
        return err;
    }
    err = url_resolve(&u, "//[::1]:9000/other?q#f", &r);
    if (!err) {
        if (strcmp(r.host, "::1") != 0 || r.port != 9000 || strcmp(u.user, "us@er") != 0)
            err = SNAP_EINTERNAL;
        url_free(&r);
    }
    url_free(&u);
    return err;
}

TEST(faults_url_parse_and_resolve)
{
    long n = alloc_loop(url_seq, NULL, "url_parse + url_resolve");
    CHECK(n >= 2);
}

/* ---- cache open, write, zero, export ---- */

static int cache_seq(void *arg)
{
    unsigned *iter = arg;
    char path[512], diff[512];
    snprintf(path, sizeof path, "%s/faults-%u.cache", test_tmpdir(), *iter);
    snprintf(diff, sizeof diff, "%s/faults-%u.diff", test_tmpdir(), (*iter)++);
    struct cache *c;
    int err = cache_open(path, 64 * 4096 + 100, 4096, &c);
    unlink(path);
    if (err)
        return err;
    uint8_t blk[8192];
    memset(blk, 0x5c, sizeof blk);
    int fd = -1;
    struct cache_export ex = {0};
    if (!(err = cache_write(c, 4096, sizeof blk, blk)) && !(err = cache_zero(c, 40 * 4096, 8 * 4096)) &&
        !(err = cache_write(c, 64 * 4096, 100, blk))) {
        fd = open(diff, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        unlink(diff);
        err = fd < 0 ? SNAP_EIO : cache_export(c, fd, &ex);
        if (!err && (ex.bytes != sizeof blk + 100 || ex.ndirty != 2 || ex.nzero != 1))
            err = SNAP_EINTERNAL;
        if (!err)
            cache_export_free(&ex);
    }
    if (fd >= 0)
        close(fd);
    cache_close(c);
    return err;
}

TEST(faults_cache_open_write_export)
{
    unsigned iter = 0;
    long n = alloc_loop(cache_seq, &iter, "cache open/write/zero/export");
    CHECK(n >= 2);
}

/* ---- store file: put, stat, ranged read, whole-object read ---- */

static int store_file_seq(void *arg)
{
    (void)arg;
    char url[600], obj[700];
    snprintf(url, sizeof url, "file://%s/faults-store", test_tmpdir());
    snprintf(obj, sizeof obj, "%s/b1/memfile", url);
    struct store *s;
    int err = store_open(url, NULL, &s);
    if (err)
        return err;
    uint8_t data[20000], back[20000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13 + 1);
    struct store_info info;
    struct store_read_result res = {0};
    uint8_t *whole = NULL;
    size_t wlen = 0;
    if (!(err = store_put(s, "b1/memfile", data, sizeof data, NULL)) &&
        !(err = store_stat(s, "b1/memfile", &info)) &&
        !(err = store_read(s, "b1/memfile", 1000, 15000, back, NULL, NULL, &res)) &&
        !(err = store_read_object(obj, 1u << 20, &whole, &wlen))) {
        if (info.size != sizeof data || res.bytes != 15000 || memcmp(back, data + 1000, 15000) != 0 ||
            wlen != sizeof data || memcmp(whole, data, wlen) != 0)
            err = SNAP_EINTERNAL;
        snap_free(whole);
    }
    store_close(s);
    return err;
}

TEST(faults_store_file_put_read)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/faults-store", test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    long n = alloc_loop(store_file_seq, NULL, "store file put/stat/read");
    CHECK(n >= 2);
}

/* ---- chunker over the simulated store ---- */

#define CH_SIZE (3 * 256 * KiB + 5000)

static int check_pattern(const uint8_t *got, uint64_t off, size_t len)
{
    static uint8_t want[CH_SIZE];
    store_sim_pattern(SEED, off, want, len);
    return memcmp(got, want, len) == 0 ? 0 : SNAP_EINTERNAL;
}

/* Reads across a chunk boundary, the partial tail, and everything. */
static int chunker_reads(struct chunker *ch)
{
    static uint8_t buf[CH_SIZE];
    static const uint64_t r[][2] = {{256 * KiB - 100, 300}, {CH_SIZE - 5000, 5000}, {0, CH_SIZE}};
    for (size_t i = 0; i < 3; i++) {
        int err = chunker_read(ch, r[i][0], r[i][1], buf);
        if (err)
            return err;
        if ((err = check_pattern(buf, r[i][0], (size_t)r[i][1])))
            return err;
    }
    return 0;
}

static int chunker_open_sim(unsigned iter, enum chunker_mode mode, struct store **s, struct chunker **ch)
{
    struct sim_opts so = {.size = CH_SIZE, .seed = SEED, .slice = 64 * KiB};
    int err = store_sim_open(&so, s);
    if (err)
        return err;
    char path[512];
    snprintf(path, sizeof path, "%s/faults-chunker-%u.cache", test_tmpdir(), iter);
    struct chunker_opts o = {.mode = mode, .size = CH_SIZE, .cache_path = path, .chunk_size = 256 * KiB,
                             .fetchers = 2, .fetch_timeout_ms = 5000};
    if ((err = chunker_open(*s, "b/memfile", &o, ch)))
        store_close(*s);
    return err;
}

static int chunker_seq(void *arg)
{
    unsigned *iter = arg;
    struct store *s;
    struct chunker *ch;
    int err = chunker_open_sim((*iter)++, CHUNKER_DEMAND, &s, &ch);
    if (err)
        return err;
    err = chunker_reads(ch);
    chunker_close(ch);
    store_close(s);
    return err;
}

TEST(faults_chunker_open_read_alloc)
{
    unsigned iter = 0;
    long n = alloc_loop(chunker_seq, &iter, "chunker open/read");
    CHECK(n >= 2);
}

/* After a storage failure, with the countdown off: the same reads succeed with the right bytes
 * (nothing half-fetched was kept).  A fetch that failed while the countdown was on may still be
 * finishing and hand its error to a reader that joins it, so a few SNAP_EIO are allowed first. */
static int retry_reads(int (*reads)(void *), void *arg)
{
    int err = SNAP_EIO;
    for (int i = 0; i < 10 && err == SNAP_EIO; i++)
        err = reads(arg);
    return err;
}

static int chunker_reads_fn(void *ch) { return chunker_reads(ch); }

/* One mode: store read k fails, k = 0, 1, ... until the reads need no more than k store reads.
 * Returns the number of failure points, or -1 after reporting. */
static long chunker_countdown(enum chunker_mode mode)
{
    for (long k = 0; k < 1000; k++) {
        struct store *s;
        struct chunker *ch;
        if (chunker_open_sim(1000 * (unsigned)(mode + 1) + (unsigned)k, mode, &s, &ch))
            return -1;
        store_sim_fail_after(s, k);
        int err = chunker_reads(ch), again = 0;
        store_sim_fail_after(s, -1);
        if (err == SNAP_EIO)
            again = retry_reads(chunker_reads_fn, ch);
        chunker_close(ch);
        store_close(s);
        if (!err)
            return k;
        if (err != SNAP_EIO || again) {
            test_failed(__FILE__, __LINE__, "%s, store read %ld failing: %s (%d); the retry: %s",
                        chunker_mode_name(mode), k, snap_errmsg(err), err, again ? snap_errmsg(again) : "ok");
            return -1;
        }
    }
    test_failed(__FILE__, __LINE__, "%s: the reads never succeeded", chunker_mode_name(mode));
    return -1;
}

TEST(faults_chunker_store_read_countdown)
{
    for (int mode = CHUNKER_DEMAND; mode <= CHUNKER_FULL; mode++) {
        long k = chunker_countdown((enum chunker_mode)mode);
        CHECK(k >= 1);
        printf("    chunker %s: %ld store reads failed in turn, each a clean SNAP_EIO, then read back right\n",
               chunker_mode_name((enum chunker_mode)mode), k);
    }
}

/* ---- builddev over the simulated store ---- */

static const snap_uuid BA = {{0xaa, 9, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}};
static const snap_uuid BB = {{0xbb, 9, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}};
#define DEV_SIZE (512 * KiB)

/* [0,64K) A@128K, [64K,128K) zeros, [128K,256K) B@0, [256K,512K) A@192K. */
static int dev_header(struct hdr **out)
{
    struct hdr_meta m = {.version = 4, .block_size = 4096, .size = DEV_SIZE, .generation = 1,
                         .build_id = BA, .base_build_id = BB};
    struct hdr *h;
    int err = hdr_new(&m, &h);
    if (err)
        return err;
    if ((err = hdr_append(h, 0, 64 * KiB, &BA, 128 * KiB)) || (err = hdr_append(h, 64 * KiB, 64 * KiB, NULL, 0)) ||
        (err = hdr_append(h, 128 * KiB, 128 * KiB, &BB, 0)) ||
        (err = hdr_append(h, 256 * KiB, 256 * KiB, &BA, 192 * KiB))) {
        hdr_free(h);
        return err;
    }
    *out = h;
    return 0;
}

static void dev_expected(uint8_t *dst)
{
    store_sim_pattern(SEED, 128 * KiB, dst, 64 * KiB);
    memset(dst + 64 * KiB, 0, 64 * KiB);
    store_sim_pattern(SEED, 0, dst + 128 * KiB, 128 * KiB);
    store_sim_pattern(SEED, 192 * KiB, dst + 256 * KiB, 256 * KiB);
}

static int dev_open(struct builddev **d, struct store **s)
{
    struct sim_opts so = {.size = 1024 * KiB, .seed = SEED, .slice = 64 * KiB};
    int err = store_sim_open(&so, s);
    if (err)
        return err;
    struct hdr *h;
    if ((err = dev_header(&h))) {
        store_close(*s);
        return err;
    }
    struct builddev_opts o = {.file = "rootfs.ext4", .cache_dir = test_tmpdir(), .fetchers = 2};
    return builddev_open(h, *s, &o, d); /* owns h and s, also on failure */
}

/* Read everything (split across entries and builds) and compare. */
static int dev_read_all(struct builddev *d)
{
    static uint8_t got[DEV_SIZE], want[DEV_SIZE];
    dev_expected(want);
    int err = builddev_ops.pread(d, got, 200 * KiB, 0);
    if (!err)
        err = builddev_ops.pread(d, got + 200 * KiB, DEV_SIZE - 200 * KiB, 200 * KiB);
    if (!err && memcmp(got, want, DEV_SIZE) != 0)
        err = SNAP_EINTERNAL;
    return err;
}

static int dev_read_all_fn(void *d) { return dev_read_all(d); }

static int builddev_seq(void *arg)
{
    unsigned *iter = arg;
    struct builddev *d;
    struct store *s;
    int err = dev_open(&d, &s);
    if (err)
        return err;
    uint8_t blk[8192];
    memset(blk, 0x3d, sizeof blk);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/faults-export-%u", test_tmpdir(), (*iter)++);
    struct builddev_export r;
    if (!(err = dev_read_all(d)) && !(err = builddev_ops.pwrite(d, blk, sizeof blk, 300 * KiB, false)) &&
        !(err = builddev_ops.trim(d, 64 * KiB, 4096, false)) && !(err = builddev_export(d, dir, &r))) {
        if (!r.changed || r.generation != 2 || r.diff_bytes != sizeof blk)
            err = SNAP_EINTERNAL;
    }
    builddev_close(d);
    return err;
}

TEST(faults_builddev_open_read_export_alloc)
{
    unsigned iter = 0;
    long n = alloc_loop(builddev_seq, &iter, "builddev open/read/write/export");
    CHECK(n >= 2);
}

TEST(faults_builddev_store_read_countdown)
{
    long k;
    for (k = 0; k < 1000; k++) {
        struct builddev *d;
        struct store *s;
        CHECK_EQ(dev_open(&d, &s), 0);
        store_sim_fail_after(s, k);
        int err = dev_read_all(d);
        store_sim_fail_after(s, -1);
        if (err) {
            if (err != SNAP_EIO)
                test_failed(__FILE__, __LINE__, "store read %ld failing: %s (%d), not the injected I/O error",
                            k, snap_errmsg(err), err);
            int again = retry_reads(dev_read_all_fn, d);
            if (again)
                test_failed(__FILE__, __LINE__, "after store read %ld failed, a retry: %s", k, snap_errmsg(again));
        }
        builddev_close(d);
        if (!err)
            break;
    }
    printf("    %ld store reads failed in turn, each a clean SNAP_EIO, then read back right\n", k);
    CHECK(k >= 1 && k < 1000);
}
