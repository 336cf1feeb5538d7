/* lz4.c -- the LZ4 frame around the v4/v5 header body, with bounded memory.
 *
 * Design note: a v4/v5 header says how long its body is (uncompressedLen, capped at 256 MiB
 * by the caller) but a hostile one may lie.  Decompression therefore never allocates from
 * that number: the output buffer starts at min(uncompressedLen, 64 KiB) and doubles only
 * when liblz4 has filled it with real output, never past uncompressedLen.  So the buffer is
 * at most min(2 x the bytes actually produced, uncompressedLen) -- and an LZ4 frame cannot
 * produce more than ~255 bytes per input byte.  A frame that would produce more than
 * uncompressedLen stops as soon as the buffer is full.  liblz4 itself keeps a work area
 * sized by the block size the frame declares (at most 4 MiB in + 4 MiB + 128 KiB out); it
 * allocates through snap_malloc (LZ4F custom memory), so it is counted and fault-injectable
 * like every other allocation of the parser.
 * Only a plain LZ4 frame (magic 04 22 4D 18) is accepted: no skippable frame, nothing after
 * the frame.  Checksums the frame carries (header, block, content) are verified by liblz4.
 * We write 4 MiB independent blocks with block and content checksums, as the reference does.
 */
#define LZ4F_STATIC_LINKING_ONLY
#include "header/internal.h"

#include "base/buf.h"
#include "base/mem.h"

#include <lz4frame.h>

#define LZ4_MAGIC 0x184D2204u
#define OUT_START (64u << 10)

static void *mem_alloc(void *opaque, size_t n)
{
    (void)opaque;
    return snap_malloc(n);
}

static void *mem_calloc(void *opaque, size_t n)
{
    (void)opaque;
    return snap_calloc(1, n);
}

static void mem_free(void *opaque, void *p)
{
    (void)opaque;
    snap_free(p);
}

const LZ4F_CustomMem hdr_lz4_mem = {mem_alloc, mem_calloc, mem_free, NULL};

int hdr_lz4_fail(size_t r, const char *ctx, const char *doing)
{
    if (LZ4F_getErrorCode(r) == LZ4F_ERROR_allocation_failed)
        return snap_fail(SNAP_ENOMEM, "%s: %s: out of memory", ctx, doing);
    return snap_fail(SNAP_EFORMAT, "%s: %s: %s", ctx, doing, LZ4F_getErrorName(r));
}

int hdr_lz4_decompress(const uint8_t *src, size_t srclen, size_t want, uint8_t **out,
                       const char *ctx)
{
    if (srclen < 4 || get_le32(src) != LZ4_MAGIC)
        return snap_fail(SNAP_EFORMAT, "%s: body is not an LZ4 frame (no magic 04 22 4D 18 "
                         "after uncompressedLen)", ctx);
    LZ4F_dctx *dctx = LZ4F_createDecompressionContext_advanced(hdr_lz4_mem, LZ4F_VERSION);
    if (!dctx)
        return snap_fail(SNAP_ENOMEM, "%s: cannot allocate the LZ4 decoder", ctx);
    struct snap_buf b; /* grows by doubling only when full of real output, never past want */
    snap_buf_init(&b, OUT_START, want);
    size_t in = 0;
    int err = snap_buf_reserve(&b, b.first);
    for (;;) {
        if (err || (b.len == b.cap && b.cap < want && (err = snap_buf_reserve(&b, b.cap + 1)) != 0)) {
            err = snap_fail_ctx(err, "%s: body", ctx);
            goto out;
        }
        /* With the buffer full, offer one spare byte: output there means the frame is longer
         * than uncompressedLen; no output lets the frame end (end mark, checksum) be read. */
        uint8_t spare;
        bool full = b.len == b.cap;
        size_t dlen = full ? 1 : b.cap - b.len, slen = srclen - in;
        size_t r = LZ4F_decompress(dctx, full ? &spare : b.data + b.len, &dlen, src + in, &slen, NULL);
        if (LZ4F_isError(r)) {
            err = hdr_lz4_fail(r, ctx, "LZ4 frame");
            goto out;
        }
        if (full && dlen) {
            err = snap_fail(SNAP_EFORMAT, "%s: LZ4 frame decompresses to more than "
                            "uncompressedLen %zu", ctx, want);
            goto out;
        }
        b.len += dlen;
        in += slen;
        if (r == 0)
            break; /* frame complete, checksums verified */
        if (dlen == 0 && slen == 0) { /* room for output, yet no progress: input ran out */
            err = snap_fail(SNAP_EFORMAT, "%s: LZ4 frame cut off after %zu bytes (%zu bytes of "
                            "output)", ctx, srclen, b.len);
            goto out;
        }
    }
    if (in != srclen) {
        err = snap_fail(SNAP_EFORMAT, "%s: %zu bytes after the end of the LZ4 frame", ctx,
                        srclen - in);
        goto out;
    }
    if (b.len != want) {
        err = snap_fail(SNAP_EFORMAT, "%s: LZ4 frame decompresses to %zu bytes, uncompressedLen "
                        "says %zu", ctx, b.len, want);
        goto out;
    }
    *out = b.data ? snap_buf_take(&b) : snap_malloc(1); /* an empty body is still a buffer */
    if (!*out)
        err = snap_fail(SNAP_ENOMEM, "%s: cannot allocate the body", ctx);
out:
    snap_buf_free(&b);
    LZ4F_freeDecompressionContext(dctx);
    return err;
}

static void lz4_prefs(LZ4F_preferences_t *p)
{
    memset(p, 0, sizeof *p);
    p->frameInfo.blockSizeID = LZ4F_max4MB;
    p->frameInfo.blockMode = LZ4F_blockIndependent;
    p->frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    p->frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
}

size_t hdr_lz4_bound(size_t len)
{
    LZ4F_preferences_t p;
    lz4_prefs(&p);
    return LZ4F_compressFrameBound(len, &p);
}

int hdr_lz4_compress(const uint8_t *src, size_t len, uint8_t *dst, size_t cap, size_t *outlen)
{
    LZ4F_preferences_t p;
    lz4_prefs(&p);
    LZ4F_cctx *cctx = LZ4F_createCompressionContext_advanced(hdr_lz4_mem, LZ4F_VERSION);
    if (!cctx)
        return snap_fail(SNAP_ENOMEM, "header: cannot allocate the LZ4 encoder");
    size_t r = LZ4F_compressFrame_usingCDict(cctx, dst, cap, src, len, NULL, &p);
    LZ4F_freeCompressionContext(cctx);
    if (LZ4F_isError(r))
        return hdr_lz4_fail(r, "header", "LZ4 compression");
    *outlen = r;
    return 0;
}
