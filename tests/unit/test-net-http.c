/* Unit tests of lib/net/http against the scripted loopback server: exact requests, bodies both
 * ways, keep-alive, stale pooled connections, 1xx, sinks, allocation-free hot path. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "net-http-fixture.h"
#include "net/http.h"

#include <pthread.h>
#include <stdlib.h>

#define UA "User-Agent: snapctl/" SNAPCTL_VERSION "\r\n"

/* A request as the server must have seen it. */
static const char *want_req(char *buf, size_t len, const char *line, uint16_t port, const char *rest)
{
    snprintf(buf, len, "%s\r\nHost: 127.0.0.1:%u\r\n" UA "%s\r\n", line, (unsigned)port, rest);
    return buf;
}

TEST(net_http_get_collect_exact_request)
{
    static const struct tsrv_reply r[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"e1\"\r\n\r\nhello"},
    };
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 1, false, NULL, "/a/b?x=1"), 0);
    struct http_hdrs h;
    http_hdrs_init(&h);
    CHECK_EQ(http_hdrs_add(&h, "X-Test", "1"), 0);
    struct http_request rq = {.method = "GET", .url = &f.u, .headers = &h};
    CHECK_EQ(http_do(f.c, &rq, &f.rs), 0);
    CHECK_EQ(f.rs.status, 200);
    CHECK_EQ(f.rs.body.len, 5);
    CHECK_STR((char *)f.rs.body.data, "hello");
    CHECK_EQ(f.rs.bytes, 5);
    CHECK_EQ(f.rs.total_size, 5);
    CHECK_EQ(f.rs.attempts, 1);
    CHECK_STR(http_head_get(&f.rs.head, "etag"), "\"e1\"");
    char want[512];
    CHECK_STR(tsrv_req(f.s, 0, NULL),
              want_req(want, sizeof want, "GET /a/b?x=1 HTTP/1.1", tsrv_port(f.s), "X-Test: 1\r\n"));
    hfx_stop(&f);
}

TEST(net_http_keepalive_reuse)
{
    static const struct tsrv_reply r[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nc", .close = true},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nd"},
    };
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 4, false, NULL, "/k"), 0);
    struct http_request rq = {.method = "GET", .url = &f.u};
    const char *want = "abcd";
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(http_do(f.c, &rq, &f.rs), 0);
        CHECK_EQ(f.rs.body.len, 1);
        CHECK_EQ(f.rs.body.data[0], want[i]);
    }
    /* Three on the first connection; "Connection: close" forced a second. */
    CHECK_EQ(tsrv_conns(f.s), 2);
    struct http_stats st;
    http_client_stats(f.c, &st);
    CHECK_EQ(st.connects, 2);
    CHECK_EQ(st.reused, 2);
    CHECK_EQ(st.requests, 4);
    CHECK_EQ(st.stale, 0);
    hfx_stop(&f);
}

TEST(net_http_stale_pooled_connection_retried_at_once)
{
    static const struct tsrv_reply r[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
        {NULL, .close = true}, /* reads the request, closes without a byte */
        {"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"},
    };
    /* One attempt only: the stale retry must not count as a retry. */
    struct http_opts o = {.retry = {.max_attempts = 1}};
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 3, false, &o, "/obj"), 0);
    /* A POST (not idempotent) is still repeated: the server never saw it processed. */
    struct http_request rq = {.method = "POST", .url = &f.u, .body = "xyz", .body_len = 3};
    CHECK_EQ(http_do(f.c, &rq, &f.rs), 0);
    CHECK_EQ(http_do(f.c, &rq, &f.rs), 0);
    CHECK_EQ(f.rs.status, 201);
    CHECK_EQ(f.rs.attempts, 1);
    CHECK_EQ(tsrv_conns(f.s), 2);
    CHECK_EQ(tsrv_nreq(f.s), 3);
    CHECK_STR(tsrv_req(f.s, 1, NULL), tsrv_req(f.s, 2, NULL));
    struct http_stats st;
    http_client_stats(f.c, &st);
    CHECK_EQ(st.stale, 1);
    CHECK_EQ(st.connects, 2);
    CHECK_EQ(st.retries, 0);
    hfx_stop(&f);
}

