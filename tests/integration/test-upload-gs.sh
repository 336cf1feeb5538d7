# snapctl upload to gs:// against the faultserver's GCS emulation with --require-auth: the XML
# multipart calls (POST ?uploads, PUT ?partNumber&uploadId, POST ?uploadId, and the copy onto
# itself that sets x-goog-meta-sha256) each carry `Authorization: Bearer`, with tokens from a
# service-account key (RS256 JWT checked by the server with openssl) and from the metadata server.
# Sizes 0, 1, 5 MiB, 5 MiB + 1 and 40 MiB + 12345 with --part-size 5M: the stored object equals
# the file by SHA-256, its x-goog-meta-sha256 (HEAD with curl) is the file's, fetch --sha256 with
# that value downloads and verifies it, a multipart ETag ends in -N.  Then: tokens revoked while parts are in flight are
# refreshed and the upload succeeds; a permanent 500 on a part aborts it and leaves no upload;
# upload --build to gs:// writes the data objects before headers and metadata.json.
. tests/integration/functions.sh
. tests/tools/faultserver.sh
requires python3 openssl curl
T=$(mktmpdir)
SA=snapctl-test@test-project.iam.gserviceaccount.com
mkdir -p "$T/root/bkt" "$T/cache"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/key.pem" 2>/dev/null
openssl pkey -in "$T/key.pem" -pubout -out "$T/pub.pem"
faultserver_start "$T/root" --jwt-pubkey "$T/pub.pem" --jwt-iss "$SA" --require-auth --quiet
U=$FS_URL
export SNAPCTL_GCS_ENDPOINT=$U
unset GOOGLE_APPLICATION_CREDENTIALS GOOGLE_OAUTH_ACCESS_TOKEN GCS_HMAC_ACCESS_ID GCS_HMAC_SECRET \
    GCE_METADATA_HOST STORAGE_EMULATOR_HOST 2>/dev/null || true
python3 -c 'import json,sys
print(json.dumps({"type": "service_account", "project_id": "test-project", "private_key_id": "k1",
    "private_key": open(sys.argv[1]).read(), "client_email": sys.argv[2], "client_id": "1",
    "token_uri": sys.argv[3]}))' "$T/key.pem" "$SA" "$U/token" >"$T/sa.json"

