/* fuzz-trace.c -- libFuzzer target for trace_parse (lib/device/trace.c): a prefetch trace or a
 * metadata.json from outside parses or fails cleanly (SNAP_EFORMAT, SNAP_ENOTFOUND,
 * SNAP_ETOOBIG, never a crash); a parsed trace holds what the prefetch relies on (one access
 * type per index, a valid block size, indices whose byte offsets cannot overflow), writes back
 * as JSON that parses to the same trace, and merges with itself to itself. */
#include "base/err.h"
#include "device/trace.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_same(const struct trace *a, const struct trace *b)
{
    if (a->n != b->n || a->block_size != b->block_size || memcmp(a->idx, b->idx, a->n * sizeof *a->idx) ||
        memcmp(a->type, b->type, a->n))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const kinds[] = {NULL, "rootfs", "memory"};
    for (size_t k = 0; k < 3; k++) {
        struct trace t;
        int err = trace_parse(data, size, kinds[k], &t);
        if (err) {
            if ((err != SNAP_EFORMAT && err != SNAP_ENOTFOUND && err != SNAP_ETOOBIG) || t.idx || t.n)
                abort();
            continue;
        }
        if (t.block_size < 512 || t.block_size > TRACE_BLOCK_MAX || (t.block_size & (t.block_size - 1)))
            abort();
        for (size_t i = 0; i < t.n; i++)
            if (t.type[i] < TRACE_READ || t.type[i] > TRACE_PREFETCH || t.idx[i] > UINT64_MAX / TRACE_BLOCK_MAX)
                abort();
        char *mem = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&mem, &len);
        if (f) {
            trace_write_json(&t, f);
            fclose(f);
            struct trace back;
            if (len <= (1u << 20)) {
                if (trace_parse(mem, len, NULL, &back) != 0)
                    abort();
                check_same(&t, &back);
                trace_free(&back);
            }
            free(mem);
        }
        struct trace m;
        if (trace_merge(&t, &t, &m) == 0) {
            check_same(&t, &m);
            trace_free(&m);
        }
        trace_free(&t);
    }
    return 0;
}
