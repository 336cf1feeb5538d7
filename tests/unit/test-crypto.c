/* Unit tests of lib/crypto's SHA-256 (both implementations), HMAC-SHA256 and base64. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "base/util.h"
#include "crypto/base64.h"
#include "crypto/hmac.h"
#include "crypto/md5.h"
#include "crypto/sha256.h"

#include <stdlib.h>

/* The implementations to run: generic always, SHA-NI where the CPU has it. */
static int crypto_impls(enum sha256_impl out[2])
{
    int n = 0;
    out[n++] = SHA256_IMPL_GENERIC;
    if (sha256_have_shani())
        out[n++] = SHA256_IMPL_SHANI;
    else
        printf("note: the sha-ni half of the SHA-256 tests is skipped: this CPU lacks SHA extensions\n");
    return n;
}

static void digest_hex(enum sha256_impl impl, const void *p, size_t n, char hex[65])
{
    struct sha256_ctx c;
    uint8_t d[32];
    if (sha256_init_impl(&c, impl) != 0) {
        strcpy(hex, "init failed");
        return;
    }
    sha256_update(&c, p, n);
    sha256_final(&c, d);
    snap_hex(d, 32, hex);
}

TEST(crypto_sha256_nist_vectors)
{
    static const struct {
        const char *msg, *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", /* 448 bits */
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
         "mnopqrstnopqrstu", /* 896 bits */
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    enum sha256_impl impls[2];
    int ni = crypto_impls(impls);
    char hex[65];
    for (int k = 0; k < ni; k++) {
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
            digest_hex(impls[k], v[i].msg, strlen(v[i].msg), hex);
            if (strcmp(hex, v[i].hex) != 0)
                printf("    %s, vector %zu\n", sha256_impl_name(impls[k]), i);
            CHECK_STR(hex, v[i].hex);
        }
    }
}

TEST(crypto_sha256_million_a)
{
    static const char want[] = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    enum sha256_impl impls[2];
    int ni = crypto_impls(impls);
    char chunk[1000], hex[65];
    memset(chunk, 'a', sizeof chunk);
    static uint8_t big[1000000];
    memset(big, 'a', sizeof big);
    for (int k = 0; k < ni; k++) {
        struct sha256_ctx c;
        uint8_t d[32];
        CHECK_EQ(sha256_init_impl(&c, impls[k]), 0);
        CHECK_EQ(c.impl, impls[k]);
        for (int i = 0; i < 1000; i++)
            sha256_update(&c, chunk, sizeof chunk);
        sha256_final(&c, d);
        snap_hex(d, 32, hex);
        CHECK_STR(hex, want);
        digest_hex(impls[k], big, sizeof big, hex);
        CHECK_STR(hex, want);
    }
}

/* xorshift64*: fixed-seed test data without libc's rand. */
static uint64_t crypto_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

/* Hash p[0..n) with impl, cutting it at random points (with empty updates in between). */
static void crypto_split_hash(enum sha256_impl impl, const uint8_t *p, size_t n, uint64_t *seed, uint8_t out[32])
{
    struct sha256_ctx c;
    sha256_init_impl(&c, impl);
    size_t off = 0;
    while (off < n) {
        uint64_t r = crypto_rand(seed);
        size_t step = r % 4 == 0 ? r % 300 : r % 4 == 1 ? r % 70 : (r >> 8) % (n - off + 1);
        if (step > n - off)
            step = n - off;
        sha256_update(&c, p + off, step);
        off += step;
    }
    sha256_update(&c, NULL, 0);
    sha256_final(&c, out);
}

