/* diff.c -- a new diff header on top of a parent (formats.md section 6).
 *
 * Design note: the caller (serve-nbd's export) walks its cache once in device order and hands
 * us runs: dirty runs (packed into the new diff object in that order, so storage offsets are
 * the running total of dirty bytes) and zero runs.  Runs must ascend and not overlap, which
 * makes the merge one sweep over parent and runs together, O(parent + runs):
 *   for each run: the parent entries covering [cursor, run.start) are copied, trimmed at the
 *   edges (a piece cut at its left keeps BSO + shift), then the run itself; finally the parent
 *   from the last run's end on.
 * Then normalize (same build with contiguous storage joins, zeros always join) and check that
 * [0, Size) is covered.  Memory: the runs plus the result, both proportional to entries.
 */
#include "header/internal.h"

#include "base/mem.h"

#define ULL(x) ((unsigned long long)(x))
#define RUN_DIRTY 0u  /* hdr_entry.build of a run: the new build; else HDR_ZERO */

struct hdr_diff {
    const struct hdr *parent;
    snap_uuid id;
    struct hdr_entry *runs;
    size_t n, cap;
    uint64_t dirty; /* bytes of dirty runs so far = next storage offset */
    uint64_t end;   /* end of the last run */
};

int hdr_diff_new(const struct hdr *parent, const snap_uuid *build_id, struct hdr_diff **out)
{
    char u[SNAP_UUID_STRLEN + 1];
    snap_uuid_format(build_id, u);
    if (snap_uuid_is_zero(build_id))
        return snap_fail(SNAP_EUSAGE, "diff header: the new build id is the zero UUID");
    if (!parent->sorted)
        return snap_fail(SNAP_ECHECK, "diff header: the parent mapping is not sorted by offset");
    for (uint32_t i = 0; i < parent->nids; i++)
        if (memcmp(&parent->ids[i], build_id, sizeof *build_id) == 0)
            return snap_fail(SNAP_EUSAGE, "diff header: build %s is already in the parent's "
                             "mapping; a diff needs a new build id", u);
    if (parent->meta.generation == UINT64_MAX)
        return snap_fail(SNAP_ERANGE, "diff header: parent Generation is already the maximum");
    struct hdr_diff *d = snap_calloc(1, sizeof *d);
    if (!d)
        return snap_fail(SNAP_ENOMEM, "diff header: cannot allocate");
    d->parent = parent;
    d->id = *build_id;
    *out = d;
    return 0;
}

void hdr_diff_free(struct hdr_diff *d)
{
    if (!d)
        return;
    snap_free(d->runs);
    snap_free(d);
}

uint64_t hdr_diff_dirty_bytes(const struct hdr_diff *d)
{
    return d->dirty;
}

int hdr_diff_add(struct hdr_diff *d, uint64_t offset, uint64_t length, enum hdr_run kind)
{
    const char *what = kind == HDR_RUN_ZERO ? "zero run" : "dirty run";
    if (offset % HDR_PAGE || length % HDR_PAGE)
        return snap_fail(SNAP_ERANGE, "diff header: %s [%llu, +%llu) is not aligned to %u", what,
                         ULL(offset), ULL(length), HDR_PAGE);
    if (length == 0)
        return 0;
    uint64_t whole = snap_round_up(d->parent->meta.size, HDR_PAGE);
    if (offset > whole || length > whole - offset)
        return snap_fail(SNAP_ERANGE, "diff header: %s [%llu, +%llu) ends past the size %llu",
                         what, ULL(offset), ULL(length), ULL(d->parent->meta.size));
    if (offset < d->end)
        return snap_fail(SNAP_ERANGE, "diff header: %s at %llu starts before the end of the "
                         "previous run (%llu): runs must ascend and not overlap", what,
                         ULL(offset), ULL(d->end));
    uint32_t build = kind == HDR_RUN_ZERO ? HDR_ZERO : RUN_DIRTY;
    struct hdr_entry *p = d->n ? &d->runs[d->n - 1] : NULL;
    if (p && p->build == build && p->offset + p->length == offset) {
        p->length += length; /* adjacent dirty runs are contiguous in storage too */
    } else {
        int err = hdr_grow((void **)&d->runs, &d->cap, d->n + 1, sizeof *d->runs, "diff runs");
        if (err)
            return err;
        d->runs[d->n++] = (struct hdr_entry){offset, length, build == RUN_DIRTY ? d->dirty : 0,
                                             build};
    }
    if (build == RUN_DIRTY)
        d->dirty += length;
    d->end = offset + length;
    return 0;
}

/* Merge state: the result, the parent cursor, parent build index -> result index. */
struct merge {
    struct hdr *h;
    const struct hdr *parent;
    size_t pi;
    uint32_t *remap;
    uint32_t new_idx;
};

static int emit(struct merge *m, uint64_t off, uint64_t len, uint64_t storage, uint32_t build)
{
    return hdr_push(m->h, off, len, build == HDR_ZERO ? 0 : storage, build);
}

static int map_parent(struct merge *m, uint32_t pb, uint32_t *out)
{
    if (pb == HDR_ZERO) {
        *out = HDR_ZERO;
        return 0;
    }
    if (m->remap[pb] == HDR_ZERO) {
        bool added;
        int err = hdr_intern(m->h, &m->parent->ids[pb], &m->remap[pb], &added, "diff header");
        if (err)
            return err;
    }
    *out = m->remap[pb];
    return 0;
}

