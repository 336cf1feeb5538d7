/* listen.h -- listening sockets and a thread-per-connection accept loop, shared by the NBD
 * and HTTP servers.
 *
 * Stop is a self-pipe: net_server_stop() writes one byte (async-signal-safe), the loop stops
 * accepting, shuts the read side of every open connection so its handler sees EOF, waits a
 * short grace for the handlers to return, shuts what is left both ways, and returns.
 *
 * The client cap counts only connections past their handshake (net_conn_ready); connections
 * still in it have a deadline and a cap of their own, and the oldest gives way to a newcomer.
 */
#ifndef SNAP_NET_LISTEN_H
#define SNAP_NET_LISTEN_H

#include <stdbool.h>
#include <sys/socket.h>

#define NET_MAX_LISTEN 16

/* "127.0.0.1:10809", "[::1]:10809", ":10809" (all addresses), "unix:/path". */
int net_listen(const char *addr, int *fd);
/* The same; a Unix socket gets the file mode `mode` (0: as the umask says) before anyone can
 * connect.  For unix:PATH, a stale socket (no server answers) is replaced; a regular file, a
 * directory or a socket a live server answers on is refused (SNAP_EEXIST). */
int net_listen_mode(const char *addr, unsigned mode, int *fd);
/* Is the process at the other end of Unix socket fd root or of our own uid?  *uid = its uid. */
bool net_unix_peer_trusted(int fd, unsigned *uid);
/* Socket activation: the fds systemd passed (LISTEN_PID/LISTEN_FDS), or 0 if none. */
int net_listen_fds(int *fds, int max);
/* "127.0.0.1:40000", "[::1]:40000" or "unix". */
void net_peer_name(const struct sockaddr *sa, char *out, size_t n);

/* Runs on the connection's own thread; the loop closes fd after it returns. */
typedef void (*net_conn_fn)(void *ctx, int fd, const char *peer);
/* Called on the accept thread before a connection gets a thread; false refuses (closes) it. */
typedef bool (*net_accept_fn)(void *ctx, const struct sockaddr *sa, const char *peer);

struct net_server {
    net_conn_fn conn;
    net_accept_fn accept;          /* optional */
    void (*on_idle)(void *ctx);    /* optional: after the last client disconnects */
    void *ctx;
    unsigned max_conns;            /* default 64: clients past their handshake (net_conn_ready) */
    unsigned max_pending;          /* default max(max_conns, 64): connections in their handshake;
                                    * a newcomer beyond it ends the oldest of them, so sockets
                                    * that never send a byte cannot lock anyone out */
    unsigned handshake_ms;         /* a connection not ready by then is shut; 0 = no deadline */
    unsigned grace_ms;             /* at stop: time for in-flight work before every connection
                                    * is shut both ways (default 2000) */
    const int *stop_fd;            /* NULL: net_server_stop() stops the server; else only this
                                    * fd turning readable does (a server with a life of its
                                    * own, such as serve-nbd's /metrics beside its NBD one) */
    bool oneshot;                  /* return after the last client disconnects */
    bool nodelay;                  /* TCP_NODELAY on accepted sockets */
};

/* Serve until net_server_stop() (or stop_fd) or, with oneshot, the last client leaving.  At stop: accept no
 * more, shut the read side of every connection, wait up to grace_ms for the handlers, then
 * shut the rest both ways and wait for their threads (all their I/O fails at once), so a stop
 * completes in bounded time whatever the clients do. */
int net_server_run(const struct net_server *srv, const int *lfds, int nlfds);
void net_server_stop(void);
/* Called by a connection's handler (on its thread) when the client is past its handshake:
 * the connection now counts against max_conns and no longer has a handshake deadline.
 * Returns false when max_conns clients are already in: the handler refuses this one.
 * Outside net_server_run it returns true. */
bool net_conn_ready(void);

#endif
