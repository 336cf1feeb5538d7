/* resp.c -- RESP2 replies parsed in place, commands over a bounded socket (see resp.h). */
#include "net/resp.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "net/tls.h"

#include <stdio.h>
#include <string.h>

/* The end of the line starting at buf[0] (the type byte): *eol indexes its '\r'. */
static int resp_line(const char *buf, size_t len, size_t *eol)
{
    size_t lim = len < RESP_BUF_MAX ? len : RESP_BUF_MAX;
    for (size_t i = 1; i < lim; i++) {
        if (buf[i] == '\n')
            return SNAP_EPROTO;
        if (buf[i] != '\r')
            continue;
        if (i + 1 >= len)
            return SNAP_ESHORT;
        if (buf[i + 1] != '\n')
            return SNAP_EPROTO;
        *eol = i;
        return 0;
    }
    return len >= RESP_BUF_MAX ? SNAP_EPROTO : SNAP_ESHORT;
}

/* A decimal int64 in s[0..n): an optional '-', 1 to 19 digits, no overflow. */
static int resp_int(const char *s, size_t n, int64_t *out)
{
    bool neg = n && s[0] == '-';
    size_t i = neg ? 1 : 0;
    if (n == i || n - i > 19)
        return SNAP_EPROTO;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return SNAP_EPROTO;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return SNAP_EPROTO;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

static int resp_parse_at(const char *buf, size_t len, unsigned depth, struct resp_reply *r, size_t *used)
{
    if (len == 0)
        return SNAP_ESHORT;
    size_t eol = 0;
    int err = resp_line(buf, len, &eol);
    if (err == SNAP_ESHORT && !memchr("+-:$*", buf[0], 5))
        err = SNAP_EPROTO;
    if (err)
        return err;
    memset(r, 0, sizeof *r);
    r->type = (enum resp_type)buf[0];
    size_t next = eol + 2;
    switch (buf[0]) {
    case '+':
    case '-':
        r->str = buf + 1;
        r->len = eol - 1;
        break;
    case ':':
        if ((err = resp_int(buf + 1, eol - 1, &r->integer)) != 0)
            return err;
        break;
    case '$':
        if ((err = resp_int(buf + 1, eol - 1, &r->integer)) != 0)
            return err;
        if (r->integer == -1) {
            r->type = RESP_NIL;
            break;
        }
        if (r->integer < 0 || r->integer > RESP_BUF_MAX)
            return SNAP_EPROTO;
        r->len = (size_t)r->integer;
        if (len - next < r->len + 2)
            return SNAP_ESHORT;
        if (buf[next + r->len] != '\r' || buf[next + r->len + 1] != '\n')
            return SNAP_EPROTO;
        r->str = buf + next;
        next += r->len + 2;
        break;
    case '*':
        if ((err = resp_int(buf + 1, eol - 1, &r->integer)) != 0)
            return err;
        if (r->integer == -1) {
            r->type = RESP_NIL;
            break;
        }
        if (r->integer < 0 || r->integer > RESP_ARRAY_MAX || depth >= RESP_DEPTH_MAX)
            return SNAP_EPROTO;
        for (int64_t i = 0; i < r->integer; i++) {
            struct resp_reply e;
            size_t u = 0;
            if ((err = resp_parse_at(buf + next, len - next, depth + 1, &e, &u)) != 0)
                return err;
            next += u;
        }
        break;
    default: return SNAP_EPROTO;
    }
    *used = next;
    return 0;
}

int resp_parse(const char *buf, size_t len, struct resp_reply *r, size_t *used)
{
    return resp_parse_at(buf, len, 0, r, used);
}

struct resp_conn {
    struct sock s;
    struct tls_conn *tls;
    unsigned timeout_ms;
    size_t have, used; /* bytes in buf; bytes of it the last reply took */
    char buf[RESP_BUF_MAX];
};

static int resp_write(struct resp_conn *c, const void *p, size_t n)
{
    return c->tls ? tls_write(c->tls, p, n) : sock_write(&c->s, p, n);
}

static int resp_read_more(struct resp_conn *c)
{
    if (c->have == sizeof c->buf)
        return snap_fail(SNAP_ETOOBIG, "redis %s: a reply larger than %d bytes", c->s.peer, RESP_BUF_MAX);
    size_t got = 0;
    int err = c->tls ? tls_read(c->tls, c->buf + c->have, sizeof c->buf - c->have, &got)
                     : sock_read(&c->s, c->buf + c->have, sizeof c->buf - c->have, &got);
    if (err)
        return err;
    if (got == 0)
        return snap_fail(SNAP_ENET, "redis %s closed the connection", c->s.peer);
    c->have += got;
    return 0;
}

/* "*N\r\n" then "$len\r\narg\r\n" per argument, into buf. */
static int resp_encode(int argc, const char *const *argv, char *buf, size_t cap, size_t *n)
{
    if (argc < 1 || argc > RESP_ARGS_MAX)
        return snap_fail(SNAP_EINTERNAL, "redis: %d arguments", argc);
    size_t o = (size_t)snprintf(buf, cap, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]);
        if (l > RESP_ARG_MAX)
            return snap_fail(SNAP_ETOOBIG, "redis: an argument of %zu bytes (at most %d)", l, RESP_ARG_MAX);
        o += (size_t)snprintf(buf + o, cap - o, "$%zu\r\n", l);
        memcpy(buf + o, argv[i], l);
        memcpy(buf + o + l, "\r\n", 2);
        o += l + 2;
    }
    *n = o;
    return 0;
}

