# serve-nbd --metrics: Prometheus text on GET /metrics, checked against what clients did.
#   A 16 MiB base build of random data (4 chunks) is served over HTTP by the fault server with
#   30 ms before every data response.  nbdsh reads 4 KiB at the start of each chunk (4 cold
#   reads: each waits for its chunk's fetch) and the same 4 blocks again (4 warm reads); then
#   /metrics must say: 8 READs answered, 32 KiB read, cold count 4 with nothing under 25 ms,
#   warm count 4, the store reads equal to the data GETs the fault server saw, no fetch error,
#   and the per-export rows (export="") equal to the totals.  nbdcopy then reads the whole
#   device (sha256 equal to the image): requests, bytes, and cold + warm counts agree with
#   each other again.  Every answer parses as the Prometheus text format (tests/tools/promcheck.py:
#   HELP/TYPE before samples, families together, histograms cumulative ending with +Inf equal
#   to _count).  A second server, named export "vm-1", on a store whose data GETs fail: the
#   failed READ is counted as a request, an error and a fetch error, under export="vm-1".  HEAD
#   works, other paths are 404, --metrics stops with the server (SIGTERM, exit 0); the peer's
#   /metrics passes the same check (one writer for both); option mistakes are usage errors.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/tools/faultserver.sh
requires nbdcopy nbdsh python3 curl
T=$(mktmpdir)
S=$T/store
mkdir -p "$S" "$T/cache" "$T/peerdata"
export TMPDIR=$T/cache
M=1048576

head -c $((16 * M)) /dev/urandom >"$T/img"
make_build "$T/img" 16M "$S" "$T/base.json"
ID=$BUILD_ID
faultserver_start "$S" --quiet

# scrape PORT NAME: GET /metrics into $T/NAME and check its format.
scrape() {
    curl -sf "http://127.0.0.1:$1/metrics" >"$T/$2" || die "GET /metrics on port $1"
    python3 "$TOP/tests/tools/promcheck.py" "$T/$2" || { cat "$T/$2"; die "/metrics ($2) is not valid Prometheus text"; }
}
# val NAME METRIC [LABEL=VALUE...]: the sum of the matching samples of scrape NAME.
val() {
    f=$1; shift
    python3 "$TOP/tests/tools/promcheck.py" "$T/$f" "$@" || die "no $* in /metrics ($f)"
}
# expect WHAT GOT WANT
expect() { [ "$2" = "$3" ] || die "$1: got $2, expected $3"; }

np=$(free_port); mp=$(free_port)
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd --header "$FS_URL/_fault/ttfb=30/$ID/rootfs.ext4.header" \
    -l "127.0.0.1:$np" --metrics "127.0.0.1:$mp" --pid-file "$T/pid"
SPID=$_spid
scrape "$mp" m0
expect "requests before any client" "$(val m0 snapctl_nbd_requests_total)" 0
expect "exports" "$(val m0 snapctl_nbd_exports)" 1
server_reset "$FS_URL"   # from here on, the fault server counts data GETs only

# --- 4 cold reads, then 4 warm ones ----------------------------------------------------------
nbdsh_py - "nbd://127.0.0.1:$np" "$T/img" <<'PY'
import nbd, sys
img = open(sys.argv[2], "rb").read()
h = nbd.NBD()
h.connect_uri(sys.argv[1])
for rnd in range(2):
    for chunk in range(4):
        off = chunk * 4 * 1048576
        assert h.pread(4096, off) == img[off:off + 4096], (rnd, chunk)
h.shutdown()
PY
scrape "$mp" m1
expect "READs answered" "$(val m1 snapctl_nbd_requests_total command=read)" 8
expect "requests answered" "$(val m1 snapctl_nbd_requests_total)" 8
expect "bytes read" "$(val m1 snapctl_nbd_read_bytes_total)" 32768
expect "cold reads" "$(val m1 snapctl_nbd_read_seconds_count fetch=cold)" 4
expect "warm reads" "$(val m1 snapctl_nbd_read_seconds_count fetch=warm)" 4
expect "cold reads under 25 ms (the store takes 30)" \
    "$(val m1 snapctl_nbd_read_seconds_bucket fetch=cold le=0.025)" 0
python3 -c 'import sys; c, w = map(float, sys.argv[1:]); sys.exit(0 if w < c else 1)' \
    "$(val m1 snapctl_nbd_read_seconds_sum fetch=cold)" "$(val m1 snapctl_nbd_read_seconds_sum fetch=warm)" ||
    die "the warm reads took longer than the cold ones"
[ "$(val m1 snapctl_nbd_fetch_waits_total)" -ge 4 ] || die "fewer than 4 fetch waits"
[ "$(val m1 snapctl_nbd_cache_hits_total)" -ge 4 ] || die "fewer than 4 cache hits"
gets=$(server_stats "$FS_URL" "d['by_path'].get('/$ID/rootfs.ext4', 0)")
[ "$gets" -ge 4 ] || die "the fault server saw $gets data GETs, expected at least one per chunk"
expect "store reads (the fault server's data GETs)" "$(val m1 snapctl_nbd_store_reads_total)" "$gets"
expect "fetch errors" "$(val m1 snapctl_nbd_fetch_errors_total)" 0
expect "error replies" "$(val m1 snapctl_nbd_errors_total)" 0
expect "chunk-cache hits (no --chunk-cache)" "$(val m1 snapctl_nbd_chunk_cache_hits_total)" 0
for m in requests_total read_bytes_total fetch_waits_total cache_hits_total store_reads_total \
         store_bytes_total read_seconds_count read_seconds_sum; do
    expect "export=\"\" $m" "$(val m1 "snapctl_nbd_export_$m" export=)" "$(val m1 "snapctl_nbd_$m")"
