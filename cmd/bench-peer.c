/* bench-peer.c -- `snapctl bench peer`: cold 4 MiB chunk reads through a peer (the tiered store
 * a reader with --peer uses) against the same chunks straight from the store, in the same run.
 *
 * Both sides read the same object ({uuid}/{file}) of the same build.  Each run reads one chunk
 * index both ways, alternating which goes first, so machine noise hits both alike; chunk indexes
 * advance every run, so neither side reads a chunk it has read before (cold for the reader; the
 * servers' own caches are whatever they are, as in production: a fresh build is in the peer's
 * page cache).  Latency is from the call to the last byte in the buffer.  Prints p50/p99 of each
 * and the ratio store/peer (> 1: the peer is faster).
 */
#include "bench.h"
#include "cli.h"

#include "base/err.h"
#include "base/io.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/util.h"
#include "store/store.h"
#include "store/tiered.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PB_CHUNK (4u << 20)
#define PB_MAX_RUNS 1000

static const char pb_usage[] =
    "Usage: snapctl bench peer --peer HOST:PORT --store URL --build UUID [OPTIONS]\n"
    "\n"
    "Cold 4 MiB chunk read latency through the peer (peer first, the store behind it, as\n"
    "--peer readers do) against straight from the store, interleaved in the same run.  The\n"
    "build's object must be on both (the peer's data dir and the store).\n"
    "\n"
    "  --peer HOST:PORT   a `snapctl peer serve` (also --peer-ca, --peer-allow, --peer-timeout)\n"
    "  --store URL        the store the build was uploaded to (s3://bucket/prefix, ...)\n"
    "  --build UUID       the build to read\n"
    "  --file NAME        its object (default memfile)\n"
    "  --runs N           chunks read each way, 1..1000 (default 32; indexes wrap at the end)\n"
    "  --json             one JSON object instead of the table\n";

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, unsigned n, double p)
{
    unsigned i = (unsigned)(p * (n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static int timed_read(struct store *s, const char *key, uint64_t off, uint64_t want, void *buf, double *ms)
{
    struct store_read_result r;
    uint64_t t0 = snap_now_ns();
    int err = store_read(s, key, off, want, buf, NULL, NULL, &r);
    *ms = (double)(snap_now_ns() - t0) / 1e6;
    if (!err && r.bytes != want)
        err = snap_fail(SNAP_ESHORT, "%s/%s: %llu of %llu bytes at %llu", s->url, key, (unsigned long long)r.bytes,
                        (unsigned long long)want, (unsigned long long)off);
    return err;
}

enum { PB_STORE = 300, PB_BUILD, PB_FILE, PB_RUNS, PB_JSON };

int bench_peer(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"store", required_argument, NULL, PB_STORE}, {"build", required_argument, NULL, PB_BUILD},
        {"file", required_argument, NULL, PB_FILE},   {"runs", required_argument, NULL, PB_RUNS},
        {"json", no_argument, NULL, PB_JSON},         {"help", no_argument, NULL, 'h'},
        CLI_PEER_LONGOPTS,                            {NULL, 0, NULL, 0},
    };
    struct cli_store_opts so = {0};
    const char *store_url = NULL, *build = NULL, *file = "memfile";
    uint64_t runs = 32;
    bool json = false;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "h", longopts)) != -1) {
        switch (c) {
        case PB_STORE: store_url = optarg; break;
        case PB_BUILD: build = optarg; break;
        case PB_FILE: file = optarg; break;
        case PB_RUNS:
            if (snap_parse_u64(optarg, &runs, "--runs") || runs < 1 || runs > PB_MAX_RUNS)
                return cli_usage_error("--runs takes 1 to %d", PB_MAX_RUNS);
            break;
        case PB_JSON: json = true; break;
        case 'h': fputs(pb_usage, stdout); return 0;
        default: {
            int rc = cli_peer_opt(&so, c, optarg);
            if (rc < 0)
                return SNAP_EXIT_USAGE; /* CLI_OPT_BAD: cli_getopt said why */
            if (rc)
                return rc;
        }
        }
    }
    snap_uuid u;
    if (!so.peer || !store_url || !build)
        return cli_usage_error("--peer, --store and --build are required");
    if (snap_uuid_parse(build, &u))
        return cli_usage_error("--build: '%s' is not a UUID", build);
    char key[256];
    snprintf(key, sizeof key, "%s/%s", build, file);

    struct store *tiered = NULL, *plain = NULL;
    uint8_t *buf = NULL;
    double *peer_ms = calloc(runs, sizeof *peer_ms), *store_ms = calloc(runs, sizeof *store_ms);
    struct store_info info;
    int err = cli_open_store(store_url, &so, &tiered);
    if (!err)
        err = store_open(store_url, NULL, &plain);
    if (!err)
        err = store_stat(plain, key, &info);
    if (!err && info.size < PB_CHUNK)
        err = snap_fail(SNAP_ERANGE, "%s/%s: %llu bytes, less than one 4 MiB chunk", store_url, key,
                        (unsigned long long)info.size);
    if (!err && (!(buf = snap_malloc(PB_CHUNK)) || !peer_ms || !store_ms))
        err = snap_fail(SNAP_ENOMEM, "out of memory");
    uint64_t chunks = err ? 1 : info.size / PB_CHUNK;
    for (uint64_t i = 0; i < runs && !err; i++) {
        uint64_t off = (i % chunks) * PB_CHUNK;
        if (i % 2 == 0) {
            err = timed_read(tiered, key, off, PB_CHUNK, buf, &peer_ms[i]);
            if (!err)
                err = timed_read(plain, key, off, PB_CHUNK, buf, &store_ms[i]);
        } else {
            err = timed_read(plain, key, off, PB_CHUNK, buf, &store_ms[i]);
            if (!err)
                err = timed_read(tiered, key, off, PB_CHUNK, buf, &peer_ms[i]);
        }
    }
    struct tiered_stats st = {0};
    if (!err) {
        store_tiered_stats(tiered, &st);
        if (st.storage_reads || st.peer_reads != runs)
            err = snap_fail(SNAP_ECHECK, "the peer did not answer every read (%llu of %llu; %llu from the store): "
                            "is the build in its data dir, and its upload not marked done?",
                            (unsigned long long)st.peer_reads, (unsigned long long)runs,
                            (unsigned long long)st.storage_reads);
    }
    int rc = 0;
    if (err) {
        rc = cli_fail(err, NULL);
    } else {
        qsort(peer_ms, runs, sizeof *peer_ms, cmp_double);
        qsort(store_ms, runs, sizeof *store_ms, cmp_double);
        unsigned n = (unsigned)runs;
        double p50p = pct(peer_ms, n, 0.5), p99p = pct(peer_ms, n, 0.99);
        double p50s = pct(store_ms, n, 0.5), p99s = pct(store_ms, n, 0.99);
        if (json) {
            struct json j;
            json_init(&j, stdout);
            json_obj_begin(&j);
            json_key(&j, "chunk_bytes"); json_u64(&j, PB_CHUNK);
            json_key(&j, "runs"); json_u64(&j, runs);
            json_key(&j, "peer_p50_ms"); json_double(&j, p50p);
            json_key(&j, "peer_p99_ms"); json_double(&j, p99p);
            json_key(&j, "store_p50_ms"); json_double(&j, p50s);
            json_key(&j, "store_p99_ms"); json_double(&j, p99s);
            json_key(&j, "ratio_p50"); json_double(&j, p50s / p50p);
            json_key(&j, "ratio_p99"); json_double(&j, p99s / p99p);
            json_obj_end(&j);
            json_finish(&j);
        } else {
            printf("cold 4 MiB chunk reads of %s, %llu runs each way\n", key, (unsigned long long)runs);
            printf("%-28s %10s %10s\n", "", "p50 ms", "p99 ms");
            printf("%-28s %10.2f %10.2f\n", "through the peer (--peer)", p50p, p99p);
            printf("%-28s %10.2f %10.2f\n", "straight from the store", p50s, p99s);
            printf("%-28s %9.2fx %9.2fx\n", "store / peer", p50s / p50p, p99s / p99p);
        }
    }
    store_close(tiered);
    store_close(plain);
    snap_free(buf);
    free(peer_ms);
    free(store_ms);
    return rc;
}
