/* fuzz-url.c -- url_parse on arbitrary input must not crash, and what it accepts must survive a
 * round trip: printing the parts back and parsing again gives the same parts.  Also fuzzes
 * url_resolve (the rest of the input after a NUL as the reference) and the percent codec. */
#include "base/err.h"
#include "net/url.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void roundtrip(const struct url *u)
{
    size_t cap = URL_MAX * 2 + 600;
    char *s = malloc(cap), auth[URL_HOST_MAX + 16];
    if (url_authority(u, auth, sizeof auth))
        abort();
    snprintf(s, cap, "%s://%s%s%s%s%s%s", u->scheme_name, auth, u->path, u->query ? "?" : "",
             u->query ? u->query : "", u->fragment ? "#" : "", u->fragment ? u->fragment : "");
    struct url v;
    if (strlen(s) <= URL_MAX) {
        if (url_parse(s, &v) != 0) {
            fprintf(stderr, "reparse of '%s' failed: %s\n", s, snap_errmsg(SNAP_EFORMAT));
            abort();
        }
        if (v.scheme != u->scheme || v.port != u->port || v.ipv6 != u->ipv6 || !same(v.host, u->host) ||
            !same(v.path, u->path) || !same(v.query, u->query) || !same(v.fragment, u->fragment))
            abort();
        url_free(&v);
    }
    char red[300];
    url_redact(u, NULL, red, sizeof red);
    if (strlen(red) >= sizeof red)
        abort();
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > URL_MAX + 64)
        return 0;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    struct url u;
    if (url_parse(s, &u) == 0) {
        if (strlen(u.host) > URL_HOST_MAX || (u.path[0] && u.path[0] != '/'))
            abort();
        if ((u.scheme == URL_HTTP || u.scheme == URL_HTTPS || u.scheme == URL_PEER) && (!u.port || !u.host[0]))
            abort();
        roundtrip(&u);
        size_t n = strlen(s);
        if (n < size) { /* bytes after the first NUL: a redirect reference */
            struct url r;
            if (url_resolve(&u, s + n + 1, &r) == 0) {
                roundtrip(&r);
                url_free(&r);
            }
        }
        url_free(&u);
    }
    /* encode then decode gives the bytes back (a NUL cannot be carried by a C string). */
    size_t n = strlen(s), elen, dlen;
    char *enc = malloc(3 * n + 1), *dec = malloc(n + 1);
    if (url_encode(s, n, size & 1 ? "/" : NULL, enc, 3 * n + 1, &elen) != 0)
        abort();
    if (url_decode(enc, elen, dec, n + 1, &dlen) != 0 || dlen != n || memcmp(dec, s, n) != 0)
        abort();
    url_decode(s, n, dec, n + 1, &dlen); /* any input: an error or fewer bytes */
    free(enc);
    free(dec);
    free(s);
    return 0;
}
