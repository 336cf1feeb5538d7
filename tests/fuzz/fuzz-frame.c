/* fuzz-frame.c -- decoding one compressed data frame (hdr_frame_decode).
 *
 * Input: byte 0 picks lz4 (even) or zstd (odd); bytes 1..3 are sizeU (little-endian, at most
 * 16 MiB); the rest is the frame.  The output buffer is exactly sizeU bytes (ASan catches a
 * write past it).  One decoder serves every input, as a fetch thread's does, so a frame that
 * fails must not spoil the next: after each input a known-good frame of the same type must
 * still decode to its bytes. */
#include "base/err.h"
#include "base/mem.h"
#include "header/header.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "abcdabcdabcd" as an LZ4 frame (no checksums) and as a zstd frame with its checksum. */
static const uint8_t good_lz4[] = {0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82, 0x0c, 0x00, 0x00, 0x80,
                                   0x61, 0x62, 0x63, 0x64, 0x61, 0x62, 0x63, 0x64, 0x61, 0x62, 0x63,
                                   0x64, 0x00, 0x00, 0x00, 0x00};
static const uint8_t good_zstd[] = {0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x0c, 0x61, 0x00, 0x00, 0x61, 0x62, 0x63,
                                    0x64, 0x61, 0x62, 0x63, 0x64, 0x61, 0x62, 0x63, 0x64, 0x3a, 0xee, 0x68,
                                    0x3b};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct hdr_frame_dec *dec;
    if (!dec && hdr_frame_dec_new(&dec) != 0)
        abort();
    if (size < 4)
        return 0;
    enum hdr_comp comp = data[0] & 1 ? HDR_COMP_ZSTD : HDR_COMP_LZ4;
    size_t want = (size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16;
    uint8_t *dst = snap_malloc(want ? want : 1);
    if (!dst)
        return 0;
    int err = hdr_frame_decode(dec, comp, data + 4, size - 4, dst, want);
    if (err && !*snap_errmsg(err))
        abort(); /* every failure says why */
    snap_free(dst);

    uint8_t out[12];
    const uint8_t *g = comp == HDR_COMP_LZ4 ? good_lz4 : good_zstd;
    size_t glen = comp == HDR_COMP_LZ4 ? sizeof good_lz4 : sizeof good_zstd;
    if (hdr_frame_decode(dec, comp, g, glen, out, sizeof out) != 0 || memcmp(out, "abcdabcdabcd", 12) != 0)
        abort(); /* the decoder was left in a bad state */
    return 0;
}
