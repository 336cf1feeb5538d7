/* Unit tests of lib/store/jsonr: GCS key files, token responses, metadata.json, strings and
 * numbers to the letter, every error path, allocation failure at every point. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "codec/jsonr.h"

#include <math.h>
#include <stdlib.h>

static int parse_fails(const char *s, size_t len, int code, const char *substr)
{
    struct jsonr_doc *d = (struct jsonr_doc *)1;
    snap_errclear();
    int err = jsonr_parse(s, len, &d);
    if (err != code || d != NULL || !strstr(snap_errmsg(err), substr)) {
        fprintf(stderr, "    input %.60s: got %d \"%s\", wanted %d \"%s\"\n", s, err, snap_errmsg(err), code,
                substr);
        return 0;
    }
    return 1;
}
#define CHECK_BAD(s, substr) CHECK(parse_fails((s), strlen(s), SNAP_EFORMAT, (substr)))

static const char sa_key[] =
    "{\n"
    "  \"type\": \"service_account\",\n"
    "  \"project_id\": \"snap-ci\",\n"
    "  \"private_key_id\": \"8f3a1c2b9d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a\",\n"
    "  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\nBKcwggSjAgEAAoIBAQC7\\u002b/x==\\n"
    "-----END PRIVATE KEY-----\\n\",\n"
    "  \"client_email\": \"uploader@snap-ci.iam.gserviceaccount.com\",\n"
    "  \"client_id\": \"109876543210987654321\",\n"
    "  \"auth_uri\": \"https://accounts.google.com/o/oauth2/auth\",\n"
    "  \"token_uri\": \"https://oauth2.googleapis.com/token\",\n"
    "  \"auth_provider_x509_cert_url\": \"https:\\/\\/www.googleapis.com\\/oauth2\\/v1\\/certs\",\n"
    "  \"universe_domain\": \"googleapis.com\"\n"
    "}\n";

TEST(jsonr_service_account_key)
{
    struct jsonr_doc *d;
    CHECK_EQ(jsonr_parse(sa_key, strlen(sa_key), &d), 0);
    const struct jsonr_value *r = jsonr_root(d);
    CHECK_EQ(jsonr_type(r), JSONR_OBJECT);
    CHECK_EQ(jsonr_count(r), 10);
    const char *s;
    size_t n;
    CHECK_EQ(jsonr_get_str(r, "type", &s, NULL), 0);
    CHECK_STR(s, "service_account");
    CHECK_EQ(jsonr_get_str(r, "private_key", &s, &n), 0);
    CHECK_STR(s, "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7+/x==\n"
                 "-----END PRIVATE KEY-----\n");
    CHECK_EQ(n, strlen(s));
    CHECK_EQ(jsonr_get_str(r, "private_key_id", &s, NULL), 0);
    CHECK_STR(s, "8f3a1c2b9d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a");
    CHECK_EQ(jsonr_get_str(r, "client_email", &s, NULL), 0);
    CHECK_STR(s, "uploader@snap-ci.iam.gserviceaccount.com");
    CHECK_EQ(jsonr_get_str(r, "token_uri", &s, NULL), 0);
    CHECK_STR(s, "https://oauth2.googleapis.com/token");
    CHECK_EQ(jsonr_get_str(r, "auth_provider_x509_cert_url", &s, NULL), 0);
    CHECK_STR(s, "https://www.googleapis.com/oauth2/v1/certs");
    /* A long numeric string stays a string. */
    CHECK_EQ(jsonr_get_str(r, "client_id", &s, NULL), 0);
    CHECK_STR(s, "109876543210987654321");
    CHECK_ERR(jsonr_get_str(r, "client_secret", &s, NULL), SNAP_ENOTFOUND, "no field \"client_secret\"");
    int64_t i;
    CHECK_ERR(jsonr_get_i64(r, "client_id", &i), SNAP_EFORMAT,
              "field \"client_id\" is a string, expected an integer");
    jsonr_free(d);
}

