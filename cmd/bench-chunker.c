/* bench-chunker.c -- `snapctl bench chunker`: the seed benchmark (benchmarks.md section 1).
 *
 * One 4 MiB object behind a simulated store whose delays are real sleeps; 3 callers read 4 KiB at
 * random block-aligned offsets (one fixed sequence for every mode), each iteration on a cold
 * cache (chunker_evict); full, streaming and demand-first in the same run.  Per mode and run:
 * avg = mean over iterations of the callers' mean latency, worst = mean over iterations of the
 * slowest caller; the table shows the median over runs, against the physical floor
 * TTFB + 4 KiB / bandwidth.  With the sim and http sources every read's bytes are checked
 * against the sim pattern (after its latency is taken).  Over HTTP sources each iteration first
 * refills the store's connection pool (evict stops streams mid-body, which costs their
 * connections), outside the clock, so reads start on warm connections as in a long-running
 * server.
 *
 * Sources of bytes, by default both in one run: the in-process simulated store (sim:
 * lib/store/sim) and a throttled loopback HTTP server in this process (http: lib/net/httpd with
 * each profile's time to first byte and bandwidth, cmd/bench-httpsrc.c), read through the real
 * http:// store and HTTP client.  Or any http(s) object (--source URL: the server's own delays),
 * or the loopback fault server (--faultserver URL: the bench asks it for each profile's delays
 * with a /_fault/ttfb=MS,rate=MBPS/ path prefix).  Before the rounds each source is measured
 * alone (one 4 KiB read, the callers' 4 KiB reads at once, one whole-object read), so a server
 * that cannot keep up with a profile is reported, not mistaken for a chunker result.
 *
 * The streaming gate is what physics allows: over a full fetch with no overhead of its own,
 * streaming gains (TTFB + object / bw) / (TTFB + mean(offset + 4 KiB) / bw), computed from the
 * profile and this run's offsets; the seed's own ratio is printed beside ours.
 */
#include "bench-httpsrc.h"
#include "bench-svg.h"
#include "bench.h"
#include "cli.h"

#include "base/err.h"
#include "base/io.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/util.h"
#include "chunker/chunker.h"
#include "store/sim.h"

#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

#define OBJ_SIZE (4u << 20)
#define READ_LEN 4096u
#define MAX_PROFILES 4
#define MAX_CASES (2 * MAX_PROFILES) /* (source, profile) */
#define MAX_CALLERS 64
#define NMODES 3

static const enum chunker_mode modes[NMODES] = {CHUNKER_FULL, CHUNKER_STREAMING, CHUNKER_DEMAND};

enum source_kind { SRC_SIM, SRC_HTTPD, SRC_URL, SRC_FAULTSERVER };

/* One (source, profile) pair: the table's row group. */
struct profile {
    char name[32];
    enum source_kind kind;
    double ttfb_ms, mbps;
    double seed_ratio;           /* the seed's streaming vs full (0: not a seed profile) */
    double floor_ms;             /* TTFB + 4 KiB / bandwidth */
    double ideal_full_ms;        /* TTFB + object / bandwidth */
    double ideal_stream_ms;      /* TTFB + mean(offset + 4 KiB) / bandwidth over this run's offsets */
    double ideal_ratio, min_stream_ratio;
    /* The source measured alone before the rounds (medians of SRC_PROBES): 4 KiB, whole object. */
    double src_small_ms, src_whole_ms;
    double src_conc_ms;          /* mean of `callers` 4 KiB reads issued at once: the source's own floor */
    bool src_slow;
    char *url;                   /* http sources: the base URL for this profile */
    struct bench_httpsrc *srv;   /* SRC_HTTPD: the server while this profile runs */
    uint64_t srv_requests;       /* SRC_HTTPD: requests it answered */
    /* Results: per mode, per run: avg and worst; latencies[mode][run][iter][caller] in ms. */
    double avg[NMODES][16], worst[NMODES][16];
    double *lat[NMODES];
    double med_avg[NMODES], med_worst[NMODES];
    double stream_ratio, demand_ratio;
    bool stream_ok, demand_ok;
};

