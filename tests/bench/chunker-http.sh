#!/usr/bin/env bash
# chunker-http.sh -- `snapctl bench chunker` over the python fault server on loopback.
#
# `snapctl bench chunker` itself already runs an HTTP source: lib/net/httpd in its own process,
# throttled to each profile (--source http, part of the default run).  This script is the same
# bench against tests/tools/faultserver.py, for comparing servers; at NFS-like speeds its rows
# measure python's per-request cost (docs/chunker.md).
#
#   SNAPCTL=./snapctl tests/bench/chunker-http.sh [bench chunker options: --quick, --runs N,
#                                                  --json, --csv FILE, --svg FILE, ...]
#
# Starts tests/tools/faultserver.py on a free loopback port over a fresh 4 MiB random object,
# runs the seed benchmark (full, streaming, demand-first; gcs and nfs profiles unless --profile
# is given) with --faultserver, so each profile's time to first byte and bandwidth are applied by
# the server itself (/_fault/ttfb=MS,rate=MBPS/ path prefix, paced with sendfile), and stops the
# server by PID.  The bench first measures the server alone per profile and says so when it
# cannot keep up with the bandwidth.  Exits with the bench's status (1: a gate missed), or 1
# when python3 is missing.
set -euo pipefail
SNAPCTL=${SNAPCTL:-./snapctl}
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 >/dev/null || { echo "chunker-http.sh: python3 is required (for tests/tools/faultserver.py)" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/snapctl-chunker-http.XXXXXX")
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/root/bench"
head -c 4194304 /dev/urandom >"$T/root/bench/chunker-4m.bin"
python3 "$TOP/tests/tools/faultserver.py" --root "$T/root" --port 0 --port-file "$T/port" --quiet 2>"$T/log" &
pid=$!
for _ in $(seq 100); do
    [ -s "$T/port" ] && break
    kill -0 "$pid" 2>/dev/null || { echo "faultserver exited at start: $(cat "$T/log")" >&2; exit 1; }
    sleep 0.1
done
[ -s "$T/port" ] || { echo "faultserver did not write its port within 10 s" >&2; exit 1; }
url=http://127.0.0.1:$(cat "$T/port")/bench/chunker-4m.bin
set +e
"$SNAPCTL" bench chunker --faultserver "$url" "$@"
rc=$?
set -e
exit $rc
