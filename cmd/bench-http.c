/* bench-http.c -- `snapctl bench http`: raw GET throughput of the in-tree HTTP client
 * (lib/net/http.h, body discarded) against curl from the same server in the same run.
 *
 * Two shapes, each against its curl twin, interleaved run by run:
 *   one GET of the whole object          vs  curl -s -f -o /dev/null URL
 *   the object as N ranged GETs of --range-size over one keep-alive connection
 *                                        vs  one curl reading the same ranges (a -K config of
 *                                            url/range/output entries joined by `next`: curl
 *                                            keeps the connection across them too)
 * The client is in-process, a new one per run (so each run connects once), receiving into a
 * 256 KiB buffer as a streamed store read does; curl is a child timed from fork to exit.  The object's size comes from the first whole GET.
 */
#include "bench.h"
#include "bench/bench-run.h"
#include "cli.h"

#include "base/err.h"
#include "base/io.h"
#include "codec/json.h"
#include "base/util.h"
#include "net/http.h"
#include "net/url.h"
#include "store/store.h"

#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char http_bench_usage[] =
    "Usage: snapctl bench http --url URL [--range-size SIZE] [--runs N] [--json]\n"
    "\n"
    "GET throughput of snapctl's HTTP client (body discarded) against `curl -s -o /dev/null`\n"
    "from the same server in the same run: one whole-object GET each, and the object as ranged\n"
    "GETs of --range-size over one keep-alive connection each.  Prints the median MiB/s and\n"
    "snapctl's speedup over curl (above 1: snapctl is faster).  tests/bench/fetch.sh starts a\n"
    "loopback nginx with a 1 GiB file and runs this.\n"
    "\n"
    "  --url URL          an http(s):// URL of the object\n"
    "  --range-size SIZE  bytes per ranged GET (default 4MiB; K/M/G suffixes)\n"
    "  --runs N           runs of each contender, 1..100 (default 3; the median is reported)\n"
    "  --json             print one JSON object instead of the table\n"
    "\n"
    "Exit status: 0 done; 4 curl not found; 5 a GET failed or the sizes disagree.\n";

enum { HB_SELF_WHOLE, HB_CURL_WHOLE, HB_SELF_RANGES, HB_CURL_RANGES, HB_N };

struct hb_ctx {
    const char *url_text;
    struct url url;
    char curl[PATH_MAX], config[PATH_MAX];
    uint64_t size, range, nranges, connects;
    double secs[HB_N][BENCH_MAX_RUNS], median[HB_N];
};

static int hb_self(struct hb_ctx *x, bool ranges, double *secs)
{
    struct http_client *c;
    int err = http_client_new(NULL, &c);
    if (err)
        return err;
    struct http_response rs;
    http_response_init(&rs);
    static uint8_t rbuf[STORE_STREAM_RECV]; /* as a streamed store read receives */
    uint64_t t0 = snap_now_ns(), got = 0;
    if (!ranges) {
        struct http_request rq = {.method = "GET", .url = &x->url, .sink = HTTP_SINK_DISCARD,
                                  .recv_buf = rbuf, .recv_buf_len = sizeof rbuf};
        err = http_do(c, &rq, &rs);
        got = rs.bytes;
        if (!err && !x->size)
            x->size = got;
    } else {
        for (uint64_t off = 0; !err && off < x->size; off += x->range) {
            struct http_request rq = {.method = "GET", .url = &x->url, .range = true, .range_off = off,
                                      .range_len = snap_min_u64(x->range, x->size - off), .sink = HTTP_SINK_DISCARD,
                                      .recv_buf = rbuf, .recv_buf_len = sizeof rbuf};
            err = http_do(c, &rq, &rs);
            got += rs.bytes;
        }
    }
    *secs = (double)(snap_now_ns() - t0) / 1e9;
    struct http_stats st;
    http_client_stats(c, &st);
    if (ranges)
        x->connects = st.connects;
    http_response_free(&rs);
    http_client_free(c);
    if (!err && got != x->size)
        err = snap_fail(SNAP_ESHORT, "bench http: %s read %" PRIu64 " of %" PRIu64 " bytes", ranges ? "ranges" : "GET",
                        got, x->size);
    return err;
}

