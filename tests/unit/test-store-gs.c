/* gs://: the token cache (clock, refresh before expiry, 401, failures, threads, no allocation on
 * a cached token), the token-answer parser, HMAC SigV4 requests as sent, and -- when
 * tests/integration/test-gs.sh sets SNAPCTL_TEST_GS against the faultserver with a service-account
 * key -- put, stat with sha256, ranged reads and the multipart calls through store_*. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "crypto/sha256.h"
#include "net-testsrv.h"
#include "store/gauth.h"
#include "store/store.h"
#include "store/xmlapi.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- token cache --------------------------------------------------------------------------- */

struct fake {
    int64_t now;
    int64_t ttl;
    atomic_int fetches;
    int fail;            /* the next fetches fail */
    unsigned delay_ms;   /* a slow token endpoint */
};

static int64_t fake_now(void *ctx) { return ((struct fake *)ctx)->now; }

static int fake_fetch(void *ctx, char *token, size_t cap, int64_t *expires_in)
{
    struct fake *f = ctx;
    if (f->delay_ms)
        usleep(f->delay_ms * 1000);
    int n = atomic_fetch_add(&f->fetches, 1) + 1;
    if (f->fail)
        return snap_fail(SNAP_EAUTH, "token endpoint down");
    snprintf(token, cap, "tok-%d", n);
    *expires_in = f->ttl;
    return 0;
}

TEST(gauth_cache_refreshes_before_expiry)
{
    struct fake f = {.now = 1000, .ttl = 3600};
    struct gauth *g;
    CHECK_EQ(gauth_new_custom(fake_fetch, &f, fake_now, &f, &g), 0);
    char tok[GAUTH_TOKEN_MAX];
    uint64_t gen, gen2;
    CHECK_EQ(gauth_get(g, tok, sizeof tok, &gen), 0);
    CHECK_STR(tok, "tok-1");
    /* Reused until 225 s before expiry, without allocating. */
    f.now = 1000 + 3600 - 226;
    uint64_t a0 = snap_alloc_count();
    for (int i = 0; i < 100; i++)
        CHECK_EQ(gauth_get(g, tok, sizeof tok, &gen2), 0);
    CHECK_EQ(snap_alloc_count() - a0, 0);
    CHECK_EQ(gen2, gen);
    CHECK_EQ(atomic_load(&f.fetches), 1);
    f.now += 1; /* inside the margin: a new one */
    CHECK_EQ(gauth_get(g, tok, sizeof tok, &gen2), 0);
    CHECK_STR(tok, "tok-2");
    CHECK(gen2 != gen);
    /* A short-lived token is kept for three quarters of its life. */
    f.ttl = 8;
    f.now += 10000;
    CHECK_EQ(gauth_get(g, tok, sizeof tok, &gen), 0);
    CHECK_STR(tok, "tok-3");
    f.now += 5;
    CHECK_EQ(gauth_get(g, tok, sizeof tok, &gen), 0);
    CHECK_STR(tok, "tok-3");
    f.now += 1;
    CHECK_EQ(gauth_get(g, tok, sizeof tok, &gen), 0);
    CHECK_STR(tok, "tok-4");
    CHECK_EQ(gauth_fetches(g), 4);
    gauth_free(g);
}

