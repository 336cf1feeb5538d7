/* advertise.c -- keep peer:{buildId} set for the builds of a data directory (see registry.h).
 *
 * One thread.  The table of builds it advertises lives only in that thread (and in stop, after
 * the join), so only the stop flag is shared.  A scan is a readdir of the data directory and
 * an fstatat per build: Redis is only talked to when a build appears, when a third of the TTL
 * has passed since its last SET, and when a build gets its upload-done marker or leaves.
 */
#include "peer/peer.h"
#include "peer/registry.h"

#include "base/err.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ADV_MAX 4096 /* builds advertised at once */

struct adv_entry {
    char id[SNAP_UUID_STRLEN + 1];
    uint64_t set_ns; /* last successful SET; 0 = never */
    bool seen;       /* in this scan */
};

struct peer_advertise {
    struct peer_registry *reg;
    char *dir, *addr;
    unsigned ttl_s, scan_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    struct adv_entry *e;
    size_t n;
    bool failing; /* the registry's last call failed (warned once) */
};

/* A registry call's outcome: false (and a warning, once per outage) when it failed. */
static bool adv_ok(struct peer_advertise *a, int err)
{
    if (!err) {
        if (a->failing)
            snap_info("%s answers again; advertising this host's builds", peer_registry_name(a->reg));
        a->failing = false;
        return true;
    }
    if (!a->failing)
        snap_warn("%s; builds are not advertised until it answers (retrying every %u ms), this peer keeps serving",
                  snap_errmsg(err), a->scan_ms);
    a->failing = true;
    return false;
}

static void adv_remove(struct peer_advertise *a, size_t i)
{
    a->e[i] = a->e[--a->n];
}

/* The build directory `name` (a UUID) was seen: set or refresh its key, or delete it when the
 * upload-done marker is there.  false when the registry failed (the scan stops talking to it). */
static bool adv_build(struct peer_advertise *a, int dfd, const char *name, uint64_t now)
{
    snap_uuid u;
    char id[SNAP_UUID_STRLEN + 1], marker[SNAP_UUID_STRLEN + sizeof PEER_DONE_MARKER + 1];
    struct stat st;
    if (strlen(name) != SNAP_UUID_STRLEN || snap_uuid_parse(name, &u) || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode))
        return true;
    snap_uuid_format(&u, id);
    snprintf(marker, sizeof marker, "%.36s/%s", name, PEER_DONE_MARKER);
    bool done = fstatat(dfd, marker, &st, AT_SYMLINK_NOFOLLOW) == 0;
    size_t i;
    for (i = 0; i < a->n && strcmp(a->e[i].id, id) != 0; i++)
        ;
    if (done) {
        if (i == a->n)
            return true;
        if (!adv_ok(a, peer_registry_del(a->reg, id)))
            return false;
        snap_info("%s: the upload of build %s finished; its key is deleted", peer_registry_name(a->reg), id);
        adv_remove(a, i);
        return true;
    }
    if (i == a->n) {
        if (a->n == ADV_MAX)
            return true;
        memset(&a->e[i], 0, sizeof a->e[i]);
        memcpy(a->e[i].id, id, sizeof id);
        a->n++;
    }
    a->e[i].seen = true;
    if (a->e[i].set_ns && now - a->e[i].set_ns < (uint64_t)a->ttl_s * 1000000000 / 3)
        return true;
    if (!adv_ok(a, peer_registry_set(a->reg, id, a->addr, a->ttl_s)))
        return false;
    if (!a->e[i].set_ns)
        snap_info("%s: build %s advertised as %s (TTL %u s)", peer_registry_name(a->reg), id, a->addr, a->ttl_s);
    a->e[i].set_ns = now;
    return true;
}

static void adv_scan(struct peer_advertise *a)
{
    DIR *d = opendir(a->dir);
    if (!d) {
        snap_warn("peer data directory %s: %s; builds are not advertised", a->dir, strerror(errno));
        return;
    }
    uint64_t now = snap_now_ns();
    for (size_t i = 0; i < a->n; i++)
        a->e[i].seen = false;
    bool up = true;
    struct dirent *de;
    while (up && (de = readdir(d)) != NULL)
        up = adv_build(a, dirfd(d), de->d_name, now);
    closedir(d);
    /* Builds that left the directory (only after a complete scan: a failed one saw too little). */
    for (size_t i = 0; up && i < a->n;) {
        if (a->e[i].seen) {
            i++;
        } else if ((up = adv_ok(a, peer_registry_del(a->reg, a->e[i].id))) != 0) {
            snap_info("%s: build %s left %s; its key is deleted", peer_registry_name(a->reg), a->e[i].id, a->dir);
            adv_remove(a, i);
        }
    }
}

static void *adv_thread(void *arg)
{
    struct peer_advertise *a = arg;
    pthread_mutex_lock(&a->lock);
    while (!a->stop) {
        pthread_mutex_unlock(&a->lock);
        adv_scan(a);
        pthread_mutex_lock(&a->lock);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t t = (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec + (uint64_t)a->scan_ms * 1000000;
        ts.tv_sec = (time_t)(t / 1000000000);
        ts.tv_nsec = (long)(t % 1000000000);
        while (!a->stop && pthread_cond_timedwait(&a->wake, &a->lock, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

static void adv_free(struct peer_advertise *a)
{
    peer_registry_close(a->reg);
    snap_free(a->e);
    snap_free(a->dir);
    snap_free(a->addr);
    snap_free(a);
}

int peer_advertise_start(struct peer_registry *r, const struct peer_advertise_opts *o, struct peer_advertise **out)
{
    struct peer_advertise *a = snap_calloc(1, sizeof *a);
    if (!a) {
        peer_registry_close(r);
        return snap_fail(SNAP_ENOMEM, "out of memory");
    }
    a->reg = r;
    a->ttl_s = o->ttl_s ? o->ttl_s : 60;
    a->scan_ms = o->scan_ms ? o->scan_ms : 1000;
    a->dir = snap_strdup(o->data_dir);
    a->addr = snap_strdup(o->addr);
    a->e = snap_calloc(ADV_MAX, sizeof *a->e);
    if (!a->dir || !a->addr || !a->e) {
        adv_free(a);
        return snap_fail(SNAP_ENOMEM, "out of memory");
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&a->lock, NULL);
    int e = pthread_create(&a->thread, NULL, adv_thread, a);
    if (e) {
        pthread_cond_destroy(&a->wake);
        pthread_mutex_destroy(&a->lock);
        adv_free(a);
        return snap_fail(SNAP_ENOMEM, "peer registry: cannot start a thread: %s", strerror(e));
    }
    *out = a;
    return 0;
}

void peer_advertise_stop(struct peer_advertise *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stop = true;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    /* This host no longer serves: take its keys back (stop at the first failure, each costs a timeout). */
    for (size_t i = 0; i < a->n; i++)
        if (a->e[i].set_ns && !adv_ok(a, peer_registry_del(a->reg, a->e[i].id)))
            break;
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->lock);
    adv_free(a);
}
