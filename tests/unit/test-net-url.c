/* Unit tests of lib/net/url: the parse table, errors, resolve, encode/decode, redaction. */
#include "test.h"

#include "base/err.h"
#include "net/url.h"

static const struct {
    const char *in;
    enum url_scheme scheme;
    const char *user, *password, *host;
    unsigned port;
    int port_given, ipv6;
    const char *path, *query, *fragment;
} good[] = {
    {"http://example.com", URL_HTTP, NULL, NULL, "example.com", 80, 0, 0, "", NULL, NULL},
    {"HTTPS://Example.COM/", URL_HTTPS, NULL, NULL, "example.com", 443, 0, 0, "/", NULL, NULL},
    {"http://h:8080/a/b?x=1&y=2#top", URL_HTTP, NULL, NULL, "h", 8080, 1, 0, "/a/b", "x=1&y=2", "top"},
    {"http://[::1]:8080/p", URL_HTTP, NULL, NULL, "::1", 8080, 1, 1, "/p", NULL, NULL},
    {"https://[2001:db8::7]/", URL_HTTPS, NULL, NULL, "2001:db8::7", 443, 0, 1, "/", NULL, NULL},
    {"http://u%40x:p%3Aw@host/", URL_HTTP, "u@x", "p:w", "host", 80, 0, 0, "/", NULL, NULL},
    {"http://user@host:81", URL_HTTP, "user", NULL, "host", 81, 1, 0, "", NULL, NULL},
    {"http://a:b@c@host/", URL_HTTP, "a", "b@c", "host", 80, 0, 0, "/", NULL, NULL},
    {"http://h/?", URL_HTTP, NULL, NULL, "h", 80, 0, 0, "/", "", NULL},
    {"http://h/a%20b?q=%2F", URL_HTTP, NULL, NULL, "h", 80, 0, 0, "/a%20b", "q=%2F", NULL},
    {"http://127.0.0.1:65535/x", URL_HTTP, NULL, NULL, "127.0.0.1", 65535, 1, 0, "/x", NULL, NULL},
    {"http://h?q", URL_HTTP, NULL, NULL, "h", 80, 0, 0, "", "q", NULL},
    {"file:///var/lib/snap", URL_FILE, NULL, NULL, "", 0, 0, 0, "/var/lib/snap", NULL, NULL},
    {"file://localhost/d", URL_FILE, NULL, NULL, "", 0, 0, 0, "/d", NULL, NULL},
    {"s3://my-bucket/builds/x", URL_S3, NULL, NULL, "my-bucket", 0, 0, 0, "/builds/x", NULL, NULL},
    {"s3://my.bucket.1", URL_S3, NULL, NULL, "my.bucket.1", 0, 0, 0, "", NULL, NULL},
    {"gs://b_1x/p/", URL_GS, NULL, NULL, "b_1x", 0, 0, 0, "/p/", NULL, NULL},
    {"peer://10.0.0.2:7070", URL_PEER, NULL, NULL, "10.0.0.2", 7070, 1, 0, "", NULL, NULL},
    {"peer://[fe80::1]:1/", URL_PEER, NULL, NULL, "fe80::1", 1, 1, 1, "/", NULL, NULL},
};

TEST(net_url_parse_table)
{
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct url u;
        int e = url_parse(good[i].in, &u);
        if (e)
            fprintf(stderr, "    %s: %s\n", good[i].in, snap_errmsg(e));
        CHECK_EQ(e, 0);
        CHECK_EQ(u.scheme, good[i].scheme);
        CHECK_STR(u.host, good[i].host);
        CHECK_EQ(u.port, good[i].port);
        CHECK_EQ(u.port_given, good[i].port_given);
        CHECK_EQ(u.ipv6, good[i].ipv6);
        CHECK_STR(u.path, good[i].path);
        CHECK(good[i].user ? u.user && strcmp(u.user, good[i].user) == 0 : !u.user);
        CHECK(good[i].password ? u.password && strcmp(u.password, good[i].password) == 0 : !u.password);
        CHECK(good[i].query ? u.query && strcmp(u.query, good[i].query) == 0 : !u.query);
        CHECK(good[i].fragment ? u.fragment && strcmp(u.fragment, good[i].fragment) == 0 : !u.fragment);
        url_free(&u);
    }
}