TEST(gauth_cache_refused_and_failures)
{
    struct fake f = {.now = 50, .ttl = 3600};
    struct gauth *g;
    CHECK_EQ(gauth_new_custom(fake_fetch, &f, fake_now, &f, &g), 0);
    char tok[GAUTH_TOKEN_MAX];
    uint64_t g1, g2, g3;
    CHECK_EQ(gauth_get(g, tok, sizeof tok, &g1), 0);
    /* A 401 on the current token: the next get fetches. */
    CHECK_EQ(gauth_refused(g, g1), 0);
    CHECK_EQ(gauth_get(g, tok, sizeof tok, &g2), 0);
    CHECK_STR(tok, "tok-2");
    /* A late 401 for the old token (another thread's) does not throw away the new one. */
    CHECK_EQ(gauth_refused(g, g1), 0);
    CHECK_EQ(gauth_get(g, tok, sizeof tok, &g3), 0);
    CHECK_EQ(g3, g2);
    CHECK_EQ(atomic_load(&f.fetches), 2);
    /* The endpoint fails inside the margin: the token still valid is used. */
    f.fail = 1;
    f.now += 3600 - 100;
    CHECK_EQ(gauth_get(g, tok, sizeof tok, &g3), 0);
    CHECK_STR(tok, "tok-2");
    /* ... but not once it has expired, nor once it was refused. */
    f.now += 200;
    CHECK_ERR(gauth_get(g, tok, sizeof tok, &g3), SNAP_EAUTH, "token endpoint down");
    f.now -= 200;
    CHECK_EQ(gauth_refused(g, g2), 0);
    CHECK_ERR(gauth_get(g, tok, sizeof tok, &g3), SNAP_EAUTH, "token endpoint down");
    f.fail = 0;
    CHECK_EQ(gauth_get(g, tok, sizeof tok, &g3), 0);
    CHECK(g3 != g2);
    /* Too small a buffer is an error, not a truncated token. */
    CHECK_ERR(gauth_get(g, tok, 3, &g3), SNAP_ETOOBIG, "access token");
    gauth_free(g);

    /* A static token is never refreshed: a 401 is final. */
    CHECK_EQ(gauth_new_static("ya29.abc", "GOOGLE_OAUTH_ACCESS_TOKEN", &g), 0);
    CHECK_EQ(gauth_get(g, tok, sizeof tok, &g1), 0);
    CHECK_STR(tok, "ya29.abc");
    CHECK_ERR(gauth_refused(g, g1), SNAP_EAUTH, "GOOGLE_OAUTH_ACCESS_TOKEN");
    gauth_free(g);
    CHECK_ERR(gauth_new_static("bad token", "GOOGLE_OAUTH_ACCESS_TOKEN", &g), SNAP_EAUTH, "not an access token");
}

struct race {
    struct gauth *g;
    char tok[GAUTH_TOKEN_MAX];
    int err;
};

static void *race_get(void *arg)
{
    struct race *r = arg;
    uint64_t gen;
    r->err = gauth_get(r->g, r->tok, sizeof r->tok, &gen);
    return NULL;
}

