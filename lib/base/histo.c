/* histo.c -- fixed-bucket latency histograms (see histo.h). */
#include "base/histo.h"

const uint64_t snap_histo_bound_ns[SNAP_HISTO_BUCKETS - 1] = {
    50000,     100000,     250000,     500000,     1000000,    2500000,
    5000000,   10000000,   25000000,   50000000,   100000000,  250000000,
    500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};

const char *const snap_histo_le[SNAP_HISTO_BUCKETS] = {
    "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",  "0.1",    "0.25",    "0.5",    "1",     "2.5",    "5",     "10",   "+Inf",
};

_Thread_local uint64_t snap_tl_fetch_waits;

unsigned snap_histo_bucket(uint64_t ns)
{
    unsigned i = 0;
    while (i < SNAP_HISTO_BUCKETS - 1 && ns > snap_histo_bound_ns[i])
        i++;
    return i;
}

void snap_histo_add(struct snap_histo *h, uint64_t ns)
{
    atomic_fetch_add_explicit(&h->n[snap_histo_bucket(ns)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

void snap_histo_read(const struct snap_histo *h, struct snap_histo_snap *out)
{
    for (unsigned i = 0; i < SNAP_HISTO_BUCKETS; i++) {
        uint64_t v = atomic_load_explicit(&h->n[i], memory_order_relaxed);
        out->n[i] += v;
        out->count += v;
    }
    out->sum_ns += atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
}

void snap_histo_merge(struct snap_histo_snap *into, const struct snap_histo_snap *from)
{
    for (unsigned i = 0; i < SNAP_HISTO_BUCKETS; i++)
        into->n[i] += from->n[i];
    into->count += from->count;
    into->sum_ns += from->sum_ns;
}
