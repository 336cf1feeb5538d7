/* cli.h -- what every applet shares: the applet table, error printing, option helpers.
 * Only cmd/ prints for people. */
#ifndef SNAP_CLI_H
#define SNAP_CLI_H

#include <stdbool.h>
#include <stdio.h>

#define APPLET(name, id, summary) int id##_main(int argc, char **argv);
#include "applets.def"
#undef APPLET

struct applet {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
};
extern const struct applet cli_applets[];
extern const char *cli_applet; /* the running applet's name, for messages */

/* Print "snapctl APPLET: <detail of err>" (and hint, if any) on stderr; return the exit code. */
int cli_fail(int err, const char *hint);
/* Print "snapctl APPLET: <message>" and "Try 'snapctl APPLET --help'."; return SNAP_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* True when argv holds --help or -h before any "--". */
bool cli_wants_help(int argc, char **argv);
/* A server's timeout option: whole seconds, 1 to 86400, into *ms; else the usage error's code. */
int cli_parse_seconds(const char *arg, const char *opt, unsigned *ms);
/* A server's client cap option: 1 to 4096; else the usage error's code. */
int cli_parse_max_clients(const char *arg, unsigned *n);
/* Write this process's PID to path (atomically): 0, or what cli_fail returned. */
int cli_write_pidfile(const char *path);

/* getopt_long for the applets, with one message per mistake that names the option and ends
 * with the --help line: an unknown or ambiguous option, an option missing its value, a value
 * given to an option that takes none (--json=1), and an option taken as the value of the one
 * before it (--file --read-only).  Returns the option, -1 after the last one, or CLI_OPT_BAD
 * once the mistake is printed (the applet then returns SNAP_EXIT_USAGE).
 *
 *   while ((c = cli_getopt(argc, argv, "qh", longopts)) != -1)
 *       switch (c) { ...; case CLI_OPT_BAD: return SNAP_EXIT_USAGE; }
 */
struct option;
#define CLI_OPT_BAD (-2)
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);

/* ---- listening: --listen ADDR -------------------------------------------------------------- */
#include <sys/types.h>

struct cli_listener {
    int fd;
    char path[108];  /* unix:PATH: the socket file made, removed by cli_unlisten; "" for TCP */
    dev_t dev;
    ino_t ino;
};
/* Listen on ADDR (HOST:PORT, [IPv6]:PORT, unix:PATH): 0, or an exit code once the mistake is
 * printed (a malformed address is a usage error; a refused bind says what to change). */
int cli_listen(const char *addr, struct cli_listener *l);
/* The same for another option than --listen (named in the messages). */
int cli_listen_opt(const char *opt, const char *addr, struct cli_listener *l);
/* Close it and remove its socket file, if the file there is still the one it made. */
void cli_unlisten(struct cli_listener *l);

/* One CIDR of an allowlist option (--allow, --peer-allow, --metrics-allow) into list[*n], at most
 * max entries: 0, or the usage error's code. */
struct httpd_cidr;
int cli_parse_allow(const char *arg, const char *opt, struct httpd_cidr *list, size_t *n, size_t max);

/* ---- opening what an applet reads: --store URL / an object URL, with an optional peer ----
 *
 *   struct cli_store_opts so = {0};
 *   static const struct option longopts[] = {..., CLI_PEER_LONGOPTS, {NULL, 0, NULL, 0}};
 *   default: if ((rc = cli_peer_opt(&so, c, optarg)) >= 0) { if (rc) return rc; break; } ...
 *   cli_open_store(store_url, &so, &st)          -- a store; tiered when --peer was given
 *   cli_open_object(object_url, &so, &st, &key)  -- the object's store and key within it
 *   ... read ...; cli_store_done(st, &so); store_close(st);
 */
#include "net/httpd.h" /* struct httpd_cidr */

struct store;
struct store_opts;

enum { CLI_OPT_PEER = 0x1000, CLI_OPT_PEER_CA, CLI_OPT_PEER_ALLOW, CLI_OPT_PEER_TIMEOUT, CLI_OPT_PEER_STATS,
       CLI_OPT_PEER_REGISTRY, CLI_OPT_CHUNK_CACHE, CLI_OPT_CHUNK_CACHE_MAX };
#define CLI_PEER_LONGOPTS                                                                                    \
    {"peer", required_argument, NULL, CLI_OPT_PEER}, {"peer-ca", required_argument, NULL, CLI_OPT_PEER_CA}, \
        {"peer-allow", required_argument, NULL, CLI_OPT_PEER_ALLOW},                                        \
        {"peer-timeout", required_argument, NULL, CLI_OPT_PEER_TIMEOUT},                                    \
        {"peer-stats", required_argument, NULL, CLI_OPT_PEER_STATS},                                        \
        {"peer-registry", required_argument, NULL, CLI_OPT_PEER_REGISTRY}
