/* credcache.h -- when to fetch credentials again: the rule the AWS credential cache (awscreds.c)
 * and the GCS token cache (gauth.c) share.
 *
 * A value has a generation (0: none yet).  A fetch is due when there is none, when the server
 * refused the current one (stale), or from refresh_at on: min(ttl/4, margin_max) seconds before
 * it expires.  A failed fetch keeps a value that is not stale and not expired, and the next
 * fetch waits retry_s seconds (never past expiry).  The caller holds its own lock around these.
 */
#ifndef SNAP_STORE_CREDCACHE_H
#define SNAP_STORE_CREDCACHE_H

#include <stdbool.h>
#include <stdint.h>

struct credcache {
    uint64_t gen;        /* 0: nothing fetched yet */
    bool stale;          /* refused by the server: fetch before using it again */
    int64_t refresh_at;  /* fetch a new one from here on (seconds, the caller's clock) */
    int64_t expires_at;  /* unusable from here on; INT64_MAX: never */
    uint64_t fetches;    /* fetches started (tests, logs) */
};

/* A value that never expires and is never fetched (static keys, a fixed token). */
void credcache_set_static(struct credcache *c);
/* Is a fetch due at now?  When it is, it is counted as started. */
bool credcache_due(struct credcache *c, int64_t now);
/* The fetch gave a value that expires at expires_at (INT64_MAX: never): the next generation. */
void credcache_fresh(struct credcache *c, int64_t now, int64_t expires_at, int64_t margin_max);
/* The fetch failed: true if the current value may still be used (then the next fetch waits
 * retry_s seconds); false if the failure is the caller's answer. */
bool credcache_keep(struct credcache *c, int64_t now, int64_t retry_s);
/* The server refused generation gen: fetch before the next use (an older gen changes nothing). */
void credcache_refused(struct credcache *c, uint64_t gen);

#endif
