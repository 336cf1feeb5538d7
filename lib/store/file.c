/* file.c -- the file:// backend: a directory on a local filesystem, the embedded default store.
 *
 * Keys map to paths under the directory.  Puts are atomic (temp file in the same directory,
 * fsync, rename, fsync of the directory); missing parent directories are created.  The sha256
 * metadata of an object lives in a sidecar `<object>.sha256` (hex), like the reference's
 * `<object>.uncompressed-size`.  Reads pread straight into the caller's memory in 1 MiB steps,
 * reporting progress after each; the size comes from fstat.  put_file copies from a file in the
 * kernel (copy_file_range, else sendfile), with the same temp file, fsync and rename.
 */
#include "store/store.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_READ_STEP (1u << 20)
#define FILE_COPY_STEP (16u << 20) /* a put_file step between progress reports (and cancels) */

struct file_store {
    struct store base;
    char *dir;
};

static int file_path(const struct file_store *fs, const char *key, const char *suffix, char *out, size_t n)
{
    if ((size_t)snprintf(out, n, "%s/%s%s", fs->dir, key, suffix) >= n)
        return snap_fail(SNAP_EUSAGE, "%s/%s: path too long", fs->base.url, key);
    return 0;
}

static int file_open(const char *url, const struct store_opts *opts, struct store **out)
{
    (void)opts;
    const char *path = url + strlen("file://");
    if (path[0] != '/')
        return snap_fail(SNAP_EUSAGE, "%s: a file URL needs an absolute path, like file:///var/lib/snapctl", url);
    struct stat st;
    if (stat(path, &st) < 0)
        return snap_fail_errno("%s: store directory", url);
    if (!S_ISDIR(st.st_mode))
        return snap_fail(SNAP_EUSAGE, "%s: not a directory", url);
    struct file_store *fs = snap_calloc(1, sizeof *fs);
    if (!fs)
        return snap_fail(SNAP_ENOMEM, "%s: out of memory", url);
    fs->base.ops = &store_file_ops;
    fs->base.url = snap_strdup(url);
    fs->dir = snap_strdup(path);
    if (!fs->base.url || !fs->dir) {
        snap_free(fs->base.url);
        snap_free(fs->dir);
        snap_free(fs);
        return snap_fail(SNAP_ENOMEM, "%s: out of memory", url);
    }
    size_t n = strlen(fs->dir);
    while (n > 1 && fs->dir[n - 1] == '/')
        fs->dir[--n] = '\0';
    *out = &fs->base;
    return 0;
}

static void file_close(struct store *s)
{
    struct file_store *fs = (struct file_store *)s;
    snap_free(fs->dir);
    snap_free(fs->base.url);
    snap_free(fs);
}

static int file_stat(struct store *s, const char *key, struct store_info *info)
{
    struct file_store *fs = (struct file_store *)s;
    char path[PATH_MAX], sidecar[PATH_MAX + 8];
    struct stat st;
    int err = file_path(fs, key, "", path, sizeof path);
    if (err)
        return err;
    if (stat(path, &st) < 0)
        return snap_fail_errno("%s/%s", s->url, key);
    if (!S_ISREG(st.st_mode))
        return snap_fail(SNAP_ENOTFOUND, "%s/%s: not a regular file", s->url, key);
    info->size = (uint64_t)st.st_size;
    snprintf(info->etag, sizeof info->etag, "\"%llx-%llx\"", (unsigned long long)st.st_mtim.tv_sec,
             (unsigned long long)st.st_size);
    if (file_path(fs, key, ".sha256", sidecar, sizeof sidecar) == 0) {
        char hex[65] = {0};
        int fd = open(sidecar, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t r = read(fd, hex, 64);
            close(fd);
            if (r == 64 && snap_unhex(hex, info->sha256, 32) == 0)
                info->has_sha256 = true;
        }
    }
    if (file_path(fs, key, ".uncompressed-size", sidecar, sizeof sidecar) == 0) {
        char num[24] = {0};
        int fd = open(sidecar, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t r = read(fd, num, sizeof num - 1);
            close(fd);
            while (r > 0 && (num[r - 1] == '\n' || num[r - 1] == ' '))
                num[--r] = '\0';
            uint64_t v;
            if (r > 0 && snap_parse_u64(num, &v, "uncompressed-size") == 0)
                info->uncompressed_size = v;
        }
    }
    return 0;
}

