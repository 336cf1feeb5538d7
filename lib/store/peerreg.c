/* peerreg.c -- the front of a tiered store whose peer is found per build in the peer registry.
 *
 * For a key {uuid}/{file}, the build's peer is looked up once (GET peer:{uuid}, bounded by the
 * registry timeout) and remembered for the life of the store: a peer:// store for the address
 * (one per address, shared by its builds), or "none".  None is the answer when the key is
 * missing, when Redis fails or is slow, when the value is malformed, and when its address is
 * refused by the allowlist (warned, never dialed): reads of that build then go to storage for
 * good (use_storage, the same answer as a 410).  The lookups are serialized by their own mutex,
 * so readers of builds already resolved never wait for Redis; the tables are fixed arrays.
 */
#include "store/peer_client.h"

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/util.h"
#include "peer/registry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define PR_BUILDS 256
#define PR_PEERS 16
#define PR_ALLOW_MAX 64

struct pr_build {
    char id[SNAP_UUID_STRLEN + 1];
    int peer; /* index in peers, -1 = storage */
};

struct preg_store {
    struct store base;
    struct peer_registry *reg;
    struct store_opts po; /* of the peer stores */
    struct httpd_cidr allow[PR_ALLOW_MAX];
    size_t nallow;
    pthread_mutex_t lock;   /* builds, nbuilds, next */
    pthread_mutex_t lookup; /* the registry (one caller at a time), peers, npeers */
    struct pr_build builds[PR_BUILDS];
    unsigned nbuilds, next;
    struct {
        char addr[PEER_REGISTRY_ADDR_MAX];
        struct store *s;
    } peers[PR_PEERS];
    unsigned npeers;
    atomic_bool warned_down; /* a registry failure was warned once */
};

bool store_is_peer_registry(const struct store *s)
{
    return s && s->ops == &store_peer_registry_ops;
}

/* The build's entry: 1 and *peer when known, 0 when not looked up yet. */
static int pr_find(struct preg_store *p, const char *id, int *peer)
{
    int found = 0;
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < p->nbuilds; i++)
        if (strcmp(p->builds[i].id, id) == 0) {
            *peer = p->builds[i].peer;
            found = 1;
            break;
        }
    pthread_mutex_unlock(&p->lock);
    return found;
}

static void pr_remember(struct preg_store *p, const char *id, int peer)
{
    pthread_mutex_lock(&p->lock);
    unsigned i = p->nbuilds < PR_BUILDS ? p->nbuilds++ : p->next++ % PR_BUILDS;
    memcpy(p->builds[i].id, id, SNAP_UUID_STRLEN + 1);
    p->builds[i].peer = peer;
    pthread_mutex_unlock(&p->lock);
}

/* The peer store for addr (opened on first use, under the lookup lock): its index or -1. */
static int pr_peer(struct preg_store *p, const char *id, const char *addr)
{
    for (unsigned i = 0; i < p->npeers; i++)
        if (strcmp(p->peers[i].addr, addr) == 0)
            return (int)i;
    if (p->npeers == PR_PEERS) {
        snap_warn("peer registry: more than %d peers; build %s is read from storage", PR_PEERS, id);
        return -1;
    }
    char url[PEER_REGISTRY_ADDR_MAX + 16];
    struct store *s = NULL;
    int err = store_peer_url(addr, url, sizeof url);
    if (!err)
        err = store_peer_open(url, &p->po, p->allow, p->nallow, &s);
    if (err) {
        snap_warn("%s: " PEER_REGISTRY_PREFIX "%s names peer %s: %s; reading the build from storage",
                  peer_registry_name(p->reg), id, addr, snap_errmsg(err));
        return -1;
    }
    snprintf(p->peers[p->npeers].addr, sizeof p->peers[p->npeers].addr, "%s", addr);
    p->peers[p->npeers].s = s;
    return (int)p->npeers++;
}

