/* registry.c -- peer:{buildId} keys in Redis (see registry.h). */
#include "peer/registry.h"

#include "base/err.h"
#include "base/mem.h"
#include "net/resp.h"
#include "net/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct peer_registry {
    struct url url;           /* parsed as http(s)://, for its host, port, user, password */
    struct resp_target target;
    struct resp_conn *conn;   /* NULL until first use and after a failure */
    char name[URL_HOST_MAX + 48];
};

int peer_registry_open(const char *s, unsigned timeout_ms, struct peer_registry **out)
{
    bool tls = strncmp(s, "rediss://", 9) == 0;
    if (!tls && strncmp(s, "redis://", 8) != 0)
        return snap_fail(SNAP_EUSAGE, "a peer registry is redis://[USER:PASS@]HOST[:PORT][/DB] or rediss://...");
    size_t n = strlen(s) + 1;
    char *h = snap_malloc(n);
    struct peer_registry *r = snap_calloc(1, sizeof *r);
    if (!h || !r) {
        snap_free(h);
        snap_free(r);
        return snap_fail(SNAP_ENOMEM, "out of memory");
    }
    /* The http parser knows userinfo, IPv6 literals and ports; its messages would quote the
     * URL, password included, so they are replaced. */
    snprintf(h, n, "http%s", s + (tls ? 6 : 5));
    int err = url_parse(h, &r->url);
    snap_free(h);
    if (err) {
        snap_free(r);
        return snap_fail(SNAP_EUSAGE, "the peer registry URL is malformed (redis://[USER:PASS@]HOST[:PORT][/DB])");
    }
    const char *path = r->url.path[0] == '/' ? r->url.path + 1 : r->url.path;
    char *end = NULL;
    unsigned long db = path[0] ? strtoul(path, &end, 10) : 0;
    if ((path[0] && (*end || path[0] < '0' || path[0] > '9' || db > 1000000)) || r->url.query || r->url.fragment) {
        url_free(&r->url);
        snap_free(r);
        return snap_fail(SNAP_EUSAGE, "the peer registry URL: after HOST:PORT only /DB (a number) may follow");
    }
    struct resp_target *t = &r->target;
    t->host = r->url.host;
    t->port = r->url.port_given ? r->url.port : 6379;
    t->tls = tls;
    t->db = (unsigned)db;
    t->user = r->url.user && r->url.user[0] ? r->url.user : NULL;
    t->password = r->url.password ? r->url.password : getenv(PEER_REGISTRY_ENV);
    if (t->password && !t->password[0])
        t->password = NULL;
    t->timeout_ms = timeout_ms ? timeout_ms : PEER_REGISTRY_DEFAULT_TIMEOUT_MS;
    snprintf(r->name, sizeof r->name, r->url.ipv6 ? "%s://[%s]:%u/%u" : "%s://%s:%u/%u", tls ? "rediss" : "redis",
             t->host, (unsigned)t->port, t->db);
    *out = r;
    return 0;
}

void peer_registry_close(struct peer_registry *r)
{
    if (!r)
        return;
    resp_close(r->conn);
    url_free(&r->url);
    snap_free(r);
}

const char *peer_registry_name(const struct peer_registry *r)
{
    return r->name;
}

/* One command on a connection made as needed; any failure drops the connection.  An error
 * reply becomes a failure naming the registry. */
static int reg_command(struct peer_registry *r, int argc, const char *const *argv, struct resp_reply *rep)
{
    int err = 0;
    if (!r->conn && (err = resp_connect(&r->target, &r->conn)) != 0)
        return snap_fail_ctx(err, "peer registry %s", r->name);
    if ((err = resp_command(r->conn, argc, argv, rep)) != 0) {
        resp_close(r->conn);
        r->conn = NULL;
        return snap_fail_ctx(err, "peer registry %s: %s", r->name, argv[0]);
    }
    if (rep->type == RESP_ERROR) {
        bool auth = (rep->len >= 6 && memcmp(rep->str, "NOAUTH", 6) == 0) ||
                    (rep->len >= 9 && memcmp(rep->str, "WRONGPASS", 9) == 0);
        int n = rep->len > 120 ? 120 : (int)rep->len;
        for (int i = 0; i < n; i++)
            if (rep->str[i] < 0x20 || rep->str[i] >= 0x7f)
                n = i;
        return snap_fail(auth ? SNAP_EAUTH : SNAP_EPROTO, "peer registry %s: %s refused: %.*s%s", r->name, argv[0], n,
                         rep->str, auth ? " (give the password in the URL or " PEER_REGISTRY_ENV ")" : "");
    }
    return 0;
}