#define CLI_PEER_USAGE                                                                                       \
    "Reading from a peer first (snapctl peer serve on the host that made the build):\n"                     \
    "  --peer HOST:PORT      read {uuid}/{file} objects from this peer, falling back to the store on\n"     \
    "                        any peer failure; a build the peer says is uploaded stays on the store\n"       \
    "  --peer-registry URL   instead of --peer: find each build's peer in Redis (key peer:{buildId}),\n"   \
    "                        redis://[USER:PASS@]HOST[:PORT][/DB] or rediss://; password also from\n"        \
    "                        SNAPCTL_REDIS_PASSWORD; no key, or Redis down or slow: the store\n"             \
    "  --peer-ca FILE        speak TLS to the peer and trust only the CAs in FILE\n"                         \
    "  --peer-allow CIDR     addresses the peer may have (repeatable; default loopback only)\n"             \
    "  --peer-timeout MS     connect and idle timeout of peer reads (default 2000), and the bound of\n"     \
    "                        a registry lookup (default 1000)\n"                                              \
    "  --peer-stats FILE     write peer/storage read counters to FILE (Prometheus text) at exit\n"

/* The host's chunk cache (lib/store/chunkcache.h), in front of the store (behind the peer). */
#define CLI_CHUNK_CACHE_LONGOPTS                                                                              \
    {"chunk-cache", required_argument, NULL, CLI_OPT_CHUNK_CACHE},                                            \
        {"chunk-cache-max", required_argument, NULL, CLI_OPT_CHUNK_CACHE_MAX}
#define CLI_CHUNK_CACHE_USAGE                                                                                 \
    "The host's chunk cache (shared by every snapctl process given the same directory):\n"                  \
    "  --chunk-cache DIR     keep the 4 MiB chunks read from the store in DIR and read them from\n"        \
    "                        there; a chunk another process is fetching is waited for, not fetched\n"      \
    "                        twice (default: $SNAPCTL_CHUNK_CACHE; none when unset)\n"                     \
    "  --chunk-cache-max SIZE  DIR's byte limit, least recently used chunks go first (K, M, G, T;\n"       \
    "                        at least 4M; default: $SNAPCTL_CHUNK_CACHE_MAX, else 10G)\n"

#define CLI_PEER_ALLOW_MAX 32
struct cli_store_opts {
    const char *peer;       /* HOST:PORT or peer://HOST:PORT; NULL = no peer */
    const char *registry;   /* redis://...: the peer of each build from the registry */
    const char *peer_ca;
    const char *stats_file;
    const struct store_opts *store_opts; /* of the store itself (behind the peer); NULL: defaults */
    unsigned timeout_ms;
    struct httpd_cidr allow[CLI_PEER_ALLOW_MAX];
    size_t nallow;
    const char *chunk_cache;  /* --chunk-cache DIR (or the environment's); NULL: none */
    uint64_t chunk_cache_max; /* --chunk-cache-max (or the environment's); 0: the default */
};

/* Handle one of CLI_PEER_LONGOPTS or CLI_CHUNK_CACHE_LONGOPTS: 0 done, an exit code (usage
 * error), or -1 if c is not one. */
int cli_peer_opt(struct cli_store_opts *o, int c, const char *arg);
/* Was any peer option given (--peer, --peer-registry, or one of their modifiers)? */
bool cli_peer_wanted(const struct cli_store_opts *o);
/* For the applets that offer CLI_CHUNK_CACHE_LONGOPTS, after parsing them: take
 * SNAPCTL_CHUNK_CACHE and SNAPCTL_CHUNK_CACHE_MAX for what the options did not say.  0, or the
 * exit code of a malformed size (printed).  o->chunk_cache then says whether a cache is wanted. */
int cli_chunk_cache_env(struct cli_store_opts *o);
/* Open a store URL, behind the peer when one was given (store_open_tiered).  0 or a snap_err. */
int cli_open_store(const char *url, const struct cli_store_opts *o, struct store **out);
/* Open the store of an object URL and the object's key in it (store_open_object: with a peer
 * the object must be .../{uuid}/{file}). */
int cli_open_object(const char *url, const struct cli_store_opts *o, struct store **out, char **key);
/* A FILE-or-URL argument as a URL (snap_free it): a store URL as it is, once checked
 * (url_check_arg), a local path as file:// and its absolute path.  0 or a snap_err. */
int cli_object_url(const char *arg, char **url);
/* At the end of a run: log the peer/storage counters of a tiered store (info level) and write
 * them to --peer-stats FILE.  Nothing for a plain store. */
void cli_store_done(struct store *s, const struct cli_store_opts *o);

#endif
