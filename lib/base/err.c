/* err.c -- error messages, exit codes and the per-thread failure detail. */
#include "base/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *msg;
    int exit;
} err_table[SNAP_ERR__COUNT] = {
    [SNAP_OK] = {"success", SNAP_EXIT_OK},
    [SNAP_EUSAGE] = {"invalid usage", SNAP_EXIT_USAGE},
    [SNAP_ENOMEM] = {"out of memory", SNAP_EXIT_FAIL},
    [SNAP_EIO] = {"I/O error", SNAP_EXIT_IO},
    [SNAP_EFORMAT] = {"malformed data", SNAP_EXIT_DATA},
    [SNAP_ERANGE] = {"value out of range", SNAP_EXIT_DATA},
    [SNAP_ENOTFOUND] = {"not found", SNAP_EXIT_NOTFOUND},
    [SNAP_ENET] = {"network error", SNAP_EXIT_IO},
    [SNAP_ETIMEOUT] = {"timed out", SNAP_EXIT_IO},
    [SNAP_EPROTO] = {"protocol error", SNAP_EXIT_IO},
    [SNAP_EHTTP] = {"unexpected HTTP status", SNAP_EXIT_IO},
    [SNAP_EAUTH] = {"permission denied", SNAP_EXIT_AUTH},
    [SNAP_ETLS] = {"TLS error", SNAP_EXIT_AUTH},
    [SNAP_EHASH] = {"checksum mismatch", SNAP_EXIT_VERIFY},
    [SNAP_ETOOBIG] = {"size limit exceeded", SNAP_EXIT_TOOBIG},
    [SNAP_ESHORT] = {"data ended early", SNAP_EXIT_IO},
    [SNAP_ENOSPC] = {"no space left on device", SNAP_EXIT_NOSPC},
    [SNAP_EINTR] = {"interrupted", SNAP_EXIT_INTR},
    [SNAP_ENOTSUP] = {"not supported", SNAP_EXIT_USAGE},
    [SNAP_EEXIST] = {"already exists", SNAP_EXIT_FAIL},
    [SNAP_ECANCELED] = {"canceled", SNAP_EXIT_FAIL},
    [SNAP_ECHECK] = {"consistency check failed", SNAP_EXIT_DATA},
    [SNAP_EINTERNAL] = {"internal error", SNAP_EXIT_FAIL},
    [SNAP_EAGAIN] = {"would wait", SNAP_EXIT_FAIL},
};

static _Thread_local char err_detail[1024];

const char *snap_strerror(int err)
{
    if (err < 0 || err >= SNAP_ERR__COUNT || !err_table[err].msg)
        return "unknown error";
    return err_table[err].msg;
}

int snap_exit_code(int err)
{
    if (err < 0 || err >= SNAP_ERR__COUNT)
        return SNAP_EXIT_FAIL;
    return err_table[err].exit;
}

int snap_err_from_errno(int e)
{
    switch (e) {
    case 0: return SNAP_OK;
    case ENOENT: case ENOTDIR: return SNAP_ENOTFOUND;
    case ENOMEM: return SNAP_ENOMEM;
    case ENOSPC: case EDQUOT: return SNAP_ENOSPC;
    case EACCES: case EPERM: case EROFS: return SNAP_EAUTH;
    case EEXIST: return SNAP_EEXIST;
    case EINTR: return SNAP_EINTR;
    case ETIMEDOUT: return SNAP_ETIMEOUT;
    case EINVAL: return SNAP_EUSAGE;
    case EFBIG: case EOVERFLOW: return SNAP_ETOOBIG;
    case ECONNREFUSED: case ECONNRESET: case EPIPE: case ENETUNREACH: case EHOSTUNREACH:
    case ECONNABORTED: case ENOTCONN: return SNAP_ENET;
    case ENOTSUP: return SNAP_ENOTSUP;
    case ECANCELED: return SNAP_ECANCELED;
    default: return SNAP_EIO;
    }
}

int snap_vfail(int err, const char *fmt, va_list ap)
{
    vsnprintf(err_detail, sizeof err_detail, fmt, ap);
    return err;
}

int snap_fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    snap_vfail(err, fmt, ap);
    va_end(ap);
    return err;
}

int snap_fail_errno(const char *fmt, ...)
{
    int e = errno;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_detail, sizeof err_detail, fmt, ap);
    va_end(ap);
    size_t n = strlen(err_detail);
    snprintf(err_detail + n, sizeof err_detail - n, ": %s", strerror(e));
    errno = e;
    return snap_err_from_errno(e);
}

int snap_fail_ctx(int err, const char *fmt, ...)
{
    /* New detail = "prefix: old detail", truncated to the buffer. */
    char old[sizeof err_detail];
    const char *cur = err_detail[0] ? err_detail : snap_strerror(err);
    size_t n = strlen(cur);
    memcpy(old, cur, n + 1);
    va_list ap;
    va_start(ap, fmt);
    int p = vsnprintf(err_detail, sizeof err_detail, fmt, ap);
    va_end(ap);
    if (p < 0 || (size_t)p + 3 >= sizeof err_detail)
        return err;
    size_t room = sizeof err_detail - (size_t)p - 3;
    if (n > room)
        n = room;
    memcpy(err_detail + p, ": ", 2);
    memcpy(err_detail + p + 2, old, n);
    err_detail[(size_t)p + 2 + n] = '\0';
    return err;
}

const char *snap_errmsg(int err)
{
    return err_detail[0] ? err_detail : snap_strerror(err);
}

void snap_errclear(void)
{
    err_detail[0] = '\0';
}
