/* sigv4.h -- AWS Signature Version 4 for S3 and S3-compatible stores (GCS HMAC keys too).
 *
 * The caller describes the request as it will go on the wire; sigv4_sign() returns the
 * Authorization value and the headers the caller must add (x-amz-content-sha256, x-amz-date,
 * and x-amz-security-token with a session token), which are signed along with the caller's.
 *
 *   struct sigv4_kv hdrs[] = {{"host", "bucket.s3.amazonaws.com"}, {"range", "bytes=0-9"}};
 *   struct sigv4_request r = {.method = "GET", .path = "/my key.txt", .headers = hdrs,
 *       .nheaders = 2, .payload_hash = SIGV4_UNSIGNED_PAYLOAD, .access_key = ak,
 *       .secret_key = sk, .region = "us-east-1", .service = "s3", .time = time(NULL)};
 *   struct sigv4_out o;
 *   if (sigv4_sign(&r, &o) == 0)
 *       send o.add[0..o.nadd) and "Authorization: " o.authorization with hdrs.
 *
 * Inputs.  `path` is raw by default: each byte other than A-Za-z0-9-._~ and '/' is
 * percent-encoded once (S3 style: the key "a b$c" is signed, and must be sent, as "/a%20b%24c";
 * sigv4_uri_encode gives the same encoding for the request line).  With path_encoded it is
 * taken as already encoded and only checked (unreserved, '/', and %XX with upper-case hex).
 * Query parameters are raw names and values, encoded and sorted here; sigv4_canonical_query
 * gives the string to put after '?'.  Header names are matched case-insensitively, values have
 * surrounding spaces trimmed and inner runs of spaces folded; repeated names are joined with
 * ',' in the order given.  A `host` header is required.  Nothing is allocated: every input has
 * a length cap (below), and exceeding one is SNAP_ETOOBIG naming the field.
 */
#ifndef SNAP_CRYPTO_SIGV4_H
#define SNAP_CRYPTO_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

#define SIGV4_MAX_HEADERS 32   /* caller's headers */
#define SIGV4_MAX_QUERY 32     /* query parameters */
#define SIGV4_MAX_NAME 128     /* header name, query name */
#define SIGV4_MAX_VALUE 4096   /* header value, query value */
#define SIGV4_MAX_PATH 4096    /* path, raw or encoded */
#define SIGV4_MAX_KEY 128      /* access key id, secret key */
#define SIGV4_MAX_TOKEN 4096   /* session token */
#define SIGV4_MAX_SCOPE_PART 64 /* region, service */
#define SIGV4_AUTH_MAX 2048
#define SIGV4_STS_MAX 256

struct sigv4_kv {
    const char *name;
    const char *value; /* NULL means "" (a query flag such as ?uploads) */
};

struct sigv4_request {
    const char *method;             /* "GET", "PUT", "POST", "DELETE", "HEAD" */
    const char *path;               /* "/key" or "/bucket/key"; "" or NULL means "/" */
    bool path_encoded;              /* path is already URI-encoded as sent: checked, not re-encoded */
    const struct sigv4_kv *query;   /* raw names and values */
    size_t nquery;
    const struct sigv4_kv *headers; /* as sent, host included; not the ones sigv4 adds */
    size_t nheaders;
    const char *payload_hash;       /* 64 lower-case hex digits, or SIGV4_UNSIGNED_PAYLOAD */
    const char *access_key;
    const char *secret_key;
    const char *session_token;      /* NULL or "" for none */
    const char *region;             /* "us-east-1"; GCS accepts "auto" */
    const char *service;            /* "s3" */
    const char *timestamp;          /* "20130524T000000Z" (UTC), or NULL to format .time */
    time_t time;
};

struct sigv4_out {
    char amz_date[17];                  /* the x-amz-date value */
    char signature[65];                 /* hex */
    char authorization[SIGV4_AUTH_MAX]; /* the Authorization header value */
    char string_to_sign[SIGV4_STS_MAX]; /* for debugging a SignatureDoesNotMatch */
    struct sigv4_kv add[3];             /* headers to add to the request; values point into
                                           this struct or the request */
    size_t nadd;
};

/* Sign req.  Returns 0, SNAP_EUSAGE for a malformed input (naming it), or SNAP_ETOOBIG
 * when an input is over its cap. */
int sigv4_sign(const struct sigv4_request *req, struct sigv4_out *out);

/* The canonical request sigv4_sign hashes, into buf (cap bytes, NUL-terminated), for
 * debugging; SNAP_ETOOBIG if it does not fit.  Same errors as sigv4_sign otherwise. */
int sigv4_canonical_request(const struct sigv4_request *req, char *buf, size_t cap, size_t *len);

/* The canonical query string ("a=1&b=%20"), to send after '?' so the server sees what was signed. */
int sigv4_canonical_query(const struct sigv4_kv *query, size_t nquery, char *buf, size_t cap, size_t *len);

/* AWS URI encoding of len bytes: A-Za-z0-9-._~ kept (and '/' with keep_slash), everything else
 * %XX in upper-case hex.  Writes a NUL; SNAP_ETOOBIG if cap is too small (3 * len + 1 always fits). */
int sigv4_uri_encode(const char *s, size_t len, bool keep_slash, char *out, size_t cap, size_t *outlen);

#endif
