/* cache.c -- the mmap'd sparse cache file and its per-block states.
 *
 * Design notes
 *
 * States live in two bitmaps of 64-block words, `lo` and `hi` (absent 00, present 01, zero 10,
 * dirty 11), so "is anything absent here", "where does this run end" and "which blocks are
 * dirty" are a few word operations plus ctz, never a walk over blocks.
 *
 * Concurrency rules:
 * - Every call that changes a block (write, zero, fill, evict) or copies it out (read) holds the
 *   stripe lock of the block's word while it copies the bytes and updates the bits, so a block's
 *   bytes and state change together and a read is a point-in-time copy of each block.  Stripe
 *   locks are per word (64 blocks), 64 of them, taken one at a time, never nested: a range that
 *   spans words is done word by word, and no lock is ever held across anything but a memcpy, a
 *   hole punch or a page fault on the cache file -- never remote or socket I/O.
 * - The bit words are atomics, so the queries (cache_readable, cache_find_absent, cache_extent,
 *   cache_state_at) take no lock.  Their answer is a snapshot: a block may change right after.
 *   Writers order their updates so a lock-free reader never sees a state whose bytes are not in
 *   place: bytes first, then lo, then hi (a write passes through "present" with the new bytes on
 *   its way to dirty; a zeroing punches first and passes through "dirty" with zero bytes).
 * - Fill never overwrites anything but an absent block, and it checks and copies under the same
 *   stripe lock as a local write, so a fetch racing a write can never clobber it.
 * - The mapping, the size and the bitmaps are fixed from open to close; close requires that no
 *   call is running.
 * - Export reads the file while writers may run; the caller quiesces writers for a consistent
 *   diff (the device does).
 *
 * Zero blocks are holes: writing an all-zero block, filling one (fetched bytes that are all zeros)
 * or zeroing a range punches it out of the file
 * (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE), so disk usage follows the data.  Where the file
 * system cannot punch, the bytes are zeroed in the mapping instead (same content, more space).
 */
#include "cache/cache.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CACHE_PWRITE_MIN (16u << 10) /* fills this long or longer go by pwrite (put_run) */
#define CACHE_STRIPES 64
#define CACHE_REGION_ALIGN (2u << 20) /* regions of a shared file start on 2 MiB */

/* A file holding the regions of several caches (cache_open_in). */
struct cache_file {
    pthread_mutex_t mu;          /* end, the file's length */
    int fd;
    char *path;
    uint64_t end;                /* where the next region starts */
    atomic_uint refs;            /* the opener's and one per region */
};

struct cache {
    char *path;
    int fd;
    uint64_t base;               /* the region's offset in the file (0: a file of its own) */
    struct cache_file *file;     /* the shared file, or NULL: fd is the cache's own */
    uint8_t *map;
    size_t map_len;
    uint64_t size;
    uint32_t bs;
    unsigned shift;
    uint64_t nblocks;
    uint64_t nwords;
    _Atomic uint64_t *lo;
    _Atomic uint64_t *hi;
    atomic_bool punch_ok;
    unsigned nstripes;           /* one per word up to CACHE_STRIPES: a small cache, few locks */
    pthread_mutex_t stripe[];
};

/* ---- small helpers ---- */

static inline uint64_t blk_off(const struct cache *c, uint64_t b) { return b << c->shift; }
static inline uint64_t blk_end(const struct cache *c, uint64_t b)
{
    uint64_t e = (b + 1) << c->shift;
    return e < c->size ? e : c->size;
}
/* Bits [from, to) of a word, 0 <= from < to <= 64. */
static inline uint64_t bits(unsigned from, unsigned to)
{
    uint64_t hi = to == 64 ? ~0ull : (1ull << to) - 1;
    return hi & ~((1ull << from) - 1);
}
static inline uint64_t ld(_Atomic uint64_t *w) { return atomic_load_explicit(w, memory_order_acquire); }
static inline void lock_word(struct cache *c, uint64_t w) { pthread_mutex_lock(&c->stripe[w % c->nstripes]); }
static inline void unlock_word(struct cache *c, uint64_t w) { pthread_mutex_unlock(&c->stripe[w % c->nstripes]); }

