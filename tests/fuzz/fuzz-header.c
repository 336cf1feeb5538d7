/* fuzz-header.c -- hdr_parse on arbitrary bytes; whatever parses must survive v3, v4 and v5
 * round trips unchanged, look up like a linear scan, and take a diff on top if it is whole. */
#include "base/err.h"
#include "base/mem.h"
#include "header/header.h"
#include "header/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIE(...) do { fprintf(stderr, "fuzz-header: " __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

static int same_meta(const struct hdr *a, const struct hdr *b)
{
    return (a->meta.version & ~0xFFFFull) == (b->meta.version & ~0xFFFFull) &&
           a->meta.block_size == b->meta.block_size && a->meta.size == b->meta.size &&
           a->meta.generation == b->meta.generation &&
           !memcmp(&a->meta.build_id, &b->meta.build_id, 16) &&
           !memcmp(&a->meta.base_build_id, &b->meta.base_build_id, 16);
}

static int same_entries(const struct hdr *a, const struct hdr *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        const struct hdr_entry *x = &a->e[i], *y = &b->e[i];
        if (x->offset != y->offset || x->length != y->length || x->storage != y->storage ||
            memcmp(hdr_entry_build(a, x), hdr_entry_build(b, y), 16))
            return 0;
    }
    return 1;
}

static int same_builds(const struct hdr *a, const struct hdr *b)
{
    if (a->nbuilds != b->nbuilds)
        return 0;
    for (uint32_t i = 0; i < a->nbuilds; i++) {
        const struct hdr_build *x = &a->builds[i], *y = &b->builds[i];
        if (memcmp(&x->id, &y->id, 16) || x->file_size != y->file_size ||
            memcmp(x->sha256, y->sha256, 32) || x->comp != y->comp || x->nframes != y->nframes ||
            (x->nframes && memcmp(hdr_build_frames(a, x), hdr_build_frames(b, y),
                                  x->nframes * sizeof(struct hdr_frame))))
            return 0;
    }
    return 1;
}

static void roundtrip(const struct hdr *h, unsigned format)
{
    uint8_t *buf;
    size_t len;
    int err = hdr_serialize(h, format, &buf, &len);
    if (err) {
        /* what a version cannot say, it refuses; nothing else may fail */
        if (err == SNAP_ERANGE && (format == 5 || (h->n == 0 && h->meta.size > 0)))
            return;
        DIE("v%u serialize failed: %s", format, snap_errmsg(err));
    }
    struct hdr *g;
    if ((err = hdr_parse(buf, len, &g)))
        DIE("v%u of a parsed header does not parse: %s", format, snap_errmsg(err));
    if (!same_meta(h, g) || g->format != format)
        DIE("v%u round trip changed the metadata", format);
    if (format == 5 ? !hdr_same_contents(h, g) : !same_entries(h, g))
        DIE("v%u round trip changed the mapping", format);
    if (format >= 4 && h->has_builds && !same_builds(h, g))
        DIE("v%u round trip changed the builds section", format);
    if (format >= 4 && g->flags != h->flags)
        DIE("v%u round trip changed the flags", format);
    /* writing what we read gives the same bytes */
    uint8_t *again;
    size_t alen;
    if (hdr_serialize(g, format, &again, &alen) || alen != len || memcmp(again, buf, len))
        DIE("v%u is not stable over a second round trip", format);
    snap_free(again);
    snap_free(buf);
    hdr_free(g);
}

static void lookup_matches_scan(const struct hdr *h, uint64_t x)
{
    struct hdr_loc l;
    int err = hdr_lookup(h, x, &l);
    if (x >= h->meta.size) {
        if (err != SNAP_ERANGE)
            DIE("lookup past the size gave %d", err);
        return;
    }
    if (!h->sorted) {
        if (err != SNAP_ECHECK)
            DIE("lookup on an unsorted mapping gave %d", err);
        return;
    }
    size_t i = h->n;
    for (size_t k = 0; k < h->n; k++)
        if (h->e[k].offset <= x && x - h->e[k].offset < h->e[k].length)
            i = k;
    if (i == h->n) {
        if (err != SNAP_ENOTFOUND)
            DIE("lookup of %llu in a hole gave %d", (unsigned long long)x, err);
        return;
    }
    if (err || l.entry != i || l.remaining != h->e[i].offset + h->e[i].length - x ||
        (!l.zero && l.storage != h->e[i].storage + (x - h->e[i].offset)))
        DIE("lookup of %llu disagrees with a linear scan", (unsigned long long)x);
}

static void check_one(const uint8_t *data, size_t size);

/* Mutations rarely get past the LZ4 checksums, so the input is also tried as metadata + an
 * uncompressed body, framed here as v4 and as v5: the builds and mapping parsers see
 * arbitrary bytes directly. */
static void check_wrapped(const uint8_t *data, size_t size, unsigned format)
{
    if (size < HDR_META_SIZE + 1 || size - HDR_META_SIZE - 1 > HDR_MAX_UNCOMPRESSED)
        return;
    size_t blen = size - HDR_META_SIZE - 1, cap = HDR_V45_PREFIX + hdr_lz4_bound(blen), clen;
    uint8_t *buf = snap_malloc(cap);
    if (!buf)
        abort();
    memcpy(buf, data, HDR_META_SIZE);
    buf[0] = (uint8_t)format;
    buf[1] = 0;
    buf[HDR_META_SIZE] = data[HDR_META_SIZE];
    put_le32(buf + HDR_META_SIZE + 1, (uint32_t)blen);
    if (hdr_lz4_compress(data + HDR_META_SIZE + 1, blen, buf + HDR_V45_PREFIX,
                         cap - HDR_V45_PREFIX, &clen))
        DIE("cannot compress %zu bytes", blen);
    check_one(buf, HDR_V45_PREFIX + clen);
    snap_free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_one(data, size);
    check_wrapped(data, size, 4);
    check_wrapped(data, size, 5);
    return 0;
}

static void check_one(const uint8_t *data, size_t size)
{
    struct hdr *h;
    if (hdr_parse(data, size, &h))
        return;
    for (unsigned f = 3; f <= 5; f++)
        roundtrip(h, f);
    uint64_t sz = h->meta.size;
    const uint64_t probes[] = {0, 4096, sz / 2 & ~4095ull, sz ? sz - 1 : 0, sz, sz + 4096};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
        lookup_matches_scan(h, probes[i]);
    for (size_t i = 0; i < h->n && i < 8; i++)
        lookup_matches_scan(h, h->e[i].offset);
    (void)hdr_check_loader(h, NULL, NULL);
    if (hdr_check(h) == 0 && sz >= 3 * 4096) {
        /* a whole header takes a diff; the result is whole too */
        snap_uuid nb;
        memset(nb.b, 0xfe, 16);
        struct hdr_extent d[] = {{4096, 4096}}, z[] = {{2 * 4096, 4096}};
        struct hdr *g = NULL;
        int err = hdr_build_diff(h, &nb, d, 1, z, 1, &g);
        /* the only refusals: 0xfe.. already in the parent, Generation at its maximum, or no
         * room for one more build */
        if (err && err != SNAP_EUSAGE && !(err == SNAP_ERANGE && h->meta.generation == UINT64_MAX) &&
            !(err == SNAP_ETOOBIG && h->nids >= HDR_MAX_BUILDS))
            DIE("diff on a whole header failed: %s", snap_errmsg(err));
        if (!err && hdr_check(g))
            DIE("diff header is not whole: %s", snap_errmsg(SNAP_ECHECK));
        hdr_free(g);
    }
    hdr_free(h);
}
