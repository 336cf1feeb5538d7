/* Unit tests of lib/net/resp's reply parser and lib/peer/registry's URL handling. */
#include "test.h"

#include "base/err.h"
#include "net/resp.h"
#include "peer/registry.h"

#include <stdlib.h>
#include <string.h>

TEST(net_resp_parse_replies)
{
    static const struct {
        const char *in;
        int err;
        char type;
        long long integer;
        const char *str;
        size_t used;
    } t[] = {
        {"+OK\r\n", 0, RESP_SIMPLE, 0, "OK", 5},
        {"-WRONGPASS bad\r\n", 0, RESP_ERROR, 0, "WRONGPASS bad", 16},
        {":57\r\n", 0, RESP_INT, 57, NULL, 5},
        {":-2\r\n", 0, RESP_INT, -2, NULL, 5},
        {":9223372036854775807\r\n", 0, RESP_INT, 9223372036854775807LL, NULL, 22},
        {"$14\r\n127.0.0.1:7070\r\n", 0, RESP_BULK, 14, "127.0.0.1:7070", 21},
        {"$4\r\na\r\nb\r\n", 0, RESP_BULK, 4, "a\r\nb", 10},
        {"$0\r\n\r\n", 0, RESP_BULK, 0, "", 6},
        {"$-1\r\n", 0, RESP_NIL, -1, NULL, 5},
        {"*-1\r\n", 0, RESP_NIL, -1, NULL, 5},
        {"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", 0, RESP_ARRAY, 2, NULL, 19},
        {"+OK\r\n:1\r\n", 0, RESP_SIMPLE, 0, "OK", 5},
        /* need more */
        {"", SNAP_ESHORT, 0, 0, NULL, 0},
        {"+OK", SNAP_ESHORT, 0, 0, NULL, 0},
        {"+OK\r", SNAP_ESHORT, 0, 0, NULL, 0},
        {"$14\r\n127.0.0.1", SNAP_ESHORT, 0, 0, NULL, 0},
        {"*2\r\n:1\r\n", SNAP_ESHORT, 0, 0, NULL, 0},
        /* malformed */
        {"?x\r\n", SNAP_EPROTO, 0, 0, NULL, 0},
        {"+O\nK\r\n", SNAP_EPROTO, 0, 0, NULL, 0},
        {"+OK\rX\n", SNAP_EPROTO, 0, 0, NULL, 0},
        {":\r\n", SNAP_EPROTO, 0, 0, NULL, 0},
        {":12a\r\n", SNAP_EPROTO, 0, 0, NULL, 0},
        {":9223372036854775808\r\n", SNAP_EPROTO, 0, 0, NULL, 0},
        {":99999999999999999999\r\n", SNAP_EPROTO, 0, 0, NULL, 0},
        {"$-2\r\n", SNAP_EPROTO, 0, 0, NULL, 0},
        {"$4097\r\n", SNAP_EPROTO, 0, 0, NULL, 0},
        {"$99999999999\r\n", SNAP_EPROTO, 0, 0, NULL, 0},
        {"$2\r\nabcd\r\n", SNAP_EPROTO, 0, 0, NULL, 0},
        {"*65\r\n", SNAP_EPROTO, 0, 0, NULL, 0},
        {"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", SNAP_EPROTO, 0, 0, NULL, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct resp_reply r;
        size_t used = 0, n = strlen(t[i].in);
        char *buf = malloc(n + 1);
        memcpy(buf, t[i].in, n + 1);
        int err = resp_parse(buf, n, &r, &used);
        CHECK_EQ(err, t[i].err);
        if (!err) {
            CHECK_EQ(r.type, t[i].type);
            CHECK_EQ(used, t[i].used);
            if (t[i].type == RESP_INT || t[i].type == RESP_ARRAY || t[i].type == RESP_BULK)
                CHECK_EQ(r.integer, t[i].integer);
            if (t[i].str) {
                CHECK_EQ(r.len, strlen(t[i].str));
                CHECK_MEM(r.str, t[i].str, r.len);
            }
        }
        free(buf);
    }
    /* A line with no CRLF in the first RESP_BUF_MAX bytes is malformed, not "need more". */
    char *big = malloc(RESP_BUF_MAX + 1);
    memset(big, 'a', RESP_BUF_MAX + 1);
    big[0] = '+';
    struct resp_reply r;
    size_t used;
    CHECK_EQ(resp_parse(big, RESP_BUF_MAX + 1, &r, &used), SNAP_EPROTO);
    CHECK_EQ(resp_parse(big, 100, &r, &used), SNAP_ESHORT);
    free(big);
}

TEST(peer_registry_urls)
{
    static const char *const good[] = {
        "redis://127.0.0.1", "redis://127.0.0.1:6390/3", "redis://:pw@h:1/0", "redis://u:p@h",
        "rediss://[::1]:6390/15", "redis://h/",
    };
    static const char *const bad[] = {
        "http://h", "redis://h/x", "redis://h/3/4", "redis://h?db=1", "redis://h/-1", "redis://", "redis://:s3cr3t@/",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct peer_registry *r = NULL;
        CHECK_EQ(peer_registry_open(good[i], 100, &r), 0);
        CHECK(strstr(peer_registry_name(r), "pw") == NULL && strstr(peer_registry_name(r), "@") == NULL);
        peer_registry_close(r);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct peer_registry *r = NULL;
        CHECK_EQ(peer_registry_open(bad[i], 100, &r), SNAP_EUSAGE);
        CHECK(strstr(snap_errmsg(SNAP_EUSAGE), "s3cr3t") == NULL);
    }
    struct peer_registry *r = NULL;
    CHECK_EQ(peer_registry_open("redis://127.0.0.1:6390/3", 100, &r), 0);
    CHECK_STR(peer_registry_name(r), "redis://127.0.0.1:6390/3");
    peer_registry_close(r);
    CHECK_EQ(peer_registry_open("rediss://[::1]", 100, &r), 0);
    CHECK_STR(peer_registry_name(r), "rediss://[::1]:6379/0");
    peer_registry_close(r);
}
