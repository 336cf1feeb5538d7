/* sigv4.c -- AWS Signature Version 4: canonical request, string to sign, signing key chain.
 *
 * Design notes.  The canonical request is never built in memory: one emitter writes it to a
 * "sink" that feeds SHA-256 (sigv4_sign) or a caller's buffer (sigv4_canonical_request), so
 * the two can never disagree.  Sorting happens on small arrays on the stack:
 *   - headers by lower-cased name, ties by their position (repeated names are joined with ','
 *     in the order given), the three x-amz-* headers we add included;
 *   - query parameters by encoded name, then encoded value.  Encoding keeps unreserved bytes
 *     and turns the rest into "%XX"; as '%' sorts below every unreserved byte and upper-case
 *     hex keeps numeric order, comparing raw strings with each byte weighted
 *     (unreserved ? 256 + c : c) orders them exactly as their encodings would, without
 *     encoding anything.
 * Every input is validated (characters and length caps) before anything is emitted.
 */
#include "crypto/sigv4.h"

#include "base/err.h"
#include "base/util.h"
#include "crypto/hmac.h"
#include "crypto/sha256.h"

#include <mbedtls/platform_util.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

/* ---- output sinks ---- */

struct sigv4_sink {
    struct sha256_ctx *hash; /* or NULL */
    char *buf;               /* or NULL */
    size_t cap, len;
    bool full;
};

static void sink_put(struct sigv4_sink *s, const char *p, size_t n)
{
    if (s->hash)
        sha256_update(s->hash, p, n);
    if (!s->buf || s->full)
        return;
    if (n >= s->cap - s->len) { /* keep a byte for the NUL */
        s->full = true;
        return;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

static void sink_str(struct sigv4_sink *s, const char *p)
{
    sink_put(s, p, strlen(p));
}

static bool sigv4_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

static void sink_encoded(struct sigv4_sink *s, const char *p, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (sigv4_unreserved(c) || (keep_slash && c == '/'))
            continue;
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
        sink_put(s, p + run, i - run);
        sink_put(s, esc, 3);
        run = i + 1;
    }
    sink_put(s, p + run, n - run);
}

static char sigv4_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static void sink_lower(struct sigv4_sink *s, const char *p, size_t n)
{
    char low[SIGV4_MAX_NAME];
    for (size_t i = 0; i < n; i++)
        low[i] = sigv4_lower(p[i]);
    sink_put(s, low, n);
}

/* A header value with inner runs of spaces folded to one (it is trimmed already). */
static void sink_folded(struct sigv4_sink *s, const char *p, size_t n)
{
    size_t run = 0;
    for (size_t i = 1; i < n; i++) {
        if (p[i] == ' ' && p[i - 1] == ' ') {
            sink_put(s, p + run, i - run);
            while (i < n && p[i] == ' ')
                i++;
            run = i;
        }
    }
    sink_put(s, p + run, n - run);
}

/* ---- validation and sorting ---- */

struct sigv4_hdr {
    const char *name, *value;
    size_t nlen, vlen, order;
};

struct sigv4_prep {
    struct sigv4_hdr hdr[SIGV4_MAX_HEADERS + 3];
    size_t nhdr;
    const struct sigv4_kv *query[SIGV4_MAX_QUERY];
    size_t nquery;
    char amz_date[17];
    char date[9];
};

static bool sigv4_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* 0 when every byte of p[0..n) is printable (no controls, no DEL); UTF-8 is allowed. */
static int sigv4_check_text(const char *what, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return snap_fail(SNAP_EUSAGE, "sigv4: %s: control character 0x%02x at offset %zu", what,
                             (unsigned char)p[i], i);
    return 0;
}

/* s must be 1..max bytes of [A-Za-z0-9._-] (plus `extra`). */
static int sigv4_check_word(const char *what, const char *s, size_t max, const char *extra)
{
    if (!s || !*s)
        return snap_fail(SNAP_EUSAGE, "sigv4: %s is missing", what);
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return snap_fail(SNAP_ETOOBIG, "sigv4: %s is longer than %zu bytes", what, max);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!sigv4_unreserved(c) && !(extra && c && strchr(extra, c)))
            return snap_fail(SNAP_EUSAGE, "sigv4: %s: character 0x%02x at offset %zu is not allowed", what, c, i);
    }
    return 0;
}

