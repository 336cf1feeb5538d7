/* chunkbench.c -- the chunker benchmark: sources, probes, rounds, the model, CSV and SVG (chunkbench.h). */
#include "bench/chunkbench.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "base/util.h"
#include "bench/bench-httpsrc.h"
#include "bench/bench-run.h"
#include "bench/bench-svg.h"
#include "bench/simstore.h"
#include "store/store.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const enum chunker_mode chunkbench_modes[CHUNKBENCH_MODES] = {CHUNKER_FULL, CHUNKER_STREAMING, CHUNKER_DEMAND};

/* ---- the pluggable source of bytes ---- */

#define SRC_PROBES 5

/* The base URL and key for each profile: as given, or with the fault server's delay prefix. */
static int source_prepare(struct chunkbench *b)
{
    bool any_url = false;
    for (int i = 0; i < b->nprof; i++)
        any_url |= b->prof[i].kind == CHUNKBENCH_URL || b->prof[i].kind == CHUNKBENCH_FAULTSERVER;
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
        if (b->prof[i].kind == CHUNKBENCH_FAULTSERVER)
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
static int source_object_file(struct chunkbench *b)
{
    char path[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/snapctl-bench-chunker-%ld.obj", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return snap_fail_errno("%s", path);
    unlink(path);
    uint8_t *buf = snap_malloc(CHUNKBENCH_OBJ_SIZE);
    int err = buf ? 0 : snap_fail(SNAP_ENOMEM, "out of memory");
    if (!err) {
        store_sim_pattern(1, 0, buf, CHUNKBENCH_OBJ_SIZE);
        err = snap_pwrite_full(fd, buf, CHUNKBENCH_OBJ_SIZE, 0, path);
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
static void source_close(struct chunkbench_profile *p, struct store *s)
{
    store_close(s);
    if (p->srv) {
        p->srv_requests = bench_httpsrc_requests(p->srv);
        bench_httpsrc_stop(p->srv);
        p->srv = NULL;
    }
}

static int source_open(const struct chunkbench *b, struct chunkbench_profile *p, struct store **out)
{
    if (p->kind == CHUNKBENCH_SIM) {
        struct sim_opts so = {.size = CHUNKBENCH_OBJ_SIZE, .seed = 1, .ttfb_us = (unsigned)(p->ttfb_ms * 1000),
                              .bytes_per_sec = (uint64_t)(p->mbps * 1e6), .slice = SLICE};
        return store_sim_open(&so, out);
    }
    if (p->kind == CHUNKBENCH_HTTPD) {
        struct httpd_throttle th = {.ttfb_us = (unsigned)(p->ttfb_ms * 1000),
                                    .bytes_per_sec = (uint64_t)(p->mbps * 1e6), .slice = SLICE};
        char base[64];
        int err = bench_httpsrc_start(b->obj_fd, CHUNKBENCH_OBJ_SIZE, "/" SIM_KEY, &th, &p->srv, base, sizeof base);
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
    const char *key = p->kind == CHUNKBENCH_HTTPD ? SIM_KEY : b->key;
    if ((err = store_stat(s, key, &info)) == 0 && info.size != CHUNKBENCH_OBJ_SIZE)
        err = snap_fail(SNAP_EUSAGE, "%s/%s is %llu bytes; the benchmark reads a %u-byte object (make one with "
                        "head -c %u /dev/urandom)", p->url, key, (unsigned long long)info.size, CHUNKBENCH_OBJ_SIZE, CHUNKBENCH_OBJ_SIZE);
    if (err) {
        source_close(p, s);
        return err;
    }
    *out = s;
    return 0;
}

static const char *source_key(const struct chunkbench *b, const struct chunkbench_profile *p)
{
    return p->kind == CHUNKBENCH_SIM || p->kind == CHUNKBENCH_HTTPD ? SIM_KEY : b->key;
}

const char *chunkbench_source_label(enum chunkbench_source k)
{
    return k == CHUNKBENCH_SIM ? "sim" : k == CHUNKBENCH_HTTPD ? "http" : k == CHUNKBENCH_FAULTSERVER ? "faultserver" : "url";
}

struct probe {
    const struct chunkbench *b;
    const struct chunkbench_profile *p;
    struct store *s;
    pthread_barrier_t *go;
    uint64_t off;
    double ms;
    int err;
};

static void *probe_main(void *arg)
{
    struct probe *pr = arg;
    uint8_t buf[CHUNKBENCH_READ];
    struct store_read_result res = {0};
    pthread_barrier_wait(pr->go);
    uint64_t t0 = snap_now_ns();
    pr->err = store_read(pr->s, source_key(pr->b, pr->p), pr->off, CHUNKBENCH_READ, buf, NULL, NULL, &res);
    pr->ms = (double)(snap_now_ns() - t0) / 1e6;
    return NULL;
}

/* `callers` 4 KiB reads at once, straight to the store: what the source itself gives a
 * demand-first chunker whose callers each ask for their own block. */
static int source_probe_concurrent(const struct chunkbench *b, const struct chunkbench_profile *p, struct store *s, double *ms)
{
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, b->callers);
    pthread_t t[CHUNKBENCH_MAX_CALLERS];
    struct probe pr[CHUNKBENCH_MAX_CALLERS];
    double sum = 0;
    int err = 0;
    for (unsigned i = 0; i < b->callers; i++) {
        uint64_t off = (uint64_t)i * (CHUNKBENCH_OBJ_SIZE / b->callers) & ~(uint64_t)(CHUNKBENCH_READ - 1);
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
static int source_probe(const struct chunkbench *b, struct store *s, struct chunkbench_profile *p)
{
    uint8_t *buf = snap_malloc(CHUNKBENCH_OBJ_SIZE);
    if (!buf)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    double small[SRC_PROBES], whole[SRC_PROBES], conc[SRC_PROBES];
    int err = 0;
    for (int i = 0; i < SRC_PROBES && !err; i++) {
        err = source_probe_concurrent(b, p, s, &conc[i]);
        struct store_read_result res = {0};
        uint64_t t0 = snap_now_ns();
        if (!err)
            err = store_read(s, source_key(b, p), CHUNKBENCH_OBJ_SIZE / 2, CHUNKBENCH_READ, buf, NULL, NULL, &res);
        uint64_t t1 = snap_now_ns();
        struct store_read_result res2 = {0};
        if (!err)
            err = store_read(s, source_key(b, p), 0, CHUNKBENCH_OBJ_SIZE, buf, NULL, NULL, &res2);
        uint64_t t2 = snap_now_ns();
        small[i] = (double)(t1 - t0) / 1e6;
        whole[i] = (double)(t2 - t1) / 1e6;
    }
    snap_free(buf);
    if (err)
        return err;
    p->src_small_ms = bench_median(small, SRC_PROBES);
    p->src_whole_ms = bench_median(whole, SRC_PROBES);
    p->src_conc_ms = bench_median(conc, SRC_PROBES);
    p->src_slow = p->src_whole_ms > p->ideal_full_ms * 1.1;
    return 0;
}

/* ---- one (profile, run, mode): callers in lock step, a cold cache per iteration ---- */

struct round {
    struct chunkbench *b;
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
    uint8_t buf[CHUNKBENCH_READ], want[CHUNKBENCH_READ];
    for (unsigned i = 0; i < r->b->iterations; i++) {
        pthread_barrier_wait(&r->start);
        uint64_t off = r->b->offsets[(size_t)i * r->b->callers + c->id];
        uint64_t t0 = snap_now_ns();
        int err = chunker_read(r->ch, off, CHUNKBENCH_READ, buf);
        r->lat[(size_t)i * r->b->callers + c->id] = (double)(snap_now_ns() - t0) / 1e6;
        if (!err && r->check) { /* after the clock: a fast wrong answer is no result */
            store_sim_pattern(1, off, want, CHUNKBENCH_READ);
            if (memcmp(buf, want, CHUNKBENCH_READ) != 0)
                err = snap_fail(SNAP_ECHECK, "wrong bytes at offset %llu", (unsigned long long)off);
        }
        if (err && atomic_fetch_add(&r->errors, 1) == 0)
            snprintf(r->err_msg, sizeof r->err_msg, "%s", snap_errmsg(err));
        pthread_barrier_wait(&r->done);
    }
    return NULL;
}

static int run_round(struct chunkbench *b, struct store *s, struct chunkbench_profile *p, int mode, unsigned run)
{
    char path[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/snapctl-bench-chunker-%ld.cache", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    struct chunker_opts o = {.mode = chunkbench_modes[mode], .size = CHUNKBENCH_OBJ_SIZE, .cache_path = path};
    struct round r = {.b = b, .lat = p->lat[mode] + (size_t)run * b->iterations * b->callers,
                      .check = p->kind == CHUNKBENCH_SIM || p->kind == CHUNKBENCH_HTTPD};
    int err = chunker_open(s, source_key(b, p), &o, &r.ch);
    if (err)
        return err;
    pthread_barrier_init(&r.start, NULL, b->callers + 1);
    pthread_barrier_init(&r.done, NULL, b->callers + 1);
    pthread_t t[CHUNKBENCH_MAX_CALLERS];
    struct caller c[CHUNKBENCH_MAX_CALLERS];
    for (unsigned i = 0; i < b->callers; i++) {
        c[i] = (struct caller){&r, i};
        pthread_create(&t[i], NULL, caller_main, &c[i]);
    }
    bool http = p->kind != CHUNKBENCH_SIM;
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
        return snap_fail_ctx(err, "%s %s: refilling the connection pool", chunkbench_source_label(p->kind), p->name);
    if (atomic_load(&r.errors))
        return snap_fail(SNAP_EIO, "%s %s %s: %d reads failed, first: %s", chunkbench_source_label(p->kind), p->name,
                         chunker_mode_name(chunkbench_modes[mode]), atomic_load(&r.errors), r.err_msg);
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

/* What an overhead-free chunker achieves on this profile and these offsets (see the file comment). */
void chunkbench_physics(const struct chunkbench *b, struct chunkbench_profile *p)
{
    double bytes_per_ms = p->mbps * 1e3, sum = 0;
    size_t n = (size_t)b->iterations * b->callers;
    for (size_t i = 0; i < n; i++)
        sum += (double)(b->offsets[i] + CHUNKBENCH_READ);
    p->floor_ms = p->ttfb_ms + CHUNKBENCH_READ / bytes_per_ms;
    p->ideal_full_ms = p->ttfb_ms + CHUNKBENCH_OBJ_SIZE / bytes_per_ms;
    p->ideal_stream_ms = p->ttfb_ms + sum / (double)n / bytes_per_ms;
    p->ideal_ratio = p->ideal_full_ms / p->ideal_stream_ms;
    p->min_stream_ratio = (double)(long)(p->ideal_ratio * 10) / 10; /* rounded down to 0.1x */
}

void chunkbench_evaluate(const struct chunkbench *b, struct chunkbench_profile *p)
{
    for (int m = 0; m < CHUNKBENCH_MODES; m++) {
        p->med_avg[m] = bench_median(p->avg[m], (int)b->runs);
        p->med_worst[m] = bench_median(p->worst[m], (int)b->runs);
    }
    p->stream_ratio = p->med_avg[0] / p->med_avg[1];
    p->demand_ratio = p->med_avg[2] / p->floor_ms;
    p->stream_ok = p->stream_ratio >= p->min_stream_ratio - 1e-9;
    p->demand_ok = p->demand_ratio <= CHUNKBENCH_DEMAND_MAX;
}

const char *chunkbench_source_desc(const struct chunkbench *b, enum chunkbench_source k)
{
    switch (k) {
    case CHUNKBENCH_SIM: return "in-process simulated store (lib/store/sim: real sleeps, 32 KiB slices)";
    case CHUNKBENCH_HTTPD: return "lib/net/httpd on 127.0.0.1 in this process (the head after TTFB, 32 KiB slices "
                           "paced to the bandwidth, sendfile) through the http:// store";
    case CHUNKBENCH_FAULTSERVER: return "loopback fault server, /_fault/ttfb=MS,rate=MBPS per profile";
    default: return b->source;
    }
}

void chunkbench_write_csv(const struct chunkbench *b, FILE *f)
{
    fprintf(f, "source,profile,mode,run,iteration,caller,offset,latency_us\n");
    size_t per_run = (size_t)b->iterations * b->callers;
    for (int i = 0; i < b->nprof; i++)
        for (int m = 0; m < CHUNKBENCH_MODES; m++)
            for (unsigned r = 0; r < b->runs; r++)
                for (size_t k = 0; k < per_run; k++)
                    fprintf(f, "%s,%s,%s,%u,%u,%u,%llu,%.1f\n", chunkbench_source_label(b->prof[i].kind),
                            b->prof[i].name, chunker_mode_name(chunkbench_modes[m]), r,
                            (unsigned)(k / b->callers), (unsigned)(k % b->callers),
                            (unsigned long long)b->offsets[k], b->prof[i].lat[m][r * per_run + k] * 1000);
}

void chunkbench_write_svg(struct chunkbench *b, FILE *f)
{
    struct bench_svg_panel panels[CHUNKBENCH_MAX_CASES];
    char titles[CHUNKBENCH_MAX_CASES][128], floors[CHUNKBENCH_MAX_CASES][48];
    memset(panels, 0, sizeof panels);
    for (int i = 0; i < b->nprof; i++) {
        struct chunkbench_profile *p = &b->prof[i];
        snprintf(titles[i], sizeof titles[i], "%s%s: %g ms to first byte, %g MB/s", p->name,
                 p->kind == CHUNKBENCH_SIM ? ", in-process" : ", loopback HTTP", p->ttfb_ms, p->mbps);
        snprintf(floors[i], sizeof floors[i], "floor %.2f ms", p->floor_ms);
        panels[i].title = titles[i];
        panels[i].marker_ms = p->floor_ms;
        panels[i].marker_label = floors[i];
        panels[i].nseries = CHUNKBENCH_MODES;
        for (int m = 0; m < CHUNKBENCH_MODES; m++)
            panels[i].series[m] = (struct bench_svg_series){chunker_mode_name(chunkbench_modes[m]), p->lat[m],
                                                            (size_t)b->runs * b->iterations * b->callers};
    }
    char title[160];
    snprintf(title, sizeof title, "Cold random %u B reads of a 4 MiB object, %u callers: latency CDF",
             CHUNKBENCH_READ, b->callers);
    bench_svg_cdf(f, title, panels, (size_t)b->nprof);
}

/* ---- options ---- */

int chunkbench_add_profile(struct chunkbench *b, const char *spec)
{
    if (b->nprof == CHUNKBENCH_MAX_PROFILES)
        return snap_fail(SNAP_EUSAGE, "at most %d profiles", CHUNKBENCH_MAX_PROFILES);
    struct chunkbench_profile *p = &b->prof[b->nprof];
    memset(p, 0, sizeof *p);
    if (!strcmp(spec, "gcs")) {
        /* The seed's table: streaming 42.8 ms, full 66.3 ms. */
        *p = (struct chunkbench_profile){.name = "gcs", .ttfb_ms = 20, .mbps = 100, .seed_ratio = 66.3 / 42.8};
    } else if (!strcmp(spec, "nfs")) {
        /* The seed's table: streaming 6.0 ms, full 13.8 ms -- a full fetch with ~4.4 ms of its own
         * overhead (docs/chunker.md); physics allows 1.8x over an overhead-free one. */
        *p = (struct chunkbench_profile){.name = "nfs", .ttfb_ms = 1, .mbps = 500, .seed_ratio = 13.8 / 6.0};
    } else {
        char *end;
        p->ttfb_ms = strtod(spec, &end);
        if (*end != ',' || p->ttfb_ms < 0 || p->ttfb_ms > 10000)
            return snap_fail(SNAP_EUSAGE, "--profile %s: want gcs, nfs or TTFB_MS,MBPS", spec);
        p->mbps = strtod(end + 1, &end);
        if (*end || p->mbps <= 0 || p->mbps > 100000)
            return snap_fail(SNAP_EUSAGE, "--profile %s: want gcs, nfs or TTFB_MS,MBPS", spec);
        snprintf(p->name, sizeof p->name, "%g,%g", p->ttfb_ms, p->mbps);
    }
    b->nprof++;
    return 0;
}

int chunkbench_set_source(struct chunkbench *b, const char *spec, bool faultserver)
{
    bool named = !faultserver && (!strcmp(spec, "sim") || !strcmp(spec, "http") || !strcmp(spec, "both"));
    if (!named && strncmp(spec, "http://", 7) && strncmp(spec, "https://", 8))
        return snap_fail(SNAP_EUSAGE, "%s %s: want %san http(s):// object URL",
                         faultserver ? "--faultserver" : "--source", spec, faultserver ? "" : "sim, http, both or ");
    b->source = spec;
    return 0;
}

void chunkbench_init(struct chunkbench *b)
{
    memset(b, 0, sizeof *b);
    b->callers = 3;
    b->iterations = 300;
    b->runs = 3;
    b->seed = 1;
    b->source = "both";
    b->obj_fd = -1;
}

void chunkbench_offsets(uint64_t seed, uint64_t *out, size_t n)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (bench_xorshift64(&x) % (CHUNKBENCH_OBJ_SIZE / CHUNKBENCH_READ)) * CHUNKBENCH_READ;
}

/* The cases: every profile under each source, sources outermost. */
static void expand_cases(struct chunkbench *b, bool faultserver)
{
    if (faultserver)
        b->kinds[b->nkinds++] = CHUNKBENCH_FAULTSERVER;
    else if (!strcmp(b->source, "both"))
        b->kinds[b->nkinds++] = CHUNKBENCH_SIM, b->kinds[b->nkinds++] = CHUNKBENCH_HTTPD;
    else
        b->kinds[b->nkinds++] = !strcmp(b->source, "sim") ? CHUNKBENCH_SIM
                                : !strcmp(b->source, "http") ? CHUNKBENCH_HTTPD : CHUNKBENCH_URL;
    int nspec = b->nprof;
    for (int k = 0; k < b->nkinds; k++)
        for (int i = 0; i < nspec; i++) {
            b->prof[k * nspec + i] = b->prof[i];
            b->prof[k * nspec + i].kind = b->kinds[k];
        }
    b->nprof = nspec * b->nkinds;
}

int chunkbench_setup(struct chunkbench *b, bool faultserver)
{
    if (!b->nprof) {
        int err = chunkbench_add_profile(b, "gcs");
        if (err || (err = chunkbench_add_profile(b, "nfs")) != 0)
            return err;
    }
    expand_cases(b, faultserver);
    /* One offset sequence, block-aligned, shared by every mode and run. */
    size_t nreads = (size_t)b->iterations * b->callers;
    b->offsets = snap_calloc(nreads, sizeof *b->offsets);
    for (int i = 0; i < b->nprof; i++)
        for (int m = 0; m < CHUNKBENCH_MODES; m++)
            b->prof[i].lat[m] = snap_calloc(nreads * b->runs, sizeof(double));
    if (!b->offsets)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    chunkbench_offsets(b->seed, b->offsets, nreads);
    for (int i = 0; i < b->nprof; i++)
        for (int m = 0; m < CHUNKBENCH_MODES; m++)
            if (!b->prof[i].lat[m])
                return snap_fail(SNAP_ENOMEM, "out of memory");
    return 0;
}

/* One profile: one store (its connections stay warm), the source measured alone, then the rounds. */
static int run_profile(struct chunkbench *b, struct chunkbench_profile *p)
{
    struct store *s;
    chunkbench_physics(b, p);
    int err = source_open(b, p, &s);
    if (err)
        return err;
    err = source_probe(b, s, p);
    for (unsigned r = 0; r < b->runs && !err; r++)
        for (int m = 0; m < CHUNKBENCH_MODES && !err; m++)
            err = run_round(b, s, p, m, r);
    source_close(p, s);
    return err;
}

int chunkbench_run(struct chunkbench *b)
{
    int err = source_prepare(b);
    for (int k = 0; k < b->nkinds && !err; k++)
        if (b->kinds[k] == CHUNKBENCH_HTTPD)
            err = source_object_file(b);
    for (int i = 0; i < b->nprof && !err; i++)
        err = run_profile(b, &b->prof[i]);
    if (err)
        return err;
    b->pass = true;
    for (int i = 0; i < b->nprof; i++) {
        chunkbench_evaluate(b, &b->prof[i]);
        b->pass &= b->prof[i].stream_ok && b->prof[i].demand_ok;
    }
    return 0;
}

void chunkbench_free(struct chunkbench *b)
{
    for (int i = 0; i < b->nprof; i++) {
        for (int m = 0; m < CHUNKBENCH_MODES; m++)
            snap_free(b->prof[i].lat[m]);
        snap_free(b->prof[i].url);
    }
    snap_free(b->offsets);
    snap_free(b->key);
    if (b->obj_fd >= 0)
        close(b->obj_fd);
    memset(b->prof, 0, sizeof b->prof);
    b->nprof = 0;
    b->offsets = NULL;
    b->key = NULL;
    b->obj_fd = -1;
}
