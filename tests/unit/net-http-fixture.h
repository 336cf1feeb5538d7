/* net-http-fixture.h -- the fixture of the HTTP client tests: a scripted loopback server
 * (net-testsrv.h), a client and a URL on it and a response, set up and torn down in one call. */
#ifndef SNAP_TEST_NET_HTTP_FIXTURE_H
#define SNAP_TEST_NET_HTTP_FIXTURE_H

#include "net-testsrv.h"
#include "net/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hfx {
    struct tsrv *s;         /* the server, on 127.0.0.1 */
    struct http_client *c;  /* a client made with the given options */
    struct url u;           /* http://127.0.0.1:PORT/PATH on the server */
    struct http_response rs;
};

/* Start the server with the n replies r (repeated when cycle, as tsrv_start), the client with
 * o (NULL: the defaults) and the URL of path ("/..."); rs is ready for use.  0, or -1 with what
 * failed on stderr (nothing is left to stop). */
int hfx_start(struct hfx *f, const struct tsrv_reply *r, size_t n, bool cycle, const struct http_opts *o,
              const char *path);
/* Free the response, the client and the URL and stop the server. */
void hfx_stop(struct hfx *f);

/* u = http://HOST:PORT/PATH; url_parse's result. */
int hfx_url(struct url *u, const char *host, uint16_t port, const char *path);
/* A progress callback that fails unless *(uint64_t *)ctx grows with every call. */
int hfx_progress_rising(void *ctx, uint64_t done);

#endif