TEST(jsonr_token_responses)
{
    static const char tok[] = "{\"access_token\":\"ya29.c.b0AXv0zTPx-_~.Fk\",\"expires_in\":3599,"
                              "\"token_type\":\"Bearer\"}";
    struct jsonr_doc *d;
    CHECK_EQ(jsonr_parse(tok, strlen(tok), &d), 0);
    const struct jsonr_value *r = jsonr_root(d);
    const char *s;
    int64_t ttl;
    CHECK_EQ(jsonr_get_str(r, "access_token", &s, NULL), 0);
    CHECK_STR(s, "ya29.c.b0AXv0zTPx-_~.Fk");
    CHECK_EQ(jsonr_get_i64(r, "expires_in", &ttl), 0);
    CHECK_EQ(ttl, 3599);
    CHECK_EQ(jsonr_get_str(r, "token_type", &s, NULL), 0);
    CHECK_STR(s, "Bearer");
    CHECK_ERR(jsonr_get_str(r, "expires_in", &s, NULL), SNAP_EFORMAT,
              "field \"expires_in\" is a number, expected a string");
    jsonr_free(d);

    static const char err[] = "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}";
    CHECK_EQ(jsonr_parse(err, strlen(err), &d), 0);
    CHECK_EQ(jsonr_get_str(jsonr_root(d), "error_description", &s, NULL), 0);
    CHECK_STR(s, "Invalid JWT Signature.");
    CHECK_ERR(jsonr_get_str(jsonr_root(d), "access_token", &s, NULL), SNAP_ENOTFOUND, "access_token");
    jsonr_free(d);
}

