/* Unit tests of lib/device/trace and lib/device/access: the recorder (first-access order, one
 * entry per block, types, many threads at once), the reference's JSON shape read and written
 * (bare and in metadata.json, every error), merge, and the access layer over a build device on
 * the simulated store: a prefetch brings the trace's chunks in once each, the client's reads of
 * them then count as used, a demand read is not held behind the prefetch, and close stops it;
 * which trace --prefetch and --merge-trace specs name (lib/device/prefetch). */
#include "test.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "device/access.h"
#include "device/builddev.h"
#include "device/prefetch.h"
#include "device/trace.h"
#include "header/header.h"
#include "store/store.h"
#include "bench/simstore.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#define KiB 1024u
#define MiB (1024u * 1024u)

TEST(trace_rec_first_access_order)
{
    struct trace_rec *r;
    CHECK_EQ(trace_rec_new(10 * 4096 + 1, 4096, &r), 0);
    CHECK_EQ(trace_rec_blocks(r), 11);
    CHECK(trace_rec_touch(r, 5, TRACE_READ));
    CHECK(trace_rec_touch(r, 2, TRACE_WRITE));
    CHECK(!trace_rec_touch(r, 5, TRACE_WRITE)); /* once, with its first type */
    CHECK(trace_rec_touch(r, 10, TRACE_READ));
    CHECK(!trace_rec_touch(r, 11, TRACE_READ)); /* past the device */
    CHECK(trace_rec_seen(r, 2) && !trace_rec_seen(r, 3) && !trace_rec_seen(r, 99));
    struct trace t;
    CHECK_EQ(trace_rec_snapshot(r, &t), 0);
    CHECK_EQ(t.n, 3);
    CHECK_EQ(t.block_size, 4096);
    CHECK(t.idx[0] == 5 && t.idx[1] == 2 && t.idx[2] == 10);
    CHECK(t.type[0] == TRACE_READ && t.type[1] == TRACE_WRITE && t.type[2] == TRACE_READ);
    trace_free(&t);
    trace_rec_free(r);
    CHECK_ERR(trace_rec_new(4096, 1000, &r), SNAP_EUSAGE, "power of two");
}

struct toucher {
    struct trace_rec *r;
    unsigned seed;
};

static void *touch_many(void *arg)
{
    struct toucher *t = arg;
    for (unsigned i = 0; i < 20000; i++) {
        t->seed = t->seed * 1103515245u + 12345u;
        trace_rec_touch(t->r, (t->seed >> 8) % 4096, (t->seed & 1) ? TRACE_READ : TRACE_WRITE);
    }
    return NULL;
}

