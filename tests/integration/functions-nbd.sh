# functions-nbd.sh -- helpers for tests that run serve-nbd against real NBD clients.
# Source after functions.sh.

# free_port: a TCP port on 127.0.0.1 nobody listens on right now.
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

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
