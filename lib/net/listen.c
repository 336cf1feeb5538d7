/* listen.c -- listening sockets and the thread-per-connection accept loop. */
#include "net/listen.h"

#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The stop pipe is made once and never closed, so a stop from any thread (or a signal
 * handler) never races with a server starting or ending; a run drains it when it returns. */
static int stop_pipe[2] = {-1, -1};
static pthread_once_t stop_once = PTHREAD_ONCE_INIT;

static void stop_pipe_init(void)
{
    if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        stop_pipe[0] = stop_pipe[1] = -1;
}

void net_server_stop(void)
{
    pthread_once(&stop_once, stop_pipe_init);
    if (stop_pipe[1] >= 0) {
        char b = 1;
        ssize_t r = write(stop_pipe[1], &b, 1);
        (void)r;
    }
}

/* Make way for a Unix socket at sun's path: nothing there is fine; a socket nobody answers on
 * (a crashed server's) is removed; anything else -- a regular file, a directory, a socket a
 * live server answers on -- is left alone and refused. */
static int unix_path_free(const char *addr, const struct sockaddr_un *sun)
{
    struct stat st;
    if (lstat(sun->sun_path, &st) < 0)
        return errno == ENOENT ? 0 : snap_fail_errno("%s", addr);
    if (!S_ISSOCK(st.st_mode))
        return snap_fail(SNAP_EEXIST, "%s: the path exists and is not a socket; remove it or "
                         "choose another path", addr);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return snap_fail_errno("%s: socket", addr);
    int r = connect(fd, (const struct sockaddr *)sun, sizeof *sun), e = errno;
    close(fd);
    if (r == 0 || (e != ECONNREFUSED && e != ENOENT))
        return r == 0 ? snap_fail(SNAP_EEXIST, "%s: another server is listening there; stop it or "
                                  "choose another path", addr)
                      : snap_fail(SNAP_EIO, "%s: cannot tell whether a server listens there: %s",
                                  addr, strerror(e));
    if (unlink(sun->sun_path) < 0 && errno != ENOENT)
        return snap_fail_errno("%s: remove the stale socket", addr);
    snap_info("%s: replaced a stale socket nobody listened on", addr);
    return 0;
}

bool net_unix_peer_trusted(int fd, unsigned *uid)
{
    struct ucred cr;
    socklen_t l = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0 || l != sizeof cr)
        return false;
    *uid = (unsigned)cr.uid;
    return cr.uid == 0 || cr.uid == geteuid();
}

int net_listen(const char *addr, int *out)
{
    return net_listen_mode(addr, 0, out);
}

int net_listen_mode(const char *addr, unsigned mode, int *out)
{
    int fd;
    if (strncmp(addr, "unix:", 5) == 0) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        const char *path = addr + 5;
        if (strlen(path) >= sizeof sun.sun_path)
            return snap_fail(SNAP_EUSAGE, "%s: socket path too long", addr);
        strcpy(sun.sun_path, path);
        int perr = unix_path_free(addr, &sun);
        if (perr)
            return perr;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return snap_fail_errno("%s: socket", addr);
        /* The mode is set between bind and listen: nobody can connect before it holds. */
        bool bound = bind(fd, (struct sockaddr *)&sun, sizeof sun) == 0;
        if (!bound || (mode && chmod(path, mode) < 0) || listen(fd, 64) < 0) {
            int err = snap_fail_errno("%s: listen", addr);
            close(fd);
            if (bound)
                unlink(path);
            return err;
        }
        *out = fd;
        return 0;
    }
    /* host:port, [v6]:port */
    char host[256];
    const char *port;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':' || (size_t)(end - addr - 1) >= sizeof host)
            return snap_fail(SNAP_EUSAGE, "'%s': %s: expected [IPv6]:PORT (such as [::1]:10809)", addr,
                             !end ? "the '[' is never closed by ']'" : "no ':PORT' after the ']'");
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon || (size_t)(colon - addr) >= sizeof host)
            return snap_fail(SNAP_EUSAGE, "'%s': expected HOST:PORT, [IPv6]:PORT or unix:PATH (such as "
                             "127.0.0.1:10809)", addr);
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        port = colon + 1;
    }
    /* The port is checked here: getaddrinfo would only say "Unrecognized service". */
    char *pend;
    unsigned long pn = strtoul(port, &pend, 10);
    if (port[0] < '0' || port[0] > '9' || *pend || pn > 65535)
        return snap_fail(SNAP_EUSAGE, "'%s': the port '%s' is not a number from 0 to 65535", addr, port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *ai;
    int g = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (g)
        return snap_fail(SNAP_EUSAGE, "'%s': '%s' is not an address of this host (%s); give an IP address such "
                         "as 127.0.0.1, or none for all", addr, host, gai_strerror(g));
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int err = 0, one = 1;
    if (fd < 0)
        err = snap_fail_errno("%s: socket", addr);
    else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
             bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0)
        err = errno == EADDRINUSE ? snap_fail(SNAP_EIO, "%s: the address is in use: is another server "
                                              "listening there?", addr)
                                  : snap_fail_errno("%s: listen", addr);
    freeaddrinfo(ai);
    if (err) {
        if (fd >= 0)
            close(fd);
        return err;
    }
    *out = fd;
    return 0;
}

