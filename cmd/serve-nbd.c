/* serve-nbd.c -- the 'serve-nbd' applet: options, listening, signals; the protocol is lib/nbd. */
#include "cli.h"
#include "serve-nbd-access.h"
#include "serve-nbd-ctl.h"

#include "base/buf.h"
#include "base/cancel.h"
#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/util.h"
#include "device/builddev.h"
#include "device/device.h"
#include "header/header.h"
#include "header/layout.h"
#include "nbd/exports.h"
#include "nbd/metrics.h"
#include "nbd/nbd.h"
#include "net/listen.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "Usage: snapctl serve-nbd [OPTIONS] --file PATH\n"
    "       snapctl serve-nbd [OPTIONS] --object URL [--cache-dir DIR]\n"
    "       snapctl serve-nbd [OPTIONS] --header URL [--store URL] [--export-diff DIR]\n"
    "       snapctl serve-nbd [OPTIONS] --size SIZE --export-diff DIR [--file-name NAME]\n"
    "       snapctl serve-nbd [OPTIONS] --export NAME=HEADER_URL... [--control unix:PATH]\n"
    "       snapctl serve-nbd --control PATH export [NAME [DIR]] | add NAME HEADER_URL |\n"
    "                         remove NAME | list  [--json]\n"
    "\n"
    "Export a device over NBD (fixed newstyle; structured replies, base:allocation block\n"
    "status, TRIM, WRITE_ZEROES, FLUSH/FUA, CACHE, multi-connection).\n"
    "\n"
    "What to export:\n"
    "  --file PATH           a local file or disk image, read and written in place\n"
    "  --header URL          a build file: its header (e.g. file:///store/ID/memfile.header, or\n"
    "                        a local path such as /store/ID/memfile.header);\n"
    "                        each read resolves through the header chain, zero ranges are\n"
    "                        served without I/O, data is fetched lazily per build\n"
    "  --store URL           where the builds' objects are, a URL or a path (default: two\n"
    "                        directories above the header, the store holding {ID}/{file}.header)\n"
    "  --size SIZE           an empty all-zero device (e.g. 64M): its first export is a base\n"
    "                        build (Generation 0); with --file-name NAME (default rootfs.ext4)\n"
    "  --object URL          one object from any store URL (file://, http(s)://, s3://, gs://),\n"
    "                        fetched lazily in 4 MiB chunks; writes stay in the local cache\n"
    "  --cache-dir DIR       where the copy-on-write cache files go (default $TMPDIR or /tmp;\n"
    "                        unlinked at once; need room for what is read or written)\n"
    "\n"
    "Many devices in one process (each a build, as --header, with its own copy-on-write cache\n"
    "and its own diff; the client picks one by its NBD export name; NBD_OPT_LIST lists them):\n"
    "  --export NAME=HEADER_URL  serve the build at HEADER_URL as export NAME (repeatable; NAME:\n"
    "                        1-255 printable characters, no space, quote, backslash or '=');\n"
    "                        --store, --read-only, --min-block, --peer and --chunk-cache apply\n"
    "                        to each.  --control alone (no device) starts with none.\n"
    "  through --control:    add NAME HEADER_URL; remove NAME (refused while a client is\n"
    "                        connected to it; new connections to it are refused at once once\n"
    "                        it is removed); export NAME [DIR] (that export's diff, into DIR or\n"
    "                        --export-diff's); export (every export's); list (a JSON line per\n"
    "                        export: name, header, size, clients)\n"
    "\n"
    "Exporting the changes (--header and --size):\n"
    "  --export-diff DIR     write DIR/{newId}/{file} (the written blocks, packed) and\n"
    "                        DIR/{newId}/{file}.header (Generation + 1) at SIGTERM/SIGINT, when\n"
    "                        the last client leaves with --oneshot, on SIGUSR1, and on request\n"
    "                        through --control; nothing is written when nothing changed\n"
    "  --header-format N     format of exported headers: 3, 4 or 5 (default: the parent's)\n"
    "  --control unix:PATH   accept export requests on this Unix socket (and, with --export,\n"
    "                        add, remove and list)\n"
    "  --json                print export results as JSON (server and client form)\n"
    "\n"
    "Access traces (docs/vm-boot.md):\n"
    "  --record-access FILE  at exit, write the blocks the client touched, in first-access order,\n"
    "                        as a trace: {\"indices\", \"access_types\", \"block_size\"}; with\n"
    "                        --export-diff the trace also goes into each exported build's\n"
    "                        metadata.json (prefetch.rootfs, or prefetch.memory for a memfile)\n"
    "  --prefetch FILE|auto  fetch the trace's blocks in order ahead of the client (a trace file or\n"
    "                        a metadata.json; auto: the served build's metadata.json, if any);\n"
    "                        the client's reads go first; counters at exit (--json: a line\n"
    "                        {\"access\": ...})\n"
    "  --prefetch-threads N  chunks prefetched at once (default 2, at most 16)\n"
    "  --merge-trace FILE|auto\n"
    "                        what is recorded keeps only the blocks this trace has too (the\n"
    "                        blocks common to two runs; auto: the served build's trace)\n"
    "\n"
    "Where to listen (default tcp 127.0.0.1:10809):\n"
    "  -l, --listen ADDR     HOST:PORT, [IPv6]:PORT or unix:PATH (repeatable)\n"
    "  --stdio               serve one connection on stdin/stdout, like nbdkit -s (export\n"
    "                        results then go to stderr; SIGTERM ends the connection and exports)\n"
    "                        (systemd socket activation via LISTEN_FDS is automatic)\n"
    "\n"
    "Options:\n"
    "  -r, --read-only       refuse writes\n"
    "  -e, --export-name N   the export's name (default: \"\", the default export)\n"
    "  --description TEXT    the export's description\n"
    "  -t, --threads N       most worker threads per connection, for requests that wait\n"
    "                        (fetches, flushes); the rest run inline (default 64)\n"
    "  --min-block N         advertised minimum block size: 1 (default), 512 ... 4096;\n"
    "                        requests not aligned to it are refused with EINVAL\n"
    "  --oneshot             exit after the last client disconnects\n"
    "  --max-clients N       clients served at once, counted from GO (default 64); more are\n"
    "                        refused at GO; connections still negotiating have a cap of their\n"
    "                        own, where the oldest gives way to a newcomer\n"
    "  --handshake-timeout S seconds from connect to GO (default 10); then it is closed\n"
    "  --io-timeout S        seconds a request head, a WRITE payload or a reply may stall\n"
    "                        before the client is dropped and its buffers freed (default 30;\n"
    "                        waiting between requests is free)\n"
    "  --poll-us N           after replying, poll the socket up to N microseconds for the\n"
    "                        next request while the client keeps answering that fast, so\n"
    "                        no thread wake-up is paid (default 50; 0: never poll)\n"
    "  --pid-file FILE       write the PID once listening\n"
    "  --metrics HOST:PORT   serve Prometheus text on GET /metrics (HTTP): requests by command,\n"
    "                        bytes, cache hits, store reads and bytes, chunk-cache hits, fetch\n"
    "                        errors and READ latency histograms, cold (waited for a fetch) and\n"
    "                        warm, per export (label export=\"NAME\") and in total\n"
    "  --metrics-allow CIDR  clients allowed on --metrics (repeatable; default loopback only)\n"
    "  -v, --verbose         log connections and where s3:// credentials came from (SNAPCTL_LOG=debug\n"
    "                        for every request)\n"
    "  -h, --help            show this help\n"
    "\n"
    CLI_PEER_USAGE
    "  (with --object or --header; with --header the header itself is read through the peer\n"
    "  too, so a build whose upload is not finished opens from the peer alone)\n"
    "\n"
    CLI_CHUNK_CACHE_USAGE
    "  (with --object or --header: the data objects of every build in the header's chain; behind\n"
    "  --peer, in front of the store only)\n"
    "\n"
    "SIGTERM or SIGINT stops accepting, gives in-flight requests 2 s to finish, closes every\n"
    "connection (whatever the client does), exports the diff (with --export-diff), exits 0.\n";

