# The progress line on a real terminal (a detached tmux session on a private socket, its screen
# read with capture-pane):
# - fetch of a 1 GiB file:// object at --limit-rate shows a percentage and an ETA ("37%",
#   "ETA 0:21") while the body is coming, redrawn at most ~10 times a second; Ctrl-C clears
#   the line, leaves no temp file and exits 130;
# - upload (S3 multipart against the fault server, parts slowed down) shows a percentage and
#   clears the line when it ends, and on Ctrl-C (exit 130);
# - --json on a terminal prints the JSON and no progress;
# - with stderr not a terminal, fetch and upload print nothing but their normal output.
. tests/integration/functions.sh
. tests/tools/faultserver.sh
requires tmux python3 curl
T=$(mktmpdir)
SOCK=snapctl-progress-$$
tm() { tmux -L "$SOCK" -f /dev/null "$@"; }

# The shell inside the pane: run the command with the terminal as stdout and stderr, write its
# exit status to a file, then stay (so the screen can still be read).  INT is trapped so that
# the shell itself survives Ctrl-C and records the status.
cat >"$T/pane.sh" <<'EOF'
trap 'true' INT
rcfile=$1
shift
"$@"
echo $? >"$rcfile.tmp" && mv "$rcfile.tmp" "$rcfile"
exec sleep 600
EOF

# tm_start NAME CMD...: a 120x20 session running CMD; its raw output goes to $T/NAME.raw.
tm_start() {
    name=$1
    shift
    tm new-session -d -s "$name" -x 120 -y 20 sh "$T/pane.sh" "$T/$name.rc" "$@"
    cleanup_fn tmux -L "$SOCK" kill-session -t "$name"
    tm pipe-pane -t "$name" -o "cat >>'$T/$name.raw'"
}
screen() { tm capture-pane -p -J -t "$1" | sed 's/ *$//'; }
# wait_screen NAME REGEX SECONDS: poll the screen until a line matches (extended regex).
wait_screen() {
    i=0
    while ! screen "$1" | grep -Eq "$2"; do
        [ -e "$T/$1.rc" ] && { screen "$1"; die "$1 ended (exit $(cat "$T/$1.rc")) before the screen showed /$2/"; }
        [ $i -lt $(($3 * 10)) ] || { screen "$1"; die "$1: /$2/ not on the screen within $3 s"; }
        sleep 0.1
        i=$((i + 1))
    done
}
wait_rc() { # NAME SECONDS
    i=0
    while [ ! -e "$T/$1.rc" ]; do
        [ $i -lt $(($2 * 10)) ] || { screen "$1"; die "$1 did not end within $2 s"; }
        sleep 0.1
        i=$((i + 1))
    done
    cat "$T/$1.rc"
}
PROGRESS='[0-9]+% .*ETA [0-9]+:[0-5][0-9]'

# 1. fetch: a 1 GiB object (sparse) at 40 MiB/s: ~25 s, of which a few seconds are watched.
mkdir -p "$T/store" "$T/cache"
truncate -s 1G "$T/store/big.img"
ZERO=0000000000000000000000000000000000000000000000000000000000000000
tm_start fetch "$SNAPCTL" fetch "file://$T/store/big.img" --sha256 $ZERO --cache-dir "$T/cache" --limit-rate 40M
t0=$(date +%s.%N)
wait_screen fetch "$PROGRESS" 60
line=$(screen fetch | grep -E "$PROGRESS")
echo "on the screen: $line"
U='(B|KiB|MiB|GiB)'
echo "$line" | grep -Eq "^big\.img +[0-9]+% \[#* *\] [0-9.]+ $U / 1\.0 GiB  [0-9.]+ $U/s  ETA [0-9]+:[0-5][0-9]\$" ||
    die "the fetch progress line has an unexpected format: '$line'"
sleep 2 # let it redraw a while
tm send-keys -t fetch C-c
t1=$(date +%s.%N)
rc=$(wait_rc fetch 30)
[ "$rc" = 130 ] || die "fetch after Ctrl-C exited $rc, not 130"
if screen fetch | grep -Eq '%|ETA|MiB'; then screen fetch; die "the progress line is still on the screen after Ctrl-C"; fi
[ -z "$(ls -A "$T/cache")" ] || die "fetch left files in the cache after Ctrl-C: $(ls -A "$T/cache")"
# At most ~10 redraws a second (each starts with a carriage return; the clear is one more).
draws=$(tr -cd '\r' <"$T/fetch.raw" | wc -c)
max=$(python3 -c "print(int(($t1 - $t0 + 1) * 10) + 3)")
echo "fetch: $draws redraws in $(python3 -c "print(round($t1 - $t0, 1))") s (at most $max)"
[ "$draws" -ge 3 ] || die "only $draws redraws of the fetch progress"
[ "$draws" -le "$max" ] || die "$draws redraws: more than 10 a second"

