# fetch against the fault server (tests/tools/faultserver.py): a correct file, wrong hash, an
# endless body past --max-size, truncated bodies, lying Content-Length (both ways, on 206 and on
# a 200 from a server without ranges), a stall past --timeout, 404, redirects (301/302/307, and
# Authorization not carried to another host), kill -9 and SIGTERM mid-download, concurrent
# fetches of one hash, and resume after a reset or a stall mid-body (checked in /_stats: the
# second request asked for bytes=K- and only the rest was sent).  After every failure nothing is
# at the final path and no temp file is left.
. tests/integration/functions.sh
. tests/tools/faultserver.sh
requires python3 curl
T=$(mktmpdir)
mkdir -p "$T/www/bucket" "$T/www2/bucket" "$T/cache"
SIZE=$((5 * 1024 * 1024))
head -c $SIZE /dev/urandom >"$T/www/a.bin"
cp "$T/www/a.bin" "$T/www/bucket/a.bin"
cp "$T/www/a.bin" "$T/www2/bucket/a.bin"
H=$(sha256 "$T/www/a.bin")
BAD=$(printf %064d 0)
faultserver_start "$T/www" --quiet
U=$FS_URL
C=$T/cache

fetch() { "$SNAPCTL" fetch "$@" --cache-dir "$C" --timeout 2; }
# The cache holds nothing (or only the file named by $1): no final file after a failure, no temp.
only() {
    extra=$(ls -A "$C" | grep -vx "${1:-}" || true)
    [ -z "$extra" ] || { ls -la "$C" >&2; die "unexpected files in the cache: $extra"; }
}
good() { cmp "$C/$H" "$T/www/a.bin" || die "$1: the cached file differs from the source"; only "$H"; rm "$C/$H"; }
# reset_server: zero the statistics, clear the rules.
reset_server() { server_reset "$U"; server_control "$U" '{"clear": true}'; }

# 1. Correct file.
fetch "$U/a.bin" --sha256 "$H" >/dev/null
good "plain fetch"

#    An empty object: the open-ended range is answered 416 (nothing at byte 0), which is fine.
: >"$T/www/empty"
HE=$(sha256 "$T/www/empty")
fetch "$U/empty" --sha256 "$HE" >/dev/null
[ -f "$C/$HE" ] && [ ! -s "$C/$HE" ] || die "empty object"
rm "$C/$HE"

# 2. Wrong hash: exit 6, the message names the URL, the expected and the actual hash.
expect_exit 6 fetch "$U/a.bin" --sha256 "$BAD"
grep -q "$U/a.bin" "$LAST_ERR" && grep -q "expected $BAD" "$LAST_ERR" && grep -q "got $H" "$LAST_ERR" ||
    die "mismatch message: $(cat "$LAST_ERR")"
only

# 3. An endless body (200, no Content-Length): stopped at --max-size + 1, exit 7, promptly.
reset_server
expect_exit 7 timeout 60 "$SNAPCTL" fetch "$U/_fault/endless/a.bin" --sha256 "$H" --cache-dir "$C" --max-size 1MiB
grep -q 'max-size' "$LAST_ERR" && grep -q "endless/a.bin" "$LAST_ERR" || die "oversize message: $(cat "$LAST_ERR")"
sent=$(server_stats "$U" 'd["bytes_sent"]')
echo "endless body: the server got $sent bytes out before the client closed"
[ "$sent" -lt $((64 * 1024 * 1024)) ] || die "the client read $sent bytes of an endless body with a 1 MiB limit"
only

# 4. Truncated body (clean FIN, Content-Length promised more).  Every answer cut at 0 body bytes:
#    a clear error (exit 5) naming the URL and the bytes missing.
expect_exit 5 fetch "$U/_fault/truncate=0/a.bin" --sha256 "$H"
grep -q "truncate=0/a.bin" "$LAST_ERR" && grep -q "before the end" "$LAST_ERR" || die "truncation message: $(cat "$LAST_ERR")"
only
#    Only the first answer cut at K: resumed with bytes=K- and verified.
reset_server
server_control "$U" '{"fault": "truncate=1234567", "count": 1, "method": "GET"}'
fetch "$U/a.bin" --sha256 "$H" >/dev/null
good "truncated once"
[ "$(server_stats "$U" 'd["ranges"]')" = "['bytes=0-', 'bytes=1234567-']" ] || die "ranges after a truncation: $(server_stats "$U" 'd["ranges"]')"

