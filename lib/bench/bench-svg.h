/* bench-svg.h -- latency distribution plots for the benchmarks: one panel per group (e.g. a
 * storage profile), one CDF line per series (e.g. a chunker mode), written as a plain SVG. */
#ifndef SNAP_BENCH_SVG_H
#define SNAP_BENCH_SVG_H

#include <stddef.h>
#include <stdio.h>

#define BENCH_SVG_SERIES_MAX 8

struct bench_svg_series {
    const char *name;
    const double *ms;       /* samples in milliseconds (sorted by the writer, in place) */
    size_t n;
};

struct bench_svg_panel {
    const char *title;
    double marker_ms;       /* a vertical reference line (e.g. the physical floor); 0 = none */
    const char *marker_label;
    struct bench_svg_series series[BENCH_SVG_SERIES_MAX];
    size_t nseries;
};

/* Write the panels side by side: x = latency in ms, y = fraction of reads at or below it. */
void bench_svg_cdf(FILE *f, const char *title, struct bench_svg_panel *panels, size_t npanels);

#endif
