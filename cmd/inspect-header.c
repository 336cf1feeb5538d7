/* inspect-header.c -- `snapctl inspect-header`: print, check, convert a snapshot header and
 * look up a device offset in it. */
#include "cli.h"

#include "base/err.h"
#include "base/io.h"
#include "codec/json.h"
#include "base/mem.h"
#include "base/util.h"
#include "header/header.h"
#include "net/url.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: snapctl inspect-header [OPTIONS] FILE\n"
    "\n"
    "Print a snapshot header of any version (1 to 5): its metadata, the builds section\n"
    "(file sizes, checksums, compression: frame count, uncompressed and compressed bytes,\n"
    "ratio), the mapping table (device range -> build and\n"
    "storage range) and how many bytes each build provides.\n"
    "\n"
    "FILE is a local path or a store URL: file:///dir/{id}/memfile.header,\n"
    "https://host/path/rootfs.ext4.header, peer-served builds over http://, ...\n"
    "\n"
    "Options:\n"
    "  --json             print as one JSON object, for scripts\n"
    "  --summary          leave out the mapping table (large headers)\n"
    "  --frames           also list each compressed build's frame table: uncompressed and\n"
    "                     compressed range and ratio of every frame (JSON: frame_table)\n"
    "  --check            check that the mapping covers [0, Size) contiguously with aligned,\n"
    "                     non-empty entries; on failure exit 3 naming the first hole,\n"
    "                     overlap or misalignment with its offsets; also what the\n"
    "                     reference's loader refuses (a Size not a multiple of 4096 that the\n"
    "                     mappings do not add up to, the \"upload not finished\" flag, a\n"
    "                     mapping past its build's size or outside its frame table, ...)\n"
    "  --lookup OFFSET    where device OFFSET lives: build, storage offset in that build's\n"
    "                     diff object, bytes left in the entry (4096, 4K, 2M, 0x1000)\n"
    "  --convert V OUT    write the header as version V (v3, v4 or v5) to OUT, atomically;\n"
    "                     refused for a header that fails --check unless --force\n"
    "  --force            convert even a header that fails --check\n"
    "  -h, --help         show this help\n"
    "\n"
    CLI_PEER_USAGE
    "\n"
    CLI_CHUNK_CACHE_USAGE
    "  (FILE a store URL: the header is read through the cache)\n"
    "\n"
    "With --check, --lookup or --convert only their results are printed; they run in that\n"
    "order and the first failure ends the run.\n"
    "\n"
    "A v1..v3 header has no builds section; converting it to v4 or v5 synthesizes one:\n"
    "each referenced build with file size = the end of the highest byte the mapping uses\n"
    "in it (a lower bound), sha256 unknown (all zero), no compression.  v5 stores no zero\n"
    "entries: holes and zero entries both come back as zeros.\n"
    "\n"
    "Exit status: 0 ok, 2 bad usage, 3 malformed header or --check failed (or OFFSET past\n"
    "the size), 4 FILE not found (or OFFSET in a hole), 5 I/O error.\n";

struct opts {
    bool json, summary, check, force, frames;
    const char *lookup;
    unsigned convert;
    const char *out;
    const char *path;
    struct cli_store_opts so;
};

static const char *hint_for(int err)
{
    switch (err) {
    case SNAP_EFORMAT:
        return "the file is not a valid snapshot header (see docs/header.md); is it truncated, "
               "or a data object rather than its .header?";
    case SNAP_ETOOBIG:
        return "the header exceeds a limit of the format (see docs/header.md)";
    case SNAP_ECHECK:
        return "the mapping does not describe the whole device; the build that wrote it is "
               "broken and must not be served";
    default:
        return NULL;
    }
}

