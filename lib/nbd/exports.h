/* exports.h -- the set of exports one NBD server serves, picked by name at the handshake.
 *
 * A small registry: a list of entries under one mutex, each with a reference count.  The
 * handshake looks a name up (NBD_OPT_INFO/GO/EXPORT_NAME) and, at GO, keeps a connection
 * reference until the connection ends; NBD_OPT_LIST, /metrics and the control socket take short
 * references while they read an entry.  Removing an export is refused while a client is
 * connected to it; otherwise the entry leaves the list at once (new connections get "no such
 * export") and nbd_exports_remove waits for the short references to drop before it returns the
 * owner, so the caller may close the device.  Nothing here runs per NBD request.
 *
 *   struct nbd_exports *r;  nbd_exports_new(&r);
 *   nbd_exports_add(r, &exp, dev, owner, NULL);     // the export's name is copied
 *   nbd_server_run(r, lfds, n, &opts);              // each connection picks one by name
 *   nbd_exports_remove(r, "vm1", &owner);           // 0, SNAP_ENOTFOUND or SNAP_EAGAIN (busy)
 */
#ifndef SNAP_NBD_EXPORTS_H
#define SNAP_NBD_EXPORTS_H

#include "nbd/nbd.h"

#include <stddef.h>

struct device;
struct nbd_exports;

/* One export.  exp, dev and owner do not change while the entry is in the registry. */
struct nbd_entry {
    struct nbd_export exp;      /* exp.name: the entry's own copy */
    struct nbd_stats stats;     /* what its connections count */
    struct device *dev;         /* its device, for /metrics (NULL: none) */
    void *owner;                /* the caller's state for it */
    /* under the registry's lock */
    struct nbd_entry *next;
    unsigned refs;              /* references of any kind (connections too) */
    unsigned conns;             /* connections in transmission */
};

enum nbd_ref { NBD_REF_PEEK, NBD_REF_CONN };

#define NBD_NAME_MAX 4096u      /* the protocol's limit on an export name */

int nbd_exports_new(struct nbd_exports **out);
/* Free the registry and every entry left in it (nothing may use them any more). */
void nbd_exports_free(struct nbd_exports *r);

/* Add a copy of exp (and its name) with dev and owner.  SNAP_EEXIST if the name is taken;
 * SNAP_ERANGE if it is longer than NBD_NAME_MAX.  *out (may be NULL): the new entry. */
int nbd_exports_add(struct nbd_exports *r, const struct nbd_export *exp, struct device *dev, void *owner,
                    struct nbd_entry **out);
/* The export called name[len] with a reference of that kind taken, or NULL when there is none. */
struct nbd_entry *nbd_exports_get(struct nbd_exports *r, const char *name, size_t len, enum nbd_ref kind);
/* Give back a reference nbd_exports_get or nbd_exports_snapshot took. */
void nbd_exports_put(struct nbd_exports *r, struct nbd_entry *e, enum nbd_ref kind);
/* Every export, in the order they were added, each with a PEEK reference: *out (allocated,
 * free with nbd_exports_release) and *n. */
int nbd_exports_snapshot(struct nbd_exports *r, struct nbd_entry ***out, size_t *n);
void nbd_exports_release(struct nbd_exports *r, struct nbd_entry **v, size_t n);
/* Connections in transmission on e now. */
unsigned nbd_exports_clients(struct nbd_exports *r, const struct nbd_entry *e);

/* Take the export called name out: SNAP_ENOTFOUND if there is none, SNAP_EAGAIN (with a
 * message) while clients are connected to it.  Otherwise it is gone for new lookups at once;
 * this waits until nobody holds a reference, frees the entry and returns its owner in *owner. */
int nbd_exports_remove(struct nbd_exports *r, const char *name, void **owner);

#endif
