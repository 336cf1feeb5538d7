#!/bin/sh
# fetch follows a redirect only within the original URL's address class: a redirect from a
# public address into loopback, private, link-local or metadata addresses (169.254.169.254:
# the cloud credentials service) is refused, exit 8, unless --allow-private-redirects; within
# one class, or out to a public address, it is followed.  The class is judged on the address
# connected to (an IPv4-mapped IPv6 address is its IPv4 one).
#
# Runs only inside a network namespace of its own (re-executed under `unshare -n`): the
# addresses 203.0.113.1-2 (documentation range, standing for "public"), 10.0.0.1-2,
# 169.254.169.254, 169.254.7.7 and fd00::1 are added to that namespace's lo, so no real non-loopback
# address is ever touched.
if [ -z "${SNAPCTL_NETNS:-}" ] && command -v unshare >/dev/null 2>&1 && unshare -n true 2>/dev/null; then
    SNAPCTL_NETNS=1 exec unshare -n sh "$0" "$@"
fi
. tests/integration/functions.sh
. tests/tools/faultserver.sh
requires python3 ip unshare
[ -n "${SNAPCTL_NETNS:-}" ] || skip "needs a network namespace of its own (unshare -n: root or user namespaces)"
[ "$(ip -o link | cut -d: -f2 | tr -d ' ')" = lo ] || die "not alone in a network namespace: $(ip -o link)"
ip link set lo up
for a in 203.0.113.1 203.0.113.2 10.0.0.1 10.0.0.2 169.254.169.254 169.254.7.7; do
    ip addr add "$a/32" dev lo
done
ip -6 addr add fd00::1/128 dev lo

T=$(mktmpdir)
mkdir -p "$T/www" "$T/cache"
head -c 100000 /dev/urandom >"$T/www/a.bin"
H=$(sha256 "$T/www/a.bin")
faultserver_start "$T/www" --quiet --host :: --netns # both families (bindv6only is 0)
P=$FS_PORT
C=$T/cache

enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
# url FROM TO: a URL on address FROM that redirects (302) to a.bin on address TO.
url() { echo "http://$1:$P/_fault/redirect=302,location=$(enc "http://$2:$P/a.bin")/a.bin"; }
fetch() { timeout 60 "$SNAPCTL" fetch "$@" --sha256 "$H" --cache-dir "$C"; }

# refused FROM TO CLASS
refused() {
    expect_exit 8 fetch "$(url "$1" "$2")"
    echo "$1 -> $2: $(cat "$LAST_ERR")"
    to=${2#\[}
    grep -q "refused: a redirect from a $(class_of "$1") address to ${to%]}, a $3 address" "$LAST_ERR" &&
        grep -q -- "--allow-private-redirects allows it" "$LAST_ERR" ||
        die "$1 -> $2: message"
    [ -z "$(ls -A "$C")" ] || die "$1 -> $2: files left in the cache"
}
followed() {
    fetch "$(url "$1" "$2")" >/dev/null 2>"$T/err" || { cat "$T/err"; die "$1 -> $2 was not followed"; }
    cmp -s "$C/$H" "$T/www/a.bin" || die "$1 -> $2: wrong file"
    rm "$C/$H"
    echo "$1 -> $2: followed"
}
class_of() { case $1 in 203.*) echo public ;; 10.* | \[fd*) echo private ;; 127.*) echo loopback ;; esac; }

# From a public address into each other class: refused.
refused 203.0.113.1 127.0.0.1 loopback
refused 203.0.113.1 10.0.0.1 private
refused 203.0.113.1 169.254.169.254 metadata
refused 203.0.113.1 169.254.7.7 link-local
refused 203.0.113.1 '[::ffff:127.0.0.1]' loopback
refused 203.0.113.1 '[fd00::1]' private
refused '[fd00::1]' '[::1]' loopback
# From loopback or private into another non-public class: refused too.
refused 127.0.0.1 10.0.0.1 private
refused 10.0.0.1 169.254.169.254 metadata
refused 10.0.0.1 127.0.0.1 loopback
# Within a class, or out to a public address: followed.
followed 203.0.113.1 203.0.113.2
followed 10.0.0.1 10.0.0.2
followed 127.0.0.1 127.0.0.2
followed 10.0.0.1 203.0.113.1
# Two hops: public -> public -> loopback is still judged against the original URL.
hop2=$(url 203.0.113.2 127.0.0.1)
expect_exit 8 fetch "http://203.0.113.1:$P/_fault/redirect=302,location=$(enc "$hop2")/a.bin"
grep -q "a redirect from a public address to 127.0.0.1" "$LAST_ERR" || die "two hops: $(cat "$LAST_ERR")"
# --allow-private-redirects lifts the rule.
fetch "$(url 203.0.113.1 169.254.169.254)" --allow-private-redirects >/dev/null 2>"$T/err" ||
    { cat "$T/err"; die "--allow-private-redirects did not follow"; }
rm "$C/$H"
# So does SNAPCTL_ALLOW_PRIVATE_REDIRECTS=1, for every HTTP-based store.
SNAPCTL_ALLOW_PRIVATE_REDIRECTS=1 fetch "$(url 203.0.113.1 10.0.0.1)" >/dev/null 2>"$T/err" ||
    { cat "$T/err"; die "SNAPCTL_ALLOW_PRIVATE_REDIRECTS=1 did not follow"; }
rm "$C/$H"
echo "redirect-class: refused and followed as expected"
