# Zero-copy and copied reads racing writes of the same blocks through other connections:
#   a base build whose every 4 KiB block is uniform is served from a file:// store with
#   --header; after one warm-up read (its pages are now fetched: zero-copy candidates), two
#   connections write 64 KiB runs of their own values over [0, 4 MiB) while two others read
#   4 KiB and 256 KiB pieces of it: every block of every reply is whole -- the base value or a
#   written one, never a mix (tests/tools/nbd-race.py).  Then the same over a writable --file,
#   whose reads and writes of one region exclude each other (a pread racing a pwrite of the same
#   page can otherwise copy half old, half new bytes).
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires nbdcopy python3
nbdsh_py -c 'import nbd' 2>/dev/null || skip "requires python3-libnbd"
T=$(mktmpdir)
export TMPDIR=$T
SECS=${RACE_SECONDS:-4}

# 16 MiB image, block i filled with (i % 250) + 1.
python3 - "$T/img" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    for i in range(4096):
        f.write(bytes([(i % 250) + 1]) * 4096)
PY
make_build "$T/img" 16M "$T/store" "$T/base.json"

p=$(free_port)
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd --header "file://$T/store/$BUILD_ID/rootfs.ext4.header" \
    -l "127.0.0.1:$p" --pid-file "$T/pid" 2>"$T/srv.err"
SPID=$_spid
nbdcopy "nbd://127.0.0.1:$p" null: || die "warm-up read"
nbdsh_py tests/tools/nbd-race.py "nbd://127.0.0.1:$p" "$SECS" || die "torn block through --header"
stop_and_wait "$SPID"

# A writable --file: replies are point-in-time copies.
cp "$T/img" "$T/disk"
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd --file "$T/disk" -l "127.0.0.1:$p" --pid-file "$T/pid" 2>"$T/srv2.err"
nbdsh_py tests/tools/nbd-race.py "nbd://127.0.0.1:$p" "$SECS" || die "torn block through --file"
stop_and_wait "$_spid"
echo "ok   no torn block in $SECS s per device"
