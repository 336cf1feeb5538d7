# serve-nbd --file against real clients: nbdinfo (flags, map), nbdcopy both ways, qemu-img
# compare, qemu-io out-of-order aio, nbdsh hostile requests, stdio and socket activation.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires nbdinfo nbdcopy qemu-img qemu-io
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "requires python3-libnbd"
T=$(mktmpdir)

# 32 MiB of data followed by a 32 MiB hole.
head -c 32M /dev/urandom >"$T/disk.img"
truncate -s 64M "$T/disk.img"
cp "$T/disk.img" "$T/orig.img"
port=$(free_port)
uri=nbd://127.0.0.1:$port
start_server "$T/pid" "$SNAPCTL" serve-nbd --file "$T/disk.img" -l "127.0.0.1:$port" --pid-file "$T/pid" --min-block 512

nbdinfo "$uri" >"$T/info"
cat "$T/info"
grep -q 'export-size: 67108864' "$T/info" || die "size"
for f in can_flush can_fua can_multi_conn can_trim can_zero can_fast_zero can_df; do
    grep -q "$f: true" "$T/info" || die "$f should be true"
done
grep -q 'is_read_only: false' "$T/info" || die "read-write expected"
grep -q 'block_size_minimum: 512' "$T/info" || die "min block"
grep -q 'block_size_maximum: 33554432' "$T/info" || die "max block"
nbdinfo --map "$uri" >"$T/map"
cat "$T/map"
[ "$(awk '{print $1, $2, $3}' "$T/map")" = "$(printf '0 33554432 0\n33554432 33554432 3')" ] || die "map"

nbdcopy "$uri" "$T/copy.img"
cmp "$T/orig.img" "$T/copy.img" || die "nbdcopy read differs"
qemu-img compare -f raw -F raw "$T/orig.img" "$uri" || die "qemu-img compare"

head -c 4M /dev/urandom >"$T/patch"
nbdcopy "$T/patch" "$uri"
cmp -n 4194304 "$T/patch" "$T/disk.img" || die "nbdcopy write did not land"

qemu-io -f raw "$uri" \
    -c 'aio_write -P 0xab 1M 64k' -c 'aio_write -P 0xcd 3M 128k' -c 'aio_write -z 5M 1M' \
    -c 'aio_flush' -c 'read -P 0xab 1M 64k' -c 'read -P 0xcd 3M 128k' -c 'read -P 0 5M 1M' >"$T/qio" 2>&1
cat "$T/qio"
grep -qi -E 'fail|error|mismatch' "$T/qio" && die "qemu-io pattern check"
[ "$(grep -c '^read ' "$T/qio")" -eq 3 ] || die "qemu-io reads"

nbdsh_py tests/tools/nbd-hostile.py "$uri" 512 || die "hostile requests"

# stdio, like nbdkit -s: one connection on stdin/stdout.
nbdsh_py - "$SNAPCTL" "$T/orig.img" <<'PY' || die "stdio mode"
import sys, hashlib, nbd
h = nbd.NBD()
h.connect_command([sys.argv[1], "serve-nbd", "--stdio", "--read-only", "--file", sys.argv[2]])
assert h.is_read_only()
data = h.pread(1 << 20, 0)
assert data == open(sys.argv[2], "rb").read(1 << 20)
h.shutdown()
print("ok stdio")
PY

# systemd socket activation (LISTEN_FDS), which nbdinfo's [ CMD ] form uses.
nbdinfo -- [ "$SNAPCTL" serve-nbd --read-only --file "$T/orig.img" ] | grep -q 'export-size: 67108864' ||
    die "socket activation"
echo ok
