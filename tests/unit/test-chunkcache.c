/* Unit tests of the read-through local chunk cache directory (lib/store/chunkcache.c). */
#include "test.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "chunker/chunker.h"
#include "store/chunkcache.h"
#include "bench/simstore.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CC_SEED 77u
#define CHUNK (256u << 10)

static uint64_t inner_reads(struct store *sim)
{
    struct sim_stats st;
    store_sim_stats(sim, &st);
    return st.reads;
}

static int cc_read_check(struct store *s, uint64_t off, uint64_t len)
{
    uint8_t *got = malloc(len + 1), *want = malloc(len + 1);
    struct store_read_result res;
    int err = store_read(s, "b1/memfile", off, len, got, NULL, NULL, &res);
    if (!err) {
        store_sim_pattern(CC_SEED, off, want, (size_t)res.bytes);
        if (res.bytes != len || memcmp(got, want, (size_t)len) != 0)
            err = -1;
    }
    free(got);
    free(want);
    return err;
}

static bool file_exists(const char *root, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/b1/memfile/%s", root, name);
    return access(p, F_OK) == 0;
}

TEST(chunkcache_second_instance_served_locally)
{
    char root[600];
    snprintf(root, sizeof root, "%s/cc-second", test_tmpdir());
    uint64_t size = 3 * (uint64_t)CHUNK + 1000;
    struct sim_opts so = {.size = size, .seed = CC_SEED, .slice = 16u << 10};
    struct chunkcache_opts co = {.chunk_size = CHUNK};
    struct store *sim, *cc;
    CHECK_EQ(store_sim_open(&so, &sim), 0);
    CHECK_EQ(store_chunkcache_open(sim, root, &co, &cc), 0);
    CHECK_EQ(cc_read_check(cc, 0, size), 0);
    CHECK_EQ(inner_reads(sim), 1);            /* one inner read for the whole run of misses */
    CHECK(file_exists(root, "000000000000-262144.bin"));
    CHECK(file_exists(root, "000000000003-1000.bin")); /* the short last chunk */
    CHECK(file_exists(root, "size.txt"));
    struct chunkcache_stats st;
    store_chunkcache_stats(cc, &st);
    CHECK_EQ(st.files_written, 4);
    CHECK_EQ(st.bytes, size);
    store_close(cc);
    store_close(sim);

    /* A second instance (as a second process would) over a fresh inner store: no inner read. */
    CHECK_EQ(store_sim_open(&so, &sim), 0);
    CHECK_EQ(store_chunkcache_open(sim, root, &co, &cc), 0);
    store_chunkcache_stats(cc, &st);
    CHECK_EQ(st.bytes, size);                  /* the index was rebuilt from the directory */
    CHECK_EQ(cc_read_check(cc, 100, 2 * (uint64_t)CHUNK), 0);
    CHECK_EQ(cc_read_check(cc, size - 10, 10), 0);
    struct store_read_result res;
    uint8_t b[16];
    CHECK_EQ(store_read(cc, "b1/memfile", size - 4, 16, b, NULL, NULL, &res), 0);
    CHECK_EQ(res.bytes, 4);
    CHECK_EQ(res.total_size, size);
    CHECK_ERR(store_read(cc, "b1/memfile", size + 1, 1, b, NULL, NULL, &res), SNAP_ERANGE, "past the end");
    CHECK_EQ(inner_reads(sim), 0);
    store_close(cc);
    store_close(sim);
}

/* A demand-first chunker reads the part after a block, then before, then small ranges: the
 * pieces gather into one chunk file, which appears only when whole. */
TEST(chunkcache_assembles_partial_reads)
{
    char root[600];
    snprintf(root, sizeof root, "%s/cc-partial", test_tmpdir());
    struct sim_opts so = {.size = 2 * (uint64_t)CHUNK, .seed = CC_SEED};
    struct chunkcache_opts co = {.chunk_size = CHUNK};
    struct store *sim, *cc;
    CHECK_EQ(store_sim_open(&so, &sim), 0);
    CHECK_EQ(store_chunkcache_open(sim, root, &co, &cc), 0);
    CHECK_EQ(cc_read_check(cc, 100 << 10, 4096), 0);
    CHECK(!file_exists(root, "000000000000-262144.bin"));
    CHECK_EQ(cc_read_check(cc, 200 << 10, CHUNK - (200 << 10)), 0);
    CHECK(!file_exists(root, "000000000000-262144.bin"));
    CHECK_EQ(cc_read_check(cc, 0, 100 << 10), 0);
    CHECK(!file_exists(root, "000000000000-262144.bin")); /* [104K, 200K) still missing */
    CHECK_EQ(cc_read_check(cc, 104 << 10, 96 << 10), 0);
    CHECK(file_exists(root, "000000000000-262144.bin"));
    uint64_t before = inner_reads(sim);
    CHECK_EQ(cc_read_check(cc, 0, CHUNK), 0);
    CHECK_EQ(inner_reads(sim), before);

    /* The chunker on top of it: a cold chunker over a warm directory never reaches the inner store. */
    char path[700];
    snprintf(path, sizeof path, "%s/cc-chunker.cache", test_tmpdir());
    struct chunker_opts o = {.size = STORE_SIZE_UNKNOWN, .cache_path = path, .chunk_size = CHUNK};
    struct chunker *ch;
    CHECK_EQ(chunker_open(cc, "b1/memfile", &o, &ch), 0);
    uint8_t *got = malloc(CHUNK), *want = malloc(CHUNK);
    CHECK_EQ(chunker_read(ch, 5, CHUNK - 5, got), 0);
    store_sim_pattern(CC_SEED, 5, want, CHUNK - 5);
    CHECK_MEM(got, want, CHUNK - 5);
    CHECK_EQ(chunker_size(ch), 2 * (uint64_t)CHUNK);
    CHECK_EQ(inner_reads(sim), before);
    chunker_close(ch);
    free(got);
    free(want);
    store_close(cc);
    store_close(sim);
}

