/* upload.c -- the 'upload' applet: options, progress, output; the work is lib/upload. */
#include "cli.h"

#include "base/cancel.h"
#include "base/err.h"
#include "base/io.h"
#include "codec/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/progress.h"
#include "base/util.h"
#include "header/header.h"
#include "peer/peer.h"
#include "peer/registry.h"
#include "store/store.h"
#include "store/tiered.h"
#include "upload/upload.h"

#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: snapctl upload [OPTIONS] FILE URL\n"
    "       snapctl upload [OPTIONS] --build DIR URL\n"
    "\n"
    "Upload FILE to the object URL (file:///dir/name, s3://bucket/key, gs://bucket/key), or a\n"
    "build directory DIR -- named by its build id, DIR = .../{buildId}, holding memfile,\n"
    "rootfs.ext4, snapfile, their .header files and metadata.json -- to {buildId}/NAME under the\n"
    "store URL. A build goes up data objects first, then headers and metadata.json, so a header\n"
    "never names data that is not there yet; an empty diff (a zero-byte data object, or one its\n"
    "header maps nothing to) is skipped with a message.\n"
    "\n"
    "The file is mapped read-only and sent as it is: one PUT when it fits in one part, else a\n"
    "parallel multipart upload whose parts are slices of the mapping. Its SHA-256 is computed in\n"
    "the same pass and stored as object metadata sha256, so 'snapctl fetch --sha256' can check\n"
    "it. A failed multipart upload is aborted: no parts are left behind. file:// copies in the\n"
    "kernel (copy_file_range) into a temp file and renames it into place.\n"
    "\n"
    "Options:\n"
    "  --part-size SIZE    multipart part size (default 50MiB, at least 5MiB; grown as needed\n"
    "                      to stay within 10,000 parts)\n"
    "  --concurrency N     parts in flight (default 16, at most 256)\n"
    "  --build DIR         upload a build directory instead of one file\n"
    "  --compress lz4|zstd with --build: memfile and rootfs.ext4 go up compressed frame by frame\n"
    "                      (2 MiB frames on two threads) as NAME.lz4 / NAME.zstd with their\n"
    "                      uncompressed-size metadata; their headers get the frame table,\n"
    "                      the uncompressed size and its SHA-256 (v4, or the header's v5)\n"
    "  --level N           compression level (default: the library's: lz4 fast, zstd 3)\n"
    "  --frame-size SIZE   uncompressed bytes per frame (default 2MiB, a multiple of 4KiB)\n"
    "  --header-format 4|5 format of the rewritten headers (default: the header's, at least 4);\n"
    "                      uncompressed, a v4/v5 header (or any with this option) gets the\n"
    "                      data's size and SHA-256, taken while uploading\n"
    "  --notify-peer DATA_DIR  after a build is up, mark it uploaded for 'snapctl peer serve'\n"
    "                      (DATA_DIR/{buildId}/.upload-done: the peer then answers 410)\n"
    "  --peer-registry URL with --notify-peer: also delete peer:{buildId} from the peer registry\n"
    "                      now (redis://[USER:PASS@]HOST[:PORT][/DB], rediss://; password also\n"
    "                      from SNAPCTL_REDIS_PASSWORD); the peer deletes it too once it sees\n"
    "                      the marker, so this only matters when the peer is down\n"
    "  --json              print {url, sha256, etag, parts, bytes, seconds} as JSON (a build:\n"
    "                      {build_id, objects: [...], seconds})\n"
    "  -q, --quiet         no progress bar and no messages\n"
    "  -v, --verbose       say where the store credentials came from (s3://: the source and the\n"
    "                      access key id's last 4 characters; never a secret), and refreshes\n"
    "  -h, --help          show this help\n"
    "\n"
    "SIGINT or SIGTERM stops it and commits nothing: parts in flight finish and the multipart\n"
    "upload is aborted; a file:// copy stops and its temp file is removed (exit 130).\n"
    "Exit status: 0 ok, 2 usage, 4 not found, 5 network or I/O, 8 access denied, 130 interrupted\n"
    "(see snapctl(1)).\n";