TEST(net_http_closed_idle_connection_not_reused)
{
    /* The server closes after answering "keep-alive": the pool sees it before sending. */
    static const struct tsrv_reply r[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1", .close = true},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2"},
    };
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 2, false, NULL, "/"), 0);
    struct http_request rq = {.method = "GET", .url = &f.u};
    CHECK_EQ(http_do(f.c, &rq, &f.rs), 0);
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL); /* let the FIN arrive */
    CHECK_EQ(http_do(f.c, &rq, &f.rs), 0);
    CHECK_STR((char *)f.rs.body.data, "2");
    struct http_stats st;
    http_client_stats(f.c, &st);
    CHECK_EQ(st.connects, 2);
    CHECK_EQ(st.reused, 0);
    CHECK_EQ(st.stale, 0);
    hfx_stop(&f);
}

static int collect_cb(void *ctx, const void *p, size_t n)
{
    char *out = ctx;
    size_t l = strlen(out);
    memcpy(out + l, p, n);
    out[l + n] = '\0';
    return 0;
}

TEST(net_http_chunked_and_1xx)
{
    static const struct tsrv_reply r[] = {
        {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"},
    };
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 3, false, NULL, "/c"), 0);
    struct http_request rq = {.method = "GET", .url = &f.u};
    CHECK_EQ(http_do(f.c, &rq, &f.rs), 0);
    CHECK_EQ(f.rs.status, 200);
    CHECK_EQ(f.rs.body.len, 23);
    CHECK_STR((char *)f.rs.body.data, "Wikipedia in\r\n\r\nchunks.");
    CHECK_EQ(f.rs.total_size, HTTP_SIZE_UNKNOWN);
    /* Into a buffer, and through a callback: same bytes, same connection. */
    char buf[16] = {0};
    struct http_request rb = {.method = "GET", .url = &f.u, .sink = HTTP_SINK_BUFFER, .dst = buf, .dst_len = 16};
    CHECK_EQ(http_do(f.c, &rb, &f.rs), 0);
    CHECK_EQ(f.rs.bytes, 6);
    CHECK_MEM(buf, "abcdef", 7);
    char got[64] = "";
    struct http_request rc = {.method = "GET", .url = &f.u, .sink = HTTP_SINK_CALLBACK, .data_fn = collect_cb,
                              .data_ctx = got};
    CHECK_EQ(http_do(f.c, &rc, &f.rs), 0);
    CHECK_STR(got, "abcdef");
    CHECK_EQ(tsrv_conns(f.s), 1);
    hfx_stop(&f);
}

TEST(net_http_body_errors_short_lying_toobig)
{
    static const struct tsrv_reply r[] = {
        /* Truncated: 3 of 10 bytes, then the server closes. */
        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", .close = true},
        /* Lying: more bytes than Content-Length; the client takes 3 and drops the connection. */
        {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdefgh"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
        /* Chunked, cut inside a chunk. */
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", .close = true},
        /* Larger than the buffer. */
        {"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n123456789"},
        /* Larger than the collect cap. */
        {"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n123456789"},
        /* Bad framing. */
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
    };
    struct http_opts o = {.retry = {.max_attempts = 1}};
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 7, false, &o, "/t"), 0);
    struct http_request rq = {.method = "GET", .url = &f.u};
    char msg[300];
    const char *msgp = msg;
    snprintf(msg, sizeof msg, "GET http://127.0.0.1:%u/t: connection closed 7 bytes before the end of the 10-byte body",
             (unsigned)tsrv_port(f.s));
    CHECK_ERR(http_do(f.c, &rq, &f.rs), SNAP_ESHORT, (const char *)msgp);
    CHECK_EQ(http_do(f.c, &rq, &f.rs), 0);
    CHECK_STR((char *)f.rs.body.data, "abc");
    CHECK_EQ(http_do(f.c, &rq, &f.rs), 0);
    CHECK_STR((char *)f.rs.body.data, "ok");
    CHECK_EQ(tsrv_conns(f.s), 3); /* the lying connection was not reused */
    CHECK_ERR(http_do(f.c, &rq, &f.rs), SNAP_ESHORT, "inside the chunked body");
    char small[8];
    struct http_request rb = {.method = "GET", .url = &f.u, .sink = HTTP_SINK_BUFFER, .dst = small, .dst_len = 8};
    CHECK_ERR(http_do(f.c, &rb, &f.rs), SNAP_ETOOBIG, "9 bytes does not fit the 8-byte buffer");
    struct http_request rcap = {.method = "GET", .url = &f.u, .collect_max = 8};
    CHECK_ERR(http_do(f.c, &rcap, &f.rs), SNAP_ETOOBIG, "larger than 8 bytes");
    CHECK_ERR(http_do(f.c, &rq, &f.rs), SNAP_EPROTO, "repeated Content-Length");
    hfx_stop(&f);
}

