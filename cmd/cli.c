/* cli.c -- helpers shared by the applets: error printing, option checks, opening stores. */
#include "cli.h"

#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/util.h"
#include "net/listen.h"
#include "net/url.h"
#include "store/store.h"
#include "store/tiered.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_fail(int err, const char *hint)
{
    fprintf(stderr, "snapctl %s: %s\n", cli_applet, snap_errmsg(err));
    if (hint)
        fprintf(stderr, "snapctl %s: %s\n", cli_applet, hint);
    return snap_exit_code(err);
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "snapctl %s: ", cli_applet);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'snapctl %s --help'.\n", cli_applet);
    return SNAP_EXIT_USAGE;
}

int cli_parse_seconds(const char *arg, const char *opt, unsigned *ms)
{
    uint64_t sec;
    if (snap_parse_u64(arg, &sec, opt) || sec < 1 || sec > 86400)
        return cli_usage_error("%s takes whole seconds, 1 to 86400", opt);
    *ms = (unsigned)sec * 1000u;
    return 0;
}

int cli_parse_max_clients(const char *arg, unsigned *n)
{
    uint64_t u;
    if (snap_parse_u64(arg, &u, "--max-clients") || u < 1 || u > 4096)
        return cli_usage_error("--max-clients takes 1 to 4096");
    *n = (unsigned)u;
    return 0;
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return true;
    }
    return false;
}

/* The long option that "--name" or "--name=value" names: the exact name, else the one option
 * it abbreviates; NULL when none or several (*nmatch: how many it abbreviates). */
static const struct option *long_match(const struct option *lo, const char *arg, size_t *nmatch)
{
    const char *name = arg + 2;
    size_t n = strcspn(name, "=");
    const struct option *hit = NULL;
    *nmatch = 0;
    for (; lo->name; lo++) {
        if (strncmp(lo->name, name, n) != 0)
            continue;
        if (strlen(lo->name) == n) {
            *nmatch = 1;
            return lo;
        }
        hit = lo;
        (*nmatch)++;
    }
    return *nmatch == 1 ? hit : NULL;
}

/* The message for a mistake getopt_long reported as c ('?' or ':'), naming the option. */
static int bad_option(int c, const char *arg, const struct option *longopts)
{
    size_t nm = 0;
    bool dashes = strncmp(arg, "--", 2) == 0 && arg[2];
    const struct option *lo = dashes ? long_match(longopts, arg, &nm) : NULL;
    int n = (int)strcspn(arg, "=");
    if (c == '?' && optopt == 0) { /* a long option: unknown or ambiguous */
        if (nm < 2)
            return cli_usage_error("unknown option '%.*s'", n, arg);
        char list[256] = "";
        size_t len = 0;
        for (const struct option *o = longopts; o->name && len < sizeof list; o++)
            if (!strncmp(o->name, arg + 2, (size_t)n - 2))
                len += (size_t)snprintf(list + len, sizeof list - len, "%s--%s", len ? ", " : "", o->name);
        return cli_usage_error("option '%.*s' is ambiguous: it could be %s; write it out", n, arg, list);
    }
    bool is_long = lo && lo->val == optopt;
    if (c == ':')
        return is_long ? cli_usage_error("option '--%s' needs a value: --%s VALUE", lo->name, lo->name)
                       : cli_usage_error("option '-%c' needs a value: -%c VALUE", optopt, optopt);
    if (is_long && arg[n] == '=')
        return cli_usage_error("option '--%s' takes no value: write '--%s' alone, not '%s'", lo->name, lo->name,
                               arg);
    return cli_usage_error("unknown option '-%c'", optopt);
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
    /* A leading ':' (after any '+') makes getopt_long tell a missing value (':') from an
     * unknown option ('?'); opterr = 0 keeps its own messages out. */
    char opts[64];
    bool plus = shortopts[0] == '+';
    snprintf(opts, sizeof opts, "%s:%s", plus ? "+" : "", shortopts + plus);
    opterr = 0;
    int idx = -1;
    int c = getopt_long(argc, argv, opts, longopts, &idx);
    if (c == -1)
        return -1;
    const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    if (c == '?' || c == ':') {
        bad_option(c, arg, longopts);
        return CLI_OPT_BAD;
    }
    /* A value taken from the next word that is itself an option: "--file --read-only". */
    size_t nm = 0;
    if (optarg && optarg == arg && !strncmp(optarg, "--", 2) && optarg[2] && (long_match(longopts, optarg, &nm), nm)) {
        const char *name = idx >= 0 ? longopts[idx].name : NULL;
        for (const struct option *o = longopts; !name && o->name; o++)
            if (o->val == c) /* -l: say --listen, which takes NAME=VALUE */
                name = o->name;
        char self[64];
        snprintf(self, sizeof self, "--%s", name ? name : "?");
        cli_usage_error("option '%s' needs a value, but the word after it is the option '%s' (if that is "
                        "really the value, write %s=%s)", self, optarg, self, optarg);
        return CLI_OPT_BAD;
    }
    return c;
}