/* ---- the device: one row of dev_kinds[] per kind; lib/device opens and serves it ---------- */

/* What the options say about the device. */
struct dev_args {
    const char *file, *object, *header, *store, *cache_dir, *file_name;
    uint64_t size;
    unsigned header_format;
    bool read_only;
    const struct cli_store_opts *sto; /* --peer and friends, for the store behind the device */
};

struct dev_kind {
    const char *option;
    enum device_kind kind;
    bool export_diff;    /* a build: --export-diff can export its changes */
};

static const struct dev_kind dev_kinds[] = {
    {"--file", DEVICE_FILE, false},
    {"--object", DEVICE_OBJECT, false},
    {"--header", DEVICE_BUILD, true},
    {"--size", DEVICE_EMPTY, true},
};

/* --header URL: where the build is (lib/header/layout.h), and its store opened into o->store.
 * The store defaults to the directory above {ID}/.  With --peer the header itself is read
 * through the peer too (key {ID}/{file}.header of the store): a build still uploading has its
 * header only there.  Returns an exit code, after printing the error. */
static int header_store(const struct dev_args *a, struct device_opts *o, struct hdr_layout *l, char **url)
{
    char *store = NULL;
    int err = cli_object_url(a->header, url); /* a plain path is file:// */
    if (!err && (err = hdr_layout_from_header_url(*url, l)) == SNAP_EUSAGE)
        return cli_usage_error("--header %s", snap_errmsg(err));
    if (err)
        return cli_fail(err, NULL);
    if (a->store && (err = cli_object_url(a->store, &store)) != 0) /* a path too */
        return cli_fail(snap_fail_ctx(err, "--store"), NULL);
    err = cli_open_store(store ? store : l->store, a->sto, &o->store);
    snap_free(store);
    if (err && a->store)
        return cli_fail(snap_fail_ctx(err, "--store"), NULL);
    if (err)
        return cli_fail(snap_fail_ctx(err, "--header %s: the store two directories up", a->header),
                        "check the path; or say where the builds are with --store URL");
    o->path = *url;
    o->name = a->header;
    o->file = l->file;
    o->key = a->sto->peer || a->sto->registry ? l->header_key : NULL;
    return 0;
}

/* Open the device the options name.  Returns an exit code, after printing the error. */
static int dev_open(const struct dev_args *a, const struct dev_kind *k, struct device **dev)
{
    struct device_opts o = {.kind = k->kind, .path = a->file, .file = a->file_name, .size = a->size,
                            .cache_dir = a->cache_dir, .header_format = a->header_format,
                            .read_only = a->read_only};
    struct hdr_layout l = {0};
    char *url = NULL, *key = NULL;
    int rc = 0, err = 0;
    if (k->kind == DEVICE_OBJECT && (err = cli_open_object(a->object, a->sto, &o.store, &key)) == 0)
        o.key = key;
    else if (k->kind == DEVICE_BUILD)
        rc = header_store(a, &o, &l, &url);
    if (!rc && !err && (err = device_open(&o, dev)) == 0 && k->kind == DEVICE_BUILD &&
        (builddev_header((*dev)->build)->flags & HDR_FLAG_INCOMPLETE))
        snap_info("%s: the build's upload is not finished; serving it all the same", a->header);
    if (!rc && err) {
        const char *hint = NULL;
        if (k->kind == DEVICE_FILE)
            hint = "check the path, or add --read-only for a file you cannot write";
        else if (k->kind == DEVICE_BUILD && (err == SNAP_EFORMAT || err == SNAP_ECHECK || err == SNAP_ETOOBIG))
            hint = "inspect-header --check says more about a header";
        rc = cli_fail(err, hint);
    }
    hdr_layout_free(&l);
    snap_free(url);
    snap_free(key);
    return rc;
}

