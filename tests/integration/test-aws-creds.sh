# AWS credentials as the AWS CLI finds them, against a real S3 (Ceph RGW) with the credential
# services played on loopback by tests/tools/awsmeta.py (IMDSv2, the container endpoint, STS):
# each source alone (environment, web identity, profile keys, AssumeRole with source_profile,
# credential_process, container endpoint with and without its token, IMDSv2), then all at once,
# taking the top one away at each step to show the documented order; credentials that expire
# during an upload are refreshed before use; an ExpiredToken 403 mid-upload gets one refresh and
# one retry; a refresh that fails while they are valid keeps them and is not retried at once; a metadata service that is down or hangs fails fast with a clear message; no
# secret ever reaches stderr, even at SNAPCTL_LOG=debug.
#
# The emulator hands out RGW's own keys (CIACCESSKEY/CISECRETKEY) with a session token RGW did
# not issue: with its STS off (the default) RGW authenticates the key and ignores the token
# (docs/aws.md, "Testing").
. tests/integration/functions.sh
requires curl python3 nbdcopy
. tests/integration/functions-nbd.sh
. tests/integration/functions-rgw.sh
rgw_requires
T=$(mktmpdir)
rgw_start "$T"
aws s3 mb s3://creds-test >/dev/null
EP=$AWS_ENDPOINT_URL
SESSION=EMUSESSIONTOKEN0123456789abcdef
WEBTOK=eyJ.web-identity-token.sig
ECSTOK=ecs-authorization-token-42

python3 "$TOP/tests/tools/awsmeta.py" --access-key CIACCESSKEY --secret-key CISECRETKEY \
    --session-token "$SESSION" --web-token "$WEBTOK" --ecs-token "$ECSTOK" --source-key CIACCESSKEY --region eu-south-7 \
    --port-file "$T/meta.port" 2>"$T/meta.log" &
mpid=$!
cleanup_fn kill_pid "$mpid"
i=0
while [ ! -s "$T/meta.port" ]; do
    kill -0 "$mpid" 2>/dev/null || die "awsmeta.py exited: $(cat "$T/meta.log")"
    [ $i -lt 100 ] || die "awsmeta.py did not start"
    sleep 0.1
    i=$((i + 1))
done
E=http://127.0.0.1:$(cat "$T/meta.port")
emu_stat() { server_stats "$E" "d['$1']"; }   # NAME: a counter of the emulator

head -c $((12 << 20)) /dev/urandom >"$T/data"
SUM=$(sha256 "$T/data")
printf '%s\n' "$WEBTOK" >"$T/webtok"
printf '%s\n' "$ECSTOK" >"$T/ecstok"
: >"$T/empty"

# Run snapctl with no AWS variable but the endpoint and region, plus the given NAME=VALUE ones.
clean() {
    env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
        -u AWS_WEB_IDENTITY_TOKEN_FILE -u AWS_ROLE_ARN -u AWS_CONTAINER_CREDENTIALS_FULL_URI \
        -u AWS_CONTAINER_CREDENTIALS_RELATIVE_URI -u AWS_CONTAINER_AUTHORIZATION_TOKEN \
        -u AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE -u AWS_EC2_METADATA_SERVICE_ENDPOINT \
        AWS_ENDPOINT_URL="$EP" AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE="$T/empty" \
        AWS_SHARED_CREDENTIALS_FILE="$T/empty" AWS_EC2_METADATA_DISABLED=true "$@"
}
# No secret, session token, web identity token or container token in what snapctl printed.
no_secrets() {
    for s in CISECRETKEY "$SESSION" "$WEBTOK" "$ECSTOK"; do
        if grep -qF -- "$s" "$1"; then
            cat "$1" >&2
            die "a secret ($(printf %s "$s" | cut -c1-4)...) appears in snapctl's output"
        fi
    done
}
# via NAME EXPECTED-SOURCE-TEXT [VAR=VALUE...]: upload and fetch back with those variables; -v
# must name the source and the key's last four characters.
via() {
    name=$1 want=$2
    shift 2
    clean "$@" "$SNAPCTL" upload -v --quiet "$T/data" "s3://creds-test/$name" >"$T/$name.out" 2>"$T/$name.err" ||
        { cat "$T/$name.err" >&2; die "$name: upload failed"; }
    grep -F "credentials from $want" "$T/$name.err" | grep -q 'access key \.\.\.SKEY' ||
        { cat "$T/$name.err" >&2; die "$name: -v does not say the credentials came from '$want' (key ...SKEY)"; }
    rm -rf "$T/cache" && mkdir "$T/cache"
    clean "$@" SNAPCTL_LOG=debug "$SNAPCTL" fetch -v --quiet "s3://creds-test/$name" --sha256 "$SUM" \
        --cache-dir "$T/cache" >/dev/null 2>>"$T/$name.err" || { cat "$T/$name.err" >&2; die "$name: fetch failed"; }
    no_secrets "$T/$name.err"
    echo "$name: $(grep -m1 -o 'credentials from .*' "$T/$name.err")"
}

