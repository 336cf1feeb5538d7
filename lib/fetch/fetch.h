/* fetch.h -- download an asset into a content-addressed cache: {dir}/{prefix}{sha256hex}.
 *
 * A file appears at the final path only after its whole body was read within max_size and its
 * SHA-256 matched; it is streamed into a temp file in the same directory, hashed in the same
 * pass, fsync'd, renamed into place, and the directory fsync'd.  Any failure removes the temp
 * file.  A break mid-body is resumed with an open-ended ranged read (bytes=K-) from the bytes
 * already written (the hash state carries over), for as long as each break moved the file on
 * at the minimum rate; a break that did not ends the fetch, since the transport below (lib/net's retries
 * with backoff) has already retried it -- two nested retry loops would multiply a stall.
 * Hashing uses the SHA-NI path when the CPU has it.
 */
#ifndef SNAP_FETCH_H
#define SNAP_FETCH_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

struct store;
struct snap_cancel;

/* Called after each write to the temp file; total is the object's size as soon as the store
 * learns it (a response head, fstat), before the body ends; 0 while unknown. */
typedef void (*fetch_progress_fn)(void *ctx, uint64_t done, uint64_t total /* 0 = unknown */);

struct fetch_opts {
    const char *url;          /* an object URL: file:///dir/name, https://host/path, s3://b/key ... */
    struct store *store;      /* optional: read `key` of this open store (not closed) instead of
                                 opening url's; url still names the object in messages */
    const char *key;
    const char *cache_dir;
    const char *prefix;       /* prepended to the hex name, may be "" */
    uint8_t sha256[32];       /* expected */
    uint64_t max_size;        /* default 8 GiB when 0 */
    unsigned mode;            /* final file mode, default 0644 when 0 */
    bool verify;              /* on a hit, re-hash and replace a bad file */
    unsigned idle_timeout_ms; /* no byte for this long fails a network read; 0 = 30 s */
    uint64_t limit_rate;      /* bytes per second, averaged from the first byte; 0 = no limit */
    /* A slow or hostile origin cannot hold a fetch forever (HTTP-based sources): */
    unsigned max_time_ms;     /* the whole fetch, retries and resumes included; 0 = no limit */
    unsigned head_timeout_ms; /* a response head must be complete this long after its request; 0 = 30 s */
    uint64_t speed_limit;     /* minimum body rate in bytes/s ... 0 = 1 KiB/s, FETCH_SPEED_NONE = no minimum */
    unsigned speed_time_ms;   /* ... over every window this long; 0 = 60 s */
    bool allow_private_redirects; /* follow redirects into other loopback/private/link-local/metadata addresses */
    fetch_progress_fn progress;
    void *progress_ctx;
    struct snap_cancel *cancel; /* optional: SIGINT/SIGTERM stop the fetch (SNAP_EINTR), and the temp
                                   file is registered with it so that an exit on a signal removes it */
};

struct fetch_result {
    char path[PATH_MAX];
    uint64_t size;
    bool hit;                 /* served from the cache, no network */
    bool replaced;            /* a cached file failed --verify and was fetched again */
    unsigned resumed;         /* ranged resumes after breaks */
    double seconds;
};

#define FETCH_SPEED_NONE UINT64_MAX
#define FETCH_HEAD_TIMEOUT_MS 30000
#define FETCH_SPEED_LIMIT 1024
#define FETCH_SPEED_TIME_MS 60000

/* A body over max_size is refused: as soon as the response announces it (Content-Length,
 * Content-Range), else at byte max_size + 1.  A break is resumed only when it moved the file on
 * at the minimum rate, and never past max_time. */
int fetch_run(const struct fetch_opts *o, struct fetch_result *r);

struct store_opts;
/* The options of a store opened for this fetch (when the caller opens it, as with --peer):
 * timeouts, the minimum rate, the size limit, the redirect rule, and the deadline from now. */
void fetch_store_opts(const struct fetch_opts *o, struct store_opts *so);

/* Remove temp files in dir left by fetches whose process is gone; returns how many. */
int fetch_clean_stale(const char *dir);

#endif
