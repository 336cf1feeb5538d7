/* Unit tests of lib/net/http_parse: the head parser and the chunked decoder, split at every byte. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "net/http_parse.h"

#include <stdlib.h>

/* What a parse produced, flattened so runs with different splits compare with one memcmp. */
struct outcome {
    int err;
    int status;
    size_t head_len;         /* bytes the head consumed */
    char fields[1024];       /* "name=value\n"... */
    uint64_t clen;
    int has_len, chunked, close;
    char body[1024];
    size_t body_len;
    int body_done;
};

/* Parse in pieces: cut at `split` (0 = none), and after that in `step`-byte pieces. */
static void run(const char *in, size_t n, size_t split, size_t step, struct outcome *o)
{
    memset(o, 0, sizeof *o);
    struct http_head h;
    http_head_init(&h);
    size_t pos = 0;
    while (pos < n && !http_head_done(&h)) {
        size_t piece = pos < split ? split - pos : step ? step : n - pos;
        if (piece > n - pos)
            piece = n - pos;
        size_t used;
        o->err = http_head_feed(&h, in + pos, piece, &used);
        if (o->err)
            goto out;
        pos += used;
        if (used < piece)
            break;
    }
    if (!http_head_done(&h))
        goto out;
    o->head_len = pos;
    o->status = h.status;
    o->clen = h.content_length;
    o->has_len = h.has_length;
    o->chunked = h.chunked;
    o->close = h.close;
    for (unsigned i = 0; i < h.nfields; i++) {
        size_t l = strlen(o->fields);
        snprintf(o->fields + l, sizeof o->fields - l, "%s=%s\n", http_head_name(&h, i), http_head_value(&h, i));
    }
    if (!h.chunked)
        goto out;
    struct http_chunked c;
    http_chunked_init(&c);
    while (pos < n && !http_chunked_done(&c)) {
        size_t piece = pos < split ? split - pos : step ? step : n - pos;
        if (piece > n - pos)
            piece = n - pos;
        size_t used, dl;
        const uint8_t *d;
        o->err = http_chunked_feed(&c, in + pos, piece, &used, &d, &dl);
        if (o->err)
            break;
        if (dl && o->body_len + dl <= sizeof o->body) {
            memcpy(o->body + o->body_len, d, dl);
        }
        o->body_len += dl;
        pos += used;
    }
    o->body_done = http_chunked_done(&c);
out:
    http_head_free(&h);
}

/* Every split point and byte-at-a-time give the one-shot outcome. */
static int same_at_every_split(const char *in, struct outcome *ref)
{
    size_t n = strlen(in);
    run(in, n, 0, 0, ref);
    struct outcome o;
    for (size_t k = 1; k < n; k++) {
        run(in, n, k, 0, &o);
        if (memcmp(&o, ref, sizeof o) != 0) {
            fprintf(stderr, "    split at %zu differs\n", k);
            return 0;
        }
    }
    run(in, n, 0, 1, &o);
    return memcmp(&o, ref, sizeof o) == 0;
}