# ---- each source alone ----
via env "the environment (AWS_ACCESS_KEY_ID)" AWS_ACCESS_KEY_ID=CIACCESSKEY AWS_SECRET_ACCESS_KEY=CISECRETKEY

n0=$(emu_stat sts_web)
via web "web identity (AWS_WEB_IDENTITY_TOKEN_FILE" AWS_WEB_IDENTITY_TOKEN_FILE="$T/webtok" \
    AWS_ROLE_ARN=arn:aws:iam::000000000000:role/ci AWS_ROLE_SESSION_NAME=ci AWS_ENDPOINT_URL_STS="$E/sts"
[ "$(emu_stat sts_web)" -ge $((n0 + 2)) ] || die "web identity: no AssumeRoleWithWebIdentity reached the emulator"
printf 'not-the-token\n' >"$T/badtok"
expect_exit 8 clean AWS_WEB_IDENTITY_TOKEN_FILE="$T/badtok" AWS_ROLE_ARN=arn:aws:iam::000000000000:role/ci \
    AWS_ENDPOINT_URL_STS="$E/sts" "$SNAPCTL" upload --quiet "$T/data" s3://creds-test/x
grep -q 'InvalidIdentityToken' "$LAST_ERR" || { cat "$LAST_ERR"; die "a refused web identity token: no STS error code"; }
no_secrets "$LAST_ERR"

cat >"$T/credentials" <<'EOF'
[ci]
aws_access_key_id = CIACCESSKEY
aws_secret_access_key = CISECRETKEY
EOF
cat >"$T/config" <<EOF
[profile assumer]
role_arn = arn:aws:iam::000000000000:role/ci
source_profile = ci
role_session_name = ci-test
[profile proc]
credential_process = printf '{"Version": 1, "AccessKeyId": "CIACCESSKEY", "SecretAccessKey": "CISECRETKEY"}'
[profile region-only]
region = us-east-1
EOF
via profile "profile ci of $T/credentials" AWS_PROFILE=ci AWS_SHARED_CREDENTIALS_FILE="$T/credentials" \
    AWS_CONFIG_FILE="$T/config"
n0=$(emu_stat sts_assume)
via assume "profile assumer: role arn:aws:iam::000000000000:role/ci" AWS_PROFILE=assumer \
    AWS_SHARED_CREDENTIALS_FILE="$T/credentials" AWS_CONFIG_FILE="$T/config" AWS_ENDPOINT_URL_STS="$E/sts"
[ "$(emu_stat sts_assume)" -ge $((n0 + 2)) ] || die "assume role: no AssumeRole reached the emulator"
[ "$(emu_stat last_assume_key)" = CIACCESSKEY ] || die "AssumeRole was not signed with source_profile's key"
via process "profile proc: credential_process" AWS_PROFILE=proc AWS_SHARED_CREDENTIALS_FILE="$T/credentials" \
    AWS_CONFIG_FILE="$T/config"
