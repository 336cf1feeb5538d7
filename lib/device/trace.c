/* trace.c -- access traces: the recorder, the reference's JSON shape (read and written), merge.
 *
 * Recorder.  `seen` has one bit per block and `order` one 64-bit slot per block, both allocated
 * at open (calloc: pages never touched cost no memory).  The first access of a block sets its bit
 * (atomic OR: exactly one thread sees the bit go from 0 to 1), takes the next slot (atomic add)
 * and stores (block << 2 | type) there with release order; 0 marks a slot taken but not yet
 * written, which a snapshot skips.  A block already seen costs one relaxed load.
 */
#include "device/trace.h"

#include "base/err.h"
#include "base/io.h"
#include "codec/json.h"
#include "base/mem.h"
#include "codec/jsonr.h"
#include "store/store.h"

#include <limits.h>

#include <stdlib.h>
#include <string.h>

struct trace_rec {
    uint64_t nblocks;
    uint32_t bs;
    _Atomic uint64_t *seen;
    _Atomic uint64_t *order;
    _Atomic uint64_t count;
};

void trace_free(struct trace *t)
{
    if (!t)
        return;
    snap_free(t->idx);
    snap_free(t->type);
    memset(t, 0, sizeof *t);
}

const char *trace_kind_for_file(const char *file)
{
    return file && strncmp(file, "memfile", 7) == 0 ? "memory" : "rootfs";
}

static int trace_alloc(struct trace *t, size_t n, uint32_t bs)
{
    memset(t, 0, sizeof *t);
    t->block_size = bs;
    t->idx = snap_calloc(n ? n : 1, sizeof *t->idx);
    t->type = snap_calloc(n ? n : 1, 1);
    if (!t->idx || !t->type) {
        trace_free(t);
        return snap_fail(SNAP_ENOMEM, "trace of %zu blocks: out of memory", n);
    }
    return 0;
}

/* ---- parse ---------------------------------------------------------------------------------- */

static int parse_type(const struct jsonr_value *v, size_t i, uint8_t *out)
{
    size_t len;
    const char *s = jsonr_str(v, &len);
    if (!s || len != 1 || (s[0] != 'r' && s[0] != 'w' && s[0] != 'p'))
        return snap_fail(SNAP_EFORMAT, "trace: access_types[%zu] is not \"r\", \"w\" or \"p\"", i);
    *out = s[0] == 'r' ? TRACE_READ : s[0] == 'w' ? TRACE_WRITE : TRACE_PREFETCH;
    return 0;
}

/* A bare trace object. */
static int parse_object(const struct jsonr_value *o, struct trace *out)
{
    const struct jsonr_value *idx = jsonr_member(o, "indices"), *types = jsonr_member(o, "access_types");
    int64_t bs;
    int err = jsonr_get_i64(o, "block_size", &bs);
    if (err)
        return snap_fail_ctx(err, "trace");
    if (bs < 512 || bs > TRACE_BLOCK_MAX || (bs & (bs - 1)))
        return snap_fail(SNAP_EFORMAT, "trace: block_size %lld is not a power of two from 512 to %u",
                         (long long)bs, TRACE_BLOCK_MAX);
    if (!idx || !types || jsonr_type(idx) != JSONR_ARRAY || jsonr_type(types) != JSONR_ARRAY)
        return snap_fail(SNAP_EFORMAT, "trace: \"indices\" and \"access_types\" must be arrays");
    size_t n = jsonr_count(idx);
    if (jsonr_count(types) != n)
        return snap_fail(SNAP_EFORMAT, "trace: %zu indices but %zu access types", n, jsonr_count(types));
    if ((err = trace_alloc(out, n, (uint32_t)bs)) != 0)
        return err;
    const struct jsonr_value *a = jsonr_first(idx), *b = jsonr_first(types);
    for (size_t i = 0; i < n; i++, a = jsonr_next(a), b = jsonr_next(b)) {
        int64_t v;
        if (!jsonr_i64(a, &v) || v < 0 || (uint64_t)v > UINT64_MAX / TRACE_BLOCK_MAX) {
            trace_free(out);
            return snap_fail(SNAP_EFORMAT, "trace: indices[%zu] is not a block index (an integer >= 0)", i);
        }
        out->idx[i] = (uint64_t)v;
        if ((err = parse_type(b, i, &out->type[i])) != 0) {
            trace_free(out);
            return err;
        }
    }
    out->n = n;
    return 0;
}

