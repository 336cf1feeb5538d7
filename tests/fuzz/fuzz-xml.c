/* fuzz-xml.c -- libFuzzer target for lib/store/xml: any input parses or fails cleanly
 * (SNAP_EFORMAT / SNAP_ETOOBIG, never a crash), and a parsed tree holds its invariants. */
#include "base/err.h"
#include "codec/xml.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void walk(const struct xml_node *n, int depth)
{
    if (depth > XML_MAX_DEPTH)
        abort();
    for (; n; n = xml_next(n, NULL)) {
        size_t len;
        const char *t = xml_text(n, &len);
        if (!xml_name(n)[0] || strlen(t) != len || !xml_is(n, xml_name(n)))
            abort();
        walk(xml_first(n, NULL), depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct xml_doc *d;
    int err = xml_parse(data, size, &d);
    if (err) {
        if ((err != SNAP_EFORMAT && err != SNAP_ETOOBIG) || d)
            abort();
        return 0;
    }
    const struct xml_node *r = xml_root(d);
    walk(r, 1);
    char buf[64];
    /* The lookups the S3 and GCS code makes. */
    static const char *const paths[] = {"Code", "Message", "UploadId", "ETag", "Upload/Key", "Contents/Size", ""};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const char *t = xml_get_text(r, paths[i]);
        int e = xml_copy_text(r, paths[i], buf, sizeof buf);
        if ((t == NULL) != (e == SNAP_ENOTFOUND) || (e == 0 && strcmp(buf, t) != 0))
            abort();
    }
    xml_free(d);
    return 0;
}