#define SN_EXPORTS_MAX 1024 /* --export options; more through --control */

/* Everything the command line says. */
struct sn_cfg {
    struct cli_store_opts sto;
    struct dev_args a;
    struct sn_access_args acc;
    const char *pidfile, *export_dir, *control, *metrics;
    const char *listen_addrs[16];
    int nlisten;
    bool stdio_mode, json;
    const char *exports[SN_EXPORTS_MAX]; /* --export NAME=HEADER_URL */
    int nexports;
    struct nbd_export exp;              /* the export; with --export, what every export is like */
    struct nbd_server_opts so;
    struct httpd_cidr metrics_allow[16];
    size_t nmetrics_allow;
    uint64_t threads;
};

/* ---- the exports: every device served is an entry of the registry (lib/nbd/exports.h) -------
 * With --file/--object/--header/--size there is one, named by --export-name; with --export
 * NAME=HEADER_URL (and `add` through --control) there are as many as asked, each a build device
 * with its own copy-on-write cache and its own diff.  An entry's owner is its struct sn_export. */
struct sn_export {
    struct device *dev;
    char *url;                  /* --export's HEADER_URL (NULL: the one device of the options) */
    struct sn_access *acc;      /* the one device's trace layer (NULL: none) */
};

struct sn_server {
    struct sn_cfg *g;
    struct nbd_exports *reg;
    bool multi;                 /* --export, or --control alone: exports come and go */
};

/* Append text to an answer (an answer too long for the buffer is cut; the client says so). */
static void put_text(struct snap_buf *out, const char *text)
{
    snap_buf_append(out, text, strlen(text));
}

static void put_error(struct snap_buf *out, int err)
{
    char line[1024];
    snprintf(line, sizeof line, "{\"ok\":false,\"error\":\"");
    size_t n = strlen(line);
    for (const char *m = snap_errmsg(err); *m && n < sizeof line - 64; m++) /* JSON-safe */
        line[n++] = *m == '"' || *m == '\\' ? '\'' : (unsigned char)*m < 0x20 ? ' ' : *m;
    snprintf(line + n, sizeof line - n, "\",\"exit\":%d}\n", snap_exit_code(err));
    put_text(out, line);
}

/* The diff of one export into dir, as one answer line (with "export":"NAME" first when named). */
static int export_one(struct nbd_entry *e, const char *dir, bool named, struct snap_buf *out)
{
    struct sn_export *x = e->owner;
    static _Thread_local char reply[16384];
    struct builddev_export r;
    int err = dir ? device_export(x->dev, dir, &r)
                  : snap_fail(SNAP_EUSAGE, "export %s: no directory: say export NAME DIR, or start the server "
                                           "with --export-diff DIR", e->exp.name);
    if (!err && (err = sn_access_exported(x->acc, &r)) != 0)
        snap_fail_ctx(err, "the build was exported, but not its metadata.json");
    if (err && !dir) {
        put_error(out, err);
        return err;
    }
    device_export_json(err, &r, reply, sizeof reply);
    if (named && reply[0] == '{') {
        put_text(out, "{\"export\":\"");
        put_text(out, e->exp.name);
        put_text(out, "\",");
        put_text(out, reply + 1);
    } else {
        put_text(out, reply);
    }
    return err;
}

/* fn on every export live now, each held meanwhile; the first failure is returned. */
typedef int (*sn_each_fn)(struct sn_server *s, struct nbd_entry *e, const char *dir, struct snap_buf *out);
static int each_export(struct sn_server *s, const char *dir, struct snap_buf *out, sn_each_fn fn)
{
    struct nbd_entry **v;
    size_t n;
    int err = nbd_exports_snapshot(s->reg, &v, &n);
    if (err) {
        put_error(out, err);
        return err;
    }
    for (size_t i = 0; i < n; i++) {
        int e = fn(s, v[i], dir, out);
        err = err ? err : e;
    }
    nbd_exports_release(s->reg, v, n);
    return err;
}

static int export_each(struct sn_server *s, struct nbd_entry *e, const char *dir, struct snap_buf *out)
{
    return export_one(e, dir, s->multi, out);
}

/* Every export's diff into dir (SIGUSR1, `export`, the exit): one line each. */
static int export_all(struct sn_server *s, const char *dir, struct snap_buf *out)
{
    return each_export(s, dir, out, export_each);
}

/* A name an operator can type and JSON needs no escape for: 1 to 255 printable ASCII bytes
 * without space, quote, backslash or '='. */
static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (name[i] <= ' ' || name[i] > '~' || strchr("\"\\=", name[i]))
            return false;
    return n >= 1 && n <= 255;
}

static int dev_open(const struct dev_args *a, const struct dev_kind *k, struct device **dev);

/* Open the build at url and add it as export name.  0 or a snap_err (with its message; what
 * opening printed for people went to stderr, the server's log). */
