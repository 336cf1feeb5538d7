/* serve-nbd.c -- the 'serve-nbd' applet: options, listening, signals; the protocol is lib/nbd. */
#include "cli.h"

#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/util.h"
#include "device/filedev.h"
#include "device/objdev.h"
#include "nbd/nbd.h"
#include "nbd/proto.h"
#include "net/listen.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "Usage: snapctl serve-nbd [OPTIONS] --file PATH\n"
    "       snapctl serve-nbd [OPTIONS] --object URL [--cache-dir DIR]\n"
    "       snapctl serve-nbd [OPTIONS] --header URL --store URL   (not built yet)\n"
    "\n"
    "Export a device over NBD (fixed newstyle; structured replies, base:allocation block\n"
    "status, TRIM, WRITE_ZEROES, FLUSH/FUA, CACHE, multi-connection).\n"
    "\n"
    "What to export:\n"
    "  --file PATH           a local file or disk image, read and written in place\n"
    "  --header URL          a build's header; data fetched lazily through --store\n"
    "  --object URL          one object from any store URL (file://, http(s)://, s3://, gs://),\n"
    "                        fetched lazily in 4 MiB chunks; writes stay in the local cache\n"
    "  --cache-dir DIR       where the copy-on-write cache file goes (default $TMPDIR or /tmp;\n"
    "                        it is unlinked at once and needs room for what is read or written)\n"
    "\n"
    "Where to listen (default tcp 127.0.0.1:10809):\n"
    "  -l, --listen ADDR     HOST:PORT, [IPv6]:PORT or unix:PATH (repeatable)\n"
    "  --stdio               serve one connection on stdin/stdout, like nbdkit -s\n"
    "                        (systemd socket activation via LISTEN_FDS is automatic)\n"
    "\n"
    "Options:\n"
    "  -r, --read-only       refuse writes\n"
    "  -e, --export-name N   the export's name (default: \"\", the default export)\n"
    "  --description TEXT    the export's description\n"
    "  -t, --threads N       worker threads per connection (default 4)\n"
    "  --min-block N         advertised minimum block size: 1 (default), 512 ... 4096;\n"
    "                        requests not aligned to it are refused with EINVAL\n"
    "  --oneshot             exit after the last client disconnects\n"
    "  --pid-file FILE       write the PID once listening\n"
    "  -v, --verbose         log connections (SNAPCTL_LOG=debug for every request)\n"
    "  -h, --help            show this help\n"
    "\n"
    "SIGTERM or SIGINT stops accepting, lets in-flight requests finish, and exits 0.\n";

static struct filedev *g_file;
static struct objdev *g_obj;

static int f_pread(void *ctx, void *buf, uint32_t len, uint64_t off) { return filedev_pread(ctx, buf, len, off); }
static int f_pwrite(void *ctx, const void *buf, uint32_t len, uint64_t off, bool fua)
{
    return filedev_pwrite(ctx, buf, len, off, fua);
}
static int f_flush(void *ctx) { return filedev_flush(ctx); }
static int f_trim(void *ctx, uint32_t len, uint64_t off, bool fua) { return filedev_trim(ctx, len, off, fua); }
static int f_zero(void *ctx, uint32_t len, uint64_t off, bool may_trim, bool fua)
{
    return filedev_zero(ctx, len, off, may_trim, fua);
}
static bool f_extent(void *ctx, uint64_t off, uint64_t len, bool zero)
{
    (void)off;
    return nbd_extents_add(ctx, (uint32_t)len, zero ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0);
}
static int f_extents(void *ctx, uint32_t len, uint64_t off, struct nbd_extents *x)
{
    return filedev_extents(ctx, off, len, f_extent, x);
}
static int o_pread(void *ctx, void *buf, uint32_t len, uint64_t off) { return objdev_pread(ctx, buf, len, off); }
static int o_pwrite(void *ctx, const void *buf, uint32_t len, uint64_t off, bool fua)
{
    return objdev_pwrite(ctx, buf, len, off, fua);
}
static int o_flush(void *ctx) { return objdev_flush(ctx); }
static int o_trim(void *ctx, uint32_t len, uint64_t off, bool fua) { return objdev_zero(ctx, len, off, fua); }
static int o_zero(void *ctx, uint32_t len, uint64_t off, bool may_trim, bool fua)
{
    (void)may_trim; /* a zero block reads as zeros either way */
    return objdev_zero(ctx, len, off, fua);
}
static int o_cache(void *ctx, uint32_t len, uint64_t off) { return objdev_prefetch(ctx, len, off); }
static int o_extents(void *ctx, uint32_t len, uint64_t off, struct nbd_extents *x)
{
    return objdev_extents(ctx, off, len, f_extent, x);
}
static const struct nbd_ops object_ops = {
    .pread = o_pread, .pwrite = o_pwrite, .flush = o_flush, .trim = o_trim, .zero = o_zero,
    .cache = o_cache, .extents = o_extents,
};

static const struct nbd_ops file_ops = {
    .pread = f_pread, .pwrite = f_pwrite, .flush = f_flush, .trim = f_trim, .zero = f_zero,
    .extents = f_extents,
};

static void on_signal(int sig)
{
    (void)sig;
    net_server_stop();
}

enum { OPT_FILE = 256, OPT_HEADER, OPT_STORE, OPT_OBJECT, OPT_STDIO, OPT_DESC, OPT_ONESHOT, OPT_PIDFILE, OPT_MINBLOCK, OPT_CACHEDIR };

