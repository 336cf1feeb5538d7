#!/usr/bin/env bash
# nbd-cold.sh -- cold reads through a slow HTTP store: serve-nbd --object against nbdkit's curl
# plugin under its cow filter and under its cache filter, all three reading the same URL.
#
#   SNAPCTL=./snapctl tests/bench/nbd-cold.sh [--size 1G] [--ttfb 20] [--rate 100] [--seconds 10]
#                                            [--reads 512] [--json FILE] [--servers "snapctl cow cache"]
#
# --servers snapctl measures serve-nbd alone (about 2 minutes instead of 5-10; ratios print as "-").
# --threads N passes -t N (worker threads per connection, i.e. requests in flight) to serve-nbd.
#
# The store: tests/tools/faultserver.py serving one random object from tmpfs, every request
# (HEAD or ranged GET) delayed by --ttfb ms before its status line and its body paced at --rate
# MB/s -- a simulated remote store of 20 ms per request and 100 MB/s per connection, by default.
# The delay sits in the URL (/_fault/ttfb=20,rate=100/obj), so every client pays it on every
# request, however many it sends in parallel; the server itself moves >1 GB/s when not told to
# wait, so the delay is what is measured, not Python.
#
# For each server, started fresh (nothing cached) for each measurement:
#   sequential: `nbdcopy URI null:` over the whole object, MiB/s, and what the store saw;
#   random qd1: fio's nbd engine, the first 100 4 KiB random reads one at a time: mean latency;
#   random qd32: the first --reads 4 KiB random reads with 32 in flight: IOPS.
#   zeroed copy: all but 6 MiB of the device zeroed by a client (WRITE_ZEROES, or writes of
#               zeros where the server offers no WRITE_ZEROES), then
#               `nbdcopy --synchronous URI null:` (it asks block status before every 256 KiB):
#               milliseconds.  serve-nbd answers block status from its block states in memory and
#               reports the zeroed ranges as holes; the peers report everything as data (the curl
#               plugin has no extents), so nbdcopy reads the zeroed gigabyte from their overlays.
# (Counts, not durations: serve-nbd fetches whole 4 MiB chunks behind the reader, so a run of
# fixed length would soon be reading a warm cache; the first reads are the cold ones.)
# The peers keep what they read (cow-on-read=true, cache-on-read=true), as serve-nbd does.
# Ratios say how many times faster snapctl is (peer latency / snapctl latency for qd1).  Exits 1 when a peer program is missing.
set -euo pipefail
SNAPCTL=${SNAPCTL:-./snapctl}
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
size=1G ttfb=20 rate=100 reads=512 json="" servers="snapctl cow cache" threads=()
while [ $# -gt 0 ]; do
    case $1 in
    --size) size=$2; shift 2 ;;
    --ttfb) ttfb=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --reads) reads=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --threads) threads=(-t "$2"); shift 2 ;;
    *) echo "usage: $0 [--size 1G] [--ttfb MS] [--rate MBPS] [--reads N] [--json FILE] [--servers LIST] [--threads N]" >&2
       exit 2 ;;
    esac
done
for p in nbdkit nbdcopy fio python3 curl; do
    command -v $p >/dev/null || { echo "nbd-cold.sh: $p is required (apt-get install nbdkit nbdkit-plugin-libcurl libnbd-bin fio curl)" >&2; exit 1; }
done
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "nbd-cold.sh: python3-libnbd is required" >&2; exit 1; }
nbdkit curl --version >/dev/null 2>&1 || { echo "nbd-cold.sh: nbdkit's curl plugin is required" >&2; exit 1; }

T=$(mktemp -d /dev/shm/snapctl-cold.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
mkdir "$T/root" "$T/cache"
head -c "$size" /dev/urandom >"$T/root/obj"
bytes=$(stat -c %s "$T/root/obj")

python3 "$TOP/tests/tools/faultserver.py" --root "$T/root" --port 0 --port-file "$T/fs.port" --quiet 2>"$T/fs.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$T/fs.port" ] && break; sleep 0.1; done
base="http://127.0.0.1:$(cat "$T/fs.port")"
url="$base/_fault/ttfb=$ttfb,rate=$rate/obj"
stats() { curl -s "$base/_stats" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["requests"], d["bytes_sent"])'; }

