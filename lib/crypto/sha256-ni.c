/* sha256-ni.c -- the SHA-256 compression function on the x86 SHA extensions (SHA-NI).
 *
 * Design notes.  The SHA instructions keep the eight working variables in two registers in
 * an unusual order: sha256rnds2 wants {A,B,E,F} and {C,D,G,H} (highest lane first), so the
 * state is shuffled into that layout once per call and back at the end, never per block.
 * Each sha256rnds2 does two rounds with the two low lanes of W+K; the message schedule for
 * four words at a time is
 *     W[t..t+3] = msg2(msg1(W[t-16..t-13], W[t-12..t-9]) + W[t-7..t-4], W[t-4..t-1])
 * where msg1 adds sigma0, the add brings in W[t-7..] (an alignr of the two newest vectors),
 * and msg2 adds sigma1 (sequentially, as the words depend on each other).  Four vectors
 * m0..m3 hold the 16 newest words and rotate roles, so the 64 rounds are 16 groups of four.
 *
 * The functions carry their own target attribute: the rest of the build needs no -msha, and
 * the caller checks cpuid before getting here (sha256_ni_supported).
 */
#include "crypto/sha256-ni.h"

#if defined(__x86_64__)

#include <cpuid.h>
#include <immintrin.h>

bool sha256_ni_supported(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return false;
    bool sse41 = c & (1u << 19), ssse3 = c & (1u << 9);
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return false;
    bool sha = b & (1u << 29);
    return sha && sse41 && ssse3;
}

static const uint32_t sha256_ni_k[64] __attribute__((aligned(16))) = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* Four rounds (group g) with the message vector w. */
#define NI_ROUNDS4(w, g)                                                                          \
    do {                                                                                          \
        __m128i wk_ = _mm_add_epi32((w), _mm_load_si128((const __m128i *)&sha256_ni_k[4 * (g)])); \
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk_);                                            \
        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk_, 0x0e));                   \
    } while (0)

/* Replace the oldest words m0 with the next four of the schedule. */
#define NI_SCHEDULE(m0, m1, m2, m3) \
    (m0 = _mm_sha256msg2_epu32(     \
         _mm_add_epi32(_mm_sha256msg1_epu32(m0, m1), _mm_alignr_epi8(m3, m2, 4)), m3))

__attribute__((target("sha,sse4.1,ssse3")))
void sha256_ni_blocks(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
    /* Big-endian message words to host lanes. */
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);

    /* h[0..3] = a,b,c,d and h[4..7] = e,f,g,h (lane 0 first) into {a,b,e,f} / {c,d,g,h}. */
    __m128i dcba = _mm_loadu_si128((const __m128i *)&h[0]);
    __m128i hgfe = _mm_loadu_si128((const __m128i *)&h[4]);
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xb1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1b);
    __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
    __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xf0);

    for (; nblocks > 0; nblocks--, p += 64) {
        __m128i abef0 = abef, cdgh0 = cdgh;
        __m128i m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 0)), bswap);
        __m128i m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), bswap);
        __m128i m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), bswap);
        __m128i m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), bswap);

        NI_ROUNDS4(m0, 0);
        NI_ROUNDS4(m1, 1);
        NI_ROUNDS4(m2, 2);
        NI_ROUNDS4(m3, 3);
        for (int g = 4; g < 16; g += 4) {
            NI_SCHEDULE(m0, m1, m2, m3);
            NI_ROUNDS4(m0, g);
            NI_SCHEDULE(m1, m2, m3, m0);
            NI_ROUNDS4(m1, g + 1);
            NI_SCHEDULE(m2, m3, m0, m1);
            NI_ROUNDS4(m2, g + 2);
            NI_SCHEDULE(m3, m0, m1, m2);
            NI_ROUNDS4(m3, g + 3);
        }

        abef = _mm_add_epi32(abef, abef0);
        cdgh = _mm_add_epi32(cdgh, cdgh0);
    }

    /* Back to a..h in lane order. */
    __m128i feba = _mm_shuffle_epi32(abef, 0x1b);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xb1);
    _mm_storeu_si128((__m128i *)&h[0], _mm_blend_epi16(feba, dchg, 0xf0));
    _mm_storeu_si128((__m128i *)&h[4], _mm_alignr_epi8(dchg, feba, 8));
}

#else /* not x86-64: the generic implementation is the only one */

bool sha256_ni_supported(void)
{
    return false;
}

void sha256_ni_blocks(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
    (void)h, (void)p, (void)nblocks;
    __builtin_trap();
}

#endif