/* The walk every ranged call makes: the words that blocks [b0, b1) touch, and for word w the
 * blocks [w*64 + from, w*64 + to) of it that are in the range.
 *
 *     for (struct words it = words_of(c, off, len); words_next(&it);)
 *         ... it.w, bits(it.from, it.to) ...
 */
struct words {
    uint64_t b, b1, w;
    unsigned from, to;
};

/* Needs len > 0 and [off, off+len) within the cache (callers check first). */
static inline struct words words_of(const struct cache *c, uint64_t off, uint64_t len)
{
    return (struct words){.b = off >> c->shift, .b1 = ((off + len - 1) >> c->shift) + 1};
}

static inline bool words_next(struct words *it)
{
    if (it->b >= it->b1)
        return false;
    it->w = it->b / 64;
    it->from = (unsigned)(it->b % 64);
    it->to = it->b1 - it->w * 64 < 64 ? (unsigned)(it->b1 - it->w * 64) : 64;
    it->b = (it->w + 1) * 64;
    return true;
}

/* Take the lowest run of set bits [*i, *j) out of *m; false when *m is empty. */
static inline bool next_run(uint64_t *m, unsigned *i, unsigned *j)
{
    if (!*m)
        return false;
    *i = (unsigned)__builtin_ctzll(*m);
    uint64_t rest = ~*m & bits(*i, 64);
    *j = rest ? (unsigned)__builtin_ctzll(rest) : 64;
    *m &= ~bits(*i, *j);
    return true;
}

/* The bytes [*a, *e) of blocks [i, j) of word w. */
static inline void run_bytes(const struct cache *c, uint64_t w, unsigned i, unsigned j, uint64_t *a, uint64_t *e)
{
    *a = blk_off(c, w * 64 + i);
    *e = blk_end(c, w * 64 + j - 1);
}

static int cache_check_range(const struct cache *c, uint64_t off, uint64_t len, const char *what)
{
    if (off > c->size || len > c->size - off)
        return snap_fail(SNAP_ERANGE, "%s: %s of %llu bytes at offset %llu is past the end (%llu bytes)",
                         c->path, what, (unsigned long long)len, (unsigned long long)off,
                         (unsigned long long)c->size);
    return 0;
}

static int cache_check_aligned(const struct cache *c, uint64_t off, uint64_t len, const char *what)
{
    int err = cache_check_range(c, off, len, what);
    if (err || len == 0)
        return err;
    uint64_t mask = c->bs - 1;
    if ((off & mask) || ((len & mask) && off + len != c->size))
        return snap_fail(SNAP_ERANGE, "%s: %s of %llu bytes at offset %llu is not aligned to the %u-byte "
                         "block (only the last block may be partial)", c->path, what,
                         (unsigned long long)len, (unsigned long long)off, c->bs);
    return 0;
}

/* Punch [off, off+len) out of the file; zero it in the mapping where punching is unsupported. */
static int cache_punch(struct cache *c, uint64_t off, uint64_t len)
{
    if (atomic_load_explicit(&c->punch_ok, memory_order_relaxed)) {
        int err = snap_punch_hole(c->fd, c->base + off, len, c->path);
        if (err != SNAP_ENOTSUP)
            return err;
        atomic_store_explicit(&c->punch_ok, false, memory_order_relaxed);
    }
    memset(c->map + off, 0, (size_t)len);
    return 0;
}

/* All zeros?  Eight words at a time, OR-ed, so a data block (the usual case) stops at its first
 * 64 bytes; the loads go through memcpy, so any alignment is fine. */