TEST(jsonr_build_metadata)
{
    static const char meta[] =
        "{\"version\": 2, \"buildId\": \"7c1f0d0e-3b7a-4c1e-9d2f-0a1b2c3d4e5f\", \"kernelVersion\": \"6.1.102\",\n"
        " \"memfile\": {\"size\": 2147483648, \"blockSize\": 4096, \"sha256\": null},\n"
        " \"rootfs\": {\"size\": 5368709120, \"blockSize\": 4096}, \"hugePages\": false, \"ratio\": 0.25,\n"
        " \"tags\": [\"base\", \"python-3.12\", \"\"], \"parents\": [], \"extra\": {}}";
    struct jsonr_doc *d;
    CHECK_EQ(jsonr_parse(meta, strlen(meta), &d), 0);
    const struct jsonr_value *r = jsonr_root(d);
    int64_t v;
    CHECK_EQ(jsonr_get_i64(r, "version", &v), 0);
    CHECK_EQ(v, 2);
    CHECK_EQ(jsonr_get_i64(r, "memfile/size", &v), 0);
    CHECK_EQ(v, 2147483648ull);
    CHECK_EQ(jsonr_get_i64(r, "rootfs/size", &v), 0);
    CHECK_EQ(v, 5368709120ull);
    CHECK_EQ(jsonr_get_i64(r, "memfile/blockSize", &v), 0);
    CHECK_EQ(v, 4096);
    CHECK_EQ(jsonr_type(jsonr_path(r, "memfile/sha256")), JSONR_NULL);
    CHECK_ERR(jsonr_get_i64(r, "memfile/sha256", &v), SNAP_EFORMAT, "is null, expected an integer");
    CHECK_ERR(jsonr_get_i64(r, "memfile/missing", &v), SNAP_ENOTFOUND, "no field \"memfile/missing\"");
    CHECK_ERR(jsonr_get_i64(r, "version/x", &v), SNAP_ENOTFOUND, "version/x");
    bool b = true;
    CHECK_EQ(jsonr_get_bool(r, "hugePages", &b), 0);
    CHECK(!b);
    CHECK_ERR(jsonr_get_bool(r, "version", &b), SNAP_EFORMAT, "is a number, expected true or false");
    double ratio;
    CHECK_EQ(jsonr_get_double(r, "ratio", &ratio), 0);
    CHECK(ratio == 0.25);
    CHECK_EQ(jsonr_get_double(r, "version", &ratio), 0);
    CHECK(ratio == 2.0);
    CHECK_ERR(jsonr_get_i64(r, "ratio", &v), SNAP_EFORMAT, "\"ratio\" is 0.25, expected an integer");
    CHECK_ERR(jsonr_get_double(r, "tags", &ratio), SNAP_EFORMAT, "is an array, expected a number");
    CHECK_ERR(jsonr_get_str(r, "extra", NULL, NULL), SNAP_EFORMAT, "is an object, expected a string");

    const struct jsonr_value *tags = jsonr_member(r, "tags");
    CHECK_EQ(jsonr_type(tags), JSONR_ARRAY);
    CHECK_EQ(jsonr_count(tags), 3);
    CHECK_STR(jsonr_str(jsonr_at(tags, 0), NULL), "base");
    CHECK_STR(jsonr_str(jsonr_at(tags, 1), NULL), "python-3.12");
    size_t n = 9;
    CHECK_STR(jsonr_str(jsonr_at(tags, 2), &n), "");
    CHECK_EQ(n, 0);
    CHECK(jsonr_at(tags, 3) == NULL);
    CHECK(jsonr_key(jsonr_at(tags, 0), NULL) == NULL);
    CHECK_EQ(jsonr_count(jsonr_member(r, "parents")), 0);
    CHECK(jsonr_first(jsonr_member(r, "parents")) == NULL);
    CHECK_EQ(jsonr_type(jsonr_member(r, "extra")), JSONR_OBJECT);
    CHECK_EQ(jsonr_count(jsonr_member(r, "extra")), 0);

    /* Members in document order, with their keys. */
    static const char *const keys[] = {"version", "buildId", "kernelVersion", "memfile", "rootfs",
                                       "hugePages", "ratio", "tags", "parents", "extra"};
    size_t k = 0;
    for (const struct jsonr_value *m = jsonr_first(r); m; m = jsonr_next(m), k++) {
        CHECK(k < 10);
        CHECK_STR(jsonr_key(m, &n), keys[k]);
        CHECK_EQ(n, strlen(keys[k]));
    }
    CHECK_EQ(k, 10);
    CHECK(jsonr_path(r, "") == r);
    CHECK(jsonr_path(r, "memfile/") == NULL);
    CHECK(jsonr_path(r, "/memfile") == NULL);
    CHECK(jsonr_path(r, "tags/0") == NULL); /* paths name object members only */
    CHECK(jsonr_member(tags, "x") == NULL);
    CHECK_STR(jsonr_type_name(JSONR_OBJECT), "object");
    CHECK_STR(jsonr_type_name(JSONR_BOOL), "boolean");
    jsonr_free(d);
}

TEST(jsonr_strings)
{
    static const char doc[] =
        "[\"\\u00e9\\u20AC\\ud83d\\ude00\", \"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\", "
        "\"a\\u0000b\", \"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\\uDBFF\\uDFFF\", \"\xEF\xBF\xBF\", \"\x7f\"]";
    struct jsonr_doc *d;
    CHECK_EQ(jsonr_parse(doc, strlen(doc), &d), 0);
    const struct jsonr_value *r = jsonr_root(d);
    size_t n;
    const char *emoji = "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
    CHECK_STR(jsonr_str(jsonr_at(r, 0), &n), emoji);
    CHECK_EQ(n, 9);
    CHECK_STR(jsonr_str(jsonr_at(r, 1), &n), emoji);
    const char *s = jsonr_str(jsonr_at(r, 2), &n);
    CHECK_EQ(n, 3);
    CHECK_MEM(s, "a\0b", 4);
    CHECK_STR(jsonr_str(jsonr_at(r, 3), NULL), "\"\\/\b\f\n\r\t");
    CHECK_STR(jsonr_str(jsonr_at(r, 4), NULL), "\xF4\x8F\xBF\xBF");
    CHECK_STR(jsonr_str(jsonr_at(r, 5), NULL), "\xEF\xBF\xBF");
    CHECK_STR(jsonr_str(jsonr_at(r, 6), NULL), "\x7f");
    CHECK(jsonr_str(r, NULL) == NULL);
    jsonr_free(d);

    /* Keys are decoded too; one with a NUL never matches a C string; the first duplicate wins. */
    static const char obj[] = "{\"k\\u0065y\":1,\"a\\u0000b\":2,\"key\":3}";
    CHECK_EQ(jsonr_parse(obj, strlen(obj), &d), 0);
    int64_t v;
    CHECK_EQ(jsonr_get_i64(jsonr_root(d), "key", &v), 0);
    CHECK_EQ(v, 1);
    CHECK(jsonr_member(jsonr_root(d), "a") == NULL);
    CHECK_EQ(jsonr_count(jsonr_root(d)), 3);
    jsonr_free(d);
}

