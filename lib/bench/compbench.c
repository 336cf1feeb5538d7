/* compbench.c -- cold 4 KiB reads of a plain, an lz4 and a zstd build of one image over the
 * simulated store, against their floors (see compbench.h). */
#include "bench/compbench.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "base/util.h"
#include "bench/bench-run.h"
#include "device/builddev.h"
#include "header/header.h"
#include "bench/simstore.h"
#include "upload/upload.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_NAME "rootfs.ext4"
#define CB_UNIT (4u << 20)              /* the reads' distinct units: a plain chunk, two frames */

struct cb_build {
    snap_uuid id;
    uint32_t comp;
    uint8_t *hbuf;                    /* its v4 header */
    size_t hlen;
    struct hdr_frame *frames;
    uint32_t nframes;
    double *decode_ms;                /* per frame */
    uint64_t bytes_c;
};

struct compbench {
    char dir[PATH_MAX], store_url[PATH_MAX + 8];
    uint64_t size;
    int img_fd;
    struct store *files;              /* file:// store in dir */
    struct cb_build b[COMPBENCH_BUILDS];
};

static const uint32_t cb_comps[COMPBENCH_BUILDS] = {HDR_COMP_NONE, HDR_COMP_LZ4, HDR_COMP_ZSTD};

/* The v4 header of build b: one mapping over the image; its size, SHA-256 and frames. */
static int cb_header(struct compbench *cb, struct cb_build *b, const uint8_t sha[32])
{
    struct hdr_meta meta = {.version = 4, .block_size = HDR_PAGE, .size = cb->size, .build_id = b->id,
                            .base_build_id = b->id};
    struct hdr *h;
    int err = hdr_new(&meta, &h);
    if (err)
        return err;
    if ((err = hdr_append(h, 0, cb->size, &b->id, 0)) == 0 && (err = hdr_synth_builds(h)) == 0 &&
        (err = hdr_set_build(h, &b->id, (int64_t)cb->size, sha)) == 0 &&
        (err = hdr_set_frames(h, &b->id, b->comp, b->frames, b->nframes)) == 0)
        err = hdr_serialize(h, 4, &b->hbuf, &b->hlen);
    hdr_free(h);
    return err;
}

/* Decode every frame of c once, timed (the floor's decode term), checking it against the image. */
static int cb_time_decodes(struct compbench *cb, struct cb_build *b, int fd)
{
    struct hdr_frame_dec *dec = NULL;
    uint8_t *src = snap_malloc(HDR_FRAME_MAX), *dst = snap_malloc(HDR_FRAME_MAX), *want = snap_malloc(HDR_FRAME_MAX);
    int err = src && dst && want && b->nframes ? 0 : snap_fail(SNAP_ENOMEM, "bench: out of memory");
    if (!err && !(b->decode_ms = snap_calloc(b->nframes, sizeof *b->decode_ms)))
        err = snap_fail(SNAP_ENOMEM, "bench: out of memory");
    if (!err)
        err = hdr_frame_dec_new(&dec);
    for (uint32_t k = 0; !err && k < b->nframes; k++) {
        const struct hdr_frame *f = &b->frames[k];
        if ((err = snap_pread_full(fd, src, (size_t)f->size_c, (uint64_t)f->start_c, "compressed image")) ||
            (err = snap_pread_full(cb->img_fd, want, (size_t)f->size_u, (uint64_t)f->start_u, "image")))
            break;
        double best = 0;
        for (int rep = 0; !err && rep < 2; rep++) { /* the faster of two: the second runs warm */
            uint64_t t0 = snap_now_ns();
            err = hdr_frame_decode(dec, (enum hdr_comp)b->comp, src, (size_t)f->size_c, dst, (size_t)f->size_u);
            double ms = (double)(snap_now_ns() - t0) / 1e6;
            best = rep == 0 || ms < best ? ms : best;
        }
        if (!err && memcmp(dst, want, (size_t)f->size_u) != 0)
            err = snap_fail(SNAP_EHASH, "bench: %s frame %u does not decode to the image", hdr_comp_name(b->comp), k);
        b->decode_ms[k] = best;
    }
    hdr_frame_dec_free(dec);
    snap_free(src);
    snap_free(dst);
    snap_free(want);
    return err;
}

