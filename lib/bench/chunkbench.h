/* chunkbench.h -- the chunker benchmark's runner, model and files (`snapctl bench chunker`).
 *
 *   static struct chunkbench b;
 *   chunkbench_init(&b);
 *   chunkbench_add_profile(&b, "gcs");              // or none: gcs and nfs
 *   chunkbench_setup(&b, false);                    // the cases, the offsets, the sample arrays
 *   if (!chunkbench_run(&b)) { print from b.prof[]; chunkbench_write_csv(&b, f); ... }
 *   chunkbench_free(&b);
 *
 * One 4 MiB object behind a source whose delays are real sleeps; `callers` threads read 4 KiB
 * at random block-aligned offsets (one fixed sequence for every mode), each iteration on a cold
 * cache (chunker_evict); full, streaming and demand-first in the same run.  Per mode and run:
 * avg = mean over iterations of the callers' mean latency, worst = mean over iterations of the
 * slowest caller; the result is the median over runs, against the physical floor TTFB + 4 KiB /
 * bandwidth.  With the sim and http sources every read's bytes are checked against the sim
 * pattern (after its latency is taken).  Over HTTP sources each iteration first refills the
 * store's connection pool (evict stops streams mid-body, which costs their connections), outside
 * the clock, so reads start on warm connections as in a long-running server.
 *
 * Sources: the in-process simulated store (lib/store/sim), a throttled loopback HTTP server in
 * this process (bench-httpsrc.h) read through the http:// store, any http(s) object (the
 * server's own delays), or the loopback fault server (asked for each profile's delays with a
 * /_fault/ttfb=MS,rate=MBPS/ path prefix).  Before the rounds each source is measured alone (one
 * 4 KiB read, the callers' 4 KiB reads at once, one whole-object read), so a server that cannot
 * keep up with a profile is reported, not mistaken for a chunker result.
 *
 * The model (chunkbench_physics): over a full fetch with no overhead of its own, streaming gains
 * (TTFB + object / bw) / (TTFB + mean(offset + 4 KiB) / bw) on this run's offsets; the gate is
 * that ratio rounded down to 0.1x.  Demand-first passes at most 1.3x the floor.
 */
#ifndef SNAP_BENCH_CHUNKBENCH_H
#define SNAP_BENCH_CHUNKBENCH_H

#include "chunker/chunker.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CHUNKBENCH_OBJ_SIZE (4u << 20)
#define CHUNKBENCH_READ 4096u
#define CHUNKBENCH_MAX_PROFILES 4
#define CHUNKBENCH_MAX_CASES (2 * CHUNKBENCH_MAX_PROFILES) /* (source, profile) */
#define CHUNKBENCH_MAX_CALLERS 64
#define CHUNKBENCH_MAX_RUNS 15
#define CHUNKBENCH_MODES 3
#define CHUNKBENCH_DEMAND_MAX 1.3   /* demand-first's gate: at most this many floors */

/* full, streaming, demand-first: the order of every per-mode array. */
extern const enum chunker_mode chunkbench_modes[CHUNKBENCH_MODES];

enum chunkbench_source { CHUNKBENCH_SIM, CHUNKBENCH_HTTPD, CHUNKBENCH_URL, CHUNKBENCH_FAULTSERVER };

struct bench_httpsrc;

/* One (source, profile) pair: the table's row group. */
struct chunkbench_profile {
    char name[32];
    enum chunkbench_source kind;
    double ttfb_ms, mbps;
    double seed_ratio;           /* the seed's streaming vs full (0: not a seed profile) */
    double floor_ms;             /* TTFB + 4 KiB / bandwidth */
    double ideal_full_ms;        /* TTFB + object / bandwidth */
    double ideal_stream_ms;      /* TTFB + mean(offset + 4 KiB) / bandwidth over this run's offsets */
    double ideal_ratio, min_stream_ratio;
    /* The source measured alone before the rounds (medians of 5): 4 KiB, whole object. */
    double src_small_ms, src_whole_ms;
    double src_conc_ms;          /* mean of `callers` 4 KiB reads issued at once: the source's own floor */
    bool src_slow;
    char *url;                   /* http sources: the base URL for this profile */
    struct bench_httpsrc *srv;   /* CHUNKBENCH_HTTPD: the server while this profile runs */
    uint64_t srv_requests;       /* CHUNKBENCH_HTTPD: requests it answered */
    /* Results: per mode, per run: avg and worst; lat[mode][(run * iterations + iter) * callers + caller] in ms. */
    double avg[CHUNKBENCH_MODES][CHUNKBENCH_MAX_RUNS + 1], worst[CHUNKBENCH_MODES][CHUNKBENCH_MAX_RUNS + 1];
    double *lat[CHUNKBENCH_MODES];
    double med_avg[CHUNKBENCH_MODES], med_worst[CHUNKBENCH_MODES];
    double stream_ratio, demand_ratio;
    bool stream_ok, demand_ok;
};

struct chunkbench {
    struct chunkbench_profile prof[CHUNKBENCH_MAX_CASES]; /* sources outermost, then the profiles */
    enum chunkbench_source kinds[2];
    int nkinds;
    const char *source;          /* --source/--faultserver as given ("both" by default) */
    char *key;                   /* URL sources: the object's key under the base */
    int obj_fd;                  /* CHUNKBENCH_HTTPD: the object (an unlinked temp file), or -1 */
    int nprof;
    unsigned callers, iterations, runs;
    uint64_t seed;
    uint64_t *offsets;           /* iterations x callers */
    bool pass;                   /* after chunkbench_run: every profile passed both gates */
};

/* Defaults: 3 callers, 300 iterations, 3 runs, seed 1, source "both", no profile yet. */
void chunkbench_init(struct chunkbench *b);
/* "gcs" (20 ms + 100 MB/s), "nfs" (1 ms + 500 MB/s) or "TTFB_MS,MBPS"; SNAP_EUSAGE saying why not. */
int chunkbench_add_profile(struct chunkbench *b, const char *spec);
/* "sim", "http", "both" or an http(s):// URL (faultserver: the fault server's object URL);
 * SNAP_EUSAGE saying what it takes. */
int chunkbench_set_source(struct chunkbench *b, const char *spec, bool faultserver);
/* After the options: the default profiles if none, every profile under each source, the offset
 * sequence and the latency arrays. */
int chunkbench_setup(struct chunkbench *b, bool faultserver);
/* n block-aligned offsets into the object from seed (xorshift64). */
void chunkbench_offsets(uint64_t seed, uint64_t *out, size_t n);
/* Per profile: open the source, measure it alone, then the rounds -- runs outermost and modes
 * interleaved, so slow drift of a shared machine hits all modes alike; then the gates (b->pass). */
int chunkbench_run(struct chunkbench *b);
/* The model for p over b's offsets: floor, ideal full and streaming, the streaming gate. */
void chunkbench_physics(const struct chunkbench *b, struct chunkbench_profile *p);
/* Medians over runs and the two gates of p. */
void chunkbench_evaluate(const struct chunkbench *b, struct chunkbench_profile *p);
/* Every read's latency: "source,profile,mode,run,iteration,caller,offset,latency_us" rows. */
void chunkbench_write_csv(const struct chunkbench *b, FILE *f);
/* The latency CDFs, one panel per (source, profile), one line per mode (sorts the samples). */
void chunkbench_write_svg(struct chunkbench *b, FILE *f);
const char *chunkbench_source_label(enum chunkbench_source k);
/* One line saying what the source is. */
const char *chunkbench_source_desc(const struct chunkbench *b, enum chunkbench_source k);
void chunkbench_free(struct chunkbench *b);

#endif
