/* hdrbench.c -- the header benchmark's generator and measurement (hdrbench.h). */
#include "bench/hdrbench.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "bench/bench-run.h"

#include <stdio.h>
#include <stdlib.h>

int hdrbench_generate(uint64_t n, struct hdr **out)
{
    uint64_t rng = 0x2545f4914f6cdd1dull;
    snap_uuid ids[HDRBENCH_BUILDS];
    uint64_t next_storage[HDRBENCH_BUILDS] = {0};
    for (int i = 0; i < HDRBENCH_BUILDS; i++) {
        for (int k = 0; k < 16; k++)
            ids[i].b[k] = (uint8_t)bench_xorshift64(&rng);
        ids[i].b[0] |= 1;
    }
    struct hdr_meta m = {.version = 5, .block_size = 4096, .generation = 42};
    m.build_id = ids[0];
    m.base_build_id = ids[HDRBENCH_BUILDS - 1];
    struct hdr *h;
    int err = hdr_new(&m, &h);
    if (err)
        return err;
    uint64_t off = 0;
    bool prev_zero = true; /* no zero entry first either: a v5 gap there is fine, but keep n */
    for (uint64_t i = 0; i < n && !err; i++) {
        uint64_t len = (1 + bench_xorshift64(&rng) % 8) * HDR_PAGE;
        bool zero = !prev_zero && bench_xorshift64(&rng) % 5 == 0;
        if (zero) {
            err = hdr_append(h, off, len, NULL, 0);
        } else {
            int b = (int)(bench_xorshift64(&rng) % HDRBENCH_BUILDS);
            err = hdr_append(h, off, len, &ids[b], next_storage[b]);
            next_storage[b] += len;
        }
        prev_zero = zero;
        off += len;
    }
    h->meta.size = off;
    if (err) {
        hdr_free(h);
        return err;
    }
    *out = h;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int hdrbench_measure(const struct hdr *src, unsigned version, int runs, const char *save,
                     struct hdrbench_row *r)
{
    uint8_t *buf;
    size_t len;
    int err = hdr_serialize(src, version, &buf, &len);
    if (err)
        return err;
    if (save) {
        char path[4096];
        snprintf(path, sizeof path, "%s/header.v%u", save, version);
        if ((err = snap_write_file_atomic(path, buf, len, 0644))) {
            snap_free(buf);
            return err;
        }
    }
    uint64_t *t = snap_calloc((size_t)runs, sizeof *t);
    if (!t) {
        snap_free(buf);
        return snap_fail(SNAP_ENOMEM, "cannot allocate %d timings", runs);
    }
    r->version = version;
    r->bytes = len;
    for (int i = 0; i < runs && !err; i++) {
        struct hdr *h;
        uint64_t t0 = snap_now_ns();
        err = hdr_parse(buf, len, &h);
        t[i] = snap_now_ns() - t0;
        if (err)
            break;
        r->entries = h->n;
        if (h->n != src->n)
            err = snap_fail(SNAP_EINTERNAL, "v%u parsed to %zu entries, not %zu", version, h->n,
                            src->n);
        hdr_free(h);
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_u64);
    r->median_ns = t[runs / 2];
    r->rss = bench_peak_rss();
    snap_free(t);
    snap_free(buf);
    return err;
}
