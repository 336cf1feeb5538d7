/* Unit tests of lib/net/httpd: head parser, ranges, allowlist, and a live server driven by curl. */
#include "test.h"

#include "base/err.h"
#include "net/httpd.h"
#include "net/listen.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse(const char *s, struct httpd_req *r)
{
    static char buf[4096];
    size_t n = strlen(s);
    memcpy(buf, s, n);
    return httpd_parse_head(buf, n, r);
}

TEST(httpd_parse_head_ok)
{
    struct httpd_req r;
    CHECK_EQ(parse("GET /v1/builds/x/memfile HTTP/1.1\r\nHost: a\r\nRange:  bytes=0-9 \r\n\r\n", &r), 0);
    CHECK_STR(r.method, "GET");
    CHECK_STR(r.target, "/v1/builds/x/memfile");
    CHECK_EQ(r.minor, 1);
    CHECK_EQ(r.nh, 2);
    CHECK_STR(httpd_header(&r, "range"), "bytes=0-9");
    CHECK(r.keep_alive);
    CHECK_EQ(parse("HEAD / HTTP/1.0\r\n\r\n", &r), 0);
    CHECK(!r.keep_alive);
    CHECK_EQ(parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &r), 0);
    CHECK(!r.keep_alive);
}

TEST(httpd_parse_head_rejects)
{
    struct httpd_req r;
    CHECK_ERR(parse("GET  / HTTP/1.1\r\n\r\n", &r), SNAP_EPROTO, "target");
    CHECK_ERR(parse("G(T / HTTP/1.1\r\n\r\n", &r), SNAP_EPROTO, "method");
    CHECK_ERR(parse("GET / HTTP/2.0\r\n\r\n", &r), SNAP_ENOTSUP, "HTTP/1");
    CHECK_ERR(parse("GET / HTTP/1.1\nHost: a\r\n\r\n", &r), SNAP_ENOTSUP, "HTTP/1");
    CHECK_ERR(parse("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", &r), SNAP_EPROTO, "folding");
    CHECK_ERR(parse("GET / HTTP/1.1\r\nBad Name: a\r\n\r\n", &r), SNAP_EPROTO, "header name");
    CHECK_ERR(parse("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", &r), SNAP_EPROTO, "control");
    CHECK_ERR(parse("GET / HTTP/1.1\r\nX: a\r\n", &r), SNAP_EPROTO, "terminated");
    char many[4096] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < HTTPD_MAX_HEADERS + 1; i++)
        strcat(many, "X: y\r\n");
    strcat(many, "\r\n");
    CHECK_ERR(parse(many, &r), SNAP_ETOOBIG, "headers");
}

TEST(httpd_ranges)
{
    uint64_t off, len;
    CHECK_EQ(httpd_parse_range("bytes=0-9", 100, &off, &len), 0); CHECK_EQ(off, 0); CHECK_EQ(len, 10);
    CHECK_EQ(httpd_parse_range("bytes=90-", 100, &off, &len), 0); CHECK_EQ(off, 90); CHECK_EQ(len, 10);
    CHECK_EQ(httpd_parse_range("bytes=90-1000", 100, &off, &len), 0); CHECK_EQ(len, 10);
    CHECK_EQ(httpd_parse_range("bytes=-30", 100, &off, &len), 0); CHECK_EQ(off, 70); CHECK_EQ(len, 30);
    CHECK_EQ(httpd_parse_range("bytes=-300", 100, &off, &len), 0); CHECK_EQ(off, 0); CHECK_EQ(len, 100);
    CHECK_ERR(httpd_parse_range("bytes=100-", 100, &off, &len), SNAP_ERANGE, "past the end");
    CHECK_ERR(httpd_parse_range("bytes=-0", 100, &off, &len), SNAP_ERANGE, "empty");
    CHECK_ERR(httpd_parse_range("bytes=5-4", 100, &off, &len), SNAP_EPROTO, "");
    CHECK_ERR(httpd_parse_range("bytes=0-1,5-6", 100, &off, &len), SNAP_EPROTO, "");
    CHECK_ERR(httpd_parse_range("items=0-1", 100, &off, &len), SNAP_EPROTO, "");
    CHECK_ERR(httpd_parse_range("bytes=99999999999999999999-", 100, &off, &len), SNAP_EPROTO, "");
}

