/* parse.c -- read a header of any version (formats.md sections 2-5) into a struct hdr.
 *
 * Design note: every count in a header comes from outside, so none is trusted for an
 * allocation before the bytes that would back it are known to be there: a count is first
 * compared with what is left (a BuildMap needs 40 bytes, a build record 64, a frame 24, a
 * v5 entry at least 4 -- one byte per column).  Arrays are therefore at most a small multiple
 * of the (decompressed) input: 32 bytes per 40-byte BuildMap, and for v5 at most 2N+1
 * entries of 32 bytes from N >= 4-byte entries (gaps are rebuilt).  The v4/v5 body is capped
 * at 256 MiB and grown only as LZ4 output arrives (lz4.c).
 *
 * Rules beyond formats.md, applied to every version so that any header we accept can be
 * converted to any other: Offset, Length, BuildStorageOffset are multiples of 4096 (v1..v3
 * too), BlockSize is not 0, Size + 4095 does not overflow, builds are sorted by UUID without
 * duplicates, frames ascend in both spaces, compressionType is 0, 1 or 2.  Holes, overlaps and
 * unsorted entries of v1..v4 are *kept*: hdr_check reports them with their offsets.
 */
#include "header/internal.h"

#include "base/mem.h"

#include <stdio.h>

static void read_meta(const uint8_t *b, struct hdr_meta *m)
{
    m->version = get_le64(b);
    m->block_size = get_le64(b + 8);
    m->size = get_le64(b + 16);
    m->generation = get_le64(b + 24);
    memcpy(m->build_id.b, b + 32, 16);
    memcpy(m->base_build_id.b, b + 48, 16);
}

/* One 40-byte BuildMap at p (v1..v4), checked and appended. */
static int read_map(struct hdr *h, const uint8_t *p, size_t i, const char *ctx)
{
    uint64_t off = get_le64(p), len = get_le64(p + 8), bso = get_le64(p + 32);
    snap_uuid id;
    memcpy(id.b, p + 16, 16);
    int err = hdr_check_map(ctx, i, off, len, bso);
    if (err)
        return err;
    uint32_t idx = HDR_ZERO;
    bool added;
    if (!snap_uuid_is_zero(&id) && (err = hdr_intern(h, &id, &idx, &added, ctx)))
        return err;
    return hdr_push(h, off, len, bso, idx);
}

static int parse_v3(struct hdr *h, const uint8_t *buf, size_t len, const char *ctx)
{
    size_t body = len - HDR_META_SIZE, n = body / HDR_MAP_SIZE;
    if (body % HDR_MAP_SIZE)
        return snap_fail(SNAP_EFORMAT, "%s: %zu trailing bytes after %zu mappings (a mapping is "
                         "%d bytes)", ctx, body % HDR_MAP_SIZE, n, HDR_MAP_SIZE);
    if (n == 0) { /* one mapping over the whole device onto the header's own build */
        uint64_t whole = snap_round_up(h->meta.size, HDR_PAGE);
        if (whole == 0)
            return 0;
        uint32_t idx = HDR_ZERO;
        bool added;
        int err;
        if (!snap_uuid_is_zero(&h->meta.build_id) &&
            (err = hdr_intern(h, &h->meta.build_id, &idx, &added, ctx)))
            return err;
        return hdr_push(h, 0, whole, 0, idx);
    }
    int err = hdr_grow((void **)&h->e, &h->cap, n, sizeof *h->e, "mapping entries");
    for (size_t i = 0; !err && i < n; i++)
        err = read_map(h, buf + HDR_META_SIZE + i * HDR_MAP_SIZE, i, ctx);
    return err;
}

