/* err.h -- snapctl's one error enum, its messages and exit codes.
 *
 * Functions in lib/ return 0 on success or a positive snap_err.  The detail of *this*
 * failure (what, on which object) goes into a per-thread message with snap_fail(), which
 * returns the code so a failing spot reads `return snap_fail(SNAP_EFORMAT, "...", ...);`.
 * cmd/ prints snap_errmsg() and exits with snap_exit_code().
 *
 * The enum is append-only: values are stored in logs and scripts read the exit codes.
 */
#ifndef SNAP_ERR_H
#define SNAP_ERR_H

#include <stdarg.h>

enum snap_err {
    SNAP_OK = 0,        /*  0 */
    SNAP_EUSAGE,        /*  1 invalid command-line usage */
    SNAP_ENOMEM,        /*  2 out of memory */
    SNAP_EIO,           /*  3 local I/O error */
    SNAP_EFORMAT,       /*  4 malformed input data */
    SNAP_ERANGE,        /*  5 value out of range */
    SNAP_ENOTFOUND,     /*  6 object or file not found */
    SNAP_ENET,          /*  7 network error */
    SNAP_ETIMEOUT,      /*  8 timed out */
    SNAP_EPROTO,        /*  9 protocol violation by the peer */
    SNAP_EHTTP,         /* 10 unexpected HTTP status */
    SNAP_EAUTH,         /* 11 authentication or permission denied */
    SNAP_ETLS,          /* 12 TLS failure (handshake, certificate) */
    SNAP_EHASH,         /* 13 checksum mismatch */
    SNAP_ETOOBIG,       /* 14 size limit exceeded */
    SNAP_ESHORT,        /* 15 data ended early */
    SNAP_ENOSPC,        /* 16 no space left on device */
    SNAP_EINTR,         /* 17 interrupted by a signal */
    SNAP_ENOTSUP,       /* 18 not supported */
    SNAP_EEXIST,        /* 19 already exists */
    SNAP_ECANCELED,     /* 20 operation canceled */
    SNAP_ECHECK,        /* 21 consistency check failed */
    SNAP_EINTERNAL,     /* 22 internal error (a bug) */
    SNAP_EAGAIN,        /* 23 would wait: retry where waiting is allowed (no message is set) */
    SNAP_ERR__COUNT
};

/* Exit codes of the CLI (documented in docs/snapctl.1). */
enum snap_exit {
    SNAP_EXIT_OK = 0,
    SNAP_EXIT_FAIL = 1,      /* general failure */
    SNAP_EXIT_USAGE = 2,     /* bad usage: unknown applet or option, bad argument */
    SNAP_EXIT_DATA = 3,      /* malformed or inconsistent input data */
    SNAP_EXIT_NOTFOUND = 4,  /* object or file not found */
    SNAP_EXIT_IO = 5,        /* I/O, network or storage error */
    SNAP_EXIT_VERIFY = 6,    /* checksum verification failed */
    SNAP_EXIT_TOOBIG = 7,    /* size limit exceeded */
    SNAP_EXIT_AUTH = 8,      /* authentication, permission or certificate refused */
    SNAP_EXIT_NOSPC = 9,     /* no space left on device */
    SNAP_EXIT_INTR = 130     /* interrupted by SIGINT/SIGTERM */
};

/* A short fixed message for a code ("malformed input data"); never NULL. */
const char *snap_strerror(int err);
/* The exit code the CLI uses for a code. */
int snap_exit_code(int err);
/* The snap_err for an errno value (ENOENT -> SNAP_ENOTFOUND, ENOSPC -> SNAP_ENOSPC ...). */
int snap_err_from_errno(int e);

/* Record the detail of this thread's last failure and return err. */
int snap_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int snap_vfail(int err, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Like snap_fail, appending ": strerror(errno)"; the code is derived from errno. */
int snap_fail_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefix the current detail with "prefix: " (adding context on the way up); returns err. */
int snap_fail_ctx(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* This thread's last detail, or snap_strerror(err) when none was recorded. */
const char *snap_errmsg(int err);
void snap_errclear(void);

#endif