int cli_listen(const char *addr, struct cli_listener *l)
{
    return cli_listen_opt("--listen", addr, l);
}

int cli_listen_opt(const char *opt, const char *addr, struct cli_listener *l)
{
    memset(l, 0, sizeof *l);
    l->fd = -1;
    int err = net_listen(addr, &l->fd);
    if (err == SNAP_EUSAGE)
        return cli_usage_error("%s %s", opt, snap_errmsg(err));
    if (err) {
        char hint[64];
        snprintf(hint, sizeof hint, "choose another address with %s", opt);
        return cli_fail(err, hint);
    }
    struct stat st;
    if (!strncmp(addr, "unix:", 5) && strlen(addr + 5) < sizeof l->path && stat(addr + 5, &st) == 0) {
        strcpy(l->path, addr + 5);
        l->dev = st.st_dev;
        l->ino = st.st_ino;
    }
    return 0;
}

void cli_unlisten(struct cli_listener *l)
{
    struct stat st;
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (l->path[0] && lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == l->dev &&
        st.st_ino == l->ino)
        unlink(l->path);
    l->path[0] = '\0';
}

#define CHUNK_CACHE_MIN (4ull << 20) /* one chunk */

static int chunk_cache_max(const char *arg, const char *what, uint64_t *out)
{
    uint64_t v;
    if (snap_parse_size(arg, &v, what) || v < CHUNK_CACHE_MIN)
        return snap_fail(SNAP_EUSAGE, "%s takes a size of at least 4M (K, M, G, T), not '%s'", what, arg);
    *out = v;
    return 0;
}

int cli_parse_allow(const char *arg, const char *opt, struct httpd_cidr *list, size_t *n, size_t max)
{
    if (*n == max)
        return cli_usage_error("at most %zu %s entries", max, opt);
    if (httpd_cidr_parse(arg, &list[*n]))
        return cli_usage_error("%s: %s", opt, snap_errmsg(SNAP_EUSAGE));
    (*n)++;
    return 0;
}

int cli_peer_opt(struct cli_store_opts *o, int c, const char *arg)
{
    switch (c) {
    case CLI_OPT_PEER: o->peer = arg; return 0;
    case CLI_OPT_PEER_REGISTRY: o->registry = arg; return 0;
    case CLI_OPT_PEER_CA: o->peer_ca = arg; return 0;
    case CLI_OPT_PEER_STATS: o->stats_file = arg; return 0;
    case CLI_OPT_PEER_ALLOW:
        return cli_parse_allow(arg, "--peer-allow", o->allow, &o->nallow, CLI_PEER_ALLOW_MAX);
    case CLI_OPT_CHUNK_CACHE: o->chunk_cache = arg; return 0;
    case CLI_OPT_CHUNK_CACHE_MAX:
        if (chunk_cache_max(arg, "--chunk-cache-max", &o->chunk_cache_max))
            return cli_usage_error("--chunk-cache-max takes a size of at least 4M (K, M, G, T), not '%s'", arg);
        return 0;
    case CLI_OPT_PEER_TIMEOUT: {
        uint64_t ms;
        if (snap_parse_u64(arg, &ms, "--peer-timeout") || ms < 1 || ms > 600000)
            return cli_usage_error("--peer-timeout takes 1 to 600000 (milliseconds)");
        o->timeout_ms = (unsigned)ms;
        return 0;
    }
    default: return -1;
    }
}