static int export_add(struct sn_server *s, const char *name, const char *url, uint64_t *size)
{
    if (!name_ok(name))
        return snap_fail(SNAP_EUSAGE, "export name '%.64s': 1 to 255 printable characters, no space, quote, "
                                      "backslash or '='", name);
    struct nbd_entry *e = nbd_exports_get(s->reg, name, strlen(name), NBD_REF_PEEK);
    nbd_exports_put(s->reg, e, NBD_REF_PEEK);
    if (e) /* before opening anything */
        return snap_fail(SNAP_EEXIST, "an export named '%s' exists already", name);
    struct sn_export *x = snap_calloc(1, sizeof *x);
    if (!x || !(x->url = snap_strdup(url))) {
        snap_free(x);
        return snap_fail(SNAP_ENOMEM, "out of memory");
    }
    struct dev_args a = s->g->a;
    a.header = url;
    int rc = dev_open(&a, &dev_kinds[2], &x->dev), err = 0;
    if (rc)
        err = snap_fail(rc == SNAP_EXIT_USAGE ? SNAP_EUSAGE : SNAP_EIO, "export %s: cannot open %s "
                        "(the server's log says why)", name, url);
    struct nbd_export exp = s->g->exp;
    if (!err) {
        exp.name = name;
        exp.ops = x->dev->ops;
        exp.ctx = x->dev->ctx;
        exp.size = x->dev->size;
        exp.min_block = exp.min_block < x->dev->min_block ? x->dev->min_block : exp.min_block;
        err = nbd_exports_add(s->reg, &exp, x->dev, x, NULL);
    }
    if (err) {
        device_close(x->dev);
        snap_free(x->url);
        snap_free(x);
        return err;
    }
    snap_info("export %s: serving %s (%llu bytes)", name, url, (unsigned long long)exp.size);
    *size = exp.size;
    return 0;
}

/* Take export name out and close its device: refused while a client is connected to it. */
static int export_remove(struct sn_server *s, const char *name)
{
    void *owner = NULL;
    int err = nbd_exports_remove(s->reg, name, &owner);
    if (err)
        return err;
    struct sn_export *x = owner;
    cli_store_done(x->dev->store, &s->g->sto);
    device_close(x->dev);
    snap_free(x->url);
    snap_free(x);
    snap_info("export %s: removed", name);
    return 0;
}

/* One line of `list`: {"export":..,"header":..,"size":..,"clients":..}. */
static int list_each(struct sn_server *s, struct nbd_entry *e, const char *dir, struct snap_buf *out)
{
    (void)dir;
    struct sn_export *x = e->owner;
    char line[256];
    put_text(out, "{\"export\":\"");
    put_text(out, e->exp.name);
    put_text(out, "\",\"header\":");
    put_text(out, x->url ? "\"" : "null");
    if (x->url) { /* a URL may hold a quote: JSON-escaped by hand, it is short */
        for (const char *c = x->url; *c; c++) {
            char esc[8];
            snprintf(esc, sizeof esc, *c == '"' || *c == '\\' ? "\\%c" : (unsigned char)*c < 0x20 ? "\\u%04x" : "%c", *c);
            put_text(out, esc);
        }
        put_text(out, "\"");
    }
    snprintf(line, sizeof line, ",\"size\":%llu,\"clients\":%u}\n", (unsigned long long)e->exp.size,
             nbd_exports_clients(s->reg, e));
    put_text(out, line);
    return 0;
}

/* One control request (NULL: SIGUSR1): export [NAME [DIR]], add NAME URL, remove NAME, list. */
static int sn_control(void *ctx, const char *line, struct snap_buf *out)
{
    struct sn_server *s = ctx;
    if (!line)
        return export_all(s, s->g->export_dir, out);
    char buf[8193], *w[4] = {0};
    int nw = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save))
        if (nw < 4)
            w[nw++] = t;
        else
            nw = 5;
    int err = 0;
    uint64_t size = 0;
    if (nw >= 1 && !strcmp(w[0], "export") && nw <= 3) {
        if (nw == 1)
            return export_all(s, s->g->export_dir, out);
        struct nbd_entry *e = nbd_exports_get(s->reg, w[1], strlen(w[1]), NBD_REF_PEEK);
        if (!e)
            err = snap_fail(SNAP_ENOTFOUND, "no export named '%.255s' (list shows them)", w[1]);
        else
            err = export_one(e, nw == 3 ? w[2] : s->g->export_dir, true, out);
        nbd_exports_put(s->reg, e, NBD_REF_PEEK);
        if (!e)
            put_error(out, err);
        return err;
    }
    if (nw == 1 && !strcmp(w[0], "list"))
        return each_export(s, NULL, out, list_each);
    bool add = nw == 3 && !strcmp(w[0], "add"), rm = nw == 2 && !strcmp(w[0], "remove");
    if ((add || rm) && !s->multi)
        err = snap_fail(SNAP_EUSAGE, "%s: this server serves one device; start it with --export NAME=HEADER_URL "
                                     "(or --control alone) to add and remove exports", w[0]);
    else if (add || rm)
        err = add ? export_add(s, w[1], w[2], &size) : export_remove(s, w[1]);
    else
        err = snap_fail(SNAP_EUSAGE, "unknown command; the commands are export [NAME [DIR]], add NAME HEADER_URL, "
                                     "remove NAME and list");
    if (err) {
        put_error(out, err);
        return err;
    }
    char ok[512];
    if (add)
        snprintf(ok, sizeof ok, "{\"ok\":true,\"export\":\"%s\",\"size\":%llu}\n", w[1],
                 (unsigned long long)size);
    else
        snprintf(ok, sizeof ok, "{\"ok\":true,\"export\":\"%s\"}\n", w[1]);
    put_text(out, ok);
    return 0;
}

/* ---- signals: lib/base/cancel's thread takes them, this hook decides -------------------------
 * SIGUSR1 asks for an export; SIGTERM/SIGINT stop what runs: the server (stop accepting, finish,
 * export, exit 0), or a --stdio client on a socket; before either runs, or on a pipe that cannot
 * be stopped, the process dies of the signal.  A second SIGTERM/SIGINT ends it at once (130). */