# 5. Lying Content-Length.  On a 206 it contradicts Content-Range: a protocol error, exit 5.
for lie in +100 -100; do
    expect_exit 5 fetch "$U/_fault/clen=$lie/a.bin" --sha256 "$H"
    grep -q "Content-Length" "$LAST_ERR" && grep -q "clen=$lie/a.bin" "$LAST_ERR" || die "clen=$lie message: $(cat "$LAST_ERR")"
    only
done
#    From a server without ranges (200): announcing more is a short body (exit 5, both sizes
#    named), announcing fewer is a wrong hash over the bytes announced (exit 6).
expect_exit 5 fetch "$U/_fault/no-range,clen=+100/a.bin" --sha256 "$H"
grep -q "$((SIZE + 100))" "$LAST_ERR" || die "clen=+100 on a 200: $(cat "$LAST_ERR")"
only
expect_exit 6 fetch "$U/_fault/no-range,clen=-100/a.bin" --sha256 "$H"
grep -q "expected $H" "$LAST_ERR" && grep -q "($((SIZE - 100)) bytes)" "$LAST_ERR" || die "clen=-100 on a 200: $(cat "$LAST_ERR")"
only
#    And a server without ranges that tells the truth is fine.
fetch "$U/_fault/no-range/a.bin" --sha256 "$H" >/dev/null
good "no-range"

# 6. A stall past --timeout: a clear error in bounded time (the transport's retries, each one
#    --timeout long, and no second retry loop on top).
t0=$(date +%s)
expect_exit 5 "$SNAPCTL" fetch "$U/_fault/stall=60000/a.bin" --sha256 "$H" --cache-dir "$C" --timeout 1
t=$(($(date +%s) - t0))
echo "a stalled server failed the fetch after $t s (--timeout 1)"
grep -q "idle timeout" "$LAST_ERR" || die "stall message: $(cat "$LAST_ERR")"
[ "$t" -lt 30 ] || die "a stall with --timeout 1 took $t s to fail"
only
#    A stall mid-body once: resumed from the bytes already written.
reset_server
server_control "$U" '{"fault": "stall-at=1000000,stall=60000", "count": 1, "method": "GET"}'
fetch "$U/a.bin" --sha256 "$H" --timeout 1 >/dev/null
good "stalled once"
[ "$(server_stats "$U" 'd["ranges"]')" = "['bytes=0-', 'bytes=1000000-']" ] || die "ranges after a stall: $(server_stats "$U" 'd["ranges"]')"
expect_exit 2 "$SNAPCTL" fetch "$U/a.bin" --sha256 "$H" --cache-dir "$C" --timeout soon

# 7. Not found: exit 4, for a missing object and for an injected 404.
expect_exit 4 fetch "$U/missing.bin" --sha256 "$H"
grep -q "missing.bin" "$LAST_ERR" || die "404 message"
expect_exit 4 fetch "$U/_fault/status=404/a.bin" --sha256 "$H"
only

# 8. Redirects are followed.
for code in 301 302 307; do
    fetch "$U/_fault/redirect=$code/a.bin" --sha256 "$H" >/dev/null
    good "redirect $code"
done
#    Authorization (an S3 SigV4 signature) goes to the first host, not to the one it redirects to.
faultserver_start "$T/www2" --quiet
U2=$FS_URL
curl -s -f -X POST -d "{\"fault\": \"redirect=307,location=$U2/bucket/a.bin\", \"count\": 1, \"method\": \"GET\"}" \
    "$U/_control" >/dev/null
server_reset "$U"
AWS_ENDPOINT_URL=$U AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=secret AWS_REGION=us-east-1 \
    AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_CONFIG_FILE=/nonexistent \
    "$SNAPCTL" fetch s3://bucket/a.bin --sha256 "$H" --cache-dir "$C" >/dev/null
good "s3 redirect"
[ "$(server_stats "$U" '[r["authorization"] for r in d["recent"]]')" = "[True]" ] || die "the first host did not get the signed request"
a2=$(server_stats "$U2" '[(r["request"], r["authorization"]) for r in d["recent"]]')
[ "$a2" = "[('GET /bucket/a.bin', False)]" ] || die "the redirect target saw: $a2"
server_control "$U" '{"clear": true}'

