/* bench-run.c -- running the named peers of the benchmarks (see bench-run.h). */
#include "bench/bench-run.h"

#include "base/err.h"
#include "base/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

int bench_which(const char *what, const char *prog, char *out, size_t cap)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *end = strchrnul(p, ':');
        int n = (int)(end - p);
        if ((size_t)snprintf(out, cap, "%.*s/%s", n ? n : 1, n ? p : ".", prog) < cap && access(out, X_OK) == 0)
            return 0;
        if (!*end)
            break;
        p = end + 1;
    }
    return snap_fail(SNAP_ENOTFOUND, "%s: peer program '%s' not found in PATH; install it: the comparison "
                                     "is the point of this benchmark", what, prog);
}

int bench_run_capture(const char *label, char *const argv[], double *secs, char *out, size_t cap, int *exit_code)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return snap_fail_errno("%s: pipe", label);
    uint64_t t0 = snap_now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]), close(pfd[1]);
        return snap_fail_errno("%s: fork", label);
    }
    if (pid == 0) {
        sigset_t none; /* the applet blocks SIGINT/SIGTERM for its signal thread: not the child */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(pfd[1], STDOUT_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t len = 0;
    char drop[4096];
    for (;;) {
        char *dst = len + 1 < cap ? out + len : drop;
        size_t room = len + 1 < cap ? cap - 1 - len : sizeof drop;
        ssize_t n = read(pfd[0], dst, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (dst != drop)
            len += (size_t)n;
    }
    if (cap)
        out[len] = '\0';
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return snap_fail_errno("%s: waitpid %s", label, argv[0]);
    *secs = (double)(snap_now_ns() - t0) / 1e9;
    if (exit_code)
        *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return snap_fail(SNAP_EIO, "%s: %s failed (%s %d)", label, argv[0], WIFEXITED(st) ? "exit" : "signal",
                         WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return 0;
}

int bench_parse_digest(const char *s, char hex[65])
{
    for (const char *p = s; *p;) {
        size_t n = strspn(p, "0123456789abcdef");
        if (n == 64) {
            memcpy(hex, p, 64);
            hex[64] = '\0';
            return 0;
        }
        p += n ? n : 1;
    }
    return -1;
}

uint64_t bench_peak_rss(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_maxrss * 1024;
}

uint64_t bench_xorshift64(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_sort(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
}

double bench_percentile(const double *sorted, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

double bench_median(const double *v, int n)
{
    double s[BENCH_MAX_RUNS];
    memcpy(s, v, (size_t)n * sizeof *v);
    bench_sort(s, (size_t)n);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

double bench_median_secs(const double *v, int n)
{
    double m = bench_median(v, n);
    return m < 1e-9 ? 1e-9 : m;
}
