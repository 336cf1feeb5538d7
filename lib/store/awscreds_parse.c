/* awscreds_parse.c -- the parsers of awscreds.c's outside bytes: the shared INI files, STS XML
 * answers, and the JSON of the metadata services and credential_process.  See awscreds.h. */
#include "store/awscreds.h"

#include "base/err.h"
#include "codec/jsonr.h"
#include "codec/xml.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static bool is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v'; }

/* Trim [*s, *e) of spaces on both sides. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_space(**s))
        (*s)++;
    while (*e > *s && is_space((*e)[-1]))
        (*e)--;
}

/* A section name equal to want, runs of spaces counting as one ("profile   x" is "profile x"). */
static bool section_is(const char *s, const char *e, const char *want)
{
    while (s < e && *want) {
        if (is_space(*s) && *want == ' ') {
            while (s < e && is_space(*s))
                s++;
            want++;
            continue;
        }
        if (*s++ != *want++)
            return false;
    }
    return s == e && !*want;
}

/* Walk the lines of text; for each "k = v" of the wanted section (any if section is NULL) call
 * back.  Returns 1 if the section was seen. */
struct ini_walk {
    const char *section, *key;
    char *out;
    size_t cap;
    int found;     /* 0, SNAP_ETOOBIG, 1 found */
    bool seen;
};

static void ini_line(struct ini_walk *w, const char *s, const char *e, bool *in)
{
    if (s == e || is_space(*s)) /* blank, or a continuation line of a nested value */
        return;
    trim(&s, &e);
    if (s == e || *s == '#' || *s == ';')
        return;
    if (*s == '[') {
        const char *close = memchr(s, ']', (size_t)(e - s));
        const char *n = s + 1, *ne = close ? close : s + 1;
        trim(&n, &ne);
        *in = close && section_is(n, ne, w->section);
        w->seen |= *in;
        return;
    }
    const char *eq = memchr(s, '=', (size_t)(e - s));
    if (!*in || !eq || w->found)
        return;
    const char *k = s, *ke = eq, *v = eq + 1, *ve = e;
    trim(&k, &ke);
    trim(&v, &ve);
    size_t kl = strlen(w->key);
    if ((size_t)(ke - k) != kl || strncasecmp(k, w->key, kl) != 0)
        return;
    size_t vl = (size_t)(ve - v);
    if (vl >= w->cap || memchr(v, '\0', vl)) {
        w->found = SNAP_ETOOBIG;
        return;
    }
    memcpy(w->out, v, vl);
    w->out[vl] = '\0';
    w->found = 1;
}

static void ini_walk(struct ini_walk *w, const char *text, size_t len)
{
    bool in = false;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        ini_line(w, p, le, &in);
        p = nl ? nl + 1 : end;
    }
}

int awscreds_ini_get(const char *text, size_t len, const char *section, const char *key, char *out, size_t cap)
{
    char dummy[1];
    struct ini_walk w = {.section = section, .key = key, .out = out ? out : dummy, .cap = out ? cap : 1};
    if (out && cap)
        out[0] = '\0';
    if (!text)
        return SNAP_ENOTFOUND;
    ini_walk(&w, text, len);
    if (w.found == SNAP_ETOOBIG)
        return snap_fail(SNAP_ETOOBIG, "[%s] %s: the value is longer than %zu bytes", section, key, cap - 1);
    return w.found ? 0 : SNAP_ENOTFOUND;
}

bool awscreds_ini_has(const char *text, size_t len, const char *section)
{
    char dummy[1];
    struct ini_walk w = {.section = section, .key = "\x01", .out = dummy, .cap = 1};
    if (text)
        ini_walk(&w, text, len);
    return w.seen;
}

int64_t awscreds_parse_time(const char *s)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || h < 0 || mi < 0 ||
        sec < 0)
        return -1;
    const char *p = s + n;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    long off = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5 || oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        off = (*p == '+' ? 1 : -1) * (oh * 3600L + om * 60L);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    return (int64_t)timegm(&tm) - off;
}