/* CMD peer:{build} [extra...] (up to 3 extra arguments, NULL-terminated early). */
static int reg_build_command(struct peer_registry *r, const char *cmd, const char *build, const char *x1,
                             const char *x2, const char *x3, struct resp_reply *rep)
{
    char key[128];
    if ((size_t)snprintf(key, sizeof key, PEER_REGISTRY_PREFIX "%s", build) >= sizeof key)
        return snap_fail(SNAP_EUSAGE, "peer registry: build id '%.64s...' too long", build);
    const char *argv[] = {cmd, key, x1, x2, x3};
    int argc = 2;
    while (argc < 5 && argv[argc])
        argc++;
    return reg_command(r, argc, argv, rep);
}

static int reg_unexpected(struct peer_registry *r, const char *cmd, const char *build)
{
    return snap_fail(SNAP_EPROTO, "peer registry %s: %s " PEER_REGISTRY_PREFIX "%s: an unexpected reply", r->name,
                     cmd, build);
}

int peer_registry_set(struct peer_registry *r, const char *build, const char *addr, unsigned ttl_s)
{
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%u", ttl_s ? ttl_s : 1);
    struct resp_reply rep;
    int err = reg_build_command(r, "SET", build, addr, "EX", ttl, &rep);
    return err ? err : rep.type == RESP_SIMPLE ? 0 : reg_unexpected(r, "SET", build);
}

/* Bytes a HOST:PORT (or peer://HOST:PORT, [v6]:PORT) may hold. */
static bool reg_addr_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              strchr(".-:[]/_", s[i])) || s[i] == '\0')
            return false;
    return true;
}

int peer_registry_get(struct peer_registry *r, const char *build, char *addr, size_t cap, bool *found)
{
    struct resp_reply rep;
    *found = false;
    int err = reg_build_command(r, "GET", build, NULL, NULL, NULL, &rep);
    if (err || rep.type == RESP_NIL)
        return err;
    if (rep.type != RESP_BULK)
        return reg_unexpected(r, "GET", build);
    if (rep.len >= cap || rep.len >= PEER_REGISTRY_ADDR_MAX || !reg_addr_ok(rep.str, rep.len))
        return snap_fail(SNAP_EFORMAT, "peer registry %s: " PEER_REGISTRY_PREFIX "%s holds %zu bytes that are not a HOST:PORT",
                         r->name, build, rep.len);
    memcpy(addr, rep.str, rep.len);
    addr[rep.len] = '\0';
    *found = true;
    return 0;
}

int peer_registry_del(struct peer_registry *r, const char *build)
{
    struct resp_reply rep;
    int err = reg_build_command(r, "DEL", build, NULL, NULL, NULL, &rep);
    return err ? err : rep.type == RESP_INT ? 0 : reg_unexpected(r, "DEL", build);
}

int peer_registry_withdraw(const char *url, const char *build)
{
    struct peer_registry *r;
    int err = peer_registry_open(url, 0, &r);
    if (!err)
        err = peer_registry_del(r, build);
    peer_registry_close(r);
    return err;
}

int peer_registry_ttl(struct peer_registry *r, const char *build, int64_t *ttl)
{
    struct resp_reply rep;
    int err = reg_build_command(r, "TTL", build, NULL, NULL, NULL, &rep);
    if (!err && rep.type != RESP_INT)
        err = reg_unexpected(r, "TTL", build);
    if (!err)
        *ttl = rep.integer;
    return err;
}