struct bench {
    struct profile prof[MAX_CASES]; /* sources outermost, then the profiles in their order */
    enum source_kind kinds[2];
    int nkinds;
    const char *source;          /* --source/--faultserver as given ("both" by default) */
    char *key;                   /* URL sources: the object's key under the base */
    int obj_fd;                  /* SRC_HTTPD: the object (an unlinked temp file), or -1 */
    int nprof;
    unsigned callers, iterations, runs;
    uint64_t seed;
    uint64_t *offsets;           /* iterations x callers */
};

/* ---- the pluggable source of bytes ---- */

#define SRC_PROBES 5

/* The base URL and key for each profile: as given, or with the fault server's delay prefix. */
static int source_prepare(struct bench *b)
{
    bool any_url = false;
    for (int i = 0; i < b->nprof; i++)
        any_url |= b->prof[i].kind == SRC_URL || b->prof[i].kind == SRC_FAULTSERVER;
    if (!any_url)
        return 0;
    char *base = NULL;
    int err = store_split_url(b->source, &base, &b->key);
    if (err)
        return err;
    const char *sep = strstr(base, "://"), *path = sep ? strchr(sep + 3, '/') : NULL;
    size_t host_len = path ? (size_t)(path - base) : strlen(base);
    for (int i = 0; i < b->nprof && !err; i++) {
        char url[2048];
        if (b->prof[i].kind == SRC_FAULTSERVER)
            snprintf(url, sizeof url, "%.*s/_fault/ttfb=%g,rate=%g%s", (int)host_len, base, b->prof[i].ttfb_ms,
                     b->prof[i].mbps, path ? path : "");
        else
            snprintf(url, sizeof url, "%s", base);
        if (!(b->prof[i].url = snap_strdup(url)))
            err = snap_fail(SNAP_ENOMEM, "out of memory");
    }
    snap_free(base);
    return err;
}

#define SIM_KEY "bench/object"
#define SLICE (32u << 10)        /* both throttled sources deliver in 32 KiB slices */

