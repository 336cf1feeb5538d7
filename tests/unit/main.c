/* main.c -- runs the registered unit tests: `unit-tests [SUBSTRING ...]` runs those whose
 * name contains any SUBSTRING (all without arguments).  Ends with "unit: N passed, N failed". */
#include "test.h"

#include "base/err.h"

#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_TESTS 4096
static const struct test_case *tests[MAX_TESTS];
static int ntests;
static int cur_failed;
static char tmpdir[256];

void test_register(const struct test_case *tc)
{
    if (ntests < MAX_TESTS)
        tests[ntests++] = tc;
}

void test_failed(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cur_failed = 1;
}

const char *test_tmpdir(void)
{
    return tmpdir;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const struct test_case *const *)a)->name, (*(const struct test_case *const *)b)->name);
}

static int selected(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i]))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/snapctl-unit-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    qsort(tests, (size_t)ntests, sizeof tests[0], by_name);
    int passed = 0, failed = 0;
    for (int i = 0; i < ntests; i++) {
        if (!selected(tests[i]->name, argc, argv))
            continue;
        cur_failed = 0;
        snap_errclear();
        tests[i]->fn();
        if (cur_failed) {
            printf("FAIL %s\n", tests[i]->name);
            failed++;
        } else {
            printf("ok   %s\n", tests[i]->name);
            passed++;
        }
        fflush(stdout);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
