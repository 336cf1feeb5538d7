/* build.c -- upload a build directory ({buildId}/memfile, .header, rootfs.ext4, ...) in the order
 * that keeps storage consistent for readers: data objects first, then headers and metadata.json,
 * so a header never names data that is not there yet.  Empty diffs are skipped. */
#include "upload/upload.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "base/util.h"
#include "crypto/sha256.h"
#include "header/header.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define HEADER_MAX (512u << 20)

/* Upload order: the data objects (with the header that says whether they hold anything), then the rest. */
static const struct {
    const char *name, *header;
    bool data;
} build_files[UPLOAD_BUILD_FILES] = {
    {"memfile", "memfile.header", true}, {"rootfs.ext4", "rootfs.ext4.header", true}, {"snapfile", NULL, true},
    {"memfile.header", NULL, false},     {"rootfs.ext4.header", NULL, false},         {"metadata.json", NULL, false},
};

/* The index of the item named `header` (NULL: none, 0). */
static int header_item(const char *header)
{
    for (int i = 0; header && i < UPLOAD_BUILD_FILES; i++)
        if (strcmp(build_files[i].name, header) == 0)
            return i;
    return 0;
}

/* True when the header at path maps no byte to build id (a diff with no dirty data). */
static int header_maps_nothing(const char *path, const snap_uuid *id, bool *nothing)
{
    uint8_t *buf;
    size_t len;
    struct hdr *h;
    int err = snap_read_file(path, HEADER_MAX, &buf, &len);
    if (err)
        return err;
    err = hdr_parse(buf, len, &h);
    snap_free(buf);
    if (err)
        return snap_fail_ctx(err, "%s", path);
    *nothing = true;
    for (size_t i = 0; i < h->n && *nothing; i++)
        if (h->e[i].build != HDR_ZERO && h->e[i].length && snap_uuid_cmp(&h->ids[h->e[i].build], id) == 0)
            *nothing = false;
    hdr_free(h);
    return 0;
}

/* The header at hpath with build id's record set to its data as uploaded: uncompressed size,
 * SHA-256 and (comp != 0) compression and full frame table; serialized into *out as `format`,
 * or 0: the header's own format, at least 4 when compressed.  A plain build in a v1..v3 header
 * without `format` has nowhere to record it: *out stays NULL and the header goes up as it is. */
static int rewrite_header(const char *hpath, const snap_uuid *id, uint64_t usize, const uint8_t sha[32],
                          uint32_t comp, const struct hdr_frame *f, uint32_t nf, unsigned format,
                          uint8_t **out, size_t *outlen)
{
    uint8_t *buf;
    size_t len;
    struct hdr *h = NULL;
    int err = snap_read_file(hpath, HEADER_MAX, &buf, &len);
    if (err)
        return err;
    if ((err = hdr_parse(buf, len, &h)) == 0 && !format)
        format = h->format < 4 ? (comp ? 4 : 0) : h->format;
    if (!err && format && (err = hdr_synth_builds(h)) == 0 && (err = hdr_set_build(h, id, (int64_t)usize, sha)) == 0 &&
        (err = hdr_set_frames(h, id, comp, f, nf)) == 0)
        err = hdr_serialize(h, format, out, outlen);
    if (err)
        snap_fail_ctx(err, "%s", hpath);
    hdr_free(h);
    snap_free(buf);
    return err;
}

/* Compress data item i, upload it as {id}/{name}.{comp} and make its header's new bytes. */
static int upload_compressed_item(struct store *s, const char *build_id, const snap_uuid *id, const char *path,
                                  const char *hpath, const struct upload_build_opts *o,
                                  struct upload_build_item *it, uint8_t **hbuf, size_t *hlen)
{
    struct stat st;
    if (stat(hpath, &st) != 0)
        return snap_fail(SNAP_ENOTFOUND, "%s: --compress needs the header beside the data, to record the "
                         "frame table in", hpath);
    char key[96], fdpath[64];
    snprintf(key, sizeof key, "%s/%s.%s", build_id, it->name, hdr_comp_name(o->compress.comp));
    struct upload_compressed c;
    int err;
    if (store_can_multipart(s)) { /* compressed and sent at once, in parts */
        err = upload_compress_stream(s, key, path, &o->compress, &o->file, &c, &it->r);
        if (!err)
            err = rewrite_header(hpath, id, c.usize, c.sha256, o->compress.comp, c.frames, c.nframes,
                                 o->header_format, hbuf, hlen);
    } else { /* compressed into a temp file, then put like any other file */
        if ((err = upload_compress_file(path, &o->compress, &c)) != 0)
            return err;
        snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", c.fd);
        struct upload_opts uo = o->file;
        uo.uncompressed_size = c.usize;
        if ((err = rewrite_header(hpath, id, c.usize, c.sha256, o->compress.comp, c.frames, c.nframes,
                                  o->header_format, hbuf, hlen)) == 0)
            err = upload_file(s, key, fdpath, &uo, &it->r);
    }
    it->comp = o->compress.comp;
    it->nframes = c.nframes;
    it->usize = c.usize;
    upload_compressed_free(&c);
    return err;
}

