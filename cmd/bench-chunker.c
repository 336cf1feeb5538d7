/* bench-chunker.c -- `snapctl bench chunker`: the seed benchmark (benchmarks.md section 1): its
 * options, table and JSON.  The runner, the model and the CSV and SVG files are in
 * lib/bench/chunkbench.c (chunkbench.h says what is measured and how). */
#include "bench.h"
#include "cli.h"

#include "base/err.h"
#include "codec/json.h"
#include "base/util.h"
#include "bench/chunkbench.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: snapctl bench chunker [OPTIONS]\n"
    "\n"
    "Cold random 4 KiB reads of one 4 MiB object: full fetch vs streaming vs demand-first,\n"
    "against the physical floor (time to first byte + 4 KiB at the bandwidth).\n"
    "\n"
    "Options:\n"
    "  --profile P      gcs (20 ms + 100 MB/s), nfs (1 ms + 500 MB/s) or TTFB_MS,MBPS;\n"
    "                   repeatable; default: gcs and nfs\n"
    "  --callers N      concurrent readers per iteration (default 3)\n"
    "  --iterations N   cold-cache iterations per run (default 300)\n"
    "  --runs N         runs per mode; the table shows the median (default 3)\n"
    "  --quick          50 iterations, 1 run\n"
    "  --seed N         seed of the offset sequence (default 1)\n"
    "  --source S       where the bytes come from: sim (in-process simulated store, real\n"
    "                   sleeps), http (a throttled HTTP server on 127.0.0.1 in this process, read\n"
    "                   through the http:// store), both (default: sim, then http), or the URL\n"
    "                   of a 4 MiB http(s) object (the server's own delays; the profile only\n"
    "                   sets the floor)\n"
    "  --faultserver U  the URL of a 4 MiB object on tests/tools/faultserver.py; each profile's\n"
    "                   delays are asked for with a /_fault/ttfb=MS,rate=MBPS/ path prefix\n"
    "  --json           print the results as JSON instead of a table\n"
    "  --csv FILE       write every read's latency (profile,mode,run,iteration,caller,offset,us)\n"
    "  --svg FILE       write the latency CDFs per profile and mode\n"
    "\n"
    "Exits 1 unless streaming beats full by what physics allows over an overhead-free full fetch\n"
    "(rounded down to 0.1x: 1.5x gcs, 1.8x nfs; the seed's 1.55x and 2.3x are printed beside)\n"
    "and demand-first averages at most 1.3x the floor.\n";

static void print_table(const struct chunkbench *b, FILE *f)
{
    fprintf(f, "one %u MiB object, %u callers x %u B random reads, %u iterations x %u runs (median), cold cache "
               "each iteration\n", CHUNKBENCH_OBJ_SIZE >> 20, b->callers, CHUNKBENCH_READ, b->iterations, b->runs);
    for (int k = 0; k < b->nkinds; k++)
        fprintf(f, "source %s: %s\n", chunkbench_source_label(b->kinds[k]), chunkbench_source_desc(b, b->kinds[k]));
    for (int i = 0; i < b->nprof; i++) {
        const struct chunkbench_profile *p = &b->prof[i];
        fprintf(f, "  %s %s alone: 4 KiB in %.2f ms (floor %.2f), %u x 4 KiB at once %.2f ms avg, %u MiB in %.2f ms "
                   "(ideal %.2f)%s\n", chunkbench_source_label(p->kind), p->name, p->src_small_ms, p->floor_ms, b->callers,
                p->src_conc_ms, CHUNKBENCH_OBJ_SIZE >> 20, p->src_whole_ms, p->ideal_full_ms,
                p->src_slow ? ": the SOURCE does not keep up with the profile's bandwidth" : "");
        if (p->src_slow)
            fprintf(f, "    (%.0f MB/s effective instead of %g: full and streaming are slowed by the server, not "
                       "the chunker)\n", CHUNKBENCH_OBJ_SIZE / ((p->src_whole_ms - p->ttfb_ms) * 1e3), p->mbps);
    }
    fprintf(f, "\n");
    fprintf(f, "%-12s %-8s %-14s %12s %14s %10s\n", "source", "store", "chunker", "avg/caller", "worst/caller",
            "vs floor");
    for (int i = 0; i < b->nprof; i++) {
        const struct chunkbench_profile *p = &b->prof[i];
        const char *src = chunkbench_source_label(p->kind);
        for (int m = 0; m < CHUNKBENCH_MODES; m++)
            fprintf(f, "%-12s %-8s %-14s %9.2f ms %11.2f ms %9.2fx\n", src, p->name, chunker_mode_name(chunkbench_modes[m]),
                    p->med_avg[m], p->med_worst[m], p->med_avg[m] / p->floor_ms);
        fprintf(f, "%-12s %-8s %-14s %9.2f ms\n", src, p->name, "floor", p->floor_ms);
    }
    fprintf(f, "\n");
    for (int i = 0; i < b->nprof; i++) {
        const struct chunkbench_profile *p = &b->prof[i];
        const char *src = chunkbench_source_label(p->kind);
        fprintf(f, "%-4s %s %s: streaming vs full %.2fx (want >= %.1fx", p->stream_ok ? "ok" : "FAIL", src, p->name,
                p->stream_ratio, p->min_stream_ratio);
        if (p->seed_ratio)
            fprintf(f, "; the seed: %.2fx", p->seed_ratio);
        fprintf(f, ")\n     physics: full >= %.2f ms, streaming >= %.2f ms: %.2fx over an overhead-free full "
                   "fetch, %.2fx over this run's full\n", p->ideal_full_ms, p->ideal_stream_ms, p->ideal_ratio,
                p->med_avg[0] / p->ideal_stream_ms);
        fprintf(f, "%-4s %s %s: demand-first vs floor %.2fx (want <= 1.3x)\n", p->demand_ok ? "ok" : "FAIL", src,
                p->name, p->demand_ratio);
        if (p->src_conc_ms > 1.3 * p->floor_ms)
            fprintf(f, "     the source itself answers %u concurrent 4 KiB reads in %.2f ms (%.2fx the floor); "
                       "demand-first is %.2fx that\n", b->callers, p->src_conc_ms, p->src_conc_ms / p->floor_ms,
                    p->med_avg[2] / p->src_conc_ms);
    }
}

