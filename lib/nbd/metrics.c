/* metrics.c -- the /metrics of serve-nbd (see metrics.h).  A scrape sums the counters it reads
 * (relaxed atomics, no lock) and allocates its text; nothing here runs per NBD request. */
#include "nbd/metrics.h"

#include "nbd/exports.h"

#include "base/err.h"
#include "base/mem.h"
#include "base/prom.h"
#include "net/httpd.h"

#include <stdio.h>
#include <string.h>

enum {
    C_READ_BYTES, C_WRITTEN_BYTES, C_ERRORS, C_CACHE_HITS, C_FETCH_WAITS, C_STORE_READS, C_STORE_BYTES,
    C_CHUNK_CACHE_HITS, C_FETCH_ERRORS, C_COUNT,
};

static const struct {
    const char *name, *help;
} counters[C_COUNT] = {
    {"read_bytes_total", "Payload bytes of NBD READ replies."},
    {"written_bytes_total", "Payload bytes of NBD WRITE requests."},
    {"errors_total", "NBD requests answered with an error."},
    {"cache_hits_total", "Device reads of fetched data answered from the local cache without waiting."},
    {"fetch_waits_total", "Device reads that waited for a fetch from the store (cold reads)."},
    {"store_reads_total", "Reads sent to the store."},
    {"store_bytes_total", "Bytes read from the store."},
    {"chunk_cache_hits_total", "Pieces served from the host's chunk cache directory."},
    {"fetch_errors_total", "Fetches from the store that failed."},
};

/* What one scope (an export, or all of them) counts. */
struct sample {
    uint64_t c[C_COUNT];
    uint64_t cmd[NBD_STATS_CMDS];
    struct snap_histo_snap cold, warm;
    char labels[2 * 4096 + 64];  /* export="..." (an NBD name is at most 4096 bytes), or "" */
};

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* Add what export x counts into s. */
static void collect(const struct nbd_metrics_export *x, struct sample *s)
{
    struct nbd_stats *st = x->stats;
    s->c[C_READ_BYTES] += LOAD(st->bytes_read);
    s->c[C_WRITTEN_BYTES] += LOAD(st->bytes_written);
    s->c[C_ERRORS] += LOAD(st->errors);
    for (unsigned i = 0; i < NBD_STATS_CMDS; i++)
        s->cmd[i] += LOAD(st->answered[i]);
    snap_histo_read(&st->read_cold, &s->cold);
    snap_histo_read(&st->read_warm, &s->warm);
    if (!x->dev)
        return;
    struct device_stats d;
    device_stats(x->dev, &d);
    s->c[C_CACHE_HITS] += d.cache_hits;
    s->c[C_FETCH_WAITS] += d.fetch_waits;
    s->c[C_STORE_READS] += d.store_reads;
    s->c[C_STORE_BYTES] += d.store_bytes;
    s->c[C_CHUNK_CACHE_HITS] += d.chunk_cache_hits;
    s->c[C_FETCH_ERRORS] += d.fetch_errors;
}

static void sample_add(struct sample *to, const struct sample *from)
{
    for (unsigned c = 0; c < C_COUNT; c++)
        to->c[c] += from->c[c];
    for (unsigned k = 0; k < NBD_STATS_CMDS; k++)
        to->cmd[k] += from->cmd[k];
    snap_histo_merge(&to->cold, &from->cold);
    snap_histo_merge(&to->warm, &from->warm);
}

/* The label set of s with one more label. */
static void with_label(struct prom *p, const struct sample *s, const char *key, const char *value, char *out,
                       size_t cap)
{
    snprintf(out, cap, "%s", s->labels);
    int err = prom_label(out, cap, key, value);
    if (err && !p->err)
        p->err = err;
}

