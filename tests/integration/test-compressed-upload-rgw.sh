# upload --build --compress zstd (and lz4) to a real S3 (Ceph RGW), in 5 MiB multipart parts:
# the object has its suffix and `aws s3api head-object` shows uncompressed-size (the data
# file's size) and sha256 metadata -- the server-side copy that sets sha256 keeps it -- and
# serve-nbd --header s3://... in another process reads the build back identical.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/integration/functions-compressed.sh
compressed_requires
. tests/integration/functions-rgw.sh
rgw_requires
T=$(mktmpdir)
mkdir -p "$T/cache"
export TMPDIR=$T/cache
base_build "$T"
rgw_start "$T"
aws s3 mb s3://compressed >/dev/null
size=$(stat -c %s "$T/out/$B/rootfs.ext4")
for c in zstd lz4; do
    "$SNAPCTL" upload -q --build "$T/out/$B" "s3://compressed/$c" --compress "$c" --part-size 5MiB \
        --level 1 || die "$c: upload to RGW"
    aws s3api head-object --bucket compressed --key "$c/$B/rootfs.ext4.$c" --output json >"$T/head-$c.json" ||
        die "$c: no object $c/$B/rootfs.ext4.$c"
    /usr/bin/python3 - "$T/head-$c.json" "$size" "$T/out/$B/rootfs.ext4" <<'EOF' || die "$c: object metadata"
import json, sys
m = json.load(open(sys.argv[1]))["Metadata"]
assert m.get("uncompressed-size") == sys.argv[2], m
assert len(m.get("sha256", "")) == 64, m
EOF
    aws s3api head-object --bucket compressed --key "$c/$B/rootfs.ext4" >/dev/null 2>&1 &&
        die "$c: the plain object went up too"
    serve_compare "s3://compressed/$c/$B/rootfs.ext4.header" "$T/img"
done
echo "compressed upload to RGW: metadata and round trips ok"
