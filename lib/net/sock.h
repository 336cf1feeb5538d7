/* sock.h -- TCP client sockets with poll(2)-based timeouts (no select: fds may be >= 1024).
 *
 * The fd is non-blocking; every wait is a poll bounded by the idle timeout (no progress for
 * idle_ms) and by the absolute deadline (snap_now_ns() clock), whichever comes first.  Both
 * may be changed between calls (the HTTP client sets them per request).  Sends use
 * MSG_NOSIGNAL, so a closed peer is an error, never SIGPIPE.  Errors: SNAP_ENET (refused,
 * reset, unresolvable), SNAP_ETIMEOUT; messages name the peer "host:port".
 *
 * Name resolution is getaddrinfo(3): blocking, bounded by the resolver's own timeouts, not
 * by ours.  Numeric addresses never touch the resolver.
 */
#ifndef SNAP_NET_SOCK_H
#define SNAP_NET_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct sock {
    int fd;               /* -1 when closed */
    unsigned idle_ms;     /* 0 = no idle timeout */
    uint64_t deadline_ns; /* absolute snap_now_ns(); 0 = none */
    char peer[272];       /* "host:port" for messages */
};

void sock_init(struct sock *s);
/* Resolve host, try each address until one connects within connect_timeout_ms in total
 * (0 = only the deadline bounds it); sets TCP_NODELAY.  0 or a snap_err. */
int sock_connect(struct sock *s, const char *host, uint16_t port, unsigned connect_timeout_ms);
/* Adopt a connected fd (made non-blocking); name is for messages. */
int sock_adopt(struct sock *s, int fd, const char *name);
/* Poll until events (POLLIN/POLLOUT) are ready, the idle timeout or the deadline.  `what`
 * names the wait in the timeout message ("response", "TLS handshake"). */
int sock_wait(struct sock *s, short events, const char *what);
/* Read at least one byte (waiting as needed); *got = 0 means the peer closed. */
int sock_read(struct sock *s, void *buf, size_t len, size_t *got);
/* Write all of buf / all of iov[0..n) (iov is advanced in place). */
int sock_write(struct sock *s, const void *buf, size_t len);
int sock_writev(struct sock *s, struct iovec *iov, int n);
/* One non-blocking send for TLS's bio: >= 0 bytes sent, or -1 with errno (EAGAIN included). */
long sock_send_raw(struct sock *s, const void *buf, size_t len);
long sock_recv_raw(struct sock *s, void *buf, size_t len);
/* An idle pooled connection is still usable: not closed by the peer, nothing unexpected
 * waiting to be read. */
bool sock_alive(const struct sock *s);
void sock_close(struct sock *s);

#endif
