/* peer.c -- the 'peer' applet: `peer serve` shares this host's builds over HTTP with ranges. */
#include "cli.h"

#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "net/httpd.h"
#include "net/listen.h"
#include "net/tls.h"
#include "peer/peer.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "Usage: snapctl peer serve --data-dir DIR [--listen ADDR] [--allow CIDR ...]\n"
    "                          [--tls-cert FILE --tls-key FILE]\n"
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
    "serve-nbd: peer first, the store behind it (docs/peer.md).\n";

static void on_signal(int sig)
{
    (void)sig;
    httpd_stop();
}

enum { OPT_DIR = 256, OPT_ALLOW, OPT_PIDFILE, OPT_CERT, OPT_KEY, OPT_MAXCLIENTS, OPT_HEADTMO, OPT_IOTMO };

int peer_main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "serve") != 0 && !cli_wants_help(argc, argv))) {
        fputs(usage, stderr);
        return SNAP_EXIT_USAGE;
    }
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, OPT_DIR},
        {"listen", required_argument, NULL, 'l'},
        {"allow", required_argument, NULL, OPT_ALLOW},
        {"pid-file", required_argument, NULL, OPT_PIDFILE},
        {"tls-cert", required_argument, NULL, OPT_CERT},
        {"tls-key", required_argument, NULL, OPT_KEY},
        {"max-clients", required_argument, NULL, OPT_MAXCLIENTS},
        {"head-timeout", required_argument, NULL, OPT_HEADTMO},
        {"io-timeout", required_argument, NULL, OPT_IOTMO},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *listen_addr = "127.0.0.1:7070", *pidfile = NULL, *cert = NULL, *key = NULL;
    struct httpd_cidr allow[64];
    size_t nallow = 0;
    struct httpd_opts o = {0};
    int c, rc = 0;
    optind = strcmp(argv[1], "serve") == 0 ? 2 : 1;
    while ((c = getopt_long(argc, argv, "l:vh", longopts, NULL)) != -1) {
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
        default: return cli_usage_error("unknown option");
        }
    }
    if (!dir)
        return cli_usage_error("--data-dir is required");
    if (optind != argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);

    if (!cert != !key)
        return cli_usage_error("--tls-cert and --tls-key go together");
    struct tls_config *tls = NULL;
    int err;
    if (cert && (err = tls_server_config_new(cert, key, &tls)) != 0)
        return cli_fail(err, NULL);
    struct peer_server *p;
    if ((err = peer_server_open(dir, &p)) != 0) {
        tls_config_free(tls);
        return cli_fail(err, NULL);
    }
    int lfd;
    if ((err = net_listen(listen_addr, &lfd)) != 0) {
        peer_server_close(p);
        tls_config_free(tls);
        return cli_fail(err, "is another server on that port? choose one with --listen");
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
    if (!rc) {
        o.allow = allow;
        o.nallow = nallow;
        o.tls = tls;
        if ((err = httpd_run(lfd, &o, peer_handle, p)) != 0)
            rc = cli_fail(err, NULL);
    }
    close(lfd);
    if (pidfile)
        unlink(pidfile);
    peer_server_close(p);
    tls_config_free(tls);
    return rc;
}
