/* header.h -- snapshot header codec: parse v1..v5, write v3/v4/v5, look up, check, diff.
 *
 * A header maps a device's byte range [0, Size) onto builds: each entry says "device range
 * [offset, offset+length) lives in build B at storage offset S" (or is all zeros).  The layout
 * is the E2B orchestrator's (docs/formats.md sections 2-6); docs/header.md says what is
 * checked and where formats.md left a choice to us.
 *
 * In memory a header is one array of entries in file order; each entry names its build by an
 * index into `ids` (the distinct non-zero build UUIDs in first-appearance order) or HDR_ZERO.
 * Memory is proportional to the number of entries (32 bytes each).
 *
 * Every function returns 0 or a snap_err with the detail recorded (snap_fail); on error
 * nothing is allocated for the caller.  A struct hdr is read-only for callers: change it only
 * with the functions below.  Different headers may be used from different threads; one
 * header may be read (lookup, check, serialize) from many threads at once.
 */
#ifndef SNAP_HEADER_H
#define SNAP_HEADER_H

#include "base/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HDR_META_SIZE 64                 /* the common Metadata prefix */
#define HDR_MAP_SIZE 40                  /* one v1..v4 BuildMap record */
#define HDR_PAGE 4096                    /* offsets, lengths, storage offsets are multiples */
#define HDR_MAX_UNCOMPRESSED (256u << 20) /* v4/v5 uncompressedLen cap */
#define HDR_MAX_BUILDS 65535u            /* distinct builds per header */
#define HDR_MAX_FRAMES (1u << 20)        /* frames per build's frame table */
#define HDR_MAX_V5_ENTRIES (8u << 20)    /* stored (non-zero) v5 entries */
#define HDR_FILE_MAX (512u << 20)        /* what a caller should read for one header file */

#define HDR_MEMFILE_BLOCK (2u << 20)     /* BlockSize of memfile headers (rootfs: HDR_PAGE) */
/* The BlockSize a new base header of the build file `file` gets: 2 MiB for "memfile" (guest
 * memory in huge pages; its mappings stay in 4 KiB pages), 4096 otherwise. */
static inline uint64_t hdr_block_size_for(const char *file)
{
    return file && __builtin_strcmp(file, "memfile") == 0 ? HDR_MEMFILE_BLOCK : HDR_PAGE;
}

#define HDR_ZERO UINT32_MAX              /* entry.build of an all-zeros entry */
#define HDR_FLAG_INCOMPLETE 0x01         /* v4/v5 flags bit 0: upload not finished */

enum hdr_comp { HDR_COMP_NONE = 0, HDR_COMP_ZSTD = 1, HDR_COMP_LZ4 = 2 };

/* The 64-byte Metadata, field for field. */
struct hdr_meta {
    uint64_t version;     /* only version & 0xFFFF is the format number */
    uint64_t block_size;
    uint64_t size;        /* logical device size in bytes */
    uint64_t generation;
    snap_uuid build_id;
    snap_uuid base_build_id;
};

struct hdr_entry {
    uint64_t offset;  /* device offset, bytes */
    uint64_t length;  /* bytes */
    uint64_t storage; /* BuildStorageOffset: offset inside the build's diff object */
    uint32_t build;   /* index into hdr.ids, or HDR_ZERO */
};

struct hdr_frame {
    int64_t start_u, start_c; /* offset of the frame, uncompressed and compressed */
    int32_t size_u, size_c;
};

/* One record of the v4/v5 builds section. */
struct hdr_build {
    snap_uuid id;
    int64_t file_size;       /* uncompressed size of the build's data object */
    uint8_t sha256[32];      /* all zero = unknown */
    uint32_t comp;           /* enum hdr_comp */
    uint32_t nframes;
    size_t first_frame;      /* its frames are hdr.frames[first_frame .. +nframes) */
};

/* UUID -> index of hdr.ids; private to lib/header. */
struct hdr_idindex {
    uint32_t *slots;  /* index + 1, 0 = empty */
    uint32_t cap;     /* power of two */
    uint32_t last;    /* index + 1 of the last hit: runs of one build cost one compare */
    uint64_t key[2];  /* per-header hash key: crafted UUIDs cannot force collisions */
};

struct hdr {
    struct hdr_meta meta;
    unsigned format;          /* 1..5 as read; 3, 4 or 5 for a header built in memory */
    uint8_t flags;            /* v4/v5 flags byte as read (HDR_FLAG_INCOMPLETE) */
    bool has_builds;          /* builds section read (v4/v5) or set; else writers synthesize */
    bool sorted;              /* entries ascending, non-overlapping: lookup works */

    struct hdr_entry *e;      /* the mapping, in file order */
    size_t n, cap;

    snap_uuid *ids;           /* distinct non-zero builds, first-appearance order */
    uint32_t nids, ids_cap;
    struct hdr_idindex idx;

    struct hdr_build *builds; /* sorted by id, no duplicates */
    uint32_t nbuilds;
    struct hdr_frame *frames; /* all builds' frame tables, back to back */
    size_t nframes;
};