TEST(net_parse_head_basic)
{
    struct outcome o;
    const char *r = "HTTP/1.1 206 Partial Content\r\n"
                    "Content-Range: bytes 0-3/10\r\n"
                    "Content-Length:4\r\n"
                    "ETag:  \"abc\" \t\r\n"
                    "X-Empty:\r\n"
                    "\r\n"
                    "BODY";
    CHECK(same_at_every_split(r, &o));
    CHECK_EQ(o.err, 0);
    CHECK_EQ(o.status, 206);
    CHECK_EQ(o.head_len, strlen(r) - 4);
    CHECK_EQ(o.has_len, 1);
    CHECK_EQ(o.clen, 4);
    CHECK_EQ(o.close, 0);
    CHECK_STR(o.fields, "Content-Range=bytes 0-3/10\nContent-Length=4\nETag=\"abc\"\nX-Empty=\n");

    struct http_head h;
    http_head_init(&h);
    size_t used;
    CHECK_EQ(http_head_feed(&h, r, strlen(r), &used), 0);
    CHECK_STR(http_head_get(&h, "etag"), "\"abc\"");
    CHECK_STR(http_head_get(&h, "CONTENT-RANGE"), "bytes 0-3/10");
    CHECK(http_head_get(&h, "nope") == NULL);
    CHECK_STR(http_head_reason(&h), "Partial Content");
    /* A reset parser reuses its buffer: no allocation. */
    uint64_t a0 = snap_alloc_count();
    http_head_reset(&h);
    CHECK_EQ(http_head_feed(&h, "HTTP/1.0 200\nConnection: keep-alive\n\n", 37, &used), 0);
    CHECK_EQ(snap_alloc_count(), a0);
    CHECK_EQ(used, 37);
    CHECK_EQ(h.status, 200);
    CHECK_EQ(h.minor, 0);
    CHECK_EQ(h.close, 0);
    CHECK_STR(http_head_reason(&h), "");
    http_head_reset(&h);
    CHECK_EQ(http_head_feed(&h, "HTTP/1.0 200 OK\r\n\r\n", 19, &used), 0);
    CHECK_EQ(h.close, 1);
    http_head_reset(&h);
    CHECK_EQ(http_head_feed(&h, "HTTP/1.1 204 No\r\nConnection: Foo, close\r\n\r\n", 43, &used), 0);
    CHECK_EQ(h.close, 1);
    http_head_free(&h);
}

