/* Unit tests of lib/device/device.c and lib/header/layout.c: extents lists, a build's object
 * names from its header's URL, opening each kind of device and using it through its ops (the NBD
 * server's interface), the JSON answer to an export and reading it back, and the access layer's
 * counters as JSON. */
#include "test.h"

#include "base/err.h"
#include "base/io.h"
#include "codec/json.h"
#include "base/mem.h"
#include "device/access.h"
#include "device/builddev.h"
#include "device/device.h"
#include "header/header.h"
#include "header/layout.h"
#include "bench/simstore.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define KiB 1024u

TEST(dev_extents_merge_and_cap)
{
    struct dev_extent e[2];
    struct dev_extents x = {e, 0, 2, 0};
    CHECK(dev_extents_add(&x, 4096, 0));
    CHECK(dev_extents_add(&x, 4096, 0)); /* merged */
    CHECK_EQ(x.n, 1);
    CHECK_EQ(e[0].length, 8192);
    CHECK(!dev_extents_add(&x, 4096, DEV_STATE_HOLE)); /* now full */
    CHECK_EQ(x.n, 2);
    CHECK(!dev_extents_add(&x, 4096, 0));
    CHECK_EQ(x.n, 2);
}

TEST(layout_from_header_url)
{
    struct hdr_layout l;
    CHECK_EQ(hdr_layout_from_header_url("s3://bucket/builds/11111111-2222-3333-4444-555555555555/rootfs.ext4.header",
                                        &l), 0);
    CHECK_STR(l.store, "s3://bucket/builds");
    CHECK_STR(l.id, "11111111-2222-3333-4444-555555555555");
    CHECK_STR(l.file, "rootfs.ext4");
    CHECK_STR(l.header_key, "11111111-2222-3333-4444-555555555555/rootfs.ext4.header");
    hdr_layout_free(&l);
    CHECK_EQ(hdr_layout_from_header_url("file:///store/ID/memfile.header", &l), 0);
    CHECK_STR(l.store, "file:///store");
    CHECK_STR(l.file, "memfile");
    CHECK_STR(l.header_key, "ID/memfile.header");
    hdr_layout_free(&l);
    CHECK_EQ(hdr_layout_from_header_url("file:///ID/memfile.header", &l), 0); /* the store is / */
    CHECK_STR(l.store, "file:///");
    hdr_layout_free(&l);
}

TEST(layout_refuses_what_is_not_a_build_header)
{
    struct hdr_layout l = {0};
    CHECK_EQ(hdr_layout_from_header_url("file:///store/ID/rootfs.ext4", &l), SNAP_EUSAGE);
    CHECK(strstr(snap_errmsg(SNAP_EUSAGE), "ending in {file}.header"));
    CHECK_EQ(hdr_layout_from_header_url("s3://bucket/ID/.header", &l), SNAP_EUSAGE);
    CHECK_EQ(hdr_layout_from_header_url("file:///rootfs.ext4.header", &l), SNAP_EUSAGE);
    CHECK(strstr(snap_errmsg(SNAP_EUSAGE), "no directory above the build's"));
    CHECK(!l.store && !l.id && !l.file && !l.header_key); /* nothing left to free */
}

TEST(layout_key)
{
    char k[32];
    CHECK_EQ(hdr_layout_key(k, sizeof k, "ID", "rootfs.ext4", ""), 0);
    CHECK_STR(k, "ID/rootfs.ext4");
    CHECK_EQ(hdr_layout_key(k, sizeof k, "ID", "memfile", ".lz4"), 0);
    CHECK_STR(k, "ID/memfile.lz4");
    CHECK_EQ(hdr_layout_key(k, 8, "ID", "memfile", ".header"), SNAP_EUSAGE);
}