static bool is_zero(const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        uint64_t w[8];
        memcpy(w, p + i, sizeof w);
        if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])
            return false;
    }
    for (; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* ---- open / close ---- */

/* The cache's struct and block states (no file yet). */
static int cache_new(const char *path, uint64_t size, uint32_t block_size, struct cache **out)
{
    if (block_size == 0)
        block_size = CACHE_BLOCK_DEFAULT;
    if (block_size < CACHE_BLOCK_MIN || block_size > CACHE_BLOCK_MAX || (block_size & (block_size - 1)))
        return snap_fail(SNAP_EUSAGE, "%s: block size %u is not a power of two in %u..%u", path, block_size,
                         CACHE_BLOCK_MIN, CACHE_BLOCK_MAX);
    if (size > (uint64_t)INT64_MAX - block_size || size > (uint64_t)SIZE_MAX)
        return snap_fail(SNAP_ERANGE, "%s: cache size %llu is too large", path, (unsigned long long)size);
    unsigned shift = (unsigned)__builtin_ctz(block_size);
    uint64_t nblocks = (size + block_size - 1) >> shift, nwords = (nblocks + 63) / 64;
    unsigned nstripes = nwords < CACHE_STRIPES ? (nwords ? (unsigned)nwords : 1) : CACHE_STRIPES;
    struct cache *c = snap_calloc(1, sizeof *c + nstripes * sizeof c->stripe[0]);
    if (!c)
        return snap_fail(SNAP_ENOMEM, "%s: out of memory", path);
    c->fd = -1;
    c->size = size;
    c->bs = block_size;
    c->shift = shift;
    c->nblocks = nblocks;
    c->nwords = nwords;
    c->nstripes = nstripes;
    atomic_init(&c->punch_ok, true);
    for (unsigned i = 0; i < nstripes; i++)
        pthread_mutex_init(&c->stripe[i], NULL);
    int err = 0;
    c->path = snap_strdup(path);
    c->lo = snap_calloc(c->nwords ? c->nwords : 1, sizeof *c->lo);
    c->hi = snap_calloc(c->nwords ? c->nwords : 1, sizeof *c->hi);
    if (!c->path || !c->lo || !c->hi) {
        err = snap_fail(SNAP_ENOMEM, "%s: out of memory for %llu block states", path,
                        (unsigned long long)c->nblocks);
        cache_close(c);
        return err;
    }
    *out = c;
    return 0;
}

/* Map [base, base+size) of c->fd. */
static int cache_map(struct cache *c)
{
    c->map_len = (size_t)c->size;
    if (!c->map_len)
        return 0;
    void *m = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, (off_t)c->base);
    if (m == MAP_FAILED)
        return snap_fail_errno("%s: map %llu bytes", c->path, (unsigned long long)c->size);
    c->map = m;
    return 0;
}