expect_exit 8 clean AWS_PROFILE=nosuch AWS_CONFIG_FILE="$T/config" "$SNAPCTL" upload --quiet "$T/data" s3://creds-test/x
grep -q 'profile nosuch is not in' "$LAST_ERR" || { cat "$LAST_ERR"; die "a missing AWS_PROFILE is not named"; }

via ecs-open "the container credentials endpoint $E/ecs/open/creds" \
    AWS_CONTAINER_CREDENTIALS_FULL_URI="$E/ecs/open/creds"
via ecs-token "the container credentials endpoint $E/ecs/auth/creds" \
    AWS_CONTAINER_CREDENTIALS_FULL_URI="$E/ecs/auth/creds" AWS_CONTAINER_AUTHORIZATION_TOKEN="$ECSTOK"
via ecs-tokenfile "the container credentials endpoint $E/ecs/auth/creds" \
    AWS_CONTAINER_CREDENTIALS_FULL_URI="$E/ecs/auth/creds" AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$T/ecstok"
expect_exit 8 clean AWS_CONTAINER_CREDENTIALS_FULL_URI="$E/ecs/auth/creds" "$SNAPCTL" upload --quiet "$T/data" \
    s3://creds-test/x
grep -q 'container credentials endpoint.*401' "$LAST_ERR" || { cat "$LAST_ERR"; die "a container endpoint without its token: no 401 named"; }

n0=$(emu_stat imds_token)
via imds "the EC2 instance metadata service at $E" AWS_EC2_METADATA_DISABLED=false \
    AWS_EC2_METADATA_SERVICE_ENDPOINT="$E/"
[ "$(emu_stat imds_token)" -ge $((n0 + 2)) ] || die "IMDS: no IMDSv2 session token was asked for"
grep -q 'region us-east-1,' "$T/imds.err" || die "IMDS: AWS_DEFAULT_REGION did not win over the metadata's region"
# No region set anywhere: the instance metadata's (RGW takes any region in the signature).
via imds-region "the EC2 instance metadata service at $E" AWS_EC2_METADATA_DISABLED=false \
    AWS_EC2_METADATA_SERVICE_ENDPOINT="$E/" AWS_DEFAULT_REGION=
grep -q 'region eu-south-7, ' "$T/imds-region.err" || { cat "$T/imds-region.err"; die "IMDS: the region was not taken from the instance metadata"; }

# serve-nbd -v says it too, and serves the object read with those credentials.
port=$(free_port)
start_server "$T/nbd.pid" clean AWS_WEB_IDENTITY_TOKEN_FILE="$T/webtok" AWS_ROLE_ARN=arn:aws:iam::000000000000:role/ci \
    AWS_ENDPOINT_URL_STS="$E/sts" "$SNAPCTL" serve-nbd -v -r --object s3://creds-test/web -l "127.0.0.1:$port" \
    --pid-file "$T/nbd.pid" 2>"$T/nbd.err"
nbdcopy "nbd://127.0.0.1:$port" "$T/nbd.out"
[ "$(sha256 "$T/nbd.out")" = "$SUM" ] || die "serve-nbd --object s3:// with web identity credentials served other bytes"
kill_pid "$(cat "$T/nbd.pid")"
grep -q 'credentials from web identity' "$T/nbd.err" || { cat "$T/nbd.err"; die "serve-nbd -v does not name the source"; }
no_secrets "$T/nbd.err"
echo "serve-nbd: $(grep -m1 -o 'credentials from [^,]*' "$T/nbd.err")"

# ---- the order: everything configured, the top source taken away at each step ----
set -- AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="$E/" \
    AWS_CONTAINER_CREDENTIALS_FULL_URI="$E/ecs/open/order" \
    AWS_SHARED_CREDENTIALS_FILE="$T/credentials" AWS_CONFIG_FILE="$T/config" AWS_ENDPOINT_URL_STS="$E/sts"
