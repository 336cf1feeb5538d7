/* bench-header.c -- `snapctl bench header`: how fast a large header parses, and in how much
 * memory, for each version we write; options and output (the generator and the measurement
 * are lib/bench/hdrbench.c). */
#include "bench.h"
#include "cli.h"

#include "base/err.h"
#include "base/io.h"
#include "codec/json.h"
#include "base/mem.h"
#include "base/util.h"
#include "bench/hdrbench.h"
#include "header/header.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: snapctl bench header [--entries N] [--runs R] [--json] [--save DIR]\n"
    "\n"
    "Generate a random header of N entries (default 1000000; fixed seed, so every run\n"
    "measures the same bytes): 64 builds with packed storage, every fifth entry zeros,\n"
    "lengths of 1 to 8 pages.  Serialize it as v5, v4 and v3, parse each R times (default 5)\n"
    "and print version, bytes, entries, median parse time and the peak RSS of the process so\n"
    "far (versions run in that order, so v5's figure is its own).\n"
    "\n"
    "  --save DIR   also write the three files as DIR/header.v3, .v4, .v5\n"
    "\n"
    "Exits 1 when the median v5 parse takes 1 s or more.\n";

int bench_header(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"entries", required_argument, NULL, 'n'}, {"runs", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},          {"save", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    uint64_t n = 1000000, runs = 5;
    bool json = false;
    const char *save = NULL;
    int c, err;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "+h", longopts)) != -1) {
        switch (c) {
        case 'n':
            if ((err = snap_parse_u64(optarg, &n, "--entries")) || n == 0 || n > HDR_MAX_V5_ENTRIES)
                return cli_usage_error("--entries: '%s' is not a count from 1 to %u", optarg,
                                       HDR_MAX_V5_ENTRIES);
            break;
        case 'r':
            if ((err = snap_parse_u64(optarg, &runs, "--runs")) || runs == 0 || runs > 1000)
                return cli_usage_error("--runs: '%s' is not a count from 1 to 1000", optarg);
            break;
        case 'j': json = true; break;
        case 's': save = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: return SNAP_EXIT_USAGE; /* CLI_OPT_BAD: cli_getopt said why */
        }
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);

    struct hdr *src;
    if ((err = hdrbench_generate(n, &src)))
        return cli_fail(err, NULL);
    struct hdrbench_row rows[3];
    static const unsigned order[3] = {5, 4, 3};
    for (int i = 0; i < 3; i++)
        if ((err = hdrbench_measure(src, order[i], (int)runs, save, &rows[i]))) {
            hdr_free(src);
            return cli_fail(err, NULL);
        }
    hdr_free(src);

    bool slow = rows[0].median_ns >= HDRBENCH_LIMIT_NS;
    if (json) {
        struct json j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_key(&j, "benchmark"); json_str(&j, "header");
        json_key(&j, "entries"); json_u64(&j, n);
        json_key(&j, "runs"); json_u64(&j, runs);
        json_key(&j, "results");
        json_arr_begin(&j);
        for (int i = 0; i < 3; i++) {
            json_obj_begin(&j);
            json_key(&j, "version"); json_u64(&j, rows[i].version);
            json_key(&j, "bytes"); json_u64(&j, rows[i].bytes);
            json_key(&j, "entries"); json_u64(&j, rows[i].entries);
            json_key(&j, "median_parse_ms"); json_double(&j, (double)rows[i].median_ns / 1e6);
            json_key(&j, "peak_rss_bytes"); json_u64(&j, rows[i].rss);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_key(&j, "v5_under_1s"); json_bool(&j, !slow);
        json_obj_end(&j);
        json_finish(&j);
    } else {
        printf("header parse, %" PRIu64 " entries, median of %" PRIu64 " runs\n", n, runs);
        printf("%-8s %12s %10s %14s %14s\n", "version", "bytes", "entries", "median parse",
               "peak RSS");
        for (int i = 0; i < 3; i++) {
            char sz[32];
            printf("v%-7u %12zu %10zu %11.1f ms %14s\n", rows[i].version, rows[i].bytes,
                   rows[i].entries, (double)rows[i].median_ns / 1e6,
                   snap_fmt_size(rows[i].rss, sz, sizeof sz));
        }
    }
    if (slow) {
        fprintf(stderr, "snapctl bench: header: v5 parse took %.1f ms, the limit is 1000 ms\n",
                (double)rows[0].median_ns / 1e6);
        return 1;
    }
    return 0;
}
