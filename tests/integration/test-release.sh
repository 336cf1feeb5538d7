# make release: a reproducible tarball + the binary, both listed in SHA256SUMS.
. tests/integration/functions.sh
[ "$VARIANT" = release ] || skip "make release packages the release build"
requires tar sha256sum
make -s release >/dev/null
( cd release && sha256sum -c SHA256SUMS ) || die "SHA256SUMS does not verify"
first=$(cat release/SHA256SUMS)
sleep 1
make -s release >/dev/null
[ "$(cat release/SHA256SUMS)" = "$first" ] || die "release is not reproducible"
t=$(ls release/snapctl-*-x86_64-linux-musl.tar.gz)
tar tzf "$t" | grep -q '/snapctl$' && tar tzf "$t" | grep -q '/snapctl.1$' && tar tzf "$t" | grep -q '/LICENSE$' ||
    die "tarball contents"
echo ok
