/* util.h -- UUIDs, sizes with suffixes, hex, and small string helpers. */
#ifndef SNAP_UTIL_H
#define SNAP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t b[16];
} snap_uuid;

#define SNAP_UUID_STRLEN 36
/* Parse the 36-character textual form (any case); 0 or SNAP_EFORMAT. */
int snap_uuid_parse(const char *s, snap_uuid *out);
/* Write the lower-case textual form and a NUL into out[37]. */
void snap_uuid_format(const snap_uuid *u, char out[SNAP_UUID_STRLEN + 1]);
bool snap_uuid_is_zero(const snap_uuid *u);
int snap_uuid_cmp(const snap_uuid *a, const snap_uuid *b);
/* A random version-4 UUID from getrandom(2). */
int snap_uuid_random(snap_uuid *out);

/* "4096", "4K", "4KiB", "1.5G"? no: integers only; K/M/G/T = KiB.. and KB/MB = powers of 10.
 * Returns 0 or SNAP_EUSAGE with a message naming `what`. */
int snap_parse_size(const char *s, uint64_t *out, const char *what);
/* Parse a decimal or 0x-hex u64; 0 or SNAP_EUSAGE. */
int snap_parse_u64(const char *s, uint64_t *out, const char *what);
/* "1.5 GiB" style, into buf. */
const char *snap_fmt_size(uint64_t n, char *buf, size_t len);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void snap_hex(const uint8_t *in, size_t n, char *out);
/* Parse exactly 2n hex digits; 0 or SNAP_EFORMAT. */
int snap_unhex(const char *s, uint8_t *out, size_t n);

static inline uint64_t snap_round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
static inline uint64_t snap_min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static inline uint64_t snap_max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

#endif
