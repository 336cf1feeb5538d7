/* jsonr.h -- a small, capped, strict JSON reader: service-account key files, OAuth2 token
 * responses, a build's metadata.json.
 *
 *   struct jsonr_doc *doc;
 *   int err = jsonr_parse(buf, len, &doc);    // 0, SNAP_EFORMAT, SNAP_ETOOBIG, SNAP_ENOMEM
 *   const struct jsonr_value *key = jsonr_root(doc);
 *   const char *pem; int64_t ttl;
 *   err = jsonr_get_str(key, "private_key", &pem, NULL);   // SNAP_ENOTFOUND / SNAP_EFORMAT + message
 *   err = jsonr_get_i64(tok, "expires_in", &ttl);
 *   jsonr_free(doc);
 *
 * RFC 8259 and nothing more: one value of any type, whitespace around it, nothing after it; no
 * comments, no trailing commas, no byte order mark, no control characters or invalid UTF-8 in
 * strings, no lone surrogates (\uD800 alone).  Escapes, \uXXXX with surrogate pairs included,
 * are decoded to UTF-8; a string may hold \u0000, so its length is reported beside it.  A
 * number is kept as a double, and also as an int64 when it is written as an integer that fits.
 * Object members keep their order; lookups by key take the first member with that key.
 *
 * Input is capped at JSONR_MAX_INPUT bytes (SNAP_ETOOBIG) and nesting at JSONR_MAX_DEPTH; anything
 * malformed is SNAP_EFORMAT with a message naming the line and what was wrong.  All values
 * belong to the document and live until jsonr_free().
 */
#ifndef SNAP_JSONR_H
#define SNAP_JSONR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONR_MAX_INPUT (1u << 20)
#define JSONR_MAX_DEPTH 32

enum jsonr_type { JSONR_NULL, JSONR_BOOL, JSONR_NUMBER, JSONR_STRING, JSONR_ARRAY, JSONR_OBJECT };

struct jsonr_doc;
struct jsonr_value;

/* Parse len bytes at buf into *out (jsonr_free it).  On error *out is NULL. */
int jsonr_parse(const void *buf, size_t len, struct jsonr_doc **out);
void jsonr_free(struct jsonr_doc *doc);
const struct jsonr_value *jsonr_root(const struct jsonr_doc *doc);

enum jsonr_type jsonr_type(const struct jsonr_value *v);
/* "null", "boolean", "number", "string", "array", "object": for messages. */
const char *jsonr_type_name(enum jsonr_type t);

/* Scalars; each returns false when v is NULL or not of that kind. */
bool jsonr_bool(const struct jsonr_value *v, bool *out);
bool jsonr_double(const struct jsonr_value *v, double *out);
/* Only numbers written as integers (no fraction or exponent) within int64. */
bool jsonr_i64(const struct jsonr_value *v, int64_t *out);
/* The decoded string (NUL-terminated; len may be NULL), or NULL when v is not a string. */
const char *jsonr_str(const struct jsonr_value *v, size_t *len);

/* Arrays and objects: the number of elements/members, and iteration in document order. */
size_t jsonr_count(const struct jsonr_value *v);
const struct jsonr_value *jsonr_first(const struct jsonr_value *container);
const struct jsonr_value *jsonr_next(const struct jsonr_value *v);
/* The key of an object member (NULL inside an array, for the root, or for NULL); len may be NULL. */
const char *jsonr_key(const struct jsonr_value *member, size_t *len);
/* Element i of an array or object (O(i)), or NULL. */
const struct jsonr_value *jsonr_at(const struct jsonr_value *container, size_t i);

/* The first member named key of object obj; NULL if obj is not an object or has no such key. */
const struct jsonr_value *jsonr_member(const struct jsonr_value *obj, const char *key);
/* Follow a path of member keys separated by '/' ("a/b/c"); "" is v itself. */
const struct jsonr_value *jsonr_path(const struct jsonr_value *v, const char *path);

/* Typed lookups by path for callers that report what was wrong: 0, SNAP_ENOTFOUND ("no field
 * "client_email""), or SNAP_EFORMAT ("field "expires_in" is a string, expected an integer"). */
int jsonr_get_str(const struct jsonr_value *v, const char *path, const char **out, size_t *len);
int jsonr_get_i64(const struct jsonr_value *v, const char *path, int64_t *out);
int jsonr_get_double(const struct jsonr_value *v, const char *path, double *out);
int jsonr_get_bool(const struct jsonr_value *v, const char *path, bool *out);

#endif