TEST(net_http_error_status_body_kept_apart)
{
    static const struct tsrv_reply r[] = {
        {"HTTP/1.1 404 Not Found\r\nContent-Length: 60\r\n\r\n"
         "<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndata"},
    };
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 2, false, NULL, "/missing?X-Amz-Signature=s3cr3t"), 0);
    char dst[64];
    memset(dst, '#', sizeof dst);
    struct http_request rq = {.method = "GET", .url = &f.u, .sink = HTTP_SINK_BUFFER, .dst = dst, .dst_len = 64};
    char msg[300];
    const char *msgp = msg;
    snprintf(msg, sizeof msg, "GET http://127.0.0.1:%u/missing?X-Amz-Signature=REDACTED: HTTP 404 Not Found: "
             "<Error><Code>NoSuchKey</Code>", (unsigned)tsrv_port(f.s));
    CHECK_ERR(http_do(f.c, &rq, &f.rs), SNAP_EHTTP, (const char *)msgp);
    CHECK(!strstr(snap_errmsg(SNAP_EHTTP), "s3cr3t"));
    CHECK_EQ(f.rs.status, 404);
    CHECK_EQ(f.rs.attempts, 1);   /* 404 is not retried */
    CHECK_EQ(f.rs.bytes, 0);
    CHECK_EQ(f.rs.body.len, 60);
    CHECK(strstr((char *)f.rs.body.data, "<Code>NoSuchKey</Code>"));
    CHECK_EQ(dst[0], '#');     /* the error document never reached the buffer */
    /* The error body was read whole: the connection is reused. */
    CHECK_EQ(http_do(f.c, &rq, &f.rs), 0);
    CHECK_MEM(dst, "data", 4);
    CHECK_EQ(tsrv_conns(f.s), 1);
    hfx_stop(&f);
}

static int abort_cb(void *ctx, const void *p, size_t n)
{
    (void)p;
    *(size_t *)ctx += n;
    return 1;
}

static size_t fill_calls;
static int body_src(void *ctx, uint64_t off, void *buf, size_t len, size_t *got)
{
    const char *src = ctx;
    size_t total = strlen(src);
    size_t n = off < total ? total - (size_t)off : 0;
    if (n > len)
        n = len;
    memcpy(buf, src + off, n);
    *got = n;
    fill_calls++;
    return 0;
}

