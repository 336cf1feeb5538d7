/* fetch.c -- the 'fetch' applet: options, progress, output; the work is lib/fetch. */
#include "cli.h"

#include "base/cancel.h"
#include "base/err.h"
#include "base/log.h"
#include "codec/json.h"
#include "base/mem.h"
#include "base/progress.h"
#include "base/util.h"
#include "fetch/fetch.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "Usage: snapctl fetch URL --sha256 HEX --cache-dir DIR [OPTIONS]\n"
    "\n"
    "Download an asset into a content-addressed cache: DIR/PREFIX<sha256>. The body is streamed\n"
    "into a temp file in DIR, hashed in the same pass and renamed into place only when its size\n"
    "is within the limit and its SHA-256 matches. On any failure, or SIGINT/SIGTERM, nothing is\n"
    "left at the final path. A cached file is used without any network access.\n"
    "\n"
    "URL is any store URL naming an object: file:///dir/name, http(s)://host/path,\n"
    "s3://bucket/key, gs://bucket/key.\n"
    "\n"
    "Options:\n"
    "  --sha256 HEX        the expected SHA-256 (64 hex digits); required\n"
    "  --cache-dir DIR     the cache directory (must exist); required\n"
    "  --prefix P          prepended to the file name (default none)\n"
    "  --max-size SIZE     refuse bodies larger than this (default 8GiB; K/M/G, KiB/MiB/GiB)\n"
    "  --mode OCTAL        mode of the cached file (default 0644)\n"
    "  --timeout SECONDS   fail a read when no byte arrives for that long (default 30)\n"
    "  --limit-rate RATE   download at most RATE bytes a second (K/M/G suffixes, like curl's),\n"
    "                      to leave bandwidth and disk to others on a shared host\n"
    "  --max-time SECONDS  give up after this long in all, retries included (default none)\n"
    "  --head-timeout SECONDS\n"
    "                      a response head must arrive whole within this (default 30)\n"
    "  --speed-limit BYTES, --speed-time SECONDS\n"
    "                      fail a body slower than BYTES/s over SECONDS (default 1K, 60; 0: off)\n"
    "  --allow-private-redirects\n"
    "                      follow redirects into loopback, private, link-local or metadata\n"
    "                      addresses from a URL outside that class (refused by default: exit 8)\n"
    "  --verify            re-hash a cached file and replace it if it does not match\n"
    "  --json              print {path, size, sha256, source, seconds, cached, resumed}\n"
    "  -q, --quiet         no progress bar (it is shown only on a terminal anyway)\n"
    "  -v, --verbose       say where the store credentials came from (s3://: the source and the\n"
    "                      access key id's last 4 characters; never a secret), and refreshes\n"    "  -h, --help          show this help\n"
    "\n"
    CLI_PEER_USAGE
    "\n"
    CLI_CHUNK_CACHE_USAGE
    "\n"
    "Prints the cached file's path. Exit status: 0 ok, 2 usage, 4 not found, 5 network or I/O,\n"
    "6 SHA-256 mismatch, 7 over --max-size, 8 redirect refused, 9 disk full, 130 interrupted\n"
    "(see snapctl(1)).\n";

static struct progress bar;

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx;
    if (total && !bar.total)
        progress_set_total(&bar, total);
    progress_update(&bar, done);
}

/* SIGINT/SIGTERM: the fetch stops at its next write and removes its temp file; one that does not
 * within a second (a stalled origin) is ended, and the temp file removed, by lib/base/cancel. */
static void on_signal(int sig, void *arg)
{
    (void)sig, (void)arg;
    progress_clear_signal(&bar);
}
static struct snap_cancel cancel = {.grace_ms = 1000, .hook = on_signal};

enum { OPT_SHA = 256, OPT_DIR, OPT_PREFIX, OPT_MAX, OPT_MODE, OPT_VERIFY, OPT_JSON, OPT_TIMEOUT, OPT_MAXTIME,
       OPT_HEADTIME, OPT_SPEED, OPT_SPEEDTIME, OPT_PRIVREDIR, OPT_RATE };

/* A --NAME SECONDS option (0.001 to 86400) in ms; 0 when it is not one. */
static unsigned seconds_opt(const char *arg)
{
    char *end;
    double t = strtod(arg, &end);
    return *end || !*arg || !(t >= 0.001 && t <= 86400) ? 0 : (unsigned)(t * 1000 + 0.5);
}

/* One of fetch's options with a value to check: 0 taken, else a usage error's exit code. */
static int value_opt(struct fetch_opts *o, int c, const char *arg)
{
    switch (c) {
    case OPT_MAX:
        if (snap_parse_size(arg, &o->max_size, "--max-size") || o->max_size == 0)
            return cli_usage_error("--max-size: '%s' is not a positive size", arg);
        return 0;
    case OPT_MODE: {
        char *end;
        unsigned long m = strtoul(arg, &end, 8);
        if (*end || m > 07777 || !*arg)
            return cli_usage_error("--mode: '%s' is not an octal mode like 0644", arg);
        o->mode = (unsigned)m;
        return 0;
    }
    case OPT_TIMEOUT: case OPT_MAXTIME: case OPT_HEADTIME: case OPT_SPEEDTIME: {
        unsigned ms = seconds_opt(arg);
        unsigned *to = c == OPT_TIMEOUT ? &o->idle_timeout_ms : c == OPT_MAXTIME ? &o->max_time_ms
                     : c == OPT_HEADTIME ? &o->head_timeout_ms : &o->speed_time_ms;
        if (!ms)
            return cli_usage_error("--%s: '%s' is not a number of seconds (0.001 to 86400)",
                                   c == OPT_TIMEOUT ? "timeout" : c == OPT_MAXTIME ? "max-time"
                                   : c == OPT_HEADTIME ? "head-timeout" : "speed-time", arg);
        *to = ms;
        return 0;
    }
    case OPT_RATE:
        if (snap_parse_size(arg, &o->limit_rate, "--limit-rate") || o->limit_rate == 0)
            return cli_usage_error("--limit-rate: '%s' is not a positive rate in bytes a second (like 500K, 20M)",
                                   arg);
        return 0;
    case OPT_SPEED:
        if (snap_parse_size(arg, &o->speed_limit, "--speed-limit"))
            return cli_usage_error("--speed-limit: '%s' is not a number of bytes per second", arg);
        if (!o->speed_limit)
            o->speed_limit = FETCH_SPEED_NONE;
        return 0;
    }
    return 0;
}

