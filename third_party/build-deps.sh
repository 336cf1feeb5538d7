#!/bin/sh
# build-deps.sh -- build snapctl's static dependencies from Debian source packages.
#
#   third_party/build-deps.sh CC PREFIX
#
# Downloads the source packages of mbedTLS 3.6, zlib and lz4 from Debian trixie with
# `apt-get source` (a private sources list, so the host's apt configuration is untouched;
# apt checks every file against the signed Sources index), unpacks them with dpkg-source
# (which applies Debian's patches) and builds static libraries with CC into PREFIX/{include,lib}.
# PREFIX/.stamp marks a finished build: a second run does nothing.
# Nothing here is committed to the repository; everything lands under build/.
set -eu

CC=${1:?usage: build-deps.sh CC PREFIX}
PREFIX=${2:?usage: build-deps.sh CC PREFIX}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
SRC=${SNAPCTL_DEPS_SRC:-$top/build/deps-src}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

[ -f "$PREFIX/.stamp" ] && exit 0

. "$here/versions.sh"

need() { command -v "$1" >/dev/null 2>&1 || { echo "build-deps: '$1' not found; install: $2" >&2; exit 1; }; }
need "$CC" "musl-tools (for musl-gcc) or the named compiler"
need dpkg-source dpkg-dev
need apt-get apt

mkdir -p "$SRC" "$PREFIX/include" "$PREFIX/lib"

# 1. Fetch the source packages once (shared by every build variant).
if [ ! -f "$SRC/.fetched" ]; then
    mkdir -p "$SRC/apt/lists/partial" "$SRC/apt/archives/partial"
    echo "deb-src $DEBIAN_MIRROR $DEBIAN_SUITE main" >"$SRC/apt/sources.list"
    aptopts="-o Dir::Etc::SourceList=$SRC/apt/sources.list -o Dir::Etc::SourceParts=/dev/null
             -o Dir::State::Lists=$SRC/apt/lists -o Dir::Cache=$SRC/apt -o APT::Sandbox::User=root"
    # shellcheck disable=SC2086
    apt-get -q $aptopts update >&2
    ( cd "$SRC" &&
      # shellcheck disable=SC2086
      apt-get -q $aptopts source --download-only \
          mbedtls zlib lz4 >&2 )
    touch "$SRC/.fetched"
fi

# 2. Unpack each package into a fresh directory of this variant.
work="$PREFIX/.work"
rm -rf "$work"; mkdir -p "$work"
unpack() { # NAME SERIES -> prints the unpacked directory
    dsc=$(ls "$SRC"/"$1"_*.dsc | head -n 1)
    ver=$(sed -n 's/^Version: //p' "$dsc")
    case "${ver#*:}" in
        "$2"*|*really"$2"*) ;;
        *) echo "build-deps: $1 $ver is not the expected $2 series (third_party/versions.sh)" >&2; exit 1 ;;
    esac
    echo "$1 $ver" >>"$PREFIX/VERSIONS"
    dpkg-source --no-check -x "$dsc" "$work/$1" >/dev/null
    echo "$work/$1"
}
: >"$PREFIX/VERSIONS"
CFLAGS_DEP="-O2 -fPIC -ffunction-sections -fdata-sections"

# zlib
d=$(unpack zlib "$ZLIB_SERIES")
( cd "$d" && CC="$CC" CFLAGS="$CFLAGS_DEP" ./configure --static --prefix="$PREFIX" >/dev/null &&
  make -s -j"$JOBS" libz.a >/dev/null && cp libz.a "$PREFIX/lib/" && cp zlib.h zconf.h "$PREFIX/include/" )

# lz4 (only the library)
d=$(unpack lz4 "$LZ4_SERIES")
( cd "$d/lib" && make -s -j"$JOBS" CC="$CC" CFLAGS="$CFLAGS_DEP" liblz4.a >/dev/null &&
  cp liblz4.a "$PREFIX/lib/" && cp lz4.h lz4hc.h lz4frame.h lz4frame_static.h "$PREFIX/include/" )

# mbedTLS (libmbedtls, libmbedx509, libmbedcrypto), with our config adjustments.
d=$(unpack mbedtls "$MBEDTLS_SERIES")
( cd "$d" &&
  python3 scripts/config.py set MBEDTLS_THREADING_C &&
  python3 scripts/config.py set MBEDTLS_THREADING_PTHREAD &&
  make -s -j"$JOBS" CC="$CC" CFLAGS="$CFLAGS_DEP" lib >/dev/null &&
  cp library/libmbedtls.a library/libmbedx509.a library/libmbedcrypto.a "$PREFIX/lib/" &&
  cp -R include/mbedtls include/psa "$PREFIX/include/" )

rm -rf "$work"
touch "$PREFIX/.stamp"
echo "build-deps: $CC -> $PREFIX" >&2
