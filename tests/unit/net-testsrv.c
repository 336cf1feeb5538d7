/* net-testsrv.c -- the scripted loopback HTTP server of the net tests (see net-testsrv.h). */
#include "net-testsrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TSRV_MAX_CONNS 256
#define TSRV_MAX_REQS 4096
#define TSRV_REQ_CAP (64u << 20)

struct tsrv {
    int lfd;
    uint16_t port;
    const struct tsrv_reply *replies;
    size_t nreplies;
    bool cycle;
    atomic_bool stop;
    pthread_t acceptor;
    pthread_mutex_t lock;
    pthread_t conn_threads[TSRV_MAX_CONNS];
    int conn_fds[TSRV_MAX_CONNS];
    unsigned nconns;
    size_t next_reply;
    char *reqs[TSRV_MAX_REQS];
    size_t req_lens[TSRV_MAX_REQS];
    unsigned nreqs;
};

struct tsrv_conn {
    struct tsrv *s;
    int fd;
};

static void ms_sleep(struct tsrv *s, unsigned ms)
{
    /* In small steps, so stopping the server never waits for a long stall. */
    while (ms && !atomic_load(&s->stop)) {
        unsigned step = ms < 10 ? ms : 10;
        struct timespec ts = {0, (long)step * 1000000};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* Bytes of a complete request at the start of b[0..n), or 0 if more is needed. */
static size_t req_complete(const char *b, size_t n)
{
    const char *end = NULL;
    for (size_t i = 3; i < n && !end; i++)
        if (memcmp(b + i - 3, "\r\n\r\n", 4) == 0)
            end = b + i + 1;
    if (!end)
        return 0;
    size_t head = (size_t)(end - b);
    /* Find the framing fields in the head (case-insensitive, at line starts). */
    size_t clen = 0;
    bool chunked = false;
    for (const char *p = b; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        if ((size_t)(nl - p) > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
            clen = strtoull(p + 15, NULL, 10);
        if ((size_t)(nl - p) > 18 && strncasecmp(p, "Transfer-Encoding:", 18) == 0)
            chunked = true;
        p = nl + 1;
    }
    if (!chunked)
        return n - head >= clen ? head + clen : 0;
    size_t pos = head;
    for (;;) {
        char *eol = memchr(b + pos, '\n', n - pos);
        if (!eol)
            return 0;
        size_t sz = strtoull(b + pos, NULL, 16);
        pos = (size_t)(eol - b) + 1;
        if (sz == 0) {
            /* Trailers, then an empty line. */
            for (;;) {
                eol = memchr(b + pos, '\n', n - pos);
                if (!eol)
                    return 0;
                bool empty = (size_t)(eol - b) == pos || ((size_t)(eol - b) == pos + 1 && b[pos] == '\r');
                pos = (size_t)(eol - b) + 1;
                if (empty)
                    return pos;
            }
        }
        if (n - pos < sz + 2)
            return 0;
        pos += sz + 2;
    }
}

static void *tsrv_serve(void *arg)
{
    struct tsrv_conn *tc = arg;
    struct tsrv *s = tc->s;
    int fd = tc->fd;
    free(tc);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    while (!atomic_load(&s->stop)) {
        size_t rl = req_complete(buf, len);
        if (rl == 0) {
            if (len == cap) {
                if (cap >= TSRV_REQ_CAP)
                    break;
                cap *= 2;
                buf = realloc(buf, cap);
            }
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, 20) <= 0)
                continue;
            ssize_t r = recv(fd, buf + len, cap - len, 0);
            if (r <= 0)
                break;
            len += (size_t)r;
            continue;
        }
        pthread_mutex_lock(&s->lock);
        if (s->nreqs < TSRV_MAX_REQS) {
            char *copy = malloc(rl + 1);
            memcpy(copy, buf, rl);
            copy[rl] = '\0';
            s->reqs[s->nreqs] = copy;
            s->req_lens[s->nreqs++] = rl;
        }
        const struct tsrv_reply *rp = NULL;
        if (s->next_reply < s->nreplies || (s->cycle && s->nreplies))
            rp = &s->replies[s->next_reply++ % s->nreplies];
        pthread_mutex_unlock(&s->lock);
        memmove(buf, buf + rl, len - rl);
        len -= rl;
        if (!rp)
            break;
        ms_sleep(s, rp->delay_ms);
        if (rp->bytes) {
            size_t n = rp->len ? rp->len : strlen(rp->bytes), off = 0;
            while (off < n) {
                ssize_t w = send(fd, rp->bytes + off, n - off, MSG_NOSIGNAL);
                if (w <= 0)
                    break;
                off += (size_t)w;
            }
        }
        ms_sleep(s, rp->stall_ms);
        if (rp->close)
            break;
    }
    free(buf);
    shutdown(fd, SHUT_RDWR);
    return NULL;
}

static void *tsrv_accept(void *arg)
{
    struct tsrv *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&s->lock);
        if (s->nconns == TSRV_MAX_CONNS) {
            pthread_mutex_unlock(&s->lock);
            close(fd);
            continue;
        }
        struct tsrv_conn *tc = malloc(sizeof *tc);
        tc->s = s;
        tc->fd = fd;
        s->conn_fds[s->nconns] = fd;
        pthread_create(&s->conn_threads[s->nconns], NULL, tsrv_serve, tc);
        s->nconns++;
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

struct tsrv *tsrv_start(const char *addr, const struct tsrv_reply *replies, size_t n, bool cycle)
{
    struct tsrv *s = calloc(1, sizeof *s);
    s->replies = replies;
    s->nreplies = n;
    s->cycle = cycle;
    pthread_mutex_init(&s->lock, NULL);
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, addr, &a6->sin6_addr);
        sl = sizeof *a6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        inet_pton(AF_INET, addr, &a4->sin_addr);
        sl = sizeof *a4;
    }
    s->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&ss, sl) < 0 || listen(s->lfd, 64) < 0) {
        fprintf(stderr, "    tsrv: cannot listen on %s: %s\n", addr, strerror(errno));
        if (s->lfd >= 0)
            close(s->lfd);
        free(s);
        return NULL;
    }
    getsockname(s->lfd, (struct sockaddr *)&ss, &sl);
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    pthread_create(&s->acceptor, NULL, tsrv_accept, s);
    return s;
}

uint16_t tsrv_port(const struct tsrv *s)
{
    return s->port;
}

unsigned tsrv_conns(struct tsrv *s)
{
    pthread_mutex_lock(&s->lock);
    unsigned n = s->nconns;
    pthread_mutex_unlock(&s->lock);
    return n;
}

unsigned tsrv_nreq(struct tsrv *s)
{
    pthread_mutex_lock(&s->lock);
    unsigned n = s->nreqs;
    pthread_mutex_unlock(&s->lock);
    return n;
}

const char *tsrv_req(struct tsrv *s, unsigned i, size_t *len)
{
    pthread_mutex_lock(&s->lock);
    const char *r = i < s->nreqs ? s->reqs[i] : NULL;
    if (len)
        *len = r ? s->req_lens[i] : 0;
    pthread_mutex_unlock(&s->lock);
    return r ? r : "";
}

void tsrv_stop(struct tsrv *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->acceptor, NULL);
    for (unsigned i = 0; i < s->nconns; i++) {
        pthread_join(s->conn_threads[i], NULL);
        close(s->conn_fds[i]);
    }
    close(s->lfd);
    for (unsigned i = 0; i < s->nreqs; i++)
        free(s->reqs[i]);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
