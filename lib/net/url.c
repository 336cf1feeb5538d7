/* url.c -- URL parsing, resolution, percent-encoding and safe printing. */
#include "net/url.h"

#include "base/err.h"
#include "base/mem.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    enum url_scheme scheme;
    uint16_t port;
} url_schemes[] = {
    {"http", URL_HTTP, 80}, {"https", URL_HTTPS, 443}, {"peer", URL_PEER, 0},
    {"file", URL_FILE, 0},  {"s3", URL_S3, 0},         {"gs", URL_GS, 0},
};
#define NSCHEMES (sizeof url_schemes / sizeof url_schemes[0])

uint16_t url_default_port(enum url_scheme scheme)
{
    for (size_t i = 0; i < NSCHEMES; i++)
        if (url_schemes[i].scheme == scheme)
            return url_schemes[i].port;
    return 0;
}

bool url_is_tls(const struct url *u)
{
    return u->scheme == URL_HTTPS;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Every '%' in s[0..n) starts a two-hex-digit escape. */
static bool pct_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%')
            continue;
        if (n - i < 3 || hexval((unsigned char)s[i + 1]) < 0 || hexval((unsigned char)s[i + 2]) < 0)
            return false;
    }
    return true;
}

int url_decode(const char *in, size_t len, char *out, size_t cap, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            int h = len - i >= 3 ? hexval((unsigned char)in[i + 1]) : -1;
            int l = h >= 0 ? hexval((unsigned char)in[i + 2]) : -1;
            if (l < 0)
                return snap_fail(SNAP_EFORMAT, "bad percent-escape at offset %zu of '%.*s'", i,
                                 (int)(len > 200 ? 200 : len), in);
            c = h << 4 | l;
            if (c == 0)
                return snap_fail(SNAP_EFORMAT, "'%%00' (a NUL byte) in '%.*s'", (int)(len > 200 ? 200 : len), in);
            i += 2;
        }
        if (o + 1 >= cap)
            return snap_fail(SNAP_ETOOBIG, "decoded URL part longer than %zu bytes", cap ? cap - 1 : 0);
        out[o++] = (char)c;
    }
    if (cap == 0)
        return snap_fail(SNAP_ETOOBIG, "no room to decode a URL part");
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return 0;
}

int url_encode(const char *in, size_t len, const char *keep, char *out, size_t cap, size_t *outlen)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        bool plain = is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
                     (keep && c && strchr(keep, c));
        size_t need = plain ? 1 : 3;
        if (o + need >= cap)
            return snap_fail(SNAP_ETOOBIG, "percent-encoded URL part longer than %zu bytes", cap ? cap - 1 : 0);
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hx[c >> 4];
            out[o++] = hx[c & 15];
        }
    }
    if (cap == 0)
        return snap_fail(SNAP_ETOOBIG, "no room to encode a URL part");
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return 0;
}

/* Append s[0..n) and a NUL at *pp; return where it starts. */
static char *put(char **pp, const char *s, size_t n)
{
    char *d = *pp;
    memcpy(d, s, n);
    d[n] = '\0';
    *pp = d + n + 1;
    return d;
}

static bool bucket_ok(const char *b, size_t n, enum url_scheme scheme)
{
    size_t max = scheme == URL_GS ? 222 : 63;
    if (n < 3 || n > max || !is_alnum((unsigned char)b[0]) || !is_alnum((unsigned char)b[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)b[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              (c == '_' && scheme == URL_GS)))
            return false;
    }
    return true;
}

static bool regname_ok(const char *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)h[i];
        if (!is_alnum(c) && c != '-' && c != '.' && c != '_')
            return false;
    }
    return true;
}

/* The parts of a URL as spans of the input, before anything is copied. */
struct span {
    const char *p;
    size_t n;
};

/* The pieces of one URL, pointing into the string being parsed. */
struct url_parts {
    int si; /* index into url_schemes */
    struct span host, port, path, query, frag, user, pass;
    bool ipv6;
    unsigned long portv;
};