static const struct {
    const char *in;
    int err;
    const char *msg;
} bad[] = {
    {"example.com/x", SNAP_EFORMAT, "not a URL"},
    {"://h/", SNAP_EFORMAT, "not a URL"},
    {"ftp://h/", SNAP_EFORMAT, "unknown scheme 'ftp'"},
    {"http:///x", SNAP_EFORMAT, "no host"},
    {"http://h:0/", SNAP_EFORMAT, "port 0 out of range"},
    {"http://h:65536/", SNAP_EFORMAT, "port 65536 out of range"},
    {"http://h:/", SNAP_EFORMAT, "bad port ''"},
    {"http://h:12a/", SNAP_EFORMAT, "bad port '12a'"},
    {"http://h:123456/", SNAP_EFORMAT, "bad port"},
    {"http://[::1/", SNAP_EFORMAT, "never closed by ']'"},
    {"http://[::g]/", SNAP_EFORMAT, "not an IPv6 address"},
    {"http://[::1]x/", SNAP_EFORMAT, "junk after the IPv6"},
    {"http://h o/", SNAP_EFORMAT, "offset 8"},
    {"http://h/\x01", SNAP_EFORMAT, "byte 0x01"},
    {"http://h/\xc3\xa9", SNAP_EFORMAT, "non-ASCII"},
    {"http://h/%zz", SNAP_EFORMAT, "two hex digits"},
    {"http://h/%4", SNAP_EFORMAT, "two hex digits"},
    {"http://h!/", SNAP_EFORMAT, "bad character in host 'h!'"},
    {"http://u%00@h/", SNAP_EFORMAT, "NUL"},
    {"file://otherhost/d", SNAP_EFORMAT, "not host 'otherhost'"},
    {"file://", SNAP_EFORMAT, "needs a path"},
    {"file:///d?x", SNAP_EFORMAT, "no '?query'"},
    {"s3://ab/x", SNAP_EFORMAT, "'ab' is not a bucket name"},
    {"s3://My-Bucket/x", SNAP_EFORMAT, "'My-Bucket' is not a bucket name"},
    {"s3://bucket-/x", SNAP_EFORMAT, "not a bucket name"},
    {"s3://u@bucket/x", SNAP_EFORMAT, "no user or port"},
    {"s3://bucket:9000/x", SNAP_EFORMAT, "no user or port"},
    {"gs://bucket/x#f", SNAP_EFORMAT, "no '?query'"},
    {"peer://host", SNAP_EFORMAT, "needs a port"},
};

TEST(net_url_parse_errors)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct url u;
        CHECK_ERR(url_parse(bad[i].in, &u), bad[i].err, bad[i].msg);
    }
    /* Length caps. */
    static char big[URL_MAX + 100];
    memcpy(big, "http://h/", 9);
    memset(big + 9, 'a', sizeof big - 10);
    struct url u;
    CHECK_ERR(url_parse(big, &u), SNAP_ETOOBIG, "longer than 8192");
    big[URL_MAX] = '\0';
    CHECK_EQ(url_parse(big, &u), 0);
    CHECK_EQ(strlen(u.path), URL_MAX - 8);
    url_free(&u);
    memset(big, 0, sizeof big);
    memcpy(big, "http://", 7);
    memset(big + 7, 'h', 254);
    CHECK_ERR(url_parse(big, &u), SNAP_ETOOBIG, "host longer than 253");
    big[7 + 253] = '\0';
    CHECK_EQ(url_parse(big, &u), 0);
    url_free(&u);
}

TEST(net_url_authority_target_redact)
{
    struct url u;
    char b[512];
    CHECK_EQ(url_parse("https://user:pw@H.example:8443/a/b?X-Amz-Signature=abc&partNumber=3&x-amz-security-token=t",
                       &u), 0);
    CHECK_EQ(url_authority(&u, b, sizeof b), 0);
    CHECK_STR(b, "h.example:8443");
    CHECK_ERR(url_authority(&u, b, 5), SNAP_ETOOBIG, "longer than 5 bytes");
    url_target(&u, b, sizeof b);
    CHECK_STR(b, "/a/b?X-Amz-Signature=abc&partNumber=3&x-amz-security-token=t");
    CHECK_STR(url_redact(&u, NULL, b, sizeof b),
              "https://h.example:8443/a/b?X-Amz-Signature=REDACTED&partNumber=3&x-amz-security-token=REDACTED");
    CHECK_STR(url_redact(&u, "/k?uploadId=9", b, sizeof b), "https://h.example:8443/k?uploadId=9");
    CHECK_STR(url_redact(&u, "/k", b, 12), "https://h.e");
    url_free(&u);
    CHECK_EQ(url_parse("http://[::1]:80", &u), 0);
    url_authority(&u, b, sizeof b);
    CHECK_STR(b, "[::1]");
    url_target(&u, b, sizeof b);
    CHECK_STR(b, "/");
    url_free(&u);
    CHECK_EQ(url_parse("http://[::1]:81", &u), 0);
    url_authority(&u, b, sizeof b);
    CHECK_STR(b, "[::1]:81");
    url_free(&u);
}