TEST(jsonr_numbers_and_scalars)
{
    static const char doc[] = " [0, -0, 42, -17, 9223372036854775807, -9223372036854775808, 9223372036854775808,"
                              " 1.5e3, 1E-2, -0.125, 2.5E+2, 1e-400, true, false, null] ";
    struct jsonr_doc *d;
    CHECK_EQ(jsonr_parse(doc, strlen(doc), &d), 0);
    const struct jsonr_value *r = jsonr_root(d);
    int64_t i;
    double x;
    bool b;
    CHECK(jsonr_i64(jsonr_at(r, 0), &i) && i == 0);
    CHECK(jsonr_i64(jsonr_at(r, 1), &i) && i == 0);
    CHECK(jsonr_double(jsonr_at(r, 1), &x) && x == 0 && signbit(x));
    CHECK(jsonr_i64(jsonr_at(r, 2), &i) && i == 42);
    CHECK(jsonr_i64(jsonr_at(r, 3), &i) && i == -17);
    CHECK(jsonr_i64(jsonr_at(r, 4), &i) && i == INT64_MAX);
    CHECK(jsonr_i64(jsonr_at(r, 5), &i) && i == INT64_MIN);
    CHECK(!jsonr_i64(jsonr_at(r, 6), &i));
    CHECK(jsonr_double(jsonr_at(r, 6), &x) && x == 9223372036854775808.0);
    CHECK(!jsonr_i64(jsonr_at(r, 7), &i));
    CHECK(jsonr_double(jsonr_at(r, 7), &x) && x == 1500.0);
    CHECK(jsonr_double(jsonr_at(r, 8), &x) && x == 0.01);
    CHECK(jsonr_double(jsonr_at(r, 9), &x) && x == -0.125);
    CHECK(jsonr_double(jsonr_at(r, 10), &x) && x == 250.0);
    CHECK(jsonr_double(jsonr_at(r, 11), &x) && x == 0.0);
    CHECK(jsonr_bool(jsonr_at(r, 12), &b) && b);
    CHECK(jsonr_bool(jsonr_at(r, 13), &b) && !b);
    CHECK_EQ(jsonr_type(jsonr_at(r, 14)), JSONR_NULL);
    CHECK(!jsonr_bool(jsonr_at(r, 14), &b));
    CHECK(!jsonr_double(jsonr_at(r, 12), &x));
    CHECK(!jsonr_i64(NULL, &i));
    CHECK_EQ(jsonr_count(r), 15);
    jsonr_free(d);

    /* Any value may be the document. */
    static const char *const scalars[] = {"7", "\"s\"", "true", "null", "-1.5"};
    static const enum jsonr_type types[] = {JSONR_NUMBER, JSONR_STRING, JSONR_BOOL, JSONR_NULL, JSONR_NUMBER};
    for (size_t k = 0; k < 5; k++) {
        CHECK_EQ(jsonr_parse(scalars[k], strlen(scalars[k]), &d), 0);
        CHECK_EQ(jsonr_type(jsonr_root(d)), types[k]);
        CHECK(jsonr_key(jsonr_root(d), NULL) == NULL);
        jsonr_free(d);
    }
}

