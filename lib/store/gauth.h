/* gauth.h -- OAuth2 access tokens for gs://: where they come from, and a cache shared by threads.
 *
 *   struct gauth *g;
 *   gauth_new_service_account("/path/key.json", &g);   // or gauth_new_metadata / gauth_new_static
 *   char tok[GAUTH_TOKEN_MAX]; uint64_t gen;
 *   gauth_get(g, tok, sizeof tok, &gen);      // cached; fetched on first use and before expiry
 *   ... "Authorization: Bearer tok" ... 401?  gauth_refused(g, gen) == 0 -> fetch again, retry once
 *   gauth_free(g);
 *
 * Sources: a token given as is (GOOGLE_OAUTH_ACCESS_TOKEN; never refreshed), a service-account
 * JSON key (an RS256 JWT assertion POSTed to the key's token_uri as a jwt-bearer grant, scope
 * devstorage.read_write), or the GCE metadata server (GET
 * /computeMetadata/v1/instance/service-accounts/default/token with Metadata-Flavor: Google).
 *
 * The cache: one token per source, guarded by a mutex.  A token is used until `margin` before it
 * expires (min(225 s, a quarter of its lifetime)), then one caller fetches a new one while the
 * others wait for it; a failed fetch falls back to the old token while that has not expired yet.
 * gauth_refused() forgets the token the server refused, unless another thread has replaced it
 * already, so a burst of 401s costs one fetch.  A cached token is handed out without allocating.
 *
 * Every failure is SNAP_EAUTH with a message naming the token URI or metadata host and what to
 * change.  Token answers are parsed by jsonr (capped, fuzzed) with lengths checked.
 */
#ifndef SNAP_STORE_GAUTH_H
#define SNAP_STORE_GAUTH_H

#include <stddef.h>
#include <stdint.h>

#define GAUTH_TOKEN_MAX 2049 /* Google: access tokens are at most 2048 bytes */
#define GAUTH_SCOPE "https://www.googleapis.com/auth/devstorage.read_write"
#define GAUTH_DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define GAUTH_DEFAULT_METADATA_HOST "169.254.169.254"
#define GAUTH_METADATA_PATH "/computeMetadata/v1/instance/service-accounts/default/token"

struct gauth;

/* Fetch a new token into token[cap] with its lifetime in seconds; a snap_err with a message. */
typedef int (*gauth_fetch_fn)(void *ctx, char *token, size_t cap, int64_t *expires_in);

/* origin names the token's source in messages ("GOOGLE_OAUTH_ACCESS_TOKEN"). */
int gauth_new_static(const char *token, const char *origin, struct gauth **out);
/* Reads and checks the key file now (type, client_email, private_key, token_uri). */
int gauth_new_service_account(const char *key_path, struct gauth **out);
/* host is "HOST[:PORT]" (GCE_METADATA_HOST) or NULL for 169.254.169.254. */
int gauth_new_metadata(const char *host, struct gauth **out);
/* Any fetcher, for tests; now_s (NULL = CLOCK_MONOTONIC seconds) is the cache's clock. */
int gauth_new_custom(gauth_fetch_fn fetch, void *ctx, int64_t (*now_s)(void *), void *now_ctx,
                     struct gauth **out);
void gauth_free(struct gauth *g);

/* The current token (fetched if there is none or it is near expiry) and its generation. */
int gauth_get(struct gauth *g, char *token, size_t cap, uint64_t *gen);
/* The server refused the token of generation gen: 0 if a new one may help (it will be fetched
 * by the next gauth_get), SNAP_EAUTH for a token that cannot be refreshed. */
int gauth_refused(struct gauth *g, uint64_t gen);
/* Fetches made so far (tests). */
uint64_t gauth_fetches(struct gauth *g);

/* Parse an OAuth2 token answer {"access_token", "expires_in", "token_type"}: the token must be
 * 1..cap-1 visible ASCII characters, expires_in (if present) 1..86400 (absent: 300), token_type
 * (if present) "Bearer".  An {"error", "error_description"} answer is SNAP_EAUTH quoting them.
 * Other failures are SNAP_EFORMAT; the message says what was wrong. */
int gauth_parse_token(const void *body, size_t len, char *token, size_t cap, int64_t *expires_in);

#endif