enum sig_mode { SIG_EARLY, SIG_LISTEN, SIG_STDIO_SOCKET, SIG_STDIO_PIPE };
static _Atomic int g_sig_mode = SIG_EARLY;
static _Atomic bool g_stdio_stopped; /* --stdio ended by a signal: a broken stream is expected */

static void sn_on_signal(int sig, void *arg)
{
    (void)arg;
    if (sig == SIGUSR1) {
        ctl_poke(); /* an export, if --export-diff is on */
        return;
    }
    switch ((int)atomic_load(&g_sig_mode)) {
    case SIG_LISTEN:
        net_server_stop();
        break;
    case SIG_STDIO_SOCKET:
        /* The reader sees end of file, the connection ends as if the client had left (replies in
         * flight still go out), and the export at exit runs.  A client that reads none of its
         * replies gets the same 2 s grace as over --listen; then its socket is shut both ways so
         * the stuck replies fail (the process is usually gone by then). */
        g_stdio_stopped = true;
        shutdown(STDIN_FILENO, SHUT_RD);
        sleep(2);
        shutdown(STDIN_FILENO, SHUT_RDWR);
        break;
    default: { /* nothing to wind down yet, or a pipe that cannot be stopped: die of it */
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        signal(sig, SIG_DFL);
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
        raise(sig);
        _exit(128 + sig);
    }
    }
}
static struct snap_cancel g_cancel = {.grace_ms = -1, .usr1 = true, .hook = sn_on_signal};

enum {
    OPT_FILE = 256, OPT_HEADER, OPT_STORE, OPT_OBJECT, OPT_STDIO, OPT_DESC, OPT_ONESHOT, OPT_PIDFILE,
    OPT_MINBLOCK, OPT_CACHEDIR, OPT_SIZE, OPT_FILENAME, OPT_EXPORTDIFF, OPT_CONTROL, OPT_JSON,
    OPT_HDRFORMAT, OPT_MAXCLIENTS, OPT_HSTIMEOUT, OPT_IOTIMEOUT, OPT_RECORD, OPT_PREFETCH, OPT_PFTHREADS,
    OPT_MERGE, OPT_POLLUS, OPT_METRICS, OPT_METRICS_ALLOW, OPT_EXPORT,
};

static const struct option sn_longopts[] = {
    {"file", required_argument, NULL, OPT_FILE},
    {"header", required_argument, NULL, OPT_HEADER},
    {"export", required_argument, NULL, OPT_EXPORT},
    {"store", required_argument, NULL, OPT_STORE},
    {"object", required_argument, NULL, OPT_OBJECT},
    {"size", required_argument, NULL, OPT_SIZE},
    {"file-name", required_argument, NULL, OPT_FILENAME},
    {"export-diff", required_argument, NULL, OPT_EXPORTDIFF},
    {"header-format", required_argument, NULL, OPT_HDRFORMAT},
    {"control", required_argument, NULL, OPT_CONTROL},
    {"json", no_argument, NULL, OPT_JSON},
    {"record-access", required_argument, NULL, OPT_RECORD},
    {"prefetch", required_argument, NULL, OPT_PREFETCH},
    {"prefetch-threads", required_argument, NULL, OPT_PFTHREADS},
    {"merge-trace", required_argument, NULL, OPT_MERGE},
    {"listen", required_argument, NULL, 'l'},
    {"stdio", no_argument, NULL, OPT_STDIO},
    {"read-only", no_argument, NULL, 'r'},
    {"export-name", required_argument, NULL, 'e'},
    {"description", required_argument, NULL, OPT_DESC},
    {"threads", required_argument, NULL, 't'},
    {"oneshot", no_argument, NULL, OPT_ONESHOT},
    {"max-clients", required_argument, NULL, OPT_MAXCLIENTS},
    {"handshake-timeout", required_argument, NULL, OPT_HSTIMEOUT},
    {"io-timeout", required_argument, NULL, OPT_IOTIMEOUT},
    {"poll-us", required_argument, NULL, OPT_POLLUS},
    {"min-block", required_argument, NULL, OPT_MINBLOCK},
    {"cache-dir", required_argument, NULL, OPT_CACHEDIR},
    {"pid-file", required_argument, NULL, OPT_PIDFILE},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"metrics-allow", required_argument, NULL, OPT_METRICS_ALLOW},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    CLI_PEER_LONGOPTS,
    CLI_CHUNK_CACHE_LONGOPTS,
    {NULL, 0, NULL, 0},
};

