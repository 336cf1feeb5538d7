/* bench-compressed.c -- `snapctl bench compressed`: cold 4 KiB reads of a plain, an lz4 and a
 * zstd build of one rootfs-like image over the simulated store, against the floor (time to first
 * byte + the frame's compressed bytes at the bandwidth + its measured decode time).  The logic
 * is lib/bench/compbench.c; this file parses and prints. */
#include "bench.h"
#include "cli.h"

#include "base/err.h"
#include "codec/json.h"
#include "base/util.h"
#include "bench/compbench.h"
#include "header/header.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "Usage: snapctl bench compressed [OPTIONS]\n"
    "\n"
    "Cold random 4 KiB reads (each in its own 4 MiB of the image, so nothing is cached) of one\n"
    "image stored three ways -- plain, lz4 and zstd in 2 MiB frames -- through a build device over\n"
    "the simulated store (real sleeps), every read's bytes checked against the image. Floor of a read: time to first byte + 4 KiB (plain) or the\n"
    "frame's compressed bytes (lz4, zstd) at the bandwidth + the frame's decode time, measured\n"
    "right after each read.\n"
    "Prints each build's compression ratio, average, median and worst latency and avg / floor.\n"
    "\n"
    "Options:\n"
    "  --profile P      gcs (20 ms + 100 MB/s), nfs (1 ms + 500 MB/s) or TTFB_MS,MBPS;\n"
    "                   repeatable (at most 4); default: gcs and nfs\n"
    "  --iterations N   reads per build and profile (default 50; at most the image's 4 MiB\n"
    "                   units but one)\n"
    "  --seed N         seed of the offsets (default 1)\n"
    "  --gap-ms N       pause before each read, not timed (default 10): each read then starts on\n"
    "                   an idle device, after the last frame's write into the cache; 0: back to back\n"
    "  --image FILE     the image (a multiple of 4 MiB, at least 8 MiB), e.g. an ext4 image\n"
    "                   made with mkfs.ext4 -d; default: the files under /usr packed 4 KiB-aligned\n"
    "                   into --image-size bytes, in TMPDIR\n"
    "  --image-size S   size of the default image (default 256MiB)\n"
    "  --level N        compression level (default: the libraries' own)\n"
    "  --json           one JSON object instead of the table\n"
    "\n"
    "Exits 1 when a read returned wrong bytes or a compressed build averages more than 1.2x its\n"
    "floor; 2 on bad usage.\n";

#define MAX_PROF 4
#define GOAL 1.2

struct prof {
    char name[32];
    double ttfb_ms, mbps;
    struct compbench_result r[COMPBENCH_BUILDS];
};

