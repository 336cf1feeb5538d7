/* test-bench.c -- lib/bench without running a benchmark: the chunker benchmark's model, options,
 * offsets, CSV rows and SVG plot on a tiny hand-made data set; the shared statistics; the peer
 * benchmark's size check; the header benchmark's generator and measurement; the SHA-256
 * benchmark's file, digest check and medians; the fetch benchmark's pipelines; the HTTP
 * benchmark's URL check and curl config. */
#include "test.h"

#include "base/err.h"
#include "bench/bench-run.h"
#include "bench/chunkbench.h"
#include "bench/fetchbench.h"
#include "bench/hdrbench.h"
#include "bench/httpbench.h"
#include "bench/peerbench.h"
#include "bench/shabench.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

/* One sim profile, 2 callers x 1 iteration x 1 run at offsets 0 and 8192. */
static double tiny_lat[CHUNKBENCH_MODES][2] = {{60, 62.5}, {30, 31}, {20.5, 21}};
static uint64_t tiny_offsets[2] = {0, 8192};

static void tiny_bench(struct chunkbench *b)
{
    chunkbench_init(b);
    b->nprof = 1;
    snprintf(b->prof[0].name, sizeof b->prof[0].name, "gcs");
    b->prof[0].kind = CHUNKBENCH_SIM;
    b->prof[0].ttfb_ms = 20;
    b->prof[0].mbps = 100;
    b->callers = 2;
    b->iterations = 1;
    b->runs = 1;
    b->offsets = tiny_offsets;
    for (int m = 0; m < CHUNKBENCH_MODES; m++)
        b->prof[0].lat[m] = tiny_lat[m];
}

TEST(bench_chunkbench_model)
{
    static struct chunkbench b;
    tiny_bench(&b);
    struct chunkbench_profile *p = &b.prof[0];
    chunkbench_physics(&b, p);
    /* 100 MB/s = 1e5 bytes per ms. */
    CHECK(NEAR(p->floor_ms, 20 + 4096 / 1e5));
    CHECK(NEAR(p->ideal_full_ms, 20 + 4194304 / 1e5));
    CHECK(NEAR(p->ideal_stream_ms, 20 + (4096 + 12288) / 2 / 1e5)); /* mean(offset + 4 KiB) */
    CHECK(NEAR(p->ideal_ratio, p->ideal_full_ms / p->ideal_stream_ms));
    CHECK(NEAR(p->min_stream_ratio, 3.0)); /* 3.08x rounded down to 0.1x */

    b.runs = 3;
    double full[3] = {60, 62, 61}, stream[3] = {30, 31, 29}, demand[3] = {25, 26, 24};
    memcpy(p->avg[0], full, sizeof full);
    memcpy(p->avg[1], stream, sizeof stream);
    memcpy(p->avg[2], demand, sizeof demand);
    chunkbench_evaluate(&b, p);
    CHECK(NEAR(p->med_avg[0], 61) && NEAR(p->med_avg[1], 30) && NEAR(p->med_avg[2], 25));
    CHECK(NEAR(p->stream_ratio, 61.0 / 30));
    CHECK(!p->stream_ok); /* 2.03x < 3.0x */
    CHECK(NEAR(p->demand_ratio, 25 / p->floor_ms));
    CHECK(p->demand_ok); /* 1.25x <= 1.3x */
}

