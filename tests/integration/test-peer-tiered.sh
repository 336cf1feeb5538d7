# Peer first, storage behind it, end to end on loopback: host A (127.0.0.1) serves a fresh build
# with `snapctl peer serve` while its upload to a real Ceph RGW is held back; host B (serve-nbd
# listening on 127.0.0.2, fetch, inspect-header) reads it through --peer A --store s3://... and
# gets A's bytes.  Then the upload completes (awscli) and A's marker makes it answer 410: B goes on
# from RGW with identical data (counted at both ends).  Last, A is killed -9 while a read of B's
# is in flight on it: B's reader sees no error.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires curl nbdcopy python3 ss
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "requires python3-libnbd (nbdsh)"
. tests/integration/functions-rgw.sh
rgw_requires
T=$(mktmpdir)
rgw_start "$T"
aws s3 mb s3://snapctl-peer >/dev/null

# Host A's build: a 24 MiB memfile (6 chunks) and a v4 header for it.
B=0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d
A=$T/a/$B
mkdir -p "$A" "$T/cache"
head -c $((24 << 20)) /dev/urandom >"$A/memfile"
ub='\012\033\054\075\116\137\112\153\214\175\236\017\032\053\074\115'
{ printf "$(le 3 8)$(le 4096 8)$(le $((24 << 20)) 8)$(le 0 8)$ub$ub"; printf "$(le 0 8)$(le $((24 << 20)) 8)$ub$(le 0 8)"; } >"$T/h.v3"
"$SNAPCTL" inspect-header --convert v4 "$A/memfile.header" "$T/h.v3" >/dev/null || die "making the v4 header"
STORE=s3://snapctl-peer/builds
PA=$(free_port)
start_server "$T/pidA" "$SNAPCTL" peer serve --data-dir "$T/a" -l "127.0.0.1:$PA" --pid-file "$T/pidA"
PEER="--peer 127.0.0.1:$PA --peer-allow 127.0.0.1/32"
SHA=$(sha256 "$A/memfile")

# ---- Phase 1: the upload is held back; RGW does not have the build yet. ----
[ -z "$(aws s3 ls "$STORE/$B/" 2>/dev/null)" ] || die "the build is in RGW already"
expect_exit 4 "$SNAPCTL" fetch --sha256 "$SHA" --cache-dir "$T/cache" "$STORE/$B/memfile"   # storage alone: not there
"$SNAPCTL" fetch $PEER --peer-stats "$T/s.fetch" --sha256 "$SHA" --cache-dir "$T/cache" "$STORE/$B/memfile" \
    >/dev/null || die "fetch through the peer"
cmp "$T/cache/$SHA" "$A/memfile" || die "fetch: not A's bytes"
[ "$(tiered_stat "$T/s.fetch" peer_bytes_total)" -eq $((24 << 20)) ] || die "fetch: not all from the peer"
[ "$(tiered_stat "$T/s.fetch" storage_reads_total)" -eq 0 ] || die "fetch: read storage"
"$SNAPCTL" inspect-header $PEER --json "$STORE/$B/memfile.header" >"$T/h.json" || die "inspect-header via peer"
grep -q '"upload_incomplete":true' "$T/h.json" || die "the peer's header is not flagged 'upload not finished'"

PB=$(free_port)
start_server "$T/pidB" "$SNAPCTL" serve-nbd --read-only $PEER --peer-stats "$T/s.nbd" \
    --object "$STORE/$B/memfile" --cache-dir "$T/cache" -l "127.0.0.2:$PB" --pid-file "$T/pidB"
pidB=$(cat "$T/pidB")
nbdsh_py - "nbd://127.0.0.2:$PB" "$A/memfile" <<'PY' || die "phase 1 reads through serve-nbd"
import sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
want = open(sys.argv[2], "rb").read(8 << 20)
assert h.pread(8 << 20, 0) == want, "first 8 MiB differ from A's"
h.shutdown()
PY
req1=$(peer_metric "$PA" requests_total)
[ "$req1" -ge 3 ] || die "peer saw $req1 requests"

