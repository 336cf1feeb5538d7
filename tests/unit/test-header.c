/* Unit tests of lib/header: the worked example, round trips, lookup, diff/normalize, checks. */
#include "test.h"

#include "base/bytes.h"
#include "base/err.h"
#include "base/mem.h"
#include "header/header.h"
#include "header/internal.h"

#include <stdlib.h>

#define K4 4096u

static const uint8_t worked_example[104] = {
    0x03, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10, 0, 0, 0, 0, 0, 0,
    0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x20, 0, 0, 0, 0, 0, 0,
    0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0, 0, 0, 0, 0, 0, 0, 0,
};

static snap_uuid U(uint8_t v)
{
    snap_uuid u;
    memset(u.b, v, sizeof u.b);
    return u;
}

static struct hdr *mk(uint64_t size, unsigned version)
{
    struct hdr_meta m = {.version = version, .block_size = K4, .size = size, .generation = 7};
    m.build_id = U(0xbb);
    m.base_build_id = U(0xba);
    struct hdr *h = NULL;
    if (hdr_new(&m, &h))
        abort();
    return h;
}

/* Append or abort: test set-up must not fail silently. */
static void add(struct hdr *h, uint64_t off, uint64_t len, uint8_t build, uint64_t st)
{
    snap_uuid u = U(build);
    if (hdr_append(h, off, len, build ? &u : NULL, st))
        abort();
}

static int entry_is(const struct hdr *h, size_t i, uint64_t off, uint64_t len, uint8_t build,
                    uint64_t st)
{
    if (i >= h->n)
        return 0;
    const struct hdr_entry *e = &h->e[i];
    snap_uuid u = U(build);
    return e->offset == off && e->length == len && e->storage == st &&
           memcmp(hdr_entry_build(h, e), &u, 16) == 0;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int same_entries(const struct hdr *a, const struct hdr *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        const struct hdr_entry *x = &a->e[i], *y = &b->e[i];
        if (x->offset != y->offset || x->length != y->length || x->storage != y->storage ||
            memcmp(hdr_entry_build(a, x), hdr_entry_build(b, y), 16) != 0)
            return 0;
    }
    return 1;
}

static int same_meta(const struct hdr *a, const struct hdr *b)
{
    return (a->meta.version & ~0xFFFFull) == (b->meta.version & ~0xFFFFull) &&
           a->meta.block_size == b->meta.block_size && a->meta.size == b->meta.size &&
           a->meta.generation == b->meta.generation &&
           memcmp(&a->meta.build_id, &b->meta.build_id, 16) == 0 &&
           memcmp(&a->meta.base_build_id, &b->meta.base_build_id, 16) == 0;
}

/* ---- worked example ---------------------------------------------------------------------- */

TEST(header_worked_example_parse_and_write)
{
    struct hdr *h;
    CHECK_EQ(hdr_parse(worked_example, sizeof worked_example, &h), 0);
    snap_uuid id;
    snap_uuid_parse("11111111-2222-3333-4444-555555555555", &id);
    CHECK_EQ(h->format, 3);
    CHECK_EQ(h->meta.version, 3);
    CHECK_EQ(h->meta.block_size, 4096);
    CHECK_EQ(h->meta.size, 8192);
    CHECK_EQ(h->meta.generation, 0);
    CHECK_MEM(&h->meta.build_id, &id, 16);
    CHECK_MEM(&h->meta.base_build_id, &id, 16);
    CHECK_EQ(h->n, 1);
    CHECK_MEM(hdr_entry_build(h, &h->e[0]), &id, 16);
    CHECK_EQ(h->e[0].offset, 0);
    CHECK_EQ(h->e[0].length, 8192);
    CHECK_EQ(h->e[0].storage, 0);
    CHECK(!h->has_builds);
    CHECK_EQ(hdr_check(h), 0);
    uint8_t *out;
    size_t len;
    CHECK_EQ(hdr_serialize(h, 3, &out, &len), 0);
    CHECK_EQ(len, 104);
    CHECK_MEM(out, worked_example, 104);
    snap_free(out);
    hdr_free(h);

    /* The other direction: built in memory, written byte for byte. */
    struct hdr_meta m = {.version = 3, .block_size = 4096, .size = 8192, .generation = 0,
                         .build_id = id, .base_build_id = id};
    CHECK_EQ(hdr_new(&m, &h), 0);
    CHECK_EQ(hdr_append(h, 0, 8192, &id, 0), 0);
    CHECK_EQ(hdr_serialize(h, 3, &out, &len), 0);
    CHECK_EQ(len, 104);
    CHECK_MEM(out, worked_example, 104);
    snap_free(out);
    hdr_free(h);
}

TEST(header_v3_without_mappings_covers_the_size)
{
    uint8_t b[64];
    memcpy(b, worked_example, 64);
    put_le64(b + 16, 5000); /* Size 5000 -> one mapping [0, 8192) */
    put_le64(b, 1);         /* format 1 shares the layout */
    struct hdr *h;
    CHECK_EQ(hdr_parse(b, 64, &h), 0);
    CHECK_EQ(h->format, 1);
    CHECK_EQ(h->n, 1);
    CHECK_EQ(h->e[0].offset, 0);
    CHECK_EQ(h->e[0].length, 8192);
    CHECK_MEM(hdr_entry_build(h, &h->e[0]), b + 32, 16);
    CHECK_EQ(hdr_check(h), 0);
    /* Written as v3 it becomes an explicit mapping with format number 3. */
    uint8_t *out;
    size_t len;
    CHECK_EQ(hdr_serialize(h, 3, &out, &len), 0);
    CHECK_EQ(len, 104);
    CHECK_EQ(get_le64(out), 3);
    snap_free(out);
    hdr_free(h);

    put_le64(b + 16, 0); /* Size 0: nothing to map */
    CHECK_EQ(hdr_parse(b, 64, &h), 0);
    CHECK_EQ(h->n, 0);
    CHECK_EQ(hdr_check(h), 0);
    hdr_free(h);

    put_le64(b + 16, 4096); /* the zero UUID as own build: zeros */
    memset(b + 32, 0, 16);
    CHECK_EQ(hdr_parse(b, 64, &h), 0);
    CHECK_EQ(h->n, 1);
    CHECK_EQ(h->e[0].build, HDR_ZERO);
    hdr_free(h);
}

TEST(header_version_high_bits_are_kept)
{
    struct hdr *h = mk(8192, 0x70000u | 3), *g;
    add(h, 0, 8192, 1, 0);
    uint8_t *out;
    size_t len;
    CHECK_EQ(hdr_serialize(h, 5, &out, &len), 0);
    CHECK_EQ(get_le64(out), 0x70005u);
    CHECK_EQ(hdr_parse(out, len, &g), 0);
    CHECK_EQ(g->format, 5);
    snap_free(out);
    hdr_free(g);
    hdr_free(h);
}

/* ---- round trips ------------------------------------------------------------------------- */

