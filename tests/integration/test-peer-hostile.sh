# peer serve against hostile clients (issue 18, item 6 for the peer, and its stop), each bounded
# in time and memory and followed by a good client served at once with the server's RssAnon and
# fd count back near their start (tests/tools/peer-hostile.py): 300 connections dripping a
# request head and 300 that send nothing do not lock a client out (the cap counts clients that
# sent a request; the oldest silent one gives way) and are all closed by --head-timeout and the
# connect-to-first-request deadline; a 64 MiB response that is never read is dropped after
# --io-timeout; SIGTERM while such a client holds on exits within the 2 s grace.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires curl
T=$(mktmpdir)
B=11111111-2222-3333-4444-555555555555
mkdir -p "$T/data/$B"
truncate -s 64M "$T/data/$B/memfile"
hostile() { timeout 90 /usr/bin/python3 tests/tools/peer-hostile.py "$@"; }
port=$(free_port)
start_server "$T/pid" "$SNAPCTL" peer serve --data-dir "$T/data" -l "127.0.0.1:$port" --pid-file "$T/pid" \
    --head-timeout 2 --io-timeout 2 --max-clients 16 2>"$T/srv.err"
SPID=$_spid
hostile slowloris "127.0.0.1:$port" "$SPID" "/v1/builds/$B/memfile" 300 2 || die "slowloris"
hostile unread "127.0.0.1:$port" "$SPID" "/v1/builds/$B/memfile" 2 || die "unread response"
curl -fs -r 0-99 -o /dev/null "http://127.0.0.1:$port/v1/builds/$B/memfile" || die "curl after it all"
kill -TERM "$SPID"
wait "$SPID" || die "peer serve exited $? at SIGTERM"

# SIGTERM while a client reads none of its response (the default --io-timeout, 30 s, is far off).
port=$(free_port)
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" peer serve --data-dir "$T/data" -l "127.0.0.1:$port" --pid-file "$T/pid" \
    2>"$T/srv2.err"
SPID=$_spid
hostile hold-unread "127.0.0.1:$port" "$SPID" "/v1/builds/$B/memfile" >"$T/hold.out" &
HPID=$!
cleanup_fn kill_pid "$HPID"
i=0
until grep -q ready "$T/hold.out"; do
    i=$((i + 1)); [ $i -lt 300 ] || die "the hold-unread client never got going"; sleep 0.05
done
t0=$(date +%s%N)
kill -TERM "$SPID"
i=0
while kill -0 "$SPID" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 300 ] || die "peer serve still up 15 s after SIGTERM"; sleep 0.05
done
wait "$SPID" || die "peer serve exited $? at SIGTERM"
ms=$((($(date +%s%N) - t0) / 1000000))
echo "peer SIGTERM with a client reading nothing: exited in $ms ms"
[ "$ms" -lt 10000 ] || die "the stop took $ms ms"
