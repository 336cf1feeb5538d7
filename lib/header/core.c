/* core.c -- the in-memory header: creation, entries, the build-id index, the builds section.
 *
 * Build ids: every entry names its build by an index into h->ids.  Interning a UUID goes
 * through an open-addressing table keyed per header with random bits, so a crafted header
 * cannot line its UUIDs up on one probe chain; runs of one build (the common case) hit the
 * `last` shortcut without hashing.  The table holds at most HDR_MAX_BUILDS ids, so it never
 * exceeds 2^17 slots (512 KiB).
 */
#include "header/internal.h"

#include "base/mem.h"

#include <stdlib.h>

static const snap_uuid zero_uuid;

/* ---- cursor over outside bytes ---------------------------------------------------------- */

int hdr_rd_bytes(struct hdr_rd *r, void *dst, size_t n, const char *ctx, const char *what)
{
    if (hdr_rd_left(r) < n)
        return snap_fail(SNAP_EFORMAT, "%s: %s: needs %zu bytes at offset %zu, only %zu left",
                         ctx, what, n, r->pos, hdr_rd_left(r));
    memcpy(dst, r->p + r->pos, n);
    r->pos += n;
    return 0;
}

int hdr_rd_u32(struct hdr_rd *r, uint32_t *v, const char *ctx, const char *what)
{
    uint8_t b[4] = {0};
    int err = hdr_rd_bytes(r, b, 4, ctx, what);
    if (!err)
        *v = get_le32(b);
    return err;
}

int hdr_rd_uvarint(struct hdr_rd *r, uint64_t *v, const char *ctx, const char *what, size_t i)
{
    uint64_t x = 0;
    for (unsigned shift = 0, k = 0; k < 10; k++, shift += 7) {
        if (r->pos >= r->len)
            return snap_fail(SNAP_EFORMAT, "%s: %s %zu: varint cut off at the end of the data",
                             ctx, what, i);
        uint8_t b = r->p[r->pos++];
        if (k == 9 && b > 1)
            return snap_fail(SNAP_EFORMAT, "%s: %s %zu: varint overflows 64 bits", ctx, what, i);
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return snap_fail(SNAP_EFORMAT, "%s: %s %zu: varint longer than 10 bytes", ctx, what, i);
}

int hdr_grow(void **p, size_t *cap, size_t need, size_t size, const char *what)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    void *np = snap_reallocarray(*p, ncap, size);
    if (!np)
        return snap_fail(SNAP_ENOMEM, "header: cannot allocate %zu %s", ncap, what);
    *p = np;
    *cap = ncap;
    return 0;
}

/* ---- creation --------------------------------------------------------------------------- */

int hdr_new(const struct hdr_meta *meta, struct hdr **out)
{
    struct hdr *h = snap_calloc(1, sizeof *h);
    if (!h)
        return snap_fail(SNAP_ENOMEM, "header: cannot allocate");
    h->meta = *meta;
    unsigned f = (unsigned)(meta->version & 0xFFFF);
    h->format = f >= 1 && f <= 5 ? f : 3;
    h->sorted = true;
    snap_uuid k;
    if (snap_uuid_random(&k) == 0) {
        h->idx.key[0] = get_le64(k.b);
        h->idx.key[1] = get_le64(k.b + 8);
    } else {
        h->idx.key[0] = 0x243f6a8885a308d3ull; /* no entropy: still correct, just guessable */
        h->idx.key[1] = 0x13198a2e03707344ull;
    }
    *out = h;
    return 0;
}

void hdr_free(struct hdr *h)
{
    if (!h)
        return;
    snap_free(h->e);
    snap_free(h->ids);
    snap_free(h->idx.slots);
    snap_free(h->builds);
    snap_free(h->frames);
    snap_free(h);
}

/* ---- build ids -------------------------------------------------------------------------- */

static uint32_t id_hash(const struct hdr_idindex *x, const snap_uuid *id, unsigned bits)
{
    uint64_t a = get_le64(id->b) ^ x->key[0], b = get_le64(id->b + 8) ^ x->key[1];
    uint64_t m = (a * 0x9e3779b97f4a7c15ull) ^ (b * 0xc2b2ae3d27d4eb4full);
    m ^= m >> 31;
    m *= 0xbf58476d1ce4e5b9ull;
    return (uint32_t)(m >> (64 - bits));
}

static unsigned log2u(uint32_t v)
{
    unsigned b = 0;
    while ((1u << b) < v)
        b++;
    return b;
}

static void id_insert_slot(struct hdr *h, uint32_t index)
{
    unsigned bits = log2u(h->idx.cap);
    uint32_t mask = h->idx.cap - 1, s = id_hash(&h->idx, &h->ids[index], bits);
    while (h->idx.slots[s])
        s = (s + 1) & mask;
    h->idx.slots[s] = index + 1;
}