TEST(net_http_request_bodies_head_abort)
{
    static const struct tsrv_reply r[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 12345\r\nX-Amz-Meta-Sha256: ab\r\n\r\n"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
    };
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 5, false, NULL, "/up"), 0);
    /* A body from memory: 3 MiB, sent as-is. */
    size_t big = 3u << 20;
    uint8_t *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (uint8_t)(i * 31 + (i >> 9));
    struct http_request put = {.method = "PUT", .url = &f.u, .body = data, .body_len = big};
    CHECK_EQ(http_do(f.c, &put, &f.rs), 0);
    size_t len;
    const char *got = tsrv_req(f.s, 0, &len);
    char head[512];
    snprintf(head, sizeof head, "PUT /up HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n" UA "Content-Length: %zu\r\n\r\n",
             (unsigned)tsrv_port(f.s), big);
    CHECK_EQ(len, strlen(head) + big);
    CHECK_MEM(got, head, strlen(head));
    CHECK_MEM(got + strlen(head), data, big);
    /* A callback body of known length, and one of unknown length (chunked). */
    const char *text = "streamed body";
    struct http_request pfn = {.method = "PUT", .url = &f.u, .body_fn = body_src, .body_ctx = (void *)text,
                               .body_len = 13};
    CHECK_EQ(http_do(f.c, &pfn, &f.rs), 0);
    got = tsrv_req(f.s, 1, &len);
    CHECK(strstr(got, "Content-Length: 13\r\n\r\nstreamed body"));
    CHECK_EQ(len, (size_t)(strstr(got, "\r\n\r\n") - got) + 4 + 13);
    pfn.body_len = HTTP_SIZE_UNKNOWN;
    pfn.method = "POST";
    CHECK_EQ(http_do(f.c, &pfn, &f.rs), 0);
    got = tsrv_req(f.s, 2, &len);
    CHECK(strstr(got, "Transfer-Encoding: chunked\r\n\r\nd\r\nstreamed body\r\n0\r\n\r\n"));
    CHECK(!strstr(got, "Content-Length"));
    /* HEAD: the size without a body. */
    struct http_request head_rq = {.method = "HEAD", .url = &f.u};
    CHECK_EQ(http_do(f.c, &head_rq, &f.rs), 0);
    CHECK_EQ(f.rs.total_size, 12345);
    CHECK_EQ(f.rs.body.len, 0);
    CHECK_STR(http_head_get(&f.rs.head, "x-amz-meta-sha256"), "ab");
    /* The data callback stops the transfer. */
    size_t seen = 0;
    struct http_request ab = {.method = "GET", .url = &f.u, .sink = HTTP_SINK_CALLBACK, .data_fn = abort_cb,
                              .data_ctx = &seen};
    CHECK_ERR(http_do(f.c, &ab, &f.rs), SNAP_ECANCELED, "canceled by the caller");
    CHECK_EQ(seen, 5);
    CHECK_EQ(f.rs.attempts, 1);
    CHECK_EQ(tsrv_conns(f.s), 1);
    free(data);
    hfx_stop(&f);
}

TEST(net_http_ranged_reads_allocate_nothing_when_warm)
{
    static char reply[8192];
    static char body[4096];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)('a' + i % 26);
    int hl = snprintf(reply, sizeof reply,
                      "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 4096-8191/1048576\r\n"
                      "Content-Length: 4096\r\n\r\n");
    memcpy(reply + hl, body, sizeof body);
    const struct tsrv_reply r[] = {{reply, (size_t)hl + sizeof body}};
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 1, true, NULL, "/build/memfile"), 0);
    char *dst = malloc(4096);
    uint64_t last = 0;
    for (int warm = 0; warm < 2; warm++) {
        last = 0;
        CHECK_EQ(http_get_range(f.c, &f.u, NULL, NULL, 4096, 4096, dst, hfx_progress_rising, &last, &f.rs), 0);
    }
    uint64_t a0 = snap_alloc_count();
    for (int i = 0; i < 50; i++) {
        memset(dst, 0, 4096);
        last = 0;
        CHECK_EQ(http_get_range(f.c, &f.u, NULL, NULL, 4096, 4096, dst, hfx_progress_rising, &last, &f.rs), 0);
        CHECK_EQ(f.rs.status, 206);
        CHECK_EQ(f.rs.bytes, 4096);
        CHECK_EQ(last, 4096);
        CHECK_EQ(f.rs.total_size, 1048576);
        CHECK_MEM(dst, body, 4096);
    }
    CHECK_EQ(snap_alloc_count(), a0);
    CHECK_EQ(tsrv_conns(f.s), 1);
    char want[512];
    CHECK_STR(tsrv_req(f.s, 7, NULL),
              want_req(want, sizeof want, "GET /build/memfile HTTP/1.1", tsrv_port(f.s),
                       "Range: bytes=4096-8191\r\n"));
    free(dst);
    hfx_stop(&f);
}