/* What a script reads: the cached file's path, or --json. */
static void print_result(const struct fetch_result *r, const char *sha, const char *url, bool json)
{
    if (json) {
        struct json j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_key(&j, "path"); json_str(&j, r->path);
        json_key(&j, "size"); json_u64(&j, r->size);
        json_key(&j, "sha256"); json_str(&j, sha);
        json_key(&j, "source"); json_str(&j, url);
        json_key(&j, "seconds"); json_double(&j, r->seconds);
        json_key(&j, "cached"); json_bool(&j, r->hit);
        json_key(&j, "resumed"); json_u64(&j, r->resumed);
        json_obj_end(&j);
        json_finish(&j);
    } else {
        printf("%s\n", r->path);
    }
}

int fetch_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"sha256", required_argument, NULL, OPT_SHA},
        {"cache-dir", required_argument, NULL, OPT_DIR},
        {"prefix", required_argument, NULL, OPT_PREFIX},
        {"max-size", required_argument, NULL, OPT_MAX},
        {"mode", required_argument, NULL, OPT_MODE},
        {"verify", no_argument, NULL, OPT_VERIFY},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"limit-rate", required_argument, NULL, OPT_RATE},
        {"max-time", required_argument, NULL, OPT_MAXTIME},
        {"head-timeout", required_argument, NULL, OPT_HEADTIME},
        {"speed-limit", required_argument, NULL, OPT_SPEED},
        {"speed-time", required_argument, NULL, OPT_SPEEDTIME},
        {"allow-private-redirects", no_argument, NULL, OPT_PRIVREDIR},
        {"json", no_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        CLI_PEER_LONGOPTS,
        CLI_CHUNK_CACHE_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct fetch_opts o = {.prefix = ""};
    struct cli_store_opts so = {0};
    const char *sha = NULL;
    bool json = false, quiet = false;
    int c;
    while ((c = cli_getopt(argc, argv, "qvh", longopts)) != -1) {
        switch (c) {
        case OPT_SHA: sha = optarg; break;
        case OPT_DIR: o.cache_dir = optarg; break;
        case OPT_PREFIX: o.prefix = optarg; break;
        case OPT_MAX: case OPT_MODE: case OPT_TIMEOUT: case OPT_MAXTIME: case OPT_HEADTIME:
        case OPT_SPEEDTIME: case OPT_RATE: case OPT_SPEED: {
            int rc = value_opt(&o, c, optarg);
            if (rc)
                return rc;
            break;
        }
        case OPT_VERIFY: o.verify = true; break;
        case OPT_PRIVREDIR: o.allow_private_redirects = true; break;
        case OPT_JSON: json = true; break;
        case 'q': quiet = true; break;
        case 'v': snap_log_set_level(SNAP_LOG_INFO); break;
        case 'h': fputs(usage, stdout); return 0;
        default: {
            int rc = cli_peer_opt(&so, c, optarg);
            if (rc < 0)
                return SNAP_EXIT_USAGE; /* CLI_OPT_BAD: cli_getopt said why */
            if (rc)
                return rc;
        }
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(optind >= argc ? "missing URL" : "one URL at a time");
    o.url = argv[optind];
    if (!sha || !o.cache_dir)
        return cli_usage_error("--sha256 and --cache-dir are required");
    if (strlen(sha) != 64 || snap_unhex(sha, o.sha256, 32))
        return cli_usage_error("--sha256: expected 64 hex digits, got '%s'", sha);
    int rc = cli_chunk_cache_env(&so);
    if (rc)
        return rc;

    const char *name = strrchr(o.url, '/');
    progress_start(&bar, name ? name + 1 : o.url, 0);
    if (quiet || json)
        progress_force(&bar, false);
    int err = snap_cancel_start(&cancel); /* after the bar is set up: the signal thread clears it */
    if (err)
        return cli_fail(err, NULL);
    o.cancel = &cancel;
    o.progress = on_progress;
    struct fetch_result r;
    char *key = NULL;
    if (cli_peer_wanted(&so) || so.chunk_cache) {
        struct store_opts sop;
        fetch_store_opts(&o, &sop);
        so.store_opts = &sop;
        if ((err = cli_open_object(o.url, &so, &o.store, &key)) != 0) {
            progress_end(&bar);
            return cli_fail(err, NULL);
        }
        o.key = key;
    }
    err = fetch_run(&o, &r);
    progress_end(&bar);
    cli_store_done(o.store, &so);
    store_close(o.store);
    snap_free(key);
    if (err)
        return cli_fail(err, err == SNAP_EHASH ? "the source changed or --sha256 is wrong; nothing was cached"
                             : err == SNAP_ETOOBIG ? "raise --max-size if the asset is really that large"
                                                   : NULL);
    print_result(&r, sha, o.url, json);
    return 0;
}