/* A field of visible ASCII into dst[cap]; `what` names it in the message. */
static int put_field(char *dst, size_t cap, const char *v, size_t n, const char *what, bool required)
{
    dst[0] = '\0';
    if (!v) {
        if (required)
            return snap_fail(SNAP_EFORMAT, "the credentials have no %s", what);
        return 0;
    }
    if (n >= cap)
        return snap_fail(SNAP_EFORMAT, "%s of %zu bytes is longer than %zu", what, n, cap - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e)
            return snap_fail(SNAP_EFORMAT, "%s holds a character that is not visible ASCII", what);
    if (required && n == 0)
        return snap_fail(SNAP_EFORMAT, "the credentials have an empty %s", what);
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

static int put_expiry(struct awscreds_val *v, const char *s)
{
    v->expires = 0;
    if (!s || !*s)
        return 0;
    int64_t t = awscreds_parse_time(s);
    if (t <= 0)
        return snap_fail(SNAP_EFORMAT, "Expiration is not an ISO 8601 UTC time");
    v->expires = t;
    return 0;
}

/* Copy printable ASCII of an outside string into a message buffer. */
static void quote(char *dst, size_t n, const char *s)
{
    size_t j = 0;
    for (; s && *s && j + 1 < n; s++)
        dst[j++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    dst[j] = '\0';
}

int awscreds_parse_sts(const void *body, size_t len, struct awscreds_val *v)
{
    struct xml_doc *doc;
    memset(v, 0, sizeof *v);
    if (xml_parse(body, len, &doc) != 0)
        return snap_fail_ctx(SNAP_EFORMAT, "the STS answer is not XML");
    const struct xml_node *root = xml_root(doc), *cr = NULL;
    int err = 0;
    const struct xml_node *e = xml_is(root, "Error") ? root : xml_get(root, "Error");
    if (e) {
        char code[128], msg[400];
        quote(code, sizeof code, xml_get_text(e, "Code"));
        quote(msg, sizeof msg, xml_get_text(e, "Message"));
        err = snap_fail(SNAP_EAUTH, "STS: %s%s%s", code[0] ? code : "(no code)", msg[0] ? ": " : "", msg);
        goto out;
    }
    if (!(cr = xml_get(root, "AssumeRoleWithWebIdentityResult/Credentials")))
        cr = xml_get(root, "AssumeRoleResult/Credentials");
    if (!cr) {
        err = snap_fail(SNAP_EFORMAT, "the STS answer <%s> has no Credentials", xml_name(root));
        goto out;
    }
    const char *ak = xml_get_text(cr, "AccessKeyId"), *sk = xml_get_text(cr, "SecretAccessKey"),
               *tok = xml_get_text(cr, "SessionToken");
    if ((err = put_field(v->ak, sizeof v->ak, ak, ak ? strlen(ak) : 0, "AccessKeyId", true)) ||
        (err = put_field(v->sk, sizeof v->sk, sk, sk ? strlen(sk) : 0, "SecretAccessKey", true)) ||
        (err = put_field(v->token, sizeof v->token, tok, tok ? strlen(tok) : 0, "SessionToken", false)) ||
        (err = put_expiry(v, xml_get_text(cr, "Expiration"))))
        goto out;
out:
    xml_free(doc);
    if (err)
        memset(v, 0, sizeof *v);
    return err;
}

static const char *jstr(const struct jsonr_value *root, const char *name, size_t *n)
{
    *n = 0;
    return jsonr_str(jsonr_member(root, name), n);
}

int awscreds_parse_json(const void *body, size_t len, struct awscreds_val *v)
{
    struct jsonr_doc *doc;
    memset(v, 0, sizeof *v);
    if (jsonr_parse(body, len, &doc) != 0)
        return snap_fail_ctx(SNAP_EFORMAT, "the credentials are not JSON");
    const struct jsonr_value *root = jsonr_root(doc);
    int err = 0;
    size_t n, akn, skn, tn;
    if (jsonr_type(root) != JSONR_OBJECT) {
        err = snap_fail(SNAP_EFORMAT, "the credentials are a JSON %s, not an object", jsonr_type_name(jsonr_type(root)));
        goto out;
    }
    const char *code = jstr(root, "Code", &n);
    if (code && strcmp(code, "Success") != 0) {
        char c[128], m[400];
        quote(c, sizeof c, code);
        quote(m, sizeof m, jstr(root, "Message", &n));
        err = snap_fail(SNAP_EAUTH, "the metadata service answered Code %s%s%s", c, m[0] ? ": " : "", m);
        goto out;
    }
    int64_t ver;
    if (jsonr_member(root, "Version") && (!jsonr_i64(jsonr_member(root, "Version"), &ver) || ver != 1)) {
        err = snap_fail(SNAP_EFORMAT, "the credentials' Version is not 1");
        goto out;
    }
    const char *ak = jstr(root, "AccessKeyId", &akn), *sk = jstr(root, "SecretAccessKey", &skn);
    const char *tok = jstr(root, "Token", &tn);
    if (!tok)
        tok = jstr(root, "SessionToken", &tn);
    const char *exp = jstr(root, "Expiration", &n);
    if (exp && strlen(exp) != n) {
        err = snap_fail(SNAP_EFORMAT, "Expiration holds a NUL");
        goto out;
    }
    if ((err = put_field(v->ak, sizeof v->ak, ak, akn, "AccessKeyId", true)) ||
        (err = put_field(v->sk, sizeof v->sk, sk, skn, "SecretAccessKey", true)) ||
        (err = put_field(v->token, sizeof v->token, tok, tn, "Token", false)) || (err = put_expiry(v, exp)))
        goto out;
out:
    jsonr_free(doc);
    if (err)
        memset(v, 0, sizeof *v);
    return err;
}
