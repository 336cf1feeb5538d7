/* bench-sha256.c -- `snapctl bench sha256`: SHA-256 throughput of snapctl (SHA-NI and generic)
 * against `sha256sum FILE` and `openssl dgst -sha256 FILE`, measured in the same run.
 *
 * One file (generated, or --file), read once to warm the page cache; then each run times every
 * contender in turn (interleaved, so drift in machine load hits them all alike): snapctl hashes
 * in-process with read(2) into one 256 KiB buffer, as the fetch path does; the peers run as
 * child processes (fork/exec, timed from fork to waitpid) and their digests are parsed from
 * stdout.  Every digest of every run must agree.  The median of --runs is reported.
 */
#include "bench.h"
#include "bench/bench-run.h"
#include "cli.h"

#include "base/cancel.h"
#include "base/err.h"
#include "base/io.h"
#include "codec/json.h"
#include "base/util.h"
#include "crypto/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define SHA_BENCH_BUF (256u << 10)
#define SHA_BENCH_MAX_RUNS BENCH_MAX_RUNS

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

enum { SHA_SNAP_NI, SHA_SNAP_GENERIC, SHA_PEER_SHA256SUM, SHA_PEER_OPENSSL, SHA_NCONT };

struct sha_contender {
    const char *name;
    const char *peer;         /* program name for the peers */
    char path[PATH_MAX];      /* where the peer was found */
    bool available;
    double secs[SHA_BENCH_MAX_RUNS];
    double median, mib_s;
};

static char sha_bench_tmp[PATH_MAX]; /* the generated file, removed at exit and on signals */
/* SIGINT/SIGTERM: end at once, removing the generated file (lib/base/cancel). */
static struct snap_cancel sha_bench_cancel = {.grace_ms = 0};

/* Fill a new file of size bytes with pseudo-random data (xorshift, fixed seed). */
static int sha_bench_make_file(const char *dir, uint64_t size)
{
    struct statvfs vfs;
    if (statvfs(dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < size + (64u << 20)) {
        char have[32], need[32];
        return snap_fail(SNAP_ENOSPC, "%s has %s free, the test file needs %s (use --dir or --size)", dir,
                         snap_fmt_size((uint64_t)vfs.f_bavail * vfs.f_frsize, have, sizeof have),
                         snap_fmt_size(size, need, sizeof need));
    }
    if ((size_t)snprintf(sha_bench_tmp, sizeof sha_bench_tmp, "%s/snapctl-bench-sha256.XXXXXX", dir) >=
        sizeof sha_bench_tmp)
        return snap_fail(SNAP_EUSAGE, "--dir %s: path too long", dir);
    int fd = mkstemp(sha_bench_tmp);
    if (fd < 0) {
        sha_bench_tmp[0] = '\0';
        return snap_fail_errno("creating a test file in %s", dir);
    }
    snap_cancel_track(&sha_bench_cancel, sha_bench_tmp);
    static uint64_t buf[SHA_BENCH_BUF / 8];
    uint64_t s = 0x9e3779b97f4a7c15ull;
    int err = 0;
    for (uint64_t done = 0; !err && done < size; done += SHA_BENCH_BUF) {
        for (size_t i = 0; i < SHA_BENCH_BUF / 8; i++)
            buf[i] = bench_xorshift64(&s);
        err = snap_write_full(fd, buf, snap_min_u64(SHA_BENCH_BUF, size - done), sha_bench_tmp);
    }
    close(fd);
    return err;
}

/* Hash the file in-process with impl; seconds and hex digest. */
static int sha_bench_self(const char *file, enum sha256_impl impl, double *secs, char hex[65])
{
    static uint8_t buf[SHA_BENCH_BUF];
    uint64_t t0 = snap_now_ns();
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return snap_fail_errno("%s", file);
    struct sha256_ctx c;
    int err = sha256_init_impl(&c, impl);
    while (!err) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = snap_fail_errno("reading %s", file);
        if (n <= 0)
            break;
        sha256_update(&c, buf, (size_t)n);
    }
    close(fd);
    if (err)
        return err;
    uint8_t d[SHA256_DIGEST_LEN];
    sha256_final(&c, d);
    *secs = (double)(snap_now_ns() - t0) / 1e9;
    snap_hex(d, sizeof d, hex);
    return 0;
}

