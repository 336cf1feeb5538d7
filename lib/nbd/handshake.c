/* handshake.c -- fixed newstyle negotiation: options in, replies out, until GO or EXPORT_NAME.
 *
 * Every option's length is checked against what the option can hold before its bytes are used;
 * an option payload over NBD_OPT_MAX is read off the wire and refused with ERR_TOO_BIG (or the
 * connection dropped past 16 MiB), never buffered.
 */
#include "nbd/exports.h"
#include "nbd/internal.h"
#include "nbd/proto.h"

#include "base/bytes.h"
#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int nbd_recv(struct nbd_conn *c, void *buf, size_t n)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(c->rfd, p + done, n - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return snap_fail(SNAP_ETIMEOUT, "%s: nothing received for %u ms in the middle of a request",
                             c->peer, c->io_timeout_ms);
        if (r < 0)
            return snap_fail_errno("%s: read", c->peer);
        if (r == 0)
            return snap_fail(SNAP_ESHORT, "%s: unexpected end of data after %zu of %zu bytes", c->peer,
                             done, n);
        done += (size_t)r;
        if (done < n && c->deadline_ns && snap_now_ns() > c->deadline_ns)
            return snap_fail(SNAP_ETIMEOUT, "%s: too slow: %zu of %zu bytes by the deadline", c->peer,
                             done, n);
    }
    return 0;
}

int nbd_send(struct nbd_conn *c, const void *buf, size_t n)
{
    return snap_write_full(c->wfd, buf, n, c->peer);
}

int nbd_discard(struct nbd_conn *c, uint64_t n)
{
    uint8_t tmp[16384];
    while (n > 0) {
        size_t step = n < sizeof tmp ? (size_t)n : sizeof tmp;
        int err = nbd_recv(c, tmp, step);
        if (err)
            return err;
        n -= step;
    }
    return 0;
}

uint16_t nbd_transmission_flags(const struct nbd_conn *c)
{
    const struct nbd_export *e = c->exp;
    uint16_t f = NBD_FLAG_HAS_FLAGS;
    if (e->read_only)
        f |= NBD_FLAG_READ_ONLY;
    if (e->ops->flush)
        f |= NBD_FLAG_SEND_FLUSH;
    if (!e->read_only) {
        f |= NBD_FLAG_SEND_FUA;
        if (e->ops->trim)
            f |= NBD_FLAG_SEND_TRIM;
        if (e->ops->zero)
            f |= NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
    }
    if (c->structured)
        f |= NBD_FLAG_SEND_DF;
    if (e->multi_conn)
        f |= NBD_FLAG_CAN_MULTI_CONN;
    if (e->ops->cache)
        f |= NBD_FLAG_SEND_CACHE;
    return f;
}

static int opt_reply(struct nbd_conn *c, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
    uint8_t h[20];
    put_be64(h, NBD_REP_MAGIC);
    put_be32(h + 8, opt);
    put_be32(h + 12, type);
    put_be32(h + 16, len);
    int err = nbd_send(c, h, sizeof h);
    if (!err && len)
        err = nbd_send(c, data, len);
    return err;
}

static int opt_error(struct nbd_conn *c, uint32_t opt, uint32_t type, const char *msg)
{
    snap_debug("nbd %s: option %u refused: %s", c->peer, opt, msg);
    return opt_reply(c, opt, type, msg, (uint32_t)strlen(msg));
}

/* The export called name[len] (a reference of that kind taken when it is a registry's: give it
 * back with drop()), or NULL when there is none. */
static const struct nbd_export *lookup(struct nbd_conn *c, const uint8_t *name, uint32_t len, enum nbd_ref kind,
                                       struct nbd_entry **ent)
{
    *ent = NULL;
    if (c->reg) {
        *ent = nbd_exports_get(c->reg, (const char *)name, len, kind);
        return *ent ? &(*ent)->exp : NULL;
    }
    const char *want = c->only->name ? c->only->name : "";
    return strlen(want) == len && memcmp(want, name, len) == 0 ? c->only : NULL;
}

static void drop(struct nbd_conn *c, struct nbd_entry *ent, enum nbd_ref kind)
{
    if (ent)
        nbd_exports_put(c->reg, ent, kind);
}