TEST(bench_chunkbench_options)
{
    static struct chunkbench b;
    chunkbench_init(&b);
    CHECK_ERR(chunkbench_add_profile(&b, "fast"), SNAP_EUSAGE, "want gcs, nfs or TTFB_MS,MBPS");
    CHECK_ERR(chunkbench_add_profile(&b, "5,0"), SNAP_EUSAGE, "--profile 5,0");
    CHECK_EQ(chunkbench_add_profile(&b, "5,50"), 0);
    CHECK_STR(b.prof[0].name, "5,50");
    CHECK(NEAR(b.prof[0].ttfb_ms, 5) && NEAR(b.prof[0].mbps, 50) && b.prof[0].seed_ratio == 0);
    CHECK_EQ(chunkbench_add_profile(&b, "gcs"), 0);
    CHECK(NEAR(b.prof[1].seed_ratio, 66.3 / 42.8));
    CHECK_EQ(chunkbench_add_profile(&b, "nfs"), 0);
    CHECK_EQ(chunkbench_add_profile(&b, "1,1"), 0);
    CHECK_ERR(chunkbench_add_profile(&b, "2,2"), SNAP_EUSAGE, "at most 4 profiles");
    CHECK_ERR(chunkbench_set_source(&b, "ftp://127.0.0.1/x", false), SNAP_EUSAGE,
              "want sim, http, both or an http(s):// object URL");
    CHECK_ERR(chunkbench_set_source(&b, "sim", true), SNAP_EUSAGE, "--faultserver sim: want an http(s)://");
    CHECK_STR(b.source, "both");

    /* Default profiles under both sources, sources outermost. */
    chunkbench_init(&b);
    b.iterations = 4;
    CHECK_EQ(chunkbench_setup(&b, false), 0);
    CHECK_EQ(b.nprof, 4);
    CHECK_EQ(b.nkinds, 2);
    CHECK_STR(b.prof[0].name, "gcs");
    CHECK_STR(b.prof[3].name, "nfs");
    CHECK(b.prof[1].kind == CHUNKBENCH_SIM && b.prof[2].kind == CHUNKBENCH_HTTPD);
    CHECK(b.prof[3].lat[2] != NULL);
    uint64_t again[12];
    chunkbench_offsets(1, again, 12);
    CHECK_MEM(again, b.offsets, sizeof again);
    for (int i = 0; i < 12; i++)
        CHECK(again[i] % CHUNKBENCH_READ == 0 && again[i] < CHUNKBENCH_OBJ_SIZE);
    chunkbench_free(&b);
    CHECK_EQ(b.nprof, 0);
}

/* What fn writes for the tiny data set, in a malloc'd string. */
static char *written(struct chunkbench *b, bool svg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    if (svg)
        chunkbench_write_svg(b, f);
    else
        chunkbench_write_csv(b, f);
    fclose(f);
    return text;
}

TEST(bench_chunkbench_csv)
{
    static struct chunkbench b;
    tiny_bench(&b);
    char *csv = written(&b, false);
    CHECK(csv);
    static const char want[] =
        "source,profile,mode,run,iteration,caller,offset,latency_us\n"
        "sim,gcs,full,0,0,0,0,60000.0\n"
        "sim,gcs,full,0,0,1,8192,62500.0\n"
        "sim,gcs,streaming,0,0,0,0,30000.0\n"
        "sim,gcs,streaming,0,0,1,8192,31000.0\n"
        "sim,gcs,demand-first,0,0,0,0,20500.0\n"
        "sim,gcs,demand-first,0,0,1,8192,21000.0\n";
    int same = strcmp(csv, want) == 0;
    if (!same)
        fprintf(stderr, "%s", csv);
    free(csv);
    CHECK(same);
}

TEST(bench_chunkbench_svg)
{
    static struct chunkbench b;
    tiny_bench(&b);
    chunkbench_physics(&b, &b.prof[0]);
    char *svg = written(&b, true);
    CHECK(svg);
    static const char *const want[] = {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg ", "Cold random 4096 B reads of a 4 MiB object, 2 callers",
        "gcs, in-process: 20 ms to first byte, 100 MB/s", "floor 20.04 ms", ">full<", ">streaming<",
        ">demand-first<", "<polyline", "</svg>\n",
    };
    const char *missing = NULL;
    for (size_t i = 0; i < sizeof want / sizeof want[0] && !missing; i++)
        if (!strstr(svg, want[i]))
            missing = want[i];
    size_t lines = 0;
    for (const char *c = svg; *c; c++)
        lines += *c == '\n';
    free(svg);
    if (missing)
        test_failed(__FILE__, __LINE__, "the SVG lacks '%s'", missing);
    CHECK(!missing);
    CHECK(lines > 20 && lines < 200); /* one panel, three short lines */
}

