# serve-nbd --prefetch replays a trace written by another program, over a slow HTTP store:
#   a 32 MiB base build of random data is uploaded to a file:// store that the fault server
#   serves at 20 ms + 100 MB/s; python's json writes a trace in the reference's shape (blocks in
#   chunks 5, 1 and 6, in that order); with --prefetch-threads 1 the store's first three data
#   requests are for those chunks in trace order, each chunk is fetched once (no byte twice); a
#   client reading the trace's blocks after the prefetch gets the right bytes, and --json at exit
#   says 3 trace blocks, 3 prefetched, the reads used, none missed.  The same trace inside a
#   metadata.json (prefetch.rootfs) is taken too.  --record-access on a plain --file writes what
#   nbdsh did, in order, and with --merge-trace only the blocks both runs touched; a malformed
#   trace is refused (exit 3) before serving.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/tools/faultserver.sh
requires nbdcopy nbdsh python3 curl
T=$(mktmpdir)
S=$T/store
mkdir -p "$S" "$T/out" "$T/cache"
export TMPDIR=$T/cache
M=1048576

head -c $((32 * M)) /dev/urandom >"$T/img"
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd --size 32M --export-diff "$T/out" --json \
    -l "unix:$T/base.sock" --pid-file "$T/pid" >"$T/base.json"
nbdcopy "$T/img" "nbd+unix:///?socket=$T/base.sock"
kill -TERM "$_spid"; wait "$_spid" || die "serve-nbd --size exited $? at SIGTERM"
B0=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if "build_id" in l][-1]["build_id"])' "$T/base.json")
"$SNAPCTL" upload --build "$T/out/$B0" "file://$S" >/dev/null || die "upload --build"
faultserver_start "$S" --quiet
R="$FS_URL/_fault/ttfb=20,rate=100"

# The trace, written by python: blocks 5 MiB + 12 KiB, 1 MiB + 4 KiB... in chunks 5, 1, 6.
python3 - "$T/trace.json" "$T/metadata.json" <<'PY'
import json, sys
t = {"indices": [5 * 1024 + 3, 1024 + 1, 6 * 1024], "access_types": ["r", "r", "w"], "block_size": 4096}
json.dump(t, open(sys.argv[1], "w"))
json.dump({"version": 2, "prefetch": {"rootfs": t}}, open(sys.argv[2], "w"), indent=2)
PY

# run TRACE: serve with --prefetch TRACE, wait for the prefetch to bring its 3 chunks, read the
# trace's blocks and compare them with the image, stop; leaves the --json line in $T/run.json.
run() {
    server_reset "$FS_URL"
    rm -f "$T/pid"
    start_server "$T/pid" "$SNAPCTL" serve-nbd --header "$R/$B0/rootfs.ext4.header" --prefetch "$1" \
        --prefetch-threads 1 --json -l "unix:$T/p.sock" --pid-file "$T/pid" >"$T/run.json" 2>"$T/run.log"
    pid=$_spid
    # Poll the store until the three chunks (12 MiB) went out, then a little for the last bytes
    # to be marked in the cache (the prefetch's own reads wait for them).
    i=0
    until [ "$(server_stats "$FS_URL" 'd["bytes_sent"] >= 3 * 4194304')" = True ]; do
        i=$((i + 1)); [ $i -lt 300 ] || die "the prefetch did not fetch 3 chunks in 30 s"
        sleep 0.1
    done
    sleep 0.5
    nbdsh_py - "nbd+unix:///?socket=$T/p.sock" "$T/img" <<'PY' || die "reading the prefetched blocks"
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
img = open(sys.argv[2], "rb").read()
for b in (5 * 1024 + 3, 1024 + 1, 6 * 1024):
    assert h.pread(4096, b * 4096) == img[b * 4096:(b + 1) * 4096], b
h.shutdown()
PY
    kill -TERM "$pid"; wait "$pid" || { cat "$T/run.log" >&2; die "serve-nbd exited $?"; }
    server_stats "$FS_URL" >"$T/stats.json"
}