static void print_frames_text(const struct hdr *h)
{
    char u[SNAP_UUID_STRLEN + 1];
    for (uint32_t i = 0; i < h->nbuilds; i++) {
        const struct hdr_build *b = &h->builds[i];
        const struct hdr_frame *f = hdr_build_frames(h, b);
        if (!b->nframes)
            continue;
        snap_uuid_format(&b->id, u);
        printf("\nFrames of %s (%s, %u):\n", u, hdr_comp_name(b->comp), b->nframes);
        printf("  %8s  %-34s  %-34s  %s\n", "#", "uncompressed range", "compressed range", "ratio");
        for (uint32_t k = 0; k < b->nframes; k++) {
            char ur[40], cr[40];
            snprintf(ur, sizeof ur, "[%" PRId64 ", %" PRId64 ")", f[k].start_u, f[k].start_u + f[k].size_u);
            snprintf(cr, sizeof cr, "[%" PRId64 ", %" PRId64 ")", f[k].start_c, f[k].start_c + f[k].size_c);
            printf("  %8u  %-34s  %-34s  %.2f\n", k, ur, cr, (double)f[k].size_u / (double)f[k].size_c);
        }
    }
}

/* ---- text ---------------------------------------------------------------------------------- */

static void print_text(const struct opts *o, const struct hdr *h, size_t filelen,
                       const struct hdr_totals *t, int check_err)
{
    char u[SNAP_UUID_STRLEN + 1], sz[32];
    printf("%s: header v%u, %zu bytes\n", o->path, h->format, filelen);
    printf("  Version      %" PRIu64 " (format %u)\n", h->meta.version, h->format);
    printf("  BlockSize    %" PRIu64 "\n", h->meta.block_size);
    printf("  Size         %" PRIu64 " (%s)\n", h->meta.size, snap_fmt_size(h->meta.size, sz, sizeof sz));
    printf("  Generation   %" PRIu64 "\n", h->meta.generation);
    snap_uuid_format(&h->meta.build_id, u);
    printf("  BuildId      %s\n", u);
    snap_uuid_format(&h->meta.base_build_id, u);
    printf("  BaseBuildId  %s\n", u);
    if (h->format >= 4)
        printf("  Flags        0x%02x%s\n", h->flags,
               h->flags & HDR_FLAG_INCOMPLETE ? " (upload not finished)" : "");
    printf("  Check        %s\n", check_err ? snap_errmsg(check_err) : "ok: covers [0, Size)");

    if (!h->has_builds) {
        printf("\nBuilds: no builds section (v%u)\n", h->format);
    } else {
        printf("\nBuilds: %u\n", h->nbuilds);
        printf("  %-36s  %14s  %-11s  %-64s  %s\n", "build", "file size", "compression",
               "sha256", "frames");
        for (uint32_t i = 0; i < h->nbuilds; i++) {
            const struct hdr_build *b = &h->builds[i];
            char hex[65];
            struct hdr_frames_sum fs;
            snap_uuid_format(&b->id, u);
            if (!hdr_build_sha256_hex(b, hex))
                snprintf(hex, sizeof hex, "(unknown)");
            printf("  %-36s  %14" PRId64 "  %-11s  %-64s  ", u, b->file_size, hdr_comp_name(b->comp), hex);
            hdr_frames_summary(h, b, &fs);
            if (b->nframes)
                printf("%u: uncompressed [%" PRIu64 ", %" PRIu64 "), %" PRIu64 " bytes -> %" PRIu64
                       " bytes compressed, ratio %.2f\n", fs.nframes, fs.u_start, fs.u_end, fs.bytes_u,
                       fs.bytes_c, fs.ratio);
            else
                printf("0\n");
        }
        if (o->frames)
            print_frames_text(h);
    }

    if (!o->summary) {
        printf("\nMapping: %zu entries\n", h->n);
        printf("  %8s  %-30s  %14s  %-36s  %s\n", "#", "device range", "length", "build",
               "storage range");
        for (size_t i = 0; i < h->n; i++) {
            const struct hdr_entry *e = &h->e[i];
            char range[40];
            snprintf(range, sizeof range, "[0x%" PRIx64 ", 0x%" PRIx64 ")", e->offset,
                     e->offset + e->length);
            if (e->build == HDR_ZERO) {
                printf("  %8zu  %-30s  %14" PRIu64 "  %-36s  -\n", i, range, e->length, "(zeros)");
            } else {
                snap_uuid_format(hdr_entry_build(h, e), u);
                printf("  %8zu  %-30s  %14" PRIu64 "  %-36s  [0x%" PRIx64 ", 0x%" PRIx64 ")\n", i,
                       range, e->length, u, e->storage, e->storage + e->length);
            }
        }
    } else {
        printf("\nMapping: %zu entries (table left out: --summary)\n", h->n);
    }

    printf("\nTotals:\n");
    for (uint32_t i = 0; i < h->nids; i++) {
        if (!t->per_build[i])
            continue;
        snap_uuid_format(&h->ids[i], u);
        printf("  %-36s  %14" PRIu64 " bytes (%s)\n", u, t->per_build[i],
               snap_fmt_size(t->per_build[i], sz, sizeof sz));
    }
    printf("  %-36s  %14" PRIu64 " bytes (%s)\n", "(zeros)", t->zero, snap_fmt_size(t->zero, sz, sizeof sz));
    printf("  %-36s  %14" PRIu64 " bytes of Size %" PRIu64 "\n", "(mapped)", t->mapped, h->meta.size);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static void json_uuid(struct json *j, const char *key, const snap_uuid *id)
{
    char u[SNAP_UUID_STRLEN + 1];
    snap_uuid_format(id, u);
    json_key(j, key);
    json_str(j, u);
}

static void json_frames(struct json *j, const struct hdr *h, const struct hdr_build *b)
{
    const struct hdr_frame *f = hdr_build_frames(h, b);
    json_key(j, "frame_table");
    json_arr_begin(j);
    for (uint32_t k = 0; k < b->nframes; k++) {
        json_obj_begin(j);
        json_key(j, "start_u"); json_i64(j, f[k].start_u);
        json_key(j, "start_c"); json_i64(j, f[k].start_c);
        json_key(j, "size_u"); json_i64(j, f[k].size_u);
        json_key(j, "size_c"); json_i64(j, f[k].size_c);
        json_obj_end(j);
    }
    json_arr_end(j);
}

static void print_json(const struct opts *o, const struct hdr *h, size_t filelen,
                       const struct hdr_totals *t, int check_err)
{
    struct json j;
    json_init(&j, stdout);
    json_obj_begin(&j);
    json_key(&j, "file"); json_str(&j, o->path);
    json_key(&j, "bytes"); json_u64(&j, filelen);
    json_key(&j, "format"); json_u64(&j, h->format);
    json_key(&j, "version"); json_u64(&j, h->meta.version);
    json_key(&j, "block_size"); json_u64(&j, h->meta.block_size);
    json_key(&j, "size"); json_u64(&j, h->meta.size);
    json_key(&j, "generation"); json_u64(&j, h->meta.generation);
    json_uuid(&j, "build_id", &h->meta.build_id);
    json_uuid(&j, "base_build_id", &h->meta.base_build_id);
    json_key(&j, "flags"); json_u64(&j, h->flags);
    json_key(&j, "upload_incomplete"); json_bool(&j, h->flags & HDR_FLAG_INCOMPLETE);
    json_key(&j, "check");
    json_obj_begin(&j);
    json_key(&j, "ok"); json_bool(&j, !check_err);
    json_key(&j, "error");
    if (check_err)
        json_str(&j, snap_errmsg(check_err));
    else
        json_null(&j);
    json_obj_end(&j);
    json_key(&j, "builds");
    if (!h->has_builds) {
        json_null(&j);
    } else {
        json_arr_begin(&j);
        for (uint32_t i = 0; i < h->nbuilds; i++) {
            const struct hdr_build *b = &h->builds[i];
            struct hdr_frames_sum fs;
            hdr_frames_summary(h, b, &fs);
            json_obj_begin(&j);
            json_uuid(&j, "id", &b->id);
            json_key(&j, "file_size"); json_i64(&j, b->file_size);
            json_key(&j, "sha256");
            char hex[65];
            if (hdr_build_sha256_hex(b, hex))
                json_str(&j, hex);
            else
                json_null(&j);
            json_key(&j, "compression"); json_str(&j, hdr_comp_name(b->comp));
            json_key(&j, "frames"); json_u64(&j, b->nframes);
            json_key(&j, "frames_uncompressed_start"); json_u64(&j, fs.u_start);
            json_key(&j, "frames_uncompressed_end"); json_u64(&j, fs.u_end);
            json_key(&j, "frames_uncompressed_bytes"); json_u64(&j, fs.bytes_u);
            json_key(&j, "frames_compressed_bytes"); json_u64(&j, fs.bytes_c);
            json_key(&j, "ratio"); json_double(&j, fs.ratio);
            if (o->frames)
                json_frames(&j, h, b);
            json_obj_end(&j);
        }
        json_arr_end(&j);
    }
    json_key(&j, "entries"); json_u64(&j, h->n);
    if (!o->summary) {
        json_key(&j, "mappings");
        json_arr_begin(&j);
        for (size_t i = 0; i < h->n; i++) {
            const struct hdr_entry *e = &h->e[i];
            json_obj_begin(&j);
            json_key(&j, "offset"); json_u64(&j, e->offset);
            json_key(&j, "length"); json_u64(&j, e->length);
            json_uuid(&j, "build", hdr_entry_build(h, e));
            json_key(&j, "zero"); json_bool(&j, e->build == HDR_ZERO);
            json_key(&j, "storage"); json_u64(&j, e->storage);
            json_obj_end(&j);
        }
        json_arr_end(&j);
    }
    json_key(&j, "totals");
    json_obj_begin(&j);
    json_key(&j, "builds");
    json_obj_begin(&j);
    for (uint32_t i = 0; i < h->nids; i++) {
        if (!t->per_build[i])
            continue;
        char u[SNAP_UUID_STRLEN + 1];
        snap_uuid_format(&h->ids[i], u);
        json_key(&j, u);
        json_u64(&j, t->per_build[i]);
    }
    json_obj_end(&j);
    json_key(&j, "zero_bytes"); json_u64(&j, t->zero);
    json_key(&j, "mapped_bytes"); json_u64(&j, t->mapped);
    json_obj_end(&j);
    json_obj_end(&j);
    json_finish(&j);
}

/* ---- actions ------------------------------------------------------------------------------- */

static int do_lookup(const struct opts *o, const struct hdr *h)
{
    uint64_t x;
    int err = !strncmp(o->lookup, "0x", 2) || !strncmp(o->lookup, "0X", 2)
                  ? snap_parse_u64(o->lookup, &x, "--lookup")
                  : snap_parse_size(o->lookup, &x, "--lookup");
    if (err)
        return cli_usage_error("%s", snap_errmsg(err));
    struct hdr_loc l;
    if ((err = hdr_lookup(h, x, &l))) {
        snap_fail_ctx(err, "%s", o->path);
        return cli_fail(err, err == SNAP_ECHECK ? hint_for(err) : NULL);
    }
    if (o->json) {
        struct json j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_key(&j, "offset"); json_u64(&j, x);
        json_uuid(&j, "build", l.build);
        json_key(&j, "zero"); json_bool(&j, l.zero);
        json_key(&j, "storage"); json_u64(&j, l.storage);
        json_key(&j, "remaining"); json_u64(&j, l.remaining);
        json_key(&j, "mapping"); json_u64(&j, l.entry);
        json_obj_end(&j);
        json_finish(&j);
    } else if (l.zero) {
        printf("offset %" PRIu64 " (0x%" PRIx64 "): zeros, %" PRIu64 " bytes left in mapping %zu\n",
               x, x, l.remaining, l.entry);
    } else {
        char u[SNAP_UUID_STRLEN + 1];
        snap_uuid_format(l.build, u);
        printf("offset %" PRIu64 " (0x%" PRIx64 "): build %s storage offset %" PRIu64 " (0x%" PRIx64
               "), %" PRIu64 " bytes left in mapping %zu\n",
               x, x, u, l.storage, l.storage, l.remaining, l.entry);
    }
    return 0;
}

static void print_loader_finding(void *path, const char *msg)
{
    fprintf(stderr, "snapctl %s: %s: reference loader: %s\n", cli_applet, (const char *)path, msg);
}

static int do_convert(const struct opts *o, const struct hdr *h, int check_err)
{
    if (check_err && !o->force) {
        fprintf(stderr, "snapctl %s: %s: %s\n", cli_applet, o->path, snap_errmsg(check_err));
        fprintf(stderr, "snapctl %s: not converting a header that fails --check; use --force "
                        "to convert it anyway\n", cli_applet);
        return snap_exit_code(SNAP_ECHECK);
    }
    uint8_t *buf = NULL;
    size_t len;
    int err = hdr_convert(h, o->convert, &buf, &len);
    if (err) {
        snap_fail_ctx(err, "%s", o->path);
        return cli_fail(err, err == SNAP_ERANGE ? "this mapping cannot be said in that version; "
                                                  "write it as v3 or v4" : NULL);
    }
    err = snap_write_file_atomic(o->out, buf, len, 0644);
    snap_free(buf);
    if (err)
        return cli_fail(err, NULL);
    if (!o->json)
        printf("%s: wrote header v%u, %zu bytes, %zu entries\n", o->out, o->convert, len, h->n);
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    enum { O_JSON = 256, O_SUMMARY, O_CHECK, O_LOOKUP, O_CONVERT, O_FORCE, O_FRAMES };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, O_JSON},       {"summary", no_argument, NULL, O_SUMMARY},
        {"check", no_argument, NULL, O_CHECK},     {"lookup", required_argument, NULL, O_LOOKUP},
        {"convert", required_argument, NULL, O_CONVERT}, {"force", no_argument, NULL, O_FORCE},
        {"frames", no_argument, NULL, O_FRAMES},
        {"help", no_argument, NULL, 'h'},          CLI_PEER_LONGOPTS,          CLI_CHUNK_CACHE_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    optind = 1;
    int c;
    while ((c = cli_getopt(argc, argv, "+h", longopts)) != -1) {
        switch (c) {
        case O_JSON: o->json = true; break;
        case O_SUMMARY: o->summary = true; break;
        case O_FRAMES: o->frames = true; break;
        case O_CHECK: o->check = true; break;
        case O_FORCE: o->force = true; break;
        case O_LOOKUP: o->lookup = optarg; break;
        case O_CONVERT: {
            const char *v = optarg[0] == 'v' || optarg[0] == 'V' ? optarg + 1 : optarg;
            if (strcmp(v, "3") && strcmp(v, "4") && strcmp(v, "5"))
                return cli_usage_error("--convert: version '%s' is not v3, v4 or v5", optarg);
            o->convert = (unsigned)(v[0] - '0');
            if (optind >= argc)
                return cli_usage_error("--convert %s needs an output file", optarg);
            o->out = argv[optind++];
            break;
        }
        case 'h': fputs(usage, stdout); exit(0);
        default: {
            int rc = cli_peer_opt(&o->so, c, optarg);
            if (rc < 0)
                return SNAP_EXIT_USAGE; /* CLI_OPT_BAD: cli_getopt said why */
            if (rc)
                return rc;
        }
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("%s", optind >= argc ? "missing FILE" : "more than one FILE");
    o->path = argv[optind];
    if (o->force && !o->convert)
        return cli_usage_error("--force only goes with --convert");
    return cli_chunk_cache_env(&o->so);
}

/* FILE's bytes, from a path, a store URL or through peers; 0 or the exit code of the failure it printed. */
static int read_header_file(struct opts *o, uint8_t **buf, size_t *len)
{
    /* FILE is a URL when it starts with a scheme ("s3:/x" is a malformed URL, not a file). */
    bool is_url;
    int err = url_check_arg(o->path, &is_url);
    if (err) {
        char hint[512];
        snprintf(hint, sizeof hint, "for a local file of that name, write ./%s", o->path);
        return cli_fail(err, strstr(o->path, "://") ? NULL : hint);
    }
    if (cli_peer_wanted(&o->so) || (o->so.chunk_cache && is_url)) {
        struct store *st = NULL;
        char *key = NULL;
        if (!is_url)
            err = snap_fail(SNAP_EUSAGE, "%s: --peer needs a store URL (STORE/{uuid}/{file}), not a path", o->path);
        else if ((err = cli_open_object(o->path, &o->so, &st, &key)) == 0)
            err = store_read_all(st, key, HDR_FILE_MAX, buf, len);
        cli_store_done(st, &o->so);
        store_close(st);
        snap_free(key);
    } else {
        err = is_url ? store_read_object(o->path, HDR_FILE_MAX, buf, len)
                     : snap_read_file(o->path, HDR_FILE_MAX, buf, len);
    }
    if (err)
        return cli_fail(err, err == SNAP_ETOOBIG ? "no header is that large: is FILE a data object?" : NULL);
    return 0;
}

int inspect_header_main(int argc, char **argv)
{
    struct opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    uint8_t *buf = NULL;
    size_t len = 0;
    struct hdr *h = NULL;
    struct hdr_totals t = {NULL, 0, 0};
    int err = 0;
    if ((rc = read_header_file(&o, &buf, &len)) != 0)
        goto out;
    if ((err = hdr_parse(buf, len, &h))) {
        snap_fail_ctx(err, "%s", o.path);
        rc = cli_fail(err, hint_for(err));
        goto out;
    }
    int check_err = hdr_check(h);
    char check_msg[1024] = "";
    if (check_err) /* keep it: later calls overwrite the detail */
        snprintf(check_msg, sizeof check_msg, "%s", snap_errmsg(check_err));
    if (o.check && check_err) {
        fprintf(stderr, "snapctl %s: %s: %s\n", cli_applet, o.path, check_msg);
        fprintf(stderr, "snapctl %s: %s\n", cli_applet, hint_for(SNAP_ECHECK));
        rc = snap_exit_code(SNAP_ECHECK);
        goto out;
    }
    if (o.check && hdr_check_loader(h, print_loader_finding, (void *)o.path)) {
        fprintf(stderr, "snapctl %s: %s: the reference's loader would refuse this header (or fail reading "
                "it); --check exits 3\n", cli_applet, o.path);
        rc = snap_exit_code(SNAP_ECHECK);
        goto out;
    }
    if (o.check && o.json) {
        struct json j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_key(&j, "file"); json_str(&j, o.path);
        json_key(&j, "ok"); json_bool(&j, true);
        json_key(&j, "entries"); json_u64(&j, h->n);
        json_key(&j, "size"); json_u64(&j, h->meta.size);
        json_obj_end(&j);
        json_finish(&j);
    } else if (o.check) {
        printf("%s: ok: %zu entries cover [0, %" PRIu64 ")\n", o.path, h->n, h->meta.size);
    }
    if (o.lookup && (rc = do_lookup(&o, h)))
        goto out;
    if (check_err)
        snap_fail(check_err, "%s", check_msg);
    if (o.convert && (rc = do_convert(&o, h, check_err)))
        goto out;
    if (o.check || o.lookup || o.convert)
        goto out;
    if ((err = hdr_totals_compute(h, &t))) {
        rc = cli_fail(err, NULL);
        goto out;
    }
    if (check_err)
        snap_fail(check_err, "%s", check_msg);
    if (o.json)
        print_json(&o, h, len, &t, check_err);
    else
        print_text(&o, h, len, &t, check_err);
    if (fflush(stdout) != 0 || ferror(stdout)) /* a reader that left early (| head) is fine */
        rc = errno == EPIPE ? SNAP_EXIT_FAIL : cli_fail(snap_fail_errno("writing to stdout"), NULL);
out:
    hdr_totals_free(&t);
    hdr_free(h);
    snap_free(buf);
    return rc;
}