int upload_build(struct store *s, const char *dir, const struct upload_build_opts *o, char build_id[37],
                 struct upload_build_item items[UPLOAD_BUILD_FILES])
{
    char d[PATH_MAX];
    if ((size_t)snprintf(d, sizeof d, "%s", dir) >= sizeof d)
        return snap_fail(SNAP_EUSAGE, "%s: path too long", dir);
    size_t dl = strlen(d);
    while (dl > 1 && d[dl - 1] == '/')
        d[--dl] = '\0';
    const char *base = strrchr(d, '/');
    base = base ? base + 1 : d;
    snap_uuid id;
    if (snap_uuid_parse(base, &id) != 0)
        return snap_fail(SNAP_EUSAGE, "%s: not a build directory: its name must be the build id (a UUID), "
                         "as in DATA_DIR/{buildId}", dir);
    snap_uuid_format(&id, build_id);
    unsigned present = 0;
    char path[UPLOAD_BUILD_FILES][PATH_MAX + 32];
    for (int i = 0; i < UPLOAD_BUILD_FILES; i++) {
        struct stat st;
        items[i] = (struct upload_build_item){.name = build_files[i].name};
        snprintf(path[i], sizeof path[i], "%s/%s", d, build_files[i].name);
        if (stat(path[i], &st) == 0 && S_ISREG(st.st_mode))
            items[i].present = true, present++;
    }
    if (!present)
        return snap_fail(SNAP_ENOTFOUND, "%s: no build files in it (memfile, rootfs.ext4, snapfile, headers, "
                         "metadata.json)", dir);
    /* Decide every skip before anything goes up: a bad header fails the build, not half of it. */
    for (int i = 0; i < UPLOAD_BUILD_FILES; i++) {
        struct stat st;
        if (!items[i].present || !build_files[i].data || stat(path[i], &st) != 0)
            continue;
        bool nothing = st.st_size == 0;
        char hp[PATH_MAX + 32] = "";
        if (build_files[i].header)
            snprintf(hp, sizeof hp, "%s/%s", d, build_files[i].header);
        if (!nothing && build_files[i].header && stat(hp, &st) == 0) {
            int err = header_maps_nothing(hp, &id, &nothing);
            if (err)
                return err;
        }
        items[i].skipped = nothing;
    }
    uint8_t *hbuf[UPLOAD_BUILD_FILES] = {NULL};
    size_t hlen[UPLOAD_BUILD_FILES] = {0};
    int err = 0;
    for (int i = 0; i < UPLOAD_BUILD_FILES && !err; i++) {
        if (!items[i].present)
            continue;
        if (items[i].skipped) {
            if (o && o->event)
                o->event(o->event_ctx, items[i].name, "empty diff, not uploaded");
            continue;
        }
        bool comp = o && o->compress.comp && build_files[i].header;
        if (o && o->event)
            o->event(o->event_ctx, items[i].name, comp ? "compress and upload" : "upload");
        char key[64];
        snprintf(key, sizeof key, "%s/%s", build_id, items[i].name);
        int h = header_item(build_files[i].header);
        if (comp) {
            char hp[PATH_MAX + 32];
            snprintf(hp, sizeof hp, "%s/%s", d, build_files[i].header);
            err = upload_compressed_item(s, build_id, &id, path[i], hp, o, &items[i], &hbuf[h], &hlen[h]);
        } else if (hbuf[i]) { /* a header rewritten for its compressed data */
            uint8_t sum[32];
            sha256(hbuf[i], hlen[i], sum);
            memcpy(items[i].r.sha256, sum, sizeof sum);
            err = store_put(s, key, hbuf[i], hlen[i], &(struct store_put_opts){.sha256 = sum});
            items[i].r.bytes = hlen[i];
        } else {
            err = upload_file(s, key, path[i], o ? &o->file : NULL, &items[i].r);
            if (!err && build_files[i].header && items[h].present) /* record the data's SHA-256 */
                err = rewrite_header(path[h], &id, items[i].r.bytes, items[i].r.sha256, HDR_COMP_NONE, NULL, 0,
                                     o ? o->header_format : 0, &hbuf[h], &hlen[h]);
        }
        if (err)
            snap_fail_ctx(err, "build %s: %s", build_id, items[i].name);
    }
    for (int i = 0; i < UPLOAD_BUILD_FILES; i++)
        snap_free(hbuf[i]);
    return err;
}
