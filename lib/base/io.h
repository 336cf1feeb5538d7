/* io.h -- short-I/O and EINTR-proof file descriptor helpers (busybox's safe_read/full_write).
 * Each returns 0 on success or a snap_err with the detail recorded; `what` names the file or
 * peer for the message.  A read that meets EOF before `len` bytes is SNAP_ESHORT.
 */
#ifndef SNAP_IO_H
#define SNAP_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int snap_read_full(int fd, void *buf, size_t len, const char *what);
int snap_write_full(int fd, const void *buf, size_t len, const char *what);
struct iovec;
/* writev until every byte is written; the iovec array is consumed (modified). */
int snap_writev_full(int fd, struct iovec *iov, int n, const char *what);
int snap_pread_full(int fd, void *buf, size_t len, uint64_t off, const char *what);
/* All of [off, off+len) only if it is in the page cache (preadv2 RWF_NOWAIT): 0, SNAP_ENOTSUP
 * when the file system cannot tell (tmpfs), or SNAP_EAGAIN when any of it is not there or the read
 * fails -- no message either way: the caller reads with snap_pread_full where waiting is allowed. */
int snap_pread_cached(int fd, void *buf, size_t len, uint64_t off);
/* head[0, n) and then len bytes of file in_fd from off, written to out without a user-space
 * copy of the file's bytes (sendfile); on a socket the head waits for the data (MSG_MORE).
 * A file that ends early is SNAP_ESHORT; a socket timeout SNAP_ETIMEOUT. */
int snap_send_file(int out, const void *head, size_t n, int in_fd, uint64_t off, uint64_t len, const char *what);
int snap_pwrite_full(int fd, const void *buf, size_t len, uint64_t off, const char *what);

/* open(path, flags | O_CLOEXEC) and fstat it; anything but a regular file is SNAP_EUSAGE ("not
 * a regular file").  On success *fd is open and *size is its size; on failure nothing is open. */
int snap_open_regular(const char *path, int flags, int *fd, uint64_t *size);
/* Give [off, off+len) of fd's file back to the file system (punch a hole, size kept) or zero it
 * there without writing (FALLOC_FL_ZERO_RANGE): 0; SNAP_ENOTSUP where the file system or kernel
 * cannot (the caller falls back to writing zeros); else the failure, naming `what`. */
int snap_punch_hole(int fd, uint64_t off, uint64_t len, const char *what);
int snap_zero_range(int fd, uint64_t off, uint64_t len, const char *what);
/* Read a whole regular file of at most max bytes into a new buffer (snap_free it). */
int snap_read_file(const char *path, size_t max, uint8_t **out, size_t *outlen);
/* Write buf to path atomically: temp file in the same directory, fsync, rename, fsync dir. */
int snap_write_file_atomic(const char *path, const void *buf, size_t len, unsigned mode);

/* Temp files of a writer that may crash: name them PATH + tag + PID (+ anything after a '.'),
 * open them with snap_tmp_open (which holds an flock on them while the writer lives), and
 * snap_clean_stale_tmp removes in dir those whose PID is gone and whose lock is free -- never
 * a live writer's, even one in another PID namespace.  It returns how many it removed. */
int snap_tmp_open(const char *path, int flags, unsigned mode);
int snap_clean_stale_tmp(const char *dir, const char *tag);

/* Monotonic clock in nanoseconds. */
uint64_t snap_now_ns(void);
/* Sleep until snap_now_ns() reaches t_ns (an absolute deadline, so repeated sleeps do not
 * accumulate overshoot); returns at once if it has. */
void snap_sleep_until_ns(uint64_t t_ns);

#endif
