/* listen.h -- listening sockets and a thread-per-connection accept loop, shared by the NBD
 * and HTTP servers.
 *
 * Stop is a self-pipe: net_server_stop() writes one byte (async-signal-safe), the loop stops
 * accepting, shuts the read side of every open connection so its handler sees EOF, waits for
 * the handlers to return, and returns.
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
    unsigned max_conns;            /* default 64; more are refused at accept */
    bool oneshot;                  /* return after the last client disconnects */
    bool nodelay;                  /* TCP_NODELAY on accepted sockets */
};

int net_server_run(const struct net_server *srv, const int *lfds, int nlfds);
void net_server_stop(void);

#endif
