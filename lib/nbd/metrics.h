/* metrics.h -- serve-nbd's GET /metrics: the Prometheus text (lib/base/prom.h) of its exports,
 * each under the label export="NAME" (the default export is export=""), and in total, served by
 * lib/net/httpd on a thread of its own.
 *
 * Families (counters unless said; `snapctl_nbd_export_X{export="..."}` per export and
 * `snapctl_nbd_X` in total, with the same meaning):
 *   requests_total{command="read"|"write"|...}   requests answered, by command (errors too)
 *   read_bytes_total, written_bytes_total        payload bytes of READ replies and WRITEs
 *   errors_total                                 requests answered with an error
 *   cache_hits_total                             device reads of fetched data answered from the
 *                                                local cache without waiting
 *   fetch_waits_total                            device reads that waited for a fetch
 *   store_reads_total, store_bytes_total         reads sent to the store, bytes they brought
 *   chunk_cache_hits_total                       pieces served by the host's chunk cache directory
 *   fetch_errors_total                           fetches that failed
 *   read_seconds{fetch="cold"|"warm"}            histogram: a READ from the start of its
 *                                                execution to its reply sent; cold if it waited
 *                                                for a fetch
 * and the gauge snapctl_nbd_exports.  Each scrape lists the exports live at that moment (the
 * registry, exports.h): an export removed takes its rows, and its share of the totals, along.
 */
#ifndef SNAP_NBD_METRICS_H
#define SNAP_NBD_METRICS_H

#include "nbd/nbd.h"

#include <stddef.h>

struct prom;
struct httpd_opts;

struct nbd_metrics_export {
    const char *name;           /* the export's name ("": the default export) */
    struct nbd_stats *stats;    /* what its connections count */
    struct device *dev;         /* its device, for the fetch counters (NULL: none) */
};

/* Write the families above for exports x[0..n) into p. */
void nbd_metrics_write(struct prom *p, const struct nbd_metrics_export *x, size_t n);

/* Serve GET /metrics on the listening socket lfd (kept open by the caller until the stop), on a
 * thread of its own, until nbd_metrics_stop: net_server_stop() (the NBD server's stop) does not
 * end it, so the counters stay readable while the NBD server winds down.  Each scrape reads the
 * exports of reg, which must outlive the server. */
struct nbd_metrics;
struct nbd_exports;
int nbd_metrics_start(int lfd, const struct httpd_opts *o, struct nbd_exports *reg, struct nbd_metrics **out);
/* Stop and free (NULL: nothing); returns what the HTTP server returned. */
int nbd_metrics_stop(struct nbd_metrics *m);

#endif
