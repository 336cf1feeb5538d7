# The peer registry (issue 17): readers find the host that holds a build through Redis, with a
# real redis-server (password, database 3), two `snapctl peer serve` hosts (A on 127.0.0.1, B on
# 127.0.0.2) and Ceph RGW:
#   1. a base build goes up to RGW; B's peer serve advertises a build of its own;
#   2. host A makes a new build over it (serve-nbd --header from RGW, a guest writes, export into
#      A's data dir): A's peer serve sets peer:{new} = A's address with a TTL and refreshes it;
#   3. B's serve-nbd --header s3://.../{new}/... --peer-registry redis://... reads it from A
#      without being told A's address (one GET per build), the base data from RGW;
#   4. a key pointing outside B's allowlist is refused (never dialed), the build read from RGW;
#   5. A's upload completes: the key is gone, and a new B reads from RGW alone;
#   6. Redis stopped mid-run (frozen, then killed): B goes on from storage, no read error, each
#      lookup bounded by the timeout; A keeps serving.
# `redis-cli` shows the keys and TTLs at each step; the test asserts on them.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires curl nbdcopy redis-server redis-cli python3
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "requires python3-libnbd (nbdsh)"
. tests/integration/functions-rgw.sh
rgw_requires
T=$(mktmpdir)
rgw_start "$T"
aws s3 mb s3://snapctl-reg >/dev/null
STORE=s3://snapctl-reg/builds
M=1048576
DATA_A=$T/a-data DATA_B=$T/b-data
mkdir -p "$T/base" "$DATA_A" "$DATA_B" "$T/cache" "$T/redis"
export TMPDIR=$T/cache
# wait_for DESC CMD...: poll CMD until it succeeds (up to 20 s).
wait_for() {
    desc=$1; shift
    i=0
    until "$@"; do i=$((i + 1)); [ $i -lt 200 ] || die "timed out waiting for $desc"; sleep 0.1; done
}

# ---- Redis: loopback, a free port, a private dir, a password, no persistence -----------------
RPW=s3cret-registry-pw
rp=$(free_port)
redis-server --bind 127.0.0.1 --port "$rp" --dir "$T/redis" --save '' --appendonly no \
    --requirepass "$RPW" --loglevel warning >"$T/redis.log" 2>&1 &
pidR=$!
cleanup_fn kill_pid "$pidR"
rcli() { redis-cli -h 127.0.0.1 -p "$rp" -a "$RPW" --no-auth-warning -n 3 "$@"; }
wait_for "redis-server to answer" sh -c "[ \"\$(redis-cli -h 127.0.0.1 -p $rp -a $RPW --no-auth-warning ping 2>/dev/null)\" = PONG ]"
REG=redis://:$RPW@127.0.0.1:$rp/3
export SNAPCTL_REDIS_PASSWORD=$RPW   # the peer serves take the password from the environment
show_keys() { echo "redis ($1):"; for k in $(rcli --scan --pattern 'peer:*' | sort); do echo "  $k = $(rcli get "$k") ttl $(rcli ttl "$k")"; done; }
gets() { rcli info commandstats | sed -n 's/^cmdstat_get:calls=\([0-9]*\),.*/\1/p' | tr -d '\r' | grep . || echo 0; }

# ---- 1. the base build on RGW; host B's peer serve with a build of its own ---------------------
head -c $((8 * M)) /dev/urandom >"$T/img0"
truncate -s $((32 * M)) "$T/img0"
make_build "$T/img0" 32M "$T/base" "$T/base.json"
B0=$BUILD_ID
"$SNAPCTL" upload --quiet --build "$T/base/$B0" "$STORE" || die "upload --build of the base"
BOWN=$(python3 -c 'import uuid; print(uuid.uuid4())')
mkdir "$DATA_B/$BOWN"
ppB=$(free_port)
start_server "$T/pidPB" "$SNAPCTL" peer serve -v --data-dir "$DATA_B" -l "127.0.0.2:$ppB" --pid-file "$T/pidPB" \
    --registry "redis://127.0.0.1:$rp/3" --advertise "127.0.0.2:$ppB" --registry-scan 200 2>"$T/pb.err"
pidPB=$_spid
wait_for "B's build in the registry" sh -c "[ -n \"\$(redis-cli -h 127.0.0.1 -p $rp -a $RPW --no-auth-warning -n 3 get peer:$BOWN)\" ]"
[ "$(rcli get "peer:$BOWN")" = "127.0.0.2:$ppB" ] || die "peer:$BOWN does not hold B's address"

