/* Unit tests of lib/net/http: redirects, ranged reads, retries and backoff, timeouts, hooks. */
#include "test.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "net-http-fixture.h"
#include "net/http.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define UA "User-Agent: snapctl/" SNAPCTL_VERSION "\r\n"

static uint64_t rng_zero(void *ctx)
{
    (void)ctx;
    return 0;
}

static uint64_t rng_fixed(void *ctx)
{
    return *(uint64_t *)ctx;
}

static int64_t ms_since(uint64_t t0)
{
    return (int64_t)((snap_now_ns() - t0) / 1000000);
}

struct signer {
    int calls;
    char seen[256];
};

static int sign_hook(void *ctx, const char *method, const struct url *url, const char *target, struct http_hdrs *h)
{
    struct signer *sg = ctx;
    (void)url;
    sg->calls++;
    sg->seen[0] = '\0';
    for (unsigned i = 0; i < h->n; i++) {
        size_t l = strlen(sg->seen);
        snprintf(sg->seen + l, sizeof sg->seen - l, "%s;", http_hdrs_name(h, i));
    }
    char v[128];
    snprintf(v, sizeof v, "%s %s", method, target);
    return http_hdrs_set(h, "X-Signed", v);
}

TEST(net_http_redirects_drop_authorization_across_hosts)
{
    static const struct tsrv_reply rb[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nB"}};
    struct tsrv *b = tsrv_start("127.0.0.2", rb, 1, false);
    CHECK(b);
    char loc[200];
    snprintf(loc, sizeof loc, "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:%u/next?x=1\r\nContent-Length: 5\r\n\r\n"
             "moved", (unsigned)tsrv_port(b));
    const struct tsrv_reply ra[] = {
        {loc},
        {"HTTP/1.1 301 Moved Permanently\r\nLocation: /moved\r\nContent-Length: 0\r\n\r\n"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"},
        {"HTTP/1.1 303 See Other\r\nLocation: result\r\nContent-Length: 0\r\n\r\n"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nR"},
    };
    struct tsrv *a = tsrv_start("127.0.0.1", ra, 5, false);
    CHECK(a);
    struct http_client *c;
    CHECK_EQ(http_client_new(NULL, &c), 0);
    struct url u;
    CHECK_EQ(hfx_url(&u, "127.0.0.1", tsrv_port(a), "/start"), 0);
    struct http_hdrs h;
    http_hdrs_init(&h);
    CHECK_EQ(http_hdrs_add(&h, "Authorization", "Bearer secret"), 0);
    CHECK_EQ(http_hdrs_add(&h, "X-Keep", "1"), 0);
    struct signer sg = {0};
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "GET", .url = &u, .headers = &h, .sign = sign_hook, .sign_ctx = &sg};

    /* To another host: no Authorization, no signature. */
    CHECK_EQ(http_do(c, &rq, &rs), 0);
    CHECK_EQ(rs.status, 200);
    CHECK_EQ(rs.redirects, 1);
    CHECK_STR((char *)rs.body.data, "B");
    CHECK_EQ(sg.calls, 1);
    char want[400];
    snprintf(want, sizeof want, "GET /next?x=1 HTTP/1.1\r\nHost: 127.0.0.2:%u\r\n" UA "X-Keep: 1\r\n\r\n",
             (unsigned)tsrv_port(b));
    CHECK_STR(tsrv_req(b, 0, NULL), want);
    CHECK(strstr(tsrv_req(a, 0, NULL), "Authorization: Bearer secret\r\n"));
    CHECK(strstr(tsrv_req(a, 0, NULL), "X-Signed: GET /start\r\n"));

    /* Same host: both kept, signed again for the new target. */
    CHECK_EQ(http_do(c, &rq, &rs), 0);
    CHECK_STR((char *)rs.body.data, "A");
    CHECK_EQ(sg.calls, 3);
    snprintf(want, sizeof want, "GET /moved HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n" UA
             "Authorization: Bearer secret\r\nX-Keep: 1\r\nX-Signed: GET /moved\r\n\r\n", (unsigned)tsrv_port(a));
    CHECK_STR(tsrv_req(a, 2, NULL), want);

    /* 303 after a POST: a GET without the body. */
    struct http_request post = {.method = "POST", .url = &u, .body = "payload", .body_len = 7};
    CHECK_EQ(http_do(c, &post, &rs), 0);
    CHECK_STR((char *)rs.body.data, "R");
    CHECK(strstr(tsrv_req(a, 3, NULL), "\r\n\r\npayload"));
    snprintf(want, sizeof want, "GET /result HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n" UA "\r\n", (unsigned)tsrv_port(a));
    CHECK_STR(tsrv_req(a, 4, NULL), want);
    CHECK_EQ(tsrv_conns(a), 1);

    http_response_free(&rs);
    http_client_free(c);
    url_free(&u);
    tsrv_stop(a);
    tsrv_stop(b);
}

TEST(net_http_redirect_loop_stops)
{
    static const struct tsrv_reply r[] = {{"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n"}};
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 1, true, NULL, "/loop"), 0);
    struct http_request rq = {.method = "GET", .url = &f.u};
    CHECK_ERR(http_do(f.c, &rq, &f.rs), SNAP_EHTTP, "HTTP 302 Found");
    CHECK_EQ(f.rs.redirects, HTTP_MAX_REDIRECTS);
    CHECK_EQ(tsrv_nreq(f.s), HTTP_MAX_REDIRECTS + 1);
    hfx_stop(&f);
}