/* A random mapping over a size whose tail may not be a multiple of 4096: builds from a pool,
 * zero entries, the odd hole; storage offsets anywhere below 2^20 pages. */
static struct hdr *random_header(int holes)
{
    uint64_t pages = 1 + rnd() % 400;
    uint64_t size = pages * K4 - (rnd() % 2 ? rnd() % K4 : 0);
    struct hdr *h = mk(size, 3);
    int nb = 1 + (int)(rnd() % 6);
    for (uint64_t p = 0; p < pages;) {
        uint64_t len = 1 + rnd() % snap_min_u64(16, pages - p);
        unsigned kind = (unsigned)(rnd() % 20);
        if (kind < 4)
            add(h, p * K4, len * K4, 0, 0);
        else if (kind == 4 && holes)
            ; /* hole */
        else
            add(h, p * K4, len * K4, (uint8_t)(1 + rnd() % (uint64_t)nb), (rnd() % (1u << 20)) * K4);
        p += len;
    }
    return h;
}

static int roundtrip(struct hdr *h, unsigned format, struct hdr **back)
{
    uint8_t *buf;
    size_t len;
    int err = hdr_serialize(h, format, &buf, &len);
    if (err)
        return err;
    err = hdr_parse(buf, len, back);
    snap_free(buf);
    return err;
}

TEST(header_roundtrip_property)
{
    rng_state = 0x5eed5eed12345ull;
    for (int c = 0; c < 300; c++) {
        struct hdr *h = random_header(c % 3 == 0), *a = NULL, *b = NULL, *v5 = NULL, *v5b = NULL;
        int ok = 0;
        if (roundtrip(h, 3, &a) || roundtrip(a, 4, &b) || roundtrip(b, 5, &v5))
            goto done;
        /* v3 and v4 keep the entries exactly; v5 the contents (zeros and holes as gaps). */
        if (!same_entries(h, a) || !same_entries(h, b) || !same_meta(h, b) || b->format != 4)
            goto done;
        if (!hdr_same_contents(h, v5) || !same_meta(h, v5) || v5->format != 5)
            goto done;
        /* v5 -> v4 -> v5 is byte-identical. */
        uint8_t *x, *y;
        size_t xl, yl;
        if (roundtrip(v5, 4, &v5b) || hdr_serialize(v5, 5, &x, &xl))
            goto done;
        int same = !hdr_serialize(v5b, 5, &y, &yl) && xl == yl && !memcmp(x, y, xl);
        if (same)
            snap_free(y);
        snap_free(x);
        if (!same || !same_entries(v5, v5b))
            goto done;
        /* the synthesized builds: every referenced build, sorted, size = highest storage end */
        for (uint32_t i = 1; i < b->nbuilds; i++)
            if (snap_uuid_cmp(&b->builds[i - 1].id, &b->builds[i].id) >= 0)
                goto done;
        for (size_t i = 0; i < h->n; i++) {
            const struct hdr_entry *e = &h->e[i];
            const struct hdr_build *bd = hdr_find_build(b, hdr_entry_build(h, e));
            if (e->build != HDR_ZERO && (!bd || (uint64_t)bd->file_size < e->storage + e->length))
                goto done;
        }
        ok = 1;
    done:
        hdr_free(h);
        hdr_free(a);
        hdr_free(b);
        hdr_free(v5);
        hdr_free(v5b);
        if (!ok) {
            test_failed(__FILE__, __LINE__, "round trip case %d: %s", c, snap_errmsg(SNAP_EFORMAT));
            return;
        }
    }
}

TEST(header_v4_keeps_flags_builds_and_frames)
{
    struct hdr *h = mk(3 * K4, 4), *g;
    add(h, 0, K4, 1, 0);
    add(h, K4, K4, 0, 0);
    add(h, 2 * K4, K4, 2, 8 * K4);
    uint8_t sha[32];
    memset(sha, 0xab, sizeof sha);
    snap_uuid u2 = U(2);
    CHECK_EQ(hdr_set_build(h, &u2, 12345, sha), 0);
    h->flags = HDR_FLAG_INCOMPLETE | 0x80;
    uint8_t *out, *out2;
    size_t len, len2;
    CHECK_EQ(hdr_serialize(h, 4, &out, &len), 0);
    CHECK_EQ(out[64], 0x81);
    CHECK_MEM(out + 69, "\x04\x22\x4d\x18", 4);
    CHECK_EQ(hdr_parse(out, len, &g), 0);
    CHECK_EQ(g->flags, 0x81);
    CHECK(g->has_builds);
    CHECK_EQ(g->nbuilds, 1); /* as set: only build 2 */
    CHECK_MEM(&g->builds[0].id, &u2, 16);
    CHECK_EQ(g->builds[0].file_size, 12345);
    CHECK_MEM(g->builds[0].sha256, sha, 32);
    CHECK(same_entries(h, g));
    CHECK_EQ(hdr_serialize(g, 4, &out2, &len2), 0);
    CHECK_EQ(len2, len);
    CHECK_MEM(out2, out, len);
    snap_free(out);
    snap_free(out2);
    hdr_free(g);
    hdr_free(h);
}

