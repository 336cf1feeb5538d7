/* layout.c -- a build's object names in a store (see layout.h). */
#include "header/layout.h"

#include "base/err.h"
#include "base/mem.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

int hdr_layout_key(char *buf, size_t cap, const char *id, const char *file, const char *suffix)
{
    int n = snprintf(buf, cap, "%s/%s%s", id, file, suffix);
    if (n < 0 || (size_t)n >= cap)
        return snap_fail(SNAP_EUSAGE, "%s/%s%s: the object name is too long (at most %zu bytes)", id, file,
                         suffix, cap ? cap - 1 : 0);
    return 0;
}

void hdr_layout_free(struct hdr_layout *l)
{
    snap_free(l->store);
    snap_free(l->id);
    snap_free(l->file);
    snap_free(l->header_key);
    memset(l, 0, sizeof *l);
}

int hdr_layout_from_header_url(const char *url, struct hdr_layout *out)
{
    static const size_t sl = sizeof HDR_HEADER_SUFFIX - 1;
    struct hdr_layout l = {0};
    char *dir = NULL;
    int err = store_split_url(url, &dir, &l.file);
    size_t nl = l.file ? strlen(l.file) : 0;
    if (!err && (nl <= sl || strcmp(l.file + nl - sl, HDR_HEADER_SUFFIX) != 0))
        err = snap_fail(SNAP_EUSAGE, "%s: expected a path or URL ending in {file}.header, such as "
                        "/store/{ID}/rootfs.ext4.header", url);
    if (!err && (err = store_split_url(dir, &l.store, &l.id)) != 0)
        snap_fail_ctx(err, "%s: no directory above the build's", url);
    size_t kn = l.id ? strlen(l.id) + nl + 2 : 0;
    if (!err && !(l.header_key = snap_malloc(kn)))
        err = snap_fail(SNAP_ENOMEM, "out of memory");
    if (!err) {
        snprintf(l.header_key, kn, "%s/%s", l.id, l.file);
        l.file[nl - sl] = '\0';
        *out = l;
    } else {
        hdr_layout_free(&l);
    }
    snap_free(dir);
    return err;
}
