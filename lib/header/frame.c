/* frame.c -- one compressed frame of a build's data object (docs/header.md, "Compressed builds").
 *
 * Design note: a frame is decoded straight into its final place (the cache mapping), which
 * must receive exactly sizeU bytes -- never more (the output stops at the buffer's end and one
 * spare byte tells "longer" from "done"), never fewer.  The frame must be the whole input:
 * a cut-off frame and bytes after its end are both errors, so a frame table pointing at the
 * wrong bytes is caught even when they happen to decode.  liblz4 verifies the header, block
 * and content checksums the frame declares; libzstd verifies the frame checksum when present.
 * The contexts are created once per decoder and reset before each frame, so decoding
 * allocates nothing once warm (liblz4 keeps its block buffers between frames of one size).
 */
#define LZ4F_STATIC_LINKING_ONLY
#define ZSTD_STATIC_LINKING_ONLY
#include "header/internal.h"

#include "base/mem.h"

#include <zstd.h>
#include <zstd_errors.h>

struct hdr_frame_dec {
    LZ4F_dctx *lz4;
    ZSTD_DCtx *zstd;
};

static void *zmem_alloc(void *opaque, size_t n)
{
    (void)opaque;
    return snap_malloc(n);
}

static void zmem_free(void *opaque, void *p)
{
    (void)opaque;
    snap_free(p);
}

int hdr_frame_dec_new(struct hdr_frame_dec **out)
{
    struct hdr_frame_dec *d = snap_calloc(1, sizeof *d);
    if (d) {
        d->lz4 = LZ4F_createDecompressionContext_advanced(hdr_lz4_mem, LZ4F_VERSION);
        d->zstd = ZSTD_createDCtx_advanced((ZSTD_customMem){zmem_alloc, zmem_free, NULL});
    }
    if (!d || !d->lz4 || !d->zstd) {
        hdr_frame_dec_free(d);
        return snap_fail(SNAP_ENOMEM, "cannot allocate the frame decoders");
    }
    *out = d;
    return 0;
}

void hdr_frame_dec_free(struct hdr_frame_dec *d)
{
    if (!d)
        return;
    LZ4F_freeDecompressionContext(d->lz4);
    ZSTD_freeDCtx(d->zstd);
    snap_free(d);
}

const char *hdr_comp_name(uint32_t comp)
{
    return comp == HDR_COMP_NONE ? "none" : comp == HDR_COMP_ZSTD ? "zstd" : comp == HDR_COMP_LZ4 ? "lz4" : "unknown";
}

static int lz4_error(size_t r)
{
    LZ4F_errorCodes c = LZ4F_getErrorCode(r);
    if (c == LZ4F_ERROR_blockChecksum_invalid || c == LZ4F_ERROR_contentChecksum_invalid ||
        c == LZ4F_ERROR_headerChecksum_invalid)
        return snap_fail(SNAP_EHASH, "LZ4 checksum mismatch (%s)", LZ4F_getErrorName(r));
    return hdr_lz4_fail(r, "LZ4 frame", "decoding");
}

static int decode_lz4(LZ4F_dctx *x, const uint8_t *src, size_t srclen, uint8_t *dst, size_t want)
{
    if (srclen < 4 || get_le32(src) != 0x184D2204u)
        return snap_fail(SNAP_EFORMAT, "not an LZ4 frame (no magic 04 22 4D 18)");
    LZ4F_resetDecompressionContext(x);
    size_t pos = 0, in = 0;
    for (;;) {
        /* Output full: one spare byte tells a longer frame from the end mark and checksum. */
        uint8_t spare;
        bool full = pos == want;
        size_t dlen = full ? 1 : want - pos, slen = srclen - in;
        size_t r = LZ4F_decompress(x, full ? &spare : dst + pos, &dlen, src + in, &slen, NULL);
        if (LZ4F_isError(r))
            return lz4_error(r);
        if (full && dlen)
            return snap_fail(SNAP_EFORMAT, "LZ4 frame decompresses to more than sizeU %zu bytes", want);
        pos += dlen;
        in += slen;
        if (r == 0)
            break;
        if (dlen == 0 && slen == 0)
            return snap_fail(SNAP_EFORMAT, "LZ4 frame cut off after %zu bytes (%zu bytes out)", srclen, pos);
    }
    if (in != srclen)
        return snap_fail(SNAP_EFORMAT, "%zu bytes after the end of the LZ4 frame (sizeC %zu)", srclen - in,
                         srclen);
    if (pos != want)
        return snap_fail(SNAP_EFORMAT, "LZ4 frame decompresses to %zu bytes, sizeU says %zu", pos, want);
    return 0;
}

