#!/bin/sh
# run.sh -- run every libFuzzer target in BUILD_DIR for FUZZ_TIME seconds each.
#
#   FUZZ_TIME=60 tests/fuzz/run.sh build/fuzz [NAME ...]
#
# Target build/fuzz/fuzz-NAME reads its seed corpus from tests/fuzz/corpus/NAME/ (never written)
# and keeps what it learns in build/fuzz/corpus-NAME/.  A crash leaves its input in
# build/fuzz/artifacts/ and fails the run.  Ends with "N passed, N failed".
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
bdir=${1:?usage: run.sh BUILD_DIR [NAME ...]}; shift
FUZZ_TIME=${FUZZ_TIME:-60}
pass=0 fail=0
mkdir -p "$bdir/artifacts"
for bin in "$bdir"/fuzz-*; do
    [ -x "$bin" ] || continue
    name=${bin##*/fuzz-}
    if [ $# -gt 0 ]; then
        case " $* " in *" $name "*) ;; *) continue ;; esac
    fi
    seeds="$top/tests/fuzz/corpus/$name"
    work="$bdir/corpus-$name"
    mkdir -p "$work"
    dict=""
    [ -f "$top/tests/fuzz/$name.dict" ] && dict="-dict=$top/tests/fuzz/$name.dict"
    echo "fuzz $name for ${FUZZ_TIME}s (seeds: $(ls "$seeds" 2>/dev/null | wc -l))"
    # shellcheck disable=SC2086
    if "$bin" -max_total_time="$FUZZ_TIME" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
         -artifact_prefix="$bdir/artifacts/$name-" $dict "$work" "$seeds" >"$bdir/fuzz-$name.log" 2>&1; then
        echo "ok   fuzz-$name: $(grep -E '^stat::number_of_executed_units' "$bdir/fuzz-$name.log" | awk '{print $2}') runs"
        pass=$((pass + 1))
    else
        echo "FAIL fuzz-$name; last lines of $bdir/fuzz-$name.log:"
        tail -n 30 "$bdir/fuzz-$name.log" | sed 's/^/    /'
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