TEST(httpd_cidr)
{
    struct httpd_cidr l[2];
    CHECK_EQ(httpd_cidr_parse("10.1.0.0/16", &l[0]), 0);
    CHECK_EQ(httpd_cidr_parse("fd00::/8", &l[1]), 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.1.200.3", &a.sin_addr);
    CHECK(httpd_cidr_match(l, 2, (struct sockaddr *)&a));
    inet_pton(AF_INET, "10.2.0.1", &a.sin_addr);
    CHECK(!httpd_cidr_match(l, 2, (struct sockaddr *)&a));
    struct sockaddr_in6 b = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &b.sin6_addr); /* mapped IPv4 is matched as IPv4 */
    CHECK(httpd_cidr_match(l, 2, (struct sockaddr *)&b));
    inet_pton(AF_INET6, "fe80::1", &b.sin6_addr);
    CHECK(!httpd_cidr_match(l, 2, (struct sockaddr *)&b));
    CHECK_ERR(httpd_cidr_parse("10.0.0.0/33", &l[0]), SNAP_EUSAGE, "prefix");
    CHECK_ERR(httpd_cidr_parse("example.com", &l[0]), SNAP_EUSAGE, "CIDR");
}

/* A live server: serves one file at /f with ranges; curl is the client. */
static int served_fd;
static void handler(void *ctx, struct httpd_conn *c, const struct httpd_req *r)
{
    (void)ctx;
    bool head = !strcmp(r->method, "HEAD");
    if (strcmp(r->target, "/f") != 0) {
        httpd_send(c, 404, NULL, "no\n", 3, head);
        return;
    }
    struct stat st;
    fstat(served_fd, &st);
    httpd_send_file(c, r, NULL, served_fd, (uint64_t)st.st_size);
}

