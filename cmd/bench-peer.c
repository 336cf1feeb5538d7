/* bench-peer.c -- `snapctl bench peer`: its options and output; the runner (cold 4 MiB chunk
 * reads through a peer against the same chunks straight from the store, in the same run) is
 * lib/bench/peerbench.c.  Prints p50/p99 of each and the ratio store/peer (> 1: the peer is
 * faster).
 */
#include "bench.h"
#include "cli.h"

#include "base/err.h"
#include "base/io.h"
#include "codec/json.h"
#include "base/mem.h"
#include "base/util.h"
#include "bench/peerbench.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void print_result(const char *key, unsigned runs, const struct peerbench_result *r, bool json)
{
    if (json) {
        struct json j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_key(&j, "chunk_bytes"); json_u64(&j, PEERBENCH_CHUNK);
        json_key(&j, "runs"); json_u64(&j, runs);
        json_key(&j, "peer_p50_ms"); json_double(&j, r->peer_p50_ms);
        json_key(&j, "peer_p99_ms"); json_double(&j, r->peer_p99_ms);
        json_key(&j, "store_p50_ms"); json_double(&j, r->store_p50_ms);
        json_key(&j, "store_p99_ms"); json_double(&j, r->store_p99_ms);
        json_key(&j, "ratio_p50"); json_double(&j, r->store_p50_ms / r->peer_p50_ms);
        json_key(&j, "ratio_p99"); json_double(&j, r->store_p99_ms / r->peer_p99_ms);
        json_obj_end(&j);
        json_finish(&j);
        return;
    }
    printf("cold 4 MiB chunk reads of %s, %u runs each way\n", key, runs);
    printf("%-28s %10s %10s\n", "", "p50 ms", "p99 ms");
    printf("%-28s %10.2f %10.2f\n", "through the peer (--peer)", r->peer_p50_ms, r->peer_p99_ms);
    printf("%-28s %10.2f %10.2f\n", "straight from the store", r->store_p50_ms, r->store_p99_ms);
    printf("%-28s %9.2fx %9.2fx\n", "store / peer", r->store_p50_ms / r->peer_p50_ms,
           r->store_p99_ms / r->peer_p99_ms);
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
            if (snap_parse_u64(optarg, &runs, "--runs") || runs < 1 || runs > PEERBENCH_MAX_RUNS)
                return cli_usage_error("--runs takes 1 to %d", PEERBENCH_MAX_RUNS);
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
    struct peerbench_result r;
    int err = cli_open_store(store_url, &so, &tiered);
    if (!err)
        err = store_open(store_url, NULL, &plain);
    if (!err)
        err = peerbench_run(tiered, plain, key, (unsigned)runs, &r);
    int rc = err ? cli_fail(err, NULL) : 0;
    if (!err)
        print_result(key, (unsigned)runs, &r, json);
    store_close(tiered);
    store_close(plain);
    return rc;
}
