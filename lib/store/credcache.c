/* credcache.c -- the refresh rule of credential caches (see credcache.h). */
#include "store/credcache.h"

void credcache_set_static(struct credcache *c)
{
    *c = (struct credcache){.gen = 1, .refresh_at = INT64_MAX, .expires_at = INT64_MAX};
}

bool credcache_due(struct credcache *c, int64_t now)
{
    bool due = !c->gen || c->stale || now >= c->refresh_at;
    c->fetches += due;
    return due;
}

void credcache_fresh(struct credcache *c, int64_t now, int64_t expires_at, int64_t margin_max)
{
    int64_t ttl = expires_at - now, margin = ttl / 4 < margin_max ? ttl / 4 : margin_max;
    c->gen++;
    c->stale = false;
    c->expires_at = expires_at;
    c->refresh_at = expires_at == INT64_MAX ? INT64_MAX : expires_at - margin;
}

bool credcache_keep(struct credcache *c, int64_t now, int64_t retry_s)
{
    if (!c->gen || c->stale || now >= c->expires_at)
        return false;
    c->refresh_at = now + retry_s < c->expires_at ? now + retry_s : c->expires_at;
    return true;
}

void credcache_refused(struct credcache *c, uint64_t gen)
{
    if (gen == c->gen)
        c->stale = true;
}