bool cli_peer_wanted(const struct cli_store_opts *o)
{
    return o && (o->peer || o->registry || o->peer_ca || o->nallow);
}

/* The peer options as lib/store takes them. */
static const struct store_peer_front *peer_front(const struct cli_store_opts *o, struct store_peer_front *f)
{
    if (!o)
        return NULL;
    *f = (struct store_peer_front){.peer = o->peer, .registry = o->registry, .ca_file = o->peer_ca,
                                   .timeout_ms = o->timeout_ms, .allow = o->allow, .nallow = o->nallow};
    return f;
}

int cli_chunk_cache_env(struct cli_store_opts *o)
{
    const char *dir = getenv("SNAPCTL_CHUNK_CACHE"), *max = getenv("SNAPCTL_CHUNK_CACHE_MAX");
    if (!o->chunk_cache && dir && *dir)
        o->chunk_cache = dir;
    if (!o->chunk_cache_max && max && *max && chunk_cache_max(max, "SNAPCTL_CHUNK_CACHE_MAX", &o->chunk_cache_max))
        return cli_usage_error("SNAPCTL_CHUNK_CACHE_MAX takes a size of at least 4M (K, M, G, T), not '%s'", max);
    return 0;
}

/* The store's options, with the chunk cache in *so when one was asked for. */
static const struct store_opts *store_opts_of(const struct cli_store_opts *o, struct store_opts *so)
{
    if (!o || !o->chunk_cache)
        return o ? o->store_opts : NULL;
    *so = o->store_opts ? *o->store_opts : (struct store_opts){0};
    so->chunk_cache = o->chunk_cache;
    so->chunk_cache_max = o->chunk_cache_max;
    return so;
}

int cli_open_store(const char *url, const struct cli_store_opts *o, struct store **out)
{
    struct store_peer_front f;
    struct store_opts so;
    return store_open_tiered(url, store_opts_of(o, &so), peer_front(o, &f), out);
}

int cli_open_object(const char *url, const struct cli_store_opts *o, struct store **out, char **key)
{
    struct store_peer_front f;
    struct store_opts so;
    return store_open_object(url, store_opts_of(o, &so), peer_front(o, &f), out, key);
}

int cli_object_url(const char *arg, char **url)
{
    bool is_url;
    int err = url_check_arg(arg, &is_url);
    if (err)
        return err;
    char cwd[4096] = "";
    if (!is_url && arg[0] != '/' && !getcwd(cwd, sizeof cwd))
        return snap_fail_errno("%s: the current directory", arg);
    size_t n = strlen(cwd) + strlen(arg) + 16;
    if (!(*url = snap_malloc(n)))
        return snap_fail(SNAP_ENOMEM, "out of memory");
    if (is_url)
        snprintf(*url, n, "%s", arg);
    else
        snprintf(*url, n, "file://%s%s%s", cwd, cwd[0] ? "/" : "", arg);
    return 0;
}

void cli_store_done(struct store *s, const struct cli_store_opts *o)
{
    if (!store_is_tiered(s))
        return;
    char text[1024];
    if (store_tiered_stats_text(s, text, sizeof text))
        return;
    struct tiered_stats st;
    store_tiered_stats(s, &st);
    snap_info("peer: %llu reads (%llu bytes); storage: %llu reads (%llu bytes); %llu peer failures redone on "
              "storage; %llu builds sent to storage",
              (unsigned long long)st.peer_reads, (unsigned long long)st.peer_bytes,
              (unsigned long long)st.storage_reads, (unsigned long long)st.storage_bytes,
              (unsigned long long)st.fallbacks, (unsigned long long)st.gone_builds);
    if (o && o->stats_file) {
        int err = snap_write_file_atomic(o->stats_file, text, strlen(text), 0644);
        if (err)
            snap_warn("--peer-stats: %s", snap_errmsg(err));
    }
}

int cli_write_pidfile(const char *path)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    int err = snap_write_file_atomic(path, buf, (size_t)n, 0644);
    return err ? cli_fail(err, NULL) : 0;
}
