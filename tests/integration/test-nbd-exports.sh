# serve-nbd with several exports in one process (--export NAME=HEADER_URL, --control add/remove/
# export/list), checked with real clients:
#   - four builds of different sizes and contents (each block a fio verify block) on a file://
#     store; three served at start, nbdinfo --list shows exactly them, nbdcopy of each by name
#     equals its image (sha256), an unknown name is refused with NBD_REP_ERR_UNKNOWN naming it;
#   - a write to one export does not show in the others; `export NAME` gives that export's diff,
#     and serving the new header (one server, one device, --header as before) reads back
#     exactly what the export holds;
#   - fio (random 4 KiB r/w, qd8, crc32c verify) on two exports while a third is added, read,
#     removed and added again through --control, and a remove of an export fio is connected to
#     is refused: fio reports no error, /metrics lists the live exports;
#   - the scaled acceptance: 16 exports in one process under fio at once while extra exports are
#     added and removed; no error, and each export's diff reads back as the export's content.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires fio nbdcopy nbdinfo nbdsh python3 curl
fio --enghelp=nbd >/dev/null 2>&1 || skip "requires fio with the nbd engine (fio built with libnbd)"
T=$(mktmpdir)
S=$T/store
mkdir -p "$S" "$T/cache" "$T/out"
export TMPDIR=$T/cache
M=1048576

# image NAME MiB SEED: a file of fio verify blocks (any read of it can be checked by fio).
image() {
    fio --name=img --filename="$T/$1.img" --rw=write --bs=4k --size=$(($2 * M)) --ioengine=psync \
        --randseed="$3" --verify=crc32c --do_verify=0 --verify_state_save=0 --output="$T/$1.fio" ||
        { cat "$T/$1.fio"; die "fio could not write image $1"; }
}
for spec in "a 8 1" "b 4 2" "c 6 3" "d 2 4"; do
    set -- $spec
    image "$1" "$2" "$3"
    make_build "$T/$1.img" "$2M" "$S" "$T/$1.json"
    eval "ID_$1=$BUILD_ID"
done
hdr() { eval "echo \"$S/\$ID_$1/rootfs.ext4.header\""; }
cmp -s "$T/a.img" "$T/b.img" && die "images a and b should differ"

p=$(free_port); mp=$(free_port)
C="$SNAPCTL serve-nbd --control unix:$T/ctl"
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd --export "a=$(hdr a)" --export "b=$(hdr b)" --export "c=$(hdr c)" \
    -l "127.0.0.1:$p" --pid-file "$T/pid" --control "unix:$T/ctl" --export-diff "$S" --json \
    --metrics "127.0.0.1:$mp"
SPID=$_spid
U="nbd://127.0.0.1:$p"

# --- listing, reading by name, an unknown name ------------------------------------------------
nbdinfo --list --json "$U" >"$T/list.json" || die "nbdinfo --list"
names=$(json_eval 'sorted(e["export-name"] for e in d["exports"])' <"$T/list.json")
[ "$names" = "['a', 'b', 'c']" ] || die "NBD_OPT_LIST: $names"
for e in a b c; do
    [ "$(nbdcopy "$U/$e" - | sha256 -)" = "$(sha256 "$T/$e.img")" ] || die "export $e does not read as its image"
done
nbdinfo "$U/nosuch" >"$T/unk.out" 2>&1 && die "an unknown export name was served"
grep -q "No such file or directory" "$T/unk.out" || { cat "$T/unk.out"; die "an unknown name: not NBD_REP_ERR_UNKNOWN"; }
nbdsh_py - "$U" <<'PY' || die "the refusal of an unknown name should name it"
import nbd, sys
msgs = []
h = nbd.NBD()
h.set_debug(True)
h.set_debug_callback(lambda ctx, m: msgs.append(m))
h.set_opt_mode(True)
h.connect_uri(sys.argv[1])
h.set_export_name("nosuch")
try:
    h.opt_info()
    sys.exit("INFO of an unknown name succeeded")
