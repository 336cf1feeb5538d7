/* AWS credentials: the INI files and profile resolution, the parsers of STS / IMDS / ECS /
 * credential_process answers, and the cache's refusal handling (credential_process as a
 * source needs no server).  The network sources are tested end to end by
 * tests/integration/test-aws-creds.sh against tests/tools/awsmeta.py and Ceph RGW. */
#include "test.h"

#include "base/err.h"
#include "base/io.h"
#include "store/awscreds.h"
#include "store/credcache.h"
#include "store/store.h"
#include "store/xmlapi.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const vars[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_EC2_METADATA_DISABLED", "AWS_REGION", "AWS_DEFAULT_REGION", "HOME",
};
#define NVARS (sizeof vars / sizeof vars[0])
static char *saved[NVARS];

/* Save and clear the AWS environment (the s3 unit test may run with RGW's), then point the
 * shared files at scratch files and turn off the metadata service. */
static void env_enter(const char *creds, const char *config)
{
    for (size_t i = 0; i < NVARS; i++) {
        const char *v = getenv(vars[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(vars[i]);
    }
    char p[1024];
    snprintf(p, sizeof p, "%s/aws-credentials", test_tmpdir());
    snap_write_file_atomic(p, creds, strlen(creds), 0600);
    setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
    snprintf(p, sizeof p, "%s/aws-config", test_tmpdir());
    snap_write_file_atomic(p, config, strlen(config), 0600);
    setenv("AWS_CONFIG_FILE", p, 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("HOME", test_tmpdir(), 1);
}

static void env_leave(void)
{
    for (size_t i = 0; i < NVARS; i++) {
        if (saved[i])
            setenv(vars[i], saved[i], 1);
        else
            unsetenv(vars[i]);
        free(saved[i]);
        saved[i] = NULL;
    }
}

TEST(awscreds_ini)
{
    static const char t[] = "# comment\n"
                            "[default]\r\n"
                            "aws_access_key_id = AKIADEFAULT\r\n"
                            "  continuation = of a nested value\n"
                            "[profile   dev]\n"
                            "; another comment\n"
                            "Region=eu-west-1\n"
                            "s3 =\n"
                            "  addressing_style = path\n"
                            "role_arn =   arn:aws:iam::1:role/x  \n"
                            "[dev]\n"
                            "region = wrong-section\n"
                            "[broken\n"
                            "region = nowhere\n";
    char v[64];
    CHECK_EQ(awscreds_ini_get(t, sizeof t - 1, "default", "aws_access_key_id", v, sizeof v), 0);
    CHECK_STR(v, "AKIADEFAULT");
    CHECK_EQ(awscreds_ini_get(t, sizeof t - 1, "profile dev", "region", v, sizeof v), 0);
    CHECK_STR(v, "eu-west-1");
    CHECK_EQ(awscreds_ini_get(t, sizeof t - 1, "profile dev", "role_arn", v, sizeof v), 0);
    CHECK_STR(v, "arn:aws:iam::1:role/x");
    CHECK_EQ(awscreds_ini_get(t, sizeof t - 1, "profile dev", "s3", v, sizeof v), 0);
    CHECK_STR(v, "");
    CHECK_EQ(awscreds_ini_get(t, sizeof t - 1, "profile dev", "addressing_style", v, sizeof v), SNAP_ENOTFOUND);
    CHECK_EQ(awscreds_ini_get(t, sizeof t - 1, "default", "continuation", v, sizeof v), SNAP_ENOTFOUND);
    CHECK_EQ(awscreds_ini_get(t, sizeof t - 1, "dev", "region", v, sizeof v), 0);
    CHECK_STR(v, "wrong-section");
    CHECK_EQ(awscreds_ini_get(t, sizeof t - 1, "broken", "region", v, sizeof v), SNAP_ENOTFOUND);
    CHECK_ERR(awscreds_ini_get(t, sizeof t - 1, "profile dev", "role_arn", v, 8), SNAP_ETOOBIG, "role_arn");
    CHECK(awscreds_ini_has(t, sizeof t - 1, "profile dev"));
    CHECK(!awscreds_ini_has(t, sizeof t - 1, "profile default"));
    CHECK_EQ(awscreds_ini_get(NULL, 0, "default", "x", v, sizeof v), SNAP_ENOTFOUND);
}

TEST(awscreds_parse_answers)
{
    struct awscreds_val v;
    CHECK_EQ(awscreds_parse_time("2026-12-07T01:02:03Z"), 1796605323);
    CHECK_EQ(awscreds_parse_time("2026-12-07T01:02:03.123Z"), 1796605323);
    CHECK_EQ(awscreds_parse_time("2026-12-07T02:02:03+01:00"), 1796605323);
    CHECK_EQ(awscreds_parse_time("2026-12-07 01:02:03Z"), -1);
    CHECK_EQ(awscreds_parse_time("2026-12-07T01:02:03"), -1);
    CHECK_EQ(awscreds_parse_time("2026-13-07T01:02:03Z"), -1);

    static const char sts[] = "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                              "<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIA1234</AccessKeyId>"
                              "<SecretAccessKey>s/e+cret</SecretAccessKey><SessionToken>TOK&amp;EN</SessionToken>"
                              "<Expiration>2026-12-07T01:02:03Z</Expiration></Credentials>"
                              "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
    CHECK_EQ(awscreds_parse_sts(sts, sizeof sts - 1, &v), 0);
    CHECK_STR(v.ak, "ASIA1234");
    CHECK_STR(v.sk, "s/e+cret");
    CHECK_STR(v.token, "TOK&EN");
    CHECK_EQ(v.expires, 1796605323);
    static const char ar[] = "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
                             "<SecretAccessKey>S</SecretAccessKey></Credentials></AssumeRoleResult></AssumeRoleResponse>";
    CHECK_EQ(awscreds_parse_sts(ar, sizeof ar - 1, &v), 0);
    CHECK_EQ(v.expires, 0);
    static const char err[] = "<ErrorResponse><Error><Code>AccessDenied</Code><Message>not allowed</Message></Error>"
                              "</ErrorResponse>";
    CHECK_ERR(awscreds_parse_sts(err, sizeof err - 1, &v), SNAP_EAUTH, "AccessDenied: not allowed");
    static const char nocreds[] = "<AssumeRoleResponse><AssumeRoleResult/></AssumeRoleResponse>";
    CHECK_ERR(awscreds_parse_sts(nocreds, sizeof nocreds - 1, &v), SNAP_EFORMAT, "no Credentials");
    static const char badtok[] = "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
                                 "<SecretAccessKey>S</SecretAccessKey><SessionToken>a b</SessionToken>"
                                 "</Credentials></AssumeRoleResult></AssumeRoleResponse>";
    CHECK_ERR(awscreds_parse_sts(badtok, sizeof badtok - 1, &v), SNAP_EFORMAT, "SessionToken");

    static const char imds[] = "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAX\","
                               "\"SecretAccessKey\":\"sk\",\"Token\":\"t\",\"Expiration\":\"2026-12-07T01:02:03Z\"}";
    CHECK_EQ(awscreds_parse_json(imds, sizeof imds - 1, &v), 0);
    CHECK_STR(v.token, "t");
    CHECK_EQ(v.expires, 1796605323);
    static const char proc[] = "{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"SessionToken\":\"T\"}";
    CHECK_EQ(awscreds_parse_json(proc, sizeof proc - 1, &v), 0);
    CHECK_STR(v.token, "T");
    static const char v2[] = "{\"Version\":2,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}";
    CHECK_ERR(awscreds_parse_json(v2, sizeof v2 - 1, &v), SNAP_EFORMAT, "Version");
    static const char fail[] = "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"no role\"}";
    CHECK_ERR(awscreds_parse_json(fail, sizeof fail - 1, &v), SNAP_EAUTH, "AssumeRoleUnauthorizedAccess: no role");
    static const char nosk[] = "{\"AccessKeyId\":\"A\"}";
    CHECK_ERR(awscreds_parse_json(nosk, sizeof nosk - 1, &v), SNAP_EFORMAT, "SecretAccessKey");
    static const char badexp[] = "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Expiration\":\"soon\"}";
    CHECK_ERR(awscreds_parse_json(badexp, sizeof badexp - 1, &v), SNAP_EFORMAT, "Expiration");
    CHECK_ERR(awscreds_parse_json("[]", 2, &v), SNAP_EFORMAT, "array");
}

/* The source awscreds_new picks, and the access key it got. */
static int pick(char *src, size_t n, char *ak, size_t akn)
{
    struct awscreds *c;
    int err = awscreds_new(&c);
    if (err)
        return err;
    struct awscreds_val v;
    uint64_t gen;
    err = awscreds_get(c, &v, &gen);
    snprintf(src, n, "%s", awscreds_source(c));
    snprintf(ak, akn, "%s", v.ak);
    awscreds_free(c);
    return err;
}

static void profiles_body(void);

TEST(awscreds_profiles)
{
    static const char creds[] = "[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key = SKDEFAULT\n"
                                "[dev]\naws_access_key_id = AKDEVCREDS\naws_secret_access_key = SKDEV\n"
                                "[half]\naws_access_key_id = AKHALF\n";
    static const char config[] = "[profile dev]\naws_access_key_id = AKDEVCONFIG\naws_secret_access_key = x\n"
                                 "region = eu-north-1\n"
                                 "[profile conf-only]\naws_access_key_id = AKCONF\naws_secret_access_key = SKCONF\n"
                                 "[profile proc]\ncredential_process = printf '{\"Version\": 1, "
                                 "\"AccessKeyId\": \"AKPROC\", \"SecretAccessKey\": \"SKPROC\"}'\n"
                                 "[profile badproc]\ncredential_process = echo oops; exit 3\n"
                                 "[profile role-noseed]\nrole_arn = arn:aws:iam::1:role/r\n"
                                 "[profile loop]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = loop2\n"
                                 "[profile loop2]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = loop\n"
                                 "[profile empty]\nregion = us-west-2\n";
    env_enter(creds, config);
    profiles_body();
    env_leave();
}

static void profiles_body(void)
{
    char src[1200], ak[AWSCREDS_KEY_MAX], region[64];
    {
        CHECK_EQ(pick(src, sizeof src, ak, sizeof ak), 0);
        CHECK_STR(ak, "AKDEFAULT");
        CHECK(strstr(src, "profile default"));
        /* the environment wins over every file */
        setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "SKENV", 1);
        CHECK_EQ(pick(src, sizeof src, ak, sizeof ak), 0);
        CHECK_STR(ak, "AKENV");
        CHECK(strstr(src, "environment"));
        unsetenv("AWS_SECRET_ACCESS_KEY");
        CHECK_ERR(pick(src, sizeof src, ak, sizeof ak), SNAP_EAUTH, "AWS_SECRET_ACCESS_KEY");
        unsetenv("AWS_ACCESS_KEY_ID");
        /* the credentials file wins over the config file; [profile x] in config */
        setenv("AWS_PROFILE", "dev", 1);
        CHECK_EQ(pick(src, sizeof src, ak, sizeof ak), 0);
        CHECK_STR(ak, "AKDEVCREDS");
        awscreds_region(region, sizeof region, NULL);
        CHECK_STR(region, "eu-north-1");
        setenv("AWS_REGION", "ap-south-1", 1);
        awscreds_region(region, sizeof region, NULL);
        CHECK_STR(region, "ap-south-1");
        unsetenv("AWS_REGION");
        setenv("AWS_PROFILE", "conf-only", 1);
        CHECK_EQ(pick(src, sizeof src, ak, sizeof ak), 0);
        CHECK_STR(ak, "AKCONF");
        setenv("AWS_PROFILE", "proc", 1);
        CHECK_EQ(pick(src, sizeof src, ak, sizeof ak), 0);
        CHECK_STR(ak, "AKPROC");
        CHECK(strstr(src, "credential_process"));
        setenv("AWS_PROFILE", "badproc", 1);
        CHECK_ERR(pick(src, sizeof src, ak, sizeof ak), SNAP_EAUTH, "exited with status 3");
        setenv("AWS_PROFILE", "half", 1);
        CHECK_ERR(pick(src, sizeof src, ak, sizeof ak), SNAP_EAUTH, "no aws_secret_access_key");
        setenv("AWS_PROFILE", "role-noseed", 1);
        CHECK_ERR(pick(src, sizeof src, ak, sizeof ak), SNAP_EAUTH, "credential_source");
        setenv("AWS_PROFILE", "loop", 1);
        CHECK_ERR(pick(src, sizeof src, ak, sizeof ak), SNAP_EAUTH, "chain longer");
        setenv("AWS_PROFILE", "missing", 1);
        CHECK_ERR(pick(src, sizeof src, ak, sizeof ak), SNAP_EAUTH, "profile missing is not in");
        /* a profile without credentials, metadata service off: nothing, and it says what to set */
        setenv("AWS_PROFILE", "empty", 1);
        CHECK_ERR(pick(src, sizeof src, ak, sizeof ak), SNAP_EAUTH, "AWS_EC2_METADATA_DISABLED is set");
        /* no secret in any message */
        setenv("AWS_PROFILE", "dev", 1);
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/creds", 1);
        CHECK_EQ(pick(src, sizeof src, ak, sizeof ak), 0); /* the profile comes first */
        unsetenv("AWS_PROFILE");
        unsetenv("AWS_SHARED_CREDENTIALS_FILE");
        unsetenv("AWS_CONFIG_FILE");
        CHECK_ERR(pick(src, sizeof src, ak, sizeof ak), SNAP_EAUTH, "plain http://");
    }
}

/* env_enter with a default profile whose credential_process prints a new key id at each run
 * (AK1, AK2, ...), with an expiry: temporary credentials, counted in the file `name`. */
static void counting_process_profile(const char *name)
{
    char config[2048], counter[512];
    snprintf(counter, sizeof counter, "%s/%s", test_tmpdir(), name);
    remove(counter);
    snprintf(config, sizeof config,
             "[default]\ncredential_process = echo x >> %s; n=$(wc -l < %s); printf '{\"Version\": 1, "
             "\"AccessKeyId\": \"AK%%s\", \"SecretAccessKey\": \"S\", \"Expiration\": \"2099-01-01T00:00:00Z\"}' $n\n",
             counter, counter);
    env_enter("", config);
}

static void refused_body(struct awscreds **cp);

TEST(awscreds_refused_refetches_once)
{
    counting_process_profile("aws-counter");
    struct awscreds *c = NULL;
    refused_body(&c);
    awscreds_free(c);
    env_leave();
    /* Credentials that cannot be refreshed say so. */
    env_enter("[default]\naws_access_key_id = A\naws_secret_access_key = S\n", "");
    c = NULL;
    int err = awscreds_new(&c);
    int rerr = err ? err : awscreds_refused(c, 1);
    awscreds_free(c);
    env_leave();
    CHECK_EQ(err, 0);
    CHECK_EQ(rerr, SNAP_EAUTH);
}

static void refused_body(struct awscreds **cp)
{
    {
        CHECK_EQ(awscreds_new(cp), 0);
        struct awscreds *c = *cp;
        struct awscreds_val v;
        uint64_t g1, g2, g3;
        CHECK_EQ(awscreds_get(c, &v, &g1), 0);
        CHECK_STR(v.ak, "AK1");
        CHECK_EQ(awscreds_fetches(c), 1);
        CHECK_EQ(awscreds_refused(c, g1), 0);
        CHECK_EQ(awscreds_get(c, &v, &g2), 0);
        CHECK_STR(v.ak, "AK2");
        CHECK(g2 != g1);
        CHECK_EQ(awscreds_refused(c, g1), 0); /* a late refusal of the old ones: no new fetch */
        CHECK_EQ(awscreds_get(c, &v, &g3), 0);
        CHECK_EQ(g3, g2);
        CHECK_EQ(awscreds_fetches(c), 2);
    }
}

/* Threads share one cache: refusals of one generation cost one fetch, whoever sees them. */
struct hammer {
    struct awscreds *c;
    int bad;
};

static void *hammer_fn(void *arg)
{
    struct hammer *hm = arg;
    for (int i = 0; i < 50; i++) {
        struct awscreds_val v;
        uint64_t gen;
        if (awscreds_get(hm->c, &v, &gen) != 0 || strncmp(v.ak, "AK", 2) != 0)
            __atomic_add_fetch(&hm->bad, 1, __ATOMIC_RELAXED);
        if (i == 10 || i == 30)
            awscreds_refused(hm->c, gen);
    }
    return NULL;
}

TEST(awscreds_shared_by_threads)
{
    counting_process_profile("aws-counter2");
    struct hammer hm = {0};
    int err = awscreds_new(&hm.c);
    pthread_t t[4];
    for (int i = 0; !err && i < 4; i++)
        pthread_create(&t[i], NULL, hammer_fn, &hm);
    for (int i = 0; !err && i < 4; i++)
        pthread_join(t[i], NULL);
    uint64_t fetches = err ? 0 : awscreds_fetches(hm.c);
    awscreds_free(hm.c);
    env_leave();
    CHECK_EQ(err, 0);
    CHECK_EQ(hm.bad, 0);
    /* the first fetch, then at most one per refusal (8), however they interleave */
    CHECK(fetches >= 2 && fetches <= 9);
}

/* Addressing: virtual-hosted on AWS, path style for a dotted bucket and for a custom endpoint.
 * Opening an s3:// store with static keys sends nothing, so this needs no network. */
static void addressing_case(const char *url, const char *host, bool path_style)
{
    struct store *s;
    CHECK_EQ(store_open(url, NULL, &s), 0);
    struct xapi *x = (struct xapi *)s;
    CHECK_STR(x->endpoint.host, host);
    CHECK_EQ(x->path_style, path_style);
    store_close(s);
}

static void addressing_body(void)
{
    addressing_case("s3://my-bucket/builds", "my-bucket.s3.eu-west-3.amazonaws.com", false);
    addressing_case("s3://my.dotted.bucket/builds", "s3.eu-west-3.amazonaws.com", true);
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9", 1);
    addressing_case("s3://my-bucket/builds", "127.0.0.1", true);
}

TEST(awscreds_s3_addressing)
{
    env_enter("", "");
    char *ep = getenv("AWS_ENDPOINT_URL") ? strdup(getenv("AWS_ENDPOINT_URL")) : NULL;
    unsetenv("AWS_ENDPOINT_URL");
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    setenv("AWS_REGION", "eu-west-3", 1);
    addressing_body();
    if (ep)
        setenv("AWS_ENDPOINT_URL", ep, 1);
    else
        unsetenv("AWS_ENDPOINT_URL");
    free(ep);
    env_leave();
}

/* The refresh rule both credential caches (AWS, GCS) use. */
TEST(store_credcache_refresh_rule)
{
    struct credcache c = {0};
    CHECK(credcache_due(&c, 100));                  /* nothing yet */
    CHECK(!credcache_keep(&c, 100, 10));            /* a failure with nothing to keep is the answer */
    credcache_fresh(&c, 100, 100 + 4000, 600);      /* valid 4000 s: refresh 600 s (the cap) early */
    CHECK_EQ(c.gen, 1);
    CHECK_EQ(c.refresh_at, 3500);
    CHECK(!credcache_due(&c, 3499));
    CHECK(credcache_due(&c, 3500));
    CHECK(credcache_keep(&c, 3500, 10));            /* the refresh failed: keep, retry in 10 s */
    CHECK_EQ(c.refresh_at, 3510);
    CHECK(credcache_keep(&c, 4095, 10));            /* ... never past expiry */
    CHECK_EQ(c.refresh_at, 4100);
    CHECK(!credcache_keep(&c, 4100, 10));
    credcache_fresh(&c, 0, 400, 600);               /* short-lived: a quarter of its life early */
    CHECK_EQ(c.gen, 2);
    CHECK_EQ(c.refresh_at, 300);
    credcache_refused(&c, 1);                       /* an older generation's refusal: nothing */
    CHECK(!c.stale);
    credcache_refused(&c, 2);
    CHECK(credcache_due(&c, 1));
    CHECK(!credcache_keep(&c, 1, 10));              /* refused values are never kept */
    credcache_fresh(&c, 0, INT64_MAX, 600);         /* no expiry */
    CHECK(!credcache_due(&c, INT64_MAX - 1));
    CHECK_EQ(c.fetches, 3);
    credcache_set_static(&c);
    CHECK(!credcache_due(&c, INT64_MAX - 1));
}