TEST(chunkcache_lru_limit)
{
    char root[600];
    snprintf(root, sizeof root, "%s/cc-lru", test_tmpdir());
    struct sim_opts so = {.size = 4 * (uint64_t)CHUNK, .seed = CC_SEED};
    struct chunkcache_opts co = {.chunk_size = CHUNK, .limit = 2 * (uint64_t)CHUNK};
    struct store *sim, *cc;
    CHECK_EQ(store_sim_open(&so, &sim), 0);
    CHECK_EQ(store_chunkcache_open(sim, root, &co, &cc), 0);
    CHECK_EQ(cc_read_check(cc, 0, CHUNK), 0);              /* chunk 0 */
    usleep(20000);
    CHECK_EQ(cc_read_check(cc, CHUNK, CHUNK), 0);          /* chunk 1 */
    usleep(20000);
    CHECK_EQ(cc_read_check(cc, 10, 10), 0);                /* a hit: chunk 0 is recent again */
    usleep(20000);
    CHECK_EQ(cc_read_check(cc, 2 * (uint64_t)CHUNK, CHUNK), 0); /* chunk 2 evicts chunk 1 */
    CHECK(file_exists(root, "000000000000-262144.bin"));
    CHECK(!file_exists(root, "000000000001-262144.bin"));
    CHECK(file_exists(root, "000000000002-262144.bin"));
    struct chunkcache_stats st;
    store_chunkcache_stats(cc, &st);
    CHECK_EQ(st.evictions, 1);
    CHECK_EQ(st.bytes, 2 * (uint64_t)CHUNK);
    store_close(cc);
    store_close(sim);
}

/* Every chunk file visible must be whole and right; temp files never count. */
static int check_dir(const char *dir, unsigned *files, unsigned *temps)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    int bad = 0;
    while ((e = readdir(d)) != NULL) {
        if (strstr(e->d_name, ".tmp-")) {
            (*temps)++;
            continue;
        }
        unsigned long long k, len;
        if (sscanf(e->d_name, "%12llu-%llu.bin", &k, &len) != 2)
            continue;
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        uint8_t *got = NULL, *want = malloc(len ? len : 1);
        size_t n = 0;
        if (snap_read_file(p, 1u << 30, &got, &n) != 0 || n != len) {
            bad++;
        } else {
            store_sim_pattern(CC_SEED, k * CHUNK, want, len);
            bad += memcmp(got, want, len) != 0;
        }
        snap_free(got);
        free(want);
        (*files)++;
    }
    closedir(d);
    return bad;
}

TEST(chunkcache_killed_writer_leaves_no_partial_chunk)
{
    char root[600], dir[700];
    snprintf(root, sizeof root, "%s/cc-killed", test_tmpdir());
    snprintf(dir, sizeof dir, "%s/b1/memfile", root);
    uint64_t size = 64 * (uint64_t)CHUNK;
    unsigned total_files = 0, total_temps = 0;
    for (unsigned round = 0; round < 6; round++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            /* The writer: read every chunk through the cache, as fast as the disk allows. */
            struct sim_opts so = {.size = size, .seed = CC_SEED, .slice = 64u << 10};
            struct chunkcache_opts co = {.chunk_size = CHUNK};
            struct store *sim, *cc;
            if (store_sim_open(&so, &sim) || store_chunkcache_open(sim, root, &co, &cc))
                _exit(2);
            uint8_t *buf = malloc(CHUNK);
            struct store_read_result res;
            for (;;)
                for (uint64_t k = 0; k < 64; k++) {
                    /* Two halves per chunk, so a kill can fall between them too. */
                    store_read(cc, "b1/memfile", k * CHUNK + CHUNK / 2, CHUNK / 2, buf, NULL, NULL, &res);
                    store_read(cc, "b1/memfile", k * CHUNK, CHUNK / 2, buf, NULL, NULL, &res);
                    if (k % 8 == 7)
                        usleep(1000);
                }
        }
        usleep(3000 + round * 4000);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status));
        unsigned files = 0, temps = 0;
        CHECK_EQ(check_dir(dir, &files, &temps), 0);
        total_files += files;
        total_temps += temps;
        /* Remove the whole chunks so the next round writes again. */
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            char p[1200];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (strstr(e->d_name, ".bin") && !strstr(e->d_name, ".tmp-"))
                unlink(p);
        }
        if (d)
            closedir(d);
    }
    CHECK(total_files > 0); /* the writers did get somewhere */
    /* The next open removes the dead writers' temp files. */
    struct sim_opts so = {.size = size, .seed = CC_SEED};
    struct store *sim, *cc;
    CHECK_EQ(store_sim_open(&so, &sim), 0);
    CHECK_EQ(store_chunkcache_open(sim, root, NULL, &cc), 0);
    unsigned files = 0, temps = 0;
    CHECK_EQ(check_dir(dir, &files, &temps), 0);
    CHECK_EQ(temps, 0);
    store_close(cc);
    store_close(sim);
    (void)total_temps; /* usually > 0: the kills do land mid-assembly */
}
