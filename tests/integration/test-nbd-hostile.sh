# serve-nbd against hostile clients (issue 18), each scenario bounded in time and memory and
# followed by a fresh client served at once with the server's RssAnon and fd count back near
# their start (tests/tools/nbd-hostile.py, a raw-socket client where libnbd cannot misbehave):
#   64 connections that never send a byte lock nobody out, the cap counts clients past GO
#   (the next one is refused at GO), and the idle ones are closed by --handshake-timeout;
#   half-sent 32 MiB WRITEs and 64 unread 32 MiB READs are dropped by --io-timeout, the
#   memory they held (at most 4 workers x 32 MiB) freed; an oversized EXPORT_NAME is hung up
#   on with no option reply; 512-byte reads, writes and zeroes from a client that never asked
#   for block sizes are served by read-modify-write (two clients on one block lose nothing),
#   and qemu-io with 512-byte sectors reads back what it wrote; SIGTERM while a client reads
#   none of its replies finishes within the 2 s grace plus the export, and exports (also over
#   --stdio).
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires nbdsh qemu-io
T=$(mktmpdir)
hostile() { timeout 90 /usr/bin/env PATH=/usr/bin:$PATH /usr/bin/python3 tests/tools/nbd-hostile.py "$@"; }

p=$(free_port)
uri=nbd://127.0.0.1:$p
start_server "$T/pid" "$SNAPCTL" serve-nbd --size 64M --export-diff "$T/out" --json \
    --handshake-timeout 2 --io-timeout 2 --max-clients 2 -l "127.0.0.1:$p" --pid-file "$T/pid" \
    >"$T/srv.json" 2>"$T/srv.err"
SPID=$_spid

hostile idle "$uri" "$SPID" 64 2 2 || die "idle connections"
hostile stall-write "$uri" "$SPID" 2 2 || die "stalled WRITE payloads"
hostile no-read "$uri" "$SPID" 2 || die "unread READ replies"
grep -q "reply not sent" "$T/srv.err" || die "the server did not say why it dropped the reader of nothing"
hostile export-name "$uri" "$SPID" || die "oversized EXPORT_NAME"
hostile sub-block "$uri" "$SPID" || die "512-byte I/O"
qemu-io -f raw -c 'write -P 0x5a 1049088 512' -c 'read -P 0x5a 1049088 512' -c 'read -P 0 1048576 512' \
    "$uri" >"$T/qemu.out" || die "qemu-io with 512-byte sectors: $(cat "$T/qemu.out")"
if grep -q "Pattern verification failed" "$T/qemu.out"; then die "qemu-io read back other bytes"; fi
kill -TERM "$SPID"
wait "$SPID" || die "serve-nbd exited $? at SIGTERM"

# SIGTERM while a client reads none of its replies (the default --io-timeout, 30 s, is far off).
p=$(free_port)
uri=nbd://127.0.0.1:$p
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd --size 64M --export-diff "$T/out2" --json \
    -l "127.0.0.1:$p" --pid-file "$T/pid" >"$T/srv2.json" 2>"$T/srv2.err"
SPID=$_spid
hostile hold-unread "$uri" "$SPID" >"$T/hold.out" &
HPID=$!
cleanup_fn kill_pid "$HPID"
i=0
until grep -q ready "$T/hold.out"; do
    kill -0 "$HPID" 2>/dev/null || die "the hold-unread client ended early"
    i=$((i + 1)); [ $i -lt 300 ] || die "the hold-unread client never got going"
    sleep 0.05
done
t0=$(date +%s%N)
kill -TERM "$SPID"
i=0
while kill -0 "$SPID" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 300 ] || die "serve-nbd still up 15 s after SIGTERM with a client reading nothing"
    sleep 0.05
done
wait "$SPID" || die "serve-nbd exited $? at SIGTERM"
ms=$((($(date +%s%N) - t0) / 1000000))
echo "SIGTERM with a client reading nothing: exited in $ms ms"
[ "$ms" -lt 10000 ] || die "the stop took $ms ms"
grep -q '"changed":true' "$T/srv2.json" || die "no export at SIGTERM: $(cat "$T/srv2.json")"
grep -q "closing 1 connections still busy" "$T/srv2.err" || die "the stop did not close the stuck client"
# The same over --stdio (stdin and stdout one socket, as nbdsh and qemu give it).
hostile stdio-sigterm "$SNAPCTL" "$T/out3" || die "--stdio SIGTERM"
