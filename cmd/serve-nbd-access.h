/* serve-nbd-access.h -- serve-nbd's --record-access and --prefetch: which trace to load, the
 * access layer (lib/device/access.h) in front of the device, and what is written at export and
 * at exit.  Kept apart from serve-nbd.c so that file only calls these four functions. */
#ifndef SNAP_SERVE_NBD_ACCESS_H
#define SNAP_SERVE_NBD_ACCESS_H

#include "device/builddev.h"
#include "nbd/nbd.h"

#include <stdbool.h>

struct store;
struct sn_access;

struct sn_access_args {
    const char *record;       /* --record-access FILE, or NULL */
    const char *prefetch;     /* --prefetch FILE|auto, or NULL */
    unsigned prefetch_threads;/* --prefetch-threads (0: the default) */
    const char *merge;        /* --merge-trace FILE|auto, or NULL */
    bool export_diff;         /* --export-diff is on: the trace goes into metadata.json */
    const char *file;         /* the device's file name ("rootfs.ext4", "memfile"), or NULL */
    struct store *store;      /* --header: the store holding the build (for auto), else NULL */
    const struct hdr *header; /* --header: the build's header (for auto), else NULL */
};

/* Nothing asked: *out = NULL and exp is left alone.  Else load the trace, open the layer and
 * point exp->ops/ctx at it.  Returns an exit code (0: go on), after printing the error. */
int sn_access_setup(const struct sn_access_args *args, struct nbd_export *exp, struct sn_access **out);
/* After an export: put the trace into the new build's metadata.json (NULL x: nothing). */
int sn_access_exported(struct sn_access *x, const struct builddev_export *r);
/* At exit: stop the prefetch, write --record-access, report the counters when --record-access
 * or --prefetch was given (a JSON line on stdout with json), free.  Returns an exit code. */
int sn_access_finish(struct sn_access *x, bool json);

#endif