/* Build b into the file store: plain as a copy of the image, else compressed, with its header. */
static int cb_build_one(struct compbench *cb, const char *image, int level, struct cb_build *b)
{
    char key[96], u[37];
    int err = snap_uuid_random(&b->id);
    if (err)
        return err;
    snap_uuid_format(&b->id, u);
    struct upload_result r;
    if (!b->comp) {
        snprintf(key, sizeof key, "%s/" FILE_NAME, u);
        b->bytes_c = cb->size;
        if ((err = upload_file(cb->files, key, image, NULL, &r)) == 0)
            err = cb_header(cb, b, r.sha256);
        return err;
    }
    struct upload_compress_opts co = {.comp = b->comp, .level = level, .tmp_dir = cb->dir};
    struct upload_compressed c;
    if ((err = upload_compress_file(image, &co, &c)) != 0)
        return err;
    char fdpath[64];
    snprintf(key, sizeof key, "%s/" FILE_NAME ".%s", u, hdr_comp_name(b->comp));
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", c.fd);
    b->bytes_c = c.bytes;
    b->nframes = c.nframes;
    b->frames = c.frames;
    c.frames = NULL;
    struct upload_opts uo = {.uncompressed_size = c.usize};
    if ((err = upload_file(cb->files, key, fdpath, &uo, &r)) == 0 && (err = cb_header(cb, b, c.sha256)) == 0)
        err = cb_time_decodes(cb, b, c.fd);
    upload_compressed_free(&c);
    return err;
}

int compbench_prepare(const struct compbench_opts *o, struct compbench **out)
{
    struct compbench *cb = snap_calloc(1, sizeof *cb);
    if (!cb)
        return snap_fail(SNAP_ENOMEM, "bench: out of memory");
    cb->img_fd = -1;
    struct stat st;
    int err = 0;
    if ((size_t)snprintf(cb->dir, sizeof cb->dir, "%s/compbench-%ld", o->work_dir, (long)getpid()) >= sizeof cb->dir)
        err = snap_fail(SNAP_EUSAGE, "%s: path too long", o->work_dir);
    else if ((cb->img_fd = open(o->image, O_RDONLY | O_CLOEXEC)) < 0 || fstat(cb->img_fd, &st) != 0)
        err = snap_fail_errno("%s: the image to benchmark", o->image);
    else if ((cb->size = (uint64_t)st.st_size) < 2 * CB_UNIT || cb->size % CB_UNIT)
        err = snap_fail(SNAP_EUSAGE, "%s: %lld bytes; the benchmark wants an image of at least 8 MiB, a multiple "
                        "of 4 MiB (a file system image)", o->image, (long long)st.st_size);
    else if (mkdir(cb->dir, 0700) != 0)
        err = snap_fail_errno("%s", cb->dir);
    if (!err) {
        snprintf(cb->store_url, sizeof cb->store_url, "file://%s", cb->dir);
        err = store_open(cb->store_url, NULL, &cb->files);
    }
    for (int i = 0; !err && i < COMPBENCH_BUILDS; i++) {
        cb->b[i].comp = cb_comps[i];
        err = cb_build_one(cb, o->image, o->level, &cb->b[i]);
    }
    if (err) {
        compbench_free(cb);
        return err;
    }
    *out = cb;
    return 0;
}

static void cb_rm_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[PATH_MAX];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", path, e->d_name) >= sizeof p)
            continue;
        if (e->d_type == DT_DIR)
            cb_rm_tree(p);
        else
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(path);
}

