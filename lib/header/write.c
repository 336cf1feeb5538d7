/* write.c -- serialize a struct hdr as v3, v4 or v5 (formats.md sections 3-5).
 *
 * v3 and v4 write the entries exactly as they are (order, zero entries, holes), so any parsed
 * header survives v3 <-> v4 unchanged.  v5 stores only non-zero entries, in pages, with
 * build indexes into a table of the builds in first-appearance order; a reader rebuilds the
 * gaps as zeros, so zero entries and holes alike come back as zero entries.  That needs a
 * sorted mapping inside ceil(Size/4096) pages with page numbers that fit in u32; anything
 * else is refused with SNAP_ERANGE naming the entry.
 */
#include "header/internal.h"

#include "base/mem.h"

static void put_meta(uint8_t *p, const struct hdr_meta *m, unsigned format)
{
    put_le64(p, (m->version & ~(uint64_t)0xFFFF) | format);
    put_le64(p + 8, m->block_size);
    put_le64(p + 16, m->size);
    put_le64(p + 24, m->generation);
    memcpy(p + 32, m->build_id.b, 16);
    memcpy(p + 48, m->base_build_id.b, 16);
}

static uint8_t *put_map(uint8_t *p, const struct hdr *h, const struct hdr_entry *e)
{
    put_le64(p, e->offset);
    put_le64(p + 8, e->length);
    memcpy(p + 16, hdr_entry_build(h, e)->b, 16);
    put_le64(p + 32, e->storage);
    return p + HDR_MAP_SIZE;
}

static uint8_t *put_uvarint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static int write_v3(const struct hdr *h, uint8_t **out, size_t *outlen)
{
    if (h->n == 0 && h->meta.size > 0)
        return snap_fail(SNAP_ERANGE, "header: no mappings but Size %llu: an empty v3 mapping "
                         "would mean one mapping over the whole size",
                         (unsigned long long)h->meta.size);
    if (h->n > (SIZE_MAX - HDR_META_SIZE) / HDR_MAP_SIZE)
        return snap_fail(SNAP_ETOOBIG, "header: %zu mappings are too many for v3", h->n);
    size_t len = HDR_META_SIZE + h->n * HDR_MAP_SIZE;
    uint8_t *buf = snap_malloc(len);
    if (!buf)
        return snap_fail(SNAP_ENOMEM, "header: cannot allocate %zu bytes for v3", len);
    put_meta(buf, &h->meta, 3);
    uint8_t *p = buf + HDR_META_SIZE;
    for (size_t i = 0; i < h->n; i++)
        p = put_map(p, h, &h->e[i]);
    *out = buf;
    *outlen = len;
    return 0;
}

static size_t builds_size(const struct hdr *h)
{
    return 4 + (size_t)h->nbuilds * HDR_BUILD_REC + h->nframes * HDR_FRAME_REC;
}

static uint8_t *put_builds(uint8_t *p, const struct hdr *h)
{
    put_le32(p, h->nbuilds);
    p += 4;
    for (uint32_t i = 0; i < h->nbuilds; i++) {
        const struct hdr_build *b = &h->builds[i];
        memcpy(p, b->id.b, 16);
        put_le64(p + 16, (uint64_t)b->file_size);
        memcpy(p + 24, b->sha256, 32);
        put_le32(p + 56, b->comp);
        put_le32(p + 60, b->nframes);
        p += HDR_BUILD_REC;
        const struct hdr_frame *f = hdr_build_frames(h, b);
        for (uint32_t j = 0; j < b->nframes; j++, p += HDR_FRAME_REC) {
            put_le64(p, (uint64_t)f[j].start_u);
            put_le64(p + 8, (uint64_t)f[j].start_c);
            put_le32(p + 16, (uint32_t)f[j].size_u);
            put_le32(p + 20, (uint32_t)f[j].size_c);
        }
    }
    return p;
}

/* Check that h fits v5 and give each referenced build its table index (first appearance).
 * remap[nids] gets the index or HDR_ZERO; *m the table size, *nstored the entries kept. */
static int v5_plan(const struct hdr *h, uint32_t *remap, uint32_t *m, size_t *nstored)
{
    uint64_t size_pages = hdr_pages_ceil(h->meta.size), end = 0;
    if (size_pages > UINT32_MAX)
        return snap_fail(SNAP_ERANGE, "header: Size %llu is more than 2^32 pages: not "
                         "representable in v5", (unsigned long long)h->meta.size);
    *m = 0;
    *nstored = 0;
    for (size_t i = 0; i < h->n; i++) {
        const struct hdr_entry *e = &h->e[i];
        if (e->offset < end)
            return snap_fail(SNAP_ERANGE, "header: mapping %zu at %llu starts before the end of "
                             "the previous one (%llu): v5 needs sorted, non-overlapping entries",
                             i, (unsigned long long)e->offset, (unsigned long long)end);
        end = e->offset + e->length;
        if (e->build == HDR_ZERO || e->length == 0)
            continue;
        if (end / HDR_PAGE > size_pages)
            return snap_fail(SNAP_ERANGE, "header: mapping %zu ends at %llu, past the size %llu "
                             "rounded up to 4096: not representable in v5", i,
                             (unsigned long long)end, (unsigned long long)h->meta.size);
        if (e->storage / HDR_PAGE > UINT32_MAX)
            return snap_fail(SNAP_ERANGE, "header: mapping %zu: BuildStorageOffset %llu is "
                             "beyond 2^32 pages: not representable in v5", i,
                             (unsigned long long)e->storage);
        if (remap[e->build] == HDR_ZERO)
            remap[e->build] = (*m)++;
        ++*nstored;
    }
    if (*nstored > HDR_MAX_V5_ENTRIES)
        return snap_fail(SNAP_ETOOBIG, "header: %zu non-zero entries, more than the v5 limit "
                         "of %u", *nstored, HDR_MAX_V5_ENTRIES);
    return 0;
}

