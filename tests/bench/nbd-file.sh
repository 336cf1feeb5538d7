#!/usr/bin/env bash
# nbd-file.sh -- serve-nbd --file against `nbdkit file` on the same tmpfs image, same clients.
#
#   SNAPCTL=./snapctl tests/bench/nbd-file.sh [--size 1G] [--rounds 5] [--seconds 5] [--json FILE]
#
# Each round runs every measurement against both servers back to back (snapctl, then nbdkit),
# so machine noise hits both alike; the table shows medians over rounds and the ratio
# snapctl/nbdkit (> 1 means snapctl is faster), and the CPU time each server process spent
# during each measurement (from /proc/PID/stat).  serve-nbd runs with its defaults.  Measurements: sequential read with
# `nbdcopy URI null:` over TCP and over a Unix socket; fio's nbd engine, 4 KiB random reads at
# queue depth 1 and 32 (Unix socket), and the same 32 requests in flight from two fio processes
# (qd16 each, a connection each): one fio process is at a full core at qd32, so that row measures
# the client as much as the server (docs/design.md, "Where the warm numbers stop").  Exits 1 when
# a peer program is missing.
set -euo pipefail
SNAPCTL=${SNAPCTL:-./snapctl}
size=1G rounds=5 secs=5 json=""
while [ $# -gt 0 ]; do
    case $1 in
    --size) size=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) secs=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    *) echo "usage: $0 [--size 1G] [--rounds N] [--seconds S] [--json FILE]" >&2; exit 2 ;;
    esac
done
for p in nbdkit nbdcopy fio python3; do
    command -v $p >/dev/null || { echo "nbd-file.sh: $p is required (apt-get install nbdkit libnbd-bin fio)" >&2; exit 1; }
done

