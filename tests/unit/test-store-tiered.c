/* Unit tests of the tiered store (lib/store/tiered.c) and the peer:// backend: a loopback HTTP
 * server scripted to fail in every way a peer can (404, 503, 410 + X-Snapctl-Use-Storage, a body
 * cut short, a size that disagrees, a stall past the idle timeout, nobody listening) in front of
 * a simulated storage; each read must come back whole from storage, the 410 must stick. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "net-testsrv.h"
#include "store/peer_client.h"
#include "bench/simstore.h"
#include "store/tiered.h"

#include <stdio.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stdlib.h>

#define KEY "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/memfile"
#define OBJ_SIZE (1u << 20)
#define N 4096

struct mono {
    uint64_t last;
    int bad;
};

static int mono_cb(void *ctx, uint64_t done)
{
    struct mono *m = ctx;
    if (done <= m->last)
        m->bad++;
    m->last = done;
    return 0;
}

/* A 206 for [0, N) of an object of `total` bytes whose body is `sent` bytes of 'P'. */
static char *reply_206(uint64_t total, size_t sent, size_t clen, size_t *len)
{
    char *r = malloc(256 + sent);
    int n = snprintf(r, 256,
                     "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-%zu/%llu\r\nContent-Length: %zu\r\n\r\n",
                     clen - 1, (unsigned long long)total, clen);
    memset(r + n, 'P', sent);
    *len = (size_t)n + sent;
    return r;
}

static int open_tiered(uint16_t port, struct store **out, struct store **sim)
{
    char url[64];
    snprintf(url, sizeof url, "peer://127.0.0.1:%u", (unsigned)port);
    struct store_opts po = {.connect_timeout_ms = 500, .idle_timeout_ms = 300};
    struct store *front, *inner;
    int err = store_peer_open(url, &po, NULL, 0, &front);
    if (err)
        return err;
    struct sim_opts so = {.size = OBJ_SIZE, .seed = 9};
    if ((err = store_sim_open(&so, &inner)) != 0) {
        store_close(front);
        return err;
    }
    *sim = inner;
    struct tiered_opts to = {.skip_ms = 1000};
    return store_tiered_open(front, inner, &to, out);
}

