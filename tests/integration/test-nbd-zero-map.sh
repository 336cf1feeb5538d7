# Block status is answered from memory: `nbdcopy --synchronous` asks BLOCK_STATUS before every
# 256 KiB it copies, so a server that looked anything up upstream to answer would fetch the whole
# device.  Here serve-nbd --object exports a 1 GiB object from an HTTP store (faultserver, which
# counts what it sends); a client zeroes all of it but three small data ranges (WRITE_ZEROES:
# never fetched); then nbdcopy --synchronous copies the export.  The store must see only the
# chunks holding the data, the copy must equal the object, and `nbdinfo --map` must show the
# zeroed ranges as holes.  The copy's duration is printed (no bound: speed claims live in
# tests/bench/).
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/tools/faultserver.sh
requires nbdcopy nbdinfo nbdsh curl python3
T=$(mktmpdir)
mkdir -p "$T/root" "$T/cache"
M=$((1 << 20))
size=$((1024 * M))
# Data at [0, 3M), [512M, 513M) and the last 2 MiB; zeros elsewhere (the file is sparse).
truncate -s $size "$T/root/obj"
put() { head -c $(($2 * M)) /dev/urandom | dd of="$T/root/obj" bs=1M seek=$1 conv=notrunc status=none; }
put 0 3
put 512 1
put 1022 2
obj_sum=$(sha256 "$T/root/obj")

faultserver_start "$T/root" --quiet
# store_counts: "REQUESTS BYTES" the store has answered so far.
store_counts() { server_stats "$FS_URL" 'd["requests"], d["bytes_sent"]'; }
start_server "$T/pid" "$SNAPCTL" serve-nbd --object "$FS_URL/obj" --cache-dir "$T/cache" \
    -l "unix:$T/sock" --pid-file "$T/pid"
uri="nbd+unix:///?socket=$T/sock"

# Zero the gaps: [3M, 512M), [513M, 1022M).
nbdsh_py - "$uri" $M <<'PY' || die "WRITE_ZEROES"
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
M = int(sys.argv[2])
for lo, hi in ((3 * M, 512 * M), (513 * M, 1022 * M)):
    off = lo
    while off < hi:
        n = min(hi - off, 256 * M)
        h.zero(n, off)
        off += n
h.flush()
h.shutdown()
PY
read -r reqs sent < <(store_counts)
[ "$sent" -eq 0 ] || die "zeroing fetched $sent bytes from the store"

# The map, from memory: three data extents, two holes that read as zeros (flags 3).
nbdinfo --map "$uri" >"$T/map"
awk '$3 == 3 {print $1, $2}' "$T/map" >"$T/holes"
printf '%s %s\n' $((3 * M)) $((509 * M)) $((513 * M)) $((509 * M)) | cmp -s - "$T/holes" ||
    { cat "$T/map"; die "nbdinfo --map does not show the zeroed ranges as holes"; }
read -r reqs2 sent2 < <(store_counts)
[ "$reqs2" = "$reqs" ] || die "nbdinfo --map made $((reqs2 - reqs)) store requests"

t0=$(date +%s%N)
nbdcopy -v --synchronous "$uri" "$T/copy" 2>"$T/copy.log" || { tail "$T/copy.log"; die "nbdcopy --synchronous"; }
t1=$(date +%s%N)
# nbdcopy -v logs its libnbd calls: a block status per 256 KiB, and reads only of the data.
bs_calls=$(grep -c 'nbd_block_status: enter' "$T/copy.log" || true)
reads=$(grep -c 'nbd_pread: enter' "$T/copy.log" || true)
echo "nbdcopy --synchronous: $bs_calls block status requests, $reads reads"
[ "$bs_calls" -ge 1024 ] || die "nbdcopy asked block status $bs_calls times (expected one per 256 KiB or so)"
[ "$reads" -ge 1 ] && [ "$reads" -le 32 ] || die "nbdcopy read $reads times: it read the zeroed ranges too (expected ~24 reads of the 6 MiB of data)"
[ "$(sha256 "$T/copy")" = "$obj_sum" ] || die "nbdcopy --synchronous: the copy differs from the object"
read -r reqs3 sent3 < <(store_counts)
fetched=$((sent3 - sent2))
echo "nbdcopy --synchronous of 1 GiB (6 MiB data): $(((t1 - t0) / 1000000)) ms, $((reqs3 - reqs2)) store requests, $fetched bytes fetched"
# The data sits in three 4 MiB chunks ([0,4M), [512M,516M), [1020M,1024M)): at most those.
[ "$fetched" -le $((12 * M)) ] || die "the copy fetched $fetched bytes: more than the three chunks holding data"
[ $((reqs3 - reqs2)) -le 12 ] || die "the copy made $((reqs3 - reqs2)) store requests for three chunks"
echo ok
