/* layout.h -- where a build's files are in a store.  A store is the directory (or bucket
 * prefix) holding one directory per build, named by its ID:
 *
 *   {ID}/{file}            the data ("rootfs.ext4", "memfile")
 *   {ID}/{file}.header     its header
 *   {ID}/{file}.lz4 .zstd  the data compressed in frames (a header with a frame table)
 *
 * so a header's URL names its store (two directories up), its build and its file.
 */
#ifndef SNAP_HDR_LAYOUT_H
#define SNAP_HDR_LAYOUT_H

#include <stddef.h>

#define HDR_HEADER_SUFFIX ".header"

struct hdr_layout {
    char *store;       /* the store's URL: the directory above {ID}/ */
    char *id;          /* {ID}: the build directory's name */
    char *file;        /* {file}: the data object's name, without ".header" */
    char *header_key;  /* {ID}/{file}.header: the header's key in the store */
};

/* Split a header's URL "STORE/{ID}/{file}.header" (any scheme: file://, s3://, ...).
 * SNAP_EUSAGE when it does not end in "/{file}.header" or has no directory above {ID}/.
 * On success free the parts with hdr_layout_free. */
int hdr_layout_from_header_url(const char *url, struct hdr_layout *out);
void hdr_layout_free(struct hdr_layout *l);

/* The key "{id}/{file}{suffix}" (suffix "" for the data, ".header", ".lz4", ...) into
 * buf[cap]; SNAP_EUSAGE when it does not fit. */
int hdr_layout_key(char *buf, size_t cap, const char *id, const char *file, const char *suffix);

#endif