TEST(crypto_sha256_impls_agree_random_splits)
{
    if (!sha256_have_shani())
        printf("note: no sha-ni on this CPU: only the generic split points are compared\n");
    enum sha256_impl other = sha256_have_shani() ? SHA256_IMPL_SHANI : SHA256_IMPL_GENERIC;
    static uint8_t buf[256 << 10];
    size_t cap = sizeof buf;
    uint64_t seed = 0x5eed5eed12345678ull;
    for (size_t i = 0; i < cap; i++)
        buf[i] = (uint8_t)(crypto_rand(&seed) >> 56);
    size_t total = 0;
    for (int iter = 0; total < (6u << 20); iter++) {
        uint64_t r = crypto_rand(&seed);
        /* Mostly short messages (every padding case), some long ones. */
        size_t len = r % 3 ? (r >> 8) % 200 : (r >> 8) % cap;
        size_t start = (size_t)(crypto_rand(&seed) % (cap - len + 1)); /* odd alignments too */
        uint8_t ref[32], a[32], b[32];
        struct sha256_ctx c;
        sha256_init_impl(&c, SHA256_IMPL_GENERIC);
        sha256_update(&c, buf + start, len);
        sha256_final(&c, ref);
        crypto_split_hash(SHA256_IMPL_GENERIC, buf + start, len, &seed, a);
        crypto_split_hash(other, buf + start, len, &seed, b);
        if (memcmp(ref, a, 32) != 0 || memcmp(ref, b, 32) != 0) {
            printf("    iteration %d: length %zu at offset %zu differs\n", iter, len, start);
        }
        CHECK_MEM(ref, a, 32);
        CHECK_MEM(ref, b, 32);
        total += len;
    }
}

