# upload honours SIGTERM against a real S3 (Ceph RGW): 0.1 to 0.5 s into a 1 GiB multipart
# upload, the signal stops new parts, the multipart upload is aborted and the command exits
# 130 within a bounded time; no object and no multipart upload are left in the bucket.
. tests/integration/functions.sh
requires python3
. tests/integration/functions-rgw.sh
rgw_requires
T=$(mktmpdir)
rgw_start "$T"
aws s3 mb s3://sigterm-test >/dev/null
# 1 GiB, sparse but for a little data: 21 parts of 50 MiB.
truncate -s 1G "$T/big"
printf 'not only zeros' | dd of="$T/big" bs=1 seek=$((300 << 20)) conv=notrunc 2>/dev/null

for d in 0.1 0.3 0.5; do
    "$SNAPCTL" upload "$T/big" "s3://sigterm-test/big-$d" >"$T/out" 2>"$T/err" &
    pid=$!
    cleanup_fn kill_pid "$pid"
    sleep "$d"
    kill -TERM "$pid"
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        [ $i -lt 1200 ] || die "SIGTERM after $d s: still running 120 s later"
        sleep 0.1
        i=$((i + 1))
    done
    set +e; wait "$pid"; rc=$?; set -e
    echo "SIGTERM after $d s: exit $rc in ~$((i / 10)) s: $(cat "$T/err")"
    [ "$rc" = 130 ] || die "SIGTERM after $d s: exit $rc, not 130"
    grep -q 'interrupted' "$T/err" || die "no 'interrupted' message"
    ! aws s3api head-object --bucket sigterm-test --key "big-$d" >/dev/null 2>&1 ||
        die "SIGTERM after $d s: the object exists"
    n=$(aws s3api list-multipart-uploads --bucket sigterm-test --output json |
        python3 -c 'import json,sys; t=sys.stdin.read().strip(); print(len(json.loads(t).get("Uploads", [])) if t else 0)')
    [ "$n" = 0 ] || die "SIGTERM after $d s: $n multipart uploads left in the bucket"
done