/* The build's peer store, looking it up in the registry the first time; NULL = storage. */
static struct store *pr_resolve(struct preg_store *p, const char *key)
{
    char id[SNAP_UUID_STRLEN + 1];
    snap_uuid u;
    const char *slash = strchr(key, '/');
    if (!slash || slash - key != SNAP_UUID_STRLEN)
        return NULL;
    memcpy(id, key, SNAP_UUID_STRLEN);
    id[SNAP_UUID_STRLEN] = '\0';
    if (snap_uuid_parse(id, &u))
        return NULL;
    snap_uuid_format(&u, id);
    int peer = -1;
    if (pr_find(p, id, &peer)) /* peers[] entries are written before their build is remembered */
        return peer >= 0 ? p->peers[peer].s : NULL;
    pthread_mutex_lock(&p->lookup);
    if (!pr_find(p, id, &peer)) {
        char addr[PEER_REGISTRY_ADDR_MAX];
        bool found = false;
        int err = peer_registry_get(p->reg, id, addr, sizeof addr, &found);
        if (err && !atomic_exchange(&p->warned_down, true))
            snap_warn("%s; build %s is read from storage, as is every build whose lookup fails (shown once)",
                      snap_errmsg(err), id);
        else if (err)
            snap_debug("%s; build %s is read from storage", snap_errmsg(err), id);
        else if (!found)
            snap_info("%s: no peer holds build %s; reading it from storage", peer_registry_name(p->reg), id);
        if (found && (peer = pr_peer(p, id, addr)) >= 0)
            snap_info("%s: build %s is on peer %s", peer_registry_name(p->reg), id, addr);
        pr_remember(p, id, peer);
    }
    struct store *s = peer >= 0 ? p->peers[peer].s : NULL;
    pthread_mutex_unlock(&p->lookup);
    return s;
}

static int pr_none(struct preg_store *p, const char *key, bool *use_storage)
{
    *use_storage = true;
    return snap_fail(SNAP_ENOTFOUND, "%s: no usable peer holds the build of %s", peer_registry_name(p->reg), key);
}

int store_peer_registry_stat_ex(struct store *s, const char *key, struct store_info *info, bool *use_storage)
{
    struct preg_store *p = (struct preg_store *)s;
    struct store *ps = pr_resolve(p, key);
    return ps ? store_peer_stat_ex(ps, key, info, use_storage) : pr_none(p, key, use_storage);
}

int store_peer_registry_read_ex(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
                                store_progress_fn progress, void *ctx, struct store_read_result *res,
                                bool *use_storage)
{
    struct preg_store *p = (struct preg_store *)s;
    struct store *ps = pr_resolve(p, key);
    return ps ? store_peer_read_ex(ps, key, off, len, dst, progress, ctx, res, use_storage)
              : pr_none(p, key, use_storage);
}

static int pr_stat(struct store *s, const char *key, struct store_info *info)
{
    bool gone;
    return store_peer_registry_stat_ex(s, key, info, &gone);
}

static int pr_read(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
                   store_progress_fn progress, void *ctx, struct store_read_result *res)
{
    bool gone;
    return store_peer_registry_read_ex(s, key, off, len, dst, progress, ctx, res, &gone);
}

static void pr_close(struct store *s)
{
    struct preg_store *p = (struct preg_store *)s;
    for (unsigned i = 0; i < p->npeers; i++)
        store_close(p->peers[i].s);
    peer_registry_close(p->reg);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->lookup);
    snap_free(p->base.url);
    snap_free(p);
}

static int pr_open_url(const char *url, const struct store_opts *o, struct store **out)
{
    (void)url;
    (void)o;
    (void)out;
    return snap_fail(SNAP_EUSAGE, "a peer registry is given with --peer-registry URL, next to the store");
}

const struct store_ops store_peer_registry_ops = {
    .scheme = "peer-registry", .open = pr_open_url, .close = pr_close, .stat = pr_stat, .read = pr_read,
};

int store_peer_registry_open(const char *url, const struct store_opts *o, const struct httpd_cidr *allow,
                             size_t nallow, struct store **out)
{
    if (nallow > PR_ALLOW_MAX)
        return snap_fail(SNAP_EUSAGE, "at most %d peer allowlist entries", PR_ALLOW_MAX);
    struct preg_store *p = snap_calloc(1, sizeof *p);
    if (!p)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    unsigned tmo = o && o->connect_timeout_ms ? o->connect_timeout_ms : PEER_REGISTRY_DEFAULT_TIMEOUT_MS;
    int err = peer_registry_open(url, tmo, &p->reg);
    if (!err && !(p->base.url = snap_strdup(peer_registry_name(p->reg))))
        err = snap_fail(SNAP_ENOMEM, "out of memory");
    if (err) {
        peer_registry_close(p->reg);
        snap_free(p);
        return err;
    }
    if (o)
        p->po = *o;
    if (nallow)
        memcpy(p->allow, allow, nallow * sizeof *allow);
    p->nallow = nallow;
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->lookup, NULL);
    p->base.ops = &store_peer_registry_ops;
    *out = &p->base;
    return 0;
}
