# inspect-header: every version printed, checked, converted and looked up.
. tests/integration/functions.sh
requires python3 cmp
T=$(mktmpdir)

u1='\021\021\021\021\042\042\063\063\104\104\125\125\125\125\125\125'
u2='\252\252\252\252\273\273\314\314\335\335\356\356\356\356\356\356'
zero='\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0'
meta() { printf "$(le "$1" 8)$(le 4096 8)$(le "$2" 8)$(le "$3" 8)$u1$u1"; }  # VERSION SIZE GEN
map() { printf "$(le "$1" 8)$(le "$2" 8)$3$(le "$4" 8)"; }                 # OFF LEN UUID BSO

# The worked example of formats.md, byte for byte.
{ meta 3 8192 0; map 0 8192 "$u1" 0; } >"$T/ex.v3"
[ "$(od -An -tx1 -v "$T/ex.v3" | tr -d ' \n')" = \
  "0300000000000000001000000000000000200000000000000000000000000000$(printf '11111111222233334444555555555555%.0s' 1 2)00000000000000000020000000000000111111112222333344445555555555550000000000000000" ] \
  || die "worked example bytes"

out=$("$SNAPCTL" inspect-header "$T/ex.v3")
echo "$out" | grep -q "ex.v3: header v3, 104 bytes" || die "text: version line"
echo "$out" | grep -q "Size         8192 (8.0 KiB)" || die "text: Size"
echo "$out" | grep -q "BuildId      11111111-2222-3333-4444-555555555555" || die "text: BuildId"
echo "$out" | grep -Eq "^ +0  \[0x0, 0x2000\) +8192  11111111-2222-3333-4444-555555555555  \[0x0, 0x2000\)$" \
    || die "text: mapping row"
echo "$out" | grep -q "no builds section (v3)" || die "text: no builds section"
echo "$out" | grep -Eq "^  11111111-2222-3333-4444-555555555555 +8192 bytes" || die "text: totals"

"$SNAPCTL" inspect-header --json "$T/ex.v3" >"$T/ex.json"
[ "$(json_eval 'd["format"], d["size"], d["generation"], d["builds"], d["check"]["ok"]' "$T/ex.json")" = \
  "3 8192 0 None True" ] || die "json: metadata"
[ "$(json_eval '[(m["offset"], m["length"], m["build"], m["storage"]) for m in d["mappings"]]' "$T/ex.json")" = \
  "[(0, 8192, '11111111-2222-3333-4444-555555555555', 0)]" ] || die "json: mappings"

# Every version, through --convert; v3 -> v4 -> v5 -> v3 gives back the same bytes.
"$SNAPCTL" inspect-header --convert v4 "$T/ex.v4" "$T/ex.v3" | grep -q "wrote header v4" || die "convert v4"
"$SNAPCTL" inspect-header --convert 5 "$T/ex.v5" "$T/ex.v4" >/dev/null
"$SNAPCTL" inspect-header --convert v3 "$T/back.v3" "$T/ex.v5" >/dev/null
cmp "$T/ex.v3" "$T/back.v3" || die "v3 -> v4 -> v5 -> v3 is not byte-identical"
"$SNAPCTL" inspect-header --convert v4 "$T/again.v4" "$T/ex.v4" >/dev/null
cmp "$T/ex.v4" "$T/again.v4" || die "v4 -> v4 is not byte-identical"
"$SNAPCTL" inspect-header --convert v4 "$T/x.v4" "$T/ex.v5" >/dev/null
"$SNAPCTL" inspect-header --convert v5 "$T/again.v5" "$T/x.v4" >/dev/null
cmp "$T/ex.v5" "$T/again.v5" || die "v5 -> v4 -> v5 is not byte-identical"
[ "$(od -An -tx1 -j0 -N1 "$T/ex.v4" | tr -d ' \n')" = "04" ] || die "v4: Version 4"
[ "$(od -An -tx1 -j64 -N1 "$T/ex.v4" | tr -d ' \n')" = "00" ] || die "v4: flags 0"
[ "$(od -An -tx1 -j69 -N4 "$T/ex.v4" | tr -d ' \n')" = "04224d18" ] || die "v4: LZ4 magic after flags + uncompressedLen"
for v in 4 5; do
    "$SNAPCTL" inspect-header --json "$T/ex.v$v" >"$T/j$v"
    [ "$(json_eval 'd["format"], d["flags"], d["mappings"], len(d["builds"])' "$T/j$v")" = \
      "$v 0 [{'offset': 0, 'length': 8192, 'build': '11111111-2222-3333-4444-555555555555', 'zero': False, 'storage': 0}] 1" ] \
      || die "json v$v"
    [ "$(json_eval 'd["builds"][0]["file_size"], d["builds"][0]["sha256"], d["builds"][0]["compression"]' "$T/j$v")" = \
      "8192 None none" ] || die "json v$v: synthesized builds section"
    "$SNAPCTL" inspect-header "$T/ex.v$v" | grep -q "header v$v, $(wc -c <"$T/ex.v$v") bytes" || die "text v$v"
done

