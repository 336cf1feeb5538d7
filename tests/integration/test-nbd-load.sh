# A load test of serve-nbd --object (lazy copy-on-write): fio's nbd engine runs 8 jobs, each its
# own NBD connection with 32 requests in flight, mixed 4 KiB random reads and writes, for
# LOAD_SECONDS (default 60).  Meanwhile serve-nbd's memory is sampled every second from
# /proc/PID/status.  Passes when:
#   - fio reports no error (every read is checked: see below);
#   - anonymous memory (RssAnon) stays flat after the warm-up: the heap and thread stacks do
#     not grow with the number of requests.  VmRSS is printed too but not bounded: the cache
#     file is mmap'd, and its pages legitimately join the RSS as the object is fetched;
#   - a final sequential pass over the whole export verifies every block, and the store's object
#     is unchanged.
# Every block carries fio's verify header (crc32c of the block, its offset): the base object is
# written by fio itself, and the load's writes carry headers too, so any read -- of a block
# fetched lazily from the store, of one written during the load, of one never touched -- can
# be checked, during the load and after it.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires fio nbdinfo
fio --enghelp=nbd >/dev/null 2>&1 || skip "requires fio with the nbd engine (fio built with libnbd)"
secs=${LOAD_SECONDS:-60}
jobs=8 depth=32 region=$((64 << 20))
size=$((jobs * region))
# Growth of RssAnon allowed after the warm-up (the first sixth of the run, at least 3 s).
# Under TSan the bound is off: its shadow memory for the mapped cache is anonymous and comes and
# goes with its own bookkeeping (hundreds of MB); the numbers are still printed.
slack_kib=${LOAD_RSS_SLACK_KIB:-8192}
[ "${VARIANT:-}" != tsan ] || slack_kib=-1
warm=$((secs / 6)); [ $warm -ge 3 ] || warm=3
T=$(mktmpdir)
mkdir -p "$T/store" "$T/cache"

# The base object: every 4 KiB block a verifiable fio block.
fio --name=base --filename="$T/store/disk.img" --rw=write --bs=4k --size=$size --ioengine=psync \
    --verify=crc32c --do_verify=0 --verify_state_save=0 --output="$T/base.out" || { cat "$T/base.out"; die "fio could not write the base object"; }
store_sum=$(sha256 "$T/store/disk.img")

start_server "$T/pid" "$SNAPCTL" serve-nbd --object "file://$T/store/disk.img" --cache-dir "$T/cache" \
    -l "unix:$T/sock" --pid-file "$T/pid"
spid=$(cat "$T/pid")
uri="nbd+unix:///?socket=$T/sock"
nbdinfo --size "$uri" | grep -qx $size || die "export size"

# One sample a second: seconds, VmRSS kB, RssAnon kB, threads, open sockets (listener included).
sample() {
    t=0
    while kill -0 "$spid" 2>/dev/null; do
        socks=$(find "/proc/$spid/fd" -lname 'socket:*' 2>/dev/null | wc -l)
        awk -v t=$t -v s="$socks" '/^VmRSS:/ {r=$2} /^RssAnon:/ {a=$2} /^Threads:/ {n=$2} END {print t, r, a, n, s}' \
            "/proc/$spid/status" 2>/dev/null >>"$T/rss" || break
        sleep 1
        t=$((t + 1))
    done
}
: >"$T/rss"
sample &
sampler=$!
cleanup_fn kill_pid "$sampler"

# The load: each job owns one 64 MiB region (its own connection), so its verify of what it
# wrote is not raced by another job's write.  verify_backlog re-reads and checks written
# blocks while the load runs; reads of the mix check whatever they land on.
set +e
fio --name=load --ioengine=nbd --uri="$uri" --rw=randrw --rwmixread=50 --bs=4k --iodepth=$depth \
    --numjobs=$jobs --size=$region --offset_increment=$region --runtime="$secs" --time_based \
    --verify=crc32c --verify_backlog=4096 --verify_fatal=1 --verify_state_save=0 --group_reporting \
    --output-format=json --output="$T/load.json" 2>"$T/load.err"
frc=$?
set -e
kill_pid "$sampler"
[ $frc -eq 0 ] || { cat "$T/load.err"; tail -50 "$T/load.json"; die "fio load exited $frc"; }
python3 - "$T/load.json" "$secs" <<'PY' || die "fio load reported errors"
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
r, w = j["read"], j["write"]
print(f"load: {sys.argv[2]} s, {r['iops']:.0f} read IOPS, {w['iops']:.0f} write IOPS, "
      f"{r['total_ios'] + w['total_ios']} requests, errors {j['error']}")
sys.exit(1 if j["error"] or r["total_ios"] == 0 or w["total_ios"] == 0 else 0)
PY

# Memory: flat after the warm-up.
python3 - "$T/rss" "$warm" "$slack_kib" "$jobs" <<'PY' || { cat "$T/rss"; die "serve-nbd's memory or connections under load"; }
import sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 5]
warm, slack, jobs = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
conns = max(r[4] for r in rows) - 1
if conns < jobs:
    sys.exit(f"at most {conns} connections were open at once, expected {jobs}")
after = [r for r in rows if r[0] >= warm]
if len(after) < 3:
    sys.exit(f"only {len(after)} samples after the warm-up")
base = after[0][2]
peak = max(r[2] for r in after)
print(f"RssAnon after {warm} s warm-up: {base} kB, peak {peak} kB (+{peak - base} kB, bound {slack} kB); "
      f"VmRSS {after[0][1]} -> {after[-1][1]} kB (the mmap'd cache); "
      f"{conns} connections, {max(r[3] for r in rows)} threads")
if slack < 0:
    print("RssAnon not bounded under TSan")
    sys.exit(0)
sys.exit(1 if peak - base > slack else 0)
PY

# Afterwards: every block of the export verifies, in one sequential pass on a fresh connection.
fio --name=check --ioengine=nbd --uri="$uri" --rw=read --bs=4k --iodepth=8 --size=$size \
    --verify=crc32c --verify_fatal=1 --verify_state_save=0 --output="$T/check.out" 2>&1 || { tail -20 "$T/check.out"; die "the final verify pass failed"; }
[ "$(sha256 "$T/store/disk.img")" = "$store_sum" ] || die "the store's object was modified"
kill -0 "$spid" || die "serve-nbd died"
echo ok
