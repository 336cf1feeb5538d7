/* filedev.h -- a local file or disk image as a device (serve-nbd --file): the simplest backend,
 * and the like-for-like peer of `nbdkit file` in the benchmarks. */
#ifndef SNAP_FILEDEV_H
#define SNAP_FILEDEV_H

#include "device/device.h"

#include <stdbool.h>
#include <stdint.h>

struct filedev;

/* The device's ops (device.h), ctx = the struct filedev: TRIM deallocates if the filesystem can
 * (reads then return zeros) and never fails for lack of support; block status from
 * SEEK_DATA/SEEK_HOLE. */
extern const struct dev_ops filedev_ops;

int filedev_open(const char *path, bool read_only, struct filedev **out);
void filedev_close(struct filedev *d);
uint64_t filedev_size(const struct filedev *d);

#endif