int trace_parse(const void *buf, size_t len, const char *kind, struct trace *out)
{
    memset(out, 0, sizeof *out);
    struct jsonr_doc *doc;
    int err = jsonr_parse(buf, len, &doc);
    if (err)
        return snap_fail_ctx(err, "trace");
    const struct jsonr_value *root = jsonr_root(doc), *o = root;
    if (jsonr_type(root) != JSONR_OBJECT) {
        err = snap_fail(SNAP_EFORMAT, "trace: expected a JSON object, found %s", jsonr_type_name(jsonr_type(root)));
    } else if (!jsonr_member(root, "indices")) {
        /* metadata.json: prefetch.{kind}, or its only trace */
        const struct jsonr_value *p = jsonr_member(root, "prefetch");
        if (!p || jsonr_type(p) == JSONR_NULL)
            err = snap_fail(SNAP_ENOTFOUND, "no prefetch trace (neither \"indices\" nor \"prefetch\")");
        else if (jsonr_type(p) != JSONR_OBJECT)
            err = snap_fail(SNAP_EFORMAT, "\"prefetch\" is a %s, expected an object", jsonr_type_name(jsonr_type(p)));
        else if (kind)
            o = jsonr_member(p, kind);
        else
            o = jsonr_count(p) == 1 ? jsonr_first(p) : NULL;
        if (!err && (!o || jsonr_type(o) == JSONR_NULL))
            err = snap_fail(SNAP_ENOTFOUND, "no prefetch trace \"%s\" in \"prefetch\"", kind ? kind : "(only one)");
        else if (!err && jsonr_type(o) != JSONR_OBJECT)
            err = snap_fail(SNAP_EFORMAT, "prefetch trace: expected an object");
    }
    if (!err)
        err = parse_object(o, out);
    jsonr_free(doc);
    return err;
}

int trace_load_build(struct store *s, const char *build_id, const char *kind, struct trace *out)
{
    char key[256];
    uint8_t *buf = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    if ((size_t)snprintf(key, sizeof key, "%s/metadata.json", build_id) >= sizeof key)
        return snap_fail(SNAP_EUSAGE, "build id %s is too long", build_id);
    int err = store_read_all(s, key, JSONR_MAX_INPUT, &buf, &len);
    if (!err)
        err = trace_parse(buf, len, kind, out);
    snap_free(buf);
    return err ? snap_fail_ctx(err, "%s/%s", s->url, key) : 0;
}

int trace_load_file(const char *path, const char *kind, struct trace *out)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    int err = snap_read_file(path, JSONR_MAX_INPUT, &buf, &len);
    if (!err && (err = trace_parse(buf, len, kind, out)) != 0)
        snap_fail_ctx(err, "%s", path);
    snap_free(buf);
    return err;
}

/* ---- write ---------------------------------------------------------------------------------- */

static void write_object(struct json *j, const struct trace *t)
{
    static const char *const names[] = {"r", "r", "w", "p"};
    json_obj_begin(j);
    json_key(j, "indices");
    json_arr_begin(j);
    for (size_t i = 0; i < t->n; i++)
        json_u64(j, t->idx[i]);
    json_arr_end(j);
    json_key(j, "access_types");
    json_arr_begin(j);
    for (size_t i = 0; i < t->n; i++)
        json_str(j, names[t->type[i] & 3]);
    json_arr_end(j);
    json_key(j, "block_size");
    json_u64(j, t->block_size);
    json_obj_end(j);
}

void trace_write_json(const struct trace *t, FILE *f)
{
    struct json j;
    json_init(&j, f);
    write_object(&j, t);
    json_finish(&j);
}

/* t as a bare object (kind NULL) or as metadata.json, into path atomically. */
static int write_atomic(const struct trace *t, const char *kind, const char *path)
{
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    if (!f)
        return snap_fail(SNAP_ENOMEM, "%s: out of memory", path);
    struct json j;
    json_init(&j, f);
    if (kind) {
        json_obj_begin(&j);
        json_key(&j, "version");
        json_u64(&j, 2);
        json_key(&j, "prefetch");
        json_obj_begin(&j);
        json_key(&j, kind);
    }
    write_object(&j, t);
    if (kind) {
        json_obj_end(&j);
        json_obj_end(&j);
    }
    json_finish(&j);
    int err = fclose(f) != 0 || !mem ? snap_fail(SNAP_ENOMEM, "%s: out of memory", path)
                                    : snap_write_file_atomic(path, mem, len, 0644);
    free(mem); /* open_memstream's buffer comes from libc's malloc */
    return err;
}

int trace_write_file(const struct trace *t, const char *path) { return write_atomic(t, NULL, path); }

int trace_write_metadata(const struct trace *t, const char *kind, const char *path)
{
    return write_atomic(t, kind, path);
}

