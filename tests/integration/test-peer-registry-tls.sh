# The peer registry over rediss:// (issue 17): a TLS-only redis-server with an ACL user and a
# database number; `peer serve --registry rediss://USER:PASS@...` advertises its build, a reader
# with `--peer-registry rediss://USER@...` (password from SNAPCTL_REDIS_PASSWORD) finds the peer
# and reads the build's header (inspect-header) and data (fetch) from it -- the store (an empty file:// directory) does not have
# it.  A Redis certificate the reader does not trust, or a wrong password, is reported (never
# the password) and the read goes to the store; a build that leaves the data directory loses its
# key, and at exit the peer deletes its keys.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/integration/functions-tls.sh
requires redis-server redis-cli openssl nbdcopy python3
T=$(mktmpdir)
mkdir -p "$T/redis" "$T/data" "$T/empty"
# A malformed registry URL is bad usage, before anything listens or dials; no password is echoed.
expect_exit 2 "$SNAPCTL" peer serve --data-dir "$T/data" --registry 'redis://:sekrit@h/x' --advertise 127.0.0.1:1
grep -q "only /DB" "$LAST_ERR" && ! grep -q sekrit "$LAST_ERR" || die "bad --registry message"
expect_exit 2 "$SNAPCTL" peer serve --data-dir "$T/data" --registry redis://127.0.0.1:1
expect_exit 2 "$SNAPCTL" inspect-header --peer-registry 'http://:sekrit@h' "file://$T/empty/x/memfile.header"
! grep -q sekrit "$LAST_ERR" || die "the password in a usage message"
tls_make_ca "$T" ca
tls_make_ca "$T" other
tls_make_cert "$T" ca redis IP:127.0.0.1

rp=$(free_port)
redis-server --port 0 --tls-port "$rp" --bind 127.0.0.1 --tls-cert-file "$T/redis.crt" \
    --tls-key-file "$T/redis.key" --tls-ca-cert-file "$T/ca.crt" --tls-auth-clients no \
    --dir "$T/redis" --save '' --appendonly no --loglevel warning \
    --user default off --user alice on '>al1ce-pw' '~peer:*' '&*' '+@all' >"$T/redis.log" 2>&1 &
pidR=$!
cleanup_fn kill_pid "$pidR"
rcli() { redis-cli --tls --cacert "$T/ca.crt" -h 127.0.0.1 -p "$rp" --user alice --pass al1ce-pw --no-auth-warning -n 2 "$@"; }
i=0
until [ "$(rcli ping 2>/dev/null)" = PONG ]; do
    kill -0 "$pidR" 2>/dev/null || { cat "$T/redis.log"; die "redis-server exited"; }
    i=$((i + 1)); [ $i -lt 200 ] || die "redis-server did not answer"
    sleep 0.1
done

# A build in A's data dir (serve-nbd --export-diff at exit), upload not finished.
head -c 8388608 /dev/urandom >"$T/img"
make_build "$T/img" 8M "$T/data" "$T/build.json"
B=$BUILD_ID
[ -f "$T/data/$B/rootfs.ext4.header" ] || die "no exported header"

pp=$(free_port)
rm -f "$T/pidP"
SSL_CERT_FILE=$T/ca.crt start_server "$T/pidP" "$SNAPCTL" peer serve -v --data-dir "$T/data" \
    -l "127.0.0.1:$pp" --pid-file "$T/pidP" --registry-scan 100 \
    --registry "rediss://alice:al1ce-pw@127.0.0.1:$rp/2" --advertise "127.0.0.1:$pp" 2>"$T/peer.err"
pidP=$_spid
i=0
until [ -n "$(rcli get "peer:$B")" ]; do
    i=$((i + 1)); [ $i -lt 200 ] || { cat "$T/peer.err"; die "the build was not advertised over rediss://"; }
    sleep 0.1
done
echo "redis: peer:$B = $(rcli get "peer:$B") ttl $(rcli ttl "peer:$B")"
[ "$(rcli get "peer:$B")" = "127.0.0.1:$pp" ] || die "wrong value"
ttl=$(rcli ttl "peer:$B")
[ "$ttl" -ge 55 ] && [ "$ttl" -le 60 ] || die "TTL $ttl, expected the default 60"

# A build that appears and then leaves the data directory: its key comes and goes.
GONE=$(python3 -c 'import uuid; print(uuid.uuid4())')
mkdir "$T/data/$GONE"
i=0
until [ "$(rcli get "peer:$GONE")" = "127.0.0.1:$pp" ]; do
    i=$((i + 1)); [ $i -lt 200 ] || die "a new build dir was not advertised"
    sleep 0.1
done
rmdir "$T/data/$GONE"
i=0
until [ "$(rcli ttl "peer:$GONE")" = -2 ]; do
    i=$((i + 1)); [ $i -lt 200 ] || die "the key of a build that left the data dir stayed"
    sleep 0.1
done
grep -q "build $GONE left" "$T/peer.err" || die "the peer did not log the build leaving"

