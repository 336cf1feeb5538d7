/* xml.h -- a small, capped, non-validating XML reader for S3 and GCS response bodies.
 *
 *   struct xml_doc *doc;
 *   int err = xml_parse(body, len, &doc);          // 0, SNAP_EFORMAT, SNAP_ETOOBIG, SNAP_ENOMEM
 *   const struct xml_node *root = xml_root(doc);
 *   if (xml_is(root, "Error"))
 *       code = xml_get_text(root, "Code");         // NULL when absent, "" for <Code/>
 *   for (const struct xml_node *u = xml_first(root, "Upload"); u; u = xml_next(u, "Upload"))
 *       key = xml_get_text(u, "Key");
 *   xml_free(doc);
 *
 * The document is read whole into a tree; names are matched on their local part (the "s3:" of
 * "s3:Code" is ignored) and attributes, namespace declarations included, are checked for syntax
 * and dropped.  An element's text is its character data with entities (&amp; &lt; &gt; &quot;
 * &apos; &#N; &#xH;) and CDATA decoded and line ends normalised to \n, not trimmed; the text of
 * child elements is not part of it.  Whitespace before the document (S3 sends spaces while it
 * completes a multipart upload), a UTF-8 byte order mark, the XML declaration, comments and
 * processing instructions are accepted; a DOCTYPE is refused (no entity definitions, ever).
 *
 * Input is capped at XML_MAX_INPUT bytes (SNAP_ETOOBIG) and nesting at XML_MAX_DEPTH; anything
 * malformed is SNAP_EFORMAT with a message naming the line and what was wrong.  All strings
 * belong to the document and live until xml_free().
 */
#ifndef SNAP_XML_H
#define SNAP_XML_H

#include <stdbool.h>
#include <stddef.h>

#define XML_MAX_INPUT (1u << 20)
#define XML_MAX_DEPTH 32

struct xml_doc;
struct xml_node;

/* Parse len bytes at buf into *out (xml_free it).  On error *out is NULL. */
int xml_parse(const void *buf, size_t len, struct xml_doc **out);
void xml_free(struct xml_doc *doc);

/* The document element; never NULL for a parsed document. */
const struct xml_node *xml_root(const struct xml_doc *doc);

/* The local name ("Code" for <s3:Code>). */
const char *xml_name(const struct xml_node *n);
/* True if n's local name is name. */
bool xml_is(const struct xml_node *n, const char *name);
/* The decoded text ("" when empty); it holds no NUL, so *len == strlen() (len may be NULL). */
const char *xml_text(const struct xml_node *n, size_t *len);

/* The first child of parent, or the next sibling of n, with local name `name` (NULL: any). */
const struct xml_node *xml_first(const struct xml_node *parent, const char *name);
const struct xml_node *xml_next(const struct xml_node *n, const char *name);

/* Follow a relative path of local names ("Upload/UploadId"), taking the first match at each
 * step; "" is `from` itself.  NULL when some step is missing. */
const struct xml_node *xml_get(const struct xml_node *from, const char *path);
/* The text at path, or NULL when the element is missing. */
const char *xml_get_text(const struct xml_node *from, const char *path);
/* Copy the text at path into out[size] with a NUL: 0, SNAP_ENOTFOUND when missing, SNAP_ETOOBIG
 * when it does not fit (out is then "").  The message names the path. */
int xml_copy_text(const struct xml_node *from, const char *path, char *out, size_t size);

#endif