/* Every family of one scope: prefix "snapctl_nbd_" (s[0], the total) or "snapctl_nbd_export_". */
static void write_scope(struct prom *p, const char *prefix, const struct sample *s, size_t n)
{
    char name[96], l[sizeof s->labels + 64];
    snprintf(name, sizeof name, "%srequests_total", prefix);
    prom_family(p, name, PROM_COUNTER, "NBD requests answered, by command (errors too).");
    for (size_t i = 0; i < n; i++)
        for (unsigned k = 0; k < NBD_STATS_CMDS; k++) {
            with_label(p, &s[i], "command", nbd_cmd_name(k), l, sizeof l);
            prom_u64(p, name, l, s[i].cmd[k]);
        }
    for (unsigned c = 0; c < C_COUNT; c++) {
        snprintf(name, sizeof name, "%s%s", prefix, counters[c].name);
        prom_family(p, name, PROM_COUNTER, counters[c].help);
        for (size_t i = 0; i < n; i++)
            prom_u64(p, name, s[i].labels, s[i].c[c]);
    }
    snprintf(name, sizeof name, "%sread_seconds", prefix);
    prom_family(p, name, PROM_HISTOGRAM,
                "NBD READ latency, from its execution's start to its reply sent; cold: it waited for a fetch.");
    for (size_t i = 0; i < n; i++) {
        with_label(p, &s[i], "fetch", "cold", l, sizeof l);
        prom_histo(p, name, l, &s[i].cold);
        with_label(p, &s[i], "fetch", "warm", l, sizeof l);
        prom_histo(p, name, l, &s[i].warm);
    }
}

void nbd_metrics_write(struct prom *p, const struct nbd_metrics_export *x, size_t n)
{
    struct sample *s = snap_calloc(n + 1, sizeof *s); /* s[0]: the total */
    if (!s) {
        p->err = p->err ? p->err : snap_fail(SNAP_ENOMEM, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        collect(&x[i], &s[i + 1]);
        int err = prom_label(s[i + 1].labels, sizeof s[i + 1].labels, "export", x[i].name ? x[i].name : "");
        if (err && !p->err)
            p->err = err;
        sample_add(&s[0], &s[i + 1]);
    }
    prom_one(p, "snapctl_nbd_exports", PROM_GAUGE, "Exports served.", n);
    write_scope(p, "snapctl_nbd_", s, 1);
    write_scope(p, "snapctl_nbd_export_", s + 1, n);
    snap_free(s);
}

/* ---- the HTTP side ---- */

struct nbd_metrics {
    struct nbd_exports *reg;
    struct httpd_bg *bg;
};

/* The exports live now, each held while it is read (a remove waits for the scrape). */
static void write_live(struct prom *p, struct nbd_exports *reg)
{
    struct nbd_entry **v;
    size_t n;
    int err = nbd_exports_snapshot(reg, &v, &n);
    struct nbd_metrics_export *x = err ? NULL : snap_calloc(n ? n : 1, sizeof *x);
    if (!x) {
        p->err = p->err ? p->err : snap_fail(SNAP_ENOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < n; i++)
            x[i] = (struct nbd_metrics_export){.name = v[i]->exp.name, .stats = &v[i]->stats, .dev = v[i]->dev};
        nbd_metrics_write(p, x, n);
    }
    snap_free(x);
    if (!err)
        nbd_exports_release(reg, v, n);
}

static void handle(void *ctx, struct httpd_conn *c, const struct httpd_req *req)
{
    struct nbd_metrics *m = ctx;
    bool head = !strcmp(req->method, "HEAD");
    if (strcmp(req->target, "/metrics") != 0) {
        httpd_send(c, 404, "Content-Type: text/plain\r\n", "only /metrics here\n", 19, head);
        return;
    }
    struct snap_buf b;
    snap_buf_init(&b, 16384, 16u << 20);
    struct prom p = {.b = &b};
    write_live(&p, m->reg);
    httpd_send_metrics(c, &p, head);
    snap_buf_free(&b);
}

int nbd_metrics_start(int lfd, const struct httpd_opts *o, struct nbd_exports *reg, struct nbd_metrics **out)
{
    struct nbd_metrics *m = snap_calloc(1, sizeof *m);
    if (!m)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    *m = (struct nbd_metrics){.reg = reg};
    int err = httpd_bg_start(lfd, o, handle, m, &m->bg);
    if (err) {
        snap_free(m);
        return snap_fail_ctx(err, "--metrics");
    }
    *out = m;
    return 0;
}

int nbd_metrics_stop(struct nbd_metrics *m)
{
    if (!m)
        return 0;
    int err = httpd_bg_stop(m->bg);
    snap_free(m);
    return err;
}
