/* jsonr.c -- the capped, strict JSON reader behind key files, token responses and metadata.
 *
 * Design: recursive descent, depth capped at JSONR_MAX_DEPTH frames, building values in a
 * growable array linked by index (the array moves while it grows, so the parser never holds a
 * pointer into it across a call) that become pointers once parsing is done.  Every decoded
 * string and key goes to one arena allocated up front: a string costs its two quotes in the
 * input and decoding never lengthens it (an escape is longer than what it stands for), so
 * len + 1 bytes always suffice; the bound is still checked, as an internal error.  The number
 * of values is capped too, so 1 MiB of "[0,0,0,..." cannot become 50 MiB of tree.
 */
#include "codec/jsonr.h"

#include "base/err.h"
#include "codec/itree.h"
#include "base/mem.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSONR_MAX_VALUES 100000
#define JSONR_MAX_NUMBER 128 /* characters in one number literal */

struct jsonr_value {
    enum jsonr_type type;
    bool b, is_int;
    int64_t i;
    double d;
    const char *s; /* string value */
    size_t slen;
    const char *key; /* member key, NULL outside objects */
    size_t klen;
    size_t count; /* elements or members */
    struct itree_link link; /* first element or member, next sibling */
};

struct jsonr_doc {
    struct itree_doc t; /* values, and the arena of strings and keys */
};

struct jsonr_parser {
    const char *in;
    size_t len, pos;
    struct jsonr_doc *doc;
};

/* Value i (the array moves while it grows: never keep the pointer across jr_new). */
static struct jsonr_value *jv(const struct jsonr_doc *d, size_t i)
{
    return itree_doc_node(&d->t, i);
}

__attribute__((format(printf, 2, 3))) static int jr_fail(const struct jsonr_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int err = itree_fail_at("JSON", p->in, p->len, p->pos, fmt, ap);
    va_end(ap);
    return err;
}

