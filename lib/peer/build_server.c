/* build_server.c -- the peer's request handler: validate, pin, answer from the file with sendfile.
 *
 * Nothing outside the data directory is ever opened: the path is built from a parsed UUID
 * (re-formatted, so its spelling is ours) and an object name from a fixed list, and opened
 * with openat() under the directory's fd with O_NOFOLLOW on every step, so neither "..", nor
 * percent-encoding, nor a symlink planted in the directory can lead anywhere else.
 */
#include "peer/peer.h"

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/prom.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEER_MAX_PINS 1024
#define PEER_HEADER_MAX (64u << 20)  /* headers are patched in memory; bigger ones are refused */

struct pin {
    snap_uuid id;
    unsigned count;
};

struct peer_server {
    int dirfd;
    char *dir;
    pthread_mutex_t lock;
    struct pin pins[PEER_MAX_PINS];
    unsigned npins;
    _Atomic uint64_t requests, bytes, errors, not_found, gone;
};

static const char *const peer_files[] = {
    "memfile", "memfile.header", "rootfs.ext4", "rootfs.ext4.header", "snapfile", "metadata.json",
    "memfile.lz4", "memfile.zstd", "rootfs.ext4.lz4", "rootfs.ext4.zstd",
};

bool peer_file_allowed(const char *name)
{
    for (size_t i = 0; i < sizeof peer_files / sizeof peer_files[0]; i++)
        if (strcmp(name, peer_files[i]) == 0)
            return true;
    return false;
}

int peer_server_open(const char *data_dir, struct peer_server **out)
{
    int fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return snap_fail_errno("peer data directory %s", data_dir);
    struct peer_server *p = snap_calloc(1, sizeof *p);
    if (!p || !(p->dir = snap_strdup(data_dir))) {
        snap_free(p);
        close(fd);
        return snap_fail(SNAP_ENOMEM, "out of memory");
    }
    p->dirfd = fd;
    pthread_mutex_init(&p->lock, NULL);
    *out = p;
    return 0;
}

void peer_server_close(struct peer_server *p)
{
    if (!p)
        return;
    close(p->dirfd);
    pthread_mutex_destroy(&p->lock);
    snap_free(p->dir);
    snap_free(p);
}

static bool pin(struct peer_server *p, const snap_uuid *id)
{
    bool ok = false;
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < p->npins; i++)
        if (!snap_uuid_cmp(&p->pins[i].id, id)) {
            p->pins[i].count++;
            ok = true;
            goto out;
        }
    if (p->npins < PEER_MAX_PINS) {
        p->pins[p->npins].id = *id;
        p->pins[p->npins].count = 1;
        p->npins++;
        ok = true;
    }
out:
    pthread_mutex_unlock(&p->lock);
    return ok;
}

static void unpin(struct peer_server *p, const snap_uuid *id)
{
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < p->npins; i++)
        if (!snap_uuid_cmp(&p->pins[i].id, id)) {
            if (--p->pins[i].count == 0)
                p->pins[i] = p->pins[--p->npins];
            break;
        }
    pthread_mutex_unlock(&p->lock);
}

void peer_metrics(struct peer_server *p, struct peer_metrics *m)
{
    m->requests = p->requests;
    m->bytes = p->bytes;
    m->errors = p->errors;
    m->not_found = p->not_found;
    m->gone = p->gone;
    pthread_mutex_lock(&p->lock);
    m->pinned = p->npins;
    pthread_mutex_unlock(&p->lock);
}

static void answer(struct peer_server *p, struct httpd_conn *c, int status, const char *msg, bool head)
{
    if (status >= 400)
        p->errors++;
    if (status == 404)
        p->not_found++;
    httpd_send(c, status, "Content-Type: text/plain\r\n", msg, strlen(msg), head);
}

static void serve_metrics(struct peer_server *p, struct httpd_conn *c, bool head)
{
    struct peer_metrics m;
    peer_metrics(p, &m);
    const struct {
        const char *name, *help;
        enum prom_type type;
        uint64_t v;
    } rows[] = {
        {"snapctl_peer_requests_total", "Requests received.", PROM_COUNTER, m.requests},
        {"snapctl_peer_bytes_served_total", "Body bytes sent.", PROM_COUNTER, m.bytes},
        {"snapctl_peer_errors_total", "Requests answered with a 4xx or 5xx status.", PROM_COUNTER, m.errors},
        {"snapctl_peer_not_found_total", "Requests answered 404: this host does not have the build file.",
         PROM_COUNTER, m.not_found},
        {"snapctl_peer_sent_to_storage_total", "Requests answered 410: the build's upload finished.",
         PROM_COUNTER, m.gone},
        {"snapctl_peer_pinned_builds", "Builds being read right now.", PROM_GAUGE, m.pinned},
    };
    struct snap_buf b;
    snap_buf_init(&b, 2048, 1u << 16);
    struct prom pr = {.b = &b};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        prom_one(&pr, rows[i].name, rows[i].type, rows[i].help, rows[i].v);
    httpd_send_metrics(c, &pr, head);
    snap_buf_free(&b);
}

/* Open {uuid}/{file} under the data directory, refusing symlinks at both steps. */
static int open_object(struct peer_server *p, const char *uuid, const char *file, int *dfd_out)
{
    int dfd = openat(p->dirfd, uuid, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    int fd = openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        close(dfd);
        errno = e;
        return -1;
    }
    *dfd_out = dfd;
    return fd;
}