T=$(mktemp -d /dev/shm/snapctl-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
head -c "$size" /dev/urandom >"$T/img" 2>/dev/null || { truncate -s "$size" "$T/img"; }
port_s=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
port_k=$((port_s + 1))

"$SNAPCTL" serve-nbd -r --file "$T/img" -l "127.0.0.1:$port_s" -l "unix:$T/s.sock" --pid-file "$T/s.pid" &
pids+=($!); declare -A spid=([s_tcp]=$! [s_unix]=$!)
nbdkit -r -f -p "$port_k" -i 127.0.0.1 -P "$T/k.pid" file "$T/img" &
pids+=($!); spid[k_tcp]=$!
nbdkit -r -f -U "$T/k.sock" file "$T/img" &
pids+=($!); spid[k_unix]=$!
for f in "$T/s.pid" "$T/k.pid" "$T/s.sock" "$T/k.sock"; do
    for _ in $(seq 100); do [ -e "$f" ] && break; sleep 0.05; done
done

declare -A uri=(
    [s_tcp]="nbd://127.0.0.1:$port_s" [k_tcp]="nbd://127.0.0.1:$port_k"
    [s_unix]="nbd+unix:///?socket=$T/s.sock" [k_unix]="nbd+unix:///?socket=$T/k.sock"
)
bytes=$(stat -c %s "$T/img")
# Each client prints "VALUE CLIENT_CPU_SECONDS": the client's own CPU (user + system, its
# processes and threads) tells whether the client or the server was the limit.
timed() { # CMD... -> the command's CPU seconds on stdout; its own output goes away
    local TIMEFORMAT='%U %S'
    { time "$@" >/dev/null 2>&1; } 2>"$T/time"
    python3 -c "import sys; u, s = open(sys.argv[1]).read().split(); print(float(u) + float(s))" "$T/time"
}
seq_mibs() { # URI -> MiB/s
    local t0 t1 c
    t0=$(date +%s.%N); c=$(timed nbdcopy "$1" null:); t1=$(date +%s.%N)
    echo "$(python3 -c "print($bytes / 1048576 / ($t1 - $t0))") $c"
}
fio_iops() { # URI DEPTH [JOBS] -> IOPS (JOBS client processes, one connection each)
    local c
    c=$(timed fio --name=r --ioengine=nbd --uri="$1" --rw=randread --bs=4k --iodepth="$2" --numjobs="${3:-1}" \
        --group_reporting --runtime="$secs" --time_based --size="$bytes" --output-format=json --output="$T/fio.json")
    echo "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["jobs"][0]["read"]["iops"])' "$T/fio.json") $c"
}

# cpu PID: the process's CPU time so far, in clock ticks (user + system).
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# measure SRV WHAT TRANSPORT CMD...: one line "SRV WHAT VALUE SERVER_TICKS" -- the value the
# command prints and the CPU the server spent meanwhile.
measure() {
    local srv=$1 what=$2 tr=$3 c0 v
    shift 3
    c0=$(cpu "${spid[${srv}_$tr]}")
    v=$("$@")
    echo "$srv $what $v $(($(cpu "${spid[${srv}_$tr]}") - c0))" >>"$results" # v is "VALUE CLIENT_CPU"
}
results="$T/results"
: >"$results"
for r in $(seq "$rounds"); do
    for srv in s k; do
        measure $srv seq_tcp tcp seq_mibs "${uri[${srv}_tcp]}"
        measure $srv seq_unix unix seq_mibs "${uri[${srv}_unix]}"
        measure $srv rand_qd1 unix fio_iops "${uri[${srv}_unix]}" 1
        measure $srv rand_qd32 unix fio_iops "${uri[${srv}_unix]}" 32
        measure $srv rand_2x16 unix fio_iops "${uri[${srv}_unix]}" 16 2
    done
    echo "round $r of $rounds done" >&2
done

python3 - "$results" "$json" "$size" "$rounds" "$secs" <<'PY'
import json, statistics, sys
import os
rows = [l.split() for l in open(sys.argv[1])]
med, cpu, ccpu = {}, {}, {}
tick = os.sysconf("SC_CLK_TCK")
for srv, what, v, client, ticks in rows:
    med.setdefault((srv, what), []).append(float(v))
    cpu.setdefault((srv, what), []).append(int(ticks) / tick)
    ccpu.setdefault((srv, what), []).append(float(client))
names = {"seq_tcp": ("sequential read, nbdcopy, TCP", "MiB/s"),
         "seq_unix": ("sequential read, nbdcopy, Unix", "MiB/s"),
         "rand_qd1": ("4 KiB random read, fio qd1", "IOPS"),
         "rand_qd32": ("4 KiB random read, fio qd32", "IOPS"),
         "rand_2x16": ("4 KiB random read, fio 2 jobs x qd16", "IOPS")}
out = {"size": sys.argv[3], "rounds": int(sys.argv[4]), "peer": "nbdkit file", "results": []}
print(f"serve-nbd --file vs nbdkit file, {sys.argv[3]} on tmpfs, median of {sys.argv[4]} interleaved rounds")
print(f"{'measurement':37} {'snapctl':>10} {'nbdkit':>10} {'ratio':>7}          "
      f"server CPU s: {'snapctl':>7} {'nbdkit':>7}   client CPU s: {'snapctl':>7} {'nbdkit':>7}")
secs = float(sys.argv[5])
for k, (label, unit) in names.items():
    s, n = statistics.median(med[("s", k)]), statistics.median(med[("k", k)])
    cs, cn = statistics.median(cpu[("s", k)]), statistics.median(cpu[("k", k)])
    ks, kn = statistics.median(ccpu[("s", k)]), statistics.median(ccpu[("k", k)])
    print(f"{label:37} {s:10.0f} {n:10.0f} {s / n:6.2f}x  ({unit:5}) {cs:21.2f} {cn:7.2f} {ks:23.2f} {kn:7.2f}")
    row = {"what": k, "unit": unit, "snapctl": s, "nbdkit": n, "ratio": s / n,
           "raw_snapctl": med[("s", k)], "raw_nbdkit": med[("k", k)],
           "server_cpu_s_snapctl": cs, "server_cpu_s_nbdkit": cn,
           "client_cpu_s_snapctl": ks, "client_cpu_s_nbdkit": kn}
    if unit == "IOPS": # fio's CPU per request, and how busy its processes were (1.0: a core)
        row["client_us_per_io_snapctl"] = ks / (s * secs) * 1e6
        row["client_us_per_io_nbdkit"] = kn / (n * secs) * 1e6
        row["client_busy_snapctl"], row["client_busy_nbdkit"] = ks / secs, kn / secs
    out["results"].append(row)
print("(server CPU: seconds the server process spent during the measurement, median; client CPU:")
print(" the same for nbdcopy or fio; the rest of the two cores went to the kernel's loopback path)")
for r in out["results"]:
    if "client_busy_snapctl" in r:
        print(f"{r['what']}: fio used {r['client_busy_snapctl']:.2f} cores with snapctl and "
              f"{r['client_busy_nbdkit']:.2f} with nbdkit, {r['client_us_per_io_snapctl']:.1f} us "
              f"and {r['client_us_per_io_nbdkit']:.1f} us of CPU per request")
if sys.argv[2]:
    json.dump(out, open(sys.argv[2], "w"), indent=1)
PY