static void jr_skip_space(struct jsonr_parser *p)
{
    while (p->pos < p->len) {
        char c = p->in[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* The character at pos for a message: "'x'", "byte 0x01" or "end of input". */
static const char *jr_what(const struct jsonr_parser *p, char buf[16])
{
    if (p->pos >= p->len)
        return "end of input";
    unsigned char c = (unsigned char)p->in[p->pos];
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02x", c);
    return buf;
}

static int jr_new(struct jsonr_parser *p, enum jsonr_type t, uint32_t *idx)
{
    int err = itree_doc_add(&p->doc->t, idx);
    if (!err)
        jv(p->doc, *idx)->type = t;
    return err;
}

static int jr_hex4(struct jsonr_parser *p, uint32_t *out)
{
    if (p->len - p->pos < 4)
        return jr_fail(p, "\\u needs four hex digits");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = (unsigned char)p->in[p->pos + (size_t)i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return jr_fail(p, "\\u needs four hex digits");
        v = v << 4 | d;
    }
    p->pos += 4;
    *out = v;
    return 0;
}

/* The length of a valid UTF-8 sequence at s[0..n), or 0. */
static size_t jr_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F; /* no encoded surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

static size_t jr_put_utf8(uint32_t c, char *o)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18));
    o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* A string at p->pos ('"'), decoded into the arena. */
static int jr_string(struct jsonr_parser *p, const char **out, size_t *outlen)
{
    size_t start = p->pos++;
    struct itree_doc *t = &p->doc->t;
    char *o = t->arena + t->arena_len, *begin = o;
    /* Decoding never grows: the output fits in what the input used, quotes included. */
    if (t->arena_cap - t->arena_len < p->len - start)
        return snap_fail(SNAP_EINTERNAL, "JSON: string arena overflow at byte %zu", start);
    for (;;) {
        if (p->pos >= p->len)
            return jr_fail(p, "unterminated string (opened at byte %zu)", start);
        unsigned char c = (unsigned char)p->in[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20)
            return jr_fail(p, "control character 0x%02x in a string (escape it)", c);
        if (c >= 0x80) {
            size_t n = jr_utf8_len((const unsigned char *)p->in + p->pos, p->len - p->pos);
            if (!n)
                return jr_fail(p, "invalid UTF-8 in a string");
            memcpy(o, p->in + p->pos, n);
            o += n;
            p->pos += n;
            continue;
        }
        p->pos++;
        if (c != '\\') {
            *o++ = (char)c;
            continue;
        }
        if (p->pos >= p->len)
            return jr_fail(p, "unterminated string (opened at byte %zu)", start);
        char e = p->in[p->pos++];
        uint32_t u;
        int err;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u':
            if ((err = jr_hex4(p, &u)) != 0)
                return err;
            if (u >= 0xDC00 && u <= 0xDFFF)
                return jr_fail(p, "lone low surrogate \\u%04X", (unsigned)u);
            if (u >= 0xD800 && u <= 0xDBFF) {
                uint32_t lo;
                if (p->len - p->pos < 2 || p->in[p->pos] != '\\' || p->in[p->pos + 1] != 'u')
                    return jr_fail(p, "lone high surrogate \\u%04X", (unsigned)u);
                p->pos += 2;
                if ((err = jr_hex4(p, &lo)) != 0)
                    return err;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return jr_fail(p, "high surrogate \\u%04X not followed by a low one", (unsigned)u);
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            }
            o += jr_put_utf8(u, o);
            break;
        default:
            p->pos--;
            return jr_fail(p, "bad escape \\%c", e >= 0x20 && e < 0x7f ? e : '?');
        }
    }
    *o = '\0';
    *out = begin;
    *outlen = (size_t)(o - begin);
    t->arena_len += *outlen + 1;
    return 0;
}

static int jr_number(struct jsonr_parser *p, struct jsonr_value *v)
{
    size_t start = p->pos;
    bool integer = true;
    const char *s = p->in;
    size_t n = p->len;
#define JR_DIGITS(i) ((i) < n && s[i] >= '0' && s[i] <= '9')
    size_t i = p->pos;
    if (i < n && s[i] == '-')
        i++;
    if (!JR_DIGITS(i))
        return jr_fail(p, "a number needs a digit after '-'");
    if (s[i] == '0' && JR_DIGITS(i + 1)) {
        p->pos = i;
        return jr_fail(p, "a number may not start with 0");
    }
    while (JR_DIGITS(i))
        i++;
    if (i < n && s[i] == '.') {
        integer = false;
        i++;
        if (!JR_DIGITS(i)) {
            p->pos = i;
            return jr_fail(p, "a number needs digits after '.'");
        }
        while (JR_DIGITS(i))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        integer = false;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (!JR_DIGITS(i)) {
            p->pos = i;
            return jr_fail(p, "a number needs digits in its exponent");
        }
        while (JR_DIGITS(i))
            i++;
    }
#undef JR_DIGITS
    if (i - start >= JSONR_MAX_NUMBER)
        return jr_fail(p, "number longer than %d characters", JSONR_MAX_NUMBER - 1);
    char buf[JSONR_MAX_NUMBER];
    memcpy(buf, s + start, i - start);
    buf[i - start] = '\0';
    v->d = strtod(buf, NULL);
    if (isinf(v->d))
        return jr_fail(p, "number %s is out of range", buf);
    if (integer) {
        errno = 0;
        long long ll = strtoll(buf, NULL, 10);
        if (errno == 0) {
            v->i = ll;
            v->is_int = true;
        }
    }
    p->pos = i;
    return 0;
}

static int jr_value(struct jsonr_parser *p, int depth, uint32_t *idx);

/* An array or object at p->pos; members of objects get their keys. */
static int jr_container(struct jsonr_parser *p, int depth, uint32_t self)
{
    bool obj = jv(p->doc, self)->type == JSONR_OBJECT;
    char close = obj ? '}' : ']';
    uint32_t last = 0;
    size_t count = 0;
    if (depth > JSONR_MAX_DEPTH)
        return jr_fail(p, "nested deeper than %d", JSONR_MAX_DEPTH);
    p->pos++;
    jr_skip_space(p);
    if (p->pos < p->len && p->in[p->pos] == close) {
        p->pos++;
        return 0;
    }
    for (;;) {
        const char *key = NULL;
        size_t klen = 0;
        char w[16];
        int err;
        if (obj) {
            jr_skip_space(p);
            if (p->pos >= p->len || p->in[p->pos] != '"')
                return jr_fail(p, "expected a string key, found %s", jr_what(p, w));
            if ((err = jr_string(p, &key, &klen)) != 0)
                return err;
            jr_skip_space(p);
            if (p->pos >= p->len || p->in[p->pos] != ':')
                return jr_fail(p, "expected ':' after key \"%.40s\", found %s", key, jr_what(p, w));
            p->pos++;
        }
        uint32_t child;
        if ((err = jr_value(p, depth + 1, &child)) != 0)
            return err;
        struct jsonr_value *v = jv(p->doc, 0);
        v[child].key = key;
        v[child].klen = klen;
        itree_append(v, sizeof *v, offsetof(struct jsonr_value, link), self, last, child);
        last = child;
        v[self].count = ++count;
        jr_skip_space(p);
        if (p->pos < p->len && p->in[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->in[p->pos] == close) {
            p->pos++;
            return 0;
        }
        return jr_fail(p, "expected ',' or '%c' in %s, found %s", close, obj ? "an object" : "an array",
                       jr_what(p, w));
    }
}

static int jr_literal(struct jsonr_parser *p, const char *lit)
{
    size_t n = strlen(lit);
    if (p->len - p->pos < n || memcmp(p->in + p->pos, lit, n) != 0)
        return jr_fail(p, "unexpected word (expected %s)", lit);
    p->pos += n;
    return 0;
}

static int jr_value(struct jsonr_parser *p, int depth, uint32_t *idx)
{
    char w[16];
    jr_skip_space(p);
    if (p->pos >= p->len)
        return jr_fail(p, "expected a value, found end of input");
    char c = p->in[p->pos];
    enum jsonr_type t;
    switch (c) {
    case '{': t = JSONR_OBJECT; break;
    case '[': t = JSONR_ARRAY; break;
    case '"': t = JSONR_STRING; break;
    case 't': case 'f': t = JSONR_BOOL; break;
    case 'n': t = JSONR_NULL; break;
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            t = JSONR_NUMBER;
            break;
        }
        return jr_fail(p, "expected a value, found %s", jr_what(p, w));
    }
    int err = jr_new(p, t, idx);
    if (err)
        return err;
    struct jsonr_value *v = jv(p->doc, *idx);
    switch (t) {
    case JSONR_OBJECT:
    case JSONR_ARRAY: return jr_container(p, depth, *idx);
    case JSONR_STRING: return jr_string(p, &v->s, &v->slen);
    case JSONR_NUMBER: return jr_number(p, v);
    case JSONR_NULL: return jr_literal(p, "null");
    case JSONR_BOOL:
        v->b = c == 't';
        return jr_literal(p, v->b ? "true" : "false");
    }
    return snap_fail(SNAP_EINTERNAL, "JSON: bad value type");
}

int jsonr_parse(const void *buf, size_t len, struct jsonr_doc **out)
{
    *out = NULL;
    if (len > JSONR_MAX_INPUT)
        return snap_fail(SNAP_ETOOBIG, "JSON document of %zu bytes is over the %u-byte limit", len,
                         JSONR_MAX_INPUT);
    struct jsonr_parser p = {.in = buf, .len = len};
    p.doc = snap_calloc(1, sizeof *p.doc);
    if (!p.doc)
        return snap_fail(SNAP_ENOMEM, "JSON: out of memory");
    uint32_t root;
    int err = itree_doc_init(&p.doc->t, "JSON", "values", sizeof(struct jsonr_value),
                             offsetof(struct jsonr_value, link), JSONR_MAX_VALUES, len + 1);
    if (!err)
        err = jr_value(&p, 1, &root);
    if (!err) {
        jr_skip_space(&p);
        if (p.pos < p.len)
            err = jr_fail(&p, "unexpected data after the JSON value");
    }
    if (err) {
        jsonr_free(p.doc);
        return err;
    }
    itree_doc_finish(&p.doc->t);
    *out = p.doc;
    return 0;
}

void jsonr_free(struct jsonr_doc *doc)
{
    if (!doc)
        return;
    itree_doc_free(&doc->t);
    snap_free(doc);
}

const struct jsonr_value *jsonr_root(const struct jsonr_doc *doc)
{
    return jv(doc, 0);
}

enum jsonr_type jsonr_type(const struct jsonr_value *v)
{
    return v->type;
}

const char *jsonr_type_name(enum jsonr_type t)
{
    static const char *const names[] = {"null", "boolean", "number", "string", "array", "object"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

bool jsonr_bool(const struct jsonr_value *v, bool *out)
{
    if (!v || v->type != JSONR_BOOL)
        return false;
    *out = v->b;
    return true;
}

bool jsonr_double(const struct jsonr_value *v, double *out)
{
    if (!v || v->type != JSONR_NUMBER)
        return false;
    *out = v->d;
    return true;
}

bool jsonr_i64(const struct jsonr_value *v, int64_t *out)
{
    if (!v || v->type != JSONR_NUMBER || !v->is_int)
        return false;
    *out = v->i;
    return true;
}

const char *jsonr_str(const struct jsonr_value *v, size_t *len)
{
    if (!v || v->type != JSONR_STRING)
        return NULL;
    if (len)
        *len = v->slen;
    return v->s;
}

size_t jsonr_count(const struct jsonr_value *v)
{
    return v ? v->count : 0;
}

const struct jsonr_value *jsonr_first(const struct jsonr_value *container)
{
    return container ? container->link.child : NULL;
}

const struct jsonr_value *jsonr_next(const struct jsonr_value *v)
{
    return v ? v->link.next : NULL;
}

const char *jsonr_key(const struct jsonr_value *member, size_t *len)
{
    if (len)
        *len = member ? member->klen : 0;
    return member ? member->key : NULL;
}

const struct jsonr_value *jsonr_at(const struct jsonr_value *container, size_t i)
{
    const struct jsonr_value *v = jsonr_first(container);
    while (v && i--)
        v = v->link.next;
    return v;
}

static const struct jsonr_value *jr_member(const struct jsonr_value *obj, const char *key, size_t klen)
{
    if (!obj || obj->type != JSONR_OBJECT)
        return NULL;
    for (const struct jsonr_value *m = obj->link.child; m; m = m->link.next)
        if (m->klen == klen && memcmp(m->key, key, klen) == 0)
            return m;
    return NULL;
}

const struct jsonr_value *jsonr_member(const struct jsonr_value *obj, const char *key)
{
    return jr_member(obj, key, strlen(key));
}

const struct jsonr_value *jsonr_path(const struct jsonr_value *v, const char *path)
{
    const char *s = path;
    while (v && *s) {
        const char *slash = strchr(s, '/');
        size_t seg = slash ? (size_t)(slash - s) : strlen(s);
        if (seg == 0)
            return NULL;
        v = jr_member(v, s, seg);
        s += seg + (slash != NULL);
        if (slash && !*s)
            return NULL;
    }
    return v;
}

/* The value at path with the wanted type, or an error naming the field. */
static int jr_get(const struct jsonr_value *v, const char *path, enum jsonr_type want, const char *wanted,
                  const struct jsonr_value **out)
{
    static const char *const an[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    const struct jsonr_value *f = jsonr_path(v, path);
    if (!f)
        return snap_fail(SNAP_ENOTFOUND, "JSON: no field \"%s\"", path);
    if (f->type != want)
        return snap_fail(SNAP_EFORMAT, "JSON field \"%s\" is %s, expected %s", path, an[f->type], wanted);
    *out = f;
    return 0;
}

int jsonr_get_str(const struct jsonr_value *v, const char *path, const char **out, size_t *len)
{
    const struct jsonr_value *f = NULL;
    int err = jr_get(v, path, JSONR_STRING, "a string", &f);
    if (err)
        return err;
    *out = f->s;
    if (len)
        *len = f->slen;
    return 0;
}

int jsonr_get_i64(const struct jsonr_value *v, const char *path, int64_t *out)
{
    const struct jsonr_value *f = NULL;
    int err = jr_get(v, path, JSONR_NUMBER, "an integer", &f);
    if (err)
        return err;
    if (!f->is_int)
        return snap_fail(SNAP_EFORMAT, "JSON field \"%s\" is %g, expected an integer within 64 bits", path, f->d);
    *out = f->i;
    return 0;
}

int jsonr_get_double(const struct jsonr_value *v, const char *path, double *out)
{
    const struct jsonr_value *f = NULL;
    int err = jr_get(v, path, JSONR_NUMBER, "a number", &f);
    if (err)
        return err;
    *out = f->d;
    return 0;
}

int jsonr_get_bool(const struct jsonr_value *v, const char *path, bool *out)
{
    const struct jsonr_value *f = NULL;
    int err = jr_get(v, path, JSONR_BOOL, "true or false", &f);
    if (err)
        return err;
    *out = f->b;
    return 0;
}