static struct progress bar;

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx;
    if (total && !bar.total)
        progress_set_total(&bar, total);
    progress_update(&bar, done);
}

static bool quiet, json;

/* First SIGINT/SIGTERM: stop starting parts and abort the upload (exit 130); a second one
 * ends the process at once (lib/base/cancel). */
static struct snap_cancel cancel = {.grace_ms = -1};

static unsigned started; /* objects of a build whose upload began */

static void on_event(void *ctx, const char *name, const char *what)
{
    (void)ctx;
    progress_end(&bar);
    if (!strcmp(what, "upload")) {
        started++;
        progress_start(&bar, name, 0);
        if (quiet || json)
            progress_force(&bar, false);
    } else if (!quiet) {
        fprintf(stderr, "snapctl upload: %s: %s\n", name, what);
    }
}

static void json_result(struct json *j, const char *url, const struct upload_result *r)
{
    char hex[65];
    snap_hex(r->sha256, 32, hex);
    json_key(j, "url"); json_str(j, url);
    json_key(j, "sha256"); json_str(j, hex);
    json_key(j, "etag"); json_str(j, r->etag);
    json_key(j, "parts"); json_u64(j, r->parts);
    json_key(j, "bytes"); json_u64(j, r->bytes);
    json_key(j, "seconds"); json_double(j, r->seconds);
}

static int do_build(struct store *s, const char *dir, const char *url, const char *notify, const char *registry,
                    const struct upload_opts *fo, const struct upload_build_opts *co)
{
    struct upload_build_opts bo = *co;
    bo.file = *fo;
    bo.event = on_event;
    struct upload_build_item items[UPLOAD_BUILD_FILES];
    char id[37];
    uint64_t t0 = snap_now_ns();
    int err = upload_build(s, dir, &bo, id, items);
    progress_end(&bar);
    /* The hint says what is on the store: nothing when the build was refused before its first
     * object (the message says why), else the objects before the one that failed. */
    if (err)
        return cli_fail(err, started > 1 ? "objects already uploaded stay; run the same command again to finish"
                             : started ? "nothing was uploaded (a failed upload leaves no parts); run the same "
                                         "command again"
                                       : NULL);
    if (notify) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s/%s", notify, id, PEER_DONE_MARKER);
        if ((err = snap_write_file_atomic(path, "", 0, 0644)) != 0)
            return cli_fail(snap_fail_ctx(err, "--notify-peer"), "the build is uploaded; create the marker by hand");
    }
    if (registry && (err = peer_registry_withdraw(registry, id)) != 0 && !quiet)
        snap_warn("%s; the build is uploaded, the key goes when the peer sees the marker or its TTL ends",
                  snap_errmsg(err));
    double secs = (double)(snap_now_ns() - t0) / 1e9;
    if (json) {
        struct json j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_key(&j, "build_id"); json_str(&j, id);
        json_key(&j, "objects");
        json_arr_begin(&j);
        for (int i = 0; i < UPLOAD_BUILD_FILES; i++) {
            if (!items[i].present)
                continue;
            char ou[PATH_MAX];
            snprintf(ou, sizeof ou, "%s/%s/%s", url, id, items[i].name);
            json_obj_begin(&j);
            json_key(&j, "name"); json_str(&j, items[i].name);
            json_key(&j, "skipped"); json_bool(&j, items[i].skipped);
            if (items[i].comp) {
                snprintf(ou, sizeof ou, "%s/%s/%s.%s", url, id, items[i].name, hdr_comp_name(items[i].comp));
                json_key(&j, "compression"); json_str(&j, hdr_comp_name(items[i].comp));
                json_key(&j, "frames"); json_u64(&j, items[i].nframes);
                json_key(&j, "uncompressed_bytes"); json_u64(&j, items[i].usize);
            }
            if (!items[i].skipped)
                json_result(&j, ou, &items[i].r);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_key(&j, "seconds"); json_double(&j, secs);
        json_obj_end(&j);
        json_finish(&j);
    } else if (!quiet) {
        for (int i = 0; i < UPLOAD_BUILD_FILES; i++) {
            if (!items[i].present || items[i].skipped)
                continue;
            char hex[65];
            snap_hex(items[i].r.sha256, 32, hex);
            if (items[i].comp)
                printf("%s/%s/%s.%s %s (%u frames, %" PRIu64 " bytes -> %" PRIu64 ")\n", url, id, items[i].name,
                       hdr_comp_name(items[i].comp), hex, items[i].nframes, items[i].usize, items[i].r.bytes);
            else
                printf("%s/%s/%s %s\n", url, id, items[i].name, hex);
        }
    }
    return 0;
}