# ---- 2. host A makes a build and registers it -------------------------------------------------
pa=$(free_port)
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd --header "$STORE/$B0/rootfs.ext4.header" \
    --export-diff "$DATA_A" --json --control "unix:$T/ctlA" -l "127.0.0.1:$pa" --pid-file "$T/pid" >"$T/a.out"
A_URI=nbd://127.0.0.1:$pa
nbdsh_py - "$A_URI" <<'PY' || die "the guest's writes on A"
import os, sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
M = 1 << 20
for off in (4 * M, 20 * M):
    h.pwrite(os.urandom(4 * M), off)
h.flush()
h.shutdown()
PY
ppA=$(free_port)
start_server "$T/pidPA" "$SNAPCTL" peer serve -v --data-dir "$DATA_A" -l "127.0.0.1:$ppA" --pid-file "$T/pidPA" \
    --registry "redis://127.0.0.1:$rp/3" --advertise "127.0.0.1:$ppA" --registry-ttl 3 --registry-scan 200 \
    2>"$T/pa.err"
pidPA=$_spid
metricA() { curl -s "http://127.0.0.1:$ppA/metrics" | sed -n "s/^snapctl_peer_$1 //p"; }
metricB() { curl -s "http://127.0.0.2:$ppB/metrics" | sed -n "s/^snapctl_peer_$1 //p"; }
nbdcopy "$A_URI" "$T/imgA"
"$SNAPCTL" serve-nbd --control "unix:$T/ctlA" export --json >"$T/exp1.json" || die "A's export"
NEW=$(json_last "$T/exp1.json" build_id)
SHA_A=$(sha256 "$T/imgA")
wait_for "A's build in the registry" sh -c "[ -n \"\$(redis-cli -h 127.0.0.1 -p $rp -a $RPW --no-auth-warning -n 3 get peer:$NEW)\" ]"
show_keys "A's build registered"
[ "$(rcli get "peer:$NEW")" = "127.0.0.1:$ppA" ] || die "peer:$NEW does not hold A's address"
ttl=$(rcli ttl "peer:$NEW")
[ "$ttl" -ge 1 ] && [ "$ttl" -le 3 ] || die "peer:$NEW has TTL $ttl, expected 1..3"
[ "$(rcli --scan --pattern 'peer:*' | wc -l)" -eq 2 ] || die "expected the keys of A's and B's builds"
[ "$(rcli -n 0 dbsize)" -eq 0 ] || die "keys landed outside database 3"
sleep 4   # past the 3 s TTL: only A's refreshes keep the key
ttl=$(rcli ttl "peer:$NEW")
[ "$ttl" -ge 1 ] || die "A did not refresh peer:$NEW (TTL $ttl after 4 s)"
echo "peer:$NEW still there after 4 s with TTL $ttl: refreshed"

# ---- 3. B reads the build from A without being told A's address -------------------------------
[ -z "$(aws s3 ls "$STORE/$NEW/" 2>/dev/null)" ] || die "the new build is on RGW already"
expect_exit 4 "$SNAPCTL" serve-nbd --read-only --header "$STORE/$NEW/rootfs.ext4.header" -l "127.0.0.2:$(free_port)"
g0=$(gets); r0=$(metricA requests_total)
pb=$(free_port)
rm -f "$T/pidB"
start_server "$T/pidB" "$SNAPCTL" serve-nbd -v --read-only --header "$STORE/$NEW/rootfs.ext4.header" \
    --peer-registry "$REG" --peer-stats "$T/s.b1" -l "127.0.0.2:$pb" --pid-file "$T/pidB" 2>"$T/b1.err"
pidB=$_spid
grep -q "build $NEW is on peer 127.0.0.1:$ppA" "$T/b1.err" || { cat "$T/b1.err"; die "B did not find A in the registry"; }
grep -q 'upload is not finished' "$T/b1.err" || die "B did not get A's header"
nbdcopy "nbd://127.0.0.2:$pb" "$T/imgB1" || die "nbdcopy from B"
[ "$(sha256 "$T/imgB1")" = "$SHA_A" ] || die "B's device differs from A's"
stop_and_wait "$pidB"
cat "$T/s.b1"
[ "$(tiered_stat "$T/s.b1" peer_bytes_total)" -ge $((8 * M)) ] || die "B: the new diff did not come from A"
[ "$(tiered_stat "$T/s.b1" storage_reads_total)" -ge 1 ] || die "B: the base data did not come from RGW"
lookups=$(($(gets) - g0))
echo "B looked up $lookups build(s) in the registry; A served $(($(metricA requests_total) - r0)) requests"
[ "$lookups" -eq 2 ] || die "B made $lookups GETs, expected one per build (the new one and its base)"
[ "$(($(metricA requests_total) - r0))" -ge 3 ] || die "A served B nothing"
grep -q "no peer holds build $B0" "$T/b1.err" || die "B did not say the base build has no peer"

