/* sock.c -- non-blocking TCP client sockets; every wait is a poll with idle and deadline. */
#include "net/sock.h"

#include "base/err.h"
#include "base/io.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void sock_init(struct sock *s)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

/* The snap_err for a failed socket call: a timeout is a timeout, all else is the network. */
static int sock_fail(const struct sock *s, const char *op)
{
    int e = errno;
    return snap_fail(e == ETIMEDOUT ? SNAP_ETIMEOUT : SNAP_ENET, "%s: %s: %s", s->peer, op, strerror(e));
}

/* Milliseconds to the nearer of now+idle and the deadline; -1 = forever; -2 = deadline gone. */
static int sock_poll_ms(unsigned idle_ms, uint64_t deadline_ns)
{
    long long ms = idle_ms ? (long long)idle_ms : -1;
    if (deadline_ns) {
        uint64_t now = snap_now_ns();
        if (now >= deadline_ns)
            return -2;
        long long left = (long long)((deadline_ns - now + 999999) / 1000000);
        if (ms < 0 || left < ms)
            ms = left;
    }
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

static int sock_wait_fd(int fd, short events, unsigned idle_ms, uint64_t deadline_ns, const char *peer,
                        const char *what)
{
    for (;;) {
        int ms = sock_poll_ms(idle_ms, deadline_ns);
        if (ms == -2)
            return snap_fail(SNAP_ETIMEOUT, "%s: %s: deadline passed", peer, what);
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, ms);
        if (r > 0)
            return 0; /* ready, or POLLERR/POLLHUP: the next call reports it */
        if (r < 0 && errno != EINTR)
            return snap_fail(SNAP_ENET, "%s: poll: %s", peer, strerror(errno));
        if (r == 0) {
            if (deadline_ns && snap_now_ns() >= deadline_ns)
                return snap_fail(SNAP_ETIMEOUT, "%s: %s: deadline passed", peer, what);
            if (idle_ms)
                return snap_fail(SNAP_ETIMEOUT, "%s: %s: nothing for %u ms (idle timeout)", peer, what, idle_ms);
        }
    }
}

int sock_wait(struct sock *s, short events, const char *what)
{
    return sock_wait_fd(s->fd, events, s->idle_ms, s->deadline_ns, s->peer, what);
}

static int sock_setup(int fd)
{
    int one = 1;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    /* Not every socket is TCP (tests use socketpairs): TCP_NODELAY may fail harmlessly. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

int sock_adopt(struct sock *s, int fd, const char *name)
{
    sock_init(s);
    snprintf(s->peer, sizeof s->peer, "%s", name);
    if (sock_setup(fd) < 0)
        return snap_fail_errno("%s: fcntl", name);
    s->fd = fd;
    return 0;
}

/* One non-blocking connect to ai, waited on until deadline. */
static int sock_try(const struct sock *s, const struct addrinfo *ai, uint64_t deadline, int *fdp)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return snap_fail(SNAP_ENET, "%s: socket: %s", s->peer, strerror(errno));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS && errno != EINTR) {
            int e = sock_fail(s, "connect");
            close(fd);
            return e;
        }
        int e = sock_wait_fd(fd, POLLOUT, 0, deadline, s->peer, "connect");
        if (e) {
            close(fd);
            return e;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (soerr) {
            errno = soerr;
            e = sock_fail(s, "connect");
            close(fd);
            return e;
        }
    }
    if (sock_setup(fd) < 0) {
        int e = sock_fail(s, "setsockopt");
        close(fd);
        return e;
    }
    *fdp = fd;
    return 0;
}

int sock_connect(struct sock *s, const char *host, uint16_t port, unsigned connect_timeout_ms)
{
    if (s->fd >= 0)
        sock_close(s);
    snprintf(s->peer, sizeof s->peer, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
    uint64_t deadline = s->deadline_ns;
    if (connect_timeout_ms) {
        uint64_t d = snap_now_ns() + (uint64_t)connect_timeout_ms * 1000000;
        if (!deadline || d < deadline)
            deadline = d;
    }
    char ps[8];
    snprintf(ps, sizeof ps, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g != 0)
        return snap_fail(SNAP_ENET, "%s: cannot resolve host '%s': %s", s->peer, host,
                         g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
    int e = res ? 0 : snap_fail(SNAP_ENET, "%s: no address", s->peer);
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = -1;
        e = sock_try(s, ai, deadline, &fd);
        if (e == 0) {
            s->fd = fd;
            break;
        }
        if (deadline && snap_now_ns() >= deadline) {
            e = connect_timeout_ms
                    ? snap_fail(SNAP_ETIMEOUT, "%s: connect: no connection within %u ms (connect timeout)",
                                s->peer, connect_timeout_ms)
                    : snap_fail(SNAP_ETIMEOUT, "%s: connect: deadline passed", s->peer);
            break;
        }
    }
    freeaddrinfo(res);
    return e;
}

long sock_send_raw(struct sock *s, const void *buf, size_t len)
{
    ssize_t r = send(s->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    return (long)r;
}

long sock_recv_raw(struct sock *s, void *buf, size_t len)
{
    ssize_t r = recv(s->fd, buf, len, MSG_DONTWAIT);
    return (long)r;
}

int sock_read(struct sock *s, void *buf, size_t len, size_t *got)
{
    for (;;) {
        ssize_t r = recv(s->fd, buf, len, MSG_DONTWAIT);
        if (r >= 0) {
            *got = (size_t)r;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return sock_fail(s, "recv");
        int e = sock_wait(s, POLLIN, "reading");
        if (e)
            return e;
    }
}

int sock_writev(struct sock *s, struct iovec *iov, int n)
{
    while (n > 0) {
        if (iov->iov_len == 0) {
            iov++, n--;
            continue;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t r = sendmsg(s->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return sock_fail(s, "send");
            int e = sock_wait(s, POLLOUT, "sending");
            if (e)
                return e;
            continue;
        }
        size_t left = (size_t)r;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++, n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

int sock_write(struct sock *s, const void *buf, size_t len)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return sock_writev(s, &iov, 1);
}

bool sock_alive(const struct sock *s)
{
    if (s->fd < 0)
        return false;
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    int r;
    do
        r = poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    /* Readable while idle means EOF, an error, or bytes nobody asked for: all unusable. */
    return r == 0;
}

void sock_close(struct sock *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}
