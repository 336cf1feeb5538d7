/* objdev.h -- one store object as a read-write device: reads fetched lazily through a chunker,
 * writes kept in the chunker's copy-on-write cache (never sent to the store). */
#ifndef SNAP_OBJDEV_H
#define SNAP_OBJDEV_H

#include "device/device.h"

#include <stdbool.h>
#include <stdint.h>

struct objdev;

/* The device's ops (device.h), ctx = the struct objdev: TRIM and WRITE_ZEROES both zero
 * blocks in the cache; CACHE prefetches; block status: zero blocks are holes, everything else
 * is data. */
extern const struct dev_ops objdev_ops;

/* `key` of an open store, which the device then owns (closed with it, also when this fails);
 * the cache file is created in cache_dir and unlinked at once (it lives as long as the
 * device). */
struct store;
int objdev_open_store(struct store *s, const char *key, const char *cache_dir, struct objdev **out);
void objdev_close(struct objdev *d);
uint64_t objdev_size(const struct objdev *d);
/* The counters of the object's chunker (lib/chunker/chunker.h). */
struct chunker_stats;
void objdev_stats(struct objdev *d, struct chunker_stats *out);

#endif
