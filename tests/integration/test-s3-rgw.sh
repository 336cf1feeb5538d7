# The s3:// backend against a real S3, Ceph RGW on loopback (tests/tools/rgw.sh):
# put/get/ranged get/size/multipart/abort from the C test, objects read back with awscli and
# compared by SHA-256; fetch through s3://; bad credentials give exit 8 with a clear message.
. tests/integration/functions.sh
requires curl
. tests/integration/functions-rgw.sh
rgw_requires
T=$(mktmpdir)
rgw_start "$T"
aws s3 mb s3://snapctl-test >/dev/null

SNAPCTL_TEST_S3=s3://snapctl-test/t "$UNIT_TESTS" s3_rgw >"$T/unit.log" 2>&1 || { cat "$T/unit.log"; die "C test against RGW"; }
cat "$T/unit.log"
grep -q '^ok   s3_rgw_put_get_multipart' "$T/unit.log" || die "the RGW test did not run"
grep -q 'SNAPCTL_TEST_S3 not set' "$T/unit.log" && die "the RGW test skipped"

# Read back what snapctl wrote with awscli; compare by SHA-256 with the same generator.
aws s3 cp s3://snapctl-test/t/multi.bin "$T/multi.bin" >/dev/null
aws s3 cp s3://snapctl-test/t/small.bin "$T/small.bin" >/dev/null
[ "$(stat -c %s "$T/multi.bin")" -eq $((11 << 20)) ] || die "multipart size via aws"
meta=$(aws s3api head-object --bucket snapctl-test --key t/small.bin --query Metadata.sha256 --output text)
[ "$meta" = "$(sha256 "$T/small.bin")" ] || die "x-amz-meta-sha256 ($meta) is not the object's SHA-256"
[ "$(aws s3api list-multipart-uploads --bucket snapctl-test --query 'length(Uploads || `[]`)' --output text)" = 0 ] ||
    die "a multipart upload was left behind"

# fetch through s3://, and the errors a user meets.
mkdir -p "$T/cache"
h=$(sha256 "$T/multi.bin")
"$SNAPCTL" fetch s3://snapctl-test/t/multi.bin --sha256 "$h" --cache-dir "$T/cache" >/dev/null
cmp "$T/cache/$h" "$T/multi.bin" || die "fetch via s3://"
rm "$T/cache/$h"
expect_exit 4 "$SNAPCTL" fetch s3://snapctl-test/t/nope --sha256 "$h" --cache-dir "$T/cache"
AWS_SECRET_ACCESS_KEY=wrong expect_exit 8 "$SNAPCTL" fetch s3://snapctl-test/t/multi.bin --sha256 "$h" --cache-dir "$T/cache"
grep -q 'SignatureDoesNotMatch' "$LAST_ERR" || die "bad-credentials message"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY HOME="$T" AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
    AWS_EC2_METADATA_DISABLED=true \
    "$SNAPCTL" fetch s3://snapctl-test/t/multi.bin --sha256 "$h" --cache-dir "$T/cache" 2>"$T/nocred" && die "no credentials"
grep -q 'no AWS credentials: set AWS_ACCESS_KEY_ID' "$T/nocred" || die "no-credentials message"
# A profile in a credentials file works.
printf '[ci]\naws_access_key_id = CIACCESSKEY\naws_secret_access_key = CISECRETKEY\n' >"$T/creds"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE="$T/creds" AWS_PROFILE=ci \
    "$SNAPCTL" fetch s3://snapctl-test/t/multi.bin --sha256 "$h" --cache-dir "$T/cache" >/dev/null || die "profile credentials"

# gs:// with an HMAC key speaks SigV4 with region "auto" (as GCS wants); RGW checks the signature.
rm -f "$T/cache/$h"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_ENDPOINT_URL SNAPCTL_GCS_ENDPOINT="$AWS_ENDPOINT_URL" \
    GCS_HMAC_ACCESS_ID=CIACCESSKEY GCS_HMAC_SECRET=CISECRETKEY \
    "$SNAPCTL" fetch gs://snapctl-test/t/multi.bin --sha256 "$h" --cache-dir "$T/cache" >/dev/null || die "gs:// HMAC fetch"
cmp "$T/cache/$h" "$T/multi.bin" || die "fetch via gs:// with an HMAC key"
rm "$T/cache/$h"
SNAPCTL_GCS_ENDPOINT="$AWS_ENDPOINT_URL" GCS_HMAC_ACCESS_ID=CIACCESSKEY GCS_HMAC_SECRET=wrong \
    expect_exit 8 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
    "$SNAPCTL" fetch gs://snapctl-test/t/multi.bin --sha256 "$h" --cache-dir "$T/cache"
grep -q 'GCS_HMAC_SECRET' "$LAST_ERR" || die "bad HMAC key message: $(cat "$LAST_ERR")"
echo ok
