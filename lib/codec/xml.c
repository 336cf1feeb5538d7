/* xml.c -- the capped, non-validating XML reader behind S3/GCS response parsing.
 *
 * Design: one forward pass with an explicit stack of open elements (no recursion, depth capped),
 * building the tree in a growable array of nodes linked by index.  Three buffers, all sized
 * from the input once: the node array (grows by doubling), the arena that receives every name
 * and final text, and the text stack, where each open element's character data collects while
 * its children come and go (a child's text sits above its parent's and is popped into the arena
 * when the child ends, so an element's text stays contiguous even around child elements).
 * Decoding never grows text (an entity or a CR LF is longer than what it stands for) and a tag
 * costs at least as many input bytes as its name and two NULs, so arena and stack each fit in
 * len + 1 bytes; the bound is still checked, as an internal error.  Links are indices while the
 * array moves and become pointers once parsing is done.
 */
#include "codec/xml.h"

#include "base/err.h"
#include "codec/itree.h"
#include "base/mem.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct xml_node {
    const char *name;
    const char *text;
    size_t text_len;
    struct itree_link link; /* first child, next sibling */
};

struct xml_doc {
    struct itree_doc t; /* elements, and the arena of names and texts */
};

/* Element i (the array moves while it grows: never keep the pointer across xml_new_node). */
static struct xml_node *xn(const struct xml_doc *d, size_t i)
{
    return itree_doc_node(&d->t, i);
}

struct xml_open {
    uint32_t node;
    uint32_t last_child; /* 0 = none yet */
    size_t qname_off;    /* the qualified name in the input, for the end tag */
    size_t qname_len;
    size_t text_start;   /* where this element's text begins on the text stack */
};

struct xml_parser {
    const char *in;
    size_t len, pos;
    struct xml_doc *doc;
    char *stack;
    size_t stack_len, stack_cap;
    struct xml_open open[XML_MAX_DEPTH];
    int depth;
};

static const char xml_empty[] = "";

__attribute__((format(printf, 2, 3))) static int xml_fail(const struct xml_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int err = itree_fail_at("XML", p->in, p->len, p->pos, fmt, ap);
    va_end(ap);
    return err;
}

static bool xml_at(const struct xml_parser *p, const char *lit)
{
    size_t n = strlen(lit);
    return p->len - p->pos >= n && memcmp(p->in + p->pos, lit, n) == 0;
}

static bool xml_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void xml_skip_space(struct xml_parser *p)
{
    while (p->pos < p->len && xml_space(p->in[p->pos]))
        p->pos++;
}

static bool xml_name_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || c >= 0x80;
}

static bool xml_name_char(unsigned char c)
{
    return xml_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* A name at p->pos; its length, 0 if there is none. */
static size_t xml_scan_name(struct xml_parser *p)
{
    size_t start = p->pos;
    if (p->pos >= p->len || !xml_name_start((unsigned char)p->in[p->pos]))
        return 0;
    while (p->pos < p->len && xml_name_char((unsigned char)p->in[p->pos]))
        p->pos++;
    return p->pos - start;
}

/* Skip from the opening literal past `close`; `what` names the construct for the message. */
static int xml_skip_until(struct xml_parser *p, size_t open_len, const char *close, const char *what)
{
    const char *end = memmem(p->in + p->pos + open_len, p->len - p->pos - open_len, close, strlen(close));
    if (!end)
        return xml_fail(p, "unterminated %s", what);
    p->pos = (size_t)(end - p->in) + strlen(close);
    return 0;
}

static int xml_misc(struct xml_parser *p, bool *matched)
{
    *matched = true;
    if (xml_at(p, "<!--"))
        return xml_skip_until(p, 4, "-->", "comment");
    if (xml_at(p, "<?"))
        return xml_skip_until(p, 2, "?>", "processing instruction");
    *matched = false;
    return 0;
}

static char *xml_arena_put(struct xml_parser *p, const char *s, size_t n)
{
    struct itree_doc *t = &p->doc->t;
    if (n + 1 > t->arena_cap - t->arena_len)
        return NULL;
    char *d = t->arena + t->arena_len;
    memcpy(d, s, n);
    d[n] = '\0';
    t->arena_len += n + 1;
    return d;
}

static int xml_push_text(struct xml_parser *p, const char *s, size_t n)
{
    if (n > p->stack_cap - p->stack_len)
        return snap_fail(SNAP_EINTERNAL, "XML: text stack overflow at byte %zu", p->pos);
    memcpy(p->stack + p->stack_len, s, n);
    p->stack_len += n;
    return 0;
}

static bool xml_char_ok(uint32_t c)
{
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD) ||
           (c >= 0x10000 && c <= 0x10FFFF);
}