TEST(crypto_sha256_select_and_oneshot)
{
    enum sha256_impl before = sha256_impl();
    CHECK(before == SHA256_IMPL_GENERIC || before == SHA256_IMPL_SHANI);
    CHECK_STR(sha256_impl_name(SHA256_IMPL_SHANI), "sha-ni");
    CHECK_STR(sha256_impl_name(SHA256_IMPL_GENERIC), "generic");

    CHECK_EQ(sha256_select(SHA256_IMPL_GENERIC), 0);
    CHECK_EQ(sha256_impl(), SHA256_IMPL_GENERIC);
    struct sha256_ctx c;
    sha256_init(&c);
    CHECK_EQ(c.impl, SHA256_IMPL_GENERIC);
    char hex[65];
    sha256_hex("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    if (sha256_have_shani()) {
        CHECK_EQ(sha256_select(SHA256_IMPL_SHANI), 0);
        CHECK_EQ(sha256_impl(), SHA256_IMPL_SHANI);
        /* The context started as generic stays generic. */
        sha256_update(&c, "abc", 3);
        uint8_t d[32];
        sha256_final(&c, d);
        snap_hex(d, 32, hex);
        CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    } else {
        CHECK_ERR(sha256_select(SHA256_IMPL_SHANI), SNAP_ENOTSUP, "SHA extensions");
        CHECK_EQ(sha256_impl(), SHA256_IMPL_GENERIC);
    }
    CHECK_EQ(sha256_select(SHA256_IMPL_AUTO), 0);
    CHECK_EQ(sha256_impl(), sha256_have_shani() ? SHA256_IMPL_SHANI : SHA256_IMPL_GENERIC);
    CHECK_EQ(sha256_select(before), 0);

    uint64_t allocs = snap_alloc_count();
    sha256_hex("", 0, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK_EQ(snap_alloc_count(), allocs);
}

TEST(crypto_hmac_rfc4231)
{
    uint8_t k20[20], k131[131], d50[50], key4[25];
    static const struct {
        int key; /* 0: 0x0b*20, 1: "Jefe", 2: 0xaa*20, 3: 0x01..0x19, 4: 0x0c*20, 5: 0xaa*131 */
        const char *data;
        int data_dd; /* data is 50 bytes of this value instead */
        const char *hex;
    } v[] = {
        {0, "Hi There", 0, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {1, "what do ya want for nothing?", 0, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {2, NULL, 0xdd, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {3, NULL, 0xcd, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {4, "Test With Truncation", 0, "a3b6167473100ee06e0c796c2955552b"}, /* first 128 bits */
        {5, "Test Using Larger Than Block-Size Key - Hash Key First", 0,
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {5, "This is a test using a larger than block-size key and a larger than block-size data. The key "
            "needs to be hashed before being used by the HMAC algorithm.", 0,
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    for (int i = 0; i < 25; i++)
        key4[i] = (uint8_t)(i + 1);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        const uint8_t *key;
        size_t klen = 20;
        switch (v[i].key) {
        case 0: memset(k20, 0x0b, 20); key = k20; break;
        case 1: key = (const uint8_t *)"Jefe"; klen = 4; break;
        case 2: memset(k20, 0xaa, 20); key = k20; break;
        case 3: key = key4; klen = 25; break;
        case 4: memset(k20, 0x0c, 20); key = k20; break;
        default: memset(k131, 0xaa, 131); key = k131; klen = 131; break;
        }
        const void *data = v[i].data;
        size_t dlen = data ? strlen(v[i].data) : 50;
        if (!data) {
            memset(d50, v[i].data_dd, 50);
            data = d50;
        }
        uint8_t mac[32];
        char hex[65];
        hmac_sha256(key, klen, data, dlen, mac);
        snap_hex(mac, 32, hex);
        hex[strlen(v[i].hex)] = '\0';
        CHECK_STR(hex, v[i].hex);

        /* Streaming, one byte at a time, gives the same. */
        struct hmac_sha256_ctx h;
        uint8_t mac2[32];
        hmac_sha256_init(&h, key, klen);
        for (size_t j = 0; j < dlen; j++)
            hmac_sha256_update(&h, (const uint8_t *)data + j, 1);
        hmac_sha256_final(&h, mac2);
        CHECK_MEM(mac, mac2, 32);
    }
}

TEST(crypto_base64_rfc4648_vectors)
{
    static const struct {
        const char *in, *std, *url;
    } v[] = {
        {"", "", ""},           {"f", "Zg==", "Zg"},         {"fo", "Zm8=", "Zm8"},
        {"foo", "Zm9v", "Zm9v"}, {"foob", "Zm9vYg==", "Zm9vYg"}, {"fooba", "Zm9vYmE=", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
    };
    char enc[16];
    uint8_t dec[16];
    size_t n;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t len = strlen(v[i].in);
        CHECK_EQ(base64_encoded_len(BASE64_STD, len), strlen(v[i].std));
        CHECK_EQ(base64_encode(BASE64_STD, v[i].in, len, enc), strlen(v[i].std));
        CHECK_STR(enc, v[i].std);
        CHECK_EQ(base64_encoded_len(BASE64_URL, len), strlen(v[i].url));
        CHECK_EQ(base64_encode(BASE64_URL, v[i].in, len, enc), strlen(v[i].url));
        CHECK_STR(enc, v[i].url);
        CHECK_EQ(base64_decode(BASE64_STD, v[i].std, strlen(v[i].std), dec, sizeof dec, &n), 0);
        CHECK_EQ(n, len);
        CHECK_MEM(dec, v[i].in, len);
        CHECK_EQ(base64_decode(BASE64_URL, v[i].url, strlen(v[i].url), dec, sizeof dec, &n), 0);
        CHECK_EQ(n, len);
        CHECK_MEM(dec, v[i].in, len);
        CHECK(base64_decoded_max(strlen(v[i].url)) >= len);
    }
    /* The two alphabets differ exactly in 62 and 63. */
    const uint8_t hi[3] = {0xfb, 0xff, 0xbf};
    base64_encode(BASE64_STD, hi, 3, enc);
    CHECK_STR(enc, "+/+/");
    base64_encode(BASE64_URL, hi, 3, enc);
    CHECK_STR(enc, "-_-_");
}

TEST(crypto_base64_strict_decode)
{
    uint8_t out[16];
    size_t n = 99;
    CHECK_ERR(base64_decode(BASE64_STD, "Zg=", 3, out, sizeof out, &n), SNAP_EFORMAT, "multiple of 4");
    CHECK_ERR(base64_decode(BASE64_STD, "Zg", 2, out, sizeof out, &n), SNAP_EFORMAT, "multiple of 4");
    CHECK_ERR(base64_decode(BASE64_STD, "Zh==", 4, out, sizeof out, &n), SNAP_EFORMAT, "unused bits");
    CHECK_ERR(base64_decode(BASE64_STD, "Zm9=", 4, out, sizeof out, &n), SNAP_EFORMAT, "unused bits");
    CHECK_ERR(base64_decode(BASE64_STD, "Z===", 4, out, sizeof out, &n), SNAP_EFORMAT, "offset 1");
    CHECK_ERR(base64_decode(BASE64_STD, "====", 4, out, sizeof out, &n), SNAP_EFORMAT, "offset 0");
    CHECK_ERR(base64_decode(BASE64_STD, "Zg==Zg==", 8, out, sizeof out, &n), SNAP_EFORMAT, "offset 2");
    CHECK_ERR(base64_decode(BASE64_STD, "Zm9v\nYg==", 9, out, sizeof out, &n), SNAP_EFORMAT, "multiple");
    CHECK_ERR(base64_decode(BASE64_STD, "Zm9 Yg==", 8, out, sizeof out, &n), SNAP_EFORMAT, "0x20 at offset 3");
    CHECK_ERR(base64_decode(BASE64_STD, "-_-_", 4, out, sizeof out, &n), SNAP_EFORMAT, "0x2d at offset 0");
    CHECK_ERR(base64_decode(BASE64_URL, "+/+/", 4, out, sizeof out, &n), SNAP_EFORMAT, "0x2b at offset 0");
    CHECK_ERR(base64_decode(BASE64_URL, "Zg==", 4, out, sizeof out, &n), SNAP_EFORMAT, "base64url");
    CHECK_ERR(base64_decode(BASE64_URL, "Zm9vY", 5, out, sizeof out, &n), SNAP_EFORMAT, "length 5");
    CHECK_ERR(base64_decode(BASE64_URL, "Zh", 2, out, sizeof out, &n), SNAP_EFORMAT, "unused bits");
    CHECK_ERR(base64_decode(BASE64_STD, "Zm9vYmFy", 8, out, 5, &n), SNAP_ETOOBIG, "6 bytes");
    CHECK_EQ(n, 99); /* untouched on failure */
    CHECK_EQ(base64_decode(BASE64_STD, "Zm9vYmFy", 8, out, 6, &n), 0);
    CHECK_EQ(n, 6);
    CHECK_EQ(base64_decode(BASE64_URL, "", 0, out, 0, &n), 0);
    CHECK_EQ(n, 0);
}

TEST(crypto_base64_round_trips)
{
    uint8_t in[300], dec[300];
    char enc[401];
    uint64_t seed = 42;
    for (size_t len = 0; len <= sizeof in; len++) {
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)(crypto_rand(&seed) >> 56);
        for (int v = BASE64_STD; v <= BASE64_URL; v++) {
            size_t elen = base64_encode((enum base64_variant)v, in, len, enc);
            CHECK_EQ(elen, base64_encoded_len((enum base64_variant)v, len));
            CHECK_EQ(strlen(enc), elen);
            size_t n;
            CHECK_EQ(base64_decode((enum base64_variant)v, enc, elen, dec, base64_decoded_max(elen), &n), 0);
            CHECK_EQ(n, len);
            CHECK_MEM(dec, in, len);
        }
    }
}

TEST(crypto_md5_rfc1321)
{
    static const struct {
        const char *in, *hex;
    } v[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        struct md5_ctx c;
        uint8_t d[MD5_DIGEST_LEN];
        char hex[2 * MD5_DIGEST_LEN + 1];
        md5_init(&c);
        size_t n = strlen(v[i].in), half = n / 2; /* two updates: the split must not matter */
        md5_update(&c, v[i].in, half);
        md5_update(&c, v[i].in + half, n - half);
        md5_final(&c, d);
        snap_hex(d, MD5_DIGEST_LEN, hex);
        CHECK_STR(hex, v[i].hex);
    }
}
