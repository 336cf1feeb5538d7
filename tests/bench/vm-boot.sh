#!/usr/bin/env bash
# vm-boot.sh -- boot a real guest from a cold remote store and time it: the local image (the
# floor), serve-nbd, serve-nbd with --prefetch of a trace recorded on an earlier boot, and nbdkit
# (curl plugin under its cow filter) over the same store.
#
#   SNAPCTL=./snapctl tests/bench/vm-boot.sh [--runs 3] [--ttfb 20] [--rate 100] [--json FILE]
#
# The guest is tests/tools/vm-guest.sh --bench (Debian's kernel, a busybox initramfs, a 256 MiB
# ext4 root holding 2,000 files / 64 MiB under /bench); its init prints "VMTEST INIT", reads
# every /bench file and prints "VMTEST BENCH <sha256>", then powers off.  Each boot is timed
# from QEMU's start to those two lines on the serial console; every run starts its server fresh
# (empty caches).  The store: tests/tools/faultserver.py with ttfb/rate in the URL (20 ms before
# every answer, 100 MB/s per connection), holding the image as a base build (serve-nbd reads it
# with --header) and as one raw object (for nbdkit's curl plugin).  The trace is recorded once,
# before the runs, by serve-nbd --record-access on a boot of the same build.  Medians of --runs
# boots.  QEMU runs TCG (KVM only where /dev/kvm works with vmx/svm): the guest's CPU time is in
# every number, the floor included.  Exits 1 when a program is missing.
set -euo pipefail
SNAPCTL=${SNAPCTL:-./snapctl}
SNAPCTL=$(cd "$(dirname "$SNAPCTL")" && pwd)/$(basename "$SNAPCTL")
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
runs=3 ttfb=20 rate=100 json=""
while [ $# -gt 0 ]; do
    case $1 in
    --runs) runs=$2; shift 2 ;;
    --ttfb) ttfb=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--ttfb MS] [--rate MBPS] [--json FILE]" >&2; exit 2 ;;
    esac
done
for p in qemu-system-x86_64 nbdkit nbdcopy python3 curl; do
    command -v $p >/dev/null || { echo "vm-boot.sh: $p is required (apt-get install qemu-system-x86 nbdkit libnbd-bin curl)" >&2; exit 1; }
done
nbdkit curl --version >/dev/null 2>&1 || { echo "vm-boot.sh: nbdkit's curl plugin is required" >&2; exit 1; }
G=$("$TOP/tests/tools/vm-guest.sh" --bench "$TOP/build/vm-guest")

T=$(mktemp -d "${TMPDIR:-/tmp}/snapctl-vmbench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
mkdir -p "$T/store" "$T/out"
accel="-accel tcg -cpu max"
if [ -w /dev/kvm ] && grep -qE '\b(vmx|svm)\b' /proc/cpuinfo; then accel="-accel kvm -cpu host"; fi

wait_file() { for _ in $(seq 300); do [ -e "$1" ] && return 0; sleep 0.05; done; echo "vm-boot.sh: no $1" >&2; exit 1; }
# The base build of the bench image, and the raw image beside it.
"$SNAPCTL" serve-nbd --size "$(stat -c %s "$G/rootfs-bench.ext4")" --export-diff "$T/out" --json \
    -l "unix:$T/base.sock" --pid-file "$T/base.pid" >"$T/base.json" &
bp=$!
wait_file "$T/base.pid"
nbdcopy "$G/rootfs-bench.ext4" "nbd+unix:///?socket=$T/base.sock"
kill -TERM $bp; wait $bp
B0=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if "build_id" in l][-1]["build_id"])' "$T/base.json")
"$SNAPCTL" upload --build "$T/out/$B0" "file://$T/store" >/dev/null
cp "$G/rootfs-bench.ext4" "$T/store/raw.img"
python3 "$TOP/tests/tools/faultserver.py" --root "$T/store" --port 0 --port-file "$T/fs.port" --quiet 2>"$T/fs.log" &
pids+=($!)
wait_file "$T/fs.port"; sleep 0.2
R="http://127.0.0.1:$(cat "$T/fs.port")/_fault/ttfb=$ttfb,rate=$rate"

# boot DRIVE-FILE-SPEC: one timed boot; prints "INIT_S BENCH_S SUM".
boot() {
    # shellcheck disable=SC2086
    python3 - "$1" "$G" "$accel" <<'PY'
import subprocess, sys, time
drive, g, accel = sys.argv[1], sys.argv[2], sys.argv[3].split()
cmd = ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", *accel,
       "-m", "256", "-smp", "1", "-kernel", f"{g}/vmlinux", "-initrd", f"{g}/initramfs.img",
       "-append", "console=ttyS0 root=/dev/vda rw panic=-1 quiet snaptest=bench",
       "-drive", f"if=virtio,format=raw,{drive}", "-serial", "stdio"]
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
init = bench = None
out = []
for line in p.stdout:
    line = line.decode(errors="replace")
    out.append(line)
    if "VMTEST INIT" in line and init is None:
        init = time.monotonic() - t0
    if "VMTEST BENCH" in line:
        bench = (time.monotonic() - t0, line.split()[-1])
try:
    p.wait(timeout=300)
except subprocess.TimeoutExpired:
    p.kill()
if init is None or bench is None:
    sys.stderr.write("".join(out[-30:]))
    sys.exit("vm-boot.sh: the guest did not finish its workload")
