# The multi-call front end: help, version, unknown and unbuilt applets, symlink dispatch.
. tests/integration/functions.sh
T=$(mktmpdir)

"$SNAPCTL" --version | grep -Eq '^snapctl [0-9]+\.[0-9]+\.[0-9]+' || die "--version"
"$SNAPCTL" --help | grep -q 'inspect-header' || die "--help lists applets"
expect_exit 2 "$SNAPCTL"
expect_exit 2 "$SNAPCTL" no-such-applet
grep -q "unknown applet 'no-such-applet'" "$LAST_ERR" || die "unknown applet message"
grep -q 'serve-nbd' "$LAST_ERR" || die "unknown applet lists the applets"

# Every applet answers --help with a usage line, through argv[1] and through a symlink.
for a in $(sed -n 's/^APPLET("\([^"]*\)".*/\1/p' cmd/applets.def); do
    "$SNAPCTL" "$a" --help | grep -q "Usage: snapctl $a" || die "$a --help"
    ln -s "$SNAPCTL" "$T/$a"
    "$T/$a" --help | grep -q "Usage: snapctl $a" || die "$a via symlink"
done
echo ok
