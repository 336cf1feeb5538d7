/* store.h -- the one storage interface every backend implements (file, http, s3, gs, peer, and
 * the layered ones: local chunk cache, tiered peer-then-storage).
 *
 * A store is opened on a base URL (`file:///dir`, `s3://bucket/prefix`, ...); objects are named
 * by keys relative to it (`{buildId}/memfile`).  All calls are thread safe on one store: many
 * readers and upload workers share it.  Every call returns 0 or a snap_err with a detail that
 * names the URL of the object (never a secret).
 *
 * Reads stream straight into the caller's memory (an mmap slice of the cache, or a buffer) and
 * report progress as bytes land there, so a reader waiting for the start of a chunk can be woken
 * before the chunk is done.  A read may learn the object's total size for free (Content-Range of
 * a ranged GET, fstat of a file): it is reported in store_read_result, so no separate size
 * request is needed.  A streamed read sets res->total_size as soon as it learns it -- before
 * the first byte reaches the sink when a response head or fstat gives it -- so a sink that
 * holds res can show a percentage while the body is still coming.
 */
#ifndef SNAP_STORE_H
#define SNAP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SIZE_UNKNOWN UINT64_MAX
#define STORE_ETAG_MAX 256

struct store;

/* Called as bytes arrive: `done` bytes of the range are now in the destination (monotonic).
 * A non-zero return aborts the read with SNAP_ECANCELED. */
typedef int (*store_progress_fn)(void *ctx, uint64_t done);

/* Receives streamed bytes in order.  Returns 0 to go on, or a snap_err (its detail recorded
 * with snap_fail) to stop the read, which then returns that same code. */
typedef int (*store_sink_fn)(void *ctx, const uint8_t *p, size_t n);
/* Told, while a multipart part is sent, how many of its bytes have left so far in this attempt
 * (from 0 again on a retry).  Backends that do not send over HTTP may never call it. */
typedef void (*store_sent_fn)(void *ctx, uint64_t sent);

/* For backends whose transport reports a sink's refusal as its own "canceled": wrap the sink,
 * then store_sink_guard_result() gives back the sink's own code and message.  With res and
 * head_total set (the transport's total size, filled in from the response head), the guard
 * copies a known total into res->total_size before each call, so the sink sees the size as
 * soon as the head arrived. */
struct store_read_result;
struct store_sink_guard {
    store_sink_fn sink;
    void *ctx;
    int err;
    char msg[512];
    struct store_read_result *res;
    const uint64_t *head_total;
};
int store_sink_guard_fn(void *guard, const void *p, size_t n);
int store_sink_guard_result(const struct store_sink_guard *g, int transport_err);
/* The receive buffer of one streamed read of len bytes (http, s3, gs read_stream): up to
 * 256 KiB, so a large body arrives in big reads; NULL (cap 0) when memory is short, which is
 * fine.  The thread's own buffer, allocated once per thread, so a fetch thread allocates
 * nothing per chunk.  Give it back with store_stream_recv_release after the read. */
#define STORE_STREAM_RECV (256u << 10)
uint8_t *store_stream_recv_buf(uint64_t len, size_t *cap);
void store_stream_recv_release(uint8_t *buf);

struct store_read_result {
    uint64_t bytes;      /* bytes written to the destination (< len only at the object's end) */
    uint64_t total_size; /* the object's size if learned, else STORE_SIZE_UNKNOWN */
};

struct store_info {
    uint64_t size;
    char etag[STORE_ETAG_MAX];
    bool has_sha256;     /* object metadata sha256 (x-amz-meta-sha256 / x-goog-meta-sha256) */
    uint8_t sha256[32];
    /* Object metadata uncompressed-size of a compressed object (x-amz-meta-uncompressed-size /
     * x-goog-meta-uncompressed-size; the file store's `<object>.uncompressed-size` sidecar, a
     * decimal number), or STORE_SIZE_UNKNOWN. */
    uint64_t uncompressed_size;
};

struct store_put_opts {
    const uint8_t *sha256;   /* if set, stored as object metadata "sha256" (hex) */
    const char *content_type;
    /* put_file only: called with the bytes copied after each step, and with len once more just
     * before the object is committed (renamed into place); a non-zero return aborts the put
     * with SNAP_ECANCELED, the temp file removed and any existing object left as it was. */
    store_progress_fn progress;
    void *progress_ctx;
    uint64_t uncompressed_size; /* if not 0, stored as metadata "uncompressed-size" (decimal) */
};

struct store_part {
    uint32_t number;         /* 1..10000, ascending */
    char etag[STORE_ETAG_MAX];
};

/* Options shared by all backends; zero means "default". */
struct store_opts {
    unsigned connect_timeout_ms; /* default 10 s */
    unsigned idle_timeout_ms;    /* default 30 s: no byte for this long fails a read */
    unsigned max_attempts;       /* default 5: retries of retryable failures */
    const char *ca_file;         /* TLS CA bundle override */
    /* HTTP-based backends (http, https, s3, gs); zero = none.  See struct http_opts. */
    uint64_t deadline_ns;        /* absolute, snap_now_ns() clock: no request runs past it */
    unsigned head_timeout_ms;    /* a response head must be complete this long after the request */
    uint64_t speed_limit;        /* minimum body rate, bytes/s, over every speed_time_ms window */
    unsigned speed_time_ms;
    uint64_t max_object_size;    /* a read of an object announced larger: SNAP_ETOOBIG, nothing read */
    bool allow_private_redirects; /* follow redirects into loopback/private/link-local/metadata */
    /* store_open only: read through the host's chunk cache directory at this path (a read-only
     * store in front of the backend, lib/store/chunkcache.h); NULL = none.  Behind a peer
     * (store_open_tiered) it sits in front of the storage store, not the peer. */
    const char *chunk_cache;
    uint64_t chunk_cache_max;    /* its byte limit; 0 = 10 GiB */
};

