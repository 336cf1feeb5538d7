# A real VM boots from serve-nbd over a slow remote store, writes a file, and the next build
# boots with it intact:
#   the guest's ext4 root image (tests/tools/vm-guest.sh) becomes a base build (serve-nbd --size
#   + nbdcopy, exported at SIGTERM) uploaded with upload --build to a file:// store, which the
#   fault server serves over HTTP with 20 ms before each answer and 100 MB/s per connection;
#   QEMU (TCG unless KVM is really usable) boots Debian's kernel with the root disk on
#   serve-nbd --header over that store, --export-diff on; the guest writes /data/file and its
#   sha256, syncs and powers off; serve-nbd (--oneshot) exports build 1 when QEMU leaves;
#   upload --build, then a second serve-nbd serves build 1 and the guest finds the file intact;
#   on the host, build 1 read with nbdcopy passes e2fsck -fn and debugfs dumps the same file.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/integration/functions-vm.sh
. tests/tools/faultserver.sh
requires nbdcopy e2fsck debugfs python3 curl
vm_requires
G=$(vm_guest)
T=$(mktmpdir)
S=$T/store
mkdir -p "$S" "$T/out" "$T/cache"
export TMPDIR=$T/cache
json_field() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2"; }
t_start=$(date +%s)

# --- the base build: the root image written into an empty device, exported at SIGTERM --------
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd --size "$(stat -c %s "$G/rootfs.ext4")" --export-diff "$T/out" --json \
    -l "unix:$T/base.sock" --pid-file "$T/pid" >"$T/base.json"
nbdcopy "$G/rootfs.ext4" "nbd+unix:///?socket=$T/base.sock"
kill -TERM "$_spid"; wait "$_spid" || die "serve-nbd --size exited $? at SIGTERM"
B0=$(json_field "$T/base.json" build_id)
"$SNAPCTL" upload --build "$T/out/$B0" "file://$S" >/dev/null || die "upload --build $B0"

# --- the remote store: 20 ms to first byte, 100 MB/s per connection -------------------------------
faultserver_start "$S" --quiet
R="$FS_URL/_fault/ttfb=20,rate=100"

# serve ID SOCK [OPTIONS]: serve-nbd --header over the slow store, one client (--oneshot).
serve() {
    _id=$1 _sock=$2; shift 2
    rm -f "$T/pid"
    start_server "$T/pid" "$SNAPCTL" serve-nbd --header "$R/$_id/rootfs.ext4.header" --oneshot --json \
        -l "unix:$_sock" --pid-file "$T/pid" "$@" >"$T/$_id.json" 2>"$T/$_id.log"
    SPID=$_spid
}
# finish: wait for the server of serve to leave after its client (it exports on the way out).
finish() {
    i=0
    while kill -0 "$SPID" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 300 ] || die "serve-nbd did not exit after QEMU left"
        sleep 0.1
    done
    wait "$SPID" || { cat "$T/$_id.log" >&2; die "serve-nbd exited $?"; }
}

# --- boot 1: write a file ------------------------------------------------------------------------
serve "$B0" "$T/b0.sock" --export-diff "$T/out"
t0=$(date +%s.%N)
vm_boot "$T/boot1.log" "$T/b0.sock" write
t1=$(date +%s.%N)
grep -q "VMTEST WROTE" "$T/boot1.log" || { tail -30 "$T/boot1.log" >&2; die "the guest did not write its file"; }
sum=$(sed -n 's/.*VMTEST WROTE \([0-9a-f]\{64\}\).*/\1/p' "$T/boot1.log")
finish
B1=$(json_field "$T/$B0.json" build_id)
[ "$(json_field "$T/$B0.json" generation)" = 1 ] || die "build 1's generation is not 1"
"$SNAPCTL" inspect-header --check "$T/out/$B1/rootfs.ext4.header" >/dev/null || die "build 1's header"
"$SNAPCTL" upload --build "$T/out/$B1" "file://$S" >/dev/null || die "upload --build $B1"

# --- boot 2: the new build, the file intact --------------------------------------------------------
serve "$B1" "$T/b1.sock"
t2=$(date +%s.%N)
vm_boot "$T/boot2.log" "$T/b1.sock" check
t3=$(date +%s.%N)
grep -q "VMTEST CHECK OK $sum" "$T/boot2.log" || { tail -30 "$T/boot2.log" >&2; die "the guest did not find its file intact on build 1"; }
finish

# --- the host reads build 1 back -------------------------------------------------------------------
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd -r --header "file://$S/$B1/rootfs.ext4.header" \
    -l "unix:$T/host.sock" --pid-file "$T/pid"
nbdcopy "nbd+unix:///?socket=$T/host.sock" "$T/img1"
kill_pid "$_spid"
e2fsck -fn "$T/img1" >"$T/fsck.log" 2>&1 || { cat "$T/fsck.log" >&2; die "e2fsck -fn on build 1"; }
debugfs -R "dump /data/file $T/file" "$T/img1" 2>/dev/null
debugfs -R "dump /data/file.sha256 $T/file.sha256" "$T/img1" 2>/dev/null
[ "$(sha256 "$T/file")" = "$sum" ] || die "/data/file in build 1 is not what the guest wrote"
[ "$(cat "$T/file.sha256")" = "$sum" ] || die "/data/file.sha256 in build 1 is not what the guest wrote"
echo "boot 1 (write) $(python3 -c "print(f'{$t1 - $t0:.1f}')") s, boot 2 (check) $(python3 -c "print(f'{$t3 - $t2:.1f}')") s," \
    "whole test $(($(date +%s) - t_start)) s (accel: $(vm_accel))"
