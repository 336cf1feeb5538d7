# third_party/build-deps.sh survives a mirror that lists revisions it does not serve: it tries the
# versions of the series that the signed index lists, newest first, and takes the first that
# downloads and verifies; when none does, one line names the package, the versions tried and what
# to do. A loopback proxy in front of the real mirror answers 404 for the files we choose.
# (The full build from an empty directory runs on every CI run: its fresh clone has no build/.)
. tests/integration/functions.sh
requires apt-get apt-cache dpkg-source python3
T=$(mktmpdir)

start_proxy() { # REGEX -> sets PROXY_OPTS
    rm -f "$T/port"
    python3 "$TOP/tests/tools/aptproxy.py" "$T/port" "$1" 2>"$T/proxy.log" &
    ppid=$!
    cleanup_fn kill_pid "$ppid"
    i=0; while [ ! -s "$T/port" ]; do i=$((i + 1)); [ $i -lt 100 ] || die "proxy did not start"; sleep 0.1; done
    PROXY_OPTS="-o Acquire::http::Proxy=http://127.0.0.1:$(cat "$T/port")"
}
fetch() { # DIR PACKAGE... (through the proxy)
    d=$1; shift
    SNAPCTL_DEPS_SRC=$d SNAPCTL_APT_OPTS="$PROXY_OPTS" "$TOP/third_party/build-deps.sh" --fetch-only "$@"
}

# 1. Every file of lz4 is gone from the mirror: one clear line, exit 1, nothing half-fetched.
start_proxy '/pool/main/l/lz4/'
set +e; fetch "$T/a" lz4 >"$T/a.out" 2>"$T/a.err"; rc=$?; set -e
cat "$T/a.err"
[ $rc -eq 1 ] || die "exit $rc, expected 1"
[ "$(wc -l <"$T/a.err")" -eq 1 ] || die "expected one line, got: $(cat "$T/a.err")"
grep -q 'source package lz4: no version of the 1.10. series downloads' "$T/a.err" || die "package not named"
grep -q 'tried 1\.10\.[^ ]* (404 Not Found)' "$T/a.err" || die "tried versions and the reason not named"
grep -q 'DEBIAN_MIRROR' "$T/a.err" || die "no remedy given"
[ ! -e "$T/a/lz4/.fetched" ] || die "lz4 marked fetched"
grep -q '^404 .*lz4' "$T/proxy.log" || die "the proxy never refused lz4 (the test proved nothing)"
kill_pid "$ppid"

# 2. The newest zlib revision the index lists is gone: the next one is taken.
versions=$(apt-cache -o Dir::Etc::SourceList="$T/a/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$T/a/apt/lists" -o Dir::Cache="$T/a/apt" showsrc zlib | sed -n 's/^Version: //p' | sort -u)
newest="" second=""
for v in $versions; do
    if [ -z "$newest" ] || dpkg --compare-versions "$v" gt "$newest"; then second=$newest; newest=$v
    elif [ -z "$second" ] || dpkg --compare-versions "$v" gt "$second"; then second=$v; fi
done
echo "zlib in the index: $(echo $versions)"
file_ver=$(echo "${newest#*:}" | sed 's/+/%2b/g; s/\./\\./g')
start_proxy "/pool/main/z/zlib/zlib_${file_ver}[._]"
set +e; fetch "$T/b" zlib >"$T/b.out" 2>"$T/b.err"; rc=$?; set -e
cat "$T/b.err" "$T/b.out"
grep -q "^404 .*zlib_" "$T/proxy.log" || die "the proxy never refused zlib $newest"
if [ -n "$second" ]; then
    [ $rc -eq 0 ] || die "exit $rc: zlib $second was not tried after $newest"
    grep -qx "zlib $second" "$T/b.out" || die "did not take $second"
    grep -q "zlib: took $second after $newest (404 Not Found)" "$T/b.err" || die "the fallback is not reported"
else
    # The index lists one revision today: then the failure must be the clear one.
    [ $rc -eq 1 ] || die "exit $rc, expected 1"
    grep -q "source package zlib: no version" "$T/b.err" || die "unclear failure"
fi
echo ok
