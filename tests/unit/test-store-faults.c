/* Multipart calls of s3:// and gs:// under faults, driven by tests/integration/test-store-faults.sh,
 * which sets SNAPCTL_TEST_FAULTS="FAULTSERVER-URL STORE-URL...": retried statuses on a part, a 200
 * whose body is an <Error> document answering the complete (retried when its code says so,
 * refused with the code otherwise).  Without it only the control-rule helper is compiled. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "net/http.h"
#include "store/store.h"

#include <stdlib.h>

/* POST a JSON document to the faultserver's /_control. */
static int control(const char *base, const char *json)
{
    char u[512];
    snprintf(u, sizeof u, "%s/_control", base);
    struct url url;
    struct http_client *c;
    int err = url_parse(u, &url);
    if (err)
        return err;
    if ((err = http_client_new(NULL, &c)) == 0) {
        struct http_response rs;
        http_response_init(&rs);
        struct http_request rq = {.method = "POST", .url = &url, .body = json, .body_len = strlen(json)};
        err = http_do(c, &rq, &rs);
        http_response_free(&rs);
        http_client_free(c);
    }
    url_free(&url);
    return err;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

TEST(store_faults_complete_error200)
{
    const char *env = getenv("SNAPCTL_TEST_FAULTS");
    if (!env) {
        printf("    (store_faults: SNAPCTL_TEST_FAULTS not set; run tests/integration/test-store-faults.sh)\n");
        return;
    }
    char list[2048], *save;
    snprintf(list, sizeof list, "%s", env);
    const char *base = strtok_r(list, " ", &save);
    CHECK(base != NULL);
    size_t n = 65536 + 100;
    uint8_t *data = malloc(n), *back = malloc(n);
    fill(data, n, 7);
    for (const char *url = strtok_r(NULL, " ", &save); url; url = strtok_r(NULL, " ", &save)) {
        printf("    %s\n", url);
        struct store *s;
        CHECK_EQ(store_open(url, NULL, &s), 0);
        CHECK_EQ(control(base, "{\"clear\": true}"), 0);
        char *id = NULL;
        CHECK_EQ(store_mp_create(s, "ok.bin", NULL, &id), 0);
        /* A part answered 503 twice is retried. */
        CHECK_EQ(control(base, "{\"fault\": \"status=503,retry-after=0\", \"count\": 2, \"method\": \"PUT\", "
                               "\"match\": \"partNumber=1&\"}"), 0);
        struct store_part parts[2] = {{.number = 1}, {.number = 2}};
        CHECK_EQ(store_mp_part(s, "ok.bin", id, 1, data, 65536, NULL, NULL, parts[0].etag), 0);
        CHECK_EQ(store_mp_part(s, "ok.bin", id, 2, data + 65536, 100, NULL, NULL, parts[1].etag), 0);
        /* InternalError inside a 200 (after spaces, as S3 streams them): retried, then done. */
        CHECK_EQ(control(base, "{\"fault\": \"error200,ws=64\", \"count\": 1, \"method\": \"POST\", "
                               "\"match\": \"uploadId=\"}"), 0);
        char etag[STORE_ETAG_MAX];
        CHECK_EQ(store_mp_complete(s, "ok.bin", id, parts, 2, etag), 0);
        CHECK(strstr(etag, "-2") != NULL);
        snap_free(id);
        struct store_read_result res;
        CHECK_EQ(store_read(s, "ok.bin", 0, n, back, NULL, NULL, &res), 0);
        CHECK_EQ(res.bytes, n);
        CHECK_MEM(back, data, n);
        /* AccessDenied inside a 200: not retried, the code is in the message; abort cleans up. */
        CHECK_EQ(store_mp_create(s, "denied.bin", NULL, &id), 0);
        CHECK_EQ(store_mp_part(s, "denied.bin", id, 1, data, 100, NULL, NULL, parts[0].etag), 0);
        CHECK_EQ(control(base, "{\"fault\": \"error200=AccessDenied\", \"count\": 1, \"method\": \"POST\", "
                               "\"match\": \"uploadId=\"}"), 0);
        int e = store_mp_complete(s, "denied.bin", id, parts, 1, etag);
        CHECK(e != 0);
        CHECK(strstr(snap_errmsg(e), "answered 200 with an error: AccessDenied") != NULL);
        CHECK(strstr(snap_errmsg(e), "denied.bin") != NULL);
        CHECK_EQ(store_mp_abort(s, "denied.bin", id), 0);
        snap_free(id);
        struct store_info info;
        CHECK_ERR(store_stat(s, "denied.bin", &info), SNAP_ENOTFOUND, "denied.bin");
        store_close(s);
    }
    free(data);
    free(back);
}