static int decode_zstd(ZSTD_DCtx *x, const uint8_t *src, size_t srclen, uint8_t *dst, size_t want)
{
    if (srclen < 4 || get_le32(src) != 0xFD2FB528u)
        return snap_fail(SNAP_EFORMAT, "not a zstd frame (no magic 28 B5 2F FD)");
    size_t fl = ZSTD_findFrameCompressedSize(src, srclen);
    if (ZSTD_isError(fl))
        return snap_fail(SNAP_EFORMAT, "zstd frame cut off or malformed (%s; sizeC %zu)", ZSTD_getErrorName(fl),
                         srclen);
    if (fl != srclen)
        return snap_fail(SNAP_EFORMAT, "%zu bytes after the end of the zstd frame (sizeC %zu)", srclen - fl,
                         srclen);
    unsigned long long cs = ZSTD_getFrameContentSize(src, srclen);
    if (cs != ZSTD_CONTENTSIZE_UNKNOWN && cs != want)
        return snap_fail(SNAP_EFORMAT, "zstd frame declares %llu bytes, sizeU says %zu", cs, want);
    ZSTD_DCtx_reset(x, ZSTD_reset_session_and_parameters);
    size_t r = ZSTD_decompressDCtx(x, dst, want, src, srclen);
    if (ZSTD_isError(r)) {
        ZSTD_ErrorCode c = ZSTD_getErrorCode(r);
        if (c == ZSTD_error_checksum_wrong)
            return snap_fail(SNAP_EHASH, "zstd checksum mismatch");
        if (c == ZSTD_error_memory_allocation)
            return snap_fail(SNAP_ENOMEM, "zstd frame: out of memory");
        if (c == ZSTD_error_dstSize_tooSmall)
            return snap_fail(SNAP_EFORMAT, "zstd frame decompresses to more than sizeU %zu bytes", want);
        return snap_fail(SNAP_EFORMAT, "zstd frame: %s", ZSTD_getErrorName(r));
    }
    if (r != want)
        return snap_fail(SNAP_EFORMAT, "zstd frame decompresses to %zu bytes, sizeU says %zu", r, want);
    return 0;
}

int hdr_frame_decode(struct hdr_frame_dec *d, enum hdr_comp comp, const uint8_t *src, size_t srclen,
                     uint8_t *dst, size_t want)
{
    if (comp == HDR_COMP_LZ4)
        return decode_lz4(d->lz4, src, srclen, dst, want);
    if (comp == HDR_COMP_ZSTD)
        return decode_zstd(d->zstd, src, srclen, dst, want);
    return snap_fail(SNAP_ENOTSUP, "compression type %u is not lz4 or zstd", (unsigned)comp);
}