TEST(store_tiered_every_peer_failure_falls_back)
{
    size_t l_ok, l_short, l_wrong;
    char *ok = reply_206(OBJ_SIZE, N, N, &l_ok);
    char *cut = reply_206(OBJ_SIZE, 100, N, &l_short);    /* announces N, sends 100, closes */
    char *wrong = reply_206(100, 100, 100, &l_wrong);     /* "the object has 100 bytes" */
    const struct tsrv_reply script[] = {
        {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0, 0, 0, true},       /* stat */
        {ok, l_ok, 0, 0, true},                                                      /* good read */
        {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0, 0, 0, true},
        {"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", 0, 0, 0, true},
        {cut, l_short, 0, 0, true},
        {wrong, l_wrong, 0, 0, true},
        {"HTTP/1.1 410 Gone\r\nX-Snapctl-Use-Storage: 1\r\nContent-Length: 0\r\n\r\n", 0, 0, 0, true},
    };
    struct tsrv *srv = tsrv_start("127.0.0.1", script, sizeof script / sizeof script[0], false);
    CHECK(srv);
    struct store *t, *sim;
    CHECK_EQ(open_tiered(tsrv_port(srv), &t, &sim), 0);
    uint8_t *buf = malloc(N), *want = malloc(N), *peer = malloc(N);
    store_sim_pattern(9, 0, want, N);
    memset(peer, 'P', N);
    struct tiered_stats st;

    /* stat: the peer's 404 -> storage's size (which is now known to the store). */
    struct store_info info;
    CHECK_EQ(store_stat(t, KEY, &info), 0);
    CHECK_EQ(info.size, OBJ_SIZE);
    /* A good peer answer is used as it is. */
    struct store_read_result res;
    CHECK_EQ(store_read(t, KEY, 0, N, buf, NULL, NULL, &res), 0);
    CHECK_EQ(res.bytes, N);
    CHECK_MEM(buf, peer, N);
    store_tiered_stats(t, &st);
    CHECK_EQ(st.peer_reads, 1);
    CHECK_EQ(st.storage_reads, 1);
    /* 404, 503, a short body, a wrong size: each read comes back whole, from storage. */
    for (int i = 0; i < 4; i++) {
        struct mono m = {0, 0};
        memset(buf, 0, N);
        CHECK_EQ(store_read(t, KEY, 0, N, buf, mono_cb, &m, &res), 0);
        CHECK_EQ(res.bytes, N);
        CHECK_EQ(res.total_size, OBJ_SIZE);
        CHECK_MEM(buf, want, N);
        CHECK_EQ(m.bad, 0);     /* progress never went back, though the short body reported some */
        CHECK_EQ(m.last, N);
    }
    store_tiered_stats(t, &st);
    CHECK_EQ(st.fallbacks, 5);
    CHECK_EQ(st.storage_reads, 5);
    CHECK_EQ(tsrv_nreq(srv), 6);
    /* 410 + X-Snapctl-Use-Storage: this read from storage, and the build never asks the peer again. */
    CHECK_EQ(store_read(t, KEY, 0, N, buf, NULL, NULL, &res), 0);
    CHECK_MEM(buf, want, N);
    CHECK(store_tiered_build_gone(t, "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"));
    unsigned nreq = tsrv_nreq(srv);
    CHECK_EQ(nreq, 7);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(store_read(t, KEY, (uint64_t)i * N, N, buf, NULL, NULL, &res), 0);
    CHECK_EQ(store_stat(t, KEY, &info), 0);
    CHECK_EQ(tsrv_nreq(srv), nreq);
    store_tiered_stats(t, &st);
    CHECK_EQ(st.gone_builds, 1);
    CHECK_EQ(st.peer_reads, 1);
    /* Another build is still read from the peer (the script is used up: it is closed on). */
    CHECK_EQ(store_read(t, "11111111-2222-3333-4444-555555555555/memfile", 0, N, buf, NULL, NULL, &res), 0);
    CHECK_EQ(tsrv_nreq(srv), nreq + 1);
    CHECK_MEM(buf, want, N);
    store_close(t);
    tsrv_stop(srv);
    free(ok), free(cut), free(wrong), free(buf), free(want), free(peer);
}

TEST(store_tiered_timeout_and_peer_down)
{
    const struct tsrv_reply script[] = {
        {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0, 1500, 0, true}, /* past the idle timeout */
    };
    struct tsrv *srv = tsrv_start("127.0.0.1", script, 1, true);
    CHECK(srv);
    struct store *t, *sim;
    CHECK_EQ(open_tiered(tsrv_port(srv), &t, &sim), 0);
    uint8_t *buf = malloc(N), *want = malloc(N);
    store_sim_pattern(9, N, want, N);
    struct store_read_result res;
    CHECK_EQ(store_read(t, KEY, N, N, buf, NULL, NULL, &res), 0);
    CHECK_MEM(buf, want, N);
    CHECK_EQ(tsrv_nreq(srv), 1);
    /* Within the skip window after a timeout the peer is not asked. */
    CHECK_EQ(store_read(t, KEY, N, N, buf, NULL, NULL, &res), 0);
    CHECK_EQ(tsrv_nreq(srv), 1);
    struct tiered_stats st;
    store_tiered_stats(t, &st);
    CHECK_EQ(st.fallbacks, 1);
    CHECK_EQ(st.storage_reads, 2);
    store_close(t);
    uint16_t port = tsrv_port(srv);
    tsrv_stop(srv);

    /* Nobody listening: refused, read from storage. */
    CHECK_EQ(open_tiered(port, &t, &sim), 0);
    CHECK_EQ(store_read(t, KEY, N, N, buf, NULL, NULL, &res), 0);
    CHECK_MEM(buf, want, N);
    store_tiered_stats(t, &st);
    CHECK_EQ(st.fallbacks, 1);
    CHECK_EQ(st.peer_reads, 0);
    /* Both fail: the caller sees storage's error, not the peer's. */
    CHECK_ERR(store_read(t, KEY, OBJ_SIZE + 1, N, buf, NULL, NULL, &res), SNAP_ERANGE, "");
    store_close(t);
    free(buf), free(want);
}

