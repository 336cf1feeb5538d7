/* exports.c -- the registry of exports (see exports.h).
 *
 * Design notes:
 * - One mutex over a singly linked list.  Lookups happen once per connection (and per /metrics
 *   scrape, NBD_OPT_LIST, control request), never per request, so a list and a linear search
 *   are enough for the hundreds of exports a host runs.
 * - Two counts per entry.  `refs` counts every holder: connections and short readers (an INFO
 *   reply, a scrape, a diff export).  `conns` counts connections past GO.  Remove refuses while
 *   conns > 0 -- a connected VM would otherwise lose its disk, and waiting for it could wait
 *   forever -- and else unlinks the entry under the lock, so no new reference can be taken,
 *   and waits on the condition variable until the short readers let go.  The check and the
 *   unlink happen under one lock hold, so a GO racing with a remove either counts as a client
 *   (the remove is refused) or finds no export (the client is refused).
 * - Removed entries are freed by the remover, after the last reference: a connection's
 *   c->exp points into its entry, which thus outlives the connection.
 */
#include "nbd/exports.h"

#include "base/err.h"
#include "base/mem.h"

#include <pthread.h>
#include <string.h>

struct nbd_exports {
    pthread_mutex_t mu;
    pthread_cond_t released;    /* a reference of an unlinked entry was given back */
    struct nbd_entry *head;
    size_t n;
};

int nbd_exports_new(struct nbd_exports **out)
{
    struct nbd_exports *r = snap_calloc(1, sizeof *r);
    if (!r)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->released, NULL);
    *out = r;
    return 0;
}

static void entry_free(struct nbd_entry *e)
{
    snap_free((char *)e->exp.name);
    snap_free(e);
}

void nbd_exports_free(struct nbd_exports *r)
{
    if (!r)
        return;
    for (struct nbd_entry *e = r->head, *next; e; e = next) {
        next = e->next;
        entry_free(e);
    }
    pthread_cond_destroy(&r->released);
    pthread_mutex_destroy(&r->mu);
    snap_free(r);
}

/* Under the lock: the entry called name[len], and the link that points at it. */
static struct nbd_entry **find(struct nbd_exports *r, const char *name, size_t len)
{
    struct nbd_entry **pp = &r->head;
    for (; *pp; pp = &(*pp)->next)
        if (strlen((*pp)->exp.name) == len && memcmp((*pp)->exp.name, name, len) == 0)
            break;
    return pp;
}

int nbd_exports_add(struct nbd_exports *r, const struct nbd_export *exp, struct device *dev, void *owner,
                    struct nbd_entry **out)
{
    const char *name = exp->name ? exp->name : "";
    size_t len = strnlen(name, NBD_NAME_MAX + 1);
    if (len > NBD_NAME_MAX)
        return snap_fail(SNAP_ERANGE, "export name of more than %u bytes", NBD_NAME_MAX);
    struct nbd_entry *e = snap_calloc(1, sizeof *e);
    char *copy = snap_malloc(len + 1);
    if (!e || !copy) {
        snap_free(e);
        snap_free(copy);
        return snap_fail(SNAP_ENOMEM, "out of memory");
    }
    memcpy(copy, name, len + 1);
    e->exp = *exp;
    e->exp.name = copy;
    e->dev = dev;
    e->owner = owner;
    pthread_mutex_lock(&r->mu);
    struct nbd_entry **pp = find(r, name, len);
    if (!*pp) {
        *pp = e; /* the tail: NBD_OPT_LIST shows them in the order they came */
        r->n++;
    }
    pthread_mutex_unlock(&r->mu);
    if (*pp != e) {
        entry_free(e);
        return snap_fail(SNAP_EEXIST, "an export named '%s' exists already", name);
    }
    if (out)
        *out = e;
    return 0;
}

struct nbd_entry *nbd_exports_get(struct nbd_exports *r, const char *name, size_t len, enum nbd_ref kind)
{
    pthread_mutex_lock(&r->mu);
    struct nbd_entry *e = *find(r, name, len);
    if (e) {
        e->refs++;
        e->conns += kind == NBD_REF_CONN;
    }
    pthread_mutex_unlock(&r->mu);
    return e;
}

void nbd_exports_put(struct nbd_exports *r, struct nbd_entry *e, enum nbd_ref kind)
{
    if (!e)
        return;
    pthread_mutex_lock(&r->mu);
    e->refs--;
    e->conns -= kind == NBD_REF_CONN;
    if (e->refs == 0)
        pthread_cond_broadcast(&r->released);
    pthread_mutex_unlock(&r->mu);
}

int nbd_exports_snapshot(struct nbd_exports *r, struct nbd_entry ***out, size_t *n)
{
    pthread_mutex_lock(&r->mu);
    struct nbd_entry **v = snap_calloc(r->n ? r->n : 1, sizeof *v);
    size_t k = 0;
    for (struct nbd_entry *e = r->head; v && e; e = e->next) {
        e->refs++;
        v[k++] = e;
    }
    pthread_mutex_unlock(&r->mu);
    if (!v)
        return snap_fail(SNAP_ENOMEM, "out of memory");
    *out = v;
    *n = k;
    return 0;
}

void nbd_exports_release(struct nbd_exports *r, struct nbd_entry **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        nbd_exports_put(r, v[i], NBD_REF_PEEK);
    snap_free(v);
}

unsigned nbd_exports_clients(struct nbd_exports *r, const struct nbd_entry *e)
{
    pthread_mutex_lock(&r->mu);
    unsigned n = e->conns;
    pthread_mutex_unlock(&r->mu);
    return n;
}

int nbd_exports_remove(struct nbd_exports *r, const char *name, void **owner)
{
    pthread_mutex_lock(&r->mu);
    struct nbd_entry **pp = find(r, name, strlen(name)), *e = *pp;
    unsigned conns = e ? e->conns : 0;
    if (e && !conns) {
        *pp = e->next; /* gone for every new lookup from here on */
        r->n--;
        while (e->refs)
            pthread_cond_wait(&r->released, &r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    if (!e)
        return snap_fail(SNAP_ENOTFOUND, "no export named '%s'", name);
    if (conns)
        return snap_fail(SNAP_EAGAIN, "export '%s' has %u client%s connected: disconnect %s first", name,
                         conns, conns == 1 ? "" : "s", conns == 1 ? "it" : "them");
    if (owner)
        *owner = e->owner;
    entry_free(e);
    return 0;
}
