# Memfiles: a header with a 2 MiB BlockSize whose mappings are in 4 KiB pages serves, exports
# and uploads like a rootfs header.  A base memfile build (serve-nbd --size --file-name memfile:
# BlockSize 2 MiB) goes up plain and compressed (zstd); over each, serve-nbd --header
# .../memfile.header --export-diff takes scattered 4 KiB writes and zeroed pages, exports a
# diff (BlockSize 2 MiB, 4 KiB mappings, --check clean), which goes up (plain, and lz4 over the
# zstd parent) and serves back byte-identical to the expected image (nbdcopy + sha256).
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/integration/functions-compressed.sh
compressed_requires
requires nbdsh
T=$(mktmpdir)
mkdir -p "$T/out" "$T/cache"
export TMPDIR=$T/cache
/usr/bin/python3 - "$T/img" <<'EOF'
import random, sys
r = random.Random(5)
out = bytearray()
while len(out) < 20 << 20:   # guest memory: page tables, text, zero pages, noise
    k, m = r.random(), r.randrange(1, 64) * 4096
    out += (b"\x00\x10\x00\x00kmem page " * (m // 14 + 1))[:m] if k < 0.5 else bytes(m) if k < 0.75 else r.randbytes(m)
open(sys.argv[1], "wb").write(bytes(out[:20 << 20]))
EOF
p=$(free_port)
start_server "$T/pid" "$SNAPCTL" serve-nbd --size 20M --file-name memfile --export-diff "$T/out" \
    -l "127.0.0.1:$p" --pid-file "$T/pid"
nbdcopy "$T/img" "nbd://127.0.0.1:$p" || die "nbdcopy into the base memfile"
kill -TERM "$_spid"
wait "$_spid" || die "serve-nbd --size --file-name memfile --export-diff exited $?"
B0=$(ls "$T/out")
D0=$T/out/$B0
[ -s "$D0/memfile" ] && [ -s "$D0/memfile.header" ] || die "the base build has no memfile (--file-name memfile)"

# block_size HEADER: its BlockSize
block_size() { "$SNAPCTL" inspect-header --json --summary "$1" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["block_size"])'; }
[ "$(block_size "$D0/memfile.header")" = 2097152 ] || die "a memfile base build's BlockSize is not 2 MiB"
"$SNAPCTL" inspect-header --check "$D0/memfile.header" >/dev/null || die "the base memfile header fails --check"

mkdir -p "$T/plain" "$T/zstd"
"$SNAPCTL" upload -q --build "$D0" "file://$T/plain"
"$SNAPCTL" upload -q --build "$D0" "file://$T/zstd" --compress zstd
[ -s "$T/zstd/$B0/memfile.zstd" ] || die "no compressed memfile"

# The writes: 4 KiB pages here and there (some inside one 2 MiB block), zeroed pages, a page at the end.
/usr/bin/python3 - "$T/img" "$T/want" "$T/writes.py" <<'EOF'
import random, sys
img = bytearray(open(sys.argv[1], "rb").read())
r = random.Random(9)
ops = []
for off in sorted(set(r.randrange(0, len(img) // 4096) * 4096 for _ in range(40))) + [len(img) - 4096, 4096, 8192]:
    if r.random() < 0.3:
        img[off:off + 4096] = bytes(4096)
        ops.append(f"h.zero(4096, {off})")
    else:
        data = r.randbytes(4096)
        img[off:off + 4096] = data
        ops.append(f"h.pwrite(bytes.fromhex('{data.hex()}'), {off})")
open(sys.argv[2], "wb").write(img)
open(sys.argv[3], "w").write("\n".join(ops + ["h.flush()"]) + "\n")
EOF

for parent in plain zstd; do
    S=$T/$parent
    rm -rf "$T/out2"
    mkdir -p "$T/out2"
    p=$(free_port)
    rm -f "$T/pid"
    start_server "$T/pid" "$SNAPCTL" serve-nbd --header "file://$S/$B0/memfile.header" --export-diff "$T/out2" \
        -l "127.0.0.1:$p" --pid-file "$T/pid"
    nbdsh_py -m nbd -u "nbd://127.0.0.1:$p" -c "exec(open('$T/writes.py').read())" || die "$parent: the writes failed"
    kill -TERM "$_spid"
    wait "$_spid" || die "$parent: serve-nbd --export-diff over the memfile exited $?"
    B1=$(ls "$T/out2")
    D1=$T/out2/$B1
    [ -s "$D1/memfile" ] && [ -s "$D1/memfile.header" ] || die "$parent: the diff has no memfile"
    [ "$(block_size "$D1/memfile.header")" = 2097152 ] || die "$parent: the diff's BlockSize is not the parent's 2 MiB"
    "$SNAPCTL" inspect-header --check "$D1/memfile.header" >/dev/null || die "$parent: the diff header fails --check"
    [ "$(stat -c %s "$D1/memfile")" -lt $((4 << 20)) ] || die "$parent: the diff holds more than the written pages"
    "$SNAPCTL" upload -q --build "$D1" "file://$S"
    serve_compare "file://$S/$B1/memfile.header" "$T/want"
    if [ "$parent" = zstd ]; then   # the diff compressed too: a chain of zstd and lz4 memfiles
        cp -r "$S" "$T/lz4"
        rm -rf "${T:?}/lz4/$B1"
        "$SNAPCTL" upload -q --build "$D1" "file://$T/lz4" --compress lz4
        [ -s "$T/lz4/$B1/memfile.lz4" ] || die "no lz4 memfile diff"
        serve_compare "file://$T/lz4/$B1/memfile.header" "$T/want"
    fi
done
echo "memfile: diffs over a plain and a zstd parent serve identical; the diff compressed too"
