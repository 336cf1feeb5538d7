/* The s3:// backend against a real S3 (Ceph RGW), driven by tests/integration/test-s3-rgw.sh,
 * which starts RGW and sets SNAPCTL_TEST_S3=s3://bucket/prefix.  Without it this test only
 * checks the offline errors. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "crypto/sha256.h"
#include "store/store.h"
#include "store/xmlapi.h"

#include <stdlib.h>

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

TEST(s3_offline_errors)
{
    struct store *s;
    CHECK_ERR(store_open("s3://ab", NULL, &s), SNAP_EUSAGE, "bucket");
}

TEST(s3_rgw_put_get_multipart)
{
    const char *url = getenv("SNAPCTL_TEST_S3");
    if (!url) {
        printf("    (s3_rgw: SNAPCTL_TEST_S3 not set; run tests/integration/test-s3-rgw.sh)\n");
        return;
    }
    struct store *s;
    CHECK_EQ(store_open(url, NULL, &s), 0);
    CHECK(store_can_multipart(s));

    /* put + stat (size, sha256 metadata) + whole and ranged reads */
    size_t n = 3u << 20;
    uint8_t *data = malloc(n), *back = malloc(n), sum[32];
    fill(data, n, 1);
    sha256(data, n, sum);
    struct store_put_opts po = {.sha256 = sum};
    CHECK_EQ(store_put(s, "small.bin", data, n, &po), 0);
    struct store_info info;
    CHECK_EQ(store_stat(s, "small.bin", &info), 0);
    CHECK_EQ(info.size, n);
    CHECK(info.has_sha256);
    CHECK_MEM(info.sha256, sum, 32);
    struct store_read_result res;
    CHECK_EQ(store_read(s, "small.bin", 0, n, back, NULL, NULL, &res), 0);
    CHECK_EQ(res.bytes, n);
    CHECK_MEM(back, data, n);
    CHECK_EQ(store_read(s, "small.bin", 12345, 4096, back, NULL, NULL, &res), 0);
    CHECK_EQ(res.bytes, 4096);
    CHECK_EQ(res.total_size, n);
    CHECK_MEM(back, data + 12345, 4096);
    CHECK_EQ(store_read(s, "small.bin", n - 10, 100, back, NULL, NULL, &res), 0);
    CHECK_EQ(res.bytes, 10);
    CHECK_ERR(store_stat(s, "missing.bin", &info), SNAP_ENOTFOUND, "missing.bin");
    CHECK_EQ(store_put(s, "empty.bin", "", 0, NULL), 0);
    CHECK_EQ(store_stat(s, "empty.bin", &info), 0);
    CHECK_EQ(info.size, 0);

    /* multipart: 5 MiB + 5 MiB + 1 MiB, from one buffer, parts as slices */
    size_t mn = 11u << 20;
    uint8_t *big = malloc(mn);
    fill(big, mn, 2);
    char *id = NULL;
    CHECK_EQ(store_mp_create(s, "multi.bin", NULL, &id), 0);
    struct store_part parts[3];
    size_t offs[4] = {0, 5u << 20, 10u << 20, mn};
    for (uint32_t i = 0; i < 3; i++) {
        parts[i].number = i + 1;
        CHECK_EQ(store_mp_part(s, "multi.bin", id, i + 1, big + offs[i], offs[i + 1] - offs[i], NULL, NULL, parts[i].etag), 0);
    }
    char etag[STORE_ETAG_MAX];
    CHECK_EQ(store_mp_complete(s, "multi.bin", id, parts, 3, etag), 0);
    snap_free(id);
    CHECK_EQ(store_stat(s, "multi.bin", &info), 0);
    CHECK_EQ(info.size, mn);
    CHECK(strstr(info.etag, "-3") != NULL); /* a multipart ETag ends in -N */
    uint8_t *mback = malloc(mn);
    CHECK_EQ(store_read(s, "multi.bin", 0, mn, mback, NULL, NULL, &res), 0);
    CHECK_MEM(mback, big, mn);

    /* set_meta: the sha256 of an object written without it, by a copy onto itself (REPLACE);
     * with the single-copy limit lowered to 5 MiB, the multipart copy (UploadPartCopy) path. */
    CHECK_EQ(store_put(s, "late.bin", data, n, NULL), 0);
    CHECK_EQ(store_stat(s, "late.bin", &info), 0);
    CHECK(!info.has_sha256);
    CHECK_EQ(xapi_set_meta(s, "late.bin", n, &po), 0);
    CHECK_EQ(store_stat(s, "late.bin", &info), 0);
    CHECK(info.has_sha256);
    CHECK_MEM(info.sha256, sum, 32);
    uint8_t msum[32];
    sha256(big, mn, msum);
    struct store_put_opts mpo = {.sha256 = msum};
    ((struct xapi *)s)->copy_max = 5u << 20;
    CHECK_EQ(xapi_set_meta(s, "multi.bin", mn, &mpo), 0);
    CHECK_EQ(store_stat(s, "multi.bin", &info), 0);
    CHECK_EQ(info.size, mn);
    CHECK(info.has_sha256);
    CHECK_MEM(info.sha256, msum, 32);
    memset(mback, 0, mn);
    CHECK_EQ(store_read(s, "multi.bin", 0, mn, mback, NULL, NULL, &res), 0);
    CHECK_MEM(mback, big, mn);

    /* a too-small part is refused at complete, and an abort leaves nothing behind */
    CHECK_EQ(store_mp_create(s, "aborted.bin", NULL, &id), 0);
    CHECK_EQ(store_mp_part(s, "aborted.bin", id, 1, big, 1 << 20, NULL, NULL, parts[0].etag), 0);
    CHECK_EQ(store_mp_part(s, "aborted.bin", id, 2, big, 1 << 20, NULL, NULL, parts[1].etag), 0);
    parts[0].number = 1;
    parts[1].number = 2;
    int e = store_mp_complete(s, "aborted.bin", id, parts, 2, etag);
    CHECK(e != 0);
    CHECK(strstr(snap_errmsg(e), "EntityTooSmall") != NULL);
    CHECK_EQ(store_mp_abort(s, "aborted.bin", id), 0);
    snap_free(id);
    CHECK_ERR(store_stat(s, "aborted.bin", &info), SNAP_ENOTFOUND, "aborted.bin");
    free(data);
    free(back);
    free(big);
    free(mback);
    store_close(s);
}
