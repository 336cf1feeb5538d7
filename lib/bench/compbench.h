/* compbench.h -- the compressed-read benchmark's logic (`snapctl bench compressed`).
 *
 *   struct compbench *cb;
 *   compbench_prepare(&(struct compbench_opts){.image = "rootfs.img", .work_dir = "/tmp/x"}, &cb);
 *   struct compbench_result r[COMPBENCH_BUILDS];
 *   compbench_run(cb, &(struct compbench_profile){.ttfb_us = 20000, .bytes_per_sec = 100000000}, r);
 *   compbench_free(cb);
 *
 * Prepare compresses the image into lz4 and zstd frames (upload_compress_file, 2 MiB frames) and
 * lays out a file store in work_dir with three builds of it: plain, lz4 and zstd, each with a v4
 * header in memory; every frame is decoded once, timed, for the floor.  A run opens one build
 * device per build over the simulated store (lib/store/sim: real sleeps for the time to first
 * byte and the bandwidth) in front of that file store, sets its chunker up with one untimed read,
 * then reads 4 KiB at one random page of distinct random 4 MiB units (the same sequence for each
 * build), so every read is cold (a plain chunk and its frames are fetched for it alone), and
 * checks every read's bytes against the image.  Floor of a read: TTFB + 4 KiB / bandwidth for the plain build; for a
 * compressed one TTFB + the frame's compressed bytes / bandwidth + its measured decode time.
 */
#ifndef SNAP_BENCH_COMPBENCH_H
#define SNAP_BENCH_COMPBENCH_H

#include <stdint.h>

#define COMPBENCH_BUILDS 3            /* plain, lz4, zstd */
#define COMPBENCH_READ 4096u
#define COMPBENCH_MAX_ITER 100000u

struct compbench;

struct compbench_opts {
    const char *image;                /* the uncompressed data: a multiple of 4 MiB, at least 8 MiB */
    const char *work_dir;             /* where the file store goes (must exist; emptied by free) */
    int level;                        /* compression level; 0: the libraries' defaults */
};

struct compbench_profile {
    unsigned ttfb_us;
    uint64_t bytes_per_sec;
    unsigned iterations;              /* reads per build; 0: 50; at most compbench_max_reads() */
    uint64_t seed;                    /* of the offsets */
    unsigned gap_ms;                  /* pause before each read (untimed): the device idle again */
};

struct compbench_result {
    uint32_t comp;                    /* enum hdr_comp: 0 plain, HDR_COMP_LZ4, HDR_COMP_ZSTD */
    uint64_t bytes_u, bytes_c;        /* the build's data: uncompressed and as stored */
    double ratio;                     /* bytes_u / bytes_c */
    uint32_t frames;
    double avg_ms, p50_ms, max_ms;    /* read latency */
    double floor_ms;                  /* mean floor of the same reads */
    double decode_ms;                 /* mean measured decode time of the frames read (0: plain) */
    double vs_floor;                  /* avg_ms / floor_ms */
    uint64_t reads, mismatches;       /* reads whose bytes differed from the image */
};

int compbench_prepare(const struct compbench_opts *o, struct compbench **out);
/* The three builds over one profile; r[0] plain, r[1] lz4, r[2] zstd.  An error of a read (not
 * a mismatch, which is counted) ends the run. */
int compbench_run(struct compbench *cb, const struct compbench_profile *p, struct compbench_result r[COMPBENCH_BUILDS]);
void compbench_free(struct compbench *cb);
/* How many cold reads a run can make: the image's 4 MiB units but one. */
unsigned compbench_max_reads(const struct compbench *cb);

/* A rootfs-like image of `size` bytes (rounded down to 4 MiB) at path: the regular files under dirs (a sorted walk),
 * each starting at a 4 KiB boundary as a file system places them, the rest zeros. */
int compbench_make_image(const char *path, uint64_t size, const char *const *dirs);

#endif
