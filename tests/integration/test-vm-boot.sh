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
# The access trace: boot 1's --record-access file parses with python's json in the reference's
#   shape (indices of 4 KiB blocks, "r"/"w", block_size) and the same trace is in build 1's
#   metadata.json (prefetch.rootfs), uploaded with the build; boot 3 is boot 2 again with
#   --prefetch auto: the prefetch brings blocks in and the guest's reads miss fewer blocks.
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
t_start=$(date +%s)

# --- the base build: the root image written into an empty device, exported at SIGTERM --------
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd --size "$(stat -c %s "$G/rootfs.ext4")" --export-diff "$T/out" --json \
    -l "unix:$T/base.sock" --pid-file "$T/pid" >"$T/base.json"
nbdcopy "$G/rootfs.ext4" "nbd+unix:///?socket=$T/base.sock"
kill -TERM "$_spid"; wait "$_spid" || die "serve-nbd --size exited $? at SIGTERM"
B0=$(json_last "$T/base.json" build_id)
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

# boot ID MODE LOG WANT [OPTIONS]: boot the guest in MODE on build ID served with OPTIONS, wait
# for serve-nbd to leave, require the line WANT in the console log; sets BOOT_S (seconds).
boot() {
    _b=$1 _mode=$2 _log=$3 _want=$4; shift 4
    serve "$_b" "$T/$_b.sock" "$@"
    _t0=$(date +%s.%N)
    vm_boot "$_log" "$T/$_b.sock" "$_mode"
    BOOT_S=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$_t0" "$(date +%s.%N)")
    finish
    grep -q "$_want" "$_log" || { tail -30 "$_log" >&2; die "boot $_mode on $_b: no \"$_want\" from the guest"; }
}

# --- boot 1: write a file ------------------------------------------------------------------------
boot "$B0" write "$T/boot1.log" "VMTEST WROTE" --export-diff "$T/out" --record-access "$T/trace1.json"
s1=$BOOT_S
sum=$(sed -n 's/.*VMTEST WROTE \([0-9a-f]\{64\}\).*/\1/p' "$T/boot1.log")
B1=$(json_last "$T/$B0.json" build_id)
# The trace: the reference's shape, what the guest did (reads and the writes of /data/file).
python3 - "$T/trace1.json" "$T/out/$B1/metadata.json" <<'PY' || die "boot 1's access trace"
import json, sys
t = json.load(open(sys.argv[1]))
assert set(t) == {"indices", "access_types", "block_size"}, t.keys()
assert t["block_size"] == 4096
idx, ty = t["indices"], t["access_types"]
assert len(idx) == len(ty) and len(idx) > 100, len(idx)
assert all(isinstance(i, int) and 0 <= i < 16384 for i in idx), "indices"
assert len(set(idx)) == len(idx), "a block recorded twice"
assert set(ty) == {"r", "w"}, set(ty)
assert ty[0] == "r" and idx[0] in (0, 1), (idx[0], ty[0])   # the superblock first
assert ty.count("w") >= 256, "the guest wrote 1 MiB"
m = json.load(open(sys.argv[2]))
assert m["version"] == 2 and m["prefetch"]["rootfs"]["block_size"] == 4096
mi = m["prefetch"]["rootfs"]["indices"]
assert mi == idx[:len(mi)] and len(mi) >= len(idx) - 8, "metadata.json's trace is not the recorded one"
PY
[ "$(json_last "$T/$B0.json" generation)" = 1 ] || die "build 1's generation is not 1"
"$SNAPCTL" inspect-header --check "$T/out/$B1/rootfs.ext4.header" >/dev/null || die "build 1's header"
"$SNAPCTL" upload --build "$T/out/$B1" "file://$S" >/dev/null || die "upload --build $B1"

[ -s "$S/$B1/metadata.json" ] || die "upload --build did not carry metadata.json"

# --- boot 2: the new build, the file intact; boot 3: the same with --prefetch auto ----------------
boot "$B1" check "$T/boot2.log" "VMTEST CHECK OK $sum" --record-access "$T/trace2.json"
s2=$BOOT_S
miss2=$(json_last "$T/$B1.json" access.missed)
boot "$B1" check "$T/boot3.log" "VMTEST CHECK OK $sum" --prefetch auto
s3=$BOOT_S
miss3=$(json_last "$T/$B1.json" access.missed)
pre3=$(json_last "$T/$B1.json" access.prefetched)
used3=$(json_last "$T/$B1.json" access.used)
echo "demand misses (blocks): $miss2 without prefetch, $miss3 with (prefetched $pre3, used $used3)"
[ "$pre3" -gt 0 ] && [ "$used3" -gt 0 ] || die "--prefetch auto prefetched $pre3 blocks, $used3 used"
[ "$miss3" -lt "$miss2" ] || die "--prefetch auto: $miss3 demand misses, not fewer than $miss2 without"

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
echo "boot 1 (write) $s1 s, boot 2 (check) $s2 s, boot 3 (check, prefetch) $s3 s," \
    "whole test $(($(date +%s) - t_start)) s (accel: $(vm_accel))"