struct http_opts;
/* The HTTP client options of a backend opened with o (retry defaults applied). */
void store_http_opts(const struct store_opts *o, struct http_opts *ho);

struct store_ops {
    const char *scheme;
    int (*open)(const char *url, const struct store_opts *opts, struct store **out);
    void (*close)(struct store *s);
    int (*stat)(struct store *s, const char *key, struct store_info *info);
    int (*read)(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
                store_progress_fn progress, void *ctx, struct store_read_result *res);
    /* Optional: stream [off, off+len) to a sink (len may be STORE_SIZE_UNKNOWN: to the end).
     * Without it, store_read_stream loops over `read` with a bounded buffer. */
    int (*read_stream)(struct store *s, const char *key, uint64_t off, uint64_t len,
                       store_sink_fn sink, void *ctx, struct store_read_result *res);
    /* Optional (NULL = read-only backend). */
    int (*put)(struct store *s, const char *key, const void *buf, size_t len,
               const struct store_put_opts *po);
    int (*mp_create)(struct store *s, const char *key, const struct store_put_opts *po, char **upload_id);
    int (*mp_part)(struct store *s, const char *key, const char *upload_id, uint32_t number,
                   const void *buf, size_t len, store_sent_fn sent, void *sent_ctx,
                   char etag[STORE_ETAG_MAX]);
    int (*mp_complete)(struct store *s, const char *key, const char *upload_id,
                       const struct store_part *parts, size_t nparts, char etag[STORE_ETAG_MAX]);
    int (*mp_abort)(struct store *s, const char *key, const char *upload_id);
    /* Optional: write the object from the first len bytes of an open regular file (the file
     * backend copies them in the kernel with copy_file_range; temp file, fsync, rename). */
    int (*put_file)(struct store *s, const char *key, int fd, uint64_t len, const struct store_put_opts *po);
    /* Optional: replace the metadata (sha256, content type) of an existing object of `size`
     * bytes without sending its data again -- for an upload whose hash is known only at its
     * end.  S3 and GCS: a server-side copy of the object onto itself (metadata directive
     * REPLACE; a multipart copy above 5 GiB); file: the sidecar. */
    int (*set_meta)(struct store *s, const char *key, uint64_t size, const struct store_put_opts *po);
};

/* Every backend embeds this first. */
struct store {
    const struct store_ops *ops;
    char *url;               /* the base URL as given, without secrets */
};

/* Open the backend for url's scheme.  Zero idle_timeout_ms / max_attempts are taken from
 * SNAPCTL_IDLE_TIMEOUT (seconds) / SNAPCTL_MAX_ATTEMPTS when set, else the backend defaults;
 * SNAPCTL_ALLOW_PRIVATE_REDIRECTS=1 sets allow_private_redirects. */
int store_open(const char *url, const struct store_opts *opts, struct store **out);
void store_close(struct store *s);

/* Thin dispatchers (they check the optional ops and name the object in errors). */
int store_stat(struct store *s, const char *key, struct store_info *info);
int store_read(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
               store_progress_fn progress, void *ctx, struct store_read_result *res);
/* Stream [off, off+len) -- or to the end with len == STORE_SIZE_UNKNOWN -- to a sink, with
 * memory independent of the object's size.  res->bytes counts what the sink accepted. */
int store_read_stream(struct store *s, const char *key, uint64_t off, uint64_t len,
                      store_sink_fn sink, void *ctx, struct store_read_result *res);
/* Does the store stream reads itself (http, s3, gs), rather than store_read_stream looping? */
bool store_can_read_stream(const struct store *s);
int store_put(struct store *s, const char *key, const void *buf, size_t len,
              const struct store_put_opts *po);
bool store_can_write(const struct store *s);
bool store_can_multipart(const struct store *s);
int store_mp_create(struct store *s, const char *key, const struct store_put_opts *po, char **upload_id);
/* sent (NULL = none) observes the sending of buf; see store_sent_fn. */
int store_mp_part(struct store *s, const char *key, const char *upload_id, uint32_t number,
                  const void *buf, size_t len, store_sent_fn sent, void *sent_ctx,
                  char etag[STORE_ETAG_MAX]);
int store_mp_complete(struct store *s, const char *key, const char *upload_id,
                      const struct store_part *parts, size_t nparts, char etag[STORE_ETAG_MAX]);
int store_mp_abort(struct store *s, const char *key, const char *upload_id);

bool store_can_put_file(const struct store *s);
bool store_can_set_meta(const struct store *s);
int store_put_file(struct store *s, const char *key, int fd, uint64_t len, const struct store_put_opts *po);
int store_set_meta(struct store *s, const char *key, uint64_t size, const struct store_put_opts *po);

/* Read a whole small object (a header, metadata.json) named by its URL into a new buffer,
 * refusing one larger than max with SNAP_ETOOBIG.  snap_free the buffer. */
int store_read_object(const char *url, size_t max, uint8_t **out, size_t *len);
/* The same for a key of an open store. */
int store_read_all(struct store *s, const char *key, size_t max, uint8_t **out, size_t *len);
/* Split an object URL at its last '/': "s3://b/dir/obj" -> base "s3://b/dir", key "obj".
 * Both are new strings (snap_free them). */
int store_split_url(const char *url, char **base, char **key);
/* Split "scheme://..." and return the ops for it, or NULL. */
const struct store_ops *store_ops_for(const char *url);
/* Register a backend (backends register themselves from store.c's table). */
extern const struct store_ops store_file_ops;
extern const struct store_ops store_http_ops, store_https_ops, store_s3_ops, store_gs_ops;

#endif
