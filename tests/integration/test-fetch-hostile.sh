#!/bin/sh
# fetch against a hostile origin (tests/tools/faultserver.py on loopback): each case must end
# in bounded time and memory, with the right exit code and nothing left in the cache.
#  - a head with too many fields, a head over 64 KiB, a chunk extension over 4 KiB, trailers
#    over 16 KiB (after a 200: a 206 ends where its Content-Range does): protocol errors, exit 5
#    (not 7 "raise --max-size");
#  - a redirect to file://, s3://, gs://, peer://: refused by name, exit 5;
#  - a head trickled one byte every 300 ms: fails at --head-timeout; an endless stream of
#    "100 Continue": fails at once; a body below --speed-limit over --speed-time: fails then;
#    --max-time bounds a fetch that keeps moving;
#  - a Content-Length of ~1 TB (and a 206 whose Content-Range says so): exit 7 before the body;
#  - upload temp files obj.tmp.PID of a dead PID are removed by the next upload to that
#    directory, a live process's are not.
# Peak RSS of every failing fetch is checked against a bound (GNU time is not needed:
# /proc/PID/status of the fetch is polled while it runs).
. tests/integration/functions.sh
. tests/tools/faultserver.sh
requires python3 curl
T=$(mktmpdir)
mkdir -p "$T/www" "$T/cache"
head -c $((256 * 1024)) /dev/urandom >"$T/www/a.bin"
H=$(sha256 "$T/www/a.bin")
faultserver_start "$T/www" --quiet
U=$FS_URL
C=$T/cache
RSS_MAX_KB=$((64 * 1024))

only_nothing() {
    extra=$(ls -A "$C")
    [ -z "$extra" ] || { ls -la "$C" >&2; die "$1: files left in the cache: $extra"; }
}
# hostile CODE MAXSECS DESC URL [fetch options]: fetch must exit CODE within MAXSECS seconds,
# its peak RSS under RSS_MAX_KB, the cache left empty.  $LAST_ERR holds its stderr.
hostile() {
    code=$1 maxs=$2 desc=$3 url=$4
    shift 4
    LAST_ERR=$T/err
    t0=$(date +%s)
    "$SNAPCTL" fetch "$url" --sha256 "$H" --cache-dir "$C" "$@" >/dev/null 2>"$LAST_ERR" &
    pid=$!
    peak=0
    while kill -0 $pid 2>/dev/null; do
        r=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$pid/status 2>/dev/null || true)
        [ -n "$r" ] && [ "$r" -gt "$peak" ] && peak=$r
        [ $(($(date +%s) - t0)) -le $((maxs + 30)) ] || { kill -9 $pid; die "$desc: still running after $((maxs + 30)) s"; }
        sleep 0.1
    done
    set +e; wait $pid; got=$?; set -e
    t=$(($(date +%s) - t0))
    echo "$desc: exit $got after $t s, peak RSS ${peak} kB: $(head -c 300 "$LAST_ERR")"
    [ "$got" -eq "$code" ] || { cat "$LAST_ERR" >&2; die "$desc: exit $got, expected $code"; }
    [ "$t" -le "$maxs" ] || die "$desc: took $t s (bound $maxs s)"
    [ "$peak" -le "$RSS_MAX_KB" ] || die "$desc: peak RSS $peak kB over $RSS_MAX_KB kB"
    only_nothing "$desc"
}

# The fault server plays each of these correctly when asked for the plain file.
"$SNAPCTL" fetch "$U/_fault/chunked/a.bin" --sha256 "$H" --cache-dir "$C" >/dev/null
rm "$C/$H"

# 1. Parser caps: exit 5, a message naming the cap, no "--max-size" hint.
hostile 5 60 "200 header fields" "$U/_fault/fields=200/a.bin"
grep -q "more than 128 header fields" "$LAST_ERR" || die "fields message"
! grep -q "max-size" "$LAST_ERR" || die "a head with many fields blamed on --max-size"
hostile 5 60 "a 70 KiB head" "$U/_fault/head-pad=71680/a.bin"
grep -q "response head larger than 64 KiB" "$LAST_ERR" || die "big head message"
! grep -q "max-size" "$LAST_ERR" || die "a big head blamed on --max-size"
hostile 5 60 "a 5 KiB chunk extension" "$U/_fault/chunked,chunk-ext=5000/a.bin"
grep -q "chunk extension longer than 4 KiB" "$LAST_ERR" || die "chunk extension message"
hostile 5 60 "20 KiB of trailers" "$U/_fault/no-range,chunked,trailers=20000/a.bin"
grep -q "trailers larger than 16 KiB" "$LAST_ERR" || die "trailers message"
! grep -q "max-size" "$LAST_ERR" || die "big trailers blamed on --max-size"

