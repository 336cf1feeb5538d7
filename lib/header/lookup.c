/* lookup.c -- reading a mapping: offset lookup, coverage check, comparison, normalization. */
#include "header/internal.h"

#include <stdio.h>

#define ULL(x) ((unsigned long long)(x))

int hdr_lookup(const struct hdr *h, uint64_t x, struct hdr_loc *loc)
{
    if (x >= h->meta.size)
        return snap_fail(SNAP_ERANGE, "header: offset %llu is past the size %llu", ULL(x),
                         ULL(h->meta.size));
    if (!h->sorted)
        return snap_fail(SNAP_ECHECK, "header: the mapping is not sorted by offset; lookup needs "
                         "a sorted mapping (see inspect-header --check)");
    /* The last entry with offset <= x: lo ends as the count of entries with offset <= x. */
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->e[mid].offset <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return snap_fail(SNAP_ENOTFOUND, "header: offset %llu is in a hole before the first "
                         "mapping (at %llu)", ULL(x), ULL(h->n ? h->e[0].offset : h->meta.size));
    const struct hdr_entry *e = &h->e[lo - 1];
    uint64_t shift = x - e->offset;
    if (shift >= e->length)
        return snap_fail(SNAP_ENOTFOUND, "header: offset %llu is in a hole: mapping %zu ends at "
                         "%llu", ULL(x), lo - 1, ULL(e->offset + e->length));
    loc->build = hdr_entry_build(h, e);
    loc->zero = e->build == HDR_ZERO;
    loc->storage = loc->zero ? 0 : e->storage + shift;
    loc->remaining = e->length - shift;
    loc->entry = lo - 1;
    return 0;
}

int hdr_check(const struct hdr *h)
{
    uint64_t size = h->meta.size, whole = snap_round_up(size, HDR_PAGE), end = 0;
    for (size_t i = 0; i < h->n; i++) {
        const struct hdr_entry *e = &h->e[i];
        uint64_t stop = e->offset + e->length;
        int err = hdr_check_map("header check", i, e->offset, e->length, e->storage);
        if (err) {
            char msg[256]; /* the detail buffer cannot be its own format argument */
            snprintf(msg, sizeof msg, "%s", snap_errmsg(err));
            return snap_fail(SNAP_ECHECK, "%s", msg);
        }
        if (e->length == 0)
            return snap_fail(SNAP_ECHECK, "header check: mapping %zu at %llu has Length 0", i,
                             ULL(e->offset));
        if (e->offset > end)
            return snap_fail(SNAP_ECHECK, "header check: hole [%llu, %llu) %s mapping %zu", ULL(end),
                             ULL(e->offset), i ? "between the previous mapping and" : "before", i);
        if (e->offset < end)
            return snap_fail(SNAP_ECHECK, "header check: mapping %zu [%llu, %llu) overlaps mapping "
                             "%zu, which ends at %llu", i, ULL(e->offset), ULL(stop), i - 1,
                             ULL(end));
        if (stop > whole)
            return snap_fail(SNAP_ECHECK, "header check: mapping %zu [%llu, %llu) ends past the "
                             "size %llu (%llu rounded up to 4096)", i, ULL(e->offset), ULL(stop),
                             ULL(whole), ULL(size));
        end = stop;
    }
    if (end < size)
        return snap_fail(SNAP_ECHECK, "header check: hole [%llu, %llu) %s", ULL(end), ULL(size),
                         h->n ? "after the last mapping, up to the size" : "(no mappings at all)");
    return 0;
}

/* What a header says about device bytes from pos on: one run of uniform contents. */
struct seg {
    bool zero;
    const snap_uuid *id;
    uint64_t storage, len;
};

static void seg_at(const struct hdr *h, size_t *i, uint64_t pos, uint64_t limit, struct seg *s)
{
    while (*i < h->n && h->e[*i].offset + h->e[*i].length <= pos)
        (*i)++;
    const struct hdr_entry *e = *i < h->n ? &h->e[*i] : NULL;
    if (!e || e->offset > pos) { /* a hole reads as zeros, as v5 makes it */
        s->zero = true;
        s->len = (e ? e->offset : limit) - pos;
    } else {
        s->zero = e->build == HDR_ZERO;
        s->id = hdr_entry_build(h, e);
        s->storage = e->storage + (pos - e->offset);
        s->len = e->offset + e->length - pos;
    }
    if (s->len > limit - pos)
        s->len = limit - pos;
}

/* The same entries in the same order (builds compared by UUID). */
static bool same_entries(const struct hdr *a, const struct hdr *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const struct hdr_entry *x = &a->e[i], *y = &b->e[i];
        if (x->offset != y->offset || x->length != y->length || x->storage != y->storage ||
            snap_uuid_cmp(hdr_entry_build(a, x), hdr_entry_build(b, y)) != 0)
            return false;
    }
    return true;
}

bool hdr_same_contents(const struct hdr *a, const struct hdr *b)
{
    if (!a->sorted || !b->sorted)
        return same_entries(a, b);
    if (a->meta.size != b->meta.size)
        return false;
    uint64_t limit = snap_round_up(a->meta.size, HDR_PAGE), pos = 0;
    size_t ia = 0, ib = 0;
    while (pos < limit) {
        struct seg sa, sb;
        seg_at(a, &ia, pos, limit, &sa);
        seg_at(b, &ib, pos, limit, &sb);
        if (sa.zero != sb.zero)
            return false;
        if (!sa.zero && (sa.storage != sb.storage || memcmp(sa.id, sb.id, sizeof *sa.id) != 0))
            return false;
        pos += snap_min_u64(sa.len, sb.len);
    }
    return true;
}

void hdr_normalize(struct hdr *h)
{
    size_t k = 0;
    for (size_t i = 0; i < h->n; i++) {
        struct hdr_entry e = h->e[i];
        if (e.length == 0)
            continue;
        if (e.build == HDR_ZERO)
            e.storage = 0;
        if (k > 0) {
            struct hdr_entry *p = &h->e[k - 1];
            if (p->build == e.build && p->offset + p->length == e.offset &&
                (e.build == HDR_ZERO || p->storage + p->length == e.storage)) {
                p->length += e.length;
                continue;
            }
        }
        h->e[k++] = e;
    }
    h->n = k;
}
