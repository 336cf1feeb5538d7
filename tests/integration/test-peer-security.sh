# peer serve: only {uuid}/{listed file} under the data dir is ever served; everything else is
# refused with a clear status, and a canary file outside the data dir is never read.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires curl
T=$(mktmpdir)
B=11111111-2222-3333-4444-555555555555
mkdir -p "$T/data/$B"
head -c 100000 /dev/urandom >"$T/data/$B/memfile"
echo "CANARY-SECRET" >"$T/canary"
ln -s "$T/canary" "$T/data/$B/snapfile"            # a planted symlink
mkdir -p "$T/data/22222222-2222-3333-4444-555555555555"
ln -s "$T" "$T/data/33333333-2222-3333-4444-555555555555"   # a symlinked build dir
port=$(free_port)
U=http://127.0.0.1:$port
start_server "$T/pid" "$SNAPCTL" peer serve --data-dir "$T/data" -l "127.0.0.1:$port" --pid-file "$T/pid"

code() { curl -s -o "$T/body" -w '%{http_code}' --path-as-is "$@"; }
expect() { # STATUS CURL-ARGS...
    want=$1; shift
    got=$(code "$@")
    [ "$got" = "$want" ] || die "$* -> $got, expected $want"
    ! grep -q CANARY "$T/body" || die "$* leaked the canary"
}
# The good path: whole, ranged, HEAD.
expect 200 "$U/v1/builds/$B/memfile"
cmp "$T/body" "$T/data/$B/memfile" || die "whole body"
expect 206 -r 100-199 "$U/v1/builds/$B/memfile"
[ "$(wc -c <"$T/body")" -eq 100 ] || die "range length"
curl -sI "$U/v1/builds/$B/memfile" | grep -qi '^content-length: 100000' || die "HEAD"
# Refusals.
expect 404 "$U/v1/builds/$B/rootfs.ext4"                       # listed name, not present
expect 400 "$U/v1/builds/$B/../../canary"                      # traversal
expect 400 "$U/v1/builds/../../../$T/canary"
expect 400 "$U/v1/builds/$B/%2e%2e%2f%2e%2e%2fcanary"          # encoded traversal
expect 400 "$U/v1/builds/%2e%2e/memfile"
expect 400 "$U/v1/builds/not-a-uuid-not-a-uuid-not-a-uuid-xx/memfile"
expect 400 "$U/v1/builds/$B/passwd"                            # unlisted name
expect 400 "$U/v1/builds/$B/memfile/extra"
expect 403 "$U/v1/builds/$B/snapfile"                          # symlink to the canary
expect 404 "$U/v1/builds/33333333-2222-3333-4444-555555555555/memfile"  # symlinked dir
expect 404 "$U/v1/builds/22222222-2222-3333-4444-555555555555/memfile"
expect 404 "$U/etc/passwd"
expect 416 -r 100000- "$U/v1/builds/$B/memfile"                # range past the end
expect 416 -H 'Range: bytes=99999999999999999-' "$U/v1/builds/$B/memfile"
expect 206 -H 'Range: bytes=0-99999999999999999' "$U/v1/builds/$B/memfile"   # clamped, not huge
[ "$(wc -c <"$T/body")" -eq 100000 ] || die "huge range clamped to the object"
expect 405 -X PUT --data x "$U/v1/builds/$B/memfile"
expect 413 -X GET --data x "$U/v1/builds/$B/memfile"           # a GET with a body
# Upload finished -> 410 with the header that sends the client to storage.
touch "$T/data/$B/.upload-done"
expect 410 "$U/v1/builds/$B/memfile"
curl -sI "$U/v1/builds/$B/memfile" | grep -qi '^x-snapctl-use-storage: 1' || die "410 header"
rm "$T/data/$B/.upload-done"
# Metrics.
curl -s "$U/metrics" >"$T/metrics"
grep -q '^snapctl_peer_requests_total [1-9]' "$T/metrics" || die "metrics requests"
grep -q '^snapctl_peer_bytes_served_total [1-9]' "$T/metrics" || die "metrics bytes"
grep -q '^snapctl_peer_pinned_builds 0' "$T/metrics" || die "nothing pinned at rest"

# A client outside --allow is refused before a byte is read.
port2=$(free_port)
start_server "$T/pid2" "$SNAPCTL" peer serve --data-dir "$T/data" -l "127.0.0.1:$port2" --allow 10.0.0.0/8 \
    --pid-file "$T/pid2"
if curl -s -o /dev/null "http://127.0.0.1:$port2/v1/builds/$B/memfile"; then
    die "a client outside --allow was served"
fi
echo ok
