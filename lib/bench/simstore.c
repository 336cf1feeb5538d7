/* simstore.c -- the simulated store: time to first byte, a bandwidth, slices with progress, faults. */
#include "bench/simstore.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "base/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define SIM_SLICE_DEFAULT (32u << 10)
#define SIM_RING 64

struct sim_store {
    struct store base;
    struct sim_opts o;
    atomic_uint_fast64_t reads, bytes, failures, stalls, truncations;
    pthread_mutex_t mu; /* the request ring */
    struct sim_request ring[SIM_RING];
    uint64_t nring;
    atomic_long fail_after;  /* store_sim_fail_after(): reads left before every read fails; -1 off */
};

static const struct store_ops store_sim_ops;

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void store_sim_pattern(uint32_t seed, uint64_t off, void *dst, size_t len)
{
    uint8_t *d = dst;
    uint64_t salt = (uint64_t)seed << 32 | 0x5a5a5a5au;
    while (len) {
        uint64_t word = off / 8, v = splitmix64(word ^ salt);
        unsigned i = (unsigned)(off % 8);
        size_t n = 8 - i < len ? 8 - i : len;
        for (size_t k = 0; k < n; k++)
            d[k] = (uint8_t)(v >> (8 * (i + k)));
        d += n;
        off += n;
        len -= n;
    }
}

static int sim_open_url(const char *url, const struct store_opts *opts, struct store **out)
{
    (void)opts;
    (void)out;
    return snap_fail(SNAP_ENOTSUP, "%s: the simulated store is built with store_sim_open()", url);
}

int store_sim_open(const struct sim_opts *o, struct store **out)
{
    struct sim_store *s = snap_calloc(1, sizeof *s);
    if (!s)
        return snap_fail(SNAP_ENOMEM, "sim store: out of memory");
    s->o = *o;
    if (!s->o.slice)
        s->o.slice = SIM_SLICE_DEFAULT;
    if (!s->o.idle_timeout_ms)
        s->o.idle_timeout_ms = 30000;
    char url[128];
    snprintf(url, sizeof url, "sim://%uus,%lluBps", o->ttfb_us, (unsigned long long)o->bytes_per_sec);
    s->base.ops = &store_sim_ops;
    s->base.url = snap_strdup(url);
    if (!s->base.url) {
        snap_free(s);
        return snap_fail(SNAP_ENOMEM, "sim store: out of memory");
    }
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->fail_after, -1);
    *out = &s->base;
    return 0;
}

static void sim_close(struct store *st)
{
    struct sim_store *s = (struct sim_store *)st;
    pthread_mutex_destroy(&s->mu);
    snap_free(s->base.url);
    snap_free(s);
}

static int sim_stat(struct store *st, const char *key, struct store_info *info)
{
    struct sim_store *s = (struct sim_store *)st;
    if (s->o.inner)
        return store_stat(s->o.inner, key, info);
    info->size = s->o.size;
    snprintf(info->etag, sizeof info->etag, "\"sim-%u\"", s->o.seed);
    return 0;
}

void store_sim_stats(struct store *st, struct sim_stats *out)
{
    struct sim_store *s = (struct sim_store *)st;
    out->reads = atomic_load(&s->reads);
    out->bytes = atomic_load(&s->bytes);
    out->failures = atomic_load(&s->failures);
    out->stalls = atomic_load(&s->stalls);
    out->truncations = atomic_load(&s->truncations);
}

size_t store_sim_requests(struct store *st, struct sim_request *out, size_t n)
{
    struct sim_store *s = (struct sim_store *)st;
    pthread_mutex_lock(&s->mu);
    uint64_t have = s->nring < SIM_RING ? s->nring : SIM_RING;
    if (n > have)
        n = (size_t)have;
    for (size_t i = 0; i < n; i++)
        out[i] = s->ring[(s->nring - n + i) % SIM_RING];
    pthread_mutex_unlock(&s->mu);
    return n;
}

void store_sim_fail_after(struct store *st, long n)
{
    struct sim_store *s = (struct sim_store *)st;
    atomic_store(&s->fail_after, n < 0 ? -1 : n);
}

/* The countdown: true when this read is past it. */
static bool sim_countdown_fails(struct sim_store *s)
{
    long n = atomic_load(&s->fail_after);
    while (n > 0)
        if (atomic_compare_exchange_weak(&s->fail_after, &n, n - 1))
            return false;
    return n == 0;
}

enum sim_fault { SIM_OK, SIM_FAIL, SIM_STALL, SIM_TRUNCATE };

