# Issue 7's story end to end, every step with the real applets, one Ceph RGW:
#   1. a base build (serve-nbd --size + nbdcopy of random data, exported) goes up with
#      `snapctl upload --build`;
#   2. host A (127.0.0.1) serves that build from RGW (serve-nbd --header s3://...), a guest writes
#      through it, A exports the diff into its peer data dir (control socket) and
#      `snapctl peer serve` serves it; A's upload is held back;
#   3. host B (serve-nbd listening on 127.0.0.2) opens the new build's header s3://.../{new}/...
#      with --peer A -- RGW does not have it, so the header (flagged "upload not finished") and
#      the new diff come from A, the base data from RGW -- and nbdcopy reads the whole device:
#      SHA-256 equal to A's device at export time;
#   4. A's upload runs (`snapctl upload --build DATA/{new} --notify-peer DATA`); a second B
#      process, opened before the upload and warm only on part of the diff, reads its cold ranges:
#      A answers 410, B reads RGW, identical data; counted at both ends (A's /metrics, B's
#      --peer-stats);
#   5. the guest writes more, A exports build 2 and its objects reach RGW (the peer not yet told);
#      a third B reads it chunk by chunk and A is killed -9 with one of those reads in flight in
#      its socket: no read error, identical data.
# Two network namespaces would need non-loopback addresses to reach the one RGW, so the hosts
# are two loopback addresses.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires curl nbdcopy qemu-io python3 ss
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "requires python3-libnbd (nbdsh)"
. tests/integration/functions-rgw.sh
rgw_requires
T=$(mktmpdir)
rgw_start "$T"
aws s3 mb s3://snapctl-e2e >/dev/null
STORE=s3://snapctl-e2e/builds
M=1048576
DATA=$T/a-data             # A's peer data dir: serve-nbd --export-diff writes, peer serve reads
mkdir -p "$T/base" "$DATA" "$T/cache"
export TMPDIR=$T/cache
# nbd_ranges URI IMAGE OFF:LEN...: read each range through NBD and compare it with IMAGE.
nbd_ranges() {
    nbdsh_py - "$@" <<'PY'
import sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
img = open(sys.argv[2], "rb").read()
for r in sys.argv[3:]:
    off, n = (int(x) for x in r.split(":"))
    assert h.pread(n, off) == img[off:off + n], "bytes differ in [%d, +%d)" % (off, n)
h.shutdown()
PY
}

# ---- 1. the base build: a 64 MiB device, data at [0, 16M) and [32M, 36M), uploaded ----------
head -c $((16 * M)) /dev/urandom >"$T/img0"
truncate -s $((32 * M)) "$T/img0"
head -c $((4 * M)) /dev/urandom >>"$T/img0"
truncate -s $((64 * M)) "$T/img0"
make_build "$T/img0" 64M "$T/base" "$T/base.json"
B0=$BUILD_ID
"$SNAPCTL" upload --quiet --build "$T/base/$B0" "$STORE" || die "upload --build of the base"
aws s3 ls "$STORE/$B0/rootfs.ext4.header" >/dev/null || die "the base header is not on RGW"

# ---- 2. host A: the base from RGW, a guest writes, the diff goes to the peer data dir ---------
pa=$(free_port)
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd --header "$STORE/$B0/rootfs.ext4.header" \
    --export-diff "$DATA" --json --control "unix:$T/ctlA" -l "127.0.0.1:$pa" --pid-file "$T/pid" >"$T/a.out"
pidAnbd=$_spid
A_URI=nbd://127.0.0.1:$pa
# The guest: 16 MiB of random data in four 4 MiB runs (over base data and over zeros), one
# zeroed MiB of base data.  The diff holds the 16 MiB, packed: four 4 MiB chunks of {new}.
nbdsh_py - "$A_URI" <<'PY' || die "the guest's writes on A"
import os, sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
M = 1 << 20
for off in (4 * M, 20 * M, 40 * M, 52 * M):
    h.pwrite(os.urandom(4 * M), off)
h.flush()
h.shutdown()
PY
qemu-io -f raw "$A_URI" -c 'write -z 33M 1M' -c flush >/dev/null || die "qemu-io on A"
nbdcopy "$A_URI" "$T/imgA"              # what A's device holds at export time
"$SNAPCTL" serve-nbd --control "unix:$T/ctlA" export --json >"$T/exp1.json" || die "A's export"
NEW=$(json_last "$T/exp1.json" build_id)
[ "$(json_last "$T/exp1.json" parent_build_id)" = "$B0" ] || die "the new build's parent"
[ "$(stat -c %s "$DATA/$NEW/rootfs.ext4")" -eq $((16 * M)) ] || die "the diff is not the 16 MiB written"
SHA_A=$(sha256 "$T/imgA")
[ "$SHA_A" != "$(sha256 "$T/img0")" ] || die "the guest's writes changed nothing"
pp=$(free_port)
start_server "$T/pidP" "$SNAPCTL" peer serve --data-dir "$DATA" -l "127.0.0.1:$pp" --pid-file "$T/pidP"
pidP=$_spid
PEER="--peer 127.0.0.1:$pp"