/* One option of serve-nbd's own (not --peer and friends): 0 taken, else an exit code. */
static int sn_option(struct sn_cfg *g, int c, const char *arg)
{
    uint64_t u;
    switch (c) {
    case OPT_FILE: g->a.file = arg; return 0;
    case OPT_HEADER: g->a.header = arg; return 0;
    case OPT_EXPORT:
        if (g->nexports == SN_EXPORTS_MAX)
            return cli_usage_error("at most %d --export options (add more through --control)", SN_EXPORTS_MAX);
        if (!strchr(arg, '=') || strchr(arg, '=') == arg || !strchr(arg, '=')[1])
            return cli_usage_error("--export takes NAME=HEADER_URL, such as vm1=/store/ID/rootfs.ext4.header");
        g->exports[g->nexports++] = arg;
        return 0;
    case OPT_STORE: g->a.store = arg; return 0;
    case OPT_OBJECT: g->a.object = arg; return 0;
    case OPT_SIZE:
        if (snap_parse_size(arg, &g->a.size, "--size") || g->a.size == 0)
            return cli_usage_error("--size takes a size above 0, such as 64M");
        return 0;
    case OPT_FILENAME: g->a.file_name = arg; return 0;
    case OPT_EXPORTDIFF: g->export_dir = arg; return 0;
    case OPT_HDRFORMAT:
        if (snap_parse_u64(arg, &u, "--header-format") || u < 3 || u > 5)
            return cli_usage_error("--header-format takes 3, 4 or 5");
        g->a.header_format = (unsigned)u;
        return 0;
    case OPT_CONTROL: g->control = arg; return 0;
    case OPT_JSON: g->json = true; return 0;
    case OPT_RECORD: g->acc.record = arg; return 0;
    case OPT_PREFETCH: g->acc.prefetch = arg; return 0;
    case OPT_MERGE: g->acc.merge = arg; return 0;
    case OPT_PFTHREADS:
        if (snap_parse_u64(arg, &u, "--prefetch-threads") || u < 1 || u > 16)
            return cli_usage_error("--prefetch-threads takes 1 to 16");
        g->acc.prefetch_threads = (unsigned)u;
        return 0;
    case 'l':
        if (g->nlisten == 16)
            return cli_usage_error("at most 16 --listen addresses");
        g->listen_addrs[g->nlisten++] = arg;
        return 0;
    case OPT_STDIO: g->stdio_mode = true; return 0;
    case 'r': g->a.read_only = g->exp.read_only = true; return 0;
    case 'e': g->exp.name = arg; return 0;
    case OPT_DESC: g->exp.description = arg; return 0;
    case 't':
        if (snap_parse_u64(arg, &g->threads, "--threads") || g->threads < 1 || g->threads > 256)
            return cli_usage_error("--threads takes 1 to 256");
        return 0;
    case OPT_ONESHOT: g->so.oneshot = true; return 0;
    case OPT_MAXCLIENTS: return cli_parse_max_clients(arg, &g->so.max_conns);
    case OPT_HSTIMEOUT: return cli_parse_seconds(arg, "--handshake-timeout", &g->so.handshake_ms);
    case OPT_IOTIMEOUT: return cli_parse_seconds(arg, "--io-timeout", &g->so.conn.io_timeout_ms);
    case OPT_POLLUS:
        if (snap_parse_u64(arg, &u, "--poll-us") || u > 10000)
            return cli_usage_error("--poll-us takes 0 (no polling) to 10000 microseconds");
        g->so.conn.poll_us = u ? (int)u : -1;
        return 0;
    case OPT_MINBLOCK:
        if (snap_parse_size(arg, &u, "--min-block") || !(u == 1 || (u >= 512 && u <= 4096)) || (u & (u - 1)))
            return cli_usage_error("--min-block takes 1, 512, 1024, 2048 or 4096");
        g->exp.min_block = (uint32_t)u;
        return 0;
    case OPT_PIDFILE: g->pidfile = arg; return 0;
    case OPT_METRICS: g->metrics = arg; return 0;
    case OPT_METRICS_ALLOW:
        return cli_parse_allow(arg, "--metrics-allow", g->metrics_allow, &g->nmetrics_allow, 16);
    case OPT_CACHEDIR: g->a.cache_dir = arg; return 0;
    case 'v': snap_log_set_level(SNAP_LOG_INFO); return 0;
    }
    int rc = cli_peer_opt(&g->sto, c, arg);
    return rc < 0 ? SNAP_EXIT_USAGE : rc; /* CLI_OPT_BAD: cli_getopt said why */
}

/* The checks of every form: listening, --metrics, the chunk cache, the cache directory. */
static int sn_check_common(struct sn_cfg *g)
{
    if (g->stdio_mode && g->nlisten)
        return cli_usage_error("--stdio and --listen exclude each other");
    if (g->nmetrics_allow && !g->metrics)
        return cli_usage_error("--metrics-allow goes with --metrics HOST:PORT");
    if (g->metrics && !strncmp(g->metrics, "unix:", 5))
        return cli_usage_error("--metrics takes HOST:PORT (HTTP over TCP), not a Unix socket");
    int rc = cli_chunk_cache_env(&g->sto);
    if (rc)
        return rc;
    if (!g->a.cache_dir)
        g->a.cache_dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    return 0;
}

/* --export NAME=HEADER_URL (or --control alone): every export a build; *kindp = NULL. */
static int sn_check_multi(struct sn_cfg *g, const struct dev_kind **kindp)
{
    if (g->exp.name && *g->exp.name)
        return cli_usage_error("--export-name names the one device; with --export the name is NAME in NAME=HEADER_URL");
    if (g->a.file_name)
        return cli_usage_error("--file-name goes with --size");
    if (g->acc.record || g->acc.prefetch || g->acc.merge)
        return cli_usage_error("--record-access, --prefetch and --merge-trace go with one device (--header), "
                               "not with --export");
    *kindp = NULL;
    return sn_check_common(g);
}

