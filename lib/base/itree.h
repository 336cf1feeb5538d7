/* itree.h -- the trees the XML and JSON readers build: every node in one growable array, linked
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

#endif