# ---- 4. a key pointing outside B's allowlist is refused ---------------------------------------
rcli set "peer:$B0" 169.254.169.254:80 ex 60 >/dev/null
"$SNAPCTL" inspect-header --peer-registry "$REG" --json "$STORE/$B0/rootfs.ext4.header" >"$T/h0.json" \
    2>"$T/refuse1.err" || { cat "$T/refuse1.err"; die "inspect-header with a refused peer failed"; }
grep -q "169.254.169.254.*not in the peer allowlist" "$T/refuse1.err" || { cat "$T/refuse1.err"; die "no refusal of 169.254.169.254"; }
# A loopback address that is a real peer (B's own), outside --peer-allow: not one request reaches it.
rcli set "peer:$B0" "127.0.0.2:$ppB" ex 60 >/dev/null
show_keys "keys planted for the allowlist check"
rb0=$(metricB requests_total)
"$SNAPCTL" inspect-header --peer-registry "$REG" --peer-allow 127.0.0.1/32 --json "$STORE/$B0/rootfs.ext4.header" \
    >"$T/h0b.json" 2>"$T/refuse2.err" || { cat "$T/refuse2.err"; die "inspect-header with a refused peer failed"; }
grep -q "127.0.0.2.*not in the peer allowlist" "$T/refuse2.err" || { cat "$T/refuse2.err"; die "no refusal of 127.0.0.2"; }
[ "$(($(metricB requests_total) - rb0))" -eq 1 ] || die "a refused peer was dialed"   # 1: the /metrics request
cmp -s "$T/h0.json" "$T/h0b.json" || die "the base header differs between the two reads"
grep -q '"upload_incomplete":false' "$T/h0.json" || die "the base header did not come from RGW"
rcli del "peer:$B0" >/dev/null

# ---- 5. A's upload completes: the key is gone, B reads from RGW ------------------------------
"$SNAPCTL" upload --quiet --build "$DATA_A/$NEW" "$STORE" --notify-peer "$DATA_A" || die "A's upload --build"
wait_for "A to delete peer:$NEW" sh -c "[ \"\$(redis-cli -h 127.0.0.1 -p $rp -a $RPW --no-auth-warning -n 3 ttl peer:$NEW)\" = -2 ]"
show_keys "after A's upload"
[ -z "$(rcli get "peer:$NEW")" ] || die "peer:$NEW still set after the upload"
[ "$(rcli get "peer:$BOWN")" = "127.0.0.2:$ppB" ] || die "B's own key went with A's"
grep -q "upload of build $NEW finished; its key is deleted" "$T/pa.err" || die "A did not log the delete"
r0=$(metricA requests_total)
pb=$(free_port)
rm -f "$T/pidB"
start_server "$T/pidB" "$SNAPCTL" serve-nbd -v --read-only --header "$STORE/$NEW/rootfs.ext4.header" \
    --peer-registry "$REG" --peer-stats "$T/s.b2" -l "127.0.0.2:$pb" --pid-file "$T/pidB" 2>"$T/b2.err"
pidB=$_spid
nbdcopy "nbd://127.0.0.2:$pb" "$T/imgB2" || die "nbdcopy from B after the upload"
[ "$(sha256 "$T/imgB2")" = "$SHA_A" ] || die "B's device after the upload differs from A's"
stop_and_wait "$pidB"
cat "$T/s.b2"
[ "$(($(metricA requests_total) - r0))" -eq 1 ] || die "B asked A after the key was gone"  # 1: /metrics
[ "$(tiered_stat "$T/s.b2" peer_reads_total)" -eq 0 ] || die "B: peer reads with no key"
[ "$(tiered_stat "$T/s.b2" storage_bytes_total)" -ge $((8 * M)) ] || die "B: not read from RGW"
grep -q "no peer holds build $NEW" "$T/b2.err" || die "B did not look the build up"
# B's peer serve stops: it takes its key back.
kill -TERM "$pidPB"; wait "$pidPB" || die "B's peer serve exited $?"
[ "$(rcli ttl "peer:$BOWN")" = -2 ] || die "B's peer serve left peer:$BOWN at exit"