/* Parse a header of any version from buf[0..len). Checks every limit of formats.md
 * (SNAP_EFORMAT, or SNAP_ETOOBIG for a size cap; the message names the field and value). */
int hdr_parse(const uint8_t *buf, size_t len, struct hdr **out);
void hdr_free(struct hdr *h);

/* Serialize as format 3, 4 or 5 into a new buffer (snap_free it).  The metadata is written
 * as stored except the format number (version & 0xFFFF) which becomes `format`.  v4/v5 keep
 * h->flags and the builds section; without one (a v1..v3 input) a section is synthesized:
 * see hdr_synth_builds.  v5 needs a sorted mapping inside ceil(Size/4096) pages (SNAP_ERANGE
 * names the entry otherwise); zero entries and holes are both written as gaps. */
int hdr_serialize(const struct hdr *h, unsigned format, uint8_t **out, size_t *outlen);

/* An empty header with this metadata (format = meta->version & 0xFFFF, 3 if not 1..5). */
int hdr_new(const struct hdr_meta *meta, struct hdr **out);
/* Append one entry (build NULL or the zero UUID = zeros); checks alignment, overflow and
 * the distinct-build limit like the parser does. */
int hdr_append(struct hdr *h, uint64_t offset, uint64_t length, const snap_uuid *build,
               uint64_t storage);
/* Give h a builds section if it has none: one record per distinct non-zero build of the
 * mapping, sorted by UUID, with file_size = the end of the highest storage byte the mapping
 * references in it (a lower bound, exact for a freshly packed diff), sha256 all zero
 * (unknown), compression none, no frames. */
int hdr_synth_builds(struct hdr *h);
/* Set (or add) the builds-section record of one build; frames not changed. */
int hdr_set_build(struct hdr *h, const snap_uuid *id, int64_t file_size, const uint8_t sha256[32]);
/* Give the (existing) record of build id this compression and frame table (copied); type 0
 * with no frames makes it plain again. */
int hdr_set_frames(struct hdr *h, const snap_uuid *id, uint32_t comp, const struct hdr_frame *f, uint32_t n);
/* The builds-section record of id, or NULL. O(log nbuilds). */
const struct hdr_build *hdr_find_build(const struct hdr *h, const snap_uuid *id);
static inline const struct hdr_frame *hdr_build_frames(const struct hdr *h, const struct hdr_build *b)
{
    return h->frames ? h->frames + b->first_frame : NULL;
}
/* Compressed data frames (docs/header.md, "Compressed builds").  A decoder holds liblz4's and
 * libzstd's contexts, allocated once and reused frame after frame (one per thread). */
#define HDR_FRAME_MAX (32u << 20)        /* largest sizeU / sizeC this version decodes */
#define HDR_FRAME_SIZE (2u << 20)        /* uncompressed bytes per frame, as the reference writes */
struct hdr_frame_dec;
int hdr_frame_dec_new(struct hdr_frame_dec **out);
void hdr_frame_dec_free(struct hdr_frame_dec *d);
/* Decompress src[0..srclen), exactly one complete frame of type comp (HDR_COMP_LZ4: an LZ4
 * frame; HDR_COMP_ZSTD: a zstd frame), into dst, which must receive exactly `want` bytes.
 * Checksums the frame carries are verified.  0, SNAP_EHASH (a checksum does not match),
 * SNAP_EFORMAT (not such a frame, cut off, bytes after it, more or fewer than want bytes out)
 * or SNAP_ENOMEM; the message is the reason alone, for the caller to prefix with the object
 * and frame.  On failure dst holds garbage. */
int hdr_frame_decode(struct hdr_frame_dec *d, enum hdr_comp comp, const uint8_t *src, size_t srclen,
                     uint8_t *dst, size_t want);
/* Compressing one frame (the uploader): a frame as docs/formats.md says -- lz4: 4 MiB
 * independent blocks with block checksums, no content checksum; zstd: checksum on, content
 * size set.  An encoder is one thread's; level 0 = the library's default. */
struct hdr_frame_enc;
int hdr_frame_enc_new(uint32_t comp, int level, struct hdr_frame_enc **out);
void hdr_frame_enc_free(struct hdr_frame_enc *e);
size_t hdr_frame_bound(const struct hdr_frame_enc *e, size_t n);
int hdr_frame_encode(struct hdr_frame_enc *e, const uint8_t *src, size_t n, uint8_t *dst, size_t cap,
                     size_t *outlen);
/* The frame of build b that holds uncompressed offset x (binary search), or NULL. */
const struct hdr_frame *hdr_frame_at(const struct hdr *h, const struct hdr_build *b, uint64_t x);
const char *hdr_comp_name(uint32_t comp);
/* What a build's frame table adds up to (all zero without frames): the uncompressed range the
 * listed frames span, their uncompressed and compressed bytes and the ratio uncompressed /
 * compressed (0 without compressed bytes).  A trimmed table counts only its listed frames. */
