/* mem.h -- the allocator every lib/ module uses: counted, and fault-injectable.
 *
 * snap_alloc_count() is the number of successful allocations so far (all threads);
 * tests read it before and after a hot loop to prove the loop allocates nothing.
 * SNAPCTL_FAIL_AFTER=N in the environment (or snap_mem_fail_after(N)) lets N allocations
 * succeed and fails every later one, SQLite-style, so tests can walk every failure point.
 */
#ifndef SNAP_MEM_H
#define SNAP_MEM_H

#include <stddef.h>
#include <stdint.h>

void *snap_malloc(size_t n);
void *snap_calloc(size_t nmemb, size_t size);
/* Zeroed memory whose pages take room only once written (an anonymous mapping, page-granular):
 * for tables sized for the worst case and mostly unused.  Freed by snap_free_lazy with the same
 * sizes. */
void *snap_calloc_lazy(size_t nmemb, size_t size);
void snap_free_lazy(void *p, size_t nmemb, size_t size);
void *snap_realloc(void *p, size_t n);
void *snap_reallocarray(void *p, size_t nmemb, size_t size);
char *snap_strdup(const char *s);
char *snap_strndup(const char *s, size_t n);
void snap_free(void *p);

uint64_t snap_alloc_count(void);
/* Fail every allocation after the next n; n < 0 turns injection off. */
void snap_mem_fail_after(long n);

/* Scoped cleanup, nbdkit-style: `CLEANUP_FREE char *p = snap_malloc(10);` */
void snap_cleanup_free(void *ptr);
#define CLEANUP_FREE __attribute__((cleanup(snap_cleanup_free)))

#endif
