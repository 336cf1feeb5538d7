# serve-nbd --header over compressed builds, against fixtures made by an independent writer
# (tests/tools/gen-compressed.py: python3-lz4 + python3-zstandard, following docs/formats.md):
#   inspect-header --json --frames agrees with the generator on every metadata and builds-section
#   field (compression, frame count, frame table, uncompressed/compressed bytes, ratio);
#   chains mixing plain, lz4 and zstd builds, v4 and v5 headers, 4 KiB and 2 MiB block sizes,
#   zero ranges and trimmed frame tables each read back (nbdcopy) with the generator's SHA-256;
#   one flipped byte in a frame: every concurrent reader of that frame gets EIO, the other frames
#   read fine, the server names build, frame and reason, and after the object is
#   repaired the next read succeeds with the right bytes; a truncated frame, a frame table past
#   the object's end and a frame whose decompressed size differs from sizeU each fail with a
#   clear message while the other frames read fine.
#   Through `--chunk-cache`: every compressed chain reads back, its frames are kept as
#   {build}/rootfs.ext4/{offset}-{length}.frm files, and a second process reads the chain right
#   while the store's compressed objects are zeros (every frame from the .frm files).
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires nbdcopy nbdsh
/usr/bin/python3 -c 'import lz4.frame, zstandard' 2>/dev/null ||
    skip "requires python3-lz4 and python3-zstandard (not installed)"
T=$(mktmpdir)
S=$T/store
mkdir -p "$T/cache"
export TMPDIR=$T/cache

/usr/bin/python3 "$TOP/tests/tools/gen-compressed.py" "$S" "$T/gen" || die "the fixture generator failed"
[ "$(wc -l <"$T/gen/chains.txt")" -ge 8 ] || die "the generator made too few chains"

# serve NAME: serve chain NAME's leaf header on a fresh port; sets URI and SPID, log in $T/NAME.log.
serve() {
    set -- $(grep "^$1 " "$T/gen/chains.txt")
    port=$(free_port)
    rm -f "$T/pid"
    start_server "$T/pid" "$SNAPCTL" serve-nbd --header "file://$S/$4/$3.header" \
        -l "127.0.0.1:$port" --pid-file "$T/pid" 2>"$T/$1.log"
    SPID=$_spid
    URI=nbd://127.0.0.1:$port
}
stop() { kill_pid "$SPID"; }

# --- inspect-header agrees with the generator on every field of every header ------------------
# --- and every chain reads back as the generator's image ---------------------------------------
n=0
while read -r name kind file leaf size sum; do
    "$SNAPCTL" inspect-header --json --frames --summary "$S/$leaf/$file.header" >"$T/$name.json"
    /usr/bin/python3 - "$T/gen/$name.builds.json" "$T/$name.json" <<'EOF' || die "$name: inspect-header disagrees"
import json, sys
want, got = (json.load(open(p)) for p in sys.argv[1:])
for k in ("format", "block_size", "size", "generation", "build_id", "base_build_id"):
    assert got[k] == want[k], (k, got[k], want[k])
assert len(got["builds"]) == len(want["builds"]), "build count"
for g, w in zip(got["builds"], want["builds"]):
    for k, v in w.items():
        assert g[k] == v, (w["id"], k, g[k], v)
    if w["frames"]:
        r = w["frames_uncompressed_bytes"] / w["frames_compressed_bytes"]
        assert abs(g["ratio"] - r) < 1e-6 * r, ("ratio", g["ratio"], r)
EOF
    "$SNAPCTL" inspect-header --frames --summary "$S/$leaf/$file.header" | grep -q "^Frames of .* (\(lz4\|zstd\), [0-9]*):" ||
        die "$name: inspect-header --frames lists no frame table"
    [ "$kind" = good ] || continue
    serve "$name"
    rm -f "$T/copy"
    nbdcopy "$URI" "$T/copy" || { cat "$T/$name.log" >&2; die "$name: nbdcopy failed"; }
    [ "$(stat -c %s "$T/copy")" -eq "$size" ] || die "$name: size"
    [ "$(sha256 "$T/copy")" = "$sum" ] || die "$name: the served image differs from the generator's"
    stop
    n=$((n + 1))