/* A v4/v5 header around a raw body, for hand-made bodies. */
struct body {
    uint8_t b[4096];
    size_t n;
};
static void b32(struct body *b, uint32_t v) { put_le32(b->b + b->n, v); b->n += 4; }
static void b64(struct body *b, uint64_t v) { put_le64(b->b + b->n, v); b->n += 8; }
static void bid(struct body *b, uint8_t v) { memset(b->b + b->n, v, 16); b->n += 16; }
static void bvar(struct body *b, uint64_t v)
{
    while (v >= 0x80) {
        b->b[b->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->b[b->n++] = (uint8_t)v;
}
static void bbuild(struct body *b, uint8_t id, uint32_t comp, uint32_t nframes)
{
    bid(b, id);
    b64(b, 1 << 20);
    memset(b->b + b->n, 0, 32);
    b->n += 32;
    b32(b, comp);
    b32(b, nframes);
}
static void bframe(struct body *b, int64_t su, int64_t sc, int32_t zu, int32_t zc)
{
    b64(b, (uint64_t)su);
    b64(b, (uint64_t)sc);
    b32(b, (uint32_t)zu);
    b32(b, (uint32_t)zc);
}
static void bmap(struct body *b, uint64_t off, uint64_t len, uint8_t id, uint64_t st)
{
    b64(b, off);
    b64(b, len);
    bid(b, id);
    b64(b, st);
}

static int wrap(unsigned format, uint64_t size, const struct body *b, uint8_t **out, size_t *len)
{
    size_t cap = HDR_V45_PREFIX + hdr_lz4_bound(b->n);
    uint8_t *buf = snap_malloc(cap);
    memset(buf, 0, HDR_META_SIZE);
    put_le64(buf, format);
    put_le64(buf + 8, K4);
    put_le64(buf + 16, size);
    buf[64] = 0;
    put_le32(buf + 65, (uint32_t)b->n);
    size_t cl;
    int err = hdr_lz4_compress(b->b, b->n, buf + HDR_V45_PREFIX, cap - HDR_V45_PREFIX, &cl);
    *out = buf;
    *len = HDR_V45_PREFIX + cl;
    return err;
}

static int parse_body(unsigned format, uint64_t size, const struct body *b)
{
    uint8_t *buf;
    size_t len;
    struct hdr *h = NULL;
    if (wrap(format, size, b, &buf, &len))
        abort();
    snap_errclear();
    int err = hdr_parse(buf, len, &h);
    snap_free(buf);
    hdr_free(h);
    return err;
}

TEST(header_v5_hand_made_body)
{
    /* 2 builds, entries [1,3) -> B7 @5, [4,5) -> B9 @0, [5,6) -> B7 @7 in a 7-page device. */
    struct body b = {.n = 0};
    b32(&b, 0);
    b32(&b, 2); bid(&b, 7); bid(&b, 9);
    b32(&b, 3);
    bvar(&b, 1); bvar(&b, 3); bvar(&b, 1);         /* offset deltas */
    bvar(&b, 2); bvar(&b, 1); bvar(&b, 1);         /* lengths */
    bvar(&b, 10); bvar(&b, 9); bvar(&b, 14);       /* zigzag 5, -5, +7 */
    bvar(&b, 0); bvar(&b, 1); bvar(&b, 0);         /* build index */
    uint8_t *buf, *again;
    size_t len, alen;
    CHECK_EQ(wrap(5, 7 * K4 - 100, &b, &buf, &len), 0);
    struct hdr *h;
    CHECK_EQ(hdr_parse(buf, len, &h), 0);
    CHECK_EQ(h->n, 6);
    CHECK(entry_is(h, 0, 0, K4, 0, 0));
    CHECK(entry_is(h, 1, K4, 2 * K4, 7, 5 * K4));
    CHECK(entry_is(h, 2, 3 * K4, K4, 0, 0));
    CHECK(entry_is(h, 3, 4 * K4, K4, 9, 0));
    CHECK(entry_is(h, 4, 5 * K4, K4, 7, 7 * K4));
    CHECK(entry_is(h, 5, 6 * K4, K4, 0, 0));
    CHECK_EQ(hdr_check(h), 0);
    /* our writer produces the same body: same bytes back */
    CHECK_EQ(hdr_serialize(h, 5, &again, &alen), 0);
    CHECK_EQ(alen, len);
    CHECK_MEM(again, buf, len);
    snap_free(again);
    snap_free(buf);
    hdr_free(h);
}

/* ---- lookup ------------------------------------------------------------------------------ */

TEST(header_lookup)
{
    struct hdr *h = mk(10 * K4 - 1, 3);
    add(h, 0, 2 * K4, 1, 100 * K4);
    add(h, 2 * K4, 3 * K4, 0, 0);
    add(h, 5 * K4, 5 * K4, 2, 0);
    struct hdr_loc l;
    CHECK_EQ(hdr_lookup(h, 0, &l), 0);
    snap_uuid u1 = U(1), u2 = U(2);
    CHECK_MEM(l.build, &u1, 16);
    CHECK(!l.zero);
    CHECK_EQ(l.storage, 100 * K4);
    CHECK_EQ(l.remaining, 2 * K4);
    CHECK_EQ(l.entry, 0);
    CHECK_EQ(hdr_lookup(h, K4, &l), 0);
    CHECK_EQ(l.storage, 101 * K4);
    CHECK_EQ(l.remaining, K4);
    CHECK_EQ(hdr_lookup(h, 3 * K4, &l), 0);
    CHECK(l.zero);
    CHECK(snap_uuid_is_zero(l.build));
    CHECK_EQ(l.remaining, 2 * K4);
    CHECK_EQ(l.entry, 1);
    CHECK_EQ(hdr_lookup(h, 9 * K4, &l), 0); /* the last, partial page */
    CHECK_MEM(l.build, &u2, 16);
    CHECK_EQ(l.storage, 4 * K4);
    CHECK_EQ(l.remaining, K4);
    CHECK_EQ(hdr_lookup(h, 5 * K4 + 10, &l), 0); /* not aligned: same arithmetic */
    CHECK_EQ(l.storage, 10);
    CHECK_EQ(l.remaining, 5 * K4 - 10);
    CHECK_ERR(hdr_lookup(h, 10 * K4 - 1, &l), SNAP_ERANGE, "past the size 40959");
    hdr_free(h);

    h = mk(8 * K4, 3);
    add(h, K4, K4, 1, 0);
    add(h, 4 * K4, K4, 1, 0);
    CHECK_ERR(hdr_lookup(h, 0, &l), SNAP_ENOTFOUND, "hole before the first mapping");
    CHECK_ERR(hdr_lookup(h, 3 * K4, &l), SNAP_ENOTFOUND, "mapping 0 ends at 8192");
    CHECK_ERR(hdr_lookup(h, 7 * K4, &l), SNAP_ENOTFOUND, "hole");
    add(h, 0, K4, 1, 0); /* out of order now */
    CHECK(!h->sorted);
    CHECK_ERR(hdr_lookup(h, 4 * K4, &l), SNAP_ECHECK, "not sorted");
    hdr_free(h);
}

TEST(header_lookup_large_is_consistent)
{
    rng_state = 42;
    struct hdr *h = random_header(0);
    /* Every page: the binary search agrees with a linear scan. */
    for (uint64_t x = 0; x < h->meta.size; x += K4) {
        struct hdr_loc l;
        CHECK_EQ(hdr_lookup(h, x, &l), 0);
        size_t i = 0;
        while (!(h->e[i].offset <= x && x < h->e[i].offset + h->e[i].length))
            i++;
        CHECK_EQ(l.entry, i);
        CHECK_EQ(l.remaining, h->e[i].offset + h->e[i].length - x);
    }
    hdr_free(h);
}

/* ---- check -------------------------------------------------------------------------------- */

TEST(header_check_names_the_problem)
{
    struct hdr *h = mk(4 * K4, 3);
    add(h, 0, K4, 1, 0);
    add(h, 2 * K4, 2 * K4, 1, 0);
    CHECK_ERR(hdr_check(h), SNAP_ECHECK, "hole [4096, 8192) between the previous mapping and mapping 1");
    hdr_free(h);

    h = mk(4 * K4, 3);
    add(h, K4, 3 * K4, 1, 0);
    CHECK_ERR(hdr_check(h), SNAP_ECHECK, "hole [0, 4096) before mapping 0");
    hdr_free(h);

    h = mk(4 * K4 - 5, 3);
    add(h, 0, 2 * K4, 1, 0);
    CHECK_ERR(hdr_check(h), SNAP_ECHECK, "hole [8192, 16379) after the last mapping");
    add(h, K4, 3 * K4, 2, 0);
    CHECK_ERR(hdr_check(h), SNAP_ECHECK, "mapping 1 [4096, 16384) overlaps mapping 0, which ends at 8192");
    hdr_free(h);

    h = mk(2 * K4, 3);
    add(h, 0, 3 * K4, 1, 0);
    CHECK_ERR(hdr_check(h), SNAP_ECHECK, "ends past the size 8192");
    hdr_free(h);

    h = mk(2 * K4, 3);
    add(h, 0, 0, 1, 0);
    CHECK_ERR(hdr_check(h), SNAP_ECHECK, "mapping 0 at 0 has Length 0");
    hdr_free(h);

    h = mk(2 * K4, 3);
    CHECK_ERR(hdr_check(h), SNAP_ECHECK, "no mappings at all");
    add(h, 0, 2 * K4, 1, 0);
    h->e[0].storage = 100; /* only possible by hand: append refuses it */
    CHECK_ERR(hdr_check(h), SNAP_ECHECK, "BuildStorageOffset 100 is not a multiple of 4096");
    CHECK_ERR(hdr_append(h, 3, K4, NULL, 0), SNAP_EFORMAT, "Offset 3");
    hdr_free(h);
}

/* ---- diff / merge / normalize ------------------------------------------------------------- */

static struct hdr *diff(const struct hdr *parent, const struct hdr_extent *d, size_t nd,
                        const struct hdr_extent *z, size_t nz)
{
    snap_uuid nb = U(0xee);
    struct hdr *out = NULL;
    if (hdr_build_diff(parent, &nb, d, nd, z, nz, &out))
        return NULL;
    return out;
}

TEST(header_diff_inside_one_entry)
{
    struct hdr *p = mk(16 * K4, 3);
    add(p, 0, 16 * K4, 1, 0);
    struct hdr_extent d[] = {{4 * K4, 2 * K4}};
    struct hdr *h = diff(p, d, 1, NULL, 0);
    CHECK(h);
    CHECK_EQ(h->n, 3);
    CHECK(entry_is(h, 0, 0, 4 * K4, 1, 0));
    CHECK(entry_is(h, 1, 4 * K4, 2 * K4, 0xee, 0));
    CHECK(entry_is(h, 2, 6 * K4, 10 * K4, 1, 6 * K4)); /* right split keeps BSO + shift */
    CHECK_EQ(h->meta.generation, 8);
    snap_uuid nb = U(0xee), base = U(0xba);
    CHECK_MEM(&h->meta.build_id, &nb, 16);
    CHECK_MEM(&h->meta.base_build_id, &base, 16);
    CHECK_EQ(h->meta.version, 3);
    CHECK_EQ(h->meta.block_size, K4);
    CHECK_EQ(h->meta.size, 16 * K4);
    CHECK(h->has_builds);
    const struct hdr_build *b = hdr_find_build(h, &nb);
    CHECK(b);
    CHECK_EQ(b->file_size, 2 * K4);
    hdr_free(h);
    hdr_free(p);
}

TEST(header_diff_across_entries_and_edges)
{
    struct hdr *p = mk(16 * K4 - 100, 3);
    add(p, 0, 8 * K4, 1, 0);
    add(p, 8 * K4, 8 * K4, 2, 100 * K4);
    /* across the boundary, at the start edge and at the (partial) end edge */
    struct hdr_extent d[] = {{0, K4}, {6 * K4, 4 * K4}, {15 * K4, K4}};
    struct hdr *h = diff(p, d, 3, NULL, 0);
    CHECK(h);
    CHECK_EQ(h->n, 5);
    CHECK(entry_is(h, 0, 0, K4, 0xee, 0));
    CHECK(entry_is(h, 1, K4, 5 * K4, 1, K4));
    CHECK(entry_is(h, 2, 6 * K4, 4 * K4, 0xee, K4));
    CHECK(entry_is(h, 3, 10 * K4, 5 * K4, 2, 102 * K4));
    CHECK(entry_is(h, 4, 15 * K4, K4, 0xee, 5 * K4));
    CHECK_EQ(h->nids, 3);
    /* builds section: the new build's size is the packed dirty bytes */
    snap_uuid nb = U(0xee);
    CHECK_EQ(hdr_find_build(h, &nb)->file_size, 6 * K4);
    hdr_free(h);
    hdr_free(p);
}

TEST(header_diff_zero_runs_and_joins)
{
    struct hdr *p = mk(16 * K4, 3);
    add(p, 0, 4 * K4, 1, 0);
    add(p, 4 * K4, 4 * K4, 0, 0);
    add(p, 8 * K4, 4 * K4, 1, 4 * K4);  /* contiguous with entry 0's storage but not adjacent */
    add(p, 12 * K4, 4 * K4, 1, 64 * K4); /* adjacent to the previous, storage not contiguous */
    /* zero run next to the parent's zeros: they join; adjacent dirty runs become one */
    struct hdr_extent z[] = {{2 * K4, 2 * K4}, {8 * K4, K4}};
    struct hdr_extent d[] = {{9 * K4, K4}, {10 * K4, K4}};
    struct hdr *h = diff(p, d, 2, z, 2);
    CHECK(h);
    CHECK_EQ(h->n, 5);
    CHECK(entry_is(h, 0, 0, 2 * K4, 1, 0));
    CHECK(entry_is(h, 1, 2 * K4, 7 * K4, 0, 0)); /* zero [2,4) + parent zero [4,8) + zero [8,9) */
    CHECK(entry_is(h, 2, 9 * K4, 2 * K4, 0xee, 0));
    CHECK(entry_is(h, 3, 11 * K4, K4, 1, 7 * K4));
    CHECK(entry_is(h, 4, 12 * K4, 4 * K4, 1, 64 * K4));
    CHECK_EQ(hdr_check(h), 0);
    hdr_free(h);

    /* A parent split in two with contiguous storage is joined by normalization. */
    hdr_free(p);
    p = mk(8 * K4, 3);
    add(p, 0, 4 * K4, 1, 0);
    add(p, 4 * K4, 4 * K4, 1, 4 * K4);
    h = diff(p, NULL, 0, NULL, 0);
    CHECK(h);
    CHECK_EQ(h->n, 1);
    CHECK(entry_is(h, 0, 0, 8 * K4, 1, 0));
    CHECK_EQ(h->nids, 1); /* the new build has no dirty bytes: not referenced */
    hdr_free(h);
    hdr_free(p);
}

TEST(header_diff_incremental_api)
{
    struct hdr *p = mk(4 * K4, 4), *h;
    add(p, 0, 4 * K4, 1, 0);
    snap_uuid nb = U(0xee);
    struct hdr_diff *d;
    CHECK_EQ(hdr_diff_new(p, &nb, &d), 0);
    CHECK_EQ(hdr_diff_add(d, K4, K4, HDR_RUN_DIRTY), 0);
    CHECK_EQ(hdr_diff_add(d, 2 * K4, 0, HDR_RUN_ZERO), 0); /* empty runs are nothing */
    CHECK_EQ(hdr_diff_add(d, 2 * K4, K4, HDR_RUN_DIRTY), 0);
    CHECK_EQ(hdr_diff_dirty_bytes(d), 2 * K4);
    CHECK_ERR(hdr_diff_add(d, 2 * K4, K4, HDR_RUN_ZERO), SNAP_ERANGE, "starts before the end");
    CHECK_ERR(hdr_diff_add(d, 3 * K4 + 1, K4, HDR_RUN_ZERO), SNAP_ERANGE, "not aligned");
    CHECK_ERR(hdr_diff_add(d, 3 * K4, 2 * K4, HDR_RUN_ZERO), SNAP_ERANGE, "past the size");
    CHECK_EQ(hdr_diff_finish(d, &h), 0);
    CHECK_EQ(h->n, 3);
    CHECK(entry_is(h, 1, K4, 2 * K4, 0xee, 0));
    CHECK_EQ(h->format, 4);
    hdr_free(h);

    snap_uuid old = U(1);
    CHECK_ERR(hdr_diff_new(p, &old, &d), SNAP_EUSAGE, "already in the parent");
    snap_uuid z = U(0);
    CHECK_ERR(hdr_diff_new(p, &z, &d), SNAP_EUSAGE, "zero UUID");
    struct hdr_extent dd[] = {{2 * K4, K4}}, zz[] = {{2 * K4, 2 * K4}};
    CHECK_ERR(hdr_build_diff(p, &nb, dd, 1, zz, 1, &h), SNAP_ERANGE, "starts before");
    hdr_free(p);

    /* a parent with a hole the diff does not cover: the coverage check says where */
    p = mk(4 * K4, 3);
    add(p, 0, 2 * K4, 1, 0);
    struct hdr_extent d3[] = {{2 * K4, K4}};
    CHECK_ERR(hdr_build_diff(p, &nb, d3, 1, NULL, 0, &h), SNAP_ECHECK, "hole [12288, 16384)");
    hdr_free(p);
}

TEST(header_diff_keeps_parent_build_records)
{
    struct hdr *p = mk(8 * K4, 4), *h;
    add(p, 0, 4 * K4, 1, 0);
    add(p, 4 * K4, 4 * K4, 2, 0);
    uint8_t sha[32];
    memset(sha, 7, 32);
    snap_uuid u1 = U(1), u2 = U(2), nb = U(0xee);
    CHECK_EQ(hdr_set_build(p, &u1, 999, sha), 0);
    CHECK_EQ(hdr_set_build(p, &u2, 888, NULL), 0);
    struct hdr_extent d[] = {{4 * K4, 4 * K4}}; /* build 2 disappears */
    CHECK_EQ(hdr_build_diff(p, &nb, d, 1, NULL, 0, &h), 0);
    CHECK_EQ(h->nbuilds, 2);
    CHECK_EQ(hdr_find_build(h, &u1)->file_size, 999);
    CHECK_MEM(hdr_find_build(h, &u1)->sha256, sha, 32);
    CHECK(!hdr_find_build(h, &u2));
    CHECK_EQ(hdr_find_build(h, &nb)->file_size, 4 * K4);
    hdr_free(h);
    hdr_free(p);
}

TEST(header_diff_random_against_pages)
{
    rng_state = 777;
    for (int c = 0; c < 100; c++) {
        struct hdr *p = random_header(0);
        uint64_t pages = hdr_pages_ceil(p->meta.size);
        struct hdr_extent d[64], z[64];
        size_t nd = 0, nz = 0;
        for (uint64_t pg = rnd() % 4; pg < pages && nd < 64 && nz < 64; pg += 1 + rnd() % 6) {
            uint64_t len = 1 + rnd() % snap_min_u64(3, pages - pg);
            if (rnd() % 3)
                d[nd++] = (struct hdr_extent){pg * K4, len * K4};
            else
                z[nz++] = (struct hdr_extent){pg * K4, len * K4};
            pg += len;
        }
        struct hdr *h = diff(p, d, nd, z, nz);
        CHECK(h);
        CHECK_EQ(hdr_check(h), 0);
        /* page by page: a dirty page is the new build at its packed position, a zero page is
         * zeros, any other page reads as in the parent */
        uint64_t packed = 0;
        size_t id = 0, iz = 0;
        for (uint64_t pg = 0; pg < pages; pg++) {
            struct hdr_loc a, b;
            CHECK_EQ(hdr_lookup(h, pg * K4, &a), 0);
            while (id < nd && d[id].offset + d[id].length <= pg * K4)
                id++;
            while (iz < nz && z[iz].offset + z[iz].length <= pg * K4)
                iz++;
            if (id < nd && d[id].offset <= pg * K4) {
                snap_uuid nb = U(0xee);
                CHECK_MEM(a.build, &nb, 16);
                CHECK_EQ(a.storage, packed);
                packed += K4;
            } else if (iz < nz && z[iz].offset <= pg * K4) {
                CHECK(a.zero);
            } else {
                CHECK_EQ(hdr_lookup(p, pg * K4, &b), 0);
                CHECK_EQ(a.zero, b.zero);
                CHECK_MEM(a.build, b.build, 16);
                CHECK_EQ(a.storage, b.storage);
            }
        }
        /* normalized: no two neighbours could be joined */
        for (size_t i = 1; i < h->n; i++) {
            const struct hdr_entry *x = &h->e[i - 1], *y = &h->e[i];
            CHECK(!(x->build == y->build &&
                    (y->build == HDR_ZERO || x->storage + x->length == y->storage)));
        }
        hdr_free(h);
        hdr_free(p);
    }
}

/* ---- rejection rules of formats.md ------------------------------------------------------- */

TEST(header_rejects_metadata_and_v3)
{
    struct hdr *h;
    uint8_t b[104 + 40];
    CHECK_ERR(hdr_parse(worked_example, 63, &h), SNAP_EFORMAT, "shorter than the 64-byte metadata");
    memcpy(b, worked_example, 104);
    put_le64(b, 6);
    CHECK_ERR(hdr_parse(b, 104, &h), SNAP_EFORMAT, "Version 6");
    put_le64(b, 0x10000);
    CHECK_ERR(hdr_parse(b, 104, &h), SNAP_EFORMAT, "format 0");
    memcpy(b, worked_example, 104);
    put_le64(b + 8, 0);
    CHECK_ERR(hdr_parse(b, 104, &h), SNAP_EFORMAT, "BlockSize is 0");
    memcpy(b, worked_example, 104);
    CHECK_ERR(hdr_parse(b, 103, &h), SNAP_EFORMAT, "39 trailing bytes after 0 mappings");
    put_le64(b + 64, 100);
    CHECK_ERR(hdr_parse(b, 104, &h), SNAP_EFORMAT, "header v3: mapping 0: Offset 100 is not a multiple of 4096");
    memcpy(b, worked_example, 104);
    put_le64(b + 72, 4097);
    CHECK_ERR(hdr_parse(b, 104, &h), SNAP_EFORMAT, "mapping 0: Length 4097");
    memcpy(b, worked_example, 104);
    put_le64(b + 96, 12);
    CHECK_ERR(hdr_parse(b, 104, &h), SNAP_EFORMAT, "mapping 0: BuildStorageOffset 12");
    memcpy(b, worked_example, 104);
    memcpy(b + 104, b + 64, 40);
    put_le64(b + 104, UINT64_MAX - 4095);
    CHECK_ERR(hdr_parse(b, 144, &h), SNAP_EFORMAT, "mapping 1: Offset 18446744073709547520 + Length 8192 overflows");
    memcpy(b, worked_example, 104);
    put_le64(b + 16, UINT64_MAX);
    CHECK_ERR(hdr_parse(b, 104, &h), SNAP_EFORMAT, "Size 18446744073709551615 is too large");
}

TEST(header_rejects_v4_framing)
{
    struct hdr *h;
    struct body b = {.n = 0};
    b32(&b, 0);
    b32(&b, 0);
    uint8_t *buf;
    size_t len;
    CHECK_EQ(wrap(4, 0, &b, &buf, &len), 0);
    CHECK_EQ(hdr_parse(buf, len, &h), 0); /* the well-formed empty one */
    CHECK_EQ(h->n, 0);
    hdr_free(h);
    CHECK_ERR(hdr_parse(buf, 68, &h), SNAP_EFORMAT, "shorter than metadata + flags + uncompressedLen");
    put_le32(buf + 65, HDR_MAX_UNCOMPRESSED + 1);
    CHECK_ERR(hdr_parse(buf, len, &h), SNAP_ETOOBIG, "uncompressedLen 268435457 exceeds the cap");
    put_le32(buf + 65, 9);
    CHECK_ERR(hdr_parse(buf, len, &h), SNAP_EFORMAT, "decompresses to 8 bytes, uncompressedLen says 9");
    put_le32(buf + 65, 7);
    CHECK_ERR(hdr_parse(buf, len, &h), SNAP_EFORMAT, "more than uncompressedLen 7");
    put_le32(buf + 65, 8);
    CHECK_ERR(hdr_parse(buf, len - 1, &h), SNAP_EFORMAT, "cut off");
    uint8_t *longer = snap_malloc(len + 3);
    memcpy(longer, buf, len);
    memset(longer + len, 0, 3);
    CHECK_ERR(hdr_parse(longer, len + 3, &h), SNAP_EFORMAT, "3 bytes after the end of the LZ4 frame");
    snap_free(longer);
    buf[69] = 0x05;
    CHECK_ERR(hdr_parse(buf, len, &h), SNAP_EFORMAT, "not an LZ4 frame");
    buf[69] = 0x04;
    buf[len - 1] ^= 0xff; /* content checksum */
    CHECK_ERR(hdr_parse(buf, len, &h), SNAP_EFORMAT, "LZ4 frame");
    snap_free(buf);
    b.n = 0;
    b32(&b, 0);
    b32(&b, 0);
    b32(&b, 0);
    CHECK_ERR(parse_body(4, 0, &b), SNAP_EFORMAT, "4 trailing bytes after the mapping section");
}

TEST(header_rejects_builds_section)
{
    struct body b = {.n = 0};
    b32(&b, HDR_MAX_BUILDS + 1);
    CHECK_ERR(parse_body(4, 0, &b), SNAP_ETOOBIG, "numBuilds 65536 exceeds the limit of 65535");
    b.n = 0;
    b32(&b, 2);
    bbuild(&b, 1, 0, 0);
    CHECK_ERR(parse_body(4, 0, &b), SNAP_EFORMAT, "numBuilds 2 cannot fit in the remaining 64 bytes");
    b.n = 0;
    b32(&b, 1);
    bbuild(&b, 1, 0, 1);
    bframe(&b, 0, 0, 10, 10);
    b32(&b, 0);
    CHECK_ERR(parse_body(4, 0, &b), SNAP_EFORMAT, "compressionType 0 (none) with nFrames 1");
    b.n = 0;
    b32(&b, 1);
    bbuild(&b, 1, 3, 0);
    b32(&b, 0);
    CHECK_ERR(parse_body(5, 0, &b), SNAP_EFORMAT, "compressionType 3 is not");
    b.n = 0;
    b32(&b, 1);
    bbuild(&b, 1, 2, HDR_MAX_FRAMES + 1);
    CHECK_ERR(parse_body(4, 0, &b), SNAP_ETOOBIG, "nFrames 1048577 exceeds the limit of 1048576");
    b.n = 0;
    b32(&b, 1);
    bbuild(&b, 1, 1, 2);
    bframe(&b, 0, 0, 10, 10);
    CHECK_ERR(parse_body(4, 0, &b), SNAP_EFORMAT, "nFrames 2 cannot fit in the remaining 24 bytes");
    static const struct {
        int64_t su, sc;
        int32_t zu, zc;
        const char *msg;
    } bad[] = {
        {0, 0, 0, 10, "frame 1: sizeU 0 is not positive"},
        {0, 0, 10, -1, "frame 1: sizeC -1 is not positive"},
        {-5, 0, 10, 10, "frame 1: startU -5 is negative"},
        {2097152, 99, 10, 10, "frame 1: startC 99 overlaps frame 0 ending at 100"},
        {2097151, 100, 10, 10, "frame 1: startU 2097151 overlaps frame 0 ending at 2097152"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b.n = 0;
        b32(&b, 1);
        bbuild(&b, 1, 2, 2);
        bframe(&b, 0, 0, 2097152, 100);
        bframe(&b, bad[i].su, bad[i].sc, bad[i].zu, bad[i].zc);
        b32(&b, 0);
        CHECK_ERR(parse_body(4, 0, &b), SNAP_EFORMAT, bad[i].msg);
    }
    b.n = 0;
    b32(&b, 2);
    bbuild(&b, 2, 0, 0);
    bbuild(&b, 1, 0, 0);
    b32(&b, 0);
    CHECK_ERR(parse_body(4, 0, &b), SNAP_EFORMAT, "must be sorted by UUID");
    b.n = 0; /* the good case: frames kept */
    b32(&b, 1);
    bbuild(&b, 1, 2, 2);
    bframe(&b, 0, 0, 2097152, 100);
    bframe(&b, 4194304, 100, 4096, 7);
    b32(&b, 0);
    uint8_t *buf;
    size_t len;
    struct hdr *h;
    CHECK_EQ(wrap(4, 0, &b, &buf, &len), 0);
    CHECK_EQ(hdr_parse(buf, len, &h), 0);
    CHECK_EQ(h->nbuilds, 1);
    CHECK_EQ(h->builds[0].comp, HDR_COMP_LZ4);
    CHECK_EQ(h->builds[0].nframes, 2);
    CHECK_EQ(hdr_build_frames(h, &h->builds[0])[1].start_u, 4194304);
    CHECK_EQ(hdr_build_frames(h, &h->builds[0])[1].size_c, 7);
    uint8_t *again;
    size_t alen;
    CHECK_EQ(hdr_serialize(h, 4, &again, &alen), 0); /* frames survive byte for byte */
    CHECK_EQ(alen, len);
    CHECK_MEM(again, buf, len);
    snap_free(again);
    snap_free(buf);
    hdr_free(h);
}

TEST(header_rejects_v4_mappings)
{
    struct body b = {.n = 0};
    b32(&b, 0);
    b32(&b, 2);
    bmap(&b, 0, K4, 1, 0);
    CHECK_ERR(parse_body(4, K4, &b), SNAP_EFORMAT, "numMappings 2 cannot fit in the remaining 40 bytes");
    b.n = 0;
    b32(&b, 0);
    b32(&b, 2);
    bmap(&b, 0, K4, 1, 0);
    bmap(&b, K4, K4, 1, 4097);
    CHECK_ERR(parse_body(4, 2 * K4, &b), SNAP_EFORMAT,
              "header v4: mapping 1: BuildStorageOffset 4097 is not a multiple of 4096");
}

TEST(header_rejects_too_many_builds)
{
    /* 65536 distinct builds in a v4 mapping: one too many */
    size_t n = HDR_MAX_BUILDS + 1, blen = 8 + n * HDR_MAP_SIZE;
    uint8_t *body = snap_malloc(blen);
    put_le32(body, 0);
    put_le32(body + 4, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = body + 8 + i * HDR_MAP_SIZE;
        put_le64(p, i * K4);
        put_le64(p + 8, K4);
        memset(p + 16, 0x5a, 16);
        put_le32(p + 16, (uint32_t)i + 1);
        put_le64(p + 32, 0);
    }
    size_t cap = HDR_V45_PREFIX + hdr_lz4_bound(blen), cl;
    uint8_t *buf = snap_calloc(1, cap);
    put_le64(buf, 4);
    put_le64(buf + 8, K4);
    put_le64(buf + 16, n * K4);
    put_le32(buf + 65, (uint32_t)blen);
    CHECK_EQ(hdr_lz4_compress(body, blen, buf + HDR_V45_PREFIX, cap - HDR_V45_PREFIX, &cl), 0);
    struct hdr *h;
    CHECK_ERR(hdr_parse(buf, HDR_V45_PREFIX + cl, &h), SNAP_ETOOBIG, "65535 distinct builds");
    snap_free(buf);
    snap_free(body);
}

TEST(header_rejects_v5_mapping)
{
    struct body b = {.n = 0};
#define V5(m) do { b.n = 0; b32(&b, 0); b32(&b, (m)); for (uint32_t i_ = 0; i_ < (m); i_++) bid(&b, (uint8_t)(i_ + 1)); } while (0)
    b.n = 0;
    b32(&b, 0);
    b32(&b, HDR_MAX_BUILDS + 1);
    CHECK_ERR(parse_body(5, K4, &b), SNAP_ETOOBIG, "M 65536 builds exceeds the limit of 65535");
    b.n = 0;
    b32(&b, 0);
    b32(&b, 3);
    bid(&b, 1);
    CHECK_ERR(parse_body(5, K4, &b), SNAP_EFORMAT, "M 3 builds cannot fit in the remaining 16 bytes");
    V5(2);
    memset(b.b + b.n - 16, 0, 16);
    b32(&b, 0);
    CHECK_ERR(parse_body(5, K4, &b), SNAP_EFORMAT, "build table entry 1 is the zero UUID");
    V5(2);
    memset(b.b + b.n - 16, 1, 16);
    b32(&b, 0);
    CHECK_ERR(parse_body(5, K4, &b), SNAP_EFORMAT, "build table entry 1 repeats");
    V5(1);
    b32(&b, HDR_MAX_V5_ENTRIES + 1);
    CHECK_ERR(parse_body(5, K4, &b), SNAP_ETOOBIG, "N 8388609 entries exceeds the limit of 8388608");
    V5(1);
    b32(&b, 2);
    bvar(&b, 0); bvar(&b, 1); bvar(&b, 0); bvar(&b, 0);
    CHECK_ERR(parse_body(5, K4, &b), SNAP_EFORMAT, "N 2 entries cannot fit in the remaining 4 bytes");
    static const struct {
        uint64_t off, len, st, idx; /* one entry's columns */
        const char *msg;
    } bad[] = {
        {0, 0, 0, 0, "entry 0: length is 0"},
        {0, 9, 0, 0, "entry 0: ends at page 9, past the size of 8 pages"},
        {0, 1, 0, 1, "entry 0: build index 1 is not below M 1"},
        {1ull << 32, 1, 0, 0, "entry 0: offset page 4294967296 is beyond u32"},
        {0, 1ull << 32, 0, 0, "entry 0: length 4294967296 pages is beyond u32"},
        {0, 1, 1, 0, "entry 0: storage page (delta -1) is out of the u32 range"},
        {0, 1, 2ull << 32, 0, "entry 0: storage page (delta 4294967296) is out of the u32 range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        V5(1);
        b32(&b, 1);
        bvar(&b, bad[i].off);
        bvar(&b, bad[i].len);
        bvar(&b, bad[i].st);
        bvar(&b, bad[i].idx);
        CHECK_ERR(parse_body(5, 8 * K4, &b), SNAP_EFORMAT, bad[i].msg);
    }
    V5(1); /* overlap: [0,2) then [1,2) */
    b32(&b, 2);
    bvar(&b, 0); bvar(&b, 1);
    bvar(&b, 2); bvar(&b, 1);
    bvar(&b, 0); bvar(&b, 0);
    bvar(&b, 0); bvar(&b, 0);
    CHECK_ERR(parse_body(5, 8 * K4, &b), SNAP_EFORMAT, "entry 1: offset page 1 overlaps the previous entry ending at page 2");
    V5(1); /* a varint that never ends */
    b32(&b, 1);
    for (int i = 0; i < 11; i++)
        b.b[b.n++] = 0xff;
    CHECK_ERR(parse_body(5, 8 * K4, &b), SNAP_EFORMAT, "offset delta 0: varint overflows 64 bits");
    V5(1);
    b32(&b, 1);
    bvar(&b, 0); bvar(&b, 1); bvar(&b, 0); bvar(&b, 0);
    b.b[b.n++] = 0;
    CHECK_ERR(parse_body(5, 8 * K4, &b), SNAP_EFORMAT, "1 trailing bytes after the mapping section");
    b.n--;
    CHECK_ERR(parse_body(5, (1ull << 32) * K4 + 1, &b), SNAP_EFORMAT, "more than 2^32 pages");
    CHECK_EQ(parse_body(5, 8 * K4, &b), 0);
#undef V5
}

TEST(header_v5_writer_refuses_what_it_cannot_say)
{
    struct hdr *h = mk(4 * K4, 3);
    uint8_t *out;
    size_t len;
    add(h, K4, K4, 1, 0);
    add(h, 0, K4, 1, 0);
    CHECK_ERR(hdr_serialize(h, 5, &out, &len), SNAP_ERANGE, "v5 needs sorted, non-overlapping");
    hdr_free(h);
    h = mk(4 * K4, 3);
    add(h, 0, 8 * K4, 1, 0);
    CHECK_ERR(hdr_serialize(h, 5, &out, &len), SNAP_ERANGE, "past the size");
    hdr_free(h);
    h = mk(4 * K4, 3);
    add(h, 0, 4 * K4, 1, (1ull << 32) * K4);
    CHECK_ERR(hdr_serialize(h, 5, &out, &len), SNAP_ERANGE, "beyond 2^32 pages");
    CHECK_ERR(hdr_serialize(h, 6, &out, &len), SNAP_EUSAGE, "format 6");
    hdr_free(h);
    h = mk(4 * K4, 3);
    CHECK_ERR(hdr_serialize(h, 3, &out, &len), SNAP_ERANGE, "no mappings but Size 16384");
    hdr_free(h);
}

/* ---- allocation failures ------------------------------------------------------------------ */

TEST(header_parse_survives_every_allocation_failure)
{
    rng_state = 99;
    struct hdr *src = random_header(0);
    uint8_t *bufs[3];
    size_t lens[3];
    for (unsigned f = 3; f <= 5; f++)
        CHECK_EQ(hdr_serialize(src, f, &bufs[f - 3], &lens[f - 3]), 0);
    for (unsigned f = 0; f < 3; f++) {
        int done = 0;
        for (long k = 0; k < 10000 && !done; k++) {
            struct hdr *h = NULL;
            snap_mem_fail_after(k);
            int err = hdr_parse(bufs[f], lens[f], &h);
            snap_mem_fail_after(-1);
            if (err == 0) {
                done = 1;
                CHECK(f == 2 ? hdr_same_contents(src, h) : same_entries(src, h));
                hdr_free(h);
            } else {
                CHECK_EQ(err, SNAP_ENOMEM);
                CHECK(h == NULL);
            }
        }
        CHECK(done);
    }
    /* and serializing and diffing the same way */
    for (unsigned f = 3; f <= 5; f++) {
        for (long k = 0;; k++) {
            uint8_t *out = NULL;
            size_t len;
            snap_mem_fail_after(k);
            int err = hdr_serialize(src, f, &out, &len);
            snap_mem_fail_after(-1);
            if (!err) {
                CHECK_EQ(len, lens[f - 3]);
                CHECK_MEM(out, bufs[f - 3], len);
                snap_free(out);
                break;
            }
            CHECK_EQ(err, SNAP_ENOMEM);
        }
    }
    struct hdr_extent d[] = {{0, K4}, {3 * K4, 2 * K4}};
    snap_uuid nb = U(0xee);
    for (long k = 0;; k++) {
        struct hdr *h = NULL;
        snap_mem_fail_after(k);
        int err = hdr_build_diff(src, &nb, d, src->meta.size > 5 * K4 ? 2 : 0, NULL, 0, &h);
        snap_mem_fail_after(-1);
        if (!err) {
            hdr_free(h);
            break;
        }
        CHECK_EQ(err, SNAP_ENOMEM);
    }
    for (int i = 0; i < 3; i++)
        snap_free(bufs[i]);
    hdr_free(src);
}

/* ---- what inspect-header reports ---------------------------------------------------------- */

TEST(header_totals_and_sha256_hex)
{
    struct hdr *h = mk(5 * K4, 4);
    add(h, 0, K4, 1, 0);
    add(h, K4, K4, 0, 0);
    add(h, 2 * K4, 2 * K4, 2, 8 * K4);
    add(h, 4 * K4, K4, 1, K4);
    struct hdr_totals t;
    CHECK_EQ(hdr_totals_compute(h, &t), 0);
    CHECK_EQ(t.per_build[0], 2 * K4); /* ids in first-appearance order: build 1, build 2 */
    CHECK_EQ(t.per_build[1], 2 * K4);
    CHECK_EQ(t.zero, K4);
    CHECK_EQ(t.mapped, 5 * K4);
    hdr_totals_free(&t);
    CHECK(t.per_build == NULL);

    uint8_t sha[32] = {0};
    snap_uuid u1 = U(1), u2 = U(2);
    CHECK_EQ(hdr_set_build(h, &u1, K4, sha), 0);
    sha[31] = 0x5a;
    CHECK_EQ(hdr_set_build(h, &u2, 10 * K4, sha), 0);
    char hex[65];
    CHECK(!hdr_build_sha256_hex(&h->builds[0], hex)); /* all zero: unknown */
    CHECK_STR(hex, "");
    CHECK(hdr_build_sha256_hex(&h->builds[1], hex));
    CHECK_STR(hex, "000000000000000000000000000000000000000000000000000000000000005a");
    hdr_free(h);
}

TEST(header_convert_reads_back)
{
    struct hdr *h = mk(4 * K4, 3), *g = NULL;
    add(h, 0, K4, 1, 0);
    add(h, K4, K4, 0, 0);
    add(h, 2 * K4, 2 * K4, 2, 8 * K4);
    for (unsigned f = 3; f <= 5; f++) {
        uint8_t *out = NULL;
        size_t len = 0;
        CHECK_EQ(hdr_convert(h, f, &out, &len), 0);
        CHECK_EQ(hdr_parse(out, len, &g), 0);
        CHECK_EQ(g->format, f);
        CHECK(hdr_same_contents(h, g));
        CHECK(f == 5 || same_entries(h, g));
        hdr_free(g);
        snap_free(out);
    }
    /* An unsorted v1..v4 mapping is kept as written by v3/v4 (compared entry by entry) and
     * cannot be said in v5. */
    struct hdr *u = mk(3 * K4, 3);
    add(u, 2 * K4, K4, 1, 0);
    add(u, 0, 2 * K4, 2, 0);
    CHECK(!u->sorted);
    uint8_t *out = NULL;
    size_t len = 0;
    CHECK_EQ(hdr_convert(u, 4, &out, &len), 0);
    CHECK_EQ(hdr_parse(out, len, &g), 0);
    CHECK(hdr_same_contents(u, g) && same_entries(u, g));
    CHECK(!hdr_same_contents(h, g));
    hdr_free(g);
    snap_free(out);
    out = NULL;
    CHECK_ERR(hdr_convert(u, 5, &out, &len), SNAP_ERANGE, "cannot write as v5: header: mapping 1");
    CHECK(out == NULL);
    hdr_free(u);
    hdr_free(h);
}