int cache_open(const char *path, uint64_t size, uint32_t block_size, struct cache **out)
{
    struct cache *c;
    int err = cache_new(path, size, block_size, &c);
    if (err)
        return err;
    c->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (c->fd < 0) {
        err = snap_fail_errno("%s: create cache file", path);
        goto fail;
    }
    if (ftruncate(c->fd, (off_t)size) < 0) {
        err = snap_fail_errno("%s: size cache file to %llu bytes", path, (unsigned long long)size);
        goto fail;
    }
    if ((err = cache_map(c)) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    cache_close(c);
    return err;
}

int cache_open_unlinked(struct cache_file *f, const char *path, uint64_t size, uint32_t block_size,
                        struct cache **out)
{
    if (f)
        return cache_open_in(f, size, block_size, out);
    int err = cache_open(path, size, block_size, out);
    if (!err)
        unlink(path);
    return err;
}

int cache_file_open(const char *path, struct cache_file **out)
{
    struct cache_file *f = snap_calloc(1, sizeof *f);
    if (!f || !(f->path = snap_strdup(path))) {
        snap_free(f);
        return snap_fail(SNAP_ENOMEM, "%s: out of memory", path);
    }
    f->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (f->fd < 0) {
        int err = snap_fail_errno("%s: create cache file", path);
        snap_free(f->path);
        snap_free(f);
        return err;
    }
    pthread_mutex_init(&f->mu, NULL);
    atomic_init(&f->refs, 1);
    *out = f;
    return 0;
}

void cache_file_put(struct cache_file *f)
{
    if (!f || atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    close(f->fd);
    pthread_mutex_destroy(&f->mu);
    snap_free(f->path);
    snap_free(f);
}

int cache_open_in(struct cache_file *f, uint64_t size, uint32_t block_size, struct cache **out)
{
    struct cache *c;
    int err = cache_new(f->path, size, block_size, &c);
    if (err)
        return err;
    pthread_mutex_lock(&f->mu);
    uint64_t base = snap_round_up(f->end, CACHE_REGION_ALIGN), end = base + snap_round_up(size, CACHE_REGION_ALIGN);
    if (end < base || end > (uint64_t)INT64_MAX)
        err = snap_fail(SNAP_ERANGE, "%s: no room for a %llu-byte region", f->path, (unsigned long long)size);
    else if (ftruncate(f->fd, (off_t)end) < 0)
        err = snap_fail_errno("%s: grow the cache file to %llu bytes", f->path, (unsigned long long)end);
    else
        f->end = end;
    pthread_mutex_unlock(&f->mu);
    if (!err) {
        atomic_fetch_add(&f->refs, 1);
        c->file = f;
        c->fd = f->fd;
        c->base = base;
        err = cache_map(c);
    }
    if (err) {
        cache_close(c);
        return err;
    }
    *out = c;
    return 0;
}

void cache_close(struct cache *c)
{
    if (!c)
        return;
    if (c->map)
        munmap(c->map, c->map_len);
    if (c->file) { /* give the region's disk back; the file stays for the others */
        if (c->map_len && atomic_load_explicit(&c->punch_ok, memory_order_relaxed))
            (void)snap_punch_hole(c->fd, c->base, c->map_len, c->path);
        cache_file_put(c->file);
    } else if (c->fd >= 0) {
        close(c->fd);
    }
    for (unsigned i = 0; i < c->nstripes; i++)
        pthread_mutex_destroy(&c->stripe[i]);
    snap_free((void *)c->lo);
    snap_free((void *)c->hi);
    snap_free(c->path);
    snap_free(c);
}

uint64_t cache_size(const struct cache *c) { return c->size; }
uint32_t cache_block_size(const struct cache *c) { return c->bs; }
const char *cache_path(const struct cache *c) { return c->path; }
int cache_fd(const struct cache *c) { return c->fd; }
uint64_t cache_fd_offset(const struct cache *c, uint64_t off) { return c->base + off; }

/* ---- lock-free queries ---- */

enum cache_state cache_state_at(const struct cache *c, uint64_t off)
{
    if (off >= c->size)
        return CACHE_ABSENT;
    uint64_t b = off >> c->shift, w = b / 64, bit = 1ull << (b % 64);
    unsigned s = (ld(&c->lo[w]) & bit ? 1u : 0u) | (ld(&c->hi[w]) & bit ? 2u : 0u);
    return (enum cache_state)s;
}

bool cache_find_absent(const struct cache *c, uint64_t off, uint64_t len, uint64_t *at)
{
    if (len == 0 || off >= c->size)
        return false;
    uint64_t end = off + len < off || off + len > c->size ? c->size : off + len;
    for (struct words it = words_of(c, off, end - off); words_next(&it);) {
        uint64_t absent = ~(ld(&c->lo[it.w]) | ld(&c->hi[it.w])) & bits(it.from, it.to);
        if (absent) {
            *at = blk_off(c, it.w * 64 + (unsigned)__builtin_ctzll(absent));
            return true;
        }
    }
    return false;
}

bool cache_readable(const struct cache *c, uint64_t off, uint64_t len)
{
    uint64_t at;
    return !cache_find_absent(c, off, len, &at);
}

int cache_extent(const struct cache *c, uint64_t off, uint64_t max, enum cache_state *state, uint64_t *len)
{
    int err = cache_check_range(c, off, 0, "extent");
    if (err)
        return err;
    uint64_t end = max > c->size - off ? c->size : off + max;
    *state = cache_state_at(c, off);
    *len = end - off;
    if (end == off)
        return 0;
    uint64_t want_lo = (*state & 1) ? ~0ull : 0, want_hi = (*state & 2) ? ~0ull : 0;
    for (struct words it = words_of(c, off, end - off); words_next(&it);) {
        uint64_t differ = ((ld(&c->lo[it.w]) ^ want_lo) | (ld(&c->hi[it.w]) ^ want_hi)) & bits(it.from, it.to);
        if (differ) {
            uint64_t stop = blk_off(c, it.w * 64 + (unsigned)__builtin_ctzll(differ));
            *len = (stop < end ? stop : end) - off;
            return 0;
        }
    }
    return 0;
}

/* ---- reads and writes, word by word under the stripe lock ---- */

/* The bits of blocks [from, to) of word w whose bytes (as found at src, which holds the range
 * starting at offset off) are all zero. */
static uint64_t zero_mask(const struct cache *c, uint64_t w, unsigned from, unsigned to, const uint8_t *src,
                          uint64_t off)
{
    uint64_t m = 0;
    for (unsigned i = from; i < to; i++) {
        uint64_t b = w * 64 + i;
        if (is_zero(src + (blk_off(c, b) - off), (size_t)(blk_end(c, b) - blk_off(c, b))))
            m |= 1ull << i;
    }
    return m;
}

int cache_read(struct cache *c, uint64_t off, uint64_t len, void *dst)
{
    int err = cache_check_range(c, off, len, "read");
    if (err || len == 0)
        return err;
    uint8_t *d = dst;
    uint64_t end = off + len;
    for (struct words it = words_of(c, off, len); words_next(&it);) {
        uint64_t w = it.w, m = bits(it.from, it.to), a, e;
        unsigned i, j;
        lock_word(c, w);
        uint64_t lo = ld(&c->lo[w]), hi = ld(&c->hi[w]), absent = ~(lo | hi) & m;
        if (absent) {
            unlock_word(c, w);
            return snap_fail(SNAP_ENOTFOUND, "%s: block at offset %llu is not in the cache", c->path,
                             (unsigned long long)blk_off(c, w * 64 + (unsigned)__builtin_ctzll(absent)));
        }
        /* Runs of zero blocks become memsets, everything else one memcpy per run; the first and
         * last run are clipped to the byte range asked for. */
        uint64_t zero = hi & ~lo & m, data = m & ~zero;
        while (next_run(&data, &i, &j)) {
            run_bytes(c, w, i, j, &a, &e);
            a = a < off ? off : a;
            e = e > end ? end : e;
            memcpy(d + (a - off), c->map + a, (size_t)(e - a));
        }
        while (next_run(&zero, &i, &j)) {
            run_bytes(c, w, i, j, &a, &e);
            a = a < off ? off : a;
            e = e > end ? end : e;
            memset(d + (a - off), 0, (size_t)(e - a));
        }
        unlock_word(c, w);
    }
    return 0;
}

int cache_write(struct cache *c, uint64_t off, uint64_t len, const void *src)
{
    int err = cache_check_aligned(c, off, len, "write");
    if (err || len == 0)
        return err;
    const uint8_t *s = src;
    for (struct words it = words_of(c, off, len); words_next(&it) && !err;) {
        uint64_t w = it.w, zero = zero_mask(c, w, it.from, it.to, s, off), data = bits(it.from, it.to) & ~zero;
        uint64_t todo_data = data, todo_zero = zero, a, e;
        unsigned i, j;
        lock_word(c, w);
        /* Data runs are copied in, zero runs punched out. */
        while (next_run(&todo_data, &i, &j)) {
            run_bytes(c, w, i, j, &a, &e);
            memcpy(c->map + a, s + (a - off), (size_t)(e - a));
        }
        while (!err && next_run(&todo_zero, &i, &j)) {
            run_bytes(c, w, i, j, &a, &e);
            err = cache_punch(c, a, e - a);
        }
        if (!err) {
            /* Bytes are in place; now the state (see the ordering rule in the design note). */
            atomic_fetch_or_explicit(&c->lo[w], data, memory_order_release);
            atomic_fetch_or_explicit(&c->hi[w], data | zero, memory_order_release);
            atomic_fetch_and_explicit(&c->lo[w], ~zero, memory_order_release);
        }
        unlock_word(c, w);
    }
    return err;
}

int cache_zero(struct cache *c, uint64_t off, uint64_t len)
{
    int err = cache_check_aligned(c, off, len, "zero");
    if (err || len == 0)
        return err;
    for (struct words it = words_of(c, off, len); words_next(&it) && !err;) {
        uint64_t w = it.w, m = bits(it.from, it.to), a, e;
        run_bytes(c, w, it.from, it.to, &a, &e);
        lock_word(c, w);
        err = cache_punch(c, a, e - a);
        if (!err) {
            atomic_fetch_or_explicit(&c->hi[w], m, memory_order_release);
            atomic_fetch_and_explicit(&c->lo[w], ~m, memory_order_release);
        }
        unlock_word(c, w);
    }
    return err;
}

/* Copy n bytes of fetched data to the cache file at a.  A run of several pages goes by pwrite: the
 * kernel then takes the file's fresh pages without a write fault (and a page_mkwrite) on each,
 * which on a file system costs more than the copy; a short one is copied into the mapping. */
static int put_run(struct cache *c, uint64_t a, const uint8_t *src, size_t n)
{
    if (n >= CACHE_PWRITE_MIN)
        return snap_pwrite_full(c->fd, src, n, c->base + a, c->path);
    memcpy(c->map + a, src, n);
    return 0;
}

/* Fill the absent blocks of the range from src, or in place (src NULL: the bytes are already in
 * the mapping, written there by the one fetch that owns those absent blocks). */
static int fill_blocks(struct cache *c, uint64_t off, uint64_t len, const void *src, uint64_t *filled)
{
    if (filled)
        *filled = 0;
    int err = cache_check_aligned(c, off, len, "fill");
    if (err || len == 0)
        return err;
    const uint8_t *s = src ? src : c->map + off;
    for (struct words it = words_of(c, off, len); words_next(&it) && !err;) {
        uint64_t w = it.w, a, e;
        unsigned i, j;
        lock_word(c, w);
        /* Only absent blocks are touched, and only those are checked for zeros. */
        uint64_t absent = ~(ld(&c->lo[w]) | ld(&c->hi[w])) & bits(it.from, it.to), todo = absent, zero = 0;
        while (next_run(&todo, &i, &j))
            zero |= zero_mask(c, w, i, j, s, off);
        uint64_t data = absent & ~zero, todo_zero = zero;
        todo = data;
        while (!err && next_run(&todo, &i, &j)) {
            run_bytes(c, w, i, j, &a, &e);
            if (src)
                err = put_run(c, a, s + (a - off), (size_t)(e - a));
            if (filled && !err)
                *filled += e - a;
        }
        /* A fetched all-zero block becomes a zero block: a hole that block status reports as such.
         * Punched (almost always a no-op: an absent block is a hole already) so its bytes are
         * zeros whatever happened to the file before. */
        while (!err && next_run(&todo_zero, &i, &j)) {
            run_bytes(c, w, i, j, &a, &e);
            err = cache_punch(c, a, e - a);
            if (filled)
                *filled += e - a;
        }
        if (!err) {
            atomic_fetch_or_explicit(&c->lo[w], data, memory_order_release);
            atomic_fetch_or_explicit(&c->hi[w], zero, memory_order_release);
        }
        unlock_word(c, w);
    }
    return err;
}

int cache_fill(struct cache *c, uint64_t off, uint64_t len, const void *src, uint64_t *filled)
{
    return fill_blocks(c, off, len, src, filled);
}

uint8_t *cache_map_range(struct cache *c, uint64_t off, uint64_t len)
{
    return off <= c->size && len <= c->size - off && len ? c->map + off : NULL;
}

int cache_publish(struct cache *c, uint64_t off, uint64_t len, uint64_t *filled)
{
    return fill_blocks(c, off, len, NULL, filled);
}

int cache_evict(struct cache *c, uint64_t off, uint64_t len)
{
    int err = cache_check_aligned(c, off, len, "evict");
    if (err || len == 0)
        return err;
    for (struct words it = words_of(c, off, len); words_next(&it) && !err;) {
        uint64_t w = it.w, a, e;
        unsigned i, j;
        lock_word(c, w);
        uint64_t todo = ld(&c->lo[w]) & ~ld(&c->hi[w]) & bits(it.from, it.to);
        while (!err && next_run(&todo, &i, &j)) {
            run_bytes(c, w, i, j, &a, &e);
            /* State first: a block must never read as present once its bytes may be gone. */
            atomic_fetch_and_explicit(&c->lo[w], ~bits(i, j), memory_order_release);
            err = cache_punch(c, a, e - a);
        }
        unlock_word(c, w);
    }
    return err;
}

int cache_flush(struct cache *c)
{
    if (c->map_len && msync(c->map, c->map_len, MS_SYNC) < 0)
        return snap_fail_errno("%s: msync", c->path);
    if (fdatasync(c->fd) < 0)
        return snap_fail_errno("%s: fdatasync", c->path);
    return 0;
}

/* ---- export ---- */

/* Append to a growable extent list (capped by the number of blocks, which bounds the runs). */
static int extent_push(struct cache_extent **v, size_t *n, size_t *cap, uint64_t off, uint64_t len)
{
    if (*n && (*v)[*n - 1].off + (*v)[*n - 1].len == off) {
        (*v)[*n - 1].len += len;
        return 0;
    }
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct cache_extent *nv = snap_reallocarray(*v, ncap, sizeof **v);
        if (!nv)
            return SNAP_ENOMEM;
        *v = nv;
        *cap = ncap;
    }
    (*v)[(*n)++] = (struct cache_extent){off, len};
    return 0;
}

static ssize_t cache_copy_file_range(int in, uint64_t *in_off, int out, uint64_t *out_off, size_t n)
{
    int64_t i = (int64_t)*in_off, o = (int64_t)*out_off;
    long r = syscall(SYS_copy_file_range, in, &i, out, &o, n, 0u);
    if (r > 0) {
        *in_off = (uint64_t)i;
        *out_off = (uint64_t)o;
    }
    return r;
}

/* Copy [off, off+len) of the cache to out_fd at *pos. */
static int cache_copy_out(struct cache *c, int out_fd, uint64_t off, uint64_t len, uint64_t *pos, bool *cfr)
{
    uint64_t in = off, end = off + len;
    while (*cfr && in < end) {
        uint64_t at = c->base + in;
        ssize_t r = cache_copy_file_range(c->fd, &at, out_fd, pos, (size_t)snap_min_u64(end - in, 1u << 30));
        in = at - c->base;
        if (r > 0)
            continue;
        if (r == 0 || errno == ENOSYS || errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP ||
            errno == EBADF) {
            *cfr = false; /* this kernel or file system pair cannot: write from the mapping */
            break;
        }
        if (errno != EINTR)
            return snap_fail_errno("%s: copy %llu bytes at offset %llu to the diff", c->path,
                                   (unsigned long long)(end - in), (unsigned long long)in);
    }
    if (in < end) {
        int err = snap_pwrite_full(out_fd, c->map + in, (size_t)(end - in), *pos, "diff file");
        if (err)
            return err;
        *pos += end - in;
    }
    return 0;
}

int cache_export(struct cache *c, int out_fd, struct cache_export *ex)
{
    memset(ex, 0, sizeof *ex);
    size_t dcap = 0, zcap = 0;
    bool cfr = true;
    uint64_t off = 0, pos = 0;
    int err = 0;
    while (off < c->size && !err) {
        enum cache_state st;
        uint64_t len;
        err = cache_extent(c, off, c->size - off, &st, &len);
        if (err)
            break;
        if (st == CACHE_DIRTY) {
            if (extent_push(&ex->dirty, &ex->ndirty, &dcap, off, len))
                err = snap_fail(SNAP_ENOMEM, "%s: out of memory for the dirty extent list", c->path);
            else
                err = cache_copy_out(c, out_fd, off, len, &pos, &cfr);
        } else if (st == CACHE_ZERO) {
            if (extent_push(&ex->zero, &ex->nzero, &zcap, off, len))
                err = snap_fail(SNAP_ENOMEM, "%s: out of memory for the zero extent list", c->path);
        }
        off += len;
    }
    if (!err && ftruncate(out_fd, (off_t)pos) < 0)
        err = snap_fail_errno("%s: truncate the diff to %llu bytes", c->path, (unsigned long long)pos);
    if (err) {
        cache_export_free(ex);
        return err;
    }
    ex->bytes = pos;
    return 0;
}

void cache_export_free(struct cache_export *ex)
{
    snap_free(ex->dirty);
    snap_free(ex->zero);
    memset(ex, 0, sizeof *ex);
}
