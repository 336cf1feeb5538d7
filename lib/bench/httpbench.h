/* httpbench.h -- the HTTP benchmark's logic (`snapctl bench http`): raw GET throughput of the
 * in-tree HTTP client (net/http.h, body discarded) against curl from the same server.
 *
 *   struct httpbench *b;
 *   httpbench_new("http://127.0.0.1:8080/o.bin", 4 << 20, &b);  // SNAP_EUSAGE: not http(s)
 *   httpbench_run(b, 3);   // b->secs, b->median, b->size, b->nranges, b->connects
 *   httpbench_free(b);
 *
 * Two shapes, each against its curl twin, interleaved run by run:
 *   one GET of the whole object          vs  curl -s -f -o /dev/null URL
 *   the object as ranged GETs of range   vs  one curl reading the same ranges (a -K config of
 *   over one keep-alive connection           url/range/output entries joined by `next`)
 * The client is in-process, a new one per run (so each run connects once), receiving into a
 * 256 KiB buffer as a streamed store read does; curl is a child timed from fork to exit.  The
 * object's size comes from a first, untimed whole GET (which also warms the server).
 */
#ifndef SNAP_BENCH_HTTPBENCH_H
#define SNAP_BENCH_HTTPBENCH_H

#include "bench/bench-run.h"
#include "net/url.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

enum { HTTPBENCH_SELF_WHOLE, HTTPBENCH_CURL_WHOLE, HTTPBENCH_SELF_RANGES, HTTPBENCH_CURL_RANGES, HTTPBENCH_N };

extern const char *const httpbench_names[HTTPBENCH_N];

struct httpbench {
    const char *url_text;
    struct url url;
    char curl[PATH_MAX], config[PATH_MAX];
    uint64_t size;            /* bytes of the object */
    uint64_t range, nranges;  /* bytes per ranged GET; ranges covering the object */
    uint64_t connects;        /* connections snapctl's client made for the ranged GETs */
    double secs[HTTPBENCH_N][BENCH_MAX_RUNS], median[HTTPBENCH_N];
};

/* A benchmark of url_text (http:// or https://, else SNAP_EUSAGE) in ranges of range bytes (> 0). */
int httpbench_new(const char *url_text, uint64_t range, struct httpbench **out);
void httpbench_free(struct httpbench *b);
/* Find curl, take the size, time runs (1..BENCH_MAX_RUNS) interleaved runs of every contender,
 * set the medians.  SNAP_ENOTFOUND without curl; SNAP_ESHORT when a run read other than size. */
int httpbench_run(struct httpbench *b, int runs);
/* Write curl's config for the ranged run to f: one url/range/output group per range. */
void httpbench_curl_config(const struct httpbench *b, FILE *f);

#endif
