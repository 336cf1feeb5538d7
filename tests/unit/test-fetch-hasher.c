/* Unit tests of lib/fetch/hasher: the digest of a file hashed on a second thread while it is
 * written in uneven steps equals the one-shot SHA-256; abort at any point is clean. */
#include "test.h"

#include "base/err.h"
#include "crypto/sha256.h"
#include "fetch/hasher.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HT_SIZE (3u << 20) /* over the hasher's 1 MiB buffer and 256 KiB batches */

static int ht_file(char *path, size_t cap)
{
    const char *t = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, cap, "%s/snapctl-hasher.XXXXXX", t);
    int fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    return fd;
}

TEST(fetch_hasher_matches_one_shot)
{
    uint8_t *data = malloc(HT_SIZE);
    CHECK(data);
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < HT_SIZE; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        data[i] = (uint8_t)s;
    }
    uint8_t want[32];
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, data, HT_SIZE);
    sha256_final(&c, want);
    /* Steps of 1 byte up to 700 KiB: the writer sometimes ahead, sometimes behind. */
    static const size_t steps[] = {1, 4096, 65536, 700 << 10, 33, 262144, 262145};
    for (size_t round = 0; round < 3; round++) {
        char path[256];
        int fd = ht_file(path, sizeof path);
        CHECK(fd >= 0);
        struct fetch_hasher *h;
        CHECK_EQ(fetch_hasher_start(fd, "test file", &h), 0);
        size_t off = 0;
        for (size_t i = round; off < HT_SIZE; i++) {
            size_t n = steps[i % (sizeof steps / sizeof *steps)];
            if (n > HT_SIZE - off)
                n = HT_SIZE - off;
            CHECK_EQ(pwrite(fd, data + off, n, (off_t)off), (ssize_t)n);
            off += n;
            fetch_hasher_wrote(h, off);
        }
        uint8_t got[32];
        CHECK_EQ(fetch_hasher_finish(h, got), 0);
        CHECK_MEM(got, want, 32);
        close(fd);
    }
    /* Empty: the digest of nothing. */
    char path[256];
    int fd = ht_file(path, sizeof path);
    struct fetch_hasher *h;
    CHECK_EQ(fetch_hasher_start(fd, "empty", &h), 0);
    uint8_t got[32], empty[32];
    CHECK_EQ(fetch_hasher_finish(h, got), 0);
    sha256_init(&c);
    sha256_final(&c, empty);
    CHECK_MEM(got, empty, 32);
    /* Abort mid-way, and a file shorter than announced is an error naming it. */
    CHECK_EQ(pwrite(fd, data, 1 << 20, 0), 1 << 20);
    CHECK_EQ(fetch_hasher_start(fd, "aborted", &h), 0);
    fetch_hasher_wrote(h, 1 << 20);
    fetch_hasher_abort(h);
    fetch_hasher_abort(NULL);
    CHECK_EQ(fetch_hasher_start(fd, "short file", &h), 0);
    fetch_hasher_wrote(h, 2 << 20);
    CHECK_ERR(fetch_hasher_finish(h, got), SNAP_EIO, "short file: ended at byte 1048576");
    close(fd);
    free(data);
}