struct run_arg {
    int lfd;
    const struct httpd_throttle *throttle;
};
static void *run_thread(void *p)
{
    struct run_arg *a = p;
    struct httpd_opts o = {.idle_timeout_ms = 2000, .throttle = a->throttle};
    httpd_run(a->lfd, &o, handler, NULL);
    return NULL;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

TEST(httpd_live_with_curl)
{
    if (system("command -v curl >/dev/null 2>&1") != 0) {
        test_failed(__FILE__, __LINE__, "curl is required (apt-get install curl)");
        return;
    }
    const char *d = test_tmpdir();
    CHECK_EQ(sh("head -c 1000000 /dev/urandom > %s/f && : > %s/empty", d, d), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/f", d);
    served_fd = open(path, O_RDONLY);
    CHECK(served_fd >= 0);
    int lfd;
    CHECK_EQ(net_listen("127.0.0.1:0", &lfd), 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    unsigned port = ntohs(sa.sin_port);
    pthread_t t;
    struct run_arg a = {lfd, NULL};
    CHECK_EQ(pthread_create(&t, NULL, run_thread, &a), 0);

    const char *failed = NULL;
    if (sh("curl -sf http://127.0.0.1:%u/f -o %s/all && cmp -s %s/all %s/f", port, d, d, d))
        failed = "whole GET";
    else if (sh("curl -sf -r 10-19 http://127.0.0.1:%u/f -o %s/r1 --next -r 999990- http://127.0.0.1:%u/f -o %s/r2",
                port, d, port, d)) /* two ranges on one keep-alive connection */
        failed = "two ranged GETs";
    else if (sh("[ \"$(od -An -tx1 %s/r1)\" = \"$(dd if=%s/f bs=1 skip=10 count=10 2>/dev/null | od -An -tx1)\" ]",
                d, d))
        failed = "range 10-19 bytes";
    else if (sh("[ $(wc -c < %s/r2) -eq 10 ]", d))
        failed = "open range length";
    else if (sh("[ \"$(curl -s -o /dev/null -w '%%{http_code}' -r 1000000- http://127.0.0.1:%u/f)\" = 416 ]", port))
        failed = "416 past the end";
    else if (sh("[ \"$(curl -s -o /dev/null -w '%%{http_code}' -X POST http://127.0.0.1:%u/f)\" = 405 ]", port))
        failed = "405 for POST";
    else if (sh("curl -sI http://127.0.0.1:%u/f | grep -qi '^content-length: 1000000'", port))
        failed = "HEAD";
    else if (sh("[ \"$(curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%u/nope)\" = 404 ]", port))
        failed = "404";
    httpd_stop();
    pthread_join(t, NULL);
    close(lfd);
    close(served_fd);
    if (failed)
        test_failed(__FILE__, __LINE__, "step failed: %s", failed);
}

/* A throttled server: every head waits the time to first byte, every body the bandwidth.  Only
 * lower bounds are checked (a delay must really happen); how closely the pace is kept is
 * measured by `snapctl bench chunker`'s source probe, not asserted here. */
static int curl_times(unsigned port, const char *args, const char *out, double *ttfb, double *total)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "curl -sf %s -o %s -w '%%{time_starttransfer} %%{time_total}' http://127.0.0.1:%u/f",
             args, out, port);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    int n = fscanf(p, "%lf %lf", ttfb, total);
    return pclose(p) == 0 && n == 2 ? 0 : -1;
}

TEST(httpd_throttle_delays_head_and_paces_body)
{
    if (system("command -v curl >/dev/null 2>&1") != 0) {
        test_failed(__FILE__, __LINE__, "curl is required (apt-get install curl)");
        return;
    }
    const char *d = test_tmpdir();
    CHECK_EQ(sh("head -c 1000000 /dev/urandom > %s/f", d), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/f", d);
    served_fd = open(path, O_RDONLY);
    CHECK(served_fd >= 0);
    int lfd;
    CHECK_EQ(net_listen("127.0.0.1:0", &lfd), 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    unsigned port = ntohs(sa.sin_port);
    /* 40 ms to first byte, 10 MB/s in 16 KiB slices: 1,000,000 bytes take 100 ms after the head. */
    struct httpd_throttle th = {.ttfb_us = 40000, .bytes_per_sec = 10000000, .slice = 16384};
    struct run_arg a = {lfd, &th};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, run_thread, &a), 0);

    double ttfb = 0, total = 0, rttfb = 0, rtotal = 0, httfb = 0, htotal = 0;
    char out[700], rout[700];
    snprintf(out, sizeof out, "%s/all", d);
    snprintf(rout, sizeof rout, "%s/r", d);
    int e1 = curl_times(port, "", out, &ttfb, &total);
    int e2 = curl_times(port, "-r 4096-8191", rout, &rttfb, &rtotal);
    int e3 = curl_times(port, "-I", "/dev/null", &httfb, &htotal);
    httpd_stop();
    pthread_join(t, NULL);
    close(lfd);
    close(served_fd);
    CHECK_EQ(e1, 0);
    CHECK_EQ(e2, 0);
    CHECK_EQ(e3, 0);
    CHECK_EQ(sh("cmp -s %s/all %s/f", d, d), 0);
    CHECK_EQ(sh("[ $(wc -c < %s/r) -eq 4096 ] && cmp -s -i 4096:0 -n 4096 %s/f %s/r", d, d, d), 0);
    CHECK(ttfb >= 0.040);
    CHECK(total >= 0.040 + 0.100);
    CHECK(rttfb >= 0.040);
    CHECK(httfb >= 0.040);
}