static int sim_read(struct store *st, const char *key, uint64_t off, uint64_t len, void *dst,
                    store_progress_fn progress, void *ctx, struct store_read_result *res)
{
    struct sim_store *s = (struct sim_store *)st;
    uint64_t n = atomic_fetch_add(&s->reads, 1);
    pthread_mutex_lock(&s->mu);
    s->ring[s->nring++ % SIM_RING] = (struct sim_request){off, len};
    pthread_mutex_unlock(&s->mu);

    if (sim_countdown_fails(s)) {
        atomic_fetch_add(&s->failures, 1);
        return snap_fail(SNAP_EIO, "%s/%s: injected storage failure (countdown) at offset %llu", st->url, key,
                         (unsigned long long)off);
    }
    uint64_t t0 = snap_now_ns(), size = s->o.size;
    if (!s->o.size_at_end || off > size)
        res->total_size = size;
    if (off > size)
        return snap_fail(SNAP_ERANGE, "%s/%s: read at offset %llu is past the end (%llu bytes)", st->url, key,
                         (unsigned long long)off, (unsigned long long)size);
    uint64_t want = snap_min_u64(len, size - off);

    /* One fault per read at most, at a random point of the range. */
    uint64_t r = splitmix64(((uint64_t)s->o.fault_seed << 32) ^ n), roll = r % 100;
    uint64_t at = want ? (r >> 8) % want : 0;
    enum sim_fault fault = SIM_OK;
    if (roll < s->o.fail_pct)
        fault = SIM_FAIL;
    else if (roll < s->o.fail_pct + s->o.stall_pct)
        fault = SIM_STALL;
    else if (roll < s->o.fail_pct + s->o.stall_pct + s->o.truncate_pct && want)
        fault = SIM_TRUNCATE;
    if (n < s->o.fail_first) {
        fault = SIM_FAIL;
        at = snap_min_u64(s->o.fail_first_at, want);
    }

    uint64_t t_first = t0 + (uint64_t)s->o.ttfb_us * 1000;
    snap_sleep_until_ns(t_first);
    uint8_t *d = dst;
    if (s->o.inner && want) {
        struct store_read_result ir;
        int err = store_read(s->o.inner, key, off, want, d, NULL, NULL, &ir);
        if (err)
            return err;
        if (ir.bytes < want)
            return snap_fail(SNAP_ESHORT, "%s/%s: inner store has %llu bytes at offset %llu, want %llu", st->url,
                             key, (unsigned long long)ir.bytes, (unsigned long long)off,
                             (unsigned long long)want);
    }
    while (res->bytes < want) {
        uint64_t step = snap_min_u64(s->o.slice, want - res->bytes);
        if (fault != SIM_OK && res->bytes + step > at) {
            step = at - res->bytes; /* deliver up to the fault point first */
            if (step == 0) {
                if (fault == SIM_FAIL) {
                    atomic_fetch_add(&s->failures, 1);
                    return snap_fail(SNAP_ENET, "%s/%s: injected failure after %llu bytes at offset %llu",
                                     st->url, key, (unsigned long long)res->bytes, (unsigned long long)off);
                }
                if (fault == SIM_TRUNCATE) {
                    atomic_fetch_add(&s->truncations, 1);
                    break;
                }
                atomic_fetch_add(&s->stalls, 1);
                if (s->o.stall_ms >= s->o.idle_timeout_ms) {
                    snap_sleep_until_ns(snap_now_ns() + (uint64_t)s->o.idle_timeout_ms * 1000000);
                    return snap_fail(SNAP_ETIMEOUT, "%s/%s: no data for %u ms at offset %llu", st->url, key,
                                     s->o.idle_timeout_ms, (unsigned long long)(off + res->bytes));
                }
                snap_sleep_until_ns(snap_now_ns() + (uint64_t)s->o.stall_ms * 1000000);
                t_first += (uint64_t)s->o.stall_ms * 1000000; /* the rate resumes after the stall */
                fault = SIM_OK;
                continue;
            }
        }
        if (s->o.bytes_per_sec)
            snap_sleep_until_ns(t_first + (res->bytes + step) * 1000000000u / s->o.bytes_per_sec);
        if (!s->o.inner)
            store_sim_pattern(s->o.seed, off + res->bytes, d + res->bytes, (size_t)step);
        res->bytes += step;
        atomic_fetch_add(&s->bytes, step);
        if (progress && progress(ctx, res->bytes) != 0)
            return snap_fail(SNAP_ECANCELED, "%s/%s: read canceled", st->url, key);
    }
    res->total_size = size;
    return 0;
}

static const struct store_ops store_sim_ops = {
    .scheme = "sim",
    .open = sim_open_url,
    .close = sim_close,
    .stat = sim_stat,
    .read = sim_read,
};
