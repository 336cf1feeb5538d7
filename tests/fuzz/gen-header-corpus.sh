#!/bin/sh
# gen-header-corpus.sh -- (re)make the seed corpus of fuzz-header: valid v1..v5 headers and
# near misses, written with snapctl itself.
#
#   tests/fuzz/gen-header-corpus.sh ./snapctl [DIR]     (DIR: tests/fuzz/corpus/header)
set -eu
snapctl=${1:?usage: gen-header-corpus.sh SNAPCTL [DIR]}
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${2:-$top/tests/fuzz/corpus/header}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hdr-corpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
rm -f "$out"/*

u1='\021\021\021\021\042\042\063\063\104\104\125\125\125\125\125\125'
u2='\252\252\252\252\273\273\314\314\335\335\356\356\356\356\356\356'
z8='\0\0\0\0\0\0\0\0'
le() { # le VALUE BYTES: little-endian octal escapes for printf
    v=$1 n=$2 s=""
    while [ "$n" -gt 0 ]; do s="$s\\$(printf %03o $((v & 255)))"; v=$((v >> 8)); n=$((n - 1)); done
    printf %s "$s"
}
meta() { # meta VERSION SIZE GENERATION
    printf "$(le "$1" 8)$(le 4096 8)$(le "$2" 8)$(le "$3" 8)$u1$u1"
}
map() { # map OFFSET LENGTH UUID STORAGE
    printf "$(le "$1" 8)$(le "$2" 8)$3$(le "$4" 8)"
}

# The worked example of formats.md, and its v1/v2 twins.
{ meta 3 8192 0; map 0 8192 "$u1" 0; } >"$out/v3-worked-example"
{ meta 1 8192 0; map 0 8192 "$u1" 0; } >"$out/v1-worked-example"
{ meta 2 8192 0; map 0 8192 "$u1" 0; } >"$out/v2-worked-example"
meta 3 10000 1 >"$out/v3-no-mappings"
# Several builds, zeros, a tail that is not a multiple of 4096.
{ meta 3 40000 5; map 0 8192 "$u1" 0; map 8192 4096 "$z8$z8" 0; map 12288 16384 "$u2" 4096
  map 28672 12288 "$u1" 65536; } >"$out/v3-three-kinds"
# A hole and an overlap: parse fine, fail --check.
{ meta 3 16384 2; map 0 4096 "$u1" 0; map 8192 8192 "$u2" 0; } >"$out/v3-hole"
{ meta 3 16384 2; map 0 12288 "$u1" 0; map 8192 8192 "$u2" 0; } >"$out/v3-overlap"

for f in v3-worked-example v3-three-kinds v3-hole; do
    for v in 4 5; do
        "$snapctl" inspect-header --force --convert v$v "$out/${f#v3-}.v$v" "$out/$f" >/dev/null
    done
done
"$snapctl" bench header --entries 40 --runs 1 --save "$tmp" >/dev/null
for v in 3 4 5; do cp "$tmp/header.v$v" "$out/bench40.v$v"; done

# Near misses.
head -c 63 "$out/v3-worked-example" >"$out/miss-short-meta"
head -c 103 "$out/v3-worked-example" >"$out/miss-v3-partial-record"
{ meta 6 8192 0; map 0 8192 "$u1" 0; } >"$out/miss-version-6"
{ meta 3 8192 0; map 4097 8192 "$u1" 0; } >"$out/miss-unaligned"
n=$(wc -c <"$out/bench40.v4")
head -c $((n - 1)) "$out/bench40.v4" >"$out/miss-v4-truncated"
n=$(wc -c <"$out/bench40.v5")
head -c $((n - 5)) "$out/bench40.v5" >"$out/miss-v5-no-checksum"
ls "$out" | wc -l
