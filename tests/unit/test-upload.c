/* lib/upload: part sizing, zero allocations per part (counted around uploads of 4 and 16 parts
 * to a scripted loopback S3), the bytes each part carries, and the file:// copy path. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "crypto/sha256.h"
#include "net-testsrv.h"
#include "store/store.h"
#include "upload/upload.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

TEST(upload_part_size_rules)
{
    const uint64_t M = 1ull << 20;
    CHECK_EQ(upload_part_size(100 * M, 0, 0), 50 * M);
    CHECK_EQ(upload_part_size(100 * M, 5 * M, 0), 5 * M);
    CHECK_EQ(upload_part_size(100 * M, 1 * M, 0), 5 * M); /* never below the minimum */
    /* 1 TiB at 50 MiB would be 20,972 parts: grown to a whole MiB that fits 10,000. */
    uint64_t p = upload_part_size(1ull << 40, 0, 0);
    CHECK(p % M == 0);
    CHECK((((1ull << 40) + p - 1) / p) <= UPLOAD_MAX_PARTS);
    CHECK(p - M < (1ull << 40) / UPLOAD_MAX_PARTS + M);
    CHECK_EQ(upload_part_size(0, 0, 0), 50 * M);
}

static const char create_reply[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 87\r\n\r\n"
    "<InitiateMultipartUploadResult><UploadId>up1</UploadId></InitiateMultipartUploadResult>";
static const char part_reply[] = "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 0\r\n\r\n";
static const char complete_reply[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 81\r\n\r\n"
    "<CompleteMultipartUploadResult><ETag>\"x-4\"</ETag></CompleteMultipartUploadResult>";
static const char copy_reply[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 55\r\n\r\n<CopyObjectResult><ETag>\"x-4\"</ETag></CopyObjectResult>";

static size_t script(struct tsrv_reply *r, size_t n, unsigned parts)
{
    r[n++] = (struct tsrv_reply){create_reply};
    for (unsigned i = 0; i < parts; i++)
        r[n++] = (struct tsrv_reply){part_reply};
    r[n++] = (struct tsrv_reply){complete_reply};
    r[n++] = (struct tsrv_reply){copy_reply};
    return n;
}

static int write_file(const char *path, const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    ssize_t w = write(fd, p, n);
    close(fd);
    return w == (ssize_t)n ? 0 : -1;
}

TEST(upload_no_allocation_per_part)
{
    const size_t ps = 64 * 1024;
    struct tsrv_reply r[64];
    size_t n = script(r, 0, 4);
    n = script(r, n, 4);
    n = script(r, n, 16);
    struct tsrv *srv = tsrv_start("127.0.0.1", r, n, false);
    CHECK(srv);
    char ep[64], f4[512], f16[512];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%u", tsrv_port(srv));
    setenv("AWS_ENDPOINT_URL", ep, 1);
    setenv("AWS_ACCESS_KEY_ID", "AK", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SK", 1);
    struct store *s;
    int err = store_open("s3://bucket/p", NULL, &s);
    unsetenv("AWS_ENDPOINT_URL");
    CHECK_EQ(err, 0);
    uint8_t *data = malloc(16 * ps);
    for (size_t i = 0; i < 16 * ps; i++)
        data[i] = (uint8_t)(i * 7 + i / 4093);
    snprintf(f4, sizeof f4, "%s/up4", test_tmpdir());
    snprintf(f16, sizeof f16, "%s/up16", test_tmpdir());
    CHECK_EQ(write_file(f4, data, 4 * ps), 0);
    CHECK_EQ(write_file(f16, data, 16 * ps), 0);
    struct upload_opts o = {.part_size = ps, .min_part_size = ps, .concurrency = 1};
    struct upload_result res;
    CHECK_EQ(upload_file(s, "k", f4, &o, &res), 0); /* warms the connection and the part response */
    uint64_t a0 = snap_alloc_count();
    CHECK_EQ(upload_file(s, "k", f4, &o, &res), 0);
    uint64_t a4 = snap_alloc_count() - a0;
    CHECK_EQ(res.parts, 4);
    a0 = snap_alloc_count();
    CHECK_EQ(upload_file(s, "k", f16, &o, &res), 0);
    uint64_t a16 = snap_alloc_count() - a0;
    CHECK_EQ(res.parts, 16);
    CHECK_STR(res.etag, "\"x-4\"");
    /* 12 more parts, not one more allocation. */
    CHECK_EQ(a16, a4);
    uint8_t want[32];
    sha256(data, 16 * ps, want);
    CHECK_MEM(res.sha256, want, 32);
    /* The last upload's requests: create, 16 parts each carrying its slice, complete, copy. */
    unsigned base = 2 * 7;
    size_t len;
    const char *rq = tsrv_req(srv, base, &len);
    CHECK(rq && strstr(rq, "POST /bucket/p/k?uploads"));
    for (unsigned i = 0; i < 16; i++) {
        rq = tsrv_req(srv, base + 1 + i, &len);
        char line[64];
        snprintf(line, sizeof line, "PUT /bucket/p/k?partNumber=%u&uploadId=up1 ", i + 1);
        CHECK(rq && strncmp(rq, line, strlen(line)) == 0);
        const char *body = strstr(rq, "\r\n\r\n");
        CHECK(body && (size_t)(rq + len - (body + 4)) == ps);
        CHECK_MEM(body + 4, data + i * ps, ps);
    }
    rq = tsrv_req(srv, base + 18, &len);
    CHECK(rq && strstr(rq, "x-amz-copy-source: /bucket/p/k") && strstr(rq, "x-amz-metadata-directive: REPLACE"));
    char hex[65];
    sha256_hex(data, 16 * ps, hex);
    CHECK(strstr(rq, hex) != NULL);
    CHECK(strstr(rq, "x-amz-copy-source;x-amz-date;x-amz-meta-sha256;x-amz-metadata-directive") != NULL);
    store_close(s);
    tsrv_stop(srv);
    free(data);
}

TEST(upload_file_store_copy)
{
    char dir[512], url[600], src[600];
    snprintf(dir, sizeof dir, "%s/ustore", test_tmpdir());
    CHECK_EQ(mkdir(dir, 0755), 0);
    snprintf(url, sizeof url, "file://%s", dir);
    snprintf(src, sizeof src, "%s/usrc", test_tmpdir());
    size_t n = 3u << 20;
    uint8_t *data = malloc(n), want[32];
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i ^ (i >> 9));
    CHECK_EQ(write_file(src, data, n), 0);
    struct store *s;
    CHECK_EQ(store_open(url, NULL, &s), 0);
    struct upload_result res;
    CHECK_EQ(upload_file(s, "a/b", src, NULL, &res), 0);
    sha256(data, n, want);
    CHECK_MEM(res.sha256, want, 32);
    struct store_info info;
    CHECK_EQ(store_stat(s, "a/b", &info), 0);
    CHECK_EQ(info.size, n);
    CHECK(info.has_sha256);
    CHECK_MEM(info.sha256, want, 32);
    uint8_t *back = malloc(n);
    struct store_read_result rr = {0};
    CHECK_EQ(store_read(s, "a/b", 0, n, back, NULL, NULL, &rr), 0);
    CHECK_MEM(back, data, n);
    struct upload_opts bad = {.part_size = 1 << 20};
    CHECK_ERR(upload_file(s, "a/c", src, &bad, &res), SNAP_EUSAGE, "minimum");
    store_close(s);
    free(data);
    free(back);
}