TEST(net_http_ranges_206_200_416)
{
    static const struct tsrv_reply r[] = {
        {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-14/100\r\nContent-Length: 5\r\n\r\nABCDE"},
        {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 11-14/100\r\nContent-Length: 4\r\n\r\nBCDE"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n0123456789ABCDEFGHIJ"},
        {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 95-99/100\r\nContent-Length: 5\r\n\r\nvwxyz"},
        {"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */100\r\nContent-Length: 0\r\n\r\n"},
        {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-14/100\r\nContent-Length: 6\r\n\r\nABCDEF"},
        {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-14/100\r\nTransfer-Encoding: chunked\r\n\r\n"
         "3\r\nABC\r\n0\r\n\r\n"},
    };
    struct http_opts o = {.retry = {.max_attempts = 1}};
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 7, false, &o, "/obj"), 0);
    char dst[16];
    memset(dst, 0, sizeof dst);
    CHECK_EQ(http_get_range(f.c, &f.u, NULL, NULL, 10, 5, dst, NULL, NULL, &f.rs), 0);
    CHECK_EQ(f.rs.status, 206);
    CHECK_EQ(f.rs.bytes, 5);
    CHECK_EQ(f.rs.total_size, 100);
    CHECK_STR(dst, "ABCDE");
    CHECK(strstr(tsrv_req(f.s, 0, NULL), "\r\nRange: bytes=10-14\r\n"));
    CHECK_ERR(http_get_range(f.c, &f.u, NULL, NULL, 10, 5, dst, NULL, NULL, &f.rs), SNAP_EPROTO,
              "206 with Content-Range 'bytes 11-14/100' for bytes=10-14");
    /* The whole object: skipped to the range, the rest drained, the connection kept. */
    memset(dst, 0, sizeof dst);
    CHECK_EQ(http_get_range(f.c, &f.u, NULL, NULL, 5, 4, dst, NULL, NULL, &f.rs), 0);
    CHECK_EQ(f.rs.status, 200);
    CHECK_EQ(f.rs.bytes, 4);
    CHECK_EQ(f.rs.total_size, 20);
    CHECK_STR(dst, "5678");
    /* Shorter at the object's end. */
    memset(dst, 0, sizeof dst);
    CHECK_EQ(http_get_range(f.c, &f.u, NULL, NULL, 95, 10, dst, NULL, NULL, &f.rs), 0);
    CHECK_EQ(f.rs.bytes, 5);
    CHECK_EQ(f.rs.total_size, 100);
    CHECK_STR(dst, "vwxyz");
    CHECK_ERR(http_get_range(f.c, &f.u, NULL, NULL, 100, 10, dst, NULL, NULL, &f.rs), SNAP_ERANGE,
              "range bytes=100-109 starts past the end (size 100)");
    CHECK_EQ(f.rs.status, 416);
    CHECK_EQ(f.rs.total_size, 100);
    CHECK_ERR(http_get_range(f.c, &f.u, NULL, NULL, 10, 5, dst, NULL, NULL, &f.rs), SNAP_EPROTO,
              "206 with Content-Length 6");
    CHECK_ERR(http_get_range(f.c, &f.u, NULL, NULL, 10, 5, dst, NULL, NULL, &f.rs), SNAP_ESHORT,
              "206 body ended 2 bytes short of its Content-Range");
    /* Zero bytes: nothing is sent. */
    CHECK_EQ(http_get_range(f.c, &f.u, NULL, NULL, 7, 0, dst, NULL, NULL, &f.rs), 0);
    CHECK_EQ(f.rs.bytes, 0);
    CHECK_EQ(tsrv_nreq(f.s), 7);
    hfx_stop(&f);
}

TEST(net_http_range_resumes_after_a_cut)
{
    static const struct tsrv_reply r[] = {
        {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/10\r\nContent-Length: 10\r\n\r\n0123", .close = true},
        {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 4-9/10\r\nContent-Length: 6\r\n\r\n456789"},
    };
    struct http_opts o = {.retry = {.rand = rng_zero}};
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 2, false, &o, "/r"), 0);
    char dst[11] = {0};
    uint64_t last = 0;
    CHECK_EQ(http_get_range(f.c, &f.u, NULL, NULL, 0, 10, dst, hfx_progress_rising, &last, &f.rs), 0);
    CHECK_STR(dst, "0123456789");
    CHECK_EQ(f.rs.bytes, 10);
    CHECK_EQ(last, 10);
    CHECK_EQ(f.rs.attempts, 2);
    CHECK(strstr(tsrv_req(f.s, 1, NULL), "\r\nRange: bytes=4-9\r\n"));
    hfx_stop(&f);
}

TEST(net_http_retry_503_honours_retry_after)
{
    static const struct tsrv_reply r[] = {
        {"HTTP/1.1 503 Slow Down\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\nbusy"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
    };
    /* Jitter 0, so any wait comes from Retry-After (1 s, clamped to 150 ms here). */
    struct http_opts o = {.retry = {.rand = rng_zero, .retry_after_max_ms = 150}};
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 2, false, &o, "/p"), 0);
    struct http_request rq = {.method = "GET", .url = &f.u};
    uint64_t t0 = snap_now_ns();
    CHECK_EQ(http_do(f.c, &rq, &f.rs), 0);
    int64_t ms = ms_since(t0);
    CHECK(ms >= 150 && ms < 900);
    CHECK_EQ(f.rs.attempts, 2);
    CHECK_STR((char *)f.rs.body.data, "ok");
    CHECK_STR(tsrv_req(f.s, 0, NULL), tsrv_req(f.s, 1, NULL));
    CHECK_EQ(tsrv_conns(f.s), 1); /* the 503's body was drained; same connection */
    struct http_stats st;
    http_client_stats(f.c, &st);
    CHECK_EQ(st.retries, 1);
    hfx_stop(&f);
}

