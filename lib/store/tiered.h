/* tiered.h -- a read-only store that reads from a peer first and falls back to storage.
 *
 * Keys are {uuid}/{file}.  Every read and stat goes to the front store (a peer:// store, or any
 * store in tests) unless that build was sent to storage; whatever goes wrong there -- peer
 * down, refused, 404, 410, a timeout, a short answer, a size that disagrees with what is known
 * of the object -- that same call is redone on the inner store and the caller never sees the
 * peer's failure (only the inner store's, when both fail).  A 410 + X-Snapctl-Use-Storage
 * sends its build to storage for good (per-build state, thread safe).  After a peer timeout the
 * peer is skipped for skip_ms, unless storage fails too.  Bytes a failed peer read already put
 * in the destination are overwritten by the storage read; progress stays monotonic.
 */
#ifndef SNAP_STORE_TIERED_H
#define SNAP_STORE_TIERED_H

#include "store/store.h"

struct tiered_opts {
    unsigned skip_ms;  /* after a peer timeout go straight to storage this long; default 2000,
                          TIERED_NO_SKIP for never */
};
#define TIERED_NO_SKIP UINT32_MAX

struct tiered_stats {
    uint64_t peer_reads, peer_bytes;       /* reads (and stats) the peer answered */
    uint64_t storage_reads, storage_bytes; /* reads (and stats) storage answered */
    uint64_t fallbacks;                    /* peer failures redone on storage */
    uint64_t gone_builds;                  /* builds sent to storage by a 410 */
};

/* Takes ownership of front and inner (closed with the tiered store, even on failure). */
int store_tiered_open(struct store *front, struct store *inner, const struct tiered_opts *o, struct store **out);
void store_tiered_stats(struct store *s, struct tiered_stats *st);
/* The same, as Prometheus-style text lines ("snapctl_tiered_peer_reads_total 3\n" ...). */
int store_tiered_stats_text(struct store *s, char *buf, size_t cap);
bool store_is_tiered(const struct store *s);
/* Read [off, off+len) of key from the peer only, exactly len bytes -- for a compressed build,
 * whose peer serves it uncompressed under its plain name while storage has only the compressed
 * object.  0 when the peer answered; otherwise nonzero (the peer is down, skipped, sent this build
 * to storage, or failed: counted and handled as in a read) and the caller reads storage its own
 * way; dst may then hold part of the peer's answer.  Not a tiered store: SNAP_ENOTFOUND. */
int store_tiered_read_front(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst);
/* Has a 410 sent this build (its UUID string) to storage? */
bool store_tiered_build_gone(struct store *s, const char *uuid);

/* The peer to read through first, as the applets' --peer options give it. */
struct httpd_cidr;
struct store_peer_front {
    const char *peer;               /* HOST:PORT or peer://HOST:PORT; NULL = none */
    const char *registry;           /* or redis://...: each build's peer from the registry */
    const char *ca_file;            /* speak TLS to the peer, trusting only these CAs; NULL = plain */
    unsigned timeout_ms;            /* connect and idle timeout of peer reads; 0 = the default */
    const struct httpd_cidr *allow; /* addresses the peer may have; nallow 0 = loopback only */
    size_t nallow;
};

/* Open the store at url (with opts, NULL = defaults) behind f's peer: a tiered store.  With f
 * NULL or naming no peer, the plain store.  A refused or malformed peer address or a bad CA
 * file fail here, before anything is read; SNAP_EUSAGE for both a peer and a registry, or for
 * a CA or allowlist without either. */
int store_open_tiered(const char *url, const struct store_opts *opts, const struct store_peer_front *f,
                      struct store **out);
/* Open the store of an object URL and return the object's key in it (snap_free it): the store
 * is the URL up to the last '/'.  Behind a peer the object must be STORE/{uuid}/{file}: the
 * store is STORE and the key "{uuid}/{file}", the name a peer serves it by. */
int store_open_object(const char *url, const struct store_opts *opts, const struct store_peer_front *f,
                      struct store **out, char **key);

extern const struct store_ops store_tiered_ops;

#endif
