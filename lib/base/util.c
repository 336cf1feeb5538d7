/* util.c -- UUIDs, sizes with suffixes, hex. */
#include "base/util.h"

#include "base/err.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int snap_uuid_parse(const char *s, snap_uuid *out)
{
    int n = 0;
    for (int i = 0; i < SNAP_UUID_STRLEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return snap_fail(SNAP_EFORMAT, "'%.40s' is not a UUID", s);
            continue;
        }
        int h = hexval((unsigned char)s[i]), l;
        if (h < 0 || (l = hexval((unsigned char)s[i + 1])) < 0)
            return snap_fail(SNAP_EFORMAT, "'%.40s' is not a UUID", s);
        out->b[n++] = (uint8_t)(h << 4 | l);
        i++;
    }
    if (s[SNAP_UUID_STRLEN] != '\0')
        return snap_fail(SNAP_EFORMAT, "'%.40s' is not a UUID", s);
    return 0;
}

void snap_uuid_format(const snap_uuid *u, char out[SNAP_UUID_STRLEN + 1])
{
    static const char hx[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hx[u->b[i] >> 4];
        *p++ = hx[u->b[i] & 15];
    }
    *p = '\0';
}

bool snap_uuid_is_zero(const snap_uuid *u)
{
    static const snap_uuid zero;
    return memcmp(u, &zero, sizeof zero) == 0;
}

int snap_uuid_cmp(const snap_uuid *a, const snap_uuid *b)
{
    return memcmp(a->b, b->b, 16);
}

int snap_uuid_random(snap_uuid *out)
{
    size_t got = 0;
    while (got < sizeof out->b) {
        ssize_t r = getrandom(out->b + got, sizeof out->b - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return snap_fail_errno("getrandom");
        }
        got += (size_t)r;
    }
    out->b[6] = (uint8_t)((out->b[6] & 0x0f) | 0x40);
    out->b[8] = (uint8_t)((out->b[8] & 0x3f) | 0x80);
    return 0;
}

int snap_parse_u64(const char *s, uint64_t *out, const char *what)
{
    char *end;
    if (!s || !*s || *s == '-' || isspace((unsigned char)*s))
        return snap_fail(SNAP_EUSAGE, "%s: '%s' is not a number", what, s ? s : "");
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end)
        return snap_fail(SNAP_EUSAGE, "%s: '%s' is not a number (or too large)", what, s);
    *out = v;
    return 0;
}

int snap_parse_size(const char *s, uint64_t *out, const char *what)
{
    char *end;
    if (!s || !isdigit((unsigned char)*s))
        return snap_fail(SNAP_EUSAGE, "%s: '%s' is not a size (try 4096, 64K, 50MiB, 8G)", what,
                         s ? s : "");
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return snap_fail(SNAP_EUSAGE, "%s: '%s' is too large", what, s);
    static const struct { const char *sfx; uint64_t mul; } sfx[] = {
        {"", 1}, {"B", 1},
        {"K", 1ull << 10}, {"KiB", 1ull << 10}, {"k", 1ull << 10}, {"KB", 1000}, {"kB", 1000},
        {"M", 1ull << 20}, {"MiB", 1ull << 20}, {"MB", 1000000},
        {"G", 1ull << 30}, {"GiB", 1ull << 30}, {"GB", 1000000000},
        {"T", 1ull << 40}, {"TiB", 1ull << 40}, {"TB", 1000000000000ull},
    };
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        if (strcmp(end, sfx[i].sfx) == 0) {
            if (v > UINT64_MAX / sfx[i].mul)
                return snap_fail(SNAP_EUSAGE, "%s: '%s' is too large", what, s);
            *out = v * sfx[i].mul;
            return 0;
        }
    }
    return snap_fail(SNAP_EUSAGE, "%s: unknown size suffix in '%s' (use K, M, G, T, KiB, MB ...)",
                     what, s);
}

const char *snap_fmt_size(uint64_t n, char *buf, size_t len)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, len, "%.1f %s", v, unit[u]);
    return buf;
}

void snap_hex(const uint8_t *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int snap_unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int h = hexval((unsigned char)s[2 * i]), l;
        if (h < 0 || (l = hexval((unsigned char)s[2 * i + 1])) < 0)
            return snap_fail(SNAP_EFORMAT, "'%.80s' is not %zu hex digits", s, 2 * n);
        out[i] = (uint8_t)(h << 4 | l);
    }
    if (s[2 * n] != '\0')
        return snap_fail(SNAP_EFORMAT, "'%.80s' is not %zu hex digits", s, 2 * n);
    return 0;
}