# 9. kill -9 mid-download (paced at 2 MB/s): nothing at the final path; the temp file it left is
#    removed by the next fetch, which succeeds.
"$SNAPCTL" fetch "$U/_fault/rate=2/a.bin" --sha256 "$H" --cache-dir "$C" >/dev/null 2>&1 &
victim=$!
cleanup_fn kill_pid "$victim"
for _ in $(seq 100); do
    tmp=$(ls -A "$C" | grep snapctl-tmp || true)
    [ -n "$tmp" ] && [ "$(stat -c %s "$C/$tmp")" -gt 0 ] && break
    sleep 0.05
done
[ -n "$tmp" ] || die "no temp file appeared during the paced download"
kill -9 "$victim"
wait "$victim" 2>/dev/null || true
[ ! -e "$C/$H" ] || die "a file is at the final path after kill -9"
[ -e "$C/$tmp" ] || die "the killed fetch's temp file is gone (the test needs it to check the cleanup)"
fetch "$U/a.bin" --sha256 "$H" >/dev/null
good "fetch after kill -9"

#    SIGTERM mid-download: exit 130 and nothing left.
"$SNAPCTL" fetch "$U/_fault/rate=2/a.bin" --sha256 "$H" --cache-dir "$C" >/dev/null 2>&1 &
victim=$!
cleanup_fn kill_pid "$victim"
for _ in $(seq 100); do [ -n "$(ls -A "$C")" ] && break; sleep 0.05; done
sleep 0.3
kill -TERM "$victim"
set +e; wait "$victim"; rc=$?; set -e
[ "$rc" -eq 130 ] || die "SIGTERM: exit $rc, expected 130"
only

#    SIGTERM while the origin has gone silent mid-body (the fetch is stuck in a read, not at a
#    write where it checks for the signal): ended within the 1 s grace, exit 130, temp removed.
"$SNAPCTL" fetch "$U/_fault/stall=60000,stall-at=4096/a.bin" --sha256 "$H" --cache-dir "$C" >/dev/null 2>&1 &
victim=$!
cleanup_fn kill_pid "$victim"
for _ in $(seq 100); do [ -n "$(ls -A "$C")" ] && break; sleep 0.05; done
sleep 0.3
t0=$(date +%s%N)
kill -TERM "$victim"
set +e; wait "$victim"; rc=$?; set -e
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$rc" -eq 130 ] || die "SIGTERM during a stalled body: exit $rc, expected 130"
[ "$ms" -lt 3000 ] || die "SIGTERM during a stalled body took $ms ms (the grace is 1 s)"
only

# 10. Concurrent fetches of the same hash (paced so they overlap): all succeed, one file.
pids=""
for i in 1 2 3; do
    "$SNAPCTL" fetch "$U/_fault/rate=10/a.bin" --sha256 "$H" --cache-dir "$C" >"$T/c$i.out" 2>&1 &
    pids="$pids $!"
done
for p in $pids; do wait "$p" || die "a concurrent fetch failed: $(cat "$T"/c*.out)"; done
for i in 1 2 3; do [ "$(cat "$T/c$i.out")" = "$C/$H" ] || die "concurrent fetch $i printed $(cat "$T/c$i.out")"; done
good "concurrent fetches"

# 11. Resume after a reset mid-body: the first GET is reset after K bytes; the second asks for
#     bytes=K- and only the rest is sent; the file verifies.
K=2000000
reset_server
server_control "$U" "{\"fault\": \"reset=$K\", \"count\": 1, \"method\": \"GET\"}"
fetch "$U/a.bin" --sha256 "$H" --json >"$T/resume.json"
good "resume after a reset"
[ "$(server_stats "$U" 'd["ranges"]')" = "['bytes=0-', 'bytes=$K-']" ] || die "ranges after a reset: $(server_stats "$U" 'd["ranges"]')"
[ "$(server_stats "$U" 'd["requests"]')" = 2 ] || die "requests: $(server_stats "$U" 'd["requests"]')"
[ "$(server_stats "$U" 'd["bytes_sent"]')" = "$SIZE" ] || die "bytes sent $(server_stats "$U" 'd["bytes_sent"]'), expected $SIZE: more than the rest was sent again"
[ "$(server_stats "$U" '[r.get("aborted") for r in d["recent"]]')" = "['reset', None]" ] || die "the first request was not reset"
echo ok