via order-1 "the environment" "$@" AWS_PROFILE=assumer AWS_WEB_IDENTITY_TOKEN_FILE="$T/webtok" \
    AWS_ROLE_ARN=arn:aws:iam::000000000000:role/ci AWS_ACCESS_KEY_ID=CIACCESSKEY AWS_SECRET_ACCESS_KEY=CISECRETKEY
via order-2 "web identity" "$@" AWS_PROFILE=assumer AWS_WEB_IDENTITY_TOKEN_FILE="$T/webtok" \
    AWS_ROLE_ARN=arn:aws:iam::000000000000:role/ci
via order-3 "profile assumer" "$@" AWS_PROFILE=assumer
via order-4 "the container credentials endpoint" "$@" AWS_PROFILE=region-only
via order-5 "the EC2 instance metadata service" AWS_EC2_METADATA_DISABLED=false \
    AWS_EC2_METADATA_SERVICE_ENDPOINT="$E/" AWS_SHARED_CREDENTIALS_FILE="$T/credentials" AWS_CONFIG_FILE="$T/config"

# ---- expiry during an upload ----
# Credentials that live 4 s are replaced 1 s before they expire: a part answered 503 with
# Retry-After: 3 is retried after the refresh point, so the retry is signed with new ones.
python3 "$TOP/tests/tools/faultproxy.py" --upstream "$EP" --port-file "$T/proxy.port" 2>"$T/proxy.log" &
ppid=$!
cleanup_fn kill_pid "$ppid"
i=0
while [ ! -s "$T/proxy.port" ]; do
    kill -0 "$ppid" 2>/dev/null || die "faultproxy exited: $(cat "$T/proxy.log")"
    [ $i -lt 100 ] || die "faultproxy did not start"
    sleep 0.1
    i=$((i + 1))
done
PX=http://127.0.0.1:$(cat "$T/proxy.port")
EP=$PX
server_control "$E" '{"ttl": 4}'
curl -sf -X POST -d '{"fault": "status=503,retry-after=4", "count": 1, "method": "PUT", "match": "partNumber=2(&|$)"}' \
    "$PX/_control" >/dev/null
n0=$(emu_stat imds_creds)
clean AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="$E/" "$SNAPCTL" upload -v --quiet \
    --part-size 5MiB --concurrency 1 "$T/data" s3://creds-test/expiry 2>"$T/expiry.err" ||
    { cat "$T/expiry.err"; die "an upload across the credentials' expiry failed"; }
n1=$(emu_stat imds_creds)
echo "credentials fetched from IMDS during an upload that outlived them: $((n1 - n0))"
[ $((n1 - n0)) -ge 2 ] || { cat "$T/expiry.err"; die "the credentials were not refreshed before they expired during the upload"; }
no_secrets "$T/expiry.err"
server_control "$E" '{"ttl": 3600}'

# ExpiredToken on part 2: one refresh, one retry, the upload completes and reads back.
curl -sf -X POST -d '{"fault": "status=403,code=ExpiredToken", "count": 1, "method": "PUT", "match": "partNumber=2(&|$)"}' \
    "$PX/_control" >/dev/null
n0=$(emu_stat imds_creds)
clean AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="$E/" "$SNAPCTL" upload -v --quiet \
    --part-size 5MiB "$T/data" s3://creds-test/expired-token 2>"$T/expired.err" ||
    { cat "$T/expired.err"; die "an ExpiredToken mid-upload was not cured by one refresh"; }
grep -q 'refused as expired' "$T/expired.err" || { cat "$T/expired.err"; die "-v does not report the refresh"; }
[ "$(emu_stat imds_creds)" -eq $((n0 + 2)) ] || die "ExpiredToken: expected exactly one refresh, IMDS saw $(($(emu_stat imds_creds) - n0)) fetches"
no_secrets "$T/expired.err"
aws s3 cp --only-show-errors s3://creds-test/expired-token "$T/back"
[ "$(sha256 "$T/back")" = "$SUM" ] || die "the upload retried after ExpiredToken reads back different"
# Static keys cannot be refreshed: the ExpiredToken is reported, not retried.
server_control "$PX" '{"fault": "status=403,code=ExpiredToken", "count": 1, "method": "PUT"}'
expect_exit 8 clean AWS_ACCESS_KEY_ID=CIACCESSKEY AWS_SECRET_ACCESS_KEY=CISECRETKEY AWS_SESSION_TOKEN="$SESSION" \
    "$SNAPCTL" upload --quiet "$T/empty" s3://creds-test/static-expired
