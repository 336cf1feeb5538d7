# inspect-header --check reports what the reference's loader would refuse in headers our parser
# accepts, one clear message per kind (exit 3): crafted v4 headers (python3-lz4, following
# docs/formats.md, not our writer) with a Size that is not a multiple of 4096 the mappings do not
# add up to, the "upload not finished" flag, undefined flag bits, a mapping past its build's
# uncompressedFileSize, a mapping at an offset a trimmed frame table lacks, a frame past the
# build's size; a header with none of these passes.
. tests/integration/functions.sh
/usr/bin/python3 -c 'import lz4.frame' 2>/dev/null || skip "requires python3-lz4 (not installed)"
T=$(mktmpdir)
/usr/bin/python3 - "$T" <<'EOF'
import struct, sys, lz4.frame
d = sys.argv[1]
U = bytes.fromhex("11111111222233334444555555555555")
M = 2 << 20

def header(name, size, maps, builds, flags=0, bs=4096):
    meta = struct.pack("<QQQQ", 4, bs, size, 1) + U + U
    body = struct.pack("<I", len(builds))
    for fsize, comp, frames in builds:
        body += U + struct.pack("<q", fsize) + bytes(32) + struct.pack("<II", comp, len(frames))
        for su, sc, nu, nc in frames:
            body += struct.pack("<qqii", su, sc, nu, nc)
    body += struct.pack("<I", len(maps))
    for off, ln, bso in maps:
        body += struct.pack("<QQ", off, ln) + U + struct.pack("<Q", bso)
    open(f"{d}/{name}", "wb").write(meta + struct.pack("<BI", flags, len(body)) + lz4.frame.compress(body))

full = [(k * M, k * 1000, M, 1000) for k in range(4)]
header("good.v4", 4 * M, [(0, 4 * M, 0)], [(4 * M, 2, full)])
header("trimmed.v4", 4 * M, [(k * M, M, k * M) for k in range(4)], [(4 * M, 2, [full[0], full[2]])])
header("past.v4", 4 * M, [(0, 4 * M, 0)], [(3 * M, 0, [])])
header("incomplete.v4", 4 * M, [(0, 4 * M, 0)], [(4 * M, 2, full)], flags=1)
header("flags.v4", 4 * M, [(0, 4 * M, 0)], [(4 * M, 2, full)], flags=0x83)
header("size.v4", 10000, [(0, 12288, 0)], [(12288, 0, [])])
header("framepast.v4", 3 * M, [(0, 3 * M, 0)], [(3 * M, 2, full)])
header("memfile.v4", 4 * M, [(0, 4096, 0), (4096, 4 * M - 4096, 4096)], [(4 * M, 1, full)], bs=M)
EOF

"$SNAPCTL" inspect-header --check "$T/good.v4" | grep -q "ok: 1 entries" || die "a good header fails --check"
"$SNAPCTL" inspect-header --check "$T/memfile.v4" >/dev/null || die "a memfile header in 4 KiB pages fails --check"

# loader_refuses FILE TEXT: --check exits 3 and names TEXT
loader_refuses() {
    expect_exit 3 "$SNAPCTL" inspect-header --check "$T/$1"
    grep -q "$1: reference loader: .*$2" "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "$1: no finding '$2'"; }
    grep -q "the reference's loader would refuse this header" "$LAST_ERR" || die "$1: no summary line"
}
loader_refuses trimmed.v4 "mapping 1 reads build .* (lz4) at offset 2097152, which no frame of its table holds (a trimmed table lacks it): the read would fail (and 1 more like it)"
loader_refuses past.v4 "mapping 0 reads build 11111111-2222-3333-4444-555555555555 up to byte 8388608, past its uncompressedFileSize 6291456"
loader_refuses incomplete.v4 "flags bit 0 (upload not finished) is set"
loader_refuses flags.v4 "flags 0x83: bits other than bit 0 are not defined"
grep -q "upload not finished" "$LAST_ERR" || die "flags.v4: both findings of the flags byte"
loader_refuses size.v4 "Size 10000 is not a multiple of 4096 and the mappings add up to 12288"
loader_refuses framepast.v4 "frame 3 ends at 8388608, past its uncompressedFileSize 6291456"
echo "inspect-header --check: every reference-loader finding named"