TEST(net_http_retry_policy_and_methods)
{
    static const struct tsrv_reply r[] = {
        {"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"},
    };
    struct http_opts o = {.retry = {.max_attempts = 3, .rand = rng_zero}};
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 1, true, &o, "/x"), 0);
    struct http_request rq = {.method = "DELETE", .url = &f.u};
    CHECK_ERR(http_do(f.c, &rq, &f.rs), SNAP_EHTTP, "HTTP 500 Internal Server Error (after 3 attempts)");
    CHECK_EQ(f.rs.attempts, 3);
    CHECK_EQ(tsrv_nreq(f.s), 3);
    /* POST is not idempotent: one try, unless the caller says it is safe. */
    struct http_request post = {.method = "POST", .url = &f.u, .body = "x", .body_len = 1};
    CHECK_ERR(http_do(f.c, &post, &f.rs), SNAP_EHTTP, "HTTP 500");
    CHECK_EQ(f.rs.attempts, 1);
    post.retry = HTTP_RETRY_YES;
    CHECK_ERR(http_do(f.c, &post, &f.rs), SNAP_EHTTP, "after 3 attempts");
    rq.retry = HTTP_RETRY_NO;
    CHECK_ERR(http_do(f.c, &rq, &f.rs), SNAP_EHTTP, "HTTP 500");
    CHECK_EQ(f.rs.attempts, 1);
    CHECK_EQ(tsrv_nreq(f.s), 8);
    hfx_stop(&f);
}

static int s3_check(void *ctx, const struct http_response *rs, bool *retry)
{
    (*(int *)ctx)++;
    if (rs->status == 200 && rs->body.data && strstr((char *)rs->body.data, "<Error>")) {
        *retry = strstr((char *)rs->body.data, "<Code>InternalError</Code>") != NULL;
        return snap_fail(SNAP_EHTTP, "S3 error document in a 200");
    }
    return 0;
}

