/* http_parse.c -- the response head parser and the chunked body decoder (see http_parse.h).
 *
 * The head parser collects each line into its buffer (memchr for the LF, one memcpy per
 * piece) and judges a line only once it is complete, so splitting the input anywhere gives
 * the same result.  The chunked decoder is a byte-level state machine except for chunk data,
 * which it hands back as spans of the caller's buffer without copying.
 */
#include "net/http_parse.h"

#include "base/err.h"
#include "base/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum { HS_STATUS, HS_FIELDS, HS_DONE, HS_FAILED };

/* Printable copy of untrusted bytes for a message. */
static const char *shown(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < cap; i++)
        out[o++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (n > o)
        out[o++] = '.', out[o++] = '.', out[o++] = '.';
    out[o] = '\0';
    return out;
}

static int head_fail(struct http_head *h, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int head_fail(struct http_head *h, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->why, sizeof h->why, fmt, ap);
    va_end(ap);
    h->err = err;
    h->state = HS_FAILED;
    return snap_fail(err, "%s", h->why);
}

void http_head_init(struct http_head *h)
{
    memset(h, 0, sizeof *h);
    snap_buf_init(&h->buf, 1024, HTTP_HEAD_MAX);
}

void http_head_reset(struct http_head *h)
{
    struct snap_buf buf = h->buf;
    /* Only the scalar part: the field table is overwritten as it fills. */
    memset(h, 0, offsetof(struct http_head, fields));
    h->buf = buf;
    snap_buf_reset(&h->buf);
    h->why[0] = '\0';
}

void http_head_free(struct http_head *h)
{
    snap_buf_free(&h->buf);
    http_head_init(h);
}

/* The head's text from offset off. */
static char *head_text(const struct http_head *h, size_t off)
{
    return (char *)h->buf.data + off;
}

bool http_head_done(const struct http_head *h)
{
    return h->state == HS_DONE;
}

const char *http_head_name(const struct http_head *h, unsigned i)
{
    return i < h->nfields ? head_text(h, h->fields[i].name) : NULL;
}

const char *http_head_value(const struct http_head *h, unsigned i)
{
    return i < h->nfields ? head_text(h, h->fields[i].value) : NULL;
}

const char *http_head_get(const struct http_head *h, const char *name)
{
    for (unsigned i = 0; i < h->nfields; i++)
        if (strcasecmp(head_text(h, h->fields[i].name), name) == 0)
            return head_text(h, h->fields[i].value);
    return NULL;
}

const char *http_head_reason(const struct http_head *h)
{
    return h->state == HS_DONE ? head_text(h, h->reason) : "";
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* RFC 9110 tchar. */
static bool is_tchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int head_status(struct http_head *h, char *s, size_t n)
{
    char tmp[80];
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !is_digit(s[7]) || s[8] != ' ' || !is_digit(s[9]) ||
        !is_digit(s[10]) || !is_digit(s[11]) || (n > 12 && s[12] != ' '))
        return head_fail(h, SNAP_EPROTO, "malformed status line '%s'", shown(s, n, tmp, 64));
    h->minor = s[7] - '0';
    h->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (h->status < 100)
        return head_fail(h, SNAP_EPROTO, "status %03d out of range in '%s'", h->status, shown(s, n, tmp, 64));
    h->reason = (uint32_t)(s + (n > 12 ? 13 : 12) - head_text(h, 0));
    h->state = HS_FIELDS;
    return 0;
}

/* Comma-separated tokens of a Connection value. */
static void head_connection(struct http_head *h, const char *v)
{
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        size_t n = strcspn(v, ", \t");
        if (n == 5 && strncasecmp(v, "close", 5) == 0)
            h->close = true;
        else if (n == 10 && strncasecmp(v, "keep-alive", 10) == 0)
            h->keep_alive = true;
        v += n;
    }
}

static int head_special(struct http_head *h, const char *name, const char *v)
{
    char tmp[80];
    if (strcasecmp(name, "content-length") == 0) {
        if (h->has_length)
            return head_fail(h, SNAP_EPROTO, "repeated Content-Length");
        size_t n = strlen(v);
        if (n == 0 || n > 18 || strspn(v, "0123456789") != n)
            return head_fail(h, SNAP_EPROTO, "bad Content-Length '%s'", shown(v, n, tmp, 40));
        uint64_t x = 0;
        for (size_t i = 0; i < n; i++)
            x = x * 10 + (uint64_t)(v[i] - '0');
        h->has_length = true;
        h->content_length = x;
    } else if (strcasecmp(name, "transfer-encoding") == 0) {
        if (h->chunked)
            return head_fail(h, SNAP_EPROTO, "repeated Transfer-Encoding");
        if (strcasecmp(v, "chunked") != 0)
            return head_fail(h, SNAP_EPROTO, "unsupported Transfer-Encoding '%s' (only chunked)",
                             shown(v, strlen(v), tmp, 40));
        h->chunked = true;
    } else if (strcasecmp(name, "connection") == 0) {
        head_connection(h, v);
    }
    return 0;
}