/* Copy the parent's entries over [a, b), trimmed at both edges. */
static int emit_parent(struct merge *m, uint64_t a, uint64_t b)
{
    const struct hdr_entry *pe = m->parent->e;
    size_t pn = m->parent->n;
    while (m->pi < pn && pe[m->pi].offset + pe[m->pi].length <= a)
        m->pi++;
    for (size_t j = m->pi; j < pn && pe[j].offset < b; j++) {
        uint64_t s = snap_max_u64(pe[j].offset, a);
        uint64_t t = snap_min_u64(pe[j].offset + pe[j].length, b);
        if (s >= t)
            continue;
        uint32_t build;
        int err = map_parent(m, pe[j].build, &build);
        if (!err)
            err = emit(m, s, t - s, pe[j].storage + (s - pe[j].offset), build);
        if (err)
            return err;
    }
    return 0;
}

/* The builds section: the parent's record for builds still referenced (synthesized when it
 * has none), and the new build's with its exact size. */
static int diff_builds(struct hdr *h, const struct hdr *parent, const snap_uuid *id, uint64_t dirty)
{
    int err = hdr_synth_builds(h);
    if (err)
        return err;
    size_t nf = 0;
    for (uint32_t i = 0; i < h->nbuilds; i++) {
        const struct hdr_build *pb = hdr_find_build(parent, &h->builds[i].id);
        nf += pb ? pb->nframes : 0;
    }
    if (nf && !(h->frames = snap_calloc(nf, sizeof *h->frames)))
        return snap_fail(SNAP_ENOMEM, "diff header: cannot allocate %zu frames", nf);
    for (uint32_t i = 0; i < h->nbuilds; i++) {
        struct hdr_build *b = &h->builds[i];
        const struct hdr_build *pb = hdr_find_build(parent, &b->id);
        if (pb) {
            *b = *pb;
            b->first_frame = h->nframes;
            if (pb->nframes)
                memcpy(h->frames + h->nframes, hdr_build_frames(parent, pb),
                       pb->nframes * sizeof *h->frames);
            h->nframes += pb->nframes;
        } else if (memcmp(&b->id, id, sizeof *id) == 0) {
            b->file_size = (int64_t)dirty;
        }
    }
    return 0;
}

int hdr_diff_finish(struct hdr_diff *d, struct hdr **out)
{
    const struct hdr *parent = d->parent;
    struct hdr_meta meta = parent->meta;
    meta.generation++;
    meta.build_id = d->id;
    struct merge m = {.parent = parent};
    int err = hdr_new(&meta, &m.h);
    if (err)
        goto out;
    m.h->format = parent->format;
    m.h->flags = 0;
    m.remap = snap_malloc(((size_t)parent->nids + 1) * sizeof *m.remap);
    if (!m.remap) {
        err = snap_fail(SNAP_ENOMEM, "diff header: cannot allocate the build map");
        goto out;
    }
    memset(m.remap, 0xff, ((size_t)parent->nids + 1) * sizeof *m.remap);
    m.new_idx = HDR_ZERO;
    uint64_t cursor = 0;
    for (size_t r = 0; r < d->n; r++) {
        const struct hdr_entry *run = &d->runs[r];
        uint32_t build = HDR_ZERO;
        bool added;
        if ((err = emit_parent(&m, cursor, run->offset)))
            goto out;
        if (run->build == RUN_DIRTY) {
            if (m.new_idx == HDR_ZERO &&
                (err = hdr_intern(m.h, &d->id, &m.new_idx, &added, "diff header")))
                goto out;
            build = m.new_idx;
        }
        if ((err = emit(&m, run->offset, run->length, run->storage, build)))
            goto out;
        cursor = run->offset + run->length;
    }
    if ((err = emit_parent(&m, cursor, UINT64_MAX)))
        goto out;
    hdr_normalize(m.h);
    hdr_update_sorted(m.h);
    if ((err = hdr_check(m.h))) {
        snap_fail_ctx(err, "diff header on top of generation %llu", ULL(parent->meta.generation));
        goto out;
    }
    if ((err = diff_builds(m.h, parent, &d->id, d->dirty)))
        goto out;
    *out = m.h;
    m.h = NULL;
out:
    hdr_free(m.h);
    snap_free(m.remap);
    hdr_diff_free(d);
    return err;
}

int hdr_build_diff(const struct hdr *parent, const snap_uuid *build_id,
                   const struct hdr_extent *dirty, size_t ndirty,
                   const struct hdr_extent *zero, size_t nzero, struct hdr **out)
{
    struct hdr_diff *d;
    int err = hdr_diff_new(parent, build_id, &d);
    if (err)
        return err;
    size_t i = 0, j = 0;
    while (!err && (i < ndirty || j < nzero)) {
        bool take_dirty = j == nzero || (i < ndirty && dirty[i].offset <= zero[j].offset);
        const struct hdr_extent *x = take_dirty ? &dirty[i++] : &zero[j++];
        err = hdr_diff_add(d, x->offset, x->length, take_dirty ? HDR_RUN_DIRTY : HDR_RUN_ZERO);
    }
    if (err) {
        hdr_diff_free(d);
        return err;
    }
    return hdr_diff_finish(d, out);
}
