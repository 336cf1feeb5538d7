/* serve-nbd-access.c -- serve-nbd's --record-access and --prefetch: option wiring and messages
 * (see serve-nbd-access.h); which trace and what is written is lib/device/prefetch. */
#include "serve-nbd-access.h"
#include "cli.h"

#include "base/err.h"
#include "codec/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/util.h"
#include "device/access.h"
#include "device/prefetch.h"
#include "device/trace.h"

#include <stdio.h>
#include <string.h>

struct sn_access {
    struct access *a;
    const char *record;
    bool export_diff;
    bool prefetching;
    bool report;        /* --record-access or --prefetch asked: the counters are printed */
    struct trace merge; /* --merge-trace: what is written keeps only the blocks it has too */
    bool merging;
};

/* The trace to write: the recording, or its blocks that --merge-trace's trace has too. */
static int written_trace(struct sn_access *x, struct trace *out)
{
    int err = prefetch_written_trace(x->a, x->merging ? &x->merge : NULL, out);
    return err && x->merging ? snap_fail_ctx(err, "--merge-trace") : err;
}

/* The trace --prefetch names; *none when auto finds no trace in the build's metadata.json. */
static int load_trace(const struct sn_access_args *args, const char *opt, struct trace *t, bool *none)
{
    *none = false;
    int err = prefetch_trace_load(args->prefetch, args->store, args->header, args->file, t);
    if (!prefetch_spec_is_auto(args->prefetch))
        return err ? cli_fail(snap_fail_ctx(err, "%s", opt),
                              "give a trace (as --record-access writes it) or a metadata.json")
                   : 0;
    if (err == SNAP_EUSAGE)
        return cli_usage_error("%s %s", opt, snap_errmsg(err));
    if (err == SNAP_ENOTFOUND) {
        snap_info("%s auto: %s; starting without it", opt, snap_errmsg(err));
        *none = true;
        return 0;
    }
    return err ? cli_fail(err, "fix or remove the build's metadata.json, or give a trace file") : 0;
}

int sn_access_setup(const struct sn_access_args *args, struct nbd_export *exp, struct sn_access **out)
{
    *out = NULL;
    if (args->merge && !args->record && !args->export_diff)
        return cli_usage_error("--merge-trace shapes what is recorded: add --record-access FILE or --export-diff DIR");
    if (!args->record && !args->prefetch && !args->export_diff)
        return 0;
    struct trace t = {0};
    bool none = true;
    int rc = args->prefetch ? load_trace(args, "--prefetch", &t, &none) : 0;
    if (rc)
        return rc;
    struct sn_access *x = snap_calloc(1, sizeof *x);
    if (!x) {
        trace_free(&t);
        return cli_fail(SNAP_ENOMEM, NULL);
    }
    if (args->merge) {
        struct sn_access_args m = *args;
        bool mnone;
        m.prefetch = args->merge;
        if ((rc = load_trace(&m, "--merge-trace", &x->merge, &mnone)) != 0 || mnone) {
            trace_free(&t);
            trace_free(&x->merge);
            snap_free(x);
            return rc ? rc : cli_usage_error("--merge-trace auto: the build has no trace to merge with");
        }
        x->merging = true;
    }
    struct access_opts o = {.ops = exp->ops, .ctx = exp->ctx, .size = exp->size,
                            .prefetch = none ? NULL : &t, .threads = args->prefetch_threads};
    o.block_size = prefetch_block_size(args->header);
    int err = access_open(&o, &x->a);
    if (!none)
        snap_info("prefetch: %zu blocks of %u bytes in the trace", t.n, t.block_size);
    trace_free(&t);
    if (err) {
        trace_free(&x->merge);
        snap_free(x);
        return cli_fail(err, NULL);
    }
    x->record = args->record;
    x->export_diff = args->export_diff;
    x->prefetching = !none;
    x->report = args->record || args->prefetch;
    exp->ops = access_ops(x->a);
    exp->ctx = x->a;
    *out = x;
    return 0;
}

int sn_access_exported(struct sn_access *x, const struct builddev_export *r)
{
    if (!x || !x->export_diff || !r->changed)
        return 0;
    struct trace t;
    int err = written_trace(x, &t);
    if (!err)
        err = trace_export_beside(&t, r->data_path);
    trace_free(&t);
    return err;
}

static void print_stats(const struct access_stats *s, bool prefetching, bool json)
{
    if (prefetching)
        snap_info("prefetch: %llu of %llu trace blocks prefetched, %llu used, %llu unused; %llu reads missed",
                  (unsigned long long)s->prefetched, (unsigned long long)s->trace_blocks,
                  (unsigned long long)s->used, (unsigned long long)s->unused, (unsigned long long)s->missed);
    if (!json)
        return;
    struct json j;
    json_init(&j, stdout);
    access_stats_json(s, prefetching, &j);
    json_finish(&j);
    fflush(stdout);
}

int sn_access_finish(struct sn_access *x, bool json)
{
    if (!x)
        return 0;
    int rc = 0;
    access_stop_prefetch(x->a);
    if (x->record) {
        struct trace t;
        int err = written_trace(x, &t);
        if (!err && (err = trace_write_file(&t, x->record)) != 0)
            snap_fail_ctx(err, "--record-access %s", x->record);
        trace_free(&t);
        if (err)
            rc = cli_fail(err, "is the --record-access path writable?");
    }
    struct access_stats s;
    access_stats(x->a, &s);
    if (x->report)
        print_stats(&s, x->prefetching, json);
    access_close(x->a);
    trace_free(&x->merge);
    snap_free(x);
    return rc;
}
