#!/usr/bin/env bash
# sandboxes.sh -- the 8-sandbox cold start (issue 14): a host starts 8 VMs from one template base
# at once, each VM's disk an NBD device, every cache empty.
#
#   SNAPCTL=./snapctl tests/bench/sandboxes.sh [--size 256M] [--ttfb 20] [--rate 100] [--rounds 3]
#                                             [--json FILE] [--setups "a b c"] [--dir /dev/shm]
#                                             [--verbose]
#
# The store: a base build of --size random bytes (serve-nbd --size ... --export-diff, then
# `snapctl upload --build` to a file:// store) that tests/tools/faultserver.py serves with every
# request delayed --ttfb ms and its body paced at --rate MB/s per connection (the fault sits in
# the URL, /_fault/ttfb=20,rate=100/..., so every client pays it on every request).
#
# Setups, each started fresh (new cache directories, the store's counters zeroed):
#   a  snapctl, 8 processes: serve-nbd --header URL/B0/rootfs.ext4.header --chunk-cache CC, one
#      chunk cache directory for all 8, each process on its own Unix socket with its own
#      --cache-dir (and TMPDIR);
#   b  snapctl, 1 process: serve-nbd --export s1=HEADER_URL ... --export s8=HEADER_URL
#      --chunk-cache CC; the clients pick their device by export name (nbd+unix:///s1?socket=);
#   c  nbdkit, 8 processes, as a host runs it without snapctl: nbdkit --filter=cache curl
#      URL/B0/rootfs.ext4 cache-on-read=true (the same data object through the same fault), each
#      with its own TMPDIR.
# For each: the servers start, then 8 `nbdcopy URI FILE` at once; measured are the wall time from
# starting the copies until the last one ends, the bytes the store sent (faultserver's
# bytes_sent), and the disk the setup uses once they end, before its servers stop:
# tests/tools/proc-disk.py over the servers' open files (their cache files are unlinked at
# creation, so `du` misses them) and the chunk cache directory, each file once by inode.  Every
# copy is checked against the base's sha256 (after the clock stops).  --rounds rounds, the setups
# interleaved (a b c a b c ...); the table shows medians.
#
# Goals (issue 14): against nbdkit, the store sends at most 1/6 of the bytes, the setup uses at
# most 1/6 of the disk, and the copies take at most half the time: PASS or MISS each (a MISS does
# not fail the script).  Exits 1 on a wrong copy or a missing program.
#
# --dir: where the one scratch directory goes (store, caches, copies; removed at the end); tmpfs
# by default, so the disk's own speed is not in the numbers.  Needs about (2 + 2 x 8) x --size.
# --verbose lists the files counted as disk use (bytes, path) on stderr, each measurement.
set -euo pipefail
SNAPCTL=${SNAPCTL:-./snapctl}
SNAPCTL=$(cd "$(dirname "$SNAPCTL")" && pwd)/$(basename "$SNAPCTL")
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
size=256M ttfb=20 rate=100 rounds=3 json="" setups="a b c" dir=/dev/shm list=()
[ -d /dev/shm ] && [ -w /dev/shm ] || dir=${TMPDIR:-/tmp}
while [ $# -gt 0 ]; do
    case $1 in
    --size) size=$2; shift 2 ;;
    --ttfb) ttfb=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --setups) setups=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --verbose) list=(--list); shift ;;
    *) echo "usage: $0 [--size 256M] [--ttfb MS] [--rate MBPS] [--rounds N] [--json FILE] [--setups \"a b c\"] [--dir DIR] [--verbose]" >&2
       exit 2 ;;
    esac
done
for s in $setups; do
    case $s in a|b|c) ;; *) echo "sandboxes.sh: unknown setup $s (a, b or c)" >&2; exit 2 ;; esac
done
for p in nbdkit nbdcopy python3 curl sha256sum; do
    command -v $p >/dev/null || { echo "sandboxes.sh: $p is required (apt-get install nbdkit libnbd-bin python3 curl)" >&2; exit 1; }
done
nbdkit curl --version >/dev/null 2>&1 || { echo "sandboxes.sh: nbdkit's curl plugin is required" >&2; exit 1; }
nbdkit --filter=cache null --version >/dev/null 2>&1 || { echo "sandboxes.sh: nbdkit's cache filter is required" >&2; exit 1; }
[ -x "$SNAPCTL" ] || { echo "sandboxes.sh: no snapctl at $SNAPCTL (set SNAPCTL)" >&2; exit 1; }