/* A peer's run: its digest parsed from stdout. */
static int sha_bench_child(char *const argv[], double *secs, char hex[65])
{
    char out[4096];
    int err = bench_run_capture("sha256", argv, secs, out, sizeof out, NULL);
    if (!err && bench_parse_digest(out, hex) != 0)
        err = snap_fail(SNAP_EPROTO, "no digest in the output of %s: \"%.100s\"", argv[0], out);
    return err;
}

static int sha_bench_measure(struct sha_contender *c, const char *file, int runs, char digest[65])
{
    char *const sum_argv[] = {c[SHA_PEER_SHA256SUM].path, (char *)file, NULL};
    char *const ossl_argv[] = {c[SHA_PEER_OPENSSL].path, "dgst", "-sha256", (char *)file, NULL};
    digest[0] = '\0';
    for (int r = 0; r < runs; r++) {
        for (int i = 0; i < SHA_NCONT; i++) {
            char hex[65];
            double *t = &c[i].secs[r];
            int err = 0;
            if (!c[i].available)
                continue;
            switch (i) {
            case SHA_SNAP_NI: err = sha_bench_self(file, SHA256_IMPL_SHANI, t, hex); break;
            case SHA_SNAP_GENERIC: err = sha_bench_self(file, SHA256_IMPL_GENERIC, t, hex); break;
            case SHA_PEER_SHA256SUM: err = sha_bench_child(sum_argv, t, hex); break;
            default: err = sha_bench_child(ossl_argv, t, hex); break;
            }
            if (err)
                return err;
            if (!digest[0])
                memcpy(digest, hex, 65);
            else if (strcmp(digest, hex) != 0)
                return snap_fail(SNAP_EHASH, "%s gave %s, earlier results %s (run %d)", c[i].name, hex,
                                 digest, r + 1);
        }
    }
    for (int i = 0; i < SHA_NCONT; i++) {
        if (!c[i].available)
            continue;
        c[i].median = bench_median(c[i].secs, runs);
        if (c[i].median < 1e-9)
            c[i].median = 1e-9;
    }
    return 0;
}

static void sha_bench_report(const struct sha_contender *c, const char *file, bool generated, uint64_t size,
                             int runs, const char *digest, bool json)
{
    double mib = (double)size / (1 << 20);
    const struct sha_contender *sum = &c[SHA_PEER_SHA256SUM], *ossl = &c[SHA_PEER_OPENSSL];
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
        for (int i = 0; i < SHA_NCONT; i++) {
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
    for (int i = 0; i < SHA_NCONT; i++) {
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
    if (runs < 1 || runs > SHA_BENCH_MAX_RUNS)
        return cli_usage_error("--runs must be 1..%d", SHA_BENCH_MAX_RUNS);
    if (file && (size_given || dir))
        return cli_usage_error("--file hashes an existing file; --size and --dir make one");
    if (!file && size == 0)
        return cli_usage_error("--size must be at least 1 byte");

    struct sha_contender c[SHA_NCONT] = {
        [SHA_SNAP_NI] = {.name = "snapctl sha-ni", .available = sha256_have_shani()},
        [SHA_SNAP_GENERIC] = {.name = "snapctl generic", .available = true},
        [SHA_PEER_SHA256SUM] = {.name = "sha256sum", .peer = "sha256sum", .available = true},
        [SHA_PEER_OPENSSL] = {.name = "openssl dgst -sha256", .peer = "openssl", .available = true},
    };
    for (int i = SHA_PEER_SHA256SUM; i < SHA_NCONT; i++)
        if ((err = bench_which("sha256", c[i].peer, c[i].path, sizeof c[i].path)))
            return cli_fail(err, NULL);

    bool generated = !file;
    if (generated) {
        if (!dir)
            dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        if ((err = snap_cancel_start(&sha_bench_cancel)) == 0)
            err = sha_bench_make_file(dir, size);
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
        err = sha_bench_self(file, SHA256_IMPL_AUTO, &secs, warm);
    if (!err)
        err = sha_bench_measure(c, file, (int)runs, digest);
    if (sha_bench_tmp[0])
        unlink(sha_bench_tmp);
    if (err)
        return cli_fail(err, NULL);
    if (strcmp(warm, digest) != 0)
        return cli_fail(snap_fail(SNAP_EHASH, "the warm-up digest %s differs from %s", warm, digest), NULL);
    sha_bench_report(c, file, generated, size, (int)runs, digest, json);
    return 0;
}
