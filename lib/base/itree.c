/* itree.c -- index links to pointer links for the XML and JSON readers' node arrays. */
#include "base/itree.h"

static struct itree_link *link_at(void *nodes, size_t size, size_t link_off, size_t i)
{
    return (struct itree_link *)((char *)nodes + i * size + link_off);
}

void itree_append(void *nodes, size_t size, size_t link_off, uint32_t parent, uint32_t last, uint32_t idx)
{
    if (last)
        link_at(nodes, size, link_off, last)->next_i = idx;
    else
        link_at(nodes, size, link_off, parent)->child_i = idx;
}

void itree_finish(void *nodes, size_t n, size_t size, size_t link_off)
{
    char *base = nodes;
    for (size_t i = 0; i < n; i++) {
        struct itree_link *l = link_at(nodes, size, link_off, i);
        l->child = l->child_i ? base + (size_t)l->child_i * size : NULL;
        l->next = l->next_i ? base + (size_t)l->next_i * size : NULL;
    }
}
