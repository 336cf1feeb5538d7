/* nbd.h -- an NBD server (fixed newstyle) over a device (lib/device/device.h).
 *
 * The device is a struct of callbacks (struct dev_ops), like an nbdkit plugin, which each device
 * implements itself; the server calls them directly.  It sees only validated requests
 * (offset + length inside the export, aligned to min_block, length <= max_payload) and returns 0
 * or a snap_err, which lib/nbd maps to the wire error in one place.  Callbacks are called from
 * several worker threads at once, for one or many connections: the backend is thread safe.
 *
 *   struct nbd_export exp = { .size = ..., .ops = &my_ops, .ctx = my_state, ... };
 *   nbd_serve(&exp, fd, &opts);     // one connection, returns when it ends
 *
 * A server of several exports keeps them in a registry (exports.h); each connection picks one
 * by its NBD name (NBD_OPT_GO/INFO/EXPORT_NAME), NBD_OPT_LIST lists them.
 */
#ifndef SNAP_NBD_H
#define SNAP_NBD_H

#include "base/histo.h"
#include "device/device.h" /* struct dev_ops, struct dev_extents */

#include <stdbool.h>
#include <stdint.h>

#define NBD_MAX_PAYLOAD (32u << 20)

struct nbd_export {
    const char *name;          /* "" = default export; a client asking for another name is refused */
    const char *description;   /* may be NULL */
    uint64_t size;
    bool read_only;
    bool multi_conn;           /* all connections share state and FLUSH covers all of them */
    uint32_t min_block;        /* 1 or 512 .. 4096 (power of two) */
    uint32_t pref_block;       /* 4096 */
    const struct dev_ops *ops;  /* the device (base:allocation extents: DEV_STATE_*) */
    void *ctx;
};

/* Counters of one export, shared by all its connections (atomics: no lock), for logs, tests
 * and /metrics (lib/nbd/metrics.c).  answered[] and the READ latency histograms are fed by
 * nbd_stats_start/nbd_stats_done around each request (stats.c). */
#define NBD_STATS_CMDS 9 /* NBD_CMD_READ (0) .. NBD_CMD_BLOCK_STATUS (7), then any other */
struct nbd_stats {
    _Atomic uint64_t requests, reads, writes, bytes_read, bytes_written, errors;
    _Atomic uint64_t answered[NBD_STATS_CMDS]; /* requests answered, by command (errors too) */
    /* READs from the start of their execution to their reply sent: cold ones waited for a
     * fetch (base/histo.h), warm ones did not. */
    struct snap_histo read_cold, read_warm;
};

/* One request's timing: nbd_stats_start before the device is called, nbd_stats_done once the
 * reply is sent, on the same thread.  No lock, no allocation. */
struct nbd_timing {
    uint64_t t0_ns, waits0;
};
void nbd_stats_start(struct nbd_timing *t);
void nbd_stats_done(struct nbd_stats *st, const struct nbd_timing *t, uint16_t type);
/* "read", "write", ... for answered[i]; "other" for the last. */
const char *nbd_cmd_name(unsigned i);

struct nbd_conn_opts {
    unsigned workers;          /* worker threads per connection at most, started as requests that
                                * must wait need them (default 64, at most 256) */
    const char *peer;          /* for log lines, e.g. "127.0.0.1:51234" */
    /* Deadlines on a socket (ignored on pipes): once a request's first byte is in, its head
     * must be complete within io_timeout_ms, a WRITE payload must keep arriving (no gap of
     * io_timeout_ms, and all of it within io_timeout_ms + 1 s per MiB), and a reply must keep
     * leaving (no gap of io_timeout_ms).  A client that misses one is dropped and its buffers
     * freed.  Waiting between requests has no deadline.  Default 30000. */
    unsigned io_timeout_ms;
    /* Busy-poll window between requests, in microseconds, while the client keeps answering
     * within it (see dispatch.c): 0 the default 50, -1 never. */
    int poll_us;
    /* Every request on the connection's reader, one after the other, replies in request order
     * (no workers): for a checker that models the server as sequential (the fuzzer). */
    bool serial;
    /* Called when the client asks to enter transmission (GO, EXPORT_NAME); false refuses it
     * (too many clients).  NULL: always admitted. */
    bool (*admit)(void);
};

/* Serve one connection on fd (handshake, then transmission) until the client disconnects or
 * breaks the protocol.  Closes nothing: the caller owns fd.  Returns 0 on a clean disconnect,
 * else a snap_err with the reason (logged by the caller).
 *
 * Memory per connection is bounded: 64 KiB during the handshake; in transmission a 64 KiB input
 * buffer, at most 256 requests and 64 MiB of READ/WRITE data in flight (one larger request, up to
 * NBD_MAX_PAYLOAD plus a block on each side, alone), at most 32 MiB of request buffers kept for
 * reuse, 64 KiB of block-status descriptors per request slot that answered one, and the worker
 * threads' stacks -- all freed when the connection ends (see dispatch.c). */
int nbd_serve(const struct nbd_export *exp, int rfd, int wfd, const struct nbd_conn_opts *opts,
              struct nbd_stats *stats);
/* The same, with the export picked by the client's name among reg's (lib/nbd/exports.h): a
 * connection holds its export from GO to its end, counted in the export's own stats. */
struct nbd_exports;
int nbd_serve_exports(struct nbd_exports *reg, int rfd, int wfd, const struct nbd_conn_opts *opts);

/* ---- the listener (server.c) ---- */

/* Listening sockets come from lib/net/listen.h (net_listen, net_listen_fds). */

struct nbd_server_opts {
    struct nbd_conn_opts conn;
    unsigned max_conns;                      /* default 64 clients past the handshake; more
                                              * are refused at GO (NBD_REP_ERR_POLICY) */
    unsigned handshake_ms;                   /* default 10000: from accept to GO */
    unsigned grace_ms;                       /* at stop, for in-flight requests (default 2000) */
    void (*on_idle)(void *ctx);              /* after the last client disconnects */
    void *ctx;
    bool oneshot;                            /* return after the last client disconnects */
};

/* Accept on the listening fds and serve each connection on its own thread until
 * net_server_stop() (async-signal-safe) is called or, with oneshot, the last client leaves.
 * At stop, connections get grace_ms to finish their in-flight requests and are then closed,
 * whatever the client does (one that reads no replies cannot hold the stop up). */
int nbd_server_run(struct nbd_exports *reg, const int *lfds, int nlfds, const struct nbd_server_opts *opts);

/* The wire error for a snap_err (the one place errors are mapped). */
uint32_t nbd_wire_error(int snap_err);

#endif