enum { OPT_PART = 256, OPT_CONC, OPT_BUILD, OPT_NOTIFY, OPT_JSON, OPT_COMPRESS, OPT_LEVEL, OPT_FRAME, OPT_HFMT, OPT_REGISTRY };

/* The compression options: 0 handled, -1 not one of them, else a usage error's exit code. */
static int compress_opt(int c, const char *arg, struct upload_build_opts *bo)
{
    uint64_t n;
    switch (c) {
    case OPT_COMPRESS:
        if (strcmp(arg, "lz4") && strcmp(arg, "zstd"))
            return cli_usage_error("--compress: '%s' is not lz4 or zstd", arg);
        bo->compress.comp = strcmp(arg, "lz4") ? HDR_COMP_ZSTD : HDR_COMP_LZ4;
        return 0;
    case OPT_LEVEL:
        if (snap_parse_u64(arg, &n, "--level") || n > 22)
            return cli_usage_error("--level: '%s' is not a number from 0 to 22", arg);
        bo->compress.level = (int)n;
        return 0;
    case OPT_FRAME:
        if (snap_parse_size(arg, &n, "--frame-size") || n == 0 || n % 4096 || n > HDR_FRAME_MAX)
            return cli_usage_error("--frame-size: '%s' is not a multiple of 4KiB up to 32MiB", arg);
        bo->compress.frame_size = (uint32_t)n;
        return 0;
    case OPT_HFMT:
        if (strcmp(arg, "4") && strcmp(arg, "5"))
            return cli_usage_error("--header-format: '%s' is not 4 or 5", arg);
        bo->header_format = (unsigned)(arg[0] - '0');
        return 0;
    }
    return -1;
}

/* upload FILE URL: one object, then its URL and SHA-256 (or --json). */
static int upload_one(const char *file, const char *url, const struct upload_opts *o)
{
    struct store *s = NULL;
    char *key = NULL;
    int err = store_open_object(url, NULL, NULL, &s, &key);
    if (err)
        return cli_fail(err, NULL);
    const char *name = strrchr(file, '/');
    progress_start(&bar, name ? name + 1 : file, 0);
    if (quiet || json)
        progress_force(&bar, false);
    struct upload_result r;
    err = upload_file(s, key, file, o, &r);
    progress_end(&bar);
    store_close(s);
    snap_free(key);
    if (err)
        return cli_fail(err, NULL);
    if (json) {
        struct json j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_result(&j, url, &r);
        json_obj_end(&j);
        json_finish(&j);
    } else if (!quiet) {
        char hex[65];
        snap_hex(r.sha256, 32, hex);
        printf("%s %s\n", url, hex);
    }
    return 0;
}

/* upload --build DIR URL: the build's objects under URL (trailing slashes dropped). */
static int upload_build_url(const char *url, const char *dir, const char *notify, const char *registry,
                            const struct upload_opts *o, const struct upload_build_opts *bo)
{
    struct store *s = NULL;
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    char *base = snap_strndup(url, n);
    int err = base ? store_open(base, NULL, &s) : snap_fail(SNAP_ENOMEM, "out of memory");
    if (!err)
        err = do_build(s, dir, base, notify, registry, o, bo);
    else
        err = cli_fail(err, NULL);
    store_close(s);
    snap_free(base);
    return err;
}