const struct hdr_frame *hdr_frame_at(const struct hdr *h, const struct hdr_build *b, uint64_t x)
{
    const struct hdr_frame *f = hdr_build_frames(h, b);
    size_t lo = 0, hi = b->nframes;
    while (lo < hi) { /* the first frame starting after x */
        size_t mid = lo + (hi - lo) / 2;
        if ((uint64_t)f[mid].start_u <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const struct hdr_frame *c = &f[lo - 1];
    return x < (uint64_t)c->start_u + (uint64_t)c->size_u ? c : NULL;
}

void hdr_frames_summary(const struct hdr *h, const struct hdr_build *b, struct hdr_frames_sum *s)
{
    memset(s, 0, sizeof *s);
    const struct hdr_frame *f = hdr_build_frames(h, b);
    if (!f || !b->nframes)
        return;
    s->nframes = b->nframes;
    s->u_start = (uint64_t)f[0].start_u;
    s->u_end = (uint64_t)f[b->nframes - 1].start_u + (uint64_t)f[b->nframes - 1].size_u;
    for (uint32_t j = 0; j < b->nframes; j++) {
        s->bytes_u += (uint64_t)f[j].size_u;
        s->bytes_c += (uint64_t)f[j].size_c;
    }
    s->ratio = s->bytes_c ? (double)s->bytes_u / (double)s->bytes_c : 0;
}

struct hdr_frame_enc {
    uint32_t comp;
    int level;
    LZ4F_cctx *lz4;
    ZSTD_CCtx *zstd;
};

int hdr_frame_enc_new(uint32_t comp, int level, struct hdr_frame_enc **out)
{
    if (comp != HDR_COMP_LZ4 && comp != HDR_COMP_ZSTD)
        return snap_fail(SNAP_EUSAGE, "compression type %u is not lz4 or zstd", comp);
    struct hdr_frame_enc *e = snap_calloc(1, sizeof *e);
    if (e) {
        e->comp = comp;
        e->level = level;
        if (comp == HDR_COMP_LZ4)
            e->lz4 = LZ4F_createCompressionContext_advanced(hdr_lz4_mem, LZ4F_VERSION);
        else
            e->zstd = ZSTD_createCCtx_advanced((ZSTD_customMem){zmem_alloc, zmem_free, NULL});
    }
    if (!e || (!e->lz4 && !e->zstd)) {
        hdr_frame_enc_free(e);
        return snap_fail(SNAP_ENOMEM, "cannot allocate the frame encoder");
    }
    *out = e;
    return 0;
}

void hdr_frame_enc_free(struct hdr_frame_enc *e)
{
    if (!e)
        return;
    LZ4F_freeCompressionContext(e->lz4);
    ZSTD_freeCCtx(e->zstd);
    snap_free(e);
}

static void frame_lz4_prefs(LZ4F_preferences_t *p, int level)
{
    memset(p, 0, sizeof *p);
    p->frameInfo.blockSizeID = LZ4F_max4MB;
    p->frameInfo.blockMode = LZ4F_blockIndependent;
    p->frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
    p->compressionLevel = level;
}

size_t hdr_frame_bound(const struct hdr_frame_enc *e, size_t n)
{
    if (e->comp == HDR_COMP_ZSTD)
        return ZSTD_compressBound(n);
    LZ4F_preferences_t p;
    frame_lz4_prefs(&p, e->level);
    return LZ4F_HEADER_SIZE_MAX + LZ4F_compressBound(n, &p);
}

int hdr_frame_encode(struct hdr_frame_enc *e, const uint8_t *src, size_t n, uint8_t *dst, size_t cap,
                     size_t *outlen)
{
    if (e->comp == HDR_COMP_LZ4) {
        /* Begin/update/end rather than compressFrame, which would shrink the declared block
         * size of a short frame: every frame declares 4 MiB blocks, as the format says. */
        LZ4F_preferences_t p;
        frame_lz4_prefs(&p, e->level);
        size_t h = LZ4F_compressBegin(e->lz4, dst, cap, &p), b = 0, t = 0;
        if (!LZ4F_isError(h))
            b = LZ4F_compressUpdate(e->lz4, dst + h, cap - h, src, n, NULL);
        if (!LZ4F_isError(h) && !LZ4F_isError(b))
            t = LZ4F_compressEnd(e->lz4, dst + h + b, cap - h - b, NULL);
        size_t bad = LZ4F_isError(h) ? h : LZ4F_isError(b) ? b : t;
        if (LZ4F_isError(bad))
            return hdr_lz4_fail(bad, "frame", "LZ4 compression");
        *outlen = h + b + t;
        return 0;
    }
    ZSTD_CCtx_reset(e->zstd, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(e->zstd, ZSTD_c_compressionLevel, e->level);
    ZSTD_CCtx_setParameter(e->zstd, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(e->zstd, ZSTD_c_contentSizeFlag, 1);
    size_t r = ZSTD_compress2(e->zstd, dst, cap, src, n);
    if (ZSTD_isError(r))
        return snap_fail(ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? SNAP_ENOMEM : SNAP_EINTERNAL,
                         "zstd compression: %s", ZSTD_getErrorName(r));
    *outlen = r;
    return 0;
}
