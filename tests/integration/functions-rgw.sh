# functions-rgw.sh -- a real S3 for a test: Ceph RGW on loopback through tests/tools/rgw.sh.
#
#   . tests/integration/functions.sh
#   . tests/integration/functions-rgw.sh
#   rgw_requires            # skips (exit 77) without Ceph or awscli
#   T=$(mktmpdir)
#   rgw_start "$T"          # sets RGW_PORT and RGW_DIR (its ceph.conf), exports AWS_* for snapctl and awscli, defines aws()
#   aws s3 mb s3://bucket
#
# The cluster is stopped by the test's cleanup.  Its start is occasionally slow to form (the
# monitor misses the OSD's first call), so it is tried up to three times, each on a fresh port
# and a fresh directory.  awscli 2.9 (Debian) ignores AWS_ENDPOINT_URL: aws() passes it on.

AWS=/usr/bin/aws
RGW_TOOL=$TOP/tests/tools/rgw.sh

rgw_requires() {
    requires radosgw ceph-mon ceph-osd
    [ -x "$AWS" ] || skip "requires awscli"
}

rgw_start() { # DIR
    local started="" attempt d
    for attempt in 1 2 3; do
        RGW_PORT=$(free_tcp_port)
        d=$1/rgw$attempt
        cleanup_fn sh "$RGW_TOOL" stop "$d"
        if sh "$RGW_TOOL" start "$d" "$RGW_PORT" >"$1/rgw.log" 2>&1; then
            started=1
            break
        fi
        echo "RGW start attempt $attempt failed; $(tail -n 1 "$1/rgw.log")"
        sh "$RGW_TOOL" stop "$d"
    done
    [ -n "$started" ] || { cat "$1/rgw.log"; die "RGW did not start in three attempts"; }
    RGW_DIR=$d
    export AWS_ACCESS_KEY_ID=CIACCESSKEY AWS_SECRET_ACCESS_KEY=CISECRETKEY AWS_DEFAULT_REGION=us-east-1
    export AWS_ENDPOINT_URL=http://127.0.0.1:$RGW_PORT
    export AWS_CONFIG_FILE=$1/aws-config AWS_SHARED_CREDENTIALS_FILE=$1/aws-creds
    unset AWS_CA_BUNDLE AWS_PROFILE
}

aws() { "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }

free_tcp_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