TEST(net_url_resolve)
{
    static const struct {
        const char *ref, *want;
    } t[] = {
        {"http://other:81/x?y", "http://other:81/x?y"},
        {"//h2/p", "https://h2/p"},
        {"/abs?q=1", "https://h:8443/abs?q=1"},
        {"rel/x", "https://h:8443/dir/rel/x"},
        {"?only", "https://h:8443/dir/file?only"},
    };
    struct url base, u;
    CHECK_EQ(url_parse("https://h:8443/dir/file?z", &base), 0);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char b[700], tg[256];
        CHECK_EQ(url_resolve(&base, t[i].ref, &u), 0);
        url_target(&u, tg, sizeof tg);
        char au[300];
        url_authority(&u, au, sizeof au);
        snprintf(b, sizeof b, "%s://%s%s", u.scheme_name, au, tg);
        CHECK_STR(b, t[i].want);
        url_free(&u);
    }
    CHECK_ERR(url_resolve(&base, "", &u), SNAP_EFORMAT, "empty");
    CHECK_ERR(url_resolve(&base, "gopher://x/", &u), SNAP_EFORMAT, "unknown scheme");
    url_free(&base);
}

TEST(net_url_encode_decode)
{
    char o[64];
    size_t n;
    CHECK_EQ(url_encode("a b/c~d%é", strlen("a b/c~d%é"), "/", o, sizeof o, &n), 0);
    CHECK_STR(o, "a%20b/c~d%25%C3%A9");
    CHECK_EQ(n, strlen(o));
    CHECK_EQ(url_encode("a/b", 3, NULL, o, sizeof o, &n), 0);
    CHECK_STR(o, "a%2Fb");
    CHECK_ERR(url_encode("   ", 3, NULL, o, 9, &n), SNAP_ETOOBIG, "longer than 8");
    CHECK_EQ(url_encode("   ", 3, NULL, o, 10, &n), 0);
    CHECK_EQ(url_decode("a%20b%2fc%C3%A9", 15, o, sizeof o, &n), 0);
    CHECK_STR(o, "a b/c\xc3\xa9");
    CHECK_EQ(n, 7);
    CHECK_ERR(url_decode("a%2", 3, o, sizeof o, &n), SNAP_EFORMAT, "offset 1");
    CHECK_ERR(url_decode("a%g0", 4, o, sizeof o, &n), SNAP_EFORMAT, "percent-escape");
    CHECK_ERR(url_decode("%00", 3, o, sizeof o, &n), SNAP_EFORMAT, "NUL");
    CHECK_ERR(url_decode("abcd", 4, o, 4, &n), SNAP_ETOOBIG, "longer than 3");
    char inplace[] = "x%41y";
    CHECK_EQ(url_decode(inplace, 5, inplace, sizeof inplace, &n), 0);
    CHECK_STR(inplace, "xAy");
}

TEST(net_url_check_arg)
{
    bool is_url;
    /* Paths, including ones with a colon that is not a known scheme's. */
    const char *paths[] = {"/a/b.header", "rel/x", "a:b", "C:x", "./s3:/x", "dir/http://x", ""};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        is_url = true;
        CHECK_EQ(url_check_arg(paths[i], &is_url), 0);
        CHECK_EQ(is_url, false);
    }
    const char *urls[] = {"file:///a b/c", "s3://bucket/k y", "gs://bucket/k", "https://[::1]:8080/x",
                          "peer://h:1", "peers://h:1", "foo://x/y"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        is_url = false;
        CHECK_EQ(url_check_arg(urls[i], &is_url), 0);
        CHECK_EQ(is_url, true);
    }
    CHECK_ERR(url_check_arg("s3:/x", &is_url), SNAP_EUSAGE, "'s3:' must be followed by '//'");
    CHECK_EQ(is_url, true);
    CHECK_ERR(url_check_arg("HTTP:host/x", &is_url), SNAP_EUSAGE, "as in HTTP://host/path");
    CHECK_ERR(url_check_arg("http://[::1", &is_url), SNAP_EUSAGE, "'[' that starts the IPv6 address is never closed");
    CHECK_ERR(url_check_arg("http://h:99999/x", &is_url), SNAP_EUSAGE, "out of range");
    CHECK_ERR(url_check_arg("peer://h", &is_url), SNAP_EUSAGE, "needs a port");
}
