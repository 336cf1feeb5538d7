# The README's main job (make demo) keeps working: run tests/demo.sh against this build.
. tests/integration/functions.sh
T=$(mktmpdir)
SNAPCTL=$SNAPCTL bash tests/demo.sh "$T/demo" >"$T/out" 2>&1 || { cat "$T/out"; die "demo failed"; }
cat "$T/out"
grep -q 'Check        ok' "$T/out" || die "header check step"
grep -q '"cached":true' "$T/out" || die "cache hit step"
grep -q 'exit status 6' "$T/out" || die "mismatch step"
if command -v nbdcopy >/dev/null; then
    grep -q '^over NBD ' "$T/out" || die "NBD step"
fi
if command -v nbdcopy >/dev/null && command -v qemu-io >/dev/null; then
    grep -q '^the data survived' "$T/out" || die "export and serve-the-new-build step"
fi
echo ok