static int sigv4_cmp_hdr(const void *a, const void *b)
{
    const struct sigv4_hdr *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    for (size_t i = 0; i < n; i++) {
        char cx = sigv4_lower(x->name[i]), cy = sigv4_lower(y->name[i]);
        if (cx != cy)
            return (unsigned char)cx < (unsigned char)cy ? -1 : 1;
    }
    if (x->nlen != y->nlen)
        return x->nlen < y->nlen ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static bool sigv4_same_name(const struct sigv4_hdr *x, const struct sigv4_hdr *y)
{
    if (x->nlen != y->nlen)
        return false;
    for (size_t i = 0; i < x->nlen; i++)
        if (sigv4_lower(x->name[i]) != sigv4_lower(y->name[i]))
            return false;
    return true;
}

/* Order of raw strings by their URI encodings (see the design notes). */
static int sigv4_cmp_encoded(const char *a, const char *b)
{
    a = a ? a : "";
    b = b ? b : "";
    for (;; a++, b++) {
        unsigned ca = (unsigned char)*a, cb = (unsigned char)*b;
        if (ca != cb || !ca) {
            if (!ca || !cb)
                return ca ? 1 : cb ? -1 : 0;
            unsigned wa = sigv4_unreserved((unsigned char)ca) ? 256 + ca : ca;
            unsigned wb = sigv4_unreserved((unsigned char)cb) ? 256 + cb : cb;
            return wa < wb ? -1 : 1;
        }
    }
}

static int sigv4_cmp_query(const void *a, const void *b)
{
    const struct sigv4_kv *x = *(const struct sigv4_kv *const *)a, *y = *(const struct sigv4_kv *const *)b;
    int c = sigv4_cmp_encoded(x->name, y->name);
    return c ? c : sigv4_cmp_encoded(x->value, y->value);
}

static int sigv4_prep_query(const struct sigv4_kv *query, size_t nquery, struct sigv4_prep *p)
{
    if (nquery > SIGV4_MAX_QUERY)
        return snap_fail(SNAP_ETOOBIG, "sigv4: %zu query parameters (at most %d)", nquery, SIGV4_MAX_QUERY);
    for (size_t i = 0; i < nquery; i++) {
        const char *name = query[i].name, *value = query[i].value ? query[i].value : "";
        if (!name || !*name)
            return snap_fail(SNAP_EUSAGE, "sigv4: query parameter %zu has no name", i);
        if (strnlen(name, SIGV4_MAX_NAME + 1) > SIGV4_MAX_NAME)
            return snap_fail(SNAP_ETOOBIG, "sigv4: query parameter %zu: name longer than %d bytes", i,
                             SIGV4_MAX_NAME);
        if (strnlen(value, SIGV4_MAX_VALUE + 1) > SIGV4_MAX_VALUE)
            return snap_fail(SNAP_ETOOBIG, "sigv4: query parameter %.*s: value longer than %d bytes",
                             SIGV4_MAX_NAME, name, SIGV4_MAX_VALUE);
        p->query[i] = &query[i];
    }
    p->nquery = nquery;
    qsort(p->query, nquery, sizeof p->query[0], sigv4_cmp_query);
    return 0;
}

static int sigv4_add_header(struct sigv4_prep *p, const char *name, const char *value, size_t vmax)
{
    size_t nlen = strnlen(name, SIGV4_MAX_NAME + 1);
    while (nlen > 0 && name[nlen - 1] == ' ')
        nlen--;
    while (nlen > 0 && *name == ' ')
        name++, nlen--;
    if (nlen == 0)
        return snap_fail(SNAP_EUSAGE, "sigv4: header %zu has an empty name", p->nhdr);
    if (nlen > SIGV4_MAX_NAME)
        return snap_fail(SNAP_ETOOBIG, "sigv4: header name longer than %d bytes", SIGV4_MAX_NAME);
    for (size_t i = 0; i < nlen; i++)
        if (!sigv4_tchar((unsigned char)name[i]))
            return snap_fail(SNAP_EUSAGE, "sigv4: header name \"%.*s\": character 0x%02x is not allowed",
                             (int)nlen, name, (unsigned char)name[i]);
    size_t vlen = strnlen(value, vmax + 1);
    if (vlen > vmax)
        return snap_fail(SNAP_ETOOBIG, "sigv4: header %.*s: value longer than %zu bytes", (int)nlen, name, vmax);
    int err = sigv4_check_text("header value", value, vlen);
    if (err)
        return snap_fail_ctx(err, "header %.*s", (int)nlen, name);
    while (vlen > 0 && value[vlen - 1] == ' ')
        vlen--;
    while (vlen > 0 && *value == ' ')
        value++, vlen--;
    p->hdr[p->nhdr] = (struct sigv4_hdr){name, value, nlen, vlen, p->nhdr};
    p->nhdr++;
    return 0;
}

static bool sigv4_is_name(const struct sigv4_hdr *h, const char *lname)
{
    struct sigv4_hdr x = {.name = lname, .nlen = strlen(lname)};
    return sigv4_same_name(h, &x);
}

static bool sigv4_upper_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static int sigv4_check_path(const struct sigv4_request *req)
{
    const char *path = req->path ? req->path : "";
    size_t n = strnlen(path, SIGV4_MAX_PATH + 1);
    if (n > SIGV4_MAX_PATH)
        return snap_fail(SNAP_ETOOBIG, "sigv4: path longer than %d bytes", SIGV4_MAX_PATH);
    if (n > 0 && path[0] != '/')
        return snap_fail(SNAP_EUSAGE, "sigv4: path \"%.64s\" does not start with '/'", path);
    if (!req->path_encoded)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)path[i];
        if (sigv4_unreserved(c) || c == '/')
            continue;
        if (c == '%' && i + 2 < n && sigv4_upper_hex(path[i + 1]) && sigv4_upper_hex(path[i + 2])) {
            i += 2;
            continue;
        }
        return snap_fail(SNAP_EUSAGE,
                         "sigv4: encoded path: byte 0x%02x at offset %zu is neither unreserved nor %%XX "
                         "with upper-case hex (pass the raw path instead)", c, i);
    }
    return 0;
}

