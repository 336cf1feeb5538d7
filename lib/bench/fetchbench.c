/* fetchbench.c -- snapctl fetch against curl pipelines, on one URL (see fetchbench.h). */
#include "bench/fetchbench.h"

#include "base/err.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const fetchbench_names[FETCHBENCH_N] = {
    [FETCHBENCH_FETCH] = "snapctl fetch (to the cache, fsync'd)",
    [FETCHBENCH_OPENSSL] = "curl -s URL | openssl dgst -sha256",
    [FETCHBENCH_SHA256SUM] = "curl -s URL | sha256sum",
    [FETCHBENCH_CURL] = "curl -s -o /dev/null URL",
};

bool fetchbench_hex_ok(const char *hex)
{
    uint8_t bin[32];
    return strlen(hex) == 64 && !snap_unhex(hex, bin, 32) && strspn(hex, "0123456789abcdef") == 64;
}

void fetchbench_pipes(struct fetchbench *b)
{
    size_t cap = sizeof b->pipe[0];
    b->pipe[FETCHBENCH_FETCH][0] = '\0';
    snprintf(b->pipe[FETCHBENCH_OPENSSL], cap, "'%s' -s -f -- \"$1\" | '%s' dgst -sha256", b->curl, b->openssl);
    snprintf(b->pipe[FETCHBENCH_SHA256SUM], cap, "'%s' -s -f -- \"$1\" | '%s'", b->curl, b->sha256sum);
    snprintf(b->pipe[FETCHBENCH_CURL], cap, "'%s' -s -f -o /dev/null -- \"$1\"", b->curl);
}

/* snapctl fetch's run: the cached file's size taken, the file removed (the next run misses). */
static int fetchbench_self(struct fetchbench *b, const char *dir, double *secs)
{
    char out[PATH_MAX + 256];
    char *argv[] = {b->self, "fetch", (char *)b->url, "--sha256", (char *)b->hex, "--cache-dir", (char *)dir,
                    "--quiet", NULL};
    int code = 0;
    int err = bench_run_capture("bench fetch", argv, secs, out, sizeof out, &code);
    if (err && code == SNAP_EXIT_VERIFY) /* fetch said why on stderr */
        return snap_fail(SNAP_EHASH, "bench fetch: snapctl fetch found a different SHA-256 than --sha256");
    if (err)
        return err;
    out[strcspn(out, "\n")] = '\0';
    struct stat st;
    if (stat(out, &st) < 0)
        return snap_fail_errno("bench fetch: the fetched file '%s'", out);
    b->size = (uint64_t)st.st_size;
    if (unlink(out) < 0)
        return snap_fail_errno("bench fetch: removing %s", out);
    return 0;
}

/* One timed run of contender i. */
static int fetchbench_one(struct fetchbench *b, const char *dir, int i, double *secs)
{
    if (i == FETCHBENCH_FETCH)
        return fetchbench_self(b, dir, secs);
    char out[PATH_MAX + 256], hex[65];
    char *sh_argv[] = {b->sh, "-c", b->pipe[i], "sh", (char *)b->url, NULL};
    int err = bench_run_capture("bench fetch", sh_argv, secs, out, sizeof out, NULL);
    if (err || i == FETCHBENCH_CURL)
        return err;
    if (bench_parse_digest(out, hex) != 0)
        return snap_fail(SNAP_EPROTO, "bench fetch: no digest in the output of '%s': \"%.100s\"", b->pipe[i], out);
    if (strcmp(hex, b->hex) != 0)
        return snap_fail(SNAP_EHASH, "bench fetch: '%s' gave %s, expected %s", b->pipe[i], hex, b->hex);
    return 0;
}

/* This binary and the peers, found in $PATH. */
static int fetchbench_find(struct fetchbench *b)
{
    ssize_t n = readlink("/proc/self/exe", b->self, sizeof b->self - 1);
    if (n <= 0)
        return snap_fail_errno("bench fetch: /proc/self/exe");
    b->self[n] = '\0';
    int err;
    if ((err = bench_which("fetch", "curl", b->curl, sizeof b->curl)) ||
        (err = bench_which("fetch", "openssl", b->openssl, sizeof b->openssl)) ||
        (err = bench_which("fetch", "sha256sum", b->sha256sum, sizeof b->sha256sum)) ||
        (err = bench_which("fetch", "sh", b->sh, sizeof b->sh)))
        return err;
    fetchbench_pipes(b);
    return 0;
}

int fetchbench_run(struct fetchbench *b)
{
    int err = fetchbench_find(b);
    if (err)
        return err;
    char tmpdir[PATH_MAX] = "";
    const char *dir = b->dir;
    if (!dir) {
        const char *t = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(tmpdir, sizeof tmpdir, "%s/snapctl-bench-fetch.XXXXXX", t);
        if (!mkdtemp(tmpdir))
            return snap_fail_errno("bench fetch: a cache directory in %s", t);
        dir = tmpdir;
    }
    double warm;
    err = fetchbench_one(b, dir, FETCHBENCH_CURL, &warm); /* the server's page cache */
    for (int r = 0; !err && r < b->runs; r++)
        for (int i = 0; !err && i < FETCHBENCH_N; i++)
            err = fetchbench_one(b, dir, i, &b->secs[i][r]);
    if (tmpdir[0])
        rmdir(tmpdir);
    for (int i = 0; !err && i < FETCHBENCH_N; i++)
        b->median[i] = bench_median_secs(b->secs[i], b->runs);
    return err;
}