TEST(bench_sort_median_percentile)
{
    double v[5] = {5, 1, 4, 2, 3};
    CHECK(NEAR(bench_median(v, 5), 3));
    CHECK(NEAR(bench_median(v, 4), 3)); /* {5, 1, 4, 2}: (2 + 4) / 2 */
    bench_sort(v, 5);
    for (int i = 0; i < 5; i++)
        CHECK(NEAR(v[i], i + 1));
    CHECK(NEAR(bench_percentile(v, 5, 0.5), 3));
    CHECK(NEAR(bench_percentile(v, 5, 0.99), 5));
    CHECK(NEAR(bench_percentile(v, 5, 0), 1));
    CHECK(NEAR(bench_percentile(v, 1, 0.99), 1));
}

TEST(bench_peerbench_refuses_a_small_object)
{
    char dir[512], url[600];
    snprintf(dir, sizeof dir, "%s/peerbench", test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0 || errno == EEXIST);
    snprintf(url, sizeof url, "%s/obj", dir);
    FILE *f = fopen(url, "w");
    CHECK(f);
    fputs("less than a chunk", f);
    fclose(f);
    snprintf(url, sizeof url, "file://%s", dir);
    struct store *s = NULL;
    CHECK_EQ(store_open(url, NULL, &s), 0);
    struct peerbench_result r;
    snap_errclear();
    int err = peerbench_run(s, s, "obj", 1, &r);
    store_close(s);
    CHECK_EQ(err, SNAP_ERANGE);
    CHECK(strstr(snap_errmsg(err), "/obj: 17 bytes, less than one 4 MiB chunk"));
}

TEST(bench_hdrbench_generate_and_measure)
{
    struct hdr *h = NULL, *again = NULL;
    CHECK_EQ(hdrbench_generate(200, &h), 0);
    CHECK_EQ(h->n, 200);
    CHECK(h->e[0].build != HDR_ZERO);
    uint64_t end = 0;
    bool prev_zero = false, gap = false, twice = false;
    for (size_t i = 0; i < h->n; i++) {
        gap |= h->e[i].offset != end;
        twice |= prev_zero && h->e[i].build == HDR_ZERO;
        prev_zero = h->e[i].build == HDR_ZERO;
        end += h->e[i].length;
    }
    CHECK(!gap && !twice);
    CHECK_EQ(h->meta.size, end);
    CHECK_EQ(hdr_check(h), 0);
    CHECK_EQ(hdrbench_generate(200, &again), 0); /* a fixed seed: the same header every time */
    CHECK(hdr_same_contents(h, again));
    hdr_free(again);

    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/hdrbench", test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0 || errno == EEXIST);
    struct hdrbench_row r;
    int err = hdrbench_measure(h, 5, 3, dir, &r);
    hdr_free(h);
    CHECK_EQ(err, 0);
    CHECK_EQ(r.version, 5);
    CHECK_EQ(r.entries, 200);
    CHECK(r.bytes > 0 && r.median_ns > 0 && r.rss > 0);
    snprintf(path, sizeof path, "%s/header.v5", dir);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_size, r.bytes);
}

/* The SHA-256 benchmark: the first digest is taken, a different one later is named with its run. */
TEST(bench_shabench_agree)
{
    char digest[65] = "", a[65], b[65];
    memset(a, 'a', 64), a[64] = '\0';
    memset(b, 'b', 64), b[64] = '\0';
    CHECK(shabench_agree(digest, a, "x", 1) == 0);
    CHECK(strcmp(digest, a) == 0);
    CHECK(shabench_agree(digest, a, "y", 1) == 0);
    CHECK_ERR(shabench_agree(digest, b, "openssl", 2), SNAP_EHASH, "openssl gave bbbb");
    CHECK(strcmp(digest, a) == 0);
}