/* The options that go together, and the device kind they pick: 0 or a usage error. */
static int sn_check(struct sn_cfg *g, const struct dev_kind **kindp)
{
    struct dev_args *a = &g->a;
    const struct dev_kind *kind = NULL;
    const char *chosen[] = {a->file, a->object, a->header, a->size ? "" : NULL};
    for (size_t i = 0; i < sizeof dev_kinds / sizeof dev_kinds[0]; i++) {
        if (!chosen[i])
            continue;
        if (kind)
            return cli_usage_error("%s and %s exclude each other", kind->option, dev_kinds[i].option);
        kind = &dev_kinds[i];
    }
    bool multi = g->nexports || (!kind && g->control);
    if (kind && g->nexports)
        return cli_usage_error("%s and --export exclude each other: serve one device, or name each with "
                               "--export NAME=HEADER_URL", kind->option);
    if (!kind && !multi)
        return cli_usage_error("say what to export: --file PATH, --object URL, --header URL, --size SIZE, or "
                               "--export NAME=HEADER_URL (repeatable)");
    if (multi)
        return sn_check_multi(g, kindp);
    if (a->store && !a->header)
        return cli_usage_error("--store goes with --header");
    if (a->file_name && !a->size)
        return cli_usage_error("--file-name goes with --size (with --header the name is the header's)");
    if (a->size && !g->export_dir)
        return cli_usage_error("--size makes an empty device to build a base from: add --export-diff DIR");
    if (g->export_dir && !kind->export_diff)
        return cli_usage_error("--export-diff needs --header or --size: %s has no header to diff against "
                               "(serve a build with --header URL to export its changes)", kind->option);
    if (cli_peer_wanted(&g->sto) && !a->object && !a->header)
        return cli_usage_error("--peer reads a store: it goes with --object or --header");
    if (g->sto.chunk_cache && !a->object && !a->header)
        return cli_usage_error("--chunk-cache keeps what is read from a store: it goes with --object or --header");
    if (g->control && !g->export_dir)
        return cli_usage_error("--control takes export requests: add --export-diff DIR");
    *kindp = kind;
    return sn_check_common(g);
}

