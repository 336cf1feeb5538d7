/* stats.c -- per-request counters and READ latency, cold or warm (see struct nbd_stats).
 *
 * A request is timed from the start of its execution (its WRITE payload already read) to its
 * reply on the wire.  Cold means the device waited for a fetch on this thread meanwhile: the
 * chunker counts such waits in a thread-local counter (base/histo.h), compared before and after.
 * Two relaxed atomic adds on a histogram and one on a counter; nothing allocated, no lock.
 */
#include "nbd/nbd.h"
#include "nbd/proto.h"

#include "base/io.h"

void nbd_stats_start(struct nbd_timing *t)
{
    t->t0_ns = snap_now_ns();
    t->waits0 = snap_fetch_waits();
}

void nbd_stats_done(struct nbd_stats *st, const struct nbd_timing *t, uint16_t type)
{
    unsigned i = type < NBD_STATS_CMDS - 1 ? type : NBD_STATS_CMDS - 1;
    atomic_fetch_add_explicit(&st->answered[i], 1, memory_order_relaxed);
    if (type != NBD_CMD_READ)
        return;
    uint64_t ns = snap_now_ns() - t->t0_ns;
    snap_histo_add(snap_fetch_waits() != t->waits0 ? &st->read_cold : &st->read_warm, ns);
}

const char *nbd_cmd_name(unsigned i)
{
    static const char *const names[NBD_STATS_CMDS] = {
        "read", "write", "disc", "flush", "trim", "cache", "write_zeroes", "block_status", "other",
    };
    return i < NBD_STATS_CMDS ? names[i] : "other";
}