static int sigv4_check_time(const struct sigv4_request *req, struct sigv4_prep *p)
{
    if (req->timestamp) {
        const char *t = req->timestamp;
        bool ok = strlen(t) == 16 && t[8] == 'T' && t[15] == 'Z';
        for (int i = 0; ok && i < 15; i++)
            ok = i == 8 || (t[i] >= '0' && t[i] <= '9');
        if (!ok)
            return snap_fail(SNAP_EUSAGE, "sigv4: timestamp \"%.32s\" is not YYYYMMDDTHHMMSSZ", t);
        memcpy(p->amz_date, t, 17);
    } else {
        struct tm tm;
        if (!gmtime_r(&req->time, &tm) || tm.tm_year < 0 || tm.tm_year > 9999 - 1900 ||
            strftime(p->amz_date, sizeof p->amz_date, "%Y%m%dT%H%M%SZ", &tm) != 16)
            return snap_fail(SNAP_ERANGE, "sigv4: time %lld cannot be a request date", (long long)req->time);
    }
    memcpy(p->date, p->amz_date, 8);
    p->date[8] = '\0';
    return 0;
}

static int sigv4_prepare(const struct sigv4_request *req, struct sigv4_prep *p)
{
    int err;
    p->nhdr = 0;
    if ((err = sigv4_check_word("method", req->method, 16, NULL)) ||
        (err = sigv4_check_word("access key id", req->access_key, SIGV4_MAX_KEY, "+")) ||
        (err = sigv4_check_word("region", req->region, SIGV4_MAX_SCOPE_PART, NULL)) ||
        (err = sigv4_check_word("service", req->service, SIGV4_MAX_SCOPE_PART, NULL)))
        return err;
    if (!req->secret_key || !*req->secret_key)
        return snap_fail(SNAP_EUSAGE, "sigv4: secret key is missing");
    if (strnlen(req->secret_key, SIGV4_MAX_KEY + 1) > SIGV4_MAX_KEY)
        return snap_fail(SNAP_ETOOBIG, "sigv4: secret key is longer than %d bytes", SIGV4_MAX_KEY);
    const char *ph = req->payload_hash ? req->payload_hash : "";
    bool hex = strlen(ph) == 64 && strspn(ph, "0123456789abcdef") == 64;
    if (!hex && strcmp(ph, SIGV4_UNSIGNED_PAYLOAD) != 0)
        return snap_fail(SNAP_EUSAGE, "sigv4: payload hash \"%.70s\" is neither 64 lower-case hex digits nor %s",
                         ph, SIGV4_UNSIGNED_PAYLOAD);
    if ((err = sigv4_check_path(req)) || (err = sigv4_check_time(req, p)) ||
        (err = sigv4_prep_query(req->query, req->nquery, p)))
        return err;

    if (req->nheaders > SIGV4_MAX_HEADERS)
        return snap_fail(SNAP_ETOOBIG, "sigv4: %zu headers (at most %d)", req->nheaders, SIGV4_MAX_HEADERS);
    bool host = false;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!req->headers[i].name || !req->headers[i].value)
            return snap_fail(SNAP_EUSAGE, "sigv4: header %zu has no name or no value", i);
        if ((err = sigv4_add_header(p, req->headers[i].name, req->headers[i].value, SIGV4_MAX_VALUE)))
            return err;
        const struct sigv4_hdr *h = &p->hdr[p->nhdr - 1];
        static const char *const ours[] = {"x-amz-date", "x-amz-content-sha256", "x-amz-security-token",
                                           "authorization"};
        for (size_t k = 0; k < sizeof ours / sizeof ours[0]; k++)
            if (sigv4_is_name(h, ours[k]))
                return snap_fail(SNAP_EUSAGE, "sigv4: header %s is set by sigv4_sign; do not pass it", ours[k]);
        host = host || sigv4_is_name(h, "host");
    }
    if (!host)
        return snap_fail(SNAP_EUSAGE, "sigv4: no host header (it must be signed)");
    if ((err = sigv4_add_header(p, "x-amz-content-sha256", ph, 64)) ||
        (err = sigv4_add_header(p, "x-amz-date", p->amz_date, 16)))
        return err;
    if (req->session_token && *req->session_token &&
        (err = sigv4_add_header(p, "x-amz-security-token", req->session_token, SIGV4_MAX_TOKEN)))
        return snap_fail_ctx(err, "session token");
    qsort(p->hdr, p->nhdr, sizeof p->hdr[0], sigv4_cmp_hdr);
    return 0;
}