static bool is_header(const char *file)
{
    size_t n = strlen(file);
    return n > 7 && strcmp(file + n - 7, ".header") == 0;
}

/* Send [off, off+len) of a header with the v4/v5 "upload not finished" flag set: the bytes asked
 * for are read straight from the file and one byte is patched if it is among them -- the header is
 * never decoded or re-encoded, and a HEAD reads nothing but the two format bytes. */
static void send_header_unfinished(struct peer_server *p, struct httpd_conn *c, int fd, uint64_t size,
                                   int status, const char *extra, uint64_t off, uint64_t len, bool head)
{
    if (size > PEER_HEADER_MAX) {
        answer(p, c, 500, "header too large to serve\n", head);
        return;
    }
    if (head) {
        httpd_send(c, status, extra, NULL, len, true);
        return;
    }
    uint8_t fmtb[2] = {0, 0};
    uint8_t *buf = snap_malloc(len ? len : 1);
    if (!buf || (size >= 65 && pread(fd, fmtb, 2, 0) != 2) || pread(fd, buf, len, (off_t)off) != (ssize_t)len) {
        snap_free(buf);
        answer(p, c, 500, "cannot read the header\n", head);
        return;
    }
    unsigned fmt = size >= 65 ? (unsigned)(fmtb[0] | fmtb[1] << 8) : 0;
    if ((fmt == 4 || fmt == 5) && off <= 64 && 64 < off + len)
        buf[64 - off] |= 0x01;
    httpd_send(c, status, extra, buf, len, false);
    p->bytes += len;
    snap_free(buf);
}

void peer_handle(void *ctx, struct httpd_conn *c, const struct httpd_req *req)
{
    struct peer_server *p = ctx;
    bool head = !strcmp(req->method, "HEAD");
    p->requests++;
    if (!strcmp(req->target, "/metrics")) {
        serve_metrics(p, c, head);
        return;
    }
    /* /v1/builds/{36-char uuid}/{file} -- nothing else, no percent-decoding at all. */
    static const char prefix[] = "/v1/builds/";
    const char *t = req->target;
    if (strncmp(t, prefix, sizeof prefix - 1) != 0) {
        answer(p, c, 404, "not found\n", head);
        return;
    }
    t += sizeof prefix - 1;
    const char *slash = strchr(t, '/');
    char uuid_s[SNAP_UUID_STRLEN + 1], file[64];
    snap_uuid id;
    if (!slash || slash - t != SNAP_UUID_STRLEN) {
        answer(p, c, 400, "expected /v1/builds/{uuid}/{file}\n", head);
        return;
    }
    memcpy(uuid_s, t, SNAP_UUID_STRLEN);
    uuid_s[SNAP_UUID_STRLEN] = '\0';
    if (snap_uuid_parse(uuid_s, &id)) {
        answer(p, c, 400, "build id is not a UUID\n", head);
        return;
    }
    snap_uuid_format(&id, uuid_s); /* our own spelling from here on */
    if (strlen(slash + 1) >= sizeof file || !peer_file_allowed(slash + 1)) {
        answer(p, c, 400, "unknown object name\n", head);
        return;
    }
    strcpy(file, slash + 1);

    if (!pin(p, &id)) {
        answer(p, c, 503, "too many builds being read\n", head);
        return;
    }
    int dfd = -1, fd = open_object(p, uuid_s, file, &dfd);
    struct stat st;
    if (fd < 0) {
        answer(p, c, errno == ENOENT || errno == ENOTDIR ? 404 : errno == ELOOP ? 403 : 500,
               errno == ELOOP ? "refused: a symlink\n" : "no such build file here\n", head);
        goto out;
    }
    if (faccessat(dfd, PEER_DONE_MARKER, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        p->errors++;
        p->gone++;
        httpd_send(c, 410, "X-Snapctl-Use-Storage: 1\r\nContent-Type: text/plain\r\n",
                   "the upload finished: read this build from storage\n", 50, head);
        goto out;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        answer(p, c, 404, "no such build file here\n", head);
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size, off = 0, len = size;
    int status = 200;
    char extra[160];
    snprintf(extra, sizeof extra, "Accept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\n");
    const char *range = httpd_header(req, "range");
    if (range) {
        int e = httpd_parse_range(range, size, &off, &len);
        if (e == SNAP_ERANGE) {
            snprintf(extra, sizeof extra, "Content-Range: bytes */%llu\r\n", (unsigned long long)size);
            p->errors++;
            httpd_send(c, 416, extra, NULL, 0, head);
            goto out;
        }
        if (e == 0) {
            status = 206;
            snprintf(extra, sizeof extra,
                     "Accept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Range: bytes %llu-%llu/%llu\r\n",
                     (unsigned long long)off, (unsigned long long)(off + len - 1), (unsigned long long)size);
        } else {
            off = 0;
            len = size;
        }
    }
    if (is_header(file)) {
        send_header_unfinished(p, c, fd, size, status, extra, off, len, head);
    } else if (httpd_send_fd(c, status, extra, fd, off, len, head) == 0 && !head) {
        p->bytes += len;
    }
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    unpin(p, &id);
}