void compbench_free(struct compbench *cb)
{
    if (!cb)
        return;
    for (int i = 0; i < COMPBENCH_BUILDS; i++) {
        snap_free(cb->b[i].hbuf);
        snap_free(cb->b[i].frames);
        snap_free(cb->b[i].decode_ms);
    }
    store_close(cb->files);
    if (cb->dir[0])
        cb_rm_tree(cb->dir);
    if (cb->img_fd >= 0)
        close(cb->img_fd);
    snap_free(cb);
}

/* A device serving build b over a fresh simulated store in front of the file store, its
 * chunker already set up by one untimed read in the image's last 4 MiB (which no timed read
 * touches). */
static int cb_open(struct compbench *cb, const struct cb_build *b, const struct compbench_profile *p, uint8_t *buf,
                   struct builddev **out)
{
    /* Every key of the simulated store has one size: the largest object's (incompressible data
     * makes a compressed object a little larger than the image); reads stay inside their object. */
    struct sim_opts so = {.size = snap_max_u64(cb->size, b->bytes_c), .inner = cb->files, .ttfb_us = p->ttfb_us,
                          .bytes_per_sec = p->bytes_per_sec};
    struct store *sim;
    struct hdr *h;
    int err = store_sim_open(&so, &sim);
    if (err)
        return err;
    if ((err = hdr_parse(b->hbuf, b->hlen, &h)) != 0) {
        store_close(sim);
        return err;
    }
    if ((err = builddev_open(h, sim, &(struct builddev_opts){.file = FILE_NAME, .cache_dir = cb->dir}, out)) != 0)
        return err;
    if ((err = builddev_ops.pread(*out, buf, COMPBENCH_READ, cb->size - COMPBENCH_READ)) != 0)
        builddev_close(*out);
    return err;
}

static uint64_t cb_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t cb_frame_at(const struct cb_build *b, uint64_t off)
{
    uint32_t k = 0;
    while (k + 1 < b->nframes && (uint64_t)b->frames[k + 1].start_u <= off)
        k++;
    return k;
}

/* What re-times a frame's decode right after each read, in the same conditions (cb_redecode). */
struct cb_timer {
    int fd;                           /* the compressed object in the file store */
    uint8_t *src, *dst;
    struct hdr_frame_dec *dec;
};

static int cb_timer_open(struct compbench *cb, const struct cb_build *b, struct cb_timer *t)
{
    char path[PATH_MAX + 128], u[37];
    snap_uuid_format(&b->id, u);
    snprintf(path, sizeof path, "%s/%s/" FILE_NAME ".%s", cb->dir, u, hdr_comp_name(b->comp));
    *t = (struct cb_timer){.fd = open(path, O_RDONLY | O_CLOEXEC), .src = snap_malloc(HDR_FRAME_MAX),
                           .dst = snap_malloc(HDR_FRAME_MAX)};
    if (t->fd < 0)
        return snap_fail_errno("%s", path);
    if (!t->src || !t->dst || hdr_frame_dec_new(&t->dec) != 0)
        return snap_fail(SNAP_ENOMEM, "bench: out of memory");
    return 0;
}

static void cb_timer_close(struct cb_timer *t)
{
    if (t->fd >= 0)
        close(t->fd);
    snap_free(t->src);
    snap_free(t->dst);
    hdr_frame_dec_free(t->dec);
}

/* Decode frame k twice into a warm buffer, the faster in ms (the floor's decode term); falls back
 * to the time measured at prepare when the object cannot be read. */
static double cb_redecode(const struct cb_build *b, struct cb_timer *t, uint32_t k)
{
    const struct hdr_frame *f = &b->frames[k];
    if (snap_pread_full(t->fd, t->src, (size_t)f->size_c, (uint64_t)f->start_c, "compressed object") != 0)
        return b->decode_ms[k];
    double best = 0;
    for (int rep = 0; rep < 2; rep++) {
        uint64_t t0 = snap_now_ns();
        if (hdr_frame_decode(t->dec, (enum hdr_comp)b->comp, t->src, (size_t)f->size_c, t->dst, (size_t)f->size_u))
            return b->decode_ms[k];
        double ms = (double)(snap_now_ns() - t0) / 1e6;
        best = rep == 0 || ms < best ? ms : best;
    }
    return best;
}

