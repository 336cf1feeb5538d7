/* filedev.c -- a local file as a device: pread/pwrite, hole punching, SEEK_DATA/SEEK_HOLE. */
#include "device/filedev.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>


/* How a read that must not wait is done: the file is in memory (tmpfs, ramfs: a plain pread
 * never waits for a disk), preadv2 RWF_NOWAIT tells, or nothing tells (every read on a worker). */
enum nowait_mode { NOWAIT_MEMORY, NOWAIT_ASK, NOWAIT_NEVER };
#define FD_STRIPES 64
#define FD_STRIPE_SHIFT 20
#define TMPFS_MAGIC 0x01021994  /* statfs f_type values (linux/magic.h) */
#define RAMFS_MAGIC 0x858458f6

struct filedev {
    int fd;
    uint64_t size;
    char *path;
    _Atomic int nowait;           /* enum nowait_mode */
    bool read_only;
    pthread_rwlock_t stripe[FD_STRIPES]; /* writable: see "Range locks" */
    pthread_mutex_t known_mu;     /* see "Known data" */
    uint64_t known_lo, known_hi;  /* [lo, hi): all data, by the last SEEK_HOLE (hi 0: none) */
};

/* Known data.  SEEK_HOLE has no upper bound: on a file without holes it walks the page cache to
 * the end of the file, 5-10 ms per GiB on tmpfs, however short the block-status request was.  So
 * the data range the last walk found is kept and later requests inside it are answered without a
 * system call.  Saying "data" of a range is always allowed (a hole reported as data reads as its
 * zeros), and writes only ever turn holes into data, so a kept range can only be stale after a
 * trim or zero punched a hole into it: those forget it (one racing a walk may leave it stale,
 * which is allowed for the same reason). */
static bool known_data(struct filedev *d, uint64_t off, uint64_t *hi)
{
    pthread_mutex_lock(&d->known_mu);
    bool in = off >= d->known_lo && off < d->known_hi;
    *hi = d->known_hi;
    pthread_mutex_unlock(&d->known_mu);
    return in;
}

static void known_set(struct filedev *d, uint64_t lo, uint64_t hi)
{
    pthread_mutex_lock(&d->known_mu);
    d->known_lo = lo;
    d->known_hi = hi;
    pthread_mutex_unlock(&d->known_mu);
}

/* Range locks (writable devices).  A pread racing a pwrite of the same page can copy half of the
 * old bytes and half of the new (the kernel holds no page lock across the copy), so a reader could
 * get a torn block.  Reads take the stripes of the 1 MiB regions they touch shared, writes
 * exclusive, always in increasing stripe order (no deadlock); a read is then the block before or
 * after a write, whole.  A read-only device takes none. */
static uint64_t stripes_of(uint64_t off, uint64_t len)
{
    uint64_t a = off >> FD_STRIPE_SHIFT, b = (off + (len ? len : 1) - 1) >> FD_STRIPE_SHIFT, m = 0;
    if (b - a >= FD_STRIPES - 1)
        return ~0ull;
    for (uint64_t r = a; r <= b; r++)
        m |= 1ull << (r % FD_STRIPES);
    return m;
}

static void range_lock(struct filedev *d, uint64_t off, uint64_t len, bool write)
{
    if (d->read_only)
        return;
    for (uint64_t m = stripes_of(off, len); m; m &= m - 1) {
        pthread_rwlock_t *l = &d->stripe[__builtin_ctzll(m)];
        if (write)
            pthread_rwlock_wrlock(l);
        else
            pthread_rwlock_rdlock(l);
    }
}

static void range_unlock(struct filedev *d, uint64_t off, uint64_t len)
{
    if (d->read_only)
        return;
    for (uint64_t m = stripes_of(off, len); m; m &= m - 1)
        pthread_rwlock_unlock(&d->stripe[__builtin_ctzll(m)]);
}

static int nowait_mode_of(int fd)
{
    struct statfs sf;
    if (fstatfs(fd, &sf) == 0 && (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC))
        return NOWAIT_MEMORY;
    return NOWAIT_ASK;
}

int filedev_open(const char *path, bool read_only, struct filedev **out)
{
    int fd;
    uint64_t size;
    int err = snap_open_regular(path, read_only ? O_RDONLY : O_RDWR, &fd, &size);
    if (err)
        return err;
    struct filedev *d = snap_calloc(1, sizeof *d);
    char *p = snap_strdup(path);
    if (!d || !p) {
        snap_free(d);
        snap_free(p);
        close(fd);
        return snap_fail(SNAP_ENOMEM, "%s: out of memory", path);
    }
    d->fd = fd;
    d->size = size;
    d->path = p;
    d->nowait = nowait_mode_of(fd);
    d->read_only = read_only;
    for (unsigned i = 0; i < FD_STRIPES; i++)
        pthread_rwlock_init(&d->stripe[i], NULL);
    pthread_mutex_init(&d->known_mu, NULL);
    *out = d;
    return 0;
}

void filedev_close(struct filedev *d)
{
    if (!d)
        return;
    close(d->fd);
    for (unsigned i = 0; i < FD_STRIPES; i++)
        pthread_rwlock_destroy(&d->stripe[i]);
    pthread_mutex_destroy(&d->known_mu);
    snap_free(d->path);
    snap_free(d);
}

uint64_t filedev_size(const struct filedev *d) { return d->size; }

static int fd_flush(void *ctx)
{
    struct filedev *d = ctx;
    if (fdatasync(d->fd) < 0)
        return snap_fail_errno("%s: fdatasync", d->path);
    return 0;
}

