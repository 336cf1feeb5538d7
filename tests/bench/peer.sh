#!/usr/bin/env bash
# peer.sh -- `snapctl bench peer` against a real Ceph RGW: cold 4 MiB chunk reads through a
# `snapctl peer serve` on loopback vs straight from RGW, in the same run.
#
#   SNAPCTL=./snapctl tests/bench/peer.sh [--size 256M] [--runs 64] [--json FILE]
#
# Starts a throwaway RGW (tests/tools/rgw.sh, ~1 GB RAM), uploads one build's memfile
# with awscli, serves the same file with `snapctl peer serve`, runs the bench, stops both.
set -euo pipefail
SNAPCTL=${SNAPCTL:-./snapctl}
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
RGW_TOOL=$TOP/tests/tools/rgw.sh
size=256M runs=64 json=""
while [ $# -gt 0 ]; do
    case $1 in
    --size) size=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    *) echo "usage: $0 [--size 256M] [--runs N] [--json FILE]" >&2; exit 2 ;;
    esac
done
for p in radosgw /usr/bin/aws curl; do
    command -v $p >/dev/null || { echo "peer.sh: $p is required" >&2; exit 1; }
done
T=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sh "$RGW_TOOL" stop "$T/rgw" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(port)
sh "$RGW_TOOL" start "$T/rgw" "$rport" >"$T/rgw.log" 2>&1 || { cat "$T/rgw.log"; exit 1; }
export AWS_ACCESS_KEY_ID=CIACCESSKEY AWS_SECRET_ACCESS_KEY=CISECRETKEY AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$rport AWS_CONFIG_FILE=$T/aws-config AWS_SHARED_CREDENTIALS_FILE=$T/aws-creds
unset AWS_CA_BUNDLE AWS_PROFILE
B=5e1f0c2a-7d3b-4c6e-9a8f-0b1c2d3e4f5a
mkdir -p "$T/a/$B"
head -c "$size" /dev/urandom >"$T/a/$B/memfile"
/usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" s3 mb s3://bench >/dev/null
/usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" s3 cp "$T/a/$B/memfile" "s3://bench/builds/$B/memfile" >/dev/null
pport=$(port)
"$SNAPCTL" peer serve --data-dir "$T/a" -l "127.0.0.1:$pport" --pid-file "$T/peer.pid" &
pids+=($!)
for _ in $(seq 100); do [ -s "$T/peer.pid" ] && break; sleep 0.05; done
args=(--peer "127.0.0.1:$pport" --store s3://bench/builds --build "$B" --runs "$runs")
"$SNAPCTL" bench peer "${args[@]}"
[ -z "$json" ] || "$SNAPCTL" bench peer "${args[@]}" --json >"$json"
