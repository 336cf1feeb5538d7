# SNAPCTL_FAIL_AFTER=N over whole commands, N = 0, 1, 2, ... until one succeeds: each run exits 0
# with the right result or 1 saying "out of memory" -- never a crash, a hang, another error, a
# leak (with the ASan build, LeakSanitizer fails the run) or a half-written file.
#   inspect-header --check --json (v5 parse, check, JSON), inspect-header --convert v4,
#   fetch file://... (temp file, hash, rename: nothing may be left behind on failure).
. tests/integration/functions.sh
requires python3 sha256sum
T=$(mktmpdir)

# A v5 header with a builds section and a few hundred entries, made from a v3 one.
python3 - "$T/h.v3" <<'EOF'
import struct, sys
u1, u2 = bytes([0x11] * 16), bytes([0x22] * 16)
n, blk = 300, 4096
out = struct.pack("<QQQQ", 3, blk, n * 2 * blk, 4) + u1 + u2
for i in range(n):
    out += struct.pack("<QQ", 2 * i * blk, blk) + (u1 if i % 2 else u2) + struct.pack("<Q", i * blk)
    out += struct.pack("<QQ", (2 * i + 1) * blk, blk) + bytes(16) + struct.pack("<Q", 0)
open(sys.argv[1], "wb").write(out)
EOF
"$SNAPCTL" inspect-header --check "$T/h.v3" >/dev/null || die "the v3 test header does not check"
"$SNAPCTL" inspect-header --convert v5 "$T/h.v5" "$T/h.v3" >/dev/null || die "convert to v5"

head -c 300000 /dev/urandom >"$T/asset"
sum=$(sha256sum "$T/asset" | cut -d' ' -f1)
mkdir -p "$T/cache"

# loop NAME CHECK CMD...: run CMD with SNAPCTL_FAIL_AFTER=0,1,... until it exits 0, then CHECK.
loop() {
    name=$1 check=$2; shift 2
    n=0
    while :; do
        rc=0
        SNAPCTL_FAIL_AFTER=$n "$@" >"$T/out" 2>"$T/err" || rc=$?
        [ $rc -eq 0 ] && break
        [ $rc -eq 1 ] && grep -Eq 'out of memory|cannot allocate' "$T/err" ||
            { cat "$T/err"; die "$name with allocation $n failing: exit $rc, not a clean out of memory"; }
        $check fail || die "$name with allocation $n failing left something behind"
        n=$((n + 1))
        [ $n -lt 3000 ] || die "$name never succeeded"
    done
    $check ok || die "$name: wrong result once it succeeded"
    echo "$name: $n allocation failure points, each a clean 'out of memory'"
}

check_inspect() { [ "$1" = fail ] || grep -q '"ok":true,"entries":600,' "$T/out"; }
loop "inspect-header --check --json v5" check_inspect "$SNAPCTL" inspect-header --check --json "$T/h.v5"

check_convert() {
    if [ "$1" = fail ]; then [ ! -e "$T/h.v4" ]; return; fi
    "$SNAPCTL" inspect-header --check "$T/h.v4" >/dev/null &&
        [ "$("$SNAPCTL" inspect-header --json "$T/h.v4" | grep -c '"format": *4')" -ge 1 ]
}
loop "inspect-header --convert v4" check_convert "$SNAPCTL" inspect-header --convert v4 "$T/h.v4" "$T/h.v5"

check_fetch() {
    if [ "$1" = fail ]; then [ -z "$(ls -A "$T/cache")" ]; return; fi
    [ "$(sha256sum "$T/cache/$sum" | cut -d' ' -f1)" = "$sum" ] && [ "$(ls -A "$T/cache")" = "$sum" ]
}
loop "fetch file://" check_fetch "$SNAPCTL" fetch "file://$T/asset" --sha256 "$sum" --cache-dir "$T/cache" -q
echo ok
