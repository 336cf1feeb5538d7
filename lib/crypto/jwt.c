/* jwt.c -- service-account JWT assertions signed with RS256 through mbedTLS's pk layer.
 *
 * The JSON of header and claims is measured first and then written (one writer, run twice),
 * so the only allocations are that JSON and the result, both sized exactly.  The signing
 * input is base64url(header) "." base64url(claims), written straight into the result buffer,
 * hashed with lib/crypto's SHA-256, and the signature appended after another '.'.
 */
#include "crypto/jwt.h"

#include "base/err.h"
#include "base/mem.h"
#include "crypto/base64.h"
#include "crypto/sha256.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define JWT_MIN_BITS 2048
#define JWT_MAX_BITS 8192
#define JWT_MAX_IAT 253402300799LL /* 9999-12-31T23:59:59Z */

struct jwt_key {
    mbedtls_pk_context pk;
};

/* ---- randomness for RSA blinding ---- */

static int jwt_getrandom(void *ctx, unsigned char *buf, size_t len)
{
    (void)ctx;
    while (len > 0) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Seed d (already mbedtls_ctr_drbg_init'ed) from getrandom. */
static int jwt_drbg_seed(mbedtls_ctr_drbg_context *d)
{
    static const unsigned char pers[] = "snapctl jwt";
    int rc = mbedtls_ctr_drbg_seed(d, jwt_getrandom, NULL, pers, sizeof pers - 1);
    if (rc != 0)
        return snap_fail(SNAP_EIO, "jwt: seeding the random generator from getrandom failed (mbedTLS -0x%04x)",
                         (unsigned)-rc);
    return 0;
}

static const char *jwt_mbedtls_msg(int rc, char *buf, size_t len)
{
    mbedtls_strerror(rc, buf, len);
    return buf;
}

/* ---- keys ---- */

int jwt_key_parse(const char *pem, size_t len, struct jwt_key **out)
{
    if (len > JWT_MAX_PEM)
        return snap_fail(SNAP_ETOOBIG, "jwt: private key of %zu bytes (at most %u)", len, JWT_MAX_PEM);
    if (len == 0)
        return snap_fail(SNAP_EFORMAT, "jwt: private key is empty");
    /* mbedTLS wants PEM NUL-terminated, with the NUL counted. */
    bool is_pem = memmem(pem, len, "-----BEGIN", 10) != NULL;
    CLEANUP_FREE unsigned char *copy = snap_malloc(len + 1);
    struct jwt_key *k = snap_calloc(1, sizeof *k);
    if (!copy || !k) {
        snap_free(k);
        return snap_fail(SNAP_ENOMEM, "jwt: out of memory for the private key");
    }
    memcpy(copy, pem, len);
    copy[len] = '\0';

    mbedtls_pk_init(&k->pk);
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ctr_drbg_init(&drbg);
    int err = jwt_drbg_seed(&drbg);
    int rc = err ? 0 : mbedtls_pk_parse_key(&k->pk, copy, is_pem ? len + 1 : len, NULL, 0,
                                            mbedtls_ctr_drbg_random, &drbg);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_platform_zeroize(copy, len + 1);

    char msg[128];
    if (err) {
        /* recorded already */
    } else if (rc == MBEDTLS_ERR_PK_PASSWORD_REQUIRED || rc == MBEDTLS_ERR_PK_PASSWORD_MISMATCH) {
        err = snap_fail(SNAP_ENOTSUP, "jwt: the private key is encrypted; give an unencrypted PKCS#8 or "
                                      "PKCS#1 key");
    } else if (rc != 0) {
        err = snap_fail(SNAP_EFORMAT, "jwt: private key: %s", jwt_mbedtls_msg(rc, msg, sizeof msg));
    } else if (!mbedtls_pk_can_do(&k->pk, MBEDTLS_PK_RSA)) {
        err = snap_fail(SNAP_ENOTSUP, "jwt: the private key is %s; RS256 needs an RSA key",
                        mbedtls_pk_get_name(&k->pk));
    } else if (mbedtls_pk_get_bitlen(&k->pk) < JWT_MIN_BITS || mbedtls_pk_get_bitlen(&k->pk) > JWT_MAX_BITS) {
        err = snap_fail(SNAP_ERANGE, "jwt: RSA key of %zu bits (RS256 keys have %d to %d)",
                        mbedtls_pk_get_bitlen(&k->pk), JWT_MIN_BITS, JWT_MAX_BITS);
    }
    if (err) {
        jwt_key_free(k);
        return err;
    }
    *out = k;
    return 0;
}

void jwt_key_free(struct jwt_key *k)
{
    if (!k)
        return;
    mbedtls_pk_free(&k->pk);
    snap_free(k);
}

size_t jwt_key_bits(const struct jwt_key *k)
{
    return mbedtls_pk_get_bitlen(&k->pk);
}

/* ---- JSON of header and claims ---- */

/* Writes into p[0..cap) when p is set; always counts. */
struct jwt_text {
    char *p;
    size_t len, cap;
};

static void text_put(struct jwt_text *t, const char *s, size_t n)
{
    if (t->p && n <= t->cap - t->len)
        memcpy(t->p + t->len, s, n);
    t->len += n;
}

static void text_str(struct jwt_text *t, const char *s)
{
    text_put(t, s, strlen(s));
}

/* A JSON string literal: quotes, backslashes and control characters escaped, UTF-8 kept. */
static void text_json_str(struct jwt_text *t, const char *s)
{
    text_put(t, "\"", 1);
    size_t run = 0, i = 0;
    for (; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        char esc[8];
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof esc, "\\%c", c);
        else
            snprintf(esc, sizeof esc, "\\u%04x", c);
        text_put(t, s + run, i - run);
        text_str(t, esc);
        run = i + 1;
    }
    text_put(t, s + run, i - run);
    text_put(t, "\"", 1);
}

static void text_field(struct jwt_text *t, bool first, const char *name, const char *value)
{
    text_str(t, first ? "{\"" : ",\"");
    text_str(t, name);
    text_str(t, "\":");
    text_json_str(t, value);
}

static void jwt_header_json(struct jwt_text *t, const struct jwt_sa_claims *c)
{
    text_field(t, true, "alg", "RS256");
    text_field(t, false, "typ", "JWT");
    if (c->kid)
        text_field(t, false, "kid", c->kid);
    text_str(t, "}");
}

static void jwt_claims_json(struct jwt_text *t, const struct jwt_sa_claims *c)
{
    char num[64];
    text_field(t, true, "iss", c->iss);
    text_field(t, false, "scope", c->scope);
    text_field(t, false, "aud", c->aud);
    snprintf(num, sizeof num, ",\"iat\":%lld,\"exp\":%lld}", (long long)c->iat,
             (long long)c->iat + (c->lifetime ? c->lifetime : JWT_MAX_LIFETIME));
    text_str(t, num);
}

static int jwt_check_claim(const char *name, const char *v, bool optional)
{
    if (!v || !*v) {
        if (optional && !v)
            return 0;
        return snap_fail(SNAP_EUSAGE, "jwt: claim %s is missing", name);
    }
    if (strnlen(v, JWT_MAX_CLAIM + 1) > JWT_MAX_CLAIM)
        return snap_fail(SNAP_ETOOBIG, "jwt: claim %s is longer than %d bytes", name, JWT_MAX_CLAIM);
    return 0;
}

/* ---- signing ---- */

static int jwt_rsa_sign(struct jwt_key *k, const uint8_t hash[SHA256_DIGEST_LEN], uint8_t *sig, size_t cap,
                        size_t *siglen)
{
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ctr_drbg_init(&drbg);
    int err = jwt_drbg_seed(&drbg);
    if (!err) {
        int rc = mbedtls_pk_sign(&k->pk, MBEDTLS_MD_SHA256, hash, SHA256_DIGEST_LEN, sig, cap, siglen,
                                 mbedtls_ctr_drbg_random, &drbg);
        char msg[128];
        if (rc != 0)
            err = snap_fail(SNAP_EIO, "jwt: RSA signature failed: %s", jwt_mbedtls_msg(rc, msg, sizeof msg));
    }
    mbedtls_ctr_drbg_free(&drbg);
    return err;
}

int jwt_sign_sa(struct jwt_key *k, const struct jwt_sa_claims *c, char **out, size_t *outlen)
{
    int err;
    if ((err = jwt_check_claim("iss", c->iss, false)) || (err = jwt_check_claim("scope", c->scope, false)) ||
        (err = jwt_check_claim("aud", c->aud, false)) || (err = jwt_check_claim("kid", c->kid, true)))
        return err;
    if (c->lifetime > JWT_MAX_LIFETIME)
        return snap_fail(SNAP_EUSAGE, "jwt: lifetime of %u s (Google accepts at most %d)", c->lifetime,
                         JWT_MAX_LIFETIME);
    if (c->iat < 0 || c->iat > JWT_MAX_IAT)
        return snap_fail(SNAP_EUSAGE, "jwt: issue time %lld is not between 1970 and 9999", (long long)c->iat);

    struct jwt_text hdr = {0}, claims = {0};
    jwt_header_json(&hdr, c);
    jwt_claims_json(&claims, c);
    CLEANUP_FREE char *json = snap_malloc(hdr.len + claims.len);
    size_t siglen_max = mbedtls_pk_get_len(&k->pk);
    size_t b64h = base64_encoded_len(BASE64_URL, hdr.len), b64c = base64_encoded_len(BASE64_URL, claims.len);
    size_t total = b64h + 1 + b64c + 1 + base64_encoded_len(BASE64_URL, siglen_max);
    char *res = snap_malloc(total + 1);
    if (!json || !res) {
        snap_free(res);
        return snap_fail(SNAP_ENOMEM, "jwt: out of memory for a %zu-byte assertion", total);
    }
    hdr = (struct jwt_text){.p = json, .cap = hdr.len};
    jwt_header_json(&hdr, c);
    claims = (struct jwt_text){.p = json + hdr.len, .cap = claims.len};
    jwt_claims_json(&claims, c);

    size_t n = base64_encode(BASE64_URL, hdr.p, hdr.len, res);
    res[n++] = '.';
    n += base64_encode(BASE64_URL, claims.p, claims.len, res + n);

    uint8_t hash[SHA256_DIGEST_LEN], sig[JWT_MAX_BITS / 8];
    size_t siglen = 0;
    sha256(res, n, hash);
    if ((err = jwt_rsa_sign(k, hash, sig, sizeof sig, &siglen))) {
        snap_free(res);
        return err;
    }
    res[n++] = '.';
    n += base64_encode(BASE64_URL, sig, siglen, res + n);
    *out = res;
    *outlen = n;
    return 0;
}