TEST(jsonr_errors)
{
    CHECK_BAD("", "expected a value, found end of input");
    CHECK_BAD(" \n\t\r ", "expected a value, found end of input");
    CHECK_BAD("{", "expected a string key, found end of input");
    CHECK_BAD("{\"a\"}", "expected ':' after key \"a\", found '}'");
    CHECK_BAD("{\"a\":1,}", "expected a string key, found '}'");
    CHECK_BAD("{'a':1}", "expected a string key, found '''");
    CHECK_BAD("{a:1}", "expected a string key, found 'a'");
    CHECK_BAD("[1,]", "expected a value, found ']'");
    CHECK_BAD("[1 2]", "expected ',' or ']' in an array, found '2'");
    CHECK_BAD("[1", "expected ',' or ']' in an array, found end of input");
    CHECK_BAD("{\"a\":1 \"b\":2}", "expected ',' or '}' in an object, found '\"'");
    CHECK_BAD("tru", "unexpected word (expected true)");
    CHECK_BAD("nul", "expected null");
    CHECK_BAD("fals", "expected false");
    CHECK_BAD("True", "expected a value, found 'T'");
    CHECK_BAD("01", "may not start with 0");
    CHECK_BAD("-01", "may not start with 0");
    CHECK_BAD("-", "needs a digit after '-'");
    CHECK_BAD("-a", "needs a digit after '-'");
    CHECK_BAD("1.", "digits after '.'");
    CHECK_BAD("1.e5", "digits after '.'");
    CHECK_BAD("1e", "digits in its exponent");
    CHECK_BAD("1e+", "digits in its exponent");
    CHECK_BAD("+1", "found '+'");
    CHECK_BAD(".5", "found '.'");
    CHECK_BAD("[NaN]", "found 'N'");
    CHECK_BAD("1e999", "number 1e999 is out of range");
    CHECK_BAD("-1e999", "out of range");
    char longnum[200];
    memset(longnum, '1', sizeof longnum - 1);
    longnum[sizeof longnum - 1] = '\0';
    CHECK_BAD(longnum, "number longer than 127 characters");
    CHECK_BAD("\"abc", "unterminated string (opened at byte 0)");
    CHECK_BAD("\"a\\", "unterminated string");
    CHECK_BAD("\"\x01\"", "control character 0x01 in a string");
    CHECK_BAD("\"a\nb\"", "control character 0x0a");
    CHECK_BAD("\"\\x\"", "bad escape \\x");
    CHECK_BAD("\"\\'\"", "bad escape \\'");
    CHECK_BAD("\"\\u12\"", "\\u needs four hex digits");
    CHECK_BAD("\"\\u12g4\"", "\\u needs four hex digits");
    CHECK_BAD("\"\\uD800\"", "lone high surrogate \\uD800");
    CHECK_BAD("\"\\uD800x\"", "lone high surrogate");
    CHECK_BAD("\"\\uD800\\u0041\"", "high surrogate \\uD800 not followed by a low one");
    CHECK_BAD("\"\\uD800\\uD800\"", "not followed by a low one");
    CHECK_BAD("\"\\uDC00\"", "lone low surrogate \\uDC00");
    CHECK_BAD("\"\xC0\x80\"", "invalid UTF-8");
    CHECK_BAD("\"\xC1\xBF\"", "invalid UTF-8");
    CHECK_BAD("\"\xE0\x9F\xBF\"", "invalid UTF-8");
    CHECK_BAD("\"\xED\xA0\x80\"", "invalid UTF-8");
    CHECK_BAD("\"\xF0\x8F\xBF\xBF\"", "invalid UTF-8");
    CHECK_BAD("\"\xF4\x90\x80\x80\"", "invalid UTF-8");
    CHECK_BAD("\"\xF5\x80\x80\x80\"", "invalid UTF-8");
    CHECK_BAD("\"\xE2\x82\"", "invalid UTF-8");
    CHECK_BAD("\"\x80\"", "invalid UTF-8");
    CHECK_BAD("\"\xFF\"", "invalid UTF-8");
    CHECK_BAD("{} x", "unexpected data after the JSON value");
    CHECK_BAD("1 2", "unexpected data after");
    CHECK_BAD("{}{}", "unexpected data after");
    CHECK_BAD("\xEF\xBB\xBF{}", "found byte 0xef");
    CHECK_BAD("// c\n{}", "found '/'");
    CHECK_BAD("[1,\n2,\n,3]", "JSON line 3");
    CHECK(parse_fails("[1]\0", 4, SNAP_EFORMAT, "unexpected data after"));
    CHECK(parse_fails("\"a\0\"", 4, SNAP_EFORMAT, "control character 0x00"));

    /* Depth: 32 nested arrays parse, 33 do not. */
    char deep[2 * (JSONR_MAX_DEPTH + 1) + 1];
    memset(deep, '[', JSONR_MAX_DEPTH);
    memset(deep + JSONR_MAX_DEPTH, ']', JSONR_MAX_DEPTH);
    struct jsonr_doc *d;
    CHECK_EQ(jsonr_parse(deep, 2 * JSONR_MAX_DEPTH, &d), 0);
    jsonr_free(d);
    memset(deep, '[', JSONR_MAX_DEPTH + 1);
    memset(deep + JSONR_MAX_DEPTH + 1, ']', JSONR_MAX_DEPTH + 1);
    deep[sizeof deep - 1] = '\0';
    CHECK_BAD(deep, "nested deeper than 32");

    /* Size cap, and the cap on values. */
    size_t big = JSONR_MAX_INPUT + 1;
    char *buf = malloc(big);
    CHECK(buf);
    memset(buf, ' ', big);
    int ok = parse_fails(buf, big, SNAP_ETOOBIG, "over the 1048576-byte limit");
    buf[0] = '[';
    size_t n = 1;
    for (int i = 0; i < 100001; i++) {
        memcpy(buf + n, "0,", 2);
        n += 2;
    }
    buf[n - 1] = ']';
    ok = ok && parse_fails(buf, n, SNAP_ETOOBIG, "more than 100000 values");
    /* 99999 elements + the array: exactly at the cap. */
    buf[2 * 99999] = ']';
    if (ok && (jsonr_parse(buf, 2 * 99999 + 1, &d) != 0 || jsonr_count(jsonr_root(d)) != 99999))
        ok = 0;
    if (ok)
        jsonr_free(d);
    free(buf);
    CHECK(ok);
}

