/* itree.h -- the trees the XML and JSON readers build, and their storage: every node in one growable array, linked
 * by index while the array may still move (it grows with realloc), then by pointer once it is
 * final, so lookups walk plain pointers.
 *
 *   struct node { ...; struct itree_link link; };
 *   itree_append(nodes, sizeof *nodes, offsetof(struct node, link), parent, last_child, idx);
 *   ...
 *   itree_finish(nodes, n, sizeof *nodes, offsetof(struct node, link));
 *   for (const struct node *c = root->link.child; c; c = c->link.next) ...
 */
#ifndef SNAP_ITREE_H
#define SNAP_ITREE_H

#include "base/buf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct itree_link {
    const void *child, *next; /* after itree_finish: first child, next sibling, or NULL */
    uint32_t child_i, next_i; /* while building: their indices; 0 = none (index 0 is the root) */
};

/* Link node idx as the last child of parent, whose last child so far is last (0: none). */
void itree_append(void *nodes, size_t size, size_t link_off, uint32_t parent, uint32_t last, uint32_t idx);

/* Turn the indices of n nodes of `size` bytes (link at link_off) into pointers. */
void itree_finish(void *nodes, size_t n, size_t size, size_t link_off);

/* A parsed document's storage, the readers' shared setup and teardown: its nodes in one capped
 * buffer (growing by doubling from 16, at most max nodes) and one arena for its strings,
 * allocated once at the size the reader proves enough (input length + 1).
 *
 *   itree_doc_init(&d, "JSON", "values", sizeof(struct v), offsetof(struct v, link), max, len + 1);
 *   itree_doc_add(&d, &idx);  ...  itree_doc_finish(&d);  ...  itree_doc_free(&d);
 */
struct itree_doc {
    struct snap_buf nodes;       /* nodes.len / size nodes */
    size_t size, link_off;       /* of one node */
    const char *lang, *noun;     /* "XML", "elements": for messages */
    char *arena;
    size_t arena_len, arena_cap;
};

/* 0, or SNAP_ENOMEM (the arena). */
int itree_doc_init(struct itree_doc *d, const char *lang, const char *noun, size_t size, size_t link_off,
                   size_t max, size_t arena_cap);
/* A new zeroed node at the end; *idx is its index.  SNAP_ETOOBIG past max, or SNAP_ENOMEM. */
int itree_doc_add(struct itree_doc *d, uint32_t *idx);
static inline void *itree_doc_node(const struct itree_doc *d, size_t i) { return d->nodes.data + i * d->size; }
static inline size_t itree_doc_count(const struct itree_doc *d) { return d->nodes.len / d->size; }
/* Parsing is done: links become pointers. */
void itree_doc_finish(struct itree_doc *d);
void itree_doc_free(struct itree_doc *d);

/* A syntax error at byte pos of in[0..len): SNAP_EFORMAT, "LANG line L (byte B): what". */
int itree_fail_at(const char *lang, const char *in, size_t len, size_t pos, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

#endif
