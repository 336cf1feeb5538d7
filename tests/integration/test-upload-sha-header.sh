# upload --build without --compress records the data's SHA-256 and size in the build's header
# entry (v4/v5), which inspect-header shows: checked against sha256sum of the data.  A v3
# header goes up byte for byte unchanged (it has no builds section) unless --header-format asks
# for v4/v5; the uploaded build serves back identical.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/integration/functions-compressed.sh
compressed_requires
T=$(mktmpdir)
base_build "$T"
mkdir -p "$T/s4" "$T/s5" "$T/s3" "$T/s34" "$T/x"
D=$T/out/$B
want=$(sha256 "$D/rootfs.ext4")
size=$(stat -c %s "$D/rootfs.ext4")

# check_entry HEADER FORMAT: the header's entry of $B has the data's size and SHA-256, no compression.
check_entry() {
    "$SNAPCTL" inspect-header --json --summary "$1" >"$T/h.json"
    /usr/bin/python3 - "$T/h.json" "$B" "$want" "$size" "$2" <<'EOF' || die "$1: the build entry lacks the data's SHA-256 or size"
import json, sys
h, b, want, size, fmt = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
assert h["format"] == fmt, ("format", h["format"])
(e,) = [x for x in h["builds"] if x["id"] == b]
assert e["sha256"] == want, ("sha256", e["sha256"], want)
assert e["file_size"] == size and e["compression"] == "none", e
EOF
    "$SNAPCTL" inspect-header --summary "$1" | grep -q "$B .*$want" ||
        die "$1: the text output does not show the build's SHA-256"
}

# v4 (the export's format): the sha256 goes in, the format stays.
"$SNAPCTL" inspect-header --json --summary "$D/rootfs.ext4.header" | grep -q '"sha256": *null' ||
    die "the exported header already has a sha256: nothing to test"
"$SNAPCTL" upload -q --build "$D" "file://$T/s4"
check_entry "$T/s4/$B/rootfs.ext4.header" 4
serve_compare "file://$T/s4/$B/rootfs.ext4.header" "$T/img"

# --header-format 5 without --compress
"$SNAPCTL" upload -q --build "$D" "file://$T/s5" --header-format 5
check_entry "$T/s5/$B/rootfs.ext4.header" 5
serve_compare "file://$T/s5/$B/rootfs.ext4.header" "$T/img"

# v3: unchanged, unless --header-format 4
"$SNAPCTL" inspect-header --convert 3 "$T/v3.header" "$D/rootfs.ext4.header" >/dev/null
cp "$T/v3.header" "$D/rootfs.ext4.header"
"$SNAPCTL" upload -q --build "$D" "file://$T/s3"
cmp -s "$T/v3.header" "$T/s3/$B/rootfs.ext4.header" || die "a v3 header was changed by upload"
"$SNAPCTL" upload -q --build "$D" "file://$T/s34" --header-format 4
check_entry "$T/s34/$B/rootfs.ext4.header" 4
expect_exit 2 "$SNAPCTL" upload --build "$D" "file://$T/x" --level 3
echo "upload records the data's sha256 in v4/v5 headers; v3 unchanged"
