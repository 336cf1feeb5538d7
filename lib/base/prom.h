/* prom.h -- the Prometheus text exposition format (version 0.0.4), written into a snap_buf; the
 * one writer behind every /metrics (`peer serve`, `serve-nbd --metrics`).
 *
 * A family is its # HELP and # TYPE lines, then its samples; a sample is `name{labels} value`.
 * Labels are a ready label set without the braces, built with prom_label (which escapes the
 * value as the format wants: \\, \" and \n).  A histogram sample writes the family's cumulative
 * `_bucket{...,le="..."}` lines, ending with le="+Inf" equal to `_count`, then `_sum` (seconds)
 * and `_count`.  The first error (a full buffer, no memory) sticks; prom_end returns it.
 *
 *   struct snap_buf b;
 *   snap_buf_init(&b, 4096, 1 << 20);
 *   struct prom p = {.b = &b};
 *   prom_family(&p, "x_requests_total", PROM_COUNTER, "Requests received.");
 *   prom_u64(&p, "x_requests_total", NULL, 12);
 *   char l[128] = "";
 *   prom_label(l, sizeof l, "export", name);
 *   prom_family(&p, "x_read_seconds", PROM_HISTOGRAM, "READ latency.");
 *   prom_histo(&p, "x_read_seconds", l, &snap);
 *   err = prom_end(&p);      // b.data[0 .. b.len) is the body
 */
#ifndef SNAP_PROM_H
#define SNAP_PROM_H

#include "base/buf.h"
#include "base/histo.h"

#include <stddef.h>
#include <stdint.h>

/* The Content-Type header line of a /metrics answer. */
#define PROM_CONTENT_TYPE "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"

enum prom_type { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM };

struct prom {
    struct snap_buf *b;
    int err;          /* the first error */
};

void prom_family(struct prom *p, const char *name, enum prom_type type, const char *help);
/* One sample; labels NULL or "" for none. */
void prom_u64(struct prom *p, const char *name, const char *labels, uint64_t v);
/* A family of one sample without labels. */
void prom_one(struct prom *p, const char *name, enum prom_type type, const char *help, uint64_t v);
/* One histogram (its buckets, _sum and _count) of family `name`. */
void prom_histo(struct prom *p, const char *name, const char *labels, const struct snap_histo_snap *h);
/* Append key="value" to the label set in out[cap] (NUL-terminated; a comma first unless it is
 * empty).  SNAP_ETOOBIG, out unchanged, when it does not fit. */
int prom_label(char *out, size_t cap, const char *key, const char *value);
int prom_end(const struct prom *p);

#endif
