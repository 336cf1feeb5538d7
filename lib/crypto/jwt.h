/* jwt.h -- the RS256-signed JWT a Google service account exchanges for an OAuth2 token.
 *
 *   struct jwt_key *k;
 *   jwt_key_parse(pem, pemlen, &k);     // "private_key" of the JSON key file, "\n" unescaped
 *   struct jwt_sa_claims c = {.iss = client_email, .scope = scope, .aud = token_uri,
 *                             .kid = private_key_id, .iat = time(NULL)};
 *   char *jwt; size_t n;
 *   jwt_sign_sa(k, &c, &jwt, &n);       // base64url(header).base64url(claims).base64url(sig)
 *   ... POST grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=jwt ...
 *   snap_free(jwt); jwt_key_free(k);
 *
 * Keys: RSA, 2048 to 8192 bits, PEM in PKCS#8 ("BEGIN PRIVATE KEY", as Google issues them)
 * or PKCS#1 ("BEGIN RSA PRIVATE KEY"); DER is accepted too.  Encrypted keys are refused.
 * Signing is RSASSA-PKCS1-v1_5 with SHA-256, so the signature is deterministic; the RSA
 * blinding draws from a CTR-DRBG seeded from getrandom(2).  A key may sign from several
 * threads at once.
 */
#ifndef SNAP_CRYPTO_JWT_H
#define SNAP_CRYPTO_JWT_H

#include <stddef.h>
#include <time.h>

#define JWT_MAX_PEM (64u << 10) /* a PEM longer than this is not a key */
#define JWT_MAX_CLAIM 1024      /* each of iss, scope, aud, kid */
#define JWT_MAX_LIFETIME 3600   /* Google refuses longer assertions */

struct jwt_key;

/* Parse an RSA private key.  Returns 0, SNAP_EFORMAT (not a key; the message names why),
 * SNAP_ENOTSUP (encrypted, or not RSA), SNAP_ERANGE (key size), SNAP_ETOOBIG, SNAP_ENOMEM. */
int jwt_key_parse(const char *pem, size_t len, struct jwt_key **out);
void jwt_key_free(struct jwt_key *k);
/* The modulus size in bits. */
size_t jwt_key_bits(const struct jwt_key *k);

struct jwt_sa_claims {
    const char *iss;   /* the service account's client_email */
    const char *scope; /* space-separated OAuth2 scopes */
    const char *aud;   /* the token_uri, "https://oauth2.googleapis.com/token" */
    const char *kid;   /* private_key_id, or NULL to leave it out of the header */
    time_t iat;        /* issued at (seconds since the epoch) */
    unsigned lifetime; /* exp = iat + lifetime; 1..3600, 0 means 3600 */
};

/* Build and sign the assertion.  *out is a NUL-terminated string from snap_malloc (snap_free
 * it), *outlen its length.  Returns 0, SNAP_EUSAGE (a missing or bad claim, naming it),
 * SNAP_ETOOBIG (a claim over JWT_MAX_CLAIM), SNAP_ENOMEM, or SNAP_EIO (no entropy, RSA failure). */
int jwt_sign_sa(struct jwt_key *k, const struct jwt_sa_claims *c, char **out, size_t *outlen);

#endif