/* The refusal of an unknown name, saying which (printable bytes only, cut at 200). */
static int unknown_export(struct nbd_conn *c, uint32_t opt, const uint8_t *name, uint32_t len)
{
    char msg[300];
    int n = snprintf(msg, sizeof msg, "no export named '");
    for (uint32_t i = 0; i < len && i < 200; i++)
        msg[n++] = name[i] >= 0x20 && name[i] < 0x7f ? (char)name[i] : '?';
    snprintf(msg + n, sizeof msg - (size_t)n, "%s' on this server (NBD_OPT_LIST lists them)", len > 200 ? "..." : "");
    return opt_error(c, opt, NBD_REP_ERR_UNKNOWN, msg);
}

/* The connection enters transmission on e (ent: its registry entry, a CONN reference). */
static void choose(struct nbd_conn *c, const struct nbd_export *e, struct nbd_entry *ent)
{
    c->exp = e;
    if (ent) {
        c->entry = ent;
        c->stats = &ent->stats;
    }
}

static int send_info(struct nbd_conn *c, uint32_t opt, uint16_t type)
{
    uint8_t b[4 + 4096];
    const struct nbd_export *e = c->exp;
    size_t n = 2;
    put_be16(b, type);
    switch (type) {
    case NBD_INFO_EXPORT:
        put_be64(b + 2, e->size);
        put_be16(b + 10, nbd_transmission_flags(c));
        n = 12;
        break;
    case NBD_INFO_NAME:
    case NBD_INFO_DESCRIPTION: {
        const char *s = type == NBD_INFO_NAME ? (e->name ? e->name : "") : e->description;
        if (!s)
            return 0;
        size_t l = strnlen(s, 4096);
        memcpy(b + 2, s, l);
        n = 2 + l;
        break;
    }
    case NBD_INFO_BLOCK_SIZE:
        put_be32(b + 2, c->align);
        put_be32(b + 6, e->pref_block ? e->pref_block : 4096);
        put_be32(b + 10, NBD_MAX_PAYLOAD);
        n = 14;
        break;
    default:
        return 0; /* unknown info requests are ignored, as the spec asks */
    }
    return opt_reply(c, opt, NBD_REP_INFO, b, (uint32_t)n);
}

/* A client that asks for block sizes is held to the export's minimum; one that does not may
 * assume 512-byte sectors (the NBD default), which are then served by read-modify-write. */
static void set_align(struct nbd_conn *c, bool asked)
{
    uint32_t mb = c->exp->min_block ? c->exp->min_block : 1;
    c->asked_block_size = asked;
    c->align = asked || mb < NBD_DEFAULT_ALIGN ? mb : NBD_DEFAULT_ALIGN;
}

/* INFO and GO: u32 namelen, name, u16 nrequests, nrequests x u16. */
static int opt_info_go(struct nbd_conn *c, uint32_t opt, const uint8_t *d, uint32_t len, bool *go)
{
    if (len < 6)
        return opt_error(c, opt, NBD_REP_ERR_INVALID, "option too short");
    uint32_t nlen = get_be32(d);
    if (nlen > len - 6)
        return opt_error(c, opt, NBD_REP_ERR_INVALID, "export name length exceeds the option");
    uint16_t nreq = get_be16(d + 4 + nlen);
    if ((uint64_t)len != 6 + (uint64_t)nlen + 2u * nreq)
        return opt_error(c, opt, NBD_REP_ERR_INVALID, "option length does not match its info requests");
    enum nbd_ref kind = opt == NBD_OPT_GO ? NBD_REF_CONN : NBD_REF_PEEK;
    struct nbd_entry *ent;
    const struct nbd_export *e = lookup(c, d + 4, nlen, kind, &ent);
    if (!e)
        return unknown_export(c, opt, d + 4, nlen);
    if (opt == NBD_OPT_GO && c->admit && !c->admit()) {
        drop(c, ent, kind);
        int err = opt_error(c, opt, NBD_REP_ERR_POLICY, "too many clients: try again later");
        return err ? err : SNAP_ECANCELED;
    }
    const struct nbd_export *before = c->exp;
    c->exp = e; /* what the replies describe */
    bool asked = false;
    for (uint16_t i = 0; i < nreq; i++)
        asked |= get_be16(d + 6 + nlen + 2u * i) == NBD_INFO_BLOCK_SIZE;
    set_align(c, asked);
    int err = send_info(c, opt, NBD_INFO_EXPORT);
    for (uint16_t i = 0; !err && i < nreq; i++) {
        uint16_t t = get_be16(d + 6 + nlen + 2u * i);
        if (t != NBD_INFO_EXPORT && t != NBD_INFO_BLOCK_SIZE)
            err = send_info(c, opt, t);
    }
    if (!err) /* always: we answer the client's alignment question even unasked */
        err = send_info(c, opt, NBD_INFO_BLOCK_SIZE);
    if (!err)
        err = opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
    if (opt == NBD_OPT_GO) {
        choose(c, e, ent); /* held until the connection ends, even if the ACK was not sent */
        *go = !err;
    } else {
        c->exp = before;
        drop(c, ent, kind);
    }
    return err;
}

