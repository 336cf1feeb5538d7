/* Unit tests of lib/nbd's export registry: names, references, remove while in use. */
#include "test.h"

#include "base/err.h"
#include "nbd/exports.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <unistd.h>

static struct nbd_export named(const char *name)
{
    return (struct nbd_export){.name = name, .size = 4096, .min_block = 1};
}

/* Add, find by name (a length, not a C string: the wire's bytes), list in order, duplicates. */
TEST(nbd_exports_add_get_list)
{
    struct nbd_exports *r;
    CHECK_EQ(nbd_exports_new(&r), 0);
    int owners[3];
    const char *names[3] = {"vm1", "vm2", ""};
    for (int i = 0; i < 3; i++) {
        struct nbd_export e = named(names[i]);
        CHECK_EQ(nbd_exports_add(r, &e, NULL, &owners[i], NULL), 0);
    }
    struct nbd_export dup = named("vm2");
    CHECK_EQ(nbd_exports_add(r, &dup, NULL, NULL, NULL), SNAP_EEXIST);
    struct nbd_entry *e = nbd_exports_get(r, "vm2xyz", 3, NBD_REF_PEEK);
    CHECK(e && e->owner == &owners[1]);
    CHECK_STR(e->exp.name, "vm2");
    nbd_exports_put(r, e, NBD_REF_PEEK);
    CHECK(nbd_exports_get(r, "vm", 2, NBD_REF_PEEK) == NULL);
    e = nbd_exports_get(r, "", 0, NBD_REF_PEEK);
    CHECK(e && e->owner == &owners[2]);
    nbd_exports_put(r, e, NBD_REF_PEEK);
    struct nbd_entry **v;
    size_t n;
    CHECK_EQ(nbd_exports_snapshot(r, &v, &n), 0);
    CHECK_EQ(n, 3);
    for (int i = 0; i < 3; i++)
        CHECK_STR(v[i]->exp.name, names[i]);
    nbd_exports_release(r, v, n);
    nbd_exports_free(r);
}

/* A connected client makes remove refuse (nothing changes); once it leaves, remove returns the
 * owner and the name is free again. */
TEST(nbd_exports_remove_refused_while_connected)
{
    struct nbd_exports *r;
    CHECK_EQ(nbd_exports_new(&r), 0);
    int owner;
    struct nbd_export x = named("vm1");
    CHECK_EQ(nbd_exports_add(r, &x, NULL, &owner, NULL), 0);
    struct nbd_entry *c = nbd_exports_get(r, "vm1", 3, NBD_REF_CONN);
    CHECK(c != NULL);
    CHECK_EQ(nbd_exports_clients(r, c), 1);
    void *got = NULL;
    CHECK_EQ(nbd_exports_remove(r, "vm1", &got), SNAP_EAGAIN);
    CHECK(strstr(snap_errmsg(SNAP_EAGAIN), "1 client connected"));
    CHECK(got == NULL);
    CHECK(nbd_exports_get(r, "vm1", 3, NBD_REF_PEEK) == c); /* still served */
    nbd_exports_put(r, c, NBD_REF_PEEK);
    nbd_exports_put(r, c, NBD_REF_CONN);
    CHECK_EQ(nbd_exports_remove(r, "vm1", &got), 0);
    CHECK(got == &owner);
    CHECK(nbd_exports_get(r, "vm1", 3, NBD_REF_PEEK) == NULL);
    CHECK_EQ(nbd_exports_remove(r, "vm1", &got), SNAP_ENOTFOUND);
    CHECK_EQ(nbd_exports_add(r, &x, NULL, &owner, NULL), 0);
    nbd_exports_free(r);
}

struct holder {
    struct nbd_exports *r;
    struct nbd_entry *e;
    _Atomic bool released;
};

static void *release_later(void *p)
{
    struct holder *h = p;
    usleep(50000);
    h->released = true;
    nbd_exports_put(h->r, h->e, NBD_REF_PEEK);
    return NULL;
}

/* A short reader (a scrape, an export) holds the entry: remove hides it from new lookups at once
 * and returns only after the reader let go. */
TEST(nbd_exports_remove_waits_for_readers)
{
    struct holder h = {0};
    CHECK_EQ(nbd_exports_new(&h.r), 0);
    struct nbd_export x = named("vm1");
    CHECK_EQ(nbd_exports_add(h.r, &x, NULL, NULL, NULL), 0);
    h.e = nbd_exports_get(h.r, "vm1", 3, NBD_REF_PEEK);
    CHECK(h.e != NULL);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, release_later, &h), 0);
    CHECK_EQ(nbd_exports_remove(h.r, "vm1", NULL), 0);
    CHECK(h.released);
    pthread_join(t, NULL);
    nbd_exports_free(h.r);
}

struct churn {
    struct nbd_exports *r;
    _Atomic bool stop;
    _Atomic unsigned got;
};

static void *lookups(void *p)
{
    struct churn *c = p;
    while (!c->stop) {
        struct nbd_entry *e = nbd_exports_get(c->r, "x", 1, NBD_REF_CONN);
        if (e) {
            c->got++;
            if (strcmp(e->exp.name, "x") != 0) /* the entry is alive while held */
                abort();
            nbd_exports_put(c->r, e, NBD_REF_CONN);
        }
    }
    return NULL;
}

/* Lookups racing adds and removes of the same name: every remove either succeeds or is refused
 * for a client; nothing is used after it is freed (asan, tsan). */
TEST(nbd_exports_add_remove_race)
{
    struct churn c = {0};
    CHECK_EQ(nbd_exports_new(&c.r), 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, lookups, &c), 0);
    struct nbd_export x = named("x");
    unsigned removed = 0;
    for (int i = 0; i < 2000; i++) {
        int err = nbd_exports_add(c.r, &x, NULL, NULL, NULL);
        CHECK(err == 0 || err == SNAP_EEXIST);
        err = nbd_exports_remove(c.r, "x", NULL);
        CHECK(err == 0 || err == SNAP_EAGAIN);
        removed += err == 0;
    }
    c.stop = true;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK(removed > 0);
    nbd_exports_free(c.r);
}
