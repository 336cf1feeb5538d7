# gs:// against the faultserver's GCS emulation (--require-auth: every object request needs a
# bearer token it issued): the service-account key flow (RS256 JWT checked with openssl against
# the test's own key), the metadata-server flow, a token from the environment, a wrong key and an
# unreachable metadata server refused with messages that say what to fix; STORAGE_EMULATOR_HOST;
# token refresh before expiry and after a revocation (401) inside a long-running
# serve-nbd --object; fetch and inspect-header through gs://; put, stat with sha256 and the
# multipart calls through store_* (the unit test gs_faultserver_put_get_multipart).
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/tools/faultserver.sh
requires python3 openssl curl nbdcopy
T=$(mktmpdir)
: "${UNIT_TESTS:=$TOP/build/release/unit-tests}"
[ -x "$UNIT_TESTS" ] || skip "requires the unit-test binary (make VARIANT=release variant-bins, or set UNIT_TESTS)"
nbdsh_py -c 'import nbd' 2>/dev/null || skip "requires python3-libnbd"
SA=snapctl-test@test-project.iam.gserviceaccount.com
B=11111111-2222-3333-4444-555555555555

mkdir -p "$T/root/bkt/pre" "$T/cache"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/key.pem" 2>/dev/null
openssl pkey -in "$T/key.pem" -pubout -out "$T/pub.pem"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/other.pem" 2>/dev/null
head -c 9M /dev/urandom >"$T/root/bkt/pre/obj.bin"
H=$(sha256 "$T/root/bkt/pre/obj.bin")
python3 -c 'import struct,sys
u=bytes.fromhex("11111111222233334444555555555555")
sys.stdout.buffer.write(struct.pack("<QQQQ",3,4096,8192,0)+u+u+struct.pack("<QQ",0,8192)+u+struct.pack("<Q",0))' \
    >"$T/root/bkt/pre/memfile.header"

# Tokens live 6 s here, so the cache replaces one after 5 s (a quarter of the life before expiry).
faultserver_start "$T/root" --jwt-pubkey "$T/pub.pem" --jwt-iss "$SA" --require-auth --token-ttl 6 \
    --min-part-size 65536 --quiet
U=$FS_URL
export SNAPCTL_GCS_ENDPOINT=$U
unset GOOGLE_APPLICATION_CREDENTIALS GOOGLE_OAUTH_ACCESS_TOKEN GCS_HMAC_ACCESS_ID GCS_HMAC_SECRET \
    GCE_METADATA_HOST STORAGE_EMULATOR_HOST 2>/dev/null || true

