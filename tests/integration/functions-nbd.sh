# functions-nbd.sh -- helpers for tests that run serve-nbd against real NBD clients.
# Source after functions.sh.

# start_server PIDFILE CMD...: start a server that writes PIDFILE once listening; wait for it;
# stop it by PID at exit.
start_server() {
    pidfile=$1; shift
    "$@" &
    _spid=$!
    cleanup_fn kill_pid "$_spid"
    i=0
    while [ ! -s "$pidfile" ]; do
        kill -0 "$_spid" 2>/dev/null || die "server exited before listening: $*"
        i=$((i + 1)); [ $i -lt 100 ] || die "server did not write $pidfile: $*"
        sleep 0.05
    done
}

# nbdsh needs Debian's python3 (python3-libnbd), not another python first on PATH.
nbdsh_py() { PATH=/usr/bin:$PATH /usr/bin/python3 "$@"; }

# make_build IMAGE SIZE DIR JSON: a new build of IMAGE in DIR/{buildId}/ -- written by nbdcopy
# through `serve-nbd --size SIZE --export-diff DIR`, exported when it stops; serve-nbd's --json
# output goes to JSON; sets BUILD_ID.
make_build() {
    _mbp=$(free_port)
    rm -f "$4.pid"
    start_server "$4.pid" "$SNAPCTL" serve-nbd --size "$2" --export-diff "$3" --json \
        -l "127.0.0.1:$_mbp" --pid-file "$4.pid" >"$4"
    nbdcopy "$1" "nbd://127.0.0.1:$_mbp" || die "nbdcopy into the new build"
    kill -TERM "$_spid"
    wait "$_spid" || die "serve-nbd --export-diff exited $?"
    BUILD_ID=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["build_id"])' "$4")
}

# freeze_mid_read READER LOG HALF GO PID PORT: a peer dies with a read in flight.  Wait until the
# background READER (its output in LOG) creates the file HALF, freeze the server PID (SIGSTOP),
# create GO for the reader to go on, and wait until its next request sits unread in the socket of
# PID's PORT (Recv-Q > 0 on the server's side).  The caller then kills PID.
freeze_mid_read() {
    i=0
    while [ ! -e "$3" ]; do
        kill -0 "$1" 2>/dev/null || { cat "$2"; die "the reader ended before $3"; }
        i=$((i + 1)); [ $i -lt 500 ] || die "the reader did not get to $3 in 10 s"
        sleep 0.02
    done
    kill -STOP "$5"
    touch "$4"
    i=0
    until ss -Htn state established "( sport = :$6 )" | awk '$1 > 0 { f = 1 } END { exit !f }'; do
        i=$((i + 1)); [ $i -lt 100 ] || die "no request of the reader reached the frozen server on port $6"
        sleep 0.02
    done
}