int trace_export_beside(const struct trace *t, const char *data_path)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    const char *slash = strrchr(data_path, '/');
    size_t dl = slash ? (size_t)(slash - data_path) : 0;
    if (!slash || dl >= sizeof dir)
        return snap_fail(SNAP_EUSAGE, "%s: not a path inside a build directory", data_path);
    memcpy(dir, data_path, dl);
    dir[dl] = '\0';
    snprintf(path, sizeof path, "%s/metadata.json", dir);
    return trace_write_metadata(t, trace_kind_for_file(slash + 1), path);
}

/* ---- merge ---------------------------------------------------------------------------------- */

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

int trace_merge(const struct trace *a, const struct trace *b, struct trace *out)
{
    if (a->block_size != b->block_size)
        return snap_fail(SNAP_EUSAGE, "traces of %u-byte and %u-byte blocks cannot be merged", a->block_size,
                         b->block_size);
    uint64_t *sorted = snap_calloc(b->n ? b->n : 1, sizeof *sorted);
    int err = sorted ? trace_alloc(out, a->n, a->block_size) : snap_fail(SNAP_ENOMEM, "merge: out of memory");
    if (err) {
        snap_free(sorted);
        return err;
    }
    memcpy(sorted, b->idx, b->n * sizeof *sorted);
    qsort(sorted, b->n, sizeof *sorted, cmp_u64);
    for (size_t i = 0; i < a->n; i++)
        if (bsearch(&a->idx[i], sorted, b->n, sizeof *sorted, cmp_u64)) {
            out->idx[out->n] = a->idx[i];
            out->type[out->n++] = a->type[i];
        }
    snap_free(sorted);
    return 0;
}

/* ---- the recorder ----------------------------------------------------------------------------- */

int trace_rec_new(uint64_t size, uint32_t block_size, struct trace_rec **out)
{
    if (block_size < 512 || block_size > TRACE_BLOCK_MAX || (block_size & (block_size - 1)))
        return snap_fail(SNAP_EUSAGE, "trace: block size %u is not a power of two from 512 to %u", block_size,
                         TRACE_BLOCK_MAX);
    struct trace_rec *r = snap_calloc(1, sizeof *r);
    if (!r)
        return snap_fail(SNAP_ENOMEM, "trace recorder: out of memory");
    r->bs = block_size;
    r->nblocks = (size + block_size - 1) / block_size;
    r->seen = snap_calloc((size_t)(r->nblocks + 63) / 64 + 1, sizeof *r->seen);
    r->order = snap_calloc((size_t)r->nblocks + 1, sizeof *r->order);
    if (!r->seen || !r->order) {
        trace_rec_free(r);
        return snap_fail(SNAP_ENOMEM, "trace recorder for %llu blocks: out of memory",
                         (unsigned long long)r->nblocks);
    }
    *out = r;
    return 0;
}

void trace_rec_free(struct trace_rec *r)
{
    if (!r)
        return;
    snap_free((void *)r->seen);
    snap_free((void *)r->order);
    snap_free(r);
}

uint32_t trace_rec_block_size(const struct trace_rec *r) { return r->bs; }
uint64_t trace_rec_blocks(const struct trace_rec *r) { return r->nblocks; }
uint64_t trace_rec_count(const struct trace_rec *r)
{
    return atomic_load_explicit(&((struct trace_rec *)r)->count, memory_order_relaxed);
}

bool trace_rec_seen(const struct trace_rec *r, uint64_t b)
{
    return b < r->nblocks &&
           (atomic_load_explicit(&r->seen[b / 64], memory_order_relaxed) >> (b % 64) & 1);
}

bool trace_rec_touch(struct trace_rec *r, uint64_t b, enum trace_access a)
{
    if (b >= r->nblocks)
        return false;
    uint64_t m = (uint64_t)1 << (b % 64);
    if (atomic_load_explicit(&r->seen[b / 64], memory_order_relaxed) & m)
        return false;
    if (atomic_fetch_or_explicit(&r->seen[b / 64], m, memory_order_relaxed) & m)
        return false;
    uint64_t slot = atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed);
    atomic_store_explicit(&r->order[slot], b << 2 | (uint64_t)a, memory_order_release);
    return true;
}

int trace_rec_snapshot(struct trace_rec *r, struct trace *out)
{
    uint64_t n = atomic_load_explicit(&r->count, memory_order_acquire);
    int err = trace_alloc(out, (size_t)n, r->bs);
    if (err)
        return err;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = atomic_load_explicit(&r->order[i], memory_order_acquire);
        if (!v)
            continue; /* taken, not written yet */
        out->idx[out->n] = v >> 2;
        out->type[out->n++] = (uint8_t)(v & 3);
    }
    return 0;
}