TEST(store_peer_allowlist_and_keys)
{
    struct store *s;
    struct store_opts o = {0};
    CHECK_ERR(store_peer_open("peer://169.254.169.254:80", &o, NULL, 0, &s), SNAP_EAUTH, "not in the peer allowlist");
    CHECK_ERR(store_peer_open("peer://10.0.0.1:80", &o, NULL, 0, &s), SNAP_EAUTH, "loopback only");
    struct httpd_cidr allow;
    CHECK_EQ(httpd_cidr_parse("10.0.0.0/8", &allow), 0);
    CHECK_ERR(store_peer_open("peer://127.0.0.1:80", &o, &allow, 1, &s), SNAP_EAUTH, "--peer-allow");
    CHECK_EQ(store_peer_open("peer://10.1.2.3:80", &o, &allow, 1, &s), 0);
    store_close(s);
    CHECK_ERR(store_peer_open("peer://127.0.0.1:80/path", &o, NULL, 0, &s), SNAP_EUSAGE, "nothing more");
    /* Keys that are not {uuid}/{file} are "not found" without a request. */
    CHECK_EQ(store_open("peer://127.0.0.1:9", NULL, &s), 0);
    uint8_t b[16];
    struct store_read_result res;
    CHECK_ERR(store_read(s, "notauuid/memfile", 0, 16, b, NULL, NULL, &res), SNAP_ENOTFOUND, "build object");
    CHECK_ERR(store_read(s, "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/a/b", 0, 16, b, NULL, NULL, &res),
              SNAP_ENOTFOUND, "build object");
    store_close(s);
}

/* The tiered layer adds no allocation to a read (two simulated stores, warm). */
TEST(store_tiered_read_allocates_nothing)
{
    struct sim_opts so = {.size = OBJ_SIZE, .seed = 3};
    struct store *a, *b, *t;
    CHECK_EQ(store_sim_open(&so, &a), 0);
    CHECK_EQ(store_sim_open(&so, &b), 0);
    CHECK_EQ(store_tiered_open(a, b, NULL, &t), 0);
    uint8_t *buf = malloc(N);
    struct store_read_result res;
    CHECK_EQ(store_read(t, KEY, 0, N, buf, NULL, NULL, &res), 0);
    uint64_t before = snap_alloc_count();
    for (int i = 0; i < 100; i++)
        CHECK_EQ(store_read(t, KEY, (uint64_t)i * N, N, buf, NULL, NULL, &res), 0);
    CHECK_EQ(snap_alloc_count(), before);
    store_close(t);
    free(buf);
}

/* Many readers at once on a flaky front: every read correct, every failure redone on storage. */
struct tr_worker {
    struct store *t;
    int id, bad;
};

static void *tr_worker_main(void *arg)
{
    struct tr_worker *w = arg;
    uint8_t *buf = malloc(N), *want = malloc(N);
    for (int i = 0; i < 40; i++) {
        uint64_t off = (uint64_t)((w->id * 40 + i) % (OBJ_SIZE / N)) * N;
        struct store_read_result res;
        store_sim_pattern(4, off, want, N);
        if (store_read(w->t, KEY, off, N, buf, NULL, NULL, &res) || res.bytes != N || memcmp(buf, want, N))
            w->bad++;
    }
    free(buf);
    free(want);
    return NULL;
}

