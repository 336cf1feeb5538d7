/* nbd.h -- an NBD server (fixed newstyle) over a backend of block operations.
 *
 * The backend is a struct of callbacks, like an nbdkit plugin: it sees only validated requests
 * (offset + length inside the export, aligned to min_block, length <= max_payload) and returns 0
 * or a snap_err, which lib/nbd maps to the wire error in one place.  Callbacks are called from
 * several worker threads at once, for one or many connections: the backend is thread safe.
 *
 *   struct nbd_export exp = { .size = ..., .ops = &my_ops, .ctx = my_state, ... };
 *   nbd_serve(&exp, fd, &opts);     // one connection, returns when it ends
 */
#ifndef SNAP_NBD_H
#define SNAP_NBD_H

#include <stdbool.h>
#include <stdint.h>

#define NBD_MAX_PAYLOAD (32u << 20)

/* base:allocation extents, filled by the backend's extents callback. */
struct nbd_extent {
    uint32_t length;
    uint32_t flags; /* NBD_STATE_HOLE | NBD_STATE_ZERO */
};
struct nbd_extents {
    struct nbd_extent *e;
    uint32_t n, cap;    /* the backend appends while n < cap */
    uint64_t start;     /* the offset asked for */
};
/* Append [.., +length) with flags, merging with the previous extent of the same flags.
 * Returns false when the list is full (the backend stops: a partial answer is valid). */
bool nbd_extents_add(struct nbd_extents *x, uint32_t length, uint32_t flags);

struct nbd_ops {
    int (*pread)(void *ctx, void *buf, uint32_t len, uint64_t off);
    int (*pwrite)(void *ctx, const void *buf, uint32_t len, uint64_t off, bool fua);
    /* Optional (NULL: the command is not advertised). */
    int (*flush)(void *ctx);
    int (*trim)(void *ctx, uint32_t len, uint64_t off, bool fua);
    int (*zero)(void *ctx, uint32_t len, uint64_t off, bool may_trim, bool fua);
    int (*cache)(void *ctx, uint32_t len, uint64_t off);
    int (*extents)(void *ctx, uint32_t len, uint64_t off, struct nbd_extents *x);
};

struct nbd_export {
    const char *name;          /* "" = default export; a client asking for another name is refused */
    const char *description;   /* may be NULL */
    uint64_t size;
    bool read_only;
    bool multi_conn;           /* all connections share state and FLUSH covers all of them */
    uint32_t min_block;        /* 1 or 512 .. 4096 (power of two) */
    uint32_t pref_block;       /* 4096 */
    const struct nbd_ops *ops;
    void *ctx;
};

/* Per-connection counters, also summed by the server for tests and logs. */
struct nbd_stats {
    _Atomic uint64_t requests, reads, writes, bytes_read, bytes_written, errors;
};

struct nbd_conn_opts {
    unsigned workers;          /* worker threads = requests in flight per connection (default 4) */
    const char *peer;          /* for log lines, e.g. "127.0.0.1:51234" */
};

/* Serve one connection on fd (handshake, then transmission) until the client disconnects or
 * breaks the protocol.  Closes nothing: the caller owns fd.  Returns 0 on a clean disconnect,
 * else a snap_err with the reason (logged by the caller). */
int nbd_serve(const struct nbd_export *exp, int rfd, int wfd, const struct nbd_conn_opts *opts,
              struct nbd_stats *stats);

/* ---- the listener (server.c) ---- */

/* Listening sockets come from lib/net/listen.h (net_listen, net_listen_fds). */

struct nbd_server_opts {
    struct nbd_conn_opts conn;
    unsigned max_conns;                      /* default 64; more are refused at accept */
    void (*on_idle)(void *ctx);              /* after the last client disconnects */
    void *ctx;
    bool oneshot;                            /* return after the last client disconnects */
};

/* Accept on the listening fds and serve each connection on its own thread until
 * net_server_stop() (async-signal-safe) is called or, with oneshot, the last client leaves.
 * Connections still open at stop finish their in-flight requests and are closed. */
int nbd_server_run(const struct nbd_export *exp, const int *lfds, int nlfds,
                   const struct nbd_server_opts *opts, struct nbd_stats *stats);

/* The wire error for a snap_err (the one place errors are mapped). */
uint32_t nbd_wire_error(int snap_err);

#endif
