/* Fuzz the HTTP request-head parser and the Range parser. */
#include "net/httpd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HTTPD_HEAD_MAX)
        return 0;
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    struct httpd_req r;
    if (httpd_parse_head(buf, size, &r) == 0) {
        /* Everything the parser hands out is NUL-terminated and inside buf. */
        if (strlen(r.target) == 0 || r.nh > HTTPD_MAX_HEADERS)
            abort();
        const char *range = httpd_header(&r, "range");
        uint64_t off, len;
        if (range && httpd_parse_range(range, 1000, &off, &len) == 0 && (len == 0 || off + len > 1000))
            abort();
    }
    /* The Range parser on raw input too. */
    memcpy(buf, data, size);
    buf[size] = '\0';
    uint64_t off, len, total = size * 37u;
    if (httpd_parse_range(buf, total, &off, &len) == 0 && (len == 0 || off + len > total))
        abort();
    free(buf);
    return 0;
}
