#!/bin/sh
# build-deps.sh -- build snapctl's static dependencies from Debian source packages.
#
#   third_party/build-deps.sh CC PREFIX
#   third_party/build-deps.sh --fetch-only [PACKAGE...]   (download and verify only; for tests)
#
# Downloads the source packages named in versions.sh from Debian with `apt-get source` (a private
# sources list, so the host's apt configuration is untouched; apt checks every file against the
# signed Sources index), unpacks them with dpkg-source (which applies Debian's patches) and builds
# static libraries with CC into PREFIX/{include,lib}. PREFIX/.stamp marks a finished build: a
# second run does nothing. Nothing here is committed to the repository; everything lands under
# build/ (or SNAPCTL_DEPS_SRC for the downloads).
#
# Mirrors churn: the signed index may list a revision whose files the mirror answers 404 for. So
# for each package every version the index lists within the series of versions.sh is tried,
# newest first, and the first whose files download and verify is taken. When none does, one line
# names the package, the versions tried and what to do.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
SRC=${SNAPCTL_DEPS_SRC:-$top/build/deps-src}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
. "$here/versions.sh"

fetch_only=0
if [ "${1:-}" = --fetch-only ]; then
    fetch_only=1; shift
    [ $# -gt 0 ] && only="$*" || only=""
else
    CC=${1:?usage: build-deps.sh CC PREFIX}
    PREFIX=${2:?usage: build-deps.sh CC PREFIX}
    [ -f "$PREFIX/.stamp" ] && exit 0
    only=""
fi

die() { echo "build-deps: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found; install the Debian package $2 (tests/install-deps.sh build does)"; }
[ $fetch_only = 1 ] || need "$CC" "musl-tools (for musl-gcc) or the named compiler"
need dpkg-source dpkg-dev
need apt-get apt

mkdir -p "$SRC/apt/lists/partial" "$SRC/apt/archives/partial"
echo "deb-src $DEBIAN_MIRROR $DEBIAN_SUITE main" >"$SRC/apt/sources.list"
aptopts="-o Dir::Etc::SourceList=$SRC/apt/sources.list -o Dir::Etc::SourceParts=/dev/null
         -o Dir::State::Lists=$SRC/apt/lists -o Dir::Cache=$SRC/apt -o APT::Sandbox::User=root
         ${SNAPCTL_APT_OPTS:-}"

index_fresh=0
update_index() { # fetch the signed Sources index once per run (apt verifies its signature)
    [ $index_fresh = 1 ] && return 0
    # shellcheck disable=SC2086
    apt-get -q $aptopts update >"$SRC/apt/update.log" 2>&1 ||
        die "cannot read the signed source index of $DEBIAN_SUITE from $DEBIAN_MIRROR ($(grep -E '^(E|W|Err):' "$SRC/apt/update.log" | head -n 1)); check the network, or set DEBIAN_MIRROR to another Debian mirror"
    index_fresh=1
}

in_series() { # VERSION SERIES: is VERSION (epoch stripped) of that upstream series?
    case "${1#*:}" in "$2"*|*really"$2"*) return 0 ;; esac
    return 1
}

newest_first() { # VERSION... -> one per line, newest first by Debian's ordering
    for v in "$@"; do
        placed=0 out=""
        for w in $sorted; do
            if [ $placed = 0 ] && dpkg --compare-versions "$v" gt "$w"; then out="$out $v"; placed=1; fi
            out="$out $w"
        done
        [ $placed = 0 ] && out="$out $v"
        sorted=$out
    done
    for w in $sorted; do echo "$w"; done
}