# 2. Redirects to other schemes: refused by name.
for target in file:///etc/passwd s3://bucket/key gs://bucket/key peer://127.0.0.1:1/x; do
    loc=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$target/a.bin")
    hostile 5 60 "302 to $target" "$U/_fault/redirect=302,location=$loc/a.bin"
    scheme=${target%%:*}
    grep -q "redirect to $scheme:// refused" "$LAST_ERR" || die "redirect to $scheme: message"
    ! grep -q "(null)" "$LAST_ERR" || die "(null) in the redirect message"
done

# 3. Slow origins.
#    A head trickled one byte every 300 ms (~150 bytes: 45 s to complete) against a 3 s head
#    timeout: fails after ~3 s, not retried.  Before: accepted whenever it completed.
hostile 5 20 "trickled head" "$U/_fault/trickle=300/a.bin" --head-timeout 3
grep -q "no complete response head 3000 ms after the request (head timeout)" "$LAST_ERR" || die "head timeout message"
#    The default head timeout is 30 s: the same head fails at 30 s, not at 45 s.
hostile 5 42 "trickled head, defaults" "$U/_fault/trickle=300/a.bin"
grep -q "head timeout" "$LAST_ERR" || die "default head timeout message"
#    An endless stream of 100 Continue: fails at once (at most 16 interim responses).
hostile 5 20 "endless 100 Continue" "$U/_fault/interim=100000000/a.bin"
grep -q "more than 16 interim (1xx) responses" "$LAST_ERR" || die "interim message"
#    A few interim responses are fine.
"$SNAPCTL" fetch "$U/_fault/interim=3/a.bin" --sha256 "$H" --cache-dir "$C" >/dev/null
rm "$C/$H"
#    A body at 2 KB/s (the server's slowest pace: 1 KiB slices) against a minimum of
#    100 KB/s over 2 s: fails at the end of the first window, not retried, not resumed.
hostile 5 20 "slow body" "$U/_fault/rate=0.002/a.bin" --speed-limit 100K --speed-time 2
grep -q "below the minimum rate of 102400 bytes/s (speed limit)" "$LAST_ERR" || die "speed message"
#    --speed-limit 0 turns the rule off; --max-time still ends the fetch.
hostile 5 20 "slow body, --max-time" "$U/_fault/rate=0.002/a.bin" --speed-limit 0 --max-time 4
grep -q "not done within the time limit of 4000 ms (--max-time)" "$LAST_ERR" || die "max-time message"

# 4. A Content-Length over --max-size: exit 7 from the head, before any body byte.  The
#    server announces ~1 TB and sends 256 KiB at 50 KB/s (5 s): a fetch that read the body
#    first would take 5 s; one that believes the head stops at once.
hostile 7 3 "a 1 TB Content-Length" "$U/_fault/no-range,clen=+999999999999,rate=0.05/a.bin"
grep -q "Content-Length), over the limit of 8589934592 bytes; nothing of it was read" "$LAST_ERR" ||
    die "Content-Length message"
grep -q "raise --max-size" "$LAST_ERR" || die "no --max-size hint"
#    A 206 whose Content-Range total is over --max-size.
hostile 7 3 "a 206 of a 1 MiB object with --max-size 100K" \
    "$U/_fault/crange=bytes%200-262143%2F1048576,rate=0.05/a.bin" --max-size 100K
grep -q "(Content-Range), over the limit of 102400 bytes" "$LAST_ERR" || die "Content-Range message"

# 5. Upload temp files of dead writers.
D=$T/store
mkdir -p "$D/b1"
head -c 100000 /dev/urandom >"$T/src.bin"
sleep 1000 &
LIVE=$!
cleanup_fn kill_pid "$LIVE"
sh -c 'exit 0' &
DEAD=$!
wait $DEAD
kill -0 "$DEAD" 2>/dev/null && die "pid $DEAD is still alive"
head -c 5000 /dev/zero >"$D/b1/memfile.tmp.$DEAD"
head -c 5000 /dev/zero >"$D/b1/rootfs.tmp.$LIVE"
echo keep >"$D/b1/notes.tmp.txt"
"$SNAPCTL" upload "$T/src.bin" "file://$D/b1/obj" >/dev/null 2>"$T/up.err" || { cat "$T/up.err"; die "upload"; }
cmp "$T/src.bin" "$D/b1/obj" || die "uploaded object differs"
[ ! -e "$D/b1/memfile.tmp.$DEAD" ] || die "a dead upload's temp file survived the next upload"
[ -e "$D/b1/rootfs.tmp.$LIVE" ] || die "a live process's temp file was removed"
[ -e "$D/b1/notes.tmp.txt" ] || die "a file that is not a temp file was removed"
echo "upload removed the temp file of dead pid $DEAD, kept live pid $LIVE's"

echo "fetch-hostile: all cases bounded"