/* The in-process HTTP source's object: the sim store's bytes in an unlinked temp file. */
static int source_object_file(struct bench *b)
{
    char path[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/snapctl-bench-chunker-%ld.obj", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return snap_fail_errno("%s", path);
    unlink(path);
    uint8_t *buf = snap_malloc(OBJ_SIZE);
    int err = buf ? 0 : snap_fail(SNAP_ENOMEM, "out of memory");
    if (!err) {
        store_sim_pattern(1, 0, buf, OBJ_SIZE);
        err = snap_pwrite_full(fd, buf, OBJ_SIZE, 0, path);
    }
    snap_free(buf);
    if (err) {
        close(fd);
        return err;
    }
    b->obj_fd = fd;
    return 0;
}

/* After the profile's rounds: the store, then its server. */
static void source_close(struct profile *p, struct store *s)
{
    store_close(s);
    if (p->srv) {
        p->srv_requests = bench_httpsrc_requests(p->srv);
        bench_httpsrc_stop(p->srv);
        p->srv = NULL;
    }
}

static int source_open(const struct bench *b, struct profile *p, struct store **out)
{
    if (p->kind == SRC_SIM) {
        struct sim_opts so = {.size = OBJ_SIZE, .seed = 1, .ttfb_us = (unsigned)(p->ttfb_ms * 1000),
                              .bytes_per_sec = (uint64_t)(p->mbps * 1e6), .slice = SLICE};
        return store_sim_open(&so, out);
    }
    if (p->kind == SRC_HTTPD) {
        struct httpd_throttle th = {.ttfb_us = (unsigned)(p->ttfb_ms * 1000),
                                    .bytes_per_sec = (uint64_t)(p->mbps * 1e6), .slice = SLICE};
        char base[64];
        int err = bench_httpsrc_start(b->obj_fd, OBJ_SIZE, "/" SIM_KEY, &th, &p->srv, base, sizeof base);
        if (!err && !(p->url = snap_strdup(base)))
            err = snap_fail(SNAP_ENOMEM, "out of memory");
        if (err)
            return err;
    }
    struct store *s;
    int err = store_open(p->url, NULL, &s);
    if (err) {
        source_close(p, NULL);
        return err;
    }
    struct store_info info;
    const char *key = p->kind == SRC_HTTPD ? SIM_KEY : b->key;
    if ((err = store_stat(s, key, &info)) == 0 && info.size != OBJ_SIZE)
        err = snap_fail(SNAP_EUSAGE, "%s/%s is %llu bytes; the benchmark reads a %u-byte object (make one with "
                        "head -c %u /dev/urandom)", p->url, key, (unsigned long long)info.size, OBJ_SIZE, OBJ_SIZE);
    if (err) {
        source_close(p, s);
        return err;
    }
    *out = s;
    return 0;
}

static const char *source_key(const struct bench *b, const struct profile *p)
{
    return p->kind == SRC_SIM || p->kind == SRC_HTTPD ? SIM_KEY : b->key;
}

static const char *source_label(enum source_kind k)
{
    return k == SRC_SIM ? "sim" : k == SRC_HTTPD ? "http" : k == SRC_FAULTSERVER ? "faultserver" : "url";
}

static double median(const double *v, unsigned n);

struct probe {
    const struct bench *b;
    const struct profile *p;
    struct store *s;
    pthread_barrier_t *go;
    uint64_t off;
    double ms;
    int err;
};

static void *probe_main(void *arg)
{
    struct probe *pr = arg;
    uint8_t buf[READ_LEN];
    struct store_read_result res = {0};
    pthread_barrier_wait(pr->go);
    uint64_t t0 = snap_now_ns();
    pr->err = store_read(pr->s, source_key(pr->b, pr->p), pr->off, READ_LEN, buf, NULL, NULL, &res);
    pr->ms = (double)(snap_now_ns() - t0) / 1e6;
    return NULL;
}

/* `callers` 4 KiB reads at once, straight to the store: what the source itself gives a
 * demand-first chunker whose callers each ask for their own block. */
static int source_probe_concurrent(const struct bench *b, const struct profile *p, struct store *s, double *ms)
{
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, b->callers);
    pthread_t t[MAX_CALLERS];
    struct probe pr[MAX_CALLERS];
    double sum = 0;
    int err = 0;
    for (unsigned i = 0; i < b->callers; i++) {
        uint64_t off = (uint64_t)i * (OBJ_SIZE / b->callers) & ~(uint64_t)(READ_LEN - 1);
        pr[i] = (struct probe){.b = b, .p = p, .s = s, .go = &go, .off = off};
        pthread_create(&t[i], NULL, probe_main, &pr[i]);
    }
    for (unsigned i = 0; i < b->callers; i++) {
        pthread_join(t[i], NULL);
        sum += pr[i].ms;
        if (!err)
            err = pr[i].err;
    }
    pthread_barrier_destroy(&go);
    *ms = sum / b->callers;
    return err;
}

/* Time the source alone: the callers' 4 KiB reads at once, one 4 KiB read at a block in the
 * middle and one whole-object read, each SRC_PROBES times.  A whole read much slower than TTFB + object / bandwidth means the server
 * (not the chunker) cannot keep up with the profile. */
static int source_probe(const struct bench *b, struct store *s, struct profile *p)
{
    uint8_t *buf = snap_malloc(OBJ_SIZE);
    if (!buf)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    double small[SRC_PROBES], whole[SRC_PROBES], conc[SRC_PROBES];
    int err = 0;
    for (int i = 0; i < SRC_PROBES && !err; i++) {
        err = source_probe_concurrent(b, p, s, &conc[i]);
        struct store_read_result res = {0};
        uint64_t t0 = snap_now_ns();
        if (!err)
            err = store_read(s, source_key(b, p), OBJ_SIZE / 2, READ_LEN, buf, NULL, NULL, &res);
        uint64_t t1 = snap_now_ns();
        struct store_read_result res2 = {0};
        if (!err)
            err = store_read(s, source_key(b, p), 0, OBJ_SIZE, buf, NULL, NULL, &res2);
        uint64_t t2 = snap_now_ns();
        small[i] = (double)(t1 - t0) / 1e6;
        whole[i] = (double)(t2 - t1) / 1e6;
    }
    snap_free(buf);
    if (err)
        return err;
    p->src_small_ms = median(small, SRC_PROBES);
    p->src_whole_ms = median(whole, SRC_PROBES);
    p->src_conc_ms = median(conc, SRC_PROBES);
    p->src_slow = p->src_whole_ms > p->ideal_full_ms * 1.1;
    return 0;
}

