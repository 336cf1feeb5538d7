/* bench-sha256.c -- `snapctl bench sha256`: SHA-256 throughput of snapctl (SHA-NI and generic)
 * against `sha256sum FILE` and `openssl dgst -sha256 FILE`, measured in the same run.
 *
 * Options, the generated file's cancel token and the table or JSON; the contenders, the file and
 * the interleaved runs are lib/bench/shabench.
 */
#include "bench.h"
#include "bench/shabench.h"
#include "cli.h"

#include "base/cancel.h"
#include "base/err.h"
#include "codec/json.h"
#include "base/util.h"
#include "crypto/sha256.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char sha_bench_usage[] =
    "Usage: snapctl bench sha256 [--size SIZE] [--file FILE] [--dir DIR] [--runs N] [--json]\n"
    "\n"
    "SHA-256 throughput of snapctl (SHA-NI and generic mbedTLS) against `sha256sum FILE` and\n"
    "`openssl dgst -sha256 FILE`, all on one file with the page cache warm, in the same run.\n"
    "Prints the median MiB/s of each and snapctl's ratio to each peer; the digests must agree.\n"
    "\n"
    "  --size SIZE   size of the generated file (default 1G; K/M/G/T suffixes)\n"
    "  --file FILE   hash FILE instead of generating one (it is left in place)\n"
    "  --dir DIR     where to generate the file (default $TMPDIR, else /tmp)\n"
    "  --runs N      runs of each contender, 1..100 (default 3; the median is reported)\n"
    "  --json        print one JSON object instead of the table\n"
    "\n"
    "SNAPCTL_SHA256=generic changes snapctl's default implementation (shown), not what is measured.\n"
    "Exit status: 0 done; 4 sha256sum or openssl not found; 6 the digests disagree.\n";

static char sha_bench_tmp[PATH_MAX]; /* the generated file, removed at exit and on signals */
/* SIGINT/SIGTERM: end at once, removing the generated file (lib/base/cancel). */
static struct snap_cancel sha_bench_cancel = {.grace_ms = 0};