static int file_read(struct store *s, const char *key, uint64_t off, uint64_t len, void *dst,
                     store_progress_fn progress, void *ctx, struct store_read_result *res)
{
    struct file_store *fs = (struct file_store *)s;
    char path[PATH_MAX];
    int err = file_path(fs, key, "", path, sizeof path);
    if (err)
        return err;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return snap_fail_errno("%s/%s", s->url, key);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        err = snap_fail_errno("%s/%s: stat", s->url, key);
        goto out;
    }
    res->total_size = (uint64_t)st.st_size;
    if (off > res->total_size) {
        err = snap_fail(SNAP_ERANGE, "%s/%s: read at offset %llu is past the end (%llu bytes)", s->url,
                        key, (unsigned long long)off, (unsigned long long)res->total_size);
        goto out;
    }
    uint64_t want = snap_min_u64(len, res->total_size - off);
    uint8_t *p = dst;
    while (res->bytes < want) {
        size_t step = (size_t)snap_min_u64(FILE_READ_STEP, want - res->bytes);
        ssize_t r = pread(fd, p + res->bytes, step, (off_t)(off + res->bytes));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            err = snap_fail_errno("%s/%s: read at offset %llu", s->url, key,
                                  (unsigned long long)(off + res->bytes));
            goto out;
        }
        if (r == 0) {
            err = snap_fail(SNAP_ESHORT, "%s/%s: file shrank to %llu bytes while being read", s->url, key,
                            (unsigned long long)(off + res->bytes));
            goto out;
        }
        res->bytes += (uint64_t)r;
        if (progress && progress(ctx, res->bytes) != 0) {
            err = snap_fail(SNAP_ECANCELED, "%s/%s: read canceled", s->url, key);
            goto out;
        }
    }
out:
    close(fd);
    return err;
}

/* mkdir -p of the directories above path (which lies under fs->dir). */
static int file_mkdirs(const struct file_store *fs, char *path)
{
    size_t base = strlen(fs->dir);
    for (char *p = path + base + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        int r = mkdir(path, 0755);
        int e = errno;
        *p = '/';
        if (r < 0 && e != EEXIST) {
            errno = e;
            return snap_fail_errno("%s: create directory for %s", fs->base.url, path + base + 1);
        }
    }
    return 0;
}

/* One sidecar: written with `text`, or removed when it is NULL. */
static int file_sidecar_one(struct file_store *fs, const char *key, const char *suffix, const char *text)
{
    char sidecar[PATH_MAX + 24];
    int err = file_path(fs, key, suffix, sidecar, sizeof sidecar);
    if (err || !text) {
        if (!err)
            unlink(sidecar);
        return err;
    }
    return snap_write_file_atomic(sidecar, text, strlen(text), 0644);
}

/* The sidecars hold po->sha256 and po->uncompressed_size, or are removed when they are unset. */
static int file_sidecar(struct file_store *fs, const char *key, const struct store_put_opts *po)
{
    char hex[65], num[24];
    if (po->sha256)
        snap_hex(po->sha256, 32, hex);
    snprintf(num, sizeof num, "%llu", (unsigned long long)po->uncompressed_size);
    int err = file_sidecar_one(fs, key, ".sha256", po->sha256 ? hex : NULL);
    return err ? err : file_sidecar_one(fs, key, ".uncompressed-size", po->uncompressed_size ? num : NULL);
}

static int file_put(struct store *s, const char *key, const void *buf, size_t len,
                    const struct store_put_opts *po)
{
    struct file_store *fs = (struct file_store *)s;
    char path[PATH_MAX];
    int err = file_path(fs, key, "", path, sizeof path);
    if (!err)
        err = file_mkdirs(fs, path);
    if (!err)
        err = file_sidecar(fs, key, po);
    if (!err)
        err = snap_write_file_atomic(path, buf, len, 0644);
    if (err)
        return snap_fail_ctx(err, "%s/%s: put", s->url, key);
    return 0;
}

