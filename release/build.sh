#!/bin/sh
# build.sh -- package the release: release/snapctl-VERSION-x86_64-linux-musl.tar.gz + SHA256SUMS.
#
#   release/build.sh VERSION      (run by `make release` after building ./snapctl)
#
# The tarball is reproducible: sorted names, fixed owner, mtime from the last commit.
set -eu
version=${1:?usage: build.sh VERSION}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

file snapctl | grep -q 'statically linked' || { echo "release: ./snapctl is not static" >&2; exit 1; }
name=snapctl-$version-x86_64-linux-musl
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name"
cp snapctl LICENSE README.md docs/snapctl.1 "$stage/$name/"
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
tar -C "$stage" --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -cf - "$name" |
    gzip -n -9 >"release/$name.tar.gz"
cp snapctl "release/$name"
(cd release && sha256sum "$name.tar.gz" "$name" >SHA256SUMS)
echo "release/$name.tar.gz ($(wc -c <"release/$name.tar.gz") bytes)"
cat release/SHA256SUMS
