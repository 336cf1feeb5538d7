/* summary.c -- what inspect-header reports about a header, computed where tests reach it: bytes
 * per build, a build's sha256 as hex, and conversion to another version checked by reading
 * the output back. */
#include "header/header.h"

#include "base/err.h"
#include "base/mem.h"

int hdr_totals_compute(const struct hdr *h, struct hdr_totals *t)
{
    t->per_build = snap_calloc((size_t)h->nids + 1, sizeof *t->per_build);
    if (!t->per_build)
        return snap_fail(SNAP_ENOMEM, "cannot allocate the per-build totals");
    t->zero = t->mapped = 0;
    for (size_t i = 0; i < h->n; i++) {
        const struct hdr_entry *e = &h->e[i];
        if (e->build == HDR_ZERO)
            t->zero += e->length;
        else
            t->per_build[e->build] += e->length;
        t->mapped += e->length;
    }
    return 0;
}

void hdr_totals_free(struct hdr_totals *t)
{
    snap_free(t->per_build);
    t->per_build = NULL;
}

bool hdr_build_sha256_hex(const struct hdr_build *b, char hex[65])
{
    for (int i = 0; i < 32; i++)
        if (b->sha256[i]) {
            snap_hex(b->sha256, 32, hex);
            return true;
        }
    hex[0] = '\0';
    return false;
}

int hdr_convert(const struct hdr *h, unsigned format, uint8_t **out, size_t *outlen)
{
    uint8_t *buf = NULL;
    size_t len;
    int err = hdr_serialize(h, format, &buf, &len);
    if (err)
        return snap_fail_ctx(err, "cannot write as v%u", format);
    /* Read our own output back before anyone stores it. */
    struct hdr *back = NULL;
    err = hdr_parse(buf, len, &back);
    if (err)
        snap_fail_ctx(err, "reading the v%u output back", format);
    else if (!hdr_same_contents(h, back))
        err = snap_fail(SNAP_EINTERNAL, "the v%u output does not read back as the same mapping", format);
    hdr_free(back);
    if (err) {
        snap_free(buf);
        return err;
    }
    *out = buf;
    *outlen = len;
    return 0;
}
