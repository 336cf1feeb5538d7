/* io.c -- short-I/O and EINTR-proof file descriptor helpers. */
#include "base/io.h"

#include "base/err.h"
#include "base/mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif
#ifndef FALLOC_FL_ZERO_RANGE
#define FALLOC_FL_ZERO_RANGE 0x10
#endif

int snap_read_full(int fd, void *buf, size_t len, const char *what)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t r = read(fd, p + done, len - done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return snap_fail_errno("%s: read", what);
        }
        if (r == 0)
            return snap_fail(SNAP_ESHORT, "%s: unexpected end of data after %zu of %zu bytes",
                             what, done, len);
        done += (size_t)r;
    }
    return 0;
}

int snap_write_full(int fd, const void *buf, size_t len, const char *what)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = write(fd, p, len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return snap_fail_errno("%s: write", what);
        }
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

int snap_writev_full(int fd, struct iovec *iov, int n, const char *what)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return snap_fail_errno("%s: write", what);
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

int snap_pread_full(int fd, void *buf, size_t len, uint64_t off, const char *what)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, p + done, len - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return snap_fail_errno("%s: read at offset %llu", what, (unsigned long long)(off + done));
        }
        if (r == 0)
            return snap_fail(SNAP_ESHORT, "%s: file ends at offset %llu, %zu bytes were expected",
                             what, (unsigned long long)(off + done), len - done);
        done += (size_t)r;
    }
    return 0;
}

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

int snap_pread_cached(int fd, void *buf, size_t len, uint64_t off)
{
    struct iovec iov = {buf, len};
    /* preadv2(fd, iov, 1, pos_l, pos_h, flags), as the C libraries pass it (pos_l is the whole
     * offset on 64-bit kernels): musl has no wrapper yet. */
    long r = syscall(SYS_preadv2, fd, &iov, 1, (long)off, (long)(off >> 32), RWF_NOWAIT);
    if (r < 0 && errno == EOPNOTSUPP)
        return SNAP_ENOTSUP;
    return r == (long)len ? 0 : SNAP_EAGAIN;
}

