# snapctl upload against the fault server's S3 emulation: a 503 on one part and a 200 <Error>
# on the complete are retried and the upload succeeds; a permanent 500 aborts it, leaving no
# upload behind; the sha256 metadata is set; --build goes data first, headers and metadata.json
# last, skips empty diffs, and --notify-peer writes the peer's marker; file:// works too.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/tools/faultserver.sh
requires python3 curl
T=$(mktmpdir)
mkdir -p "$T/root/bkt"
faultserver_start "$T/root"
export AWS_ACCESS_KEY_ID=TESTKEY AWS_SECRET_ACCESS_KEY=TESTSECRET AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$FS_URL
unset AWS_SESSION_TOKEN AWS_PROFILE
# The requests of the last upload, "METHOD path?query status", in order.
recent() { server_stats "$FS_URL" | python3 -c 'import json,sys
for r in json.load(sys.stdin)["recent"]: print(r["request"], r["status"])'; }

head -c $((20 << 20)) /dev/urandom >"$T/f20"
H=$(sha256 "$T/f20")

# 1. A 503 on part 3, once: retried; 4 parts of 5 MiB.
server_control "$FS_URL" '{"fault": "status=503", "count": 1, "method": "PUT", "match": "partNumber=3(&|$)"}'
out=$("$SNAPCTL" upload --json --part-size 5MiB --concurrency 2 "$T/f20" s3://bkt/a.bin)
echo "$out"
[ "$(echo "$out" | json_field sha256)" = "$H" ] || die "sha256 in --json"
[ "$(echo "$out" | json_field parts)" = 4 ] || die "4 parts"
cmp "$T/root/bkt/a.bin" "$T/f20" || die "object after a 503"
recent | grep -q 'partNumber=3.* 503$' || die "the 503 was not injected"
[ "$(recent | grep -c 'PUT /bkt/a.bin?partNumber=3')" = 2 ] || die "part 3 was not sent exactly twice"
curl -sfI "$FS_URL/bkt/a.bin" | tr -d '\r' | grep -qi "^x-amz-meta-sha256: $H\$" || die "x-amz-meta-sha256 not set"

# 2. A 200 with an <Error> body on the complete, once: retried.
server_reset "$FS_URL"
server_control "$FS_URL" '{"fault": "error200", "count": 1, "method": "POST", "match": "uploadId="}'
"$SNAPCTL" upload --quiet --part-size 5MiB "$T/f20" s3://bkt/b.bin
cmp "$T/root/bkt/b.bin" "$T/f20" || die "object after a 200 <Error>"
[ "$(recent | grep -c '^POST /bkt/b.bin?uploadId=')" = 2 ] || die "the complete was not retried once"

# 3. A permanent 500 on part 2: the upload is aborted and nothing is left.
server_reset "$FS_URL"
server_control "$FS_URL" '{"fault": "status=500", "count": 100, "method": "PUT", "match": "partNumber=2(&|$)"}'
expect_exit 5 "$SNAPCTL" upload --part-size 5MiB "$T/f20" s3://bkt/c.bin
cat "$LAST_ERR"
grep -q 'c.bin' "$LAST_ERR" && grep -q 'aborted' "$LAST_ERR" || die "the failure message names the object and the abort"
recent | grep -q '^DELETE /bkt/c.bin?uploadId=.* 204$' || die "no abort was sent"
[ "$(server_uploads_left "$FS_URL")" = 0 ] || die "a multipart upload was left behind"
[ ! -e "$T/root/bkt/c.bin" ] || die "a failed upload created the object"
server_control "$FS_URL" '{"clear": true}'

# 3b. The complete's answer is lost (connection reset after the head): the retry finds no
# upload, and the object is recognised as ours by its multipart ETag.
server_reset "$FS_URL"
server_control "$FS_URL" '{"fault": "reset=0", "count": 1, "method": "POST", "match": "uploadId="}'
"$SNAPCTL" upload --quiet --part-size 5MiB "$T/f20" s3://bkt/lost.bin
cmp "$T/root/bkt/lost.bin" "$T/f20" || die "object after a lost complete answer"
recent | grep -q '^POST /bkt/lost.bin?uploadId=.* 404$' || { recent; die "the complete was not retried into a 404"; }

# 3c. SIGINT while parts are slow: parts in flight finish, the upload is aborted, exit 130.
server_control "$FS_URL" '{"fault": "ttfb=1500", "count": 100, "method": "PUT", "match": "partNumber="}'
"$SNAPCTL" upload --quiet --part-size 5MiB --concurrency 1 "$T/f20" s3://bkt/int.bin 2>"$T/int.err" &
up=$!
sleep 1
kill -INT $up
set +e; wait $up; rc=$?; set -e
cat "$T/int.err"
[ $rc = 130 ] || die "interrupted upload exited $rc, not 130"
grep -q 'interrupted' "$T/int.err" && grep -q 'aborted' "$T/int.err" || die "the interrupt message"
[ "$(server_uploads_left "$FS_URL")" = 0 ] || die "an interrupted upload was left behind"
server_control "$FS_URL" '{"clear": true}'

# 4. Small ones: one PUT below a part, a zero-byte file, and the usage errors.
head -c 1000 /dev/urandom >"$T/small"
out=$("$SNAPCTL" upload --json "$T/small" s3://bkt/small)
[ "$(echo "$out" | json_field parts)" = 0 ] || die "a small file is one PUT"
cmp "$T/root/bkt/small" "$T/small" || die "small object"
: >"$T/empty"
"$SNAPCTL" upload --quiet "$T/empty" s3://bkt/empty
[ -f "$T/root/bkt/empty" ] && [ ! -s "$T/root/bkt/empty" ] || die "an explicit zero-byte upload"
expect_exit 2 "$SNAPCTL" upload --part-size 4MiB "$T/f20" s3://bkt/x
grep -q 'minimum of 5MiB' "$LAST_ERR" || die "--part-size below 5 MiB message"
expect_exit 2 "$SNAPCTL" upload --concurrency 0 "$T/f20" s3://bkt/x
expect_exit 2 "$SNAPCTL" upload "$T/f20"
expect_exit 4 "$SNAPCTL" upload "$T/nonexistent" s3://bkt/x

# 5. --build: data objects first, then headers and metadata.json; an empty diff is skipped.
B=6f1c2a4e-9b3d-4c5e-8f70-112233445566
P=00000000-0000-0000-0000-00000000aaaa
D=$T/data/$B
make_diff_build "$D" "$B" "$P"
server_reset "$FS_URL"
# This host's peer serves the build while it uploads, and answers 410 once it is up.
pp=$(free_port)
start_server "$T/peer.pid" "$SNAPCTL" peer serve --data-dir "$T/data" -l "127.0.0.1:$pp" --pid-file "$T/peer.pid"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$pp/v1/builds/$B/memfile")" = 200 ] || die "peer before the upload"
"$SNAPCTL" upload --build "$D" --part-size 5MiB --notify-peer "$T/data" s3://bkt/builds 2>"$T/build.err"
cat "$T/build.err"
grep -q 'rootfs.ext4: empty diff, not uploaded' "$T/build.err" || die "the empty rootfs diff was not reported"
[ ! -e "$T/root/bkt/builds/$B/rootfs.ext4" ] || die "an empty diff was uploaded"
for f in memfile snapfile memfile.header rootfs.ext4.header metadata.json; do
    cmp "$T/root/bkt/builds/$B/$f" "$D/$f" || die "build object $f"
done
[ -e "$D/.upload-done" ] || die "--notify-peer did not write the marker"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$pp/v1/builds/$B/memfile")" = 410 ] ||
    die "the peer does not answer 410 after --notify-peer"
rm "$D/.upload-done"
# Order: the last write of every data object before the first write of any header or metadata.
recent | awk -v b="$B" '
    $1 == "PUT" || $1 == "POST" {
        split($2, a, "?"); n = a[1]; sub(".*/" b "/", "", n)
        if (n == "memfile" || n == "snapfile") last_data = NR
        else if (!first_meta) first_meta = NR
    }
    END { if (!last_data || !first_meta || last_data > first_meta) { print "order wrong"; exit 1 } }' ||
    { recent; die "--build order"; }
expect_exit 2 "$SNAPCTL" upload --build "$T/data" s3://bkt/builds
grep -q 'build id' "$LAST_ERR" || die "a non-build directory is refused with a reason"

# 6. file:// store: kernel copy, atomic rename, sidecar sha256; --build to it.
mkdir -p "$T/store" "$T/cache"
out=$("$SNAPCTL" upload --json "$T/f20" "file://$T/store/f20")
cmp "$T/store/f20" "$T/f20" || die "file:// upload"
[ "$(cat "$T/store/f20.sha256")" = "$H" ] || die "file:// sha256 sidecar"
ls "$T/store" | grep -q tmp && die "a temp file was left"
"$SNAPCTL" upload --quiet --build "$D" "file://$T/store"
cmp "$T/store/$B/memfile" "$D/memfile" || die "--build to file://"
"$SNAPCTL" fetch "file://$T/store/f20" --sha256 "$H" --cache-dir "$T/cache" >/dev/null || die "fetch after upload"
echo "upload faults: ok"

# 7. Over TLS: a TLS forwarding proxy in front of the fault server; parts are encrypted from the
# mapping by mbedTLS.
if command -v openssl >/dev/null; then
    mkdir -p "$T/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$T/tls/key.pem" -out "$T/tls/cert.pem" 2>/dev/null
    python3 "$TOP/tests/tools/faultproxy.py" --upstream "$FS_URL" --port-file "$T/tls/port" \
        --tls-cert "$T/tls/cert.pem" --tls-key "$T/tls/key.pem" 2>"$T/tls/log" &
    tp=$!
    cleanup_fn kill_pid "$tp"
    i=0
    while [ ! -s "$T/tls/port" ]; do
        kill -0 "$tp" 2>/dev/null || die "TLS faultproxy exited: $(cat "$T/tls/log")"
        [ $i -lt 100 ] || die "TLS faultproxy did not start"
        sleep 0.1
        i=$((i + 1))
    done
    curl -sf -X POST -d '{"fault": "status=503", "count": 1, "method": "PUT", "match": "partNumber=2(&|$)"}' \
        --cacert "$T/tls/cert.pem" "https://127.0.0.1:$(cat "$T/tls/port")/_control" >/dev/null
    out=$(SSL_CERT_FILE=$T/tls/cert.pem AWS_ENDPOINT_URL=https://127.0.0.1:$(cat "$T/tls/port") \
        "$SNAPCTL" upload --json --part-size 5MiB "$T/f20" s3://bkt/tls.bin)
    echo "$out"
    cmp "$T/root/bkt/tls.bin" "$T/f20" || die "upload over TLS"
    [ "$(echo "$out" | json_field sha256)" = "$H" ] || die "sha256 over TLS"
fi
echo "upload over TLS: ok"