int hdr_intern(struct hdr *h, const snap_uuid *id, uint32_t *index, bool *added, const char *ctx)
{
    *added = false;
    if (h->idx.last && memcmp(&h->ids[h->idx.last - 1], id, sizeof *id) == 0) {
        *index = h->idx.last - 1;
        return 0;
    }
    if (h->idx.cap) {
        unsigned bits = log2u(h->idx.cap);
        uint32_t mask = h->idx.cap - 1;
        for (uint32_t s = id_hash(&h->idx, id, bits); h->idx.slots[s]; s = (s + 1) & mask) {
            uint32_t i = h->idx.slots[s] - 1;
            if (memcmp(&h->ids[i], id, sizeof *id) == 0) {
                h->idx.last = i + 1;
                *index = i;
                return 0;
            }
        }
    }
    if (h->nids >= HDR_MAX_BUILDS) {
        char u[SNAP_UUID_STRLEN + 1];
        snap_uuid_format(id, u);
        return snap_fail(SNAP_ETOOBIG, "%s: build %s is one more than the %u distinct builds a "
                         "header may reference", ctx, u, HDR_MAX_BUILDS);
    }
    size_t cap = h->ids_cap;
    int err = hdr_grow((void **)&h->ids, &cap, (size_t)h->nids + 1, sizeof *h->ids, "build ids");
    if (err)
        return err;
    h->ids_cap = (uint32_t)cap;
    if ((uint64_t)(h->nids + 1) * 2 > h->idx.cap) { /* keep the load under one half */
        uint32_t ncap = h->idx.cap ? h->idx.cap * 2 : 64;
        uint32_t *ns = snap_calloc(ncap, sizeof *ns);
        if (!ns)
            return snap_fail(SNAP_ENOMEM, "header: cannot allocate the build index");
        snap_free(h->idx.slots);
        h->idx.slots = ns;
        h->idx.cap = ncap;
        for (uint32_t i = 0; i < h->nids; i++)
            id_insert_slot(h, i);
    }
    h->ids[h->nids] = *id;
    id_insert_slot(h, h->nids);
    *index = h->nids++;
    h->idx.last = *index + 1;
    *added = true;
    return 0;
}

const snap_uuid *hdr_entry_build(const struct hdr *h, const struct hdr_entry *e)
{
    return e->build == HDR_ZERO ? &zero_uuid : &h->ids[e->build];
}

/* ---- entries ---------------------------------------------------------------------------- */

int hdr_check_map(const char *ctx, size_t i, uint64_t off, uint64_t len, uint64_t bso)
{
    static const char *const names[] = {"Offset", "Length", "BuildStorageOffset"};
    const uint64_t v[] = {off, len, bso};
    for (int k = 0; k < 3; k++)
        if (v[k] % HDR_PAGE)
            return snap_fail(SNAP_EFORMAT, "%s: mapping %zu: %s %llu is not a multiple of %u",
                             ctx, i, names[k], (unsigned long long)v[k], HDR_PAGE);
    if (off + len < off)
        return snap_fail(SNAP_EFORMAT, "%s: mapping %zu: Offset %llu + Length %llu overflows",
                         ctx, i, (unsigned long long)off, (unsigned long long)len);
    if (bso + len < bso)
        return snap_fail(SNAP_EFORMAT, "%s: mapping %zu: BuildStorageOffset %llu + Length %llu "
                         "overflows", ctx, i, (unsigned long long)bso, (unsigned long long)len);
    return 0;
}

int hdr_push(struct hdr *h, uint64_t off, uint64_t len, uint64_t bso, uint32_t build)
{
    int err = hdr_grow((void **)&h->e, &h->cap, h->n + 1, sizeof *h->e, "mapping entries");
    if (err)
        return err;
    if (h->n && off < h->e[h->n - 1].offset + h->e[h->n - 1].length)
        h->sorted = false;
    h->e[h->n++] = (struct hdr_entry){off, len, bso, build};
    return 0;
}

int hdr_append(struct hdr *h, uint64_t offset, uint64_t length, const snap_uuid *build,
               uint64_t storage)
{
    int err = hdr_check_map("header", h->n, offset, length, storage);
    if (err)
        return err;
    uint32_t idx = HDR_ZERO;
    bool added;
    if (build && !snap_uuid_is_zero(build) && (err = hdr_intern(h, build, &idx, &added, "header")))
        return err;
    return hdr_push(h, offset, length, storage, idx);
}

void hdr_update_sorted(struct hdr *h)
{
    h->sorted = true;
    for (size_t i = 1; i < h->n; i++)
        if (h->e[i].offset < h->e[i - 1].offset + h->e[i - 1].length) {
            h->sorted = false;
            return;
        }
}

/* ---- builds section --------------------------------------------------------------------- */

