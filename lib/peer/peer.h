/* peer.h -- serve this host's builds to other hosts (docs/protocols.md section 4).
 *
 *   GET|HEAD /v1/builds/{uuid}/{file}   206/200 with ranges, 404, 400 for anything malformed,
 *                                       410 + X-Snapctl-Use-Storage: 1 once the upload finished
 *   GET /metrics                        Prometheus text
 *
 * The data directory holds {uuid}/{file} as `snapctl serve-nbd --export-diff` writes them.
 * A build whose upload finished has a marker {uuid}/.upload-done (written by
 * `snapctl upload --notify-peer` or by hand).  While the upload runs, v4/v5 headers are served
 * with their "upload not finished" flag set (one byte patched in flight, nothing re-encoded).
 */
#ifndef SNAP_PEER_H
#define SNAP_PEER_H

#include "net/httpd.h"

#include <stdbool.h>
#include <stdint.h>

#define PEER_DONE_MARKER ".upload-done"

struct peer_server;

int peer_server_open(const char *data_dir, struct peer_server **out);
void peer_server_close(struct peer_server *p);
/* The httpd handler; ctx is the peer_server. */
void peer_handle(void *ctx, struct httpd_conn *c, const struct httpd_req *req);
/* Is `name` one of the object names a build may have? */
bool peer_file_allowed(const char *name);

struct peer_metrics {
    uint64_t requests, bytes, errors, pinned;
    uint64_t not_found; /* 404: this host does not have that build file (part of errors) */
    uint64_t gone;      /* 410 + X-Snapctl-Use-Storage: the build's upload finished (part of errors) */
};
void peer_metrics(struct peer_server *p, struct peer_metrics *m);

#endif
