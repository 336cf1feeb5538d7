/* Stress test of lib/chunker: 16 readers at random offsets and lengths against an upstream that
 * fails, stalls and truncates at random, with evictions keeping the cache cold.  Every read must
 * return the source bytes or a clean error -- never wrong bytes, never a hang.  Bounded time. */
#include "test.h"

#include "base/err.h"
#include "base/io.h"
#include "chunker/chunker.h"
#include "bench/simstore.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define ST_READERS 16
#define ST_SEED 1234u
#define ST_CHUNK (256u << 10)
#define ST_SIZE (8ull * ST_CHUNK + 1234)
#define ST_PHASE_MS 600
#define ST_READ_TIMEOUT_MS 3000

struct stress {
    struct chunker *ch;
    uint64_t stop_ns;
    atomic_uint_fast64_t ok, failed, ranged, wrong, unexpected, slowest_ns;
    atomic_int last_unexpected;
    uint64_t direct; /* range requests readers ran on their own threads (busy fetch threads) */
};

struct stress_arg {
    struct stress *st;
    unsigned id;
};

static void *stress_reader(void *p)
{
    struct stress_arg *a = p;
    struct stress *st = a->st;
    unsigned seed = a->id * 2654435761u + 17;
    size_t cap = 300u << 10;
    uint8_t *got = malloc(cap), *want = malloc(cap);
    while (snap_now_ns() < st->stop_ns) {
        uint64_t off = (uint64_t)rand_r(&seed) * 64 % (ST_SIZE + 8192);
        uint64_t len = (uint64_t)rand_r(&seed) % 8 == 0 ? 0 : (uint64_t)rand_r(&seed) % cap;
        uint64_t t0 = snap_now_ns();
        int err = chunker_read_ex(st->ch, off, len, got, ST_READ_TIMEOUT_MS, NULL);
        uint64_t ns = snap_now_ns() - t0;
        uint64_t prev = atomic_load(&st->slowest_ns);
        while (ns > prev && !atomic_compare_exchange_weak(&st->slowest_ns, &prev, ns))
            ;
        bool past_end = off + len > ST_SIZE;
        if (err == 0 && len && !past_end) {
            store_sim_pattern(ST_SEED, off, want, (size_t)len);
            if (memcmp(got, want, (size_t)len) != 0)
                atomic_fetch_add(&st->wrong, 1);
            else
                atomic_fetch_add(&st->ok, 1);
        } else if (err == 0 && (len == 0)) {
            atomic_fetch_add(&st->ok, 1);
        } else if (err == SNAP_ERANGE && past_end && len) {
            atomic_fetch_add(&st->ranged, 1);
        } else if (err == SNAP_ENET || err == SNAP_ESHORT || err == SNAP_ETIMEOUT || err == SNAP_ECANCELED) {
            atomic_fetch_add(&st->failed, 1);
        } else {
            atomic_store(&st->last_unexpected, err ? err : -1);
            atomic_fetch_add(&st->unexpected, 1);
        }
    }
    free(got);
    free(want);
    return NULL;
}

static void run_phase(struct stress *st, bool *good, enum chunker_mode mode, bool size_known, unsigned stall_ms)
{
    *good = false;
    struct sim_opts so = {.size = ST_SIZE, .seed = ST_SEED, .ttfb_us = 1000, .bytes_per_sec = 400000000,
                          .slice = 16u << 10, .fault_seed = (uint32_t)mode * 7 + stall_ms, .fail_pct = 10,
                          .stall_pct = 10, .stall_ms = stall_ms, .truncate_pct = 10, .idle_timeout_ms = 30};
    struct store *s;
    if (store_sim_open(&so, &s) != 0)
        return;
    char path[512];
    snprintf(path, sizeof path, "%s/stress-%d-%u.cache", test_tmpdir(), (int)mode, stall_ms);
    struct chunker_opts o = {.mode = mode, .size = size_known ? ST_SIZE : STORE_SIZE_UNKNOWN, .cache_path = path,
                             .chunk_size = ST_CHUNK, .fetch_timeout_ms = 1000};
    if (chunker_open(s, "stress/obj", &o, &st->ch) != 0) {
        store_close(s);
        return;
    }
    st->stop_ns = snap_now_ns() + ST_PHASE_MS * 1000000ull;
    pthread_t t[ST_READERS];
    struct stress_arg a[ST_READERS];
    for (unsigned i = 0; i < ST_READERS; i++) {
        a[i] = (struct stress_arg){st, i + (unsigned)mode * 100};
        pthread_create(&t[i], NULL, stress_reader, &a[i]);
    }
    /* Keep the cache cold so fetches (and their faults) keep happening. */
    while (snap_now_ns() < st->stop_ns) {
        usleep(40000);
        chunker_evict(st->ch);
    }
    for (unsigned i = 0; i < ST_READERS; i++)
        pthread_join(t[i], NULL);
    struct chunker_stats cs;
    chunker_stats(st->ch, &cs);
    st->direct = cs.direct_reads;
    chunker_close(st->ch);
    store_close(s);
    *good = true;
}

TEST(chunker_stress_faulty_upstream)
{
    static struct stress st;
    static const struct {
        enum chunker_mode mode;
        bool size_known;
        unsigned stall_ms; /* below the 30 ms idle timeout: a pause; above it: a timeout */
    } phases[] = {
        {CHUNKER_DEMAND, true, 10}, {CHUNKER_DEMAND, false, 50}, {CHUNKER_STREAMING, true, 50},
        {CHUNKER_FULL, false, 10},
    };
    uint64_t t0 = snap_now_ns();
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++) {
        memset(&st, 0, sizeof st);
        bool good;
        run_phase(&st, &good, phases[i].mode, phases[i].size_known, phases[i].stall_ms);
        CHECK(good);
        if (atomic_load(&st.unexpected))
            fprintf(stderr, "    phase %zu: unexpected error %d\n", i, atomic_load(&st.last_unexpected));
        CHECK_EQ(atomic_load(&st.wrong), 0);      /* never wrong bytes */
        CHECK_EQ(atomic_load(&st.unexpected), 0); /* only the errors a faulty upstream explains */
        CHECK(atomic_load(&st.ok) > 50);          /* and plenty of reads did succeed */
        CHECK(atomic_load(&st.failed) > 0);       /* while the faults really happened */
        CHECK(atomic_load(&st.ranged) > 0);
        /* 16 readers, 4 fetch threads: demand-first readers run their own requests too. */
        CHECK(phases[i].mode != CHUNKER_DEMAND || st.direct > 0);
        /* Never a hang: every read ended within its own bound (plus scheduling slack). */
        CHECK(atomic_load(&st.slowest_ns) < (ST_READ_TIMEOUT_MS + 2000) * 1000000ull);
    }
    CHECK(snap_now_ns() - t0 < 30 * 1000000000ull);
}
