/* Unit tests of the storage interface on the file:// backend. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static int count_progress(void *ctx, uint64_t done)
{
    uint64_t *last = ctx;
    if (done <= *last)
        return -1; /* must be monotonic */
    *last = done;
    return 0;
}

static int cancel_progress(void *ctx, uint64_t done)
{
    (void)ctx;
    return done > 0;
}

TEST(store_file_put_read_stat)
{
    char url[600];
    snprintf(url, sizeof url, "file://%s", test_tmpdir());
    struct store *s;
    CHECK_EQ(store_open(url, NULL, &s), 0);
    CHECK(store_can_write(s));
    CHECK(!store_can_multipart(s));

    size_t n = 3u << 20;
    uint8_t *data = malloc(n), *back = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 7 + (i >> 12));
    uint8_t sum[32];
    memset(sum, 0xab, sizeof sum);
    struct store_put_opts po = {.sha256 = sum};
    CHECK_EQ(store_put(s, "b1/sub/memfile", data, n, &po), 0);

    struct store_info info;
    CHECK_EQ(store_stat(s, "b1/sub/memfile", &info), 0);
    CHECK_EQ(info.size, n);
    CHECK(info.has_sha256);
    CHECK_MEM(info.sha256, sum, 32);

    /* A ranged read lands in the caller's buffer, reports progress and the total size. */
    struct store_read_result res;
    uint64_t last = 0;
    CHECK_EQ(store_read(s, "b1/sub/memfile", 4096, 2u << 20, back, count_progress, &last, &res), 0);
    CHECK_EQ(res.bytes, 2u << 20);
    CHECK_EQ(res.total_size, n);
    CHECK_EQ(last, 2u << 20);
    CHECK_MEM(back, data + 4096, 2u << 20);

    /* Past the end: short at the end, an error beyond it. */
    CHECK_EQ(store_read(s, "b1/sub/memfile", n - 10, 100, back, NULL, NULL, &res), 0);
    CHECK_EQ(res.bytes, 10);
    CHECK_MEM(back, data + n - 10, 10);
    CHECK_ERR(store_read(s, "b1/sub/memfile", n + 1, 1, back, NULL, NULL, &res), SNAP_ERANGE, "past the end");
    CHECK_ERR(store_read(s, "b1/sub/memfile", 0, n, back, cancel_progress, NULL, &res), SNAP_ECANCELED,
              "canceled");
    CHECK_ERR(store_stat(s, "b1/nope", &info), SNAP_ENOTFOUND, "b1/nope");

    /* Zero-byte objects are ordinary. */
    CHECK_EQ(store_put(s, "empty", "", 0, NULL), 0);
    CHECK_EQ(store_stat(s, "empty", &info), 0);
    CHECK_EQ(info.size, 0);
    CHECK(!info.has_sha256);
    CHECK_EQ(store_read(s, "empty", 0, 10, back, NULL, NULL, &res), 0);
    CHECK_EQ(res.bytes, 0);
    free(data);
    free(back);
    store_close(s);
}

TEST(store_key_checks)
{
    char url[600];
    snprintf(url, sizeof url, "file://%s", test_tmpdir());
    struct store *s;
    CHECK_EQ(store_open(url, NULL, &s), 0);
    struct store_info info;
    CHECK_ERR(store_stat(s, "../etc/passwd", &info), SNAP_EUSAGE, "'..'");
    CHECK_ERR(store_stat(s, "a/../../x", &info), SNAP_EUSAGE, "'..'");
    CHECK_ERR(store_stat(s, "/etc/passwd", &info), SNAP_EUSAGE, "empty");
    CHECK_ERR(store_stat(s, "a//b", &info), SNAP_EUSAGE, "empty");
    CHECK_ERR(store_stat(s, "a/./b", &info), SNAP_EUSAGE, "'.'");
    CHECK_ERR(store_stat(s, "", &info), SNAP_EUSAGE, "key");
    CHECK_ERR(store_stat(s, "a\nb", &info), SNAP_EUSAGE, "control");
    CHECK_ERR(store_put(s, "x/..", "", 0, NULL), SNAP_EUSAGE, "'..'");
    store_close(s);
}

TEST(store_open_errors)
{
    struct store *s;
    CHECK_ERR(store_open("/just/a/path", NULL, &s), SNAP_EUSAGE, "not a store URL");
    CHECK_ERR(store_open("ftp://x/y", NULL, &s), SNAP_ENOTSUP, "ftp://x/y");
    CHECK_ERR(store_open("file://relative", NULL, &s), SNAP_EUSAGE, "absolute path");
    CHECK_ERR(store_open("file:///nonexistent-dir-xyz", NULL, &s), SNAP_ENOTFOUND, "nonexistent-dir-xyz");
}

struct put_watch {
    uint64_t last, cancel_at; /* cancel at the first report >= cancel_at (0 = never) */
    unsigned calls;
};

static int put_watch(void *ctx, uint64_t done)
{
    struct put_watch *w = ctx;
    if (done < w->last)
        return -1;
    w->last = done;
    w->calls++;
    return w->cancel_at && done >= w->cancel_at;
}

/* put_file reports each 16 MiB step and the commit; a cancel, even at the commit, leaves the
 * existing object and its sha256 sidecar as they were and no temp file behind. */
TEST(store_file_put_file_progress_and_cancel)
{
    char url[600], src[600];
    snprintf(url, sizeof url, "file://%s", test_tmpdir());
    snprintf(src, sizeof src, "%s/pf-src", test_tmpdir());
    struct store *s;
    CHECK_EQ(store_open(url, NULL, &s), 0);
    uint8_t sum[32];
    memset(sum, 0x5a, sizeof sum);
    CHECK_EQ(store_put(s, "pf/obj", "old", 3, &(struct store_put_opts){.sha256 = sum}), 0);
    int fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(ftruncate(fd, 40 << 20), 0);

    struct put_watch w = {.cancel_at = 16 << 20};
    struct store_put_opts po = {.progress = put_watch, .progress_ctx = &w};
    CHECK_EQ(store_put_file(s, "pf/obj", fd, 40 << 20, &po), SNAP_ECANCELED);
    w = (struct put_watch){.cancel_at = 40 << 20}; /* at the commit */
    CHECK_EQ(store_put_file(s, "pf/obj", fd, 40 << 20, &po), SNAP_ECANCELED);
    CHECK_EQ(w.calls, 3); /* 16 MiB, 32 MiB, then the commit */
    struct store_info info;
    CHECK_EQ(store_stat(s, "pf/obj", &info), 0);
    CHECK_EQ(info.size, 3);
    CHECK(info.has_sha256);
    CHECK_MEM(info.sha256, sum, 32);
    char dir[620];
    snprintf(dir, sizeof dir, "%s/pf", test_tmpdir());
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    struct dirent *e;
    unsigned n = 0;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    CHECK_EQ(n, 2); /* obj and obj.sha256: no temp file */

    w = (struct put_watch){0};
    CHECK_EQ(store_put_file(s, "pf/obj", fd, 40 << 20, &po), 0);
    CHECK_EQ(w.last, 40 << 20);
    CHECK_EQ(store_stat(s, "pf/obj", &info), 0);
    CHECK_EQ(info.size, 40 << 20);
    CHECK(!info.has_sha256); /* no sha256 given: the old one is gone */
    close(fd);
    unlink(src);
    store_close(s);
}
