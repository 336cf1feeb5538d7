/* test.h -- the unit-test harness: TEST(name) registers a test, CHECK* record a failure and
 * return from the test function.  tests/unit/main.c runs them and prints "N passed, N failed". */
#ifndef SNAP_TEST_H
#define SNAP_TEST_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct test_case {
    const char *name;
    void (*fn)(void);
};
void test_register(const struct test_case *tc);
void test_failed(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Directory for scratch files, made fresh for the run. */
const char *test_tmpdir(void);

#define TEST(name)                                                          \
    static void test_##name(void);                                          \
    static const struct test_case tc_##name = {#name, test_##name};         \
    __attribute__((constructor)) static void test_reg_##name(void)          \
    {                                                                       \
        test_register(&tc_##name);                                          \
    }                                                                       \
    static void test_##name(void)

#define CHECK(c)                                                            \
    do {                                                                    \
        if (!(c)) {                                                         \
            test_failed(__FILE__, __LINE__, "CHECK(%s)", #c);               \
            return;                                                         \
        }                                                                   \
    } while (0)

#define CHECK_EQ(a, b)                                                      \
    do {                                                                    \
        uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                    \
        if (a_ != b_) {                                                     \
            test_failed(__FILE__, __LINE__, "%s == %s: %" PRIu64 " != %" PRIu64, #a, #b, a_, b_); \
            return;                                                         \
        }                                                                   \
    } while (0)

#define CHECK_STR(a, b)                                                     \
    do {                                                                    \
        const char *a_ = (a), *b_ = (b);                                    \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                            \
            test_failed(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, \
                        a_ ? a_ : "(null)", b_ ? b_ : "(null)");            \
            return;                                                         \
        }                                                                   \
    } while (0)

#define CHECK_MEM(a, b, n)                                                  \
    do {                                                                    \
        if (memcmp((a), (b), (n)) != 0) {                                   \
            test_failed(__FILE__, __LINE__, "memcmp(%s, %s, %s) != 0", #a, #b, #n); \
            return;                                                         \
        }                                                                   \
    } while (0)

/* CHECK_ERR(expr, SNAP_EFORMAT, "substring"): expr returns that code and the message says so. */
#define CHECK_ERR(expr, code, substr)                                       \
    do {                                                                    \
        snap_errclear();                                                    \
        int e_ = (expr);                                                    \
        if (e_ != (code)) {                                                 \
            test_failed(__FILE__, __LINE__, "%s returned %d (%s), expected %s", #expr, e_, \
                        snap_errmsg(e_), #code);                            \
            return;                                                         \
        }                                                                   \
        if ((substr) && !strstr(snap_errmsg(e_), (substr))) {               \
            test_failed(__FILE__, __LINE__, "%s: message \"%s\" lacks \"%s\"", #expr, \
                        snap_errmsg(e_), (const char *)(substr));           \
            return;                                                         \
        }                                                                   \
    } while (0)

#endif