static uint8_t *put_v5_mapping(uint8_t *p, const struct hdr *h, const uint32_t *remap, uint32_t m,
                               size_t nstored)
{
    put_le32(p, m);
    p += 4;
    for (uint32_t i = 0; i < h->nids; i++)
        if (remap[i] != HDR_ZERO)
            memcpy(p + (size_t)remap[i] * 16, h->ids[i].b, 16);
    p += (size_t)m * 16;
    put_le32(p, (uint32_t)nstored);
    p += 4;
#define STORED(e) ((e)->build != HDR_ZERO && (e)->length != 0)
    uint64_t prev = 0;
    for (size_t i = 0; i < h->n; i++)
        if (STORED(&h->e[i])) {
            p = put_uvarint(p, h->e[i].offset / HDR_PAGE - prev);
            prev = h->e[i].offset / HDR_PAGE;
        }
    for (size_t i = 0; i < h->n; i++)
        if (STORED(&h->e[i]))
            p = put_uvarint(p, h->e[i].length / HDR_PAGE);
    int64_t sprev = 0;
    for (size_t i = 0; i < h->n; i++)
        if (STORED(&h->e[i])) {
            int64_t s = (int64_t)(h->e[i].storage / HDR_PAGE), d = s - sprev;
            p = put_uvarint(p, (uint64_t)d << 1 ^ (uint64_t)(d >> 63)); /* zigzag */
            sprev = s;
        }
    for (size_t i = 0; i < h->n; i++)
        if (STORED(&h->e[i]))
            p = put_uvarint(p, remap[h->e[i].build]);
#undef STORED
    return p;
}

static int write_v45(const struct hdr *h, unsigned format, uint8_t **out, size_t *outlen)
{
    struct hdr tmp = *h; /* shallow: only .builds may be replaced (synthesized) */
    uint32_t *remap = NULL;
    uint8_t *body = NULL, *buf = NULL;
    uint32_t m = 0;
    size_t nstored = 0, cap;
    int err = 0;
    if (!h->has_builds) {
        tmp.builds = NULL;
        tmp.nbuilds = 0;
        if ((err = hdr_synth_builds(&tmp)))
            return err;
    }
    if (format == 5) {
        remap = snap_malloc(((size_t)h->nids + 1) * sizeof *remap);
        if (!remap) {
            err = snap_fail(SNAP_ENOMEM, "header: cannot allocate the v5 build table");
            goto out;
        }
        memset(remap, 0xff, ((size_t)h->nids + 1) * sizeof *remap); /* HDR_ZERO */
        if ((err = v5_plan(h, remap, &m, &nstored)))
            goto out;
        cap = builds_size(&tmp) + 8 + (size_t)m * 16 + nstored * 20; /* <= 5 bytes per varint */
    } else {
        if (h->n > HDR_MAX_UNCOMPRESSED / HDR_MAP_SIZE) {
            err = snap_fail(SNAP_ETOOBIG, "header: %zu mappings exceed the v4 cap of %u bytes",
                            h->n, HDR_MAX_UNCOMPRESSED);
            goto out;
        }
        cap = builds_size(&tmp) + 4 + h->n * HDR_MAP_SIZE;
    }
    if (!(body = snap_malloc(cap))) {
        err = snap_fail(SNAP_ENOMEM, "header: cannot allocate %zu bytes for the v%u body", cap,
                        format);
        goto out;
    }
    uint8_t *p = put_builds(body, &tmp);
    if (format == 5) {
        p = put_v5_mapping(p, h, remap, m, nstored);
    } else {
        put_le32(p, (uint32_t)h->n);
        p += 4;
        for (size_t i = 0; i < h->n; i++)
            p = put_map(p, h, &h->e[i]);
    }
    size_t blen = (size_t)(p - body);
    if (blen > HDR_MAX_UNCOMPRESSED) {
        err = snap_fail(SNAP_ETOOBIG, "header: the v%u body is %zu bytes, more than the cap of %u",
                        format, blen, HDR_MAX_UNCOMPRESSED);
        goto out;
    }
    size_t bound = hdr_lz4_bound(blen), clen;
    if (!(buf = snap_malloc(HDR_V45_PREFIX + bound))) {
        err = snap_fail(SNAP_ENOMEM, "header: cannot allocate %zu bytes for v%u",
                        HDR_V45_PREFIX + bound, format);
        goto out;
    }
    put_meta(buf, &h->meta, format);
    buf[HDR_META_SIZE] = h->flags;
    put_le32(buf + HDR_META_SIZE + 1, (uint32_t)blen);
    if ((err = hdr_lz4_compress(body, blen, buf + HDR_V45_PREFIX, bound, &clen)))
        goto out;
    *out = buf;
    *outlen = HDR_V45_PREFIX + clen;
    buf = NULL;
out:
    if (!h->has_builds)
        snap_free(tmp.builds);
    snap_free(remap);
    snap_free(body);
    snap_free(buf);
    return err;
}

int hdr_serialize(const struct hdr *h, unsigned format, uint8_t **out, size_t *outlen)
{
    switch (format) {
    case 3: return write_v3(h, out, outlen);
    case 4:
    case 5: return write_v45(h, format, out, outlen);
    default:
        return snap_fail(SNAP_EUSAGE, "header: cannot write format %u (3, 4 or 5)", format);
    }
}
