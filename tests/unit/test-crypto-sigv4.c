/* Unit tests of lib/crypto/sigv4: the AWS S3 documentation's examples, canonicalization, limits. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "crypto/sha256.h"
#include "crypto/sigv4.h"

#define EX_HOST "examplebucket.s3.amazonaws.com"
#define EX_EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define EX_CREDENTIAL "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"

/* The request of the S3 documentation's examples, without path, query and headers. */
static struct sigv4_request example(const char *method, const char *payload_hash)
{
    return (struct sigv4_request){
        .method = method,
        .payload_hash = payload_hash,
        .access_key = "AKIAIOSFODNN7EXAMPLE",
        .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        .region = "us-east-1",
        .service = "s3",
        .timestamp = "20130524T000000Z",
    };
}

TEST(crypto_sigv4_aws_get_object_range)
{
    const struct sigv4_kv hdrs[] = {{"Host", EX_HOST}, {"Range", "bytes=0-9"}};
    struct sigv4_request r = example("GET", EX_EMPTY_SHA);
    r.path = "/test.txt";
    r.headers = hdrs;
    r.nheaders = 2;
    char creq[1024];
    size_t n;
    CHECK_EQ(sigv4_canonical_request(&r, creq, sizeof creq, &n), 0);
    CHECK_STR(creq, "GET\n"
                    "/test.txt\n"
                    "\n"
                    "host:" EX_HOST "\n"
                    "range:bytes=0-9\n"
                    "x-amz-content-sha256:" EX_EMPTY_SHA "\n"
                    "x-amz-date:20130524T000000Z\n"
                    "\n"
                    "host;range;x-amz-content-sha256;x-amz-date\n" EX_EMPTY_SHA);
    CHECK_EQ(n, strlen(creq));

    struct sigv4_out o;
    uint64_t allocs = snap_alloc_count();
    CHECK_EQ(sigv4_sign(&r, &o), 0);
    CHECK_EQ(snap_alloc_count(), allocs);
    CHECK_STR(o.string_to_sign, "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                                "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    CHECK_STR(o.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    CHECK_STR(o.authorization, EX_CREDENTIAL "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                               "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    CHECK_STR(o.amz_date, "20130524T000000Z");
    CHECK_EQ(o.nadd, 2);
    CHECK_STR(o.add[0].name, "x-amz-content-sha256");
    CHECK_STR(o.add[0].value, EX_EMPTY_SHA);
    CHECK_STR(o.add[1].name, "x-amz-date");
    CHECK_STR(o.add[1].value, "20130524T000000Z");

    /* The same with the generic SHA-256 as default, and from a time_t. */
    enum sha256_impl before = sha256_impl();
    CHECK_EQ(sha256_select(SHA256_IMPL_GENERIC), 0);
    r.timestamp = NULL;
    r.time = 1369353600; /* 2013-05-24T00:00:00Z */
    int err = sigv4_sign(&r, &o);
    sha256_select(before);
    CHECK_EQ(err, 0);
    CHECK_STR(o.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(crypto_sigv4_aws_put_object)
{
    const char *body = "Welcome to Amazon S3.";
    char body_sha[65];
    sha256_hex(body, strlen(body), body_sha);
    CHECK_STR(body_sha, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    const struct sigv4_kv hdrs[] = {
        {"Host", EX_HOST},
        {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
        {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
    };
    struct sigv4_request r = example("PUT", body_sha);
    r.path = "/test$file.text"; /* raw: '$' is encoded here */
    r.headers = hdrs;
    r.nheaders = 3;
    char creq[1024];
    size_t n;
    CHECK_EQ(sigv4_canonical_request(&r, creq, sizeof creq, &n), 0);
    CHECK_STR(creq, "PUT\n"
                    "/test%24file.text\n"
                    "\n"
                    "date:Fri, 24 May 2013 00:00:00 GMT\n"
                    "host:" EX_HOST "\n"
                    "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
                    "x-amz-date:20130524T000000Z\n"
                    "x-amz-storage-class:REDUCED_REDUNDANCY\n"
                    "\n"
                    "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
                    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    struct sigv4_out o;
    CHECK_EQ(sigv4_sign(&r, &o), 0);
    CHECK_STR(o.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    CHECK_STR(o.authorization, EX_CREDENTIAL
              "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
              "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");

    /* Given already encoded, the path signs the same. */
    r.path = "/test%24file.text";
    r.path_encoded = true;
    CHECK_EQ(sigv4_sign(&r, &o), 0);
    CHECK_STR(o.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(crypto_sigv4_aws_query_examples)
{
    /* The same documentation page: GET ?lifecycle and GET ?max-keys=2&prefix=J on the bucket. */
    const struct sigv4_kv hdrs[] = {{"host", EX_HOST}};
    const struct sigv4_kv lifecycle[] = {{"lifecycle", NULL}};
    const struct sigv4_kv list[] = {{"prefix", "J"}, {"max-keys", "2"}}; /* unsorted on purpose */
    struct sigv4_request r = example("GET", EX_EMPTY_SHA);
    r.path = "/";
    r.headers = hdrs;
    r.nheaders = 1;
    r.query = lifecycle;
    r.nquery = 1;
    struct sigv4_out o;
    CHECK_EQ(sigv4_sign(&r, &o), 0);
    CHECK_STR(o.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
    r.query = list;
    r.nquery = 2;
    r.path = NULL; /* means "/" */
    CHECK_EQ(sigv4_sign(&r, &o), 0);
    CHECK_STR(o.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    char q[64];
    size_t n;
    CHECK_EQ(sigv4_canonical_query(list, 2, q, sizeof q, &n), 0);
    CHECK_STR(q, "max-keys=2&prefix=J");
    CHECK_EQ(n, 19);
}

TEST(crypto_sigv4_canonicalization)
{
    /* Header names case-folded and trimmed, values trimmed and folded, repeats joined in order;
     * query sorted by encoded name then value; a session token signed; the path encoded per
     * byte with '/' kept. */
    const struct sigv4_kv hdrs[] = {
        {"X-Amz-Meta-B", "  two   spaces  here "},
        {" Host ", "h.example"},
        {"x-amz-meta-a", "first"},
        {"X-AMZ-META-A", "second"},
        {"content-type", "text/plain"},
    };
    const struct sigv4_kv query[] = {
        {"uploadId", "a b+c/d~"}, {"partNumber", "10"}, {"a~", "1"}, {"a.", "2"}, {"a\x7f", "3"},
        {"z", "y"}, {"z", "x"}, {"uploads", NULL},
    };
    struct sigv4_request r = example("POST", SIGV4_UNSIGNED_PAYLOAD);
    r.path = "/bucket/dir/a b&c=d/\xc3\xa9.txt";
    r.headers = hdrs;
    r.nheaders = 5;
    r.query = query;
    r.nquery = 8;
    r.session_token = "TOKEN/with+chars==";
    char creq[2048];
    size_t n;
    CHECK_EQ(sigv4_canonical_request(&r, creq, sizeof creq, &n), 0);
    CHECK_STR(creq, "POST\n"
                    "/bucket/dir/a%20b%26c%3Dd/%C3%A9.txt\n"
                    "a%7F=3&a.=2&a~=1&partNumber=10&uploadId=a%20b%2Bc%2Fd~&uploads=&z=x&z=y\n"
                    "content-type:text/plain\n"
                    "host:h.example\n"
                    "x-amz-content-sha256:UNSIGNED-PAYLOAD\n"
                    "x-amz-date:20130524T000000Z\n"
                    "x-amz-meta-a:first,second\n"
                    "x-amz-meta-b:two spaces here\n"
                    "x-amz-security-token:TOKEN/with+chars==\n"
                    "\n"
                    "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-a;x-amz-meta-b;"
                    "x-amz-security-token\n"
                    "UNSIGNED-PAYLOAD");
    struct sigv4_out o;
    CHECK_EQ(sigv4_sign(&r, &o), 0);
    CHECK_EQ(o.nadd, 3);
    CHECK_STR(o.add[2].name, "x-amz-security-token");
    CHECK_STR(o.add[2].value, "TOKEN/with+chars==");
    CHECK(strstr(o.authorization, ",SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;"
                                  "x-amz-meta-a;x-amz-meta-b;x-amz-security-token,Signature=") != NULL);
    /* Signing is a function of the canonical request: another header order, same signature. */
    char sig[65];
    memcpy(sig, o.signature, sizeof sig);
    const struct sigv4_kv hdrs2[] = {hdrs[4], hdrs[2], hdrs[1], hdrs[3], hdrs[0]};
    r.headers = hdrs2;
    CHECK_EQ(sigv4_sign(&r, &o), 0);
    CHECK_STR(o.signature, sig);
    /* But the order of repeated headers is part of the value. */
    const struct sigv4_kv hdrs3[] = {hdrs[0], hdrs[1], hdrs[3], hdrs[2], hdrs[4]};
    r.headers = hdrs3;
    CHECK_EQ(sigv4_sign(&r, &o), 0);
    CHECK(strcmp(o.signature, sig) != 0);

    char enc[64];
    CHECK_EQ(sigv4_uri_encode("a b/c~", 6, true, enc, sizeof enc, &n), 0);
    CHECK_STR(enc, "a%20b/c~");
    CHECK_EQ(sigv4_uri_encode("a b/c~", 6, false, enc, sizeof enc, &n), 0);
    CHECK_STR(enc, "a%20b%2Fc~");
    CHECK_EQ(n, 10);
    CHECK_ERR(sigv4_uri_encode("a b/c~", 6, false, enc, 10, &n), SNAP_ETOOBIG, "encoding 6 bytes");
}

TEST(crypto_sigv4_rejects_bad_input)
{
    const struct sigv4_kv hdrs[] = {{"host", EX_HOST}};
    struct sigv4_request r = example("GET", EX_EMPTY_SHA);
    r.path = "/k";
    r.headers = hdrs;
    r.nheaders = 1;
    struct sigv4_out o;
    char buf[64];
    size_t n;
    CHECK_EQ(sigv4_sign(&r, &o), 0);

    struct sigv4_request b = r;
    b.payload_hash = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_EUSAGE, "payload hash");
    b = r, b.timestamp = "2013-05-24T00:00:00Z";
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_EUSAGE, "YYYYMMDDTHHMMSSZ");
    b = r, b.access_key = "AKIA/EXAMPLE";
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_EUSAGE, "access key id: character 0x2f at offset 4");
    b = r, b.secret_key = "";
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_EUSAGE, "secret key is missing");
    b = r, b.region = NULL;
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_EUSAGE, "region is missing");
    b = r, b.path = "k";
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_EUSAGE, "does not start with '/'");
    b = r, b.path = "/a%2fb", b.path_encoded = true;
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_EUSAGE, "offset 2");
    b.path = "/a$b";
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_EUSAGE, "byte 0x24 at offset 2");
    b.path = "/a%2";
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_EUSAGE, "offset 2");

    const struct sigv4_kv nohost[] = {{"range", "bytes=0-1"}};
    b = r, b.headers = nohost;
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_EUSAGE, "no host header");
    const struct sigv4_kv ours[] = {{"host", "h"}, {"X-Amz-Date", "20130524T000000Z"}};
    b = r, b.headers = ours, b.nheaders = 2;
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_EUSAGE, "x-amz-date is set by sigv4_sign");
    const struct sigv4_kv crlf[] = {{"host", "h\r\nx-evil: 1"}};
    b = r, b.headers = crlf;
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_EUSAGE, "control character 0x0d at offset 1");
    const struct sigv4_kv badname[] = {{"host", "h"}, {"bad name", "v"}};
    b = r, b.headers = badname, b.nheaders = 2;
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_EUSAGE, "character 0x20 is not allowed");
    b.nheaders = SIGV4_MAX_HEADERS + 1;
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_ETOOBIG, "33 headers");

    static char big[SIGV4_MAX_VALUE + 2];
    memset(big, 'v', sizeof big - 1);
    const struct sigv4_kv bigval[] = {{"host", big}};
    b = r, b.headers = bigval;
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_ETOOBIG, "header host: value longer than 4096");
    const struct sigv4_kv bigq[] = {{"q", big}};
    b = r, b.query = bigq, b.nquery = 1;
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_ETOOBIG, "query parameter q: value longer");
    b = r, b.session_token = big;
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_ETOOBIG, "session token");
    static char bigpath[SIGV4_MAX_PATH + 2];
    memset(bigpath, 'p', sizeof bigpath - 1);
    bigpath[0] = '/';
    b = r, b.path = bigpath;
    CHECK_ERR(sigv4_sign(&b, &o), SNAP_ETOOBIG, "path longer than 4096");

    /* Buffers too small for the debugging copies. */
    CHECK_ERR(sigv4_canonical_request(&r, buf, sizeof buf, &n), SNAP_ETOOBIG, "canonical request");
    const struct sigv4_kv q[] = {{"partNumber", "1"}, {"uploadId", "xyz"}};
    CHECK_ERR(sigv4_canonical_query(q, 2, buf, 10, &n), SNAP_ETOOBIG, "canonical query");
    CHECK_EQ(sigv4_canonical_query(q, 2, buf, sizeof buf, &n), 0);
    CHECK_STR(buf, "partNumber=1&uploadId=xyz");
}
