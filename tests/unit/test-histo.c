/* Unit tests of lib/base/histo (latency histograms, the fetch-wait counter) and lib/base/prom (the
 * Prometheus text writer behind every /metrics). */
#include "test.h"

#include "base/buf.h"
#include "base/err.h"
#include "base/histo.h"
#include "base/prom.h"

#include <pthread.h>
#include <string.h>

TEST(histo_buckets_at_their_bounds)
{
    CHECK_EQ(snap_histo_bucket(0), 0);
    CHECK_EQ(snap_histo_bucket(50000), 0);       /* le="5e-05" holds 50 us itself */
    CHECK_EQ(snap_histo_bucket(50001), 1);
    CHECK_EQ(snap_histo_bucket(1000000), 4);     /* 1 ms */
    CHECK_EQ(snap_histo_bucket(10000000000ull), SNAP_HISTO_BUCKETS - 2); /* 10 s */
    CHECK_EQ(snap_histo_bucket(10000000001ull), SNAP_HISTO_BUCKETS - 1); /* +Inf */
    CHECK_EQ(snap_histo_bucket(UINT64_MAX), SNAP_HISTO_BUCKETS - 1);
    for (unsigned i = 1; i < SNAP_HISTO_BUCKETS - 1; i++)
        CHECK(snap_histo_bound_ns[i] > snap_histo_bound_ns[i - 1]);
    CHECK_STR(snap_histo_le[0], "5e-05");
    CHECK_STR(snap_histo_le[SNAP_HISTO_BUCKETS - 1], "+Inf");
}

#define ADDERS 4
#define ADDS 100000

static struct snap_histo shared;

static void *adder(void *arg)
{
    uint64_t base = (uint64_t)(uintptr_t)arg;
    for (uint64_t i = 0; i < ADDS; i++)
        snap_histo_add(&shared, base + (i % 3) * 1000000); /* base, +1 ms, +2 ms */
    return NULL;
}

/* Concurrent adds lose nothing; a snapshot taken meanwhile is always whole (count = its buckets). */
TEST(histo_concurrent_adds)
{
    memset(&shared, 0, sizeof shared);
    pthread_t t[ADDERS];
    for (uintptr_t i = 0; i < ADDERS; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, adder, (void *)(i * 10000)), 0);
    for (int k = 0; k < 100; k++) {
        struct snap_histo_snap s = {0};
        snap_histo_read(&shared, &s);
        uint64_t sum = 0;
        for (unsigned i = 0; i < SNAP_HISTO_BUCKETS; i++)
            sum += s.n[i];
        CHECK_EQ(sum, s.count);
    }
    for (int i = 0; i < ADDERS; i++)
        pthread_join(t[i], NULL);
    struct snap_histo_snap s = {0};
    snap_histo_read(&shared, &s);
    CHECK_EQ(s.count, (uint64_t)ADDERS * ADDS);
    uint64_t want_sum = 0;
    for (uint64_t a = 0; a < ADDERS; a++)
        for (uint64_t i = 0; i < ADDS; i++)
            want_sum += a * 10000 + (i % 3) * 1000000;
    CHECK_EQ(s.sum_ns, want_sum);
    /* Every third value is 0-30 us: le="5e-05". */
    CHECK_EQ(s.n[0], (uint64_t)ADDERS * ((ADDS + 2) / 3));
    struct snap_histo_snap two = s;
    snap_histo_merge(&two, &s);
    CHECK_EQ(two.count, 2 * s.count);
    CHECK_EQ(two.n[0], 2 * s.n[0]);
    CHECK_EQ(two.sum_ns, 2 * s.sum_ns);
}

static void *waiter(void *arg)
{
    *(uint64_t *)arg = snap_fetch_waits(); /* a thread of its own starts at 0 */
    return NULL;
}

TEST(histo_fetch_waits_are_per_thread)
{
    uint64_t w0 = snap_fetch_waits();
    snap_fetch_waited();
    snap_fetch_waited();
    CHECK_EQ(snap_fetch_waits() - w0, 2);
    uint64_t other = 99;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, waiter, &other), 0);
    pthread_join(t, NULL);
    CHECK_EQ(other, 0);
}

TEST(prom_writes_the_text_format)
{
    struct snap_buf b;
    snap_buf_init(&b, 16, 1 << 20); /* small first: the writer grows it */
    struct prom p = {.b = &b};
    prom_one(&p, "x_requests_total", PROM_COUNTER, "Requests.", 12);
    char l[64] = "";
    CHECK_EQ(prom_label(l, sizeof l, "export", "a\"b\\c\nd"), 0);
    CHECK_STR(l, "export=\"a\\\"b\\\\c\\nd\"");
    CHECK_EQ(prom_label(l, sizeof l, "fetch", "cold"), 0);
    CHECK_STR(l, "export=\"a\\\"b\\\\c\\nd\",fetch=\"cold\"");
    struct snap_histo h = {0};
    snap_histo_add(&h, 40000);        /* le=5e-05 */
    snap_histo_add(&h, 3000000);      /* le=0.005 */
    snap_histo_add(&h, 20000000000);  /* +Inf */
    struct snap_histo_snap s = {0};
    snap_histo_read(&h, &s);
    prom_family(&p, "x_seconds", PROM_HISTOGRAM, "Latency.");
    prom_histo(&p, "x_seconds", l, &s);
    CHECK_EQ(prom_end(&p), 0);
    CHECK_EQ(snap_buf_append(&b, "", 1), 0);
    const char *t = (const char *)b.data;
    const char *head = "# HELP x_requests_total Requests.\n# TYPE x_requests_total counter\nx_requests_total 12\n"
                       "# HELP x_seconds Latency.\n# TYPE x_seconds histogram\n";
    CHECK(!strncmp(t, head, strlen(head)));
    CHECK(strstr(t, "\nx_seconds_bucket{export=\"a\\\"b\\\\c\\nd\",fetch=\"cold\",le=\"5e-05\"} 1\n"));
    CHECK(strstr(t, ",le=\"0.0025\"} 1\n"));
    CHECK(strstr(t, ",le=\"0.005\"} 2\n"));
    CHECK(strstr(t, ",le=\"10\"} 2\n"));
    CHECK(strstr(t, ",le=\"+Inf\"} 3\n"));
    CHECK(strstr(t, "\nx_seconds_sum{export=\"a\\\"b\\\\c\\nd\",fetch=\"cold\"} 20.003040000\n"));
    CHECK(strstr(t, "\nx_seconds_count{export=\"a\\\"b\\\\c\\nd\",fetch=\"cold\"} 3\n"));
    snap_buf_free(&b);
}

TEST(prom_errors_stick)
{
    char l[16] = "";
    CHECK_ERR(prom_label(l, sizeof l, "export", "a-name-too-long"), SNAP_ETOOBIG, "does not fit");
    CHECK_STR(l, ""); /* unchanged */
    CHECK_EQ(prom_label(l, sizeof l, "e", "ok"), 0);
    CHECK_ERR(prom_label(l, sizeof l, "export", "x"), SNAP_ETOOBIG, "does not fit");
    CHECK_STR(l, "e=\"ok\"");
    struct snap_buf b;
    snap_buf_init(&b, 16, 64); /* room for less than one family */
    struct prom p = {.b = &b};
    prom_one(&p, "x_requests_total", PROM_COUNTER, "Requests received by the server since it started.", 1);
    prom_one(&p, "y_total", PROM_COUNTER, "Y.", 2);
    CHECK_EQ(prom_end(&p), SNAP_ETOOBIG);
    snap_buf_free(&b);
}
