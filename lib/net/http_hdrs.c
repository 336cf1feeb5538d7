/* http_hdrs.c -- the request header list: name/value pairs in inline storage. */
#include "net/http.h"

#include "base/err.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void http_hdrs_init(struct http_hdrs *h)
{
    h->n = 0;
    h->used = 0;
}

static bool hdr_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        int c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!#$%&'*+-.^_`|~", c)))
            return false;
    }
    return true;
}

int http_hdrs_add(struct http_hdrs *h, const char *name, const char *value)
{
    if (!hdr_token(name))
        return snap_fail(SNAP_EUSAGE, "header name '%.40s' is not a token", name);
    if (strpbrk(value, "\r\n"))
        return snap_fail(SNAP_EUSAGE, "header '%s': CR or LF in the value", name);
    size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
    if (h->n == HTTP_HDRS_MAX || h->used + nl + vl > sizeof h->buf)
        return snap_fail(SNAP_ETOOBIG, "request headers: more than %d fields or %d bytes (adding '%s')",
                         HTTP_HDRS_MAX, HTTP_HDRS_BYTES, name);
    memcpy(h->buf + h->used, name, nl);
    memcpy(h->buf + h->used + nl, value, vl);
    h->h[h->n].name = (uint16_t)h->used;
    h->h[h->n].value = (uint16_t)(h->used + nl);
    h->n++;
    h->used += nl + vl;
    return 0;
}

void http_hdrs_del(struct http_hdrs *h, const char *name)
{
    unsigned o = 0;
    for (unsigned i = 0; i < h->n; i++)
        if (strcasecmp(h->buf + h->h[i].name, name) != 0)
            h->h[o++] = h->h[i];
    h->n = o;
    /* Compact the storage so set/del cycles (re-signing each attempt) never fill it. */
    char tmp[HTTP_HDRS_BYTES];
    size_t used = 0;
    for (unsigned i = 0; i < h->n; i++) {
        size_t nl = strlen(h->buf + h->h[i].name) + 1, vl = strlen(h->buf + h->h[i].value) + 1;
        memcpy(tmp + used, h->buf + h->h[i].name, nl);
        memcpy(tmp + used + nl, h->buf + h->h[i].value, vl);
        h->h[i].name = (uint16_t)used;
        h->h[i].value = (uint16_t)(used + nl);
        used += nl + vl;
    }
    memcpy(h->buf, tmp, used);
    h->used = used;
}

int http_hdrs_set(struct http_hdrs *h, const char *name, const char *value)
{
    char copy[HTTP_HDRS_BYTES];
    if (value >= h->buf && value < h->buf + sizeof h->buf) { /* it would move under del */
        snprintf(copy, sizeof copy, "%s", value);
        value = copy;
    }
    if (http_hdrs_get(h, name))
        http_hdrs_del(h, name);
    return http_hdrs_add(h, name, value);
}

const char *http_hdrs_get(const struct http_hdrs *h, const char *name)
{
    for (unsigned i = 0; i < h->n; i++)
        if (strcasecmp(h->buf + h->h[i].name, name) == 0)
            return h->buf + h->h[i].value;
    return NULL;
}