TEST(gauth_cache_one_fetch_for_many_threads)
{
    struct fake f = {.now = 7, .ttl = 3600, .delay_ms = 50};
    struct gauth *g;
    CHECK_EQ(gauth_new_custom(fake_fetch, &f, fake_now, &f, &g), 0);
    enum { N = 16 };
    struct race r[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        r[i] = (struct race){.g = g};
        CHECK_EQ(pthread_create(&t[i], NULL, race_get, &r[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(r[i].err, 0);
        CHECK_STR(r[i].tok, "tok-1");
    }
    CHECK_EQ(atomic_load(&f.fetches), 1);
    gauth_free(g);
}

TEST(gauth_parse_token_answers)
{
    char tok[64];
    int64_t ttl;
    const char *ok = "{\"access_token\":\"ya29.a0-_~+/=\",\"expires_in\":3599,\"token_type\":\"Bearer\"}";
    CHECK_EQ(gauth_parse_token(ok, strlen(ok), tok, sizeof tok, &ttl), 0);
    CHECK_STR(tok, "ya29.a0-_~+/=");
    CHECK_EQ(ttl, 3599);
    const char *nottl = "{\"access_token\":\"t\"}";
    CHECK_EQ(gauth_parse_token(nottl, strlen(nottl), tok, sizeof tok, &ttl), 0);
    CHECK_EQ(ttl, 300);
    const char *e = "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}";
    CHECK_ERR(gauth_parse_token(e, strlen(e), tok, sizeof tok, &ttl), SNAP_EAUTH, "invalid_grant: Invalid JWT");
    static const struct {
        const char *body, *msg;
    } bad[] = {
        {"{\"access_token\":\"a b\"}", "visible ASCII"},
        {"{\"access_token\":\"a\\nb\"}", "visible ASCII"},
        {"{\"access_token\":\"\"}", "visible ASCII"},
        {"{\"access_token\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", "not 1..63 visible"},
        {"{\"access_token\":\"a\",\"expires_in\":0}", "expires_in 0"},
        {"{\"access_token\":\"a\",\"expires_in\":\"3600\"}", "expires_in"},
        {"{\"access_token\":\"a\",\"expires_in\":1e3}", "expires_in"},
        {"{\"access_token\":\"a\",\"token_type\":\"MAC\"}", "Bearer"},
        {"{\"expires_in\":5}", "access_token"},
        {"[\"access_token\"]", "not an object"},
        {"{\"access_token\":\"a\"", "not JSON"},
        {"", "not JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int err = gauth_parse_token(bad[i].body, strlen(bad[i].body), tok, sizeof tok, &ttl);
        if (err == 0 || !strstr(snap_errmsg(err), bad[i].msg)) {
            test_failed(__FILE__, __LINE__, "%s: %d %s", bad[i].body, err, snap_errmsg(err));
            return;
        }
    }
}

/* ---- HMAC keys: SigV4 with region auto, the metadata header signed ------------------------- */

TEST(gs_hmac_sigv4_request)
{
    struct tsrv_reply r[] = {{"HTTP/1.1 200 OK\r\nETag: \"x\"\r\nContent-Length: 0\r\n\r\n"}};
    struct tsrv *srv = tsrv_start("127.0.0.1", r, 1, false);
    CHECK(srv != NULL);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%u", tsrv_port(srv));
    setenv("SNAPCTL_GCS_ENDPOINT", ep, 1);
    setenv("GCS_HMAC_ACCESS_ID", "GOOGTS7C7FUP3AIRVJTE2BCD", 1);
    setenv("GCS_HMAC_SECRET", "bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ", 1);
    unsetenv("GOOGLE_OAUTH_ACCESS_TOKEN");
    struct store *s;
    int err = store_open("gs://my-bucket/dir", NULL, &s);
    unsetenv("GCS_HMAC_ACCESS_ID");
    unsetenv("GCS_HMAC_SECRET");
    unsetenv("SNAPCTL_GCS_ENDPOINT");
    CHECK_EQ(err, 0);
    uint8_t sum[32];
    sha256("hi", 2, sum);
    struct store_put_opts po = {.sha256 = sum};
    CHECK_EQ(store_put(s, "a b.bin", "hi", 2, &po), 0);
    store_close(s);
    size_t n;
    const char *req = tsrv_req(srv, 0, &n);
    CHECK(req != NULL);
    CHECK(strncmp(req, "PUT /my-bucket/dir/a%20b.bin HTTP/1.1\r\n", 39) == 0);
    CHECK(strstr(req, "Authorization: AWS4-HMAC-SHA256 Credential=GOOGTS7C7FUP3AIRVJTE2BCD/") != NULL);
    CHECK(strstr(req, "/auto/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date;"
                      "x-goog-meta-sha256,Signature=") != NULL);
    CHECK(strstr(req, "x-goog-meta-sha256: 8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4") != NULL);
    CHECK(strstr(req, "x-amz-content-sha256: UNSIGNED-PAYLOAD") != NULL);
    tsrv_stop(srv);
}

/* ---- the read path allocates nothing once warm ------------------------------------------- */

/* gs://bkt/p on the test server, with a fixed access token. */
static int gs_open_at(struct tsrv *srv, struct store **s)
{
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%u", tsrv_port(srv));
    setenv("SNAPCTL_GCS_ENDPOINT", ep, 1);
    setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.test", 1);
    int err = store_open("gs://bkt/p", NULL, s);
    unsetenv("GOOGLE_OAUTH_ACCESS_TOKEN");
    unsetenv("SNAPCTL_GCS_ENDPOINT");
    return err;
}

TEST(gs_read_allocates_nothing)
{
    struct tsrv_reply r[] = {{"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-5/10\r\n"
                              "Content-Length: 4\r\nx-goog-meta-sha256: 00\r\n\r\nabcd"}};
    struct tsrv *srv = tsrv_start("127.0.0.1", r, 1, true);
    CHECK(srv != NULL);
    struct store *s;
    CHECK_EQ(gs_open_at(srv, &s), 0);
    uint8_t buf[4];
    struct store_read_result res;
    CHECK_EQ(store_read(s, "obj", 2, 4, buf, NULL, NULL, &res), 0); /* warm: connection, response */
    uint64_t before = snap_alloc_count();
    for (int i = 0; i < 50; i++) {
        CHECK_EQ(store_read(s, "obj", 2, 4, buf, NULL, NULL, &res), 0);
        CHECK_EQ(res.bytes, 4);
        CHECK_EQ(res.total_size, 10);
    }
    CHECK_EQ(snap_alloc_count() - before, 0);
    CHECK_MEM(buf, "abcd", 4);
    size_t n;
    const char *req = tsrv_req(srv, 1, &n);
    CHECK(req && strstr(req, "GET /bkt/p/obj HTTP/1.1\r\n") == req);
    CHECK(strstr(req, "\r\nAuthorization: Bearer ya29.test\r\n") != NULL);
    CHECK(strstr(req, "\r\nRange: bytes=2-5\r\n") != NULL);
    store_close(s);
    tsrv_stop(srv);
}

struct counted {
    size_t got;
    const struct store_read_result *res;
    uint64_t total_at_first_byte;
};

static int count_sink(void *ctx, const uint8_t *p, size_t n)
{
    (void)p;
    struct counted *c = ctx;
    if (!c->got)
        c->total_at_first_byte = c->res->total_size;
    c->got += n;
    return 0;
}

/* The fetch threads' path: a warm streamed read (its 256 KiB receive buffer is the thread's
 * own, kept between reads) allocates nothing.  The sink sees the object's size from the
 * response head with its first byte (fetch's percentage). */
TEST(gs_read_stream_allocates_nothing)
{
    struct tsrv_reply r[] = {{"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-5/10\r\n"
                              "Content-Length: 4\r\n\r\nabcd"}};
    struct tsrv *srv = tsrv_start("127.0.0.1", r, 1, true);
    CHECK(srv != NULL);
    struct store *s;
    CHECK_EQ(gs_open_at(srv, &s), 0);
    struct store_read_result res;
    struct counted c = {.res = &res};
    CHECK_EQ(store_read_stream(s, "obj", 2, 4, count_sink, &c, &res), 0); /* warm */
    CHECK_EQ(c.total_at_first_byte, 10);
    uint64_t before = snap_alloc_count();
    for (int i = 0; i < 50; i++)
        CHECK_EQ(store_read_stream(s, "obj", 2, 4, count_sink, &c, &res), 0);
    CHECK_EQ(snap_alloc_count() - before, 0);
    CHECK_EQ(c.got, 51 * 4);
    store_close(s);
    tsrv_stop(srv);
}

TEST(gs_part_upload_allocates_nothing)
{
    struct tsrv_reply r[] = {{"HTTP/1.1 200 OK\r\nETag: \"0123\"\r\nContent-Length: 0\r\n\r\n"}};
    struct tsrv *srv = tsrv_start("127.0.0.1", r, 1, true);
    CHECK(srv != NULL);
    struct store *s;
    CHECK_EQ(gs_open_at(srv, &s), 0);
    static uint8_t part[64 << 10];
    char etag[STORE_ETAG_MAX];
    CHECK_EQ(store_mp_part(s, "obj", "up-1", 1, part, sizeof part, NULL, NULL, etag), 0);
    uint64_t before = snap_alloc_count();
    for (uint32_t i = 2; i < 22; i++)
        CHECK_EQ(store_mp_part(s, "obj", "up-1", i, part, sizeof part, NULL, NULL, etag), 0);
    CHECK_EQ(snap_alloc_count() - before, 0);
    CHECK_STR(etag, "\"0123\"");
    const char *req = tsrv_req(srv, 5, NULL);
    CHECK(req && strncmp(req, "PUT /bkt/p/obj?partNumber=6&uploadId=up-1 HTTP/1.1\r\n", 52) == 0);
    store_close(s);
    tsrv_stop(srv);
}

/* ---- against the faultserver (tests/integration/test-gs.sh) -------------------------------- */

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

TEST(gs_faultserver_put_get_multipart)
{
    const char *url = getenv("SNAPCTL_TEST_GS");
    if (!url) {
        printf("    (gs_faultserver: SNAPCTL_TEST_GS not set; run tests/integration/test-gs.sh)\n");
        return;
    }
    struct store *s;
    CHECK_EQ(store_open(url, NULL, &s), 0);
    CHECK(store_can_multipart(s));

    size_t n = 300000;
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
    CHECK_EQ(store_read(s, "small.bin", 1000, 4096, back, NULL, NULL, &res), 0);
    CHECK_EQ(res.bytes, 4096);
    CHECK_EQ(res.total_size, n);
    CHECK_MEM(back, data + 1000, 4096);
    CHECK_EQ(store_read(s, "small.bin", n - 10, 100, back, NULL, NULL, &res), 0);
    CHECK_EQ(res.bytes, 10);
    CHECK_ERR(store_stat(s, "missing.bin", &info), SNAP_ENOTFOUND, "missing.bin");

    /* Multipart (the faultserver runs with --min-part-size 65536): 3 parts, with metadata. */
    size_t mn = 3 * 65536 + 1234;
    uint8_t *big = malloc(mn), *mback = malloc(mn), msum[32];
    fill(big, mn, 2);
    sha256(big, mn, msum);
    struct store_put_opts mpo = {.sha256 = msum};
    char *id = NULL;
    CHECK_EQ(store_mp_create(s, "multi.bin", &mpo, &id), 0);
    struct store_part parts[3];
    size_t offs[4] = {0, 65536, 2 * 65536, mn};
    for (uint32_t i = 0; i < 3; i++) {
        parts[i].number = i + 1;
        CHECK_EQ(store_mp_part(s, "multi.bin", id, i + 1, big + offs[i], offs[i + 1] - offs[i], NULL, NULL, parts[i].etag), 0);
    }
    char etag[STORE_ETAG_MAX];
    CHECK_EQ(store_mp_complete(s, "multi.bin", id, parts, 3, etag), 0);
    CHECK(strstr(etag, "-3") != NULL);
    snap_free(id);
    CHECK_EQ(store_stat(s, "multi.bin", &info), 0);
    CHECK_EQ(info.size, mn);
    CHECK(info.has_sha256);
    CHECK_MEM(info.sha256, msum, 32);
    CHECK_EQ(store_read(s, "multi.bin", 0, mn, mback, NULL, NULL, &res), 0);
    CHECK_MEM(mback, big, mn);

    /* Too small a part is refused at complete; abort leaves nothing; a second abort is 404. */
    CHECK_EQ(store_mp_create(s, "aborted.bin", NULL, &id), 0);
    CHECK_EQ(store_mp_part(s, "aborted.bin", id, 1, big, 1000, NULL, NULL, parts[0].etag), 0);
    CHECK_EQ(store_mp_part(s, "aborted.bin", id, 2, big, 1000, NULL, NULL, parts[1].etag), 0);
    int e = store_mp_complete(s, "aborted.bin", id, parts, 2, etag);
    CHECK(e != 0);
    CHECK(strstr(snap_errmsg(e), "EntityTooSmall") != NULL);
    CHECK_EQ(store_mp_abort(s, "aborted.bin", id), 0);
    CHECK_ERR(store_mp_abort(s, "aborted.bin", id), SNAP_ENOTFOUND, "NoSuchUpload");
    snap_free(id);
    CHECK_ERR(store_stat(s, "aborted.bin", &info), SNAP_ENOTFOUND, "aborted.bin");

    /* set_meta (for an upload whose hash is known at its end): a copy onto itself with
     * x-goog-metadata-directive REPLACE; the data stays, the sha256 is the new one.  Needs a
     * faultserver that copies (test-gs.sh sets SNAPCTL_TEST_COPY when it does). */
    const char *copy = getenv("SNAPCTL_TEST_COPY");
    if (copy && *copy) {
        CHECK_EQ(store_put(s, "late.bin", data, n, NULL), 0);
        CHECK_EQ(store_stat(s, "late.bin", &info), 0);
        CHECK(!info.has_sha256);
        CHECK_EQ(xapi_set_meta(s, "late.bin", n, &po), 0);
        CHECK_EQ(store_stat(s, "late.bin", &info), 0);
        CHECK(info.has_sha256);
        CHECK_MEM(info.sha256, sum, 32);
        CHECK_EQ(info.size, n);
        CHECK_EQ(store_read(s, "late.bin", 0, n, back, NULL, NULL, &res), 0);
        CHECK_MEM(back, data, n);
        CHECK_ERR(xapi_set_meta(s, "nope.bin", 1, &po), SNAP_ENOTFOUND, "nope.bin");
        printf("    set_meta: metadata replaced by a copy onto itself\n");
    }
    free(data);
    free(back);
    free(big);
    free(mback);
    store_close(s);
}
