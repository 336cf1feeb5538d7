# fetch from a file:// store: miss, hit without touching the source, wrong hash, oversize,
# not found, --verify replacing a corrupted file, --mode, stale temp cleanup, concurrent fetches.
. tests/integration/functions.sh
T=$(mktmpdir)
mkdir -p "$T/src" "$T/cache"
head -c 3M /dev/urandom >"$T/src/asset.bin"
H=$(sha256 "$T/src/asset.bin")
BAD=$(printf %064d 0)
URL=file://$T/src/asset.bin

no_temp() { [ -z "$(ls -A "$T/cache" | grep -v "^$1\$" || true)" ] || { ls -la "$T/cache"; die "stray files in the cache"; }; }

# Miss: the path is printed, the file matches, nothing else is left.
p=$("$SNAPCTL" fetch "$URL" --sha256 "$H" --cache-dir "$T/cache")
[ "$p" = "$T/cache/$H" ] || die "printed path $p"
cmp "$p" "$T/src/asset.bin" || die "content"
[ "$(stat -c %a "$p")" = 644 ] || die "default mode"
no_temp "$H"

# Hit: works with the source gone.
mv "$T/src/asset.bin" "$T/asset.bin"
"$SNAPCTL" fetch "$URL" --sha256 "$H" --cache-dir "$T/cache" --json >"$T/hit.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["cached"] is True and d["size"]==3145728, d' "$T/hit.json" || die "hit json"
mv "$T/asset.bin" "$T/src/asset.bin"

# Wrong hash: exit 6, the message names URL, expected and actual; nothing at the final path.
expect_exit 6 "$SNAPCTL" fetch "$URL" --sha256 "$BAD" --cache-dir "$T/cache"
grep -q "$URL" "$LAST_ERR" && grep -q "expected $BAD" "$LAST_ERR" && grep -q "got $H" "$LAST_ERR" || die "mismatch message"
[ ! -e "$T/cache/$BAD" ] || die "a bad file was cached"
no_temp "$H"

# Oversize: exit 7 and nothing left; exactly the limit is fine.
expect_exit 7 "$SNAPCTL" fetch "$URL" --sha256 "$BAD" --cache-dir "$T/cache" --max-size 1M
grep -q 'max-size' "$LAST_ERR" || die "oversize message"
no_temp "$H"
rm "$T/cache/$H"
"$SNAPCTL" fetch "$URL" --sha256 "$H" --cache-dir "$T/cache" --max-size 3MiB >/dev/null || die "exactly the limit"

# Not found: exit 4.
expect_exit 4 "$SNAPCTL" fetch "file://$T/src/nope" --sha256 "$BAD" --cache-dir "$T/cache/"
grep -q "src/nope" "$LAST_ERR" || die "not-found message names the object"
expect_exit 2 "$SNAPCTL" fetch "$URL" --sha256 abc --cache-dir "$T/cache"
expect_exit 4 "$SNAPCTL" fetch "$URL" --sha256 "$H" --cache-dir "$T/no-such-dir"

# --verify replaces a corrupted cached file; --mode and --prefix apply.
printf 'corrupt' >"$T/cache/$H"
"$SNAPCTL" fetch "$URL" --sha256 "$H" --cache-dir "$T/cache" --verify >/dev/null 2>"$T/verify.err"
cmp "$T/cache/$H" "$T/src/asset.bin" || die "--verify did not replace the corrupted file"
grep -q 'fails verification' "$T/verify.err" || die "--verify says what it did"
p=$("$SNAPCTL" fetch "$URL" --sha256 "$H" --cache-dir "$T/cache" --prefix kernel- --mode 0600)
[ "$p" = "$T/cache/kernel-$H" ] && [ "$(stat -c %a "$p")" = 600 ] || die "--prefix/--mode"
rm "$p"

# A temp file left by a dead process is cleaned up; a live one is not touched.
sleep 30 & live=$!
cleanup_fn kill_pid "$live"
touch "$T/cache/.x.snapctl-tmp.999999999.1" "$T/cache/.y.snapctl-tmp.$live.1"
"$SNAPCTL" fetch "$URL" --sha256 "$H" --cache-dir "$T/cache" >/dev/null
[ ! -e "$T/cache/.x.snapctl-tmp.999999999.1" ] || die "stale temp file not removed"
[ -e "$T/cache/.y.snapctl-tmp.$live.1" ] || die "a live fetch's temp file was removed"
rm "$T/cache/.y.snapctl-tmp.$live.1"

# Concurrent fetches of the same hash: all succeed, one correct file.
rm -f "$T/cache/$H"
head -c 64M /dev/urandom >"$T/src/big.bin"
HB=$(sha256 "$T/src/big.bin")
pids=""
for i in 1 2 3 4; do
    "$SNAPCTL" fetch "file://$T/src/big.bin" --sha256 "$HB" --cache-dir "$T/cache" >"$T/c$i.out" 2>&1 &
    pids="$pids $!"
done
for p in $pids; do wait "$p" || die "a concurrent fetch failed: $(cat "$T"/c*.out)"; done
cmp "$T/cache/$HB" "$T/src/big.bin" || die "concurrent result"
no_temp "$HB"
echo ok
