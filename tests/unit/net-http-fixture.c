/* net-http-fixture.c -- the server + client + URL fixture of the HTTP client tests. */
#include "net-http-fixture.h"

#include "base/err.h"

#include <stdio.h>

int hfx_url(struct url *u, const char *host, uint16_t port, const char *path)
{
    char s[256];
    snprintf(s, sizeof s, "http://%s:%u%s", host, (unsigned)port, path);
    return url_parse(s, u);
}

int hfx_start(struct hfx *f, const struct tsrv_reply *r, size_t n, bool cycle, const struct http_opts *o,
              const char *path)
{
    *f = (struct hfx){0};
    http_response_init(&f->rs);
    f->s = tsrv_start("127.0.0.1", r, n, cycle);
    if (!f->s) {
        fprintf(stderr, "    fixture: the test server did not start on 127.0.0.1\n");
        return -1;
    }
    int e = http_client_new(o, &f->c);
    if (!e)
        e = hfx_url(&f->u, "127.0.0.1", tsrv_port(f->s), path);
    if (e) {
        fprintf(stderr, "    fixture: client or URL for %s: %s\n", path, snap_errmsg(e));
        hfx_stop(f);
        return -1;
    }
    return 0;
}

void hfx_stop(struct hfx *f)
{
    http_response_free(&f->rs);
    http_client_free(f->c);
    url_free(&f->u);
    if (f->s)
        tsrv_stop(f->s);
    *f = (struct hfx){0};
}

int hfx_progress_rising(void *ctx, uint64_t done)
{
    uint64_t *last = ctx;
    if (done <= *last)
        return -1;
    *last = done;
    return 0;
}