TEST(net_http_check_hook_turns_200_into_retry)
{
    static const struct tsrv_reply r[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 41\r\n\r\n<Error><Code>InternalError</Code></Error>"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n<CompleteResult/> "},
        {"HTTP/1.1 200 OK\r\nContent-Length: 36\r\n\r\n<Error><Code>InvalidPart</Code></Error>"},
    };
    struct http_opts o = {.retry = {.rand = rng_zero}};
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 3, false, &o, "/k?uploadId=1"), 0);
    int calls = 0;
    struct http_request rq = {.method = "POST", .url = &f.u, .body = "<Complete/>", .body_len = 11,
                              .retry = HTTP_RETRY_YES, .check = s3_check, .check_ctx = &calls};
    CHECK_EQ(http_do(f.c, &rq, &f.rs), 0);
    CHECK_EQ(f.rs.attempts, 2);
    CHECK_EQ(calls, 2);
    CHECK_STR((char *)f.rs.body.data, "<CompleteResult/> ");
    char msg[200];
    const char *msgp = msg;
    snprintf(msg, sizeof msg, "POST http://127.0.0.1:%u/k?uploadId=1: HTTP 200: S3 error document in a 200",
             (unsigned)tsrv_port(f.s));
    CHECK_ERR(http_do(f.c, &rq, &f.rs), SNAP_EHTTP, msgp);
    CHECK_EQ(f.rs.attempts, 1);
    hfx_stop(&f);
}

TEST(net_http_timeouts_idle_deadline_refused)
{
    static const struct tsrv_reply r[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", .stall_ms = 3000},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", .delay_ms = 3000},
        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", .stall_ms = 3000},
        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"},
    };
    struct tsrv *s = tsrv_start("127.0.0.1", r, 4, false);
    CHECK(s);
    struct http_opts o = {.idle_timeout_ms = 100, .retry = {.max_attempts = 1}};
    struct http_client *c;
    CHECK_EQ(http_client_new(&o, &c), 0);
    struct url u;
    CHECK_EQ(hfx_url(&u, "127.0.0.1", tsrv_port(s), "/slow"), 0);
    struct http_response rs;
    http_response_init(&rs);
    struct http_request rq = {.method = "GET", .url = &u};
    uint64_t t0 = snap_now_ns();
    CHECK_ERR(http_do(c, &rq, &rs), SNAP_ETIMEOUT, "nothing for 100 ms (idle timeout)");
    CHECK(ms_since(t0) < 1000);
    http_client_free(c);

    /* The overall deadline, with a generous idle timeout. */
    struct http_opts o2 = {.idle_timeout_ms = 10000, .total_timeout_ms = 200, .retry = {.max_attempts = 1}};
    CHECK_EQ(http_client_new(&o2, &c), 0);
    t0 = snap_now_ns();
    CHECK_ERR(http_do(c, &rq, &rs), SNAP_ETIMEOUT, "deadline passed");
    CHECK(ms_since(t0) >= 190 && ms_since(t0) < 1500);
    http_client_free(c);

    /* An idle timeout is retried (GET): the second try gets the whole body. */
    struct http_opts o3 = {.idle_timeout_ms = 100, .retry = {.max_attempts = 2, .rand = rng_zero}};
    CHECK_EQ(http_client_new(&o3, &c), 0);
    CHECK_EQ(http_do(c, &rq, &rs), 0);
    CHECK_EQ(rs.attempts, 2);
    CHECK_STR((char *)rs.body.data, "0123456789");
    http_client_free(c);

    /* A port nobody listens on. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    CHECK(bind(fd, (struct sockaddr *)&sa, sl) == 0 && getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    close(fd);
    struct url dead;
    CHECK_EQ(hfx_url(&dead, "127.0.0.1", ntohs(sa.sin_port), "/"), 0);
    CHECK_EQ(http_client_new(&o, &c), 0);
    struct http_request rd = {.method = "GET", .url = &dead};
    CHECK_ERR(http_do(c, &rd, &rs), SNAP_ENET, "connect: Connection refused");
    CHECK_EQ(rs.status, 0);
    url_free(&dead);
    http_response_free(&rs);
    http_client_free(c);
    url_free(&u);
    tsrv_stop(s);
}

TEST(net_http_backoff_full_jitter_bounds)
{
    struct http_retry p = {.base_ms = 100, .cap_ms = 1000};
    http_retry_defaults(&p);
    CHECK_EQ(p.max_attempts, 5);
    CHECK_EQ(p.retry_after_max_ms, 60000);
    uint64_t v = UINT64_MAX;
    p.rand = rng_fixed;
    p.rand_ctx = &v;
    /* Ceilings 100, 200, 400, 800, then the cap. */
    CHECK_EQ(http_backoff_ms(&p, 1, -1), UINT64_MAX % 101);
    CHECK_EQ(http_backoff_ms(&p, 2, -1), UINT64_MAX % 201);
    CHECK_EQ(http_backoff_ms(&p, 4, -1), UINT64_MAX % 801);
    CHECK_EQ(http_backoff_ms(&p, 5, -1), UINT64_MAX % 1001);
    CHECK_EQ(http_backoff_ms(&p, 60, -1), UINT64_MAX % 1001);
    v = 100;
    CHECK_EQ(http_backoff_ms(&p, 1, -1), 100); /* the top of the range is reachable */
    v = 0;
    CHECK_EQ(http_backoff_ms(&p, 3, -1), 0);
    /* Retry-After is a floor, clamped to its maximum. */
    CHECK_EQ(http_backoff_ms(&p, 1, 5000), 5000);
    p.retry_after_max_ms = 2000;
    CHECK_EQ(http_backoff_ms(&p, 1, 5000), 2000);
    v = 77;
    CHECK_EQ(http_backoff_ms(&p, 1, 10), 77);
    /* The default generator stays inside the bounds. */
    p.rand = NULL;
    for (int i = 0; i < 2000; i++) {
        unsigned retry = 1 + (unsigned)(i % 6);
        uint64_t ceil = retry >= 5 ? 1000 : 100u << (retry - 1);
        CHECK(http_backoff_ms(&p, retry, -1) <= ceil);
    }
}