/* ---- one (profile, run, mode): callers in lock step, a cold cache per iteration ---- */

struct round {
    struct bench *b;
    struct chunker *ch;
    pthread_barrier_t start, done;
    double *lat;                 /* iterations x callers, ms */
    bool check;                  /* the source holds the sim pattern: check every read's bytes */
    atomic_int errors;
    char err_msg[256];
};

struct caller {
    struct round *r;
    unsigned id;
};

static void *caller_main(void *p)
{
    struct caller *c = p;
    struct round *r = c->r;
    uint8_t buf[READ_LEN], want[READ_LEN];
    for (unsigned i = 0; i < r->b->iterations; i++) {
        pthread_barrier_wait(&r->start);
        uint64_t off = r->b->offsets[(size_t)i * r->b->callers + c->id];
        uint64_t t0 = snap_now_ns();
        int err = chunker_read(r->ch, off, READ_LEN, buf);
        r->lat[(size_t)i * r->b->callers + c->id] = (double)(snap_now_ns() - t0) / 1e6;
        if (!err && r->check) { /* after the clock: a fast wrong answer is no result */
            store_sim_pattern(1, off, want, READ_LEN);
            if (memcmp(buf, want, READ_LEN) != 0)
                err = snap_fail(SNAP_ECHECK, "wrong bytes at offset %llu", (unsigned long long)off);
        }
        if (err && atomic_fetch_add(&r->errors, 1) == 0)
            snprintf(r->err_msg, sizeof r->err_msg, "%s", snap_errmsg(err));
        pthread_barrier_wait(&r->done);
    }
    return NULL;
}

