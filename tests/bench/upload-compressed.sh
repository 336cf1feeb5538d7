#!/usr/bin/env bash
# upload-compressed.sh -- `snapctl upload --build --compress zstd` against the pipeline
# `zstd -T0 -LEVEL -c FILE | aws s3 cp - s3://...`: the same rootfs-like build (an ext4 image
# holding real files copied from /usr, not random bytes), the same level, the same Ceph RGW on
# loopback, in one run (issue 13).
#
#   SNAPCTL=./snapctl tests/bench/upload-compressed.sh [--size 1G] [--level 3] [--rounds 3] [--json FILE]
#
# The build is made the way a sandbox makes one: serve-nbd --size with --export-diff, the image
# written through NBD (nbdcopy), exported at SIGTERM.  Per round, interleaved: snapctl uploads the
# build compressed (its data object {id}/rootfs.ext4.zstd, frame by frame, plus the header),
# then the pipeline compresses and uploads the same data file; each object is deleted and RGW's
# garbage collected after the round.  Prints the medians of wall time, peak RSS and bytes
# stored, and the ratios pipeline/snapctl (> 1: snapctl is faster / smaller).  The pipeline's
# peak RSS is zstd's plus aws's (they run at the same time).  Exits 1 when a program is missing.
set -euo pipefail
SNAPCTL=${SNAPCTL:-./snapctl}
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
RGW_TOOL=$TOP/tests/tools/rgw.sh
size=1G level=3 rounds=3 json=""
while [ $# -gt 0 ]; do
    case $1 in
    --size) size=$2; shift 2 ;;
    --level) level=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    *) echo "usage: $0 [--size 1G] [--level N] [--rounds N] [--json FILE]" >&2; exit 2 ;;
    esac
