/* shabench.c -- the SHA-256 benchmark's contenders, test file and runs (see shabench.h). */
#include "bench/shabench.h"

#include "base/cancel.h"
#include "base/err.h"
#include "base/io.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define SHABENCH_BUF (256u << 10)

int shabench_init(struct shabench_contender c[SHABENCH_NCONT])
{
    memset(c, 0, sizeof *c * SHABENCH_NCONT);
    c[SHABENCH_NI] = (struct shabench_contender){.name = "snapctl sha-ni", .available = sha256_have_shani()};
    c[SHABENCH_GENERIC] = (struct shabench_contender){.name = "snapctl generic", .available = true};
    c[SHABENCH_SHA256SUM] =
        (struct shabench_contender){.name = "sha256sum", .peer = "sha256sum", .available = true};
    c[SHABENCH_OPENSSL] =
        (struct shabench_contender){.name = "openssl dgst -sha256", .peer = "openssl", .available = true};
    for (int i = SHABENCH_SHA256SUM; i < SHABENCH_NCONT; i++) {
        int err = bench_which("sha256", c[i].peer, c[i].path, sizeof c[i].path);
        if (err)
            return err;
    }
    return 0;
}

int shabench_make_file(const char *dir, uint64_t size, struct snap_cancel *cancel, char *path, size_t cap)
{
    struct statvfs vfs;
    path[0] = '\0';
    if (statvfs(dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < size + (64u << 20)) {
        char have[32], need[32];
        return snap_fail(SNAP_ENOSPC, "%s has %s free, the test file needs %s (use --dir or --size)", dir,
                         snap_fmt_size((uint64_t)vfs.f_bavail * vfs.f_frsize, have, sizeof have),
                         snap_fmt_size(size, need, sizeof need));
    }
    if ((size_t)snprintf(path, cap, "%s/snapctl-bench-sha256.XXXXXX", dir) >= cap) {
        path[0] = '\0';
        return snap_fail(SNAP_EUSAGE, "--dir %s: path too long", dir);
    }
    int fd = mkstemp(path);
    if (fd < 0) {
        path[0] = '\0';
        return snap_fail_errno("creating a test file in %s", dir);
    }
    if (cancel)
        snap_cancel_track(cancel, path);
    static uint64_t buf[SHABENCH_BUF / 8];
    uint64_t s = 0x9e3779b97f4a7c15ull;
    int err = 0;
    for (uint64_t done = 0; !err && done < size; done += SHABENCH_BUF) {
        for (size_t i = 0; i < SHABENCH_BUF / 8; i++)
            buf[i] = bench_xorshift64(&s);
        err = snap_write_full(fd, buf, snap_min_u64(SHABENCH_BUF, size - done), path);
    }
    close(fd);
    return err;
}

int shabench_self(const char *file, enum sha256_impl impl, double *secs, char hex[65])
{
    static uint8_t buf[SHABENCH_BUF];
    uint64_t t0 = snap_now_ns();
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return snap_fail_errno("%s", file);
    struct sha256_ctx c;
    int err = sha256_init_impl(&c, impl);
    while (!err) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = snap_fail_errno("reading %s", file);
        if (n <= 0)
            break;
        sha256_update(&c, buf, (size_t)n);
    }
    close(fd);
    if (err)
        return err;
    uint8_t d[SHA256_DIGEST_LEN];
    sha256_final(&c, d);
    *secs = (double)(snap_now_ns() - t0) / 1e9;
    snap_hex(d, sizeof d, hex);
    return 0;
}

/* A peer's run: its digest parsed from stdout. */
static int shabench_child(char *const argv[], double *secs, char hex[65])
{
    char out[4096];
    int err = bench_run_capture("sha256", argv, secs, out, sizeof out, NULL);
    if (!err && bench_parse_digest(out, hex) != 0)
        err = snap_fail(SNAP_EPROTO, "no digest in the output of %s: \"%.100s\"", argv[0], out);
    return err;
}

int shabench_agree(char digest[65], const char *hex, const char *who, int run)
{
    if (!digest[0]) {
        memcpy(digest, hex, 65);
        return 0;
    }
    if (strcmp(digest, hex) != 0)
        return snap_fail(SNAP_EHASH, "%s gave %s, earlier results %s (run %d)", who, hex, digest, run);
    return 0;
}

void shabench_medians(struct shabench_contender c[SHABENCH_NCONT], int runs)
{
    for (int i = 0; i < SHABENCH_NCONT; i++) {
        if (!c[i].available)
            continue;
        c[i].median = bench_median_secs(c[i].secs, runs);
    }
}

int shabench_measure(struct shabench_contender c[SHABENCH_NCONT], const char *file, int runs, char digest[65])
{
    char *const sum_argv[] = {c[SHABENCH_SHA256SUM].path, (char *)file, NULL};
    char *const ossl_argv[] = {c[SHABENCH_OPENSSL].path, "dgst", "-sha256", (char *)file, NULL};
    digest[0] = '\0';
    for (int r = 0; r < runs; r++) {
        for (int i = 0; i < SHABENCH_NCONT; i++) {
            char hex[65];
            double *t = &c[i].secs[r];
            int err = 0;
            if (!c[i].available)
                continue;
            switch (i) {
            case SHABENCH_NI: err = shabench_self(file, SHA256_IMPL_SHANI, t, hex); break;
            case SHABENCH_GENERIC: err = shabench_self(file, SHA256_IMPL_GENERIC, t, hex); break;
            case SHABENCH_SHA256SUM: err = shabench_child(sum_argv, t, hex); break;
            default: err = shabench_child(ossl_argv, t, hex); break;
            }
            if (!err)
                err = shabench_agree(digest, hex, c[i].name, r + 1);
            if (err)
                return err;
        }
    }
    shabench_medians(c, runs);
    return 0;
}
