/* bench-header.c -- `snapctl bench header`: how fast a large header parses, and in how much
 * memory, for each version we write. */
#include "bench.h"
#include "cli.h"

#include "base/err.h"
#include "base/io.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/util.h"
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

#define BUILDS 64
#define LIMIT_NS 1000000000ull

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The header to measure: entries alternate builds (never two zero entries in a row, so a v5
 * reader rebuilds exactly n entries); each build's storage is packed like a real diff. */
static int generate(uint64_t n, struct hdr **out)
{
    snap_uuid ids[BUILDS];
    uint64_t next_storage[BUILDS] = {0};
    for (int i = 0; i < BUILDS; i++) {
        for (int k = 0; k < 16; k++)
            ids[i].b[k] = (uint8_t)next_rand();
        ids[i].b[0] |= 1;
    }
    struct hdr_meta m = {.version = 5, .block_size = 4096, .generation = 42};
    m.build_id = ids[0];
    m.base_build_id = ids[BUILDS - 1];
    struct hdr *h;
    int err = hdr_new(&m, &h);
    if (err)
        return err;
    uint64_t off = 0;
    bool prev_zero = true; /* no zero entry first either: a v5 gap there is fine, but keep n */
    for (uint64_t i = 0; i < n && !err; i++) {
        uint64_t len = (1 + next_rand() % 8) * HDR_PAGE;
        bool zero = !prev_zero && next_rand() % 5 == 0;
        if (zero) {
            err = hdr_append(h, off, len, NULL, 0);
        } else {
            int b = (int)(next_rand() % BUILDS);
            err = hdr_append(h, off, len, &ids[b], next_storage[b]);
            next_storage[b] += len;
        }
        prev_zero = zero;
        off += len;
    }
    h->meta.size = off;
    if (err) {
        hdr_free(h);
        return err;
    }
    *out = h;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct row {
    unsigned version;
    size_t bytes, entries;
    uint64_t median_ns, rss;
};

static int measure(const struct hdr *src, unsigned version, int runs, const char *save,
                   struct row *r)
{
    uint8_t *buf;
    size_t len;
    int err = hdr_serialize(src, version, &buf, &len);
    if (err)
        return err;
    if (save) {
        char path[4096];
        snprintf(path, sizeof path, "%s/header.v%u", save, version);
        if ((err = snap_write_file_atomic(path, buf, len, 0644))) {
            snap_free(buf);
            return err;
        }
    }
    uint64_t *t = snap_calloc((size_t)runs, sizeof *t);
    if (!t) {
        snap_free(buf);
        return snap_fail(SNAP_ENOMEM, "cannot allocate %d timings", runs);
    }
    r->version = version;
    r->bytes = len;
    for (int i = 0; i < runs && !err; i++) {
        struct hdr *h;
        uint64_t t0 = snap_now_ns();
        err = hdr_parse(buf, len, &h);
        t[i] = snap_now_ns() - t0;
        if (err)
            break;
        r->entries = h->n;
        if (h->n != src->n)
            err = snap_fail(SNAP_EINTERNAL, "v%u parsed to %zu entries, not %zu", version, h->n,
                            src->n);
        hdr_free(h);
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_u64);
    r->median_ns = t[runs / 2];
    r->rss = bench_peak_rss();
    snap_free(t);
    snap_free(buf);
    return err;
}

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
    if ((err = generate(n, &src)))
        return cli_fail(err, NULL);
    struct row rows[3];
    static const unsigned order[3] = {5, 4, 3};
    for (int i = 0; i < 3; i++)
        if ((err = measure(src, order[i], (int)runs, save, &rows[i]))) {
            hdr_free(src);
            return cli_fail(err, NULL);
        }
    hdr_free(src);

    bool slow = rows[0].median_ns >= LIMIT_NS;
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