static size_t xml_utf8(uint32_t c, char out[4])
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* An entity reference at p->pos ('&'): decode it onto the text stack. */
static int xml_entity(struct xml_parser *p)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    size_t start = p->pos + 1, end = start;
    while (end < p->len && end - start < 32 && p->in[end] != ';')
        end++;
    if (end >= p->len || p->in[end] != ';')
        return xml_fail(p, "'&' does not start an entity reference (write &amp;)");
    const char *e = p->in + start;
    size_t n = end - start;
    p->pos = end + 1;
    if (n >= 2 && e[0] == '#') {
        bool hex = e[1] == 'x';
        size_t i = hex ? 2 : 1;
        uint32_t c = 0;
        if (i == n)
            return xml_fail(p, "empty character reference");
        for (; i < n; i++) {
            unsigned char d = (unsigned char)e[i];
            unsigned v;
            if (d >= '0' && d <= '9')
                v = d - '0';
            else if (hex && (d | 0x20) >= 'a' && (d | 0x20) <= 'f')
                v = (d | 0x20) - 'a' + 10;
            else
                return xml_fail(p, "bad digit in character reference &%.*s;", (int)n, e);
            c = c * (hex ? 16 : 10) + v;
            if (c > 0x10FFFF)
                return xml_fail(p, "character reference &%.*s; is beyond U+10FFFF", (int)n, e);
        }
        if (!xml_char_ok(c))
            return xml_fail(p, "character reference &%.*s; is not an XML character", (int)n, e);
        char u[4];
        return xml_push_text(p, u, xml_utf8(c, u));
    }
    for (size_t k = 0; k < sizeof named / sizeof named[0]; k++)
        if (strlen(named[k].name) == n && memcmp(named[k].name, e, n) == 0)
            return xml_push_text(p, &named[k].c, 1);
    return xml_fail(p, "unknown entity &%.*s;", (int)n, e);
}

/* Character data in [p->pos, end) onto the text stack: line ends normalised, control characters
 * refused, entities decoded unless raw (CDATA). */
static int xml_chardata(struct xml_parser *p, size_t end, bool raw)
{
    while (p->pos < end) {
        size_t run = p->pos;
        while (run < end) {
            unsigned char c = (unsigned char)p->in[run];
            if ((c < 0x20 && c != '\t' && c != '\n') || (c == '&' && !raw))
                break;
            run++;
        }
        int err = xml_push_text(p, p->in + p->pos, run - p->pos);
        if (err)
            return err;
        p->pos = run;
        if (run == end)
            break;
        unsigned char c = (unsigned char)p->in[run];
        if (c == '&') {
            err = xml_entity(p);
        } else if (c == '\r') {
            p->pos++;
            if (p->pos < end && p->in[p->pos] == '\n')
                p->pos++;
            err = xml_push_text(p, "\n", 1);
        } else {
            return xml_fail(p, "control character 0x%02x in text", c);
        }
        if (err)
            return err;
    }
    return 0;
}

static int xml_new_node(struct xml_parser *p, const char *qname, size_t qlen, uint32_t *idx)
{
    struct xml_doc *d = p->doc;
    const char *local = memrchr(qname, ':', qlen);
    local = local ? local + 1 : qname;
    size_t llen = qlen - (size_t)(local - qname);
    if (llen == 0 || !xml_name_start((unsigned char)local[0]))
        return xml_fail(p, "bad element name '%.*s'", (int)(qlen > 64 ? 64 : qlen), qname);
    int err = itree_doc_add(&d->t, idx);
    if (err)
        return err;
    struct xml_node *n = xn(d, *idx);
    n->name = xml_arena_put(p, local, llen);
    if (!n->name)
        return snap_fail(SNAP_EINTERNAL, "XML: arena overflow at byte %zu", p->pos);
    n->text = xml_empty;
    if (p->depth > 0) {
        struct xml_open *parent = &p->open[p->depth - 1];
        itree_append(xn(d, 0), sizeof *n, offsetof(struct xml_node, link), parent->node, parent->last_child,
                     *idx);
        parent->last_child = *idx;
    }
    return 0;
}

/* A start tag at p->pos ('<' followed by a name start). */
static int xml_start_tag(struct xml_parser *p)
{
    p->pos++;
    size_t qoff = p->pos, qlen = xml_scan_name(p);
    if (qlen == 0)
        return xml_fail(p, "expected an element name after '<'");
    if (p->depth >= XML_MAX_DEPTH)
        return xml_fail(p, "elements nested deeper than %d", XML_MAX_DEPTH);
    for (;;) {
        size_t before = p->pos;
        xml_skip_space(p);
        if (p->pos >= p->len)
            return xml_fail(p, "unterminated start tag <%.*s>", (int)(qlen > 64 ? 64 : qlen), p->in + qoff);
        char c = p->in[p->pos];
        if (c == '>' || c == '/')
            break;
        if (p->pos == before || xml_scan_name(p) == 0)
            return xml_fail(p, "bad attribute in <%.*s>", (int)(qlen > 64 ? 64 : qlen), p->in + qoff);
        xml_skip_space(p);
        if (p->pos >= p->len || p->in[p->pos] != '=')
            return xml_fail(p, "attribute without '=' in <%.*s>", (int)(qlen > 64 ? 64 : qlen), p->in + qoff);
        p->pos++;
        xml_skip_space(p);
        char q = p->pos < p->len ? p->in[p->pos] : 0;
        if (q != '"' && q != '\'')
            return xml_fail(p, "attribute value not quoted in <%.*s>", (int)(qlen > 64 ? 64 : qlen), p->in + qoff);
        const char *end = memchr(p->in + p->pos + 1, q, p->len - p->pos - 1);
        if (!end)
            return xml_fail(p, "unterminated attribute value");
        if (memchr(p->in + p->pos + 1, '<', (size_t)(end - p->in) - p->pos - 1))
            return xml_fail(p, "'<' in an attribute value");
        p->pos = (size_t)(end - p->in) + 1;
    }
    uint32_t idx = 0;
    int err = xml_new_node(p, p->in + qoff, qlen, &idx);
    if (err)
        return err;
    if (p->in[p->pos] == '/') {
        if (p->pos + 1 >= p->len || p->in[p->pos + 1] != '>')
            return xml_fail(p, "expected '>' after '/' in <%.*s>", (int)(qlen > 64 ? 64 : qlen), p->in + qoff);
        p->pos += 2;
        return 0;
    }
    p->pos++;
    p->open[p->depth++] = (struct xml_open){
        .node = idx, .qname_off = qoff, .qname_len = qlen, .text_start = p->stack_len};
    return 0;
}

/* An end tag at p->pos ("</"): it must close the innermost open element. */
static int xml_end_tag(struct xml_parser *p)
{
    struct xml_open *o = &p->open[p->depth - 1];
    p->pos += 2;
    size_t qoff = p->pos, qlen = xml_scan_name(p);
    if (qlen != o->qname_len || memcmp(p->in + qoff, p->in + o->qname_off, qlen) != 0)
        return xml_fail(p, "end tag </%.*s> does not close <%.*s>", (int)(qlen > 64 ? 64 : qlen),
                        p->in + qoff, (int)(o->qname_len > 64 ? 64 : o->qname_len), p->in + o->qname_off);
    xml_skip_space(p);
    if (p->pos >= p->len || p->in[p->pos] != '>')
        return xml_fail(p, "expected '>' to end </%.*s>", (int)(qlen > 64 ? 64 : qlen), p->in + qoff);
    p->pos++;
    struct xml_node *n = xn(p->doc, o->node);
    size_t tlen = p->stack_len - o->text_start;
    if (tlen) {
        n->text = xml_arena_put(p, p->stack + o->text_start, tlen);
        if (!n->text)
            return snap_fail(SNAP_EINTERNAL, "XML: arena overflow at byte %zu", p->pos);
        n->text_len = tlen;
    }
    p->stack_len = o->text_start;
    p->depth--;
    return 0;
}

/* Everything between the root's start tag and its end tag. */
static int xml_content(struct xml_parser *p)
{
    while (p->depth > 0) {
        if (p->pos >= p->len) {
            const struct xml_open *o = &p->open[p->depth - 1];
            return xml_fail(p, "document ends inside <%.*s>", (int)(o->qname_len > 64 ? 64 : o->qname_len),
                            p->in + o->qname_off);
        }
        int err;
        bool misc;
        if (p->in[p->pos] != '<') {
            const char *lt = memchr(p->in + p->pos, '<', p->len - p->pos);
            err = xml_chardata(p, lt ? (size_t)(lt - p->in) : p->len, false);
        } else if (xml_at(p, "</")) {
            err = xml_end_tag(p);
        } else if (xml_at(p, "<![CDATA[")) {
            const char *end = memmem(p->in + p->pos + 9, p->len - p->pos - 9, "]]>", 3);
            if (!end)
                return xml_fail(p, "unterminated CDATA section");
            p->pos += 9;
            err = xml_chardata(p, (size_t)(end - p->in), true);
            p->pos += 3;
        } else if ((err = xml_misc(p, &misc)) != 0 || misc) {
            /* comment or processing instruction skipped (or failed) */
        } else if (xml_at(p, "<!")) {
            err = xml_fail(p, "unexpected '<!' in element content");
        } else {
            err = xml_start_tag(p);
        }
        if (err)
            return err;
    }
    return 0;
}

/* Whitespace, comments and processing instructions outside the root element. */
static int xml_outside(struct xml_parser *p)
{
    for (;;) {
        bool misc;
        xml_skip_space(p);
        int err = xml_misc(p, &misc);
        if (err || !misc)
            return err;
    }
}

static int xml_document(struct xml_parser *p)
{
    if (xml_at(p, "\xEF\xBB\xBF"))
        p->pos += 3;
    int err = xml_outside(p);
    if (err)
        return err;
    if (p->pos >= p->len)
        return xml_fail(p, "no root element (empty document)");
    if (xml_at(p, "<!DOCTYPE"))
        return xml_fail(p, "DOCTYPE declarations are not accepted");
    if (p->in[p->pos] != '<' || p->pos + 1 >= p->len || !xml_name_start((unsigned char)p->in[p->pos + 1]))
        return xml_fail(p, "expected the root element");
    if ((err = xml_start_tag(p)) != 0 || (err = xml_content(p)) != 0 || (err = xml_outside(p)) != 0)
        return err;
    if (p->pos < p->len)
        return xml_fail(p, "content after the root element");
    return 0;
}

int xml_parse(const void *buf, size_t len, struct xml_doc **out)
{
    *out = NULL;
    if (len > XML_MAX_INPUT)
        return snap_fail(SNAP_ETOOBIG, "XML document of %zu bytes is over the %u-byte limit", len,
                         XML_MAX_INPUT);
    struct xml_parser p = {.in = buf, .len = len, .stack_cap = len + 1};
    p.doc = snap_calloc(1, sizeof *p.doc);
    if (!p.doc)
        return snap_fail(SNAP_ENOMEM, "XML: out of memory");
    int err = itree_doc_init(&p.doc->t, "XML", "elements", sizeof(struct xml_node), offsetof(struct xml_node, link),
                             SIZE_MAX, len + 1);
    if (!err && !(p.stack = snap_malloc(p.stack_cap)))
        err = snap_fail(SNAP_ENOMEM, "XML: out of memory for %zu bytes", len);
    if (!err)
        err = xml_document(&p);
    snap_free(p.stack);
    if (err) {
        xml_free(p.doc);
        return err;
    }
    itree_doc_finish(&p.doc->t);
    *out = p.doc;
    return 0;
}

void xml_free(struct xml_doc *doc)
{
    if (!doc)
        return;
    itree_doc_free(&doc->t);
    snap_free(doc);
}

const struct xml_node *xml_root(const struct xml_doc *doc)
{
    return xn(doc, 0);
}

const char *xml_name(const struct xml_node *n)
{
    return n->name;
}

bool xml_is(const struct xml_node *n, const char *name)
{
    return n && strcmp(n->name, name) == 0;
}

const char *xml_text(const struct xml_node *n, size_t *len)
{
    if (len)
        *len = n->text_len;
    return n->text;
}

static const struct xml_node *xml_match(const struct xml_node *n, const char *name, size_t nlen)
{
    for (; n; n = n->link.next)
        if (!name || (strncmp(n->name, name, nlen) == 0 && n->name[nlen] == '\0'))
            return n;
    return NULL;
}

const struct xml_node *xml_first(const struct xml_node *parent, const char *name)
{
    return parent ? xml_match(parent->link.child, name, name ? strlen(name) : 0) : NULL;
}

const struct xml_node *xml_next(const struct xml_node *n, const char *name)
{
    return n ? xml_match(n->link.next, name, name ? strlen(name) : 0) : NULL;
}

const struct xml_node *xml_get(const struct xml_node *from, const char *path)
{
    const struct xml_node *n = from;
    const char *s = path;
    while (n && *s) {
        const char *slash = strchr(s, '/');
        size_t seg = slash ? (size_t)(slash - s) : strlen(s);
        if (seg == 0)
            return NULL;
        n = xml_match(n->link.child, s, seg);
        s += seg + (slash != NULL);
        if (slash && !*s)
            return NULL;
    }
    return n;
}

const char *xml_get_text(const struct xml_node *from, const char *path)
{
    const struct xml_node *n = xml_get(from, path);
    return n ? n->text : NULL;
}

int xml_copy_text(const struct xml_node *from, const char *path, char *out, size_t size)
{
    if (size)
        out[0] = '\0';
    const struct xml_node *n = xml_get(from, path);
    if (!n)
        return snap_fail(SNAP_ENOTFOUND, "XML <%s>: no element %s", from ? from->name : "?", path);
    if (n->text_len >= size)
        return snap_fail(SNAP_ETOOBIG, "XML <%s>/%s: text of %zu bytes does not fit in %zu", from->name, path,
                         n->text_len, size);
    memcpy(out, n->text, n->text_len + 1);
    return 0;
}