done

# --- the whole device ------------------------------------------------------------------------
nbdcopy "nbd://127.0.0.1:$np" "$T/copy"
[ "$(sha256 "$T/copy")" = "$(sha256 "$T/img")" ] || die "the copy differs from the image"
scrape "$mp" m2
reads=$(val m2 snapctl_nbd_requests_total command=read)
[ "$reads" -gt 8 ] || die "nbdcopy's READs were not counted ($reads)"
expect "cold + warm reads" "$(val m2 snapctl_nbd_read_seconds_count)" "$reads"
expect "bytes read" "$(val m2 snapctl_nbd_read_bytes_total)" $((32768 + 16 * M))
[ "$(val m2 snapctl_nbd_store_bytes_total)" -ge $((16 * M)) ] || die "less than the image came from the store"
expect "requests by command" "$(val m2 snapctl_nbd_export_requests_total export=)" \
    "$(val m2 snapctl_nbd_requests_total)"

# --- HEAD, other paths, the stop ---------------------------------------------------------------
curl -sf -I "http://127.0.0.1:$mp/metrics" | grep -qi '^content-type: text/plain; version=0.0.4' ||
    die "HEAD /metrics"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mp/other")
expect "GET /other" "$code" 404
stop_and_wait "$SPID"
if curl -s -o /dev/null "http://127.0.0.1:$mp/metrics"; then die "/metrics still answers after the stop"; fi

# --- a named export whose fetches fail ----------------------------------------------------------
np=$(free_port); mp=$(free_port)
rm -f "$T/pid"
server_control "$FS_URL" '{"fault": "status=500", "count": 1000, "method": "GET", "match": "rootfs\\.ext4$"}'
SNAPCTL_MAX_ATTEMPTS=1 start_server "$T/pid" "$SNAPCTL" serve-nbd \
    --header "$FS_URL/$ID/rootfs.ext4.header" -e 'vm-1' -l "127.0.0.1:$np" --metrics "127.0.0.1:$mp" \
    --metrics-allow 127.0.0.1/32 --pid-file "$T/pid"
SPID=$_spid
nbdsh_py - "nbd://127.0.0.1:$np/vm-1" <<'PY' || die "nbdsh on export vm-1"
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
try:
    h.pread(4096, 0)
    sys.exit("a READ of data the store refuses succeeded")
except nbd.Error:
    pass
h.shutdown()
PY
scrape "$mp" m3
expect "READs answered (vm-1)" "$(val m3 snapctl_nbd_export_requests_total export=vm-1 command=read)" 1
expect "error replies (vm-1)" "$(val m3 snapctl_nbd_export_errors_total export=vm-1)" 1
[ "$(val m3 snapctl_nbd_export_fetch_errors_total export=vm-1)" -ge 1 ] || die "no fetch error counted"
expect "cold reads (vm-1)" "$(val m3 snapctl_nbd_export_read_seconds_count export=vm-1 fetch=cold)" 1
stop_and_wait "$SPID"
curl -sf -X POST -d '{"clear": true}' "$FS_URL/_control" >/dev/null

# --- the peer's /metrics: the same writer -----------------------------------------------------
pp=$(free_port)
rm -f "$T/ppid"
start_server "$T/ppid" "$SNAPCTL" peer serve --data-dir "$T/peerdata" -l "127.0.0.1:$pp" --pid-file "$T/ppid"
scrape "$pp" peer
expect "peer requests" "$(val peer snapctl_peer_requests_total)" 1

# --- option mistakes ----------------------------------------------------------------------------
expect_exit 2 "$SNAPCTL" serve-nbd --file "$T/img" --metrics-allow 127.0.0.1/32
grep -q -- '--metrics-allow goes with --metrics' "$LAST_ERR" || die "message of --metrics-allow alone"
expect_exit 2 "$SNAPCTL" serve-nbd --file "$T/img" --metrics "unix:$T/m.sock"
grep -q 'not a Unix socket' "$LAST_ERR" || die "message of --metrics unix:"
expect_exit 2 "$SNAPCTL" serve-nbd --file "$T/img" --metrics 127.0.0.1:1 --metrics-allow nonsense
grep -q -- '--metrics-allow: ' "$LAST_ERR" || die "message of a bad --metrics-allow"
expect_exit 5 "$SNAPCTL" serve-nbd --file "$T/img" -l "127.0.0.1:$(free_port)" --metrics "127.0.0.1:$pp"
grep -q 'choose another address with --metrics' "$LAST_ERR" || die "message of a --metrics address in use"
echo "ok"