fetch_pkg() { # NAME SERIES: download and verify the newest version that works into $SRC/NAME/
    pkg=$1 series=$2
    [ -f "$SRC/$pkg/.fetched" ] && return 0
    update_index
    # shellcheck disable=SC2086
    listed=$(apt-cache $aptopts showsrc "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -u)
    cands=""
    for v in $listed; do in_series "$v" "$series" && cands="$cands $v"; done
    [ -n "$cands" ] || die "source package $pkg: the index of $DEBIAN_SUITE lists no version of the $series series (it lists: $(echo $listed)); update third_party/versions.sh"
    sorted=""
    tried=""
    for v in $(newest_first $cands); do
        rm -rf "$SRC/$pkg.try"; mkdir -p "$SRC/$pkg.try"
        # shellcheck disable=SC2086
        if ( cd "$SRC/$pkg.try" && apt-get -q $aptopts source --download-only "$pkg=$v" ) >"$SRC/$pkg.log" 2>&1; then
            rm -rf "$SRC/$pkg"; mv "$SRC/$pkg.try" "$SRC/$pkg"
            echo "$v" >"$SRC/$pkg/.fetched"
            [ -z "$tried" ] || echo "build-deps: $pkg: took $v after$tried" >&2
            return 0
        fi
        why=$(grep -oE '[45][0-9][0-9] +[A-Z][a-z]+( [A-Z][a-z]+)*|Hash Sum mismatch|Temporary failure resolving|Could not connect' "$SRC/$pkg.log" | head -n 1 | tr -s ' ')
        tried="$tried $v (${why:-see $SRC/$pkg.log})"
    done
    rm -rf "$SRC/$pkg.try"
    die "source package $pkg: no version of the $series series downloads from $DEBIAN_MIRROR; tried$tried. The mirror may be mid-update: retry later, or set DEBIAN_MIRROR to another Debian mirror"
}

for d in $DEPS; do
    name=${d%%:*}
    if [ -n "$only" ]; then case " $only " in *" $name "*) ;; *) continue ;; esac; fi
    fetch_pkg "$name" "${d#*:}"
done
[ $fetch_only = 1 ] && { for d in $DEPS; do n=${d%%:*}; [ -f "$SRC/$n/.fetched" ] && echo "$n $(cat "$SRC/$n/.fetched")"; done; exit 0; }

# Unpack each package into a fresh directory of this variant.
mkdir -p "$PREFIX/include" "$PREFIX/lib"
work="$PREFIX/.work"
rm -rf "$work"; mkdir -p "$work"
unpack() { # NAME -> prints the unpacked directory
    echo "$1 $(cat "$SRC/$1/.fetched")" >>"$PREFIX/VERSIONS"
    dpkg-source --no-check -x "$(ls "$SRC/$1"/*.dsc | head -n 1)" "$work/$1" >/dev/null
    echo "$work/$1"
}
: >"$PREFIX/VERSIONS"
CFLAGS_DEP="-O2 -fPIC -ffunction-sections -fdata-sections"

# zlib
d=$(unpack zlib)
( cd "$d" && CC="$CC" CFLAGS="$CFLAGS_DEP" ./configure --static --prefix="$PREFIX" >/dev/null &&
  make -s -j"$JOBS" libz.a >/dev/null && cp libz.a "$PREFIX/lib/" && cp zlib.h zconf.h "$PREFIX/include/" )

# lz4 (only the library)
d=$(unpack lz4)
( cd "$d/lib" && make -s -j"$JOBS" CC="$CC" CFLAGS="$CFLAGS_DEP" liblz4.a >/dev/null &&
  cp liblz4.a "$PREFIX/lib/" && cp lz4.h lz4hc.h lz4frame.h lz4frame_static.h "$PREFIX/include/" )

# zstd (only the single-threaded library)
d=$(unpack libzstd)
( cd "$d/lib" && make -s -j"$JOBS" CC="$CC" CFLAGS="$CFLAGS_DEP" libzstd.a >/dev/null &&
  cp libzstd.a "$PREFIX/lib/" && cp zstd.h zstd_errors.h zdict.h "$PREFIX/include/" )

# mbedTLS (libmbedtls, libmbedx509, libmbedcrypto), with our config adjustments: threading, and
# entropy from our own getrandom(2) source (lib/crypto/entropy.c), so TLS works with no /dev.
d=$(unpack mbedtls)
( cd "$d" &&
  python3 scripts/config.py set MBEDTLS_THREADING_C &&
  python3 scripts/config.py set MBEDTLS_THREADING_PTHREAD &&
  python3 scripts/config.py set MBEDTLS_NO_PLATFORM_ENTROPY &&
  python3 scripts/config.py set MBEDTLS_ENTROPY_HARDWARE_ALT &&
  make -s -j"$JOBS" CC="$CC" CFLAGS="$CFLAGS_DEP" lib >/dev/null &&
  cp library/libmbedtls.a library/libmbedx509.a library/libmbedcrypto.a "$PREFIX/lib/" &&
  cp -R include/mbedtls include/psa "$PREFIX/include/" )

rm -rf "$work"
touch "$PREFIX/.stamp"
echo "build-deps: $CC -> $PREFIX ($(tr '\n' ' ' <"$PREFIX/VERSIONS"))" >&2