static void jstr(struct json *j, const char *k, const char *v) { json_key(j, k); json_str(j, v); }
static void jdbl(struct json *j, const char *k, double v) { json_key(j, k); json_double(j, v); }
static void ju64(struct json *j, const char *k, uint64_t v) { json_key(j, k); json_u64(j, v); }
static void jbool(struct json *j, const char *k, bool v) { json_key(j, k); json_bool(j, v); }

static void print_json(const struct chunkbench *b, bool pass)
{
    struct json j;
    json_init(&j, stdout);
    json_obj_begin(&j);
    jstr(&j, "benchmark", "chunker");
    json_key(&j, "sources");
    json_arr_begin(&j);
    for (int k = 0; k < b->nkinds; k++)
        json_str(&j, chunkbench_source_label(b->kinds[k]));
    json_arr_end(&j);
    if (b->kinds[0] != CHUNKBENCH_SIM && b->kinds[0] != CHUNKBENCH_HTTPD)
        jstr(&j, "url", b->source);
    ju64(&j, "object_bytes", CHUNKBENCH_OBJ_SIZE);
    ju64(&j, "read_bytes", CHUNKBENCH_READ);
    ju64(&j, "callers", b->callers);
    ju64(&j, "iterations", b->iterations);
    ju64(&j, "runs", b->runs);
    ju64(&j, "seed", b->seed);
    json_key(&j, "profiles");
    json_arr_begin(&j);
    for (int i = 0; i < b->nprof; i++) {
        const struct chunkbench_profile *p = &b->prof[i];
        json_obj_begin(&j);
        jstr(&j, "source", chunkbench_source_label(p->kind));
        jstr(&j, "name", p->name);
        jdbl(&j, "ttfb_ms", p->ttfb_ms);
        jdbl(&j, "mbps", p->mbps);
        jdbl(&j, "floor_ms", p->floor_ms);
        jdbl(&j, "ideal_full_ms", p->ideal_full_ms);
        jdbl(&j, "ideal_streaming_ms", p->ideal_stream_ms);
        jdbl(&j, "source_4k_ms", p->src_small_ms);
        jdbl(&j, "source_whole_ms", p->src_whole_ms);
        jdbl(&j, "source_concurrent_4k_ms", p->src_conc_ms);
        jbool(&j, "source_keeps_up", !p->src_slow);
        if (p->kind == CHUNKBENCH_HTTPD)
            ju64(&j, "server_requests", p->srv_requests);
        json_key(&j, "modes");
        json_arr_begin(&j);
        for (int m = 0; m < CHUNKBENCH_MODES; m++) {
            json_obj_begin(&j);
            jstr(&j, "mode", chunker_mode_name(chunkbench_modes[m]));
            jdbl(&j, "avg_ms", p->med_avg[m]);
            jdbl(&j, "worst_ms", p->med_worst[m]);
            json_key(&j, "runs");
            json_arr_begin(&j);
            for (unsigned r = 0; r < b->runs; r++) {
                json_obj_begin(&j);
                jdbl(&j, "avg_ms", p->avg[m][r]);
                jdbl(&j, "worst_ms", p->worst[m][r]);
                json_obj_end(&j);
            }
            json_arr_end(&j);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_key(&j, "checks");
        json_arr_begin(&j);
        {
            json_obj_begin(&j);
            jstr(&j, "name", "streaming_vs_full");
            jdbl(&j, "ratio", p->stream_ratio);
            jdbl(&j, "min", p->min_stream_ratio);
            jdbl(&j, "ideal", p->ideal_ratio);
            if (p->seed_ratio)
                jdbl(&j, "seed", p->seed_ratio);
            jbool(&j, "pass", p->stream_ok);
            json_obj_end(&j);
        }
        json_obj_begin(&j);
        jstr(&j, "name", "demand_vs_floor");
        jdbl(&j, "ratio", p->demand_ratio);
        jdbl(&j, "max", CHUNKBENCH_DEMAND_MAX);
        jbool(&j, "pass", p->demand_ok);
        json_obj_end(&j);
        json_arr_end(&j);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    jbool(&j, "pass", pass);
    json_obj_end(&j);
    json_finish(&j);
}

static int parse_count(const char *opt, const char *v, unsigned lo, unsigned hi, unsigned *out)
{
    uint64_t n;
    if (!v || snap_parse_u64(v, &n, opt) || n < lo || n > hi)
        return cli_usage_error("%s wants a number in %u..%u", opt, lo, hi);
    *out = (unsigned)n;
    return 0;
}


/* Write one of the result files with fn; 0 or a failure naming the file. */
static int write_file(struct chunkbench *b, const char *file, void (*fn)(struct chunkbench *, FILE *))
{
    FILE *f = fopen(file, "w");
    if (!f)
        return snap_fail_errno("%s", file);
    fn(b, f);
    bool bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return snap_fail_errno("%s", file);
    return 0;
}

static void csv_rows(struct chunkbench *b, FILE *f)
{
    chunkbench_write_csv(b, f);
}

/* The options into b; 0, or the exit code of the usage error it printed. */
static int parse_options(int argc, char **argv, struct chunkbench *b, bool *json, bool *faultserver,
                         const char **csv, const char **svg)
{
    enum { O_QUICK = 256, O_JSON, O_PROFILE, O_CALLERS, O_ITER, O_RUNS, O_SEED, O_CSV, O_SVG, O_SOURCE, O_FAULT };
    static const struct option longopts[] = {
        {"quick", no_argument, NULL, O_QUICK},          {"json", no_argument, NULL, O_JSON},
        {"profile", required_argument, NULL, O_PROFILE}, {"callers", required_argument, NULL, O_CALLERS},
        {"iterations", required_argument, NULL, O_ITER}, {"runs", required_argument, NULL, O_RUNS},
        {"seed", required_argument, NULL, O_SEED},       {"csv", required_argument, NULL, O_CSV},
        {"svg", required_argument, NULL, O_SVG},         {"source", required_argument, NULL, O_SOURCE},
        {"faultserver", required_argument, NULL, O_FAULT}, {NULL, 0, NULL, 0},
    };
    int rc = 0, c;
    unsigned n = 0;
    optind = 1;
    while (!rc && (c = cli_getopt(argc, argv, "+", longopts)) != -1) {
        const char *v = optarg;
        switch (c) {
        case O_QUICK:
            b->iterations = 50;
            b->runs = 1;
            break;
        case O_JSON: *json = true; break;
        case O_PROFILE:
            if (chunkbench_add_profile(b, v))
                rc = cli_usage_error("%s", snap_errmsg(SNAP_EUSAGE));
            break;
        case O_CALLERS: rc = parse_count("--callers", v, 1, CHUNKBENCH_MAX_CALLERS, &b->callers); break;
        case O_ITER: rc = parse_count("--iterations", v, 1, 100000, &b->iterations); break;
        case O_RUNS: rc = parse_count("--runs", v, 1, CHUNKBENCH_MAX_RUNS, &b->runs); break;
        case O_SEED:
            rc = parse_count("--seed", v, 0, 0x7fffffff, &n);
            b->seed = n;
            break;
        case O_CSV: *csv = v; break;
        case O_SVG: *svg = v; break;
        case O_SOURCE:
        case O_FAULT:
            *faultserver = c == O_FAULT;
            if (chunkbench_set_source(b, v, *faultserver))
                rc = cli_usage_error("%s", snap_errmsg(SNAP_EUSAGE));
            break;
        default: rc = SNAP_EXIT_USAGE; /* CLI_OPT_BAD: cli_getopt said why */
        }
    }
    if (!rc && optind < argc)
        rc = cli_usage_error("unexpected argument '%s'", argv[optind]);
    return rc;
}

int bench_chunker(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    static struct chunkbench b;
    chunkbench_init(&b);
    const char *csv = NULL, *svg = NULL;
    bool json = false, faultserver = false;
    int rc = parse_options(argc, argv, &b, &json, &faultserver, &csv, &svg);
    if (rc)
        return rc;
    int err = chunkbench_setup(&b, faultserver);
    if (!err)
        err = chunkbench_run(&b);
    if (!err) {
        if (json)
            print_json(&b, b.pass);
        else
            print_table(&b, stdout);
        if (csv)
            err = write_file(&b, csv, csv_rows);
        if (!err && svg)
            err = write_file(&b, svg, chunkbench_write_svg);
    }
    bool pass = b.pass;
    chunkbench_free(&b);
    if (err)
        return cli_fail(err, NULL);
    return pass ? 0 : SNAP_EXIT_FAIL;
}
