# serve-nbd --object: a store object served lazily over NBD, writes kept in the local
# copy-on-write cache. From file:// and from http:// (snapctl peer serve, whose /metrics counts
# the bytes it sent, so the test sees that a small read fetches one chunk, not the object).
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires nbdinfo nbdcopy qemu-img qemu-io curl
T=$(mktmpdir)
B=11111111-2222-3333-4444-555555555555
mkdir -p "$T/data/$B" "$T/cache"
head -c 48M /dev/urandom >"$T/data/$B/rootfs.ext4"
truncate -s 64M "$T/data/$B/rootfs.ext4"
cp "$T/data/$B/rootfs.ext4" "$T/orig"
src_sum=$(sha256 "$T/orig")

# From http://, lazily.
hp=$(free_port)
start_server "$T/hpid" "$SNAPCTL" peer serve --data-dir "$T/data" -l "127.0.0.1:$hp" --pid-file "$T/hpid"
np=$(free_port)
uri=nbd://127.0.0.1:$np
start_server "$T/npid" "$SNAPCTL" serve-nbd --object "http://127.0.0.1:$hp/v1/builds/$B/rootfs.ext4" \
    --cache-dir "$T/cache" -l "127.0.0.1:$np" --pid-file "$T/npid"
nbdinfo "$uri" | grep -q 'export-size: 67108864' || die "size"
served() { curl -s "http://127.0.0.1:$hp/metrics" | awk '/^snapctl_peer_bytes_served_total/ {print $2}'; }
start=$(served)   # nbdinfo read the first chunk to guess the content
# libnbd reads exactly what it is asked (qemu-io also reads block 0 when it opens a device).
nbdsh_py -c 'import nbd,sys; h=nbd.NBD(); h.connect_uri(sys.argv[1]); assert len(h.pread(4096, 8 << 20)) == 4096; h.shutdown()' "$uri" ||
    die "a 4 KiB read"
bytes=$(( $(served) - start ))
echo "a cold 4 KiB read fetched $bytes bytes from the store"
[ "$bytes" -gt 0 ] && [ "$bytes" -le $((4 << 20)) ] || die "a 4 KiB read fetched $bytes bytes (expected one chunk at most)"
nbdcopy "$uri" "$T/copy"
[ "$(sha256 "$T/copy")" = "$src_sum" ] || die "nbdcopy of the lazily fetched object differs"
qemu-img compare -f raw -F raw "$T/orig" "$uri" || die "qemu-img compare"
# A second full read is served from the cache: the store sees nothing more.
before=$(served)
nbdcopy "$uri" null:
[ "$(served)" = "$before" ] || die "a warm read went back to the store"

# Writes and zeroing stay local; the store's object is untouched.
qemu-io -f raw "$uri" -c 'write -P 0x5a 1M 64k' -c 'write -z 20M 4M' -c 'flush' \
    -c 'read -P 0x5a 1M 64k' -c 'read -P 0 20M 4M' >"$T/w" 2>&1
grep -qiE 'fail|error|mismatch' "$T/w" && { cat "$T/w"; die "write/read back"; }
[ "$(sha256 "$T/data/$B/rootfs.ext4")" = "$src_sum" ] || die "the store's object was modified"
nbdinfo --map "$uri" | awk '$3 == 3 {print $1, $2}' | grep -q '^20971520 4194304$' || die "zeroed range not a hole in the map"

# From file://, and the same data.
fp=$(free_port)
start_server "$T/fpid" "$SNAPCTL" serve-nbd --object "file://$T/data/$B/rootfs.ext4" --cache-dir "$T/cache" \
    -l "127.0.0.1:$fp" --pid-file "$T/fpid"
nbdcopy "nbd://127.0.0.1:$fp" "$T/copy2"
[ "$(sha256 "$T/copy2")" = "$src_sum" ] || die "file:// object export differs"
expect_exit 4 "$SNAPCTL" serve-nbd --object "file://$T/data/$B/missing" -l "127.0.0.1:$(free_port)"
echo ok
