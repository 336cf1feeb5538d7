#!/usr/bin/env bash
# upload.sh -- snapctl upload against `aws s3 cp` and `rclone copy`: the same 1 GiB file to the
# same Ceph RGW on loopback, in one run.
#
#   SNAPCTL=./snapctl tests/bench/upload.sh [--size 1G] [--rounds 3] [--json FILE]
#
# Starts a throwaway RGW (tests/tools/rgw.sh), then per round uploads the file with
# each tool back to back (snapctl, aws, rclone; each tool's defaults), deleting the object and
# running RGW's garbage collection after each so its in-memory store does not fill (after one
# untimed warm-up upload: a fresh RGW creates its pools on the first writes).  Prints the
# medians of wall time and peak RSS (/usr/bin/time) and the ratios peer/snapctl (> 1: snapctl
# is faster / smaller).  Exits 1 when a peer program is missing.
set -euo pipefail
SNAPCTL=${SNAPCTL:-./snapctl}
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
RGW_TOOL=$TOP/tests/tools/rgw.sh
size=1G rounds=3 json=""
while [ $# -gt 0 ]; do
    case $1 in
    --size) size=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    *) echo "usage: $0 [--size 1G] [--rounds N] [--json FILE]" >&2; exit 2 ;;
    esac
done
for p in /usr/bin/aws rclone radosgw /usr/bin/time python3; do
    command -v $p >/dev/null || { echo "upload.sh: $p is required (tests/install-deps.sh)" >&2; exit 1; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/snapctl-bench-upload.XXXXXX")
cleanup() { sh "$RGW_TOOL" stop "$T/rgw" >/dev/null 2>&1 || true; rm -rf "$T"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sh "$RGW_TOOL" start "$T/rgw" "$port" >"$T/rgw.log" 2>&1 || { cat "$T/rgw.log" >&2; exit 1; }
export AWS_ACCESS_KEY_ID=CIACCESSKEY AWS_SECRET_ACCESS_KEY=CISECRETKEY AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_CONFIG_FILE=$T/aws-config AWS_SHARED_CREDENTIALS_FILE=$T/aws-creds
unset AWS_CA_BUNDLE AWS_PROFILE
export RCLONE_CONFIG_X_TYPE=s3 RCLONE_CONFIG_X_PROVIDER=Ceph RCLONE_CONFIG_X_ENDPOINT=$AWS_ENDPOINT_URL \
    RCLONE_CONFIG_X_ACCESS_KEY_ID=CIACCESSKEY RCLONE_CONFIG_X_SECRET_ACCESS_KEY=CISECRETKEY \
    RCLONE_CONFIG_X_REGION=us-east-1 RCLONE_CONFIG=$T/rclone.conf
aws() { /usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }
aws s3 mb s3://bench >/dev/null
head -c "$size" /dev/urandom >"$T/file.bin"
cat "$T/file.bin" >/dev/null # in the page cache for everyone

run() { # TOOL: one upload, appends "tool seconds kib" to $T/results
    case $1 in
    snapctl) cmd=("$SNAPCTL" upload --quiet "$T/file.bin" s3://bench/file.bin) ;;
    aws) cmd=(/usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" s3 cp --only-show-errors "$T/file.bin" s3://bench/file.bin) ;;
    rclone) cmd=(env -u AWS_CA_BUNDLE rclone copy "$T/file.bin" x:bench/) ;;
    esac
    /usr/bin/time -f '%e %M' -o "$T/time" "${cmd[@]}" >"$T/out" 2>&1 || { cat "$T/out" >&2; exit 1; }
    echo "$1 $(tail -n 1 "$T/time")" >>"$T/results"
    [ "$(aws s3api head-object --bucket bench --key file.bin --query ContentLength --output text)" = "$(stat -c %s "$T/file.bin")" ] ||
        { echo "upload.sh: $1 did not upload the whole file" >&2; exit 1; }
    aws s3 rm --only-show-errors s3://bench/file.bin
    timeout 120 radosgw-admin -c "$T/rgw/ceph.conf" gc process --include-all >/dev/null 2>&1 || true
}
# A fresh RGW creates its pools on the first writes: warm it up untimed.
head -c 20M /dev/urandom >"$T/warm.bin"
"$SNAPCTL" upload --quiet --part-size 5MiB "$T/warm.bin" s3://bench/warm.bin
aws s3 cp --only-show-errors "$T/warm.bin" s3://bench/warm2.bin
: >"$T/results"
for r in $(seq "$rounds"); do
    for tool in snapctl aws rclone; do run $tool; done
done
python3 - "$T/results" "$size" "$rounds" "$json" <<'PY'
import json, statistics, sys
res, size, rounds, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
by = {}
for line in open(res):
    t, s, k = line.split()
    by.setdefault(t, []).append((float(s), int(k)))
med = {t: (statistics.median(s for s, _ in v), statistics.median(k for _, k in v)) for t, v in by.items()}
ss, sk = med["snapctl"]
print("upload of %s to Ceph RGW on loopback, median of %s rounds (each tool's defaults)" % (size, rounds))
print("%-8s %9s %12s %10s %10s" % ("tool", "seconds", "peak RSS", "time x", "RSS x"))
for t in ("snapctl", "aws", "rclone"):
    s, k = med[t]
    print("%-8s %9.2f %9.1f MiB %9.2fx %9.1fx" % (t, s, k / 1024, s / ss, k / sk))
print("(x = the tool's value / snapctl's: above 1, snapctl is faster / smaller)")
if out:
    json.dump({t: {"seconds": s, "peak_rss_kib": k} for t, (s, k) in med.items()}, open(out, "w"), indent=1)
PY