TEST(device_export_json_answers)
{
    char out[1024];
    struct builddev_export r = {.changed = false};
    size_t n = device_export_json(0, &r, out, sizeof out);
    CHECK_STR(out, "{\"ok\":true,\"changed\":false,\"parent_build_id\":null}\n");
    CHECK_EQ(n, strlen(out));
    r = (struct builddev_export){.changed = true, .generation = 4, .format = 5, .diff_bytes = 8192,
                                 .dirty_runs = 2, .zero_runs = 1};
    CHECK_EQ(snap_uuid_parse("11111111-2222-3333-4444-555555555555", &r.parent_id), 0);
    CHECK_EQ(snap_uuid_parse("aaaaaaaa-2222-3333-4444-555555555555", &r.build_id), 0);
    snprintf(r.data_path, sizeof r.data_path, "/out/a/memfile");
    snprintf(r.header_path, sizeof r.header_path, "/out/a/memfile.header");
    device_export_json(0, &r, out, sizeof out);
    CHECK_STR(out, "{\"ok\":true,\"changed\":true,\"parent_build_id\":\"11111111-2222-3333-4444-555555555555\","
                   "\"build_id\":\"aaaaaaaa-2222-3333-4444-555555555555\",\"generation\":4,\"format\":5,"
                   "\"diff_bytes\":8192,\"dirty_runs\":2,\"zero_runs\":1,\"data\":\"/out/a/memfile\","
                   "\"header\":\"/out/a/memfile.header\"}\n");
    int err = snap_fail(SNAP_EIO, "disk \"full\"");
    device_export_json(err, NULL, out, sizeof out);
    char want[128];
    snprintf(want, sizeof want, "{\"ok\":false,\"error\":\"disk \\\"full\\\"\",\"exit\":%d}\n", snap_exit_code(err));
    CHECK_STR(out, want);
    n = device_export_json(0, &r, out, 64); /* does not fit */
    CHECK_STR(out, "{\"ok\":false,\"error\":\"export answer too long\",\"exit\":1}\n");
    CHECK_EQ(n, strlen(out));
}

/* What device_export_json writes reads back the same. */
TEST(device_export_answer_round_trip)
{
    char line[1024];
    struct device_export_answer a;
    struct builddev_export r = {.changed = true, .generation = 7, .diff_bytes = 12288};
    CHECK_EQ(snap_uuid_parse("aaaaaaaa-2222-3333-4444-555555555555", &r.build_id), 0);
    snprintf(r.data_path, sizeof r.data_path, "/out/a/rootfs.ext4");
    snprintf(r.header_path, sizeof r.header_path, "/out/a/rootfs.ext4.header");
    size_t n = device_export_json(0, &r, line, sizeof line);
    CHECK_EQ(device_export_answer_parse(line, n, &a), 0);
    CHECK(a.ok && a.changed);
    CHECK_STR(a.build_id, "aaaaaaaa-2222-3333-4444-555555555555");
    CHECK_STR(a.parent_build_id, ""); /* null: an empty device's first export */
    CHECK_EQ(a.generation, 7);
    CHECK_EQ(a.diff_bytes, 12288);
    CHECK_STR(a.data, "/out/a/rootfs.ext4");
    CHECK_STR(a.header, "/out/a/rootfs.ext4.header");
    n = device_export_json(snap_fail(SNAP_ENOSPC, "out of room"), NULL, line, sizeof line);
    CHECK_EQ(device_export_answer_parse(line, n, &a), 0);
    CHECK(!a.ok);
    CHECK_STR(a.error, "out of room");
    CHECK_EQ(a.exit_code, snap_exit_code(SNAP_ENOSPC));
    CHECK_EQ(device_export_answer_parse("{\"ok\":false}", 12, &a), 0);
    CHECK_EQ(a.exit_code, 1); /* no code given: a plain failure */
    CHECK_EQ(device_export_answer_parse("not json", 8, &a), SNAP_EFORMAT);
}