/* The curl config for the ranged run: one url/range/output group per range. */
static int hb_write_config(struct hb_ctx *x)
{
    const char *t = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(x->config, sizeof x->config, "%s/snapctl-bench-http.XXXXXX", t);
    int fd = mkstemp(x->config);
    if (fd < 0) {
        x->config[0] = '\0';
        return snap_fail_errno("bench http: a curl config in %s", t);
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return snap_fail_errno("bench http: %s", x->config);
    }
    fprintf(f, "silent\nfail\n");
    for (uint64_t off = 0; off < x->size; off += x->range) {
        uint64_t end = off + snap_min_u64(x->range, x->size - off) - 1;
        fprintf(f, "%surl = \"%s\"\nrange = \"%" PRIu64 "-%" PRIu64 "\"\noutput = \"/dev/null\"\n",
                off ? "next\nsilent\nfail\n" : "", x->url_text, off, end);
    }
    if (fclose(f) != 0)
        return snap_fail_errno("bench http: writing %s", x->config);
    return 0;
}

static int hb_run(struct hb_ctx *x, int i, double *secs)
{
    char out[256];
    char *whole[] = {x->curl, "-s", "-f", "-o", "/dev/null", "--", (char *)x->url_text, NULL};
    char *ranged[] = {x->curl, "-K", x->config, NULL};
    switch (i) {
    case HB_SELF_WHOLE: return hb_self(x, false, secs);
    case HB_SELF_RANGES: return hb_self(x, true, secs);
    case HB_CURL_WHOLE: return bench_run_capture("bench http", whole, secs, out, sizeof out, NULL);
    default: return bench_run_capture("bench http", ranged, secs, out, sizeof out, NULL);
    }
}

static const char *const hb_names[HB_N] = {"snapctl GET", "curl -o /dev/null", "snapctl ranged GETs",
                                           "curl ranged GETs"};

