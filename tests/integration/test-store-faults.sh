# Every faultserver fault mode against snapctl's store read path, through http://, s3:// and gs://
# pointed at the faultserver: 503/429/500 (with Retry-After) retried and succeeding, too many of
# them failing with the status named; a reset or truncated body resumed (the retry asks only for
# the missing bytes); a lying Content-Length and a wrong Content-Range refused, never written as
# data; a stall past the idle timeout failing in bounded time; a 200 whose body is an <Error>
# document caught by the SHA-256 check on reads (and, for a multipart complete, by the <Error>
# parser: the unit test store_faults_complete_error200); slow TTFB, throttled bandwidth, redirects
# and an endless body.
# `snapctl fetch` drives the streaming read (read_stream), `serve-nbd --object` the buffered read
# (stat + store_read into the chunk cache).  The faultserver's /_stats shows the retries.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
. tests/tools/faultserver.sh
requires python3 curl nbdcopy timeout
: "${UNIT_TESTS:=$TOP/build/release/unit-tests}"
[ -x "$UNIT_TESTS" ] || skip "requires the unit-test binary (make VARIANT=release variant-bins, or set UNIT_TESTS)"
T=$(mktmpdir)
mkdir -p "$T/root/bkt/pre" "$T/cache"
head -c 3M /dev/urandom >"$T/root/bkt/pre/obj.bin"
OBJ=/bkt/pre/obj.bin
H=$(sha256 "$T/root$OBJ")
N=$((3 << 20))
faultserver_start "$T/root" --min-part-size 65536 --quiet
U=$FS_URL

# One environment serves all three schemes; each takes its own variables.
export AWS_ENDPOINT_URL=$U AWS_ACCESS_KEY_ID=test-key AWS_SECRET_ACCESS_KEY=test-secret AWS_REGION=us-east-1
export SNAPCTL_GCS_ENDPOINT=$U GOOGLE_OAUTH_ACCESS_TOKEN=test-token
unset AWS_PROFILE AWS_SESSION_TOKEN GOOGLE_APPLICATION_CREDENTIALS GCS_HMAC_ACCESS_ID GCS_HMAC_SECRET \
    STORAGE_EMULATOR_HOST 2>/dev/null || true
export SNAPCTL_IDLE_TIMEOUT=2 SNAPCTL_MAX_ATTEMPTS=4
url() { case $1 in http) echo "$U$OBJ" ;; s3) echo "s3:/$OBJ" ;; gs) echo "gs:/$OBJ" ;; esac; }

# rule JSON...: replace the control rules (each {"fault", "count", "method", "match"}).
rule() {
    server_control "$U" '{"clear": true}'
    for r in "$@"; do server_control "$U" "$r"; done
    server_reset "$U"
}
get_rule() { rule "{\"fault\": \"$1\", \"count\": ${2:-1}, \"method\": \"GET\", \"match\": \"obj.bin\"}"; }
gets() { server_stats "$U" "d['by_method'].get('GET', 0)"; }

# fetch_ok SCHEME [fetch args]: the fetch succeeds with the right bytes.
fetch_ok() {
    s=$1; shift
    rm -f "$T/cache/"*
    timeout 120 "$SNAPCTL" fetch "$(url "$s")" --sha256 "$H" --cache-dir "$T/cache" -q "$@" >/dev/null 2>"$T/err" ||
        { cat "$T/err" >&2; die "$s: fetch failed under fault '$CASE'"; }
    cmp "$T/cache/$H" "$T/root$OBJ" || die "$s: wrong bytes under fault '$CASE'"
}
# fetch_fails SCHEME CODE WORDS...: exit CODE, nothing cached, the message has every WORD.
fetch_fails() {
    s=$1 code=$2; shift 2
    rm -f "$T/cache/"*
    expect_exit "$code" timeout 120 "$SNAPCTL" fetch "$(url "$s")" --sha256 "$H" --cache-dir "$T/cache" -q
    for w in "$@"; do
        grep -qF -- "$w" "$LAST_ERR" || die "$s: fault '$CASE': message lacks '$w': $(cat "$LAST_ERR")"
    done
    grep -qF "$(url "$s")" "$LAST_ERR" || die "$s: fault '$CASE': message does not name the object: $(cat "$LAST_ERR")"
    [ -z "$(ls -A "$T/cache")" ] || die "$s: fault '$CASE' left files in the cache"
}