done <"$T/gen/chains.txt"
[ "$n" -ge 6 ] || die "only $n chains were compared"

# --- through a host chunk cache: frames kept as .frm files, then served from them alone ---
cc_chains=0
while read -r name kind file leaf size sum; do
    [ "$kind" = good ] && grep -q ' lz4 \| zstd ' "$T/gen/$name.frames" 2>/dev/null || continue
    for pass in fill offline; do
        port=$(free_port)
        rm -f "$T/pid"
        start_server "$T/pid" "$SNAPCTL" serve-nbd --header "file://$S/$leaf/$file.header" --chunk-cache "$T/cc" \
            -l "127.0.0.1:$port" --pid-file "$T/pid" 2>"$T/$name.cc.log"
        SPID=$_spid
        rm -f "$T/copy"
        nbdcopy "nbd://127.0.0.1:$port" "$T/copy" || { cat "$T/$name.cc.log" >&2; die "$name: nbdcopy ($pass) failed"; }
        [ "$(sha256 "$T/copy")" = "$sum" ] || die "$name: the image through the chunk cache ($pass) differs"
        stop
        # The second process must take every frame from the chunk cache: the store's compressed
        # objects are zeros meanwhile (a frame read from there would not decode: EIO).
        if [ "$pass" = fill ]; then
            find "$S" \( -name '*.lz4' -o -name '*.zstd' \) -exec cp {} {}.good \; \
                -exec sh -c 'dd if=/dev/zero of="$1" bs=65536 count=$(( $(stat -c %s "$1") / 65536 + 1 )) conv=notrunc status=none; truncate -s $(stat -c %s "$1.good") "$1"' _ {} \;
        fi
    done
    find "$S" -name '*.good' -exec sh -c 'mv "$1" "${1%.good}"' _ {} \;
    cc_chains=$((cc_chains + 1))
done <"$T/gen/chains.txt"
frm=$(find "$T/cc" -name '*.frm' | wc -l)
[ "$cc_chains" -ge 2 ] && [ "$frm" -gt 0 ] || die "chunk cache: $cc_chains compressed chains, $frm .frm files"
find "$T/cc" -name '*.frm' | grep -q '/rootfs.ext4/[0-9a-f]\{16\}-[0-9a-f]*\.frm$' ||
    die "chunk cache: .frm files are not named {root}/{build}/rootfs.ext4/{offset}-{length}.frm"
echo "chunk cache: $cc_chains compressed chains read back from $frm .frm files with the objects zeroed"

# frame NAME K FIELD: a field of frame K of chain NAME's (single) build: id comp k su sc nu nc.
frame() { awk -v k="$2" -v f="$3" '$3 == k { print $f }' "$T/gen/$1.frames"; }
# object NAME: the compressed object of chain NAME's build.
object() { echo "$S/$(frame "$1" 0 1)/rootfs.ext4.$(frame "$1" 0 2)"; }