int net_listen_fds(int *fds, int max)
{
    const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
    if (!pid || !n || strtol(pid, NULL, 10) != (long)getpid())
        return 0;
    long cnt = strtol(n, NULL, 10);
    if (cnt < 1 || cnt > max)
        return 0;
    for (long i = 0; i < cnt; i++) {
        fds[i] = 3 + (int)i; /* SD_LISTEN_FDS_START */
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return (int)cnt;
}

enum { SLOT_FREE, SLOT_PENDING, SLOT_READY };

struct slot {
    int fd;
    int state;
    bool evicted;             /* shut down by the loop: its thread is on its way out */
    uint64_t since_ns;        /* accepted at */
};

struct server {
    const struct net_server *opts;
    pthread_mutex_t lock;
    pthread_cond_t changed;   /* CLOCK_MONOTONIC */
    unsigned active, ready;   /* threads running; of them, past the handshake */
    unsigned nslots;
    struct slot *slots;
};

struct conn_arg {
    struct server *srv;
    unsigned slot;
    int fd;
    char peer[80];
};

static _Thread_local struct conn_arg *tl_conn; /* the connection this thread serves */

bool net_conn_ready(void)
{
    struct conn_arg *a = tl_conn;
    if (!a)
        return true; /* not under net_server_run (e.g. --stdio) */
    struct server *srv = a->srv;
    bool ok = true;
    pthread_mutex_lock(&srv->lock);
    struct slot *sl = &srv->slots[a->slot];
    if (sl->state == SLOT_PENDING) {
        if (srv->ready >= srv->opts->max_conns) {
            ok = false;
        } else {
            sl->state = SLOT_READY;
            srv->ready++;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    if (!ok)
        snap_warn("refusing %s: %u clients already", a->peer, srv->opts->max_conns);
    return ok;
}

static void *conn_main(void *p)
{
    struct conn_arg *a = p;
    struct server *srv = a->srv;
    tl_conn = a;
    srv->opts->conn(srv->opts->ctx, a->fd, a->peer);
    tl_conn = NULL;
    pthread_mutex_lock(&srv->lock);
    struct slot *sl = &srv->slots[a->slot];
    if (sl->state == SLOT_READY)
        srv->ready--;
    *sl = (struct slot){.fd = -1, .state = SLOT_FREE};
    close(a->fd);
    srv->active--;
    pthread_cond_broadcast(&srv->changed);
    pthread_mutex_unlock(&srv->lock);
    snap_free(a);
    return NULL;
}

void net_peer_name(const struct sockaddr *sa, char *out, size_t n)
{
    char h[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const void *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, h, sizeof h);
        snprintf(out, n, "%s:%u", h, ntohs(s4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, h, sizeof h);
        snprintf(out, n, "[%s]:%u", h, ntohs(s6->sin6_port));
    } else {
        snprintf(out, n, "unix");
    }
}

/* Under the lock: end pending connections past the handshake deadline; with `make_room`, also
 * the oldest pending one when max_pending are pending, so idle sockets never lock a newcomer
 * out.  Returns a free slot, or nslots when there is none. */
static unsigned reap_pending(struct server *srv, bool make_room)
{
    const struct net_server *o = srv->opts;
    uint64_t now = snap_now_ns();
    unsigned pending = 0, oldest = srv->nslots, free_slot = srv->nslots;
    for (unsigned i = 0; i < srv->nslots; i++) {
        struct slot *sl = &srv->slots[i];
        if (sl->state == SLOT_FREE && free_slot == srv->nslots)
            free_slot = i;
        if (sl->state != SLOT_PENDING || sl->evicted)
            continue;
        if (o->handshake_ms && now - sl->since_ns > (uint64_t)o->handshake_ms * 1000000u) {
            shutdown(sl->fd, SHUT_RDWR);
            sl->evicted = true;
            continue;
        }
        pending++;
        if (oldest == srv->nslots || sl->since_ns < srv->slots[oldest].since_ns)
            oldest = i;
    }
    if (make_room && pending >= o->max_pending && oldest < srv->nslots) {
        shutdown(srv->slots[oldest].fd, SHUT_RDWR);
        srv->slots[oldest].evicted = true;
    }
    return free_slot;
}

static bool evicted_any(const struct server *srv)
{
    for (unsigned i = 0; i < srv->nslots; i++)
        if (srv->slots[i].state == SLOT_PENDING && srv->slots[i].evicted)
            return true;
    return false;
}

static int accept_one(struct server *srv, int lfd, bool *had_client)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
    if (fd < 0)
        return (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) ? 0
                                                                             : snap_fail_errno("accept");
    char peer[80];
    net_peer_name((struct sockaddr *)&ss, peer, sizeof peer);
    if (srv->opts->accept && !srv->opts->accept(srv->opts->ctx, (struct sockaddr *)&ss, peer)) {
        close(fd);
        return 0;
    }
    if (srv->opts->nodelay) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails harmlessly on unix */
    }
    struct conn_arg *a = snap_calloc(1, sizeof *a);
    pthread_mutex_lock(&srv->lock);
    unsigned slot = reap_pending(srv, true);
    for (int tries = 0; slot == srv->nslots && tries < 5 && evicted_any(srv); tries++) {
        /* The connections given way to are on their way out: their slots free in moments. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 50000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&srv->changed, &srv->lock, &ts);
        slot = reap_pending(srv, true);
    }
    if (!a || slot == srv->nslots) {
        pthread_mutex_unlock(&srv->lock);
        snap_warn("refusing a connection from %s: %u connections already", peer, srv->active);
        close(fd);
        snap_free(a);
        return 0;
    }
    a->srv = srv;
    a->slot = slot;
    a->fd = fd;
    memcpy(a->peer, peer, sizeof a->peer);
    srv->slots[slot] = (struct slot){.fd = fd, .state = SLOT_PENDING, .since_ns = snap_now_ns()};
    srv->active++;
    pthread_mutex_unlock(&srv->lock);

    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, conn_main, a) != 0) {
        pthread_mutex_lock(&srv->lock);
        srv->slots[slot] = (struct slot){.fd = -1, .state = SLOT_FREE};
        srv->active--;
        pthread_mutex_unlock(&srv->lock);
        close(fd);
        snap_free(a);
        snap_warn("cannot start a connection thread for %s", peer);
    }
    pthread_attr_destroy(&attr);
    *had_client = true;
    return 0;
}

/* Shut every open connection with `how`; under the lock. */
static void shut_all(struct server *srv, int how)
{
    for (unsigned i = 0; i < srv->nslots; i++)
        if (srv->slots[i].state != SLOT_FREE)
            shutdown(srv->slots[i].fd, how);
}

/* Stop: end every connection's reads so handlers finish what is in flight; after the grace,
 * shut the rest both ways (a client that reads nothing can hold no thread); wait for all. */
static void stop_all(struct server *srv)
{
    uint64_t grace = (uint64_t)(srv->opts->grace_ms ? srv->opts->grace_ms : 2000) * 1000000u;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t end = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + grace;
    ts.tv_sec = (time_t)(end / 1000000000u);
    ts.tv_nsec = (long)(end % 1000000000u);
    pthread_mutex_lock(&srv->lock);
    shut_all(srv, SHUT_RD);
    while (srv->active > 0 && pthread_cond_timedwait(&srv->changed, &srv->lock, &ts) != ETIMEDOUT)
        ;
    if (srv->active > 0) {
        snap_warn("closing %u connections still busy %u ms after the stop", srv->active,
                  (unsigned)(grace / 1000000u));
        shut_all(srv, SHUT_RDWR);
    }
    while (srv->active > 0)
        pthread_cond_wait(&srv->changed, &srv->lock);
    pthread_mutex_unlock(&srv->lock);
}

int net_server_run(const struct net_server *opts_in, const int *lfds, int nlfds)
{
    struct net_server opts = *opts_in;
    if (!opts.max_conns)
        opts.max_conns = 64;
    if (!opts.max_pending)
        opts.max_pending = opts.max_conns < 64 ? 64 : opts.max_conns;
    if (nlfds < 1 || nlfds > NET_MAX_LISTEN)
        return snap_fail(SNAP_EUSAGE, "%d listening sockets (1..%d)", nlfds, NET_MAX_LISTEN);
    pthread_once(&stop_once, stop_pipe_init);
    if (stop_pipe[0] < 0)
        return snap_fail(SNAP_EIO, "cannot create the server's stop pipe");
    /* Room for every client, every pending one, and as many again on their way out. */
    struct server srv = {.opts = &opts, .nslots = opts.max_conns + 2 * opts.max_pending};
    srv.slots = snap_malloc(srv.nslots * sizeof *srv.slots);
    if (!srv.slots)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    for (unsigned i = 0; i < srv.nslots; i++)
        srv.slots[i] = (struct slot){.fd = -1, .state = SLOT_FREE};
    pthread_mutex_init(&srv.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&srv.changed, &ca);
    pthread_condattr_destroy(&ca);

    struct pollfd pfd[NET_MAX_LISTEN + 1];
    for (int i = 0; i < nlfds; i++)
        pfd[i] = (struct pollfd){.fd = lfds[i], .events = POLLIN};
    int stop_fd = opts.stop_fd ? *opts.stop_fd : stop_pipe[0];
    pfd[nlfds] = (struct pollfd){.fd = stop_fd, .events = POLLIN};
    bool had_client = false, was_busy = false;
    int err = 0;
    for (;;) {
        /* Wake at least every 200 ms to notice "last client left" and handshake deadlines. */
        int r = poll(pfd, (nfds_t)nlfds + 1, 200);
        if (r < 0 && errno != EINTR) {
            err = snap_fail_errno("poll");
            break;
        }
        if (r > 0 && pfd[nlfds].revents)
            break;
        for (int i = 0; r > 0 && i < nlfds && !err; i++)
            if (pfd[i].revents & POLLIN)
                err = accept_one(&srv, lfds[i], &had_client);
        if (err)
            break;
        pthread_mutex_lock(&srv.lock);
        reap_pending(&srv, false);
        unsigned active = srv.active;
        pthread_mutex_unlock(&srv.lock);
        if (active > 0)
            was_busy = true;
        if (was_busy && active == 0) {
            was_busy = false;
            if (opts.on_idle)
                opts.on_idle(opts.ctx);
            if (opts.oneshot && had_client)
                break;
        }
    }
    stop_all(&srv);
    if (was_busy && opts.on_idle)
        opts.on_idle(opts.ctx);

    char drain[64];
    while (!opts.stop_fd && read(stop_pipe[0], drain, sizeof drain) > 0)
        ;
    pthread_cond_destroy(&srv.changed);
    pthread_mutex_destroy(&srv.lock);
    snap_free(srv.slots);
    return err;
}