static int head_end(struct http_head *h)
{
    if (h->chunked && h->has_length)
        return head_fail(h, SNAP_EPROTO, "both Content-Length and Transfer-Encoding: chunked");
    if (h->chunked && h->minor == 0)
        return head_fail(h, SNAP_EPROTO, "Transfer-Encoding in an HTTP/1.0 response");
    if (h->minor == 0 && !h->keep_alive)
        h->close = true;
    h->state = HS_DONE;
    return 0;
}

/* Judge the complete line at h->line (NUL-terminated where its LF was). */
static int head_line(struct http_head *h)
{
    char tmp[80];
    char *s = head_text(h, h->line);
    size_t n = h->buf.len - 1 - h->line;
    if (n && s[n - 1] == '\r')
        s[--n] = '\0';
    if (memchr(s, '\r', n))
        return head_fail(h, SNAP_EPROTO, "bare CR in response head line '%s'", shown(s, n, tmp, 64));
    if (memchr(s, '\0', n))
        return head_fail(h, SNAP_EPROTO, "NUL byte in response head line '%s'", shown(s, n, tmp, 64));
    if (h->state == HS_STATUS)
        return head_status(h, s, n);
    if (n == 0)
        return head_end(h);
    if (s[0] == ' ' || s[0] == '\t')
        return head_fail(h, SNAP_EPROTO, "obsolete line folding in response head ('%s')", shown(s, n, tmp, 64));
    size_t j = 0;
    while (j < n && is_tchar((unsigned char)s[j]))
        j++;
    size_t w = j;
    while (w < n && (s[w] == ' ' || s[w] == '\t'))
        w++;
    if (w > j && w < n && s[w] == ':')
        return head_fail(h, SNAP_EPROTO, "whitespace before ':' in header line '%s'", shown(s, n, tmp, 64));
    if (j == 0 || j == n || s[j] != ':')
        return head_fail(h, SNAP_EPROTO, "malformed header line '%s'", shown(s, n, tmp, 64));
    s[j] = '\0';
    size_t v = j + 1, e = n;
    while (v < e && (s[v] == ' ' || s[v] == '\t'))
        v++;
    while (e > v && (s[e - 1] == ' ' || s[e - 1] == '\t'))
        e--;
    s[e] = '\0';
    for (size_t k = v; k < e; k++) {
        unsigned char c = (unsigned char)s[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return head_fail(h, SNAP_EPROTO, "control character in header '%s'", shown(s, j, tmp, 40));
    }
    if (h->nfields == HTTP_FIELDS_MAX)
        return head_fail(h, SNAP_EPROTO, "more than %d header fields in the response head", HTTP_FIELDS_MAX);
    h->fields[h->nfields].name = (uint32_t)h->line;
    h->fields[h->nfields].value = (uint32_t)(h->line + v);
    h->nfields++;
    return head_special(h, s, s + v);
}

int http_head_feed(struct http_head *h, const void *buf, size_t len, size_t *consumed)
{
    const char *p = buf;
    size_t i = 0;
    *consumed = 0;
    if (h->state == HS_FAILED)
        return snap_fail(h->err, "%s", h->why);
    while (i < len && h->state != HS_DONE) {
        const char *lf = memchr(p + i, '\n', len - i);
        size_t n = lf ? (size_t)(lf - (p + i)) : len - i;
        if (h->state == HS_STATUS && h->buf.len < 5) {
            /* Judge the first bytes as they come (before any size check, so that the
             * verdict on a non-HTTP peer does not depend on how its bytes were split). */
            static const char pfx[] = "HTTP/";
            size_t k = 5 - h->buf.len < len - i ? 5 - h->buf.len : len - i;
            if (memcmp(p + i, pfx + h->buf.len, k) != 0) {
                char tmp[40];
                return head_fail(h, SNAP_EPROTO, "response does not start with 'HTTP/' ('%s')",
                                 shown(p + i, len - i < 16 ? len - i : 16, tmp, sizeof tmp));
            }
        }
        size_t need = h->buf.len + n + 1; /* +1: the NUL that replaces the LF */
        if (need > HTTP_HEAD_MAX)
            return head_fail(h, SNAP_EPROTO, "response head larger than %d KiB", HTTP_HEAD_MAX / 1024);
        int e = snap_buf_reserve(&h->buf, need);
        if (e)
            return snap_fail_ctx(e, "response head");
        snap_buf_append(&h->buf, p + i, n); /* the room is there: cannot fail */
        i += n;
        if (!lf)
            break;
        i++;
        h->buf.data[h->buf.len++] = '\0';
        e = head_line(h);
        if (e)
            return e;
        h->line = h->buf.len;
    }
    *consumed = i;
    return 0;
}

/* ---- chunked ---- */

enum { CH_SIZE, CH_SIZE_WS, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER,
       CH_TRAILER_LINE, CH_END_LF, CH_DONE, CH_FAILED };

static int chunk_fail(struct http_chunked *c, int err, const char *msg)
{
    snprintf(c->why, sizeof c->why, "chunked body: %s", msg);
    c->err = err;
    c->state = CH_FAILED;
    return snap_fail(err, "%s", c->why);
}

void http_chunked_init(struct http_chunked *c)
{
    memset(c, 0, sizeof *c);
}

bool http_chunked_done(const struct http_chunked *c)
{
    return c->state == CH_DONE;
}

uint64_t http_chunked_data_left(const struct http_chunked *c)
{
    return c->state == CH_DATA ? c->left : 0;
}

void http_chunked_skip(struct http_chunked *c, uint64_t n)
{
    if (c->state != CH_DATA || n > c->left)
        return;
    c->left -= n;
    if (c->left == 0)
        c->state = CH_DATA_CR;
}

static int hexdig(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The size line ended: data follows, or the trailers after the last chunk. */
static void chunk_size_done(struct http_chunked *c)
{
    c->state = c->left ? CH_DATA : CH_TRAILER;
    c->line = 0;
}

int http_chunked_feed(struct http_chunked *c, const void *buf, size_t len, size_t *consumed,
                      const uint8_t **data, size_t *data_len)
{
    const uint8_t *p = buf;
    size_t i = 0;
    *consumed = 0;
    *data = NULL;
    *data_len = 0;
    if (c->state == CH_FAILED)
        return snap_fail(c->err, "%s", c->why);
    for (; i < len && c->state != CH_DONE; i++) {
        int ch = p[i];
        switch (c->state) {
        case CH_SIZE: {
            int v = hexdig(ch);
            if (v >= 0) {
                if (++c->digits > HTTP_CHUNK_HEX_MAX)
                    return chunk_fail(c, SNAP_EPROTO, "chunk size of more than 16 hex digits");
                c->left = c->left << 4 | (uint64_t)v;
                break;
            }
            if (c->digits == 0)
                return chunk_fail(c, SNAP_EPROTO, "chunk size is not hex");
            if (ch == ';')
                c->state = CH_EXT;
            else if (ch == ' ' || ch == '\t')
                c->state = CH_SIZE_WS;
            else if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if (ch == '\n')
                chunk_size_done(c);
            else
                return chunk_fail(c, SNAP_EPROTO, "junk after the chunk size");
            break;
        }
        case CH_SIZE_WS:
            if (ch == ';')
                c->state = CH_EXT;
            else if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if (ch == '\n')
                chunk_size_done(c);
            else if (ch != ' ' && ch != '\t')
                return chunk_fail(c, SNAP_EPROTO, "junk after the chunk size");
            break;
        case CH_EXT:
            if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if (ch == '\n')
                chunk_size_done(c);
            else if (++c->line > HTTP_CHUNK_LINE_MAX)
                return chunk_fail(c, SNAP_EPROTO, "chunk extension longer than 4 KiB");
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return chunk_fail(c, SNAP_EPROTO, "CR without LF after the chunk size");
            chunk_size_done(c);
            break;
        case CH_DATA: {
            size_t n = len - i;
            if ((uint64_t)n > c->left)
                n = (size_t)c->left;
            *data = p + i;
            *data_len = n;
            c->left -= n;
            if (c->left == 0)
                c->state = CH_DATA_CR;
            *consumed = i + n;
            return 0;
        }
        case CH_DATA_CR:
            if (ch == '\r')
                c->state = CH_DATA_LF;
            else if (ch == '\n')
                c->state = CH_SIZE, c->digits = 0;
            else
                return chunk_fail(c, SNAP_EPROTO, "chunk data longer than its size");
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                return chunk_fail(c, SNAP_EPROTO, "CR without LF after chunk data");
            c->state = CH_SIZE;
            c->digits = 0;
            break;
        case CH_TRAILER:
            if (ch == '\r')
                c->state = CH_END_LF;
            else if (ch == '\n')
                c->state = CH_DONE;
            else
                c->state = CH_TRAILER_LINE;
            if (c->state == CH_TRAILER_LINE && ++c->trailer > HTTP_TRAILER_MAX)
                return chunk_fail(c, SNAP_EPROTO, "trailers larger than 16 KiB");
            break;
        case CH_TRAILER_LINE:
            if (++c->trailer > HTTP_TRAILER_MAX)
                return chunk_fail(c, SNAP_EPROTO, "trailers larger than 16 KiB");
            if (ch == '\n')
                c->state = CH_TRAILER;
            break;
        case CH_END_LF:
            if (ch != '\n')
                return chunk_fail(c, SNAP_EPROTO, "CR without LF at the end");
            c->state = CH_DONE;
            break;
        }
    }
    *consumed = i;
    return 0;
}