# ---- 3. host B reads the new build through A; RGW does not have it ---------------------------
[ -z "$(aws s3 ls "$STORE/$NEW/" 2>/dev/null)" ] || die "the new build is on RGW already"
expect_exit 4 "$SNAPCTL" serve-nbd --read-only --header "$STORE/$NEW/rootfs.ext4.header" -l "127.0.0.2:$(free_port)"
"$SNAPCTL" inspect-header $PEER --json "$STORE/$NEW/rootfs.ext4.header" >"$T/h1.json" || die "inspect-header via A"
grep -q '"upload_incomplete":true' "$T/h1.json" || die "A's header is not flagged 'upload not finished'"
r0=$(peer_metric "$pp" requests_total)
pb=$(free_port)
rm -f "$T/pidB"
start_server "$T/pidB" "$SNAPCTL" serve-nbd -v --read-only --header "$STORE/$NEW/rootfs.ext4.header" $PEER \
    --peer-stats "$T/s.b1" -l "127.0.0.2:$pb" --pid-file "$T/pidB" 2>"$T/b1.err"
pidB=$_spid
hreq=$(($(peer_metric "$pp" requests_total) - r0 - 1))   # minus the /metrics request itself
echo "B's serve-nbd asked A $hreq time(s) for the header at startup"
[ "$hreq" -eq 1 ] || die "B asked A $hreq times for the header, expected once"
grep -q 'upload is not finished' "$T/b1.err" || die "B did not see the 'upload not finished' flag"
nbdcopy "nbd://127.0.0.2:$pb" "$T/imgB1" || die "nbdcopy from B"
[ "$(sha256 "$T/imgB1")" = "$SHA_A" ] || die "B's device differs from A's at export time"
stop_and_wait "$pidB"
cat "$T/s.b1"
[ "$(tiered_stat "$T/s.b1" peer_bytes_total)" -ge $((16 * M)) ] || die "B: the new diff did not come from A"
[ "$(tiered_stat "$T/s.b1" storage_reads_total)" -ge 1 ] || die "B: the base data did not come from RGW"
[ "$(tiered_stat "$T/s.b1" builds_sent_to_storage_total)" -eq 0 ] || die "B: a 410 before the upload"

# ---- 4. A's upload runs; a B opened before it reads its cold ranges from RGW -----------------
nf0=$(peer_metric "$pp" not_found_total); g0=$(peer_metric "$pp" sent_to_storage_total)
pb=$(free_port)
rm -f "$T/pidB"
start_server "$T/pidB" "$SNAPCTL" serve-nbd --read-only --header "$STORE/$NEW/rootfs.ext4.header" $PEER \
    --peer-stats "$T/s.b2" -l "127.0.0.2:$pb" --pid-file "$T/pidB" 2>"$T/b2.err"
pidB=$_spid
B_URI=nbd://127.0.0.2:$pb
# Before the upload: only ranges the guest wrote (diff chunks 0 and 1), no base data.
nbd_ranges "$B_URI" "$T/imgA" $((4 * M)):$((4 * M)) $((20 * M)):$((4 * M)) || die "B2 before the upload"
"$SNAPCTL" upload --quiet --build "$DATA/$NEW" "$STORE" --notify-peer "$DATA" || die "A's upload --build"
[ -e "$DATA/$NEW/.upload-done" ] || die "--notify-peer left no marker"
aws s3 ls "$STORE/$NEW/rootfs.ext4.header" >/dev/null || die "the new header is not on RGW"
# After it: the cold diff chunks 2 and 3, then base data, then the whole device.
nbd_ranges "$B_URI" "$T/imgA" $((40 * M)):$((4 * M)) $((52 * M)):$((4 * M)) 0:$((4 * M)) $((32 * M)):$((4 * M)) ||
    die "B2 after the upload"
