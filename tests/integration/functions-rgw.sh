# functions-rgw.sh -- a real S3 for a test: Ceph RGW on loopback through tests/tools/rgw.sh.
#
#   . tests/integration/functions.sh
#   . tests/integration/functions-rgw.sh
#   rgw_requires            # skips (exit 77) without Ceph or awscli
#   T=$(mktmpdir)
#   rgw_start "$T"          # sets RGW_PORT and RGW_DIR (its ceph.conf), exports AWS_* for snapctl and awscli, defines aws()
#   aws s3 mb s3://bucket
#
# tests/run.sh starts one RGW for the whole run when a selected test wants one and names it in
# RGW_SHARED_DIR and RGW_SHARED_PORT: rgw_start then uses it, and at exit deletes the buckets the
# test made (with their objects and unfinished uploads), so each test keeps to bucket names of its
# own.  Without them (a test run alone) rgw_start starts an RGW of the test's own, stopped by its
# cleanup; so does rgw_start_own, for a test that reconfigures or restarts its gateway.
# awscli 2.9 (Debian) ignores AWS_ENDPOINT_URL: aws() passes it on.

AWS=/usr/bin/aws
RGW_TOOL=$TOP/tests/tools/rgw.sh

rgw_requires() {
    requires radosgw ceph-mon ceph-osd curl
    [ -x "$AWS" ] || skip "requires awscli"
}

rgw_start() { # DIR
    if [ -z "${RGW_SHARED_DIR:-}" ] || ! curl -sf -o /dev/null "http://127.0.0.1:$RGW_SHARED_PORT/"; then
        [ -z "${RGW_SHARED_DIR:-}" ] || echo "note: the run's RGW does not answer; starting one of this test's own"
        rgw_start_own "$1"
        return
    fi
    RGW_DIR=$RGW_SHARED_DIR RGW_PORT=$RGW_SHARED_PORT
    _rgw_env "$1"
    _rgw_buckets >"$1/rgw-buckets-before"
    cleanup_fn _rgw_drop_new_buckets "$1/rgw-buckets-before"
}

rgw_start_own() { # DIR
    local n out
    for n in 1 2 3; do cleanup_fn sh "$RGW_TOOL" stop "$1/rgw$n"; done
    out=$(sh "$RGW_TOOL" up "$1") || { cat "$1"/rgw*.log; die "RGW did not start in three attempts"; }
    RGW_DIR=${out% *} RGW_PORT=${out##* }
    _rgw_env "$1"
}

_rgw_env() { # DIR: the keys rgw.sh gives its user; awscli's files kept in DIR
    export AWS_ACCESS_KEY_ID=CIACCESSKEY AWS_SECRET_ACCESS_KEY=CISECRETKEY AWS_DEFAULT_REGION=us-east-1
    export AWS_ENDPOINT_URL=http://127.0.0.1:$RGW_PORT
    export AWS_CONFIG_FILE=$1/aws-config AWS_SHARED_CREDENTIALS_FILE=$1/aws-creds
    unset AWS_CA_BUNDLE AWS_PROFILE
}

_rgw_buckets() { aws s3api list-buckets --query 'Buckets[].Name' --output text | tr -s '\t ' '\n\n' | grep -vx 'None' || true; }

# _rgw_drop_new_buckets BEFORE: delete each bucket not listed in BEFORE, its objects and parts at
# once (not left to RGW's garbage collection: the shared OSD keeps them in memory).
_rgw_drop_new_buckets() {
    local b
    for b in $(_rgw_buckets); do
        grep -qxF "$b" "$1" && continue
        timeout 120 radosgw-admin -c "$RGW_DIR/ceph.conf" bucket rm --bucket="$b" --purge-objects --bypass-gc \
            >/dev/null 2>&1 || echo "note: could not delete bucket $b of the shared RGW" >&2
    done
}

aws() { "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }
