/* prom.c -- the Prometheus text writer (see prom.h). */
#include "base/prom.h"

#include "base/err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 2, 3))) static void put(struct prom *p, const char *fmt, ...)
{
    if (p->err)
        return;
    for (size_t want = 256;;) {
        if ((p->err = snap_buf_reserve(p->b, p->b->len + want)) != 0)
            return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf((char *)p->b->data + p->b->len, p->b->cap - p->b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            p->err = snap_fail(SNAP_EIO, "metrics: cannot format a line");
            return;
        }
        if ((size_t)n < p->b->cap - p->b->len) {
            p->b->len += (size_t)n;
            return;
        }
        want = (size_t)n + 1;
    }
}

void prom_family(struct prom *p, const char *name, enum prom_type type, const char *help)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    put(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, types[type]);
}

/* `{labels}`, `{labels,extra}`, `{extra}` or nothing. */
static void put_labels(struct prom *p, const char *labels, const char *extra)
{
    bool l = labels && *labels, e = extra && *extra;
    if (l || e)
        put(p, "{%s%s%s}", l ? labels : "", l && e ? "," : "", e ? extra : "");
}

void prom_u64(struct prom *p, const char *name, const char *labels, uint64_t v)
{
    put(p, "%s", name);
    put_labels(p, labels, NULL);
    put(p, " %llu\n", (unsigned long long)v);
}

void prom_one(struct prom *p, const char *name, enum prom_type type, const char *help, uint64_t v)
{
    prom_family(p, name, type, help);
    prom_u64(p, name, NULL, v);
}

void prom_histo(struct prom *p, const char *name, const char *labels, const struct snap_histo_snap *h)
{
    uint64_t cum = 0;
    for (unsigned i = 0; i < SNAP_HISTO_BUCKETS; i++) {
        char le[24];
        cum += h->n[i];
        snprintf(le, sizeof le, "le=\"%s\"", snap_histo_le[i]);
        put(p, "%s_bucket", name);
        put_labels(p, labels, le);
        put(p, " %llu\n", (unsigned long long)cum);
    }
    put(p, "%s_sum", name);
    put_labels(p, labels, NULL);
    put(p, " %llu.%09llu\n", (unsigned long long)(h->sum_ns / 1000000000u),
        (unsigned long long)(h->sum_ns % 1000000000u));
    put(p, "%s_count", name);
    put_labels(p, labels, NULL);
    put(p, " %llu\n", (unsigned long long)cum);
}

int prom_label(char *out, size_t cap, const char *key, const char *value)
{
    size_t n = strnlen(out, cap), k;
    if (n == cap)
        return snap_fail(SNAP_ETOOBIG, "metrics: label set not terminated");
    int w = snprintf(out + n, cap - n, "%s%s=\"", n ? "," : "", key);
    if (w < 0 || (size_t)w >= cap - n)
        goto too_long;
    k = n + (size_t)w;
    for (const char *v = value; *v; v++) {
        bool esc = *v == '\\' || *v == '"' || *v == '\n';
        if (k + (esc ? 2 : 1) + 2 > cap) /* room for this, the closing quote and the NUL */
            goto too_long;
        if (esc)
            out[k++] = '\\';
        out[k++] = *v == '\n' ? 'n' : *v;
    }
    if (k + 2 > cap)
        goto too_long;
    out[k++] = '"';
    out[k] = '\0';
    return 0;
too_long:
    out[n] = '\0';
    return snap_fail(SNAP_ETOOBIG, "metrics: the label %s does not fit in %zu bytes", key, cap);
}

int prom_end(const struct prom *p)
{
    return p->err;
}