# start NAME [rw]: a fresh server (empty cache) on $T/NAME.sock, read-only unless rw; sets SRV.
start() {
    rm -rf "$T/cache" "$T/$1.sock" "$T/$1.pid"; mkdir "$T/cache"
    local ro=-r; [ "${2:-}" != rw ] || ro=""
    case $1 in
    snapctl) "$SNAPCTL" serve-nbd $ro "${threads[@]}" --object "$url" --cache-dir "$T/cache" -l "unix:$T/$1.sock" \
                 --pid-file "$T/$1.pid" 2>>"$T/$1.log" & ;;
    cow) TMPDIR=$T/cache nbdkit $ro -f -U "$T/$1.sock" -P "$T/$1.pid" --filter=cow curl "$url" \
             cow-on-read=true 2>>"$T/$1.log" & ;;
    cache) TMPDIR=$T/cache nbdkit $ro -f -U "$T/$1.sock" -P "$T/$1.pid" --filter=cache curl "$url" \
               cache-on-read=true 2>>"$T/$1.log" & ;;
    esac
    SRV=$!
    pids+=($SRV)
    for _ in $(seq 200); do [ -S "$T/$1.sock" ] && [ -s "$T/$1.pid" ] && break; sleep 0.05; done
    [ -S "$T/$1.sock" ] || { cat "$T/$1.log" >&2; echo "nbd-cold.sh: $1 did not start" >&2; exit 1; }
    curl -s -XPOST "$base/_stats/reset" >/dev/null
}
stop() { kill "$SRV" 2>/dev/null || true; wait "$SRV" 2>/dev/null || true; }
# The server's anonymous memory now, in MB (buffers and heap; the mapped cache file is not in it).
rss_anon() { awk '/^RssAnon:/ {printf "%.1f", $2 / 1024}' "/proc/$SRV/status" 2>/dev/null || echo 0; }

results=$T/results
: >"$results"
# The floor: the store itself, to a plain HTTP client with 32 requests in flight (and 32 streams).
read -r floor_ttfb floor_iops floor_stream < <(python3 "$TOP/tests/tools/store-floor.py" "$url" "$bytes" 32)
echo "store ttfb32 $floor_ttfb 0 0" >>"$results"
echo "store iops32 $floor_iops 0 0" >>"$results"
echo "store stream32 $floor_stream 0 0" >>"$results"
curl -s -XPOST "$base/_stats/reset" >/dev/null
for srv in $servers; do
    uri="nbd+unix:///?socket=$T/$srv.sock"
    start $srv
    t0=$(date +%s.%N); nbdcopy "$uri" null:; t1=$(date +%s.%N)
    read -r reqs sent < <(stats)
    echo "$srv seq $(python3 -c "print($bytes / 1048576 / ($t1 - $t0))") $reqs $sent" >>"$results"
    stop
    for qd in 1 32; do
        n=$reads; [ $qd = 32 ] || n=100
        start $srv
        fio --name=cold --ioengine=nbd --uri="$uri" --rw=randread --bs=4k --iodepth=$qd --number_ios=$n \
            --size="$bytes" --output-format=json --output="$T/fio.json" >/dev/null 2>&1
        read -r reqs sent < <(stats)
        echo "$srv rss_qd$qd $(rss_anon) 0 0" >>"$results"
        echo "$srv rand_qd$qd $(python3 - "$T/fio.json" $qd <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["jobs"][0]["read"]
print(r["clat_ns"]["mean"] / 1e6 if sys.argv[2] == "1" else r["iops"])
PY
) $reqs $sent" >>"$results"
        stop
    done
    # Zero all but [0, 3M), the middle MiB and the last 2 MiB, then copy with block status.
    start $srv rw
    PATH=/usr/bin:$PATH /usr/bin/python3 - "$uri" "$bytes" <<'PY'
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
size, M = int(sys.argv[2]), 1 << 20
mid = size // 2 // M * M
zeros = bytes(8 * M)
for lo, hi in ((3 * M, mid), (mid + M, size - 2 * M)):
    off = lo
    while off < hi:
        if h.can_zero():
            n = min(hi - off, 64 * M)
            h.zero(n, off)
        else:  # nbdkit's cow filter over curl offers no WRITE_ZEROES: write the zeros
            n = min(hi - off, len(zeros))
            h.pwrite(zeros[:n], off)
        off += n
