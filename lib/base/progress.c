/* progress.c -- a one-line progress display: bytes, percentage, rate, ETA. */
#include "base/progress.h"

#include "base/io.h"
#include "base/util.h"

#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PROGRESS_BAR 20
#define PROGRESS_LABEL_MAX 24

static int term_cols(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    return 80;
}

void progress_start(struct progress *p, const char *label, uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->on = isatty(STDERR_FILENO);
    p->cols = p->on ? term_cols() : 80;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->start_ns = snap_now_ns();
}

void progress_force(struct progress *p, bool on) { p->on = on; }
void progress_set_total(struct progress *p, uint64_t total) { p->total = total; }

const char *progress_fmt_eta(double secs, char *buf, size_t n)
{
    if (!(secs >= 0) || secs > 99 * 3600.0) {
        snprintf(buf, n, "--:--");
        return buf;
    }
    unsigned s = (unsigned)(secs + 0.5);
    if (s >= 3600)
        snprintf(buf, n, "%u:%02u:%02u", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, n, "%u:%02u", s / 60, s % 60);
    return buf;
}

const char *progress_format(const struct progress *p, uint64_t now, int cols, char *buf, size_t n)
{
    char done[24], total[24], rate[24], eta[16], pct[8] = "", tail[112], bar[PROGRESS_BAR + 4] = "";
    double secs = now > p->start_ns ? (double)(now - p->start_ns) / 1e9 : 0;
    double bps = secs > 0 ? (double)p->done / secs : 0;
    snap_fmt_size(p->done, done, sizeof done);
    snap_fmt_size((uint64_t)bps, rate, sizeof rate);
    if (p->total) {
        uint64_t d = p->done < p->total ? p->done : p->total;
        int pc = (int)(d * 100 / p->total), fill = pc * PROGRESS_BAR / 100;
        snprintf(pct, sizeof pct, "%3d%% ", pc);
        bar[0] = '[';
        memset(bar + 1, '#', (size_t)fill);
        memset(bar + 1 + fill, ' ', (size_t)(PROGRESS_BAR - fill));
        memcpy(bar + PROGRESS_BAR + 1, "] ", 3);
        progress_fmt_eta(bps > 0 ? (double)(p->total - d) / bps : -1, eta, sizeof eta);
        snap_fmt_size(p->total, total, sizeof total);
        snprintf(tail, sizeof tail, "%s / %s  %s/s  ETA %s", done, total, rate, eta);
    } else {
        snprintf(tail, sizeof tail, "%s  %s/s", done, rate);
    }
    /* Fit cols - 1: the bar gives way first, then the label shrinks, then the line is cut. */
    int room = cols - 1 - (int)(strlen(pct) + strlen(tail));
    if (bar[0] && room >= (int)strlen(bar) + 12)
        room -= (int)strlen(bar);
    else
        bar[0] = '\0';
    int lw = room - 1 < PROGRESS_LABEL_MAX ? room - 1 : PROGRESS_LABEL_MAX;
    char head[PROGRESS_LABEL_MAX + 2] = "";
    if (lw >= 4)
        snprintf(head, sizeof head, "%-*.*s ", lw, lw, p->label);
    snprintf(buf, n, "%s%s%s%s", head, pct, bar, tail);
    if (cols > 1 && strlen(buf) > (size_t)(cols - 1))
        buf[cols - 1] = '\0';
    return buf;
}

void progress_update(struct progress *p, uint64_t done)
{
    p->done = done;
    if (!p->on)
        return;
    uint64_t now = snap_now_ns();
    if (p->last_ns && now - p->last_ns < PROGRESS_INTERVAL_NS)
        return;
    p->last_ns = now;
    char line[256];
    line[0] = '\r';
    progress_format(p, now, p->cols, line + 1, sizeof line - 1);
    fputs(line, stderr);
    fputs("\033[K", stderr); /* erase what a longer previous line left */
    fflush(stderr);
    p->shown = 1;
}

void progress_end(struct progress *p)
{
    if (!p->on || !p->shown)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    p->shown = 0;
}

void progress_clear_signal(struct progress *p)
{
    if (p->on && p->shown) {
        ssize_t r = write(STDERR_FILENO, "\r\033[K", 4);
        (void)r;
        p->shown = 0;
    }
}