TEST(device_open_file_serves_through_its_ops)
{
    char path[512];
    snprintf(path, sizeof path, "%s/device-file.img", test_tmpdir());
    uint8_t buf[8192] = {0};
    CHECK_EQ(snap_write_file_atomic(path, buf, sizeof buf, 0644), 0);
    struct device *d;
    CHECK_EQ(device_open(&(struct device_opts){.kind = DEVICE_FILE, .path = path}, &d), 0);
    CHECK_EQ(d->size, 8192);
    CHECK_EQ(d->min_block, 1);
    CHECK(!d->build && !d->store && !d->file);
    memset(buf, 0x5a, 4096);
    CHECK_EQ(d->ops->pwrite(d->ctx, buf, 4096, 4096, true), 0);
    uint8_t back[4096];
    CHECK_EQ(d->ops->pread(d->ctx, back, 4096, 4096), 0);
    CHECK_MEM(back, buf, 4096);
    struct builddev_export r;
    CHECK_EQ(device_export(d, test_tmpdir(), &r), SNAP_EUSAGE); /* a file has no build to diff */
    device_close(d);
    snprintf(path, sizeof path, "%s/no-such-file", test_tmpdir());
    CHECK(device_open(&(struct device_opts){.kind = DEVICE_FILE, .path = path}, &d) != 0);
}

/* The extents of [off, off+len) as "D" (data) and "H" (hole) letters, one per 256 KiB. */
static void extents_of(struct device *d, uint64_t off, uint32_t len, char *out)
{
    struct dev_extent e[16];
    struct dev_extents x = {e, 0, 16, off};
    CHECK_EQ(d->ops->extents(d->ctx, len, off, &x), 0);
    for (uint32_t i = 0; i < x.n; i++) {
        CHECK_EQ(e[i].length % (256 * KiB), 0);
        for (uint32_t k = 0; k < e[i].length / (256 * KiB); k++)
            *out++ = (e[i].flags & DEV_STATE_HOLE) ? 'H' : 'D';
    }
    *out = 0;
}

/* A file's data range found by SEEK_HOLE is kept (the walk to the end of the file is what costs);
 * what a trim or zero punches must still show as a hole, and a write into a hole as data. */
TEST(device_file_extents_keep_data_and_see_punched_holes)
{
    char path[512], got[64];
    snprintf(path, sizeof path, "%s/device-extents.img", test_tmpdir());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    static uint8_t data[1024 * KiB];
    memset(data, 0x33, sizeof data);
    CHECK_EQ(snap_pwrite_full(fd, data, sizeof data, 0, path), 0);
    CHECK_EQ(ftruncate(fd, 2048 * KiB), 0);
    close(fd);
    struct device *d;
    CHECK_EQ(device_open(&(struct device_opts){.kind = DEVICE_FILE, .path = path}, &d), 0);
    extents_of(d, 0, 2048 * KiB, got);
    CHECK_STR(got, "DDDDHHHH");
    extents_of(d, 256 * KiB, 512 * KiB, got); /* inside the kept range */
    CHECK_STR(got, "DD");
    extents_of(d, 512 * KiB, 1024 * KiB, got); /* across its end */
    CHECK_STR(got, "DDHH");
    CHECK_EQ(d->ops->trim(d->ctx, 256 * KiB, 256 * KiB, false), 0);
    extents_of(d, 0, 1024 * KiB, got);
    CHECK_STR(got, "DHDD");
    CHECK_EQ(d->ops->zero(d->ctx, 256 * KiB, 512 * KiB, true, false), 0);
    extents_of(d, 0, 1024 * KiB, got);
    CHECK_STR(got, "DHHD");
    CHECK_EQ(d->ops->pwrite(d->ctx, data, 256 * KiB, 1536 * KiB, false), 0);
    extents_of(d, 1024 * KiB, 1024 * KiB, got);
    CHECK_STR(got, "HHDH");
    device_close(d);
}