static int file_put_canceled(const char *what, uint64_t done)
{
    return snap_fail(SNAP_ECANCELED, "%s: canceled after %llu bytes", what, (unsigned long long)done);
}

/* Copy len bytes from the start of in to out in the kernel, in steps of FILE_COPY_STEP, each
 * reported to po->progress (which may cancel). */
static int file_copy(int in, int out, uint64_t len, const char *what, const struct store_put_opts *po)
{
    loff_t ioff = 0, ooff = 0;
    bool cfr = true;
    while ((uint64_t)ioff < len) {
        if (ioff && po->progress && po->progress(po->progress_ctx, (uint64_t)ioff))
            return file_put_canceled(what, (uint64_t)ioff);
        size_t step = (size_t)snap_min_u64(len - (uint64_t)ioff, FILE_COPY_STEP);
        ssize_t r = cfr ? copy_file_range(in, &ioff, out, &ooff, step, 0) : sendfile(out, in, &ioff, step);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && cfr && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
            cfr = false; /* older kernels, or across filesystems */
            if (lseek(out, ooff, SEEK_SET) < 0)
                return snap_fail_errno("%s: seek", what);
            continue;
        }
        if (r < 0)
            return snap_fail_errno("%s: copy", what);
        if (r == 0)
            return snap_fail(SNAP_ESHORT, "%s: the source ended at %llu of %llu bytes", what,
                             (unsigned long long)ioff, (unsigned long long)len);
    }
    return 0;
}

static int file_put_file(struct store *s, const char *key, int fd, uint64_t len, const struct store_put_opts *po)
{
    struct file_store *fs = (struct file_store *)s;
    char path[PATH_MAX], tmp[PATH_MAX + 32];
    int err = file_path(fs, key, "", path, sizeof path);
    if (!err && (size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        err = snap_fail(SNAP_EUSAGE, "%s/%s: path too long", s->url, key);
    if (!err)
        err = file_mkdirs(fs, path);
    if (err)
        return snap_fail_ctx(err, "%s/%s: put", s->url, key);
    /* Leftovers of uploads killed mid-copy (their PID gone): they can be GiBs. */
    char *slash = strrchr(tmp, '/');
    *slash = '\0';
    snap_clean_stale_tmp(tmp, ".tmp.");
    *slash = '/';
    int out = snap_tmp_open(tmp, O_WRONLY | O_TRUNC, 0644);
    if (out < 0)
        return snap_fail_errno("%s/%s: create %s", s->url, key, tmp);
    err = file_copy(fd, out, len, tmp, po);
    if (!err && fsync(out) < 0)
        err = snap_fail_errno("%s: fsync", tmp);
    if (close(out) < 0 && !err)
        err = snap_fail_errno("%s: close", tmp);
    if (!err && po->progress && po->progress(po->progress_ctx, len))
        err = file_put_canceled(tmp, len);
    /* The sidecar only now: a put that failed or was canceled leaves an existing object whole. */
    if (!err)
        err = file_sidecar(fs, key, po);
    if (!err && rename(tmp, path) < 0)
        err = snap_fail_errno("%s: rename into place", path);
    if (err) {
        unlink(tmp);
        return snap_fail_ctx(err, "%s/%s: put", s->url, key);
    }
    slash = strrchr(path, '/');
    *slash = '\0';
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

static int file_set_meta(struct store *s, const char *key, uint64_t size, const struct store_put_opts *po)
{
    struct store_info info;
    int err = file_stat(s, key, &info);
    if (!err && info.size != size)
        err = snap_fail(SNAP_ESHORT, "%s/%s: is %llu bytes, expected %llu", s->url, key,
                        (unsigned long long)info.size, (unsigned long long)size);
    if (!err)
        err = file_sidecar((struct file_store *)s, key, po);
    return err ? snap_fail_ctx(err, "%s/%s: set metadata", s->url, key) : 0;
}

const struct store_ops store_file_ops = {
    .scheme = "file",
    .open = file_open,
    .close = file_close,
    .stat = file_stat,
    .read = file_read,
    .put = file_put,
    .put_file = file_put_file,
    .set_meta = file_set_meta,
};