for s in http s3 gs; do
    echo "== $s"
    # Server errors with Retry-After are retried after at least the time asked, then succeed.
    for st in 503 429 500; do
        CASE="status=$st,retry-after=1 x2"
        get_rule "status=$st,retry-after=1" 2
        t0=$(date +%s%N)
        fetch_ok "$s"
        ms=$((($(date +%s%N) - t0) / 1000000))
        [ "$(gets)" = 3 ] || die "$s: $CASE: expected 3 GETs, saw $(gets)"
        [ "$ms" -ge 2000 ] || die "$s: $CASE: Retry-After 1 twice not honoured (${ms} ms)"
    done
    CASE="status=503 always"
    get_rule "status=503" 100
    fetch_fails "$s" 5 "HTTP 503" "after 4 attempts"

    # A body cut by a reset or a clean close is resumed from where it broke off.
    for f in reset=1000000 truncate=1000000 "stall-at=1000000,stall=3000" clen=+5000; do
        CASE=$f
        get_rule "$f" 1
        fetch_ok "$s"
        [ "$(gets)" = 2 ] || die "$s: $CASE: expected 2 GETs, saw $(gets)"
        server_stats "$U" "d['ranges'][1]" | grep -q '^bytes=1000000-' || [ "$f" = clen=+5000 ] ||
            die "$s: $CASE: the retry did not resume at the break: $(server_stats "$U" "d['ranges']")"
    done
    CASE="truncate=0 always"
    get_rule "truncate=0" 100
    fetch_fails "$s" 5 "$OBJ"

    # A lying Content-Length (fewer bytes announced than the Content-Range says) and a wrong
    # Content-Range are refused, and never end up as data.
    CASE="clen=-10 always"
    get_rule "clen=-10" 100
    fetch_fails "$s" 5 "Content-Length"
    CASE="clen=-10 once"
    get_rule "clen=-10" 1
    fetch_ok "$s"
    CASE="bad-range always"
    get_rule "bad-range" 100
    fetch_fails "$s" 5 "Content-Range"
    CASE="crange always"
    get_rule "crange=bytes%200-9%2F$N" 100
    fetch_fails "$s" 5 "Content-Range 'bytes 0-9/$N'"

    # A server that stops sending: an attempt times out after the idle timeout (2 s here) and
    # one stall is retried; when every attempt stalls (1 s timeout, 1 attempt per read, and
    # fetch's own 5 resumptions) the fetch fails in bounded time.
    CASE="stall=4000 once"
    get_rule "stall=4000" 1
    fetch_ok "$s"
    CASE="stall=4000 always"
    get_rule "stall=4000" 1000
    t0=$(date +%s)
    SNAPCTL_IDLE_TIMEOUT=1 SNAPCTL_MAX_ATTEMPTS=1 fetch_fails "$s" 5 "nothing for 1000 ms (idle timeout)"
    echo "$s: every attempt stalled: failed after $(($(date +%s) - t0)) s"

    # 200 with an <Error> document instead of the object: the SHA-256 check refuses it.
    CASE="error200 always"
    get_rule "error200" 100
    fetch_fails "$s" 6 "SHA-256 mismatch"

    # Slow first byte (under the idle timeout), a throttled body and a redirect are fine; an
    # endless body is cut at --max-size.
    CASE="ttfb=1500"
    get_rule "ttfb=1500" 5
    fetch_ok "$s"
    [ "$(gets)" = 1 ] || die "$s: $CASE: a slow first byte was retried"
    CASE="rate=20"
    get_rule "rate=20" 1
    fetch_ok "$s"
    [ "$(gets)" = 1 ] || die "$s: $CASE: a throttled body was retried"
    CASE="redirect=307"
    get_rule "redirect=307" 1
    fetch_ok "$s"
    CASE="endless"
    get_rule "endless" 1
    rm -f "$T/cache/"*
    expect_exit 7 timeout 60 "$SNAPCTL" fetch "$(url "$s")" --sha256 "$H" --cache-dir "$T/cache" -q --max-size 4M
    [ -z "$(ls -A "$T/cache")" ] || die "$s: endless body left files"
done

# serve-nbd --object: the chunker's fetch path (HEAD for the size, ranged GETs streamed into the cache).
for s in http s3 gs; do
    CASE="serve-nbd $s"
    rule '{"fault": "status=503,retry-after=1", "count": 1, "method": "HEAD"}' \
        '{"fault": "reset=100000", "count": 1, "method": "GET", "match": "obj.bin"}' \
        '{"fault": "status=500", "count": 1, "method": "GET", "match": "obj.bin"}' \
        '{"fault": "stall-at=5000,stall=3000", "count": 1, "method": "GET", "match": "obj.bin"}'
    np=$(free_port)
    start_server "$T/npid.$s" "$SNAPCTL" serve-nbd --object "$(url "$s")" --cache-dir "$T/cache" \
        -l "127.0.0.1:$np" --pid-file "$T/npid.$s" -r
    timeout 120 nbdcopy "nbd://127.0.0.1:$np" "$T/copy.$s" || die "$CASE: nbdcopy under faults"
    [ "$(sha256 "$T/copy.$s")" = "$H" ] || die "$CASE: wrong bytes"
    [ "$(server_stats "$U" "d['faults']")" = 4 ] || die "$CASE: not every fault was hit: $(server_stats "$U" "d['faults']")"
    kill_pid "$(cat "$T/npid.$s")"
    # A wrong Content-Range on every read: NBD reads fail (EIO), they never return wrong bytes.
    get_rule "bad-range" 100000
    np=$(free_port)
    start_server "$T/npid2.$s" "$SNAPCTL" serve-nbd --object "$(url "$s")" --cache-dir "$T/cache" \
        -l "127.0.0.1:$np" --pid-file "$T/npid2.$s" -r
    if timeout 120 nbdcopy "nbd://127.0.0.1:$np" "$T/bad.$s" 2>"$T/nbd.err"; then
        die "$s: nbdcopy succeeded though every Content-Range was wrong"
    fi
    kill_pid "$(cat "$T/npid2.$s")"
done

# A 200 with an <Error> body answering a multipart complete, and retried statuses on parts.
SNAPCTL_TEST_FAULTS="$U s3://bkt/mp gs://bkt/mp" "$UNIT_TESTS" store_faults \
    >"$T/unit.log" 2>&1 || { cat "$T/unit.log"; die "store_faults unit test"; }
grep -q "ok   store_faults_complete_error200" "$T/unit.log" || { cat "$T/unit.log"; die "unit test did not run"; }
echo ok
