/* Unit tests of the progress line: its fields, ETA format and fitting to the terminal width. */
#include "test.h"

#include "base/progress.h"

#define SEC 1000000000ull

static void setup(struct progress *p, const char *label, uint64_t total, uint64_t done)
{
    progress_start(p, label, total);
    progress_force(p, false);
    p->start_ns = 1000 * SEC;
    p->done = done;
}

TEST(progress_eta_format)
{
    char b[16];
    CHECK_STR(progress_fmt_eta(0, b, sizeof b), "0:00");
    CHECK_STR(progress_fmt_eta(4.4, b, sizeof b), "0:04");
    CHECK_STR(progress_fmt_eta(59.6, b, sizeof b), "1:00");
    CHECK_STR(progress_fmt_eta(754, b, sizeof b), "12:34");
    CHECK_STR(progress_fmt_eta(3600 + 62, b, sizeof b), "1:01:02");
    CHECK_STR(progress_fmt_eta(-1, b, sizeof b), "--:--");
    CHECK_STR(progress_fmt_eta(1e12, b, sizeof b), "--:--");
}

TEST(progress_known_total)
{
    struct progress p;
    char b[256];
    /* 370 MiB of 1000 MiB in 2 s: 185 MiB/s, 630 MiB left: ETA 3.4 s. */
    setup(&p, "asset.bin", 1000ull << 20, 370ull << 20);
    progress_format(&p, p.start_ns + 2 * SEC, 120, b, sizeof b);
    CHECK_STR(b, "asset.bin                 37% [#######             ] 370.0 MiB / 1000.0 MiB  185.0 MiB/s  ETA 0:03");
    /* 80 columns: the bar gives way, the label stays. */
    progress_format(&p, p.start_ns + 2 * SEC, 80, b, sizeof b);
    CHECK_STR(b, "asset.bin                 37% 370.0 MiB / 1000.0 MiB  185.0 MiB/s  ETA 0:03");
    /* Narrower: the label shrinks, then goes, then the line is cut to cols - 1. */
    progress_format(&p, p.start_ns + 2 * SEC, 60, b, sizeof b);
    CHECK_STR(b, "asset.bi  37% 370.0 MiB / 1000.0 MiB  185.0 MiB/s  ETA 0:03");
    CHECK_EQ(strlen(b), 59);
    progress_format(&p, p.start_ns + 2 * SEC, 40, b, sizeof b);
    CHECK_EQ(strlen(b), 39);
    CHECK(strncmp(b, " 37% 370.0 MiB", 14) == 0);
    /* Before any time has passed: no rate, no ETA yet. */
    progress_format(&p, p.start_ns, 120, b, sizeof b);
    CHECK(strstr(b, "ETA --:--") != NULL);
    /* More than the total (a source that grew): 100%, ETA 0:00. */
    p.done = 1100ull << 20;
    progress_format(&p, p.start_ns + 2 * SEC, 120, b, sizeof b);
    CHECK(strstr(b, "100% [####################]") != NULL);
    CHECK(strstr(b, "ETA 0:00") != NULL);
}

TEST(progress_unknown_total)
{
    struct progress p;
    char b[256];
    setup(&p, "a-rather-long-object-name-that-is-cut.bin", 0, 3ull << 20);
    progress_format(&p, p.start_ns + 2 * SEC, 80, b, sizeof b);
    CHECK_STR(b, "a-rather-long-object-nam 3.0 MiB  1.5 MiB/s");
    /* A total learned later switches to the full line. */
    progress_set_total(&p, 6ull << 20);
    progress_format(&p, p.start_ns + 2 * SEC, 120, b, sizeof b);
    CHECK(strstr(b, " 50% [##########          ] 3.0 MiB / 6.0 MiB  1.5 MiB/s  ETA 0:02") != NULL);
}

TEST(progress_silent_when_off)
{
    struct progress p;
    setup(&p, "x", 10, 0);
    progress_update(&p, 5);
    CHECK_EQ(p.done, 5);
    CHECK(!p.shown); /* nothing drawn when off (not a terminal, --quiet, --json) */
    progress_end(&p);
    progress_clear_signal(&p);
}
