# No C function in lib/ or cmd/ is over 120 lines (tests/tools/funclen.py); the checker itself
# finds a long function, a multi-line signature, a return type on its own line and a one-line
# static inline in a small sample, and ignores initialised tables.
. tests/integration/functions.sh
requires python3
T=$(mktmpdir)
{
    echo '/* sample.c -- shapes funclen.py must read */'
    echo 'static inline int one(int x) { return x; }'
    echo 'static const int tbl[] __attribute__((aligned(16))) = {'
    echo '    1, 2,'
    echo '};'
    echo 'static int'
    echo 'split_type(int a,'
    echo '           int b)'
    echo '{'
    echo '    return a + b;'
    echo '}'
    echo 'int long_one(void)'
    echo '{'
    i=0; while [ $i -lt 120 ]; do echo "    (void)$i;"; i=$((i + 1)); done
    echo '}'
    echo 'void ends_in_brace(void) {'
    echo '}'
} >"$T/sample.c"
out=$(python3 tests/tools/funclen.py --top 10 "$T/sample.c") && die "funclen.py passed a 123-line function"
echo "$out"
echo "$out" | grep -q "^ *123  .*sample.c:12  long_one$" || die "long_one not measured as 123 lines"
echo "$out" | grep -q "^ *6  .*sample.c:6  split_type$" || die "split_type (return type on its own line) not found"
echo "$out" | grep -q "^ *1  .*sample.c:2  one$" || die "one-line static inline not found"
echo "$out" | grep -q "^ *2  .*sample.c:135  ends_in_brace$" || die "signature ending in { not found"
echo "$out" | grep -q "aligned\|tbl" && die "an initialised table was taken for a function"
echo "$out" | grep -q "sample.c:12: long_one is 123 lines (limit 120)" || die "long_one not named as over the limit"

# The tree.
python3 tests/tools/funclen.py --top 10 || die "functions over 120 lines (above): split them"