/* The floor of a read at off of build b (ms), with its frame's decode time dec. */
static double cb_floor(const struct cb_build *b, const struct compbench_profile *p, uint64_t off, double dec)
{
    double ttfb = p->ttfb_us / 1000.0, bw = p->bytes_per_sec ? (double)p->bytes_per_sec / 1000.0 : 0;
    if (!b->comp)
        return ttfb + (bw ? COMPBENCH_READ / bw : 0);
    return ttfb + (bw ? b->frames[cb_frame_at(b, off)].size_c / bw : 0) + dec;
}

/* The offsets: one 4 KiB page in each of n distinct 4 MiB units (a plain chunk, two frames), so
 * every read is cold; the last unit is the warm-up's.  perm: room for every unit. */
static void cb_offsets(uint64_t size, uint64_t seed, unsigned n, uint64_t *perm, uint64_t *off)
{
    uint64_t units = size / CB_UNIT - 1, pages = CB_UNIT / COMPBENCH_READ;
    for (uint64_t i = 0; i < units; i++)
        perm[i] = i;
    for (unsigned i = 0; i < n; i++) { /* a partial Fisher-Yates shuffle */
        uint64_t j = i + cb_next(&seed) % (units - i), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        off[i] = perm[i] * CB_UNIT + cb_next(&seed) % pages * COMPBENCH_READ;
    }
}

unsigned compbench_max_reads(const struct compbench *cb)
{
    return (unsigned)(cb->size / CB_UNIT - 1);
}

/* The timed reads of one build. */
static int cb_run_build(struct compbench *cb, const struct cb_build *b, const struct compbench_profile *p,
                        const uint64_t *off, unsigned n, double *lat, uint8_t *buf, struct compbench_result *x)
{
    struct builddev *d = NULL;
    struct cb_timer tm = {.fd = -1};
    int err = b->comp ? cb_timer_open(cb, b, &tm) : 0;
    if (err || (err = cb_open(cb, b, p, buf, &d)) != 0) {
        cb_timer_close(&tm);
        return err;
    }
    double sum = 0, fsum = 0, dsum = 0;
    for (unsigned it = 0; !err && it < n; it++) {
        if (p->gap_ms)
            snap_sleep_until_ns(snap_now_ns() + (uint64_t)p->gap_ms * 1000000u);
        uint64_t t0 = snap_now_ns();
        err = builddev_ops.pread(d, buf, COMPBENCH_READ, off[it]);
        lat[it] = (double)(snap_now_ns() - t0) / 1e6;
        if (!err)
            err = snap_pread_full(cb->img_fd, buf + COMPBENCH_READ, COMPBENCH_READ, off[it], "image");
        x->mismatches += !err && memcmp(buf, buf + COMPBENCH_READ, COMPBENCH_READ) != 0;
        x->reads += !err;
        /* The decode term now, after the read, in the conditions it ran in (not at prepare). */
        double dec = b->comp ? cb_redecode(b, &tm, cb_frame_at(b, off[it])) : 0;
        sum += lat[it];
        fsum += cb_floor(b, p, off[it], dec);
        dsum += dec;
    }
    builddev_close(d);
    cb_timer_close(&tm);
    if (err || !n)
        return err;
    bench_sort(lat, n);
    x->avg_ms = sum / n;
    x->p50_ms = lat[n / 2];
    x->max_ms = lat[n - 1];
    x->floor_ms = fsum / n;
    x->decode_ms = dsum / n;
    x->vs_floor = x->floor_ms > 0 ? x->avg_ms / x->floor_ms : 0;
    return 0;
}