TEST(trace_rec_threads_record_each_block_once)
{
    struct trace_rec *r;
    CHECK_EQ(trace_rec_new(4096ull * 4096, 4096, &r), 0);
    pthread_t th[4];
    struct toucher t[4];
    for (unsigned i = 0; i < 4; i++) {
        t[i] = (struct toucher){r, i * 7919u + 1};
        pthread_create(&th[i], NULL, touch_many, &t[i]);
    }
    for (unsigned i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    struct trace tr;
    CHECK_EQ(trace_rec_snapshot(r, &tr), 0);
    uint8_t *hit = calloc(4096, 1);
    size_t seen = 0;
    for (size_t i = 0; i < tr.n; i++) {
        CHECK(tr.idx[i] < 4096 && !hit[tr.idx[i]]);
        hit[tr.idx[i]] = 1;
    }
    for (uint64_t b = 0; b < 4096; b++)
        seen += trace_rec_seen(r, b);
    CHECK_EQ(seen, tr.n);
    CHECK_EQ(trace_rec_count(r), tr.n);
    free(hit);
    trace_free(&tr);
    trace_rec_free(r);
}

static int parse_str(const char *s, const char *kind, struct trace *t)
{
    return trace_parse(s, strlen(s), kind, t);
}

TEST(trace_parse_shapes_and_errors)
{
    struct trace t;
    CHECK_EQ(parse_str("{\"indices\":[3,1,2],\"access_types\":[\"r\",\"w\",\"p\"],\"block_size\":4096}", NULL, &t), 0);
    CHECK(t.n == 3 && t.idx[0] == 3 && t.type[1] == TRACE_WRITE && t.type[2] == TRACE_PREFETCH);
    trace_free(&t);
    const char *md = "{\"version\":2,\"prefetch\":{\"memory\":{\"indices\":[9],\"access_types\":[\"r\"],"
                     "\"block_size\":2097152},\"rootfs\":{\"indices\":[1,2],\"access_types\":[\"r\",\"r\"],"
                     "\"block_size\":4096}}}";
    CHECK_EQ(parse_str(md, "rootfs", &t), 0);
    CHECK(t.n == 2 && t.block_size == 4096);
    trace_free(&t);
    CHECK_EQ(parse_str(md, "memory", &t), 0);
    CHECK(t.n == 1 && t.idx[0] == 9 && t.block_size == 2 * MiB);
    trace_free(&t);
    CHECK_ERR(parse_str(md, NULL, &t), SNAP_ENOTFOUND, "only one");
    CHECK_ERR(parse_str("{\"version\":2}", "rootfs", &t), SNAP_ENOTFOUND, "no prefetch trace");
    CHECK_ERR(parse_str("{\"version\":2,\"prefetch\":{}}", "rootfs", &t), SNAP_ENOTFOUND, "rootfs");
    CHECK_ERR(parse_str("[1]", NULL, &t), SNAP_EFORMAT, "expected a JSON object");
    CHECK_ERR(parse_str("{\"indices\":[1,2],\"access_types\":[\"r\"],\"block_size\":4096}", NULL, &t),
              SNAP_EFORMAT, "2 indices but 1 access types");
    CHECK_ERR(parse_str("{\"indices\":[-1],\"access_types\":[\"r\"],\"block_size\":4096}", NULL, &t),
              SNAP_EFORMAT, "indices[0]");
    CHECK_ERR(parse_str("{\"indices\":[1.5],\"access_types\":[\"r\"],\"block_size\":4096}", NULL, &t),
              SNAP_EFORMAT, "indices[0]");
    CHECK_ERR(parse_str("{\"indices\":[1],\"access_types\":[\"x\"],\"block_size\":4096}", NULL, &t),
              SNAP_EFORMAT, "access_types[0]");
    CHECK_ERR(parse_str("{\"indices\":[1],\"access_types\":[\"r\"],\"block_size\":4095}", NULL, &t),
              SNAP_EFORMAT, "power of two");
    CHECK_ERR(parse_str("{\"indices\":[1],\"access_types\":[\"r\"]}", NULL, &t), SNAP_ENOTFOUND, "block_size");
    CHECK_ERR(parse_str("{\"indices\":{},\"access_types\":[],\"block_size\":4096}", NULL, &t), SNAP_EFORMAT,
              "must be arrays");
    CHECK_ERR(parse_str("{\"indices\":[1", NULL, &t), SNAP_EFORMAT, "");
    CHECK(t.idx == NULL && t.n == 0);
}

TEST(trace_write_roundtrip_and_merge)
{
    uint64_t ia[] = {5, 1, 9, 3}, ib[] = {3, 7, 5};
    uint8_t ta[] = {TRACE_READ, TRACE_WRITE, TRACE_PREFETCH, TRACE_READ}, tb[] = {1, 1, 1};
    struct trace a = {ia, ta, 4, 4096}, b = {ib, tb, 3, 4096}, m, back;
    char path[4096];
    snprintf(path, sizeof path, "%s/metadata.json", test_tmpdir());
    CHECK_EQ(trace_write_metadata(&a, "rootfs", path), 0);
    uint8_t *buf;
    size_t len;
    CHECK_EQ(snap_read_file(path, 1 << 20, &buf, &len), 0);
    CHECK(strstr((char *)buf, "\"version\":2") && strstr((char *)buf, "\"rootfs\":{\"indices\":[5,1,9,3]"));
    CHECK(strstr((char *)buf, "\"access_types\":[\"r\",\"w\",\"p\",\"r\"],\"block_size\":4096"));
    CHECK_EQ(trace_parse(buf, len, "rootfs", &back), 0);
    CHECK(back.n == 4 && !memcmp(back.idx, ia, sizeof ia) && !memcmp(back.type, ta, sizeof ta));
    trace_free(&back);
    snap_free(buf);
    CHECK_EQ(trace_merge(&a, &b, &m), 0); /* a's order, blocks both have */
    CHECK(m.n == 2 && m.idx[0] == 5 && m.idx[1] == 3 && m.type[1] == TRACE_READ);
    trace_free(&m);
    b.block_size = 2 * MiB;
    CHECK_ERR(trace_merge(&a, &b, &m), SNAP_EUSAGE, "cannot be merged");
    CHECK_STR(trace_kind_for_file("memfile"), "memory");
    CHECK_STR(trace_kind_for_file("rootfs.ext4"), "rootfs");
}

/* prefetch: "auto" reads the build's metadata.json (the kind from the device file), goes with a
 * header, says when the build has none; anything else is a file; the block size to record in. */
TEST(prefetch_trace_choice)
{
    static const snap_uuid id = {{0xbb, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}};
    uint64_t ia[] = {2, 4};
    uint8_t ta[] = {TRACE_READ, TRACE_READ};
    struct trace a = {ia, ta, 2, 8192}, t;
    char ids[SNAP_UUID_STRLEN + 1], dir[4096], path[4200], url[4200];
    snap_uuid_format(&id, ids);
    snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), ids);
    CHECK(mkdir(dir, 0700) == 0);
    snprintf(path, sizeof path, "%s/metadata.json", dir);
    CHECK_EQ(trace_write_metadata(&a, "memory", path), 0);
    struct hdr_meta m = {.version = 4, .block_size = 8192, .size = 1 * MiB, .build_id = id, .base_build_id = id};
    struct hdr *h;
    CHECK_EQ(hdr_new(&m, &h), 0);
    struct store *s;
    snprintf(url, sizeof url, "file://%s", test_tmpdir());
    CHECK_EQ(store_open(url, NULL, &s), 0);
    CHECK(prefetch_spec_is_auto("auto") && !prefetch_spec_is_auto(path));
    CHECK_ERR(prefetch_trace_load("auto", NULL, h, "memfile", &t), SNAP_EUSAGE, "goes with --header");
    CHECK_EQ(prefetch_trace_load("auto", s, h, "memfile", &t), 0);
    CHECK(t.n == 2 && t.idx[1] == 4 && t.block_size == 8192);
    trace_free(&t);
    CHECK_EQ(prefetch_trace_load("auto", s, h, "rootfs.ext4", &t), SNAP_ENOTFOUND);
    CHECK_EQ(prefetch_trace_load(path, NULL, NULL, "memfile", &t), 0);
    CHECK(t.n == 2 && t.idx[0] == 2);
    trace_free(&t);
    CHECK_EQ(prefetch_block_size(h), 8192);
    CHECK_EQ(prefetch_block_size(NULL), 4096);
    store_close(s);
    hdr_free(h);
}

