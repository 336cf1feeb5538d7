/* Unit tests of the read-through local chunk cache directory (lib/store/chunkcache.c). */
#include "test.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "cache/cache.h"
#include "chunker/chunker.h"
#include "store/chunkcache.h"
#include "bench/simstore.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CC_SEED 77u
#define BUILD "0c8e6f40-4c1e-4f4e-9c11-2d1e5c3b7a10"
#define KEY BUILD "/memfile"
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
    int err = store_read(s, KEY, off, len, got, NULL, NULL, &res);
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
    snprintf(p, sizeof p, "%s/" KEY "/%s", root, name);
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
    CHECK_EQ(inner_reads(sim), 2);            /* chunk 0 (the size unknown), then one run of 3 */
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
    CHECK_EQ(st.bytes, size);                  /* the count was rebuilt from the directory */
    CHECK_EQ(cc_read_check(cc, 100, 2 * (uint64_t)CHUNK), 0);
    CHECK_EQ(cc_read_check(cc, size - 10, 10), 0);
    struct store_read_result res;
    uint8_t b[16];
    CHECK_EQ(store_read(cc, KEY, size - 4, 16, b, NULL, NULL, &res), 0);
    CHECK_EQ(res.bytes, 4);
    CHECK_EQ(res.total_size, size);
    CHECK_ERR(store_read(cc, KEY, size + 1, 1, b, NULL, NULL, &res), SNAP_ERANGE, "past the end");
    CHECK_EQ(inner_reads(sim), 0);
    store_close(cc);
    store_close(sim);
}

/* A miss fetches its whole chunk: the caller's own offset first (to the chunk's end), then the
 * chunk's head; the file appears only when whole. */
TEST(chunkcache_partial_read_fills_the_chunk)
{
    char root[600];
    snprintf(root, sizeof root, "%s/cc-partial", test_tmpdir());
    struct sim_opts so = {.size = 2 * (uint64_t)CHUNK, .seed = CC_SEED};
    struct chunkcache_opts co = {.chunk_size = CHUNK};
    struct store *sim, *cc;
    CHECK_EQ(store_sim_open(&so, &sim), 0);
    CHECK_EQ(store_chunkcache_open(sim, root, &co, &cc), 0);
    CHECK_EQ(cc_read_check(cc, 100 << 10, 4096), 0);
    CHECK(file_exists(root, "000000000000-262144.bin"));
    struct sim_request rq[4];
    CHECK_EQ(store_sim_requests(sim, rq, 4), 2);
    CHECK_EQ(rq[0].off, 100 << 10);            /* the reader's bytes first */
    CHECK_EQ(rq[0].len, CHUNK - (100 << 10));
    CHECK_EQ(rq[1].off, 0);                    /* then the head */
    CHECK_EQ(rq[1].len, 100 << 10);
    uint64_t before = inner_reads(sim);
    CHECK_EQ(cc_read_check(cc, 0, CHUNK), 0);
    CHECK_EQ(inner_reads(sim), before);

    /* The chunker on top of it: a cold chunker over a warm directory never reaches the inner store. */
    char path[700];
    snprintf(path, sizeof path, "%s/cc-chunker.cache", test_tmpdir());
    struct chunker_opts o = {.size = STORE_SIZE_UNKNOWN, .cache_path = path, .chunk_size = CHUNK};
    struct chunker *ch;
    CHECK_EQ(chunker_open(cc, KEY, &o, &ch), 0);
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
        if (strstr(e->d_name, ".tmp.")) {
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
    snprintf(dir, sizeof dir, "%s/" KEY, root);
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
                    store_read(cc, KEY, k * CHUNK + CHUNK / 2, CHUNK / 2, buf, NULL, NULL, &res);
                    store_read(cc, KEY, k * CHUNK, CHUNK / 2, buf, NULL, NULL, &res);
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
            if (strstr(e->d_name, ".bin") && !strstr(e->d_name, ".tmp."))
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
    CHECK(!file_exists(root, "000000000000.lock")); /* nobody holds a dead filler's lock: removed */
    store_close(cc);
    store_close(sim);
    (void)total_temps; /* usually > 0: the kills do land mid-fill */
}

/* ---- several processes on one root (each cache instance opens its own lock files, so two
 * instances in one process contend exactly as two processes do) ---- */

struct cc_reader {
    struct store *cc;
    uint64_t size;
    int err;
};

static void *cc_reader_main(void *p)
{
    struct cc_reader *r = p;
    r->err = cc_read_check(r->cc, 0, r->size);
    return NULL;
}

/* Four readers in two "processes" want the same 8 chunks at the same moment: each chunk is fetched
 * from the store once, every reader gets the right bytes. */
TEST(chunkcache_one_fetch_per_chunk_across_instances)
{
    char root[600];
    snprintf(root, sizeof root, "%s/cc-flight", test_tmpdir());
    uint64_t size = 8 * (uint64_t)CHUNK;
    struct sim_opts so = {.size = size, .seed = CC_SEED, .ttfb_us = 20000, .bytes_per_sec = 50u << 20};
    struct chunkcache_opts co = {.chunk_size = CHUNK};
    struct store *sim[2], *cc[2];
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(store_sim_open(&so, &sim[i]), 0);
        CHECK_EQ(store_chunkcache_open(sim[i], root, &co, &cc[i]), 0);
    }
    pthread_t t[4];
    struct cc_reader r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct cc_reader){cc[i % 2], size, -1};
        CHECK_EQ(pthread_create(&t[i], NULL, cc_reader_main, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    uint64_t bytes = 0, waits = 0;
    for (int i = 0; i < 2; i++) {
        struct sim_stats ss;
        struct chunkcache_stats cs;
        store_sim_stats(sim[i], &ss);
        store_chunkcache_stats(cc[i], &cs);
        bytes += ss.bytes;
        waits += cs.waits;
        CHECK_EQ(cs.uncached, 0);
    }
    for (int i = 0; i < 4; i++)
        CHECK_EQ(r[i].err, 0);
    CHECK_EQ(bytes, size); /* not a byte twice */
    CHECK(waits > 0);      /* they did meet */
    for (int i = 0; i < 2; i++) {
        store_close(cc[i]);
        store_close(sim[i]);
    }
}

static uint64_t dir_chunk_bytes(const char *root)
{
    char dir[700], p[1200];
    snprintf(dir, sizeof dir, "%s/" KEY, root);
    DIR *d = opendir(dir);
    struct dirent *e;
    uint64_t total = 0;
    while (d && (e = readdir(d)) != NULL) {
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (strstr(e->d_name, ".bin") && stat(p, &st) == 0)
            total += (uint64_t)st.st_size;
    }
    if (d)
        closedir(d);
    return total;
}

/* Two "processes" filling different chunks share one byte limit. */
TEST(chunkcache_limit_holds_across_instances)
{
    char root[600];
    snprintf(root, sizeof root, "%s/cc-shared-limit", test_tmpdir());
    struct sim_opts so = {.size = 8 * (uint64_t)CHUNK, .seed = CC_SEED};
    struct chunkcache_opts co = {.chunk_size = CHUNK, .limit = 3 * (uint64_t)CHUNK};
    struct store *sim[2], *cc[2];
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(store_sim_open(&so, &sim[i]), 0);
        CHECK_EQ(store_chunkcache_open(sim[i], root, &co, &cc[i]), 0);
    }
    for (uint64_t k = 0; k < 4; k++) {
        CHECK_EQ(cc_read_check(cc[0], k * CHUNK, CHUNK), 0);
        CHECK(dir_chunk_bytes(root) <= 3 * (uint64_t)CHUNK);
        CHECK_EQ(cc_read_check(cc[1], (k + 4) * CHUNK, CHUNK), 0);
        CHECK(dir_chunk_bytes(root) <= 3 * (uint64_t)CHUNK);
    }
    CHECK_EQ(dir_chunk_bytes(root), 3 * (uint64_t)CHUNK);
    for (int i = 0; i < 2; i++) {
        store_close(cc[i]);
        store_close(sim[i]);
    }
}

