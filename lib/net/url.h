/* url.h -- URLs of the storage and HTTP layers: parse, resolve, percent-encode, print safely.
 *
 *   scheme://[userinfo@]host[:port][/path][?query][#fragment]
 *
 * Schemes: http, https (default ports 80, 443), peer (port required), and the store schemes
 * file:///dir, s3://bucket/prefix, gs://bucket/prefix (no port, userinfo, query or fragment).
 * The host is lower-cased (http/https/peer), an IPv6 literal is kept without its brackets.
 * The path, query and fragment are kept as written (still percent-encoded: they go on the
 * wire that way); url_decode() gives the bytes.  Errors are SNAP_EFORMAT naming the bad part.
 */
#ifndef SNAP_NET_URL_H
#define SNAP_NET_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define URL_MAX 8192     /* a whole URL, in bytes */
#define URL_HOST_MAX 253 /* a DNS name; also bounds an IPv6 literal */

enum url_scheme { URL_HTTP = 1, URL_HTTPS, URL_PEER, URL_FILE, URL_S3, URL_GS };

struct url {
    enum url_scheme scheme;
    const char *scheme_name; /* "https" (static) */
    char *user;              /* userinfo before ':', percent-decoded; NULL when absent */
    char *password;          /* userinfo after ':', percent-decoded; NULL when absent */
    char *host;              /* never NULL; "" for file:///; the bucket for s3/gs */
    uint16_t port;           /* as given, else the scheme's default; 0 when the scheme has none */
    bool port_given;
    bool ipv6;               /* host is an IPv6 literal (print it in brackets) */
    char *path;              /* "" or starting with '/' */
    char *query;             /* after '?', NULL when absent */
    char *fragment;          /* after '#', NULL when absent */
    char *mem;               /* the one allocation holding the strings above */
};

/* Parse s into u (url_free it).  0 or SNAP_EFORMAT/SNAP_ETOOBIG/SNAP_ENOMEM; u is untouched
 * on failure. */
int url_parse(const char *s, struct url *u);
void url_free(struct url *u);
/* Resolve a reference (a redirect's Location: absolute, "//host/...", "/path", "rel") against
 * base into out (url_free it).  Dot segments are not removed. */
int url_resolve(const struct url *base, const char *ref, struct url *out);

/* An argument that is a store URL or, where the caller allows it, a local path: *is_url tells
 * which.  It is a URL when it starts with a scheme and ':' -- a known one (file, http, https,
 * s3, gs, peer, peers), or any followed by "://".  A URL written wrong is SNAP_EUSAGE naming the
 * mistake: "s3:/x" (no "//" after the scheme), and for http(s):// and peer:// whatever
 * url_parse refuses ("http://[::1": the '[' is never closed).  0 otherwise. */
int url_check_arg(const char *s, bool *is_url);

/* The scheme's default port (80, 443) or 0. */
uint16_t url_default_port(enum url_scheme scheme);
bool url_is_tls(const struct url *u);
/* Host header value: host, IPv6 in brackets, ":port" unless it is the default ("" for
 * file:///).  0, or SNAP_ETOOBIG when it does not fit in len. */
int url_authority(const struct url *u, char *buf, size_t len);
/* Request target: path ("/" when empty) and "?query".  0, or SNAP_ETOOBIG. */
int url_target(const struct url *u, char *buf, size_t len);
/* For messages: scheme://authority + target (u's own when target is NULL), without userinfo
 * and with the values of secret-looking query parameters (signature, credential, token, key,
 * sig) replaced by "REDACTED".  Truncated to fit; returns buf. */
const char *url_redact(const struct url *u, const char *target, char *buf, size_t len);

/* Percent-decode in[0..len) into out (cap bytes, NUL-terminated; out may equal in).  "%00",
 * a bad escape, or not fitting is SNAP_EFORMAT/SNAP_ETOOBIG.  *outlen gets the length. */
int url_decode(const char *in, size_t len, char *out, size_t cap, size_t *outlen);
/* Percent-encode everything but the unreserved set (A-Z a-z 0-9 - . _ ~) and the characters
 * in keep (e.g. "/" for a path), upper-case hex, as SigV4 wants.  NUL-terminated;
 * SNAP_ETOOBIG when it does not fit. */
int url_encode(const char *in, size_t len, const char *keep, char *out, size_t cap, size_t *outlen);

#endif