int hdr_read_builds(struct hdr_rd *r, struct hdr *h, const char *ctx)
{
    uint32_t nb;
    int err = hdr_rd_u32(r, &nb, ctx, "numBuilds");
    if (err)
        return err;
    if (nb > HDR_MAX_BUILDS)
        return snap_fail(SNAP_ETOOBIG, "%s: numBuilds %u exceeds the limit of %u", ctx, nb,
                         HDR_MAX_BUILDS);
    if ((uint64_t)nb * HDR_BUILD_REC > hdr_rd_left(r))
        return snap_fail(SNAP_EFORMAT, "%s: numBuilds %u cannot fit in the remaining %zu bytes",
                         ctx, nb, hdr_rd_left(r));
    h->builds = snap_calloc(nb ? nb : 1, sizeof *h->builds);
    if (!h->builds)
        return snap_fail(SNAP_ENOMEM, "%s: cannot allocate %u build records", ctx, nb);
    h->has_builds = true;
    size_t fcap = 0;
    for (uint32_t i = 0; i < nb; i++) {
        struct hdr_build *b = &h->builds[i];
        uint8_t rec[HDR_BUILD_REC];
        char u[SNAP_UUID_STRLEN + 1];
        if ((err = hdr_rd_bytes(r, rec, sizeof rec, ctx, "build record")))
            return err;
        memcpy(b->id.b, rec, 16);
        b->file_size = (int64_t)get_le64(rec + 16);
        memcpy(b->sha256, rec + 24, 32);
        b->comp = get_le32(rec + 56);
        b->nframes = get_le32(rec + 60);
        b->first_frame = h->nframes;
        snap_uuid_format(&b->id, u);
        if (i > 0 && snap_uuid_cmp(&h->builds[i - 1].id, &b->id) >= 0)
            return snap_fail(SNAP_EFORMAT, "%s: build %u (%s) is not after build %u: builds must "
                             "be sorted by UUID, without duplicates", ctx, i, u, i - 1);
        if (b->comp > HDR_COMP_LZ4)
            return snap_fail(SNAP_EFORMAT, "%s: build %u (%s): compressionType %u is not 0 (none), "
                             "1 (zstd) or 2 (lz4)", ctx, i, u, b->comp);
        if (b->comp == HDR_COMP_NONE && b->nframes)
            return snap_fail(SNAP_EFORMAT, "%s: build %u (%s): compressionType 0 (none) with "
                             "nFrames %u", ctx, i, u, b->nframes);
        if (b->nframes > HDR_MAX_FRAMES)
            return snap_fail(SNAP_ETOOBIG, "%s: build %u (%s): nFrames %u exceeds the limit of %u",
                             ctx, i, u, b->nframes, HDR_MAX_FRAMES);
        if ((uint64_t)b->nframes * HDR_FRAME_REC > hdr_rd_left(r))
            return snap_fail(SNAP_EFORMAT, "%s: build %u (%s): nFrames %u cannot fit in the "
                             "remaining %zu bytes", ctx, i, u, b->nframes, hdr_rd_left(r));
        if ((err = hdr_grow((void **)&h->frames, &fcap, h->nframes + b->nframes, sizeof *h->frames,
                            "frames")))
            return err;
        uint64_t end_u = 0, end_c = 0;
        for (uint32_t j = 0; j < b->nframes; j++) {
            uint8_t fr[HDR_FRAME_REC];
            hdr_rd_bytes(r, fr, sizeof fr, ctx, "frame"); /* cannot fail: counted above */
            struct hdr_frame *f = &h->frames[h->nframes + j];
            f->start_u = (int64_t)get_le64(fr);
            f->start_c = (int64_t)get_le64(fr + 8);
            f->size_u = (int32_t)get_le32(fr + 16);
            f->size_c = (int32_t)get_le32(fr + 20);
            const char *bad = f->size_u <= 0 ? "sizeU" : f->size_c <= 0 ? "sizeC" : NULL;
            if (bad)
                return snap_fail(SNAP_EFORMAT, "%s: build %u (%s): frame %u: %s %d is not positive",
                                 ctx, i, u, j, bad, bad[4] == 'U' ? f->size_u : f->size_c);
            bad = f->start_u < 0 ? "startU" : f->start_c < 0 ? "startC" : NULL;
            if (bad)
                return snap_fail(SNAP_EFORMAT, "%s: build %u (%s): frame %u: %s %lld is negative",
                                 ctx, i, u, j, bad,
                                 (long long)(bad[5] == 'U' ? f->start_u : f->start_c));
            if ((uint64_t)f->start_u < end_u || (uint64_t)f->start_c < end_c) {
                bool uspace = (uint64_t)f->start_u < end_u;
                return snap_fail(SNAP_EFORMAT, "%s: build %u (%s): frame %u: %s %lld overlaps frame "
                                 "%u ending at %llu (frames must ascend in both spaces)", ctx, i,
                                 u, j, uspace ? "startU" : "startC",
                                 (long long)(uspace ? f->start_u : f->start_c), j - 1,
                                 (unsigned long long)(uspace ? end_u : end_c));
            }
            end_u = (uint64_t)f->start_u + (uint64_t)f->size_u;
            end_c = (uint64_t)f->start_c + (uint64_t)f->size_c;
        }
        h->nframes += b->nframes;
    }
    h->nbuilds = nb;
    return 0;
}