static int add_prof(struct prof *p, int *n, const char *spec)
{
    if (*n == MAX_PROF)
        return cli_usage_error("--profile: at most %d", MAX_PROF);
    struct prof *x = &p[(*n)++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", spec);
    if (!strcmp(spec, "gcs") || !strcmp(spec, "nfs")) {
        x->ttfb_ms = spec[0] == 'g' ? 20 : 1;
        x->mbps = spec[0] == 'g' ? 100 : 500;
        return 0;
    }
    char *end;
    x->ttfb_ms = strtod(spec, &end);
    bool ok = *end == ',' && x->ttfb_ms >= 0 && x->ttfb_ms <= 10000;
    x->mbps = ok ? strtod(end + 1, &end) : 0;
    if (!ok || *end || x->mbps <= 0 || x->mbps > 100000)
        return cli_usage_error("--profile %s: want gcs, nfs or TTFB_MS,MBPS", spec);
    return 0;
}

static const char *build_name(uint32_t comp) { return comp ? hdr_comp_name(comp) : "plain"; }

static bool row_ok(const struct compbench_result *r)
{
    return !r->mismatches && (!r->comp || r->vs_floor <= GOAL);
}

static void print_json(const struct prof *p, int n, unsigned iters, unsigned gap_ms, uint64_t image_size, bool ok)
{
    struct json j;
    json_init(&j, stdout);
    json_obj_begin(&j);
    json_key(&j, "benchmark"); json_str(&j, "compressed");
    json_key(&j, "image_bytes"); json_u64(&j, image_size);
    json_key(&j, "iterations"); json_u64(&j, iters);
    json_key(&j, "gap_ms"); json_u64(&j, gap_ms);
    json_key(&j, "goal_vs_floor"); json_double(&j, GOAL);
    json_key(&j, "profiles");
    json_arr_begin(&j);
    for (int i = 0; i < n; i++) {
        json_obj_begin(&j);
        json_key(&j, "name"); json_str(&j, p[i].name);
        json_key(&j, "ttfb_ms"); json_double(&j, p[i].ttfb_ms);
        json_key(&j, "mbps"); json_double(&j, p[i].mbps);
        json_key(&j, "builds");
        json_arr_begin(&j);
        for (int k = 0; k < COMPBENCH_BUILDS; k++) {
            const struct compbench_result *r = &p[i].r[k];
            json_obj_begin(&j);
            json_key(&j, "build"); json_str(&j, build_name(r->comp));
            json_key(&j, "bytes_u"); json_u64(&j, r->bytes_u);
            json_key(&j, "bytes_c"); json_u64(&j, r->bytes_c);
            json_key(&j, "ratio"); json_double(&j, r->ratio);
            json_key(&j, "frames"); json_u64(&j, r->frames);
            json_key(&j, "reads"); json_u64(&j, r->reads);
            json_key(&j, "mismatches"); json_u64(&j, r->mismatches);
            json_key(&j, "avg_ms"); json_double(&j, r->avg_ms);
            json_key(&j, "p50_ms"); json_double(&j, r->p50_ms);
            json_key(&j, "max_ms"); json_double(&j, r->max_ms);
            json_key(&j, "decode_ms"); json_double(&j, r->decode_ms);
            json_key(&j, "floor_ms"); json_double(&j, r->floor_ms);
            json_key(&j, "vs_floor"); json_double(&j, r->vs_floor);
            json_key(&j, "pass"); json_bool(&j, row_ok(r));
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_key(&j, "pass"); json_bool(&j, ok);
    json_obj_end(&j);
    json_finish(&j);
}

static void print_table(const struct prof *p, int n, unsigned iters, unsigned gap_ms, uint64_t image_size)
{
    printf("image: %.1f MiB; %u cold 4 KiB reads per build and profile, %u ms apart\n", (double)image_size / (1 << 20),
           iters, gap_ms);
    for (int k = 1; k < COMPBENCH_BUILDS; k++)
        printf("compression ratio %-5s %.2f (%llu -> %llu bytes, %u frames)\n", build_name(p[0].r[k].comp),
               p[0].r[k].ratio, (unsigned long long)p[0].r[k].bytes_u, (unsigned long long)p[0].r[k].bytes_c,
               p[0].r[k].frames);
    for (int i = 0; i < n; i++) {
        printf("\n%s (%g ms + %g MB/s)\n", p[i].name, p[i].ttfb_ms, p[i].mbps);
        printf("  %-6s %9s %9s %9s %10s %9s %9s  %s\n", "build", "avg ms", "p50 ms", "max ms", "decode ms",
               "floor ms", "/floor", "check");
        for (int k = 0; k < COMPBENCH_BUILDS; k++) {
            const struct compbench_result *r = &p[i].r[k];
            printf("  %-6s %9.2f %9.2f %9.2f %10.2f %9.2f %8.2fx  %s\n", build_name(r->comp), r->avg_ms, r->p50_ms,
                   r->max_ms, r->decode_ms, r->floor_ms, r->vs_floor,
                   r->mismatches ? "WRONG BYTES" : !r->comp ? "(reference)" : r->vs_floor <= GOAL ? "ok" : "over 1.2x");
        }
    }
}

static int run(const char *image, int level, struct prof *p, int n, unsigned iters, uint64_t seed, unsigned gap_ms,
               bool json)
{
    const char *tmp = getenv("TMPDIR");
    struct compbench *cb;
    int err = compbench_prepare(&(struct compbench_opts){.image = image, .work_dir = tmp && *tmp ? tmp : "/tmp",
                                                         .level = level}, &cb);
    if (err)
        return cli_fail(err, NULL);
    bool ok = true;
    for (int i = 0; i < n && !err; i++) {
        struct compbench_profile pr = {.ttfb_us = (unsigned)(p[i].ttfb_ms * 1000),
                                       .bytes_per_sec = (uint64_t)(p[i].mbps * 1e6), .iterations = iters, .seed = seed,
                                       .gap_ms = gap_ms};
        err = compbench_run(cb, &pr, p[i].r);
        for (int k = 0; !err && k < COMPBENCH_BUILDS; k++)
            ok &= row_ok(&p[i].r[k]);
    }
    uint64_t size = p[0].r[0].bytes_u;
    compbench_free(cb);
    if (err)
        return cli_fail(err, NULL);
    if (json)
        print_json(p, n, iters, gap_ms, size, ok);
    else
        print_table(p, n, iters, gap_ms, size);
    return ok ? 0 : SNAP_EXIT_FAIL;
}

int bench_compressed(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    enum { O_PROFILE = 256, O_ITER, O_SEED, O_GAP, O_IMAGE, O_ISIZE, O_LEVEL, O_JSON };
    static const struct option longopts[] = {
        {"profile", required_argument, NULL, O_PROFILE}, {"iterations", required_argument, NULL, O_ITER},
        {"seed", required_argument, NULL, O_SEED},       {"image", required_argument, NULL, O_IMAGE},
        {"gap-ms", required_argument, NULL, O_GAP},
        {"image-size", required_argument, NULL, O_ISIZE}, {"level", required_argument, NULL, O_LEVEL},
        {"json", no_argument, NULL, O_JSON},             {NULL, 0, NULL, 0},
    };
    static struct prof p[MAX_PROF];
    int n = 0, rc = 0, c, level = 0;
    unsigned iters = 50, gap_ms = 10;
    uint64_t seed = 1, isize = 256u << 20, v;
    const char *image = NULL;
    bool json = false;
    optind = 1;
    while (!rc && (c = cli_getopt(argc, argv, "+", longopts)) != -1) {
        switch (c) {
        case O_PROFILE: rc = add_prof(p, &n, optarg); break;
        case O_ITER:
            if (snap_parse_u64(optarg, &v, "--iterations") || v < 1 || v > COMPBENCH_MAX_ITER)
                rc = cli_usage_error("--iterations wants a number in 1..%u", COMPBENCH_MAX_ITER);
            iters = (unsigned)v;
            break;
        case O_SEED:
            if (snap_parse_u64(optarg, &seed, "--seed"))
                rc = cli_usage_error("--seed wants a number");
            break;
        case O_GAP:
            if (snap_parse_u64(optarg, &v, "--gap-ms") || v > 1000)
                rc = cli_usage_error("--gap-ms wants a number from 0 to 1000");
            gap_ms = (unsigned)v;
            break;
        case O_IMAGE: image = optarg; break;
        case O_ISIZE:
            if (snap_parse_size(optarg, &isize, "--image-size") || isize < (8u << 20) || isize > (16ull << 30))
                rc = cli_usage_error("--image-size wants a size from 8MiB to 16GiB");
            break;
        case O_LEVEL:
            if (snap_parse_u64(optarg, &v, "--level") || v > 22)
                rc = cli_usage_error("--level wants a number from 0 to 22");
            level = (int)v;
            break;
        case O_JSON: json = true; break;
        default: rc = SNAP_EXIT_USAGE; /* CLI_OPT_BAD: cli_getopt said why */
        }
    }
    if (!rc && optind < argc)
        rc = cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (rc)
        return rc;
    if (!n && (add_prof(p, &n, "gcs") || add_prof(p, &n, "nfs")))
        return SNAP_EXIT_USAGE;
    char made[4096] = "";
    if (!image) {
        const char *tmp = getenv("TMPDIR");
        snprintf(made, sizeof made, "%s/snapctl-bench-image-%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
        static const char *const dirs[] = {"/usr/lib", "/usr/bin", "/usr/share", NULL};
        int err = compbench_make_image(made, isize, dirs);
        if (err) {
            unlink(made);
            return cli_fail(err, NULL);
        }
        image = made;
    }
    rc = run(image, level, p, n, iters, seed, gap_ms, json);
    if (made[0])
        unlink(made);
    return rc;
}
