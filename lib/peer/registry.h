/* registry.h -- the peer registry in Redis: which host serves a build not uploaded yet.
 *
 *   key   peer:{buildId}      the build's UUID, lower-case, as in object keys
 *   value HOST:PORT           the address of the `snapctl peer serve` that holds the build
 *   TTL   set with SET ... EX; refreshed by the holder; DEL once the build's upload completed
 *
 * The same key and value as the reference, so both can share one Redis.  A registry is opened
 * from redis://[USER:PASS@]HOST[:PORT][/DB] or rediss://... (TLS, system CAs or SSL_CERT_FILE);
 * the password may instead come from SNAPCTL_REDIS_PASSWORD (the URL's wins).  It connects on
 * first use and again after any failure; every call is bounded by timeout_ms in total.  Not
 * thread safe: one caller at a time.
 *
 * peer_advertise_* keeps the keys of a data directory's builds: a thread scans the directory
 * every scan_ms, SETs peer:{id} for every build without the upload-done marker (again when a
 * third of the TTL has passed), DELs the key of a build that got its marker or left the
 * directory, and at stop DELs every key it set.  Redis being down never stops the peer: the
 * failure is logged once and retried at the next scan.
 */
#ifndef SNAP_PEER_REGISTRY_H
#define SNAP_PEER_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PEER_REGISTRY_ENV "SNAPCTL_REDIS_PASSWORD"
#define PEER_REGISTRY_PREFIX "peer:"
#define PEER_REGISTRY_ADDR_MAX 256
#define PEER_REGISTRY_DEFAULT_TIMEOUT_MS 1000

struct peer_registry;

/* Parse the URL (nothing is dialed yet).  SNAP_EUSAGE for a malformed URL. */
int peer_registry_open(const char *url, unsigned timeout_ms, struct peer_registry **out);
void peer_registry_close(struct peer_registry *r);
/* The URL without its password, for messages. */
const char *peer_registry_name(const struct peer_registry *r);

/* SET peer:{build} addr EX ttl_s. */
int peer_registry_set(struct peer_registry *r, const char *build, const char *addr, unsigned ttl_s);
/* GET peer:{build}: *found false when there is no key.  A value that is empty, too long or
 * holds bytes an address cannot have is SNAP_EFORMAT. */
int peer_registry_get(struct peer_registry *r, const char *build, char *addr, size_t cap, bool *found);
int peer_registry_del(struct peer_registry *r, const char *build);
/* TTL peer:{build}: seconds left, -1 no expiry, -2 no key. */
int peer_registry_ttl(struct peer_registry *r, const char *build, int64_t *ttl);
/* Open url, DEL peer:{build}, close: the build's upload completed. */
int peer_registry_withdraw(const char *url, const char *build);

struct peer_advertise;
struct peer_advertise_opts {
    const char *data_dir;
    const char *addr;  /* HOST:PORT written as the value */
    unsigned ttl_s;    /* default 60 */
    unsigned scan_ms;  /* default 1000 */
};
/* Takes ownership of r (closed by peer_advertise_stop). */
int peer_advertise_start(struct peer_registry *r, const struct peer_advertise_opts *o, struct peer_advertise **out);
/* Stop the thread and DEL every key it set (bounded by the registry's timeout). */
void peer_advertise_stop(struct peer_advertise *a);

#endif
