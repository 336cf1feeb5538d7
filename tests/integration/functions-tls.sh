# functions-tls.sh -- test certificates with openssl (P-256, two days).
#
#   . tests/integration/functions-tls.sh
#   tls_make_ca DIR NAME                  # DIR/NAME.crt, DIR/NAME.key: a CA
#   tls_make_cert DIR CA NAME SAN         # DIR/NAME.crt, DIR/NAME.key signed by DIR/CA, e.g. SAN=IP:127.0.0.1
tls_make_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/$2.key" -out "$1/$2.crt" \
        -days 2 -subj "/CN=snapctl-test-$2" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1 || die "openssl CA $2"
}
tls_make_cert() {
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$4" >"$1/$3.ext"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/$3.key" -out "$1/$3.csr" \
        -subj "/CN=$3" >/dev/null 2>&1 || die "openssl csr $3"
    openssl x509 -req -in "$1/$3.csr" -CA "$1/$2.crt" -CAkey "$1/$2.key" -CAcreateserial -out "$1/$3.crt" \
        -days 2 -extfile "$1/$3.ext" >/dev/null 2>&1 || die "openssl sign $3"
}
