/* Unit tests of the simulated store: real delays, the pattern, progress, injected faults. */
#include "test.h"

#include "base/err.h"
#include "base/io.h"
#include "bench/simstore.h"

#include <stdlib.h>

struct sim_progress {
    struct store_read_result *res;
    uint64_t last, calls, size_seen;
};

static int sim_progress_cb(void *ctx, uint64_t done)
{
    struct sim_progress *p = ctx;
    if (done <= p->last)
        return -1;
    p->last = done;
    p->calls++;
    p->size_seen = p->res->total_size;
    return 0;
}

TEST(store_sim_delays_pattern_progress)
{
    struct sim_opts o = {.size = 3u << 20, .seed = 7, .ttfb_us = 5000, .bytes_per_sec = 100000000,
                         .slice = 64 << 10};
    struct store *s;
    CHECK_EQ(store_sim_open(&o, &s), 0);
    uint8_t *buf = malloc(1 << 20), *want = malloc(1 << 20);
    struct store_read_result res;
    struct sim_progress p = {.res = &res};
    uint64_t t0 = snap_now_ns();
    CHECK_EQ(store_read(s, "obj", 4096, 1 << 20, buf, sim_progress_cb, &p, &res), 0);
    uint64_t ms = (snap_now_ns() - t0) / 1000000;
    CHECK(ms >= 15);                /* 5 ms + 1 MiB at 100 MB/s = 15.5 ms */
    CHECK(ms < 200);
    CHECK_EQ(res.bytes, 1 << 20);
    CHECK_EQ(res.total_size, 3u << 20);
    CHECK_EQ(p.calls, 16);          /* one progress per 64 KiB slice */
    CHECK_EQ(p.size_seen, 3u << 20); /* known before the bytes, like Content-Range */
    store_sim_pattern(7, 4096, want, 1 << 20);
    CHECK_MEM(buf, want, 1 << 20);
    /* The pattern is position-dependent and not constant. */
    CHECK(memcmp(want, want + 8, 64) != 0);

    /* At the end: short; past it: an error that still reports the size. */
    CHECK_EQ(store_read(s, "obj", (3u << 20) - 100, 4096, buf, NULL, NULL, &res), 0);
    CHECK_EQ(res.bytes, 100);
    CHECK_ERR(store_read(s, "obj", (3u << 20) + 1, 1, buf, NULL, NULL, &res), SNAP_ERANGE, "past the end");
    CHECK_EQ(res.total_size, 3u << 20);

    struct sim_request rq[4];
    CHECK_EQ(store_sim_requests(s, rq, 4), 3);
    CHECK_EQ(rq[0].off, 4096);
    CHECK_EQ(rq[0].len, 1 << 20);
    CHECK_EQ(rq[1].len, 4096);
    struct sim_stats st;
    store_sim_stats(s, &st);
    CHECK_EQ(st.reads, 3);
    CHECK_EQ(st.bytes, (1 << 20) + 100);
    store_close(s);
    free(buf);
    free(want);
}

TEST(store_sim_faults)
{
    uint8_t *buf = malloc(1 << 20), *want = malloc(1 << 20);
    store_sim_pattern(3, 0, want, 1 << 20);
    struct store *s;
    struct store_read_result res;

    struct sim_opts o = {.size = 1 << 20, .seed = 3, .slice = 4096, .fail_pct = 100};
    CHECK_EQ(store_sim_open(&o, &s), 0);
    CHECK_ERR(store_read(s, "k", 0, 1 << 20, buf, NULL, NULL, &res), SNAP_ENET, "injected failure");
    CHECK(res.bytes < (1 << 20));
    CHECK_MEM(buf, want, res.bytes); /* what arrived is right */
    store_close(s);

    o = (struct sim_opts){.size = 1 << 20, .seed = 3, .slice = 4096, .truncate_pct = 100, .fault_seed = 1};
    CHECK_EQ(store_sim_open(&o, &s), 0);
    CHECK_EQ(store_read(s, "k", 0, 1 << 20, buf, NULL, NULL, &res), 0);
    CHECK(res.bytes < (1 << 20));
    CHECK_EQ(res.total_size, 1 << 20);
    store_close(s);

    o = (struct sim_opts){.size = 1 << 20, .seed = 3, .stall_pct = 100, .stall_ms = 30, .idle_timeout_ms = 20};
    CHECK_EQ(store_sim_open(&o, &s), 0);
    CHECK_ERR(store_read(s, "k", 0, 1 << 20, buf, NULL, NULL, &res), SNAP_ETIMEOUT, "no data for 20 ms");
    store_close(s);

    o = (struct sim_opts){.size = 1 << 20, .seed = 3, .stall_pct = 100, .stall_ms = 20, .size_at_end = true};
    CHECK_EQ(store_sim_open(&o, &s), 0);
    struct sim_progress p = {.res = &res};
    uint64_t t0 = snap_now_ns();
    CHECK_EQ(store_read(s, "k", 0, 1 << 20, buf, sim_progress_cb, &p, &res), 0);
    CHECK(snap_now_ns() - t0 >= 20000000);
    CHECK_EQ(p.size_seen, STORE_SIZE_UNKNOWN); /* size_at_end: not before the read returns */
    CHECK_EQ(res.total_size, 1 << 20);
    CHECK_MEM(buf, want, 1 << 20);
    struct sim_stats st;
    store_sim_stats(s, &st);
    CHECK_EQ(st.stalls, 1);
    store_close(s);
    free(buf);
    free(want);
}