static void sha_bench_report(const struct shabench_contender *c, const char *file, bool generated, uint64_t size,
                             int runs, const char *digest, bool json)
{
    double mib = (double)size / (1 << 20);
    const struct shabench_contender *sum = &c[SHABENCH_SHA256SUM], *ossl = &c[SHABENCH_OPENSSL];
    if (json) {
        struct json j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_key(&j, "benchmark"), json_str(&j, "sha256");
        json_key(&j, "file"), json_str(&j, file);
        json_key(&j, "generated"), json_bool(&j, generated);
        json_key(&j, "size"), json_u64(&j, size);
        json_key(&j, "runs"), json_u64(&j, (uint64_t)runs);
        json_key(&j, "cpu_sha_ni"), json_bool(&j, sha256_have_shani());
        json_key(&j, "default_impl"), json_str(&j, sha256_impl_name(sha256_impl()));
        json_key(&j, "digest"), json_str(&j, digest);
        json_key(&j, "results");
        json_arr_begin(&j);
        for (int i = 0; i < SHABENCH_NCONT; i++) {
            json_obj_begin(&j);
            json_key(&j, "name"), json_str(&j, c[i].name);
            json_key(&j, "available"), json_bool(&j, c[i].available);
            if (c[i].available) {
                json_key(&j, "seconds");
                json_arr_begin(&j);
                for (int r = 0; r < runs; r++)
                    json_double(&j, c[i].secs[r]);
                json_arr_end(&j);
                json_key(&j, "median_s"), json_double(&j, c[i].median);
                json_key(&j, "mib_s"), json_double(&j, mib / c[i].median);
                if (!c[i].peer) {
                    json_key(&j, "vs_sha256sum"), json_double(&j, sum->median / c[i].median);
                    json_key(&j, "vs_openssl"), json_double(&j, ossl->median / c[i].median);
                }
            }
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_obj_end(&j);
        json_finish(&j);
        return;
    }
    char sz[32];
    printf("SHA-256 of %s (%s%s), page cache warm, median of %d run%s\n", snap_fmt_size(size, sz, sizeof sz),
           generated ? "generated as " : "", file, runs, runs == 1 ? "" : "s");
    printf("snapctl default implementation: %s (CPU SHA extensions: %s)\n\n", sha256_impl_name(sha256_impl()),
           sha256_have_shani() ? "yes" : "no");
    printf("%-22s %10s %10s %14s %12s\n", "", "MiB/s", "median s", "vs sha256sum", "vs openssl");
    for (int i = 0; i < SHABENCH_NCONT; i++) {
        if (!c[i].available) {
            printf("%-22s %s\n", c[i].name, "(not supported by this CPU)");
            continue;
        }
        printf("%-22s %10.1f %10.3f", c[i].name, mib / c[i].median, c[i].median);
        if (!c[i].peer)
            printf(" %13.2fx %11.2fx", sum->median / c[i].median, ossl->median / c[i].median);
        printf("\n");
    }
    printf("\ndigest %s (all agree)\n", digest);
}

int bench_sha256(int argc, char **argv)
{
    static const struct option opts[] = {
        {"size", required_argument, NULL, 's'}, {"file", required_argument, NULL, 'f'},
        {"dir", required_argument, NULL, 'd'},  {"runs", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t size = 1ull << 30, runs = 3;
    const char *file = NULL, *dir = NULL;
    bool json = false, size_given = false;
    int opt, err;
    optind = 1;
    while ((opt = cli_getopt(argc, argv, "h", opts)) != -1) {
        switch (opt) {
        case 's':
            if ((err = snap_parse_size(optarg, &size, "--size")))
                return cli_usage_error("%s", snap_errmsg(err));
            size_given = true;
            break;
        case 'f': file = optarg; break;
        case 'd': dir = optarg; break;
        case 'r':
            if ((err = snap_parse_u64(optarg, &runs, "--runs")))
                return cli_usage_error("%s", snap_errmsg(err));
            break;
        case 'j': json = true; break;
        case 'h': fputs(sha_bench_usage, stdout); return 0;
        default: return SNAP_EXIT_USAGE; /* CLI_OPT_BAD: cli_getopt said why */
        }
    }
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (runs < 1 || runs > BENCH_MAX_RUNS)
        return cli_usage_error("--runs must be 1..%d", BENCH_MAX_RUNS);
    if (file && (size_given || dir))
        return cli_usage_error("--file hashes an existing file; --size and --dir make one");
    if (!file && size == 0)
        return cli_usage_error("--size must be at least 1 byte");

    struct shabench_contender c[SHABENCH_NCONT];
    if ((err = shabench_init(c)))
        return cli_fail(err, NULL);

    bool generated = !file;
    if (generated) {
        if (!dir)
            dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        if ((err = snap_cancel_start(&sha_bench_cancel)) == 0)
            err = shabench_make_file(dir, size, &sha_bench_cancel, sha_bench_tmp, sizeof sha_bench_tmp);
        file = sha_bench_tmp;
    } else {
        struct stat st;
        err = stat(file, &st) < 0 ? snap_fail_errno("--file %s", file)
              : !S_ISREG(st.st_mode) ? snap_fail(SNAP_EUSAGE, "--file %s is not a regular file", file)
                                     : 0;
        size = err ? 0 : (uint64_t)st.st_size;
    }

    char digest[65], warm[65];
    double secs;
    if (!err) /* warm the page cache */
        err = shabench_self(file, SHA256_IMPL_AUTO, &secs, warm);
    if (!err)
        err = shabench_measure(c, file, (int)runs, digest);
    if (sha_bench_tmp[0])
        unlink(sha_bench_tmp);
    if (err)
        return cli_fail(err, NULL);
    if (strcmp(warm, digest) != 0)
        return cli_fail(snap_fail(SNAP_EHASH, "the warm-up digest %s differs from %s", warm, digest), NULL);
    sha_bench_report(c, file, generated, size, (int)runs, digest, json);
    return 0;
}