# probe URI IMAGE BAD GOOD...: reads of frame range BAD ("off:len") fail with EIO (8 at once),
# reads of the GOOD ranges return the image's bytes.
probe() {
    nbdsh_py - "$@" <<'EOF'
import errno, nbd, sys
uri, img, bad, good = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
want = open(img, "rb").read()
h = nbd.NBD()
h.connect_uri(uri)
off, ln = map(int, bad.split(":"))
step = ln // 8
cmds = [h.aio_pread(nbd.Buffer(min(4096, step)), off + i * step) for i in range(8)]
while h.aio_in_flight() > 0:
    h.poll(-1)
for c in cmds:
    try:
        h.aio_command_completed(c)
        sys.exit("a read of the bad frame at %d succeeded" % off)
    except nbd.Error as e:
        if e.errno != errno.EIO and "(EIO)" not in str(e):
            sys.exit("expected EIO, got %s" % e)
for g in good:
    o, n = map(int, g.split(":"))
    if h.pread(n, o) != want[o:o + n]:
        sys.exit("the good range %s reads wrong" % g)
h.shutdown()
EOF
}
# read_ok URI IMAGE RANGE: the range reads the image's bytes.
read_ok() {
    nbdsh_py - "$@" <<'EOF'
import nbd, sys
want = open(sys.argv[2], "rb").read()
o, n = map(int, sys.argv[3].split(":"))
h = nbd.NBD()
h.connect_uri(sys.argv[1])
assert h.pread(n, o) == want[o:o + n], "range %s reads wrong" % sys.argv[3]
h.shutdown()
EOF
}

for c in lz4 zstd; do
    name=fault-$c
    obj=$(object "$name")
    id=$(frame "$name" 0 1)
    cp "$obj" "$T/orig"
    f1="$(frame "$name" 1 4):$(frame "$name" 1 6)"
    f0="0:$(frame "$name" 0 6)"
    f2="$(frame "$name" 2 4):$(frame "$name" 2 6)"

    # --- one flipped byte in frame 1 ------------------------------------------------------------
    pos=$(($(frame "$name" 1 5) + $(frame "$name" 1 7) / 2))
    /usr/bin/python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0]^0xff]))' "$obj" "$pos"
    serve "$name"
    probe "$URI" "$T/gen/$name.img" "$f1" "$f0" "$f2" || { cat "$T/$name.log" >&2; die "$name: flipped byte"; }
    grep -q "build $id: frame 1 (uncompressed \[2097152, 4194304)" "$T/$name.log" ||
        { cat "$T/$name.log" >&2; die "$name: the log does not name build and frame"; }
    [ "$c" = zstd ] || grep -q "checksum mismatch" "$T/$name.log" || die "$name: the reason is not the checksum"
    probe "$URI" "$T/gen/$name.img" "$f1" "$f0" || die "$name: the broken frame was cached"
    cp "$T/orig" "$obj"   # repaired: the next read fetches again and succeeds
    read_ok "$URI" "$T/gen/$name.img" "$f1" || die "$name: after repair frame 1 still fails"
    stop

    # --- frame 2 cut off (the object ends in its middle) -------------------------------------------
    truncate -s $(($(frame "$name" 2 5) + $(frame "$name" 2 7) / 2)) "$obj"
    serve "$name"
    probe "$URI" "$T/gen/$name.img" "$f2" "$f0" "$f1" || die "$name: truncated frame"
    grep -q "frame 2 is cut off" "$T/$name.log" || { cat "$T/$name.log" >&2; die "$name: truncated: message"; }
    stop

    # --- the frame table points past the object's end ---------------------------------------------
    truncate -s $(($(frame "$name" 2 5) - 10)) "$obj"
    serve "$name"
    probe "$URI" "$T/gen/$name.img" "$f2" "$f0" || die "$name: table past the end"
    grep -q "frame 2: the frame table points past the end" "$T/$name.log" ||
        { cat "$T/$name.log" >&2; die "$name: past the end: message"; }
    stop
    cp "$T/orig" "$obj"

    # --- frame 0 decompresses to less than its sizeU ----------------------------------------------
    name=bad-size-$c
    serve "$name"
    probe "$URI" "$T/gen/$name.img" "0:$(frame "$name" 0 6)" \
        "$(frame "$name" 1 4):$(frame "$name" 1 6)" || die "$name: wrong size"
    grep -q "decompresses to 2093056 bytes, sizeU says 2097152\|declares 2093056 bytes, sizeU says 2097152" \
        "$T/$name.log" || { cat "$T/$name.log" >&2; die "$name: wrong size: message"; }
    stop
done
echo "compressed reads: $n chains byte-identical, fault cases ok"
