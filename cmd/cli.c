/* cli.c -- helpers shared by the applets: error printing, option checks, opening stores. */
#include "cli.h"

#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/util.h"
#include "store/peer.h"
#include "store/store.h"
#include "store/tiered.h"

#include <stdarg.h>
#include <string.h>

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

int cli_peer_opt(struct cli_store_opts *o, int c, const char *arg)
{
    switch (c) {
    case CLI_OPT_PEER: o->peer = arg; return 0;
    case CLI_OPT_PEER_CA: o->peer_ca = arg; return 0;
    case CLI_OPT_PEER_STATS: o->stats_file = arg; return 0;
    case CLI_OPT_PEER_ALLOW:
        if (o->nallow == CLI_PEER_ALLOW_MAX)
            return cli_usage_error("at most %d --peer-allow entries", CLI_PEER_ALLOW_MAX);
        if (httpd_cidr_parse(arg, &o->allow[o->nallow]))
            return cli_usage_error("--peer-allow: %s", snap_errmsg(SNAP_EUSAGE));
        o->nallow++;
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

int cli_open_store(const char *url, const struct cli_store_opts *o, struct store **out)
{
    if (!o || !o->peer) {
        if (o && (o->peer_ca || o->nallow))
            return snap_fail(SNAP_EUSAGE, "--peer-ca and --peer-allow only go with --peer HOST:PORT");
        return store_open(url, o ? o->store_opts : NULL, out);
    }
    char purl[512];
    if ((size_t)snprintf(purl, sizeof purl, "%s%s", strstr(o->peer, "://") ? "" : "peer://", o->peer) >= sizeof purl)
        return snap_fail(SNAP_EUSAGE, "--peer: address too long");
    struct store_opts po = {.connect_timeout_ms = o->timeout_ms, .idle_timeout_ms = o->timeout_ms,
                            .ca_file = o->peer_ca};
    struct store *front = NULL, *inner = NULL;
    int err = store_peer_open(purl, &po, o->allow, o->nallow, &front);
    if (err)
        return snap_fail_ctx(err, "--peer");
    if ((err = store_open(url, o->store_opts, &inner)) != 0) {
        store_close(front);
        return err;
    }
    return store_tiered_open(front, inner, NULL, out);
}

int cli_open_object(const char *url, const struct cli_store_opts *o, struct store **out, char **key)
{
    char *base = NULL, *name = NULL, *top = NULL, *build = NULL;
    int err = store_split_url(url, &base, &name);
    if (err)
        return err;
    if (!o || !o->peer) {
        err = cli_open_store(base, o, out);
        snap_free(base);
        if (err) {
            snap_free(name);
            return err;
        }
        *key = name;
        return 0;
    }
    snap_uuid u;
    err = store_split_url(base, &top, &build);
    if (!err && snap_uuid_parse(build, &u))
        err = snap_fail(SNAP_EUSAGE, "%s: with --peer the object must be STORE/{uuid}/{file} ('%s' is not a UUID)",
                        url, build);
    size_t n = build ? strlen(build) + strlen(name) + 2 : 0;
    if (!err && !(*key = snap_malloc(n)))
        err = snap_fail(SNAP_ENOMEM, "out of memory");
    if (!err) {
        snprintf(*key, n, "%s/%s", build, name);
        if ((err = cli_open_store(top, o, out)) != 0) {
            snap_free(*key);
            *key = NULL;
        }
    }
    snap_free(base);
    snap_free(name);
    snap_free(top);
    snap_free(build);
    return err;
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