int compbench_run(struct compbench *cb, const struct compbench_profile *p, struct compbench_result r[COMPBENCH_BUILDS])
{
    unsigned n = p->iterations ? p->iterations : 50;
    if (n > compbench_max_reads(cb))
        return snap_fail(SNAP_EUSAGE, "bench: %u cold reads need %u distinct 4 MiB units; the image has %u (use a "
                         "larger image or fewer iterations)", n, n + 1, compbench_max_reads(cb) + 1);
    double *lat = snap_calloc(n, sizeof *lat);
    uint64_t *off = snap_calloc(n, sizeof *off), *perm = snap_calloc(cb->size / CB_UNIT, sizeof *perm);
    uint8_t *buf = snap_malloc(2 * COMPBENCH_READ);
    int err = lat && off && perm && buf ? 0 : snap_fail(SNAP_ENOMEM, "bench: out of memory");
    if (!err)
        cb_offsets(cb->size, p->seed, n, perm, off);
    /* The simulated store paces its slices with sleeps: the default 50 us timer slack would add
     * that to every 32 KiB.  The devices' fetch threads, started from here, inherit this. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    for (int i = 0; !err && i < COMPBENCH_BUILDS; i++) {
        const struct cb_build *b = &cb->b[i];
        r[i] = (struct compbench_result){.comp = b->comp, .bytes_u = cb->size, .bytes_c = b->bytes_c,
                                         .frames = b->nframes};
        r[i].ratio = b->bytes_c ? (double)cb->size / (double)b->bytes_c : 0;
        err = cb_run_build(cb, b, p, off, n, lat, buf, &r[i]);
    }
    snap_free(lat);
    snap_free(off);
    snap_free(perm);
    snap_free(buf);
    return err;
}

/* ---- the default image ---- */

struct cb_img {
    int fd;
    uint64_t pos, size;
    uint8_t *buf;
};

static int cb_add_file(struct cb_img *im, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0; /* unreadable: skipped */
    int err = 0;
    ssize_t got;
    while (!err && im->pos < im->size &&
           (got = read(fd, im->buf, (size_t)snap_min_u64(1u << 20, im->size - im->pos))) > 0) {
        err = snap_pwrite_full(im->fd, im->buf, (size_t)got, im->pos, "image");
        im->pos += (uint64_t)got;
    }
    close(fd);
    im->pos = snap_round_up(im->pos, 4096); /* the next file starts on a block */
    return err;
}

static int cb_walk(struct cb_img *im, const char *dir, int depth)
{
    struct dirent **ents;
    int n = depth > 12 ? -1 : scandir(dir, &ents, NULL, alphasort);
    int err = 0;
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        char p[PATH_MAX];
        struct stat st;
        if (!err && im->pos < im->size && strcmp(name, ".") && strcmp(name, "..") &&
            (size_t)snprintf(p, sizeof p, "%s/%s", dir, name) < sizeof p && lstat(p, &st) == 0)
            err = S_ISDIR(st.st_mode) ? cb_walk(im, p, depth + 1) : S_ISREG(st.st_mode) ? cb_add_file(im, p) : 0;
        free(ents[i]); /* scandir's own allocations */
    }
    if (n > 0)
        free(ents);
    return err;
}

int compbench_make_image(const char *path, uint64_t size, const char *const *dirs)
{
    struct cb_img im = {.size = size / CB_UNIT * CB_UNIT};
    if ((im.fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
        return snap_fail_errno("%s", path);
    int err = (im.buf = snap_malloc(1u << 20)) ? 0 : snap_fail(SNAP_ENOMEM, "bench: out of memory");
    for (size_t i = 0; !err && dirs[i] && im.pos < im.size; i++)
        err = cb_walk(&im, dirs[i], 0);
    if (!err && ftruncate(im.fd, (off_t)im.size) != 0)
        err = snap_fail_errno("%s", path);
    snap_free(im.buf);
    close(im.fd);
    return err;
}
