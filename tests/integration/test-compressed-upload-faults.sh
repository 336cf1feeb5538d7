# upload --build --compress zstd to an S3 store sends the frames as they are compressed (parts of
# at least --part-size, packed in frame order).  Against the fault server's S3 emulation: a 503
# on one part is retried and the object is exactly the frames (decoded with python3-zstandard,
# independent of our decoder); a permanent 500 on a part aborts the multipart upload, leaving no
# object, no upload and no header, with a message naming the object and the abort; SIGTERM
# mid-upload aborts it too (exit 130).
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/integration/functions-compressed.sh
. tests/tools/faultserver.sh
compressed_requires
requires curl
T=$(mktmpdir)
mkdir -p "$T/cache" "$T/root/bkt"
export TMPDIR=$T/cache
# base_build's image has random runs: 17 MiB of data compress to more than one 5 MiB part.
base_build "$T"
faultserver_start "$T/root"
export AWS_ACCESS_KEY_ID=TESTKEY AWS_SECRET_ACCESS_KEY=TESTSECRET AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$FS_URL
unset AWS_SESSION_TOKEN AWS_PROFILE
control() { server_control "$FS_URL" "$1"; }
recent() { server_stats "$FS_URL" | python3 -c 'import json,sys
for r in json.load(sys.stdin)["recent"]: print(r["request"], r["status"])'; }
obj=$T/root/bkt/ok/$B/rootfs.ext4.zstd

# 1. A 503 on part 2, once: retried; the object is the frames of the data file, in order.
control '{"fault": "status=503", "count": 1, "method": "PUT", "match": "partNumber=2(&|$)"}'
"$SNAPCTL" upload --quiet --build "$T/out/$B" s3://bkt/ok --compress zstd --level 1 --part-size 5MiB ||
    die "upload with one 503"
recent | grep -q 'partNumber=2.* 503$' || die "the 503 was not injected"
parts=$(recent | grep -c "PUT /bkt/ok/$B/rootfs.ext4.zstd?partNumber=.* 200$")
[ "$parts" -ge 2 ] || die "expected at least 2 parts, saw $parts"
"$SNAPCTL" inspect-header --json --frames "$T/root/bkt/ok/$B/rootfs.ext4.header" >"$T/h.json"
/usr/bin/python3 - "$T/h.json" "$obj" "$T/out/$B/rootfs.ext4" <<'PY' || die "the object is not the data's frames"
import json, sys, zstandard
(b,) = json.load(open(sys.argv[1]))["builds"]
obj, data = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
d = zstandard.ZstdDecompressor()
c = u = 0
for f in b["frame_table"]:
    assert (f["start_c"], f["start_u"]) == (c, u), f
    assert d.decompress(obj[c:c + f["size_c"]], max_output_size=f["size_u"]) == data[u:u + f["size_u"]], f
    c, u = c + f["size_c"], u + f["size_u"]
assert c == len(obj) and u == len(data)
PY
curl -sfI "$FS_URL/bkt/ok/$B/rootfs.ext4.zstd" | tr -d '\r' | grep -qi "^x-amz-meta-uncompressed-size: $(stat -c %s "$T/out/$B/rootfs.ext4")\$" ||
    die "no uncompressed-size metadata"
serve_compare "s3://bkt/ok/$B/rootfs.ext4.header" "$T/img"

# 2. A permanent 500 on part 2: aborted, nothing left, no header.
server_reset "$FS_URL"
control '{"fault": "status=500", "count": 100, "method": "PUT", "match": "partNumber=2(&|$)"}'
expect_exit 5 "$SNAPCTL" upload --build "$T/out/$B" s3://bkt/bad --compress zstd --level 1 --part-size 5MiB
cat "$LAST_ERR"
grep -q 'rootfs.ext4.zstd' "$LAST_ERR" && grep -q 'aborted' "$LAST_ERR" || die "the message names the object and the abort"
recent | grep -q "^DELETE /bkt/bad/$B/rootfs.ext4.zstd?uploadId=.* 204$" || die "no abort was sent"
[ "$(server_uploads_left "$FS_URL")" = 0 ] || die "a multipart upload was left behind"
[ ! -e "$T/root/bkt/bad/$B/rootfs.ext4.zstd" ] && [ ! -e "$T/root/bkt/bad/$B/rootfs.ext4.header" ] ||
    die "a failed upload left an object or a header"
control '{"clear": true}'

# 3. SIGTERM while parts are in flight (each part slowed down): exit 130, aborted, nothing left.
server_reset "$FS_URL"
control '{"fault": "ttfb=3000", "count": 100, "method": "PUT", "match": "partNumber="}'
"$SNAPCTL" upload --quiet --build "$T/out/$B" s3://bkt/int --compress zstd --level 1 --part-size 5MiB &
victim=$!
cleanup_fn kill_pid "$victim"
for _ in $(seq 100); do recent | grep -q "partNumber=" && break; sleep 0.05; done
recent | grep -q "partNumber=" || die "no part was sent"
kill -TERM "$victim"
set +e; wait "$victim"; rc=$?; set -e
[ "$rc" -eq 130 ] || die "SIGTERM: exit $rc, expected 130"
[ "$(server_uploads_left "$FS_URL")" = 0 ] || die "SIGTERM left a multipart upload"
[ ! -e "$T/root/bkt/int/$B/rootfs.ext4.zstd" ] || die "SIGTERM left an object"
control '{"clear": true}'
echo "streamed compressed upload: retried, aborted on failure and on SIGTERM"
