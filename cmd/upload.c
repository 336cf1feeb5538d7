/* upload.c -- the 'upload' applet: options, progress, output; the work is lib/upload. */
#include "cli.h"

#include "base/err.h"
#include "base/log.h"
#include "base/io.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/progress.h"
#include "base/util.h"
#include "peer/peer.h"
#include "store/store.h"
#include "upload/upload.h"

#include <getopt.h>
#include <signal.h>
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
    "  --notify-peer DATA_DIR  after a build is up, mark it uploaded for 'snapctl peer serve'\n"
    "                      (DATA_DIR/{buildId}/.upload-done: the peer then answers 410)\n"
    "  --json              print {url, sha256, etag, parts, bytes, seconds} as JSON (a build:\n"
    "                      {build_id, objects: [...], seconds})\n"
    "  -q, --quiet         no progress bar and no messages\n"
    "  -v, --verbose       say where the store credentials came from (s3://: the source and the\n"
    "                      access key id's last 4 characters; never a secret), and refreshes\n"    "  -h, --help          show this help\n"
    "\n"
    "SIGINT or SIGTERM stops it: parts in flight finish, the upload is aborted (exit 130).\n"
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
 * ends the process at once. */
static void on_signal(int sig)
{
    upload_cancel();
    signal(sig, SIG_DFL);
}

static void on_event(void *ctx, const char *name, const char *what)
{
    (void)ctx;
    progress_end(&bar);
    if (!strcmp(what, "upload")) {
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

static int do_build(struct store *s, const char *dir, const char *url, const char *notify,
                    const struct upload_opts *fo)
{
    struct upload_build_opts bo = {.file = *fo, .event = on_event};
    struct upload_build_item items[UPLOAD_BUILD_FILES];
    char id[37];
    uint64_t t0 = snap_now_ns();
    int err = upload_build(s, dir, &bo, id, items);
    progress_end(&bar);
    if (err)
        return cli_fail(err, "objects already uploaded stay; run the same command again to finish");
    if (notify) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s/%s", notify, id, PEER_DONE_MARKER);
        if ((err = snap_write_file_atomic(path, "", 0, 0644)) != 0)
            return cli_fail(snap_fail_ctx(err, "--notify-peer"), "the build is uploaded; create the marker by hand");
    }
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
            printf("%s/%s/%s %s\n", url, id, items[i].name, hex);
        }
    }
    return 0;
}

enum { OPT_PART = 256, OPT_CONC, OPT_BUILD, OPT_NOTIFY, OPT_JSON };

int upload_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"part-size", required_argument, NULL, OPT_PART},
        {"concurrency", required_argument, NULL, OPT_CONC},
        {"build", required_argument, NULL, OPT_BUILD},
        {"notify-peer", required_argument, NULL, OPT_NOTIFY},
        {"json", no_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct upload_opts o = {.progress = on_progress};
    const char *build = NULL, *notify = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "qvh", longopts, NULL)) != -1) {
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
        case OPT_JSON: json = true; break;
        case 'q': quiet = true; break;
        case 'v': snap_log_set_level(SNAP_LOG_INFO); break;
        case 'h': fputs(usage, stdout); return 0;
        default: return cli_usage_error("unknown option");
        }
    }
    int want = build ? 1 : 2;
    if (argc - optind != want)
        return cli_usage_error(argc - optind < want ? (build ? "missing URL" : "expected FILE and URL")
                                                    : "too many arguments");
    if (notify && !build)
        return cli_usage_error("--notify-peer goes with --build");
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    const char *url = argv[argc - 1];
    struct store *s = NULL;
    char *base = NULL, *key = NULL;
    int err;
    if (build) {
        size_t n = strlen(url);
        while (n > 0 && url[n - 1] == '/')
            n--;
        base = snap_strndup(url, n);
        err = base ? store_open(base, NULL, &s) : snap_fail(SNAP_ENOMEM, "out of memory");
        if (!err)
            err = do_build(s, build, base, notify, &o);
        else
            err = cli_fail(err, NULL);
        store_close(s);
        snap_free(base);
        return err;
    }
    const char *file = argv[optind];
    err = store_split_url(url, &base, &key);
    if (!err && !*key)
        err = snap_fail(SNAP_EUSAGE, "%s: the URL must name the object, like s3://bucket/dir/name", url);
    if (!err)
        err = store_open(base, NULL, &s);
    if (err) {
        snap_free(base);
        snap_free(key);
        return cli_fail(err, NULL);
    }
    const char *name = strrchr(file, '/');
    progress_start(&bar, name ? name + 1 : file, 0);
    if (quiet || json)
        progress_force(&bar, false);
    struct upload_result r;
    err = upload_file(s, key, file, &o, &r);
    progress_end(&bar);
    store_close(s);
    snap_free(base);
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