TEST(jsonr_alloc_failure_every_point)
{
    int succeeded = 0;
    for (long k = 0; k < 100 && !succeeded; k++) {
        struct jsonr_doc *d;
        snap_mem_fail_after(k);
        int err = jsonr_parse(sa_key, strlen(sa_key), &d);
        snap_mem_fail_after(-1);
        if (err) {
            CHECK_EQ(err, SNAP_ENOMEM);
            CHECK(d == NULL);
            continue;
        }
        succeeded = 1;
        CHECK(k >= 3); /* doc, arena, values */
        const char *s;
        CHECK_EQ(jsonr_get_str(jsonr_root(d), "universe_domain", &s, NULL), 0);
        CHECK_STR(s, "googleapis.com");
        jsonr_free(d);
    }
    CHECK(succeeded);

    /* A document that grows the value array several times. */
    char doc[2048];
    size_t n = 1;
    doc[0] = '[';
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(doc + n, sizeof doc - n, "%d,", i);
    doc[n - 1] = ']';
    succeeded = 0;
    for (long k = 0; k < 100 && !succeeded; k++) {
        struct jsonr_doc *d;
        snap_mem_fail_after(k);
        int err = jsonr_parse(doc, n, &d);
        snap_mem_fail_after(-1);
        if (err) {
            CHECK_EQ(err, SNAP_ENOMEM);
            continue;
        }
        succeeded = 1;
        CHECK(k >= 6);
        int64_t v;
        CHECK(jsonr_i64(jsonr_at(jsonr_root(d), 199), &v));
        CHECK_EQ(v, 199);
        jsonr_free(d);
    }
    CHECK(succeeded);
}
