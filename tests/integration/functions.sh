# functions.sh -- sourced by every integration test (nbdkit-style).
#
#   . tests/integration/functions.sh
#   requires nbdinfo              # skip (exit 77) with a reason when a program is missing
#   cleanup_fn kill_pid "$pid"    # run at exit, in reverse order
#   T=$(mktmpdir)                 # scratch directory removed at exit
#   die "message"                 # fail the test
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