/* A chunk file whose size is not the one its name says is never served; the fill replaces it. */
TEST(chunkcache_wrong_length_file_is_refetched)
{
    char root[600], p[800];
    snprintf(root, sizeof root, "%s/cc-wrong-len", test_tmpdir());
    struct sim_opts so = {.size = 2 * (uint64_t)CHUNK, .seed = CC_SEED};
    struct chunkcache_opts co = {.chunk_size = CHUNK};
    struct store *sim, *cc;
    CHECK_EQ(store_sim_open(&so, &sim), 0);
    CHECK_EQ(store_chunkcache_open(sim, root, &co, &cc), 0);
    CHECK_EQ(cc_read_check(cc, 0, 10), 0); /* size.txt, chunk 0 */
    snprintf(p, sizeof p, "%s/" KEY "/000000000001-262144.bin", root);
    CHECK_EQ(snap_write_file_atomic(p, "garbage", 7, 0644), 0);
    uint64_t before = inner_reads(sim);
    CHECK_EQ(cc_read_check(cc, CHUNK + 5, 100), 0);
    CHECK(inner_reads(sim) > before);
    struct stat st;
    CHECK_EQ(stat(p, &st), 0);
    CHECK_EQ(st.st_size, CHUNK);           /* replaced by the whole chunk */
    before = inner_reads(sim);
    CHECK_EQ(cc_read_check(cc, CHUNK, CHUNK), 0);
    CHECK_EQ(inner_reads(sim), before);
    store_close(cc);
    store_close(sim);
}

