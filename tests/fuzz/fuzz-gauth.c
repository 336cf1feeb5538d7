/* fuzz-gauth.c -- libFuzzer target for the OAuth2 token answers gs:// reads (lib/store/gauth.c
 * gauth_parse_token, on top of jsonr): any input is accepted or refused cleanly, and an accepted
 * token fits its buffer, is visible ASCII (safe in a header), and has a lifetime in 1..86400. */
#include "base/err.h"
#include "store/gauth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t caps[] = {2, 16, GAUTH_TOKEN_MAX};
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        char tok[GAUTH_TOKEN_MAX + 1];
        memset(tok, 'Z', sizeof tok);
        int64_t ttl = -1;
        int err = gauth_parse_token(data, size, tok, caps[c], &ttl);
        if (err) {
            if (err != SNAP_EFORMAT && err != SNAP_EAUTH && err != SNAP_ETOOBIG && err != SNAP_ENOTFOUND &&
                err != SNAP_ENOMEM)
                abort();
            if (tok[0] != 'Z')
                abort(); /* nothing written on failure */
            continue;
        }
        size_t n = strnlen(tok, caps[c]);
        if (n == 0 || n >= caps[c] || ttl < 1 || ttl > 86400)
            abort();
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)tok[i] < 0x21 || (unsigned char)tok[i] > 0x7e)
                abort();
    }
    return 0;
}