struct worker {
    struct http_client *c;
    const struct url *u;
    int failures;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    struct http_response rs;
    http_response_init(&rs);
    char dst[16];
    for (int i = 0; i < 20; i++) {
        struct http_request rq = {.method = "PUT", .url = w->u, .body = "part", .body_len = 4,
                                  .sink = HTTP_SINK_BUFFER, .dst = dst, .dst_len = sizeof dst};
        if (http_do(w->c, &rq, &rs) != 0 || rs.bytes != 2 || memcmp(dst, "ok", 2) != 0)
            w->failures++;
    }
    http_response_free(&rs);
    return NULL;
}

TEST(net_http_concurrent_workers_share_the_pool)
{
    static const struct tsrv_reply r[] = {{"HTTP/1.1 200 OK\r\nETag: \"p\"\r\nContent-Length: 2\r\n\r\nok"}};
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 1, true, NULL, "/mp?partNumber=1&uploadId=x"), 0);
    enum { N = 16 };
    pthread_t th[N];
    struct worker w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct worker){f.c, &f.u, 0};
        pthread_create(&th[i], NULL, worker_run, &w[i]);
    }
    int failures = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        failures += w[i].failures;
    }
    CHECK_EQ(failures, 0);
    CHECK_EQ(tsrv_nreq(f.s), N * 20);
    struct http_stats st;
    http_client_stats(f.c, &st);
    CHECK(st.connects <= N);
    CHECK_EQ(st.connects + st.reused, N * 20);
    hfx_stop(&f);
}

TEST(net_http_hdrs_list)
{
    struct http_hdrs h;
    http_hdrs_init(&h);
    CHECK_EQ(http_hdrs_add(&h, "A", "1"), 0);
    CHECK_EQ(http_hdrs_add(&h, "x-amz-date", "20130524T000000Z"), 0);
    CHECK_EQ(http_hdrs_add(&h, "a", "2"), 0);
    CHECK_STR(http_hdrs_get(&h, "a"), "1");
    CHECK_EQ(http_hdrs_set(&h, "A", "3"), 0);
    CHECK_EQ(h.n, 2);
    CHECK_STR(http_hdrs_name(&h, 0), "x-amz-date");
    CHECK_STR(http_hdrs_get(&h, "a"), "3");
    CHECK_EQ(http_hdrs_set(&h, "x-amz-date", http_hdrs_get(&h, "x-amz-date")), 0);
    CHECK_STR(http_hdrs_get(&h, "X-AMZ-DATE"), "20130524T000000Z");
    http_hdrs_del(&h, "a");
    CHECK(http_hdrs_get(&h, "a") == NULL);
    CHECK_ERR(http_hdrs_add(&h, "Bad Name", "v"), SNAP_EUSAGE, "not a token");
    CHECK_ERR(http_hdrs_add(&h, "X", "a\r\nInjected: 1"), SNAP_EUSAGE, "CR or LF");
    /* Re-signing every attempt (set, set, set ...) never fills the storage. */
    char big[2000];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 100; i++)
        CHECK_EQ(http_hdrs_set(&h, "Authorization", big), 0);
    CHECK_EQ(http_hdrs_add(&h, "B", big), 0);
    CHECK_EQ(http_hdrs_add(&h, "C", big), 0);
    CHECK_ERR(http_hdrs_add(&h, "D", big), SNAP_ETOOBIG, "6144 bytes");
    http_hdrs_init(&h);
    for (int i = 0; i < HTTP_HDRS_MAX; i++)
        CHECK_EQ(http_hdrs_add(&h, "N", "v"), 0);
    CHECK_ERR(http_hdrs_add(&h, "N", "v"), SNAP_ETOOBIG, "more than 32 fields");
}

