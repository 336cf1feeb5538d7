# faultserver.sh -- start tests/tools/faultserver.py from an integration test (source it after
# tests/integration/functions.sh).
#
#   faultserver_start ROOT [faultserver.py options...]
#
# Starts the server on a free loopback port, waits for its port file, and registers its stop
# (by PID) with cleanup_fn.  Sets FS_PID, FS_PORT, FS_URL (http://127.0.0.1:PORT) and FS_LOG
# (its stderr).  Call it again for a second server; the variables then describe the newest one.
faultserver_start() {
    _fs_root=$1
    shift
    _fs_dir=$(mktemp -d "${TMPDIR:-/tmp}/faultserver.XXXXXX")
    cleanup_fn rm -rf "$_fs_dir"
    python3 "$TOP/tests/tools/faultserver.py" --root "$_fs_root" --port 0 \
        --port-file "$_fs_dir/port" --pid-file "$_fs_dir/pid" "$@" 2>"$_fs_dir/log" &
    FS_PID=$!
    FS_LOG=$_fs_dir/log
    cleanup_fn kill_pid "$FS_PID"
    _fs_i=0
    while [ ! -s "$_fs_dir/port" ]; do
        kill -0 "$FS_PID" 2>/dev/null || die "faultserver exited at start: $(cat "$FS_LOG")"
        [ $_fs_i -lt 100 ] || die "faultserver did not write its port within 10 s"
        sleep 0.1
        _fs_i=$((_fs_i + 1))
    done
    FS_PORT=$(cat "$_fs_dir/port")
    FS_URL=http://127.0.0.1:$FS_PORT
}