N=8
T=$(mktemp -d "$dir/snapctl-sbench.XXXXXX")
pids=() SPIDS=()
cleanup() { for p in "${pids[@]}" "${SPIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
mkdir "$T/store" "$T/out" "$T/logs" "$T/sock" "$T/copies"
fail() { echo "sandboxes.sh: $*" >&2; exit 1; }

# wait_file FILE PID: wait up to 10 s for FILE while PID lives.
wait_file() {
    for _ in $(seq 200); do
        [ -s "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.05
    done
    tail -n 20 "$T"/logs/*.log >&2 || true
    fail "no $1 (process $2 did not start)"
}

# The base build, uploaded; the data object must be the image itself (nbdkit reads it raw).
head -c "$size" /dev/urandom >"$T/img"
bytes=$(stat -c %s "$T/img")
want=$(sha256sum "$T/img" | cut -d' ' -f1)
"$SNAPCTL" serve-nbd --size "$bytes" --export-diff "$T/out" --json -l "unix:$T/sock/base.sock" \
    --pid-file "$T/sock/base.pid" >"$T/base.json" 2>"$T/logs/base.log" &
bp=$!
pids+=("$bp")
wait_file "$T/sock/base.pid" $bp
nbdcopy "$T/img" "nbd+unix:///?socket=$T/sock/base.sock"
kill -TERM $bp
wait $bp || fail "serve-nbd --export-diff exited $?"
B0=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if "build_id" in l][-1]["build_id"])' "$T/base.json")
"$SNAPCTL" upload --build "$T/out/$B0" "file://$T/store" >/dev/null
rm -rf "$T/out" "$T/img"
[ "$(sha256sum "$T/store/$B0/rootfs.ext4" | cut -d' ' -f1)" = "$want" ] || fail "the uploaded data object is not the image"

python3 "$TOP/tests/tools/faultserver.py" --root "$T/store" --port 0 --port-file "$T/fs.port" --quiet 2>"$T/logs/fs.log" &
pids+=($!)
wait_file "$T/fs.port" $!
FS="http://127.0.0.1:$(cat "$T/fs.port")"
R="$FS/_fault/ttfb=$ttfb,rate=$rate/$B0"
server_reset() { curl -sf -X POST "$FS/_stats/reset" >/dev/null; }
bytes_sent() { curl -sf "$FS/_stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_sent"])'; }

# start_setup SETUP: its servers, empty, in $T/run; sets SPIDS (their PIDs) and URIS.
start_setup() {
    local i d=$T/run
    rm -rf "$d" "$T/sock"/s*
    mkdir -p "$d/cc"
    SPIDS=() URIS=()
    case $1 in
    a) for i in $(seq $N); do
           mkdir "$d/tmp$i"
           TMPDIR=$d/tmp$i "$SNAPCTL" serve-nbd --header "$R/rootfs.ext4.header" --chunk-cache "$d/cc" \
               --cache-dir "$d/tmp$i" -l "unix:$T/sock/s$i.sock" --pid-file "$T/sock/s$i.pid" \
               2>>"$T/logs/a$i.log" &
           SPIDS+=($!) URIS+=("nbd+unix:///?socket=$T/sock/s$i.sock")
       done ;;
    b) local ex=()
       mkdir "$d/tmp"
       for i in $(seq $N); do
           ex+=(--export "s$i=$R/rootfs.ext4.header") URIS+=("nbd+unix:///s$i?socket=$T/sock/s.sock")
       done
       TMPDIR=$d/tmp "$SNAPCTL" serve-nbd "${ex[@]}" --chunk-cache "$d/cc" --cache-dir "$d/tmp" \
           -l "unix:$T/sock/s.sock" --pid-file "$T/sock/s1.pid" 2>>"$T/logs/b.log" &
       SPIDS+=($!) ;;
    c) for i in $(seq $N); do
           mkdir "$d/tmp$i"
           TMPDIR=$d/tmp$i nbdkit -f -U "$T/sock/s$i.sock" -P "$T/sock/s$i.pid" --filter=cache \
               curl "$R/rootfs.ext4" cache-on-read=true 2>>"$T/logs/c$i.log" &
           SPIDS+=($!) URIS+=("nbd+unix:///?socket=$T/sock/s$i.sock")
       done ;;
    esac
    for i in "${!SPIDS[@]}"; do wait_file "$T/sock/s$((i + 1)).pid" "${SPIDS[$i]}"; done
}

# run_setup SETUP ROUND: one measurement; appends "SETUP ROUND WALL_S STORE_BYTES DISK_BYTES".
run_setup() {
    local i p t0 t1 sent used cps=()
    server_reset
    start_setup "$1"
    t0=$(date +%s.%N)
    for i in $(seq $N); do
        nbdcopy "${URIS[$((i - 1))]}" "$T/copies/c$i" 2>>"$T/logs/nbdcopy.log" &
        cps+=($!)
    done
    for p in "${cps[@]}"; do wait "$p" || { tail "$T/logs/nbdcopy.log" >&2; fail "setup $1: an nbdcopy failed"; }; done
    t1=$(date +%s.%N)
    sent=$(bytes_sent)
    used=$(python3 "$TOP/tests/tools/proc-disk.py" "${list[@]}" "${SPIDS[@]/#/--pid=}" --exclude "$T/logs" "$T/run")
    for p in "${SPIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    SPIDS=()
    for i in $(seq $N); do
        [ "$(sha256sum "$T/copies/c$i" | cut -d' ' -f1)" = "$want" ] ||
            fail "setup $1 round $2: copy $i differs from the base (logs in $T/logs)"
    done
    rm -f "$T/copies"/c*
    echo "$1 $2 $(python3 -c "print($t1 - $t0)") $sent $used" >>"$T/results"
    echo "round $2 setup $1: $(tail -n 1 "$T/results" | cut -d' ' -f3-)" >&2
}

: >"$T/results"
for r in $(seq "$rounds"); do
    for s in $setups; do run_setup "$s" "$r"; done
done

python3 - "$T/results" "$json" "$size" "$bytes" "$ttfb" "$rate" "$rounds" "$setups" <<'PY'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
size, base, ttfb, rate, rounds, setups = sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7], sys.argv[8].split()
labels = {"a": "A snapctl, 8 processes, 1 chunk cache", "b": "B snapctl, 1 process, 8 exports",
          "c": "C nbdkit cache+curl, 8 processes"}
med = {s: [statistics.median(float(r[k]) for r in rows if r[0] == s) for k in (2, 3, 4)] for s in setups}
M = 1048576
print(f"8 sandboxes cold from one {size} base: 8 nbdcopy at once, store {ttfb} ms per request + {rate} MB/s "
      f"per connection (faultserver); medians of {rounds} round(s), setups interleaved")
print(f"{'setup':40} {'wall s':>7} {'store MiB':>10} {'(x base)':>9} {'disk MiB':>9} {'(x base)':>9}")
for s in setups:
    w, st, d = med[s]
    print(f"{labels[s]:40} {w:7.2f} {st / M:10.1f} {st / base:8.2f}x {d / M:9.1f} {d / base:8.2f}x")
out = {"size": size, "base_bytes": base, "ttfb_ms": int(ttfb), "rate_mbps": float(rate), "rounds": int(rounds),
       "setups": {s: {"label": labels[s], "wall_s": med[s][0], "store_bytes": int(med[s][1]),
                      "disk_bytes": int(med[s][2]),
                      "runs": [{"wall_s": float(r[2]), "store_bytes": int(r[3]), "disk_bytes": int(r[4])}
                               for r in rows if r[0] == s]} for s in setups},
       "goals": {}}
if "c" in med:
    goals = (("store bytes", 1, 1 / 6, "1/6"), ("disk", 2, 1 / 6, "1/6"), ("wall time", 0, 1 / 2, "1/2"))
    for s in (x for x in setups if x != "c"):
        for name, k, bound, txt in goals:
            ratio = med[s][k] / med["c"][k] if med["c"][k] else float("inf")
            ok = ratio <= bound
            print(f"{labels[s][:1]} / nbdkit {name:12} {ratio:6.3f}  goal <= {txt} ({bound:.3f}): {'PASS' if ok else 'MISS'}")
            out["goals"].setdefault(s, {})[name.replace(" ", "_")] = {"ratio": ratio, "goal": bound, "pass": ok}
if sys.argv[2]:
    json.dump(out, open(sys.argv[2], "w"), indent=1)
PY