# ---- 6. Redis stopped mid-run ----------------------------------------------------------------
nbdsh_py - "$A_URI" <<'PY' || die "the guest's second writes on A"
import os, sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
h.pwrite(os.urandom(4 << 20), 12 << 20)
h.flush()
h.shutdown()
PY
nbdcopy "$A_URI" "$T/imgA2"
"$SNAPCTL" serve-nbd --control "unix:$T/ctlA" export --json >"$T/exp2.json" || die "A's second export"
NEW2=$(json_last "$T/exp2.json" build_id)
wait_for "A's build 2 in the registry" sh -c "[ -n \"\$(redis-cli -h 127.0.0.1 -p $rp -a $RPW --no-auth-warning -n 3 get peer:$NEW2)\" ]"
show_keys "A's build 2 registered"
pb=$(free_port)
rm -f "$T/pidB"
start_server "$T/pidB" "$SNAPCTL" serve-nbd -v --read-only --header "$STORE/$NEW2/rootfs.ext4.header" \
    --peer-registry "$REG" --peer-timeout 1000 --peer-stats "$T/s.b3" -l "127.0.0.2:$pb" --pid-file "$T/pidB" \
    2>"$T/b3.err"
pidB=$_spid
B_URI=nbd://127.0.0.2:$pb
grep -q "build $NEW2 is on peer 127.0.0.1:$ppA" "$T/b3.err" || die "B3 did not find build 2 on A"
# Redis frozen: B's first read of the base build (build 2 is a diff of everything written since
# A opened the base) waits one lookup timeout, then goes to RGW.
[ "$(json_last "$T/exp2.json" parent_build_id)" = "$B0" ] || die "build 2's parent is not the base"
kill -STOP "$pidR"
t0=$(date +%s%N)
nbdsh_py - "$B_URI" "$T/imgA2" <<'PY' || die "a read on B failed with Redis frozen"
import sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
img = open(sys.argv[2], "rb").read()
M = 1 << 20
for off in (12 * M, 4 * M, 0):   # build 2 twice (A), then the base (RGW, after a lookup timeout)
    assert h.pread(4 * M, off) == img[off:off + 4 * M], "bytes differ at %d" % off
h.shutdown()
PY
ms=$((($(date +%s%N) - t0) / 1000000))
echo "three reads with Redis frozen (one lookup timing out after 1000 ms): $ms ms"
[ "$ms" -lt 15000 ] || die "reads with Redis frozen took $ms ms: a lookup is not bounded"
grep -q "idle timeout\|deadline passed\|connect timeout" "$T/b3.err" || { cat "$T/b3.err"; die "B3 did not report the registry timeout"; }
# Redis killed: a new reader's lookups fail at once (connection refused), reads go to RGW.
kill -KILL "$pidR"
wait "$pidR" 2>/dev/null || true
t0=$(date +%s%N)
"$SNAPCTL" inspect-header --peer-registry "$REG" --json "$STORE/$NEW/rootfs.ext4.header" >"$T/h2.json" \
    2>"$T/down.err" || { cat "$T/down.err"; die "inspect-header with Redis down failed"; }
ms=$((($(date +%s%N) - t0) / 1000000))
echo "inspect-header with Redis down: $ms ms"
[ "$ms" -lt 5000 ] || die "inspect-header with Redis down took $ms ms"
grep -q '"upload_incomplete":false' "$T/h2.json" || die "with Redis down the header did not come from RGW"
grep -q "refused\|cannot connect\|connect" "$T/down.err" || { cat "$T/down.err"; die "no registry error reported"; }
nbdcopy "$B_URI" "$T/imgB3" || die "nbdcopy from B3 with Redis down"
[ "$(sha256 "$T/imgB3")" = "$(sha256 "$T/imgA2")" ] || die "B3's device differs from A's build 2"
stop_and_wait "$pidB"
cat "$T/s.b3"
[ "$(tiered_stat "$T/s.b3" peer_bytes_total)" -ge $((12 * M)) ] || die "B3: build 2 did not come from A"
[ "$(tiered_stat "$T/s.b3" storage_reads_total)" -ge 1 ] || die "B3: RGW did not serve the base"
wait_for "A to notice Redis is gone" grep -q "keeps serving" "$T/pa.err"
curl -sf "http://127.0.0.1:$ppA/metrics" >/dev/null || die "A's peer stopped serving with Redis gone"
# A stops cleanly and at once with Redis gone (its DEL at exit fails fast).
t0=$(date +%s%N)
kill -TERM "$pidPA"; wait "$pidPA" || die "A's peer serve exited $?"
echo "A's peer serve stopped in $((($(date +%s%N) - t0) / 1000000)) ms with Redis gone"
! grep -l "Sanitizer" "$T"/*.err || die "a sanitizer report (above)"
echo ok