grep -q 'ExpiredToken' "$LAST_ERR" || { cat "$LAST_ERR"; die "the ExpiredToken of static keys is not named"; }
no_secrets "$LAST_ERR"

# A refresh that fails while the credentials are still valid: they are kept (with a warning)
# and the next try waits 10 s, so one hanging metadata call is paid, not one per request.
# Credentials of 20 s are due for refresh at 15 s; part 2's 503 says retry after 16 s; the
# metadata service hangs from the first fetch on.
server_control "$E" '{"ttl": 20}'
curl -sf -X POST -d '{"fault": "status=503,retry-after=16", "count": 1, "method": "PUT", "match": "partNumber=2(&|$)"}' \
    "$PX/_control" >/dev/null
n0=$(emu_stat imds_creds)
s0=$(emu_stat stalled)
clean AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="$E/" "$SNAPCTL" upload -v --quiet \
    --part-size 5MiB --concurrency 1 "$T/data" s3://creds-test/refresh-fails 2>"$T/refail.err" &
upid=$!
i=0
until [ "$(emu_stat imds_creds)" -gt "$n0" ]; do
    kill -0 "$upid" 2>/dev/null || break
    [ $i -lt 300 ] || die "the upload never fetched credentials"
    sleep 0.1
    i=$((i + 1))
done
server_control "$E" '{"stall": true}'
wait "$upid" || { cat "$T/refail.err"; die "an upload whose refresh failed while its credentials were valid failed"; }
server_control "$E" '{"stall": false, "ttl": 3600}'
grep -q 'using the current credentials for their last' "$T/refail.err" ||
    { cat "$T/refail.err"; die "no warning that the refresh failed and the current credentials are kept"; }
stalls=$(($(emu_stat stalled) - s0))
echo "refresh failed mid-upload: $stalls call(s) to the hanging metadata service, upload completed"
[ "$stalls" -eq 1 ] || { cat "$T/refail.err"; die "after a failed refresh every request tried again ($stalls calls)"; }
no_secrets "$T/refail.err"
EP=$AWS_ENDPOINT_URL

# ---- a metadata service that is down ----
port=$(free_port)
start=$(date +%s)
expect_exit 8 clean AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$port/" \
    "$SNAPCTL" upload --quiet "$T/data" s3://creds-test/x
grep -q 'cannot get AWS credentials from the EC2 instance metadata service.*AWS_EC2_METADATA_DISABLED' "$LAST_ERR" ||
    { cat "$LAST_ERR"; die "IMDS down: the message does not say what failed and what to set"; }
cat "$LAST_ERR"
server_control "$E" '{"stall": true}'
rm -rf "$T/cache" && mkdir "$T/cache" # (a cached file would be used without asking anyone)
expect_exit 8 clean AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="$E/" \
    "$SNAPCTL" fetch --quiet s3://creds-test/env --sha256 "$SUM" --cache-dir "$T/cache"
server_control "$E" '{"stall": false}'
took=$(($(date +%s) - start))
cat "$LAST_ERR"
grep -q 'instance metadata service.*idle timeout' "$LAST_ERR" || die "IMDS hanging: no timeout named"
echo "metadata service refused + hanging: failed in $took s together"
[ "$took" -le 15 ] || die "a metadata service that is down took $took s to fail (the timeout is 1 s)"
# Nothing configured at all and the metadata service off: one message saying what to set.
expect_exit 8 clean "$SNAPCTL" upload --quiet "$T/data" s3://creds-test/x
grep -q 'no AWS credentials: set AWS_ACCESS_KEY_ID' "$LAST_ERR" || { cat "$LAST_ERR"; die "no source: unclear message"; }
echo "ok"