nbdcopy "$B_URI" "$T/imgB2" || die "nbdcopy from B2 after the upload"
[ "$(sha256 "$T/imgB2")" = "$SHA_A" ] || die "B2's device after the upload differs from A's"
stop_and_wait "$pidB"
cat "$T/s.b2"
nf=$(($(peer_metric "$pp" not_found_total) - nf0)); gone=$(($(peer_metric "$pp" sent_to_storage_total) - g0))
echo "A answered B2: $gone x 410, $nf x 404 (base data A does not have)"
[ "$gone" -ge 1 ] || die "A answered no 410 after the upload"
[ "$(tiered_stat "$T/s.b2" builds_sent_to_storage_total)" -eq 1 ] || die "B2 did not take the 410"
[ "$(tiered_stat "$T/s.b2" storage_reads_total)" -ge 3 ] || die "B2: the cold ranges did not come from RGW"
[ "$(tiered_stat "$T/s.b2" peer_bytes_total)" -lt $((12 * M)) ] || die "B2: a cold chunk came from A after its 410"
[ "$(tiered_stat "$T/s.b2" fallbacks_total)" -eq $((gone + nf)) ] || die "B2's fallbacks differ from A's 404s + 410s"
"$SNAPCTL" inspect-header $PEER --json "$STORE/$NEW/rootfs.ext4.header" >"$T/h2.json"
grep -q '"upload_incomplete":false' "$T/h2.json" || die "after the upload the header should come from RGW, unflagged"

# ---- 5. build 2 from A; A is killed -9 while B's read of it is in flight ---------------------
nbdsh_py - "$A_URI" <<'PY' || die "the guest's second writes on A"
import os, sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
M = 1 << 20
for off in (8 * M, 24 * M, 44 * M, 60 * M):
    h.pwrite(os.urandom(4 * M), off)
h.flush()
h.shutdown()
PY
nbdcopy "$A_URI" "$T/imgA2"
"$SNAPCTL" serve-nbd --control "unix:$T/ctlA" export --json >"$T/exp2.json" || die "A's second export"
NEW2=$(json_last "$T/exp2.json" build_id)
[ "$(stat -c %s "$DATA/$NEW2/rootfs.ext4")" -eq $((32 * M)) ] || die "build 2's diff is not the 32 MiB written"
# Its objects reach RGW; A has not been told yet, so it still serves the build.
"$SNAPCTL" upload --quiet --build "$DATA/$NEW2" "$STORE" || die "upload --build of build 2"
pb=$(free_port)
rm -f "$T/pidB"
start_server "$T/pidB" "$SNAPCTL" serve-nbd -v --read-only --header "$STORE/$NEW2/rootfs.ext4.header" $PEER \
    --peer-timeout 3000 --peer-stats "$T/s.b3" -l "127.0.0.2:$pb" --pid-file "$T/pidB" 2>"$T/b3.err"
pidB=$_spid
B_URI=nbd://127.0.0.2:$pb
grep -q 'upload is not finished' "$T/b3.err" || die "B3 did not get build 2's header from A"
# The reader goes through build 2's eight written runs (its diff's eight chunks) in half-chunk
# reads; after two runs it waits for the go.  The test freezes A's peer (SIGSTOP), lets the
# reader ask for the third run -- the request reaches A's socket and waits there -- and kills
# host A (peer and serve-nbd) with -9 while that read is in flight.
nbdsh_py - "$B_URI" "$T/imgA2" "$T/half" "$T/go" >"$T/reader.log" 2>&1 <<'PY' &
import os, sys, time, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
want = open(sys.argv[2], "rb").read()
M = 1 << 20
runs = sorted((4, 20, 40, 52, 8, 24, 44, 60))
for i, r in enumerate(runs):
    if i == 2:
        open(sys.argv[3], "w").close()
        while not os.path.exists(sys.argv[4]):
            time.sleep(0.02)
    for off in (r * M, r * M + 2 * M):
        assert h.pread(2 * M, off) == want[off:off + 2 * M], "bytes differ at %d" % off
h.shutdown()
print("reader ok")
PY
reader=$!
cleanup_fn kill_pid "$reader"
freeze_mid_read "$reader" "$T/reader.log" "$T/half" "$T/go" "$pidP" "$pp"
kill -9 "$pidP" "$pidAnbd"
wait "$reader" || { cat "$T/reader.log"; die "a read on B failed after A was killed"; }
grep -q "reader ok" "$T/reader.log" || die "reader log"
nbdcopy "$B_URI" "$T/imgB3" || die "nbdcopy from B3 after A died"
[ "$(sha256 "$T/imgB3")" = "$(sha256 "$T/imgA2")" ] || die "B3's device differs from A's build 2"
stop_and_wait "$pidB"
cat "$T/s.b3"
[ "$(tiered_stat "$T/s.b3" peer_reads_total)" -ge 3 ] || die "B3: the header and two runs did not come from A"
[ "$(tiered_stat "$T/s.b3" storage_reads_total)" -ge 6 ] || die "B3: RGW did not take over"
[ "$(tiered_stat "$T/s.b3" fallbacks_total)" -ge 1 ] || die "B3: no fallback counted"
echo ok
