/* bench-httpsrc.h -- a throttled loopback HTTP server inside the benchmark's own process.
 *
 * lib/net/httpd on 127.0.0.1:0 serving one file at one path (GET/HEAD, single ranges,
 * sendfile), every response delayed like a remote store by httpd_opts.throttle: the head after
 * the time to first byte, the body paced to the bandwidth.  A C server that answers in
 * microseconds, so a benchmark reading through the http:// store measures the client and not
 * the server (tests/tools/faultserver.py costs 0.3-0.6 ms of interpreter time per request).
 * One server at a time per process: stopping uses httpd_stop().
 */
#ifndef SNAP_BENCH_HTTPSRC_H
#define SNAP_BENCH_HTTPSRC_H

#include "net/httpd.h"

#include <stddef.h>
#include <stdint.h>

struct bench_httpsrc;

/* Serve `size` bytes of fd (not owned; kept open until stop) at /path with throttle th (copied;
 * NULL: no delays).  *url gets "http://127.0.0.1:PORT" (no path). */
int bench_httpsrc_start(int fd, uint64_t size, const char *path, const struct httpd_throttle *th,
                        struct bench_httpsrc **out, char *url, size_t url_cap);
/* Requests answered so far (any path, any status). */
uint64_t bench_httpsrc_requests(struct bench_httpsrc *s);
/* Stop the server, wait for its connections to end, free it.  NULL is a no-op. */
void bench_httpsrc_stop(struct bench_httpsrc *s);

#endif