# ---- Phase 2: the upload completes; A answers 410; B goes on from RGW. ----
aws s3 cp "$A/memfile" "$STORE/$B/memfile" >/dev/null
aws s3 cp "$A/memfile.header" "$STORE/$B/memfile.header" >/dev/null
touch "$A/.upload-done"
err1=$(peer_metric "$PA" errors_total)
nbdcopy "nbd://127.0.0.2:$PB" "$T/b.img" || die "nbdcopy after the upload"
cmp "$T/b.img" "$A/memfile" || die "phase 2: data differs from A's"
kill_pid "$pidB"
cat "$T/s.nbd"
[ "$(tiered_stat "$T/s.nbd" peer_reads_total)" -ge 2 ] || die "serve-nbd: no reads from the peer in phase 1"
[ "$(tiered_stat "$T/s.nbd" storage_reads_total)" -ge 4 ] || die "serve-nbd: the rest did not come from RGW"
[ "$(tiered_stat "$T/s.nbd" builds_sent_to_storage_total)" -eq 1 ] || die "serve-nbd: the 410 was not taken"
# Once per chunk fetch already in flight when the first 410 came, never again after it.
fb=$(tiered_stat "$T/s.nbd" fallbacks_total)
[ "$fb" -ge 1 ] && [ "$fb" -le 4 ] || die "serve-nbd: $fb fallbacks, expected 1..4 (asked the peer after its 410?)"
[ "$(peer_metric "$PA" errors_total)" -eq $((err1 + fb)) ] || die "A's 410 count differs from B's fallbacks"
# A fresh reader: the header now comes from RGW, without the flag.
"$SNAPCTL" inspect-header $PEER --peer-stats "$T/s.hdr" --json "$STORE/$B/memfile.header" >"$T/h2.json"
grep -q '"upload_incomplete":false' "$T/h2.json" || die "RGW's header should not be flagged"
[ "$(tiered_stat "$T/s.hdr" builds_sent_to_storage_total)" -eq 1 ] || die "inspect-header: 410 not taken"

# ---- Phase 3: A serves again, and is killed -9 in the middle of B's reads. ----
rm "$A/.upload-done"
kill_pid "$(cat "$T/pidA")"
rm -f "$T/pidA"
start_server "$T/pidA" "$SNAPCTL" peer serve --data-dir "$T/a" -l "127.0.0.1:$PA" --pid-file "$T/pidA"
pidA=$(cat "$T/pidA")
PB=$(free_port)
rm -f "$T/pidB"
start_server "$T/pidB" "$SNAPCTL" serve-nbd --read-only $PEER --peer-timeout 3000 --peer-stats "$T/s.kill" \
    --object "$STORE/$B/memfile" --cache-dir "$T/cache" -l "127.0.0.2:$PB" --pid-file "$T/pidB"
pidB=$(cat "$T/pidB")
# The reader reads chunk by chunk; after two chunks it waits for the go.  The test then freezes A
# (SIGSTOP), lets the reader ask for chunk 2 -- the request reaches A's socket and waits there --
# and kills A with -9 while that read is in flight.
nbdsh_py - "nbd://127.0.0.2:$PB" "$A/memfile" "$T/half" "$T/go" >"$T/reader.log" 2>&1 <<'PY' &
import os, sys, time, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
want = open(sys.argv[2], "rb").read()
C = 4 << 20
for i in range(6):
    if i == 2:
        open(sys.argv[3], "w").close()
        while not os.path.exists(sys.argv[4]):
            time.sleep(0.02)
    # Each chunk in two halves, so a read also lands in the middle of a chunk.
    for off in (i * C, i * C + C // 2):
        assert h.pread(C // 2, off) == want[off:off + C // 2], "bytes differ at %d" % off
h.shutdown()
print("reader ok")
PY
reader=$!
cleanup_fn kill_pid "$reader"
freeze_mid_read "$reader" "$T/reader.log" "$T/half" "$T/go" "$pidA" "$PA"
kill -9 "$pidA"
wait "$reader" || { cat "$T/reader.log"; die "a read failed after A was killed"; }
grep -q "reader ok" "$T/reader.log" || die "reader log"
kill_pid "$pidB"
cat "$T/s.kill"
[ "$(tiered_stat "$T/s.kill" peer_reads_total)" -ge 2 ] || die "kill phase: no peer reads before the kill"
[ "$(tiered_stat "$T/s.kill" storage_reads_total)" -ge 4 ] || die "kill phase: RGW did not take over"
[ "$(tiered_stat "$T/s.kill" fallbacks_total)" -ge 1 ] || die "kill phase: no fallback counted"

# `snapctl bench peer` runs against this pair and prints its numbers (no ratio is asserted).
rm -f "$T/pidA"
start_server "$T/pidA" "$SNAPCTL" peer serve --data-dir "$T/a" -l "127.0.0.1:$PA" --pid-file "$T/pidA"
"$SNAPCTL" bench peer $PEER --store "$STORE" --build "$B" --runs 3 --json >"$T/bench.json" || die "bench peer"
for f in peer_p50_ms peer_p99_ms store_p50_ms store_p99_ms ratio_p50 ratio_p99; do
    grep -q "\"$f\":[0-9]" "$T/bench.json" || die "bench peer: no $f in $(cat "$T/bench.json")"
done
# With the upload marked done the bench refuses to call storage reads peer reads.
touch "$A/.upload-done"
expect_exit 3 "$SNAPCTL" bench peer $PEER --store "$STORE" --build "$B" --runs 2
grep -q "the peer did not answer every read" "$LAST_ERR" || die "bench peer: 410 not reported"
echo ok
