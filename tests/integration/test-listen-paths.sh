# serve-nbd's Unix socket paths and export directory (issue 18, items 2, 10, 14, 15):
#   -l unix:PATH and --control unix:PATH leave a regular file at PATH alone and fail; a second
#   server refuses the sockets of a live one, which keeps answering; a stale socket (nobody
#   listening) is replaced; the control socket is mode 0600 even under umask 000, a client of
#   another uid is refused by its credentials (SO_PEERCRED) even when the mode would let it in,
#   and 8 silent control clients do not delay an export (requests are served concurrently);
#   a --size device exported twice with no writes makes one build, the second answer
#   changed:false; a `.UUID.tmp/` left in the export directory by a crash is removed at start,
#   and other entries are not.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires nbdinfo setpriv
T=$(mktmpdir)
py() { /usr/bin/python3 "$@"; }

# --- a regular file at the path is never deleted ----------------------------------------------
echo keep >"$T/file"
expect_exit 1 timeout 20 "$SNAPCTL" serve-nbd --size 1M --export-diff "$T/o" -l "unix:$T/file"
grep -q "not a socket" "$LAST_ERR" || die "-l on a regular file: $(cat "$LAST_ERR")"
expect_exit 1 timeout 20 "$SNAPCTL" serve-nbd --size 1M --export-diff "$T/o" -l "127.0.0.1:$(free_port)" \
    --control "unix:$T/file"
[ "$(cat "$T/file")" = keep ] || die "the regular file at the listening path was changed"

# --- a leftover export temp dir from a crash is cleaned at start --------------------------------
mkdir -p "$T/out"
stale=".$(cat /proc/sys/kernel/random/uuid).tmp"
mkdir "$T/out/$stale" "$T/out/.other.tmp"
head -c 65536 /dev/zero >"$T/out/$stale/rootfs.ext4"

# --- a live server: its sockets are not taken over ----------------------------------------------
D=$(mktemp -d /tmp/snapctl-ctl.XXXXXX) # reachable by another uid (the test root is 0700)
cleanup_fn rm -rf "$D"
chmod 755 "$D"
(umask 000 && exec "$SNAPCTL" serve-nbd --size 16M --export-diff "$T/out" --json -l "unix:$D/nbd.sock" \
    --control "unix:$D/ctl.sock" --pid-file "$T/pid" >"$T/srv.json" 2>"$T/srv.err") &
SPID=$!
cleanup_fn kill_pid "$SPID"
i=0
until [ -s "$T/pid" ]; do
    kill -0 "$SPID" 2>/dev/null || die "serve-nbd exited: $(cat "$T/srv.err")"
    i=$((i + 1)); [ $i -lt 200 ] || die "serve-nbd did not start"; sleep 0.05
done
[ ! -e "$T/out/$stale" ] || die "the crashed export's $stale was not removed"
[ -d "$T/out/.other.tmp" ] || die "a directory that is not an export's temp dir was removed"
[ "$(stat -c %a "$D/ctl.sock")" = 600 ] || die "control socket mode $(stat -c %a "$D/ctl.sock") under umask 000"

expect_exit 1 timeout 20 "$SNAPCTL" serve-nbd --file "$T/file" -l "unix:$D/nbd.sock"
grep -q "another server is listening" "$LAST_ERR" || die "second server on a live -l socket: $(cat "$LAST_ERR")"
expect_exit 1 timeout 20 "$SNAPCTL" serve-nbd --size 1M --export-diff "$T/o2" -l "127.0.0.1:$(free_port)" \
    --control "unix:$D/ctl.sock"
grep -q "another server is listening" "$LAST_ERR" || die "second server on a live control socket"
nbdinfo --size "nbd+unix:///?socket=$D/nbd.sock" >/dev/null || die "the first server lost its NBD socket"

# --- control: credentials, concurrency, repeated export ----------------------------------------
chmod 666 "$D/ctl.sock" # the mode alone would let anyone in: the credentials check must not
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
try:
    s.sendall(b"export\n"); print(s.recv(4096).decode())
except (ConnectionResetError, BrokenPipeError):
    pass' "$D/ctl.sock") || die "the other-uid client could not even connect"
[ -z "$out" ] || die "a client of another uid got an answer: $out"
grep -q "refused a client of uid 65534" "$T/srv.err" || die "no log line for the refused uid"
[ -z "$(ls "$T/out" | grep -v '^\.')" ] || die "the refused client's request exported something"

py - "$D/ctl.sock" >"$T/silent.out" <<'EOF' &
import socket, sys, time
held = []
for _ in range(8):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); held.append(s)
print("ready", flush=True)
time.sleep(30)
EOF
QPID=$!
cleanup_fn kill_pid "$QPID"
i=0
until grep -q ready "$T/silent.out"; do i=$((i + 1)); [ $i -lt 200 ] || die "silent clients"; sleep 0.05; done
t0=$(date +%s%N)
"$SNAPCTL" serve-nbd --control "$D/ctl.sock" export --json >"$T/e1.json" || die "export with 8 silent clients"
ms=$((($(date +%s%N) - t0) / 1000000))
echo "export with 8 silent control clients connected: $ms ms"
[ "$ms" -lt 4000 ] || die "the export waited $ms ms behind silent clients"
kill_pid "$QPID"
grep -q '"changed":true' "$T/e1.json" || die "the first export of --size is a base build: $(cat "$T/e1.json")"
"$SNAPCTL" serve-nbd --control "$D/ctl.sock" export --json >"$T/e2.json" || die "second export"
grep -q '"changed":false' "$T/e2.json" || die "second export with no writes: $(cat "$T/e2.json")"
b1=$(py -c 'import json,sys; print(json.load(open(sys.argv[1]))["build_id"])' "$T/e1.json")
grep -q "\"parent_build_id\":\"$b1\"" "$T/e2.json" || die "the unchanged answer does not name the base build"
[ "$(ls "$T/out" | grep -vc '^\.')" = 1 ] || die "builds made: $(ls "$T/out")"
kill -TERM "$SPID"
wait "$SPID" || die "serve-nbd exited $? at SIGTERM"
grep -q '"changed":false' "$T/srv.json" || die "the export at exit made another build: $(cat "$T/srv.json")"
[ ! -e "$D/ctl.sock" ] || die "the control socket was left behind"

# --- a stale socket (its server died) is replaced -----------------------------------------------
py -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$D/stale.sock"
[ -S "$D/stale.sock" ] || die "could not make a stale socket"
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd --file "$T/file" -r -l "unix:$D/stale.sock" --pid-file "$T/pid"
nbdinfo --size "nbd+unix:///?socket=$D/stale.sock" >/dev/null || die "no server on the replaced stale socket"
