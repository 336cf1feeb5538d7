/* objdev.h -- one store object as a read-write device: reads fetched lazily through a chunker,
 * writes kept in the chunker's copy-on-write cache (never sent to the store). */
#ifndef SNAP_OBJDEV_H
#define SNAP_OBJDEV_H

#include "device/filedev.h" /* dev_extent_fn */

#include <stdbool.h>
#include <stdint.h>

struct objdev;

/* url names an object (file:///dir/obj, https://host/path, ...); the cache file is created
 * in cache_dir and unlinked at once (it lives as long as the device). */
int objdev_open(const char *url, const char *cache_dir, struct objdev **out);
/* The same for `key` of an open store, which the device then owns (closed with it, also when
 * this fails). */
struct store;
int objdev_open_store(struct store *s, const char *key, const char *cache_dir, struct objdev **out);
void objdev_close(struct objdev *d);
uint64_t objdev_size(const struct objdev *d);
int objdev_pread(struct objdev *d, void *buf, uint32_t len, uint64_t off);
int objdev_pwrite(struct objdev *d, const void *buf, uint32_t len, uint64_t off, bool fua);
int objdev_zero(struct objdev *d, uint32_t len, uint64_t off, bool fua);
int objdev_flush(struct objdev *d);
/* Extents from the block states: zero blocks are holes; everything else is data. */
int objdev_extents(struct objdev *d, uint64_t off, uint64_t len, dev_extent_fn fn, void *ctx);
/* Prefetch [off, off+len) (NBD_CMD_CACHE). */
int objdev_prefetch(struct objdev *d, uint32_t len, uint64_t off);

#endif