# keyfile PEM OUT: a service-account key file as Google issues them, token_uri at the faultserver.
keyfile() {
    python3 -c 'import json,sys
print(json.dumps({"type": "service_account", "project_id": "test-project", "private_key_id": "k1",
    "private_key": open(sys.argv[1]).read(), "client_email": sys.argv[2], "client_id": "1",
    "token_uri": sys.argv[3]}, indent=2))' "$1" "$SA" "$U/token" >"$2"
}
keyfile "$T/key.pem" "$T/sa.json"
keyfile "$T/other.pem" "$T/wrong.json"
# saw REQUEST-PREFIX STATUS: how many recent requests started so and got that status.
saw() { server_stats "$U" | python3 -c 'import json,sys
d=json.load(sys.stdin); print(sum(1 for r in d["recent"] if r["request"].startswith(sys.argv[1]) and r["status"] == int(sys.argv[2])))' "$1" "$2"; }

# -- the service-account key: fetch and inspect-header ----------------------------------------
GOOGLE_APPLICATION_CREDENTIALS=$T/sa.json "$SNAPCTL" fetch "gs://bkt/pre/obj.bin" --sha256 "$H" \
    --cache-dir "$T/cache" >/dev/null
cmp "$T/cache/$H" "$T/root/bkt/pre/obj.bin" || die "fetch over gs:// with a key file"
[ "$(server_tokens "$U")" = 1 ] || die "key file: expected one token exchange, got $(server_tokens "$U")"
GOOGLE_APPLICATION_CREDENTIALS=$T/sa.json "$SNAPCTL" inspect-header --check "gs://bkt/pre/memfile.header" \
    | grep -q "ok: 1 entries cover" || die "inspect-header over gs://"
GOOGLE_APPLICATION_CREDENTIALS=$T/sa.json expect_exit 4 "$SNAPCTL" inspect-header "gs://bkt/pre/missing.header"
grep -q "gs://bkt/pre/missing.header" "$LAST_ERR" || die "404 names the object: $(cat "$LAST_ERR")"

# A key that is not the service account's: refused at the token URI, exit 8, and the message names
# the token URI, the key file and what to check.
GOOGLE_APPLICATION_CREDENTIALS=$T/wrong.json expect_exit 8 "$SNAPCTL" inspect-header "gs://bkt/pre/memfile.header"
for w in "$U/token" "wrong.json" "$SA" "Invalid JWT Signature" "check that the key is current"; do
    grep -qF "$w" "$LAST_ERR" || die "wrong-key message lacks '$w': $(cat "$LAST_ERR")"
done
printf '{"type": "authorized_user", "refresh_token": "x"}' >"$T/user.json"
GOOGLE_APPLICATION_CREDENTIALS=$T/user.json expect_exit 8 "$SNAPCTL" inspect-header "gs://bkt/pre/memfile.header"
grep -q 'type "authorized_user"' "$LAST_ERR" || die "user credentials message: $(cat "$LAST_ERR")"
GOOGLE_APPLICATION_CREDENTIALS=$T/missing.json expect_exit 8 "$SNAPCTL" inspect-header "gs://bkt/pre/memfile.header"
grep -q "missing.json" "$LAST_ERR" || die "missing key file message: $(cat "$LAST_ERR")"

# -- the metadata server ----------------------------------------------------------------------
rm -f "$T/cache/$H"
before=$(server_tokens "$U")
GCE_METADATA_HOST=127.0.0.1:$FS_PORT "$SNAPCTL" fetch "gs://bkt/pre/obj.bin" --sha256 "$H" --cache-dir "$T/cache" \
    >/dev/null
cmp "$T/cache/$H" "$T/root/bkt/pre/obj.bin" || die "fetch with a metadata-server token"
[ "$(server_tokens "$U")" = $((before + 1)) ] || die "metadata: expected one token"
# (the faultserver answers 403 without Metadata-Flavor: Google, so the header was sent)
[ "$(saw "GET /computeMetadata/v1/instance/service-accounts/default/token" 200)" -ge 1 ] || die "no metadata request"
dead=$(free_port)
GCE_METADATA_HOST=127.0.0.1:$dead expect_exit 8 "$SNAPCTL" inspect-header "gs://bkt/pre/memfile.header"
for w in "metadata server at 127.0.0.1:$dead" GOOGLE_APPLICATION_CREDENTIALS GOOGLE_OAUTH_ACCESS_TOKEN; do
    grep -qF "$w" "$LAST_ERR" || die "metadata-down message lacks '$w': $(cat "$LAST_ERR")"
done

# -- a token from the environment (it wins over a key file); refused once revoked -------------
tok=$(curl -s -H 'Metadata-Flavor: Google' "$U/computeMetadata/v1/instance/service-accounts/default/token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
before=$(server_tokens "$U")
GOOGLE_OAUTH_ACCESS_TOKEN=$tok GOOGLE_APPLICATION_CREDENTIALS=$T/wrong.json \
    "$SNAPCTL" inspect-header --check "gs://bkt/pre/memfile.header" >/dev/null || die "env token"
[ "$(server_tokens "$U")" = "$before" ] || die "an env token must not be exchanged"
server_control "$U" '{"revoke_tokens": true}'
GOOGLE_OAUTH_ACCESS_TOKEN=$tok expect_exit 8 "$SNAPCTL" inspect-header "gs://bkt/pre/memfile.header"
grep -q "GOOGLE_OAUTH_ACCESS_TOKEN was refused" "$LAST_ERR" || die "revoked env token message: $(cat "$LAST_ERR")"
GOOGLE_OAUTH_ACCESS_TOKEN='two words' expect_exit 8 "$SNAPCTL" inspect-header "gs://bkt/pre/memfile.header"

# -- STORAGE_EMULATOR_HOST: host:port as the endpoint; without credentials nothing is sent --------
STORAGE_EMULATOR_HOST=127.0.0.1:$FS_PORT expect_exit 8 env -u SNAPCTL_GCS_ENDPOINT \
    "$SNAPCTL" inspect-header "gs://bkt/pre/memfile.header"
grep -q "no credentials were sent (STORAGE_EMULATOR_HOST" "$LAST_ERR" || die "emulator message: $(cat "$LAST_ERR")"
GCE_METADATA_HOST=127.0.0.1:$FS_PORT STORAGE_EMULATOR_HOST=127.0.0.1:$FS_PORT GOOGLE_APPLICATION_CREDENTIALS=$T/sa.json \
    env -u SNAPCTL_GCS_ENDPOINT "$SNAPCTL" inspect-header --check "gs://bkt/pre/memfile.header" >/dev/null ||
    die "STORAGE_EMULATOR_HOST with a key file"

# -- a long-running reader: refresh before expiry, and one refresh + retry after a 401 --------
np=$(free_port)
uri=nbd://127.0.0.1:$np
GOOGLE_APPLICATION_CREDENTIALS=$T/sa.json start_server "$T/npid" "$SNAPCTL" serve-nbd --object "gs://bkt/pre/obj.bin" \
    --cache-dir "$T/cache" -l "127.0.0.1:$np" --pid-file "$T/npid" -r
readat() { nbdsh_py -c 'import nbd,sys; h=nbd.NBD(); h.connect_uri(sys.argv[1]); assert len(h.pread(4096, int(sys.argv[2]))) == 4096; h.shutdown()' "$uri" "$1"; }
readat 0 || die "read chunk 0"
t0=$(server_tokens "$U")
r401=$(saw "GET /bkt/pre/obj.bin" 401)
sleep 6   # past the token's life: the cache fetches a new one before using it
readat $((4 << 20)) || die "read chunk 1 after the token expired"
[ "$(server_tokens "$U")" = $((t0 + 1)) ] || die "expected a refresh before expiry ($(server_tokens "$U") tokens, was $t0)"
[ "$(saw "GET /bkt/pre/obj.bin" 401)" = "$r401" ] || die "an expired token was sent (401)"
server_control "$U" '{"revoke_tokens": true}'
readat $((8 << 20)) || die "read chunk 2 after the token was revoked"
[ "$(saw "GET /bkt/pre/obj.bin" 401)" = $((r401 + 1)) ] || die "expected one 401 after the revocation"
[ "$(server_tokens "$U")" = $((t0 + 2)) ] || die "expected one refresh after the 401"
nbdcopy "$uri" "$T/copy"
[ "$(sha256 "$T/copy")" = "$H" ] || die "serve-nbd --object gs:// data differs"

# -- put, stat (x-goog-meta-sha256), ranges and multipart through store_* ---------------------
# (set_meta is checked too when this faultserver emulates copies)
copy=""
grep -q "x-goog-copy-source" "$TOP/tests/tools/faultserver.py" && copy=1
SNAPCTL_TEST_COPY=$copy SNAPCTL_TEST_GS=gs://bkt/unit GOOGLE_APPLICATION_CREDENTIALS=$T/sa.json "$UNIT_TESTS" gs_faultserver \
    >"$T/unit.log" 2>&1 || { cat "$T/unit.log"; die "C test of the gs:// store"; }
grep -q "ok   gs_faultserver_put_get_multipart" "$T/unit.log" || { cat "$T/unit.log"; die "unit test did not run"; }
[ -z "$copy" ] || grep -q "set_meta: metadata replaced" "$T/unit.log" || { cat "$T/unit.log"; die "set_meta not checked"; }
cmp <(python3 -c 'import sys
seed=2; n=3*65536+1234; out=bytearray(n)
for i in range(n):
    seed=(seed*1103515245+12345)&0xffffffff; out[i]=(seed>>16)&0xff
sys.stdout.buffer.write(out)') "$T/root/bkt/unit/multi.bin" || die "the multipart object as the server stored it"
[ "$(server_uploads_left "$U")" = 0 ] || die "uploads left behind: $(curl -s "$U/_uploads")"
echo ok
