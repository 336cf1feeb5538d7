/* cancel.c -- the signal thread behind struct snap_cancel (cancel.h). */
#include "base/cancel.h"

#include "base/err.h"

#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void cancel_remove_tracked(struct snap_cancel *c)
{
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < SNAP_CANCEL_TRACK; i++)
        if (c->tracked[i][0])
            unlink(c->tracked[i]);
    pthread_mutex_unlock(&c->mu);
}

_Noreturn void snap_cancel_exit(struct snap_cancel *c)
{
    cancel_remove_tracked(c);
    _exit(SNAP_EXIT_INTR);
}

/* After the first SIGINT/SIGTERM: end the process unless it ends by itself within grace_ms. */
static void cancel_after_grace(struct snap_cancel *c)
{
    if (c->grace_ms < 0)
        return;
    struct timespec ts = {c->grace_ms / 1000, (long)(c->grace_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    snap_cancel_exit(c);
}

/* The signals this token takes. */
static void cancel_sigset(const struct snap_cancel *c, sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    if (c->usr1)
        sigaddset(set, SIGUSR1);
}

static void *cancel_thread(void *arg)
{
    struct snap_cancel *c = arg;
    sigset_t set;
    cancel_sigset(c, &set);
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGUSR1) {
            if (c->hook)
                c->hook(sig, c->arg);
            continue;
        }
        int first = 0;
        if (!atomic_compare_exchange_strong(&c->sig, &first, sig))
            snap_cancel_exit(c); /* the second one: at once */
        if (c->hook)
            c->hook(sig, c->arg);
        cancel_after_grace(c);
    }
    return NULL;
}

int snap_cancel_start(struct snap_cancel *c)
{
    sigset_t set;
    cancel_sigset(c, &set);
    pthread_mutex_init(&c->mu, NULL);
    pthread_t t;
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 || pthread_create(&t, NULL, cancel_thread, c) != 0)
        return snap_fail(SNAP_ENOMEM, "cannot start the signal thread");
    pthread_detach(t);
    return 0;
}

bool snap_cancelled(const struct snap_cancel *c)
{
    return c && atomic_load(&c->sig) != 0;
}

void snap_cancel_track(struct snap_cancel *c, const char *path)
{
    if (!c || strlen(path) >= PATH_MAX)
        return;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < SNAP_CANCEL_TRACK; i++)
        if (!c->tracked[i][0]) {
            strcpy(c->tracked[i], path);
            break;
        }
    pthread_mutex_unlock(&c->mu);
}

void snap_cancel_untrack(struct snap_cancel *c, const char *path)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < SNAP_CANCEL_TRACK; i++)
        if (!strcmp(c->tracked[i], path)) {
            c->tracked[i][0] = '\0';
            break;
        }
    pthread_mutex_unlock(&c->mu);
}