TEST(net_http_every_allocation_failure_is_clean)
{
    static const struct tsrv_reply r[] = {
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n5\r\nhello\r\n0\r\n\r\n"}};
    struct tsrv *s = tsrv_start("127.0.0.1", r, 1, true);
    CHECK(s);
    char su[64];
    snprintf(su, sizeof su, "http://127.0.0.1:%u/f", (unsigned)tsrv_port(s));
    int ok = 0;
    for (long n = 0; n < 40; n++) {
        snap_mem_fail_after(n);
        struct http_client *c = NULL;
        struct url u = {0};
        struct http_response rs;
        http_response_init(&rs);
        int e = http_client_new(NULL, &c);
        if (!e)
            e = url_parse(su, &u);
        if (!e) {
            struct http_request rq = {.method = "GET", .url = &u};
            e = http_do(c, &rq, &rs);
        }
        snap_mem_fail_after(-1);
        if (e != 0 && e != SNAP_ENOMEM)
            fprintf(stderr, "    fail after %ld: %s\n", n, snap_errmsg(e));
        CHECK(e == 0 || e == SNAP_ENOMEM);
        if (e == 0) {
            CHECK_STR((char *)rs.body.data, "hello");
            ok++;
        }
        http_response_free(&rs);
        url_free(&u);
        http_client_free(c);
    }
    CHECK(ok > 0); /* the walk reached the end */
    tsrv_stop(s);
}

/* A lent receive buffer (recv_buf) smaller than the body: the callback sees every byte, in
 * order, and once the bytes that came with the head are used up, in pieces no bigger than the
 * buffer; an open-ended range is sent as bytes=K-, and a 200 answered to it is skipped to K. */
#define RB_BODY 100000u

struct piece_log {
    uint64_t off;       /* the body offset the next byte must have */
    unsigned pieces, small_pieces;
    bool bad;
};

static uint8_t rb_byte(uint64_t i)
{
    return (uint8_t)(i * 7 + i / 251);
}

static int piece_cb(void *ctx, const void *p, size_t n)
{
    struct piece_log *l = ctx;
    for (size_t i = 0; i < n; i++)
        l->bad |= ((const uint8_t *)p)[i] != rb_byte(l->off + i);
    l->off += n;
    l->pieces++;
    l->small_pieces += n <= 5;
    return 0;
}

TEST(net_http_recv_buf_and_open_ended_range)
{
    static char r206[RB_BODY + 200], r200[RB_BODY + 200];
    int h1 = snprintf(r206, 200, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 3-%u/%u\r\n"
                      "Content-Length: %u\r\n\r\n", RB_BODY - 1, RB_BODY, RB_BODY - 3);
    int h2 = snprintf(r200, 200, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", RB_BODY);
    for (uint64_t i = 0; i < RB_BODY; i++) {
        if (i >= 3)
            r206[h1 + i - 3] = (char)rb_byte(i);
        r200[h2 + i] = (char)rb_byte(i);
    }
    const struct tsrv_reply r[] = {{r206, (size_t)h1 + RB_BODY - 3}, {r200, (size_t)h2 + RB_BODY}};
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 2, false, NULL, "/o"), 0);
    uint8_t small[5];
    for (unsigned i = 0; i < 2; i++) {
        struct piece_log log = {.off = 3};
        struct http_request rq = {.method = "GET", .url = &f.u, .range = true, .range_off = 3,
                                  .range_len = UINT64_MAX - 3, .sink = HTTP_SINK_CALLBACK, .data_fn = piece_cb,
                                  .data_ctx = &log, .recv_buf = small, .recv_buf_len = sizeof small};
        CHECK_EQ(http_do(f.c, &rq, &f.rs), 0);
        CHECK(!log.bad);
        CHECK_EQ(log.off, RB_BODY);
        CHECK_EQ(f.rs.bytes, RB_BODY - 3);
        CHECK_EQ(f.rs.total_size, RB_BODY);
        /* At most 32 KiB came with the head; the rest went through the 5-byte buffer. */
        CHECK(log.small_pieces >= (RB_BODY - 32768) / 5);
        size_t len;
        const char *req = tsrv_req(f.s, i, &len);
        CHECK(req && strstr(req, "\r\nRange: bytes=3-\r\n"));
    }
    hfx_stop(&f);
}