except nbd.Error as e:
    assert "No such file" in str(e), e
h.opt_abort()
sys.exit(0 if any("no export named 'nosuch'" in m for m in msgs) else "the server's message: " + repr(msgs[-6:]))
PY

# --- writes stay in their export; its diff reads back ------------------------------------------
nbdsh_py - "$U/a" "$T/a.img" "$T/a.want" <<'PY' || die "write to export a"
import nbd, os, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
data = os.urandom(1 << 20)
h.pwrite(data, 1 << 20)
h.flush()
img = bytearray(open(sys.argv[2], "rb").read())
img[1 << 20:2 << 20] = data
open(sys.argv[3], "wb").write(img)
PY
[ "$(nbdcopy "$U/a" - | sha256 -)" = "$(sha256 "$T/a.want")" ] || die "export a lost its write"
for e in b c; do
    [ "$(nbdcopy "$U/$e" - | sha256 -)" = "$(sha256 "$T/$e.img")" ] || die "the write to a shows in export $e"
done
$C export b --json >"$T/xb.json" || die "control export b"
[ "$(json_field changed <"$T/xb.json")" = False ] || die "export b changed without a write: $(cat "$T/xb.json")"
$C export a --json >"$T/xa.json" || die "control export a"
[ "$(json_field export <"$T/xa.json")" = a ] || die "the diff answer names no export: $(cat "$T/xa.json")"
NEWH=$(json_field header <"$T/xa.json")
p2=$(free_port)
rm -f "$T/pid2"
start_server "$T/pid2" "$SNAPCTL" serve-nbd --header "$NEWH" -l "127.0.0.1:$p2" --pid-file "$T/pid2"
[ "$(nbdcopy "nbd://127.0.0.1:$p2" - | sha256 -)" = "$(sha256 "$T/a.want")" ] || die "a's diff does not read back as a"
stop_and_wait "$_spid"

# --- fio on b and c while d comes and goes ------------------------------------------------------
fio_secs=4
[ "${VARIANT:-release}" = release ] || fio_secs=8   # the sanitizers start and serve slower
# fio_on NAME OUT: random 4 KiB reads and writes, 8 in flight, every written block verified.
fio_on() {
    fio --name="$1" --ioengine=nbd --uri="$U/$1" --rw=randrw --bs=4k --iodepth=8 --size=100% \
        --time_based --runtime="$fio_secs" \
        --verify=crc32c --verify_fatal=1 --verify_backlog=256 --verify_state_save=0 \
        --output-format=json --output="$2" 2>"$2.err"
}
fio_ok() { # OUT: fio's JSON says no error and some I/O
    python3 - "$1" <<'PY' || { cat "$1.err"; tail -30 "$1"; die "fio reported errors ($1)"; }
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
sys.exit(1 if j["error"] or j["read"]["total_ios"] == 0 or j["write"]["total_ios"] == 0 else 0)
PY
}
fio_on b "$T/fb.json" & fb=$!
fio_on c "$T/fc.json" & fc=$!
cleanup_fn kill_pid "$fb"; cleanup_fn kill_pid "$fc"
# Wait until fio is connected to b, then a remove of b must be refused.
i=0
until $C list | grep -q '"export":"b".*"clients":[1-9]'; do
    i=$((i + 1)); [ $i -lt 200 ] || die "fio never connected to b"
    sleep 0.02
done
$C remove b 2>"$T/rmb.err" && die "removing an export with a client connected succeeded"
grep -q "client.* connected" "$T/rmb.err" || { cat "$T/rmb.err"; die "remove b: no reason given"; }
$C add a "$(hdr b)" 2>/dev/null && die "a second export named a was added"
rounds=0
while kill -0 "$fb" 2>/dev/null && kill -0 "$fc" 2>/dev/null && [ $rounds -lt 10 ]; do
    round=$rounds
    $C add d "$(hdr d)" >"$T/add.json" || die "control add d (round $round)"
    [ "$(json_field size <"$T/add.json")" = $((2 * M)) ] || die "add d: $(cat "$T/add.json")"
    [ "$(nbdcopy "$U/d" - | sha256 -)" = "$(sha256 "$T/d.img")" ] || die "added export d does not read as its image"
    curl -sf "http://127.0.0.1:$mp/metrics" | grep -qx 'snapctl_nbd_exports 4' || die "/metrics does not count d"
    $C remove d >/dev/null || die "control remove d (round $round)"
    nbdinfo "$U/d" >/dev/null 2>&1 && die "a removed export still answers"
    kill -0 "$fb" 2>/dev/null && kill -0 "$fc" 2>/dev/null && rounds=$((rounds + 1))
done
[ $rounds -ge 1 ] || die "no add and remove of d was done while fio ran: not a test under load"
echo "d added and removed $rounds times under fio"
wait "$fb" || die "fio on b exited $?"
wait "$fc" || die "fio on c exited $?"
fio_ok "$T/fb.json"; fio_ok "$T/fc.json"
m=$(curl -sf "http://127.0.0.1:$mp/metrics") || die "GET /metrics"
echo "$m" | grep -qx 'snapctl_nbd_exports 3' || die "/metrics: not 3 exports"
for e in a b c; do
    echo "$m" | grep -q "^snapctl_nbd_export_requests_total{export=\"$e\",command=\"read\"} [1-9]" ||
        die "/metrics has no reads of export $e"
done
$C remove c >/dev/null || die "remove c once fio left"
$C list >"$T/list2" || die "control list"
[ "$(grep -c '"clients":0' "$T/list2")" = 2 ] || { cat "$T/list2"; die "list after remove"; }
stop_and_wait "$SPID"

# --- 16 exports under fio, others added and removed meanwhile --------------------------------
set --
for i in $(seq 1 16); do
    b=$(echo a b c d | cut -d' ' -f$(( (i - 1) % 4 + 1 )))
    set -- "$@" --export "v$i=$(hdr $b)"
done
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd "$@" -l "127.0.0.1:$p" --pid-file "$T/pid" \
    --control "unix:$T/ctl" --export-diff "$S" --json
SPID=$_spid
pids=
for i in $(seq 1 16); do
    fio_on "v$i" "$T/f$i.json" & pids="$pids $!"
    cleanup_fn kill_pid "$!"
done
all_running() { for pid in $pids; do kill -0 "$pid" 2>/dev/null || return 1; done; }
n=0 under=0
while all_running && [ $n -lt 20 ]; do # extra exports come and go while fio runs
    $C add "x$n" "$(hdr d)" >/dev/null || die "add x$n under load"
    [ "$(nbdcopy "$U/x$n" - | sha256 -)" = "$(sha256 "$T/d.img")" ] || die "x$n under load"
    $C remove "x$n" >/dev/null || die "remove x$n under load"
    n=$((n + 1))
    all_running && under=$n
done
[ $under -ge 2 ] || die "only $under exports added and removed while the 16 fio ran: not a test under load"
for pid in $pids; do wait "$pid" || die "a fio of the 16 exited $?"; done
for i in $(seq 1 16); do
    fio_ok "$T/f$i.json"
    nbdcopy "$U/v$i" "$T/v$i.now" || die "read v$i"
    $C export "v$i" --json >"$T/x$i.json" || die "export v$i"
    echo "v$i $(json_field header <"$T/x$i.json")" >>"$T/diffs"
done
stop_and_wait "$SPID"
set --
while read -r name h; do set -- "$@" --export "$name=$h"; done <"$T/diffs"
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd "$@" -l "127.0.0.1:$p" --pid-file "$T/pid" --read-only
for i in $(seq 1 16); do
    [ "$(nbdcopy "$U/v$i" - | sha256 -)" = "$(sha256 "$T/v$i.now")" ] || die "v$i's diff does not read back"
done
stop_and_wait "$_spid"
echo "ok: 3 + 1 exports, and 16 under fio with $under added and removed meanwhile"