/* ---- emission ---- */

static void sigv4_emit_query(struct sigv4_sink *s, const struct sigv4_prep *p)
{
    for (size_t i = 0; i < p->nquery; i++) {
        const char *v = p->query[i]->value ? p->query[i]->value : "";
        if (i > 0)
            sink_put(s, "&", 1);
        sink_encoded(s, p->query[i]->name, strlen(p->query[i]->name), false);
        sink_put(s, "=", 1);
        sink_encoded(s, v, strlen(v), false);
    }
}

static void sigv4_emit_signed_headers(struct sigv4_sink *s, const struct sigv4_prep *p)
{
    for (size_t i = 0; i < p->nhdr; i++) {
        if (i > 0 && sigv4_same_name(&p->hdr[i - 1], &p->hdr[i]))
            continue;
        if (i > 0)
            sink_put(s, ";", 1);
        sink_lower(s, p->hdr[i].name, p->hdr[i].nlen);
    }
}

static void sigv4_emit_request(struct sigv4_sink *s, const struct sigv4_request *req, const struct sigv4_prep *p)
{
    const char *path = req->path && *req->path ? req->path : "/";
    sink_str(s, req->method);
    sink_put(s, "\n", 1);
    if (req->path_encoded)
        sink_str(s, path);
    else
        sink_encoded(s, path, strlen(path), true);
    sink_put(s, "\n", 1);
    sigv4_emit_query(s, p);
    sink_put(s, "\n", 1);
    for (size_t i = 0; i < p->nhdr; i++) {
        const struct sigv4_hdr *h = &p->hdr[i];
        if (i > 0 && sigv4_same_name(&p->hdr[i - 1], h)) {
            sink_put(s, ",", 1);
        } else {
            if (i > 0)
                sink_put(s, "\n", 1);
            sink_lower(s, h->name, h->nlen);
            sink_put(s, ":", 1);
        }
        sink_folded(s, h->value, h->vlen);
    }
    sink_put(s, "\n\n", 2);
    sigv4_emit_signed_headers(s, p);
    sink_put(s, "\n", 1);
    sink_str(s, req->payload_hash);
}

/* ---- public ---- */

int sigv4_uri_encode(const char *str, size_t len, bool keep_slash, char *out, size_t cap, size_t *outlen)
{
    struct sigv4_sink s = {.buf = out, .cap = cap, .full = cap == 0};
    if (cap > 0)
        out[0] = '\0';
    sink_encoded(&s, str, len, keep_slash);
    if (s.full)
        return snap_fail(SNAP_ETOOBIG, "sigv4: encoding %zu bytes needs more than %zu", len, cap);
    *outlen = s.len;
    return 0;
}

