#!/usr/bin/env bash
# fetch.sh -- `snapctl bench fetch` and `snapctl bench http` against a loopback nginx, one command.
#
#   SNAPCTL=./snapctl tests/bench/fetch.sh [--size 1G] [--runs 3] [--range-size 4MiB] [--json DIR]
#
# Starts Debian's nginx as a throwaway foreground process on a free 127.0.0.1 port
# (tests/tools/nginx.sh: its own config, prefix, pid file; stopped by PID at exit), serving a
# --size file of random bytes made in a new directory under $TMPDIR (default /tmp), then runs
#   snapctl bench fetch --url URL --sha256 HEX   (fetch vs curl|openssl, curl|sha256sum)
#   snapctl bench http --url URL                 (the HTTP client vs curl, whole and ranged)
# and prints both tables (or writes fetch.json and http.json into --json DIR).  Needs nginx,
# curl, openssl, sha256sum and 2 x --size free in $TMPDIR (the file and the fetched copy).
set -euo pipefail
SNAPCTL=${SNAPCTL:-./snapctl}
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
size=1G runs=3 range=4MiB json=""
while [ $# -gt 0 ]; do
    case $1 in
    --size) size=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --range-size) range=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    *) echo "usage: $0 [--size 1G] [--runs N] [--range-size 4MiB] [--json DIR]" >&2; exit 2 ;;
    esac
done
for p in nginx curl openssl sha256sum python3; do
    command -v $p >/dev/null || [ -x /usr/sbin/$p ] ||
        { echo "fetch.sh: $p is required (apt-get install nginx curl openssl coreutils python3)" >&2; exit 1; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/snapctl-bench-fetch.XXXXXX")
cleanup() { "$TOP/tests/tools/nginx.sh" stop "$T/nginx"; rm -rf "$T"; }
trap cleanup EXIT
mkdir -p "$T/www" "$T/cache"
head -c "$size" /dev/urandom >"$T/www/object.bin"
hex=$(sha256sum "$T/www/object.bin" | cut -c1-64)
url=$("$TOP/tests/tools/nginx.sh" start "$T/nginx" "$T/www")/object.bin

if [ -n "$json" ]; then
    mkdir -p "$json"
    "$SNAPCTL" bench fetch --url "$url" --sha256 "$hex" --runs "$runs" --cache-dir "$T/cache" --json >"$json/fetch.json"
    "$SNAPCTL" bench http --url "$url" --runs "$runs" --range-size "$range" --json >"$json/http.json"
else
    "$SNAPCTL" bench fetch --url "$url" --sha256 "$hex" --runs "$runs" --cache-dir "$T/cache"
    echo
    "$SNAPCTL" bench http --url "$url" --runs "$runs" --range-size "$range"
fi
