/* itree.c -- the XML and JSON readers' node storage, and index links to pointer links. */
#include "codec/itree.h"

#include "base/err.h"
#include "base/mem.h"

#include <stdio.h>
#include <string.h>

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

int itree_doc_init(struct itree_doc *d, const char *lang, const char *noun, size_t size, size_t link_off,
                   size_t max, size_t arena_cap)
{
    *d = (struct itree_doc){.size = size, .link_off = link_off, .lang = lang, .noun = noun,
                            .arena_cap = arena_cap};
    snap_buf_init(&d->nodes, 16 * size, max < SIZE_MAX / size ? max * size : SIZE_MAX / size * size);
    d->arena = snap_malloc(arena_cap);
    if (!d->arena)
        return snap_fail(SNAP_ENOMEM, "%s: out of memory for %zu bytes", lang, arena_cap - 1);
    return 0;
}

int itree_doc_add(struct itree_doc *d, uint32_t *idx)
{
    size_t n = itree_doc_count(d);
    if (n + 1 > d->nodes.max / d->size)
        return snap_fail(SNAP_ETOOBIG, "%s: more than %zu %s", d->lang, d->nodes.max / d->size, d->noun);
    if (snap_buf_reserve(&d->nodes, (n + 1) * d->size))
        return snap_fail(SNAP_ENOMEM, "%s: out of memory after %zu %s", d->lang, n, d->noun);
    memset(itree_doc_node(d, n), 0, d->size);
    d->nodes.len += d->size;
    *idx = (uint32_t)n;
    return 0;
}

void itree_doc_finish(struct itree_doc *d)
{
    itree_finish(d->nodes.data, itree_doc_count(d), d->size, d->link_off);
}

void itree_doc_free(struct itree_doc *d)
{
    snap_buf_free(&d->nodes);
    snap_free(d->arena);
    d->arena = NULL;
}

int itree_fail_at(const char *lang, const char *in, size_t len, size_t pos, const char *fmt, va_list ap)
{
    unsigned line = 1;
    size_t end = pos < len ? pos : len;
    for (size_t i = 0; i < end; i++)
        line += in[i] == '\n';
    char what[200];
    vsnprintf(what, sizeof what, fmt, ap);
    return snap_fail(SNAP_EFORMAT, "%s line %u (byte %zu): %s", lang, line, end, what);
}
