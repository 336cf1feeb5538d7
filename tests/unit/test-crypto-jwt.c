/* Unit tests of lib/crypto/jwt: assertions checked byte for byte and verified by openssl(1).
 *
 * Keys are made with `openssl genpkey` in test_tmpdir(); openssl is required (CI installs it),
 * and its absence fails the test with a message rather than skipping it.
 */
#include "test.h"

#include "base/err.h"
#include "base/io.h"
#include "base/mem.h"
#include "crypto/base64.h"
#include "crypto/jwt.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define SA_ISS "sa@proj.iam.gserviceaccount.com"
#define SA_SCOPE "https://www.googleapis.com/auth/devstorage.read_write"
#define SA_AUD "https://oauth2.googleapis.com/token"

static char jwt_dir[512];

/* Run a shell command in jwt_dir; its exit status (-1 if it could not run). */
static int jwt_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int jwt_sh(const char *fmt, ...)
{
    char cmd[2048];
    int n = snprintf(cmd, sizeof cmd, "cd '%s' && ", jwt_dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Make the scratch directory and the keys once: key.pem (PKCS#8), key1.pem (PKCS#1), pub.pem. */
static bool jwt_setup(void)
{
    static int done; /* 1 ok, -1 failed */
    if (done)
        return done > 0;
    done = -1;
    snprintf(jwt_dir, sizeof jwt_dir, "%s/jwt", test_tmpdir());
    mkdir(jwt_dir, 0700);
    if (system("command -v openssl >/dev/null 2>&1") != 0) {
        test_failed(__FILE__, __LINE__, "openssl(1) is not installed: the JWT tests need it to make keys and "
                                        "verify signatures (apt-get install openssl)");
        return false;
    }
    if (jwt_sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out key.pem 2>/dev/null && "
               "openssl rsa -in key.pem -traditional -out key1.pem 2>/dev/null && "
               "openssl pkey -in key.pem -pubout -out pub.pem") != 0) {
        test_failed(__FILE__, __LINE__, "openssl could not make an RSA key in %s", jwt_dir);
        return false;
    }
    done = 1;
    return true;
}

/* Load jwt_dir/name as a key; 0 or the jwt_key_parse error. */
static int jwt_load(const char *name, struct jwt_key **k)
{
    char path[600];
    uint8_t *pem;
    size_t len;
    snprintf(path, sizeof path, "%s/%s", jwt_dir, name);
    int err = snap_read_file(path, JWT_MAX_PEM, &pem, &len);
    if (err)
        return err;
    err = jwt_key_parse((const char *)pem, len, k);
    snap_free(pem);
    return err;
}

static int jwt_write(const char *name, const void *p, size_t n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", jwt_dir, name);
    return snap_write_file_atomic(path, p, n, 0600);
}

/* Split a JWT into its three parts, base64url-decoded (NUL-terminated), and the signing input. */
struct jwt_parts {
    char header[512], claims[1024];
    uint8_t sig[1024];
    size_t siglen, input_len;
};

static int jwt_split(const char *jwt, struct jwt_parts *p)
{
    const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    size_t n;
    if (!d2 || strchr(d2 + 1, '.'))
        return -1;
    if (base64_decode(BASE64_URL, jwt, (size_t)(d1 - jwt), (uint8_t *)p->header, sizeof p->header - 1, &n))
        return -1;
    p->header[n] = '\0';
    if (base64_decode(BASE64_URL, d1 + 1, (size_t)(d2 - d1 - 1), (uint8_t *)p->claims, sizeof p->claims - 1, &n))
        return -1;
    p->claims[n] = '\0';
    if (base64_decode(BASE64_URL, d2 + 1, strlen(d2 + 1), p->sig, sizeof p->sig, &p->siglen))
        return -1;
    p->input_len = (size_t)(d2 - jwt);
    return 0;
}

TEST(crypto_jwt_rs256_verified_by_openssl)
{
    if (!jwt_setup())
        return;
    struct jwt_key *k = NULL, *k1 = NULL;
    CHECK_EQ(jwt_load("key.pem", &k), 0);
    CHECK_EQ(jwt_key_bits(k), 2048);
    struct jwt_sa_claims c = {.iss = SA_ISS, .scope = SA_SCOPE, .aud = SA_AUD, .kid = "0123abcd",
                              .iat = 1700000000};
    char *jwt = NULL, *jwt1 = NULL;
    size_t n;
    int err = jwt_sign_sa(k, &c, &jwt, &n);
    jwt_key_free(k);
    CHECK_EQ(err, 0);
    CHECK_EQ(strlen(jwt), n);

    struct jwt_parts p;
    int split = jwt_split(jwt, &p);
    if (split == 0) {
        jwt_write("input", jwt, p.input_len);
        jwt_write("sig", p.sig, p.siglen);
    }
    /* PKCS#1 v1.5 is deterministic: the PKCS#1 form of the key gives the same assertion. */
    err = jwt_load("key1.pem", &k1);
    if (!err)
        err = jwt_sign_sa(k1, &c, &jwt1, &n);
    jwt_key_free(k1);
    int same = jwt1 && !strcmp(jwt, jwt1);
    snap_free(jwt);
    snap_free(jwt1);
    CHECK_EQ(split, 0);
    CHECK_EQ(err, 0);
    CHECK(same);

    CHECK_STR(p.header, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"0123abcd\"}");
    CHECK_STR(p.claims, "{\"iss\":\"" SA_ISS "\",\"scope\":\"" SA_SCOPE "\",\"aud\":\"" SA_AUD
                        "\",\"iat\":1700000000,\"exp\":1700003600}");
    CHECK_EQ(p.siglen, 256);
    CHECK_EQ(jwt_sh("openssl dgst -sha256 -verify pub.pem -signature sig input | grep -qx 'Verified OK'"), 0);
    /* openssl's own signature of the same input is the same bytes. */
    CHECK_EQ(jwt_sh("openssl dgst -sha256 -sign key.pem -out sig.openssl input && cmp -s sig sig.openssl"), 0);
    /* And the check can fail: one changed byte of the signed input. */
    CHECK_EQ(jwt_sh("sed 's/^e/f/' input > input.bad && ! cmp -s input input.bad"), 0);
    CHECK(jwt_sh("openssl dgst -sha256 -verify pub.pem -signature sig input.bad >/dev/null 2>&1") != 0);
}

TEST(crypto_jwt_claims_escaped_and_optional_kid)
{
    if (!jwt_setup())
        return;
    struct jwt_key *k = NULL;
    CHECK_EQ(jwt_load("key.pem", &k), 0);
    struct jwt_sa_claims c = {.iss = "a\"b\\c\nd\x01", .scope = "s1 s2", .aud = "https://x/\xc3\xa9",
                              .iat = 5, .lifetime = 60};
    char *jwt = NULL;
    size_t n;
    int err = jwt_sign_sa(k, &c, &jwt, &n);
    jwt_key_free(k);
    CHECK_EQ(err, 0);
    struct jwt_parts p;
    int split = jwt_split(jwt, &p);
    if (split == 0) {
        jwt_write("input2", jwt, p.input_len);
        jwt_write("sig2", p.sig, p.siglen);
    }
    snap_free(jwt);
    CHECK_EQ(split, 0);
    CHECK_STR(p.header, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}");
    CHECK_STR(p.claims, "{\"iss\":\"a\\\"b\\\\c\\u000ad\\u0001\",\"scope\":\"s1 s2\",\"aud\":\"https://x/\xc3\xa9\","
                        "\"iat\":5,\"exp\":65}");
    CHECK_EQ(jwt_sh("openssl dgst -sha256 -verify pub.pem -signature sig2 input2 >/dev/null"), 0);
}

TEST(crypto_jwt_key_errors)
{
    if (!jwt_setup())
        return;
    struct jwt_key *k = NULL;
    CHECK_EQ(jwt_sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem 2>/dev/null && "
                    "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out small.pem 2>/dev/null && "
                    "openssl pkey -in key.pem -aes256 -passout pass:secret -out enc.pem && "
                    "openssl pkey -in key.pem -outform DER -out key.der"), 0);
    CHECK_ERR(jwt_load("ec.pem", &k), SNAP_ENOTSUP, "RS256 needs an RSA key");
    CHECK_ERR(jwt_load("small.pem", &k), SNAP_ERANGE, "1024 bits");
    CHECK_ERR(jwt_load("enc.pem", &k), SNAP_ENOTSUP, "encrypted");
    CHECK_ERR(jwt_load("pub.pem", &k), SNAP_EFORMAT, "jwt: private key:");
    CHECK_EQ(jwt_load("key.der", &k), 0);
    jwt_key_free(k);

    const char garbage[] = "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n";
    CHECK_ERR(jwt_key_parse(garbage, sizeof garbage - 1, &k), SNAP_EFORMAT, "private key");
    CHECK_ERR(jwt_key_parse("", 0, &k), SNAP_EFORMAT, "empty");
    CHECK_ERR(jwt_key_parse(garbage, JWT_MAX_PEM + 1, &k), SNAP_ETOOBIG, "at most 65536");

    CHECK_EQ(jwt_load("key.pem", &k), 0);
    struct jwt_sa_claims good = {.iss = SA_ISS, .scope = SA_SCOPE, .aud = SA_AUD, .iat = 1700000000}, c;
    char *jwt = NULL;
    size_t n;
    static char big[JWT_MAX_CLAIM + 2];
    memset(big, 'x', sizeof big - 1);
    int e1, e2, e3, e4, e5, e6;
    c = good, c.iss = NULL;
    e1 = jwt_sign_sa(k, &c, &jwt, &n);
    c = good, c.scope = "";
    e2 = jwt_sign_sa(k, &c, &jwt, &n);
    c = good, c.aud = big;
    e3 = jwt_sign_sa(k, &c, &jwt, &n);
    c = good, c.kid = "";
    e4 = jwt_sign_sa(k, &c, &jwt, &n);
    c = good, c.lifetime = 3601;
    e5 = jwt_sign_sa(k, &c, &jwt, &n);
    c = good, c.iat = -1;
    e6 = jwt_sign_sa(k, &c, &jwt, &n);
    jwt_key_free(k);
    CHECK_EQ(e1, SNAP_EUSAGE);
    CHECK_EQ(e2, SNAP_EUSAGE);
    CHECK_EQ(e3, SNAP_ETOOBIG);
    CHECK_EQ(e4, SNAP_EUSAGE);
    CHECK_EQ(e5, SNAP_EUSAGE);
    CHECK_EQ(e6, SNAP_EUSAGE);
    CHECK(jwt == NULL);
}

TEST(crypto_jwt_allocation_failures)
{
    if (!jwt_setup())
        return;
    char path[600];
    uint8_t *pem;
    size_t len;
    snprintf(path, sizeof path, "%s/key.pem", jwt_dir);
    CHECK_EQ(snap_read_file(path, JWT_MAX_PEM, &pem, &len), 0);
    struct jwt_sa_claims c = {.iss = SA_ISS, .scope = SA_SCOPE, .aud = SA_AUD, .iat = 1};
    int ok = 0, bad = 0;
    for (long i = 0; i < 10 && !ok; i++) {
        struct jwt_key *k = NULL;
        char *jwt = NULL;
        size_t n;
        snap_mem_fail_after(i);
        int err = jwt_key_parse((const char *)pem, len, &k);
        if (!err) {
            err = jwt_sign_sa(k, &c, &jwt, &n);
            jwt_key_free(k);
        }
        snap_mem_fail_after(-1);
        snap_free(jwt);
        if (err == 0)
            ok = 1;
        else if (err != SNAP_ENOMEM)
            bad++;
    }
    snap_free(pem);
    CHECK_EQ(bad, 0);
    CHECK(ok);
}

struct jwt_thread {
    struct jwt_key *k;
    const char *want;
    int mismatches;
};

static void *jwt_thread_main(void *arg)
{
    struct jwt_thread *t = arg;
    struct jwt_sa_claims c = {.iss = SA_ISS, .scope = SA_SCOPE, .aud = SA_AUD, .iat = 1700000000};
    for (int i = 0; i < 4; i++) {
        char *jwt = NULL;
        size_t n;
        if (jwt_sign_sa(t->k, &c, &jwt, &n) != 0 || strcmp(jwt, t->want) != 0)
            t->mismatches++;
        snap_free(jwt);
    }
    return NULL;
}

TEST(crypto_jwt_one_key_many_threads)
{
    if (!jwt_setup())
        return;
    struct jwt_key *k = NULL;
    CHECK_EQ(jwt_load("key.pem", &k), 0);
    struct jwt_sa_claims c = {.iss = SA_ISS, .scope = SA_SCOPE, .aud = SA_AUD, .iat = 1700000000};
    char *want = NULL;
    size_t n;
    if (jwt_sign_sa(k, &c, &want, &n) != 0) {
        jwt_key_free(k);
        CHECK(!"first signature failed");
    }
    struct jwt_thread t[3] = {{k, want, 0}, {k, want, 0}, {k, want, 0}};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, jwt_thread_main, &t[i]);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    jwt_key_free(k);
    snap_free(want);
    CHECK_EQ(t[0].mismatches + t[1].mismatches + t[2].mismatches, 0);
}
