# snapctl bench sha256: digests agree with sha256sum, JSON and table output, the generated file
# is removed, SNAPCTL_SHA256 changes the default, a missing peer is an error (never skipped).
. tests/integration/functions.sh
requires sha256sum openssl
T=$(mktmpdir)

# An existing file of an odd size: the digest reported is sha256sum's.
yes snapctl-bench | head -c 3000001 >"$T/data"
want=$(sha256 "$T/data")
"$SNAPCTL" bench sha256 --file "$T/data" --runs 1 --json >"$T/out.json"
grep -q '"benchmark":"sha256"' "$T/out.json" || die "json: benchmark name"
grep -q "\"digest\":\"$want\"" "$T/out.json" || die "json: digest is not sha256sum's ($want)"
grep -q '"size":3000001' "$T/out.json" || die "json: size"
grep -q '"generated":false' "$T/out.json" || die "json: generated"
for name in 'snapctl generic' sha256sum 'openssl dgst -sha256'; do
    grep -q "\"name\":\"$name\",\"available\":true,\"seconds\":\[" "$T/out.json" || die "json: result for $name"
done
grep -q '"vs_openssl":' "$T/out.json" || die "json: ratio against openssl"
[ -e "$T/data" ] || die "--file must be left in place"

# A generated file, table output, median of 3; the file is gone afterwards.
mkdir "$T/gen"
SNAPCTL_SHA256=generic "$SNAPCTL" bench sha256 --size 2M --dir "$T/gen" --runs 3 >"$T/out.txt"
grep -q '^SHA-256 of 2.0 MiB (generated as .*), page cache warm, median of 3 runs$' "$T/out.txt" || die "table header"
grep -q '^snapctl default implementation: generic ' "$T/out.txt" || die "SNAPCTL_SHA256=generic not shown"
grep -Eq '^snapctl generic +[0-9.]+ +[0-9.]+ +[0-9.]+x +[0-9.]+x$' "$T/out.txt" || die "table: generic row"
grep -Eq '^sha256sum +[0-9.]+ +[0-9.]+$' "$T/out.txt" || die "table: sha256sum row"
grep -Eq '^openssl dgst -sha256 +[0-9.]+ +[0-9.]+$' "$T/out.txt" || die "table: openssl row"
grep -Eq '^digest [0-9a-f]{64} \(all agree\)$' "$T/out.txt" || die "table: digest line"
[ -z "$(ls -A "$T/gen")" ] || die "generated file left behind: $(ls "$T/gen")"
if grep -qw sha_ni /proc/cpuinfo; then
    grep -Eq '^snapctl sha-ni +[0-9.]+ ' "$T/out.txt" || die "table: sha-ni row on a CPU with SHA-NI"
fi

# A missing peer fails the benchmark (exit 4) and names the program.
mkdir "$T/bin"
ln -s "$(command -v sha256sum)" "$T/bin/sha256sum"
expect_exit 4 env PATH="$T/bin" "$SNAPCTL" bench sha256 --file "$T/data" --runs 1
grep -q "peer program 'openssl' not found in PATH" "$LAST_ERR" || die "missing openssl message"

# SIGTERM while the test file is being generated: exit 130, the file removed (lib/base/cancel).
mkdir "$T/gen2"
"$SNAPCTL" bench sha256 --size 4G --dir "$T/gen2" >/dev/null 2>&1 &
victim=$!
cleanup_fn kill_pid "$victim"
for _ in $(seq 100); do [ -n "$(ls -A "$T/gen2")" ] && break; sleep 0.05; done
[ -n "$(ls -A "$T/gen2")" ] || die "no test file appeared"
kill -TERM "$victim"
set +e; wait "$victim"; rc=$?; set -e
[ "$rc" -eq 130 ] || die "SIGTERM while generating: exit $rc, expected 130"
[ -z "$(ls -A "$T/gen2")" ] || die "SIGTERM left the test file: $(ls -A "$T/gen2")"

# Usage errors.
expect_exit 2 "$SNAPCTL" bench sha256 --runs 0
expect_exit 2 "$SNAPCTL" bench sha256 --size 1x
expect_exit 2 "$SNAPCTL" bench sha256 --file "$T/data" --size 1M
expect_exit 4 "$SNAPCTL" bench sha256 --file "$T/nonexistent"
"$SNAPCTL" bench sha256 --help | grep -q '^Usage: snapctl bench sha256' || die "--help"
echo ok