/* A directory that cannot be written costs only the caching. */
TEST(chunkcache_unwritable_directory_reads_on)
{
    char root[600], p[800];
    snprintf(root, sizeof root, "%s/cc-unwritable", test_tmpdir());
    struct sim_opts so = {.size = 2 * (uint64_t)CHUNK + 7, .seed = CC_SEED};
    struct store *sim, *cc;
    CHECK_EQ(store_sim_open(&so, &sim), 0);
    CHECK_EQ(store_chunkcache_open(sim, root, NULL, &cc), 0);
    snprintf(p, sizeof p, "%s/" BUILD, root);
    CHECK_EQ(snap_write_file_atomic(p, "x", 1, 0644), 0); /* {root}/{build} a file: no object directory */
    CHECK_EQ(cc_read_check(cc, 0, 2 * (uint64_t)CHUNK + 7), 0);
    CHECK_EQ(cc_read_check(cc, 5, 5), 0);
    struct chunkcache_stats st;
    store_chunkcache_stats(cc, &st);
    CHECK(st.uncached > 0);
    CHECK_EQ(st.files_written, 0);
    store_close(cc);
    store_close(sim);
}

/* Keys that are not {buildId}/{file} go under the store URL's hash: two stores' "disk.img" are
 * two objects. */
TEST(chunkcache_other_keys_are_named_by_store)
{
    char root[600];
    snprintf(root, sizeof root, "%s/cc-names", test_tmpdir());
    struct sim_opts so = {.size = 1000, .seed = CC_SEED};
    struct store *sim, *cc;
    CHECK_EQ(store_sim_open(&so, &sim), 0);
    CHECK_EQ(store_chunkcache_open(sim, root, NULL, &cc), 0);
    uint8_t b[1000];
    struct store_read_result res;
    CHECK_EQ(store_read(cc, "disk.img", 0, 1000, b, NULL, NULL, &res), 0);
    CHECK_EQ(res.bytes, 1000);
    DIR *d = opendir(root);
    struct dirent *e;
    bool tagged = false;
    while (d && (e = readdir(d)) != NULL) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s/disk.img/000000000000-1000.bin", root, e->d_name);
        tagged |= !strncmp(e->d_name, "url-", 4) && strlen(e->d_name) == 20 && access(p, F_OK) == 0;
    }
    if (d)
        closedir(d);
    CHECK(tagged);
    store_close(cc);
    store_close(sim);
}

/* A chunker over a chunk cache keeps no copy of the base: every chunk it fetched whole is handed
 * over to the directory (dropped from its cache file), and reads come from there, right, without
 * another inner read. */
TEST(chunkcache_chunker_hands_chunks_over)
{
    char root[600], path[700];
    snprintf(root, sizeof root, "%s/cc-handover", test_tmpdir());
    snprintf(path, sizeof path, "%s/cc-handover.cache", test_tmpdir());
    struct sim_opts so = {.size = 3 * (uint64_t)CHUNK, .seed = CC_SEED};
    struct chunkcache_opts co = {.chunk_size = CHUNK};
    struct store *sim, *cc;
    CHECK_EQ(store_sim_open(&so, &sim), 0);
    CHECK_EQ(store_chunkcache_open(sim, root, &co, &cc), 0);
    struct chunker_opts o = {.size = 3 * (uint64_t)CHUNK, .cache_path = path, .chunk_size = CHUNK};
    struct chunker *ch;
    CHECK_EQ(chunker_open(cc, KEY, &o, &ch), 0);
    uint8_t *got = malloc(3 * CHUNK), *want = malloc(3 * CHUNK);
    CHECK(got && want);
    store_sim_pattern(CC_SEED, 0, want, 3 * CHUNK);
    CHECK_EQ(chunker_read(ch, 4096, 4096, got), 0);          /* cold: fetches chunk 0 */
    CHECK_MEM(got, want + 4096, 4096);
    CHECK_EQ(chunker_read(ch, 0, 3 * CHUNK, got), 0);        /* all three */
    CHECK_MEM(got, want, 3 * CHUNK);
    struct chunker_stats st;
    for (int i = 0; i < 200; i++) { /* the hand-over follows the fetch's end */
        chunker_stats(ch, &st);
        if (st.handed_over >= 3 * (uint64_t)CHUNK)
            break;
        usleep(10000);
    }
    CHECK(st.handed_over >= 3 * (uint64_t)CHUNK);
    CHECK(!cache_readable(chunker_cache(ch), 0, 4096));      /* no copy here */
    uint64_t before = inner_reads(sim);
    memset(got, 0, 3 * CHUNK);
    CHECK_EQ(chunker_read(ch, 0, 3 * CHUNK, got), 0);        /* from the directory */
    CHECK_MEM(got, want, 3 * CHUNK);
    CHECK_EQ(chunker_read_cached(ch, CHUNK + 8, 100, got), 0);
    CHECK_MEM(got, want + CHUNK + 8, 100);
    int fd;
    uint64_t fd_off;
    CHECK_EQ(chunker_read_ref(ch, 0, 4096, &fd, &fd_off), SNAP_EAGAIN); /* no zero-copy from a file that drops blocks */
    CHECK_EQ(inner_reads(sim), before);
    chunker_close(ch);
    free(got);
    free(want);
    store_close(cc);
    store_close(sim);
}