static int fd_pread(void *ctx, void *buf, uint32_t len, uint64_t off)
{
    struct filedev *d = ctx;
    range_lock(d, off, len, false);
    int err = snap_pread_full(d->fd, buf, len, off, d->path);
    range_unlock(d, off, len);
    return err;
}

static int fd_pwrite(void *ctx, const void *buf, uint32_t len, uint64_t off, bool fua)
{
    struct filedev *d = ctx;
    range_lock(d, off, len, true);
    int err = snap_pwrite_full(d->fd, buf, len, off, d->path);
    range_unlock(d, off, len);
    return (!err && fua) ? fd_flush(d) : err;
}

/* Only what the page cache holds: a disk read waits on a worker. */
static int fd_pread_nowait(void *ctx, void *buf, uint32_t len, uint64_t off)
{
    struct filedev *d = ctx;
    int mode = atomic_load_explicit(&d->nowait, memory_order_relaxed);
    if (mode == NOWAIT_NEVER)
        return SNAP_EAGAIN;
    range_lock(d, off, len, false);
    int err = mode == NOWAIT_MEMORY ? (pread(d->fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : SNAP_EAGAIN)
                                    : snap_pread_cached(d->fd, buf, len, off);
    range_unlock(d, off, len);
    if (err == SNAP_ENOTSUP) /* this file system cannot say: stop asking */
        atomic_store_explicit(&d->nowait, NOWAIT_NEVER, memory_order_relaxed);
    return err ? SNAP_EAGAIN : 0;
}

/* Zero-copy for a read-only device: nothing of ours writes the file, so its pages change no more
 * during a sendfile than during a pread (another process writing the file can tear either). */
static int fd_read_ref(void *ctx, uint32_t len, uint64_t off, int *fd, uint64_t *fd_off)
{
    struct filedev *d = ctx;
    (void)len; /* NBD checked the range against the size */
    if (!d->read_only || atomic_load_explicit(&d->nowait, memory_order_relaxed) != NOWAIT_MEMORY)
        return SNAP_EAGAIN; /* on a disk, sendfile could wait for it: copy on a worker instead */
    *fd = d->fd;
    *fd_off = off;
    return 0;
}

/* A buffered write lands in the page cache (writeback throttling aside); FUA syncs on a worker. */
static int fd_pwrite_nowait(void *ctx, const void *buf, uint32_t len, uint64_t off, bool fua)
{
    return fua ? SNAP_EAGAIN : fd_pwrite(ctx, buf, len, off, false);
}

static int write_zeros(struct filedev *d, uint32_t len, uint64_t off)
{
    static const uint8_t zeros[65536];
    while (len > 0) {
        uint32_t n = len < sizeof zeros ? len : (uint32_t)sizeof zeros;
        int err = snap_pwrite_full(d->fd, zeros, n, off, d->path);
        if (err)
            return err;
        off += n;
        len -= n;
    }
    return 0;
}

static int fd_trim(void *ctx, uint32_t len, uint64_t off, bool fua)
{
    struct filedev *d = ctx;
    range_lock(d, off, len, true);
    int err = snap_punch_hole(d->fd, off, len, d->path);
    range_unlock(d, off, len);
    known_set(d, 0, 0);
    if (err && err != SNAP_ENOTSUP) /* a trim is advice: a file system that cannot punch keeps the bytes */
        return err;
    return fua ? fd_flush(d) : 0;
}

static int fd_zero(void *ctx, uint32_t len, uint64_t off, bool may_trim, bool fua)
{
    struct filedev *d = ctx;
    range_lock(d, off, len, true);
    int err = may_trim ? snap_punch_hole(d->fd, off, len, d->path) : SNAP_ENOTSUP;
    if (err)
        err = snap_zero_range(d->fd, off, len, d->path);
    if (err)
        err = write_zeros(d, len, off);
    range_unlock(d, off, len);
    known_set(d, 0, 0);
    return (!err && fua) ? fd_flush(d) : err;
}

static int fd_extents(void *ctx, uint32_t len, uint64_t off, struct dev_extents *x)
{
    struct filedev *d = ctx;
    uint64_t end = off + len;
    uint64_t known;
    if (known_data(d, off, &known)) {
        uint64_t n = (known < end ? known : end) - off;
        if (!dev_extents_append(x, off, n, false))
            return 0;
        off += n;
    }
    while (off < end) {
        off_t data = lseek(d->fd, (off_t)off, SEEK_DATA);
        if (data < 0 && errno == ENXIO) /* only a hole up to the end of the file */
            data = (off_t)end;
        else if (data < 0) { /* no SEEK_DATA here: say it is all data */
            dev_extents_append(x, off, end - off, false);
            return 0;
        }
        if ((uint64_t)data > off) {
            uint64_t n = (uint64_t)data < end ? (uint64_t)data - off : end - off;
            if (!dev_extents_append(x, off, n, true))
                return 0;
            off += n;
            continue;
        }
        off_t hole = lseek(d->fd, (off_t)off, SEEK_HOLE);
        uint64_t h = hole < 0 ? end : (uint64_t)hole;
        if (hole > 0 && h > off)
            known_set(d, off, h);
        uint64_t n = (h < end ? h : end) - off;
        if (n == 0)
            n = end - off;
        if (!dev_extents_append(x, off, n, false))
            return 0;
        off += n;
    }
    return 0;
}

/* The device interface (device.h). */
const struct dev_ops filedev_ops = {
    .pread = fd_pread, .pwrite = fd_pwrite, .flush = fd_flush, .trim = fd_trim, .zero = fd_zero,
    .extents = fd_extents, .pread_nowait = fd_pread_nowait, .pwrite_nowait = fd_pwrite_nowait,
    .read_ref = fd_read_ref,
};