URL=file://$T/empty/$B/rootfs.ext4.header
export SNAPCTL_REDIS_PASSWORD=al1ce-pw
SSL_CERT_FILE=$T/ca.crt "$SNAPCTL" inspect-header --peer-registry "rediss://alice@127.0.0.1:$rp/2" --json "$URL" \
    >"$T/h.json" 2>"$T/h.err" || { cat "$T/h.err"; die "inspect-header through the registry over TLS"; }
grep -q '"upload_incomplete":true' "$T/h.json" || die "the header did not come from the peer"
mkdir "$T/fc"
SSL_CERT_FILE=$T/ca.crt "$SNAPCTL" fetch --quiet --peer-registry "rediss://alice@127.0.0.1:$rp/2" \
    --sha256 "$(sha256 "$T/data/$B/rootfs.ext4")" --cache-dir "$T/fc" "file://$T/empty/$B/rootfs.ext4" ||
    die "fetch through the registry over TLS"
[ "$(cat "$T"/fc/* | sha256sum | cut -d' ' -f1)" = "$(sha256 "$T/data/$B/rootfs.ext4")" ] || die "fetched bytes differ"

# An untrusted Redis certificate: reported, the store answers (it has nothing: exit 4).
SSL_CERT_FILE=$T/other.crt expect_exit 4 "$SNAPCTL" inspect-header --peer-registry "rediss://alice@127.0.0.1:$rp/2" "$URL"
grep -q "not trusted" "$LAST_ERR" || { cat "$LAST_ERR"; die "no certificate message"; }
# A wrong password: reported by Redis's own words, never echoed.
SNAPCTL_REDIS_PASSWORD=wr0ng-pw SSL_CERT_FILE=$T/ca.crt expect_exit 4 "$SNAPCTL" inspect-header \
    --peer-registry "rediss://alice@127.0.0.1:$rp/2" "$URL"
grep -q "WRONGPASS" "$LAST_ERR" || { cat "$LAST_ERR"; die "no AUTH message"; }
SSL_CERT_FILE=$T/ca.crt expect_exit 4 "$SNAPCTL" inspect-header --peer-registry "rediss://alice:wr0ng-pw@127.0.0.1:$rp/2" "$URL"
! grep -q "wr0ng-pw" "$LAST_ERR" || die "the password appears in a message"
! grep -q "al1ce-pw" "$T/peer.err" "$T/h.err" || die "the password appears in a log"

# A registry URL naming something that is not Redis: the peer's own HTTP port waits for the end
# of a request head that never comes (the lookup's deadline ends it), a server answering HTTP is
# "not RESP2"; both times the store answers.
export SNAPCTL_REDIS_PASSWORD=
expect_exit 4 "$SNAPCTL" inspect-header --peer-registry "redis://127.0.0.1:$pp" "$URL"
grep -q "deadline passed\|idle timeout" "$LAST_ERR" || { cat "$LAST_ERR"; die "no timeout message"; }
/usr/bin/python3 -c 'import socket,sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); __import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
c, _ = s.accept(); c.recv(4096); c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n"); c.close()' "$T/http.port" &
pidH=$!
cleanup_fn kill_pid "$pidH"
i=0
until [ -s "$T/http.port" ]; do i=$((i + 1)); [ $i -lt 100 ] || die "the HTTP stand-in did not start"; sleep 0.05; done
expect_exit 4 "$SNAPCTL" inspect-header --peer-registry "redis://127.0.0.1:$(cat "$T/http.port")" "$URL"
grep -q "not RESP2" "$LAST_ERR" || { cat "$LAST_ERR"; die "no 'not RESP2' message"; }
wait "$pidH"

# A key left by a peer that died (no peer serves data2): `upload --build --notify-peer
# --peer-registry` deletes it as the upload completes.
mkdir -p "$T/data2" "$T/store"
make_build "$T/img" 8M "$T/data2" "$T/build2.json"
B2=$BUILD_ID
rcli set "peer:$B2" 127.0.0.1:1 ex 600 >/dev/null
SNAPCTL_REDIS_PASSWORD=al1ce-pw SSL_CERT_FILE=$T/ca.crt "$SNAPCTL" upload --quiet --build "$T/data2/$B2" \
    "file://$T/store" --notify-peer "$T/data2" --peer-registry "rediss://alice@127.0.0.1:$rp/2" ||
    die "upload --peer-registry"
[ "$(rcli ttl "peer:$B2")" = -2 ] || die "upload --peer-registry left peer:$B2"
[ -e "$T/data2/$B2/.upload-done" ] || die "no marker"
expect_exit 2 "$SNAPCTL" upload --build "$T/data2/$B2" "file://$T/store" --peer-registry "redis://127.0.0.1:1"

kill -TERM "$pidP"; wait "$pidP" || die "peer serve exited $?"
[ "$(rcli ttl "peer:$B")" = -2 ] || die "peer serve left its key at exit"
! grep -l "Sanitizer" "$T"/*.err || die "a sanitizer report (above)"
echo ok