const struct hdr_build *hdr_find_build(const struct hdr *h, const snap_uuid *id)
{
    size_t lo = 0, hi = h->nbuilds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = snap_uuid_cmp(&h->builds[mid].id, id);
        if (c == 0)
            return &h->builds[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int hdr_set_build(struct hdr *h, const snap_uuid *id, int64_t file_size, const uint8_t sha256[32])
{
    struct hdr_build *b = (struct hdr_build *)hdr_find_build(h, id);
    if (!b) {
        if (h->nbuilds >= HDR_MAX_BUILDS)
            return snap_fail(SNAP_ETOOBIG, "header: more than %u builds", HDR_MAX_BUILDS);
        struct hdr_build *nb = snap_reallocarray(h->builds, (size_t)h->nbuilds + 1, sizeof *nb);
        if (!nb)
            return snap_fail(SNAP_ENOMEM, "header: cannot allocate the builds section");
        h->builds = nb;
        uint32_t pos = 0;
        while (pos < h->nbuilds && snap_uuid_cmp(&nb[pos].id, id) < 0)
            pos++;
        memmove(nb + pos + 1, nb + pos, (h->nbuilds - pos) * sizeof *nb);
        h->nbuilds++;
        b = &nb[pos];
        memset(b, 0, sizeof *b);
        b->id = *id;
        b->first_frame = h->nframes;
    }
    b->file_size = file_size;
    if (sha256)
        memcpy(b->sha256, sha256, 32);
    h->has_builds = true;
    return 0;
}

int hdr_set_frames(struct hdr *h, const snap_uuid *id, uint32_t comp, const struct hdr_frame *f, uint32_t n)
{
    if ((comp == HDR_COMP_NONE) != (n == 0) || comp > HDR_COMP_LZ4 || n > HDR_MAX_FRAMES)
        return snap_fail(SNAP_EUSAGE, "header: compression %u with %u frames", comp, n);
    const struct hdr_build *target = hdr_find_build(h, id);
    if (!target)
        return snap_fail(SNAP_ENOTFOUND, "header: no builds-section record for the build to set frames of");
    size_t total = h->nframes - target->nframes + n;
    struct hdr_frame *nf = total ? snap_reallocarray(NULL, total, sizeof *nf) : NULL;
    if (total && !nf)
        return snap_fail(SNAP_ENOMEM, "header: cannot allocate %zu frames", total);
    /* Rebuild the back-to-back table in builds order with the new frames in place. */
    size_t pos = 0;
    for (uint32_t i = 0; i < h->nbuilds; i++) {
        struct hdr_build *b = &h->builds[i];
        bool is = b == target;
        const struct hdr_frame *src = is ? f : hdr_build_frames(h, b);
        uint32_t cnt = is ? n : b->nframes;
        if (cnt)
            memcpy(nf + pos, src, cnt * sizeof *nf);
        b->first_frame = pos;
        if (is) {
            b->comp = comp;
            b->nframes = n;
        }
        pos += cnt;
    }
    snap_free(h->frames);
    h->frames = nf;
    h->nframes = total;
    return 0;
}

static int cmp_build(const void *a, const void *b)
{
    return snap_uuid_cmp(&((const struct hdr_build *)a)->id, &((const struct hdr_build *)b)->id);
}

int hdr_synth_builds(struct hdr *h)
{
    if (h->has_builds)
        return 0;
    /* Only referenced ids get a record: h->ids may hold ids a v5 table listed but no entry used. */
    uint64_t *end = snap_calloc((size_t)h->nids + 1, sizeof *end);
    uint8_t *used = snap_calloc((size_t)h->nids + 1, 1);
    struct hdr_build *b = NULL;
    int err = 0;
    if (!end || !used) {
        err = snap_fail(SNAP_ENOMEM, "header: cannot allocate the builds section");
        goto out;
    }
    uint32_t nb = 0;
    for (size_t i = 0; i < h->n; i++) {
        const struct hdr_entry *e = &h->e[i];
        if (e->build == HDR_ZERO)
            continue;
        nb += !used[e->build];
        used[e->build] = 1;
        end[e->build] = snap_max_u64(end[e->build], e->storage + e->length);
    }
    b = snap_calloc(nb ? nb : 1, sizeof *b);
    if (!b) {
        err = snap_fail(SNAP_ENOMEM, "header: cannot allocate the builds section");
        goto out;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < h->nids; i++) {
        if (!used[i])
            continue;
        b[k].id = h->ids[i];
        b[k].file_size = end[i] > INT64_MAX ? INT64_MAX : (int64_t)end[i];
        b[k].comp = HDR_COMP_NONE;
        b[k].first_frame = h->nframes;
        k++;
    }
    qsort(b, nb, sizeof *b, cmp_build);
    snap_free(h->builds);
    h->builds = b;
    b = NULL;
    h->nbuilds = nb;
    h->has_builds = true;
out:
    snap_free(b);
    snap_free(end);
    snap_free(used);
    return err;
}