static const struct {
    const char *in;
    int err;
    const char *msg;
} head_bad[] = {
    {"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", SNAP_EPROTO, "obsolete line folding"},
    {"HTTP/1.1 200 OK\r\nA: 1\r\n\tb\r\n\r\n", SNAP_EPROTO, "obsolete line folding"},
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", SNAP_EPROTO, "repeated Content-Length"},
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", SNAP_EPROTO, "repeated Content-Length"},
    {"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", SNAP_EPROTO, "bad Content-Length '5, 5'"},
    {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", SNAP_EPROTO, "bad Content-Length"},
    {"HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n", SNAP_EPROTO, "bad Content-Length"},
    {"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", SNAP_EPROTO, "bad Content-Length ''"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", SNAP_EPROTO, "unsupported Transfer-Encoding"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", SNAP_EPROTO,
     "repeated Transfer-Encoding"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", SNAP_EPROTO,
     "both Content-Length and Transfer-Encoding"},
    {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", SNAP_EPROTO, "HTTP/1.0"},
    {"HTTP/1.1 200 OK\r\nName : v\r\n\r\n", SNAP_EPROTO, "whitespace before ':'"},
    {"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n", SNAP_EPROTO, "malformed header line"},
    {"HTTP/1.1 200 OK\r\n: v\r\n\r\n", SNAP_EPROTO, "malformed header line"},
    {"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", SNAP_EPROTO, "bare CR"},
    {"HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n", SNAP_EPROTO, "control character in header 'A'"},
    {"HTTP/2 200\r\n\r\n", SNAP_EPROTO, "malformed status line 'HTTP/2 200'"},
    {"HTTP/1.1 20 OK\r\n\r\n", SNAP_EPROTO, "malformed status line"},
    {"HTTP/1.1 200OK\r\n\r\n", SNAP_EPROTO, "malformed status line"},
    {"HTTP/1.1 099 X\r\n\r\n", SNAP_EPROTO, "out of range"},
    {"SSH-2.0-OpenSSH\r\n", SNAP_EPROTO, "does not start with 'HTTP/'"},
    {"\r\nHTTP/1.1 200 OK\r\n\r\n", SNAP_EPROTO, "does not start with 'HTTP/'"},
};

TEST(net_parse_head_rejects)
{
    for (size_t i = 0; i < sizeof head_bad / sizeof head_bad[0]; i++) {
        struct outcome o;
        CHECK(same_at_every_split(head_bad[i].in, &o));
        if (o.err != head_bad[i].err)
            fprintf(stderr, "    case %zu: %s\n", i, head_bad[i].in);
        CHECK_EQ(o.err, head_bad[i].err);
        struct http_head h;
        http_head_init(&h);
        size_t used;
        CHECK_ERR(http_head_feed(&h, head_bad[i].in, strlen(head_bad[i].in), &used), head_bad[i].err,
                  head_bad[i].msg);
        /* Sticky: the next call fails the same way, whatever it is given. */
        CHECK_ERR(http_head_feed(&h, "\r\n", 2, &used), head_bad[i].err, head_bad[i].msg);
        http_head_free(&h);
    }
}

TEST(net_parse_head_caps)
{
    struct http_head h;
    http_head_init(&h);
    size_t used, n = HTTP_HEAD_MAX + 100;
    char *big = malloc(n);
    /* One field that makes the head exactly 64 KiB is fine; one byte more is not. */
    const char *pre = "HTTP/1.1 200 OK\r\nX: ";
    for (int extra = 0; extra < 2; extra++) {
        size_t total = HTTP_HEAD_MAX + (size_t)extra; /* bytes stored = line bytes + NULs, CRs included */
        size_t pl = strlen(pre);
        /* stored = (status line 17) + (field line incl CR + NUL) + (blank line CR + NUL) */
        size_t vlen = total - 17 - (pl - 17) - 2 - 2;
        memcpy(big, pre, pl);
        memset(big + pl, 'v', vlen);
        memcpy(big + pl + vlen, "\r\n\r\n", 4);
        http_head_reset(&h);
        int e = http_head_feed(&h, big, pl + vlen + 4, &used);
        if (extra == 0) {
            CHECK_EQ(e, 0);
            CHECK(http_head_done(&h));
            CHECK_EQ(h.buf.cap, HTTP_HEAD_MAX);
        } else {
            CHECK_EQ(e, SNAP_EPROTO);
            CHECK(strstr(snap_errmsg(e), "larger than 64 KiB"));
        }
    }
    /* Too many fields. */
    http_head_reset(&h);
    size_t o = (size_t)snprintf(big, n, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i <= HTTP_FIELDS_MAX; i++)
        o += (size_t)snprintf(big + o, n - o, "F%d: %d\r\n", i, i);
    o += (size_t)snprintf(big + o, n - o, "\r\n");
    CHECK_ERR(http_head_feed(&h, big, o, &used), SNAP_EPROTO, "more than 128 header fields");
    /* A peer that is not HTTP is told apart by its first bytes, whatever their size. */
    memset(big, 'X', n);
    for (size_t split = 0; split < 3; split++) {
        http_head_reset(&h);
        size_t k = split ? split : n;
        int e = http_head_feed(&h, big, k, &used);
        if (!e)
            e = http_head_feed(&h, big + k, n - k, &used);
        CHECK_EQ(e, SNAP_EPROTO);
    }
    free(big);
    http_head_free(&h);
}

TEST(net_parse_chunked)
{
    struct outcome o;
    const char *r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
                    "5\r\nhello\r\n"
                    "1;name=value;x=\"q\"\r\n \r\n"
                    "0006  \r\nworld!\r\n"
                    "A\nabcdefghij\n"
                    "0\r\nTrailer: yes\r\nOther: 1\r\n\r\n";
    CHECK(same_at_every_split(r, &o));
    CHECK_EQ(o.err, 0);
    CHECK_EQ(o.chunked, 1);
    CHECK_EQ(o.body_done, 1);
    CHECK_EQ(o.body_len, 22);
    CHECK_MEM(o.body, "hello world!abcdefghij", 22);

    const char *no_trailer = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nNEXT";
    CHECK(same_at_every_split(no_trailer, &o));
    CHECK_EQ(o.body_done, 1);
    CHECK_EQ(o.body_len, 3);

    /* Decoder alone: it stops right after the final CRLF and leaves what follows. */
    struct http_chunked c;
    http_chunked_init(&c);
    const char *b = "2\r\nxy\r\n0\r\n\r\nHTTP/1.1";
    size_t used, dl, pos = 0;
    const uint8_t *d;
    CHECK_EQ(http_chunked_feed(&c, b, strlen(b), &used, &d, &dl), 0);
    CHECK_EQ(dl, 2);
    CHECK_MEM(d, "xy", 2);
    CHECK_EQ(used, 5);
    pos = used;
    CHECK_EQ(http_chunked_feed(&c, b + pos, strlen(b) - pos, &used, &d, &dl), 0);
    CHECK_EQ(dl, 0);
    CHECK(http_chunked_done(&c));
    CHECK_EQ(pos + used, strlen(b) - 8);

    /* Zero-copy path: the caller takes data straight from the socket. */
    http_chunked_init(&c);
    CHECK_EQ(http_chunked_feed(&c, "10\r\n", 4, &used, &d, &dl), 0);
    CHECK_EQ(http_chunked_data_left(&c), 16);
    http_chunked_skip(&c, 10);
    CHECK_EQ(http_chunked_data_left(&c), 6);
    http_chunked_skip(&c, 6);
    CHECK_EQ(http_chunked_data_left(&c), 0);
    CHECK_EQ(http_chunked_feed(&c, "\r\n0\r\n\r\n", 7, &used, &d, &dl), 0);
    CHECK(http_chunked_done(&c));
}

static const struct {
    const char *in;
    int err;
    const char *msg;
} chunk_bad[] = {
    {"x\r\n", SNAP_EPROTO, "not hex"},
    {"\r\n", SNAP_EPROTO, "not hex"},
    {"5x\r\n", SNAP_EPROTO, "junk after the chunk size"},
    {"5 x\r\n", SNAP_EPROTO, "junk after the chunk size"},
    {"5\rx", SNAP_EPROTO, "CR without LF"},
    {"3\r\nabcd\r\n", SNAP_EPROTO, "chunk data longer than its size"},
    {"3\r\nabc\rx", SNAP_EPROTO, "CR without LF after chunk data"},
    {"00000000000000001\r\n", SNAP_EPROTO, "more than 16 hex digits"},
    {"0\r\nTrailer\r\rx", SNAP_EPROTO, NULL},
    {"0\r\n\rx", SNAP_EPROTO, "CR without LF at the end"},
};

TEST(net_parse_chunked_rejects)
{
    for (size_t i = 0; i < sizeof chunk_bad / sizeof chunk_bad[0]; i++) {
        const char *in = chunk_bad[i].in;
        size_t n = strlen(in);
        /* One-shot and byte-at-a-time agree, and the error is sticky. */
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            struct http_chunked c;
            http_chunked_init(&c);
            int e = 0;
            size_t pos = 0, used, dl;
            const uint8_t *d;
            while (pos < n && !e) {
                e = http_chunked_feed(&c, in + pos, bytewise ? 1 : n - pos, &used, &d, &dl);
                pos += used;
            }
            if (chunk_bad[i].msg == NULL) {
                /* A lone CR inside a trailer line is tolerated: nothing wrong yet. */
                CHECK_EQ(e, 0);
                continue;
            }
            CHECK_EQ(e, chunk_bad[i].err);
            CHECK(strstr(snap_errmsg(e), chunk_bad[i].msg));
            CHECK_EQ(http_chunked_feed(&c, "0\r\n\r\n", 5, &used, &d, &dl), chunk_bad[i].err);
        }
    }
    /* Caps: a 16-digit size is accepted; extensions and trailers are bounded. */
    struct http_chunked c;
    http_chunked_init(&c);
    size_t used, dl;
    const uint8_t *d;
    CHECK_EQ(http_chunked_feed(&c, "ffffffffffffffff\r\n", 18, &used, &d, &dl), 0);
    CHECK_EQ(http_chunked_data_left(&c), UINT64_MAX);
    static char big[HTTP_TRAILER_MAX + 64];
    http_chunked_init(&c);
    memset(big, 'e', sizeof big);
    memcpy(big, "1;", 2);
    CHECK_ERR(http_chunked_feed(&c, big, HTTP_CHUNK_LINE_MAX + 3, &used, &d, &dl), SNAP_EPROTO, "extension");
    http_chunked_init(&c);
    CHECK_EQ(http_chunked_feed(&c, big, HTTP_CHUNK_LINE_MAX + 2, &used, &d, &dl), 0);
    http_chunked_init(&c);
    memcpy(big, "0\r\n", 3);
    CHECK_ERR(http_chunked_feed(&c, big, sizeof big, &used, &d, &dl), SNAP_EPROTO, "trailers larger");
}
