/* device.c -- extents lists, opening a device by kind, and the answer to a build's export
 * (see device.h). */
#include "device/device.h"

#include "base/err.h"
#include "codec/json.h"
#include "base/mem.h"
#include "chunker/chunker.h"
#include "device/builddev.h"
#include "device/filedev.h"
#include "device/objdev.h"
#include "header/header.h"
#include "codec/jsonr.h"
#include "store/chunkcache.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool dev_extents_add(struct dev_extents *x, uint32_t length, uint32_t flags)
{
    if (length == 0)
        return x->n < x->cap;
    if (x->n > 0 && x->e[x->n - 1].flags == flags && x->e[x->n - 1].length <= UINT32_MAX - length) {
        x->e[x->n - 1].length += length;
        return true;
    }
    if (x->n >= x->cap)
        return false;
    x->e[x->n].length = length;
    x->e[x->n].flags = flags;
    x->n++;
    return x->n < x->cap;
}

bool dev_extents_append(struct dev_extents *x, uint64_t off, uint64_t len, bool zero)
{
    (void)off; /* the list is contiguous from its start */
    return dev_extents_add(x, (uint32_t)len, zero ? DEV_STATE_HOLE | DEV_STATE_ZERO : 0);
}

/* ---- opening by kind ------------------------------------------------------------------------ */

static int open_file(const struct device_opts *o, struct device *d)
{
    struct filedev *f;
    int err = filedev_open(o->path, o->read_only, &f);
    if (err)
        return err;
    *d = (struct device){.ops = &filedev_ops, .ctx = f, .size = filedev_size(f), .min_block = 1};
    return 0;
}

static int open_object(const struct device_opts *o, struct device *d)
{
    struct objdev *ob;
    int err = objdev_open_store(o->store, o->key, o->cache_dir, &ob); /* owns the store */
    if (err)
        return err;
    *d = (struct device){.ops = &objdev_ops, .ctx = ob, .size = objdev_size(ob), .min_block = 4096,
                         .store = o->store};
    return 0;
}

/* The build's header: read (through the store with a key, else from its URL), parsed, checked. */
static int load_header(const struct device_opts *o, struct hdr **h)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int err = o->key ? store_read_all(o->store, o->key, HDR_FILE_MAX, &buf, &len)
                     : store_read_object(o->path, HDR_FILE_MAX, &buf, &len);
    const char *name = o->name ? o->name : o->path;
    if (!err && (err = hdr_parse(buf, len, h)) != 0)
        snap_fail_ctx(err, "%s", name);
    snap_free(buf);
    if (!err && (err = hdr_check(*h)) != 0) {
        snap_fail_ctx(err, "%s", name);
        hdr_free(*h);
        *h = NULL;
    }
    return err;
}

static void set_build(struct device *d, struct builddev *b, struct store *s)
{
    *d = (struct device){.ops = &builddev_ops, .ctx = b, .size = builddev_size(b), .min_block = 4096,
                         .store = s, .build = b, .file = d->file};
}

static int open_build(const struct device_opts *o, struct device *d)
{
    struct hdr *h = NULL;
    int err = load_header(o, &h);
    if (err) {
        store_close(o->store);
        return err;
    }
    struct builddev_opts bo = {.file = d->file, .cache_dir = o->cache_dir, .header_format = o->header_format};
    struct builddev *b;
    if ((err = builddev_open(h, o->store, &bo, &b)) != 0) /* owns h and the store */
        return err;
    set_build(d, b, o->store);
    return 0;
}

static int open_empty(const struct device_opts *o, struct device *d)
{
    struct builddev_opts bo = {.file = d->file, .cache_dir = o->cache_dir, .header_format = o->header_format};
    struct builddev *b;
    int err = builddev_open_empty(o->size, &bo, &b);
    if (err)
        return err;
    set_build(d, b, NULL);
    return 0;
}

int device_open(const struct device_opts *o, struct device **out)
{
    bool build = o->kind == DEVICE_BUILD || o->kind == DEVICE_EMPTY;
    const char *file = !build ? "" : o->file ? o->file : "rootfs.ext4";
    struct device *d = snap_calloc(1, sizeof *d + strlen(file) + 1);
    if (!d) {
        store_close(o->store);
        return snap_fail(SNAP_ENOMEM, "out of memory");
    }
    char *name = (char *)(d + 1); /* the file name lives with the device */
    memcpy(name, file, strlen(file) + 1);
    d->file = build ? name : NULL;
    int err;
    switch (o->kind) {
    case DEVICE_FILE: err = open_file(o, d); break;
    case DEVICE_OBJECT: err = open_object(o, d); break;
    case DEVICE_BUILD: err = open_build(o, d); break;
    case DEVICE_EMPTY: err = open_empty(o, d); break;
    default:
        store_close(o->store);
        err = snap_fail(SNAP_EUSAGE, "device kind %d: no such kind", (int)o->kind);
    }
    if (err) {
        snap_free(d);
        return err;
    }
    d->kind = o->kind;
    *out = d;
    return 0;
}

