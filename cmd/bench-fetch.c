/* bench-fetch.c -- `snapctl bench fetch`: a verified download into the cache against the shell
 * pipelines people would write instead, on the same URL in the same run.
 *
 * Contenders, each run as a child process timed from fork to exit, interleaved run by run so
 * drift in machine load hits them all alike:
 *   snapctl fetch URL --sha256 HEX --cache-dir DIR   (receive, write, hash, fsync, rename)
 *   curl -s URL | openssl dgst -sha256                (receive, hash in a second process)
 *   curl -s URL | sha256sum
 *   curl -s -o /dev/null URL                          (the transport alone: shows the server
 *                                                      is not the bottleneck)
 * Every digest must be the expected one; the cached file is removed after each run, so every
 * fetch is a miss.  The server is the caller's: tests/bench/fetch.sh starts a loopback nginx
 * (tests/tools/nginx.sh), makes a 1 GiB file and runs this.
 */
#include "bench.h"
#include "bench/bench-run.h"
#include "cli.h"

#include "base/err.h"
#include "codec/json.h"
#include "base/util.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

enum { FB_FETCH, FB_OPENSSL, FB_SHA256SUM, FB_CURL, FB_N };

struct fb_contender {
    const char *name;
    double secs[BENCH_MAX_RUNS];
    double median;
};

struct fb_ctx {
    char self[PATH_MAX], curl[PATH_MAX], openssl[PATH_MAX], sha256sum[PATH_MAX], sh[PATH_MAX];
    const char *url, *hex, *dir;
    char pipe_openssl[PATH_MAX * 2 + 64], pipe_sha256sum[PATH_MAX * 2 + 64], pipe_curl[PATH_MAX + 64];
    uint64_t size;
};

/* One timed run of contender i. */
static int fb_run(struct fb_ctx *x, int i, double *secs)
{
    char out[PATH_MAX + 256], hex[65];
    char *fetch_argv[] = {x->self, "fetch", (char *)x->url, "--sha256", (char *)x->hex, "--cache-dir",
                          (char *)x->dir, "--quiet", NULL};
    /* The URL goes in as $1, never into the shell text. */
    char *sh_argv[] = {x->sh, "-c", NULL, "sh", (char *)x->url, NULL};
    sh_argv[2] = i == FB_OPENSSL ? x->pipe_openssl : i == FB_SHA256SUM ? x->pipe_sha256sum : x->pipe_curl;
    int code = 0;
    int err = bench_run_capture("bench fetch", i == FB_FETCH ? fetch_argv : sh_argv, secs, out, sizeof out, &code);
    if (err && i == FB_FETCH && code == SNAP_EXIT_VERIFY) /* fetch said why on stderr */
        return snap_fail(SNAP_EHASH, "bench fetch: snapctl fetch found a different SHA-256 than --sha256");
    if (err)
        return err;
    if (i == FB_FETCH) {
        out[strcspn(out, "\n")] = '\0';
        struct stat st;
        if (stat(out, &st) < 0)
            return snap_fail_errno("bench fetch: the fetched file '%s'", out);
        x->size = (uint64_t)st.st_size;
        if (unlink(out) < 0)
            return snap_fail_errno("bench fetch: removing %s", out);
        return 0;
    }
    if (i == FB_CURL)
        return 0;
    if (bench_parse_digest(out, hex) != 0)
        return snap_fail(SNAP_EPROTO, "bench fetch: no digest in the output of '%s': \"%.100s\"", sh_argv[2], out);
    if (strcmp(hex, x->hex) != 0)
        return snap_fail(SNAP_EHASH, "bench fetch: '%s' gave %s, expected %s", sh_argv[2], hex, x->hex);
    return 0;
}

