# snapctl bench fetch and bench http on a tiny file through tests/bench/fetch.sh (a loopback
# nginx started by tests/tools/nginx.sh): both print their tables and JSON, nginx is stopped
# afterwards, a wrong --sha256 fails the bench.  No ratio is checked: timing is not a test.
. tests/integration/functions.sh
requires curl openssl sha256sum python3
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || skip "requires nginx (apt-get install nginx)"
T=$(mktmpdir)
export TMPDIR=$T

SNAPCTL=$SNAPCTL TOP=$TOP bash "$TOP/tests/bench/fetch.sh" --size 3MiB --runs 2 --range-size 1MiB >"$T/out.txt"
cat "$T/out.txt"
grep -q '^Download and SHA-256 of 3.0 MiB from http://127.0.0.1:[0-9]*/object.bin, median of 2 runs$' "$T/out.txt" ||
    die "fetch table header"
grep -Eq "^snapctl fetch \(to the cache, fsync'd\) +[0-9.]+ +[0-9.]+$" "$T/out.txt" || die "fetch row"
grep -Eq '^curl -s URL \| openssl dgst -sha256 +[0-9.]+ +[0-9.]+ +[0-9.]+x$' "$T/out.txt" || die "curl|openssl row"
grep -Eq '^curl -s URL \| sha256sum +[0-9.]+ +[0-9.]+ +[0-9.]+x$' "$T/out.txt" || die "curl|sha256sum row"
grep -q '^HTTP GET of 3.0 MiB from http://127.0.0.1:[0-9]*/object.bin, body discarded, median of 2 runs$' "$T/out.txt" ||
    die "http table header"
grep -q '^ranged: 3 GETs of 1.0 MiB over one keep-alive connection (snapctl made 1)$' "$T/out.txt" || die "ranges line"
grep -Eq '^snapctl GET +[0-9.]+ +[0-9.]+ +[0-9.]+x$' "$T/out.txt" || die "http GET row"
grep -Eq '^snapctl ranged GETs +[0-9.]+ +[0-9.]+ +[0-9.]+x$' "$T/out.txt" || die "http ranges row"
grep -Eq '^curl ranged GETs +[0-9.]+ +[0-9.]+$' "$T/out.txt" || die "curl ranges row"

SNAPCTL=$SNAPCTL TOP=$TOP bash "$TOP/tests/bench/fetch.sh" --size 1MiB --runs 1 --json "$T/json"
python3 - "$T/json" <<'PY' || die "bench JSON"
import json, sys
f = json.load(open(sys.argv[1] + "/fetch.json"))
h = json.load(open(sys.argv[1] + "/http.json"))
assert f["benchmark"] == "fetch" and f["size"] == 1 << 20 and f["runs"] == 1, f
assert [r["name"] for r in f["results"]][0].startswith("snapctl fetch"), f
assert all(r["mib_s"] > 0 and len(r["seconds"]) == 1 for r in f["results"]), f
assert h["benchmark"] == "http" and h["size"] == 1 << 20 and h["ranges"] == 1, h
assert h["snapctl_connects_for_ranges"] == 1, h
assert all("vs_curl" in r for r in h["results"] if r["name"].startswith("snapctl")), h
PY
# Nothing left running or lying around.
! pgrep -f "nginx -p $T/" >/dev/null || die "nginx still running after the bench"
[ -z "$(ls -A "$T" | grep -v -e '^out.txt$' -e '^json$')" ] || die "left behind: $(ls -A "$T")"

# A wrong --sha256 fails bench fetch (exit 6, naming the pipeline); usage errors are exit 2.
mkdir -p "$T/www"
head -c 100000 /dev/urandom >"$T/www/x.bin"
url=$("$TOP/tests/tools/nginx.sh" start "$T/nginx" "$T/www")
cleanup_fn "$TOP/tests/tools/nginx.sh" stop "$T/nginx"
expect_exit 6 "$SNAPCTL" bench fetch --url "$url/x.bin" --sha256 "$(printf %064d 0)" --runs 1
expect_exit 2 "$SNAPCTL" bench fetch --sha256 "$(sha256 "$T/www/x.bin")"
expect_exit 2 "$SNAPCTL" bench fetch --url "file://$T/www/x.bin" --sha256 "$(sha256 "$T/www/x.bin")"
expect_exit 2 "$SNAPCTL" bench http
expect_exit 2 "$SNAPCTL" bench http --url "$url/x.bin" --range-size 0
"$SNAPCTL" bench http --url "$url/x.bin" --runs 1 --range-size 7K | grep -q '^ranged: 14 GETs of 7.0 KiB' ||
    die "odd range size"
"$SNAPCTL" bench fetch --help | grep -q '^Usage: snapctl bench fetch' || die "--help"
"$SNAPCTL" bench http --help | grep -q '^Usage: snapctl bench http' || die "--help"
echo ok