void device_close(struct device *d)
{
    if (!d)
        return;
    if (d->build)
        builddev_close(d->build);
    else if (d->kind == DEVICE_OBJECT)
        objdev_close(d->ctx);
    else
        filedev_close(d->ctx);
    snap_free(d);
}

void device_stats(struct device *d, struct device_stats *out)
{
    *out = (struct device_stats){0};
    if (d->build) {
        struct builddev_stats b;
        builddev_stats(d->build, &b);
        *out = (struct device_stats){.cache_hits = b.hits, .fetch_waits = b.waits, .store_reads = b.store_reads,
                                     .store_bytes = b.bytes_fetched, .fetch_errors = b.fetch_errors};
    } else if (d->kind == DEVICE_OBJECT) {
        struct chunker_stats c;
        objdev_stats(d->ctx, &c);
        *out = (struct device_stats){.cache_hits = c.hits, .fetch_waits = c.waits, .store_reads = c.store_reads,
                                     .store_bytes = c.bytes_fetched, .fetch_errors = c.fetch_errors};
    }
    struct chunkcache_stats cc;
    store_chunkcache_stats(d->store, &cc);
    out->chunk_cache_hits = cc.hits;
}

int device_export(struct device *d, const char *dir, struct builddev_export *r)
{
    if (!d->build)
        return snap_fail(SNAP_EUSAGE, "only a build device exports its changes (serve a build's header, or "
                         "an empty build)");
    return builddev_export(d->build, dir, r);
}

/* ---- the export's answer -------------------------------------------------------------------- */

static void export_fields(struct json *j, const struct builddev_export *r)
{
    char u[SNAP_UUID_STRLEN + 1];
    json_kv_bool(j, "changed", r->changed);
    json_key(j, "parent_build_id");
    if (snap_uuid_is_zero(&r->parent_id)) {
        json_null(j);
    } else {
        snap_uuid_format(&r->parent_id, u);
        json_str(j, u);
    }
    if (!r->changed)
        return;
    snap_uuid_format(&r->build_id, u);
    json_kv_str(j, "build_id", u);
    json_kv_u64(j, "generation", r->generation);
    json_kv_u64(j, "format", r->format);
    json_kv_u64(j, "diff_bytes", r->diff_bytes);
    json_kv_u64(j, "dirty_runs", r->dirty_runs);
    json_kv_u64(j, "zero_runs", r->zero_runs);
    json_kv_str(j, "data", r->data_path);
    json_kv_str(j, "header", r->header_path);
}

size_t device_export_json(int err, const struct builddev_export *r, char *out, size_t cap)
{
    static const char too_long[] = "{\"ok\":false,\"error\":\"export answer too long\",\"exit\":1}\n";
    char *mem = NULL;
    size_t mlen = 0;
    FILE *f = open_memstream(&mem, &mlen);
    if (f) {
        struct json j;
        json_init(&j, f);
        json_obj_begin(&j);
        json_kv_bool(&j, "ok", !err);
        if (err) {
            json_kv_str(&j, "error", snap_errmsg(err));
            json_key(&j, "exit");
            json_i64(&j, snap_exit_code(err));
        } else {
            export_fields(&j, r);
        }
        json_obj_end(&j);
        json_finish(&j);
        fclose(f);
    }
    size_t n = mem && mlen < cap ? mlen : 0;
    if (n)
        memcpy(out, mem, mlen + 1);
    else if (cap)
        n = (size_t)snprintf(out, cap, "%s", mem ? too_long : "{\"ok\":false,\"error\":\"out of memory\",\"exit\":1}\n");
    free(mem); /* open_memstream's buffer comes from libc's malloc */
    return n < cap ? n : (cap ? cap - 1 : 0);
}

/* The string member key of v into out[cap] ("" when missing or not a string). */
static void get_str(const struct jsonr_value *v, const char *key, char *out, size_t cap)
{
    const char *s = NULL;
    size_t n = 0;
    out[0] = '\0';
    if (jsonr_get_str(v, key, &s, &n) == 0 && s)
        snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
}

int device_export_answer_parse(const char *line, size_t len, struct device_export_answer *out)
{
    struct jsonr_doc *doc;
    memset(out, 0, sizeof *out);
    int err = jsonr_parse(line, len, &doc);
    if (err)
        return err;
    const struct jsonr_value *v = jsonr_root(doc);
    int64_t code = 1;
    jsonr_get_bool(v, "ok", &out->ok);
    jsonr_get_bool(v, "changed", &out->changed);
    jsonr_get_i64(v, "exit", &code);
    out->exit_code = code > 0 && code < 256 ? (int)code : 1;
    jsonr_get_i64(v, "generation", &out->generation);
    jsonr_get_i64(v, "diff_bytes", &out->diff_bytes);
    get_str(v, "error", out->error, sizeof out->error);
    get_str(v, "build_id", out->build_id, sizeof out->build_id);
    get_str(v, "parent_build_id", out->parent_build_id, sizeof out->parent_build_id);
    get_str(v, "data", out->data, sizeof out->data);
    get_str(v, "header", out->header, sizeof out->header);
    jsonr_free(doc);
    return 0;
}
