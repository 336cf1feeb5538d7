# The release binary is static, stripped, small, and runs in an empty chroot (no host libraries).
. tests/integration/functions.sh
[ "$VARIANT" = release ] || skip "only the release (musl) build is static"
requires file
T=$(mktmpdir)

info=$(file -L "$SNAPCTL")
echo "$info"
echo "$info" | grep -q 'statically linked' || die "not statically linked: $info"
echo "$info" | grep -q 'stripped' || die "not stripped"
echo "$info" | grep -q 'not stripped' && die "not stripped"
size=$(wc -c <"$SNAPCTL")
echo "size: $size bytes"
[ "$size" -lt $((2 * 1024 * 1024)) ] || die "binary is $size bytes, over 2 MiB"

# An empty root with nothing but the binary.
[ "$(id -u)" -eq 0 ] || skip "chroot needs root"
mkdir -p "$T/root"
cp "$SNAPCTL" "$T/root/snapctl"
[ "$(find "$T/root" | wc -l)" -eq 2 ] || die "chroot is not empty"
out=$(chroot "$T/root" /snapctl --version) || die "snapctl --version failed in an empty chroot"
echo "chroot: $out"
echo "$out" | grep -q '^snapctl ' || die "unexpected output: $out"
chroot "$T/root" /snapctl inspect-header --help >/dev/null || die "applet help in chroot"

# TLS in an empty chroot: the binary, a CA bundle and nothing else (no /dev, no /proc, no
# resolver files). Entropy comes from getrandom(2), certificates from the bundle; the server is
# a loopback HTTPS server with a certificate signed by a CA made here.
requires openssl python3
mkdir -p "$T/tls" "$T/root/etc/ssl/certs" "$T/root/cache" "$T/www"
( cd "$T/tls" &&
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=test-ca \
      -keyout ca.key -out ca.crt 2>/dev/null &&
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
      -keyout srv.key -out srv.csr 2>/dev/null &&
  printf 'subjectAltName=IP:127.0.0.1\n' >ext &&
  openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext \
      -out srv.crt 2>/dev/null ) || die "making certificates"
cp "$T/tls/ca.crt" "$T/root/etc/ssl/certs/ca-certificates.crt"
head -c 3000000 /dev/urandom >"$T/www/blob"
sum=$(sha256 "$T/www/blob")
python3 - "$T/www" "$T/tls/srv.crt" "$T/tls/srv.key" "$T/port" <<'PY' &
import functools, http.server, os, ssl, sys
www, crt, key, portfile = sys.argv[1:5]
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=www)
h.log_message = lambda *a: None
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(crt, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
open(portfile + ".tmp", "w").write(str(srv.server_address[1])); os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
PY
cleanup_fn kill_pid $!
i=0; while [ ! -s "$T/port" ]; do i=$((i + 1)); [ $i -lt 100 ] || die "TLS server did not start"; sleep 0.1; done
ls -R "$T/root"
[ ! -e "$T/root/dev" ] || die "the chroot has /dev"
chroot "$T/root" /snapctl fetch "https://127.0.0.1:$(cat "$T/port")/blob" --sha256 "$sum" --cache-dir /cache --json \
    || die "https:// fetch in an empty chroot failed"
[ "$(sha256 "$T/root/cache/$sum")" = "$sum" ] || die "fetched bytes differ"
# The same server with a CA the bundle does not hold: refused, nothing cached.
: >"$T/root/etc/ssl/certs/ca-certificates.crt"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other \
    -keyout "$T/tls/o.key" -out "$T/root/etc/ssl/certs/ca-certificates.crt" 2>/dev/null
rm -f "$T/root/cache/$sum"
expect_exit 8 chroot "$T/root" /snapctl fetch "https://127.0.0.1:$(cat "$T/port")/blob" --sha256 "$sum" --cache-dir /cache
grep -qi 'certificate' "$LAST_ERR" || die "no certificate error: $(cat "$LAST_ERR")"
[ ! -e "$T/root/cache/$sum" ] || die "cached after a failed verification"
echo "TLS in an empty chroot: ok"
