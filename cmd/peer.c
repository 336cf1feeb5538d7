/* peer.c -- the 'peer' applet: `peer serve` shares this host's builds over HTTP with ranges. */
#include "cli.h"

#include "base/cancel.h"
#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/util.h"
#include "net/httpd.h"
#include "net/listen.h"
#include "net/tls.h"
#include "peer/peer.h"
#include "peer/registry.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "Usage: snapctl peer serve --data-dir DIR [--listen ADDR] [--allow CIDR ...]\n"
    "                          [--tls-cert FILE --tls-key FILE]\n"
    "                          [--registry URL --advertise HOST:PORT [--registry-ttl SEC]]\n"
    "\n"
    "Serve the builds in DIR ({buildId}/{file}, as serve-nbd --export-diff writes them) to other\n"
    "hosts, so they can read a fresh build before its upload to object storage is done:\n"
    "  HEAD|GET /v1/builds/{uuid}/{file}   with Range; 404 if this host does not have it\n"
    "  410 + X-Snapctl-Use-Storage: 1      once {uuid}/.upload-done exists (the upload finished)\n"
    "  GET /metrics                        Prometheus text\n"
    "Headers of builds still uploading are served with the v4/v5 \"not finished\" flag set.\n"
    "\n"
    "Options:\n"
    "  --data-dir DIR     the builds to serve (required)\n"
    "  -l, --listen ADDR  HOST:PORT, [IPv6]:PORT or unix:PATH (default 127.0.0.1:7070)\n"
    "  --allow CIDR       accept clients from CIDR (repeatable); default: loopback only\n"
    "  --tls-cert FILE    serve TLS only, presenting this PEM certificate (chain); it must list\n"
    "                     the address clients dial (an IP SAN); clients use --peer-ca\n"
    "  --tls-key FILE     the certificate's private key (PEM, unencrypted)\n"
    "  --registry URL     advertise the builds in DIR whose upload is not finished in the peer\n"
    "                     registry: Redis key peer:{buildId} = the --advertise address, with a\n"
    "                     TTL, refreshed, deleted once {uuid}/.upload-done exists or the build\n"
    "                     leaves DIR (and at exit); redis://[USER:PASS@]HOST[:PORT][/DB] or\n"
    "                     rediss://; the password may come from SNAPCTL_REDIS_PASSWORD\n"
    "  --advertise HOST:PORT  the address readers dial for this peer (required with --registry)\n"
    "  --registry-ttl SEC the keys' TTL (default 60; refreshed every third of it)\n"
    "  --registry-scan MS how often DIR is looked at (default 1000)\n"
    "  --max-clients N    clients served at once, counted from their first request (default\n"
    "                     256); connections yet to send one have a cap of their own, where the\n"
    "                     oldest gives way to a newcomer\n"
    "  --head-timeout S   seconds a request head may take from its first byte (default 10)\n"
    "  --io-timeout S     seconds a connection may idle before a request, or stall while a\n"
    "                     response is not read (default 30)\n"
    "  --pid-file FILE    write the PID once listening\n"
    "  -v, --verbose      log refusals and errors\n"
    "  -h, --help         show this help\n"
    "\n"
    "Read from it with --peer HOST:PORT (and --peer-ca FILE for TLS) on fetch, inspect-header and\n"
    "serve-nbd (or --peer-registry URL, to find the peer of each build in the registry): peer first,\n"
    "the store behind it (docs/peer.md).\n";

/* SIGTERM/SIGINT: stop accepting, finish what is in flight, exit 0; a second one ends it at once. */
static void on_signal(int sig, void *arg)
{
    (void)sig, (void)arg;
    httpd_stop();
}
static struct snap_cancel cancel = {.grace_ms = -1, .hook = on_signal};

enum { OPT_DIR = 256, OPT_ALLOW, OPT_PIDFILE, OPT_CERT, OPT_KEY, OPT_REGISTRY, OPT_ADVERTISE, OPT_TTL, OPT_SCAN, OPT_MAXCLIENTS, OPT_HEADTMO, OPT_IOTMO };

/* --registry URL --advertise HOST:PORT: start advertising DIR's builds (NULL registry: nothing). */
static int start_advertise(const char *url, const char *dir, const char *addr, unsigned ttl, unsigned scan,
                           struct peer_advertise **out)
{
    *out = NULL;
    if (!url)
        return 0;
    struct peer_registry *r;
    int err = peer_registry_open(url, 0, &r);
    if (err)
        return err;
    struct peer_advertise_opts o = {.data_dir = dir, .addr = addr, .ttl_s = ttl, .scan_ms = scan};
    return peer_advertise_start(r, &o, out);
}

struct peer_cfg {
    const char *dir, *listen_addr, *pidfile, *cert, *key, *registry, *advertise;
    uint64_t ttl, scan;
    struct httpd_cidr allow[64];
    size_t nallow;
    struct httpd_opts o;
};