int snap_send_file(int out, const void *head, size_t n, int in_fd, uint64_t off, uint64_t len, const char *what)
{
    const uint8_t *p = head;
    bool sock = true;
    while (n > 0) {
        ssize_t r = sock ? send(out, p, n, MSG_MORE | MSG_NOSIGNAL) : write(out, p, n);
        if (r < 0 && errno == ENOTSOCK && sock) {
            sock = false;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return snap_fail_errno("%s: send", what);
        p += r;
        n -= (size_t)r;
    }
    off_t o = (off_t)off;
    while (len > 0) {
        ssize_t r = sendfile(out, in_fd, &o, len > (1u << 30) ? (1u << 30) : (size_t)len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return snap_fail(SNAP_ETIMEOUT, "%s: send timed out", what);
        if (r < 0)
            return snap_fail_errno("%s: sendfile", what);
        if (r == 0)
            return snap_fail(SNAP_ESHORT, "%s: the file ends at offset %llu, %llu bytes short", what,
                             (unsigned long long)o, (unsigned long long)len);
        len -= (uint64_t)r;
    }
    return 0;
}

int snap_pwrite_full(int fd, const void *buf, size_t len, uint64_t off, const char *what)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = pwrite(fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return snap_fail_errno("%s: write at offset %llu", what, (unsigned long long)off);
        }
        p += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return 0;
}

static int falloc_range(int fd, int mode, uint64_t off, uint64_t len, const char *what, const char *doing)
{
    if (fallocate(fd, mode | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
        return 0;
    if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL)
        return snap_fail(SNAP_ENOTSUP, "%s: the file system cannot %s", what, doing);
    return snap_fail_errno("%s: %s at offset %llu (%llu bytes)", what, doing, (unsigned long long)off,
                           (unsigned long long)len);
}

int snap_punch_hole(int fd, uint64_t off, uint64_t len, const char *what)
{
    return falloc_range(fd, FALLOC_FL_PUNCH_HOLE, off, len, what, "punch hole");
}

int snap_zero_range(int fd, uint64_t off, uint64_t len, const char *what)
{
    return falloc_range(fd, FALLOC_FL_ZERO_RANGE, off, len, what, "zero range");
}

int snap_open_regular(const char *path, int flags, int *fd, uint64_t *size)
{
    int f = open(path, flags | O_CLOEXEC);
    if (f < 0)
        return snap_fail_errno("%s", path);
    struct stat st;
    int err = 0;
    if (fstat(f, &st) < 0)
        err = snap_fail_errno("%s: stat", path);
    else if (!S_ISREG(st.st_mode))
        err = snap_fail(SNAP_EUSAGE, "%s: not a regular file", path);
    if (err) {
        close(f);
        return err;
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 0;
}

int snap_read_file(const char *path, size_t max, uint8_t **out, size_t *outlen)
{
    int fd;
    uint64_t size;
    int err = snap_open_regular(path, O_RDONLY, &fd, &size);
    if (err)
        return err;
    uint8_t *buf = NULL;
    if (size > max) {
        err = snap_fail(SNAP_ETOOBIG, "%s: %llu bytes, more than the limit of %zu", path,
                        (unsigned long long)size, max);
        goto out;
    }
    buf = snap_malloc((size_t)size);
    if (!buf) {
        err = snap_fail(SNAP_ENOMEM, "%s: cannot allocate %llu bytes", path, (unsigned long long)size);
        goto out;
    }
    err = snap_read_full(fd, buf, (size_t)size, path);
    if (err) {
        snap_free(buf);
        buf = NULL;
        goto out;
    }
    *out = buf;
    *outlen = (size_t)size;
out:
    close(fd);
    return err;
}

int snap_tmp_open(const char *path, int flags, unsigned mode)
{
    int fd = open(path, flags | O_CREAT | O_CLOEXEC, mode);
    if (fd >= 0)
        flock(fd, LOCK_EX | LOCK_NB); /* held until close; best effort (only the cleaner asks) */
    return fd;
}

/* The PID after the last tag in name ("x.tmp.123", "x.tmp.123.abc"), or 0. */
static long tmp_pid(const char *name, const char *tag)
{
    const char *t = NULL;
    for (const char *p = name; (p = strstr(p, tag)) != NULL; p++)
        t = p;
    if (!t || t == name)
        return 0;
    char *end;
    t += strlen(tag);
    long pid = *t >= '1' && *t <= '9' ? strtol(t, &end, 10) : 0;
    return pid > 0 && pid <= INT_MAX && (*end == '\0' || *end == '.') ? pid : 0;
}

int snap_clean_stale_tmp(const char *dir, const char *tag)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = tmp_pid(e->d_name, tag);
        if (!pid || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* not a temp file, or its writer may be running */
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (fd < 0)
            continue;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            unlinkat(dirfd(d), e->d_name, 0) == 0)
            n++;
        close(fd);
    }
    closedir(d);
    return n;
}

int snap_write_file_atomic(const char *path, const void *buf, size_t len, unsigned mode)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return snap_fail(SNAP_EUSAGE, "%s: path too long", path);
    int fd = snap_tmp_open(tmp, O_WRONLY | O_TRUNC, mode);
    if (fd < 0)
        return snap_fail_errno("%s", tmp);
    int err = snap_write_full(fd, buf, len, tmp);
    if (!err && fsync(fd) < 0)
        err = snap_fail_errno("%s: fsync", tmp);
    if (close(fd) < 0 && !err)
        err = snap_fail_errno("%s: close", tmp);
    if (!err && rename(tmp, path) < 0)
        err = snap_fail_errno("%s: rename into place", path);
    if (err) {
        unlink(tmp);
        return err;
    }
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

uint64_t snap_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void snap_sleep_until_ns(uint64_t t_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(t_ns / 1000000000u), .tv_nsec = (long)(t_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}