done
for p in /usr/bin/aws zstd radosgw /usr/bin/time python3 nbdcopy mkfs.ext4; do
    command -v $p >/dev/null || { echo "upload-compressed.sh: $p is required (tests/install-deps.sh test)" >&2; exit 1; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/snapctl-bench-upc.XXXXXX")
spid=""
cleanup() {
    [ -n "$spid" ] && kill "$spid" 2>/dev/null || true
    sh "$RGW_TOOL" stop "$T/rgw" >/dev/null 2>&1 || true
    rm -rf "$T"
}
trap cleanup EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- the image: real files from /usr, about 80% of the file system full -----------------------
bytes=$(python3 -c 'import sys; s=sys.argv[1]; m={"K":1<<10,"M":1<<20,"G":1<<30}; print(int(s[:-1])*m[s[-1]] if s[-1] in m else int(s))' "$size")
python3 - "$T/tree" $((bytes * 8 / 10)) <<'PY'
import os, shutil, sys
dst, budget = sys.argv[1], int(sys.argv[2])
used = 0
for top in ("/usr/lib", "/usr/share", "/usr/bin", "/usr/libexec"):
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            if not os.path.isfile(p) or os.path.islink(p):
                continue
            n = os.path.getsize(p)
            if used + n > budget:
                continue
            d = os.path.join(dst, os.path.relpath(root, "/"))
            os.makedirs(d, exist_ok=True)
            try:
                shutil.copyfile(p, os.path.join(d, f))
            except OSError:
                continue
            used += n
        if used >= budget * 0.99:
            break
PY
mkfs.ext4 -q -F -d "$T/tree" "$T/img" "$size"
rm -rf "$T/tree"

# ---- the build: serve-nbd --size, nbdcopy, export at SIGTERM -----------------------------------
mkdir -p "$T/out"
np=$(freeport)
"$SNAPCTL" serve-nbd --size "$size" --export-diff "$T/out" -l "127.0.0.1:$np" --pid-file "$T/nbd.pid" >"$T/nbd.log" 2>&1 &
spid=$!
for _ in $(seq 100); do [ -s "$T/nbd.pid" ] && break; sleep 0.1; done
nbdcopy "$T/img" "nbd://127.0.0.1:$np"
kill -TERM "$spid"; wait "$spid"; spid=""
rm -f "$T/img"
B=$(ls "$T/out")
DATA=$T/out/$B/rootfs.ext4
cat "$DATA" >/dev/null # in the page cache for both

# ---- RGW ----------------------------------------------------------------------------------------
port=$(freeport)
sh "$RGW_TOOL" start "$T/rgw" "$port" >"$T/rgw.log" 2>&1 || { cat "$T/rgw.log" >&2; exit 1; }
export AWS_ACCESS_KEY_ID=CIACCESSKEY AWS_SECRET_ACCESS_KEY=CISECRETKEY AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_CONFIG_FILE=$T/aws-config AWS_SHARED_CREDENTIALS_FILE=$T/aws-creds
unset AWS_CA_BUNDLE AWS_PROFILE
aws() { /usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }
aws s3 mb s3://bench >/dev/null
head -c 20M /dev/urandom >"$T/warm.bin" # a fresh RGW creates its pools on the first writes
"$SNAPCTL" upload --quiet --part-size 5MiB "$T/warm.bin" s3://bench/warm.bin
aws s3 cp --only-show-errors "$T/warm.bin" s3://bench/warm2.bin

stored() { aws s3api head-object --bucket bench --key "$1" --query ContentLength --output text; }
gc() {
    aws s3 rm --only-show-errors --recursive s3://bench/r/
    timeout 120 radosgw-admin -c "$T/rgw/ceph.conf" gc process --include-all >/dev/null 2>&1 || true
}
run() { # TOOL: one upload, appends "tool seconds kib bytes" to $T/results
    case $1 in
    snapctl)
        /usr/bin/time -f '%e %M' -o "$T/time" "$SNAPCTL" upload --quiet --build "$T/out/$B" s3://bench/r \
            --compress zstd --level "$level" >"$T/out.log" 2>&1 || { cat "$T/out.log" >&2; exit 1; }
        read -r secs kib <"$T/time"
        obj=r/$B/rootfs.ext4.zstd ;;
    pipeline)
        t0=$(date +%s%N)
        /usr/bin/time -f '%M' -o "$T/tz" zstd -q -T0 "-$level" -c "$DATA" |
            /usr/bin/time -f '%M' -o "$T/ta" /usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" s3 cp --only-show-errors - s3://bench/r/pipe.zst
        secs=$(python3 -c "import sys; print(($(date +%s%N) - $t0) / 1e9)")
        kib=$(( $(tail -n 1 "$T/tz") + $(tail -n 1 "$T/ta") ))
        obj=r/pipe.zst ;;
    esac
    echo "$1 $secs $kib $(stored "$obj")" >>"$T/results"
}
: >"$T/results"
for r in $(seq "$rounds"); do
    if [ $((r % 2)) -eq 1 ]; then run snapctl; run pipeline; else run pipeline; run snapctl; fi
    gc
done
python3 - "$T/results" "$size" "$level" "$rounds" "$(stat -c %s "$DATA")" "$json" <<'PY'
import json, statistics, sys
res, size, level, rounds, data, out = sys.argv[1:7]
by = {}
for line in open(res):
    t, s, k, b = line.split()
    by.setdefault(t, []).append((float(s), int(k), int(b)))
med = {t: tuple(statistics.median(x[i] for x in v) for i in range(3)) for t, v in by.items()}
ss, sk, sb = med["snapctl"]
print("upload --compress zstd -%s of a %s ext4 build (%d data bytes) to Ceph RGW on loopback, median of %s rounds"
      % (level, size, int(data), rounds))
print("%-9s %9s %12s %14s %8s %8s" % ("", "seconds", "peak RSS", "bytes stored", "time x", "RSS x"))
for t in ("snapctl", "pipeline"):
    s, k, b = med[t]
    print("%-9s %9.2f %8.1f MiB %14d %7.2fx %7.1fx" % (t, s, k / 1024, b, s / ss, k / sk))
print("(x = the value / snapctl's: above 1, snapctl is faster / smaller; pipeline = zstd -T0 | aws s3 cp -)")
if out:
    json.dump({t: {"seconds": s, "peak_rss_kib": k, "bytes": b} for t, (s, k, b) in med.items()}, open(out, "w"), indent=1)
PY