# The object requests since the last reset: "METHOD target status auth [copy]", in order
# (the token and metadata endpoints are left out: they take no bearer token).
recent() { server_stats "$U" | python3 -c 'import json,sys
for r in json.load(sys.stdin)["recent"]:
    if r["request"].split(" ")[1].startswith(("/token", "/computeMetadata/")): continue
    print(r["request"], r["status"], r.get("auth"), *([r["copy"]] if "copy" in r else []))'; }
# A token for curl, from the metadata endpoint.
bearer() { curl -sf -H 'Metadata-Flavor: Google' "$U/computeMetadata/v1/instance/service-accounts/default/token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'; }

# check_upload NAME FILE KEY PARTS: the requests of one upload and the object it left.
check_upload() {
    local name=$1 f=$2 key=$3 n=$4 h meta
    h=$(sha256 "$f")
    recent >"$T/recent"
    # Every object request carried a bearer token, and none was refused.
    awk '$4 != "Bearer" || $3 !~ /^2/' "$T/recent" | grep . && { cat "$T/recent"; die "$name: a request without a valid bearer token"; }
    if [ "$n" -gt 0 ]; then
        [ "$(grep -c "^POST /bkt/$key?uploads=\\? " "$T/recent")" = 1 ] || { cat "$T/recent"; die "$name: one initiate"; }
        [ "$(grep -c "^PUT /bkt/$key?partNumber=[0-9]*&uploadId=" "$T/recent")" = "$n" ] || { cat "$T/recent"; die "$name: $n parts"; }
        [ "$(grep -c "^POST /bkt/$key?uploadId=" "$T/recent")" = 1 ] || { cat "$T/recent"; die "$name: one complete"; }
        grep -q "^PUT /bkt/$key 200 Bearer /bkt/$key\$" "$T/recent" || { cat "$T/recent"; die "$name: no copy onto itself (set_meta)"; }
    else
        grep -q "^PUT /bkt/$key 200 Bearer\$" "$T/recent" || { cat "$T/recent"; die "$name: no single PUT"; }
        grep -q 'uploads\|uploadId' "$T/recent" && { cat "$T/recent"; die "$name: multipart below one part"; }
    fi
    [ "$(sha256 "$T/root/bkt/$key")" = "$h" ] || die "$name: the stored object differs from the file"
    curl -sfI -H "Authorization: Bearer $(bearer)" "$U/bkt/$key" | tr -d '\r' >"$T/head" || die "$name: HEAD"
    meta=$(sed -n 's/^x-goog-meta-sha256: //Ip' "$T/head")
    [ "$meta" = "$h" ] || { cat "$T/head"; die "$name: x-goog-meta-sha256 '$meta', the file's is $h"; }
    if [ "$n" -gt 0 ]; then
        grep -qi "^etag: \"[0-9a-f]*-$n\"\$" "$T/head" || { cat "$T/head"; die "$name: ETag does not end in -$n"; }
    fi
    rm -f "$T/cache/$meta"
    "$SNAPCTL" fetch "gs://bkt/$key" --sha256 "$meta" --cache-dir "$T/cache" >/dev/null || die "$name: fetch --sha256"
    cmp "$T/cache/$meta" "$f" || die "$name: fetched copy"
}

M=$((5 << 20))
: >"$T/f0"
head -c 1 /dev/urandom >"$T/f1"
head -c $M /dev/urandom >"$T/f5m"
head -c $((M + 1)) /dev/urandom >"$T/f5m1"
head -c $((8 * M + 12345)) /dev/urandom >"$T/f40m"
for flow in key metadata; do
    if [ $flow = key ]; then
        export GOOGLE_APPLICATION_CREDENTIALS=$T/sa.json
        unset GCE_METADATA_HOST
    else
        unset GOOGLE_APPLICATION_CREDENTIALS
        export GCE_METADATA_HOST=127.0.0.1:$FS_PORT
    fi
    for c in "f0 0" "f1 0" "f5m 0" "f5m1 2" "f40m 9"; do
        set -- $c
        server_reset "$U"
        t0=$(server_tokens "$U")
        out=$("$SNAPCTL" upload --json --part-size 5M "$T/$1" "gs://bkt/$flow/$1") || die "$flow $1: upload"
        [ "$(echo "$out" | json_field parts)" = "$2" ] || die "$flow $1: $2 parts expected: $out"
        [ "$(echo "$out" | json_field sha256)" = "$(sha256 "$T/$1")" ] || die "$flow $1: sha256 in --json"
        [ "$(server_tokens "$U")" = $((t0 + 1)) ] || die "$flow $1: one token per run expected, got $(($(server_tokens "$U") - t0))"
        check_upload "$flow $1" "$T/$1" "$flow/$1" "$2"
    done
    echo "gs:// upload with the $flow flow: ok"

    # Tokens revoked while the parts are slow (each answer waits 700 ms, so the 9 parts at
    # concurrency 2 take over 3 s): the requests refused with 401 get one new token and are sent
    # again; the upload completes.  (rate= paces answer bodies only, and a part's answer is empty.)
    server_reset "$U"
    server_control "$U" '{"fault": "ttfb=700", "count": 100, "method": "PUT", "match": "partNumber="}'
    t0=$(server_tokens "$U")
    "$SNAPCTL" upload --quiet --part-size 5M --concurrency 2 "$T/f40m" "gs://bkt/$flow/revoked" 2>"$T/revoked.err" &
    up=$!
    cleanup_fn kill_pid "$up"
    i=0
    until [ "$(recent | grep -c '^PUT .*partNumber=.* 200 ')" -ge 2 ]; do
        [ $i -lt 200 ] || die "$flow: no part was uploaded within 20 s"
        sleep 0.1
        i=$((i + 1))
    done
    server_control "$U" '{"revoke_tokens": true}'
    wait $up || { cat "$T/revoked.err"; die "$flow: upload after a token revocation"; }
    server_control "$U" '{"clear": true}'
    recent >"$T/recent"
    grep -q ' 401 Bearer$' "$T/recent" || { cat "$T/recent"; die "$flow: no request was refused after the revocation"; }
    [ "$(grep -c ' 401 ' "$T/recent")" -le 2 ] || { cat "$T/recent"; die "$flow: more 401s than parts in flight"; }
    [ "$(server_tokens "$U")" = $((t0 + 2)) ] || die "$flow: expected one refresh after the revocation, $(($(server_tokens "$U") - t0)) tokens"
    # the parts refused were sent again and every one of the 9 succeeded once
    [ "$(grep -c '^PUT .*partNumber=.* 200 Bearer$' "$T/recent")" = 9 ] || { cat "$T/recent"; die "$flow: 9 parts"; }
    [ "$(sha256 "$T/root/bkt/$flow/revoked")" = "$(sha256 "$T/f40m")" ] || die "$flow: object after a revocation"
    echo "gs:// upload with the $flow flow, tokens revoked mid-upload: ok"
done

# A permanent 500 on part 2: the upload is aborted (with a bearer token too), nothing is left.
export GOOGLE_APPLICATION_CREDENTIALS=$T/sa.json
unset GCE_METADATA_HOST
server_reset "$U"
server_control "$U" '{"fault": "status=500", "count": 100, "method": "PUT", "match": "partNumber=2(&|$)"}'
expect_exit 5 "$SNAPCTL" upload --part-size 5M "$T/f40m" gs://bkt/failed
server_control "$U" '{"clear": true}'
grep -q 'gs://bkt/failed' "$LAST_ERR" && grep -q 'aborted' "$LAST_ERR" || die "the failure message: $(cat "$LAST_ERR")"
recent >"$T/recent"
grep -q '^DELETE /bkt/failed?uploadId=.* 204 Bearer$' "$T/recent" || { cat "$T/recent"; die "no abort was sent"; }
[ "$(server_uploads_left "$U")" = 0 ] || die "an upload was left behind: $(curl -s "$U/_uploads")"
[ ! -e "$T/root/bkt/failed" ] || die "a failed upload created the object"
echo "gs:// upload, permanent failure aborted: ok"

# upload --build: data objects (multipart) first, then the headers and metadata.json.
B=6f1c2a4e-9b3d-4c5e-8f70-112233445566
P=00000000-0000-0000-0000-00000000aaaa
D=$T/data/$B
make_diff_build "$D" "$B" "$P"
server_reset "$U"
"$SNAPCTL" upload --build "$D" --part-size 5M gs://bkt/builds 2>"$T/build.err" || { cat "$T/build.err"; die "upload --build"; }
grep -q 'rootfs.ext4: empty diff, not uploaded' "$T/build.err" || die "the empty rootfs diff was not reported"
for f in memfile snapfile memfile.header rootfs.ext4.header metadata.json; do
    cmp "$T/root/bkt/builds/$B/$f" "$D/$f" || die "build object $f"
    h=$(sha256 "$D/$f")
    "$SNAPCTL" fetch "gs://bkt/builds/$B/$f" --sha256 "$h" --cache-dir "$T/cache" >/dev/null || die "fetch $f"
done
recent >"$T/recent"
awk '$4 != "Bearer" || $3 !~ /^2/' "$T/recent" | grep . && { cat "$T/recent"; die "--build: a request without a valid bearer token"; }
grep -q "^PUT /bkt/builds/$B/memfile?partNumber=3&" "$T/recent" || { cat "$T/recent"; die "--build: memfile not multipart"; }
# The last write of a data object comes before the first write of a header or metadata.json.
awk -v b="$B" '
    $1 == "PUT" || $1 == "POST" {
        split($2, a, "?"); n = a[1]; sub(".*/" b "/", "", n)
        if (n == "memfile" || n == "snapfile") last_data = NR
        else if (!first_meta) first_meta = NR
    }
    END { if (!last_data || !first_meta || last_data > first_meta) exit 1 }' "$T/recent" ||
    { cat "$T/recent"; die "--build order"; }
echo "gs:// upload --build: ok"