/* Medians only for available contenders, with a floor so ratios never divide by zero. */
TEST(bench_shabench_medians)
{
    struct shabench_contender c[SHABENCH_NCONT] = {0};
    double v[SHABENCH_NCONT][3] = {{3, 1, 2}, {0, 0, 0}, {5, 4, 6}, {9, 9, 9}};
    for (int i = 0; i < SHABENCH_NCONT; i++) {
        c[i].available = i != SHABENCH_OPENSSL;
        memcpy(c[i].secs, v[i], sizeof v[i]);
    }
    shabench_medians(c, 3);
    CHECK(NEAR(c[SHABENCH_NI].median, 2));
    CHECK(NEAR(c[SHABENCH_GENERIC].median, 1e-9));
    CHECK(NEAR(c[SHABENCH_SHA256SUM].median, 5));
    CHECK(c[SHABENCH_OPENSSL].median == 0);
}

/* The generated test file: the size asked, fixed content, its path handed back. */
TEST(bench_shabench_file)
{
    char path[PATH_MAX], h1[65], h2[65];
    double secs;
    CHECK(shabench_make_file(test_tmpdir(), 300000, NULL, path, sizeof path) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 300000);
    CHECK(shabench_self(path, SHA256_IMPL_GENERIC, &secs, h1) == 0);
    CHECK(shabench_self(path, SHA256_IMPL_AUTO, &secs, h2) == 0);
    CHECK(strcmp(h1, h2) == 0 && strlen(h1) == 64);
    unlink(path);
}

/* The fetch benchmark: --sha256's shape and the pipelines (the URL only ever as $1). */
TEST(bench_fetchbench_hex_and_pipes)
{
    const char *ok = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    CHECK(fetchbench_hex_ok(ok));
    CHECK(!fetchbench_hex_ok("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
    CHECK(!fetchbench_hex_ok("abc"));
    static struct fetchbench b;
    snprintf(b.curl, sizeof b.curl, "/bin/curl");
    snprintf(b.openssl, sizeof b.openssl, "/bin/openssl");
    snprintf(b.sha256sum, sizeof b.sha256sum, "/bin/sha256sum");
    fetchbench_pipes(&b);
    CHECK_STR(b.pipe[FETCHBENCH_OPENSSL], "'/bin/curl' -s -f -- \"$1\" | '/bin/openssl' dgst -sha256");
    CHECK_STR(b.pipe[FETCHBENCH_SHA256SUM], "'/bin/curl' -s -f -- \"$1\" | '/bin/sha256sum'");
    CHECK_STR(b.pipe[FETCHBENCH_CURL], "'/bin/curl' -s -f -o /dev/null -- \"$1\"");
    CHECK_STR(b.pipe[FETCHBENCH_FETCH], "");
}

/* The HTTP benchmark: only http(s) URLs; curl's config has one group per range, the last short. */
TEST(bench_httpbench_url_and_curl_config)
{
    struct httpbench *b;
    CHECK_ERR(httpbench_new("file:///tmp/x", 4096, &b), SNAP_EUSAGE, "not http:// or https://");
    CHECK_EQ(httpbench_new("http://127.0.0.1:9/o.bin", 4096, &b), 0);
    b->size = 10000;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    httpbench_curl_config(b, f);
    fclose(f);
    CHECK_STR(text, "silent\nfail\nurl = \"http://127.0.0.1:9/o.bin\"\nrange = \"0-4095\"\noutput = \"/dev/null\"\n"
                    "next\nsilent\nfail\nurl = \"http://127.0.0.1:9/o.bin\"\nrange = \"4096-8191\"\noutput = \"/dev/null\"\n"
                    "next\nsilent\nfail\nurl = \"http://127.0.0.1:9/o.bin\"\nrange = \"8192-9999\"\noutput = \"/dev/null\"\n");
    free(text);
    httpbench_free(b);
    double v[] = {0, 0, 0}, w[] = {3, 1, 2};
    CHECK(NEAR(bench_median_secs(v, 3), 1e-9));
    CHECK(NEAR(bench_median_secs(w, 3), 2));
}