static int parse_v4_mapping(struct hdr_rd *r, struct hdr *h, const char *ctx)
{
    uint32_t n;
    int err = hdr_rd_u32(r, &n, ctx, "numMappings");
    if (err)
        return err;
    if ((uint64_t)n * HDR_MAP_SIZE > hdr_rd_left(r))
        return snap_fail(SNAP_EFORMAT, "%s: numMappings %u cannot fit in the remaining %zu bytes",
                         ctx, n, hdr_rd_left(r));
    if ((err = hdr_grow((void **)&h->e, &h->cap, n, sizeof *h->e, "mapping entries")))
        return err;
    for (uint32_t i = 0; i < n; i++, r->pos += HDR_MAP_SIZE)
        if ((err = read_map(h, r->p + r->pos, i, ctx)))
            return err;
    return 0;
}

/* The v5 build table: M distinct non-zero UUIDs, interned into h->ids in table order. */
static int parse_v5_builds(struct hdr_rd *r, struct hdr *h, const char *ctx, uint32_t *m)
{
    int err = hdr_rd_u32(r, m, ctx, "M (build table size)");
    if (err)
        return err;
    if (*m > HDR_MAX_BUILDS)
        return snap_fail(SNAP_ETOOBIG, "%s: M %u builds exceeds the limit of %u", ctx, *m,
                         HDR_MAX_BUILDS);
    if ((uint64_t)*m * 16 > hdr_rd_left(r))
        return snap_fail(SNAP_EFORMAT, "%s: M %u builds cannot fit in the remaining %zu bytes",
                         ctx, *m, hdr_rd_left(r));
    for (uint32_t i = 0; i < *m; i++) {
        snap_uuid id;
        uint32_t idx;
        bool added;
        char u[SNAP_UUID_STRLEN + 1];
        hdr_rd_bytes(r, id.b, 16, ctx, "build table"); /* counted above */
        snap_uuid_format(&id, u);
        if (snap_uuid_is_zero(&id))
            return snap_fail(SNAP_EFORMAT, "%s: build table entry %u is the zero UUID", ctx, i);
        if ((err = hdr_intern(h, &id, &idx, &added, ctx)))
            return err;
        if (!added)
            return snap_fail(SNAP_EFORMAT, "%s: build table entry %u repeats %s (entry %u)", ctx,
                             i, u, idx);
    }
    return 0;
}

/* The four columns of n entries, in pages: offset deltas, lengths, zigzag storage deltas,
 * build indexes below m. */
