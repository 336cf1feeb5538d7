# functions-chunkcache.sh -- the base build the chunk cache tests read, and their checks.
# Source after functions.sh, functions-nbd.sh and tests/tools/faultserver.sh, with T set.
#
#   chunkcache_base MIB   a MIB MiB base build of random data ($T/img) uploaded to $T/store, which
#                         the fault server serves; sets B0 (its ID), WANT (the image's sha256)
#   cc_serve NAME CC RATE [OPTIONS...]   serve-nbd of the base on unix:$T/NAME.sock through the
#                         cache directory CC, the store paced at RATE MB/s (20 ms to first byte);
#                         its PID in $_spid, its stderr in $T/NAME.log
#   cc_check_copy NAME    $T/NAME.img (what nbdcopy read from NAME) is the image
#   cc_check_chunks CC    every chunk file of the base in CC is whole and holds the image's bytes
chunkcache_base() {
    mkdir -p "$T/store" "$T/out"
    head -c $(($1 << 20)) /dev/urandom >"$T/img"
    make_build "$T/img" "$1M" "$T/out" "$T/base.json"
    B0=$BUILD_ID
    "$SNAPCTL" upload --build "$T/out/$B0" "file://$T/store" >/dev/null || die "upload --build"
    faultserver_start "$T/store" --quiet
    WANT=$(sha256 "$T/img")
}

cc_serve() {
    _ccn=$1 _ccd=$2 _ccr=$3
    shift 3
    rm -f "$T/$_ccn.pid"
    start_server "$T/$_ccn.pid" _cc_exec_logged "$T/$_ccn.log" "$SNAPCTL" serve-nbd \
        --header "$FS_URL/_fault/ttfb=20,rate=$_ccr/$B0/rootfs.ext4.header" --chunk-cache "$_ccd" "$@" \
        -l "unix:$T/$_ccn.sock" --pid-file "$T/$_ccn.pid"
}
# _cc_exec_logged LOG CMD...: CMD with its stderr in LOG, in this process (its PID stays $!).
_cc_exec_logged() {
    _ccl=$1
    shift
    exec "$@" 2>"$_ccl"
}

cc_check_copy() {
    [ "$(sha256 "$T/$1.img")" = "$WANT" ] || { cat "$T/$1.log" >&2; die "$1: the copy differs from the image"; }
}

cc_check_chunks() {
    python3 - "$1/$B0/rootfs.ext4" "$T/img" <<'PY' || die "a chunk file in $1 is not the image's bytes"
import os, re, sys
d, img = sys.argv[1], open(sys.argv[2], "rb").read()
n = 0
for f in os.listdir(d):
    m = re.fullmatch(r"(\d{12})-(\d+)\.bin", f)
    if m:
        k, ln = int(m.group(1)), int(m.group(2))
        data = open(os.path.join(d, f), "rb").read()
        assert len(data) == ln and data == img[k * 4194304:k * 4194304 + ln], f
        n += 1
print(n, "chunk files checked")
PY
}

# cc_open_bytes PID...: the disk bytes (allocated blocks) of the regular files the processes hold
# open, deleted ones included (a serve-nbd's cache files are unlinked at open) -- what `du` of
# their directories cannot see.  Each file once.
cc_open_bytes() {
    python3 - "$@" <<'PY'
import os, stat, sys
seen, total = set(), 0
for pid in sys.argv[1:]:
    d = f"/proc/{pid}/fd"
    for fd in os.listdir(d):
        try:
            st = os.stat(os.path.join(d, fd))
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
print(total)
PY
}
