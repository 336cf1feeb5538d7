/* filedev.h -- a local file or disk image as a device (serve-nbd --file): the simplest backend,
 * and the like-for-like peer of `nbdkit file` in the benchmarks. */
#ifndef SNAP_FILEDEV_H
#define SNAP_FILEDEV_H

#include <stdbool.h>
#include <stdint.h>

struct filedev;

/* Extent callback: [off, off+len) is data (zero=false) or a hole reading as zeros (zero=true).
 * Return false to stop early. */
typedef bool (*dev_extent_fn)(void *ctx, uint64_t off, uint64_t len, bool zero);

int filedev_open(const char *path, bool read_only, struct filedev **out);
void filedev_close(struct filedev *d);
uint64_t filedev_size(const struct filedev *d);
int filedev_pread(struct filedev *d, void *buf, uint32_t len, uint64_t off);
int filedev_pwrite(struct filedev *d, const void *buf, uint32_t len, uint64_t off, bool fua);
int filedev_flush(struct filedev *d);
/* Deallocate if the filesystem can (reads then return zeros); never fails for lack of support. */
int filedev_trim(struct filedev *d, uint32_t len, uint64_t off, bool fua);
int filedev_zero(struct filedev *d, uint32_t len, uint64_t off, bool may_trim, bool fua);
int filedev_extents(struct filedev *d, uint64_t off, uint64_t len, dev_extent_fn fn, void *ctx);

#endif