/* --stdio: one client on stdin/stdout; what is printed (export answers) goes to stderr. */
static int sn_serve_stdio(struct sn_cfg *g, struct nbd_exports *reg)
{
    int nbd_out = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    struct stat st;
    if (nbd_out < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
        return cli_fail(snap_fail_errno("--stdio: stdout"), NULL);
    g_sig_mode = fstat(STDIN_FILENO, &st) == 0 && S_ISSOCK(st.st_mode) ? SIG_STDIO_SOCKET : SIG_STDIO_PIPE;
    struct nbd_conn_opts co = {.workers = (unsigned)g->threads, .peer = "stdio",
                               .io_timeout_ms = g->so.conn.io_timeout_ms, .poll_us = g->so.conn.poll_us};
    int rc = 0, err = nbd_serve_exports(reg, STDIN_FILENO, nbd_out, &co);
    if (err && g_stdio_stopped)
        snap_warn("%s", snap_errmsg(err)); /* the stop cut the client off: export all the same */
    else if (err)
        rc = cli_fail(err, NULL);
    close(nbd_out);
    return rc;
}

/* Listen (sockets passed by systemd, or --listen), write the PID file, serve until stopped. */
static int sn_serve_listen(struct sn_cfg *g, struct nbd_exports *reg, struct cli_listener *ls, int *nls, int *lfds,
                           int *nl)
{
    int rc, err;
    *nl = net_listen_fds(lfds, 16);
    if (*nl == 0) {
        if (g->nlisten == 0)
            g->listen_addrs[g->nlisten++] = "127.0.0.1:10809";
        for (int i = 0; i < g->nlisten; i++) {
            if ((rc = cli_listen(g->listen_addrs[i], &ls[*nls])) != 0)
                return rc;
            lfds[(*nl)++] = ls[(*nls)++].fd;
        }
    }
    g_sig_mode = SIG_LISTEN;
    if (g->pidfile && (rc = cli_write_pidfile(g->pidfile)) != 0)
        return rc;
    err = nbd_server_run(reg, lfds, *nl, &g->so);
    return err ? cli_fail(err, NULL) : 0;
}

/* --metrics: GET /metrics on its own listener and thread, until sn_metrics_stop. */
struct sn_metrics {
    struct cli_listener l;
    struct httpd_opts o;
    struct nbd_metrics *m;
};

static int sn_metrics_start(struct sn_cfg *g, struct nbd_exports *reg, struct sn_metrics *sm)
{
    if (!g->metrics)
        return 0;
    int rc = cli_listen_opt("--metrics", g->metrics, &sm->l), err;
    if (rc)
        return rc;
    sm->o = (struct httpd_opts){.allow = g->metrics_allow, .nallow = g->nmetrics_allow, .max_conns = 16};
    if ((err = nbd_metrics_start(sm->l.fd, &sm->o, reg, &sm->m)) != 0) {
        cli_unlisten(&sm->l);
        return cli_fail(err, NULL);
    }
    return 0;
}

static void sn_metrics_stop(struct sn_metrics *sm)
{
    int err = nbd_metrics_stop(sm->m);
    if (err)
        snap_warn("--metrics: %s", snap_errmsg(err));
    sm->m = NULL;
    cli_unlisten(&sm->l);
}

/* The one device of --file/--object/--header/--size, as the registry's only export. */
static int sn_open_one(struct sn_cfg *g, const struct dev_kind *kind, struct sn_server *s)
{
    struct sn_export *x = snap_calloc(1, sizeof *x);
    if (!x)
        return cli_fail(snap_fail(SNAP_ENOMEM, "out of memory"), NULL);
    int rc = dev_open(&g->a, kind, &x->dev), err;
    if (rc) {
        snap_free(x);
        return rc;
    }
    g->exp.ops = x->dev->ops;
    g->exp.ctx = x->dev->ctx;
    g->exp.size = x->dev->size;
    if (g->exp.min_block < x->dev->min_block)
        g->exp.min_block = x->dev->min_block;
    if (x->dev->build) { /* the access recorder / prefetcher in front of it */
        g->acc.file = x->dev->file;
        g->acc.header = builddev_header(x->dev->build);
        g->acc.store = x->dev->store;
    }
    g->acc.export_diff = g->export_dir != NULL;
    if ((rc = sn_access_setup(&g->acc, &g->exp, &x->acc)) == 0 &&
        (err = nbd_exports_add(s->reg, &g->exp, x->dev, x, NULL)) != 0)
        rc = cli_fail(err, NULL);
    if (rc) {
        sn_access_finish(x->acc, false);
        cli_store_done(x->dev->store, &g->sto);
        device_close(x->dev);
        snap_free(x);
    }
    return rc;
}

/* --export NAME=HEADER_URL, each. */
static int sn_open_many(struct sn_cfg *g, struct sn_server *s)
{
    for (int i = 0; i < g->nexports; i++) {
        char name[256];
        const char *eq = strchr(g->exports[i], '=');
        uint64_t size;
        snprintf(name, sizeof name, "%.*s", (int)(eq - g->exports[i] < 255 ? eq - g->exports[i] : 255), g->exports[i]);
        int err = (size_t)(eq - g->exports[i]) > 255 ? snap_fail(SNAP_EUSAGE, "--export: a name of more than 255 bytes")
                                                     : export_add(s, name, eq + 1, &size);
        if (err)
            return cli_fail(snap_fail_ctx(err, "--export %s", g->exports[i]), NULL);
    }
    return 0;
}

/* After the server: the export at exit, then every device closed.  Returns an exit code. */
static int sn_finish(struct sn_server *s, bool export, int rc)
{
    struct snap_buf out;
    snap_buf_init(&out, 4096, 16u << 20);
    if (export && rc == 0) {
        export_all(s, s->g->export_dir, &out);
        for (size_t at = 0; at < out.len;) {
            const char *p = (const char *)out.data + at, *nl = memchr(p, '\n', out.len - at);
            size_t n = nl ? (size_t)(nl - p) + 1 : out.len - at;
            int lrc = ctl_print_reply(p, n, s->g->json);
            rc = rc ? rc : lrc;
            at += n;
        }
    }
    snap_buf_free(&out);
    struct nbd_entry **v;
    size_t n;
    uint64_t req = 0, errs = 0;
    if (nbd_exports_snapshot(s->reg, &v, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            struct sn_export *x = v[i]->owner;
            req += v[i]->stats.requests;
            errs += v[i]->stats.errors;
            int arc = sn_access_finish(x->acc, s->g->json);
            x->acc = NULL;
            rc = rc ? rc : arc;
        }
        nbd_exports_release(s->reg, v, n);
    }
    static char name[NBD_NAME_MAX + 1];
    while (nbd_exports_snapshot(s->reg, &v, &n) == 0) { /* close them, first to last */
        if (n)
            snprintf(name, sizeof name, "%s", v[0]->exp.name);
        nbd_exports_release(s->reg, v, n);
        if (!n || export_remove(s, name) != 0)
            break;
    }
    snap_info("served %llu requests (%llu errors)", (unsigned long long)req, (unsigned long long)errs);
    return rc;
}

/* Open the devices, serve them, export at the end. */
static int sn_run(struct sn_cfg *g, const struct dev_kind *kind)
{
    int err, rc;
    unsigned stale = 0;
    if (g->export_dir && (err = builddev_clean_export_dir(g->export_dir, &stale)) != 0)
        snap_warn("%s (leftovers of earlier exports stay)", snap_errmsg(err));
    struct sn_server s = {.g = g, .multi = kind == NULL};
    if ((rc = snap_cancel_start(&g_cancel)) != 0) /* before the device starts threads */
        return cli_fail(rc, NULL);
    if ((err = nbd_exports_new(&s.reg)) != 0)
        return cli_fail(err, NULL);
    rc = kind ? sn_open_one(g, kind, &s) : sn_open_many(g, &s);
    g->so.conn.workers = (unsigned)g->threads;
    ctl_set_json(g->json);
    struct ctl *ctl = NULL;
    int lfds[16], nl = 0, nls = 0;
    struct cli_listener ls[16];
    struct sn_metrics sm = {.l.fd = -1};
    if (rc || (rc = sn_metrics_start(g, s.reg, &sm)) != 0)
        goto out;
    if ((g->export_dir || g->control) && (err = ctl_start(g->control, sn_control, &s, &ctl)) != 0)
        rc = cli_fail(err, "is the --control path writable?");
    else
        rc = g->stdio_mode ? sn_serve_stdio(g, s.reg) : sn_serve_listen(g, s.reg, ls, &nls, lfds, &nl);
out:
    ctl_stop(ctl);
    /* The export at exit (SIGTERM/SIGINT, --oneshot's last disconnect, or --stdio's end), then
     * the devices closed; /metrics answers until then. */
    rc = sn_finish(&s, ctl && g->export_dir, rc);
    sn_metrics_stop(&sm);
    for (int i = 0; i < nls; i++)
        cli_unlisten(&ls[i]); /* and its unix: socket file */
    for (int i = nls; i < nl; i++)
        close(lfds[i]);
    if (g->pidfile)
        unlink(g->pidfile);
    nbd_exports_free(s.reg);
    return rc;
}

int serve_nbd_main(int argc, char **argv)
{
    struct sn_cfg g = {0};
    g.a.sto = &g.sto;
    g.exp = (struct nbd_export){.name = "", .min_block = 1, .pref_block = 4096, .multi_conn = true};
    g.threads = 64;
    int c, rc;
    while ((c = cli_getopt(argc, argv, "l:re:t:vh", sn_longopts)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        if ((rc = sn_option(&g, c, optarg)) != 0)
            return rc;
    }
    /* The client form: serve-nbd --control PATH COMMAND [ARGS] [--json]. */
    if (g.control && optind < argc) {
        if (g.a.file || g.a.object || g.a.header || g.a.size || g.export_dir || g.nexports)
            return cli_usage_error("the client form is: serve-nbd --control PATH COMMAND [ARGS] [--json]");
        return ctl_client(g.control, argv + optind, argc - optind, g.json);
    }
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    const struct dev_kind *kind = NULL;
    if ((rc = sn_check(&g, &kind)) != 0)
        return rc;
    return sn_run(&g, kind);
}
