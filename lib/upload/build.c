/* build.c -- upload a build directory ({buildId}/memfile, .header, rootfs.ext4, ...) in the order
 * that keeps storage consistent for readers: data objects first, then headers and metadata.json,
 * so a header never names data that is not there yet.  Empty diffs are skipped. */
#include "upload/upload.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "base/util.h"
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
    for (int i = 0; i < UPLOAD_BUILD_FILES; i++) {
        if (!items[i].present)
            continue;
        if (items[i].skipped) {
            if (o && o->event)
                o->event(o->event_ctx, items[i].name, "empty diff, not uploaded");
            continue;
        }
        if (o && o->event)
            o->event(o->event_ctx, items[i].name, "upload");
        char key[64];
        snprintf(key, sizeof key, "%s/%s", build_id, items[i].name);
        int err = upload_file(s, key, path[i], o ? &o->file : NULL, &items[i].r);
        if (err)
            return snap_fail_ctx(err, "build %s: %s", build_id, items[i].name);
    }
    return 0;
}