print(f"{init:.3f} {bench[0]:.3f} {bench[1]}")
PY
}

# start_srv NAME [OPTIONS]: a fresh server for one boot on $T/NAME.sock; sets SRV.
start_srv() {
    local name=$1; shift
    rm -rf "$T/cache" "$T/$name.sock" "$T/$name.pid"; mkdir "$T/cache"
    case $name in
    snapctl*) "$SNAPCTL" serve-nbd --header "$R/$B0/rootfs.ext4.header" --cache-dir "$T/cache" --oneshot \
                  -l "unix:$T/$name.sock" --pid-file "$T/$name.pid" --json "$@" >"$T/$name.json" 2>>"$T/$name.log" & ;;
    nbdkit) TMPDIR=$T/cache nbdkit -f -U "$T/$name.sock" -P "$T/$name.pid" --filter=cow curl "$R/raw.img" \
                cow-on-read=true 2>>"$T/$name.log" & ;;
    esac
    SRV=$!
    pids+=($SRV)
    wait_file "$T/$name.pid"
}
stop_srv() { kill "$SRV" 2>/dev/null || true; wait "$SRV" 2>/dev/null || true; }

# The trace: one boot of the same build, recorded.
start_srv snapctl-rec --record-access "$T/trace.json"
boot "file.driver=nbd,file.server.type=unix,file.server.path=$T/snapctl-rec.sock" >/dev/null
for _ in $(seq 100); do [ -s "$T/trace.json" ] && break; sleep 0.1; done
stop_srv

results=$T/results
: >"$results"
for i in $(seq "$runs"); do
    for cfg in local snapctl snapctl-prefetch nbdkit; do
        case $cfg in
        local) r=$(boot "file=$G/rootfs-bench.ext4,snapshot=on") ;;
        snapctl) start_srv snapctl --record-access "$T/unused.json"
            r=$(boot "file.driver=nbd,file.server.type=unix,file.server.path=$T/snapctl.sock"); stop_srv
            echo "access snapctl $(cat "$T/snapctl.json")" >>"$T/access" ;;
        snapctl-prefetch) start_srv snapctl-prefetch --prefetch "$T/trace.json"
            r=$(boot "file.driver=nbd,file.server.type=unix,file.server.path=$T/snapctl-prefetch.sock"); stop_srv
            echo "access snapctl-prefetch $(cat "$T/snapctl-prefetch.json")" >>"$T/access" ;;
        nbdkit) start_srv nbdkit; r=$(boot "file.driver=nbd,file.server.type=unix,file.server.path=$T/nbdkit.sock"); stop_srv ;;
        esac
        echo "$cfg $r" >>"$results"
        echo "run $i $cfg: $r" >&2
    done
done

python3 - "$results" "$json" "$ttfb" "$rate" "$runs" "$accel" "$T/trace.json" "$T/access" <<'PY'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
cfgs = ["local", "snapctl", "snapctl-prefetch", "nbdkit"]
labels = {"local": "local image (floor)", "snapctl": "serve-nbd", "snapctl-prefetch": "serve-nbd --prefetch",
          "nbdkit": "nbdkit curl + cow"}
sums = {r[3] for r in rows}
if len(sums) != 1:
    sys.exit(f"vm-boot.sh: the guests' checksums differ: {sums}")
med = {c: (statistics.median(float(r[1]) for r in rows if r[0] == c),
           statistics.median(float(r[2]) for r in rows if r[0] == c)) for c in cfgs}
trace = json.load(open(sys.argv[7]))
print(f"boot from a cold store, {sys.argv[3]} ms per request + {sys.argv[4]} MB/s (faultserver), "
      f"medians of {sys.argv[5]} boots, {sys.argv[6]}; workload: 2,000 files, 64 MiB; "
      f"trace {len(trace['indices'])} blocks")
print(f"{'server':26} {'to init':>9} {'to workload end':>16} {'vs floor':>9}")
floor = med["local"][1]
out = {"ttfb_ms": int(sys.argv[3]), "rate_mbps": float(sys.argv[4]), "runs": int(sys.argv[5]),
       "accel": sys.argv[6], "trace_blocks": len(trace["indices"]), "results": []}
for c in cfgs:
    i, b = med[c]
    print(f"{labels[c]:26} {i:8.2f}s {b:15.2f}s {b / floor:8.2f}x")
    out["results"].append({"server": c, "init_s": i, "workload_end_s": b, "vs_floor": b / floor,
                           "runs": [[float(r[1]), float(r[2])] for r in rows if r[0] == c]})
print(f"goals: prefetch <= 1.2x the floor: {med['snapctl-prefetch'][1] / floor:.2f}x; "
      f"serve-nbd faster than nbdkit: {med['nbdkit'][1] / med['snapctl'][1]:.2f}x")
for line in open(sys.argv[8]):
    _, cfg, j = line.split(" ", 2)
    a = json.loads(j)["access"]
    out.setdefault("access", {}).setdefault(cfg, []).append(a)
for cfg, l in out.get("access", {}).items():
    print(f"{labels[cfg]}: demand misses (4 KiB blocks) {[a['missed'] for a in l]}"
          + (f", prefetched {[a['prefetched'] for a in l]}, used {[a['used'] for a in l]}" if l[0]["prefetch"] else ""))
if sys.argv[2]:
    json.dump(out, open(sys.argv[2], "w"), indent=1)
PY
