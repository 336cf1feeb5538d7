/* http_retry.c -- the retry policy: full-jitter exponential backoff and Retry-After. */
#include "net/http.h"

#include <string.h>
#include <sys/random.h>

void http_retry_defaults(struct http_retry *p)
{
    if (!p->max_attempts)
        p->max_attempts = 5;
    if (!p->base_ms)
        p->base_ms = 200;
    if (!p->cap_ms)
        p->cap_ms = 20000;
    if (!p->retry_after_max_ms)
        p->retry_after_max_ms = 60000;
}

static uint64_t retry_rand(const struct http_retry *p)
{
    if (p->rand)
        return p->rand(p->rand_ctx);
    uint64_t v;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
        return v;
    /* No entropy yet (early boot): jitter only needs to differ between clients. */
    static _Thread_local uint64_t x;
    if (!x)
        x = (uint64_t)(uintptr_t)&x ^ (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
}

uint64_t http_backoff_ms(const struct http_retry *p, unsigned retry, int64_t retry_after_ms)
{
    uint64_t cap = p->cap_ms, ceil = p->base_ms;
    for (unsigned i = 1; i < retry && ceil < cap; i++)
        ceil *= 2;
    if (ceil > cap)
        ceil = cap;
    uint64_t d = ceil ? retry_rand(p) % (ceil + 1) : 0;
    if (retry_after_ms >= 0 && (uint64_t)retry_after_ms > d)
        d = (uint64_t)retry_after_ms;
    if (retry_after_ms >= 0 && p->retry_after_max_ms && d > p->retry_after_max_ms)
        d = p->retry_after_max_ms;
    return d;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 IMF-fixdate). */
static int64_t imf_fixdate(const char *s)
{
    static const char mons[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || strcmp(s + 25, " GMT") != 0)
        return -1;
    static const int digits[] = {5, 6, 12, 13, 14, 15, 17, 18, 20, 21, 23, 24};
    for (size_t i = 0; i < sizeof digits / sizeof digits[0]; i++)
        if (s[digits[i]] < '0' || s[digits[i]] > '9')
            return -1;
    const char *m = NULL;
    for (int i = 0; i < 12 && !m; i++)
        if (memcmp(mons + 3 * i, s + 8, 3) == 0)
            m = mons + 3 * i;
    if (!m)
        return -1;
#define D2(o) ((s[o] - '0') * 10 + (s[(o) + 1] - '0'))
    struct tm tm = {
        .tm_mday = D2(5),
        .tm_mon = (int)((m - mons) / 3),
        .tm_year = D2(12) * 100 + D2(14) - 1900,
        .tm_hour = D2(17),
        .tm_min = D2(20),
        .tm_sec = D2(23),
    };
#undef D2
    if (tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    return (int64_t)timegm(&tm);
}

int64_t http_retry_after_ms(const char *v, time_t now)
{
    if (!v)
        return -1;
    size_t n = strlen(v);
    if (n > 0 && strspn(v, "0123456789") == n) {
        if (n > 9) /* more than 31 years: "as long as you like" */
            return INT64_MAX / 2;
        int64_t secs = 0;
        for (size_t i = 0; i < n; i++)
            secs = secs * 10 + (v[i] - '0');
        return secs * 1000;
    }
    int64_t t = imf_fixdate(v);
    if (t < 0)
        return -1;
    return t <= (int64_t)now ? 0 : (t - (int64_t)now) * 1000;
}