TEST(device_open_empty_is_a_build)
{
    struct device *d;
    struct device_opts o = {.kind = DEVICE_EMPTY, .size = 64 * KiB, .cache_dir = test_tmpdir()};
    CHECK_EQ(device_open(&o, &d), 0);
    CHECK_EQ(d->size, 64 * KiB);
    CHECK_EQ(d->min_block, 4096);
    CHECK(d->build != NULL);
    CHECK_STR(d->file, "rootfs.ext4");
    uint8_t b[4096], z[4096] = {0};
    memset(b, 1, sizeof b);
    CHECK_EQ(d->ops->pread(d->ctx, b, 4096, 0), 0);
    CHECK_MEM(b, z, 4096);
    struct dev_extent e[4];
    struct dev_extents x = {e, 0, 4, 0};
    CHECK_EQ(d->ops->extents(d->ctx, 64 * KiB, 0, &x), 0);
    CHECK_EQ(x.n, 1);
    CHECK_EQ(e[0].flags, DEV_STATE_HOLE | DEV_STATE_ZERO);
    device_close(d);
}

/* A build's header written under DIR/{ID}/memfile.header, served over the simulated store. */
TEST(device_open_build_from_header_url)
{
    static const snap_uuid B = {{0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}};
    struct hdr_meta m = {.version = 4, .block_size = 4096, .size = 64 * KiB, .build_id = B, .base_build_id = B};
    struct hdr *h;
    CHECK_EQ(hdr_new(&m, &h), 0);
    CHECK_EQ(hdr_append(h, 0, 64 * KiB, &B, 0), 0);
    uint8_t *hb;
    size_t hlen;
    CHECK_EQ(hdr_serialize(h, 4, &hb, &hlen), 0);
    hdr_free(h);
    char dir[512], path[600], url[640];
    snprintf(dir, sizeof dir, "%s/device-build", test_tmpdir());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/memfile.header", dir);
    CHECK_EQ(snap_write_file_atomic(path, hb, hlen, 0644), 0);
    snap_free(hb);
    snprintf(url, sizeof url, "file://%s", path);
    struct store *sim;
    CHECK_EQ(store_sim_open(&(struct sim_opts){.size = 64 * KiB, .seed = 3}, &sim), 0);
    struct device *d;
    struct device_opts o = {.kind = DEVICE_BUILD, .path = url, .store = sim, .file = "memfile",
                            .cache_dir = test_tmpdir()};
    CHECK_EQ(device_open(&o, &d), 0);
    CHECK_EQ(d->size, 64 * KiB);
    CHECK(d->store == sim && d->build != NULL);
    CHECK_STR(d->file, "memfile");
    uint8_t b[4096], want[4096];
    CHECK_EQ(d->ops->pread(d->ctx, b, 4096, 8192), 0);
    store_sim_pattern(3, 8192, want, 4096);
    CHECK_MEM(b, want, 4096);
    device_close(d);
    /* Not a header: the store is closed all the same, and the error names the URL. */
    CHECK_EQ(snap_write_file_atomic(path, "not a header", 12, 0644), 0);
    CHECK_EQ(store_sim_open(&(struct sim_opts){.size = 64 * KiB, .seed = 3}, &o.store), 0);
    int err = device_open(&o, &d);
    CHECK(err == SNAP_EFORMAT || err == SNAP_ECHECK);
    CHECK(strstr(snap_errmsg(err), url) != NULL);
}

TEST(access_stats_json_line)
{
    char *mem = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&mem, &n);
    CHECK(f != NULL);
    struct json j;
    json_init(&j, f);
    struct access_stats s = {.recorded = 9, .trace_blocks = 8, .prefetched = 7, .used = 5, .unused = 2, .missed = 1};
    access_stats_json(&s, true, &j);
    json_finish(&j);
    fclose(f);
    CHECK_STR(mem, "{\"access\":{\"recorded_blocks\":9,\"prefetch\":true,\"trace_blocks\":8,\"prefetched\":7,"
                   "\"used\":5,\"unused\":2,\"missed\":1}}\n");
    free(mem);
}