int url_check_arg(const char *s, bool *is_url)
{
    static const char *const known[] = {"file", "http", "https", "s3", "gs", "peer", "peers"};
    size_t sn = strcspn(s, ":/");
    bool slashes = s[sn] == ':' && strncmp(s + sn, "://", 3) == 0;
    int k = -1;
    for (size_t i = 0; s[sn] == ':' && i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i]) == sn && strncasecmp(known[i], s, sn) == 0)
            k = (int)i;
    *is_url = slashes || k >= 0;
    if (!*is_url)
        return 0;
    if (!slashes)
        return snap_fail(SNAP_EUSAGE, "'%.200s' is a malformed URL: '%.*s:' must be followed by '//', as in "
                         "%.*s://%s", s, (int)sn, s, (int)sn, s,
                         k <= 0 ? "/dir/name" : k <= 2 ? "host/path" : k <= 4 ? "bucket/key" : "host:port");
    if (k == 1 || k == 2 || k == 5) { /* http, https, peer: the whole URL must parse (file, s3, gs
                                       * and peers are checked by their stores, taken as written) */
        struct url u;
        int err = url_parse(s, &u);
        if (err)
            return err == SNAP_ENOMEM ? err : SNAP_EUSAGE;
        url_free(&u);
    }
    return 0;
}

/* "scheme://": sets *si to its url_schemes index and *rest past the "://". */
static int parse_scheme(const char *s, int *si, const char **rest)
{
    const char *sep = strstr(s, "://");
    if (!sep || sep == s)
        return snap_fail(SNAP_EFORMAT, "'%.200s' is not a URL (scheme://host/path)", s);
    size_t sn = (size_t)(sep - s);
    *si = -1;
    for (size_t i = 0; i < NSCHEMES; i++)
        if (strlen(url_schemes[i].name) == sn && strncasecmp(url_schemes[i].name, s, sn) == 0)
            *si = (int)i;
    if (*si < 0)
        return snap_fail(SNAP_EFORMAT, "unknown scheme '%.*s' in URL '%.200s' (known: http, https, peer, file, "
                         "s3, gs)", (int)(sn > 20 ? 20 : sn), s, s);
    *rest = sep + 3;
    return 0;
}

/* No space, control byte or (except in file://) non-ASCII byte anywhere. */
static int check_bytes(const char *s, size_t n, enum url_scheme scheme)
{
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || (c >= 0x80 && scheme != URL_FILE))
            return snap_fail(SNAP_EFORMAT, "URL '%.200s': byte 0x%02x at offset %zu (spaces, control and "
                             "non-ASCII characters must be percent-encoded)", s, c, i);
    }
    return 0;
}

/* "authority path ? query # fragment" after the "://", then "user : pass @ hostport" in the
 * authority; leaves "host:port" undivided in p->host. */
static void split_parts(const char *a, const char *end, struct url_parts *p)
{
    struct span auth = {a, strcspn(a, "/?#")};
    const char *c = a + auth.n;
    p->path = (struct span){c, strcspn(c, "?#")};
    c += p->path.n;
    if (*c == '?') {
        p->query.p = c + 1;
        p->query.n = strcspn(p->query.p, "#");
        c = p->query.p + p->query.n;
    }
    if (*c == '#') {
        p->frag.p = c + 1;
        p->frag.n = (size_t)(end - p->frag.p);
    }
    p->host = auth;
    const char *at = memrchr(auth.p, '@', auth.n);
    if (!at)
        return;
    p->user.p = auth.p;
    p->user.n = (size_t)(at - auth.p);
    const char *colon = memchr(p->user.p, ':', p->user.n);
    if (colon) {
        p->pass.p = colon + 1;
        p->pass.n = p->user.n - (size_t)(p->pass.p - p->user.p);
        p->user.n = (size_t)(colon - p->user.p);
    }
    p->host.p = at + 1;
    p->host.n = auth.n - (size_t)(p->host.p - auth.p);
}

/* "[v6]:port": checks the address, leaves it (without brackets) in p->host, the port in p->port. */
static int split_ipv6_host(const char *s, struct url_parts *p)
{
    struct span *host = &p->host;
    const char *rb = memchr(host->p, ']', host->n);
    if (!rb)
        return snap_fail(SNAP_EFORMAT, "URL '%.200s': the '[' that starts the IPv6 address is never closed "
                         "by ']' (write it as %s://[ADDRESS]:PORT/...)", s, url_schemes[p->si].name);
    size_t rest = host->n - (size_t)(rb + 1 - host->p);
    if (rest && rb[1] != ':')
        return snap_fail(SNAP_EFORMAT, "URL '%.200s': junk after the IPv6 literal", s);
    if (rest) {
        p->port.p = rb + 2;
        p->port.n = rest - 1;
    }
    char tmp[64];
    size_t ln = (size_t)(rb - host->p - 1);
    struct in6_addr a6;
    if (ln >= sizeof tmp || (memcpy(tmp, host->p + 1, ln), tmp[ln] = '\0', inet_pton(AF_INET6, tmp, &a6) != 1))
        return snap_fail(SNAP_EFORMAT, "URL '%.200s': '%.*s' is not an IPv6 address", s,
                         (int)(ln > 64 ? 64 : ln), host->p + 1);
    host->p++;
    host->n = ln;
    p->ipv6 = true;
    return 0;
}

