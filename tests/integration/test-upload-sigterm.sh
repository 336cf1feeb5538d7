# upload honours SIGTERM and SIGINT on file:// (issue: it ran on, committed and exited 0):
# 0.1 to 0.5 s into a 1 GiB upload, the signal ends it with exit 130 and an "interrupted"
# message; no object, no sha256 sidecar and no temp file are left at the destination, and an
# object already there stays as it was.  An upload that is not interrupted still works.
# (S3 multipart: test-upload-faults 3c; against Ceph RGW: test-upload-sigterm-rgw.)
. tests/integration/functions.sh
T=$(mktmpdir)
mkdir -p "$T/dst"
head -c $((1 << 30)) /dev/urandom >"$T/big"

# interrupt SIGNAL DELAY KEY
interrupt() {
    "$SNAPCTL" upload "$T/big" "file://$T/dst/$3" >"$T/out" 2>"$T/err" &
    pid=$!
    cleanup_fn kill_pid "$pid"
    sleep "$2"
    kill -"$1" "$pid"
    set +e; wait "$pid"; rc=$?; set -e
    echo "SIG$1 after $2 s: exit $rc: $(cat "$T/err")"
    [ "$rc" = 130 ] || die "SIG$1 after $2 s: exit $rc, not 130"
    grep -q 'interrupted' "$T/err" || die "SIG$1: no 'interrupted' message"
    [ ! -s "$T/out" ] || die "SIG$1: a result was printed: $(cat "$T/out")"
}

for d in 0.1 0.3 0.5; do
    interrupt TERM $d new.bin
    [ -z "$(ls -A "$T/dst")" ] || die "SIGTERM after $d s left: $(ls -A "$T/dst")"
done
interrupt INT 0.2 new.bin
[ -z "$(ls -A "$T/dst")" ] || die "SIGINT left: $(ls -A "$T/dst")"

# Over an existing object: it keeps its bytes and its sidecar.
printf 'old object' >"$T/old"
"$SNAPCTL" upload --quiet "$T/old" "file://$T/dst/old.bin"
H=$(sha256 "$T/old")
[ "$(cat "$T/dst/old.bin.sha256")" = "$H" ] || die "sidecar of the first upload"
interrupt TERM 0.3 old.bin
[ "$(cat "$T/dst/old.bin")" = 'old object' ] || die "an interrupted upload changed the existing object"
[ "$(cat "$T/dst/old.bin.sha256")" = "$H" ] || die "an interrupted upload changed the existing sidecar"
[ "$(ls -A "$T/dst" | sort | tr '\n' ' ')" = "old.bin old.bin.sha256 " ] || die "left: $(ls -A "$T/dst")"

# Not interrupted: the whole object, its hash in the sidecar.
head -c $((40 << 20)) "$T/big" >"$T/mid"
out=$("$SNAPCTL" upload "$T/mid" "file://$T/dst/mid.bin")
H=$(sha256 "$T/mid")
[ "$out" = "file://$T/dst/mid.bin $H" ] || die "upload output: $out"
cmp "$T/mid" "$T/dst/mid.bin" || die "uploaded copy differs"
[ "$(cat "$T/dst/mid.bin.sha256")" = "$H" ] || die "sidecar of the full upload"