TEST(net_http_retry_after_parse)
{
    time_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    CHECK_EQ(http_retry_after_ms("120", now), 120000);
    CHECK_EQ(http_retry_after_ms("0", now), 0);
    CHECK_EQ(http_retry_after_ms("Sun, 06 Nov 1994 08:49:47 GMT", now), 10000);
    CHECK_EQ(http_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", now), 0);
    CHECK_EQ(http_retry_after_ms("Sat, 05 Nov 1994 08:49:37 GMT", now), 0);
    CHECK_EQ(http_retry_after_ms("Mon, 07 Nov 1994 08:49:37 GMT", now), 86400000);
    CHECK_EQ(http_retry_after_ms("-1", now), -1);
    CHECK_EQ(http_retry_after_ms("1.5", now), -1);
    CHECK_EQ(http_retry_after_ms("", now), -1);
    CHECK_EQ(http_retry_after_ms(NULL, now), -1);
    CHECK_EQ(http_retry_after_ms("Sunday, 06-Nov-94 08:49:37 GMT", now), -1);
    CHECK_EQ(http_retry_after_ms("Sun, 06 Xyz 1994 08:49:37 GMT", now), -1);
    CHECK_EQ(http_retry_after_ms("Sun, 06 Nov 1994 25:49:37 GMT", now), -1);
    CHECK(http_retry_after_ms("99999999999999", now) > 0);
}

TEST(net_http_sign_hook_sees_final_headers)
{
    static const struct tsrv_reply r[] = {
        {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-1/2\r\nContent-Length: 2\r\n\r\nhi"},
    };
    struct hfx f;
    CHECK_EQ(hfx_start(&f, r, 1, false, NULL, "/bucket/key"), 0);
    struct signer sg = {0};
    char dst[2];
    struct http_request rq = {.method = "GET", .url = &f.u, .target = "/bucket/key%20x?versionId=3", .range = true,
                              .range_len = 2, .sink = HTTP_SINK_BUFFER, .dst = dst, .dst_len = 2,
                              .sign = sign_hook, .sign_ctx = &sg};
    CHECK_EQ(http_do(f.c, &rq, &f.rs), 0);
    CHECK_STR(sg.seen, "Host;User-Agent;Range;");
    char want[400];
    snprintf(want, sizeof want, "GET /bucket/key%%20x?versionId=3 HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n" UA
             "Range: bytes=0-1\r\nX-Signed: GET /bucket/key%%20x?versionId=3\r\n\r\n", (unsigned)tsrv_port(f.s));
    CHECK_STR(tsrv_req(f.s, 0, NULL), want);
    /* Bad requests are refused before anything is sent. */
    struct http_request bad = {.method = "GET", .url = &f.u, .target = "no-slash"};
    CHECK_ERR(http_do(f.c, &bad, &f.rs), SNAP_EUSAGE, "must start with '/'");
    struct url s3;
    CHECK_EQ(url_parse("s3://bucket/x", &s3), 0);
    bad = (struct http_request){.method = "GET", .url = &s3};
    CHECK_ERR(http_do(f.c, &bad, &f.rs), SNAP_EUSAGE, "not an http:// or https:// URL");
    url_free(&s3);
    hfx_stop(&f);
}
