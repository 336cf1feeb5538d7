/* httpbench.c -- the in-tree HTTP client against curl, whole and ranged (see httpbench.h). */
#include "bench/httpbench.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "base/util.h"
#include "net/http.h"
#include "store/store.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const httpbench_names[HTTPBENCH_N] = {"snapctl GET", "curl -o /dev/null", "snapctl ranged GETs",
                                                  "curl ranged GETs"};

int httpbench_new(const char *url_text, uint64_t range, struct httpbench **out)
{
    struct httpbench *b = snap_calloc(1, sizeof *b);
    if (!b)
        return snap_fail(SNAP_ENOMEM, "bench http");
    b->url_text = url_text;
    b->range = range;
    int err = url_parse(url_text, &b->url);
    if (!err && b->url.scheme != URL_HTTP && b->url.scheme != URL_HTTPS)
        err = snap_fail(SNAP_EUSAGE, "bench http: --url %s is not http:// or https://", url_text);
    if (err) {
        httpbench_free(b);
        return err;
    }
    *out = b;
    return 0;
}

void httpbench_free(struct httpbench *b)
{
    if (!b)
        return;
    url_free(&b->url);
    snap_free(b);
}

/* The GETs of one in-process run: the whole object, or its ranges; *got the bytes received. */
static int httpbench_gets(struct httpbench *b, struct http_client *c, bool ranges, uint64_t *got)
{
    struct http_response rs;
    http_response_init(&rs);
    static uint8_t rbuf[STORE_STREAM_RECV]; /* as a streamed store read receives */
    int err = 0;
    *got = 0;
    if (!ranges) {
        struct http_request rq = {.method = "GET", .url = &b->url, .sink = HTTP_SINK_DISCARD,
                                  .recv_buf = rbuf, .recv_buf_len = sizeof rbuf};
        err = http_do(c, &rq, &rs);
        *got = rs.bytes;
    }
    for (uint64_t off = 0; ranges && !err && off < b->size; off += b->range) {
        struct http_request rq = {.method = "GET", .url = &b->url, .range = true, .range_off = off,
                                  .range_len = snap_min_u64(b->range, b->size - off), .sink = HTTP_SINK_DISCARD,
                                  .recv_buf = rbuf, .recv_buf_len = sizeof rbuf};
        err = http_do(c, &rq, &rs);
        *got += rs.bytes;
    }
    http_response_free(&rs);
    return err;
}

/* One in-process run with a new client; the first whole GET sets the size. */
static int httpbench_self(struct httpbench *b, bool ranges, double *secs)
{
    struct http_client *c;
    int err = http_client_new(NULL, &c);
    if (err)
        return err;
    uint64_t t0 = snap_now_ns(), got;
    err = httpbench_gets(b, c, ranges, &got);
    if (!err && !ranges && !b->size)
        b->size = got;
    *secs = (double)(snap_now_ns() - t0) / 1e9;
    struct http_stats st;
    http_client_stats(c, &st);
    if (ranges)
        b->connects = st.connects;
    http_client_free(c);
    if (!err && got != b->size)
        err = snap_fail(SNAP_ESHORT, "bench http: %s read %" PRIu64 " of %" PRIu64 " bytes", ranges ? "ranges" : "GET",
                        got, b->size);
    return err;
}

void httpbench_curl_config(const struct httpbench *b, FILE *f)
{
    fprintf(f, "silent\nfail\n");
    for (uint64_t off = 0; off < b->size; off += b->range) {
        uint64_t end = off + snap_min_u64(b->range, b->size - off) - 1;
        fprintf(f, "%surl = \"%s\"\nrange = \"%" PRIu64 "-%" PRIu64 "\"\noutput = \"/dev/null\"\n",
                off ? "next\nsilent\nfail\n" : "", b->url_text, off, end);
    }
}

/* The curl config for the ranged run, in a temp file (b->config; the caller removes it). */
static int httpbench_write_config(struct httpbench *b)
{
    const char *t = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(b->config, sizeof b->config, "%s/snapctl-bench-http.XXXXXX", t);
    int fd = mkstemp(b->config);
    if (fd < 0) {
        b->config[0] = '\0';
        return snap_fail_errno("bench http: a curl config in %s", t);
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return snap_fail_errno("bench http: %s", b->config);
    }
    httpbench_curl_config(b, f);
    if (fclose(f) != 0)
        return snap_fail_errno("bench http: writing %s", b->config);
    return 0;
}

static int httpbench_one(struct httpbench *b, int i, double *secs)
{
    char out[256];
    char *whole[] = {b->curl, "-s", "-f", "-o", "/dev/null", "--", (char *)b->url_text, NULL};
    char *ranged[] = {b->curl, "-K", b->config, NULL};
    switch (i) {
    case HTTPBENCH_SELF_WHOLE: return httpbench_self(b, false, secs);
    case HTTPBENCH_SELF_RANGES: return httpbench_self(b, true, secs);
    case HTTPBENCH_CURL_WHOLE: return bench_run_capture("bench http", whole, secs, out, sizeof out, NULL);
    default: return bench_run_capture("bench http", ranged, secs, out, sizeof out, NULL);
    }
}

int httpbench_run(struct httpbench *b, int runs)
{
    int err = bench_which("http", "curl", b->curl, sizeof b->curl);
    double warm;
    if (!err) /* the size, and the server's page cache */
        err = httpbench_self(b, false, &warm);
    if (!err && !b->size)
        err = snap_fail(SNAP_EPROTO, "bench http: %s is empty", b->url_text);
    if (!err) {
        b->nranges = (b->size + b->range - 1) / b->range;
        err = httpbench_write_config(b);
    }
    for (int r = 0; !err && r < runs; r++)
        for (int i = 0; !err && i < HTTPBENCH_N; i++)
            err = httpbench_one(b, i, &b->secs[i][r]);
    if (b->config[0])
        unlink(b->config);
    for (int i = 0; !err && i < HTTPBENCH_N; i++)
        b->median[i] = bench_median_secs(b->secs[i], runs);
    return err;
}
