# upload --build --compress lz4|zstd to file://, then serve-nbd --header of the uploaded build
# in another process: identical bytes (nbdcopy + sha256).  The object has its suffix and the
# uncompressed-size sidecar; decoded frame by frame with python3-lz4 / python3-zstandard
# (independent of our decoder) the frames are exactly the data file, each frame as
# docs/formats.md says (lz4: block checksums; zstd: checksum); the header's entry has the
# compression, the full frame table, the uncompressed size and its SHA-256; --header-format 5
# writes v5; misuse of the options is a usage error.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/integration/functions-compressed.sh
compressed_requires
T=$(mktmpdir)
mkdir -p "$T/cache"
export TMPDIR=$T/cache
base_build "$T"

expect_exit 2 "$SNAPCTL" upload --compress lz4 "$T/img" "file://$T/x/img"
expect_exit 2 "$SNAPCTL" upload --build "$T/out/$B" --compress gzip "file://$T/x"
expect_exit 2 "$SNAPCTL" upload --build "$T/out/$B" --level 3 "file://$T/x"

for c in zstd lz4; do
    S=$T/store-$c
    mkdir -p "$S"
    fmt=4
    extra=""
    [ "$c" = zstd ] && fmt=5 && extra="--header-format 5"
    # shellcheck disable=SC2086
    "$SNAPCTL" upload --build "$T/out/$B" "file://$S" --compress "$c" --level 1 $extra --json >"$T/up-$c.json"
    [ -s "$S/$B/rootfs.ext4.$c" ] || die "$c: no $B/rootfs.ext4.$c"
    [ ! -e "$S/$B/rootfs.ext4" ] || die "$c: the plain object went up too"
    [ "$(cat "$S/$B/rootfs.ext4.$c.uncompressed-size")" = "$(stat -c %s "$T/out/$B/rootfs.ext4")" ] ||
        die "$c: uncompressed-size sidecar"
    "$SNAPCTL" inspect-header --json --frames --summary "$S/$B/rootfs.ext4.header" >"$T/h-$c.json"
    /usr/bin/python3 - "$c" "$fmt" "$T/h-$c.json" "$S/$B/rootfs.ext4.$c" "$T/out/$B/rootfs.ext4" <<'EOF' ||
import hashlib, json, struct, sys
import lz4.frame, zstandard
comp, fmt, hdr, obj, data = sys.argv[1], int(sys.argv[2]), json.load(open(sys.argv[3])), \
    open(sys.argv[4], "rb").read(), open(sys.argv[5], "rb").read()
assert hdr["format"] == fmt, ("format", hdr["format"])
(b,) = hdr["builds"]
assert b["compression"] == comp and b["file_size"] == len(data), b
assert b["sha256"] == hashlib.sha256(data).hexdigest(), "sha256 of the uncompressed data"
t = b["frame_table"]
assert len(t) == (len(data) + (2 << 20) - 1) // (2 << 20), "frame count"
u = c = 0
for f in t:   # full table, contiguous in both spaces, 2 MiB frames
    assert f["start_u"] == u and f["start_c"] == c, f
    assert f["size_u"] == min(2 << 20, len(data) - u), f
    blob = obj[c:c + f["size_c"]]
    if comp == "lz4":
        assert blob[:4] == b"\x04\x22\x4d\x18"
        flg, bd = blob[4], blob[5]
        assert flg & 0x10 and not flg & 0x04 and bd >> 4 == 7, "block checksums on, content checksum off, 4 MiB"
        out = lz4.frame.decompress(blob)
    else:
        p = zstandard.get_frame_parameters(blob)
        assert p.has_checksum and p.content_size == f["size_u"], "zstd checksum and content size"
        out = zstandard.ZstdDecompressor().decompress(blob)
    assert out == data[u:u + f["size_u"]], "frame decodes to the data"
    u += f["size_u"]
    c += f["size_c"]
assert c == len(obj) and u == len(data), "the object is exactly its frames"
EOF
        die "$c: the uploaded object or header is not as docs/formats.md says"
    grep -q '"compression": *"'"$c"'"' "$T/up-$c.json" || die "$c: upload --json does not say the compression"

    serve_compare "file://$S/$B/rootfs.ext4.header" "$T/img"
done
echo "compressed upload: zstd and lz4 round trips identical"
