# `make install` puts the binary, one symlink per applet and the man page under DESTDIR/PREFIX.
. tests/integration/functions.sh
[ "$VARIANT" = release ] || skip "make install ships the release build"
T=$(mktmpdir)
make -s install DESTDIR="$T" PREFIX=/usr >/dev/null
[ -x "$T/usr/bin/snapctl" ] || die "binary not installed"
[ -f "$T/usr/share/man/man1/snapctl.1" ] || die "man page not installed"
for a in $(sed -n 's/^APPLET("\([^"]*\)".*/\1/p' cmd/applets.def); do
    [ "$(readlink "$T/usr/bin/$a")" = snapctl ] || die "symlink $a missing"
    "$T/usr/bin/$a" --help | grep -q "Usage: snapctl $a" || die "$a via installed symlink"
done
if command -v man >/dev/null 2>&1; then
    MANWIDTH=80 man -l "$T/usr/share/man/man1/snapctl.1" 2>/dev/null | grep -q 'EXIT STATUS' || die "man page renders"
fi
echo ok