static void fb_report(const struct fb_contender *c, const struct fb_ctx *x, int runs, bool json)
{
    double mib = (double)x->size / (1 << 20);
    if (json) {
        struct json j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_key(&j, "benchmark"), json_str(&j, "fetch");
        json_key(&j, "url"), json_str(&j, x->url);
        json_key(&j, "size"), json_u64(&j, x->size);
        json_key(&j, "runs"), json_u64(&j, (uint64_t)runs);
        json_key(&j, "results");
        json_arr_begin(&j);
        for (int i = 0; i < FB_N; i++) {
            json_obj_begin(&j);
            json_key(&j, "name"), json_str(&j, c[i].name);
            json_key(&j, "seconds");
            json_arr_begin(&j);
            for (int r = 0; r < runs; r++)
                json_double(&j, c[i].secs[r]);
            json_arr_end(&j);
            json_key(&j, "median_s"), json_double(&j, c[i].median);
            json_key(&j, "mib_s"), json_double(&j, mib / c[i].median);
            json_key(&j, "fetch_speedup"), json_double(&j, c[i].median / c[FB_FETCH].median);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_obj_end(&j);
        json_finish(&j);
        return;
    }
    char sz[32];
    printf("Download and SHA-256 of %s from %s, median of %d run%s\n\n", snap_fmt_size(x->size, sz, sizeof sz),
           x->url, runs, runs == 1 ? "" : "s");
    printf("%-38s %10s %10s %14s\n", "", "MiB/s", "median s", "fetch speedup");
    for (int i = 0; i < FB_N; i++) {
        printf("%-38s %10.1f %10.3f", c[i].name, mib / c[i].median, c[i].median);
        if (i != FB_FETCH)
            printf(" %13.2fx", c[i].median / c[FB_FETCH].median);
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
    struct fb_ctx x = {0};
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
    uint8_t bin[32];
    if (strlen(x.hex) != 64 || snap_unhex(x.hex, bin, 32) || strspn(x.hex, "0123456789abcdef") != 64)
        return cli_usage_error("--sha256: expected 64 lowercase hex digits, got '%s'", x.hex);
    if (runs < 1 || runs > BENCH_MAX_RUNS)
        return cli_usage_error("--runs must be 1..%d", BENCH_MAX_RUNS);

    ssize_t n = readlink("/proc/self/exe", x.self, sizeof x.self - 1);
    if (n <= 0)
        return cli_fail(snap_fail_errno("bench fetch: /proc/self/exe"), NULL);
    x.self[n] = '\0';
    if ((err = bench_which("fetch", "curl", x.curl, sizeof x.curl)) ||
        (err = bench_which("fetch", "openssl", x.openssl, sizeof x.openssl)) ||
        (err = bench_which("fetch", "sha256sum", x.sha256sum, sizeof x.sha256sum)) ||
        (err = bench_which("fetch", "sh", x.sh, sizeof x.sh)))
        return cli_fail(err, NULL);
    snprintf(x.pipe_openssl, sizeof x.pipe_openssl, "'%s' -s -f -- \"$1\" | '%s' dgst -sha256", x.curl, x.openssl);
    snprintf(x.pipe_sha256sum, sizeof x.pipe_sha256sum, "'%s' -s -f -- \"$1\" | '%s'", x.curl, x.sha256sum);
    snprintf(x.pipe_curl, sizeof x.pipe_curl, "'%s' -s -f -o /dev/null -- \"$1\"", x.curl);

    char tmpdir[PATH_MAX] = "";
    if (!x.dir) {
        const char *t = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(tmpdir, sizeof tmpdir, "%s/snapctl-bench-fetch.XXXXXX", t);
        if (!mkdtemp(tmpdir))
            return cli_fail(snap_fail_errno("bench fetch: a cache directory in %s", t), NULL);
        x.dir = tmpdir;
    }

    struct fb_contender c[FB_N] = {
        [FB_FETCH] = {.name = "snapctl fetch (to the cache, fsync'd)"},
        [FB_OPENSSL] = {.name = "curl -s URL | openssl dgst -sha256"},
        [FB_SHA256SUM] = {.name = "curl -s URL | sha256sum"},
        [FB_CURL] = {.name = "curl -s -o /dev/null URL"},
    };
    double warm;
    err = fb_run(&x, FB_CURL, &warm); /* the server's page cache */
    for (int r = 0; !err && r < (int)runs; r++)
        for (int i = 0; !err && i < FB_N; i++)
            err = fb_run(&x, i, &c[i].secs[r]);
    if (tmpdir[0])
        rmdir(tmpdir);
    if (err)
        return cli_fail(err, NULL);
    for (int i = 0; i < FB_N; i++) {
        c[i].median = bench_median(c[i].secs, (int)runs);
        if (c[i].median < 1e-9)
            c[i].median = 1e-9;
    }
    fb_report(c, &x, (int)runs, json);
    return 0;
}