# 2. upload: 20 MiB in 4 parts of 5 MiB, one at a time, each answered after 1.5 s.
mkdir -p "$T/root/bkt"
faultserver_start "$T/root"
# The tmux server keeps the environment it started with: the S3 settings go on the command.
S3ENV="env -u AWS_SESSION_TOKEN -u AWS_PROFILE AWS_ACCESS_KEY_ID=TESTKEY AWS_SECRET_ACCESS_KEY=TESTSECRET
       AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$FS_URL"
curl -sf -X POST -d '{"fault": "ttfb=1500", "count": 1000, "method": "PUT", "match": "partNumber="}' \
    "$FS_URL/_control" >/dev/null || die "faultserver control"
head -c $((20 << 20)) /dev/urandom >"$T/f20"
H=$(sha256 "$T/f20")
tm_start up $S3ENV "$SNAPCTL" upload --part-size 5MiB --concurrency 1 "$T/f20" s3://bkt/up.bin
wait_screen up '^f20 +[0-9]+% .*/s  ETA' 60
screen up | grep -E '%'
[ "$(wait_rc up 60)" = 0 ] || { screen up; die "the upload failed"; }
screen up | grep -q "s3://bkt/up.bin $H" || { screen up; die "the upload's result line is not on the screen"; }
if screen up | grep -Eq '%|ETA'; then screen up; die "the upload's progress line stayed after it ended"; fi
cmp "$T/root/bkt/up.bin" "$T/f20" || die "uploaded object differs"

tm_start upint $S3ENV "$SNAPCTL" upload --part-size 5MiB --concurrency 1 "$T/f20" s3://bkt/upint.bin
wait_screen upint '^f20 +[0-9]+% ' 60
tm send-keys -t upint C-c
[ "$(wait_rc upint 60)" = 130 ] || { screen upint; die "the interrupted upload did not exit 130"; }
screen upint | grep -q 'interrupted' || { screen upint; die "no 'interrupted' message"; }
if screen upint | grep -Eq '%|ETA'; then screen upint; die "the upload's progress line stayed after Ctrl-C"; fi
[ ! -e "$T/root/bkt/upint.bin" ] || die "the interrupted upload created the object"

# 3. --json on a terminal: the JSON only.
head -c $((8 << 20)) /dev/urandom >"$T/store/small.bin"
HS=$(sha256 "$T/store/small.bin")
tm_start json "$SNAPCTL" fetch "file://$T/store/small.bin" --sha256 "$HS" --cache-dir "$T/cache" --limit-rate 4M --json
[ "$(wait_rc json 60)" = 0 ] || { screen json; die "fetch --json failed"; }
! grep -q 'MiB/s' "$T/json.raw" || die "fetch --json drew a progress line: $(od -c "$T/json.raw" | head)"
screen json | grep -q "\"path\":\"$T/cache/$HS\"" || { screen json; die "fetch --json output"; }
if screen json | grep -Eq '%|ETA'; then screen json; die "fetch --json showed progress"; fi
rm -f "$T/cache/$HS"

# 4. stderr not a terminal (a file): nothing but the normal output, though the fetch takes ~2 s.
"$SNAPCTL" fetch "file://$T/store/small.bin" --sha256 "$HS" --cache-dir "$T/cache" --limit-rate 4M \
    >"$T/out" 2>"$T/err"
[ "$(cat "$T/out")" = "$T/cache/$HS" ] || die "fetch stdout: $(cat "$T/out")"
[ ! -s "$T/err" ] || die "fetch wrote to a non-terminal stderr: $(od -c "$T/err" | head)"
mkdir -p "$T/dst"
"$SNAPCTL" upload "$T/store/small.bin" "file://$T/dst/small.bin" >"$T/out" 2>"$T/err"
[ "$(cat "$T/out")" = "file://$T/dst/small.bin $HS" ] || die "upload stdout: $(cat "$T/out")"
[ ! -s "$T/err" ] || die "upload wrote to a non-terminal stderr: $(od -c "$T/err" | head)"
echo "progress on a terminal: ok"