/* ---- the access layer over a build device on the simulated store ---------------------------- */

#define DEV_SIZE (16 * MiB)
static const snap_uuid BA = {{0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}};

/* A 16 MiB build, all of it data of one build at the same offsets, on a store of ttfb_ms and
 * rate MB/s (0: as fast as possible). */
static int open_build(unsigned ttfb_ms, uint64_t mbps, struct builddev **d, struct store **sim)
{
    struct sim_opts so = {.size = DEV_SIZE, .seed = 3, .ttfb_us = ttfb_ms * 1000, .bytes_per_sec = mbps * 1000000};
    int err = store_sim_open(&so, sim);
    if (err)
        return err;
    struct hdr_meta m = {.version = 4, .block_size = 4096, .size = DEV_SIZE, .build_id = BA, .base_build_id = BA};
    struct hdr *h;
    if ((err = hdr_new(&m, &h)) != 0 || (err = hdr_append(h, 0, DEV_SIZE, &BA, 0)) != 0)
        return err;
    struct builddev_opts o = {.file = "rootfs.ext4", .cache_dir = test_tmpdir()};
    return builddev_open(h, *sim, &o, d);
}

static void wait_prefetch(struct access *a)
{
    struct access_stats s;
    for (int i = 0; i < 2000; i++) {
        access_stats(a, &s);
        if (!s.prefetch_running)
            return;
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
}

TEST(access_prefetch_fetches_each_chunk_once_then_reads_are_used)
{
    struct builddev *d;
    struct store *sim;
    CHECK_EQ(open_build(1, 0, &d, &sim), 0);
    /* Blocks in chunks 2, 0 and 2 again, in that order. */
    uint64_t idx[] = {2 * 1024 + 10, 2 * 1024 + 11, 5, 2 * 1024 + 900, 6};
    uint8_t ty[] = {TRACE_READ, TRACE_READ, TRACE_READ, TRACE_WRITE, TRACE_READ};
    struct trace t = {idx, ty, 5, 4096};
    struct access *a;
    struct access_opts o = {.ops = &builddev_ops, .ctx = d, .size = DEV_SIZE, .block_size = 4096, .prefetch = &t};
    CHECK_EQ(access_open(&o, &a), 0);
    wait_prefetch(a);
    struct access_stats s;
    access_stats(a, &s);
    CHECK_EQ(s.trace_blocks, 5);
    CHECK_EQ(s.prefetched, 5);
    CHECK_EQ(s.chunks_done, 2);
    struct sim_stats ss;
    store_sim_stats(sim, &ss);
    CHECK(ss.bytes <= 8 * MiB); /* two chunks, each fetched once */
    const struct dev_ops *ops = access_ops(a);
    uint8_t buf[8192], want[8192];
    CHECK_EQ(ops->pread(a, buf, 8192, (2 * 1024 + 10) * 4096ull), 0);
    store_sim_pattern(3, (2 * 1024 + 10) * 4096ull, want, 8192);
    CHECK(memcmp(buf, want, 8192) == 0);
    CHECK_EQ(ops->pread(a, buf, 4096, 5 * 4096), 0);
    CHECK_EQ(ops->pread(a, buf, 4096, 12 * MiB), 0); /* not in the trace: a miss */
    access_stats(a, &s);
    CHECK_EQ(s.used, 3);
    CHECK_EQ(s.unused, 2);
    CHECK_EQ(s.missed, 1);
    CHECK_EQ(s.recorded, 4);
    access_close(a);
    builddev_close(d);
}

/* Time one cold 4 KiB read at 8 MiB, with or without a prefetch of unrelated chunks running. */
static uint64_t demand_latency_ns(bool prefetch, int *err)
{
    struct builddev *d;
    struct store *sim;
    *err = open_build(20, 100, &d, &sim);
    if (*err)
        return 0;
    uint64_t idx[] = {0, 1024, 3 * 1024};
    uint8_t ty[] = {TRACE_READ, TRACE_READ, TRACE_READ};
    struct trace t = {idx, ty, 3, 4096};
    struct access *a;
    struct access_opts o = {.ops = &builddev_ops, .ctx = d, .size = DEV_SIZE, .block_size = 4096,
                            .prefetch = prefetch ? &t : NULL};
    if ((*err = access_open(&o, &a)) != 0) {
        builddev_close(d);
        return 0;
    }
    nanosleep(&(struct timespec){0, 30000000}, NULL); /* the prefetch is streaming by now */
    uint8_t buf[4096];
    uint64_t t0 = snap_now_ns();
    *err = access_ops(a)->pread(a, buf, 4096, 8 * MiB + 4096);
    uint64_t dt = snap_now_ns() - t0;
    access_close(a); /* stops the prefetch mid-way */
    builddev_close(d);
    return dt;
}

TEST(access_demand_read_goes_first)
{
    int err1, err2;
    uint64_t alone = demand_latency_ns(false, &err1), with = demand_latency_ns(true, &err2);
    CHECK_EQ(err1, 0);
    CHECK_EQ(err2, 0);
    /* One chunk fetch at 20 ms + 100 MB/s is ~62 ms: the demand read may cost at most that more. */
    if (with > alone + 62000000ull)
        fprintf(stderr, "    demand read: %llu us alone, %llu us with a prefetch running\n",
                (unsigned long long)(alone / 1000), (unsigned long long)(with / 1000));
    CHECK(with <= alone + 62000000ull);
}

TEST(access_recording_allocates_nothing)
{
    struct builddev *d;
    struct store *sim;
    CHECK_EQ(open_build(0, 0, &d, &sim), 0);
    struct access *a;
    struct access_opts o = {.ops = &builddev_ops, .ctx = d, .size = DEV_SIZE, .block_size = 4096};
    CHECK_EQ(access_open(&o, &a), 0);
    const struct dev_ops *ops = access_ops(a);
    uint8_t *buf = malloc(128 * KiB);
    CHECK_EQ(ops->pread(a, buf, 128 * KiB, 0), 0); /* warm the chunk */
    uint64_t before = snap_alloc_count();
    for (uint64_t off = 0; off < 4 * MiB; off += 128 * KiB) { /* new blocks: recorded now */
        CHECK_EQ(ops->pread(a, buf, 64 * KiB, off), 0);
        CHECK_EQ(ops->pwrite(a, buf, 64 * KiB, off + 64 * KiB, false), 0);
    }
    CHECK_EQ(snap_alloc_count() - before, 0);
    struct access_stats s;
    access_stats(a, &s);
    CHECK_EQ(s.recorded, 1024);
    free(buf);
    access_close(a);
    builddev_close(d);
}
