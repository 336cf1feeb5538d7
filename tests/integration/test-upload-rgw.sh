# snapctl upload against a real S3 (Ceph RGW, one start): sizes 0, 1, 5 MiB - 1, 5 MiB,
# 5 MiB + 1, 100 MiB and a 2 GiB sparse file, each read back with `aws s3 cp` and compared by
# SHA-256; multipart ETags end in -N with the expected N; x-amz-meta-sha256 is the file's hash;
# the 2 GiB upload's peak RSS stays under 64 MiB; an injected permanent failure (through
# tests/tools/faultproxy.py, SigV4 intact) leaves no multipart upload behind.
. tests/integration/functions.sh
requires curl python3
[ -x /usr/bin/time ] || skip "requires /usr/bin/time (package time)"
. tests/integration/functions-rgw.sh
rgw_requires
T=$(mktmpdir)
free_kib=$(df -Pk "$T" | awk 'NR==2 {print $4}')
[ "$free_kib" -gt $((3 * 1024 * 1024)) ] || skip "needs 3 GiB free in ${TMPDIR:-/tmp} to read the 2 GiB object back"
rgw_start "$T"
aws s3 mb s3://upload-test >/dev/null
# check NAME FILE PARTS: read back, compare, ETag and metadata.
check() {
    rm -f "$T/back"
    aws s3 cp --only-show-errors "s3://upload-test/$1" "$T/back"
    h=$(sha256 "$2")
    [ "$(sha256 "$T/back")" = "$h" ] || die "$1: read back with aws s3 cp, the SHA-256 differs"
    head=$(aws s3api head-object --bucket upload-test --key "$1" --output json)
    meta=$(echo "$head" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("Metadata", {}).get("sha256"))')
    [ "$meta" = "$h" ] || die "$1: x-amz-meta-sha256 is '$meta', not $h"
    etag=$(echo "$head" | json_field ETag | tr -d '"')
    case $3 in
        0) case $etag in *-*) die "$1: single PUT, but ETag $etag" ;; esac ;;
        *) case $etag in *-"$3") ;; *) die "$1: ETag $etag does not end in -$3" ;; esac ;;
    esac
    echo "$1: $(stat -c %s "$2") bytes, ETag $etag, sha256 ok"
    rm -f "$T/back"
}

M=$((1 << 20))
: >"$T/s0"
head -c 1 /dev/urandom >"$T/s1"
head -c $((5 * M - 1)) /dev/urandom >"$T/s5m-1"
head -c $((5 * M)) /dev/urandom >"$T/s5m"
head -c $((5 * M + 1)) /dev/urandom >"$T/s5m+1"
for f in s0:0 s1:0 s5m-1:0 s5m:0 s5m+1:2; do
    name=${f%%:*}
    out=$("$SNAPCTL" upload --json --part-size 5MiB "$T/$name" "s3://upload-test/$name")
    [ "$(echo "$out" | json_field parts)" = "${f#*:}" ] || die "$name: parts in --json: $out"
    check "$name" "$T/$name" "${f#*:}"
done
head -c $((100 * M)) /dev/urandom >"$T/s100m"
"$SNAPCTL" upload --quiet "$T/s100m" s3://upload-test/s100m
check s100m "$T/s100m" 2

# 2 GiB sparse (a little data in it), default part size (41 parts of 50 MiB): peak RSS.
truncate -s 2G "$T/s2g"
printf 'not only zeros' | dd of="$T/s2g" bs=1 seek=$((1000 * M)) conv=notrunc 2>/dev/null
/usr/bin/time -f '%M' -o "$T/rss" "$SNAPCTL" upload --json "$T/s2g" s3://upload-test/s2g >"$T/s2g.json"
cat "$T/s2g.json"
kib=$(tail -n 1 "$T/rss")
echo "peak RSS of the 2 GiB upload: $kib KiB"
[ "$(json_field parts <"$T/s2g.json")" = 41 ] || die "2 GiB: 41 parts expected"
check s2g "$T/s2g" 41
if [ "${VARIANT:-release}" = release ]; then
    [ "$kib" -lt 65536 ] || die "peak RSS $kib KiB of the 2 GiB upload is over 64 MiB"
fi
# Ten times the part size, same bound: RSS does not grow with the part size either.  (The old
# object is deleted and collected first: the RGW keeps data in 4 GiB of memory.)
aws s3 rm --only-show-errors s3://upload-test/s2g
timeout 120 radosgw-admin -c "$RGW_DIR/ceph.conf" gc process --include-all >/dev/null 2>&1 || true
/usr/bin/time -f '%M' -o "$T/rss2" "$SNAPCTL" upload --quiet --part-size 512MiB --concurrency 4 "$T/s2g" s3://upload-test/s2g
kib2=$(tail -n 1 "$T/rss2")
echo "peak RSS of the 2 GiB upload in 512 MiB parts: $kib2 KiB"
etag=$(aws s3api head-object --bucket upload-test --key s2g --query ETag --output text | tr -d '"')
case $etag in *-4) ;; *) die "2 GiB in 512 MiB parts: ETag $etag does not end in -4" ;; esac
if [ "${VARIANT:-release}" = release ]; then
    [ "$kib2" -lt 65536 ] || die "peak RSS $kib2 KiB of the 2 GiB upload in 512 MiB parts is over 64 MiB"
fi
rm -f "$T/s2g"

# An injected permanent failure (part 2 always 500) through a forwarding proxy: aborted.
mkdir -p "$T/proxy"
python3 "$TOP/tests/tools/faultproxy.py" --upstream "$AWS_ENDPOINT_URL" --port-file "$T/proxy/port" 2>"$T/proxy/log" &
ppid=$!
cleanup_fn kill_pid "$ppid"
i=0
while [ ! -s "$T/proxy/port" ]; do
    kill -0 "$ppid" 2>/dev/null || die "faultproxy exited: $(cat "$T/proxy/log")"
    [ $i -lt 100 ] || die "faultproxy did not start"
    sleep 0.1
    i=$((i + 1))
done
P=http://127.0.0.1:$(cat "$T/proxy/port")
server_control "$P" '{"fault": "status=500", "count": 1000, "method": "PUT", "match": "partNumber=2(&|$)"}'
AWS_ENDPOINT_URL=$P expect_exit 5 "$SNAPCTL" upload --part-size 5MiB "$T/s100m" s3://upload-test/failed
cat "$LAST_ERR"
grep -q 'aborted' "$LAST_ERR" || die "the failure does not say the upload was aborted"
server_stats "$P" | grep -q 'DELETE /upload-test/failed?uploadId=' || die "no abort went through the proxy"
left=$(aws s3api list-multipart-uploads --bucket upload-test --query 'length(Uploads || `[]`)' --output text)
[ "$left" = 0 ] || die "list-multipart-uploads shows $left upload(s) left behind"
aws s3api head-object --bucket upload-test --key failed >/dev/null 2>&1 && die "the failed upload created the object"
# A retryable one through the same proxy: a 503 on part 3 once, then success.
server_control "$P" '{"clear": true}'
server_control "$P" '{"fault": "status=503", "count": 1, "method": "PUT", "match": "partNumber=3(&|$)"}'
AWS_ENDPOINT_URL=$P "$SNAPCTL" upload --quiet --part-size 5MiB "$T/s100m" s3://upload-test/retried
check retried "$T/s100m" 20
echo ok
