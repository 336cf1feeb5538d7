/* Unit tests of lib/nbd over a socketpair: pipelining, cookies, zero allocations per request. */
#include "test.h"

#include "base/bytes.h"
#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "base/prom.h"
#include "nbd/metrics.h"
#include "nbd/nbd.h"
#include "nbd/proto.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define MEM_SIZE (8u << 20)

struct memdev {
    uint8_t *data;
    pthread_mutex_t lock;
    uint64_t cold_below;    /* reads below this offset "wait for a fetch" (as the chunker says) */
};

static int m_pread(void *ctx, void *buf, uint32_t len, uint64_t off)
{
    struct memdev *m = ctx;
    if (off < m->cold_below)
        snap_fetch_waited();
    pthread_mutex_lock(&m->lock);
    memcpy(buf, m->data + off, len);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

static int m_pwrite(void *ctx, const void *buf, uint32_t len, uint64_t off, bool fua)
{
    (void)fua;
    struct memdev *m = ctx;
    pthread_mutex_lock(&m->lock);
    memcpy(m->data + off, buf, len);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

static int m_pwrite_nowait(void *ctx, const void *buf, uint32_t len, uint64_t off, bool fua)
{
    return fua ? SNAP_EAGAIN : m_pwrite(ctx, buf, len, off, fua);
}

/* Every request on a worker; and every request inline on the reader (the fast paths). */
static const struct dev_ops mem_ops = {.pread = m_pread, .pwrite = m_pwrite};
static const struct dev_ops mem_ops_inline = {.pread = m_pread, .pwrite = m_pwrite, .pread_nowait = m_pread,
                                              .pwrite_nowait = m_pwrite_nowait};

struct server_arg {
    struct nbd_export exp;
    int fd;
    int result;
    struct nbd_stats *stats;
};

static void *server_thread(void *p)
{
    struct server_arg *a = p;
    struct nbd_conn_opts co = {.workers = 4, .peer = "test"};
    a->result = nbd_serve(&a->exp, a->fd, a->fd, &co, a->stats);
    return NULL;
}

/* Client side: handshake with GO, no structured replies. */
static int client_handshake(int fd, uint64_t *size)
{
    uint8_t b[64];
    if (snap_read_full(fd, b, 18, "c") || get_be64(b) != NBD_MAGIC)
        return -1;
    put_be32(b, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    put_be64(b + 4, NBD_IHAVEOPT);
    put_be32(b + 12, NBD_OPT_GO);
    put_be32(b + 16, 6);
    put_be32(b + 20, 0);
    put_be16(b + 24, 0);
    if (snap_write_full(fd, b, 26, "c"))
        return -1;
    for (;;) {
        if (snap_read_full(fd, b, 20, "c"))
            return -1;
        uint32_t type = get_be32(b + 12), len = get_be32(b + 16);
        uint8_t d[64];
        if (len > sizeof d || snap_read_full(fd, d, len, "c"))
            return -1;
        if (type == NBD_REP_INFO && get_be16(d) == NBD_INFO_EXPORT)
            *size = get_be64(d + 2);
        if (type == NBD_REP_ACK)
            return 0;
        if (type & NBD_REP_ERR_BIT)
            return -1;
    }
}

static void put_request(uint8_t *h, uint16_t type, uint64_t cookie, uint64_t off, uint32_t len)
{
    put_be32(h, NBD_REQUEST_MAGIC);
    put_be16(h + 4, 0);
    put_be16(h + 6, type);
    put_be64(h + 8, cookie);
    put_be64(h + 16, off);
    put_be32(h + 24, len);
}

/* Writes then reads back 4 KiB blocks, keeping `depth` requests in flight. */
static int pipelined_round(int fd, uint32_t round, unsigned n, unsigned depth, uint8_t *wbuf, uint8_t *rbuf)
{
    unsigned sent = 0, got = 0;
    while (got < n) {
        while (sent < n && sent - got < depth) {
            uint8_t h[NBD_REQUEST_SIZE];
            uint64_t off = (uint64_t)(sent % 1024) * 4096;
            bool write = sent < n / 2;
            if (write) {
                memset(wbuf, (int)((round + sent) & 0xff), 4096);
                put_request(h, NBD_CMD_WRITE, sent, off, 4096);
                if (snap_write_full(fd, h, sizeof h, "c") || snap_write_full(fd, wbuf, 4096, "c"))
                    return -1;
            } else {
                put_request(h, NBD_CMD_READ, sent, off, 4096);
                if (snap_write_full(fd, h, sizeof h, "c"))
                    return -1;
            }
            sent++;
            if (sent == n / 2) { /* all writes answered before the reads start */
                while (got < sent) {
                    uint8_t r[16];
                    if (snap_read_full(fd, r, 16, "c") || get_be32(r + 4) != 0)
                        return -1;
                    got++;
                }
            }
        }
        uint8_t r[16];
        if (got >= sent)
            continue;
        if (snap_read_full(fd, r, 16, "c") || get_be32(r) != NBD_SIMPLE_REPLY_MAGIC || get_be32(r + 4))
            return -1;
        uint64_t cookie = get_be64(r + 8);
        if (cookie >= n / 2) {
            if (snap_read_full(fd, rbuf, 4096, "c"))
                return -1;
            /* The last write to this block was request (cookie - n/2) of this round. */
            uint8_t want = (uint8_t)((round + (cookie - n / 2)) & 0xff);
            for (int i = 0; i < 4096; i++)
                if (rbuf[i] != want)
                    return -2;
        }
        got++;
    }
    return 0;
}

/* With the counters and the READ latency histograms on: a request still allocates nothing, and
 * the reads the device says waited for a fetch (the first 16 blocks) are the cold ones. */
static void pipelined_no_alloc(const struct dev_ops *ops)
{
    struct memdev m = {.data = calloc(1, MEM_SIZE), .cold_below = 16 * 4096};
    pthread_mutex_init(&m.lock, NULL);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    static struct nbd_stats st;
    memset(&st, 0, sizeof st);
    struct server_arg a = {.exp = {.name = "", .size = MEM_SIZE, .min_block = 1, .pref_block = 4096,
                                   .ops = ops, .ctx = &m},
                           .fd = sv[0], .stats = &st};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, server_thread, &a), 0);
    uint64_t size = 0;
    CHECK_EQ(client_handshake(sv[1], &size), 0);
    CHECK_EQ(size, MEM_SIZE);

    uint8_t wbuf[4096], rbuf[4096];
    /* Warm-up, deeper than the measured round: the requests in flight (and the slots whose
     * replies are out but not yet returned) never need more slots than the warm-up made. */
    CHECK_EQ(pipelined_round(sv[1], 0, 2048, 32, wbuf, rbuf), 0);
    uint64_t before = snap_alloc_count();
    CHECK_EQ(pipelined_round(sv[1], 1, 2048, 8, wbuf, rbuf), 0);
    uint64_t after = snap_alloc_count();
    CHECK_EQ(after - before, 0);

    uint8_t h[NBD_REQUEST_SIZE];
    put_request(h, NBD_CMD_DISC, 0, 0, 0);
    CHECK_EQ(snap_write_full(sv[1], h, sizeof h, "c"), 0);
    pthread_join(t, NULL);
    CHECK_EQ(a.result, 0);
    close(sv[0]);
    close(sv[1]);
    free(m.data);
    pthread_mutex_destroy(&m.lock);
    /* Two rounds of 1024 writes and 1024 reads; each read round reads blocks 0..1023 once. */
    CHECK_EQ(st.answered[NBD_CMD_READ], 2048);
    CHECK_EQ(st.answered[NBD_CMD_WRITE], 2048);
    CHECK_EQ(st.answered[NBD_CMD_DISC], 0); /* DISC has no reply */
    CHECK_EQ(st.requests, 4097);
    CHECK_EQ(st.reads, 2048);
    CHECK_EQ(st.bytes_read, 2048 * 4096);
    struct snap_histo_snap cold = {0}, warm = {0};
    snap_histo_read(&st.read_cold, &cold);
    snap_histo_read(&st.read_warm, &warm);
    CHECK_EQ(cold.count, 2 * 16);
    CHECK_EQ(warm.count, 2048 - 2 * 16);
    CHECK_STR(nbd_cmd_name(NBD_CMD_WRITE_ZEROES), "write_zeroes");
    CHECK_STR(nbd_cmd_name(NBD_STATS_CMDS - 1), "other");
}

TEST(nbd_pipelined_no_alloc_after_warmup_workers)
{
    pipelined_no_alloc(&mem_ops);
}

TEST(nbd_pipelined_no_alloc_after_warmup_inline)
{
    pipelined_no_alloc(&mem_ops_inline);
}

TEST(nbd_wire_errors)
{
    CHECK_EQ(nbd_wire_error(SNAP_OK), 0);
    CHECK_EQ(nbd_wire_error(SNAP_EIO), NBD_EIO);
    CHECK_EQ(nbd_wire_error(SNAP_ENOSPC), NBD_ENOSPC);
    CHECK_EQ(nbd_wire_error(SNAP_EAUTH), NBD_EPERM);
    CHECK_EQ(nbd_wire_error(SNAP_ENOTSUP), NBD_ENOTSUP);
    CHECK_EQ(nbd_wire_error(SNAP_ENET), NBD_EIO);
}

/* Two exports: each has its rows under its export label, the totals are their sums. */
TEST(nbd_metrics_per_export_and_total)
{
    static struct nbd_stats a, b;
    struct nbd_timing t;
    for (int i = 0; i < 2; i++) {
        nbd_stats_start(&t);
        nbd_stats_done(&a, &t, NBD_CMD_READ);
    }
    for (int i = 0; i < 3; i++) {
        nbd_stats_start(&t);
        snap_fetch_waited();
        nbd_stats_done(&b, &t, NBD_CMD_READ);
    }
    nbd_stats_start(&t);
    nbd_stats_done(&b, &t, 99); /* no such command */
    atomic_store(&b.bytes_read, 12288);
    struct nbd_metrics_export x[2] = {{.name = "", .stats = &a}, {.name = "vm \"b\"", .stats = &b}};
    struct snap_buf buf;
    snap_buf_init(&buf, 1024, 1 << 20);
    struct prom p = {.b = &buf};
    nbd_metrics_write(&p, x, 2);
    CHECK_EQ(prom_end(&p), 0);
    CHECK_EQ(snap_buf_append(&buf, "", 1), 0);
    const char *s = (const char *)buf.data;
    CHECK(strstr(s, "\nsnapctl_nbd_exports 2\n"));
    CHECK(strstr(s, "\nsnapctl_nbd_requests_total{command=\"read\"} 5\n"));
    CHECK(strstr(s, "\nsnapctl_nbd_requests_total{command=\"other\"} 1\n"));
    CHECK(strstr(s, "\nsnapctl_nbd_export_requests_total{export=\"\",command=\"read\"} 2\n"));
    CHECK(strstr(s, "\nsnapctl_nbd_export_requests_total{export=\"vm \\\"b\\\"\",command=\"read\"} 3\n"));
    CHECK(strstr(s, "\nsnapctl_nbd_read_bytes_total 12288\n"));
    CHECK(strstr(s, "\nsnapctl_nbd_read_seconds_count{fetch=\"cold\"} 3\n"));
    CHECK(strstr(s, "\nsnapctl_nbd_read_seconds_count{fetch=\"warm\"} 2\n"));
    CHECK(strstr(s, "\nsnapctl_nbd_export_read_seconds_count{export=\"\",fetch=\"cold\"} 0\n"));
    CHECK(strstr(s, "\nsnapctl_nbd_export_read_seconds_bucket{export=\"vm \\\"b\\\"\",fetch=\"cold\",le=\"+Inf\"} 3\n"));
    CHECK(strstr(s, "\nsnapctl_nbd_store_reads_total 0\n")); /* no device: zeros */
    snap_buf_free(&buf);
}
