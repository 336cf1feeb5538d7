# serve-nbd --chunk-cache on a 16 MiB tmpfs that fills up: the 64 MiB base read by two processes
# at once (nbdcopy) is right in both, each logs the full directory exactly once, nothing in the
# directory is a partial or wrong chunk, and the chunks kept fit the file system.  Mounting needs
# root: skipped without it.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/tools/faultserver.sh
. tests/integration/functions-chunkcache.sh
requires nbdcopy python3 curl
[ "$(id -u)" = 0 ] || skip "mounting a tmpfs needs root"
T=$(mktmpdir)
mkdir -p "$T/tmp" "$T/small"
export TMPDIR=$T/tmp
chunkcache_base 64

mount -t tmpfs -o size=16m tmpfs "$T/small" || die "mount -t tmpfs"
cleanup_fn umount "$T/small"
cc_serve a "$T/small/cc" 100
pa=$_spid
cc_serve b "$T/small/cc" 100
pb=$_spid
nbdcopy "nbd+unix:///?socket=$T/a.sock" "$T/a.img" &
ca=$!
nbdcopy "nbd+unix:///?socket=$T/b.sock" "$T/b.img" &
cb=$!
wait "$ca" || die "nbdcopy from a"
wait "$cb" || die "nbdcopy from b"
cc_check_copy a
cc_check_copy b
stop_and_wait "$pa"
stop_and_wait "$pb"
for n in a b; do
    w=$(grep -c 'chunk cache .*No space left' "$T/$n.log" || true)
    echo "$n: $w warning(s): $(head -c 300 "$T/$n.log")"
    [ "$w" -le 1 ] || die "$n warned $w times about the full directory"
    [ "$(grep -c . "$T/$n.log")" -eq "$w" ] || { cat "$T/$n.log" >&2; die "$n logged more than the warning"; }
done
[ "$(cat "$T/a.log" "$T/b.log" | grep -c 'No space left')" -ge 1 ] || die "the directory never filled up"
cc_check_chunks "$T/small/cc"
df "$T/small" | tail -1
echo ok
