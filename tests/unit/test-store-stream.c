/* Unit tests of streamed reads: the object's total size reaches the sink with the first byte
 * (from the response head, or fstat), not only when the read returns -- what lets fetch show a
 * percentage and an ETA while the body is still coming.  (gs://, through the XML API's
 * stream: gs_read_stream_allocates_nothing.) */
#include "test.h"

#include "net-testsrv.h"
#include "store/store.h"


struct seen {
    const struct store_read_result *res;
    uint64_t first_total;  /* res->total_size at the first call */
    size_t calls, bytes;
};

static int seen_sink(void *ctx, const uint8_t *p, size_t n)
{
    (void)p;
    struct seen *s = ctx;
    if (!s->calls++)
        s->first_total = s->res->total_size;
    s->bytes += n;
    return 0;
}

static void check_stream(const char *url, const char *key, uint64_t off, uint64_t want_total, uint64_t want_bytes)
{
    struct store *s;
    CHECK_EQ(store_open(url, NULL, &s), 0);
    struct store_read_result res;
    struct seen sn = {.res = &res};
    CHECK_EQ(store_read_stream(s, key, off, STORE_SIZE_UNKNOWN, seen_sink, &sn, &res), 0);
    CHECK(sn.calls > 0);
    CHECK_EQ(sn.first_total, want_total);
    CHECK_EQ(sn.bytes, want_bytes);
    CHECK_EQ(res.total_size, want_total);
    store_close(s);
}

TEST(store_stream_total_known_at_first_byte_http)
{
    /* A ranged GET answered 206 with Content-Range; the body comes in two pieces with a pause. */
    struct tsrv_reply r[] = {{"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 3-9/10\r\n"
                              "Content-Length: 7\r\n\r\nabc", 0, 0, 50},
                             {NULL}};
    struct tsrv *srv = tsrv_start("127.0.0.1", r, 1, false);
    CHECK(srv != NULL);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", tsrv_port(srv));
    /* The server sends 3 of 7 bytes and closes: the read fails, yet the sink saw the total. */
    struct store *s;
    CHECK_EQ(store_open(url, &(struct store_opts){.max_attempts = 1}, &s), 0);
    struct store_read_result res;
    struct seen sn = {.res = &res};
    CHECK(store_read_stream(s, "obj", 3, STORE_SIZE_UNKNOWN, seen_sink, &sn, &res) != 0);
    CHECK(sn.calls > 0);
    CHECK_EQ(sn.first_total, 10);
    CHECK_EQ(sn.bytes, 3);
    store_close(s);
    tsrv_stop(srv);
}

TEST(store_stream_total_known_at_first_byte_file)
{
    char path[600], url[620];
    snprintf(path, sizeof path, "%s/stream-obj", test_tmpdir());
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    for (int i = 0; i < 3000; i++)
        fputs("0123456789", f);
    fclose(f);
    snprintf(url, sizeof url, "file://%s", test_tmpdir());
    check_stream(url, "stream-obj", 1000, 30000, 29000);
}
