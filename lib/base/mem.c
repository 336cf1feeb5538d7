/* mem.c -- counted, fault-injectable allocation. */
#include "base/mem.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static atomic_uint_fast64_t alloc_count;
static atomic_long fail_after = -2; /* -2: not read from the environment yet; -1: off */

static int mem_should_fail(void)
{
    long n = atomic_load_explicit(&fail_after, memory_order_relaxed);
    if (n == -2) {
        const char *e = getenv("SNAPCTL_FAIL_AFTER");
        long want = e && *e ? strtol(e, NULL, 10) : -1;
        long expect = -2;
        atomic_compare_exchange_strong(&fail_after, &expect, want);
        n = atomic_load(&fail_after);
    }
    if (n < 0)
        return 0;
    while (n > 0) {
        if (atomic_compare_exchange_weak(&fail_after, &n, n - 1))
            return 0;
        if (n < 0)
            return 0;
    }
    return 1;
}

static void *mem_counted(void *p)
{
    if (p)
        atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    else
        errno = ENOMEM;
    return p;
}

void *snap_malloc(size_t n)
{
    if (mem_should_fail())
        return mem_counted(NULL);
    return mem_counted(malloc(n ? n : 1));
}

void *snap_calloc(size_t nmemb, size_t size)
{
    if (mem_should_fail())
        return mem_counted(NULL);
    return mem_counted(calloc(nmemb ? nmemb : 1, size ? size : 1));
}

void *snap_calloc_lazy(size_t nmemb, size_t size)
{
    if (mem_should_fail() || (size && nmemb > SIZE_MAX / size))
        return mem_counted(NULL);
    size_t n = nmemb * size;
    void *p = mmap(NULL, n > 0 ? n : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return mem_counted(p == MAP_FAILED ? NULL : p);
}

void snap_free_lazy(void *p, size_t nmemb, size_t size)
{
    size_t n = nmemb * size;
    if (p)
        munmap(p, n > 0 ? n : 1);
}

void *snap_realloc(void *p, size_t n)
{
    if (mem_should_fail())
        return mem_counted(NULL);
    return mem_counted(realloc(p, n ? n : 1));
}

void *snap_reallocarray(void *p, size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return snap_realloc(p, nmemb * size);
}

char *snap_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = snap_malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

char *snap_strdup(const char *s)
{
    return snap_strndup(s, SIZE_MAX);
}

void snap_free(void *p)
{
    free(p);
}

uint64_t snap_alloc_count(void)
{
    return atomic_load(&alloc_count);
}

void snap_mem_fail_after(long n)
{
    atomic_store(&fail_after, n < 0 ? -1 : n);
}

void snap_cleanup_free(void *ptr)
{
    free(*(void **)ptr);
}