static int parse_v5_columns(struct hdr_rd *r, struct hdr_entry *e, uint32_t n, uint32_t m, const char *ctx)
{
    uint64_t v, run = 0;
    int err;
    for (uint32_t i = 0; i < n; i++) {
        if ((err = hdr_rd_uvarint(r, &v, ctx, "offset delta", i)))
            return err;
        if (v > UINT32_MAX || (run += v) > UINT32_MAX)
            return snap_fail(SNAP_EFORMAT, "%s: entry %u: offset page %llu is beyond u32", ctx, i,
                             (unsigned long long)(v > UINT32_MAX ? v : run));
        e[i].offset = run;
    }
    for (uint32_t i = 0; i < n; i++) {
        if ((err = hdr_rd_uvarint(r, &v, ctx, "length", i)))
            return err;
        if (v > UINT32_MAX)
            return snap_fail(SNAP_EFORMAT, "%s: entry %u: length %llu pages is beyond u32", ctx,
                             i, (unsigned long long)v);
        if (v == 0)
            return snap_fail(SNAP_EFORMAT, "%s: entry %u: length is 0", ctx, i);
        e[i].length = v;
    }
    int64_t srun = 0;
    for (uint32_t i = 0; i < n; i++) {
        if ((err = hdr_rd_uvarint(r, &v, ctx, "storage delta", i)))
            return err;
        int64_t d = (int64_t)(v >> 1) ^ -(int64_t)(v & 1); /* zigzag */
        if (d > (int64_t)UINT32_MAX || d < -(int64_t)UINT32_MAX || (srun += d) < 0 ||
            srun > (int64_t)UINT32_MAX)
            return snap_fail(SNAP_EFORMAT, "%s: entry %u: storage page (delta %lld) is out of "
                             "the u32 range", ctx, i, (long long)d);
        e[i].storage = (uint64_t)srun;
    }
    for (uint32_t i = 0; i < n; i++) {
        if ((err = hdr_rd_uvarint(r, &v, ctx, "build index", i)))
            return err;
        if (v >= m)
            return snap_fail(SNAP_EFORMAT, "%s: entry %u: build index %llu is not below M %u",
                             ctx, i, (unsigned long long)v, m);
        e[i].build = (uint32_t)v;
    }
    return 0;
}

/* The n decoded entries (pages) must ascend without overlap inside size_pages; the gaps between
 * them come back as zero entries and everything is scaled to bytes, from the back, in place. */
static int fill_v5_gaps(struct hdr *h, uint32_t n, uint64_t size_pages, const char *ctx)
{
    struct hdr_entry *e = h->e;
    size_t gaps = 0;
    uint64_t end = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (e[i].offset < end)
            return snap_fail(SNAP_EFORMAT, "%s: entry %u: offset page %llu overlaps the previous "
                             "entry ending at page %llu", ctx, i,
                             (unsigned long long)e[i].offset, (unsigned long long)end);
        gaps += e[i].offset > end;
        end = e[i].offset + e[i].length;
        if (end > size_pages)
            return snap_fail(SNAP_EFORMAT, "%s: entry %u: ends at page %llu, past the size of "
                             "%llu pages", ctx, i, (unsigned long long)end,
                             (unsigned long long)size_pages);
    }
    gaps += end < size_pages;
    size_t total = n + gaps;
    int err = hdr_grow((void **)&h->e, &h->cap, total, sizeof *h->e, "mapping entries");
    if (err)
        return err;
    e = h->e;
    /* Rebuild from the back: entry i moves to slot k >= i, gaps fill in between. */
    size_t k = total;
    end = size_pages;
    for (size_t i = n; i-- > 0;) {
        uint64_t stop = e[i].offset + e[i].length;
        if (stop < end)
            e[--k] = (struct hdr_entry){stop * HDR_PAGE, (end - stop) * HDR_PAGE, 0, HDR_ZERO};
        struct hdr_entry x = e[i];
        e[--k] = (struct hdr_entry){x.offset * HDR_PAGE, x.length * HDR_PAGE,
                                    x.storage * HDR_PAGE, x.build};
        end = x.offset;
    }
    if (end > 0)
        e[--k] = (struct hdr_entry){0, end * HDR_PAGE, 0, HDR_ZERO};
    h->n = total;
    h->sorted = true;
    return 0;
}

/* v5 columns hold pages; entries are decoded into h->e as pages, then checked, gaps rebuilt
 * and everything scaled to bytes from the back, in place. */