int sigv4_canonical_query(const struct sigv4_kv *query, size_t nquery, char *buf, size_t cap, size_t *len)
{
    struct sigv4_prep p;
    int err = sigv4_prep_query(query, nquery, &p);
    if (err)
        return err;
    struct sigv4_sink s = {.buf = buf, .cap = cap, .full = cap == 0};
    if (cap > 0)
        buf[0] = '\0';
    sigv4_emit_query(&s, &p);
    if (s.full)
        return snap_fail(SNAP_ETOOBIG, "sigv4: canonical query string longer than %zu bytes", cap);
    *len = s.len;
    return 0;
}

int sigv4_canonical_request(const struct sigv4_request *req, char *buf, size_t cap, size_t *len)
{
    struct sigv4_prep p;
    int err = sigv4_prepare(req, &p);
    if (err)
        return err;
    struct sigv4_sink s = {.buf = buf, .cap = cap, .full = cap == 0};
    if (cap > 0)
        buf[0] = '\0';
    sigv4_emit_request(&s, req, &p);
    if (s.full)
        return snap_fail(SNAP_ETOOBIG, "sigv4: canonical request longer than %zu bytes", cap);
    *len = s.len;
    return 0;
}

int sigv4_sign(const struct sigv4_request *req, struct sigv4_out *out)
{
    struct sigv4_prep p;
    int err = sigv4_prepare(req, &p);
    if (err)
        return err;

    /* Hash of the canonical request, then the string to sign. */
    struct sha256_ctx h;
    uint8_t digest[SHA256_DIGEST_LEN];
    char creq_hex[SHA256_HEX_LEN + 1];
    sha256_init(&h);
    struct sigv4_sink hs = {.hash = &h};
    sigv4_emit_request(&hs, req, &p);
    sha256_final(&h, digest);
    snap_hex(digest, sizeof digest, creq_hex);
    int n = snprintf(out->string_to_sign, sizeof out->string_to_sign, "%s\n%s\n%s/%s/%s/aws4_request\n%s",
                     SIGV4_ALGORITHM, p.amz_date, p.date, req->region, req->service, creq_hex);
    if (n < 0 || (size_t)n >= sizeof out->string_to_sign)
        return snap_fail(SNAP_EINTERNAL, "sigv4: string to sign does not fit");

    /* Signing key: HMAC chain from "AWS4" + secret over date, region, service, "aws4_request". */
    uint8_t key[SHA256_DIGEST_LEN], ksecret[4 + SIGV4_MAX_KEY];
    size_t slen = strlen(req->secret_key);
    memcpy(ksecret, "AWS4", 4);
    memcpy(ksecret + 4, req->secret_key, slen);
    hmac_sha256(ksecret, 4 + slen, p.date, 8, key);
    hmac_sha256(key, sizeof key, req->region, strlen(req->region), key);
    hmac_sha256(key, sizeof key, req->service, strlen(req->service), key);
    hmac_sha256(key, sizeof key, "aws4_request", 12, key);
    hmac_sha256(key, sizeof key, out->string_to_sign, (size_t)n, digest);
    snap_hex(digest, sizeof digest, out->signature);
    mbedtls_platform_zeroize(ksecret, sizeof ksecret);
    mbedtls_platform_zeroize(key, sizeof key);

    struct sigv4_sink as = {.buf = out->authorization, .cap = sizeof out->authorization};
    sink_str(&as, SIGV4_ALGORITHM " Credential=");
    sink_str(&as, req->access_key);
    sink_put(&as, "/", 1);
    sink_str(&as, p.date);
    sink_put(&as, "/", 1);
    sink_str(&as, req->region);
    sink_put(&as, "/", 1);
    sink_str(&as, req->service);
    sink_str(&as, "/aws4_request,SignedHeaders=");
    sigv4_emit_signed_headers(&as, &p);
    sink_str(&as, ",Signature=");
    sink_str(&as, out->signature);
    if (as.full)
        return snap_fail(SNAP_ETOOBIG, "sigv4: Authorization header longer than %d bytes (too many signed headers)",
                         SIGV4_AUTH_MAX);

    memcpy(out->amz_date, p.amz_date, sizeof out->amz_date);
    out->nadd = 0;
    out->add[out->nadd++] = (struct sigv4_kv){"x-amz-content-sha256", req->payload_hash};
    out->add[out->nadd++] = (struct sigv4_kv){"x-amz-date", out->amz_date};
    if (req->session_token && *req->session_token)
        out->add[out->nadd++] = (struct sigv4_kv){"x-amz-security-token", req->session_token};
    return 0;
}
