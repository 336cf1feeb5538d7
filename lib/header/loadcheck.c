/* loadcheck.c -- what the reference's header loader would refuse, or fail on later, in a header
 * that our parser accepts (docs/formats.md sections 4-7; docs/header.md "Loader check"). */
#include "header/internal.h"

#include <stdarg.h>
#include <stdio.h>

#define ULL(x) ((unsigned long long)(x))

enum { LC_SIZE, LC_INCOMPLETE, LC_FLAGS, LC_FRAME_MISSING, LC_PAST_FILE, LC_FRAME_PAST, LC_N };

struct lc {
    char first[LC_N][320]; /* the first finding of each rule */
    uint64_t count[LC_N];
};

__attribute__((format(printf, 3, 4))) static void lc_add(struct lc *c, int rule, const char *fmt, ...)
{
    if (c->count[rule]++)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->first[rule], sizeof c->first[rule], fmt, ap);
    va_end(ap);
}

/* A mapping onto a build with an entry: frames for every byte it reads, nothing past its size. */
static void lc_mapping(const struct hdr *h, size_t i, struct lc *c)
{
    const struct hdr_entry *e = &h->e[i];
    char u[37];
    const struct hdr_build *b = h->nbuilds ? hdr_find_build(h, &h->ids[e->build]) : NULL;
    if (!b)
        return;
    snap_uuid_format(&b->id, u);
    uint64_t end = e->storage + e->length;
    if (b->file_size > 0 && end > (uint64_t)b->file_size)
        lc_add(c, LC_PAST_FILE, "mapping %zu reads build %s up to byte %llu, past its "
               "uncompressedFileSize %lld: the read would fail", i, u, ULL(end), (long long)b->file_size);
    for (uint64_t x = e->storage; b->comp && x < end;) {
        const struct hdr_frame *f = hdr_frame_at(h, b, x);
        if (!f) {
            lc_add(c, LC_FRAME_MISSING, "mapping %zu reads build %s (%s) at offset %llu, which no "
                   "frame of its table holds (a trimmed table lacks it): the read would fail", i, u,
                   hdr_comp_name(b->comp), ULL(x));
            return;
        }
        x = (uint64_t)f->start_u + (uint64_t)f->size_u;
    }
}

int hdr_check_loader(const struct hdr *h, void (*fn)(void *ctx, const char *msg), void *ctx)
{
    struct lc c = {0};
    uint64_t total = 0;
    for (size_t i = 0; i < h->n; i++) {
        total += h->e[i].length;
        if (h->e[i].build != HDR_ZERO && h->e[i].length)
            lc_mapping(h, i, &c);
    }
    if (h->meta.size % HDR_PAGE && total != h->meta.size)
        lc_add(&c, LC_SIZE, "Size %llu is not a multiple of 4096 and the mappings add up to %llu: the "
               "reference's loader wants them to add up to Size exactly, which 4096-aligned lengths "
               "cannot", ULL(h->meta.size), ULL(total));
    if (h->flags & HDR_FLAG_INCOMPLETE)
        lc_add(&c, LC_INCOMPLETE, "flags bit 0 (upload not finished) is set: only a peer serves such a "
               "header; a stored one is refused");
    if (h->flags & ~HDR_FLAG_INCOMPLETE)
        lc_add(&c, LC_FLAGS, "flags 0x%02x: bits other than bit 0 are not defined", h->flags);
    for (uint32_t i = 0; i < h->nbuilds; i++) {
        const struct hdr_build *b = &h->builds[i];
        const struct hdr_frame *f = hdr_build_frames(h, b);
        char u[37];
        snap_uuid_format(&b->id, u);
        for (uint32_t k = 0; b->file_size > 0 && k < b->nframes; k++)
            if ((uint64_t)f[k].start_u + (uint64_t)f[k].size_u > (uint64_t)b->file_size)
                lc_add(&c, LC_FRAME_PAST, "build %s: frame %u ends at %lld, past its uncompressedFileSize "
                       "%lld", u, k, (long long)(f[k].start_u + f[k].size_u), (long long)b->file_size);
    }
    int n = 0;
    for (int r = 0; r < LC_N; r++) {
        if (!c.count[r])
            continue;
        char msg[400];
        if (c.count[r] > 1)
            snprintf(msg, sizeof msg, "%s (and %llu more like it)", c.first[r], ULL(c.count[r] - 1));
        else
            snprintf(msg, sizeof msg, "%s", c.first[r]);
        if (fn)
            fn(ctx, msg);
        n++;
    }
    return n;
}