static int parse_v5_mapping(struct hdr_rd *r, struct hdr *h, const char *ctx)
{
    uint64_t size_pages = hdr_pages_ceil(h->meta.size);
    if (size_pages > UINT32_MAX)
        return snap_fail(SNAP_EFORMAT, "%s: Size %llu is more than 2^32 pages", ctx,
                         (unsigned long long)h->meta.size);
    uint32_t m, n;
    int err = parse_v5_builds(r, h, ctx, &m);
    if (err || (err = hdr_rd_u32(r, &n, ctx, "N (entry count)")))
        return err;
    if (n > HDR_MAX_V5_ENTRIES)
        return snap_fail(SNAP_ETOOBIG, "%s: N %u entries exceeds the limit of %u", ctx, n,
                         HDR_MAX_V5_ENTRIES);
    if ((uint64_t)n * 4 > hdr_rd_left(r))
        return snap_fail(SNAP_EFORMAT, "%s: N %u entries cannot fit in the remaining %zu bytes "
                         "(4 columns of at least 1 byte)", ctx, n, hdr_rd_left(r));
    if ((err = hdr_grow((void **)&h->e, &h->cap, n, sizeof *h->e, "mapping entries")))
        return err;
    if ((err = parse_v5_columns(r, h->e, n, m, ctx)))
        return err;
    return fill_v5_gaps(h, n, size_pages, ctx);
}

int hdr_parse(const uint8_t *buf, size_t len, struct hdr **out)
{
    if (len < HDR_META_SIZE)
        return snap_fail(SNAP_EFORMAT, "header: %zu bytes, shorter than the %d-byte metadata",
                         len, HDR_META_SIZE);
    struct hdr_meta meta;
    read_meta(buf, &meta);
    unsigned format = (unsigned)(meta.version & 0xFFFF);
    if (format < 1 || format > 5)
        return snap_fail(SNAP_EFORMAT, "header: Version %llu (format %u) is not 1, 2, 3, 4 or 5",
                         (unsigned long long)meta.version, format);
    char ctx[16];
    snprintf(ctx, sizeof ctx, "header v%u", format);
    if (meta.block_size == 0)
        return snap_fail(SNAP_EFORMAT, "%s: BlockSize is 0", ctx);
    if (meta.size > UINT64_MAX - (HDR_PAGE - 1))
        return snap_fail(SNAP_EFORMAT, "%s: Size %llu is too large", ctx,
                         (unsigned long long)meta.size);
    struct hdr *h;
    int err = hdr_new(&meta, &h);
    if (err)
        return err;
    h->format = format;
    uint8_t *body = NULL;
    if (format <= 3) {
        err = parse_v3(h, buf, len, ctx);
        goto out;
    }
    if (len < HDR_V45_PREFIX) {
        err = snap_fail(SNAP_EFORMAT, "%s: %zu bytes, shorter than metadata + flags + "
                        "uncompressedLen (%d)", ctx, len, HDR_V45_PREFIX);
        goto out;
    }
    h->flags = buf[HDR_META_SIZE];
    uint32_t ulen = get_le32(buf + HDR_META_SIZE + 1);
    if (ulen > HDR_MAX_UNCOMPRESSED) {
        err = snap_fail(SNAP_ETOOBIG, "%s: uncompressedLen %u exceeds the cap of %u", ctx, ulen,
                        HDR_MAX_UNCOMPRESSED);
        goto out;
    }
    if ((err = hdr_lz4_decompress(buf + HDR_V45_PREFIX, len - HDR_V45_PREFIX, ulen, &body, ctx)))
        goto out;
    struct hdr_rd r = {body, ulen, 0};
    if ((err = hdr_read_builds(&r, h, ctx)))
        goto out;
    err = format == 4 ? parse_v4_mapping(&r, h, ctx) : parse_v5_mapping(&r, h, ctx);
    if (!err && hdr_rd_left(&r))
        err = snap_fail(SNAP_EFORMAT, "%s: %zu trailing bytes after the mapping section", ctx,
                        hdr_rd_left(&r));
out:
    snap_free(body);
    if (err) {
        hdr_free(h);
        return err;
    }
    *out = h;
    return 0;
}
