/* internal.h -- what the files of lib/header share and nobody else uses. */
#ifndef SNAP_HEADER_INTERNAL_H
#define SNAP_HEADER_INTERNAL_H

#include "header/header.h"

#include "base/bytes.h"
#include "base/err.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HDR_BUILD_REC 64  /* uuid, i64 size, sha256, u32 type, u32 nFrames (before frames) */
#define HDR_FRAME_REC 24  /* i64 startU, i64 startC, i32 sizeU, i32 sizeC */
#define HDR_V45_PREFIX (HDR_META_SIZE + 1 + 4) /* metadata, flags, uncompressedLen */

/* A bounds-checked cursor over bytes that came from outside. */
struct hdr_rd {
    const uint8_t *p;
    size_t len, pos;
};

static inline size_t hdr_rd_left(const struct hdr_rd *r) { return r->len - r->pos; }

/* Each returns 0, or SNAP_EFORMAT naming `what` and the offset where the bytes ran out. */
int hdr_rd_bytes(struct hdr_rd *r, void *dst, size_t n, const char *ctx, const char *what);
int hdr_rd_u32(struct hdr_rd *r, uint32_t *v, const char *ctx, const char *what);
/* Unsigned LEB128 of at most 10 bytes that fits in 64 bits. */
int hdr_rd_uvarint(struct hdr_rd *r, uint64_t *v, const char *ctx, const char *what, size_t i);

/* Grow *p (elements of `size` bytes, capacity *cap) to hold at least `need`; doubling. */
int hdr_grow(void **p, size_t *cap, size_t need, size_t size, const char *what);

/* Index of build id in h->ids, adding it when new (SNAP_ETOOBIG past HDR_MAX_BUILDS).
 * *added says whether it was new. */
int hdr_intern(struct hdr *h, const snap_uuid *id, uint32_t *index, bool *added, const char *ctx);

/* The checks every BuildMap gets, whatever the version: 4096-aligned fields, no overflow. */
int hdr_check_map(const char *ctx, size_t i, uint64_t off, uint64_t len, uint64_t bso);
/* Append without checks (the caller checked); build is an index or HDR_ZERO. */
int hdr_push(struct hdr *h, uint64_t off, uint64_t len, uint64_t bso, uint32_t build);
/* Recompute h->sorted. */
void hdr_update_sorted(struct hdr *h);

/* Read the builds section (v4/v5) into h. */
int hdr_read_builds(struct hdr_rd *r, struct hdr *h, const char *ctx);

/* LZ4 frame codec (lz4.c). Decompress exactly `want` bytes (want <= HDR_MAX_UNCOMPRESSED)
 * into a new buffer grown as output arrives. */
int hdr_lz4_decompress(const uint8_t *src, size_t srclen, size_t want, uint8_t **out,
                       const char *ctx);
size_t hdr_lz4_bound(size_t len);
#ifdef LZ4F_STATIC_LINKING_ONLY
#include <lz4frame.h>
/* liblz4 allocating through snap_malloc, and an LZ4F error as a snap_err (ENOMEM or EFORMAT). */
extern const LZ4F_CustomMem hdr_lz4_mem;
int hdr_lz4_fail(size_t r, const char *ctx, const char *doing);
#endif
int hdr_lz4_compress(const uint8_t *src, size_t len, uint8_t *dst, size_t cap, size_t *outlen);

static inline uint64_t hdr_pages_ceil(uint64_t bytes) { return bytes / HDR_PAGE + (bytes % HDR_PAGE != 0); }

#endif
