/* bench-httpsrc.c -- a throttled loopback HTTP server for the benchmarks (see bench-httpsrc.h). */
#include "bench/bench-httpsrc.h"

#include "base/err.h"
#include "base/mem.h"
#include "net/listen.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct bench_httpsrc {
    int fd, lfd;
    uint64_t size;
    char path[256];
    struct httpd_throttle th;
    struct httpd_opts opts;
    struct httpd_bg *bg;
    atomic_uint_fast64_t requests;
};

static void handle(void *ctx, struct httpd_conn *c, const struct httpd_req *req)
{
    struct bench_httpsrc *s = ctx;
    atomic_fetch_add(&s->requests, 1);
    if (strcmp(req->target, s->path) != 0) {
        httpd_send(c, 404, "Content-Type: text/plain\r\n", "no such object\n", 15, !strcmp(req->method, "HEAD"));
        return;
    }
    httpd_send_file(c, req, "Content-Type: application/octet-stream\r\n", s->fd, s->size);
}

int bench_httpsrc_start(int fd, uint64_t size, const char *path, const struct httpd_throttle *th,
                        struct bench_httpsrc **out, char *url, size_t url_cap)
{
    if (strlen(path) >= sizeof ((struct bench_httpsrc *)0)->path || path[0] != '/')
        return snap_fail(SNAP_EUSAGE, "bench server: bad path '%s'", path);
    struct bench_httpsrc *s = snap_calloc(1, sizeof *s);
    if (!s)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    s->fd = fd;
    s->size = size;
    strcpy(s->path, path);
    if (th)
        s->th = *th;
    s->opts = (struct httpd_opts){.idle_timeout_ms = 30000, .throttle = th ? &s->th : NULL};
    int err = net_listen("127.0.0.1:0", &s->lfd);
    if (err) {
        snap_free(s);
        return err;
    }
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    if (getsockname(s->lfd, (struct sockaddr *)&sa, &sl) < 0)
        err = snap_fail_errno("bench server: getsockname");
    else
        err = httpd_bg_start(s->lfd, &s->opts, handle, s, &s->bg);
    if (err) {
        close(s->lfd);
        snap_free(s);
        return err;
    }
    snprintf(url, url_cap, "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    *out = s;
    return 0;
}

uint64_t bench_httpsrc_requests(struct bench_httpsrc *s)
{
    return atomic_load(&s->requests);
}

void bench_httpsrc_stop(struct bench_httpsrc *s)
{
    if (!s)
        return;
    httpd_bg_stop(s->bg);
    close(s->lfd);
    snap_free(s);
}