/* "host:port" or "[v6]:port" into p->host and p->port; checks the host. */
static int split_host_port(const char *s, struct url_parts *p)
{
    if (p->host.n && p->host.p[0] == '[') {
        int err = split_ipv6_host(s, p);
        if (err)
            return err;
    } else {
        const char *colon = memchr(p->host.p, ':', p->host.n);
        if (colon) {
            p->port.p = colon + 1;
            p->port.n = p->host.n - (size_t)(p->port.p - p->host.p);
            p->host.n = (size_t)(colon - p->host.p);
        }
    }
    if (p->host.n > URL_HOST_MAX)
        return snap_fail(SNAP_ETOOBIG, "URL '%.200s': host longer than %d bytes", s, URL_HOST_MAX);
    if (!p->ipv6 && !regname_ok(p->host.p, p->host.n))
        return snap_fail(SNAP_EFORMAT, "URL '%.200s': bad character in host '%.*s'", s, (int)p->host.n,
                         p->host.p);
    return 0;
}

/* The port's digits into p->portv (1..65535), if there is a port. */
static int parse_port(const char *s, struct url_parts *p)
{
    const struct span *port = &p->port;
    if (!port->p)
        return 0;
    if (port->n == 0 || port->n > 5)
        return snap_fail(SNAP_EFORMAT, "URL '%.200s': bad port '%.*s'", s, (int)(port->n > 8 ? 8 : port->n),
                         port->p);
    for (size_t i = 0; i < port->n; i++) {
        if (port->p[i] < '0' || port->p[i] > '9')
            return snap_fail(SNAP_EFORMAT, "URL '%.200s': bad port '%.*s'", s, (int)port->n, port->p);
        p->portv = p->portv * 10 + (unsigned long)(port->p[i] - '0');
    }
    if (p->portv == 0 || p->portv > 65535)
        return snap_fail(SNAP_EFORMAT, "URL '%.200s': port %lu out of range (1..65535)", s, p->portv);
    return 0;
}

static bool span_pct_ok(const struct span *sp)
{
    return !sp->p || pct_ok(sp->p, sp->n);
}

/* What each scheme allows: stores take no user, port, query or fragment; file:// is local;
 * s3/gs hosts are bucket names; peer:// needs a port; network schemes need a host. */
static int check_scheme_rules(const char *s, struct url_parts *p)
{
    enum url_scheme scheme = url_schemes[p->si].scheme;
    const char *name = url_schemes[p->si].name;
    bool store = scheme == URL_FILE || scheme == URL_S3 || scheme == URL_GS;
    if (store && (p->user.p || p->port.p))
        return snap_fail(SNAP_EFORMAT, "URL '%.200s': %s:// takes no user or port", s, name);
    if ((store || scheme == URL_PEER) && (p->query.p || p->frag.p))
        return snap_fail(SNAP_EFORMAT, "URL '%.200s': %s:// takes no '?query' or '#fragment'", s, name);
    const struct span *host = &p->host;
    switch (scheme) {
    case URL_FILE:
        if (host->n && !(host->n == 9 && strncasecmp(host->p, "localhost", 9) == 0))
            return snap_fail(SNAP_EFORMAT, "URL '%.200s': file:// names a local path (file:///dir), not host "
                             "'%.*s'", s, (int)host->n, host->p);
        if (p->path.n == 0)
            return snap_fail(SNAP_EFORMAT, "URL '%.200s': file:// needs a path (file:///dir)", s);
        p->host.n = 0;
        break;
    case URL_S3:
    case URL_GS:
        if (!bucket_ok(host->p, host->n, scheme))
            return snap_fail(SNAP_EFORMAT, "URL '%.200s': '%.*s' is not a bucket name (3-%d characters of "
                             "a-z 0-9 . -)", s, (int)host->n, host->p, scheme == URL_GS ? 222 : 63);
        break;
    case URL_PEER:
        if (!p->port.p)
            return snap_fail(SNAP_EFORMAT, "URL '%.200s': peer:// needs a port (peer://host:port)", s);
        /* fall through */
    case URL_HTTP:
    case URL_HTTPS:
        if (host->n == 0)
            return snap_fail(SNAP_EFORMAT, "URL '%.200s': no host", s);
        break;
    }
    return 0;
}

