# Temporary credentials issued by Ceph RGW's own STS: RGW is restarted with its STS on
# (rgw_sts_key, rgw_s3_auth_use_sts), a role is made that the CI user may assume, and snapctl,
# given only a profile with role_arn + source_profile, calls AssumeRole on RGW itself, then
# writes and reads a real bucket with the session credentials RGW issued; a role the user may
# not assume is refused with RGW's error code; a session token RGW did not issue is refused once
# its STS is on (why test-aws-creds.sh keeps RGW's STS off, docs/aws.md).
. tests/integration/functions.sh
requires curl python3
. tests/integration/functions-rgw.sh
rgw_requires
T=$(mktmpdir)
rgw_start_own "$T"   # its own gateway, not the run's shared one: it is restarted with STS on
C="-c $RGW_DIR/ceph.conf"

# Turn RGW's STS on: two settings read at start, so the gateway is restarted (same port, its
# PID recorded where stop-rgw.sh looks for it).
timeout 60 ceph $C config set client.rgw.a rgw_sts_key snapctltestkey16 >/dev/null
timeout 60 ceph $C config set client.rgw.a rgw_s3_auth_use_sts true >/dev/null
old=$(cat "$RGW_DIR/rgw.pid")
kill "$old"
i=0
while kill -0 "$old" 2>/dev/null; do
    [ $i -lt 200 ] || die "radosgw $old did not stop"
    sleep 0.1
    i=$((i + 1))
done
radosgw $C -n client.rgw.a -f >>"$RGW_DIR/log/rgw.out" 2>&1 &
echo $! >"$RGW_DIR/rgw.pid"
i=0
until curl -sf -o /dev/null "$AWS_ENDPOINT_URL/"; do
    [ $i -lt 240 ] || die "radosgw did not come back with STS on"
    sleep 0.5
    i=$((i + 1))
done
timeout 60 radosgw-admin $C caps add --uid=ci --caps="roles=*" >/dev/null
aws s3 mb s3://sts-test >/dev/null
aws iam create-role --role-name snapctl-ci --assume-role-policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam:::user/ci"]},"Action":["sts:AssumeRole"]}]}' >/dev/null
aws iam put-role-policy --role-name snapctl-ci --policy-name s3 --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":"arn:aws:s3:::*"}]}'
aws iam create-role --role-name nobody-may --assume-role-policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam:::user/someone-else"]},"Action":["sts:AssumeRole"]}]}' >/dev/null

cat >"$T/credentials" <<'EOF'
[ci]
aws_access_key_id = CIACCESSKEY
aws_secret_access_key = CISECRETKEY
EOF
cat >"$T/config" <<'EOF'
[profile rgw-role]
role_arn = arn:aws:iam:::role/snapctl-ci
source_profile = ci
duration_seconds = 900
[profile rgw-denied]
role_arn = arn:aws:iam:::role/nobody-may
source_profile = ci
EOF
head -c $((12 << 20)) /dev/urandom >"$T/data"
SUM=$(sha256 "$T/data")
# Only the profile: no key in the environment; STS is AWS_ENDPOINT_URL (RGW) as for the AWS CLI.
role() {
    env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN AWS_SHARED_CREDENTIALS_FILE="$T/credentials" \
        AWS_CONFIG_FILE="$T/config" AWS_EC2_METADATA_DISABLED=true "$@"
}
role AWS_PROFILE=rgw-role "$SNAPCTL" upload -v --quiet --part-size 5MiB "$T/data" s3://sts-test/by-role 2>"$T/up.err" ||
    { cat "$T/up.err"; die "upload with RGW-issued temporary credentials failed"; }
cat "$T/up.err"
grep -q "credentials from profile rgw-role: role arn:aws:iam:::role/snapctl-ci via STS $AWS_ENDPOINT_URL" "$T/up.err" ||
    die "-v does not name the AssumeRole source"
grep -q 'with a session token' "$T/up.err" || die "no session token from RGW's STS"
grep -q 'access key \.\.\.SKEY' "$T/up.err" && die "the upload used the long-term key, not the role's"
grep -qF CISECRETKEY "$T/up.err" && die "a secret in the output"
mkdir "$T/cache"
role AWS_PROFILE=rgw-role "$SNAPCTL" fetch --quiet s3://sts-test/by-role --sha256 "$SUM" --cache-dir "$T/cache" >/dev/null
aws s3 cp --only-show-errors s3://sts-test/by-role "$T/back"
[ "$(sha256 "$T/back")" = "$SUM" ] || die "the object written with the role's credentials reads back different"
echo "RGW STS AssumeRole: 12 MiB written (3 parts) and read back with RGW-issued session credentials"

expect_exit 8 role AWS_PROFILE=rgw-denied "$SNAPCTL" upload --quiet "$T/data" s3://sts-test/denied
cat "$LAST_ERR"
grep -q 'STS: AccessDenied' "$LAST_ERR" || die "a role the user may not assume: RGW's AccessDenied not named"
grep -qF CISECRETKEY "$LAST_ERR" && die "a secret in the output"

# With its STS on, RGW checks session tokens: one it did not issue is refused (RGW 16 answers
# 400 InvalidArgument, a request error: exit 5).
expect_exit 5 env AWS_SESSION_TOKEN=not-issued-by-rgw "$SNAPCTL" upload --quiet "$T/data" s3://sts-test/fake-token
grep -q 'InvalidArgument' "$LAST_ERR" || { cat "$LAST_ERR"; die "a foreign session token was not refused"; }
echo "ok"
