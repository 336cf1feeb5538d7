/* bench-svg.c -- hand-written SVG latency CDFs (no libraries): axes in ms, ticks, legend. */
#include "bench/bench-svg.h"

#include "bench/bench-run.h"

#include <stdlib.h>

#define PW 440.0     /* panel width */
#define PH 300.0     /* panel height */
#define ML 60.0      /* margins inside a panel */
#define MR 20.0
#define MT 40.0
#define MB 50.0
#define CDF_POINTS 400

static const char *const colors[BENCH_SVG_SERIES_MAX] = {
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f",
};

/* A "nice" tick step for a range: 1, 2 or 5 times a power of ten, about 5 ticks. */
static double nice_step(double range)
{
    double raw = range / 5, p = 1;
    while (p * 10 <= raw)
        p *= 10;
    while (p > raw)
        p /= 10;
    double m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void svg_text(FILE *f, double x, double y, const char *anchor, int size, const char *s)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\">", x, y, anchor, size);
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
    fputs("</text>\n", f);
}

static void svg_panel(FILE *f, double ox, double oy, struct bench_svg_panel *p)
{
    /* The x axis ends past the slowest series' 99th percentile: a shared machine's rare stalls
     * would otherwise squeeze every line into a corner.  The clipped tail is said on the plot. */
    double xmax = p->marker_ms, top = 0;
    for (size_t s = 0; s < p->nseries; s++) {
        struct bench_svg_series *se = &p->series[s];
        bench_sort((double *)se->ms, se->n);
        if (!se->n)
            continue;
        double p99 = se->ms[(se->n * 99) / 100 < se->n ? (se->n * 99) / 100 : se->n - 1];
        xmax = p99 * 1.05 > xmax ? p99 * 1.05 : xmax;
        top = se->ms[se->n - 1] > top ? se->ms[se->n - 1] : top;
    }
    if (xmax <= 0)
        xmax = 1;
    double step = nice_step(xmax);
    double ticks = (double)(long long)(xmax / step);
    xmax = (ticks * step < xmax ? ticks + 1 : ticks) * step;
    double x0 = ox + ML, y0 = oy + PH - MB, w = PW - ML - MR, h = PH - MT - MB;
    char buf[128];
    svg_text(f, ox + PW / 2, oy + 22, "middle", 14, p->title);
    /* Grid, ticks and labels. */
    for (double v = 0; v <= xmax + step / 2; v += step) {
        double x = x0 + v / xmax * w;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x, y0, x, y0 - h);
        snprintf(buf, sizeof buf, "%g", v);
        svg_text(f, x, y0 + 16, "middle", 11, buf);
    }
    for (int i = 0; i <= 4; i++) {
        double y = y0 - h * i / 4;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x0, y, x0 + w, y);
        snprintf(buf, sizeof buf, "%.2f", i / 4.0);
        svg_text(f, x0 - 6, y + 4, "end", 11, buf);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", x0,
            y0 - h, w, h);
    svg_text(f, x0 + w / 2, y0 + 36, "middle", 12, "latency per read (ms)");
    if (top > xmax) {
        snprintf(buf, sizeof buf, "slowest %.1f ms, beyond the axis", top);
        svg_text(f, x0 + w, y0 - h - 4, "end", 10, buf);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\" "
               "transform=\"rotate(-90 %.1f %.1f)\">fraction of reads &lt;= x</text>\n",
            ox + 16, y0 - h / 2, ox + 16, y0 - h / 2);
    if (p->marker_ms > 0) {
        double x = x0 + p->marker_ms / xmax * w;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" "
                   "stroke-dasharray=\"4,3\"/>\n", x, y0, x, y0 - h);
        if (p->marker_label)
            svg_text(f, x + 4, y0 - h + 12, "start", 10, p->marker_label);
    }
    /* One step line per series. */
    for (size_t s = 0; s < p->nseries; s++) {
        const struct bench_svg_series *se = &p->series[s];
        if (!se->n)
            continue;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" points=\"", colors[s]);
        /* A step line through at most CDF_POINTS quantiles keeps big runs small and readable. */
        size_t npts = se->n < CDF_POINTS ? se->n : CDF_POINTS;
        double py = y0;
        for (size_t q = 1; q <= npts; q++) {
            size_t i = (se->n * q + npts - 1) / npts - 1; /* the sample at quantile q / npts */
            double v = se->ms[i] < xmax ? se->ms[i] : xmax;
            double x = x0 + v / xmax * w, y = y0 - h * (double)(i + 1) / (double)se->n;
            fprintf(f, "%.1f,%.1f %.1f,%.1f ", x, py, x, y);
            py = y;
        }
        fputs("\"/>\n", f);
        /* Legend, inside the panel's lower right. */
        double ly = y0 - 14 - 16.0 * (double)(p->nseries - 1 - s);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>\n",
                x0 + w - 130, ly - 4, x0 + w - 110, ly - 4, colors[s]);
        svg_text(f, x0 + w - 104, ly, "start", 11, se->name);
    }
}

void bench_svg_cdf(FILE *f, const char *title, struct bench_svg_panel *panels, size_t npanels)
{
    double width = PW * (double)(npanels ? npanels : 1), height = PH + 30;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
            width, height, width, height);
    svg_text(f, width / 2, 20, "middle", 15, title);
    for (size_t i = 0; i < npanels; i++)
        svg_panel(f, PW * (double)i, 30, &panels[i]);
    fputs("</svg>\n", f);
}