/* The checked parts, copied (host lower-cased for network schemes, userinfo decoded) into one
 * allocation of n + 8 bytes that *u owns. */
static int build_url(const struct url_parts *p, size_t n, struct url *u)
{
    enum url_scheme scheme = url_schemes[p->si].scheme;
    char *mem = snap_malloc(n + 8);
    if (!mem)
        return snap_fail(SNAP_ENOMEM, "URL of %zu bytes", n);
    char *w = mem;
    struct url r = {.scheme = scheme, .scheme_name = url_schemes[p->si].name, .mem = mem, .ipv6 = p->ipv6,
                    .port_given = p->port.p != NULL};
    r.port = p->port.p ? (uint16_t)p->portv : url_schemes[p->si].port;
    r.host = put(&w, p->host.p, p->host.n);
    if (scheme == URL_HTTP || scheme == URL_HTTPS || scheme == URL_PEER)
        for (char *c = r.host; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
    r.path = put(&w, p->path.p, p->path.n);
    if (p->query.p)
        r.query = put(&w, p->query.p, p->query.n);
    if (p->frag.p)
        r.fragment = put(&w, p->frag.p, p->frag.n);
    /* Decoding only shrinks, and the userinfo spans are disjoint from the rest. */
    size_t dn;
    if (p->user.p) {
        r.user = w;
        if (url_decode(p->user.p, p->user.n, w, p->user.n + 1, &dn) != 0)
            goto bad_user;
        w += dn + 1;
    }
    if (p->pass.p) {
        r.password = w;
        if (url_decode(p->pass.p, p->pass.n, w, p->pass.n + 1, &dn) != 0)
            goto bad_user;
    }
    *u = r;
    return 0;
bad_user:
    snap_free(mem);
    return snap_fail_ctx(SNAP_EFORMAT, "URL user part");
}

int url_parse(const char *s, struct url *u)
{
    size_t n = strnlen(s, URL_MAX + 1);
    if (n > URL_MAX)
        return snap_fail(SNAP_ETOOBIG, "URL longer than %d bytes: '%.60s...'", URL_MAX, s);
    struct url_parts p = {0};
    const char *rest = NULL;
    int err = parse_scheme(s, &p.si, &rest);
    if (!err)
        err = check_bytes(s, n, url_schemes[p.si].scheme);
    if (err)
        return err;
    split_parts(rest, s + n, &p);
    err = split_host_port(s, &p);
    if (!err)
        err = parse_port(s, &p);
    if (!err && !(span_pct_ok(&p.path) && span_pct_ok(&p.query) && span_pct_ok(&p.frag) &&
                  span_pct_ok(&p.user) && span_pct_ok(&p.pass)))
        err = snap_fail(SNAP_EFORMAT, "URL '%.200s': '%%' not followed by two hex digits", s);
    if (!err)
        err = check_scheme_rules(s, &p);
    return err ? err : build_url(&p, n, u);
}

void url_free(struct url *u)
{
    if (!u)
        return;
    snap_free(u->mem);
    memset(u, 0, sizeof *u);
}

int url_authority(const struct url *u, char *buf, size_t len)
{
    int r;
    bool dflt = u->port == url_default_port(u->scheme) || u->port == 0;
    if (dflt)
        r = snprintf(buf, len, u->ipv6 ? "[%s]" : "%s", u->host);
    else
        r = snprintf(buf, len, u->ipv6 ? "[%s]:%u" : "%s:%u", u->host, (unsigned)u->port);
    if (r < 0 || (size_t)r >= len)
        return snap_fail(SNAP_ETOOBIG, "host '%.60s' longer than %zu bytes", u->host, len);
    return 0;
}

int url_target(const struct url *u, char *buf, size_t len)
{
    int r = snprintf(buf, len, "%s%s%s", u->path[0] ? u->path : "/", u->query ? "?" : "",
                     u->query ? u->query : "");
    if (r < 0 || (size_t)r >= len)
        return snap_fail(SNAP_ETOOBIG, "request target longer than %zu bytes", len);
    return 0;
}

/* A query parameter whose value must not be printed. */
static bool secret_param(const char *k, size_t n)
{
    static const char *const words[] = {"signature", "credential", "token", "key", "sig", "password", "secret"};
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
        size_t wn = strlen(words[w]);
        for (size_t i = 0; i + wn <= n; i++)
            if (strncasecmp(k + i, words[w], wn) == 0)
                return true;
    }
    return false;
}

