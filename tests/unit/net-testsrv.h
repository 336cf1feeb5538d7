/* net-testsrv.h -- an in-process HTTP test server for the net tests (curl's tests/server idea).
 *
 * A thread accepts on addr:0 (loopback only) and serves each connection in its own thread:
 * read one request (head, then a Content-Length or chunked body), record its exact bytes,
 * answer with the next scripted reply -- exact bytes, so tests can send malformed, truncated or
 * lying responses.  Replies are taken in order across all connections. */
#ifndef SNAP_TEST_NET_SERVER_H
#define SNAP_TEST_NET_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tsrv_reply {
    const char *bytes;  /* sent as-is after reading a request; NULL = send nothing */
    size_t len;         /* 0 = strlen(bytes) */
    unsigned delay_ms;  /* wait before sending */
    unsigned stall_ms;  /* after sending, wait this long before doing anything else */
    bool close;         /* close the connection after the reply */
};

struct tsrv;

/* Start on addr ("127.0.0.1", "127.0.0.2", "::1") with a script of n replies; when cycle is
 * set the script repeats, else a request past its end gets the connection closed. */
struct tsrv *tsrv_start(const char *addr, const struct tsrv_reply *replies, size_t n, bool cycle);
uint16_t tsrv_port(const struct tsrv *s);
unsigned tsrv_conns(struct tsrv *s);
unsigned tsrv_nreq(struct tsrv *s);
/* The i-th request received, exactly (NUL-terminated copy kept by the server). */
const char *tsrv_req(struct tsrv *s, unsigned i, size_t *len);
/* Stop: close the listener and every connection, join the threads, free. */
void tsrv_stop(struct tsrv *s);

#endif
