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
echo ok
