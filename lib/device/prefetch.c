/* prefetch.c -- which trace to prefetch or merge with, and the trace to write (see prefetch.h). */
#include "device/prefetch.h"

#include "base/err.h"
#include "base/util.h"
#include "device/access.h"
#include "header/header.h"

#include <string.h>

bool prefetch_spec_is_auto(const char *spec)
{
    return strcmp(spec, "auto") == 0;
}

int prefetch_trace_load(const char *spec, struct store *s, const struct hdr *header, const char *file,
                        struct trace *out)
{
    const char *kind = file ? trace_kind_for_file(file) : NULL;
    memset(out, 0, sizeof *out);
    if (!prefetch_spec_is_auto(spec))
        return trace_load_file(spec, kind, out);
    if (!s || !header)
        return snap_fail(SNAP_EUSAGE, "auto reads the build's metadata.json: it goes with --header "
                                      "(give a trace file otherwise)");
    char id[SNAP_UUID_STRLEN + 1];
    snap_uuid_format(&header->meta.build_id, id);
    return trace_load_build(s, id, kind, out);
}

uint32_t prefetch_block_size(const struct hdr *header)
{
    if (header && header->meta.block_size >= 512 && header->meta.block_size <= TRACE_BLOCK_MAX)
        return (uint32_t)header->meta.block_size;
    return 4096;
}

int prefetch_written_trace(struct access *a, const struct trace *merge, struct trace *out)
{
    struct trace t;
    int err = access_trace(a, &t);
    if (err || !merge) {
        *out = t;
        return err;
    }
    err = trace_merge(&t, merge, out);
    trace_free(&t);
    return err;
}
