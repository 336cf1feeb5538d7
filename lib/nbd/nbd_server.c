/* nbd_server.c -- the NBD server on top of lib/net's accept loop: one thread per connection,
 * each picking its export by name from the registry (exports.h). */
#include "nbd/nbd.h"

#include "base/err.h"
#include "base/log.h"
#include "net/listen.h"

struct nbd_server {
    struct nbd_exports *reg;
    const struct nbd_server_opts *opts;
};

static void nbd_conn(void *ctx, int fd, const char *peer)
{
    struct nbd_server *s = ctx;
    struct nbd_conn_opts co = s->opts->conn;
    co.peer = peer;
    co.admit = net_conn_ready;
    snap_info("nbd %s: connected", peer);
    int err = nbd_serve_exports(s->reg, fd, fd, &co);
    if (err)
        snap_warn("nbd %s: connection ended: %s", peer, snap_errmsg(err));
    else
        snap_info("nbd %s: disconnected", peer);
}

static void nbd_idle(void *ctx)
{
    struct nbd_server *s = ctx;
    if (s->opts->on_idle)
        s->opts->on_idle(s->opts->ctx);
}

int nbd_server_run(struct nbd_exports *reg, const int *lfds, int nlfds, const struct nbd_server_opts *opts)
{
    struct nbd_server s = {.reg = reg, .opts = opts};
    struct net_server ns = {
        .conn = nbd_conn, .on_idle = nbd_idle, .ctx = &s, .max_conns = opts->max_conns,
        .handshake_ms = opts->handshake_ms ? opts->handshake_ms : 10000, .grace_ms = opts->grace_ms,
        .oneshot = opts->oneshot, .nodelay = true,
    };
    return net_server_run(&ns, lfds, nlfds);
}
