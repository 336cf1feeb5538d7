#!/bin/sh
# run.sh -- run the unit tests and every tests/integration/test-*.sh against one build.
#
#   SNAPCTL=path/to/snapctl UNIT_TESTS=path/to/unit-tests tests/run.sh [PATTERN]
#
# Each integration script is one test: exit 0 passes, 77 skips (its last line says why),
# anything else fails.  Each unit test counts as one.  Logs go to build/$VARIANT/test-logs/.
# The last line is "N passed, N failed, N skipped".
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
: "${SNAPCTL:?set SNAPCTL to the binary under test}"
: "${UNIT_TESTS:?set UNIT_TESTS to the unit-test binary}"
VARIANT=${VARIANT:-release}
TEST_TIMEOUT=${TEST_TIMEOUT:-900}
logs="$top/build/$VARIANT/test-logs"
rm -rf "$logs"; mkdir -p "$logs"
pattern=${1:-}
export SNAPCTL VARIANT
# Tests stay on loopback: s3:// without credentials would ask the EC2 metadata address
# (169.254.169.254). A test of that source points AWS_EC2_METADATA_SERVICE_ENDPOINT at its own
# loopback emulator and sets AWS_EC2_METADATA_DISABLED=false itself.
export AWS_EC2_METADATA_DISABLED=true
export TOP="$top"

pass=0 fail=0 skip=0
failed_names=""

# Unit tests.
if [ -z "$pattern" ] || [ "$pattern" = unit ]; then
    "$UNIT_TESTS" >"$logs/unit.log" 2>&1
    rc=$?
    grep -E '^(ok|FAIL) ' "$logs/unit.log" | sed 's/^/unit /'
    grep -A20 '^    ' "$logs/unit.log" | head -40
    line=$(grep '^unit: [0-9]* passed, [0-9]* failed$' "$logs/unit.log")
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed 's/^unit: \([0-9]*\) passed.*/\1/')
        f=$(echo "$line" | sed 's/.* \([0-9]*\) failed$/\1/')
        pass=$((pass + p)); fail=$((fail + f))
        [ "$f" -gt 0 ] && failed_names="$failed_names unit"
    fi
    if [ -z "$line" ] || { [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; }; then
        echo "FAIL unit-tests binary exited $rc without a summary (crash?):"
        tail -20 "$logs/unit.log"
        fail=$((fail + 1)); failed_names="$failed_names unit-crash"
    fi
fi

# selected TEST-PATH: PATTERN selects that integration test.
selected() {
    [ -e "$1" ] && [ "$pattern" != unit ] || return 1
    case "$(basename "$1" .sh)" in *"$pattern"*) return 0 ;; esac
    return 1
}

# One Ceph RGW for the run when a selected test calls rgw_start (functions-rgw.sh): it finds it
# through RGW_SHARED_DIR and RGW_SHARED_PORT instead of starting one of its own (~20 s each).
# Stopped by PID at the end, also on an interrupt.  Without Ceph the tests skip as before.
rgw_root=""
stop_shared_rgw() {
    [ -n "$rgw_root" ] || return 0
    for d in "$rgw_root"/rgw*/; do [ -d "$d" ] && sh "$top/tests/tools/rgw.sh" stop "$d"; done
    rm -rf "$rgw_root"
    rgw_root=""
}
trap stop_shared_rgw EXIT
trap 'exit 130' INT TERM
wants_rgw=""
for t in "$top"/tests/integration/test-*.sh; do
    selected "$t" && grep -q '^rgw_start ' "$t" && wants_rgw=1
done
if [ -n "$wants_rgw" ] && command -v radosgw >/dev/null 2>&1; then
    rgw_root=$(mktemp -d "${TMPDIR:-/tmp}/snapctl-rgw.XXXXXX")
    if rgw=$(sh "$top/tests/tools/rgw.sh" up "$rgw_root" 2>"$logs/shared-rgw.log"); then
        export RGW_SHARED_DIR="${rgw% *}" RGW_SHARED_PORT="${rgw##* }"
    else
        echo "note: the shared RGW did not start (see $logs/shared-rgw.log); each RGW test starts its own"
        cat "$rgw_root"/rgw*.log >>"$logs/shared-rgw.log" 2>/dev/null
    fi
fi

# Integration tests.
for t in "$top"/tests/integration/test-*.sh; do
    selected "$t" || continue
    name=$(basename "$t" .sh)
    start=$(date +%s)
    timeout -k 10 "$TEST_TIMEOUT" sh -c 'cd "$1" && exec bash "$2"' sh "$top" "$t" >"$logs/$name.log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    case $rc in
    0) echo "ok   $name (${secs}s)"; pass=$((pass + 1)) ;;
    77) echo "SKIP $name: $(tail -n 1 "$logs/$name.log")"; skip=$((skip + 1)) ;;
    *) echo "FAIL $name (exit $rc, ${secs}s); last lines of $logs/$name.log:"
       tail -n 25 "$logs/$name.log" | sed 's/^/    /'
       fail=$((fail + 1)); failed_names="$failed_names $name" ;;
    esac
done

[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