static int run_round(struct bench *b, struct store *s, struct profile *p, int mode, unsigned run)
{
    char path[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/snapctl-bench-chunker-%ld.cache", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    struct chunker_opts o = {.mode = modes[mode], .size = OBJ_SIZE, .cache_path = path};
    struct round r = {.b = b, .lat = p->lat[mode] + (size_t)run * b->iterations * b->callers,
                      .check = p->kind == SRC_SIM || p->kind == SRC_HTTPD};
    int err = chunker_open(s, source_key(b, p), &o, &r.ch);
    if (err)
        return err;
    pthread_barrier_init(&r.start, NULL, b->callers + 1);
    pthread_barrier_init(&r.done, NULL, b->callers + 1);
    pthread_t t[MAX_CALLERS];
    struct caller c[MAX_CALLERS];
    for (unsigned i = 0; i < b->callers; i++) {
        c[i] = (struct caller){&r, i};
        pthread_create(&t[i], NULL, caller_main, &c[i]);
    }
    bool http = p->kind != SRC_SIM;
    for (unsigned i = 0; i < b->iterations; i++) { /* the callers run every iteration: no break */
        chunker_evict(r.ch); /* cold: the previous iteration's fetches stop, its blocks are gone */
        /* An HTTP stream stopped mid-body takes its connection with it; a long-running server's
         * pool is warm, so refill it (one read per caller at once), outside the clock. */
        double warm_ms;
        if (http && !err)
            err = source_probe_concurrent(b, p, s, &warm_ms);
        pthread_barrier_wait(&r.start);
        pthread_barrier_wait(&r.done);
    }
    for (unsigned i = 0; i < b->callers; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&r.start);
    pthread_barrier_destroy(&r.done);
    chunker_close(r.ch);
    if (err)
        return snap_fail_ctx(err, "%s %s: refilling the connection pool", source_label(p->kind), p->name);
    if (atomic_load(&r.errors))
        return snap_fail(SNAP_EIO, "%s %s %s: %d reads failed, first: %s", source_label(p->kind), p->name,
                         chunker_mode_name(modes[mode]), atomic_load(&r.errors), r.err_msg);
    double sum_avg = 0, sum_worst = 0;
    for (unsigned i = 0; i < b->iterations; i++) {
        double s_it = 0, w_it = 0;
        for (unsigned k = 0; k < b->callers; k++) {
            double v = r.lat[(size_t)i * b->callers + k];
            s_it += v;
            w_it = v > w_it ? v : w_it;
        }
        sum_avg += s_it / b->callers;
        sum_worst += w_it;
    }
    p->avg[mode][run] = sum_avg / b->iterations;
    p->worst[mode][run] = sum_worst / b->iterations;
    return 0;
}

static double median(const double *v, unsigned n)
{
    double s[16];
    memcpy(s, v, n * sizeof *v);
    for (unsigned i = 1; i < n; i++)
        for (unsigned j = i; j > 0 && s[j - 1] > s[j]; j--) {
            double t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* What an overhead-free chunker achieves on this profile and these offsets (see the file comment). */
static void physics(const struct bench *b, struct profile *p)
{
    double bytes_per_ms = p->mbps * 1e3, sum = 0;
    size_t n = (size_t)b->iterations * b->callers;
    for (size_t i = 0; i < n; i++)
        sum += (double)(b->offsets[i] + READ_LEN);
    p->floor_ms = p->ttfb_ms + READ_LEN / bytes_per_ms;
    p->ideal_full_ms = p->ttfb_ms + OBJ_SIZE / bytes_per_ms;
    p->ideal_stream_ms = p->ttfb_ms + sum / (double)n / bytes_per_ms;
    p->ideal_ratio = p->ideal_full_ms / p->ideal_stream_ms;
    p->min_stream_ratio = (double)(long)(p->ideal_ratio * 10) / 10; /* rounded down to 0.1x */
}

static void evaluate(const struct bench *b, struct profile *p)
{
    for (int m = 0; m < NMODES; m++) {
        p->med_avg[m] = median(p->avg[m], b->runs);
        p->med_worst[m] = median(p->worst[m], b->runs);
    }
    p->stream_ratio = p->med_avg[0] / p->med_avg[1];
    p->demand_ratio = p->med_avg[2] / p->floor_ms;
    p->stream_ok = p->stream_ratio >= p->min_stream_ratio - 1e-9;
    p->demand_ok = p->demand_ratio <= 1.3;
}

/* ---- output ---- */

static const char *source_desc(const struct bench *b, enum source_kind k)
{
    switch (k) {
    case SRC_SIM: return "in-process simulated store (lib/store/sim: real sleeps, 32 KiB slices)";
    case SRC_HTTPD: return "lib/net/httpd on 127.0.0.1 in this process (the head after TTFB, 32 KiB slices "
                           "paced to the bandwidth, sendfile) through the http:// store";
    case SRC_FAULTSERVER: return "loopback fault server, /_fault/ttfb=MS,rate=MBPS per profile";
    default: return b->source;
    }
}

static void print_table(const struct bench *b, FILE *f)
{
    fprintf(f, "one %u MiB object, %u callers x %u B random reads, %u iterations x %u runs (median), cold cache "
               "each iteration\n", OBJ_SIZE >> 20, b->callers, READ_LEN, b->iterations, b->runs);
    for (int k = 0; k < b->nkinds; k++)
        fprintf(f, "source %s: %s\n", source_label(b->kinds[k]), source_desc(b, b->kinds[k]));
    for (int i = 0; i < b->nprof; i++) {
        const struct profile *p = &b->prof[i];
        fprintf(f, "  %s %s alone: 4 KiB in %.2f ms (floor %.2f), %u x 4 KiB at once %.2f ms avg, %u MiB in %.2f ms "
                   "(ideal %.2f)%s\n", source_label(p->kind), p->name, p->src_small_ms, p->floor_ms, b->callers,
                p->src_conc_ms, OBJ_SIZE >> 20, p->src_whole_ms, p->ideal_full_ms,
                p->src_slow ? ": the SOURCE does not keep up with the profile's bandwidth" : "");
        if (p->src_slow)
            fprintf(f, "    (%.0f MB/s effective instead of %g: full and streaming are slowed by the server, not "
                       "the chunker)\n", OBJ_SIZE / ((p->src_whole_ms - p->ttfb_ms) * 1e3), p->mbps);
    }
    fprintf(f, "\n");
    fprintf(f, "%-12s %-8s %-14s %12s %14s %10s\n", "source", "store", "chunker", "avg/caller", "worst/caller",
            "vs floor");
    for (int i = 0; i < b->nprof; i++) {
        const struct profile *p = &b->prof[i];
        const char *src = source_label(p->kind);
        for (int m = 0; m < NMODES; m++)
            fprintf(f, "%-12s %-8s %-14s %9.2f ms %11.2f ms %9.2fx\n", src, p->name, chunker_mode_name(modes[m]),
                    p->med_avg[m], p->med_worst[m], p->med_avg[m] / p->floor_ms);
        fprintf(f, "%-12s %-8s %-14s %9.2f ms\n", src, p->name, "floor", p->floor_ms);
    }
    fprintf(f, "\n");
    for (int i = 0; i < b->nprof; i++) {
        const struct profile *p = &b->prof[i];
        const char *src = source_label(p->kind);
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

static void print_json(const struct bench *b, bool pass)
{
    struct json j;
    json_init(&j, stdout);
    json_obj_begin(&j);
    jstr(&j, "benchmark", "chunker");
    json_key(&j, "sources");
    json_arr_begin(&j);
    for (int k = 0; k < b->nkinds; k++)
        json_str(&j, source_label(b->kinds[k]));
    json_arr_end(&j);
    if (b->kinds[0] != SRC_SIM && b->kinds[0] != SRC_HTTPD)
        jstr(&j, "url", b->source);
    ju64(&j, "object_bytes", OBJ_SIZE);
    ju64(&j, "read_bytes", READ_LEN);
    ju64(&j, "callers", b->callers);
    ju64(&j, "iterations", b->iterations);
    ju64(&j, "runs", b->runs);
    ju64(&j, "seed", b->seed);
    json_key(&j, "profiles");
    json_arr_begin(&j);
    for (int i = 0; i < b->nprof; i++) {
        const struct profile *p = &b->prof[i];
        json_obj_begin(&j);
        jstr(&j, "source", source_label(p->kind));
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
        if (p->kind == SRC_HTTPD)
            ju64(&j, "server_requests", p->srv_requests);
        json_key(&j, "modes");
        json_arr_begin(&j);
        for (int m = 0; m < NMODES; m++) {
            json_obj_begin(&j);
            jstr(&j, "mode", chunker_mode_name(modes[m]));
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
        jdbl(&j, "max", 1.3);
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

static int write_csv(const struct bench *b, const char *file)
{
    FILE *f = fopen(file, "w");
    if (!f)
        return snap_fail_errno("%s", file);
    fprintf(f, "source,profile,mode,run,iteration,caller,offset,latency_us\n");
    for (int i = 0; i < b->nprof; i++)
        for (int m = 0; m < NMODES; m++)
            for (unsigned r = 0; r < b->runs; r++)
                for (unsigned it = 0; it < b->iterations; it++)
                    for (unsigned c = 0; c < b->callers; c++) {
                        size_t k = (size_t)it * b->callers + c;
                        fprintf(f, "%s,%s,%s,%u,%u,%u,%llu,%.1f\n", source_label(b->prof[i].kind), b->prof[i].name,
                                chunker_mode_name(modes[m]), r,
                                it, c, (unsigned long long)b->offsets[k],
                                b->prof[i].lat[m][(size_t)r * b->iterations * b->callers + k] * 1000);
                    }
    if (fclose(f) != 0)
        return snap_fail_errno("%s", file);
    return 0;
}

static int write_svg(struct bench *b, const char *file)
{
    FILE *f = fopen(file, "w");
    if (!f)
        return snap_fail_errno("%s", file);
    struct bench_svg_panel panels[MAX_CASES];
    char titles[MAX_CASES][128], floors[MAX_CASES][48];
    memset(panels, 0, sizeof panels);
    for (int i = 0; i < b->nprof; i++) {
        struct profile *p = &b->prof[i];
        snprintf(titles[i], sizeof titles[i], "%s%s: %g ms to first byte, %g MB/s", p->name,
                 p->kind == SRC_SIM ? ", in-process" : ", loopback HTTP", p->ttfb_ms, p->mbps);
        snprintf(floors[i], sizeof floors[i], "floor %.2f ms", p->floor_ms);
        panels[i].title = titles[i];
        panels[i].marker_ms = p->floor_ms;
        panels[i].marker_label = floors[i];
        panels[i].nseries = NMODES;
        for (int m = 0; m < NMODES; m++)
            panels[i].series[m] = (struct bench_svg_series){chunker_mode_name(modes[m]), p->lat[m],
                                                            (size_t)b->runs * b->iterations * b->callers};
    }
    char title[160];
    snprintf(title, sizeof title, "Cold random %u B reads of a 4 MiB object, %u callers: latency CDF", READ_LEN,
             b->callers);
    bench_svg_cdf(f, title, panels, (size_t)b->nprof);
    if (fclose(f) != 0)
        return snap_fail_errno("%s", file);
    return 0;
}

/* ---- options ---- */

static int add_profile(struct bench *b, const char *spec)
{
    if (b->nprof == MAX_PROFILES)
        return cli_usage_error("at most %d profiles", MAX_PROFILES);
    struct profile *p = &b->prof[b->nprof];
    memset(p, 0, sizeof *p);
    if (!strcmp(spec, "gcs")) {
        /* The seed's table: streaming 42.8 ms, full 66.3 ms. */
        *p = (struct profile){.name = "gcs", .ttfb_ms = 20, .mbps = 100, .seed_ratio = 66.3 / 42.8};
    } else if (!strcmp(spec, "nfs")) {
        /* The seed's table: streaming 6.0 ms, full 13.8 ms -- a full fetch with ~4.4 ms of its own
         * overhead (docs/chunker.md); physics allows 1.8x over an overhead-free one. */
        *p = (struct profile){.name = "nfs", .ttfb_ms = 1, .mbps = 500, .seed_ratio = 13.8 / 6.0};
    } else {
        char *end;
        p->ttfb_ms = strtod(spec, &end);
        if (*end != ',' || p->ttfb_ms < 0 || p->ttfb_ms > 10000)
            return cli_usage_error("--profile %s: want gcs, nfs or TTFB_MS,MBPS", spec);
        p->mbps = strtod(end + 1, &end);
        if (*end || p->mbps <= 0 || p->mbps > 100000)
            return cli_usage_error("--profile %s: want gcs, nfs or TTFB_MS,MBPS", spec);
        snprintf(p->name, sizeof p->name, "%g,%g", p->ttfb_ms, p->mbps);
    }
    b->nprof++;
    return 0;
}

static int parse_count(const char *opt, const char *v, unsigned lo, unsigned hi, unsigned *out)
{
    uint64_t n;
    if (!v || snap_parse_u64(v, &n, opt) || n < lo || n > hi)
        return cli_usage_error("%s wants a number in %u..%u", opt, lo, hi);
    *out = (unsigned)n;
    return 0;
}

int bench_chunker(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    static struct bench b;
    memset(&b, 0, sizeof b);
    b.callers = 3;
    b.iterations = 300;
    b.runs = 3;
    b.seed = 1;
    const char *csv = NULL, *svg = NULL;
    b.source = "both";
    b.obj_fd = -1;
    bool json = false, faultserver = false;
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
            b.iterations = 50;
            b.runs = 1;
            break;
        case O_JSON: json = true; break;
        case O_PROFILE: rc = add_profile(&b, v); break;
        case O_CALLERS: rc = parse_count("--callers", v, 1, MAX_CALLERS, &b.callers); break;
        case O_ITER: rc = parse_count("--iterations", v, 1, 100000, &b.iterations); break;
        case O_RUNS: rc = parse_count("--runs", v, 1, 15, &b.runs); break;
        case O_SEED:
            rc = parse_count("--seed", v, 0, 0x7fffffff, &n);
            b.seed = n;
            break;
        case O_CSV: csv = v; break;
        case O_SVG: svg = v; break;
        case O_SOURCE:
        case O_FAULT: {
            b.source = v;
            faultserver = c == O_FAULT;
            bool named = !faultserver && (!strcmp(v, "sim") || !strcmp(v, "http") || !strcmp(v, "both"));
            if (!named && strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
                rc = cli_usage_error("%s %s: want %san http(s):// object URL", faultserver ? "--faultserver" : "--source",
                                     v, faultserver ? "" : "sim, http, both or ");
            break;
        }
        default: rc = SNAP_EXIT_USAGE; /* CLI_OPT_BAD: cli_getopt said why */
        }
    }
    if (!rc && optind < argc)
        rc = cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (rc)
        return rc;
    if (!b.nprof && (add_profile(&b, "gcs") || add_profile(&b, "nfs")))
        return SNAP_EXIT_USAGE;
    /* The cases: every profile under each source, sources outermost. */
    if (faultserver)
        b.kinds[b.nkinds++] = SRC_FAULTSERVER;
    else if (!strcmp(b.source, "both"))
        b.kinds[b.nkinds++] = SRC_SIM, b.kinds[b.nkinds++] = SRC_HTTPD;
    else
        b.kinds[b.nkinds++] = !strcmp(b.source, "sim") ? SRC_SIM : !strcmp(b.source, "http") ? SRC_HTTPD : SRC_URL;
    int nspec = b.nprof;
    for (int k = 0; k < b.nkinds; k++)
        for (int i = 0; i < nspec; i++) {
            b.prof[k * nspec + i] = b.prof[i];
            b.prof[k * nspec + i].kind = b.kinds[k];
        }
    b.nprof = nspec * b.nkinds;

    /* One offset sequence, block-aligned, shared by every mode and run. */
    size_t nreads = (size_t)b.iterations * b.callers;
    b.offsets = snap_calloc(nreads, sizeof *b.offsets);
    for (int i = 0; i < b.nprof; i++)
        for (int m = 0; m < NMODES; m++)
            b.prof[i].lat[m] = snap_calloc(nreads * b.runs, sizeof(double));
    uint64_t x = b.seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < nreads && b.offsets; i++) {
        x ^= x << 13; /* xorshift64 */
        x ^= x >> 7;
        x ^= x << 17;
        b.offsets[i] = (x % (OBJ_SIZE / READ_LEN)) * READ_LEN;
    }
    int err = b.offsets ? 0 : snap_fail(SNAP_ENOMEM, "out of memory");
    for (int i = 0; i < b.nprof && !err; i++)
        for (int m = 0; m < NMODES && !err; m++)
            if (!b.prof[i].lat[m])
                err = snap_fail(SNAP_ENOMEM, "out of memory");
    if (!err)
        err = source_prepare(&b);
    for (int k = 0; k < b.nkinds && !err; k++)
        if (b.kinds[k] == SRC_HTTPD)
            err = source_object_file(&b);
    /* Per profile: one store (its connections stay warm), the source measured alone, then the
     * rounds -- runs outermost and modes interleaved, so slow drift of a shared machine hits all
     * modes alike. */
    for (int i = 0; i < b.nprof && !err; i++) {
        struct store *s;
        physics(&b, &b.prof[i]);
        if ((err = source_open(&b, &b.prof[i], &s)) != 0)
            break;
        err = source_probe(&b, s, &b.prof[i]);
        for (unsigned r = 0; r < b.runs && !err; r++)
            for (int m = 0; m < NMODES && !err; m++)
                err = run_round(&b, s, &b.prof[i], m, r);
        source_close(&b.prof[i], s);
    }
    bool pass = false;
    if (!err) {
        pass = true;
        for (int i = 0; i < b.nprof; i++) {
            evaluate(&b, &b.prof[i]);
            pass &= b.prof[i].stream_ok && b.prof[i].demand_ok;
        }
        if (json)
            print_json(&b, pass);
        else
            print_table(&b, stdout);
        if (csv)
            err = write_csv(&b, csv);
        if (!err && svg)
            err = write_svg(&b, svg);
    }
    for (int i = 0; i < b.nprof; i++) {
        for (int m = 0; m < NMODES; m++)
            snap_free(b.prof[i].lat[m]);
        snap_free(b.prof[i].url);
    }
    snap_free(b.offsets);
    snap_free(b.key);
    if (b.obj_fd >= 0)
        close(b.obj_fd);
    if (err)
        return cli_fail(err, NULL);
    return pass ? 0 : SNAP_EXIT_FAIL;
}
