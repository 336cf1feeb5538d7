/* cancel.h -- SIGINT and SIGTERM, one way for every applet: a token that lib/ operations poll.
 *
 * snap_cancel_start() blocks SIGINT and SIGTERM (and SIGUSR1, when asked) in the calling thread
 * -- call it before any other thread starts, so every thread inherits the mask -- and starts one
 * thread that takes them with sigwait.  Nothing runs in a signal handler, so what a signal does
 * never depends on which thread the kernel picked, on async-signal safety, or on a sanitizer that
 * holds handlers back until a thread leaves a blocking call.
 *
 * The first SIGINT/SIGTERM sets the token (snap_cancelled() turns true) and calls the applet's
 * hook on the signal thread; lib/ operations given the token stop at their next check and return
 * SNAP_EINTR.  Then, by grace_ms: -1 waits (the operation winds down by itself), 0 ends the
 * process at once, N ends it after N ms if it is still running.  A second SIGINT/SIGTERM always
 * ends it at once.  Ending removes the files registered with snap_cancel_track (a temp file that
 * must not survive) and exits SNAP_EXIT_INTR (130).  SIGUSR1 only calls the hook.
 *
 *   static struct snap_cancel cancel = {.grace_ms = -1};
 *   snap_cancel_start(&cancel);          // first thing, before threads
 *   opts.cancel = &cancel;               // lib checks snap_cancelled(opts.cancel)
 */
#ifndef SNAP_CANCEL_H
#define SNAP_CANCEL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define SNAP_CANCEL_TRACK 4 /* files one process may register at a time */

struct snap_cancel {
    /* Set by the applet before snap_cancel_start. */
    int grace_ms;                      /* after the first signal: -1 wait, 0 end now, N end after N ms */
    bool usr1;                         /* also take SIGUSR1 (passed to the hook only) */
    void (*hook)(int sig, void *arg);  /* optional; runs on the signal thread for every signal taken */
    void *arg;
    /* State. */
    _Atomic int sig;                   /* the first SIGINT/SIGTERM taken; 0 = none yet */
    pthread_mutex_t mu;                /* guards tracked */
    char tracked[SNAP_CANCEL_TRACK][PATH_MAX];
};

/* Block the signals and start the signal thread.  Returns 0 or SNAP_ENOMEM. */
int snap_cancel_start(struct snap_cancel *c);

/* True once SIGINT/SIGTERM arrived.  NULL (an operation run without a token) is never cancelled. */
bool snap_cancelled(const struct snap_cancel *c);

/* Register path to be removed if the process ends on a signal; untrack it once it is renamed or
 * removed.  Both accept a NULL token (no-op); tracking more than SNAP_CANCEL_TRACK paths at once
 * drops the extra ones (the startup cleaning of leftovers still finds them). */
void snap_cancel_track(struct snap_cancel *c, const char *path);
void snap_cancel_untrack(struct snap_cancel *c, const char *path);

/* End the process now as a signal would: remove the tracked files, exit SNAP_EXIT_INTR.  For a
 * hook that has nothing to wind down. */
_Noreturn void snap_cancel_exit(struct snap_cancel *c);

#endif
