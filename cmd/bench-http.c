/* bench-http.c -- `snapctl bench http`: raw GET throughput of the in-tree HTTP client
 * (lib/net/http.h, body discarded) against curl from the same server in the same run.
 *
 * Options and the table or JSON; the client, curl's runs and the medians are lib/bench/httpbench.
 */
#include "bench.h"
#include "bench/httpbench.h"
#include "cli.h"

#include "base/err.h"
#include "codec/json.h"
#include "base/util.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

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

static void hb_report(const struct httpbench *x, int runs, bool json)
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
        for (int i = 0; i < HTTPBENCH_N; i++) {
            json_obj_begin(&j);
            json_key(&j, "name"), json_str(&j, httpbench_names[i]);
            json_key(&j, "seconds");
            json_arr_begin(&j);
            for (int r = 0; r < runs; r++)
                json_double(&j, x->secs[i][r]);
            json_arr_end(&j);
            json_key(&j, "median_s"), json_double(&j, x->median[i]);
            json_key(&j, "mib_s"), json_double(&j, mib / x->median[i]);
            if (i == HTTPBENCH_SELF_WHOLE || i == HTTPBENCH_SELF_RANGES)
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
    for (int i = 0; i < HTTPBENCH_N; i++) {
        printf("%-22s %10.1f %10.3f", httpbench_names[i], mib / x->median[i], x->median[i]);
        if (i == HTTPBENCH_SELF_WHOLE || i == HTTPBENCH_SELF_RANGES)
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
    const char *url = NULL;
    uint64_t range = 4u << 20, runs = 3;
    bool json = false;
    int opt, err = 0;
    optind = 1;
    while ((opt = cli_getopt(argc, argv, "h", opts)) != -1) {
        switch (opt) {
        case 'u': url = optarg; break;
        case 's':
            if ((err = snap_parse_size(optarg, &range, "--range-size")) || range == 0)
                return cli_usage_error("--range-size: '%s' is not a positive size", optarg);
            break;
        case 'r':
            if ((err = snap_parse_u64(optarg, &runs, "--runs")))
                return cli_usage_error("%s", snap_errmsg(err));
            break;
        case 'j': json = true; break;
        case 'h': fputs(http_bench_usage, stdout); return 0;
        default: return SNAP_EXIT_USAGE; /* CLI_OPT_BAD: cli_getopt said why */
        }
    }
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!url || runs < 1 || runs > BENCH_MAX_RUNS)
        return cli_usage_error(!url ? "--url is required" : "--runs takes 1 to %d", BENCH_MAX_RUNS);
    struct httpbench *x;
    if ((err = httpbench_new(url, range, &x)))
        return err == SNAP_EUSAGE ? cli_usage_error("%s", snap_errmsg(err)) : cli_fail(err, NULL);
    err = httpbench_run(x, (int)runs);
    if (!err)
        hb_report(x, (int)runs, json);
    httpbench_free(x);
    return err ? cli_fail(err, NULL) : 0;
}