/* LIST_META_CONTEXT / SET_META_CONTEXT: u32 namelen, name, u32 nqueries, queries (u32 len, bytes). */
static int opt_meta(struct nbd_conn *c, uint32_t opt, const uint8_t *d, uint32_t len)
{
    static const char alloc[] = "base:allocation";
    if (!c->structured)
        return opt_error(c, opt, NBD_REP_ERR_INVALID, "meta contexts need structured replies first");
    if (len < 8)
        return opt_error(c, opt, NBD_REP_ERR_INVALID, "option too short");
    uint32_t nlen = get_be32(d);
    if (nlen > len - 8)
        return opt_error(c, opt, NBD_REP_ERR_INVALID, "export name length exceeds the option");
    struct nbd_entry *ent;
    bool known = lookup(c, d + 4, nlen, NBD_REF_PEEK, &ent) != NULL;
    drop(c, ent, NBD_REF_PEEK);
    if (!known)
        return unknown_export(c, opt, d + 4, nlen);
    uint32_t nq = get_be32(d + 4 + nlen);
    uint32_t pos = 8 + nlen;
    bool want_alloc = (nq == 0 && opt == NBD_OPT_LIST_META_CONTEXT);
    for (uint32_t i = 0; i < nq; i++) {
        if (len - pos < 4)
            return opt_error(c, opt, NBD_REP_ERR_INVALID, "query count exceeds the option");
        uint32_t ql = get_be32(d + pos);
        pos += 4;
        if (ql > len - pos)
            return opt_error(c, opt, NBD_REP_ERR_INVALID, "query length exceeds the option");
        const char *q = (const char *)d + pos;
        if ((ql == sizeof alloc - 1 && memcmp(q, alloc, ql) == 0) ||
            (opt == NBD_OPT_LIST_META_CONTEXT && ql == 5 && memcmp(q, "base:", 5) == 0))
            want_alloc = true;
        pos += ql;
    }
    if (pos != len)
        return opt_error(c, opt, NBD_REP_ERR_INVALID, "trailing bytes after the queries");
    if (opt == NBD_OPT_SET_META_CONTEXT)
        c->meta_alloc = want_alloc;
    int err = 0;
    if (want_alloc) {
        uint8_t b[4 + sizeof alloc];
        put_be32(b, NBD_META_ALLOC_ID);
        memcpy(b + 4, alloc, sizeof alloc - 1);
        err = opt_reply(c, opt, NBD_REP_META_CONTEXT, b, 4 + sizeof alloc - 1);
    }
    return err ? err : opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
}

/* One NBD_REP_SERVER reply naming an export. */
static int list_one(struct nbd_conn *c, const char *name)
{
    size_t nl = strnlen(name, NBD_NAME_MAX);
    uint8_t b[4 + NBD_NAME_MAX];
    put_be32(b, (uint32_t)nl);
    memcpy(b + 4, name, nl);
    return opt_reply(c, NBD_OPT_LIST, NBD_REP_SERVER, b, (uint32_t)(4 + nl));
}