int serve_nbd_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"file", required_argument, NULL, OPT_FILE},
        {"header", required_argument, NULL, OPT_HEADER},
        {"store", required_argument, NULL, OPT_STORE},
        {"object", required_argument, NULL, OPT_OBJECT},
        {"listen", required_argument, NULL, 'l'},
        {"stdio", no_argument, NULL, OPT_STDIO},
        {"read-only", no_argument, NULL, 'r'},
        {"export-name", required_argument, NULL, 'e'},
        {"description", required_argument, NULL, OPT_DESC},
        {"threads", required_argument, NULL, 't'},
        {"oneshot", no_argument, NULL, OPT_ONESHOT},
        {"min-block", required_argument, NULL, OPT_MINBLOCK},
        {"cache-dir", required_argument, NULL, OPT_CACHEDIR},
        {"pid-file", required_argument, NULL, OPT_PIDFILE},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL, *header = NULL, *object = NULL, *pidfile = NULL, *cache_dir = NULL;
    const char *listen_addrs[16];
    int nlisten = 0;
    bool stdio_mode = false;
    struct nbd_export exp = {.name = "", .min_block = 1, .pref_block = 4096, .multi_conn = true};
    struct nbd_server_opts so = {0};
    uint64_t threads = 4;
    int c;
    while ((c = getopt_long(argc, argv, "l:re:t:vh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_FILE: file = optarg; break;
        case OPT_HEADER: header = optarg; break;
        case OPT_STORE: break;
        case OPT_OBJECT: object = optarg; break;
        case 'l':
            if (nlisten == 16)
                return cli_usage_error("at most 16 --listen addresses");
            listen_addrs[nlisten++] = optarg;
            break;
        case OPT_STDIO: stdio_mode = true; break;
        case 'r': exp.read_only = true; break;
        case 'e': exp.name = optarg; break;
        case OPT_DESC: exp.description = optarg; break;
        case 't':
            if (snap_parse_u64(optarg, &threads, "--threads") || threads < 1 || threads > 256)
                return cli_usage_error("--threads takes 1 to 256");
            break;
        case OPT_ONESHOT: so.oneshot = true; break;
        case OPT_MINBLOCK: {
            uint64_t mb;
            if (snap_parse_size(optarg, &mb, "--min-block") || !(mb == 1 || (mb >= 512 && mb <= 4096)) ||
                (mb & (mb - 1)))
                return cli_usage_error("--min-block takes 1, 512, 1024, 2048 or 4096");
            exp.min_block = (uint32_t)mb;
            break;
        }
        case OPT_PIDFILE: pidfile = optarg; break;
        case OPT_CACHEDIR: cache_dir = optarg; break;
        case 'v': snap_log_set_level(SNAP_LOG_INFO); break;
        case 'h': fputs(usage, stdout); return 0;
        default: return cli_usage_error("unknown option");
        }
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (header) {
        fprintf(stderr, "snapctl serve-nbd: --header is not built yet in this version; "
                        "--file and --object work\n");
        return SNAP_EXIT_USAGE;
    }
    if (!file == !object)
        return cli_usage_error("say what to export: --file PATH or --object URL (one of them)");
    if (stdio_mode && nlisten)
        return cli_usage_error("--stdio and --listen exclude each other");

    int err;
    if (object) {
        if (!cache_dir)
            cache_dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        if ((err = objdev_open(object, cache_dir, &g_obj)) != 0)
            return cli_fail(err, NULL);
        exp.size = objdev_size(g_obj);
        exp.ops = &object_ops;
        exp.ctx = g_obj;
        if (exp.min_block < 4096)
            exp.min_block = 4096; /* the cache's block: no read-modify-write of partial blocks */
    } else {
        if ((err = filedev_open(file, exp.read_only, &g_file)) != 0)
            return cli_fail(err, "check the path, or add --read-only for a file you cannot write");
        exp.size = filedev_size(g_file);
        exp.ops = &file_ops;
        exp.ctx = g_file;
    }
    so.conn.workers = (unsigned)threads;

    int rc = 0;
    if (stdio_mode) {
        struct nbd_conn_opts co = {.workers = (unsigned)threads, .peer = "stdio"};
        err = nbd_serve(&exp, STDIN_FILENO, STDOUT_FILENO, &co, NULL);
        if (err)
            rc = cli_fail(err, NULL);
        filedev_close(g_file);
        objdev_close(g_obj);
        return rc;
    }

    int lfds[16], nl = net_listen_fds(lfds, 16);
    if (nl == 0) {
        if (nlisten == 0)
            listen_addrs[nlisten++] = "127.0.0.1:10809";
        for (int i = 0; i < nlisten; i++) {
            if ((err = net_listen(listen_addrs[i], &lfds[nl])) != 0) {
                rc = cli_fail(err, "is another server on that port? choose one with --listen");
                goto out;
            }
            nl++;
        }
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (pidfile) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
        if ((err = snap_write_file_atomic(pidfile, buf, (size_t)n, 0644)) != 0) {
            rc = cli_fail(err, NULL);
            goto out;
        }
    }
    struct nbd_stats stats = {0};
    err = nbd_server_run(&exp, lfds, nl, &so, &stats);
    if (err)
        rc = cli_fail(err, NULL);
    snap_info("served %llu requests (%llu errors)", (unsigned long long)stats.requests,
              (unsigned long long)stats.errors);
out:
    for (int i = 0; i < nl; i++)
        close(lfds[i]);
    if (pidfile)
        unlink(pidfile);
    filedev_close(g_file);
    objdev_close(g_obj);
    return rc;
}