int resp_command(struct resp_conn *c, int argc, const char *const *argv, struct resp_reply *r)
{
    char req[RESP_ARGS_MAX * (RESP_ARG_MAX + 32) + 16];
    size_t n = 0;
    int err = resp_encode(argc, argv, req, sizeof req, &n);
    if (err)
        return err;
    memmove(c->buf, c->buf + c->used, c->have - c->used); /* nothing, unless the server sent extra */
    c->have -= c->used;
    c->used = 0;
    c->s.idle_ms = c->timeout_ms;
    c->s.deadline_ns = snap_now_ns() + (uint64_t)c->timeout_ms * 1000000;
    if ((err = resp_write(c, req, n)) != 0)
        return err;
    while ((err = resp_parse(c->buf, c->have, r, &c->used)) == SNAP_ESHORT)
        if ((err = resp_read_more(c)) != 0)
            return err;
    if (err)
        return snap_fail(SNAP_EPROTO, "redis %s: a reply that is not RESP2 (is this a Redis server?)", c->s.peer);
    return 0;
}

/* Copy at most cap-1 printable bytes of an error reply, for a message. */
static const char *resp_printable(const struct resp_reply *r, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < r->len && n + 1 < cap; i++)
        out[n++] = r->str[i] >= 0x20 && r->str[i] < 0x7f ? r->str[i] : '?';
    out[n] = '\0';
    return out;
}

/* Run a setup command that must answer +OK. */
static int resp_expect_ok(struct resp_conn *c, int argc, const char *const *argv, const char *what)
{
    struct resp_reply r;
    int err = resp_command(c, argc, argv, &r);
    if (err)
        return err;
    if (r.type == RESP_SIMPLE && r.len == 2 && memcmp(r.str, "OK", 2) == 0)
        return 0;
    char msg[160] = "an unexpected reply";
    if (r.type == RESP_ERROR)
        resp_printable(&r, msg, sizeof msg);
    bool auth = r.type == RESP_ERROR && (strncmp(msg, "WRONGPASS", 9) == 0 || strncmp(msg, "NOAUTH", 6) == 0 ||
                                         strstr(msg, "password") != NULL);
    return snap_fail(auth ? SNAP_EAUTH : SNAP_EPROTO, "redis %s: %s refused: %s", c->s.peer, what, msg);
}

int resp_connect(const struct resp_target *t, struct resp_conn **out)
{
    struct resp_conn *c = snap_calloc(1, sizeof *c);
    if (!c)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    sock_init(&c->s);
    c->timeout_ms = t->timeout_ms ? t->timeout_ms : 1000;
    c->s.idle_ms = c->timeout_ms;
    c->s.deadline_ns = snap_now_ns() + (uint64_t)c->timeout_ms * 1000000;
    int err = sock_connect(&c->s, t->host, t->port, c->timeout_ms);
    struct tls_config *cfg = NULL;
    if (!err && t->tls && (err = tls_config_system(&cfg)) == 0)
        err = tls_connect(cfg, &c->s, t->host, c->timeout_ms, &c->tls);
    if (!err && t->password) {
        const char *a3[] = {"AUTH", t->user ? t->user : t->password, t->password};
        err = resp_expect_ok(c, t->user ? 3 : 2, a3, "AUTH");
    }
    if (!err && t->db) {
        char db[16];
        snprintf(db, sizeof db, "%u", t->db);
        const char *a[] = {"SELECT", db};
        err = resp_expect_ok(c, 2, a, "SELECT");
    }
    if (err) {
        resp_close(c);
        return err;
    }
    *out = c;
    return 0;
}

void resp_close(struct resp_conn *c)
{
    if (!c)
        return;
    if (c->tls)
        tls_close(c->tls);
    sock_close(&c->s);
    snap_free(c);
}
