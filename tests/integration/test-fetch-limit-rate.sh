# fetch --limit-rate RATE: 16 MiB at 8M takes about 2 s (not less than 1.8 s), both from
# file:// and over HTTP, and the file is cached intact; a rate that is not a positive size is a
# usage error (exit 2) that names the option.
. tests/integration/functions.sh
requires python3
T=$(mktmpdir)
mkdir -p "$T/store" "$T/cache"
head -c $((16 << 20)) /dev/urandom >"$T/store/obj"
H=$(sha256 "$T/store/obj")

timed_fetch() { # URL -> prints seconds
    t0=$(date +%s.%N)
    "$SNAPCTL" fetch "$1" --sha256 "$H" --cache-dir "$T/cache" --limit-rate 8M >"$T/out"
    t1=$(date +%s.%N)
    [ "$(cat "$T/out")" = "$T/cache/$H" ] || die "fetch output: $(cat "$T/out")"
    [ "$(sha256 "$T/cache/$H")" = "$H" ] || die "cached file differs"
    rm -f "$T/cache/$H"
    python3 -c "print(round($t1 - $t0, 2))"
}
check_time() { # SECONDS WHAT
    echo "$2: 16 MiB at --limit-rate 8M in $1 s"
    python3 -c "import sys; sys.exit(0 if 1.8 <= $1 <= 60 else 1)" || die "$2: $1 s, expected about 2"
}
check_time "$(timed_fetch "file://$T/store/obj")" file://

python3 -u -m http.server --bind 127.0.0.1 --directory "$T/store" 0 >"$T/http.log" 2>&1 &
pid=$!
cleanup_fn kill_pid "$pid"
i=0
while ! port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$T/http.log" | head -n 1) || [ -z "$port" ]; do
    [ $i -lt 100 ] || die "http.server did not start"
    sleep 0.1
    i=$((i + 1))
done
check_time "$(timed_fetch "http://127.0.0.1:$port/obj")" http://

for bad in 0 -5 10Q ''; do
    expect_exit 2 "$SNAPCTL" fetch "file://$T/store/obj" --sha256 "$H" --cache-dir "$T/cache" --limit-rate "$bad"
    grep -q -- '--limit-rate' "$LAST_ERR" || die "the usage error for '$bad' does not name --limit-rate"
done
[ -z "$(ls -A "$T/cache")" ] || die "files left in the cache"
