/* fuzz-cache.c -- lib/cache against a model: random sequences of write, zero, fill, evict, read,
 * extent walks and export must agree with a plain array of bytes and states.
 *
 * Input: byte 0 = size in blocks (1..64), byte 1 = a partial tail (0..255 bytes), then ops of
 * 4 bytes each: opcode, first block, block count, data seed (0 = zeros). */
#include "base/err.h"
#include "cache/cache.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FBS 512u
#define FMAX_BLOCKS 65u

static uint64_t fz_min(uint64_t a, uint64_t b) { return a < b ? a : b; }

static uint8_t model[FMAX_BLOCKS * FBS];
static enum cache_state mstate[FMAX_BLOCKS];
static uint8_t buf[FMAX_BLOCKS * FBS], got[FMAX_BLOCKS * FBS];

static void fill_data(uint8_t *p, size_t n, uint8_t seed, uint64_t off)
{
    for (size_t i = 0; i < n; i++)
        p[i] = seed ? (uint8_t)(seed * 31 + (off + i) * 7 + 1) | (seed & 0x80 ? 0 : 1) : 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint64_t nfull = 1 + data[0] % 64, tail = data[1] % FBS;
    uint64_t csize = nfull * FBS + tail, nblocks = nfull + (tail != 0);
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz-cache-%ld", (long)getpid());
    struct cache *c;
    if (cache_open(path, csize, FBS, &c) != 0)
        abort();
    unlink(path);
    memset(model, 0, sizeof model);
    for (uint64_t b = 0; b < nblocks; b++)
        mstate[b] = CACHE_ABSENT;

    for (size_t p = 2; p + 4 <= size; p += 4) {
        uint8_t op = data[p] % 6, seed = data[p + 3];
        uint64_t b0 = data[p + 1] % nblocks, nb = 1 + data[p + 2] % (nblocks - b0);
        uint64_t off = b0 * FBS, len = nb * FBS;
        if (off + len > csize)
            len = csize - off; /* the last, partial block */
        fill_data(buf, (size_t)len, seed, off);
        if (op == 0) {
            if (cache_write(c, off, len, buf) != 0)
                abort();
            for (uint64_t b = b0; b < b0 + nb; b++) {
                uint64_t bo = b * FBS, bl = bo + FBS > csize ? csize - bo : FBS;
                memcpy(model + bo, buf + (bo - off), bl);
                mstate[b] = all_zero(model + bo, bl) ? CACHE_ZERO : CACHE_DIRTY;
            }
        } else if (op == 1) {
            if (cache_zero(c, off, len) != 0)
                abort();
            memset(model + off, 0, len);
            for (uint64_t b = b0; b < b0 + nb; b++)
                mstate[b] = CACHE_ZERO;
        } else if (op == 2) {
            uint64_t filled = 0, want = 0;
            if (cache_fill(c, off, len, buf, &filled) != 0)
                abort();
            for (uint64_t b = b0; b < b0 + nb; b++) {
                uint64_t bo = b * FBS, bl = bo + FBS > csize ? csize - bo : FBS;
                if (mstate[b] == CACHE_ABSENT) {
                    memcpy(model + bo, buf + (bo - off), bl);
                    mstate[b] = all_zero(model + bo, bl) ? CACHE_ZERO : CACHE_PRESENT; /* fetched zeros: a hole */
                    want += bl;
                }
            }
            if (filled != want)
                abort();
        } else if (op == 3) {
            if (cache_evict(c, off, len) != 0)
                abort();
            for (uint64_t b = b0; b < b0 + nb; b++)
                if (mstate[b] == CACHE_PRESENT)
                    mstate[b] = CACHE_ABSENT;
        } else if (op == 4) {
            /* An unaligned read: all-or-nothing on absent blocks, model bytes otherwise. */
            uint64_t ro = fz_min(off + seed % FBS, csize), rl = (len + seed) % (csize - ro + 1);
            bool absent = false;
            for (uint64_t b = ro / FBS; rl && b <= (ro + rl - 1) / FBS; b++)
                absent |= mstate[b] == CACHE_ABSENT;
            int err = cache_read(c, ro, rl, got);
            if (absent != (err == SNAP_ENOTFOUND) || (!absent && err) || (!err && memcmp(got, model + ro, rl)))
                abort();
            uint64_t at;
            if (cache_readable(c, ro, rl) != !absent || cache_find_absent(c, ro, rl, &at) != absent)
                abort();
        } else {
            /* Walk the extents from a block and compare with the model's runs. */
            uint64_t pos = off;
            while (pos < csize) {
                enum cache_state st;
                uint64_t l;
                if (cache_extent(c, pos, UINT64_MAX, &st, &l) != 0 || l == 0)
                    abort();
                uint64_t b = pos / FBS, e = b;
                while (e < nblocks && mstate[e] == mstate[b])
                    e++;
                uint64_t end = e * FBS > csize ? csize : e * FBS;
                if (st != mstate[b] || pos + l != end)
                    abort();
                pos = end;
            }
        }
        for (uint64_t b = 0; b < nblocks; b++)
            if (cache_state_at(c, b * FBS) != mstate[b])
                abort();
    }

    /* Export: the dirty blocks packed in order, the dirty and zero runs. */
    FILE *tf = tmpfile();
    if (!tf)
        abort();
    struct cache_export ex;
    if (cache_export(c, fileno(tf), &ex) != 0)
        abort();
    uint64_t packed = 0;
    size_t di = 0, zi = 0;
    for (uint64_t b = 0; b < nblocks;) {
        uint64_t e = b;
        while (e < nblocks && mstate[e] == mstate[b])
            e++;
        uint64_t ro = b * FBS, rend = e * FBS > csize ? csize : e * FBS;
        if (mstate[b] == CACHE_DIRTY) {
            if (di >= ex.ndirty || ex.dirty[di].off != ro || ex.dirty[di].len != rend - ro)
                abort();
            if (pread(fileno(tf), got, rend - ro, (off_t)packed) != (ssize_t)(rend - ro) ||
                memcmp(got, model + ro, rend - ro))
                abort();
            packed += rend - ro;
            di++;
        } else if (mstate[b] == CACHE_ZERO) {
            if (zi >= ex.nzero || ex.zero[zi].off != ro || ex.zero[zi].len != rend - ro)
                abort();
            zi++;
        }
        b = e;
    }
    if (di != ex.ndirty || zi != ex.nzero || packed != ex.bytes)
        abort();
    cache_export_free(&ex);
    fclose(tf);
    cache_close(c);
    return 0;
}
