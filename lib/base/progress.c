/* progress.c -- a one-line progress bar: bytes, percentage, rate, ETA. */
#include "base/progress.h"

#include "base/io.h"
#include "base/util.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void progress_start(struct progress *p, const char *label, uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->on = isatty(STDERR_FILENO);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->start_ns = snap_now_ns();
}

void progress_force(struct progress *p, bool on) { p->on = on; }
void progress_set_total(struct progress *p, uint64_t total) { p->total = total; }

static void progress_draw(struct progress *p, uint64_t now)
{
    char done[24], total[24], rate[24], line[160];
    double secs = (double)(now - p->start_ns) / 1e9;
    double bps = secs > 0 ? (double)p->done / secs : 0;
    snap_fmt_size(p->done, done, sizeof done);
    snap_fmt_size((uint64_t)bps, rate, sizeof rate);
    if (p->total) {
        int pct = (int)(p->done * 100 / p->total);
        char bar[21];
        int fill = pct / 5;
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, ' ', (size_t)(20 - fill));
        bar[20] = '\0';
        double eta = bps > 0 ? (double)(p->total - (p->done < p->total ? p->done : p->total)) / bps : 0;
        snap_fmt_size(p->total, total, sizeof total);
        snprintf(line, sizeof line, "\r%-24.24s %3d%% [%s] %s / %s  %s/s  ETA %.0fs ", p->label, pct, bar,
                 done, total, rate, eta);
    } else {
        snprintf(line, sizeof line, "\r%-24.24s %s  %s/s ", p->label, done, rate);
    }
    fputs(line, stderr);
    fflush(stderr);
}

void progress_update(struct progress *p, uint64_t done)
{
    p->done = done;
    if (!p->on)
        return;
    uint64_t now = snap_now_ns();
    if (now - p->last_ns < 100000000u)
        return;
    p->last_ns = now;
    progress_draw(p, now);
}

void progress_end(struct progress *p)
{
    if (!p->on || !p->last_ns)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
}
