# functions.sh -- sourced by every integration test (nbdkit-style).
#
#   . tests/integration/functions.sh
#   requires nbdinfo              # skip (exit 77) with a reason when a program is missing
#   cleanup_fn kill_pid "$pid"    # run at exit, in reverse order
#   T=$(mktmpdir)                 # scratch directory removed at exit
#   die "message"                 # fail the test
# and the helpers below (ports, stopping a server, JSON, the test servers' /_stats and /_control);
# functions-nbd.sh, functions-rgw.sh and the others add what their kind of test needs.
set -eu
: "${SNAPCTL:?run through tests/run.sh or set SNAPCTL}"
: "${TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"

_cleanups=""
cleanup_fn() {
    # Quote each argument into a command string; run newest first.
    cmd=""
    for a in "$@"; do cmd="$cmd '$(printf %s "$a" | sed "s/'/'\\\\''/g")'"; done
    _cleanups="$cmd;$_cleanups"
}
_run_cleanups() {
    rc=$?
    set +e
    eval "$_cleanups"
    exit $rc
}
trap _run_cleanups EXIT
trap 'exit 130' INT TERM

skip() { echo "$*"; exit 77; }
die() { echo "FAIL: $*" >&2; exit 1; }
requires() {
    for p in "$@"; do command -v "$p" >/dev/null 2>&1 || skip "requires $p (not installed)"; done
}
# One scratch root per test, registered here in the test's own shell: mktmpdir is called as
# T=$(mktmpdir), in a subshell, where a cleanup registered would be lost.
_TEST_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/snapctl-test.XXXXXX")
cleanup_fn rm -rf "$_TEST_ROOT"
mktmpdir() {
    mktemp -d "$_TEST_ROOT/t.XXXXXX"
}
kill_pid() { # PID: TERM, wait up to 5 s, then KILL
    kill "$1" 2>/dev/null || return 0
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$1" 2>/dev/null || true
}
# expect_exit CODE CMD...: run CMD, require exit CODE; its stderr is left in $LAST_ERR.
expect_exit() {
    want=$1; shift
    LAST_ERR=$(mktemp "$_TEST_ROOT/err.XXXXXX")
    set +e; "$@" >"$LAST_ERR.out" 2>"$LAST_ERR"; got=$?; set -e
    [ "$got" -eq "$want" ] || { cat "$LAST_ERR" >&2; die "$* exited $got, expected $want"; }
}
sha256() { sha256sum "$1" | cut -d' ' -f1; }
# free_port: a TCP port on 127.0.0.1 nobody listens on right now.
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# stop_and_wait PID: SIGTERM a child of this shell and wait for it; fail unless it exits 0
# (serve-nbd exports its build and writes --peer-stats on the way out).
stop_and_wait() { kill -TERM "$1"; wait "$1" || die "process $1 exited $? at SIGTERM"; }
# le VALUE BYTES: VALUE as BYTES little-endian octal escapes, for printf.
le() {
    v=$1 n=$2 s=""
    while [ "$n" -gt 0 ]; do s="$s\\$(printf %03o $((v & 255)))"; v=$((v >> 8)); n=$((n - 1)); done
    printf %s "$s"
}
# make_diff_build DIR ID PARENT: a build directory for upload --build: a 12 MiB random memfile
# whose v3 header (formats.md section 3) maps its first 8 KiB to build ID and the rest to PARENT,
# an 8 KiB snapfile, an empty rootfs.ext4 diff whose header maps all to PARENT, metadata.json.
make_diff_build() {
    mkdir -p "$1"
    head -c $((12 << 20)) /dev/urandom >"$1/memfile"
    head -c 8192 /dev/urandom >"$1/snapfile"
    : >"$1/rootfs.ext4"
    echo '{"version": 2}' >"$1/metadata.json"
    python3 - "$2" "$3" "$1" <<'PY'
import struct, sys, uuid
b, p, d = uuid.UUID(sys.argv[1]).bytes, uuid.UUID(sys.argv[2]).bytes, sys.argv[3]
meta = lambda size: struct.pack("<QQQQ", 3, 4096, size, 1) + b + p
ent = lambda off, ln, u, so: struct.pack("<QQ", off, ln) + u + struct.pack("<Q", so)
open(d + "/memfile.header", "wb").write(meta(1 << 24) + ent(0, 8192, b, 0) + ent(8192, (1 << 24) - 8192, p, 8192))
open(d + "/rootfs.ext4.header", "wb").write(meta(1 << 24) + ent(0, 1 << 24, p, 0))
PY
}

# JSON.  json_field KEY: KEY of the JSON object on stdin.
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# json_eval EXPR [FILE]: the Python expression EXPR over d, the JSON document in FILE (stdin when
# FILE is - or not given); "d['a'], d['b']" prints the two values with a space between.
json_eval() {
    python3 -c 'import json,sys
f = sys.argv[2] if len(sys.argv) > 2 else "-"
d = json.load(sys.stdin if f == "-" else open(f))
v = eval(sys.argv[1])
print(*v) if isinstance(v, tuple) else print(v)' "$@"
}
# json_last FILE KEY: KEY of the last JSON line of FILE that has it (serve-nbd --json writes one
# line per export); "access.missed" is a field of the object under "access".
json_last() {
    python3 - "$1" "$2" <<'PY'
import json, sys
v = None
for line in open(sys.argv[1]):
    if not line.strip().startswith("{"):
        continue
    d = json.loads(line)
    for k in sys.argv[2].split("."):
        d = d.get(k) if isinstance(d, dict) else None
    v = d if d is not None else v
print(v)
PY
}
# tiered_stat FILE NAME: counter snapctl_tiered_NAME of a --peer-stats FILE.
tiered_stat() { sed -n "s/^snapctl_tiered_$2 //p" "$1"; }
# peer_metric PORT NAME: snapctl_peer_NAME of the /metrics of the peer serve on 127.0.0.1:PORT.
peer_metric() { curl -s "http://127.0.0.1:$1/metrics" | sed -n "s/^snapctl_peer_$2 //p"; }

# The test servers of tests/tools (faultserver.py, awsmeta.py) at URL.
# server_stats URL [EXPR]: its /_stats document, or EXPR over it as json_eval.
server_stats() {
    if [ $# -gt 1 ]; then curl -sf "$1/_stats" | json_eval "$2"; else curl -sf "$1/_stats"; fi
}
server_reset() { curl -sf -X POST "$1/_stats/reset" >/dev/null; }   # URL: zero its /_stats
# server_control URL RULE: post a control rule (tests/tools/faultserver.py) or fail.
server_control() { curl -sf -X POST -d "$2" "$1/_control" >/dev/null || die "control rule $2 to $1"; }
# server_tokens URL: how many access tokens faultserver.py has issued.
server_tokens() { server_stats "$1" 'd["tokens_issued"]'; }
# server_uploads_left URL: how many multipart uploads faultserver.py holds unfinished.
server_uploads_left() { curl -sf "$1/_uploads" | json_eval 'len(d)'; }
