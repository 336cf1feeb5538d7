/* peer_client.h -- the peer:// backend (read-only) and the address check every peer client makes.
 *
 *   peer://HOST:PORT   keys {uuid}/{file} -> GET|HEAD /v1/builds/{uuid}/{file} on that host
 *
 *   peers://HOST:PORT  the same over TLS
 *
 * peer:// is plain HTTP unless store_opts.ca_file is set (`--peer-ca F`); peers:// and peer:// with
 * a CA file speak TLS, and the peer's certificate must be signed by a CA in F (peers:// without
 * one: the system's CAs) and list the peer's address (an IP SAN:
 * the host is dialed by the numeric address the check below resolved).  The host is resolved
 * once, at open, and every address it resolves to must be in the client's allowlist (default:
 * loopback only) -- so an address handed over by the network (a link-local metadata service,
 * some internal port) is never dialed by accident.  Retries are off and timeouts short
 * (2 s connect, 2 s idle by default): a peer is an optimisation, the tiered store falls back.
 *
 * The answer "this build's upload finished, read it from storage" (410 with
 * X-Snapctl-Use-Storage: 1) is a distinct result: the _ex calls set *use_storage; the plain
 * store ops report it as SNAP_ENOTFOUND.
 */
#ifndef SNAP_STORE_PEER_CLIENT_H
#define SNAP_STORE_PEER_CLIENT_H

#include "net/httpd.h" /* struct httpd_cidr */
#include "store/store.h"

#define PEER_DEFAULT_TIMEOUT_MS 2000

extern const struct store_ops store_peer_ops, store_peers_ops;

/* Open peer://host:port, allowing only addresses in allow[0..nallow) (nallow 0: loopback
 * only).  A refused address is SNAP_EAUTH naming the address and the option to change. */
int store_peer_open(const char *url, const struct store_opts *o, const struct httpd_cidr *allow,
                    size_t nallow, struct store **out);
/* A peer address as a peer URL: "HOST:PORT" becomes peer://HOST:PORT; peer:// and peers://
 * URLs stay as they are.  0, or SNAP_EUSAGE naming addr (another scheme, or longer than cap). */
int store_peer_url(const char *addr, char *url, size_t cap);
/* Resolve host and check every address against the allowlist; numeric gets the first one
 * (for dialing).  0, SNAP_ENET (unresolvable) or SNAP_EAUTH (refused). */
int store_peer_check_addr(const char *host, const struct httpd_cidr *allow, size_t nallow, char *numeric,
                          size_t cap);
bool store_is_peer(const struct store *s);

/* As store_stat / store_read on a peer store, telling "use storage" (410) apart. */
int store_peer_stat_ex(struct store *s, const char *key, struct store_info *info, bool *use_storage);
int store_peer_read_ex(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
                       store_progress_fn progress, void *ctx, struct store_read_result *res, bool *use_storage);

/* ---- the peer of each build found in the peer registry (lib/store/peerreg.c) ----
 *
 * A read-only front for the tiered store: the build of a key {uuid}/{file} is looked up once in
 * the registry at url (redis://..., lib/peer/registry.h; timeout o->connect_timeout_ms, default
 * 1 s), and its reads go to the peer:// store of the address found there, opened with o, allow
 * and nallow exactly as store_peer_open (allowlist, TLS).  A build with no usable peer (no key,
 * Redis down or slow, an address refused or malformed) answers "use storage" for good.
 * store_is_peer() is true for it, and the _ex calls above take it too. */
int store_peer_registry_open(const char *url, const struct store_opts *o, const struct httpd_cidr *allow,
                             size_t nallow, struct store **out);
bool store_is_peer_registry(const struct store *s);
int store_peer_registry_stat_ex(struct store *s, const char *key, struct store_info *info, bool *use_storage);
int store_peer_registry_read_ex(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
                                store_progress_fn progress, void *ctx, struct store_read_result *res,
                                bool *use_storage);
extern const struct store_ops store_peer_registry_ops;

#endif