struct hdr_frames_sum {
    uint32_t nframes;
    uint64_t u_start, u_end;
    uint64_t bytes_u, bytes_c;
    double ratio;
};
void hdr_frames_summary(const struct hdr *h, const struct hdr_build *b, struct hdr_frames_sum *s);

/* The UUID of an entry's build (the zero UUID for HDR_ZERO). */
const snap_uuid *hdr_entry_build(const struct hdr *h, const struct hdr_entry *e);

/* Look up device offset x (formats.md section 6), O(log n). */
struct hdr_loc {
    const snap_uuid *build; /* the zero UUID for zeros */
    bool zero;
    uint64_t storage;       /* offset in the build's diff object */
    uint64_t remaining;     /* bytes from x to the end of the entry */
    size_t entry;           /* index into h->e */
};
/* SNAP_ERANGE past Size, SNAP_ENOTFOUND in a hole, SNAP_ECHECK when the mapping is not sorted. */
int hdr_lookup(const struct hdr *h, uint64_t x, struct hdr_loc *loc);

/* Does the mapping cover [0, Size) contiguously with aligned, non-empty entries?  0 or
 * SNAP_ECHECK naming the first hole, overlap, misalignment or overrun with its offsets. */
int hdr_check(const struct hdr *h);

/* What the reference's loader would refuse (or fail on at read time) in a header hdr_parse
 * accepted: a Size that is not a multiple of 4096 with mappings not adding up to it, the
 * "upload not finished" flag or undefined flag bits, a mapping reading past its build's
 * uncompressedFileSize or at an offset no frame of a (trimmed) table holds, a frame past the
 * uncompressedFileSize.  fn gets one message per kind of finding (the first, and how many
 * more); returns how many kinds were found (0: none). */
int hdr_check_loader(const struct hdr *h, void (*fn)(void *ctx, const char *msg), void *ctx);

/* Do a and b give every device page [0, ceil(Size/4096)*4096) the same contents (same build
 * and storage offset, zeros and holes alike)?  When either is not sorted (a v1..v4 mapping
 * kept as written): do they hold the same entries in the same order? */
bool hdr_same_contents(const struct hdr *a, const struct hdr *b);

/* What inspect-header reports: bytes per build (per_build[i] for h->ids[i]), zero bytes and
 * all mapped bytes.  SNAP_ENOMEM or 0; free with hdr_totals_free. */
struct hdr_totals {
    uint64_t *per_build;
    uint64_t zero, mapped;
};
int hdr_totals_compute(const struct hdr *h, struct hdr_totals *t);
void hdr_totals_free(struct hdr_totals *t);
/* The build's sha256 as 64 hex digits; false (and "") when it is unknown (all zero). */
bool hdr_build_sha256_hex(const struct hdr_build *b, char hex[65]);
/* h written as version `format` (3, 4 or 5) into a new buffer (*out, free with snap_free),
 * after reading it back: the output must parse and give the same contents (hdr_same_contents).
 * hdr_serialize's errors (SNAP_ERANGE: the mapping cannot be said in that version) prefixed
 * "cannot write as vN", or SNAP_EINTERNAL when the output does not read back the same. */
int hdr_convert(const struct hdr *h, unsigned format, uint8_t **out, size_t *outlen);

/* A new diff header on top of `parent` (formats.md section 6), built incrementally:
 *   hdr_diff_new(parent, &new_build_id, &d);
 *   hdr_diff_add(d, off, len, HDR_RUN_DIRTY) ... in ascending order, runs not overlapping;
 *   hdr_diff_finish(d, &h);   // merges, normalizes, checks coverage; d is freed
 * Dirty runs are packed into the new build's diff object in the order given, so the k-th
 * dirty byte of the device lives at storage offset k.  The result has the parent's
 * Version/BlockSize/Size/BaseBuildId, Generation + 1, BuildId = new build, and a builds
 * section: the parent's records of the builds still referenced (synthesized if missing) and
 * the new build's, whose file_size is the total of the dirty runs. */
enum hdr_run { HDR_RUN_DIRTY, HDR_RUN_ZERO };
struct hdr_diff;
int hdr_diff_new(const struct hdr *parent, const snap_uuid *build_id, struct hdr_diff **out);
int hdr_diff_add(struct hdr_diff *d, uint64_t offset, uint64_t length, enum hdr_run kind);
/* Total bytes of dirty runs added so far: the size of the diff object. */
uint64_t hdr_diff_dirty_bytes(const struct hdr_diff *d);
int hdr_diff_finish(struct hdr_diff *d, struct hdr **out);
void hdr_diff_free(struct hdr_diff *d);

struct hdr_extent {
    uint64_t offset, length;
};
/* The same from two sorted extent lists (dirty and zero runs may interleave, not overlap). */
int hdr_build_diff(const struct hdr *parent, const snap_uuid *build_id,
                   const struct hdr_extent *dirty, size_t ndirty,
                   const struct hdr_extent *zero, size_t nzero, struct hdr **out);

/* Join neighbours of the same build whose storage is contiguous, and all zero neighbours;
 * zero entries get storage 0.  Entries must be sorted.  Never fails. */
void hdr_normalize(struct hdr *h);

#endif