# v1 and v2 share the v3 layout; converting writes format 3.
{ meta 1 8192 0; map 0 8192 "$u1" 0; } >"$T/ex.v1"
{ meta 2 8192 0; map 0 8192 "$u1" 0; } >"$T/ex.v2"
"$SNAPCTL" inspect-header "$T/ex.v1" | grep -q "header v1, 104 bytes" || die "v1"
"$SNAPCTL" inspect-header "$T/ex.v2" | grep -q "header v2, 104 bytes" || die "v2"
"$SNAPCTL" inspect-header --convert v3 "$T/v1to3" "$T/ex.v1" >/dev/null
cmp "$T/ex.v3" "$T/v1to3" || die "v1 -> v3"

# Three builds and zeros, a tail that is not a multiple of 4096; totals per build.
{ meta 3 40000 5; map 0 8192 "$u1" 0; map 8192 4096 "$zero" 0; map 12288 16384 "$u2" 4096
  map 28672 12288 "$u1" 65536; } >"$T/mix.v3"
# It covers the device, but the reference's loader wants mappings adding up to Size exactly.
"$SNAPCTL" inspect-header "$T/mix.v3" | grep -q "Check        ok" || die "mix covers the device"
expect_exit 3 "$SNAPCTL" inspect-header --check "$T/mix.v3"
grep -q "reference loader: Size 40000 is not a multiple of 4096 and the mappings add up to 40960" "$LAST_ERR" ||
    die "check: the unaligned size is not reported"
"$SNAPCTL" inspect-header --json "$T/mix.v3" >"$T/mix.json"
[ "$(json_eval 'd["totals"]["builds"]["11111111-2222-3333-4444-555555555555"], d["totals"]["builds"]["aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"], d["totals"]["zero_bytes"]' "$T/mix.json")" = \
  "20480 16384 4096" ] || die "json totals"
"$SNAPCTL" inspect-header --convert v5 "$T/mix.v5" "$T/mix.v3" >/dev/null
"$SNAPCTL" inspect-header --convert v3 "$T/mix.back" "$T/mix.v5" >/dev/null
cmp "$T/mix.v3" "$T/mix.back" || die "mix: v3 -> v5 -> v3"

# --lookup: sizes with suffixes and hex; JSON; past the size; zeros.
"$SNAPCTL" inspect-header --lookup 16K "$T/mix.v5" | grep -q \
    "offset 16384 (0x4000): build aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee storage offset 8192 (0x2000), 12288 bytes left in mapping 2" \
    || die "lookup 16K"
"$SNAPCTL" inspect-header --lookup 0x2000 "$T/mix.v3" | grep -q "offset 8192 (0x2000): zeros, 4096 bytes left in mapping 1" \
    || die "lookup zeros"
"$SNAPCTL" inspect-header --json --lookup 0x9000 "$T/mix.v5" >"$T/lk.json"
[ "$(json_eval 'd["build"], d["zero"], d["storage"], d["remaining"], d["mapping"]' "$T/lk.json")" = \
  "11111111-2222-3333-4444-555555555555 False 73728 4096 3" ] || die "lookup json"
expect_exit 3 "$SNAPCTL" inspect-header --lookup 40000 "$T/mix.v3"
grep -q "mix.v3: header: offset 40000 is past the size 40000" "$LAST_ERR" || die "lookup past size message"
expect_exit 2 "$SNAPCTL" inspect-header --lookup 12Q "$T/mix.v3"

# --check on a header with a hole: exit 3 naming the hole; lookup in it: exit 4.
{ meta 3 16384 2; map 0 4096 "$u1" 0; map 8192 8192 "$u2" 0; } >"$T/hole.v3"
expect_exit 3 "$SNAPCTL" inspect-header --check "$T/hole.v3"
grep -q "hole.v3: header check: hole \[4096, 8192) between the previous mapping and mapping 1" "$LAST_ERR" \
    || die "check: hole message"
"$SNAPCTL" inspect-header "$T/hole.v3" | grep -q "Check        header check: hole" || die "text shows the check"
expect_exit 4 "$SNAPCTL" inspect-header --lookup 4096 "$T/hole.v3"
grep -q "in a hole" "$LAST_ERR" || die "lookup hole message"
expect_exit 3 "$SNAPCTL" inspect-header --convert v5 "$T/hole.v5" "$T/hole.v3"
grep -q "use --force" "$LAST_ERR" || die "convert refuses a broken header"
[ -e "$T/hole.v5" ] && die "refused convert wrote a file"
"$SNAPCTL" inspect-header --force --convert v4 "$T/hole.v4" "$T/hole.v3" >/dev/null
expect_exit 3 "$SNAPCTL" inspect-header --check "$T/hole.v4"

# Malformed and missing files, bad usage.
head -c 100 "$T/ex.v3" >"$T/cut.v3"
expect_exit 3 "$SNAPCTL" inspect-header "$T/cut.v3"
grep -q "cut.v3: header v3: 36 trailing bytes after 0 mappings" "$LAST_ERR" || die "truncated message"
head -c 80 "$T/ex.v4" >"$T/cut.v4"
expect_exit 3 "$SNAPCTL" inspect-header "$T/cut.v4"
grep -q "cut.v4: header v4: LZ4 frame" "$LAST_ERR" || die "truncated v4 message"
expect_exit 4 "$SNAPCTL" inspect-header "$T/nope"
expect_exit 2 "$SNAPCTL" inspect-header
expect_exit 2 "$SNAPCTL" inspect-header --convert v6 "$T/o" "$T/ex.v3"
grep -q "not v3, v4 or v5" "$LAST_ERR" || die "convert version message"
echo ok
