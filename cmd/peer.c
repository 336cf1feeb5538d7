/* peer.c -- the 'peer' applet: `peer serve` shares this host's builds over HTTP with ranges. */
#include "cli.h"

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
#include <signal.h>
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

static void on_signal(int sig)
{
    (void)sig;
    httpd_stop();
}

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

int peer_main(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("missing subcommand: the only one is 'serve', as in snapctl peer serve --data-dir DIR");
    if (strcmp(argv[1], "serve") != 0 && !cli_wants_help(argc, argv))
        return cli_usage_error(argv[1][0] == '-' ? "'%s' before the subcommand: options go after it, as in snapctl "
                                                   "peer serve --data-dir DIR"
                                                 : "unknown subcommand '%s': the only one is 'serve', as in snapctl "
                                                   "peer serve --data-dir DIR", argv[1]);
    static const struct option longopts[] = {
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
    const char *dir = NULL, *listen_addr = "127.0.0.1:7070", *pidfile = NULL, *cert = NULL, *key = NULL;
    const char *registry = NULL, *advertise = NULL;
    uint64_t ttl = 60, scan = 1000;
    struct httpd_cidr allow[64];
    size_t nallow = 0;
    struct httpd_opts o = {0};
    int c, rc = 0;
    optind = strcmp(argv[1], "serve") == 0 ? 2 : 1;
    while ((c = cli_getopt(argc, argv, "l:vh", longopts)) != -1) {
        switch (c) {
        case OPT_DIR: dir = optarg; break;
        case 'l': listen_addr = optarg; break;
        case OPT_ALLOW:
            if (nallow == 64)
                return cli_usage_error("at most 64 --allow entries");
            if (httpd_cidr_parse(optarg, &allow[nallow]))
                return cli_usage_error("--allow: %s", snap_errmsg(SNAP_EUSAGE));
            nallow++;
            break;
        case OPT_PIDFILE: pidfile = optarg; break;
        case OPT_CERT: cert = optarg; break;
        case OPT_KEY: key = optarg; break;
        case OPT_REGISTRY: registry = optarg; break;
        case OPT_ADVERTISE: advertise = optarg; break;
        case OPT_TTL:
            if (snap_parse_u64(optarg, &ttl, "--registry-ttl") || ttl < 3 || ttl > 86400)
                return cli_usage_error("--registry-ttl takes 3 to 86400 (seconds)");
            break;
        case OPT_SCAN:
            if (snap_parse_u64(optarg, &scan, "--registry-scan") || scan < 10 || scan > 600000)
                return cli_usage_error("--registry-scan takes 10 to 600000 (milliseconds)");
            break;
        case OPT_MAXCLIENTS:
            if ((rc = cli_parse_max_clients(optarg, &o.max_conns)) != 0)
                return rc;
            break;
        case OPT_HEADTMO:
            if ((rc = cli_parse_seconds(optarg, "--head-timeout", &o.head_timeout_ms)) != 0)
                return rc;
            break;
        case OPT_IOTMO:
            if ((rc = cli_parse_seconds(optarg, "--io-timeout", &o.idle_timeout_ms)) != 0)
                return rc;
            break;
        case 'v': snap_log_set_level(SNAP_LOG_INFO); break;
        case 'h': fputs(usage, stdout); return 0;
        default: return SNAP_EXIT_USAGE; /* CLI_OPT_BAD: cli_getopt said why */
        }
    }
    if (!dir)
        return cli_usage_error("--data-dir is required");
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);

    if (!cert != !key)
        return cli_usage_error("--tls-cert and --tls-key go together");
    if (!registry != !advertise)
        return cli_usage_error("--registry and --advertise HOST:PORT go together");
    if (advertise && (strlen(advertise) >= PEER_REGISTRY_ADDR_MAX || !strchr(advertise, ':')))
        return cli_usage_error("--advertise takes the HOST:PORT readers dial");
    struct tls_config *tls = NULL;
    struct peer_registry *reg = NULL;
    int err;
    if (registry && (err = peer_registry_open(registry, 0, &reg)) != 0) /* a bad URL fails before listening */
        return cli_fail(snap_fail_ctx(err, "--registry"), NULL);
    peer_registry_close(reg);
    if (cert && (err = tls_server_config_new(cert, key, &tls)) != 0)
        return cli_fail(err, NULL);
    struct peer_server *p;
    if ((err = peer_server_open(dir, &p)) != 0) {
        tls_config_free(tls);
        return cli_fail(err, NULL);
    }
    struct cli_listener l;
    rc = cli_listen(listen_addr, &l);
    if (rc) {
        peer_server_close(p);
        tls_config_free(tls);
        return rc;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (pidfile) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
        if ((err = snap_write_file_atomic(pidfile, buf, (size_t)n, 0644)) != 0)
            rc = cli_fail(err, NULL);
    }
    struct peer_advertise *adv = NULL;
    if (!rc && (err = start_advertise(registry, dir, advertise, (unsigned)ttl, (unsigned)scan, &adv)) != 0)
        rc = cli_fail(snap_fail_ctx(err, "--registry"), NULL);
    if (!rc) {
        o.allow = allow;
        o.nallow = nallow;
        o.tls = tls;
        if ((err = httpd_run(l.fd, &o, peer_handle, p)) != 0)
            rc = cli_fail(err, NULL);
    }
    peer_advertise_stop(adv);
    cli_unlisten(&l);
    if (pidfile)
        unlink(pidfile);
    peer_server_close(p);
    tls_config_free(tls);
    return rc;
}
