/* fuzz-awscreds.c -- libFuzzer target for the outside bytes AWS credentials come in
 * (lib/store/awscreds_parse.c): the shared INI files, STS XML answers, the JSON of IMDS, the
 * container endpoint and credential_process, and ISO 8601 times.  The first byte picks the
 * parser; any input is accepted or refused cleanly, and accepted credentials fit their buffers
 * and are visible ASCII (safe in a header and a signature). */
#include "base/err.h"
#include "store/awscreds.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_val(const struct awscreds_val *v)
{
    const char *f[] = {v->ak, v->sk, v->token};
    size_t cap[] = {sizeof v->ak, sizeof v->sk, sizeof v->token};
    for (int i = 0; i < 3; i++) {
        size_t n = strnlen(f[i], cap[i]);
        if (n >= cap[i] || (i < 2 && n == 0))
            abort();
        for (size_t j = 0; j < n; j++)
            if ((unsigned char)f[i][j] < 0x21 || (unsigned char)f[i][j] > 0x7e)
                abort();
    }
    if (v->expires < 0)
        abort();
}

static void check_err(int err)
{
    if (err != SNAP_EFORMAT && err != SNAP_EAUTH && err != SNAP_ETOOBIG && err != SNAP_ENOTFOUND && err != SNAP_ENOMEM)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0] % 4;
    data++, size--;
    struct awscreds_val v;
    int err;
    switch (sel) {
    case 0: {
        static const char *const sections[] = {"default", "profile dev", "dev"};
        static const char *const keys[] = {"aws_access_key_id", "role_arn", "region"};
        char out[32];
        for (int s = 0; s < 3; s++)
            for (int k = 0; k < 3; k++) {
                memset(out, 'Z', sizeof out);
                err = awscreds_ini_get((const char *)data, size, sections[s], keys[k], out, sizeof out);
                if (err) {
                    check_err(err);
                } else if (strnlen(out, sizeof out) >= sizeof out) {
                    abort();
                }
            }
        (void)awscreds_ini_has((const char *)data, size, "profile dev");
        break;
    }
    case 1:
        if ((err = awscreds_parse_sts(data, size, &v)) != 0)
            check_err(err);
        else
            check_val(&v);
        break;
    case 2:
        if ((err = awscreds_parse_json(data, size, &v)) != 0)
            check_err(err);
        else
            check_val(&v);
        break;
    default: {
        char s[64];
        size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
        memcpy(s, data, n);
        s[n] = '\0';
        (void)awscreds_parse_time(s);
        break;
    }
    }
    return 0;
}
