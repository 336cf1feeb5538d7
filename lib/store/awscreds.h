/* awscreds.h -- AWS credentials found as the AWS CLI finds them, cached and shared by threads.
 *
 *   struct awscreds *c;
 *   awscreds_new(&c);                        // picks the source, fetches the first credentials
 *   struct awscreds_val v; uint64_t gen;
 *   awscreds_get(c, &v, &gen);               // cached; fetched again before they expire
 *   ... sign with v ... 403 ExpiredToken?  awscreds_refused(c, gen) == 0 -> get again, retry once
 *   awscreds_free(c);
 *
 * Sources, the first that is configured wins (the AWS CLI's order):
 *   1. environment: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY [+ AWS_SESSION_TOKEN];
 *   2. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN [+ AWS_ROLE_SESSION_NAME]
 *      -> STS AssumeRoleWithWebIdentity (the token file is read again for every call);
 *   3. the profile (AWS_PROFILE, else "default") of the shared credentials file
 *      (AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials) and config file (AWS_CONFIG_FILE,
 *      ~/.aws/config, sections "[profile NAME]"): keys; role_arn with source_profile or
 *      credential_source (Environment, Ec2InstanceMetadata, EcsContainer) -> STS AssumeRole
 *      signed with the source's credentials; web_identity_token_file + role_arn;
 *      credential_process (run through /bin/sh, its JSON read from stdout);
 *   4. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on 169.254.170.2) or _FULL_URI, with
 *      Authorization from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or _TOKEN;
 *   5. EC2 instance metadata, IMDSv2 (a session token PUT first, then the role, then its
 *      credentials) at AWS_EC2_METADATA_SERVICE_ENDPOINT (default http://169.254.169.254),
 *      unless AWS_EC2_METADATA_DISABLED=true.  AWS_METADATA_SERVICE_TIMEOUT (seconds, default 1)
 *      and AWS_METADATA_SERVICE_NUM_ATTEMPTS (default 1) bound it, so off EC2 it fails fast.
 * STS: AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else https://sts.REGION.amazonaws.com.
 *
 * The cache: one set of credentials, guarded by a mutex.  Temporary credentials are used until
 * min(10 min, a quarter of their lifetime) before they expire, then one caller fetches new ones
 * while the others wait; a failed fetch keeps the old ones while they have not expired, and the
 * next try waits 10 s (or until they expire).
 * awscreds_refused() marks the generation the server refused (ExpiredToken) stale unless another
 * thread replaced it already, so a burst of refusals costs one fetch.  Secrets are never put in
 * a message or a log line: only the source and the access key id's last four characters.
 */
#ifndef SNAP_STORE_AWSCREDS_H
#define SNAP_STORE_AWSCREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AWSCREDS_KEY_MAX 129      /* access key id, secret (SigV4's cap) */
#define AWSCREDS_TOKEN_MAX 4097   /* session token */
#define AWSCREDS_MAX_DEPTH 4      /* role chains: profile -> source_profile -> ... */
#define AWSCREDS_DEFAULT_IMDS "http://169.254.169.254"
#define AWSCREDS_DEFAULT_ECS_HOST "http://169.254.170.2"

struct awscreds_val {
    char ak[AWSCREDS_KEY_MAX], sk[AWSCREDS_KEY_MAX], token[AWSCREDS_TOKEN_MAX];
    int64_t expires;              /* unix seconds; 0: does not expire */
};

struct awscreds;

/* The source as the environment and files pick it, and its first credentials.  SNAP_EAUTH with
 * a message naming the source and what to set when there is none or it fails. */
int awscreds_new(struct awscreds **out);
void awscreds_free(struct awscreds *c);

/* The current credentials (fetched again near expiry) and their generation. */
int awscreds_get(struct awscreds *c, struct awscreds_val *v, uint64_t *gen);
/* The server refused credentials of generation gen as expired: 0 if new ones may help. */
int awscreds_refused(struct awscreds *c, uint64_t gen);
/* "web identity (AWS_WEB_IDENTITY_TOKEN_FILE, role arn:...)": what gave them, never a secret. */
const char *awscreds_source(const struct awscreds *c);
/* Fetches made so far (tests). */
uint64_t awscreds_fetches(struct awscreds *c);

/* The region: AWS_REGION, AWS_DEFAULT_REGION, the profile's "region" in the config file, then
 * the instance metadata (only when c's credentials come from it: off EC2 it would cost the
 * metadata timeout), else "".  c may be NULL. */
void awscreds_region(char *out, size_t n, const struct awscreds *c);

/* ---- parsers of outside bytes (fuzzed) ---- */

/* The value of key in section of an INI text (AWS shared files: '#' and ';' comments, "k = v",
 * names trimmed; continuation lines of nested sections are skipped).  Section "profile x" also
 * matches "[profile   x]".  0, SNAP_ENOTFOUND, SNAP_ETOOBIG (value longer than cap-1). */
int awscreds_ini_get(const char *text, size_t len, const char *section, const char *key, char *out, size_t cap);
/* Whether the INI text has that section. */
bool awscreds_ini_has(const char *text, size_t len, const char *section);
/* An STS AssumeRole* answer (or its <ErrorResponse>: SNAP_EAUTH quoting Code and Message). */
int awscreds_parse_sts(const void *body, size_t len, struct awscreds_val *v);
/* A JSON credentials document: IMDS and ECS ({AccessKeyId, SecretAccessKey, Token,
 * Expiration[, Code]}) or credential_process ({Version: 1, ..., SessionToken}). */
int awscreds_parse_json(const void *body, size_t len, struct awscreds_val *v);
/* "2026-12-07T01:02:03Z" (fraction and "+00:00" allowed) -> unix seconds, or -1. */
int64_t awscreds_parse_time(const char *s);

#endif