for trace in "$T/trace.json" "$T/metadata.json"; do
    run "$trace"
    python3 - "$T/run.json" "$T/stats.json" "$B0" <<'PY' || { cat "$T/run.log" >&2; die "prefetch of $trace"; }
import json, sys
a = [json.loads(l) for l in open(sys.argv[1]) if '"access"' in l][-1]["access"]
assert a["prefetch"] and a["trace_blocks"] == 3 and a["prefetched"] == 3, a
assert a["used"] == 3 and a["unused"] == 0 and a["missed"] == 0, a
st = json.load(open(sys.argv[2]))
starts = []
for r in st["ranges"]:
    lo, hi = (int(x) for x in r.split("=")[1].split("-"))
    if hi - lo + 1 <= 4194304:  # not the header's read (asked with its size limit)
        starts.append((lo, hi))
chunks = [lo // 4194304 for lo, hi in starts if hi - lo + 1 > 65536 or lo % 4194304]
first = []
for c in chunks:
    if c not in first:
        first.append(c)
assert first[:3] == [5, 1, 6], (first, starts)
total = sum(hi - lo + 1 for lo, hi in starts)
# Under a sanitizer one direct read (at most 128 KiB) may race a chunk's stream: the stream,
# slowed down, looked far from a prefetch piece.  More than that, or any in release, is a refetch.
import os
slack = 131072 if os.environ.get("VARIANT", "release") != "release" else 0
assert total <= 3 * 4194304 + 65536 + slack, ("fetched twice", total, starts)
PY
done

# --record-access on a plain file: nbdsh's accesses, in order, one per block.
head -c $((4 * M)) /dev/urandom >"$T/f.img"
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd --file "$T/f.img" --record-access "$T/rec.json" \
    -l "unix:$T/f.sock" --pid-file "$T/pid"
nbdsh_py - "nbd+unix:///?socket=$T/f.sock" <<'PY'
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
h.pread(8192, 3 * 4096)
h.pwrite(b"x" * 4096, 100 * 4096)
h.pread(100, 3 * 4096 + 5)
h.pread(4096, 0)
h.shutdown()
PY
kill -TERM "$_spid"; wait "$_spid" || die "serve-nbd --file exited $?"
python3 - "$T/rec.json" <<'PY' || die "the recorded trace"
import json, sys
t = json.load(open(sys.argv[1]))
assert t == {"indices": [3, 4, 100, 0], "access_types": ["r", "r", "w", "r"], "block_size": 4096}, t
PY

# --merge-trace: what is written keeps the blocks the other trace has too, in this run's order.
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd --file "$T/f.img" --record-access "$T/rec2.json" \
    --merge-trace "$T/rec.json" -l "unix:$T/f.sock" --pid-file "$T/pid"
nbdsh_py - "nbd+unix:///?socket=$T/f.sock" <<'PY'
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
for b in (4, 7, 100, 0):
    h.pread(4096, b * 4096)
h.shutdown()
PY
kill -TERM "$_spid"; wait "$_spid" || die "serve-nbd --merge-trace exited $?"
python3 - "$T/rec2.json" <<'PY' || die "the merged trace"
import json, sys
t = json.load(open(sys.argv[1]))
assert t == {"indices": [4, 100, 0], "access_types": ["r", "r", "r"], "block_size": 4096}, t
PY
expect_exit 2 "$SNAPCTL" serve-nbd --file "$T/f.img" --merge-trace "$T/rec.json" -l "unix:$T/bad.sock"

# A malformed trace: refused with the reason, before serving.
printf '{"indices":[1,2],"access_types":["r"],"block_size":4096}' >"$T/bad.json"
expect_exit 3 "$SNAPCTL" serve-nbd --file "$T/f.img" --prefetch "$T/bad.json" -l "unix:$T/bad.sock"
grep -q "2 indices but 1 access types" "$LAST_ERR" || { cat "$LAST_ERR"; die "the malformed trace's message"; }
