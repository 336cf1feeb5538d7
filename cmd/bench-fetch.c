/* bench-fetch.c -- `snapctl bench fetch`: a verified download into the cache against the shell
 * pipelines people would write instead, on the same URL in the same run.
 *
 * Options and the table or JSON; the contenders and their runs are lib/bench/fetchbench.  The
 * server is the caller's: tests/bench/fetch.sh starts a loopback nginx (tests/tools/nginx.sh),
 * makes a 1 GiB file and runs this.
 */
#include "bench.h"
#include "bench/fetchbench.h"
#include "cli.h"

#include "base/err.h"
#include "codec/json.h"
#include "base/util.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char fetch_bench_usage[] =
    "Usage: snapctl bench fetch --url URL --sha256 HEX [--runs N] [--cache-dir DIR] [--json]\n"
    "\n"
    "Throughput of `snapctl fetch URL` (a miss: download, hash, write, fsync, rename) against\n"
    "`curl -s URL | openssl dgst -sha256` and `curl -s URL | sha256sum`, with `curl -s -o\n"
    "/dev/null URL` as the transport's floor, all in the same run on the same URL.  Prints the\n"
    "median MiB/s of each and fetch's ratio to each pipeline (above 1: fetch is faster).\n"
    "tests/bench/fetch.sh starts a loopback nginx with a 1 GiB file and runs this.\n"
    "\n"
    "  --url URL        an http(s):// URL of the object\n"
    "  --sha256 HEX     its SHA-256 (every contender's digest is checked against it)\n"
    "  --runs N         runs of each contender, 1..100 (default 3; the median is reported)\n"
    "  --cache-dir DIR  where the fetches land (default a new directory in $TMPDIR or /tmp)\n"
    "  --json           print one JSON object instead of the table\n"
    "\n"
    "Exit status: 0 done; 4 curl, openssl or sha256sum not found; 5 a contender failed;\n"
    "6 a digest differs from --sha256.\n";

static void fb_report(const struct fetchbench *x, bool json)
{
    double mib = (double)x->size / (1 << 20);
    if (json) {
        struct json j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_key(&j, "benchmark"), json_str(&j, "fetch");
        json_key(&j, "url"), json_str(&j, x->url);
        json_key(&j, "size"), json_u64(&j, x->size);
        json_key(&j, "runs"), json_u64(&j, (uint64_t)x->runs);
        json_key(&j, "results");
        json_arr_begin(&j);
        for (int i = 0; i < FETCHBENCH_N; i++) {
            json_obj_begin(&j);
            json_key(&j, "name"), json_str(&j, fetchbench_names[i]);
            json_key(&j, "seconds");
            json_arr_begin(&j);
            for (int r = 0; r < x->runs; r++)
                json_double(&j, x->secs[i][r]);
            json_arr_end(&j);
            json_key(&j, "median_s"), json_double(&j, x->median[i]);
            json_key(&j, "mib_s"), json_double(&j, mib / x->median[i]);
            json_key(&j, "fetch_speedup"), json_double(&j, x->median[i] / x->median[FETCHBENCH_FETCH]);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_obj_end(&j);
        json_finish(&j);
        return;
    }
    char sz[32];
    printf("Download and SHA-256 of %s from %s, median of %d run%s\n\n", snap_fmt_size(x->size, sz, sizeof sz),
           x->url, x->runs, x->runs == 1 ? "" : "s");
    printf("%-38s %10s %10s %14s\n", "", "MiB/s", "median s", "fetch speedup");
    for (int i = 0; i < FETCHBENCH_N; i++) {
        printf("%-38s %10.1f %10.3f", fetchbench_names[i], mib / x->median[i], x->median[i]);
        if (i != FETCHBENCH_FETCH)
            printf(" %13.2fx", x->median[i] / x->median[FETCHBENCH_FETCH]);
        printf("\n");
    }
    printf("\nfetch speedup = the pipeline's time / snapctl fetch's time (above 1: fetch is faster);\n"
           "curl -o /dev/null neither hashes nor writes: it is the transport's floor.\n");
}

int bench_fetch(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},  {"sha256", required_argument, NULL, 's'},
        {"runs", required_argument, NULL, 'r'}, {"cache-dir", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct fetchbench x = {0};
    uint64_t runs = 3;
    bool json = false;
    int opt, err;
    optind = 1;
    while ((opt = cli_getopt(argc, argv, "h", opts)) != -1) {
        switch (opt) {
        case 'u': x.url = optarg; break;
        case 's': x.hex = optarg; break;
        case 'd': x.dir = optarg; break;
        case 'r':
            if ((err = snap_parse_u64(optarg, &runs, "--runs")))
                return cli_usage_error("%s", snap_errmsg(err));
            break;
        case 'j': json = true; break;
        case 'h': fputs(fetch_bench_usage, stdout); return 0;
        default: return SNAP_EXIT_USAGE; /* CLI_OPT_BAD: cli_getopt said why */
        }
    }
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!x.url || !x.hex)
        return cli_usage_error("--url and --sha256 are required (tests/bench/fetch.sh sets up both)");
    if (strncmp(x.url, "http://", 7) != 0 && strncmp(x.url, "https://", 8) != 0)
        return cli_usage_error("--url must be http:// or https:// (curl is the peer)");
    if (!fetchbench_hex_ok(x.hex))
        return cli_usage_error("--sha256: expected 64 lowercase hex digits, got '%s'", x.hex);
    if (runs < 1 || runs > BENCH_MAX_RUNS)
        return cli_usage_error("--runs must be 1..%d", BENCH_MAX_RUNS);

    x.runs = (int)runs;
    if ((err = fetchbench_run(&x)))
        return cli_fail(err, NULL);
    fb_report(&x, json);
    return 0;
}
