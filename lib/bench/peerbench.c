/* peerbench.c -- the peer benchmark's runner (peerbench.h). */
#include "bench/peerbench.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "base/util.h"
#include "bench/bench-run.h"
#include "store/tiered.h"

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

/* One chunk index per run, both ways, alternating which goes first. */
static int read_both_ways(struct store *tiered, struct store *plain, const char *key, uint64_t chunks,
                          unsigned runs, double *peer_ms, double *store_ms)
{
    uint8_t *buf = snap_malloc(PEERBENCH_CHUNK);
    if (!buf)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    int err = 0;
    for (unsigned i = 0; i < runs && !err; i++) {
        uint64_t off = (i % chunks) * PEERBENCH_CHUNK;
        struct store *first = i % 2 == 0 ? tiered : plain, *second = i % 2 == 0 ? plain : tiered;
        double *first_ms = i % 2 == 0 ? peer_ms : store_ms, *second_ms = i % 2 == 0 ? store_ms : peer_ms;
        err = timed_read(first, key, off, PEERBENCH_CHUNK, buf, &first_ms[i]);
        if (!err)
            err = timed_read(second, key, off, PEERBENCH_CHUNK, buf, &second_ms[i]);
    }
    snap_free(buf);
    return err;
}

int peerbench_run(struct store *tiered, struct store *plain, const char *key, unsigned runs,
                  struct peerbench_result *r)
{
    struct store_info info;
    int err = store_stat(plain, key, &info);
    if (!err && info.size < PEERBENCH_CHUNK)
        err = snap_fail(SNAP_ERANGE, "%s/%s: %llu bytes, less than one 4 MiB chunk", plain->url, key,
                        (unsigned long long)info.size);
    if (err)
        return err;
    double *peer_ms = snap_calloc(runs, sizeof *peer_ms), *store_ms = snap_calloc(runs, sizeof *store_ms);
    if (!peer_ms || !store_ms)
        err = snap_fail(SNAP_ENOMEM, "out of memory");
    if (!err)
        err = read_both_ways(tiered, plain, key, info.size / PEERBENCH_CHUNK, runs, peer_ms, store_ms);
    struct tiered_stats st = {0};
    if (!err) {
        store_tiered_stats(tiered, &st);
        if (st.storage_reads || st.peer_reads != runs)
            err = snap_fail(SNAP_ECHECK, "the peer did not answer every read (%llu of %u; %llu from the store): "
                            "is the build in its data dir, and its upload not marked done?",
                            (unsigned long long)st.peer_reads, runs, (unsigned long long)st.storage_reads);
    }
    if (!err) {
        bench_sort(peer_ms, runs);
        bench_sort(store_ms, runs);
        r->peer_p50_ms = bench_percentile(peer_ms, runs, 0.5);
        r->peer_p99_ms = bench_percentile(peer_ms, runs, 0.99);
        r->store_p50_ms = bench_percentile(store_ms, runs, 0.5);
        r->store_p99_ms = bench_percentile(store_ms, runs, 0.99);
    }
    snap_free(peer_ms);
    snap_free(store_ms);
    return err;
}