static const struct option peer_longopts[] = {
    {"data-dir", required_argument, NULL, OPT_DIR},
    {"listen", required_argument, NULL, 'l'},
    {"allow", required_argument, NULL, OPT_ALLOW},
    {"pid-file", required_argument, NULL, OPT_PIDFILE},
    {"tls-cert", required_argument, NULL, OPT_CERT},
    {"tls-key", required_argument, NULL, OPT_KEY},
    {"registry", required_argument, NULL, OPT_REGISTRY},
    {"advertise", required_argument, NULL, OPT_ADVERTISE},
    {"registry-ttl", required_argument, NULL, OPT_TTL},
    {"registry-scan", required_argument, NULL, OPT_SCAN},
    {"max-clients", required_argument, NULL, OPT_MAXCLIENTS},
    {"head-timeout", required_argument, NULL, OPT_HEADTMO},
    {"io-timeout", required_argument, NULL, OPT_IOTMO},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One option of peer serve's: 0 taken, else an exit code. */
static int peer_option(struct peer_cfg *g, int c, const char *arg)
{
    switch (c) {
    case OPT_DIR: g->dir = arg; return 0;
    case 'l': g->listen_addr = arg; return 0;
    case OPT_ALLOW:
        return cli_parse_allow(arg, "--allow", g->allow, &g->nallow, 64);
    case OPT_PIDFILE: g->pidfile = arg; return 0;
    case OPT_CERT: g->cert = arg; return 0;
    case OPT_KEY: g->key = arg; return 0;
    case OPT_REGISTRY: g->registry = arg; return 0;
    case OPT_ADVERTISE: g->advertise = arg; return 0;
    case OPT_TTL:
        if (snap_parse_u64(arg, &g->ttl, "--registry-ttl") || g->ttl < 3 || g->ttl > 86400)
            return cli_usage_error("--registry-ttl takes 3 to 86400 (seconds)");
        return 0;
    case OPT_SCAN:
        if (snap_parse_u64(arg, &g->scan, "--registry-scan") || g->scan < 10 || g->scan > 600000)
            return cli_usage_error("--registry-scan takes 10 to 600000 (milliseconds)");
        return 0;
    case OPT_MAXCLIENTS: return cli_parse_max_clients(arg, &g->o.max_conns);
    case OPT_HEADTMO: return cli_parse_seconds(arg, "--head-timeout", &g->o.head_timeout_ms);
    case OPT_IOTMO: return cli_parse_seconds(arg, "--io-timeout", &g->o.idle_timeout_ms);
    case 'v': snap_log_set_level(SNAP_LOG_INFO); return 0;
    }
    return SNAP_EXIT_USAGE; /* CLI_OPT_BAD: cli_getopt said why */
}

/* The options that go together, checked before anything is opened. */
static int peer_check(const struct peer_cfg *g)
{
    if (!g->dir)
        return cli_usage_error("--data-dir is required");
    if (!g->cert != !g->key)
        return cli_usage_error("--tls-cert and --tls-key go together");
    if (!g->registry != !g->advertise)
        return cli_usage_error("--registry and --advertise HOST:PORT go together");
    if (g->advertise && (strlen(g->advertise) >= PEER_REGISTRY_ADDR_MAX || !strchr(g->advertise, ':')))
        return cli_usage_error("--advertise takes the HOST:PORT readers dial");
    struct peer_registry *reg = NULL;
    int err = g->registry ? peer_registry_open(g->registry, 0, &reg) : 0; /* a bad URL fails before listening */
    peer_registry_close(reg);
    return err ? cli_fail(snap_fail_ctx(err, "--registry"), NULL) : 0;
}

/* Listen, advertise, serve until SIGTERM/SIGINT. */
static int peer_run(struct peer_cfg *g, struct peer_server *p, struct tls_config *tls)
{
    struct cli_listener l;
    int err, rc = cli_listen(g->listen_addr, &l);
    if (rc)
        return rc;
    if ((rc = snap_cancel_start(&cancel)) != 0) {
        cli_unlisten(&l);
        return cli_fail(rc, NULL);
    }
    if (g->pidfile)
        rc = cli_write_pidfile(g->pidfile);
    struct peer_advertise *adv = NULL;
    if (!rc && (err = start_advertise(g->registry, g->dir, g->advertise, (unsigned)g->ttl, (unsigned)g->scan,
                                      &adv)) != 0)
        rc = cli_fail(snap_fail_ctx(err, "--registry"), NULL);
    if (!rc) {
        g->o.allow = g->allow;
        g->o.nallow = g->nallow;
        g->o.tls = tls;
        if ((err = httpd_run(l.fd, &g->o, peer_handle, p)) != 0)
            rc = cli_fail(err, NULL);
    }
    peer_advertise_stop(adv);
    cli_unlisten(&l);
    if (g->pidfile)
        unlink(g->pidfile);
    return rc;
}

int peer_main(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("missing subcommand: the only one is 'serve', as in snapctl peer serve --data-dir DIR");
    if (strcmp(argv[1], "serve") != 0 && !cli_wants_help(argc, argv))
        return cli_usage_error(argv[1][0] == '-' ? "'%s' before the subcommand: options go after it, as in snapctl "
                                                   "peer serve --data-dir DIR"
                                                 : "unknown subcommand '%s': the only one is 'serve', as in snapctl "
                                                   "peer serve --data-dir DIR", argv[1]);
    static struct peer_cfg g; /* 64 allow entries: off the stack */
    memset(&g, 0, sizeof g);
    g.listen_addr = "127.0.0.1:7070";
    g.ttl = 60;
    g.scan = 1000;
    int c, rc;
    optind = strcmp(argv[1], "serve") == 0 ? 2 : 1;
    while ((c = cli_getopt(argc, argv, "l:vh", peer_longopts)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        if ((rc = peer_option(&g, c, optarg)) != 0)
            return rc;
    }
    if (g.dir && optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if ((rc = peer_check(&g)) != 0)
        return rc;
    struct tls_config *tls = NULL;
    struct peer_server *p;
    int err;
    if (g.cert && (err = tls_server_config_new(g.cert, g.key, &tls)) != 0)
        return cli_fail(err, NULL);
    if ((err = peer_server_open(g.dir, &p)) != 0) {
        tls_config_free(tls);
        return cli_fail(err, NULL);
    }
    rc = peer_run(&g, p, tls);
    peer_server_close(p);
    tls_config_free(tls);
    return rc;
}