if h.can_flush():
    h.flush()
h.shutdown()
PY
    curl -s -XPOST "$base/_stats/reset" >/dev/null
    t0=$(date +%s.%N); nbdcopy --synchronous "$uri" null:; t1=$(date +%s.%N)
    read -r reqs sent < <(stats)
    echo "$srv zeroed $(python3 -c "print(($t1 - $t0) * 1000)") $reqs $sent" >>"$results"
    stop
    echo "$srv done" >&2
done

python3 - "$results" "$json" "$size" "$ttfb" "$rate" "$reads" "$servers" <<'PY'
import json, sys
res = {}
for srv, what, v, reqs, sent in (l.split() for l in open(sys.argv[1])):
    res[(srv, what)] = (float(v), int(reqs), int(sent))
size, ttfb, rate, reads, servers = sys.argv[3:8]
servers = servers.split()
nan = float("nan")
def val(srv, k):
    return res.get((srv, k), (nan, 0, 0))
print(f"cold reads of a {size} object over HTTP, {ttfb} ms per request + {rate} MB/s per connection "
      f"(faultserver); every server started empty")
ft, fi, fs = val("store", "ttfb32")[0], val("store", "iops32")[0], val("store", "stream32")[0]
print(f"the store to a plain HTTP client (tests/tools/store-floor.py), 32 in flight: a 4 KiB GET takes "
      f"{ft:.1f} ms (median), {fi:.0f} GETs/s; 32 parallel 4 MiB streams: {fs:.0f} MB/s in all")
print(f"goals: qd32 >= 0.8 x 32 / {ft:.1f} ms = {0.8 * 32 / ft * 1000:.0f} IOPS; sequential >= 3 x {rate} MB/s = "
      f"{3 * float(rate) / 1.048576:.0f} MiB/s")
print(f"{'measurement':40} {'snapctl':>9} {'cow':>9} {'cache':>9} {'vs cow':>7} {'vs cache':>8}")
labels = {"seq": ("sequential, nbdcopy", "MiB/s"),
          "rand_qd1": ("4 KiB random, qd1, first 100", "ms/read"),
          "rand_qd32": (f"4 KiB random, qd32, first {reads}", "IOPS"),
          "zeroed": ("zeroed but 6 MiB, nbdcopy --synchronous", "ms"),
          "rss_qd32": (f"RssAnon after the qd32 reads", "MB")}
lower_better = {"rand_qd1", "zeroed", "rss_qd32"}
out = {"size": size, "ttfb_ms": int(ttfb), "rate_mbps": float(rate), "store_ttfb32_ms": ft,
       "store_iops32": fi, "store_stream32_mbps": fs, "peers": ["nbdkit cow+curl", "nbdkit cache+curl"],
       "results": []}
for k, (label, unit) in labels.items():
    s, c, ca = val("snapctl", k)[0], val("cow", k)[0], val("cache", k)[0]
    rc, rca = (c / s, ca / s) if k in lower_better else (s / c, s / ca)
    f = lambda x: f"{x:9.1f}" if x == x else f"{'-':>9}"
    r = lambda x, w: f"{x:{w}.1f}x" if x == x else f"{'-':>{w + 1}}"
    print(f"{label:40} {f(s)} {f(c)} {f(ca)} {r(rc, 6)} {r(rca, 7)}  ({unit})")
    clean = lambda x: x if x == x else None
    out["results"].append({"what": k, "unit": unit, "snapctl": clean(s), "nbdkit_cow": clean(c),
                           "nbdkit_cache": clean(ca), "ratio_cow": clean(rc), "ratio_cache": clean(rca),
                           "store": {srv: {"requests": val(srv, k)[1], "bytes": val(srv, k)[2]}
                                     for srv in servers}})
print("store requests / MiB sent: " + "; ".join(
    f"{k}: " + ", ".join(f"{srv} {val(srv, k)[1]}/{val(srv, k)[2] / 1048576:.0f}" for srv in servers)
    for k in labels if k != "rss_qd32"))
if sys.argv[2]:
    json.dump(out, open(sys.argv[2], "w"), indent=1)
PY
