/* hasher.h -- SHA-256 of a file while it is being written, on a second thread.
 *
 * fetch's network thread receives and writes; this thread preads what was written (from the
 * page cache) and hashes it, so hashing overlaps receiving instead of adding to it -- the way
 * `curl | openssl dgst` overlaps them across two processes.  It hashes the bytes as they are
 * in the file, in order, from offset 0, and starts the disk writeback of each 8 MiB it has
 * hashed (sync_file_range), so the caller's final fsync finds little left to write (0.1-0.15 s
 * per GiB before, ~0 after).  Memory: one 1 MiB buffer.  When no thread can be
 * started, fetch_hasher_finish hashes the file in the caller's thread instead.
 */
#ifndef SNAP_FETCH_HASHER_H
#define SNAP_FETCH_HASHER_H

#include <stdint.h>

struct fetch_hasher;

/* fd must stay open and readable until finish/abort; name is for messages. */
int fetch_hasher_start(int fd, const char *name, struct fetch_hasher **out);
/* Bytes [0, end) are now in the file (end only grows). */
void fetch_hasher_wrote(struct fetch_hasher *h, uint64_t end);
/* Hash up to the last end given, return the digest, free h.  0 or a snap_err (a read error). */
int fetch_hasher_finish(struct fetch_hasher *h, uint8_t out[32]);
/* Stop without a digest and free h (NULL is fine). */
void fetch_hasher_abort(struct fetch_hasher *h);

#endif