static int opt_list(struct nbd_conn *c, uint32_t len)
{
    if (len != 0)
        return opt_error(c, NBD_OPT_LIST, NBD_REP_ERR_INVALID, "LIST takes no data");
    int err = 0;
    if (!c->reg) {
        err = list_one(c, c->only->name ? c->only->name : "");
    } else {
        struct nbd_entry **v;
        size_t n;
        if ((err = nbd_exports_snapshot(c->reg, &v, &n)) != 0)
            return opt_error(c, NBD_OPT_LIST, NBD_REP_ERR_SHUTDOWN, "out of memory");
        for (size_t i = 0; !err && i < n; i++)
            err = list_one(c, v[i]->exp.name);
        nbd_exports_release(c->reg, v, n);
    }
    return err ? err : opt_reply(c, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
}

int nbd_handshake(struct nbd_conn *c)
{
    uint8_t h[18];
    put_be64(h, NBD_MAGIC);
    put_be64(h + 8, NBD_IHAVEOPT);
    put_be16(h + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    int err = nbd_send(c, h, sizeof h);
    if (err)
        return err;
    uint8_t cf[4];
    if ((err = nbd_recv(c, cf, 4)))
        return err;
    uint32_t cflags = get_be32(cf);
    if (cflags & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
        return snap_fail(SNAP_EPROTO, "%s: unknown client flags 0x%x", c->peer, cflags);
    bool no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;

    uint8_t *data = snap_malloc(NBD_OPT_MAX);
    if (!data)
        return snap_fail(SNAP_ENOMEM, "%s: out of memory", c->peer);
    for (;;) {
        uint8_t oh[16];
        if ((err = nbd_recv(c, oh, sizeof oh)))
            break;
        if (get_be64(oh) != NBD_IHAVEOPT) {
            err = snap_fail(SNAP_EPROTO, "%s: bad option magic", c->peer);
            break;
        }
        uint32_t opt = get_be32(oh + 8), len = get_be32(oh + 12);
        if (len > NBD_OPT_MAX) {
            /* EXPORT_NAME has no reply for errors: the only answer is to hang up. */
            if (opt == NBD_OPT_EXPORT_NAME || len > (16u << 20)) {
                err = snap_fail(SNAP_EPROTO, "%s: option %u of %u bytes", c->peer, opt, len);
                break;
            }
            if (!(err = nbd_discard(c, len)))
                err = opt_error(c, opt, NBD_REP_ERR_TOO_BIG, "option too large");
            if (err)
                break;
            continue;
        }
        if ((err = nbd_recv(c, data, len)))
            break;
        bool go = false;
        switch (opt) {
        case NBD_OPT_EXPORT_NAME: {
            /* No way to say no here but to hang up. */
            struct nbd_entry *ent;
            const struct nbd_export *e = lookup(c, data, len, NBD_REF_CONN, &ent);
            if (!e) {
                err = snap_fail(SNAP_ENOTFOUND, "%s: client asked for an unknown export", c->peer);
                break;
            }
            if (c->admit && !c->admit()) {
                drop(c, ent, NBD_REF_CONN);
                err = SNAP_ECANCELED;
                break;
            }
            choose(c, e, ent);
            set_align(c, false);
            uint8_t r[10 + 124] = {0};
            put_be64(r, c->exp->size);
            put_be16(r + 8, nbd_transmission_flags(c));
            err = nbd_send(c, r, no_zeroes ? 10 : sizeof r);
            go = true;
            break;
        }
        case NBD_OPT_ABORT:
            opt_reply(c, opt, NBD_REP_ACK, NULL, 0); /* best effort: the client may be gone */
            err = SNAP_ECANCELED;
            snap_fail(err, "%s: client aborted the handshake", c->peer);
            break;
        case NBD_OPT_LIST:
            err = opt_list(c, len);
            break;
        case NBD_OPT_INFO:
        case NBD_OPT_GO:
            err = opt_info_go(c, opt, data, len, &go);
            break;
        case NBD_OPT_STRUCTURED_REPLY:
            if (len != 0) {
                err = opt_error(c, opt, NBD_REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
                break;
            }
            c->structured = true;
            err = opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
            break;
        case NBD_OPT_LIST_META_CONTEXT:
        case NBD_OPT_SET_META_CONTEXT:
            err = opt_meta(c, opt, data, len);
            break;
        case NBD_OPT_STARTTLS:
            err = opt_error(c, opt, NBD_REP_ERR_UNSUP, "TLS is not offered on this export");
            break;
        default: /* EXTENDED_HEADERS and anything unknown: the client falls back */
            err = opt_error(c, opt, NBD_REP_ERR_UNSUP, "option not supported");
            break;
        }
        if (err || go) {
            if (c->exp)
                c->tflags = nbd_transmission_flags(c);
            break;
        }
    }
    snap_free(data);
    return err;
}
