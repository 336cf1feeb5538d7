# fetch over http://: from python's http.server (no Range support: answers 200) and from
# snapctl peer serve (206 ranges); wrong hash, 404 and 410 map to their exit codes.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires python3
T=$(mktmpdir)
B=11111111-2222-3333-4444-555555555555
mkdir -p "$T/www" "$T/data/$B" "$T/cache"
head -c 5M /dev/urandom >"$T/www/asset.bin"
cp "$T/www/asset.bin" "$T/data/$B/memfile"
H=$(sha256 "$T/www/asset.bin")
BAD=$(printf %064d 0)

p1=$(free_port)
python3 -m http.server "$p1" --bind 127.0.0.1 --directory "$T/www" >"$T/py.log" 2>&1 &
py=$!
cleanup_fn kill_pid "$py"
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$p1/" 2>/dev/null && break; sleep 0.05; done

out=$("$SNAPCTL" fetch "http://127.0.0.1:$p1/asset.bin" --sha256 "$H" --cache-dir "$T/cache" --json)
echo "$out"
cmp "$T/cache/$H" "$T/www/asset.bin" || die "http.server fetch"
rm "$T/cache/$H"
expect_exit 6 "$SNAPCTL" fetch "http://127.0.0.1:$p1/asset.bin" --sha256 "$BAD" --cache-dir "$T/cache"
expect_exit 4 "$SNAPCTL" fetch "http://127.0.0.1:$p1/missing.bin" --sha256 "$BAD" --cache-dir "$T/cache"
grep -q 'missing.bin' "$LAST_ERR" || die "404 message names the object"
[ -z "$(ls -A "$T/cache")" ] || die "failed fetches left files"

p2=$(free_port)
start_server "$T/pid" "$SNAPCTL" peer serve --data-dir "$T/data" -l "127.0.0.1:$p2" --pid-file "$T/pid"
"$SNAPCTL" fetch "http://127.0.0.1:$p2/v1/builds/$B/memfile" --sha256 "$H" --cache-dir "$T/cache" >/dev/null
cmp "$T/cache/$H" "$T/www/asset.bin" || die "peer fetch"
rm "$T/cache/$H"
expect_exit 7 "$SNAPCTL" fetch "http://127.0.0.1:$p2/v1/builds/$B/memfile" --sha256 "$H" --cache-dir "$T/cache" --max-size 1M
# inspect-header reads headers through any store URL, here the peer's http://.
python3 -c 'import struct,sys
u=bytes.fromhex("11111111222233334444555555555555")
sys.stdout.buffer.write(struct.pack("<QQQQ",3,4096,8192,0)+u+u+struct.pack("<QQ",0,8192)+u+struct.pack("<Q",0))' \
    >"$T/data/$B/memfile.header"
"$SNAPCTL" inspect-header --check "http://127.0.0.1:$p2/v1/builds/$B/memfile.header" || die "inspect-header over http"
"$SNAPCTL" inspect-header --check "file://$T/data/$B/memfile.header" || die "inspect-header over file://"
expect_exit 4 "$SNAPCTL" inspect-header "http://127.0.0.1:$p2/v1/builds/$B/rootfs.ext4.header"
touch "$T/data/$B/.upload-done"
expect_exit 4 "$SNAPCTL" fetch "http://127.0.0.1:$p2/v1/builds/$B/memfile" --sha256 "$H" --cache-dir "$T/cache"
echo ok