TEST(store_tiered_concurrent_flaky_front)
{
    struct sim_opts fo = {.size = OBJ_SIZE, .seed = 4, .fault_seed = 11, .fail_pct = 20, .truncate_pct = 20,
                          .slice = 1024};
    struct sim_opts io = {.size = OBJ_SIZE, .seed = 4};
    struct store *front, *inner, *t;
    CHECK_EQ(store_sim_open(&fo, &front), 0);
    CHECK_EQ(store_sim_open(&io, &inner), 0);
    CHECK_EQ(store_tiered_open(front, inner, NULL, &t), 0);
    struct store_info info;
    CHECK_EQ(store_stat(t, KEY, &info), 0);
    pthread_t th[4];
    struct tr_worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct tr_worker){t, i, 0};
        CHECK_EQ(pthread_create(&th[i], NULL, tr_worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(w[i].bad, 0);
    }
    struct tiered_stats st;
    store_tiered_stats(t, &st);
    CHECK_EQ(st.peer_reads + st.storage_reads, 160 + 1);
    CHECK_EQ(st.storage_reads, st.fallbacks);
    CHECK(st.fallbacks > 0);
    CHECK(st.peer_reads > 0);
    store_close(t);
}

/* store_open_tiered / store_open_object: the peer in front of a store, as the applets ask. */
TEST(store_open_object_behind_a_peer)
{
    char dir[512], url[600];
    snprintf(dir, sizeof dir, "%s/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", test_tmpdir());
    mkdir(dir, 0755);
    snprintf(url, sizeof url, "file://%s/memfile", dir);
    struct store *s = NULL;
    char *key = NULL;
    /* No peer: the plain store of the directory, the key is the name. */
    CHECK_EQ(store_open_object(url, NULL, NULL, &s, &key), 0);
    CHECK(!store_is_tiered(s));
    CHECK_STR(key, "memfile");
    store_close(s);
    snap_free(key);
    /* A peer: a tiered store of the directory above {uuid}, the key is {uuid}/{file}. */
    struct store_peer_front f = {.peer = "127.0.0.1:9"};
    CHECK_EQ(store_open_object(url, NULL, &f, &s, &key), 0);
    CHECK(store_is_tiered(s));
    CHECK_STR(key, "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/memfile");
    store_close(s);
    snap_free(key);
    key = NULL;
    snprintf(url, sizeof url, "file://%s/memfile", test_tmpdir());
    CHECK_ERR(store_open_object(url, NULL, &f, &s, &key), SNAP_EUSAGE, "is not a UUID");
    CHECK(key == NULL);
    /* Options that do not go together, and a refused address, fail before anything is read. */
    snprintf(url, sizeof url, "file://%s", test_tmpdir());
    struct store_peer_front both = {.peer = "127.0.0.1:9", .registry = "redis://127.0.0.1:6379"};
    CHECK_ERR(store_open_tiered(url, NULL, &both, &s), SNAP_EUSAGE, "give one of them");
    struct store_peer_front ca_only = {.ca_file = "absent.pem"};
    CHECK_ERR(store_open_tiered(url, NULL, &ca_only, &s), SNAP_EUSAGE, "only go with --peer");
    struct store_peer_front far = {.peer = "10.0.0.1:80"};
    CHECK_ERR(store_open_tiered(url, NULL, &far, &s), SNAP_EAUTH, "loopback only");
}

TEST(store_peer_url_forms)
{
    char u[32];
    CHECK_EQ(store_peer_url("127.0.0.1:7000", u, sizeof u), 0);
    CHECK_STR(u, "peer://127.0.0.1:7000");
    CHECK_EQ(store_peer_url("peers://h:1", u, sizeof u), 0);
    CHECK_STR(u, "peers://h:1");
    CHECK_ERR(store_peer_url("http://h:1", u, sizeof u), SNAP_EUSAGE, "a peer is HOST:PORT");
    CHECK_ERR(store_peer_url("a-very-long-host-name.example:7000", u, sizeof u), SNAP_EUSAGE, "too long");
}