const char *url_redact(const struct url *u, const char *target, char *buf, size_t len)
{
    if (len == 0)
        return buf;
    char auth[URL_HOST_MAX + 16];
    if (url_authority(u, auth, sizeof auth))
        auth[0] = '\0';
    int r = snprintf(buf, len, "%s://%s", u->scheme_name, auth);
    size_t o = r < 0 ? 0 : (size_t)r >= len ? len - 1 : (size_t)r;
    char tbuf[URL_MAX + 2];
    if (!target)
        target = url_target(u, tbuf, sizeof tbuf) == 0 ? tbuf : "/";
    /* Copy the target, blanking secret values in the query. */
    const char *q = strchr(target, '?');
    size_t pn = q ? (size_t)(q - target) : strlen(target);
    for (size_t i = 0; i < pn && o + 1 < len; i++)
        buf[o++] = target[i];
    if (q) {
        const char *p = q;
        while (*p && o + 1 < len) {
            buf[o++] = *p++; /* '?' or '&' */
            size_t seg = strcspn(p, "&");
            const char *eq = memchr(p, '=', seg);
            size_t keep = eq && secret_param(p, (size_t)(eq - p)) ? (size_t)(eq - p) + 1 : seg;
            for (size_t i = 0; i < keep && o + 1 < len; i++)
                buf[o++] = p[i];
            if (keep < seg)
                for (const char *x = "REDACTED"; *x && o + 1 < len; x++)
                    buf[o++] = *x;
            p += seg;
        }
    }
    buf[o] = '\0';
    return buf;
}

int url_resolve(const struct url *base, const char *ref, struct url *out)
{
    size_t rn = strnlen(ref, URL_MAX + 1);
    if (rn > URL_MAX)
        return snap_fail(SNAP_ETOOBIG, "redirect target longer than %d bytes", URL_MAX);
    /* Absolute: a scheme (letters, digits, + - .) followed by "://". */
    size_t k = 0;
    while (k < rn && (is_alnum((unsigned char)ref[k]) || ref[k] == '+' || ref[k] == '-' || ref[k] == '.'))
        k++;
    if (k > 0 && strncmp(ref + k, "://", 3) == 0)
        return url_parse(ref, out);

    if (rn == 0)
        return snap_fail(SNAP_EFORMAT, "empty redirect target");
    char *buf = snap_malloc(2 * URL_MAX + 64);
    if (!buf)
        return snap_fail(SNAP_ENOMEM, "resolving a redirect target");
    char auth[URL_HOST_MAX + 16];
    if (url_authority(base, auth, sizeof auth))
        auth[0] = '\0';
    int r;
    if (ref[0] == '/' && ref[1] == '/') {
        r = snprintf(buf, 2 * URL_MAX + 64, "%s:%s", base->scheme_name, ref);
    } else if (ref[0] == '/') {
        r = snprintf(buf, 2 * URL_MAX + 64, "%s://%s%s", base->scheme_name, auth, ref);
    } else if (ref[0] == '?') {
        r = snprintf(buf, 2 * URL_MAX + 64, "%s://%s%s%s", base->scheme_name, auth,
                     base->path[0] ? base->path : "/", ref);
    } else {
        const char *slash = strrchr(base->path, '/');
        int dir = slash ? (int)(slash - base->path) : 0;
        r = snprintf(buf, 2 * URL_MAX + 64, "%s://%s%.*s/%s", base->scheme_name, auth, dir, base->path, ref);
    }
    int e = r < 0 ? snap_fail(SNAP_EFORMAT, "bad redirect target") : url_parse(buf, out);
    snap_free(buf);
    return e;
}
