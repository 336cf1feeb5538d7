# peer serve: only {uuid}/{listed file} under the data dir is ever served; everything else is
# refused with a clear status, and a canary file outside the data dir is never read.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires curl openssl
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

# The client's own allowlist: a peer address outside it is refused at startup, without dialing.
SHA=$(sha256sum "$T/data/$B/memfile" | cut -c1-64)
mkdir -p "$T/cache" "$T/store/$B"
cp "$T/data/$B/memfile" "$T/store/$B/memfile"
expect_exit 8 "$SNAPCTL" fetch --peer 169.254.169.254:80 --sha256 "$SHA" --cache-dir "$T/cache" \
    "file://$T/store/$B/memfile"
grep -q "169.254.169.254.*not in the peer allowlist.*not dialing" "$LAST_ERR" || die "allowlist message"
expect_exit 8 "$SNAPCTL" inspect-header --peer 10.1.2.3:7070 "file://$T/store/$B/memfile.header"
grep -q "not in the peer allowlist" "$LAST_ERR" || die "allowlist message (inspect-header)"
# ... and an explicit --peer-allow that does not cover the address refuses it too.
expect_exit 8 "$SNAPCTL" serve-nbd --peer "127.0.0.1:$port" --peer-allow 10.0.0.0/8 \
    --object "file://$T/store/$B/memfile" --stdio </dev/null
grep -q "not in the peer allowlist (--peer-allow)" "$LAST_ERR" || die "allowlist message (--peer-allow)"
[ -z "$(ls "$T/cache")" ] || die "something was cached by a refused fetch"

# TLS: a CA, a server certificate for 127.0.0.1, and another CA that signed nothing here.
. tests/integration/functions-tls.sh
tls_make_ca "$T" ca; tls_make_ca "$T" other
tls_make_cert "$T" ca srv IP:127.0.0.1
expect_exit 2 "$SNAPCTL" peer serve --data-dir "$T/data" --tls-cert "$T/srv.crt"
expect_exit 8 "$SNAPCTL" peer serve --data-dir "$T/data" --tls-cert "$T/srv.crt" --tls-key "$T/other.key" \
    -l "127.0.0.1:$(free_port)"
grep -q "does not belong to the certificate" "$LAST_ERR" || die "mismatched key message"
port3=$(free_port)
start_server "$T/pid3" "$SNAPCTL" peer serve --data-dir "$T/data" -l "127.0.0.1:$port3" \
    --tls-cert "$T/srv.crt" --tls-key "$T/srv.key" --pid-file "$T/pid3" 2>"$T/tls.log"
# A plaintext client is refused cleanly (a plaintext 400 saying why), and the server logs it.
expect 400 "http://127.0.0.1:$port3/v1/builds/$B/memfile"
grep -q "TLS only" "$T/body" || die "plaintext refusal body"
grep -q "refused 127.0.0.1:[0-9]*: a plaintext request on a TLS-only server" "$T/tls.log" || die "server log"
# TLS with the right CA: served; the peer's data arrives over TLS.
expect 206 --cacert "$T/ca.crt" -r 0-99999 "https://127.0.0.1:$port3/v1/builds/$B/memfile"
cmp "$T/body" "$T/data/$B/memfile" || die "TLS body"
# snapctl as the client: --peer-ca verifies, the bytes come from the peer (the store copy differs).
head -c 100000 /dev/zero >"$T/store/$B/memfile"
SHA=$(sha256sum "$T/data/$B/memfile" | cut -c1-64)
"$SNAPCTL" fetch --peer "127.0.0.1:$port3" --peer-ca "$T/ca.crt" --peer-stats "$T/stats" --sha256 "$SHA" \
    --cache-dir "$T/cache" "file://$T/store/$B/memfile" >/dev/null || die "fetch over TLS"
grep -q '^snapctl_tiered_peer_reads_total [1-9]' "$T/stats" || die "not read from the TLS peer"
grep -q '^snapctl_tiered_storage_reads_total 0' "$T/stats" || die "read from storage"
# With a CA that did not sign the peer: a clear verification error (the read falls back to the
# store, whose different bytes then fail the SHA-256 -- nothing from an unverified peer is used).
rm -f "$T/cache/"*
"$SNAPCTL" fetch --peer "127.0.0.1:$port3" --peer-ca "$T/other.crt" --sha256 "$SHA" \
    --cache-dir "$T/cache" "file://$T/store/$B/memfile" >/dev/null 2>"$T/fetch.log" && die "unverified peer used"
grep -q "TLS certificate of '127.0.0.1' not trusted" "$T/fetch.log" || die "verification message: $(cat "$T/fetch.log")"
grep -q "SHA-256 mismatch" "$T/fetch.log" || die "fell back to the store"
# peers:// without --peer-ca: TLS with the system's CAs, which did not sign this peer.
"$SNAPCTL" fetch --peer "peers://127.0.0.1:$port3" --sha256 "$SHA" \
    --cache-dir "$T/cache" "file://$T/store/$B/memfile" >/dev/null 2>"$T/fetch.log" && die "unverified peer used"
grep -q "TLS certificate of '127.0.0.1' not trusted" "$T/fetch.log" || die "verification message: $(cat "$T/fetch.log")"
# A plaintext snapctl client against the TLS peer: it falls back, and says why at debug level.
"$SNAPCTL" fetch --peer "127.0.0.1:$port3" --sha256 "$SHA" \
    --cache-dir "$T/cache" "file://$T/store/$B/memfile" >/dev/null 2>"$T/fetch.log" && die "plaintext to TLS peer"
grep -q "the peer speaks TLS only; give --peer-ca" "$T/fetch.log" || die "plaintext client message: $(cat "$T/fetch.log")"
echo ok