int upload_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"part-size", required_argument, NULL, OPT_PART},
        {"concurrency", required_argument, NULL, OPT_CONC},
        {"build", required_argument, NULL, OPT_BUILD},
        {"notify-peer", required_argument, NULL, OPT_NOTIFY},
        {"peer-registry", required_argument, NULL, OPT_REGISTRY},
        {"json", no_argument, NULL, OPT_JSON},
        {"compress", required_argument, NULL, OPT_COMPRESS},
        {"level", required_argument, NULL, OPT_LEVEL},
        {"frame-size", required_argument, NULL, OPT_FRAME},
        {"header-format", required_argument, NULL, OPT_HFMT},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct upload_opts o = {.progress = on_progress};
    const char *build = NULL, *notify = NULL, *registry = NULL;
    struct upload_build_opts bo = {.compress.tmp_dir = getenv("TMPDIR")};
    int c, rc;
    while ((c = cli_getopt(argc, argv, "qvh", longopts)) != -1) {
        switch (c) {
        case OPT_PART:
            if (snap_parse_size(optarg, &o.part_size, "--part-size") || o.part_size < UPLOAD_PART_MIN)
                return cli_usage_error("--part-size: '%s' is below the minimum of 5MiB (S3's smallest part)", optarg);
            break;
        case OPT_CONC: {
            uint64_t n;
            if (snap_parse_u64(optarg, &n, "--concurrency") || n < 1 || n > UPLOAD_CONCURRENCY_MAX)
                return cli_usage_error("--concurrency: '%s' is not a number from 1 to %u", optarg,
                                       UPLOAD_CONCURRENCY_MAX);
            o.concurrency = (unsigned)n;
            break;
        }
        case OPT_BUILD: build = optarg; break;
        case OPT_NOTIFY: notify = optarg; break;
        case OPT_REGISTRY: registry = optarg; break;
        case OPT_JSON: json = true; break;
        case 'q': quiet = true; break;
        case 'v': snap_log_set_level(SNAP_LOG_INFO); break;
        case 'h': fputs(usage, stdout); return 0;
        default: /* CLI_OPT_BAD: cli_getopt said why */
            if ((rc = compress_opt(c, optarg, &bo)) < 0)
                return SNAP_EXIT_USAGE;
            if (rc)
                return rc;
        }
    }
    int want = build ? 1 : 2;
    if (argc - optind != want)
        return cli_usage_error(argc - optind < want ? (build ? "missing URL" : "expected FILE and URL")
                                                    : "too many arguments");
    if (notify && !build)
        return cli_usage_error("--notify-peer goes with --build");
    if (registry && !notify)
        return cli_usage_error("--peer-registry goes with --notify-peer (or the peer would advertise the build again)");
    struct peer_registry *reg = NULL;
    int rerr = registry ? peer_registry_open(registry, 0, &reg) : 0; /* a bad URL fails before uploading */
    peer_registry_close(reg);
    if (rerr)
        return cli_fail(snap_fail_ctx(rerr, "--peer-registry"), NULL);
    if (!build && (bo.compress.comp || bo.compress.level || bo.compress.frame_size || bo.header_format))
        return cli_usage_error("--compress, --level, --frame-size and --header-format go with --build");
    if (!bo.compress.comp && (bo.compress.level || bo.compress.frame_size))
        return cli_usage_error("--level and --frame-size go with --compress");
    if ((rc = snap_cancel_start(&cancel)) != 0)
        return cli_fail(rc, NULL);
    o.cancel = &cancel;
    const char *url = argv[argc - 1];
    if (build)
        return upload_build_url(url, build, notify, registry, &o, &bo);
    return upload_one(argv[optind], url, &o);
}