static void hb_report(const struct hb_ctx *x, int runs, bool json)
{
    double mib = (double)x->size / (1 << 20);
    if (json) {
        struct json j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_key(&j, "benchmark"), json_str(&j, "http");
        json_key(&j, "url"), json_str(&j, x->url_text);
        json_key(&j, "size"), json_u64(&j, x->size);
        json_key(&j, "range_size"), json_u64(&j, x->range);
        json_key(&j, "ranges"), json_u64(&j, x->nranges);
        json_key(&j, "snapctl_connects_for_ranges"), json_u64(&j, x->connects);
        json_key(&j, "runs"), json_u64(&j, (uint64_t)runs);
        json_key(&j, "results");
        json_arr_begin(&j);
        for (int i = 0; i < HB_N; i++) {
            json_obj_begin(&j);
            json_key(&j, "name"), json_str(&j, hb_names[i]);
            json_key(&j, "seconds");
            json_arr_begin(&j);
            for (int r = 0; r < runs; r++)
                json_double(&j, x->secs[i][r]);
            json_arr_end(&j);
            json_key(&j, "median_s"), json_double(&j, x->median[i]);
            json_key(&j, "mib_s"), json_double(&j, mib / x->median[i]);
            if (i == HB_SELF_WHOLE || i == HB_SELF_RANGES)
                json_key(&j, "vs_curl"), json_double(&j, x->median[i + 1] / x->median[i]);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_obj_end(&j);
        json_finish(&j);
        return;
    }
    char sz[32], rsz[32];
    printf("HTTP GET of %s from %s, body discarded, median of %d run%s\n", snap_fmt_size(x->size, sz, sizeof sz),
           x->url_text, runs, runs == 1 ? "" : "s");
    printf("ranged: %" PRIu64 " GETs of %s over one keep-alive connection (snapctl made %" PRIu64 ")\n\n",
           x->nranges, snap_fmt_size(x->range, rsz, sizeof rsz), x->connects);
    printf("%-22s %10s %10s %10s\n", "", "MiB/s", "median s", "vs curl");
    for (int i = 0; i < HB_N; i++) {
        printf("%-22s %10.1f %10.3f", hb_names[i], mib / x->median[i], x->median[i]);
        if (i == HB_SELF_WHOLE || i == HB_SELF_RANGES)
            printf(" %9.2fx", x->median[i + 1] / x->median[i]);
        printf("\n");
    }
    printf("\nvs curl = curl's time / snapctl's time for the same requests (above 1: snapctl is faster).\n");
}

int bench_http(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'}, {"range-size", required_argument, NULL, 's'},
        {"runs", required_argument, NULL, 'r'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    struct hb_ctx *x = calloc(1, sizeof *x);
    if (!x)
        return cli_fail(snap_fail(SNAP_ENOMEM, "bench http"), NULL);
    x->range = 4u << 20;
    uint64_t runs = 3;
    bool json = false;
    int opt, err = 0, rc;
    optind = 1;
    while ((opt = cli_getopt(argc, argv, "h", opts)) != -1) {
        switch (opt) {
        case 'u': x->url_text = optarg; break;
        case 's':
            if ((err = snap_parse_size(optarg, &x->range, "--range-size")) || x->range == 0) {
                rc = cli_usage_error("--range-size: '%s' is not a positive size", optarg);
                goto out;
            }
            break;
        case 'r':
            if ((err = snap_parse_u64(optarg, &runs, "--runs"))) {
                rc = cli_usage_error("%s", snap_errmsg(err));
                goto out;
            }
            break;
        case 'j': json = true; break;
        case 'h': fputs(http_bench_usage, stdout); rc = 0; goto out;
        default: rc = SNAP_EXIT_USAGE; goto out; /* CLI_OPT_BAD: cli_getopt said why */
        }
    }
    if (optind < argc || !x->url_text || runs < 1 || runs > BENCH_MAX_RUNS) {
        if (optind < argc)
            rc = cli_usage_error("unexpected argument '%s'", argv[optind]);
        else
            rc = cli_usage_error(!x->url_text ? "--url is required" : "--runs takes 1 to %d", BENCH_MAX_RUNS);
        goto out;
    }
    if ((err = url_parse(x->url_text, &x->url)) == 0 && x->url.scheme != URL_HTTP && x->url.scheme != URL_HTTPS)
        err = snap_fail(SNAP_EUSAGE, "bench http: --url %s is not http:// or https://", x->url_text);
    if (err) {
        rc = err == SNAP_EUSAGE ? cli_usage_error("%s", snap_errmsg(err)) : cli_fail(err, NULL);
        goto out;
    }
    err = bench_which("http", "curl", x->curl, sizeof x->curl);
    double warm;
    if (!err) /* the size, and the server's page cache */
        err = hb_self(x, false, &warm);
    if (!err && !x->size)
        err = snap_fail(SNAP_EPROTO, "bench http: %s is empty", x->url_text);
    if (!err) {
        x->nranges = (x->size + x->range - 1) / x->range;
        err = hb_write_config(x);
    }
    for (int r = 0; !err && r < (int)runs; r++)
        for (int i = 0; !err && i < HB_N; i++)
            err = hb_run(x, i, &x->secs[i][r]);
    if (x->config[0])
        unlink(x->config);
    if (err) {
        rc = cli_fail(err, NULL);
        goto out;
    }
    for (int i = 0; i < HB_N; i++) {
        x->median[i] = bench_median(x->secs[i], (int)runs);
        if (x->median[i] < 1e-9)
            x->median[i] = 1e-9;
    }
    hb_report(x, (int)runs, json);
    rc = 0;
out:
    url_free(&x->url);
    free(x);
    return rc;
}
