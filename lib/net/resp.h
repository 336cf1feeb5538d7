/* resp.h -- a minimal Redis client: RESP2 over a struct sock (and TLS for rediss://).
 *
 * Enough for a key/value registry: connect (bounded), AUTH, SELECT, then one command at a time
 * (SET key val EX ttl, GET, DEL, TTL).  Every reply is parsed from a fixed buffer
 * (RESP_BUF_MAX bytes) with every length checked before use: a reply that does not fit, a
 * negative or oversized length, a number that overflows or a line without CRLF is SNAP_EPROTO
 * (or SNAP_ETOOBIG), never a read past the buffer.  Every wait is bounded by the connection's
 * timeout (the whole command, connect included, must finish within it), so a Redis that is
 * down, black-holed or stopped costs at most that long.  Not thread safe: one caller at a time.
 */
#ifndef SNAP_NET_RESP_H
#define SNAP_NET_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/sock.h"

#define RESP_BUF_MAX 4096    /* the largest reply we read (a peer address is a few dozen bytes) */
#define RESP_ARGS_MAX 8
#define RESP_ARG_MAX 512     /* one argument of a command */
#define RESP_DEPTH_MAX 4     /* nested arrays in a reply */
#define RESP_ARRAY_MAX 64    /* elements of one array */

enum resp_type {
    RESP_SIMPLE = '+', /* str/len: the status ("OK") */
    RESP_ERROR = '-',  /* str/len: the error line ("WRONGPASS ...") */
    RESP_INT = ':',    /* integer */
    RESP_BULK = '$',   /* str/len: the bytes (not NUL-terminated) */
    RESP_NIL = 'n',    /* a null bulk string or null array ("$-1", "*-1") */
    RESP_ARRAY = '*',  /* integer: the count (the elements are checked, not kept) */
};

struct resp_reply {
    enum resp_type type;
    int64_t integer;
    const char *str; /* points into the parsed buffer */
    size_t len;
};

/* Parse one reply at buf[0..len).  0 with *used bytes consumed; SNAP_ESHORT when more bytes are
 * needed; SNAP_EPROTO when the bytes are not RESP2 (or break a limit above). */
int resp_parse(const char *buf, size_t len, struct resp_reply *r, size_t *used);

struct resp_target {
    const char *host;
    uint16_t port;
    bool tls;            /* rediss:// (certificate checked with the system CAs / SSL_CERT_FILE) */
    const char *user;    /* NULL: AUTH with the password alone */
    const char *password;/* NULL: no AUTH */
    unsigned db;         /* SELECT when not 0 */
    unsigned timeout_ms; /* bound of connect+handshake+AUTH+SELECT, and of each command */
};

struct resp_conn;

/* Connect, TLS, AUTH and SELECT as t says.  Errors name host:port and what to do; a refused
 * AUTH is SNAP_EAUTH (the password never appears in a message). */
int resp_connect(const struct resp_target *t, struct resp_conn **out);
/* Send one command (argv[0..argc), binary-safe) and read its reply into *r (valid until the
 * next command).  An error reply is returned as a reply (type RESP_ERROR), not as a failure;
 * failures are the connection's (SNAP_ENET, SNAP_ETIMEOUT, SNAP_EPROTO...), after which the
 * connection must be closed. */
int resp_command(struct resp_conn *c, int argc, const char *const *argv, struct resp_reply *r);
void resp_close(struct resp_conn *c);

#endif
