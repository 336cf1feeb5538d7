/* prefetch.h -- the traces around a device's access layer (access.h): which trace a --prefetch
 * or --merge-trace spec names (a file, or "auto": the build's own metadata.json), the block size
 * of the recording, and the trace written at export or exit (the recording, or its blocks a
 * merge trace has too).  serve-nbd wires the options and prints; the choices are here.
 *
 *   struct trace t;
 *   int err = prefetch_trace_load("auto", store, header, "rootfs.ext4", &t);
 *   // SNAP_ENOTFOUND: the build has no such trace; start without one
 */
#ifndef SNAP_DEVICE_PREFETCH_H
#define SNAP_DEVICE_PREFETCH_H

#include "device/trace.h"

#include <stdbool.h>
#include <stdint.h>

struct access;
struct hdr;
struct store;

/* True when spec asks for the build's own trace ("auto") rather than a file. */
bool prefetch_spec_is_auto(const char *spec);
/* The trace spec names, of the kind the device file (NULL: any) keeps: "auto" reads build
 * header's metadata.json on s (SNAP_EUSAGE without s and header; SNAP_ENOTFOUND when the build
 * has no such trace); anything else is a trace or metadata.json file.  Errors name spec. */
int prefetch_trace_load(const char *spec, struct store *s, const struct hdr *header, const char *file,
                        struct trace *out);
/* The block size to record in: the header's, when it is a sane trace block size, else 4096. */
uint32_t prefetch_block_size(const struct hdr *header);
/* The trace to write: a's recording, or (merge not NULL) its blocks that merge has too. */
int prefetch_written_trace(struct access *a, const struct trace *merge, struct trace *out);

#endif
